//! No transaction state reaches the pool, whatever SQL ran (issue 13, item 5).

use std::time::Duration;

use aludel::testing::TestDb;
use aludel::{engine::SessionReset, sql};

async fn table(db: &TestDb) {
    db.engine()
        .execute(&sql("CREATE TABLE t (id int)"))
        .await
        .unwrap();
}

async fn rows_seen_elsewhere(db: &TestDb) -> i64 {
    db.admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM t"))
        .await
        .unwrap()
}

/// Every backend of the test is idle, none `idle in transaction`, seen from pg_stat_activity.
async fn all_idle(db: &TestDb) {
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            b.iter().all(|(_, s)| s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "a backend is not idle: {seen:?}");
}

/// The next user of the (only) pooled connection runs an autocommit INSERT: it must be
/// committed, as seen from a second connection.
async fn next_user_insert_is_kept(db: &TestDb, engine: &aludel::Engine, expect: i64) {
    let mut c = engine.connect().await.unwrap();
    assert_eq!(
        c.execute(&sql("INSERT INTO t VALUES (1)")).await.unwrap(),
        1
    );
    drop(c);
    all_idle(db).await;
    assert_eq!(rows_seen_elsewhere(db).await, expect, "the INSERT was lost");
}

// covers: ENG-08, TX-06, RAW-01
#[tokio::test]
async fn transaction_control_as_text_is_refused_however_it_is_written() {
    let db = TestDb::new().await.unwrap();
    table(&db).await;
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let texts: [&'static str; 12] = [
        "BEGIN",
        "/* c */ BEGIN",
        "-- c\nBEGIN",
        "  begin isolation level serializable",
        "START TRANSACTION",
        "END",
        "ABORT",
        "COMMIT AND CHAIN",
        "/* a /* nested */ comment */ COMMIT",
        "PREPARE TRANSACTION 'x'",
        "ROLLBACK",
        "SAVEPOINT s",
    ];
    let mut expect = 0;
    for text in texts {
        let mut c = engine.connect().await.unwrap();
        let err = c.execute(&sql(text)).await.unwrap_err();
        assert!(err.is_invalid_request(), "{text:?}: {err:?}");
        let err = c.batch_execute(text).await.unwrap_err();
        assert!(err.is_invalid_request(), "{text:?}: {err:?}");
        drop(c);
        expect += 1;
        next_user_insert_is_kept(&db, &engine, expect).await;
    }
    // Scripts: a BEGIN anywhere in them, but not one inside a literal or a body.
    let mut c = engine.connect().await.unwrap();
    for script in [
        "SELECT 1; BEGIN",
        "CREATE TABLE u (a int);\n-- next\nbegin;",
    ] {
        let err = c.batch_execute(script).await.unwrap_err();
        assert!(err.is_invalid_request(), "{script:?}: {err:?}");
    }
    c.batch_execute("SELECT 'BEGIN'; DO $$ BEGIN PERFORM 1; END $$")
        .await
        .unwrap();
    drop(c);
    next_user_insert_is_kept(&db, &engine, expect + 1).await;
}

// covers: ENG-08, RAW-04
/// What the lexer never sees: a `BEGIN` sent through the driver client. The connection still
/// comes back outside a transaction, because anything unclassified is rolled back on return.
#[tokio::test]
async fn a_begin_the_engine_never_saw_does_not_reach_the_next_user() {
    let db = TestDb::new().await.unwrap();
    table(&db).await;
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut c = engine.connect().await.unwrap();
    let pid = c.backend_pid().await.unwrap();
    c.driver_client()
        .unwrap()
        .batch_execute("/* c */ BEGIN")
        .await
        .unwrap();
    drop(c);
    all_idle(&db).await;
    let mut c = engine.connect().await.unwrap();
    assert_eq!(
        c.backend_pid().await.unwrap(),
        pid,
        "the connection was kept"
    );
    drop(c);
    next_user_insert_is_kept(&db, &engine, 1).await;
    let sent: Vec<String> = db.recorder().all().into_iter().map(|r| r.sql).collect();
    assert!(sent.iter().any(|s| s == "ROLLBACK"), "{sent:?}");
}

// covers: TX-06, ENG-17
/// `/* c */ COMMIT` inside `engine.transaction` used to commit two rows behind the engine's
/// back, so a closure that returned `Err` left them in the table.
#[tokio::test]
async fn a_raw_commit_cannot_end_an_engine_transaction() {
    let db = TestDb::new().await.unwrap();
    table(&db).await;
    let engine = db.engine_builder().max_size(1).build().unwrap();
    for text in ["/* c */ COMMIT", "-- c\nEND", "ROLLBACK AND CHAIN"] {
        let r = engine
            .transaction(async |c| {
                c.execute(&sql("INSERT INTO t VALUES (1)")).await?;
                c.execute(&sql("INSERT INTO t VALUES (2)")).await?;
                // Whether the closure propagates the refusal or ignores it, it fails.
                let refused = c.execute(&sql(text)).await.unwrap_err();
                assert!(refused.is_invalid_request(), "{refused:?}");
                Err::<(), _>(refused)
            })
            .await;
        assert!(r.is_err());
        all_idle(&db).await;
        assert_eq!(rows_seen_elsewhere(&db).await, 0, "{text:?} committed");
    }
    // The same through a script.
    let r = engine
        .transaction(async |c| {
            c.execute(&sql("INSERT INTO t VALUES (1)")).await?;
            let _ = c.batch_execute("SELECT 1; /* c */ COMMIT").await;
            Err::<(), aludel::Error>(c.batch_execute("COMMIT").await.unwrap_err())
        })
        .await;
    assert!(r.is_err());
    assert_eq!(rows_seen_elsewhere(&db).await, 0);
}

// covers: ENG-08
/// Session settings from raw SQL: kept by default (as PostgreSQL keeps them, documented on
/// `SessionReset`), reset with `ResetAll`, and with `Clean` temporary tables go too.
#[tokio::test]
async fn raw_session_settings_are_kept_or_reset_as_configured() {
    let db = TestDb::new().await.unwrap();
    let schema = db.schema().to_owned();
    for reset in [
        SessionReset::Rollback,
        SessionReset::ResetAll,
        SessionReset::Clean,
    ] {
        let engine = db
            .engine_builder()
            .max_size(1)
            .session_reset(reset)
            .build()
            .unwrap();
        let mut c = engine.connect().await.unwrap();
        let pid = c.backend_pid().await.unwrap();
        c.execute(&sql("SET statement_timeout = '17s'"))
            .await
            .unwrap();
        c.batch_execute("SET search_path = public; CREATE TEMP TABLE scratch (a int)")
            .await
            .unwrap();
        drop(c);
        let mut c = engine.connect().await.unwrap();
        assert_eq!(c.backend_pid().await.unwrap(), pid);
        let timeout: String = c.query_one(&sql("SHOW statement_timeout")).await.unwrap();
        let path: String = c.query_one(&sql("SHOW search_path")).await.unwrap();
        let temp: bool = c
            .query_one(&sql("SELECT to_regclass('pg_temp.scratch') IS NOT NULL"))
            .await
            .unwrap();
        let state: String = c
            .query_one(&sql(
                "SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            ))
            .await
            .unwrap();
        assert_eq!(state, "active");
        match reset {
            SessionReset::Rollback => {
                assert_eq!(
                    (timeout.as_str(), path.as_str(), temp),
                    ("17s", "public", true)
                );
            }
            SessionReset::ResetAll => {
                // Back to the connection's start values, startup options included.
                assert_eq!(
                    (timeout.as_str(), path.as_str(), temp),
                    ("0", schema.as_str(), true)
                );
            }
            _ => assert_eq!(
                (timeout.as_str(), path.as_str(), temp),
                ("0", schema.as_str(), false)
            ),
        }
        // A prepared statement cached before the reset still works after it.
        let n: i64 = c
            .query_one(&sql("SELECT $1::int8 + 1").bind(1_i64))
            .await
            .unwrap();
        drop(c);
        let mut c = engine.connect().await.unwrap();
        c.execute(&sql("SET statement_timeout = '5s'"))
            .await
            .unwrap();
        drop(c);
        let m: i64 = engine
            .query_one(&sql("SELECT $1::int8 + 1").bind(1_i64))
            .await
            .unwrap();
        assert_eq!(n, m);
        engine.close();
    }
}

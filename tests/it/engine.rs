use std::time::Duration;

use aludel::testing::TestDb;
use aludel::{
    Engine, engine::IsolationLevel, engine::StatementKind, engine::StatementMode,
    engine::TxOptions, sql,
};

// covers: ENG-01
#[tokio::test]
async fn building_an_engine_opens_no_connection() {
    // Nothing listens on port 1: building still succeeds, the first checkout fails typed.
    let engine = Engine::builder("postgres://postgres@127.0.0.1:1/postgres")
        .connect_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    let err = engine.connect().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    let db = TestDb::new().await.unwrap();
    let engines: Vec<Engine> = (0..100)
        .map(|_| db.engine_builder().build().unwrap())
        .collect();
    assert!(
        db.backends().await.unwrap().is_empty(),
        "an engine connected eagerly"
    );
    drop(engines);
}

// covers: ENG-02
#[tokio::test]
async fn no_pool_mode_opens_a_new_backend_per_checkout() {
    let db = TestDb::new().await.unwrap();
    let engine = db.engine_builder().no_pool().build().unwrap();
    let a = engine.connect().await.unwrap().backend_pid().await.unwrap();
    let b = engine.connect().await.unwrap().backend_pid().await.unwrap();
    assert_ne!(a, b);

    let pooled = db.engine_builder().max_size(1).build().unwrap();
    let a = pooled.connect().await.unwrap().backend_pid().await.unwrap();
    let b = pooled.connect().await.unwrap().backend_pid().await.unwrap();
    assert_eq!(a, b, "a pooled engine reuses its connection");
}

// covers: ENG-17, TX-06
#[tokio::test]
async fn transaction_block_commits_on_ok_and_rolls_back_on_err() {
    let db = TestDb::new().await.unwrap();
    let engine = db.engine();
    engine
        .execute(&sql("CREATE TABLE t (id int PRIMARY KEY)"))
        .await
        .unwrap();

    engine
        .transaction(async |c| c.execute(&sql("INSERT INTO t VALUES (1)")).await)
        .await
        .unwrap();
    let failed: aludel::Result<()> = engine
        .transaction(async |c| {
            c.execute(&sql("INSERT INTO t VALUES (2)")).await?;
            c.execute(&sql("INSERT INTO t VALUES (1)")).await?; // duplicate
            Ok(())
        })
        .await;
    assert!(failed.unwrap_err().is_unique_violation());

    let mut other = db.admin().await.unwrap();
    let ids: Vec<i32> = other
        .query_as(&sql("SELECT id FROM t ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(ids, [1]);
}

// covers: ENG-17, TX-04
#[tokio::test]
async fn savepoints_undo_only_their_part() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    c.execute(&sql("CREATE TABLE t (id int PRIMARY KEY)"))
        .await
        .unwrap();
    c.begin().await.unwrap();
    let mut kept = 0;
    for id in [1, 2, 2, 3, 3, 4] {
        let sp = c.savepoint().await.unwrap();
        match c.execute(&sql("INSERT INTO t VALUES ($1)").bind(id)).await {
            Ok(_) => {
                c.release_savepoint(sp).await.unwrap();
                kept += 1;
            }
            Err(e) => {
                assert!(e.is_unique_violation());
                c.rollback_to_savepoint(sp).await.unwrap();
            }
        }
    }
    c.commit().await.unwrap();
    assert_eq!(kept, 4);
    let n: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM t"))
        .await
        .unwrap();
    assert_eq!(n, 4);
    let shapes = db.recorder().all();
    assert!(shapes.iter().any(|r| r.sql.starts_with("SAVEPOINT")));
    assert!(
        shapes
            .iter()
            .any(|r| r.sql.starts_with("ROLLBACK TO SAVEPOINT"))
    );
}

// covers: ENG-12, TX-07
#[tokio::test]
async fn isolation_level_is_per_transaction_and_does_not_leak() {
    let db = TestDb::new().await.unwrap();
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut c = engine.connect().await.unwrap();
    let pid = c.backend_pid().await.unwrap();
    c.begin_with(TxOptions::new().isolation(IsolationLevel::Serializable))
        .await
        .unwrap();
    let level: String = c
        .query_one(&sql("SHOW transaction_isolation"))
        .await
        .unwrap();
    assert_eq!(level, "serializable");
    c.commit().await.unwrap();
    drop(c);

    let mut c = engine.connect().await.unwrap();
    assert_eq!(c.backend_pid().await.unwrap(), pid, "same pooled backend");
    c.begin().await.unwrap();
    let level: String = c
        .query_one(&sql("SHOW transaction_isolation"))
        .await
        .unwrap();
    assert_eq!(level, "read committed");
    c.rollback().await.unwrap();

    // An engine-wide default applies to every BEGIN.
    let repeatable = db
        .engine_builder()
        .isolation_level(IsolationLevel::RepeatableRead)
        .build()
        .unwrap();
    let level: String = repeatable
        .transaction(async |c| c.query_one(&sql("SHOW transaction_isolation")).await)
        .await
        .unwrap();
    assert_eq!(level, "repeatable read");
}

// covers: ENG-13, ERR-04
#[tokio::test]
async fn read_only_transactions_refuse_writes_with_a_typed_error() {
    let db = TestDb::new().await.unwrap();
    db.engine()
        .execute(&sql("CREATE TABLE t (id int)"))
        .await
        .unwrap();
    let mut c = db.engine().connect().await.unwrap();
    c.begin_with(TxOptions::new().read_only(true))
        .await
        .unwrap();
    let err = c
        .execute(&sql("INSERT INTO t VALUES (1)"))
        .await
        .unwrap_err();
    assert!(err.is_read_only_transaction(), "{err:?}");
    // The transaction is aborted now: further statements are refused without a round trip.
    let again = c.execute(&sql("SELECT 1")).await.unwrap_err();
    assert!(again.is_transaction_aborted());
    c.rollback().await.unwrap();
    c.execute(&sql("SELECT 1")).await.unwrap();
}

// covers: EVT-03, ENG-16
#[tokio::test]
async fn the_observer_sees_every_statement_with_its_shape() {
    let db = TestDb::new().await.unwrap();
    let rec = db.recorder();
    let mark = rec.len();
    let engine = db.engine();
    engine
        .execute(&sql("CREATE TABLE t (id int, name text)"))
        .await
        .unwrap();
    engine
        .transaction(async |c| {
            c.execute(
                &sql("INSERT INTO t VALUES ($1, $2), ($3, $4)")
                    .bind(1)
                    .bind("a")
                    .bind(2)
                    .bind("b"),
            )
            .await
        })
        .await
        .unwrap();
    let rows = engine.query(&sql("SELECT * FROM t")).await.unwrap();
    assert_eq!(rows.len(), 2);
    let _ = engine
        .execute(&sql("SELECT nope FROM t"))
        .await
        .unwrap_err();

    let seen = rec.since(mark);
    let kinds: Vec<StatementKind> = seen.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            StatementKind::Query,
            // Raw DDL is not a plain statement: its connection is rolled back on return.
            StatementKind::Rollback,
            StatementKind::Begin,
            StatementKind::Query,
            StatementKind::Commit,
            StatementKind::Query,
            StatementKind::Query
        ]
    );
    assert_eq!(seen[3].params, 4);
    assert_eq!(seen[3].rows, 2, "rows affected by the INSERT");
    assert_eq!(seen[5].rows, 2, "rows returned by the SELECT");
    assert!(
        seen[6].error.as_deref().unwrap().contains("42703"),
        "{:?}",
        seen[6].error
    );
    // The statement-count assertion the other suites build on.
    aludel::assert_statements!(rec, 2, {
        engine.query(&sql("SELECT 1")).await.unwrap();
        engine.query(&sql("SELECT 2")).await.unwrap();
    });
}

// covers: ENG-15
#[tokio::test]
async fn cached_mode_prepares_a_statement_once_per_connection() {
    let db = TestDb::new().await.unwrap();
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut c = engine.connect().await.unwrap();
    for i in 0..1000 {
        let v: i32 = c
            .query_one(&sql("SELECT $1::int4 + 0 AS aludel_probe").bind(i))
            .await
            .unwrap();
        assert_eq!(v, i);
    }
    let n: i64 = c
        .query_one(&sql(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int4 + 0 AS aludel_probe'",
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
}

// covers: ENG-15
#[tokio::test]
async fn unnamed_mode_leaves_no_named_statement_behind() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .max_size(1)
        .statement_mode(StatementMode::Unnamed)
        .build()
        .unwrap();
    let mut c = engine.connect().await.unwrap();
    for i in 0..50 {
        let v: i64 = c
            .query_one(&sql("SELECT $1::int8 * 2").bind(i as i64))
            .await
            .unwrap();
        assert_eq!(v, i as i64 * 2);
    }
    c.execute(&sql("CREATE TEMP TABLE t (id int, name text)"))
        .await
        .unwrap();
    c.execute_many(
        &sql("INSERT INTO t VALUES ($1, $2)"),
        (0..10).map(|i| {
            vec![
                aludel::types::Bind::new(i),
                aludel::types::Bind::new(format!("n{i}")),
            ]
        }),
    )
    .await
    .unwrap();
    let n: i64 = c
        .query_one(&sql("SELECT count(*) FROM pg_prepared_statements"))
        .await
        .unwrap();
    assert_eq!(
        n, 0,
        "unnamed mode must not create named prepared statements"
    );
    let count: i64 = c.query_one(&sql("SELECT count(*) FROM t")).await.unwrap();
    assert_eq!(count, 10);
}

// covers: ENG-11
#[test]
fn an_engine_outlives_the_runtime_that_first_used_it() {
    let url = aludel::testing::database_url();
    let engine = Engine::builder(&url).max_size(1).build().unwrap();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pid_a =
        first.block_on(async { engine.connect().await.unwrap().backend_pid().await.unwrap() });
    drop(first); // the pooled connection's driver task dies with this runtime

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pid_b = second.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut c = engine.connect().await.unwrap();
            c.backend_pid().await.unwrap()
        })
        .await
        .expect("a dead pooled connection must not hang the next runtime")
    });
    assert_ne!(pid_a, pid_b, "the dead connection was replaced");
}

// covers: ENG-16
#[tokio::test]
async fn observers_see_the_isolation_probe_of_lazy_begin() {
    let db = TestDb::new().await.unwrap();
    // A fresh engine has not asked the server for its default isolation level yet.
    let engine = db.engine_builder().build().unwrap();
    let mark = db.recorder().len();
    let mut s = engine.session();
    let rows = s.query(&sql("SELECT 1")).await.unwrap();
    assert_eq!(rows.len(), 1);
    s.rollback().await.unwrap();
    let seen: Vec<_> = db.recorder().since(mark);
    assert_eq!(
        seen.iter()
            .filter(|q| q.sql == "SHOW default_transaction_isolation"
                && q.kind == StatementKind::Internal)
            .count(),
        1,
        "{seen:?}"
    );
}

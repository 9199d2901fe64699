use std::time::Duration;

use aludel::testing::TestDb;
use aludel::tokio_postgres::error::SqlState;
use aludel::{engine::IsolationLevel, engine::StatementMode, engine::TxOptions, sql};

async fn schema(db: &TestDb) {
    let mut c = db.engine().connect().await.unwrap();
    c.batch_execute(
        "CREATE TABLE parent (id int PRIMARY KEY, email text NOT NULL CONSTRAINT parent_email_key UNIQUE);
         CREATE TABLE child (id int PRIMARY KEY,
                             parent_id int CONSTRAINT child_parent_fk REFERENCES parent (id),
                             qty int CONSTRAINT child_qty_positive CHECK (qty > 0));
         INSERT INTO parent VALUES (1, 'secret-value@example.com');",
    )
    .await
    .unwrap();
}

// covers: ERR-04
#[tokio::test]
async fn constraint_violations_are_typed_with_their_names() {
    let db = TestDb::new().await.unwrap();
    schema(&db).await;
    let e = db.engine();

    let unique = e
        .execute(&sql("INSERT INTO parent VALUES (2, $1)").bind("secret-value@example.com"))
        .await
        .unwrap_err();
    assert!(unique.is_unique_violation() && unique.is_integrity_error());
    assert_eq!(unique.constraint(), Some("parent_email_key"));
    assert_eq!(unique.table(), Some("parent"));
    assert_eq!(unique.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert!(
        unique
            .detail()
            .unwrap()
            .contains("secret-value@example.com"),
        "detail stays reachable"
    );
    assert!(unique.as_db_error().is_some());
    assert_eq!(
        unique.statement(),
        Some("INSERT INTO parent VALUES (2, $1)")
    );

    let fk = e
        .execute(&sql("INSERT INTO child VALUES (1, 99, 1)"))
        .await
        .unwrap_err();
    assert!(fk.is_foreign_key_violation());
    assert_eq!(fk.constraint(), Some("child_parent_fk"));
    assert_eq!(fk.table(), Some("child"));

    let nn = e
        .execute(&sql("INSERT INTO parent (id) VALUES (3)"))
        .await
        .unwrap_err();
    assert!(nn.is_not_null_violation());
    assert_eq!(nn.column(), Some("email"));
    assert_eq!(nn.table(), Some("parent"));

    let check = e
        .execute(&sql("INSERT INTO child VALUES (1, 1, 0)"))
        .await
        .unwrap_err();
    assert!(check.is_check_violation());
    assert_eq!(check.constraint(), Some("child_qty_positive"));
    assert!(!check.is_unique_violation() && !check.is_retryable());
}

// covers: ERR-04, ENG-16
#[tokio::test]
async fn error_text_never_shows_bound_values_unless_asked() {
    let db = TestDb::new().await.unwrap();
    schema(&db).await;
    let err = db
        .engine()
        .execute(&sql("INSERT INTO parent VALUES (2, $1)").bind("secret-value@example.com"))
        .await
        .unwrap_err();
    let shown = format!(
        "{err} | {err:?} | {:?}",
        std::error::Error::source(&err).map(|s| s.to_string())
    );
    assert!(!shown.contains("secret-value"), "{shown}");
    assert!(
        shown.contains("23505") && shown.contains("parent_email_key"),
        "{shown}"
    );

    let verbose = db
        .engine_builder()
        .show_values_in_errors(true)
        .build()
        .unwrap();
    let err = verbose
        .execute(&sql("INSERT INTO parent VALUES (2, $1)").bind("secret-value@example.com"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("secret-value"), "{err}");
}

// covers: ERR-04, ENG-12
#[tokio::test]
async fn serialization_failures_are_retryable() {
    let db = TestDb::new().await.unwrap();
    db.engine()
        .execute(&sql("CREATE TABLE acct (id int PRIMARY KEY, n int)"))
        .await
        .unwrap();
    db.engine()
        .execute(&sql("INSERT INTO acct VALUES (1, 0), (2, 0)"))
        .await
        .unwrap();
    let serializable = TxOptions::new().isolation(IsolationLevel::Serializable);
    let mut a = db.engine().connect().await.unwrap();
    let mut b = db.engine().connect().await.unwrap();
    a.begin_with(serializable).await.unwrap();
    b.begin_with(serializable).await.unwrap();
    let _: i64 = a
        .query_one(&sql("SELECT sum(n)::int8 FROM acct"))
        .await
        .unwrap();
    let _: i64 = b
        .query_one(&sql("SELECT sum(n)::int8 FROM acct"))
        .await
        .unwrap();
    a.execute(&sql("UPDATE acct SET n = n + 1 WHERE id = 1"))
        .await
        .unwrap();
    b.execute(&sql("UPDATE acct SET n = n + 1 WHERE id = 2"))
        .await
        .unwrap();
    a.commit().await.unwrap();
    let err = match b.commit().await {
        Err(e) => e,
        Ok(()) => panic!("write skew was allowed"),
    };
    assert!(
        err.is_serialization_failure() && err.is_retryable(),
        "{err:?}"
    );
}

// covers: ERR-04
#[tokio::test]
async fn deadlocks_are_detected_and_retryable() {
    let db = TestDb::new().await.unwrap();
    db.engine()
        .execute(&sql("CREATE TABLE acct (id int PRIMARY KEY, n int)"))
        .await
        .unwrap();
    db.engine()
        .execute(&sql("INSERT INTO acct VALUES (1, 0), (2, 0)"))
        .await
        .unwrap();
    let mut a = db.engine().connect().await.unwrap();
    let mut b = db.engine().connect().await.unwrap();
    a.begin().await.unwrap();
    b.begin().await.unwrap();
    a.execute(&sql("UPDATE acct SET n = 1 WHERE id = 1"))
        .await
        .unwrap();
    b.execute(&sql("UPDATE acct SET n = 1 WHERE id = 2"))
        .await
        .unwrap();
    let first = tokio::spawn(async move {
        let r = a.execute(&sql("UPDATE acct SET n = 2 WHERE id = 2")).await;
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rb = b.execute(&sql("UPDATE acct SET n = 2 WHERE id = 1")).await;
    if rb.is_ok() {
        b.rollback().await.unwrap();
    }
    let (_a, ra) = first.await.unwrap();
    let err = ra
        .err()
        .or(rb.err())
        .expect("one side must be chosen as the deadlock victim");
    assert!(err.is_deadlock() && err.is_retryable(), "{err:?}");
}

// covers: ERR-11
#[tokio::test]
async fn statement_timeouts_and_cancels_are_told_apart() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .options(&format!(
            "-c search_path={} -c statement_timeout=100",
            db.schema()
        ))
        .build()
        .unwrap();
    let err = engine
        .execute(&sql("SELECT pg_sleep(5)"))
        .await
        .unwrap_err();
    assert!(
        err.is_statement_timeout() && err.is_query_canceled(),
        "{err:?}"
    );

    let mut c = db.engine().connect().await.unwrap();
    let pid = c.backend_pid().await.unwrap();
    let canceller = tokio::spawn({
        let admin = db.admin().await.unwrap();
        async move {
            let mut admin = admin;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _: bool = admin
                .query_one(&sql("SELECT pg_cancel_backend($1)").bind(pid))
                .await
                .unwrap();
        }
    });
    let err = c.execute(&sql("SELECT pg_sleep(5)")).await.unwrap_err();
    canceller.await.unwrap();
    assert!(
        err.is_query_canceled() && !err.is_statement_timeout(),
        "{err:?}"
    );
    assert!(!err.is_connection_lost());
    c.execute(&sql("SELECT 1")).await.unwrap();
}

// covers: ERR-03, QRY-10
#[tokio::test]
async fn not_found_multiple_rows_lock_not_available_and_decode_errors() {
    let db = TestDb::new().await.unwrap();
    let e = db.engine();
    e.execute(&sql("CREATE TABLE t (id int PRIMARY KEY, name text)"))
        .await
        .unwrap();
    e.execute(&sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')"))
        .await
        .unwrap();

    let none = e
        .query_one::<i32>(&sql("SELECT id FROM t WHERE id = 99"))
        .await
        .unwrap_err();
    assert!(none.is_not_found());
    let many = e
        .query_opt::<i32>(&sql("SELECT id FROM t"))
        .await
        .unwrap_err();
    assert!(many.is_multiple_rows());
    assert_eq!(
        e.query_opt::<i32>(&sql("SELECT id FROM t WHERE id = 99"))
            .await
            .unwrap(),
        None
    );

    let decode = e
        .query_one::<i32>(&sql("SELECT name FROM t WHERE id = 1"))
        .await
        .unwrap_err();
    assert!(decode.is_decode());
    assert_eq!(decode.column(), Some("name"));
    assert!(decode.to_string().contains("`name`"), "{decode}");

    let mut a = e.connect().await.unwrap();
    a.begin().await.unwrap();
    a.execute(&sql("SELECT * FROM t WHERE id = 1 FOR UPDATE"))
        .await
        .unwrap();
    let mut b = e.connect().await.unwrap();
    b.begin().await.unwrap();
    let err = b
        .execute(&sql("SELECT * FROM t WHERE id = 1 FOR UPDATE NOWAIT"))
        .await
        .unwrap_err();
    assert!(err.is_lock_not_available(), "{err:?}");
}

// covers: ERR-10
#[tokio::test]
async fn misuse_of_transactions_is_an_invalid_request() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    assert!(c.commit().await.unwrap_err().is_invalid_request());
    assert!(c.savepoint().await.unwrap_err().is_invalid_request());
    c.begin().await.unwrap();
    assert!(c.begin().await.unwrap_err().is_invalid_request());
    c.rollback().await.unwrap();
    let bad = aludel::Engine::new("not a url at all ===").unwrap_err();
    assert!(bad.is_config(), "{bad:?}");
}

// covers: SES-10, TX-02
#[tokio::test]
async fn a_server_error_after_a_mapping_error_still_aborts_the_commit() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    c.execute(&sql("CREATE TABLE t (id int)")).await.unwrap();
    c.begin().await.unwrap();
    c.execute(&sql("INSERT INTO t VALUES (1)")).await.unwrap();
    // Row 1 fails to map (text into i32); row 5 divides by zero on the server.
    let err = c
        .query_as::<(i32,)>(&sql("SELECT CASE WHEN x < 5 THEN 'a' ELSE (1 / (x - 5))::text END FROM generate_series(1, 10) x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&SqlState::DIVISION_BY_ZERO),
        "the server's error wins: {err:?}"
    );
    let commit = c.commit().await.unwrap_err();
    assert!(commit.is_transaction_aborted(), "{commit:?}");
    let n: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM t"))
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing of the aborted transaction was committed");
}

// covers: ENG-08
#[tokio::test]
async fn transaction_control_must_use_the_api_and_data_errors_hide_their_input() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    for stmt in [
        "BEGIN",
        "begin isolation level serializable",
        "COMMIT",
        "SAVEPOINT x",
        "start transaction",
    ] {
        let err = c
            .execute(&aludel::query::Raw::audited(aludel::query::AssertSqlSafe(
                stmt,
            )))
            .await
            .unwrap_err();
        assert!(err.is_invalid_request(), "{stmt}: {err:?}");
    }
    assert!(!c.in_transaction());
    let err = c
        .query(&sql("SELECT $1::text::int").bind("secret-input"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));
    assert!(!format!("{err} {err:?}").contains("secret-input"), "{err}");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("secret-input"),
        "the record keeps it"
    );
}

// covers: ERR-04
#[tokio::test]
async fn data_errors_and_program_limits_have_predicates() {
    let db = TestDb::new().await.unwrap();
    let e = db.engine();
    let mut c = e.connect().await.unwrap();
    c.batch_execute("CREATE TABLE short_text (v varchar(3)); CREATE TABLE wide (v text); CREATE INDEX wide_v ON wide (v);")
        .await
        .unwrap();
    drop(c);
    let too_long = e
        .execute(&sql("INSERT INTO short_text VALUES ($1)").bind("abcd"))
        .await
        .unwrap_err();
    assert!(too_long.is_data_error(), "{too_long}");
    assert_eq!(
        too_long.code(),
        Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION)
    );
    assert!(!too_long.is_program_limit_exceeded() && !too_long.is_integrity_error());
    let bad_int = e
        .execute(&sql("SELECT $1::text::int").bind("x1"))
        .await
        .unwrap_err();
    assert!(bad_int.is_data_error(), "{bad_int}");
    // A btree entry larger than a third of a page: class 54.
    // Pseudo-random text, so compression cannot shrink it under the limit.
    let mut x: u32 = 12345;
    let huge: String = (0..20_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'!' + ((x >> 16) % 90) as u8)
        })
        .collect();
    let index_row = e
        .execute(&sql("INSERT INTO wide VALUES ($1)").bind(huge))
        .await
        .unwrap_err();
    assert!(index_row.is_program_limit_exceeded(), "{index_row}");
    assert!(!index_row.is_data_error());
}

/// A value that says it is sent as int4 but can only write itself as text: encoding fails
/// in the driver, before anything is sent.
#[derive(Debug)]
struct TextClaimingInt(String);

impl aludel::tokio_postgres::types::ToSql for TextClaimingInt {
    fn to_sql(
        &self,
        ty: &aludel::tokio_postgres::types::Type,
        out: &mut aludel::tokio_postgres::types::private::BytesMut,
    ) -> Result<aludel::tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        self.0.to_sql(ty, out)
    }
    fn accepts(ty: &aludel::tokio_postgres::types::Type) -> bool {
        *ty == aludel::tokio_postgres::types::Type::TEXT
    }
    aludel::tokio_postgres::types::to_sql_checked!();
}

impl aludel::types::SqlType for TextClaimingInt {
    fn sql_type() -> aludel::tokio_postgres::types::Type {
        aludel::tokio_postgres::types::Type::INT4
    }
}

// covers: ERR-04, ERR-11, ENG-09
#[tokio::test]
async fn statements_that_cannot_be_encoded_keep_the_connection() {
    let db = TestDb::new().await.unwrap();
    for mode in [StatementMode::Cached, StatementMode::Unnamed] {
        let engine = db
            .engine_builder()
            .max_size(1)
            .statement_mode(mode)
            .build()
            .unwrap();
        engine
            .execute(&sql("CREATE TABLE IF NOT EXISTS enc (id int)"))
            .await
            .unwrap();
        engine.execute(&sql("DELETE FROM enc")).await.unwrap();
        let pid = engine.connect().await.unwrap().backend_pid().await.unwrap();

        let mut too_many = sql("SELECT 1");
        for i in 0..65_536 {
            too_many = too_many.bind(i);
        }
        let mut conn = engine.connect().await.unwrap();
        conn.begin().await.unwrap();
        conn.execute(&sql("INSERT INTO enc VALUES (1)"))
            .await
            .unwrap();
        let failures = [
            conn.execute(&too_many).await.unwrap_err(),
            conn.execute(&sql("SELECT 1 /* \0 */")).await.unwrap_err(),
            conn.execute(&sql("SELECT $1").bind(TextClaimingInt("x".into())))
                .await
                .unwrap_err(),
        ];
        for e in &failures {
            assert!(e.is_encode(), "{mode:?}: {e:?}");
            assert!(!e.is_connection_lost(), "{mode:?}: {e:?}");
            assert!(!e.is_transaction_aborted() && e.code().is_none());
        }
        assert_eq!(aludel::web::status_for(&failures[0]), 413);
        assert!(
            failures[0].to_string().contains("65,535"),
            "{}",
            failures[0]
        );
        // Nothing reached the server: the transaction goes on and commits both rows.
        conn.execute(&sql("INSERT INTO enc VALUES (2)"))
            .await
            .unwrap();
        conn.commit().await.unwrap();
        assert_eq!(conn.backend_pid().await.unwrap(), pid);
        drop(conn);

        let mut other = db.admin().await.unwrap();
        let n: i64 = other
            .query_one(&sql("SELECT count(*) FROM enc"))
            .await
            .unwrap();
        assert_eq!(n, 2, "{mode:?}");
        // The one pooled connection was kept, not replaced.
        let mut again = engine.connect().await.unwrap();
        assert_eq!(again.backend_pid().await.unwrap(), pid, "{mode:?}");
        assert_eq!(engine.pool_status().size, 1);
    }
}

// covers: ERR-11, ENG-09
#[tokio::test]
async fn a_connect_timeout_is_a_connect_error() {
    // A listener that accepts and never answers the startup message.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            socks.push(s);
        }
    });
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    for pooled in [true, false] {
        let mut b = aludel::Engine::builder(&url).connect_timeout(Some(Duration::from_millis(200)));
        if !pooled {
            b = b.no_pool();
        }
        let err = b.build().unwrap().connect().await.unwrap_err();
        assert!(err.is_connect() && err.is_connect_timeout(), "{err:?}");
        assert!(!err.is_connection_lost(), "{err:?}");
    }
    held.abort();
}

/// An unreachable server, a connection lost mid-request and a write sent to a read-only
/// server are the service's trouble, not the request's: 503, so a load balancer or client
/// retries, never a bare 500. A serialization failure or deadlock is a conflict the request
/// may retry: 409.
// covers: ERR-04, ERR-11
#[tokio::test]
async fn unavailable_servers_answer_503_and_retryable_conflicts_409() {
    let db = TestDb::new().await.unwrap();
    db.engine()
        .execute(&sql("CREATE TABLE t (id int)"))
        .await
        .unwrap();
    // Nothing listens on a port just freed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = aludel::Engine::builder(&format!("postgres://postgres@127.0.0.1:{port}/x"))
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");

    let mut c = db.engine().connect().await.unwrap();
    let pid: i32 = c.query_one(&sql("SELECT pg_backend_pid()")).await.unwrap();
    db.engine()
        .execute(&sql("SELECT pg_terminate_backend($1)").bind(pid))
        .await
        .unwrap();
    let mut lost = None;
    for _ in 0..50 {
        match c.execute(&sql("SELECT 1")).await {
            Err(e) => {
                lost = Some(e);
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let lost = lost.expect("the terminated backend kept answering");
    assert!(lost.is_connection_lost(), "{lost:?}");
    drop(c);

    let mut c = db.engine().connect().await.unwrap();
    c.begin_with(TxOptions::new().read_only(true))
        .await
        .unwrap();
    let read_only = c
        .execute(&sql("INSERT INTO t VALUES (1)"))
        .await
        .unwrap_err();
    c.rollback().await.unwrap();
    assert!(read_only.is_read_only_transaction(), "{read_only:?}");

    let mut a = db.engine().connect().await.unwrap();
    let mut b = db.engine().connect().await.unwrap();
    a.execute(&sql("INSERT INTO t VALUES (1), (2)"))
        .await
        .unwrap();
    a.begin().await.unwrap();
    b.begin().await.unwrap();
    a.execute(&sql("UPDATE t SET id = id WHERE id = 1"))
        .await
        .unwrap();
    b.execute(&sql("UPDATE t SET id = id WHERE id = 2"))
        .await
        .unwrap();
    let blocked = tokio::spawn(async move {
        let r = a.execute(&sql("UPDATE t SET id = id WHERE id = 2")).await;
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r_b = b.execute(&sql("UPDATE t SET id = id WHERE id = 1")).await;
    let (mut a, r_a) = blocked.await.unwrap();
    let deadlock = match (r_a, r_b) {
        (Err(e), _) | (_, Err(e)) => e,
        _ => panic!("no deadlock"),
    };
    a.rollback().await.unwrap();
    b.rollback().await.unwrap();
    assert!(
        deadlock.is_deadlock() && deadlock.is_retryable(),
        "{deadlock:?}"
    );

    for (err, status) in [
        (refused, 503),
        (lost, 503),
        (read_only, 503),
        (deadlock, 409),
    ] {
        assert_eq!(aludel::web::status_for(&err), status, "{err:?}");
    }
}

//! `Cached` mode when the server loses the connection's named statements (a transaction-mode
//! pooler switching backends, `DEALLOCATE ALL`, `DISCARD ALL`): it fails at most once.

use aludel::testing::TestDb;
use aludel::tokio_postgres::error::SqlState;
use aludel::{StatementMode, sql};

// covers: ENG-09, ERR-11
#[tokio::test]
async fn statements_the_server_forgot_are_prepared_again() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .max_size(1)
        .statement_mode(StatementMode::Cached)
        .build()
        .unwrap();
    let q = || sql("SELECT $1::int4 + 1").bind(41_i32);
    let mut c = engine.connect().await.unwrap();
    let pid = c.backend_pid().await.unwrap();
    assert_eq!(c.query_one::<i32>(&q()).await.unwrap(), 42);

    // Outside a transaction: the failed Bind aborted nothing, so it is re-prepared and run
    // once more, invisibly.
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    assert_eq!(c.query_one::<i32>(&q()).await.unwrap(), 42);
    assert_eq!(c.query_one::<i32>(&q()).await.unwrap(), 42);

    // Inside a transaction the error aborted it: reported, not retried; the cache is dropped,
    // so the next transaction works.
    c.begin().await.unwrap();
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    let err = c.query_one::<i32>(&q()).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&SqlState::INVALID_SQL_STATEMENT_NAME),
        "{err}"
    );
    assert!(!err.is_connection_lost());
    c.rollback().await.unwrap();
    assert_eq!(c.query_one::<i32>(&q()).await.unwrap(), 42);
    assert_eq!(
        c.backend_pid().await.unwrap(),
        pid,
        "the connection was kept"
    );
    drop(c);
    assert_eq!(engine.pool_status().size, 1);
}

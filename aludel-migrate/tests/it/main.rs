//! aludel-migrate's integration tests: real PostgreSQL, a schema per test (`TestDb`).
//!
//! Each test names the parity IDs it covers (`// covers: MIG-01`) from
//! `shared/spec/sqlalchemy-parity.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod cases;
mod cli;
mod codegen;
mod codegen_conduit;
mod conduit;
mod reflect;
mod roundtrip;
mod runner;

use aludel::testing::TestDb;
use aludel::{Connection, query::AssertSqlSafe, query::Raw};

/// Runs SQL text statement by statement, as the runner does, in one transaction.
pub async fn apply(conn: &mut Connection, sql: &str) {
    conn.begin().await.unwrap();
    for s in aludel_migrate::split_statements(sql) {
        if let Err(e) = conn.execute(&Raw::audited(AssertSqlSafe(s.as_str()))).await {
            panic!("{s}\nfailed: {e}");
        }
    }
    conn.commit().await.unwrap();
}

/// A test schema with `ddl` run in it.
pub async fn db_with(ddl: &'static str) -> TestDb {
    let db = TestDb::new().await.unwrap();
    if !ddl.trim().is_empty() {
        let mut conn = db.engine().connect().await.unwrap();
        conn.batch_execute(ddl).await.unwrap();
    }
    db
}

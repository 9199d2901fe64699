//! `create_all` / `drop_all`: run the schema's DDL statements (built in `sql/ddl.rs`) on a
//! connection, in one transaction when none is open.

use super::Connection;
use crate::error::Result;
use crate::schema::{CreateOptions, TableDef};
use crate::sql::Raw;

/// Creates the tables (with keys, constraints and indexes) in foreign-key order: a table is
/// created after the tables it references. Runs in one transaction when none is open.
///
/// ```no_run
/// # async fn demo(conn: &mut aludel::Connection) -> aludel::Result<()> {
/// # #[derive(aludel::Model)] struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i32> }
/// aludel::create_all(conn, &[User::TABLE], Default::default()).await?;
/// # Ok(()) }
/// ```
pub async fn create_all(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    opts: CreateOptions,
) -> Result<()> {
    run(conn, crate::sql::create_statements(tables, opts)?).await
}

/// Drops the tables, dependents first.
pub async fn drop_all(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    opts: CreateOptions,
) -> Result<()> {
    run(conn, crate::sql::drop_statements(tables, opts)?).await
}

async fn run(conn: &mut Connection, statements: Vec<Raw>) -> Result<()> {
    let own_tx = !conn.in_transaction();
    if own_tx {
        conn.begin().await?;
    }
    for stmt in &statements {
        conn.execute(stmt).await?;
    }
    if own_tx {
        conn.commit().await?;
    }
    Ok(())
}

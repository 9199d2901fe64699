//! The models' side of a comparison: the tables `create_all` would make, made for real in a
//! scratch schema inside a transaction that is rolled back, then reflected. Both sides of the
//! diff are then spelled by the server itself (`'x'::text`, `CHECK ((n > 0))`,
//! `character varying(80)`), so comparing them is comparing text.

use std::sync::atomic::{AtomicU64, Ordering};

use aludel::{
    Connection, create_all, query::AssertSqlSafe, query::Raw, query::quote_ident,
    schema::CreateOptions, schema::TableDef, sql,
};

use crate::error::Result;
use crate::reflect::reflect;
use crate::schema::Schema;

static SCRATCH: AtomicU64 = AtomicU64::new(0);

/// The schema the models describe, as the server would reflect it after `create_all`.
///
/// Creates the tables in a scratch schema (first on the `search_path`, so the models' enum
/// types resolve to the scratch copies) inside a transaction, reflects it, and rolls back:
/// nothing remains. Needs the `CREATE` privilege on the database. The connection must not be
/// in a transaction.
pub async fn target_schema(conn: &mut Connection, tables: &[&'static TableDef]) -> Result<Schema> {
    target_schema_with(conn, tables, &[]).await
}

/// [`target_schema`] with `ddl` run after `create_all` in the scratch schema: what the derive
/// cannot declare (an index on `lower(email)`, …). Unqualified names in it resolve to the
/// scratch copies of the tables.
pub(crate) async fn target_schema_with(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    ddl: &[&'static str],
) -> Result<Schema> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let scratch = format!(
        "aludel_scratch_{}_{}_{}",
        std::process::id(),
        SCRATCH.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000
    );
    conn.begin().await?;
    let result = build_and_reflect(conn, tables, ddl, &scratch).await;
    conn.rollback().await?;
    result
}

async fn build_and_reflect(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    ddl: &[&'static str],
    scratch: &str,
) -> Result<Schema> {
    // The name is ours (letters, digits, underscores) and quoted.
    conn.execute(&Raw::audited(AssertSqlSafe(format!(
        "CREATE SCHEMA {}",
        quote_ident(scratch)
    ))))
    .await?;
    conn.execute(
        &sql(
            "SELECT set_config('search_path', $1 || ', ' || current_setting('search_path'), true)",
        )
        .bind(quote_ident(scratch)),
    )
    .await?;
    create_all(
        conn,
        tables,
        CreateOptions {
            if_not_exists: false,
        },
    )
    .await?;
    for script in ddl {
        conn.batch_execute(script).await?;
    }
    reflect(conn, Some(scratch)).await
}

//! Autogenerate and check: the models compared with the live schema.

use aludel::{Connection, schema::TableDef};

use crate::diff::{Plan, diff};
use crate::error::Result;
use crate::reflect::reflect;
use crate::schema::Schema;
use crate::target::target_schema_with;

/// The live schema, the models' schema, and the plans between them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Comparison {
    /// The connection's current schema as reflected (ignored tables left out).
    pub live: Schema,
    /// What the models describe ([`target_schema`](crate::target_schema)).
    pub target: Schema,
    /// Steps from `live` to `target`: a migration's `up`.
    pub up: Plan,
    /// Steps back: its `down`.
    pub down: Plan,
}

impl Comparison {
    /// True when the database already is what the models describe.
    pub fn is_clean(&self) -> bool {
        self.up.is_empty()
    }
}

/// Compares the models with the connection's current schema, leaving out the tables
/// `ignore` names (the version table, tables the models do not own).
///
/// ```no_run
/// # async fn demo(conn: &mut aludel::Connection, tables: &[&'static aludel::schema::TableDef]) -> aludel_migrate::Result<()> {
/// let cmp = aludel_migrate::compare(conn, tables, &["aludel_migrations"]).await?;
/// let file = aludel_migrate::render_migration("0002_add_bio", Some("0001_init"), "add bio", &cmp.up, &cmp.down);
/// # let _ = file; Ok(()) }
/// ```
pub async fn compare(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    ignore: &[&str],
) -> Result<Comparison> {
    compare_with(conn, tables, &[], ignore).await
}

/// [`compare`] with `ddl` run after the models' `create_all` on the models' side: what the
/// derive cannot declare, such as an expression index (see [`Cli::with_ddl`](crate::Cli::with_ddl)).
///
/// ```no_run
/// # async fn demo(conn: &mut aludel::Connection, tables: &[&'static aludel::schema::TableDef]) -> aludel_migrate::Result<()> {
/// const LOWER: &str = "CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))";
/// let cmp = aludel_migrate::compare_with(conn, tables, &[LOWER], &["aludel_migrations"]).await?;
/// assert!(cmp.is_clean());
/// # Ok(()) }
/// ```
pub async fn compare_with(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    ddl: &[&'static str],
    ignore: &[&str],
) -> Result<Comparison> {
    let live = reflect(conn, None).await?.without_tables(ignore);
    let target = target_schema_with(conn, tables, ddl)
        .await?
        .without_tables(ignore);
    let up = diff(&live, &target);
    let down = diff(&target, &live);
    Ok(Comparison {
        live,
        target,
        up,
        down,
    })
}

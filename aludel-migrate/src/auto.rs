//! Autogenerate and check: the models compared with the live schema.

use aludel::{Connection, TableDef};

use crate::diff::{Plan, diff};
use crate::error::Result;
use crate::reflect::reflect;
use crate::schema::Schema;
use crate::target::target_schema;

/// The live schema, the models' schema, and the plans between them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Comparison {
    /// The connection's current schema as reflected (ignored tables left out).
    pub live: Schema,
    /// What the models describe ([`target_schema`]).
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
/// # async fn demo(conn: &mut aludel::Connection, tables: &[&'static aludel::TableDef]) -> aludel_migrate::Result<()> {
/// let cmp = aludel_migrate::compare(conn, tables, &["aludel_migrations"]).await?;
/// let file = aludel_migrate::render_migration("0002_add_bio", Some("0001_init"), "add bio", &cmp.up, &cmp.down);
/// # let _ = file; Ok(()) }
/// ```
pub async fn compare(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    ignore: &[&str],
) -> Result<Comparison> {
    let live = reflect(conn, None).await?.without_tables(ignore);
    let target = target_schema(conn, tables).await?.without_tables(ignore);
    let up = diff(&live, &target);
    let down = diff(&target, &live);
    Ok(Comparison {
        live,
        target,
        up,
        down,
    })
}

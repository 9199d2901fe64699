//! `create_all` / `drop_all`: DDL from model metadata, in foreign-key order.

use tokio_postgres::types::Kind;

use super::{ColumnDef, TableDef, same_table};
use crate::Connection;
use crate::error::{Error, Result};
use crate::sql::{AssertSqlSafe, Raw, quote_ident};

/// Options for [`create_all`] and [`drop_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// `IF NOT EXISTS` / `IF EXISTS`, so running twice is harmless (default true).
    pub if_not_exists: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            if_not_exists: true,
        }
    }
}

/// Creates the tables (with keys, constraints and indexes) in foreign-key order: a table is
/// created after the tables it references. Runs in one transaction when none is open.
///
/// ```no_run
/// # async fn demo(conn: &mut aludel::Connection) -> aludel::Result<()> {
/// # #[derive(aludel::Model)] struct User { #[aludel(primary_key, identity)] id: i32 }
/// aludel::create_all(conn, &[User::TABLE], Default::default()).await?;
/// # Ok(()) }
/// ```
pub async fn create_all(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    opts: CreateOptions,
) -> Result<()> {
    let ordered = dependency_order(tables)?;
    let mut script = String::new();
    for (name, labels) in enum_types(&ordered) {
        let list: Vec<String> = labels
            .iter()
            .map(|l| format!("'{}'", l.replace('\'', "''")))
            .collect();
        let create = format!(
            "CREATE TYPE {} AS ENUM ({})",
            quote_ident(&name),
            list.join(", ")
        );
        if opts.if_not_exists {
            script.push_str(&format!(
                "DO $aludel$ BEGIN {create}; EXCEPTION WHEN duplicate_object THEN NULL; END $aludel$;\n"
            ));
        } else {
            script.push_str(&create);
            script.push_str(";\n");
        }
    }
    for t in &ordered {
        create_table_sql(t, opts, &mut script);
    }
    run_script(conn, script).await
}

/// The enum types the tables' columns use, once each, in first-use order.
fn enum_types(tables: &[&'static TableDef]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for c in tables.iter().flat_map(|t| t.columns) {
        let ty = (c.sql_type)();
        if let Kind::Enum(labels) = ty.kind() {
            if !out.iter().any(|(n, _)| n == ty.name()) {
                out.push((ty.name().to_owned(), labels.clone()));
            }
        }
    }
    out
}

/// Drops the tables, dependents first.
pub async fn drop_all(
    conn: &mut Connection,
    tables: &[&'static TableDef],
    opts: CreateOptions,
) -> Result<()> {
    let ordered = dependency_order(tables)?;
    let mut script = String::new();
    for t in ordered.iter().rev() {
        script.push_str("DROP TABLE ");
        if opts.if_not_exists {
            script.push_str("IF EXISTS ");
        }
        script.push_str(&quote_ident(t.name));
        script.push_str(";\n");
    }
    for (name, _) in enum_types(&ordered) {
        script.push_str("DROP TYPE ");
        if opts.if_not_exists {
            script.push_str("IF EXISTS ");
        }
        script.push_str(&quote_ident(&name));
        script.push_str(";\n");
    }
    run_script(conn, script).await
}

async fn run_script(conn: &mut Connection, script: String) -> Result<()> {
    let own_tx = !conn.in_transaction();
    if own_tx {
        conn.begin().await?;
    }
    for stmt in script.split(";\n").filter(|s| !s.trim().is_empty()) {
        // Identifiers come from the derive and are quoted; types and defaults are literals
        // written in the model's source.
        conn.execute(&Raw::audited(AssertSqlSafe(stmt))).await?;
    }
    if own_tx {
        conn.commit().await?;
    }
    Ok(())
}

/// Orders tables so each comes after the ones it references (Kahn's algorithm, stable).
pub(crate) fn dependency_order(tables: &[&'static TableDef]) -> Result<Vec<&'static TableDef>> {
    let mut done: Vec<&'static TableDef> = Vec::with_capacity(tables.len());
    let mut left: Vec<&'static TableDef> = tables.to_vec();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|t| {
            let ready = t.references().all(|r| {
                same_table(r, t)
                    || done.iter().any(|d| same_table(d, r))
                    || !tables.iter().any(|x| same_table(x, r))
            });
            if ready {
                done.push(t);
            }
            !ready
        });
        if left.len() == before {
            let names: Vec<&str> = left.iter().map(|t| t.name).collect();
            return Err(Error::invalid(format!(
                "foreign keys form a cycle between tables {names:?}"
            )));
        }
    }
    Ok(done)
}

fn ddl_type(c: &ColumnDef) -> String {
    if let Some(t) = c.ddl_type {
        return t.to_owned();
    }
    let ty = (c.sql_type)();
    match ty.kind() {
        Kind::Enum(_) => quote_ident(ty.name()),
        Kind::Array(elem) => format!("{}[]", elem.name()),
        _ => ty.name().to_owned(),
    }
}

fn create_table_sql(t: &TableDef, opts: CreateOptions, out: &mut String) {
    let table = quote_ident(t.name);
    out.push_str("CREATE TABLE ");
    if opts.if_not_exists {
        out.push_str("IF NOT EXISTS ");
    }
    out.push_str(&table);
    out.push_str(" (");
    let mut first = true;
    for c in t.columns {
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&quote_ident(c.name));
        out.push(' ');
        out.push_str(&ddl_type(c));
        if c.identity {
            out.push_str(" GENERATED BY DEFAULT AS IDENTITY");
        }
        if !c.nullable {
            out.push_str(" NOT NULL");
        }
        if let Some(d) = c.server_default {
            out.push_str(" DEFAULT ");
            out.push_str(d);
        }
        if c.unique {
            out.push_str(&format!(
                " CONSTRAINT {} UNIQUE",
                quote_ident(&format!("{}_{}_key", t.name, c.name))
            ));
        }
        if let Some(fk) = &c.foreign_key {
            let target = (fk.table)();
            out.push_str(&format!(
                " CONSTRAINT {} REFERENCES {} ({}) ON DELETE {}",
                quote_ident(&format!("{}_{}_fkey", t.name, c.name)),
                quote_ident(target.name),
                quote_ident(fk.column),
                fk.on_delete.sql()
            ));
        }
    }
    let pk: Vec<String> = t.primary_key().map(|c| quote_ident(c.name)).collect();
    if !pk.is_empty() {
        out.push_str(&format!(
            ", CONSTRAINT {} PRIMARY KEY ({})",
            quote_ident(&format!("{}_pkey", t.name)),
            pk.join(", ")
        ));
    }
    for cols in t.uniques {
        let name = format!("{}_{}_key", t.name, cols.join("_"));
        let list: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
        out.push_str(&format!(
            ", CONSTRAINT {} UNIQUE ({})",
            quote_ident(&name),
            list.join(", ")
        ));
    }
    for check in t.checks {
        out.push_str(&format!(
            ", CONSTRAINT {} CHECK ({})",
            quote_ident(check.name),
            check.expr
        ));
    }
    out.push_str(");\n");
    let single = t
        .columns
        .iter()
        .filter(|c| c.index)
        .map(|c| (std::slice::from_ref(&c.name), false));
    let multi = t.indexes.iter().map(|i| (i.columns, i.unique));
    for (cols, unique) in single.chain(multi) {
        let name = format!("{}_{}_idx", t.name, cols.join("_"));
        let list: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
        out.push_str(&format!(
            "CREATE {}INDEX {}{} ON {} ({});\n",
            if unique { "UNIQUE " } else { "" },
            if opts.if_not_exists {
                "IF NOT EXISTS "
            } else {
                ""
            },
            quote_ident(&name),
            table,
            list.join(", ")
        ));
    }
}

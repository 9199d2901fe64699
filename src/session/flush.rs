//! The unit of work: INSERTs parents-first in batches, UPDATEs of changed columns grouped by
//! column set, DELETEs children-first; every write returns the full row.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::object::{AnyObj, ObjectState};
use crate::engine::Connection;
use crate::error::{Error, Result};
use crate::row::Row;
use crate::schema::TableDef;
use crate::sql::{Bind, quote_ident};

/// PostgreSQL's limit is 65,535 parameters; SQLAlchemy stays under 32,767.
const MAX_BINDS: usize = 32_767;
/// Rows per multi-row INSERT (SQLAlchemy's `insertmanyvalues_page_size`).
const MAX_ROWS: usize = 1_000;

/// The default columns of `t` (all but `Deferred` ones), as the model's `FromRow` reads them.
fn columns_list(t: &TableDef, prefix: &str) -> String {
    let table = quote_ident(t.name);
    t.default_columns()
        .map(|c| format!("{prefix}{table}.{}", quote_ident(c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`select_by_pk_sql`], built once per table and lock mode.
pub(crate) fn select_by_pk_cached(t: &'static TableDef, for_update: bool) -> std::sync::Arc<str> {
    use std::collections::HashMap;
    use std::sync::{OnceLock, RwLock};
    // Keyed by the table description's address: two models may map the same table name
    // (in different schemas, or with different columns). A const's description at another
    // address only costs a miss.
    type Cache = RwLock<HashMap<(usize, bool), std::sync::Arc<str>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(sql) = cache.read().ok().and_then(|m| {
        m.get(&(std::ptr::from_ref(t) as usize, for_update))
            .cloned()
    }) {
        return sql;
    }
    let sql: std::sync::Arc<str> = select_by_pk_sql(t, for_update).into();
    if let Ok(mut m) = cache.write() {
        m.insert((std::ptr::from_ref(t) as usize, for_update), sql.clone());
    }
    sql
}

/// `SELECT <all columns> FROM t WHERE pk = $1 [AND …]`.
pub(crate) fn select_by_pk_sql(t: &TableDef, for_update: bool) -> String {
    let table = quote_ident(t.name);
    let cond: Vec<String> = t
        .primary_key()
        .enumerate()
        .map(|(i, c)| format!("{table}.{} = ${}", quote_ident(c.name), i + 1))
        .collect();
    format!(
        "SELECT {} FROM {table} WHERE {}{}",
        columns_list(t, ""),
        cond.join(" AND "),
        if for_update { " FOR UPDATE" } else { "" }
    )
}

/// Refuses a pending object an INSERT cannot send, before any SQL: a value in a column the
/// server always generates, or a `Deferred` column with no value (and no server default).
pub(crate) fn check_insertable(obj: &Arc<dyn AnyObj>) -> Result<()> {
    let t = obj.table();
    for (i, c) in t.columns.iter().enumerate() {
        if !c.is_insertable() && obj.column(i).is_some() {
            return Err(Error::generated_always(t.name, c.name));
        }
        if c.deferred && !c.is_server_filled() && obj.column(i).is_none() {
            return Err(Error::invalid(format!(
                "a new `{}` object has Deferred column `{}` not loaded; give it a value \
                 (Deferred::new) before adding it",
                t.name, c.name
            )));
        }
    }
    Ok(())
}

/// Inserts pending objects table by table (parents first), in add order within a table.
/// Before a table's rows go out, their foreign keys are copied from parents inserted just
/// before; rows whose parent is still pending (self-referential trees) wait for a later
/// round.
pub(crate) async fn insert_all(
    conn: &mut Connection,
    pending: &[Arc<dyn AnyObj>],
    plan: &super::relations::Plan,
) -> Result<Vec<Arc<dyn AnyObj>>> {
    let mut by_table: Vec<(&'static TableDef, Vec<Arc<dyn AnyObj>>)> = Vec::new();
    for obj in pending {
        let t = obj.table();
        // Objects added by cascade reach the flush here: checked before any INSERT.
        check_insertable(obj)?;
        match by_table.iter_mut().find(|(bt, _)| bt.name == t.name) {
            Some((_, list)) => list.push(obj.clone()),
            None => by_table.push((t, vec![obj.clone()])),
        }
    }
    let tables: Vec<&'static TableDef> = by_table.iter().map(|(t, _)| *t).collect();
    let order = crate::schema::dependency_order_of(&tables)?;
    let mut waiting: Vec<(&'static TableDef, Vec<Arc<dyn AnyObj>>)> = order
        .into_iter()
        .filter_map(|t| {
            by_table
                .iter()
                .find(|(bt, _)| bt.name == t.name)
                .map(|(_, objs)| (t, objs.clone()))
        })
        .collect();
    let mut inserted = Vec::with_capacity(pending.len());
    while waiting.iter().any(|(_, objs)| !objs.is_empty()) {
        let mut progress = false;
        for (t, objs) in &mut waiting {
            if objs.is_empty() {
                continue;
            }
            let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(objs)
                .into_iter()
                .partition(|o| !plan.waits(o));
            *objs = wait;
            if ready.is_empty() {
                continue;
            }
            progress = true;
            plan.sync_pending(&ready)?;
            let mut rows: Vec<Vec<Option<Bind>>> = ready
                .iter()
                .map(|o| {
                    let mut v = Vec::new();
                    o.insert_binds(&mut v);
                    v
                })
                .collect();
            // Consecutive rows setting the same columns share statements (add order kept).
            let mut start = 0;
            while start < ready.len() {
                let sig = signature(&rows[start]);
                let end = start
                    + rows[start..]
                        .iter()
                        .take_while(|r| signature(r) == sig)
                        .count();
                let per_row = sig.iter().filter(|s| **s).count().max(1);
                let rows_per_stmt = MAX_ROWS.min(MAX_BINDS / per_row).max(1);
                let mut at = start;
                while at < end {
                    let next = (at + rows_per_stmt).min(end);
                    let chunk_rows = rows[at..next].iter_mut().map(std::mem::take).collect();
                    insert_chunk(conn, t, &ready[at..next], chunk_rows).await?;
                    inserted.extend(ready[at..next].iter().cloned());
                    at = next;
                }
                start = end;
            }
        }
        if !progress {
            return Err(Error::invalid(
                "pending objects depend on each other in a cycle; flush one of them first",
            ));
        }
    }
    Ok(inserted)
}

/// Which insert columns a row sets.
fn signature(row: &[Option<Bind>]) -> Vec<bool> {
    row.iter().map(Option::is_some).collect()
}

/// One INSERT of rows that set the same columns (`rows[i]` is `objs[i]`'s): the columns go
/// as arrays (one statement shape per table and column set, any row count), the server
/// fills the others, and RETURNING loads every column back in input order.
async fn insert_chunk(
    conn: &mut Connection,
    t: &'static TableDef,
    objs: &[Arc<dyn AnyObj>],
    rows: Vec<Vec<Option<Bind>>>,
) -> Result<()> {
    // A table with deferred columns takes the full reload: it leaves a deferred column the
    // server filled not loaded, where setting the filled columns alone would leave it
    // holding the unset value it was created with.
    let filled = match rows.first() {
        Some(r) if !t.has_deferred => server_filled(t, r),
        _ => Vec::new(),
    };
    let returning = if filled.is_empty() {
        // Nothing for the server to fill: the full row still counts the inserted rows.
        columns_list(t, "")
    } else {
        returning_list(t, &filled)
    };
    let load = if filled.is_empty() {
        Load::Full
    } else {
        Load::Filled(&filled)
    };
    if objs.len() > 1 && rows.iter().all(|r| r.iter().all(Option::is_none)) {
        // Every column left to the server: `DEFAULT VALUES`, one row per statement.
        let (sql, binds) = crate::sql::insert_rows_sql(t, vec![Vec::new()], &returning)?;
        for obj in objs {
            run_returning(conn, &sql, &binds, std::slice::from_ref(obj), load).await?;
        }
        return Ok(());
    }
    let (sql, binds) = crate::sql::insert_rows_sql(t, rows, &returning)?;
    run_returning(conn, &sql, &binds, objs, load).await
}

/// The default (not `Deferred`) columns an INSERT of rows shaped like `row` leaves to the
/// server: those the row has no value for (an unset `Generated`) and those no INSERT sends
/// (`GENERATED ALWAYS`), and the primary key. The objects already hold every value they sent, so RETURNING reads
/// back only these (SQLAlchemy fetches server-generated values only, too).
fn server_filled(t: &TableDef, row: &[Option<Bind>]) -> Vec<usize> {
    let mut sent = row.iter();
    t.columns
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            // `insert_values` yields one value per insertable column, in column order.
            let unset = !c.is_insertable() || matches!(sent.next(), Some(None) | None);
            // The key always comes back: the server may store another one than was sent (a
            // BEFORE INSERT trigger, char(n) padding), and the identity map files the object
            // under the stored key.
            (unset || c.primary_key) && !c.deferred
        })
        .map(|(i, _)| i)
        .collect()
}

/// `RETURNING` list of the columns `idx`.
fn returning_list(t: &TableDef, idx: &[usize]) -> String {
    let table = quote_ident(t.name);
    idx.iter()
        .map(|&i| format!("{table}.{}", quote_ident(t.columns[i].name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a RETURNING row holds: every default column, or only the columns listed.
#[derive(Clone, Copy)]
enum Load<'a> {
    Full,
    Filled(&'a [usize]),
}

/// Row-major `binds` (`width` per row) as one array bind per column, or `None` when a
/// column's type has no known array type or its values differ in type.
fn column_arrays(binds: &[Bind], width: usize) -> Option<Vec<Bind>> {
    if width == 0 || binds.len() % width != 0 {
        return None;
    }
    (0..width)
        .map(|c| crate::sql::bind_array(binds.iter().skip(c).step_by(width).cloned().collect()))
        .collect()
}

/// The DELETE of a chunk as one statement shape whatever its row count: one array bind per
/// key column (`c = ANY($1)`, or `(c1, c2) IN (SELECT * FROM unnest($1, $2))`), so each
/// table's deletes prepare one statement instead of one per chunk size. `None` when a
/// column's type has no known array type (the caller sends one placeholder per value).
/// `binds` holds the key values row by row, `cols.len()` per row.
fn delete_by_arrays(table: &str, cols: &[String], binds: &[Bind]) -> Option<(String, Vec<Bind>)> {
    let width = cols.len();
    if width == 0 {
        return None;
    }
    let arrays = column_arrays(binds, width)?;
    let sql = if let [col] = cols {
        format!("DELETE FROM {table} WHERE {col} = ANY($1)")
    } else {
        let marks: Vec<String> = (1..=width).map(|n| format!("${n}")).collect();
        format!(
            "DELETE FROM {table} WHERE ({}) IN (SELECT * FROM unnest({}))",
            cols.join(", "),
            marks.join(", ")
        )
    };
    Some((sql, arrays))
}

/// Runs a statement whose RETURNING rows correspond, in order, to `objs`, and loads them.
async fn run_returning(
    conn: &mut Connection,
    sql: &str,
    binds: &[Bind],
    objs: &[Arc<dyn AnyObj>],
    load: Load<'_>,
) -> Result<()> {
    let mut i = 0usize;
    conn.run(sql, binds, |row| {
        let row = Row(row);
        if let Some(obj) = objs.get(i) {
            match load {
                Load::Full => obj.load_returning(&row)?,
                Load::Filled(cols) => obj.load_filled(&row, cols)?,
            }
            obj.set_state(ObjectState::Persistent);
        }
        i += 1;
        Ok(())
    })
    .await?;
    if i != objs.len() {
        return Err(Error::invalid(format!(
            "INSERT returned {i} rows for {} objects",
            objs.len()
        )));
    }
    Ok(())
}

/// One dirty object: its identity key, the object, and its changed columns.
pub(crate) type DirtyRow = (super::object::Key, Arc<dyn AnyObj>, Vec<(usize, Bind)>);
/// (table, changed column indexes) → dirty rows with exactly those changes.
type Group = Vec<DirtyRow>;

/// Writes the changed columns of written objects: one statement per (table, changed column
/// set), rows sorted by primary key, server-computed values read back by RETURNING.
pub(crate) async fn update_all(
    conn: &mut Connection,
    written: Vec<Arc<dyn AnyObj>>,
) -> Result<Vec<Arc<dyn AnyObj>>> {
    let mut updated = Vec::new();
    let mut groups: BTreeMap<(&'static str, Vec<usize>), (&'static TableDef, Group)> =
        BTreeMap::new();
    for obj in written {
        if obj.state() != ObjectState::Persistent {
            continue;
        }
        let t = obj.table();
        let changes: Vec<(usize, Bind)> = obj
            .take_changes()
            .into_iter()
            .filter(|(i, _)| !t.columns[*i].version)
            .collect();
        if changes.is_empty() {
            continue;
        }
        let idx: Vec<usize> = changes.iter().map(|(i, _)| *i).collect();
        let entry = groups
            .entry((t.name, idx))
            .or_insert_with(|| (t, Vec::new()));
        entry.1.push((obj.key(), obj, changes));
    }
    for ((_, idx), (t, mut rows)) in groups {
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let pk: Vec<usize> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.primary_key)
            .map(|(i, _)| i)
            .collect();
        let version = t.columns.iter().position(|c| c.version);
        let per_row = 1 + pk.len() + idx.len() + usize::from(version.is_some());
        let rows_per_stmt = MAX_ROWS.min(MAX_BINDS / per_row).max(1);
        for chunk in rows.chunks(rows_per_stmt) {
            update_chunk(conn, t, &pk, &idx, version, chunk).await?;
            updated.extend(chunk.iter().map(|(_, o, _)| o.clone()));
        }
    }
    Ok(updated)
}

pub(crate) async fn update_chunk(
    conn: &mut Connection,
    t: &'static TableDef,
    pk: &[usize],
    idx: &[usize],
    version: Option<usize>,
    rows: &[DirtyRow],
) -> Result<()> {
    let table = quote_ident(t.name);
    // VALUES columns: ordinal, pk…, changed…, old version
    let mut vcols: Vec<String> = vec!["\"__aludel_ord\"".to_owned()];
    vcols.extend(pk.iter().map(|i| quote_ident(t.columns[*i].name)));
    vcols.extend(
        idx.iter()
            .map(|i| quote_ident(&format!("__new_{}", t.columns[*i].name))),
    );
    if version.is_some() {
        vcols.push("\"__aludel_old_version\"".to_owned());
    }
    let mut sets: Vec<String> = idx
        .iter()
        .map(|i| {
            format!(
                "{} = v.{}",
                quote_ident(t.columns[*i].name),
                quote_ident(&format!("__new_{}", t.columns[*i].name))
            )
        })
        .collect();
    let mut cond: Vec<String> = pk
        .iter()
        .map(|i| format!("{table}.{c} = v.{c}", c = quote_ident(t.columns[*i].name)))
        .collect();
    if let Some(v) = version {
        let c = quote_ident(t.columns[v].name);
        sets.push(format!("{c} = {table}.{c} + 1"));
        cond.push(format!("{table}.{c} = v.\"__aludel_old_version\""));
    }
    let mut binds: Vec<Bind> = Vec::new();
    let mut values: Vec<String> = Vec::with_capacity(rows.len());
    for (ord, (_, obj, changes)) in rows.iter().enumerate() {
        let mut marks = Vec::new();
        binds.push(Bind::new(ord as i32));
        marks.push(format!("${}", binds.len()));
        for i in pk {
            binds.push(
                obj.column(*i)
                    .ok_or_else(|| Error::invalid("primary key column has no value"))?,
            );
            marks.push(format!("${}", binds.len()));
        }
        for (_, b) in changes {
            binds.push(b.clone());
            marks.push(format!("${}", binds.len()));
        }
        if let Some(v) = version {
            binds.push(
                obj.column(v)
                    .ok_or_else(|| Error::invalid("version column has no value"))?,
            );
            marks.push(format!("${}", binds.len()));
        }
        values.push(format!("({})", marks.join(", ")));
    }
    // One array per VALUES column when every type has an array type: the same text for any
    // number of rows (one prepared statement), else one placeholder per value.
    let (source, binds) = match column_arrays(&binds, vcols.len()) {
        Some(arrays) => {
            let marks: Vec<String> = (1..=arrays.len()).map(|n| format!("${n}")).collect();
            (
                format!("SELECT * FROM unnest({})", marks.join(", ")),
                arrays,
            )
        }
        None => (format!("VALUES {}", values.join(", ")), binds),
    };
    let sql = format!(
        "UPDATE {table} SET {} FROM ({source}) AS v({}) WHERE {} RETURNING {}, v.\"__aludel_ord\"",
        sets.join(", "),
        vcols.join(", "),
        cond.join(" AND "),
        columns_list(t, "")
    );
    let ord_col = t.default_columns().count();
    let mut matched = 0u64;
    conn.run(&sql, &binds, |row| {
        let row = Row(row);
        let ord: i32 = row.get(ord_col)?;
        if let Some((_, obj, _)) = usize::try_from(ord).ok().and_then(|o| rows.get(o)) {
            obj.load_returning(&row)?;
        }
        matched += 1;
        Ok(())
    })
    .await?;
    if matched != rows.len() as u64 {
        return Err(Error::stale_data(t.name, rows.len() as u64, matched));
    }
    Ok(())
}

/// Deletes objects, children before parents. With a version column the version must match;
/// a shortfall is a stale-data error.
pub(crate) async fn delete_all(conn: &mut Connection, deleted: &[Arc<dyn AnyObj>]) -> Result<()> {
    let mut by_table: Vec<(&'static TableDef, Vec<Arc<dyn AnyObj>>)> = Vec::new();
    for obj in deleted {
        let t = obj.table();
        match by_table.iter_mut().find(|(bt, _)| bt.name == t.name) {
            Some((_, list)) => list.push(obj.clone()),
            None => by_table.push((t, vec![obj.clone()])),
        }
    }
    let tables: Vec<&'static TableDef> = by_table.iter().map(|(t, _)| *t).collect();
    let order = crate::schema::dependency_order_of(&tables)?;
    for t in order.into_iter().rev() {
        let Some((_, objs)) = by_table.iter().find(|(bt, _)| bt.name == t.name) else {
            continue;
        };
        let pk: Vec<usize> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.primary_key)
            .map(|(i, _)| i)
            .collect();
        let version = t.columns.iter().position(|c| c.version);
        let per_row = pk.len() + usize::from(version.is_some());
        for chunk in objs.chunks((MAX_BINDS / per_row.max(1)).max(1)) {
            let table = quote_ident(t.name);
            let mut binds = Vec::new();
            let mut tuples = Vec::new();
            for obj in chunk {
                let mut marks = Vec::new();
                for i in pk.iter().chain(version.iter()) {
                    binds.push(
                        obj.column(*i)
                            .ok_or_else(|| Error::invalid("key column has no value"))?,
                    );
                    marks.push(format!("${}", binds.len()));
                }
                tuples.push(format!("({})", marks.join(", ")));
            }
            let cols: Vec<String> = pk
                .iter()
                .chain(version.iter())
                .map(|i| format!("{table}.{}", quote_ident(t.columns[*i].name)))
                .collect();
            let (sql, binds) = match delete_by_arrays(&table, &cols, &binds) {
                Some(one_shape) => one_shape,
                None => (
                    format!(
                        "DELETE FROM {table} WHERE ({}) IN ({})",
                        cols.join(", "),
                        tuples.join(", ")
                    ),
                    binds,
                ),
            };
            let n = conn.run(&sql, &binds, |_| Ok(())).await?;
            if version.is_some() && n != chunk.len() as u64 {
                return Err(Error::stale_data(t.name, chunk.len() as u64, n));
            }
            for obj in chunk {
                obj.set_state(ObjectState::Deleted);
            }
        }
    }
    Ok(())
}

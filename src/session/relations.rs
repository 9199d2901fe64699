//! What relationships ask of a flush: cascades (save-update, delete, delete-orphan), foreign
//! keys copied from parents once they have keys, link rows of many-to-many relationships,
//! and what deleting a parent does to its children.

/// foldhash: these sets hold object addresses, one per object a flush touches.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
use std::sync::Arc;

use super::AsyncSession;
use super::object::{AnyObj, ObjectState, encode};
use crate::engine::Connection;
use crate::error::{Error, Result};
use crate::schema::{RelKind, TableDef};
use crate::sql::{Bind, bind_array, quote_ident};
use crate::state::RelWork;

/// Parent keys per `(table, key columns)`: one statement each.
type KeyGroup = (&'static TableDef, Vec<&'static str>, Vec<Vec<Bind>>);
/// A foreign key to copy: (to, its columns, from, its columns).
type KeySync = (Arc<dyn AnyObj>, Vec<usize>, Arc<dyn AnyObj>, Vec<usize>);

/// Statements run before the DELETEs: foreign keys of children set to NULL, link rows of
/// deleted parents removed. `(table, columns) → parent keys`.
#[derive(Default)]
pub(crate) struct BeforeDelete {
    null_fks: Vec<KeyGroup>,
    unlink: Vec<KeyGroup>,
}

fn push_key(
    list: &mut Vec<KeyGroup>,
    table: &'static TableDef,
    cols: &[&'static str],
    key: Vec<Bind>,
) {
    match list
        .iter_mut()
        .find(|(t, c, _)| t.name == table.name && c.as_slice() == cols)
    {
        Some((_, _, keys)) => keys.push(key),
        None => list.push((table, cols.to_vec(), vec![key])),
    }
}

/// What the flush does beyond plain INSERT/UPDATE/DELETE of the session's objects.
#[derive(Default)]
pub(crate) struct Plan {
    syncs: Vec<KeySync>,
    clears: Vec<(Arc<dyn AnyObj>, Vec<usize>)>,
    links: Vec<RelWork>,
    before_delete: BeforeDelete,
    /// Replaced one-to-one targets: (object, key columns, delete it).
    pub(crate) replaced: Vec<(Arc<dyn AnyObj>, Vec<usize>, bool)>,
}

fn ptr(o: &Arc<dyn AnyObj>) -> usize {
    Arc::as_ptr(o) as *const () as usize
}

/// Cascades and relationship history of every pending, changed and deleted object: adds
/// cascaded objects to the session and returns the work the flush must do around its writes.
/// Runs SQL only to find children a non-passive `delete` cascade must delete.
pub(crate) async fn prepare(s: &mut AsyncSession) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut queue: Vec<Arc<dyn AnyObj>> = s.new.clone();
    queue.extend(
        s.registry
            .written
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default(),
    );
    let mut seen = HashSet::with_capacity_and_hasher(queue.len(), Default::default());
    let mut items = Vec::new();
    while let Some(obj) = queue.pop() {
        if !seen.insert(ptr(&obj)) {
            continue;
        }
        obj.clone().rel_work(&mut items)?;
        for item in items.drain(..) {
            match item {
                RelWork::Cascade(o) => {
                    if o.state() == ObjectState::Transient {
                        s.add_erased(o.clone());
                    }
                    queue.push(o);
                }
                RelWork::Delete(o) => {
                    if o.state() == ObjectState::Persistent {
                        o.set_state(ObjectState::Deleted);
                        s.deleted.push(o);
                    } else if o.state() == ObjectState::Pending {
                        s.new.retain(|n| ptr(n) != ptr(&o));
                        o.make_transient();
                    }
                }
                RelWork::SyncKey {
                    to,
                    to_cols,
                    from,
                    from_cols,
                } => plan.syncs.push((to, to_cols, from, from_cols)),
                RelWork::ClearKey { obj, cols } => plan.clears.push((obj, cols)),
                link @ RelWork::Link { .. } => plan.links.push(link),
                RelWork::Undo(u) => s.journal.push(super::journal::Entry::History(u)),
                RelWork::Replaced { obj, cols, delete } => {
                    if obj.state() == ObjectState::Persistent {
                        plan.replaced.push((obj, cols, delete));
                    }
                }
            }
        }
    }
    // Deletes: cascade to children, or null their keys, and drop link rows.
    let mut dq: Vec<Arc<dyn AnyObj>> = s.deleted.clone();
    let mut dseen = HashSet::default();
    while let Some(obj) = dq.pop() {
        if !dseen.insert(ptr(&obj)) {
            continue;
        }
        for rule in obj.clone().delete_rules() {
            if rule.parent_key.iter().any(|b| encode(b).is_none()) {
                continue;
            }
            match rule.kind {
                RelKind::ManyToMany => {
                    push_key(
                        &mut plan.before_delete.unlink,
                        rule.table,
                        &rule.cols,
                        rule.parent_key,
                    );
                }
                _ if rule.cascade_delete => {
                    let mut children = rule.loaded;
                    if !rule.passive {
                        let found = (rule.load)(
                            s,
                            rule.table.name,
                            rule.cols.clone(),
                            vec![rule.parent_key],
                        )
                        .await?;
                        children.extend(found);
                    }
                    for c in children {
                        if c.state() == ObjectState::Persistent {
                            c.set_state(ObjectState::Deleted);
                            s.deleted.push(c.clone());
                            dq.push(c);
                        }
                    }
                }
                _ if rule.passive => {}
                _ => {
                    for c in &rule.loaded {
                        // Nulled in memory only: a savepoint rollback expires it again.
                        s.journal.updated(c);
                        for i in &rule.child_idx {
                            c.clone().set_column_raw(*i, None, false)?;
                        }
                    }
                    push_key(
                        &mut plan.before_delete.null_fks,
                        rule.table,
                        &rule.cols,
                        rule.parent_key,
                    );
                }
            }
        }
    }
    Ok(plan)
}

fn copy_key(
    to: &Arc<dyn AnyObj>,
    to_cols: &[usize],
    from: &Arc<dyn AnyObj>,
    from_cols: &[usize],
    track: bool,
) -> Result<()> {
    for (t, f) in to_cols.iter().zip(from_cols) {
        let raw = from.column(*f).and_then(|b| encode(&b));
        to.clone().set_column_raw(*t, raw.as_deref(), track)?;
    }
    Ok(())
}

impl Plan {
    /// Keys copied into `objs` (pending, about to be inserted) from their parents.
    pub(crate) fn sync_pending(&self, objs: &[Arc<dyn AnyObj>]) -> Result<()> {
        if self.syncs.is_empty() {
            return Ok(());
        }
        let want: HashSet<usize> = objs.iter().map(ptr).collect();
        for (to, to_cols, from, from_cols) in &self.syncs {
            if want.contains(&ptr(to)) {
                copy_key(to, to_cols, from, from_cols, false)?;
            }
        }
        Ok(())
    }

    /// Whether `obj` still waits for a parent that is not inserted yet.
    pub(crate) fn waits(&self, obj: &Arc<dyn AnyObj>) -> bool {
        self.syncs.iter().any(|(to, _, from, _)| {
            ptr(to) == ptr(obj) && from.state() == ObjectState::Pending && ptr(from) != ptr(obj)
        })
    }

    /// After the INSERTs: keys copied into persistent objects and cleared keys (both become
    /// UPDATEs through change tracking).
    pub(crate) fn sync_persistent(&self) -> Result<()> {
        for (obj, cols) in &self.clears {
            if obj.state() == ObjectState::Deleted {
                continue;
            }
            let track = obj.state() == ObjectState::Persistent;
            for i in cols {
                obj.clone().set_column_raw(*i, None, track)?;
            }
        }
        for (to, to_cols, from, from_cols) in &self.syncs {
            if to.state() == ObjectState::Persistent {
                copy_key(to, to_cols, from, from_cols, true)?;
            }
        }
        Ok(())
    }

    /// Link rows: removed ones deleted, added ones inserted (one statement per table each).
    pub(crate) async fn write_links(&self, conn: &mut Connection) -> Result<()> {
        let mut groups: HashMap<(&'static str, bool), KeyGroup> = HashMap::default();
        for link in &self.links {
            let RelWork::Link {
                table,
                local,
                remote,
                parent,
                child,
                add,
            } = link
            else {
                continue;
            };
            let mut row = Vec::new();
            for i in &parent.1 {
                row.push(
                    parent
                        .0
                        .column(*i)
                        .ok_or_else(|| Error::invalid("link parent without key"))?,
                );
            }
            for i in &child.1 {
                row.push(
                    child
                        .0
                        .column(*i)
                        .ok_or_else(|| Error::invalid("link target without key"))?,
                );
            }
            let cols: Vec<&'static str> = local.iter().chain(remote.iter()).copied().collect();
            groups
                .entry((table.name, *add))
                .or_insert_with(|| (table, cols, Vec::new()))
                .2
                .push(row);
        }
        let mut ordered: Vec<_> = groups.into_iter().collect();
        // deletes first, then inserts; by table name for a stable order
        ordered.sort_by_key(|((t, add), _)| (*add, *t));
        for ((_, add), (table, cols, rows)) in ordered {
            for chunk in rows.chunks(1000) {
                let (sql, binds) = if add {
                    insert_rows_sql(table, &cols, chunk)
                } else {
                    match_rows_sql("DELETE FROM", table, &cols, chunk, "")
                };
                conn.run(&sql, &binds, |_| Ok(())).await?;
            }
        }
        Ok(())
    }

    /// Children's keys nulled and link rows removed for deleted parents.
    pub(crate) async fn before_delete(&self, conn: &mut Connection) -> Result<()> {
        for (table, cols, keys) in &self.before_delete.unlink {
            for chunk in keys.chunks(1000) {
                let (sql, binds) = where_keys_sql(
                    &format!("DELETE FROM {}", quote_ident(table.name)),
                    cols,
                    chunk,
                );
                conn.run(&sql, &binds, |_| Ok(())).await?;
            }
        }
        for (table, cols, keys) in &self.before_delete.null_fks {
            for chunk in keys.chunks(1000) {
                let set: Vec<String> = cols
                    .iter()
                    .map(|c| format!("{} = NULL", quote_ident(c)))
                    .collect();
                let head = format!("UPDATE {} SET {}", quote_ident(table.name), set.join(", "));
                let (sql, binds) = where_keys_sql(&head, cols, chunk);
                conn.run(&sql, &binds, |_| Ok(())).await?;
            }
        }
        Ok(())
    }
}

/// `head WHERE col = ANY($1)` (one column with an array type) or a tuple match.
fn where_keys_sql(head: &str, cols: &[&'static str], keys: &[Vec<Bind>]) -> (String, Vec<Bind>) {
    if let [col] = cols {
        if let Some(array) = bind_array(keys.iter().filter_map(|k| k.first().cloned()).collect()) {
            return (
                format!("{head} WHERE {} = ANY($1)", quote_ident(col)),
                vec![array],
            );
        }
    }
    let mut binds = Vec::new();
    let mut tuples = Vec::new();
    for key in keys {
        let marks: Vec<String> = key
            .iter()
            .map(|b| {
                binds.push(b.clone());
                format!("${}", binds.len())
            })
            .collect();
        tuples.push(format!("({})", marks.join(", ")));
    }
    let names: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
    (
        format!(
            "{head} WHERE ({}) IN ({})",
            names.join(", "),
            tuples.join(", ")
        ),
        binds,
    )
}

fn match_rows_sql(
    verb: &str,
    table: &TableDef,
    cols: &[&'static str],
    rows: &[Vec<Bind>],
    tail: &str,
) -> (String, Vec<Bind>) {
    let (sql, binds) = where_keys_sql(&format!("{verb} {}", quote_ident(table.name)), cols, rows);
    (format!("{sql}{tail}"), binds)
}

fn insert_rows_sql(
    table: &TableDef,
    cols: &[&'static str],
    rows: &[Vec<Bind>],
) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut values = Vec::new();
    for row in rows {
        let marks: Vec<String> = row
            .iter()
            .map(|b| {
                binds.push(b.clone());
                format!("${}", binds.len())
            })
            .collect();
        values.push(format!("({})", marks.join(", ")));
    }
    let names: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
    (
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            quote_ident(table.name),
            names.join(", "),
            values.join(", ")
        ),
        binds,
    )
}

//! The identity map (SQLAlchemy's `identity.py`): one object per (table, primary key) in a
//! session, rows mapped through it, and the narrow [`Context`] loaders and the unit of work
//! run on instead of the whole session.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;

use super::object::{AnyObj, Cell, Key, Obj, ObjectState, Registry, SessionEvent};
use crate::engine::Connection;
use crate::error::Result;
use crate::row::{Columns, Row};
use crate::schema::Model;
use crate::sql::Statement;

pub(crate) type IdentityKey = (&'static str, Key);
/// Identity key → object. foldhash (seeded per process) instead of SipHash: keys are short
/// and hashed once per loaded row.
pub(crate) type IdentityMap = HashMap<IdentityKey, Weak<dyn AnyObj>, foldhash::fast::RandomState>;

/// What loaders and the unit of work need from a session: its identity map and its
/// connection. `AsyncSession` implements it; nothing below the session names the session.
pub(crate) trait Context: Send {
    /// The identity map.
    fn identity_map(&self) -> &IdentityMap;
    /// The identity map, with the registry new objects join.
    fn identity(&mut self) -> (&mut IdentityMap, &Arc<Registry>);
    /// The session's connection: checked out, and its transaction begun, on first use;
    /// refused while the session must be rolled back.
    fn connection(&mut self) -> BoxFuture<'_, Result<&mut Connection>>;
    /// The open connection as it is (a flush runs while the session is marked
    /// pending-rollback), else a new one as [`Context::connection`] checks out; with the
    /// identity map and registry.
    fn open(
        &mut self,
    ) -> BoxFuture<'_, Result<(&mut Connection, &mut IdentityMap, &Arc<Registry>)>>;
}

/// The object with this identity key, when loaded and not expired.
pub(crate) fn lookup<M: Model>(identity: &IdentityMap, key: &Key) -> Option<Obj<M>> {
    let existing = identity
        .get(&(M::TABLE.name, key.clone()))
        .and_then(Weak::upgrade)?;
    if existing.is_expired() || existing.state() != ObjectState::Persistent {
        return None;
    }
    existing.as_any().downcast::<Cell<M>>().ok().map(Obj)
}

/// The object for a row (columns from `offset`, deferred columns as `cols` says), through
/// the identity map.
pub(crate) fn identify<M: Model>(
    cx: &mut dyn Context,
    row: &Row,
    offset: usize,
    cols: Option<Columns>,
) -> Result<Obj<M>> {
    let (identity, registry) = cx.identity();
    identify_into::<M>(identity, registry, row, offset, false, cols)
}

/// Runs `q` and maps its rows through the identity map as they arrive (no intermediate row
/// vector); `overwrite` reloads objects already loaded (`populate_existing`).
pub(crate) async fn fetch_into<M: Model>(
    conn: &mut Connection,
    identity: &mut IdentityMap,
    registry: &Arc<Registry>,
    q: &(impl Statement + ?Sized),
    overwrite: bool,
    cols: Option<Columns>,
) -> Result<Vec<Obj<M>>> {
    let (sql, binds) = q.compile()?;
    let mut out = Vec::new();
    conn.run_read(q.is_plain_read(), &sql, &binds, |row| {
        out.push(identify_into::<M>(
            identity,
            registry,
            &Row(row),
            0,
            overwrite,
            cols,
        )?);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Rows of `q` through the identity map, no autoflush (loaders and the unit of work).
pub(crate) async fn fetch_objects<M: Model>(
    cx: &mut dyn Context,
    q: &(impl Statement + Sync),
) -> Result<Vec<Obj<M>>> {
    let (conn, identity, registry) = cx.open().await?;
    fetch_into::<M>(conn, identity, registry, q, false, None).await
}

pub(crate) fn identify_into<M: Model>(
    identity: &mut IdentityMap,
    registry: &Arc<Registry>,
    row: &Row,
    offset: usize,
    overwrite: bool,
    cols: Option<Columns>,
) -> Result<Obj<M>> {
    let value = match cols {
        Some(cols) => M::from_row_columns(row, offset, cols)?,
        None => M::from_row_at(row, offset)?,
    };
    let key = match cols {
        None => super::key::key_from_row::<M>(&row.0, offset),
        Some(_) => None,
    }
    .unwrap_or_else(|| super::key::key_of_value(&value));
    // One hash of the key per row (entry), not two (get, then insert).
    let slot = match identity.entry((M::TABLE.name, key)) {
        std::collections::hash_map::Entry::Occupied(e) => {
            if let Some(existing) = e.get().upgrade() {
                if overwrite || existing.is_expired() {
                    existing.load_at(row, offset, cols)?;
                } else if let Some(cols) = cols.filter(|c| c.loaded != 0) {
                    // Deferred columns this statement loaded, which the object has not.
                    existing.fill_deferred(row, offset, cols)?;
                }
                if let Ok(cell) = existing.as_any().downcast::<Cell<M>>() {
                    return Ok(Obj(cell));
                }
            }
            e.into_mut()
        }
        std::collections::hash_map::Entry::Vacant(e) => e.insert(Weak::<Cell<M>>::new()),
    };
    let obj = Obj::loaded(value, registry);
    registry.emit(&SessionEvent::Loaded {
        table: M::TABLE.name,
    });
    let weak: Weak<Cell<M>> = Arc::downgrade(&obj.0);
    *slot = weak;
    Ok(obj)
}

/// De-duplicates objects by identity, keeping first occurrences in order (SQLAlchemy's
/// `unique()`, needed when a join repeats parent rows).
pub fn unique<M: Model>(objs: Vec<Obj<M>>) -> Vec<Obj<M>> {
    let mut seen: std::collections::HashSet<*const (), foldhash::fast::RandomState> =
        std::collections::HashSet::with_capacity_and_hasher(objs.len(), Default::default());
    let mut out = Vec::with_capacity(objs.len());
    for o in objs {
        if seen.insert(Arc::as_ptr(&o.0) as *const ()) {
            out.push(o);
        }
    }
    out
}

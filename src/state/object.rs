//! Object handles: `Obj<M>`, their states, the lazy snapshot, and the type-erased view the unit
//! of work uses.

use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use tokio_postgres::types::IsNull;
use tokio_postgres::types::private::BytesMut;

use crate::error::{Error, Result};
use crate::row::Row;
use crate::schema::{Model, TableDef};
use crate::sql::Bind;

/// Where an object stands relative to a session (SQLAlchemy's `inspect(obj)` states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectState {
    /// Not in any session, no database identity.
    Transient,
    /// Added to a session; inserted at the next flush.
    Pending,
    /// In the session with a database identity.
    Persistent,
    /// Marked for deletion (before flush) or deleted by a flush (before commit).
    Deleted,
    /// Was in a session, is not any more (expunged, session closed, deleted and committed).
    Detached,
}

/// What a session reports to its event hook ([`SessionFactory::on_event`](crate::SessionFactory::on_event)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// An object of `table` changed state (SQLAlchemy's `transient_to_pending`,
    /// `pending_to_persistent`, `persistent_to_deleted`, `deleted_to_detached`, …).
    Transition {
        /// The object's table.
        table: &'static str,
        /// The state before.
        from: ObjectState,
        /// The state after.
        to: ObjectState,
    },
    /// A row was loaded as a new persistent object (`loaded_as_persistent`).
    Loaded {
        /// The object's table.
        table: &'static str,
    },
    /// A flush completed.
    AfterFlush,
    /// A commit completed.
    AfterCommit,
    /// A rollback completed.
    AfterRollback,
}

/// A session event hook.
pub(crate) type EventHook = Arc<dyn Fn(&SessionEvent) + Send + Sync>;

/// The objects a session holds strongly until its next flush: those whose values may have
/// been changed through [`Obj::write`]. Shared between a session and its objects.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) written: Mutex<Vec<Arc<dyn AnyObj>>>,
    pub(crate) hook: Option<EventHook>,
}

impl Registry {
    pub(crate) fn emit(&self, event: &SessionEvent) {
        if let Some(hook) = &self.hook {
            hook(event);
        }
    }

    pub(crate) fn written_push(&self, obj: Arc<dyn AnyObj>) {
        lock(&self.written).push(obj);
    }

    pub(crate) fn take_written(&self) -> Vec<Arc<dyn AnyObj>> {
        std::mem::take(&mut *lock(&self.written))
    }
}

pub(crate) struct Inner<M> {
    pub(crate) value: M,
    pub(crate) state: ObjectState,
    pub(crate) expired: bool,
    /// Column encodings taken at the first `write()` since the last flush/load.
    pub(crate) snapshot: Option<Vec<Snap>>,
    /// The session this object belongs to (its registry), while attached.
    pub(crate) session: Option<Weak<Registry>>,
    /// Set when the object was deleted inside the current transaction (rollback restores).
    pub(crate) deleted_in_tx: bool,
}

pub(crate) struct Cell<M> {
    pub(crate) inner: RwLock<Inner<M>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn rlock<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn wlock<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

/// A model object tracked by a session: a shared handle.
///
/// Loading the same row twice in one session yields the same handle ([`Obj::ptr_eq`]).
/// [`Obj::read`] and [`Obj::write`] never run SQL: an expired object's read is a typed error,
/// and [`AsyncSession::refresh`](crate::AsyncSession::refresh) reloads it.
///
/// Do not hold the guards from `read`/`write` across an `.await`.
pub struct Obj<M: Model>(pub(crate) Arc<Cell<M>>);

impl<M: Model> Clone for Obj<M> {
    fn clone(&self) -> Self {
        Obj(self.0.clone())
    }
}

impl<M: Model> PartialEq for Obj<M> {
    /// Handle identity, not value equality.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<M: Model> Eq for Obj<M> {}

impl<M: Model> fmt::Debug for Obj<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = rlock(&self.0.inner);
        f.debug_struct("Obj")
            .field("table", &M::TABLE.name)
            .field("state", &inner.state)
            .field("expired", &inner.expired)
            .finish()
    }
}

/// Read access to an object's values.
pub struct ObjRef<'a, M>(RwLockReadGuard<'a, Inner<M>>);

impl<M> Deref for ObjRef<'_, M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.0.value
    }
}

impl<M: fmt::Debug> fmt::Debug for ObjRef<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

/// Write access to an object's values; the session sees the change at its next flush.
pub struct ObjMut<'a, M>(RwLockWriteGuard<'a, Inner<M>>);

impl<M> Deref for ObjMut<'_, M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.0.value
    }
}

impl<M> DerefMut for ObjMut<'_, M> {
    fn deref_mut(&mut self) -> &mut M {
        &mut self.0.value
    }
}

impl<M: fmt::Debug> fmt::Debug for ObjMut<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

impl<M: Model> Obj<M> {
    /// A transient object (not in any session yet): pass it to `session.add`.
    pub fn new(value: M) -> Self {
        Obj(Arc::new(Cell {
            inner: RwLock::new(Inner {
                value,
                state: ObjectState::Transient,
                expired: false,
                snapshot: None,
                session: None,
                deleted_in_tx: false,
            }),
        }))
    }

    pub(crate) fn loaded(value: M, session: &Arc<Registry>) -> Self {
        Obj(Arc::new(Cell {
            inner: RwLock::new(Inner {
                value,
                state: ObjectState::Persistent,
                expired: false,
                snapshot: None,
                session: Some(Arc::downgrade(session)),
                deleted_in_tx: false,
            }),
        }))
    }

    /// The object's values. Never runs SQL.
    ///
    /// # Errors
    /// `is_expired()` when the values were expired (commit with `expire_on_commit`,
    /// rollback, `expire`); `is_detached()` when the object left its session expired.
    pub fn read(&self) -> Result<ObjRef<'_, M>> {
        let inner = rlock(&self.0.inner);
        if inner.expired {
            return Err(expired_error::<M>(&inner));
        }
        Ok(ObjRef(inner))
    }

    /// Mutable access to the object's values; changed columns are written at the next flush.
    /// Never runs SQL.
    ///
    /// # Errors
    /// As [`Obj::read`].
    pub fn write(&self) -> Result<ObjMut<'_, M>> {
        let mut inner = wlock(&self.0.inner);
        if inner.expired {
            return Err(expired_error::<M>(&inner));
        }
        // A detached object keeps its history too: adding it to a session writes it (SES-04).
        if matches!(inner.state, ObjectState::Persistent | ObjectState::Detached)
            && inner.snapshot.is_none()
        {
            inner.snapshot = Some(snap_all(&inner.value));
            if let Some(registry) = inner.session.as_ref().and_then(Weak::upgrade) {
                lock(&registry.written).push(self.0.clone() as Arc<dyn AnyObj>);
            }
        }
        Ok(ObjMut(inner))
    }

    /// A copy of the values (for returning from a handler after the session is gone).
    pub fn get(&self) -> Result<M>
    where
        M: Clone,
    {
        self.read().map(|r| (*r).clone())
    }

    /// The object's state. An object whose session was dropped reports `Detached` (or
    /// `Transient` if it was only pending): it belongs to no session any more.
    pub fn state(&self) -> ObjectState {
        effective_state(&rlock(&self.0.inner))
    }

    /// True when the values were expired and must be refreshed before reading.
    pub fn is_expired(&self) -> bool {
        rlock(&self.0.inner).expired
    }

    /// Whether two handles are the same object.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    pub(crate) fn erased(&self) -> Arc<dyn AnyObj> {
        self.0.clone() as Arc<dyn AnyObj>
    }

    /// Reads the value whatever its state (loaders and the unit of work: no expiry check).
    pub(crate) fn with_value<T>(&self, f: impl FnOnce(&M) -> T) -> T {
        f(&rlock(&self.0.inner).value)
    }

    /// Changes the value without taking a snapshot: for relationship slots, which are not
    /// columns and never make an object dirty.
    pub(crate) fn with_value_mut<T>(&self, f: impl FnOnce(&mut M) -> T) -> T {
        f(&mut wlock(&self.0.inner).value)
    }
}

/// Moves the relationship slots of `old` into `new` (a reload replaces columns only).
struct KeepRelations<'a, M> {
    new: &'a mut M,
    old: &'a mut M,
}

impl<M: Model> super::rel::RelVisitor<M> for KeepRelations<'_, M> {
    fn visit<C: Model>(&mut self, rel: super::rel::Rel<M, C>) {
        use super::rel::Slot;
        match &rel.def().slot {
            Slot::Many(f) => std::mem::swap(f(self.new), f(self.old)),
            Slot::One(f) => std::mem::swap(f(self.new), f(self.old)),
            Slot::WriteOnly(f) => std::mem::swap(f(self.new), f(self.old)),
        }
    }
}

/// Unloads the relationships of an expired object as its row is loaded again, so each one
/// reads as not loaded until its loader runs (EXP-02: commit expires relationships too,
/// SQLAlchemy reloads them on access). A slot with changes not flushed yet (restored by a
/// rollback for the retry) keeps them. Write-only collections hold no loaded state.
struct ExpireRelations<'a, M>(&'a mut M);

impl<M: Model> super::rel::RelVisitor<M> for ExpireRelations<'_, M> {
    fn visit<C: Model>(&mut self, rel: super::rel::Rel<M, C>) {
        use super::rel::Slot;
        match &rel.def().slot {
            Slot::Many(f) => {
                let many = f(self.0);
                if many.added.is_empty() && many.removed.is_empty() {
                    many.items = None;
                    many.raise = false;
                }
            }
            Slot::One(f) => {
                let one = f(self.0);
                if !one.changed && one.replaced.is_none() {
                    one.target = None;
                    one.raise = false;
                }
            }
            Slot::WriteOnly(_) => {}
        }
    }
}

fn replace_columns<M: Model>(inner: &mut Inner<M>, mut value: M) {
    M::visit_relations(&mut KeepRelations {
        new: &mut value,
        old: &mut inner.value,
    });
    inner.value = value;
}

/// The state, corrected for a session that no longer exists.
fn effective_state<M>(inner: &Inner<M>) -> ObjectState {
    let alive = inner.session.as_ref().is_some_and(|w| w.strong_count() > 0);
    match inner.state {
        ObjectState::Pending if !alive => ObjectState::Transient,
        ObjectState::Persistent | ObjectState::Deleted if !alive => ObjectState::Detached,
        s => s,
    }
}

fn expired_error<M: Model>(inner: &Inner<M>) -> Error {
    if inner.state == ObjectState::Detached {
        Error::detached(M::TABLE.name)
    } else {
        Error::expired(M::TABLE.name)
    }
}

/// One column in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Snap {
    /// A `Deferred` column that is not loaded (any value set later is a change).
    NotLoaded,
    /// The wire encoding (`None` = NULL).
    Value(Option<Vec<u8>>),
}

/// Column `i` of `value` for a snapshot.
pub(crate) fn snap_column<M: Model>(value: &M, i: usize) -> Snap {
    match value.column_value(i) {
        Some(b) => Snap::Value(encode(&b)),
        None => Snap::NotLoaded,
    }
}

/// Every column, for the snapshot.
fn snap_all<M: Model>(value: &M) -> Vec<Snap> {
    (0..M::TABLE.columns.len())
        .map(|i| snap_column(value, i))
        .collect()
}

/// Carries the loaded `Deferred` columns of `old` over to `new` (a write-back that did not
/// read them keeps what the object holds; an unset `Generated` one, which the INSERT left to
/// the server, stays not loaded).
fn keep_deferred<M: Model>(new: &mut M, old: &M) -> Result<()> {
    for (i, c) in M::TABLE.columns.iter().enumerate() {
        if !c.deferred {
            continue;
        }
        if let Some(b) = old.column_value(i) {
            new.set_column(i, encode(&b).as_deref())?;
        }
    }
    Ok(())
}

/// Sets the deferred columns of `cols` that `value` has not loaded from `row` (read from
/// `offset` in the statement's column order); the snapshot, if any, takes the same values so
/// loading is never a change.
fn fill_deferred<M: Model>(
    inner: &mut Inner<M>,
    row: &Row,
    offset: usize,
    cols: crate::row::Columns,
) -> Result<()> {
    let mut at = offset;
    let mut k = 0;
    for (i, c) in M::TABLE.columns.iter().enumerate() {
        if !c.deferred {
            at += 1;
            continue;
        }
        let present = cols.has(k);
        k += 1;
        if !present {
            continue;
        }
        let crate::row::RawSlice(raw) = row.get(at)?;
        fill_column(inner, i, raw)?;
        at += 1;
    }
    Ok(())
}

/// Sets column `i` from its wire bytes unless it is loaded; the snapshot, if any, takes the
/// same value (loading is not a change).
fn fill_column<M: Model>(inner: &mut Inner<M>, i: usize, raw: Option<&[u8]>) -> Result<()> {
    if inner.value.column_value(i).is_some() {
        return Ok(());
    }
    inner.value.set_column(i, raw)?;
    // The snapshot holds our own encoding of the value, as the flush compares it (the
    // server's bytes may differ: jsonb spacing and key order).
    let now = snap_column(&inner.value, i);
    if let Some(snap) = inner.snapshot.as_mut().and_then(|s| s.get_mut(i)) {
        *snap = now;
    }
    Ok(())
}

impl<M: Model> Obj<M> {
    /// Sets a not-loaded column from its wire bytes (an explicit column load).
    pub(crate) fn fill_column(&self, i: usize, raw: Option<&[u8]>) -> Result<()> {
        fill_column(&mut wlock(&self.0.inner), i, raw)
    }
}

/// The wire encoding of one value, for comparisons and identity keys.
pub(crate) fn encode(b: &Bind) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    match b.as_to_sql().to_sql_checked(b.sql_type(), &mut buf) {
        Ok(IsNull::No) => Some(buf.to_vec()),
        // NULL, or a value that cannot be encoded (the statement will report it).
        _ => None,
    }
}

pub(crate) use super::key::Key;

/// What the unit of work needs from any object, whatever its model.
pub(crate) trait AnyObj: Send + Sync {
    fn table(&self) -> &'static TableDef;
    fn state(&self) -> ObjectState;
    fn set_state(&self, state: ObjectState);
    /// One value per insert column, `None` for an unset `Generated` field.
    fn insert_binds(&self, out: &mut Vec<Option<Bind>>);
    fn pk_binds(&self) -> Vec<Bind>;
    fn key(&self) -> Key;
    /// Changed columns since the snapshot: (column index, new value). Clears the snapshot.
    fn take_changes(&self) -> Vec<(usize, Bind)>;
    /// The value of one column now.
    fn column(&self, idx: usize) -> Option<Bind>;
    /// Replaces the column values from a row of the default columns (refresh, criteria
    /// UPDATE … RETURNING), unexpires; relationship slots are kept, deferred columns are
    /// left not loaded.
    fn load(&self, row: &Row) -> Result<()>;
    /// As `load`, reading the columns from `offset` (`cols`: the deferred ones in the row).
    fn load_at(&self, row: &Row, offset: usize, cols: Option<crate::row::Columns>) -> Result<()>;
    /// As `load`, for the RETURNING rows of the flush's own INSERT or UPDATE: loaded
    /// deferred columns keep the values it sent.
    fn load_returning(&self, row: &Row) -> Result<()>;
    /// As `load_returning`, for a RETURNING row holding only columns `cols` (in that order):
    /// those are set, every other value stays as the INSERT sent it.
    fn load_filled(&self, row: &Row, cols: &[usize]) -> Result<()>;
    /// Fills deferred columns the object has not loaded from a row that carries them.
    fn fill_deferred(&self, row: &Row, offset: usize, cols: crate::row::Columns) -> Result<()>;
    /// Sets one column from its wire encoding; `track` records the change for the next flush
    /// (snapshot + written list) when the object is persistent.
    fn set_column_raw(self: Arc<Self>, idx: usize, raw: Option<&[u8]>, track: bool) -> Result<()>;
    /// What the relationship slots ask of the next flush (history is taken).
    fn rel_work(self: Arc<Self>, out: &mut Vec<super::history::RelWork>) -> Result<()>;
    /// What deleting this object means for each of its relationships.
    fn delete_rules(self: Arc<Self>) -> Vec<super::history::DeleteRule>;
    fn expire(&self);
    fn is_expired(&self) -> bool;
    fn attach(&self, registry: &Arc<Registry>);
    fn detach(&self);
    /// Back to transient: reports the transition, then forgets the session.
    fn make_transient(&self);
    /// Unsets the `GENERATED ALWAYS` columns (a rolled-back INSERT: the server would refuse
    /// the value it assigned when the object is added again).
    fn clear_generated_always(&self);
    fn mark_deleted_in_tx(&self, on: bool) -> bool;
    /// The state, `Detached`/`Transient` when the owning session is gone.
    fn effective_state(&self) -> ObjectState;
    /// Whether the object is attached to the session owning `registry`.
    fn session_is(&self, registry: &Arc<Registry>) -> bool;
    /// Whether the object belongs to a session that still exists.
    fn has_live_session(&self) -> bool;
    /// Whether changes since the last flush are recorded (a snapshot exists).
    fn has_history(&self) -> bool;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<M: Model> AnyObj for Cell<M> {
    fn table(&self) -> &'static TableDef {
        M::TABLE
    }
    fn state(&self) -> ObjectState {
        rlock(&self.inner).state
    }
    fn set_state(&self, state: ObjectState) {
        let (from, registry) = {
            let mut inner = wlock(&self.inner);
            let from = std::mem::replace(&mut inner.state, state);
            (from, inner.session.clone())
        };
        if from != state {
            if let Some(r) = registry.and_then(|w| w.upgrade()) {
                r.emit(&SessionEvent::Transition {
                    table: M::TABLE.name,
                    from,
                    to: state,
                });
            }
        }
    }
    fn insert_binds(&self, out: &mut Vec<Option<Bind>>) {
        rlock(&self.inner).value.insert_values(out);
    }
    fn pk_binds(&self) -> Vec<Bind> {
        let inner = rlock(&self.inner);
        M::TABLE
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.primary_key)
            .filter_map(|(i, _)| inner.value.column_value(i))
            .collect()
    }
    fn key(&self) -> Key {
        super::key::key_of_value(&rlock(&self.inner).value)
    }
    fn take_changes(&self) -> Vec<(usize, Bind)> {
        let mut inner = wlock(&self.inner);
        let Some(snapshot) = inner.snapshot.take() else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        for (i, before) in snapshot.iter().enumerate() {
            if let Some(now) = inner.value.column_value(i) {
                if *before == Snap::NotLoaded || Snap::Value(encode(&now)) != *before {
                    changes.push((i, now));
                }
            }
        }
        changes
    }
    fn column(&self, idx: usize) -> Option<Bind> {
        rlock(&self.inner).value.column_value(idx)
    }
    fn load(&self, row: &Row) -> Result<()> {
        self.load_at(row, 0, None)
    }
    fn load_at(&self, row: &Row, offset: usize, cols: Option<crate::row::Columns>) -> Result<()> {
        let value = match cols {
            Some(cols) => M::from_row_columns(row, offset, cols)?,
            None => <M as crate::row::FromRow>::from_row_at(row, offset)?,
        };
        let mut inner = wlock(&self.inner);
        replace_columns(&mut inner, value);
        if inner.expired {
            M::visit_relations(&mut ExpireRelations(&mut inner.value));
        }
        inner.expired = false;
        inner.snapshot = None;
        Ok(())
    }
    fn load_returning(&self, row: &Row) -> Result<()> {
        let mut value = <M as crate::row::FromRow>::from_row(row)?;
        let mut inner = wlock(&self.inner);
        if M::TABLE.has_deferred && !inner.expired {
            keep_deferred(&mut value, &inner.value)?;
        }
        replace_columns(&mut inner, value);
        inner.expired = false;
        inner.snapshot = None;
        Ok(())
    }
    fn load_filled(&self, row: &Row, cols: &[usize]) -> Result<()> {
        let mut inner = wlock(&self.inner);
        for (at, &i) in cols.iter().enumerate() {
            let crate::row::RawSlice(raw) = row.get(at)?;
            inner.value.set_column(i, raw)?;
        }
        inner.expired = false;
        inner.snapshot = None;
        Ok(())
    }
    fn fill_deferred(&self, row: &Row, offset: usize, cols: crate::row::Columns) -> Result<()> {
        fill_deferred(&mut wlock(&self.inner), row, offset, cols)
    }
    fn set_column_raw(self: Arc<Self>, idx: usize, raw: Option<&[u8]>, track: bool) -> Result<()> {
        let mut inner = wlock(&self.inner);
        if track && inner.state == ObjectState::Persistent && inner.snapshot.is_none() {
            inner.snapshot = Some(snap_all(&inner.value));
            if let Some(registry) = inner.session.as_ref().and_then(Weak::upgrade) {
                lock(&registry.written).push(self.clone() as Arc<dyn AnyObj>);
            }
        }
        inner.value.set_column(idx, raw)
    }
    fn rel_work(self: Arc<Self>, out: &mut Vec<super::history::RelWork>) -> Result<()> {
        super::history::rel_work(Obj(self), out)
    }
    fn delete_rules(self: Arc<Self>) -> Vec<super::history::DeleteRule> {
        super::history::delete_rules(Obj(self))
    }
    fn expire(&self) {
        let mut inner = wlock(&self.inner);
        inner.expired = true;
        inner.snapshot = None;
    }
    fn is_expired(&self) -> bool {
        rlock(&self.inner).expired
    }
    fn attach(&self, registry: &Arc<Registry>) {
        wlock(&self.inner).session = Some(Arc::downgrade(registry));
    }
    fn detach(&self) {
        let (from, registry) = {
            let mut inner = wlock(&self.inner);
            let from = std::mem::replace(&mut inner.state, ObjectState::Detached);
            // The change history stays with the object: a later `add` writes it (SES-04).
            (from, inner.session.take())
        };
        if from != ObjectState::Detached {
            if let Some(r) = registry.and_then(|w| w.upgrade()) {
                r.emit(&SessionEvent::Transition {
                    table: M::TABLE.name,
                    from,
                    to: ObjectState::Detached,
                });
            }
        }
    }
    fn make_transient(&self) {
        self.set_state(ObjectState::Transient);
        let mut inner = wlock(&self.inner);
        inner.session = None;
        inner.snapshot = None;
    }
    fn clear_generated_always(&self) {
        let mut inner = wlock(&self.inner);
        for (i, c) in M::TABLE.columns.iter().enumerate() {
            if !c.is_insertable() {
                inner.value.clear_column(i);
            }
        }
    }
    fn mark_deleted_in_tx(&self, on: bool) -> bool {
        std::mem::replace(&mut wlock(&self.inner).deleted_in_tx, on)
    }
    fn effective_state(&self) -> ObjectState {
        effective_state(&rlock(&self.inner))
    }
    fn session_is(&self, registry: &Arc<Registry>) -> bool {
        rlock(&self.inner)
            .session
            .as_ref()
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(registry)))
    }
    fn has_live_session(&self) -> bool {
        rlock(&self.inner)
            .session
            .as_ref()
            .is_some_and(|w| w.strong_count() > 0)
    }
    fn has_history(&self) -> bool {
        rlock(&self.inner).snapshot.is_some()
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

//! `AsyncSession`: a task-scoped unit of work with an identity map.
//!
//! The design (handles, lazy snapshot diff, weak identity map, flush order) is written down in
//! `docs/architecture.md`.

mod bulk;
mod flush;
mod journal;
mod merge;
mod nested;
mod read;
mod relations;
mod repository;
mod scoped;

use std::sync::{Arc, Weak};

pub use self::repository::{KeysetPage, ListOptions, Page, Repository};
pub use self::scoped::{scoped_session, with_scoped_session};
use crate::state::IdentityMap;
/// Object state lives in `state`; the session's files reach it as `super::object`.
pub(crate) use crate::state::object;
pub use crate::state::{Obj, ObjMut, ObjRef, ObjectState, SessionEvent, unique};

use self::journal::{Entry, Journal};
use self::object::{AnyObj, Registry};
use crate::engine::{Connection, Engine, Savepoint, TxOptions};
use crate::error::{Error, Result};
use crate::schema::Model;
use crate::sql::{Bind, SqlType};

/// How sessions behave; build with [`Engine::session_builder`] or use [`Engine::session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Expire every object after commit (default true, as in SQLAlchemy).
    pub expire_on_commit: bool,
    /// Flush pending changes before each query (default true).
    pub autoflush: bool,
    /// How the session's transactions start.
    pub tx: TxOptions,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            expire_on_commit: true,
            autoflush: true,
            tx: TxOptions::new(),
        }
    }
}

/// A session factory (SQLAlchemy's `async_sessionmaker`): an engine plus a configuration.
#[derive(Clone)]
pub struct SessionFactory {
    engine: Engine,
    config: SessionConfig,
    hook: Option<object::EventHook>,
}

impl std::fmt::Debug for SessionFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionFactory")
            .field("config", &self.config)
            .field("on_event", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl SessionFactory {
    /// Expire objects after commit (default true).
    pub fn expire_on_commit(mut self, on: bool) -> Self {
        self.config.expire_on_commit = on;
        self
    }

    /// Flush before queries (default true).
    pub fn autoflush(mut self, on: bool) -> Self {
        self.config.autoflush = on;
        self
    }

    /// Transaction options (isolation, read-only) for every transaction of these sessions.
    pub fn tx_options(mut self, tx: TxOptions) -> Self {
        self.config.tx = tx;
        self
    }

    /// Calls `hook` for every object state transition and after each flush, commit and
    /// rollback of these sessions (SQLAlchemy's session events). Runs inline: keep it cheap.
    pub fn on_event(mut self, hook: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// A new session. Touches no connection.
    pub fn session(&self) -> AsyncSession {
        let mut s = AsyncSession::new(self.engine.clone(), self.config);
        s.registry = Arc::new(Registry {
            written: Default::default(),
            hook: self.hook.clone(),
        });
        s
    }

    /// Runs `f` in a new session and commits when it returns `Ok`; rolls back when it returns
    /// `Err` (SQLAlchemy's `async_sessionmaker.begin()` block).
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut AsyncSession) -> Result<T>,
    {
        self.transaction_with_retry(1, f).await
    }

    /// Like [`SessionFactory::transaction`], and runs the whole block again (in a fresh
    /// session, after a growing pause) when it fails with a serialization failure or deadlock,
    /// up to `max_attempts` times in all.
    pub async fn transaction_with_retry<T, F>(&self, max_attempts: u32, mut f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut AsyncSession) -> Result<T>,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut s = self.session();
            let outcome = match f(&mut s).await {
                Ok(v) => s.commit().await.map(|()| v),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let _ = s.rollback().await;
                    if !e.is_retryable() || attempt >= max_attempts {
                        return Err(e);
                    }
                    let pause = std::time::Duration::from_millis(10u64 << attempt.min(6));
                    tracing::debug!(target: "aludel::session", attempt, error = %e, "retrying transaction");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

impl Engine {
    /// A new session with the default configuration. Touches no connection.
    pub fn session(&self) -> AsyncSession {
        AsyncSession::new(self.clone(), SessionConfig::default())
    }

    /// A session factory with its own configuration.
    pub fn session_builder(&self) -> SessionFactory {
        SessionFactory {
            engine: self.clone(),
            config: SessionConfig::default(),
            hook: None,
        }
    }
}

/// A factory with the default configuration, as [`Engine::session_builder`] gives.
impl From<Engine> for SessionFactory {
    fn from(engine: Engine) -> Self {
        engine.session_builder()
    }
}

/// A unit of work over one connection and transaction at a time.
///
/// The first statement checks a connection out and begins a transaction (autobegin);
/// `commit`, `rollback` and `close` give the connection back. All methods that change state
/// take `&mut self`: a session cannot be shared by concurrently running tasks.
///
/// ```no_run
/// # #[derive(aludel::Model, Clone)] #[aludel(table = "users")]
/// # struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i32>, name: String }
/// # async fn demo(engine: aludel::Engine) -> aludel::Result<()> {
/// let mut s = engine.session();
/// let ann = aludel::Obj::new(User { id: aludel::Generated::unset(), name: "ann".into() });
/// s.add(&ann)?;
/// s.commit().await?;                      // INSERT … RETURNING, COMMIT; `ann` is expired
/// s.refresh(&ann).await?;                 // one SELECT
/// ann.write()?.name = "Ann".into();
/// s.commit().await?;                      // UPDATE of `name` only
/// # Ok(()) }
/// ```
pub struct AsyncSession {
    engine: Engine,
    config: SessionConfig,
    conn: Option<Connection>,
    registry: Arc<Registry>,
    identity: IdentityMap,
    /// Pending objects, in add order.
    new: Vec<Arc<dyn AnyObj>>,
    /// Objects marked for deletion.
    deleted: Vec<Arc<dyn AnyObj>>,
    /// What the current transaction did to objects (rollback undoes it, newest first).
    journal: Journal,
    /// A flush or transaction-control statement failed, or its future was dropped midway:
    /// only `rollback` is allowed.
    pending_rollback: bool,
    /// A COMMIT was sent and its answer never read: the transaction's outcome is unknown.
    in_doubt: bool,
    /// Open savepoints, innermost last, each with where its journal entries begin.
    savepoints: Vec<SavepointMark>,
    /// Joined to a caller's transaction: the session's own "transaction" is this savepoint.
    joined: bool,
    join_sp: Option<Savepoint>,
}

struct SavepointMark {
    sp: Savepoint,
    start: usize,
}

/// A savepoint opened by [`AsyncSession::begin_nested`]; end it with
/// [`AsyncSession::commit_nested`] or [`AsyncSession::rollback_nested`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "commit or roll back the nested transaction"]
pub struct NestedTransaction {
    depth: usize,
}

impl std::fmt::Debug for AsyncSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSession")
            .field("config", &self.config)
            .field("in_transaction", &self.conn.is_some())
            .field("identity_map", &self.identity.len())
            .field("new", &self.new.len())
            .field("deleted", &self.deleted.len())
            .field("pending_rollback", &self.pending_rollback)
            .finish()
    }
}

impl AsyncSession {
    fn new(engine: Engine, config: SessionConfig) -> Self {
        AsyncSession {
            engine,
            config,
            conn: None,
            registry: Arc::new(Registry::default()),
            identity: IdentityMap::default(),
            new: Vec::new(),
            deleted: Vec::new(),
            journal: Journal::default(),
            pending_rollback: false,
            in_doubt: false,
            savepoints: Vec::new(),
            joined: false,
            join_sp: None,
        }
    }

    /// A session working inside a transaction the caller opened on `conn`: the session's
    /// commits release a SAVEPOINT and its rollbacks roll back to it, while the outer
    /// transaction stays the caller's (SQLAlchemy's `join_transaction_mode="create_savepoint"`,
    /// the recipe for tests that roll everything back at teardown).
    ///
    /// # Errors
    /// An invalid-request error when `conn` is not inside a transaction.
    pub fn join_transaction(
        engine: &Engine,
        conn: Connection,
        config: SessionConfig,
    ) -> Result<AsyncSession> {
        if !conn.in_transaction() {
            return Err(Error::invalid(
                "join_transaction needs a connection inside a transaction",
            ));
        }
        let mut s = AsyncSession::new(engine.clone(), config);
        s.conn = Some(conn);
        s.joined = true;
        Ok(s)
    }

    /// Ends a joined session and hands the caller's connection back, its outer transaction
    /// still open (roll it back or commit it).
    pub fn into_connection(mut self) -> Option<Connection> {
        self.conn.take()
    }

    /// The engine this session draws connections from.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The session's configuration.
    pub fn config(&self) -> SessionConfig {
        self.config
    }

    /// Turns expire-on-commit on or off for this session.
    pub fn set_expire_on_commit(&mut self, on: bool) {
        self.config.expire_on_commit = on;
    }

    /// True while a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.conn.is_some()
    }

    /// The session's connection, checked out and inside a transaction (autobegin).
    ///
    /// # Cancel safety
    /// Dropping the future mid-checkout or mid-BEGIN leaves the session without a
    /// connection; the half-begun connection is discarded by its own drop.
    pub async fn connection(&mut self) -> Result<&mut Connection> {
        if self.pending_rollback {
            return Err(Error::pending_rollback());
        }
        if self.conn.is_none() {
            let mut conn = self.engine.connect().await?;
            conn.begin_deferred(self.config.tx).await?;
            self.conn = Some(conn);
        }
        if self.joined && self.join_sp.is_none() {
            let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
            self.join_sp = Some(conn.savepoint().await?);
        }
        self.conn.as_mut().ok_or_else(Error::connection_lost)
    }

    /// Adds a transient object (INSERT at the next flush) or re-attaches a detached one; the
    /// changes made to it while detached are written at the next flush (SES-04). Adding an
    /// object marked for deletion and not flushed yet cancels the deletion.
    ///
    /// # Errors
    /// An invalid-request error when another object with the same identity is already in the
    /// session, when the object belongs to another session (expunge it there first), or when
    /// a flush of this transaction already deleted it.
    pub fn add<M: Model>(&mut self, obj: &Obj<M>) -> Result<()> {
        let erased = obj.erased();
        if erased.has_live_session() && !erased.session_is(&self.registry) {
            return Err(Error::invalid(format!(
                "this `{}` object belongs to another session; expunge it there first",
                M::TABLE.name
            )));
        }
        match erased.effective_state() {
            ObjectState::Transient => {
                self.add_erased(erased);
                Ok(())
            }
            ObjectState::Detached => {
                let key = (M::TABLE.name, erased.key());
                if let Some(other) = self.identity.get(&key).and_then(Weak::upgrade) {
                    if !Arc::ptr_eq(&other, &erased) {
                        return Err(Error::invalid(
                            "another object with this identity is already in the session (use merge)",
                        ));
                    }
                }
                erased.mark_deleted_in_tx(false);
                erased.attach(&self.registry);
                erased.set_state(ObjectState::Persistent);
                if erased.has_history() {
                    self.registry.written_push(erased.clone());
                }
                self.identity.insert(key, Arc::downgrade(&erased));
                Ok(())
            }
            ObjectState::Deleted => {
                let before = self.deleted.len();
                self.deleted.retain(|o| !Arc::ptr_eq(o, &erased));
                if self.deleted.len() == before {
                    return Err(Error::invalid(format!(
                        "this `{}` object was deleted by a flush of this transaction",
                        M::TABLE.name
                    )));
                }
                erased.set_state(ObjectState::Persistent);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Makes a transient object pending in this session.
    fn add_erased(&mut self, erased: Arc<dyn AnyObj>) {
        erased.attach(&self.registry);
        erased.set_state(ObjectState::Pending);
        self.new.push(erased);
    }

    /// Adds several transient objects, in order.
    pub fn add_all<'a, M: Model>(
        &mut self,
        objs: impl IntoIterator<Item = &'a Obj<M>>,
    ) -> Result<()> {
        for o in objs {
            self.add(o)?;
        }
        Ok(())
    }

    /// Marks a persistent object for deletion (DELETE at the next flush).
    ///
    /// # Errors
    /// An invalid-request error for an object that was never persisted.
    pub fn delete<M: Model>(&mut self, obj: &Obj<M>) -> Result<()> {
        match obj.state() {
            ObjectState::Persistent => {
                let erased = obj.erased();
                erased.set_state(ObjectState::Deleted);
                self.deleted.push(erased);
                Ok(())
            }
            ObjectState::Deleted => Ok(()),
            _ => Err(Error::invalid(
                "this object is not persisted; only persistent objects can be deleted",
            )),
        }
    }

    /// Writes every pending change: INSERTs (parents first, batched, in add order), UPDATEs
    /// of changed columns, DELETEs (children first).
    ///
    /// # Errors
    /// On failure the transaction is rolled back, nothing of the flush is kept, and the
    /// session refuses work with a pending-rollback error until [`AsyncSession::rollback`].
    ///
    /// # Cancel safety
    /// A flush dropped midway leaves the session needing `rollback()`, like a failed one;
    /// every object the flush touched is recorded in the transaction's journal before its
    /// statement is sent, so the rollback makes the flush's new objects transient again
    /// (re-addable), restores the deleted ones and expires the written ones.
    pub async fn flush(&mut self) -> Result<()> {
        if self.pending_rollback {
            return Err(Error::pending_rollback());
        }
        let written_waiting = !lock_written_empty(&self.registry);
        if self.new.is_empty() && self.deleted.is_empty() && !written_waiting {
            return Ok(());
        }
        // Refused before any SQL: the transaction stays usable.
        for obj in &self.new {
            flush::check_insertable(obj)?;
        }
        self.connection().await?;
        // Poisoned until the flush completes: a cancelled flush counts as a failed one.
        self.pending_rollback = true;
        let result = self.flush_inner().await;
        match result {
            Ok(()) => {
                self.pending_rollback = false;
                if self.savepoints.is_empty() {
                    self.journal.compact();
                }
                self.registry.emit(&SessionEvent::AfterFlush);
                Ok(())
            }
            Err(e) => {
                if self.savepoints.is_empty() && !self.joined {
                    if let Some(conn) = self.conn.as_mut() {
                        let _ = conn.rollback().await;
                    }
                    self.conn = None;
                }
                // Inside a savepoint the outer transaction survives: `rollback_nested`
                // recovers the session.
                Err(e)
            }
        }
    }

    /// Marks `obj` deleted by this transaction, in the journal first.
    fn journal_delete(&mut self, obj: &Arc<dyn AnyObj>) {
        self.journal.push(Entry::Deleted(obj.clone()));
        obj.set_state(ObjectState::Deleted);
        obj.mark_deleted_in_tx(true);
        self.forget(obj);
    }

    /// Removes `obj` from the identity map if the map holds this very object.
    fn forget(&mut self, obj: &Arc<dyn AnyObj>) {
        let key = (obj.table().name, obj.key());
        if self
            .identity
            .get(&key)
            .and_then(Weak::upgrade)
            .is_some_and(|o| Arc::ptr_eq(&o, obj))
        {
            self.identity.remove(&key);
        }
    }

    async fn flush_inner(&mut self) -> Result<()> {
        // Every change to objects is journaled before the statement making it is awaited.
        let plan = relations::prepare(self).await?;
        // Replaced one-to-one targets leave before their replacements are inserted.
        let mut early_deleted = Vec::new();
        let mut early_cleared = Vec::new();
        for (obj, cols, delete) in &plan.replaced {
            if *delete {
                self.journal_delete(obj);
                early_deleted.push(obj.clone());
            } else {
                self.journal.updated(obj);
                for i in cols {
                    obj.clone().set_column_raw(*i, None, true)?;
                }
                early_cleared.push(obj.clone());
            }
        }
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        flush::update_all(conn, early_cleared).await?;
        flush::delete_all(conn, &early_deleted).await?;
        let pending = std::mem::take(&mut self.new);
        self.journal.inserted(pending.iter().cloned());
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        let inserted = flush::insert_all(conn, &pending, &plan).await?;
        self.identity.reserve(inserted.len());
        for obj in &inserted {
            self.identity
                .insert((obj.table().name, obj.key()), Arc::downgrade(obj));
        }
        plan.sync_persistent()?;
        let written = self.registry.take_written();
        for obj in &written {
            self.journal.updated(obj);
        }
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        flush::update_all(conn, written).await?;
        plan.write_links(conn).await?;
        plan.before_delete(conn).await?;
        let deleted = std::mem::take(&mut self.deleted);
        for obj in &deleted {
            self.journal_delete(obj);
        }
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        flush::delete_all(conn, &deleted).await?;
        Ok(())
    }

    async fn autoflush(&mut self) -> Result<()> {
        if self.config.autoflush {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Flushes, commits and gives the connection back. With `expire_on_commit` every object
    /// in the session is expired: reading it is a typed error until it is refreshed.
    ///
    /// # Cancel safety
    /// Dropped during its flush: as a dropped [`AsyncSession::flush`]. Dropped after COMMIT
    /// was sent, the outcome is unknown (the connection is discarded): the session needs
    /// `rollback()`, which detaches and expires every object of the transaction instead of
    /// guessing; load them again to see what the database holds.
    pub async fn commit(&mut self) -> Result<()> {
        self.flush().await?;
        if self.joined {
            if let (Some(sp), Some(conn)) = (self.join_sp.take(), self.conn.as_mut()) {
                self.pending_rollback = true;
                conn.release_savepoint(sp).await?;
                self.pending_rollback = false;
            }
        } else if let Some(mut conn) = self.conn.take() {
            self.pending_rollback = true;
            self.in_doubt = true;
            let r = conn.commit().await;
            self.pending_rollback = false;
            if let Err(e) = r {
                // Lost with COMMIT unanswered: the transaction may or may not have committed.
                self.in_doubt = e.is_connection_lost();
                self.after_rollback();
                return Err(e);
            }
            self.in_doubt = false;
        }
        for obj in self.journal.deleted() {
            obj.mark_deleted_in_tx(false);
            obj.detach();
        }
        self.journal.clear();
        if self.config.expire_on_commit {
            self.expire_all();
        }
        self.registry.emit(&SessionEvent::AfterCommit);
        Ok(())
    }

    /// Rolls back and gives the connection back. Objects inserted in this transaction become
    /// transient again, objects deleted in it persistent again, and every object is expired
    /// whatever `expire_on_commit` says (EXP-05).
    ///
    /// # Cancel safety
    /// The objects are reset before the ROLLBACK is sent; a dropped rollback leaves the
    /// connection to its drop, which rolls back or discards it.
    pub async fn rollback(&mut self) -> Result<()> {
        if self.joined {
            let sp = self.join_sp.take();
            self.after_rollback();
            return match (sp, self.conn.as_mut()) {
                (Some(sp), Some(conn)) => conn.rollback_to_savepoint(sp).await,
                _ => Ok(()),
            };
        }
        let had_work = self.conn.is_some()
            || !self.new.is_empty()
            || self.pending_rollback
            || self.journal.len() > 0;
        let conn = self.conn.take();
        if had_work {
            self.after_rollback();
        }
        match conn {
            Some(mut conn) => conn.rollback().await,
            None => Ok(()),
        }
    }

    /// Undoes journal entries (newest first). `in_doubt`: the transaction may have committed,
    /// so nothing is restored and everything it touched is detached and expired.
    fn undo(&mut self, entries: Vec<Entry>, in_doubt: bool) {
        // Inserted and deleted in the undone span: straight back to transient.
        let inserted: std::collections::HashSet<*const (), foldhash::fast::RandomState> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Inserted(o) => Some(Arc::as_ptr(o) as *const ()),
                _ => None,
            })
            .collect();
        for e in entries {
            match e {
                Entry::Inserted(obj) => {
                    if !obj.session_is(&self.registry) {
                        continue;
                    }
                    self.forget(&obj);
                    if in_doubt {
                        obj.expire();
                        obj.detach();
                    } else {
                        // Keeps what the server assigned (a re-add sends it, as SQLAlchemy
                        // does) except where the server refuses a value.
                        obj.clear_generated_always();
                        obj.make_transient();
                    }
                }
                Entry::Deleted(obj) => {
                    obj.mark_deleted_in_tx(false);
                    if !obj.session_is(&self.registry)
                        || inserted.contains(&(Arc::as_ptr(&obj) as *const ()))
                    {
                        continue;
                    }
                    if in_doubt {
                        obj.expire();
                        obj.detach();
                    } else {
                        obj.set_state(ObjectState::Persistent);
                        self.identity
                            .insert((obj.table().name, obj.key()), Arc::downgrade(&obj));
                    }
                }
                Entry::Updated(w) => {
                    if let Some(obj) = w.upgrade() {
                        obj.expire();
                    }
                }
                Entry::History(restore) => restore(),
            }
        }
    }

    fn after_rollback(&mut self) {
        let in_doubt = std::mem::take(&mut self.in_doubt);
        self.pending_rollback = false;
        self.savepoints.clear();
        let entries = self.journal.take_from(0);
        self.undo(entries, in_doubt);
        for obj in self.deleted.drain(..) {
            obj.set_state(ObjectState::Persistent);
        }
        // Objects added in this transaction and never inserted are expunged too.
        for obj in self.new.drain(..) {
            obj.make_transient();
        }
        for obj in self.registry.take_written() {
            if obj.session_is(&self.registry) {
                obj.expire();
            }
        }
        self.expire_all();
        if in_doubt {
            self.expunge_all();
        }
        self.registry.emit(&SessionEvent::AfterRollback);
    }

    /// Rolls back any open transaction and detaches every object; the session stays usable.
    pub async fn close(&mut self) -> Result<()> {
        let r = self.rollback().await;
        self.expunge_all();
        r
    }

    /// Whether the session's open transaction has written anything on the server (flushed
    /// objects, criteria updates, raw DML, row locks: PostgreSQL assigns a transaction id on
    /// the first write). One round trip, and only when a server transaction is open.
    pub(crate) async fn transaction_has_written(&mut self) -> Result<bool> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        if !conn.in_server_transaction() {
            return Ok(false);
        }
        let q = crate::sql::Raw::audited(crate::sql::AssertSqlSafe(
            "SELECT pg_current_xact_id_if_assigned() IS NOT NULL",
        ));
        conn.query_one::<bool>(&q).await
    }

    /// Expires every object in the session (values must be refreshed before reading).
    pub fn expire_all(&mut self) {
        self.identity.retain(|_, w| match w.upgrade() {
            Some(obj) => {
                obj.expire();
                true
            }
            None => false,
        });
    }

    /// Expires one object; unflushed changes to it are discarded.
    pub fn expire<M: Model>(&mut self, obj: &Obj<M>) {
        obj.erased().expire();
    }

    /// Removes an object from the session: persistent → detached, pending → transient.
    /// Later changes to it are not flushed.
    pub fn expunge<M: Model>(&mut self, obj: &Obj<M>) {
        let erased = obj.erased();
        self.new.retain(|o| !Arc::ptr_eq(o, &erased));
        self.deleted.retain(|o| !Arc::ptr_eq(o, &erased));
        let was_pending = erased.state() == ObjectState::Pending;
        self.identity.remove(&(M::TABLE.name, erased.key()));
        if was_pending {
            erased.make_transient();
        } else {
            erased.detach();
        }
    }

    /// Detaches every object.
    pub fn expunge_all(&mut self) {
        for (_, w) in self.identity.drain() {
            if let Some(obj) = w.upgrade() {
                obj.detach();
            }
        }
        for obj in self.new.drain(..) {
            obj.make_transient();
        }
        self.deleted.clear();
        let _ = self.registry.take_written();
    }

    /// How many live objects the identity map holds (dropped clean objects are not counted).
    pub fn identity_map_len(&self) -> usize {
        self.identity
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Whether `obj` belongs to this session.
    pub fn contains<M: Model>(&self, obj: &Obj<M>) -> bool {
        let erased = obj.erased();
        self.new.iter().any(|o| Arc::ptr_eq(o, &erased))
            || self
                .identity
                .get(&(M::TABLE.name, erased.key()))
                .and_then(Weak::upgrade)
                .is_some_and(|o| Arc::ptr_eq(&o, &erased))
    }

    /// Pending objects of model `M` (added, not yet inserted), in add order.
    pub fn new_objects<M: Model>(&self) -> Vec<Obj<M>> {
        self.new.iter().filter_map(|o| downcast::<M>(o)).collect()
    }

    /// Objects of model `M` with changes the next flush would write.
    pub fn dirty_objects<M: Model>(&self) -> Vec<Obj<M>> {
        let written = self
            .registry
            .written
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default();
        written
            .iter()
            .filter_map(|o| downcast::<M>(o))
            .filter(|o| self.is_modified(o))
            .collect()
    }

    /// Objects of model `M` marked for deletion and not yet flushed.
    pub fn deleted_objects<M: Model>(&self) -> Vec<Obj<M>> {
        self.deleted
            .iter()
            .filter_map(|o| downcast::<M>(o))
            .collect()
    }

    /// Closes the session and discards its connection instead of returning it to the pool
    /// (its server process ends); objects are detached. SQLAlchemy's `invalidate()`.
    pub fn invalidate(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.invalidate();
        }
        self.after_rollback();
        self.expunge_all();
    }

    /// Whether `obj` has changes that the next flush would write (without flushing).
    pub fn is_modified<M: Model>(&self, obj: &Obj<M>) -> bool {
        let inner = object::rlock(&obj.0.inner);
        match &inner.snapshot {
            None => inner.state == ObjectState::Pending,
            Some(snap) => (0..M::TABLE.columns.len()).any(|i| {
                let now = object::snap_column(&inner.value, i);
                now != object::Snap::NotLoaded && snap.get(i) != Some(&now)
            }),
        }
    }
}

fn downcast<M: Model>(o: &Arc<dyn AnyObj>) -> Option<Obj<M>> {
    o.clone()
        .as_any()
        .downcast::<object::Cell<M>>()
        .ok()
        .map(Obj)
}

fn lock_written_empty(r: &Registry) -> bool {
    r.written.lock().map(|w| w.is_empty()).unwrap_or(false)
}

fn pk_binds<M: Model>(value: &M) -> Vec<Bind> {
    M::TABLE
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.primary_key)
        .filter_map(|(i, _)| value.column_value(i))
        .collect()
}

/// A primary-key value for [`AsyncSession::get`]: a single value, or a tuple for composite
/// keys (in the model's primary-key column order).
pub trait PrimaryKey {
    /// The key's values as binds.
    #[doc(hidden)]
    fn into_binds(self) -> Vec<Bind>;
}

impl<T: SqlType> PrimaryKey for T {
    fn into_binds(self) -> Vec<Bind> {
        vec![Bind::new(self)]
    }
}

impl<A: SqlType, B: SqlType> PrimaryKey for (A, B) {
    fn into_binds(self) -> Vec<Bind> {
        vec![Bind::new(self.0), Bind::new(self.1)]
    }
}

impl<A: SqlType, B: SqlType, C: SqlType> PrimaryKey for (A, B, C) {
    fn into_binds(self) -> Vec<Bind> {
        vec![Bind::new(self.0), Bind::new(self.1), Bind::new(self.2)]
    }
}

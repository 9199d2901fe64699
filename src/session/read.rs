//! Reading rows into the session: statements, `get`, `refresh`, and the loading entry points
//! (`scalars` with relationship options, `load`), all through the identity map.

use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;

use super::object::{self, Registry};
use super::{AsyncSession, ObjectState, PrimaryKey, flush};
use crate::engine::Connection;
use crate::error::{Error, Result};
use crate::loading::Loading;
use crate::row::Row;
use crate::schema::Model;
use crate::sql::{AssertSqlSafe, Bind, Raw, Typed};
use crate::state::identity_key;
use crate::state::{Context, IdentityMap, Obj, fetch_into, identify_into, unique};

impl AsyncSession {
    /// Runs a typed statement and returns its rows as plain values (tuples, scalars, models
    /// not tracked by the session), as [`Connection::all`] does. Autoflushes first.
    pub async fn all<Q: Typed>(&mut self, q: &Q) -> Result<Vec<Q::Output>> {
        self.autoflush().await?;
        let conn = self.connection().await?;
        conn.all(q).await
    }

    /// Runs a statement without rows (DML without RETURNING); returns the rows affected.
    pub async fn execute(&mut self, q: &impl crate::sql::Statement) -> Result<u64> {
        self.autoflush().await?;
        let conn = self.connection().await?;
        conn.execute(q).await
    }

    /// Runs a query for model rows and returns tracked objects through the identity map: a row
    /// for an object already loaded returns that object, unchanged.
    pub async fn scalars<M: Model, Q: Typed<Output = M>>(&mut self, q: &Q) -> Result<Vec<Obj<M>>> {
        self.load_objects(q, false).await
    }

    /// Like [`AsyncSession::scalars`], but rows overwrite the values of already-loaded
    /// objects (`populate_existing`).
    pub async fn scalars_populate_existing<M: Model, Q: Typed<Output = M>>(
        &mut self,
        q: &Q,
    ) -> Result<Vec<Obj<M>>> {
        self.load_objects(q, true).await
    }

    async fn load_objects<M: Model, Q: Typed<Output = M>>(
        &mut self,
        q: &Q,
        overwrite: bool,
    ) -> Result<Vec<Obj<M>>> {
        self.autoflush().await?;
        self.connection().await?;
        let Some(loading) = q.loading().and_then(|l| l.downcast_ref::<Loading<M>>()) else {
            let objs = self.fetch_rows_into::<M>(q, overwrite, None).await?;
            crate::loading::run_level(self, &objs, &crate::loading::Load::default()).await?;
            return Ok(objs);
        };
        let objs = if loading.joined().is_empty() {
            self.fetch_rows_into::<M>(q, overwrite, loading.columns())
                .await?
        } else {
            // Joined options read their columns from the same rows: keep the rows.
            let (sql, binds) = q.compile()?;
            let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
            let mut rows = Vec::new();
            conn.run_read(q.is_plain_read(), &sql, &binds, |row| {
                rows.push(row);
                Ok(())
            })
            .await?;
            let mut per_row = Vec::with_capacity(rows.len());
            for row in &rows {
                per_row.push(identify_into::<M>(
                    &mut self.identity,
                    &self.registry,
                    &Row(row.clone()),
                    0,
                    overwrite,
                    loading.columns(),
                )?);
            }
            for (i, offset) in loading.joined() {
                if let Some(step) = loading.load().steps.get(*i) {
                    step.apply_joined(self, &per_row, &rows, *offset).await?;
                }
            }
            unique(per_row)
        };
        let joined: Vec<usize> = loading.joined().iter().map(|(i, _)| *i).collect();
        let load = loading.load();
        let mut rest: Vec<Arc<dyn crate::loading::Step<M>>> = load
            .steps
            .iter()
            .enumerate()
            .filter(|(i, _)| !joined.contains(i))
            .map(|(_, s)| s.clone())
            .collect();
        // The relationships' own defaults go in the same pipelined batch as the options.
        let named: Vec<&'static str> = load.steps.iter().map(|s| s.rel_path()).collect();
        rest.extend(crate::loading::default_steps::<M>(&named, load.raise_all));
        crate::loading::run_steps(self, &objs, &rest).await?;
        Ok(objs)
    }

    /// Loads relationships of objects already in hand, for all of them at once: one query per
    /// relationship level (keys in one array parameter), never one per parent. The awaited
    /// equivalent of SQLAlchemy's lazy load (`awaitable_attrs`), batched.
    ///
    /// ```no_run
    /// # use aludel::{load::selectin, Model, Many};
    /// # #[derive(Model, Clone, Debug)] #[aludel(table = "users")]
    /// # struct User { #[aludel(primary_key)] id: i64,
    /// #   #[aludel(one_to_many(fk = Post::user_id))] posts: Many<Post> }
    /// # #[derive(Model, Clone, Debug)] #[aludel(table = "posts")]
    /// # struct Post { #[aludel(primary_key)] id: i64, #[aludel(references = "User::id")] user_id: i64 }
    /// # async fn demo(s: &mut aludel::AsyncSession, users: Vec<aludel::Obj<User>>) -> aludel::Result<()> {
    /// s.load(&users, selectin(User::posts)).await?; // one SELECT … WHERE user_id = ANY($1)
    /// let n = users[0].read()?.posts.len()?;
    /// # let _ = n; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A relationship declared `lazy = "raise"` refuses to load; expired parents must be
    /// refreshed first.
    pub async fn load<P: Model>(
        &mut self,
        objs: &[Obj<P>],
        options: impl Into<crate::loading::Load<P>>,
    ) -> Result<()> {
        let load = options.into();
        if let Some(path) = crate::loading::raise_declared(&load) {
            return Err(Error::not_loaded(path, true));
        }
        self.autoflush().await?;
        if !load.cols.is_empty() {
            crate::loading::load_columns(self, objs, &load.cols).await?;
        }
        if load.raise_all {
            crate::loading::run_level(self, objs, &load).await
        } else {
            crate::loading::run_steps(self, objs, &load.steps).await
        }
    }

    async fn fetch_rows_into<M: Model>(
        &mut self,
        q: &impl crate::sql::Statement,
        overwrite: bool,
        cols: Option<crate::row::Columns>,
    ) -> Result<Vec<Obj<M>>> {
        let (conn, identity, registry) = self.parts()?;
        fetch_into::<M>(conn, identity, registry, q, overwrite, cols).await
    }

    /// The open connection, the identity map and the registry, borrowed at once.
    fn parts(&mut self) -> Result<(&mut Connection, &mut IdentityMap, &Arc<Registry>)> {
        let AsyncSession {
            conn,
            identity,
            registry,
            ..
        } = self;
        let conn = conn.as_mut().ok_or_else(Error::connection_lost)?;
        Ok((conn, identity, &*registry))
    }

    /// The object with this primary key: from the identity map with no SQL when it is loaded
    /// and not expired, else one SELECT. `None` when no row has that key.
    pub async fn get<M: Model>(&mut self, pk: impl PrimaryKey) -> Result<Option<Obj<M>>> {
        self.get_impl::<M>(pk.into_binds(), false).await
    }

    /// Like [`AsyncSession::get`], but a missing row is a not-found error.
    pub async fn get_one<M: Model>(&mut self, pk: impl PrimaryKey) -> Result<Obj<M>> {
        self.get::<M>(pk).await?.ok_or_else(Error::not_found)
    }

    /// `get` with `SELECT … FOR UPDATE`: always queries, and locks the row until the
    /// transaction ends.
    pub async fn get_for_update<M: Model>(
        &mut self,
        pk: impl PrimaryKey,
    ) -> Result<Option<Obj<M>>> {
        self.get_impl::<M>(pk.into_binds(), true).await
    }

    pub(super) async fn get_impl<M: Model>(
        &mut self,
        pk: Vec<Bind>,
        for_update: bool,
    ) -> Result<Option<Obj<M>>> {
        let key = (M::TABLE.name, identity_key(&pk));
        if !for_update {
            if let Some(existing) = self.identity.get(&key).and_then(Weak::upgrade) {
                if !existing.is_expired() && existing.state() == ObjectState::Persistent {
                    if let Ok(cell) = existing.as_any().downcast::<object::Cell<M>>() {
                        return Ok(Some(Obj(cell)));
                    }
                }
            }
        }
        self.autoflush().await?;
        self.connection().await?;
        let sql = flush::select_by_pk_cached(M::TABLE, for_update);
        let AsyncSession {
            conn,
            identity,
            registry,
            ..
        } = self;
        let conn = conn.as_mut().ok_or_else(Error::connection_lost)?;
        let mut found = None;
        conn.run_read(!for_update, &sql, &pk, |row| {
            if found.is_none() {
                found = Some(identify_into::<M>(
                    identity,
                    registry,
                    &Row(row),
                    0,
                    true,
                    None,
                )?);
            }
            Ok(())
        })
        .await?;
        Ok(found)
    }

    /// Reloads an object's columns in one SELECT (after expiry, or to see other
    /// transactions' changes). Unflushed changes to it are discarded.
    ///
    /// # Errors
    /// A row-gone error when the row no longer exists.
    pub async fn refresh<M: Model>(&mut self, obj: &Obj<M>) -> Result<()> {
        let erased = obj.erased();
        let pk = erased.pk_binds();
        let sql = flush::select_by_pk_sql(M::TABLE, false);
        let rows = self
            .connection()
            .await?
            .query(&Raw::audited(AssertSqlSafe(sql)).with_binds(pk))
            .await?;
        match rows.first() {
            Some(row) => {
                erased.load(row)?;
                if erased.state() == ObjectState::Detached {
                    self.add(obj)?;
                }
                Ok(())
            }
            None => Err(Error::row_gone(M::TABLE.name)),
        }
    }

    /// Runs a typed statement and returns exactly one row.
    pub async fn one<Q: Typed>(&mut self, q: &Q) -> Result<Q::Output> {
        self.autoflush().await?;
        self.connection().await?.one(q).await
    }

    /// Runs a typed statement and returns zero or one row.
    pub async fn one_or_none<Q: Typed>(&mut self, q: &Q) -> Result<Option<Q::Output>> {
        self.autoflush().await?;
        self.connection().await?.one_or_none(q).await
    }

    /// The first row of a typed statement, if any (no LIMIT is added).
    pub async fn first<Q: Typed>(&mut self, q: &Q) -> Result<Option<Q::Output>> {
        self.autoflush().await?;
        self.connection().await?.first(q).await
    }

    /// Runs any statement (raw SQL included) and returns the rows as [`Row`]s, read by column
    /// name or index (SQLAlchemy's `mappings()`). Autoflushes first.
    pub async fn query(&mut self, q: &impl crate::sql::Statement) -> Result<Vec<Row>> {
        self.autoflush().await?;
        self.connection().await?.query(q).await
    }

    /// Reloads an object with `SELECT … FOR UPDATE`, locking its row until the transaction ends.
    pub async fn refresh_for_update<M: Model>(&mut self, obj: &Obj<M>) -> Result<()> {
        let pk = obj.erased().pk_binds();
        match self.get_impl::<M>(pk, true).await? {
            Some(_) => Ok(()),
            None => Err(Error::row_gone(M::TABLE.name)),
        }
    }
}

/// Loaders and the unit of work's child loads run on this narrow view of the session.
impl Context for AsyncSession {
    fn identity_map(&self) -> &IdentityMap {
        &self.identity
    }

    fn identity(&mut self) -> (&mut IdentityMap, &Arc<Registry>) {
        (&mut self.identity, &self.registry)
    }

    fn connection(&mut self) -> BoxFuture<'_, Result<&mut Connection>> {
        Box::pin(AsyncSession::connection(self))
    }

    fn open(
        &mut self,
    ) -> BoxFuture<'_, Result<(&mut Connection, &mut IdentityMap, &Arc<Registry>)>> {
        Box::pin(async move {
            // Inside a flush the session is marked pending-rollback until the flush
            // succeeds: use the open connection as it is.
            if self.conn.is_none() {
                AsyncSession::connection(self).await?;
            }
            self.parts()
        })
    }
}

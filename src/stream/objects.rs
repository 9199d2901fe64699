//! Batches of tracked objects with their relationships loaded: SQLAlchemy's `yield_per(n)`
//! with `selectinload`, one server-side cursor `FETCH` per batch and one statement per
//! relationship (per level) per batch.
//!
//! The stream borrows the session: its objects go through the session's identity map (so a
//! batch's objects are the session's objects, changes to them are flushed by it), and the
//! identity-map entries of objects the caller has let go are dropped before each fetch, so
//! the map holds what the caller holds plus one batch, whatever the result's size.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};

use futures_util::Stream;
use futures_util::future::BoxFuture;

use crate::engine::{Connection, IsolationLevel, TxOptions};
use crate::error::{Error, Result};
use crate::loading::{Load, Loading, Step};
use crate::row::{Columns, Row};
use crate::schema::{Model, RelKind};
use crate::session::AsyncSession;
use crate::sql::{AssertSqlSafe, Bind, Raw, Typed};
use crate::state::{Context, IdentityMap, Obj, Rel, RelVisitor, identify_into, unique};

/// Cursor names are unique per process: a session may hold several cursors (one per stream
/// dropped midway, until its transaction ends) and they must not collide.
static CURSORS: AtomicU64 = AtomicU64::new(0);

/// Where the cursor runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// A connection of its own, in a `REPEATABLE READ READ ONLY` transaction: one snapshot
    /// for the cursor and every relationship statement, committed data only.
    Own,
    /// The session's connection and transaction: sees the session's flushed rows.
    Session,
}

/// Batches of up to `n` tracked objects of a query, each batch's relationships loaded (what
/// [`AsyncSession::stream_scalars`] and [`AsyncSession::stream_scalars_in_transaction`]
/// return).
///
/// Each batch costs one `FETCH` from a server-side cursor plus, for each `selectin`
/// relationship at each level, one statement (keys in one array parameter, sibling options
/// pipelined); `joined` many-to-one relationships come in the cursor's own rows. The
/// stream borrows the session mutably, so no other statement can run on the session while
/// it is open: the compiler refuses it. Between batches [`ScalarBatches::session`] gives
/// read access to the session.
///
/// Objects are tracked (they are the session's objects) while the caller holds them; before
/// each fetch the identity-map entries of objects the caller dropped are removed, so the map
/// holds what the caller keeps plus one batch.
///
/// # Cancel safety
/// Dropping the stream midway: on its own connection, that connection's drop rolls the
/// transaction back (closing the cursor), or, mid-fetch, cancels the statement and drains
/// the connection before it goes back to the pool. In the session's transaction, between
/// batches, the cursor stays open until that transaction ends (commit or rollback closes it)
/// and the session goes on as before; mid-batch (a statement in flight on the session's
/// connection), the session's connection is invalidated: the statement is cancelled, the
/// transaction is lost and the session begins a new one at its next statement.
pub struct ScalarBatches<'s, M: Model> {
    state: State<'s, M>,
    batch: usize,
    rows: u64,
    total: Option<u64>,
}

type Busy<'s, M> = BoxFuture<'s, (Box<Cursor<'s, M>>, Result<Option<Vec<Obj<M>>>>)>;

enum State<'s, M: Model> {
    Idle(Box<Cursor<'s, M>>),
    Busy(Busy<'s, M>),
    Done(Option<Box<Cursor<'s, M>>>),
}

struct Cursor<'s, M: Model> {
    session: &'s mut AsyncSession,
    /// The cursor's connection when it is not the session's.
    own: Option<Connection>,
    loading: Option<Loading<M>>,
    cols: Option<Columns>,
    /// The query, for [`ScalarBatches::count_total`].
    query: (String, Vec<Bind>),
    name: String,
    fetch: String,
    batch: usize,
    /// A short batch was the last: no further `FETCH` is needed.
    exhausted: bool,
    /// Statements are in flight: a drop now leaves them running on the connection.
    busy: bool,
}

impl<M: Model> Drop for Cursor<'_, M> {
    fn drop(&mut self) {
        // Dropped mid-batch on the session's connection: a FETCH or a loader statement may
        // still be running there. The connection is invalidated (the statement cancelled,
        // the connection closed, the transaction lost, as SQLAlchemy does on cancellation);
        // the session stays usable and begins anew. Its own connection's drop cancels and
        // drains by itself.
        if self.busy && self.own.is_none() {
            self.session.invalidate();
        }
    }
}

impl<M: Model> std::fmt::Debug for ScalarBatches<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScalarBatches")
            .field("table", &M::TABLE.name)
            .field("batch", &self.batch)
            .field("rows_read", &self.rows_read())
            .finish_non_exhaustive()
    }
}

/// The paths of `M`'s collection relationships (which a `joined` option cannot batch).
struct Collections(Vec<&'static str>);

impl<M: Model> RelVisitor<M> for Collections {
    fn visit<C: Model>(&mut self, rel: Rel<M, C>) {
        if matches!(rel.def().kind, RelKind::OneToMany | RelKind::ManyToMany) {
            self.0.push(rel.def().path);
        }
    }
}

/// Refuses a `joined` collection at the first level: its rows repeat each parent, so a
/// batch boundary could split one parent's children between two batches.
fn refuse_joined_collections<M: Model>(loading: &Loading<M>) -> Result<()> {
    let mut collections = Collections(Vec::new());
    M::visit_relations(&mut collections);
    for (i, _) in loading.joined() {
        if let Some(step) = loading.load().steps.get(*i) {
            if collections.0.contains(&step.rel_path()) {
                return Err(Error::invalid(format!(
                    "`{}` is a collection loaded by `joined`: its rows repeat the parent, which \
                     batches cannot split; stream it with `selectin`",
                    step.rel_path()
                )));
            }
        }
    }
    Ok(())
}

impl<'s, M: Model> ScalarBatches<'s, M> {
    async fn open<Q: Typed<Output = M>>(
        session: &'s mut AsyncSession,
        q: &Q,
        batch: usize,
        place: Place,
    ) -> Result<Self> {
        if batch == 0 {
            return Err(Error::invalid("a batch needs at least one row"));
        }
        let loading = q
            .loading()
            .and_then(|l| l.downcast_ref::<Loading<M>>())
            .cloned();
        if let Some(l) = &loading {
            refuse_joined_collections(l)?;
        }
        session.flush().await?;
        // Rows from a snapshot without the session's own writes would be tracked as current:
        // a row it deleted back as persistent, one it updated at its old value, an increment
        // lost at the next flush. Once its transaction has written, stream inside it.
        let place = if place == Place::Own && session.transaction_has_written().await? {
            Place::Session
        } else {
            place
        };
        let (sql, binds) = q.compile()?;
        let query = (sql.to_string(), binds.into_owned());
        let name = format!("aludel_objects_{}", CURSORS.fetch_add(1, Ordering::Relaxed));
        let declare = Raw::audited(AssertSqlSafe(format!(
            "DECLARE {name} NO SCROLL CURSOR FOR {}",
            query.0
        )))
        .with_binds(query.1.clone());
        let own = match place {
            Place::Own => {
                let mut conn = session.engine().connect().await?;
                conn.begin_with(
                    TxOptions::new()
                        .isolation(IsolationLevel::RepeatableRead)
                        .read_only(true),
                )
                .await?;
                conn.execute(&declare).await?;
                Some(conn)
            }
            Place::Session => {
                session.connection().await?.execute(&declare).await?;
                None
            }
        };
        let cursor = Cursor {
            session,
            own,
            loading,
            cols: q.columns(),
            query,
            fetch: format!("FETCH FORWARD {batch} FROM {name}"),
            name,
            batch,
            exhausted: false,
            busy: false,
        };
        Ok(ScalarBatches {
            state: State::Idle(Box::new(cursor)),
            batch,
            rows: 0,
            total: None,
        })
    }

    /// Objects yielded so far (for a progress bar or a metric).
    pub fn rows_read(&self) -> u64 {
        self.rows
    }

    /// How many objects the whole stream yields (`None` until
    /// [`ScalarBatches::count_total`] ran): with [`ScalarBatches::rows_read`], a progress bar.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Counts the query's rows (`SELECT count(*) FROM (query)`) on the cursor's connection,
    /// between batches, and remembers it as [`ScalarBatches::total`]. On the stream's own
    /// connection the count reads the cursor's snapshot, so it is exact; in the session's
    /// transaction it is exact at `REPEATABLE READ` and above.
    ///
    /// # Errors
    /// An invalid-request error while a batch is being fetched or after the stream ended.
    pub async fn count_total(&mut self) -> Result<u64> {
        let State::Idle(c) = &mut self.state else {
            return Err(Error::invalid(
                "count_total runs between batches of an open stream",
            ));
        };
        let count = Raw::audited(AssertSqlSafe(format!(
            "SELECT count(*) FROM ({}) AS aludel_total",
            c.query.0
        )))
        .with_binds(c.query.1.clone());
        c.busy = true;
        let conn = match &mut c.own {
            Some(conn) => conn,
            None => c.session.connection().await?,
        };
        let counted: Result<i64> = conn.query_one(&count).await;
        c.busy = false;
        let n = u64::try_from(counted?).unwrap_or(0);
        self.total = Some(n);
        Ok(n)
    }

    /// The session, between batches (`None` while a batch is being fetched): to look at
    /// its identity map or its objects. Statements need the stream to be dropped first.
    pub fn session(&self) -> Option<&AsyncSession> {
        match &self.state {
            State::Idle(c) => Some(&*c.session),
            State::Done(c) => c.as_deref().map(|c| &*c.session),
            State::Busy(_) => None,
        }
    }
}

/// A [`Context`] that reads on the stream's own connection and maps rows through the
/// session's identity map.
struct Via<'a> {
    conn: &'a mut Connection,
    session: &'a mut AsyncSession,
}

impl Context for Via<'_> {
    fn identity_map(&self) -> &IdentityMap {
        Context::identity_map(&*self.session)
    }

    fn identity(&mut self) -> (&mut IdentityMap, &Arc<crate::state::object::Registry>) {
        Context::identity(&mut *self.session)
    }

    fn connection(&mut self) -> BoxFuture<'_, Result<&mut Connection>> {
        Box::pin(async move { Ok(&mut *self.conn) })
    }

    fn open(
        &mut self,
    ) -> BoxFuture<
        '_,
        Result<(
            &mut Connection,
            &mut IdentityMap,
            &Arc<crate::state::object::Registry>,
        )>,
    > {
        Box::pin(async move {
            let (identity, registry) = Context::identity(&mut *self.session);
            Ok((&mut *self.conn, identity, registry))
        })
    }
}

impl<M: Model> Cursor<'_, M> {
    async fn next_batch(&mut self) -> Result<Option<Vec<Obj<M>>>> {
        self.busy = true;
        let r = self.fetch_and_load().await;
        self.busy = false;
        if r.is_err() {
            // Its drop rolls back (or drains) and returns it to the pool.
            self.own = None;
        }
        r
    }

    async fn fetch_and_load(&mut self) -> Result<Option<Vec<Obj<M>>>> {
        if self.exhausted {
            self.close().await?;
            return Ok(None);
        }
        // Entries of objects the caller let go: without this the map would keep one dead
        // entry (and its allocation) per object streamed.
        Context::identity(&mut *self.session)
            .0
            .retain(|_, w| w.strong_count() > 0);
        let mut rows = Vec::with_capacity(self.batch);
        let conn = match &mut self.own {
            Some(conn) => conn,
            None => self.session.connection().await?,
        };
        conn.run_read(false, &self.fetch, &[], |row| {
            rows.push(row);
            Ok(())
        })
        .await?;
        if rows.is_empty() {
            self.close().await?;
            return Ok(None);
        }
        self.exhausted = rows.len() < self.batch;
        let Cursor {
            session,
            own,
            loading,
            cols,
            ..
        } = self;
        let mut via;
        let cx: &mut dyn Context = match own {
            Some(conn) => {
                via = Via { conn, session };
                &mut via
            }
            None => &mut **session,
        };
        load_rows(cx, loading.as_ref(), *cols, rows).await.map(Some)
    }

    /// Ends the cursor: its own transaction, or the cursor alone in the session's.
    async fn close(&mut self) -> Result<()> {
        match &mut self.own {
            Some(conn) => {
                conn.rollback().await?;
                // Back to the pool now, not when the stream is dropped.
                self.own = None;
                Ok(())
            }
            None => {
                let close = Raw::audited(AssertSqlSafe(format!("CLOSE {}", self.name)));
                self.session.connection().await?.execute(&close).await?;
                Ok(())
            }
        }
    }
}

/// Maps one batch's rows through the identity map, then loads the options: joined ones from
/// the same rows, the others (and the relationships' defaults) one level per round trip.
async fn load_rows<M: Model>(
    cx: &mut dyn Context,
    loading: Option<&Loading<M>>,
    cols: Option<Columns>,
    rows: Vec<tokio_postgres::Row>,
) -> Result<Vec<Obj<M>>> {
    let default = Load::default();
    let (load, joined) = match loading {
        Some(l) => (l.load(), l.joined()),
        None => (&default, &[][..]),
    };
    let mut objs = Vec::with_capacity(rows.len());
    if joined.is_empty() {
        let (identity, registry) = cx.identity();
        for row in rows {
            objs.push(identify_into::<M>(
                identity,
                registry,
                &Row(row),
                0,
                false,
                cols,
            )?);
        }
    } else {
        {
            let (identity, registry) = cx.identity();
            for row in &rows {
                objs.push(identify_into::<M>(
                    identity,
                    registry,
                    &Row(row.clone()),
                    0,
                    false,
                    cols,
                )?);
            }
        }
        for (i, offset) in joined {
            if let Some(step) = load.steps.get(*i) {
                step.apply_joined(cx, &objs, &rows, *offset).await?;
            }
        }
        objs = unique(objs);
    }
    let mut rest: Vec<Arc<dyn Step<M>>> = load
        .steps
        .iter()
        .enumerate()
        .filter(|(i, _)| !joined.iter().any(|(j, _)| j == i))
        .map(|(_, s)| s.clone())
        .collect();
    let named: Vec<&'static str> = load.steps.iter().map(|s| s.rel_path()).collect();
    rest.extend(crate::loading::default_steps::<M>(&named, load.raise_all));
    crate::loading::run_steps(cx, &objs, &rest).await?;
    Ok(objs)
}

impl<'s, M: Model> Stream for ScalarBatches<'s, M> {
    type Item = Result<Vec<Obj<M>>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match std::mem::replace(&mut self.state, State::Done(None)) {
                State::Idle(mut cursor) => {
                    self.state = State::Busy(Box::pin(async move {
                        let r = cursor.next_batch().await;
                        (cursor, r)
                    }));
                }
                State::Busy(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.state = State::Busy(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready((cursor, Ok(Some(batch)))) => {
                        self.state = State::Idle(cursor);
                        self.rows += batch.len() as u64;
                        return Poll::Ready(Some(Ok(batch)));
                    }
                    Poll::Ready((cursor, Ok(None))) => {
                        self.state = State::Done(Some(cursor));
                        return Poll::Ready(None);
                    }
                    Poll::Ready((cursor, Err(e))) => {
                        self.state = State::Done(Some(cursor));
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                State::Done(s) => {
                    self.state = State::Done(s);
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl AsyncSession {
    /// Flushes, then streams `q`'s objects in batches of up to `batch`, each batch's
    /// relationships loaded by `q`'s options (see [`ScalarBatches`]): SQLAlchemy's
    /// `stream_scalars(q.execution_options(yield_per=batch)).partitions()`.
    ///
    /// The cursor and the relationship statements run on a connection of their own, in one
    /// `REPEATABLE READ READ ONLY` transaction: every batch and its children come from one
    /// snapshot of committed data. Once the session's transaction has written anything
    /// (including the changes this call flushes first), the stream runs inside that
    /// transaction instead, as [`AsyncSession::stream_scalars_in_transaction`] does: rows from
    /// a snapshot without the session's own writes would be tracked as current.
    ///
    /// ```no_run
    /// # use aludel::{load::selectin, Model, Many};
    /// # #[derive(Model, Clone, Debug)] #[aludel(table = "orders")]
    /// # struct Order { #[aludel(primary_key)] id: i64,
    /// #   #[aludel(one_to_many(fk = Item::order_id))] items: Many<Item> }
    /// # #[derive(Model, Clone, Debug)] #[aludel(table = "items")]
    /// # struct Item { #[aludel(primary_key)] id: i64, #[aludel(references = "Order::id")] order_id: i64 }
    /// # async fn demo(s: &mut aludel::AsyncSession) -> aludel::Result<()> {
    /// use futures_util::TryStreamExt;
    /// let q = aludel::select(Order::ALL).options(selectin(Order::items));
    /// let mut batches = s.stream_scalars(&q, 1_000).await?;
    /// while let Some(orders) = batches.try_next().await? {
    ///     for order in &orders {
    ///         let n = order.read()?.items.len()?; // loaded: one statement for the batch
    /// #       let _ = n;
    ///     }
    /// } // each batch is released from the identity map once dropped
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// An invalid-request error for `batch == 0` and for a collection loaded by `joined`
    /// (its rows repeat each parent: use `selectin`).
    pub async fn stream_scalars<M: Model, Q: Typed<Output = M>>(
        &mut self,
        q: &Q,
        batch: usize,
    ) -> Result<ScalarBatches<'_, M>> {
        ScalarBatches::open(self, q, batch, Place::Own).await
    }

    /// [`AsyncSession::stream_scalars`] on the session's own connection, inside its
    /// transaction (begun if needed): the batches see what the session flushed, in the
    /// transaction's snapshot, and no second connection is checked out. The stream borrows
    /// the session, so nothing else runs on it until the stream is dropped; a stream
    /// dropped midway leaves its cursor open until the transaction ends.
    ///
    /// # Errors
    /// As [`AsyncSession::stream_scalars`].
    pub async fn stream_scalars_in_transaction<M: Model, Q: Typed<Output = M>>(
        &mut self,
        q: &Q,
        batch: usize,
    ) -> Result<ScalarBatches<'_, M>> {
        ScalarBatches::open(self, q, batch, Place::Session).await
    }
}

//! A checked-out connection, and the guarantee about how it goes back.
//!
//! The pool (deadpool) takes back whatever it is given. `Connection` makes sure that is always
//! a connection that is idle and outside any transaction:
//!
//! * a statement in flight when the connection is dropped (its future was cancelled) hands
//!   the connection to a drain task (`engine/drain.rs`): it waits for the server to finish
//!   the statement (sending a cancel request if it keeps running), rolls back, and only then
//!   returns the connection to the pool; one that cannot be drained in time is closed. A
//!   `COMMIT` in flight is drained too: the driver already has it and sends it, so it commits
//!   unless it fails, and the caller that gave up cannot know which (in doubt, as with any
//!   COMMIT whose reply is lost);
//! * an open transaction with no statement in flight gets a `ROLLBACK` queued on the
//!   connection before it goes back (the same thing `tokio_postgres::Transaction` does on
//!   drop): the driver sends requests in order, so the next user's statements run after it;
//! * a connection that failed with a connection error is detached and closed.

use std::borrow::Cow;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::PoolObject as Object;
use futures_util::TryStreamExt;
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, RowStream};
use tracing::Instrument;

use super::drain;
use super::metrics::Metrics;
use super::observe::{StatementEvent, StatementKind, statement_span};
use super::tx::TxOptions;
use super::{Shared, StatementMode};
use crate::error::{Error, Kind, Result};
use crate::row::{FromRow, Row};
use crate::sql::{Bind, Statement, Typed, plain_read_text};

/// What is in flight on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flight {
    Idle,
    Statement,
    Commit,
}

pub(crate) enum Backend {
    Pooled(Option<Object>),
    Direct(Option<(Client, JoinHandle<()>)>),
}

/// A connection checked out of an [`Engine`](crate::Engine), with commit-as-you-go
/// transactions (SQLAlchemy's `AsyncConnection`).
///
/// Dropping it returns it to the pool, rolled back first if a transaction is open; a
/// connection dropped with a statement in flight goes back once the statement has finished
/// (cancelled on the server if it keeps running) and the transaction is rolled back.
pub struct Connection {
    backend: Backend,
    shared: Arc<Shared>,
    /// A statement was sent and its result not fully read (and whether it is a `COMMIT`).
    in_flight: Flight,
    /// The connection can no longer be trusted (connection error).
    broken: bool,
    /// 0 outside a transaction, 1 in one, +1 per open savepoint.
    depth: u32,
    /// A statement failed inside the transaction; only a rollback helps.
    aborted: bool,
    pid: Option<i32>,
    /// The driver client was handed out: transaction state is unknown.
    dirty: bool,
    /// The driver client was handed out: a request it started (a COPY whose sink or stream
    /// outlives the borrow, a query future still alive) may still be running, so the
    /// connection goes back through the drain, never straight to the pool.
    driver_used: bool,
    /// A session transaction whose `BEGIN` is not sent yet (deferred until the first
    /// statement that is not a plain read; see [`Connection::begin_deferred`]).
    begin_pending: Option<Cow<'static, str>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("pooled", &matches!(self.backend, Backend::Pooled(_)))
            .field("in_transaction", &(self.depth > 0))
            .field("savepoints", &self.depth.saturating_sub(1))
            .field("broken", &self.broken)
            .finish()
    }
}

/// A savepoint opened with [`Connection::savepoint`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "release or roll back the savepoint"]
pub struct Savepoint {
    depth: u32,
}

impl Connection {
    pub(crate) fn new(backend: Backend, shared: Arc<Shared>) -> Self {
        Connection {
            backend,
            shared,
            in_flight: Flight::Idle,
            broken: false,
            depth: 0,
            aborted: false,
            pid: None,
            dirty: false,
            driver_used: false,
            begin_pending: None,
        }
    }

    fn client(&self) -> Result<&Client> {
        match &self.backend {
            Backend::Pooled(Some(obj)) => Ok(obj),
            Backend::Direct(Some((client, _))) => Ok(client),
            _ => Err(Error::connection_lost()),
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::connection_lost());
        }
        if self.aborted {
            return Err(Error::transaction_aborted());
        }
        Ok(())
    }

    /// Runs `stmt` and returns all rows.
    ///
    /// # Cancel safety
    /// Dropping the future mid-statement leaves the statement's outcome unknown; when the
    /// `Connection` is then dropped, it is drained in the background (the statement is
    /// cancelled on the server if it keeps running, an open transaction is rolled back) and
    /// goes back to the pool idle. Do not use the connection again after such a drop: drop
    /// it.
    pub async fn query(&mut self, stmt: &impl Statement) -> Result<Vec<Row>> {
        self.query_as::<Row>(stmt).await
    }

    /// Runs `stmt` and maps each row into `T` as it arrives.
    pub async fn query_as<T: FromRow>(&mut self, stmt: &impl Statement) -> Result<Vec<T>> {
        self.query_cols(stmt, None).await
    }

    /// `query_as` for rows whose deferred columns `cols` chose.
    pub(crate) async fn query_cols<T: FromRow>(
        &mut self,
        stmt: &impl Statement,
        cols: Option<crate::row::Columns>,
    ) -> Result<Vec<T>> {
        let (sql, binds) = stmt.compile()?;
        let mut out = Vec::new();
        self.run_read(stmt.is_plain_read(), &sql, &binds, |row| {
            out.push(crate::row::decode_row(&Row(row), cols)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Runs `stmt`, which must return exactly one row.
    pub async fn query_one<T: FromRow>(&mut self, stmt: &impl Statement) -> Result<T> {
        self.query_opt(stmt).await?.ok_or_else(Error::not_found)
    }

    /// Runs `stmt`, which must return zero or one row.
    pub async fn query_opt<T: FromRow>(&mut self, stmt: &impl Statement) -> Result<Option<T>> {
        self.query_opt_cols(stmt, None).await
    }

    async fn query_opt_cols<T: FromRow>(
        &mut self,
        stmt: &impl Statement,
        cols: Option<crate::row::Columns>,
    ) -> Result<Option<T>> {
        let (sql, binds) = stmt.compile()?;
        let mut first = None;
        let mut many = false;
        self.run_read(stmt.is_plain_read(), &sql, &binds, |row| {
            if first.is_none() {
                first = Some(crate::row::decode_row(&Row(row), cols)?);
            } else {
                many = true;
            }
            Ok(())
        })
        .await?;
        if many {
            return Err(Error::multiple_rows());
        }
        Ok(first)
    }

    /// Runs a typed statement and maps every row (`session.execute(...).all()` in SQLAlchemy).
    pub async fn all<Q: Typed>(&mut self, q: &Q) -> Result<Vec<Q::Output>> {
        self.query_cols(q, q.columns()).await
    }

    /// Runs a typed statement that must return exactly one row.
    pub async fn one<Q: Typed>(&mut self, q: &Q) -> Result<Q::Output> {
        self.one_or_none(q).await?.ok_or_else(Error::not_found)
    }

    /// Runs a typed statement that returns zero or one row.
    pub async fn one_or_none<Q: Typed>(&mut self, q: &Q) -> Result<Option<Q::Output>> {
        self.query_opt_cols(q, q.columns()).await
    }

    /// The first row of a typed statement, if any. Adds no `LIMIT`; later rows are read and
    /// discarded (SQLAlchemy's `first()`).
    pub async fn first<Q: Typed>(&mut self, q: &Q) -> Result<Option<Q::Output>> {
        let (sql, binds) = q.compile()?;
        let cols = q.columns();
        let mut first = None;
        self.run_read(q.is_plain_read(), &sql, &binds, |row| {
            if first.is_none() {
                first = Some(crate::row::decode_row(&Row(row), cols)?);
            }
            Ok(())
        })
        .await?;
        Ok(first)
    }

    /// Runs `stmt` and returns the number of rows it affected.
    pub async fn execute(&mut self, stmt: &impl Statement) -> Result<u64> {
        let (sql, binds) = stmt.compile()?;
        self.run(&sql, &binds, |_| Ok(())).await
    }

    /// Runs one statement once per parameter set (executemany), pipelined: every execution
    /// is sent without waiting for the previous one's answer, so 1,000 sets cost about one
    /// round trip. Reported to observers as one statement. Returns the total rows affected.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut aludel::Connection) -> aludel::Result<()> {
    /// use aludel::{sql, types::Bind};
    /// let sets = (0..1000).map(|i| vec![Bind::new(i), Bind::new(format!("user {i}"))]);
    /// conn.execute_many(&sql("INSERT INTO users (id, name) VALUES ($1, $2)"), sets).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_many<I>(&mut self, stmt: &impl Statement, param_sets: I) -> Result<u64>
    where
        I: IntoIterator<Item = Vec<Bind>>,
    {
        let own_tx = !self.in_transaction();
        if own_tx {
            // Each pipelined execution ends with its own Sync: outside a transaction each
            // would commit on its own. One transaction makes the batch all or nothing.
            self.begin().await?;
        }
        let result = self.execute_many_in_tx(stmt, param_sets).await;
        if own_tx {
            match &result {
                Ok(_) => self.commit().await?,
                Err(_) => {
                    let _ = self.rollback().await;
                }
            }
        }
        result
    }

    async fn execute_many_in_tx<I>(&mut self, stmt: &impl Statement, param_sets: I) -> Result<u64>
    where
        I: IntoIterator<Item = Vec<Bind>>,
    {
        let (sql, _) = stmt.compile()?;
        let sets: Vec<Vec<Bind>> = param_sets.into_iter().collect();
        self.check_usable()?;
        self.screen(&sql)?;
        self.send_pending_begin()?;
        let started = Instant::now();
        let params = sets.iter().map(Vec::len).sum();
        let span = statement_span(&sql, params);
        self.in_flight = Flight::Statement;
        let result = self.send_many(&sql, &sets).instrument(span.clone()).await;
        self.in_flight = Flight::Idle;
        self.finish(&sql, params, StatementKind::Query, started, &span, result)
    }

    async fn send_many(&self, sql: &str, sets: &[Vec<Bind>]) -> Result<u64> {
        let Some(first) = sets.first() else {
            return Ok(0);
        };
        check_param_count(first.len())?;
        let counts = match (&self.backend, self.shared.exec.mode) {
            (Backend::Pooled(Some(obj)), StatementMode::Cached) => {
                let types: Vec<Type> = first.iter().map(|b| b.sql_type().clone()).collect();
                let prepared = prepare_cached(obj, sql, &types, &self.shared.exec.stmt_cache).await;
                let stmt = prepared.map_err(|e| {
                    if super::cache::is_stale_statement(&e) {
                        // Inside the batch's transaction: no retry, but the next
                        // statement prepares afresh.
                        obj.statements.clear();
                    }
                    Error::from_driver(e)
                })?;
                let runs = sets
                    .iter()
                    .map(|b| obj.execute_raw(&stmt, b.iter().map(Bind::as_to_sql)));
                collect_all(futures_util::future::join_all(runs).await)
            }
            _ => {
                let client = self.client()?;
                let runs = sets.iter().map(|b| {
                    let typed: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> = b
                        .iter()
                        .map(|v| (v.as_to_sql(), v.sql_type().clone()))
                        .collect();
                    async move {
                        let stream = client.query_typed_raw(sql, typed).await?;
                        let mut stream = pin!(stream);
                        while stream.as_mut().try_next().await?.is_some() {}
                        Ok::<_, tokio_postgres::Error>(stream.rows_affected().unwrap_or(0))
                    }
                });
                collect_all(futures_util::future::join_all(runs).await)
            }
        };
        counts.map(|c| c.iter().sum()).map_err(Error::from_driver)
    }

    /// The driver's client, for what aludel does not wrap (COPY, LISTEN/NOTIFY). Statements
    /// sent through it run in this connection's transaction but are not observed or traced.
    ///
    /// Because statements sent through it are not tracked, a connection whose driver client
    /// was used always gets a `ROLLBACK` queued when it goes back to the pool.
    pub fn driver_client(&mut self) -> Result<&Client> {
        self.send_pending_begin()?;
        self.dirty = true;
        self.driver_used = true;
        self.client()
    }

    /// Runs a script of one or more statements with the simple protocol and no parameters
    /// (DDL, `SET`, …). Only `&'static str` text is accepted.
    ///
    /// Transaction control in the script (`BEGIN`, `COMMIT`, … anywhere in it) is refused
    /// before anything is sent; use [`Connection::begin`] and friends. A connection that ran
    /// a script always gets a `ROLLBACK` queued when it goes back to the pool (and the
    /// engine's [`SessionReset`](crate::engine::SessionReset), if any), whatever the script did.
    pub async fn batch_execute(&mut self, script: &'static str) -> Result<()> {
        self.screen(script)?;
        self.dirty = true;
        self.simple(script, StatementKind::Script).await
    }

    /// The server process id of this connection (`pg_backend_pid()`), cached after the first
    /// call.
    pub async fn backend_pid(&mut self) -> Result<i32> {
        if let Some(pid) = self.pid {
            return Ok(pid);
        }
        let pid: i32 = self
            .query_one(&crate::sql::sql("SELECT pg_backend_pid()"))
            .await?;
        self.pid = Some(pid);
        Ok(pid)
    }

    /// Starts a transaction with the engine's default options.
    ///
    /// # Errors
    /// An invalid-request error when a transaction is already open.
    ///
    /// # Cancel safety
    /// Dropping the future mid-`BEGIN` discards the connection.
    pub async fn begin(&mut self) -> Result<()> {
        self.begin_with(TxOptions::new()).await
    }

    /// Starts a transaction with explicit isolation level / read-only / deferrable options.
    pub async fn begin_with(&mut self, options: TxOptions) -> Result<()> {
        if self.depth > 0 {
            return Err(Error::invalid(
                "a transaction is already open on this connection",
            ));
        }
        if self.broken {
            return Err(Error::connection_lost());
        }
        self.begin_pending = Some(options.or(self.shared.exec.default_tx).begin_sql());
        self.depth = 1;
        self.aborted = false;
        self.send_pending_begin()
    }

    /// Opens a session transaction whose `BEGIN` may be deferred: at READ COMMITTED, plain
    /// reads from the typed builder (see [`Statement::is_plain_read`]) run before it, and
    /// `BEGIN` is sent with the first other statement. A transaction in which only such reads
    /// ran ends without sending anything (no `COMMIT`/`ROLLBACK`). At READ COMMITTED each
    /// statement takes its own snapshot, so a read-only prefix outside the transaction sees
    /// what it would have seen inside it; the reasoning and the limits are in
    /// `docs/architecture.md`. Any other isolation level (asked for, or the server's
    /// default), or an engine built with `lazy_begin(false)`, begins at once.
    pub(crate) async fn begin_deferred(&mut self, options: TxOptions) -> Result<()> {
        let options = options.or(self.shared.exec.default_tx);
        if !self.shared.exec.lazy_begin {
            return self.begin_with(options).await;
        }
        let read_committed = match options.isolation_level() {
            Some(level) => level.is_read_committed(),
            None => self.server_default_read_committed().await?,
        };
        if !read_committed {
            return self.begin_with(options).await;
        }
        if self.depth > 0 {
            return Err(Error::invalid(
                "a transaction is already open on this connection",
            ));
        }
        if self.broken {
            return Err(Error::connection_lost());
        }
        self.begin_pending = Some(options.begin_sql());
        self.depth = 1;
        self.aborted = false;
        Ok(())
    }

    /// Whether the server's `default_transaction_isolation` is READ COMMITTED (or READ
    /// UNCOMMITTED, which PostgreSQL runs as READ COMMITTED). Asked once per engine.
    async fn server_default_read_committed(&mut self) -> Result<bool> {
        if let Some(known) = self.shared.server_read_committed.get() {
            return Ok(*known);
        }
        self.check_usable()?;
        // Sent by the engine, not the user, and still reported like any statement: observers
        // see every statement that reaches the server.
        const SQL: &str = "SHOW default_transaction_isolation";
        let started = Instant::now();
        let span = statement_span(SQL, 0);
        self.in_flight = Flight::Statement;
        let answer = async {
            self.client()?
                .simple_query(SQL)
                .await
                .map_err(Error::from_driver)
        }
        .instrument(span.clone())
        .await;
        self.in_flight = Flight::Idle;
        let (messages, rows) = match answer {
            Ok(messages) => {
                let rows = messages
                    .iter()
                    .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                    .count() as u64;
                (messages, Ok(rows))
            }
            Err(e) => (Vec::new(), Err(e)),
        };
        self.finish(SQL, 0, StatementKind::Internal, started, &span, rows)?;
        let level = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        });
        let rc = matches!(
            level.as_deref(),
            Some("read committed" | "read uncommitted")
        );
        let _ = self.shared.server_read_committed.set(rc);
        Ok(rc)
    }

    /// Sends a deferred `BEGIN`, pipelined: sent now, its answer not awaited, so it costs no
    /// round trip of its own. The driver sends requests in order, so the next statement runs
    /// inside the transaction; a BEGIN that fails (only possible on a broken connection)
    /// fails that statement.
    fn send_pending_begin(&mut self) -> Result<()> {
        let Some(sql) = self.begin_pending.take() else {
            return Ok(());
        };
        let queued = {
            let client = self.client()?;
            let fut = client.batch_execute(&sql);
            let mut fut = pin!(fut);
            let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
            !matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Err(_)))
        };
        if !queued {
            self.broken = true;
            return Err(Error::connection_lost());
        }
        self.shared.exec.observers.report(&StatementEvent {
            sql: &sql,
            kind: StatementKind::Begin,
            params: 0,
            rows: 0,
            elapsed: std::time::Duration::ZERO,
            error: None,
        });
        Ok(())
    }

    /// A transaction is open on the server (its `BEGIN` was sent).
    fn in_server_transaction(&self) -> bool {
        self.depth > 0 && self.begin_pending.is_none()
    }

    /// True inside a transaction.
    pub fn in_transaction(&self) -> bool {
        self.depth > 0
    }

    /// True inside a savepoint.
    pub fn in_nested_transaction(&self) -> bool {
        self.depth > 1
    }

    /// Commits the transaction. A transaction aborted by an earlier error is rolled back
    /// instead and the call fails with a transaction-aborted error (PostgreSQL would answer
    /// `COMMIT` with a silent `ROLLBACK`).
    ///
    /// # Cancellation
    ///
    /// Dropping this future after its first poll (a deadline, a client gone) leaves the
    /// `COMMIT` with the driver: it is sent, it commits unless it fails, and the caller cannot
    /// tell which. The connection is drained in the background and goes back to the pool only
    /// after the server answered. Treat such a commit as in doubt;
    /// [`PoolMetrics::commits_in_doubt`](crate::engine::PoolMetrics::commits_in_doubt) counts
    /// them.
    pub async fn commit(&mut self) -> Result<()> {
        if self.depth == 0 {
            return Err(Error::invalid("commit without an open transaction"));
        }
        if self.begin_pending.take().is_some() {
            // Only plain reads ran: there is no server transaction to end.
            self.depth = 0;
            return if std::mem::replace(&mut self.aborted, false) {
                Err(Error::transaction_aborted())
            } else {
                Ok(())
            };
        }
        if self.aborted {
            self.rollback().await?;
            return Err(Error::transaction_aborted());
        }
        let r = self.simple("COMMIT", StatementKind::Commit).await;
        // COMMIT ends the transaction whether it succeeded or not.
        self.depth = 0;
        self.aborted = false;
        r
    }

    /// Rolls the transaction back. A no-op outside a transaction.
    pub async fn rollback(&mut self) -> Result<()> {
        if self.depth == 0 {
            return Ok(());
        }
        self.aborted = false;
        if self.begin_pending.take().is_some() {
            self.depth = 0;
            return Ok(());
        }
        let r = self.simple("ROLLBACK", StatementKind::Rollback).await;
        self.depth = 0;
        r
    }

    /// Opens a savepoint inside the transaction (SQLAlchemy's `begin_nested`).
    pub async fn savepoint(&mut self) -> Result<Savepoint> {
        if self.depth == 0 {
            return Err(Error::invalid("a savepoint needs an open transaction"));
        }
        let depth = self.depth + 1;
        let sql = format!("SAVEPOINT aludel_sp_{depth}");
        self.simple(&sql, StatementKind::Savepoint).await?;
        self.depth = depth;
        Ok(Savepoint { depth })
    }

    /// Releases a savepoint (and any opened after it), keeping its work in the transaction.
    pub async fn release_savepoint(&mut self, sp: Savepoint) -> Result<()> {
        self.check_savepoint(&sp)?;
        if self.aborted {
            return Err(Error::transaction_aborted());
        }
        let sql = format!("RELEASE SAVEPOINT aludel_sp_{}", sp.depth);
        self.simple(&sql, StatementKind::Savepoint).await?;
        self.depth = sp.depth - 1;
        Ok(())
    }

    /// Rolls back to a savepoint, undoing its work; the transaction goes on, usable again even
    /// if a statement inside the savepoint failed.
    pub async fn rollback_to_savepoint(&mut self, sp: Savepoint) -> Result<()> {
        self.check_savepoint(&sp)?;
        let was_aborted = std::mem::replace(&mut self.aborted, false);
        let sql = format!(
            "ROLLBACK TO SAVEPOINT aludel_sp_{0}; RELEASE SAVEPOINT aludel_sp_{0}",
            sp.depth
        );
        let r = self.simple(&sql, StatementKind::Savepoint).await;
        if r.is_err() {
            self.aborted = was_aborted;
        } else {
            self.depth = sp.depth - 1;
        }
        r
    }

    fn check_savepoint(&self, sp: &Savepoint) -> Result<()> {
        if sp.depth > self.depth || sp.depth < 2 {
            return Err(Error::invalid("that savepoint is no longer open"));
        }
        Ok(())
    }

    /// Gives the connection back: rolls back an open transaction first (awaited, unlike the
    /// rollback a plain drop queues).
    pub async fn close(mut self) -> Result<()> {
        self.rollback().await
    }

    /// Closes the connection for good instead of returning it to the pool (SQLAlchemy's
    /// `invalidate()`): its server process ends and is never handed out again.
    pub fn invalidate(mut self) {
        self.broken = true;
    }

    /// Runs one extended-protocol statement, feeding each row to `sink`. Returns the rows
    /// affected (DML) or returned (queries).
    pub(crate) async fn run<F>(&mut self, sql: &str, binds: &[Bind], sink: F) -> Result<u64>
    where
        F: FnMut(tokio_postgres::Row) -> Result<()>,
    {
        self.run_read(false, sql, binds, sink).await
    }

    /// [`Connection::run`] for a statement that may run before a deferred `BEGIN` when
    /// `plain_read` (the statement says it is a plain builder SELECT) and its text passes
    /// [`plain_read_text`]; anything else sends the deferred `BEGIN` first.
    pub(crate) async fn run_read<F>(
        &mut self,
        plain_read: bool,
        sql: &str,
        binds: &[Bind],
        sink: F,
    ) -> Result<u64>
    where
        F: FnMut(tokio_postgres::Row) -> Result<()>,
    {
        self.check_usable()?;
        if self.begin_pending.is_some() && !(plain_read && plain_read_text(sql)) {
            self.send_pending_begin()?;
        }
        self.screen(sql)?;
        let started = Instant::now();
        let span = statement_span(sql, binds.len());
        self.in_flight = Flight::Statement;
        let result = self.send(sql, binds, sink).instrument(span.clone()).await;
        self.in_flight = Flight::Idle;
        self.finish(
            sql,
            binds.len(),
            StatementKind::Query,
            started,
            &span,
            result,
        )
    }

    async fn send<F>(&self, sql: &str, binds: &[Bind], mut sink: F) -> Result<u64>
    where
        F: FnMut(tokio_postgres::Row) -> Result<()>,
    {
        let stream = self.start_now(sql, binds).await?;
        let mut stream = pin!(stream);
        let mut n = 0u64;
        while let Some(row) = stream
            .as_mut()
            .try_next()
            .await
            .map_err(Error::from_driver)?
        {
            if let Err(mapping) = sink(row) {
                // Read the statement to its end: a server error after this row (which aborts
                // the transaction) must not go unseen, and the connection must end idle.
                loop {
                    match stream.as_mut().try_next().await {
                        Ok(Some(_)) => {}
                        Ok(None) => return Err(mapping),
                        Err(server) => return Err(Error::from_driver(server)),
                    }
                }
            }
            n += 1;
        }
        Ok(stream.rows_affected().unwrap_or(n))
    }

    /// Runs several statements on this connection at once: every request is written before
    /// any answer is awaited (tokio-postgres pipelines requests on one connection), so the
    /// batch costs one round trip instead of one per statement. Rows come back per statement,
    /// in order; each statement is reported to observers like a single one.
    pub(crate) async fn run_pipelined(
        &mut self,
        stmts: &[(std::sync::Arc<str>, Vec<Bind>)],
    ) -> Result<Vec<Vec<tokio_postgres::Row>>> {
        self.check_usable()?;
        for (sql, _) in stmts {
            self.screen(sql)?;
        }
        // Loader statements are builder SELECTs: they may run before a deferred BEGIN when
        // their text is plainly a read.
        if self.begin_pending.is_some() && !stmts.iter().all(|(sql, _)| plain_read_text(sql)) {
            self.send_pending_begin()?;
        }
        let started = Instant::now();
        self.in_flight = Flight::Statement;
        let results = {
            let this = &*self;
            futures_util::future::join_all(stmts.iter().map(|(sql, binds)| {
                let span = statement_span(sql, binds.len());
                let inner = span.clone();
                async move {
                    let mut rows = Vec::new();
                    let n = this
                        .send(sql, binds, |row| {
                            rows.push(row);
                            Ok(())
                        })
                        .await;
                    (n.map(|_| rows), span)
                }
                .instrument(inner)
            }))
            .await
        };
        self.in_flight = Flight::Idle;
        let mut out = Vec::with_capacity(results.len());
        let mut first_err = None;
        for ((sql, binds), (result, span)) in stmts.iter().zip(results) {
            let (count, rows) = match result {
                Ok(rows) => (Ok(rows.len() as u64), rows),
                Err(e) => (Err(e), Vec::new()),
            };
            match self.finish(
                sql,
                binds.len(),
                StatementKind::Query,
                started,
                &span,
                count,
            ) {
                Ok(_) => out.push(rows),
                // The statement that failed first aborted the transaction: report it rather
                // than a later one's "transaction is aborted".
                Err(e) => match &first_err {
                    Some(prev) if !is_aborted_echo(prev) => {}
                    Some(_) if is_aborted_echo(&e) => {}
                    _ => first_err = Some(e),
                },
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Marks a statement as sent and not fully read (streams), or finished.
    pub(crate) fn set_in_flight(&mut self, on: bool) {
        self.in_flight = if on { Flight::Statement } else { Flight::Idle };
    }

    /// Reports a streamed statement to observers and the slow log when it ends.
    pub(crate) fn stream_finished(
        &mut self,
        sql: &str,
        params: usize,
        started: Instant,
        rows: u64,
        error: Option<&Error>,
    ) {
        self.shared.exec.observers.report(&StatementEvent {
            sql,
            kind: StatementKind::Query,
            params,
            rows,
            elapsed: started.elapsed(),
            error,
        });
    }

    /// Sends the statement the way the engine's statement mode says and returns the row
    /// stream.
    pub(crate) async fn start(&mut self, sql: &str, binds: &[Bind]) -> Result<RowStream> {
        self.screen(sql)?;
        self.send_pending_begin()?;
        self.start_now(sql, binds).await
    }

    async fn start_now(&self, sql: &str, binds: &[Bind]) -> Result<RowStream> {
        check_param_count(binds.len())?;
        let stream = match (&self.backend, self.shared.exec.mode) {
            (Backend::Pooled(Some(obj)), StatementMode::Cached) => {
                match cached_query(obj, sql, binds, &self.shared.exec.stmt_cache).await {
                    Err(e) if super::cache::is_stale_statement(&e) => {
                        // The server no longer has this connection's named statements (a
                        // transaction-mode pooler moved us to another backend, or someone
                        // ran DEALLOCATE / DISCARD): forget them all, so it fails once, not
                        // forever.
                        obj.statements.clear();
                        if !self.in_server_transaction() {
                            // Outside a transaction the failed statement aborted nothing:
                            // prepare afresh and run it once more.
                            cached_query(obj, sql, binds, &self.shared.exec.stmt_cache).await
                        } else {
                            Err(e)
                        }
                    }
                    other => other,
                }
            }
            _ => {
                let typed = binds.iter().map(|b| (b.as_to_sql(), b.sql_type().clone()));
                self.client()?.query_typed_raw(sql, typed).await
            }
        };
        stream.map_err(Error::from_driver)
    }

    /// Runs a simple-protocol statement (transaction control, scripts).
    async fn simple(&mut self, sql: &str, kind: StatementKind) -> Result<()> {
        if self.broken {
            return Err(Error::connection_lost());
        }
        if self.aborted && !matches!(kind, StatementKind::Rollback | StatementKind::Savepoint) {
            return Err(Error::transaction_aborted());
        }
        self.send_pending_begin()?;
        let started = Instant::now();
        let span = statement_span(sql, 0);
        self.in_flight = if kind == StatementKind::Commit {
            Flight::Commit
        } else {
            Flight::Statement
        };
        let fut = async {
            let client = self.client()?;
            client.batch_execute(sql).await.map_err(Error::from_driver)
        };
        let result = fut.instrument(span.clone()).await.map(|()| 0);
        self.in_flight = Flight::Idle;
        self.finish(sql, 0, kind, started, &span, result)
            .map(|_| ())
    }

    /// Bookkeeping after a statement: connection and transaction state, observers, span.
    fn finish(
        &mut self,
        sql: &str,
        params: usize,
        kind: StatementKind,
        started: Instant,
        span: &tracing::Span,
        result: Result<u64>,
    ) -> Result<u64> {
        let elapsed = started.elapsed();
        let result = result.map_err(|e| {
            if e.is_connection_lost() {
                self.broken = true;
            } else if self.depth > 0 && matches!(e.kind(), Kind::Db(_)) {
                self.aborted = true;
            }
            e.with_statement(sql)
                .with_show_values(self.shared.exec.show_values)
        });
        let rows = *result.as_ref().unwrap_or(&0);
        span.record("db.rows", rows);
        span.record("elapsed_ms", elapsed.as_secs_f64() * 1000.0);
        if let Err(e) = &result {
            span.record("error", tracing::field::display(e));
        }
        self.shared.exec.observers.report(&StatementEvent {
            sql,
            kind,
            params,
            rows,
            elapsed,
            error: result.as_ref().err(),
        });
        result
    }

    /// A statement was in flight (its future was dropped): a pooled connection goes to a
    /// drain task that brings it back to idle (cancelling the statement if it keeps running)
    /// and returns it to the pool; see `engine/drain.rs`. Without a runtime, or unpooled, it
    /// is cancelled and closed.
    fn drain_or_discard(&mut self) {
        let reset = drain::Reset {
            rollback: self.in_server_transaction() || self.dirty,
            script: self.dirty.then(|| self.shared.exec.reset.sql()).flatten(),
        };
        let Backend::Pooled(slot) = &mut self.backend else {
            self.discard();
            return;
        };
        let Some(obj) = slot.take() else { return };
        if let Some(obj) = drain::spawn(obj, reset, &self.shared.pg, self.shared.metrics.clone()) {
            Metrics::bump(&self.shared.metrics.cancelled_discarded);
            *slot = Some(obj);
            self.discard();
        }
    }

    /// Detaches the connection from the pool and closes it; cancels a running statement
    /// first when one was in flight.
    fn discard(&mut self) {
        let cancel = self.in_flight != Flight::Idle;
        match &mut self.backend {
            Backend::Pooled(slot) => {
                if let Some(obj) = slot.take() {
                    // Out of the pool's accounting for good; dropping the wrapper aborts its
                    // connection task, which closes the socket.
                    let wrapper = Object::take(obj);
                    spawn_cancel(cancel.then(|| wrapper.cancel_token()));
                }
            }
            Backend::Direct(slot) => {
                if let Some((client, task)) = slot.take() {
                    spawn_cancel(cancel.then(|| client.cancel_token()));
                    task.abort();
                }
            }
        }
    }
}

/// The connection's prepared statement for `sql` with `types`, prepared now on a miss.
async fn prepare_cached(
    obj: &Object,
    sql: &str,
    types: &[Type],
    bound: &super::cache::Bound,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if let Some(stmt) = obj.statements.get(sql, types, bound) {
        return Ok(stmt);
    }
    /// Marks the cache when the prepare is dropped before it answers: its `Parse` may
    /// still succeed on the server, under a name nothing will close.
    struct Preparing<'a>(&'a super::cache::Statements, bool);
    impl Drop for Preparing<'_> {
        fn drop(&mut self) {
            if !self.1 {
                self.0.mark_orphaned();
            }
        }
    }
    let mut preparing = Preparing(&obj.statements, false);
    let stmt = obj.prepare_typed(sql, types).await;
    preparing.1 = true;
    let stmt = stmt?;
    obj.statements.insert(sql, types, stmt.clone(), bound);
    Ok(stmt)
}

/// Prepares `sql` through the connection's statement cache and starts it.
async fn cached_query(
    obj: &Object,
    sql: &str,
    binds: &[Bind],
    cache: &super::cache::Bound,
) -> Result<RowStream, tokio_postgres::Error> {
    let types: Vec<Type> = binds.iter().map(|b| b.sql_type().clone()).collect();
    let stmt = prepare_cached(obj, sql, &types, cache).await?;
    obj.query_raw(&stmt, binds.iter().map(Bind::as_to_sql))
        .await
}

/// The extended protocol counts parameters in 16 bits: refuse more before the driver does,
/// with a message that says so. Nothing is sent; the connection stays usable.
fn check_param_count(n: usize) -> Result<()> {
    if n > usize::from(u16::MAX) {
        return Err(Error::encode(
            crate::error::EncodeReason::TooLarge,
            format!("{n} bind parameters; PostgreSQL's protocol carries at most 65,535"),
        ));
    }
    Ok(())
}

/// Every execution of a batch has answered by now; the first error wins.
fn collect_all(
    results: Vec<Result<u64, tokio_postgres::Error>>,
) -> Result<Vec<u64>, tokio_postgres::Error> {
    results.into_iter().collect()
}

impl Connection {
    /// Looks at SQL text before it is sent: transaction control must go through
    /// `begin`/`commit`/`rollback`/`savepoint` (refused here, a courtesy), and a statement the
    /// lexer cannot classify as plain marks the connection for a reset on return, which is
    /// what actually keeps transaction state out of the pool.
    fn screen(&mut self, sql: &str) -> Result<()> {
        let scan = super::lexer::scan(sql);
        if let Some(keyword) = scan.control {
            return Err(Error::invalid(format!(
                "`{keyword}` sent as SQL text: transaction control statements must use \
                 Connection::begin / commit / rollback / savepoint"
            )));
        }
        if !scan.plain {
            self.dirty = true;
        }
        Ok(())
    }
}

fn spawn_cancel(token: Option<tokio_postgres::CancelToken>) {
    let Some(token) = token else { return };
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            if let Err(e) = token.cancel_query(NoTls).await {
                tracing::debug!(target: "aludel::engine", error = %e, "cancel request failed");
            }
        });
    }
}

/// Sends `ROLLBACK` without waiting for the answer: the request is queued on the connection
/// during the first poll (tokio-postgres sends before its first await), and requests are
/// processed in order, so the next user of the connection runs after it.
///
/// `reset` (the engine's [`SessionReset`](crate::SessionReset) script) is queued after it, as
/// a request of its own: `DISCARD`-style statements refuse to run inside a transaction block.
fn queue_rollback(client: &Client, reset: Option<&'static str>) -> bool {
    let queue = |sql: &str| {
        let fut = client.batch_execute(sql);
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        !matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Err(_)))
    };
    queue("ROLLBACK") && reset.is_none_or(queue)
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.broken {
            if matches!(self.backend, Backend::Pooled(Some(_))) {
                Metrics::bump(&self.shared.metrics.discarded_broken);
            }
            self.discard();
            return;
        }
        match self.in_flight {
            // Whatever the driver client started is awaited (and cancelled if it keeps
            // running) before the connection goes back.
            Flight::Idle if self.driver_used => return self.drain_or_discard(),
            Flight::Idle => {}
            Flight::Statement => return self.drain_or_discard(),
            // Drained like any statement. Once its future was polled the driver has the
            // COMMIT and sends it: closing the connection would not stop it, only lose the
            // connection. Its outcome is unknown to the caller either way (the session marks
            // its objects in doubt); the drain waits for its answer before the connection
            // goes back.
            Flight::Commit => {
                Metrics::bump(&self.shared.metrics.commits_in_doubt);
                return self.drain_or_discard();
            }
        }
        if (self.depth > 0 && self.begin_pending.is_none()) || self.dirty {
            let reset = self.dirty.then(|| self.shared.exec.reset.sql()).flatten();
            let queued = match self.client() {
                Ok(client) => queue_rollback(client, reset),
                Err(_) => false,
            };
            if queued {
                let sent = [("ROLLBACK", StatementKind::Rollback)]
                    .into_iter()
                    .chain(reset.map(|sql| (sql, StatementKind::Script)));
                for (sql, kind) in sent {
                    self.shared.exec.observers.report(&StatementEvent {
                        sql,
                        kind,
                        params: 0,
                        rows: 0,
                        elapsed: std::time::Duration::ZERO,
                        error: None,
                    });
                }
            } else {
                self.discard();
            }
        }
    }
}

/// SQLSTATE 25P02: a statement refused because an earlier one aborted the transaction.
fn is_aborted_echo(e: &Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
}

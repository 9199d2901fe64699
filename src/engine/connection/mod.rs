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

mod exec;
mod release;
mod state;
mod transaction;

use std::sync::Arc;
use std::time::Instant;

use super::PoolObject as Object;
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tracing::Instrument;

use self::state::{Flight, State, Untracked};
use super::Shared;
use super::observe::{StatementKind, statement_span};
use crate::error::{Error, Result};
use crate::row::{FromRow, Row};
use crate::sql::{Bind, Statement, Typed};

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
    /// In flight, transaction, untracked SQL, broken: what `Drop` decides from.
    state: State,
    pid: Option<i32>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("pooled", &matches!(self.backend, Backend::Pooled(_)))
            .field("in_transaction", &self.in_transaction())
            .field("savepoints", &self.state.tx.depth().saturating_sub(1))
            .field("broken", &self.state.broken)
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
            state: State::new(),
            pid: None,
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
        if self.state.broken {
            return Err(Error::connection_lost());
        }
        if self.state.tx.aborted() {
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
        self.state.flight = Flight::Statement;
        let result = self.send_many(&sql, &sets).instrument(span.clone()).await;
        self.state.flight = Flight::Idle;
        self.finish(&sql, params, StatementKind::Query, started, &span, result)
    }

    /// The driver's client, for what aludel does not wrap (COPY, LISTEN/NOTIFY). Statements
    /// sent through it run in this connection's transaction but are not observed or traced.
    ///
    /// Because statements sent through it are not tracked, a connection whose driver client
    /// was used always gets a `ROLLBACK` queued when it goes back to the pool.
    pub fn driver_client(&mut self) -> Result<&Client> {
        self.send_pending_begin()?;
        self.state.ran_untracked(Untracked::Driver);
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
        self.state.ran_untracked(Untracked::Sql);
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

    /// True inside a transaction.
    pub fn in_transaction(&self) -> bool {
        self.state.tx.depth() > 0
    }

    /// True inside a savepoint.
    pub fn in_nested_transaction(&self) -> bool {
        self.state.tx.depth() > 1
    }

    /// Gives the connection back: rolls back an open transaction first (awaited, unlike the
    /// rollback a plain drop queues).
    pub async fn close(mut self) -> Result<()> {
        self.rollback().await
    }

    /// Closes the connection for good instead of returning it to the pool (SQLAlchemy's
    /// `invalidate()`): its server process ends and is never handed out again.
    pub fn invalidate(mut self) {
        self.state.broken = true;
    }
}

//! Transactions on a connection: `BEGIN` (sent at once, or deferred until the first
//! statement that is not a plain read), `COMMIT`/`ROLLBACK`, savepoints.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;

use super::state::{Flight, Tx};
use super::{Connection, Savepoint};
use crate::engine::observe::{StatementEvent, StatementKind, statement_span};
use crate::engine::tx::TxOptions;
use crate::error::{Error, Result};

impl Connection {
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
        if self.in_transaction() {
            return Err(Error::invalid(
                "a transaction is already open on this connection",
            ));
        }
        if self.state.broken {
            return Err(Error::connection_lost());
        }
        self.state.tx = Tx::Deferred {
            begin: options.or(self.shared.exec.default_tx).begin_sql(),
            aborted: false,
        };
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
        if self.in_transaction() {
            return Err(Error::invalid(
                "a transaction is already open on this connection",
            ));
        }
        if self.state.broken {
            return Err(Error::connection_lost());
        }
        self.state.tx = Tx::Deferred {
            begin: options.begin_sql(),
            aborted: false,
        };
        Ok(())
    }

    /// Whether the server's `default_transaction_isolation` is READ COMMITTED (or READ
    /// UNCOMMITTED, which PostgreSQL runs as READ COMMITTED). Asked once per engine.
    pub(super) async fn server_default_read_committed(&mut self) -> Result<bool> {
        if let Some(known) = self.shared.server_read_committed.get() {
            return Ok(*known);
        }
        self.check_usable()?;
        // Sent by the engine, not the user, and still reported like any statement: observers
        // see every statement that reaches the server.
        const SQL: &str = "SHOW default_transaction_isolation";
        let started = Instant::now();
        let span = statement_span(SQL, 0);
        self.state.flight = Flight::Statement;
        let answer = async {
            self.client()?
                .simple_query(SQL)
                .await
                .map_err(Error::from_driver)
        }
        .instrument(span.clone())
        .await;
        self.state.flight = Flight::Idle;
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
    pub(super) fn send_pending_begin(&mut self) -> Result<()> {
        let Some(sql) = self.state.tx.take_begin() else {
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
            self.state.broken = true;
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
    pub(crate) fn in_server_transaction(&self) -> bool {
        self.state.tx.on_server()
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
        match self.state.tx {
            Tx::None => return Err(Error::invalid("commit without an open transaction")),
            Tx::Deferred { aborted, .. } => {
                // Only plain reads ran: there is no server transaction to end.
                self.state.tx = Tx::None;
                return if aborted {
                    Err(Error::transaction_aborted())
                } else {
                    Ok(())
                };
            }
            Tx::Open { .. } => {}
        }
        if self.state.tx.aborted() {
            self.rollback().await?;
            return Err(Error::transaction_aborted());
        }
        let r = self.simple("COMMIT", StatementKind::Commit).await;
        // COMMIT ends the transaction whether it succeeded or not.
        self.state.tx = Tx::None;
        r
    }

    /// Rolls the transaction back. A no-op outside a transaction.
    pub async fn rollback(&mut self) -> Result<()> {
        match self.state.tx {
            Tx::None => return Ok(()),
            Tx::Deferred { .. } => {
                self.state.tx = Tx::None;
                return Ok(());
            }
            Tx::Open { .. } => self.state.tx.set_aborted(false),
        }
        let r = self.simple("ROLLBACK", StatementKind::Rollback).await;
        self.state.tx = Tx::None;
        r
    }

    /// Opens a savepoint inside the transaction (SQLAlchemy's `begin_nested`).
    pub async fn savepoint(&mut self) -> Result<Savepoint> {
        if !self.in_transaction() {
            return Err(Error::invalid("a savepoint needs an open transaction"));
        }
        let depth = self.state.tx.depth() + 1;
        let sql = format!("SAVEPOINT aludel_sp_{depth}");
        self.simple(&sql, StatementKind::Savepoint).await?;
        self.state.tx.set_depth(depth);
        Ok(Savepoint { depth })
    }

    /// Releases a savepoint (and any opened after it), keeping its work in the transaction.
    pub async fn release_savepoint(&mut self, sp: Savepoint) -> Result<()> {
        self.check_savepoint(&sp)?;
        if self.state.tx.aborted() {
            return Err(Error::transaction_aborted());
        }
        let sql = format!("RELEASE SAVEPOINT aludel_sp_{}", sp.depth);
        self.simple(&sql, StatementKind::Savepoint).await?;
        self.state.tx.set_depth(sp.depth - 1);
        Ok(())
    }

    /// Rolls back to a savepoint, undoing its work; the transaction goes on, usable again even
    /// if a statement inside the savepoint failed.
    pub async fn rollback_to_savepoint(&mut self, sp: Savepoint) -> Result<()> {
        self.check_savepoint(&sp)?;
        let was_aborted = self.state.tx.aborted();
        self.state.tx.set_aborted(false);
        let sql = format!(
            "ROLLBACK TO SAVEPOINT aludel_sp_{0}; RELEASE SAVEPOINT aludel_sp_{0}",
            sp.depth
        );
        let r = self.simple(&sql, StatementKind::Savepoint).await;
        if r.is_err() {
            self.state.tx.set_aborted(was_aborted);
        } else {
            self.state.tx.set_depth(sp.depth - 1);
        }
        r
    }

    pub(super) fn check_savepoint(&self, sp: &Savepoint) -> Result<()> {
        if sp.depth > self.state.tx.depth() || sp.depth < 2 {
            return Err(Error::invalid("that savepoint is no longer open"));
        }
        Ok(())
    }
}

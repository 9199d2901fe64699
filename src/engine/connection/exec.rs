//! Sending statements: the extended protocol (through the statement cache or typed and
//! unnamed), pipelines, executemany, the simple protocol, and the bookkeeping after each
//! statement (connection and transaction state, observers, spans).

use std::pin::pin;
use std::time::Instant;

use futures_util::TryStreamExt;
use tokio_postgres::RowStream;
use tokio_postgres::types::Type;
use tracing::Instrument;

use super::state::{Flight, Tx, Untracked};
use super::{Backend, Connection, Object};
use crate::engine::StatementMode;
use crate::engine::observe::{StatementEvent, StatementKind, statement_span};
use crate::error::{Error, Kind, Result};
use crate::sql::{Bind, plain_read_text};

impl Connection {
    pub(super) async fn send_many(&self, sql: &str, sets: &[Vec<Bind>]) -> Result<u64> {
        let Some(first) = sets.first() else {
            return Ok(0);
        };
        check_param_count(first.len())?;
        let counts = match (&self.backend, self.shared.exec.mode) {
            (Backend::Pooled(Some(obj)), StatementMode::Cached) => {
                let types: Vec<Type> = first.iter().map(|b| b.sql_type().clone()).collect();
                let prepared = prepare_cached(obj, sql, &types, &self.shared.exec.stmt_cache).await;
                let stmt = prepared.map_err(|e| {
                    if crate::engine::cache::is_stale_statement(&e) {
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
        if matches!(self.state.tx, Tx::Deferred { .. }) && !(plain_read && plain_read_text(sql)) {
            self.send_pending_begin()?;
        }
        self.screen(sql)?;
        let started = Instant::now();
        let span = statement_span(sql, binds.len());
        self.state.flight = Flight::Statement;
        let result = self.send(sql, binds, sink).instrument(span.clone()).await;
        self.state.flight = Flight::Idle;
        self.finish(
            sql,
            binds.len(),
            StatementKind::Query,
            started,
            &span,
            result,
        )
    }

    pub(super) async fn send<F>(&self, sql: &str, binds: &[Bind], mut sink: F) -> Result<u64>
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
        if matches!(self.state.tx, Tx::Deferred { .. })
            && !stmts.iter().all(|(sql, _)| plain_read_text(sql))
        {
            self.send_pending_begin()?;
        }
        let started = Instant::now();
        self.state.flight = Flight::Statement;
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
        self.state.flight = Flight::Idle;
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
        self.state.flight = if on { Flight::Statement } else { Flight::Idle };
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

    pub(super) async fn start_now(&self, sql: &str, binds: &[Bind]) -> Result<RowStream> {
        check_param_count(binds.len())?;
        let stream = match (&self.backend, self.shared.exec.mode) {
            (Backend::Pooled(Some(obj)), StatementMode::Cached) => {
                match cached_query(obj, sql, binds, &self.shared.exec.stmt_cache).await {
                    Err(e) if crate::engine::cache::is_stale_statement(&e) => {
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
    pub(super) async fn simple(&mut self, sql: &str, kind: StatementKind) -> Result<()> {
        if self.state.broken {
            return Err(Error::connection_lost());
        }
        if self.state.tx.aborted()
            && !matches!(kind, StatementKind::Rollback | StatementKind::Savepoint)
        {
            return Err(Error::transaction_aborted());
        }
        self.send_pending_begin()?;
        let started = Instant::now();
        let span = statement_span(sql, 0);
        self.state.flight = if kind == StatementKind::Commit {
            Flight::Commit
        } else {
            Flight::Statement
        };
        let fut = async {
            let client = self.client()?;
            client.batch_execute(sql).await.map_err(Error::from_driver)
        };
        let result = fut.instrument(span.clone()).await.map(|()| 0);
        self.state.flight = Flight::Idle;
        self.finish(sql, 0, kind, started, &span, result)
            .map(|_| ())
    }

    /// Bookkeeping after a statement: connection and transaction state, observers, span.
    pub(super) fn finish(
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
                self.state.broken = true;
            } else if self.state.tx.depth() > 0 && matches!(e.kind(), Kind::Db(_)) {
                self.state.tx.set_aborted(true);
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

    /// Looks at SQL text before it is sent: transaction control must go through
    /// `begin`/`commit`/`rollback`/`savepoint` (refused here, a courtesy), and a statement the
    /// lexer cannot classify as plain marks the connection for a reset on return, which is
    /// what actually keeps transaction state out of the pool.
    pub(super) fn screen(&mut self, sql: &str) -> Result<()> {
        let scan = crate::engine::lexer::scan(sql);
        if let Some(keyword) = scan.control {
            return Err(Error::invalid(format!(
                "`{keyword}` sent as SQL text: transaction control statements must use \
                 Connection::begin / commit / rollback / savepoint"
            )));
        }
        if !scan.plain {
            self.state.ran_untracked(Untracked::Sql);
        }
        Ok(())
    }
}

/// The connection's prepared statement for `sql` with `types`, prepared now on a miss.
async fn prepare_cached(
    obj: &Object,
    sql: &str,
    types: &[Type],
    bound: &crate::engine::cache::Bound,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if let Some(stmt) = obj.statements.get(sql, types, bound) {
        return Ok(stmt);
    }
    /// Marks the cache when the prepare is dropped before it answers: its `Parse` may
    /// still succeed on the server, under a name nothing will close.
    struct Preparing<'a>(&'a crate::engine::cache::Statements, bool);
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
    cache: &crate::engine::cache::Bound,
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

/// SQLSTATE 25P02: a statement refused because an earlier one aborted the transaction.
fn is_aborted_echo(e: &Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
}

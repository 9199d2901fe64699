//! Statement observers and the per-statement tracing span.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// What kind of statement an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatementKind {
    /// A statement sent with the extended protocol (queries and DML).
    Query,
    /// `BEGIN`.
    Begin,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`, including the rollback queued when a connection is dropped mid-transaction.
    Rollback,
    /// `SAVEPOINT`, `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT`.
    Savepoint,
    /// A script sent with the simple protocol (`batch_execute`).
    Script,
    /// A statement the engine sends on its own, not on behalf of one call: the
    /// `SHOW default_transaction_isolation` lazy begin asks once per engine.
    Internal,
}

impl StatementKind {
    /// True for BEGIN / COMMIT / ROLLBACK / savepoint statements.
    pub fn is_transaction_control(self) -> bool {
        matches!(
            self,
            Self::Begin | Self::Commit | Self::Rollback | Self::Savepoint
        )
    }
}

/// One statement that reached the server, reported after it finished.
///
/// The analog of SQLAlchemy's `after_cursor_execute`. The SQL text has placeholders; bound
/// values are never part of an event.
#[derive(Debug)]
#[non_exhaustive]
pub struct StatementEvent<'a> {
    /// The SQL text as sent.
    pub sql: &'a str,
    /// What kind of statement it was.
    pub kind: StatementKind,
    /// How many parameters were bound.
    pub params: usize,
    /// Rows returned (queries) or affected (DML).
    pub rows: u64,
    /// Wall time from sending to the last row.
    pub elapsed: Duration,
    /// The error, when it failed.
    pub error: Option<&'a Error>,
}

/// Receives every statement an engine runs. Register with
/// [`EngineBuilder::observer`](crate::engine::EngineBuilder::observer).
///
/// Observers run inline on the task that ran the statement: keep them cheap.
pub trait Observer: Send + Sync + 'static {
    /// Called once per statement, after it finished or failed.
    fn on_statement(&self, event: &StatementEvent<'_>);
}

impl<F> Observer for F
where
    F: Fn(&StatementEvent<'_>) + Send + Sync + 'static,
{
    fn on_statement(&self, event: &StatementEvent<'_>) {
        self(event);
    }
}

/// The observers and logging settings of one engine.
#[derive(Clone, Default)]
pub(crate) struct Observers {
    pub(crate) list: Arc<[Arc<dyn Observer>]>,
    pub(crate) slow: Option<Duration>,
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.list.len())
            .field("slow", &self.slow)
            .finish()
    }
}

impl Observers {
    /// Reports a finished statement to observers and to the slow-statement log.
    pub(crate) fn report(&self, event: &StatementEvent<'_>) {
        for o in self.list.iter() {
            o.on_statement(event);
        }
        if let Some(threshold) = self.slow {
            if event.elapsed >= threshold {
                tracing::warn!(
                    target: "aludel::query::slow",
                    statement = event.sql,
                    elapsed_ms = event.elapsed.as_secs_f64() * 1000.0,
                    threshold_ms = threshold.as_secs_f64() * 1000.0,
                    "slow statement"
                );
            }
        }
    }
}

/// The span of one statement, on the stable target `aludel::query`, with OpenTelemetry field
/// names. Attach it with `Instrument::instrument`, never `enter()` across an await.
pub(crate) fn statement_span(sql: &str, params: usize) -> tracing::Span {
    tracing::debug_span!(
        target: "aludel::query",
        "db.query",
        db.system = "postgresql",
        db.operation = operation(sql),
        db.statement = sql,
        db.params = params,
        otel.kind = "client",
        db.rows = tracing::field::Empty,
        elapsed_ms = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

/// The first keyword of the statement (`SELECT`, `INSERT`, `WITH` …), without allocating.
pub(crate) fn operation(sql: &str) -> &str {
    let s = sql.trim_start();
    let end = s
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(s.len());
    &s[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn operation_is_the_first_keyword() {
        assert_eq!(super::operation("  SELECT 1"), "SELECT");
        assert_eq!(super::operation("insert into t"), "insert");
        assert_eq!(super::operation("COMMIT"), "COMMIT");
    }
}

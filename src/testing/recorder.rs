//! A statement observer that keeps what it sees, for assertions.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::{Observer, StatementEvent, StatementKind};

/// One recorded statement.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Recorded {
    /// The SQL text (placeholders, no values).
    pub sql: String,
    /// The kind of statement.
    pub kind: StatementKind,
    /// How many parameters were bound.
    pub params: usize,
    /// Rows returned or affected.
    pub rows: u64,
    /// The error text, when the statement failed.
    pub error: Option<String>,
}

/// Records every statement of the engines it is attached to. Cheap to clone; clones share
/// the record.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<Vec<Recorded>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("len", &self.len())
            .finish()
    }
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many statements were recorded so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Every statement recorded so far.
    pub fn all(&self) -> Vec<Recorded> {
        self.lock().clone()
    }

    /// Statements recorded after the first `mark` ones.
    pub fn since(&self, mark: usize) -> Vec<Recorded> {
        self.lock().iter().skip(mark).cloned().collect()
    }

    /// Like [`Recorder::since`], without BEGIN / COMMIT / ROLLBACK / savepoints and without
    /// the engine's own probes ([`StatementKind::Internal`]).
    pub fn queries_since(&self, mark: usize) -> Vec<Recorded> {
        self.lock()
            .iter()
            .skip(mark)
            .filter(|r| !r.kind.is_transaction_control() && r.kind != StatementKind::Internal)
            .cloned()
            .collect()
    }

    /// The SQL text of the statements recorded after `mark`, transaction control included,
    /// the engine's own probes ([`StatementKind::Internal`], once per engine) left out; they
    /// are in [`Recorder::since`] and [`Recorder::all`].
    pub fn sql_since(&self, mark: usize) -> Vec<String> {
        self.lock()
            .iter()
            .skip(mark)
            .filter(|r| r.kind != StatementKind::Internal)
            .map(|r| r.sql.clone())
            .collect()
    }
}

impl Observer for Recorder {
    fn on_statement(&self, event: &StatementEvent<'_>) {
        self.lock().push(Recorded {
            sql: event.sql.to_owned(),
            kind: event.kind,
            params: event.params,
            rows: event.rows,
            error: event.error.map(ToString::to_string),
        });
    }
}

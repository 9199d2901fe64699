//! A connection's state in one type: what is in flight, the transaction as sent, what ran
//! that aludel does not follow, and whether the connection can be trusted. `Drop` decides
//! how the connection goes back from it alone ([`State::on_return`]).

use std::borrow::Cow;

/// What is in flight on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flight {
    Idle,
    Statement,
    Commit,
}

/// The transaction, as far as aludel opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tx {
    /// None open.
    None,
    /// A session transaction whose `BEGIN` is not sent yet: only plain reads ran (see
    /// `Connection::begin_deferred`). `aborted`: one of them failed, so only a rollback helps.
    Deferred {
        begin: Cow<'static, str>,
        aborted: bool,
    },
    /// `BEGIN` sent; `depth` is 1 plus the open savepoints. `aborted`: a statement failed
    /// inside it, so only a rollback (or a rollback to a savepoint) helps.
    Open { depth: u32, aborted: bool },
}

impl Tx {
    /// 0 outside a transaction, 1 in one, +1 per open savepoint.
    pub(super) fn depth(&self) -> u32 {
        match self {
            Tx::None => 0,
            Tx::Deferred { .. } => 1,
            Tx::Open { depth, .. } => *depth,
        }
    }

    pub(super) fn aborted(&self) -> bool {
        match self {
            Tx::None => false,
            Tx::Deferred { aborted, .. } | Tx::Open { aborted, .. } => *aborted,
        }
    }

    /// Marks the transaction aborted or usable again (nothing outside one).
    pub(super) fn set_aborted(&mut self, on: bool) {
        if let Tx::Deferred { aborted, .. } | Tx::Open { aborted, .. } = self {
            *aborted = on;
        }
    }

    /// A transaction is open on the server (its `BEGIN` was sent).
    pub(super) fn on_server(&self) -> bool {
        matches!(self, Tx::Open { .. })
    }

    /// The deferred `BEGIN` to send now, if any; the transaction counts as open on the
    /// server from here on.
    pub(super) fn take_begin(&mut self) -> Option<Cow<'static, str>> {
        let Tx::Deferred { aborted, .. } = *self else {
            return None;
        };
        match std::mem::replace(self, Tx::Open { depth: 1, aborted }) {
            Tx::Deferred { begin, .. } => Some(begin),
            _ => None,
        }
    }

    /// Savepoints opened or released: the new depth (inside a transaction on the server).
    pub(super) fn set_depth(&mut self, to: u32) {
        if let Tx::Open { depth, .. } = self {
            *depth = to;
        }
    }
}

/// What ran on the connection that aludel does not follow, which its return must undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Untracked {
    Nothing,
    /// A script or a statement the lexer cannot classify: transaction and session state are
    /// unknown (a `ROLLBACK` and the engine's reset script on return).
    Sql,
    /// The driver client was handed out: a request it started (a COPY whose sink or stream
    /// outlives the borrow, a query future still alive) may still be running, so the
    /// connection goes back through the drain, never straight to the pool.
    Driver,
}

/// Everything about a connection that decides how it can be used and how it goes back.
#[derive(Debug)]
pub(super) struct State {
    pub(super) flight: Flight,
    /// The connection can no longer be trusted (connection error, `invalidate`).
    pub(super) broken: bool,
    pub(super) tx: Tx,
    pub(super) untracked: Untracked,
}

/// How a dropped connection goes back (what `Drop` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Return {
    /// Broken: closed, never returned.
    Close,
    /// Something may still be running (a statement, a `COMMIT`, a driver request): the
    /// drain task waits for it, rolls back, then returns the connection. `commit`: a cut-off
    /// `COMMIT`, whose outcome the caller cannot know.
    Drain { commit: bool },
    /// Idle, but a transaction is open on the server or untracked SQL ran: a `ROLLBACK` (and
    /// the reset script when `reset`) is queued ahead of the next user.
    Rollback { reset: bool },
    /// Idle and outside any transaction: back as is.
    Pool,
}

impl State {
    pub(super) fn new() -> Self {
        State {
            flight: Flight::Idle,
            broken: false,
            tx: Tx::None,
            untracked: Untracked::Nothing,
        }
    }

    /// Marks `what` as having run untracked (never lowers what is already known).
    pub(super) fn ran_untracked(&mut self, what: Untracked) {
        self.untracked = self.untracked.max(what);
    }

    /// Whether the return must roll back and reset: untracked SQL ran.
    pub(super) fn dirty(&self) -> bool {
        self.untracked != Untracked::Nothing
    }

    pub(super) fn on_return(&self) -> Return {
        if self.broken {
            return Return::Close;
        }
        match self.flight {
            Flight::Commit => Return::Drain { commit: true },
            Flight::Statement => Return::Drain { commit: false },
            Flight::Idle if self.untracked == Untracked::Driver => Return::Drain { commit: false },
            Flight::Idle if self.tx.on_server() || self.dirty() => Return::Rollback {
                reset: self.dirty(),
            },
            Flight::Idle => Return::Pool,
        }
    }
}

//! Per-request sessions for web frameworks: `web::axum` (feature `axum`) and `web::actix`
//! (feature `actix`).
//!
//! Both integrations offer the same two modes:
//!
//! - **Extractor only** (`DbSession` with a [`SessionFactory`] in the app's state): each
//!   request gets a fresh [`AsyncSession`]. Nothing is committed for you: call
//!   [`AsyncSession::commit`] in the handler; whatever is not committed when the handler
//!   returns is rolled back when the session is dropped.
//! - **Transaction per request** (axum `TransactionLayer`, actix `TransactionMiddleware`): the
//!   layer creates the request's session (lazily: no connection is checked out until the first
//!   statement) and the `DbSession` extracted inside the handler is that session. When the
//!   handler has produced its response, *before* the response goes to the client, the layer
//!   commits on a 2xx/3xx status and rolls back on any other status. A failed commit replaces
//!   the response with an error response, so the client never sees a success for a write that
//!   did not commit. A handler that panics or is cancelled drops the session, which rolls back.
//!   A client disconnect is not necessarily a cancellation: actix-web's default
//!   (`h1_allow_half_closed(true)`) lets the handler finish and commit (see `web::actix`).
//!
//! Errors become responses through one mapping, [`status_for`] and [`error_category`], used
//! by `IntoResponse for Error` (axum) and `ResponseError for Error` (actix) and available to
//! applications that wrap [`Error`] in their own error type.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::Error;
use crate::session::{AsyncSession, SessionFactory};

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;

/// The HTTP status an [`Error`] maps to:
///
/// | error | status |
/// |---|---|
/// | unique violation ([`Error::is_unique_violation`]) | 409 |
/// | foreign-key violation ([`Error::is_foreign_key_violation`]) | 409 |
/// | check violation ([`Error::is_check_violation`]) | 422 |
/// | data error, SQLSTATE class 22 ([`Error::is_data_error`]): NUL byte, text too long, invalid text for the type, out of range | 422 |
/// | program limit, SQLSTATE class 54 ([`Error::is_program_limit_exceeded`]): a value too large for an index, too many arguments | 413 |
/// | too large to send ([`Error::is_encode`]: more than 65,535 parameters, a value past the protocol's limit) | 413 |
/// | no row ([`Error::is_not_found`], [`Error::is_row_gone`]) | 404 |
/// | pool timeout ([`Error::is_pool_timeout`]) | 503 |
/// | server unreachable or connection lost ([`Error::is_connect`], [`Error::is_connection_lost`]) | 503 |
/// | write sent to a read-only server, e.g. a replica or a demoted primary (SQLSTATE 25006, [`Error::is_read_only_transaction`]) | 503 |
/// | serialization failure or deadlock ([`Error::is_retryable`]): the request may be retried | 409 |
/// | statement timeout or cancel ([`Error::is_query_canceled`], SQLSTATE 57014) | 504 |
/// | everything else | 500 |
///
/// Data errors and program limits are caused by what the client sent (a server does not
/// fail on its own input), so they answer 4xx: 422 for a value the server rejected, 413
/// (*content too large*) for a value past a server limit. A foreign-key violation on a write
/// means the request refers to a row that does not exist (or deletes one still referenced):
/// a conflict with the database's current state, 409 like a unique violation. A check
/// violation is a value the schema's rules reject: 422. Applications that validate before
/// writing never reach these; the mapping keeps the ones that slip through out of 5xx.
/// A server that cannot be reached (refused, timed out, the pool backing off) or a connection
/// lost mid-request is 503 (*service unavailable*): a load balancer retries elsewhere and a
/// client later, where a 500 says the request itself is at fault.
///
/// Everything is mapped by SQLSTATE, not by message, so the mapping holds whatever the
/// server's `lc_messages`.
///
/// ```
/// # fn demo(err: &aludel::Error) {
/// let status = aludel::web::status_for(err);
/// assert!((400..600).contains(&status));
/// # }
/// ```
pub fn status_for(err: &Error) -> u16 {
    if err.is_unique_violation() || err.is_foreign_key_violation() || err.is_retryable() {
        409
    } else if err.is_data_error() || err.is_check_violation() {
        422
    } else if err.is_program_limit_exceeded() || err.is_encode_too_large() {
        413
    } else if err.is_not_found() || err.is_row_gone() {
        404
    } else if err.is_pool_timeout()
        || err.is_connect()
        || err.is_connection_lost()
        || err.is_read_only_transaction()
    {
        503
    } else if err.is_query_canceled() {
        504
    } else {
        500
    }
}

/// A short, fixed description of an [`Error`] for a response body, matching [`status_for`]:
/// `"conflict"`, `"invalid data"`, `"too large"`, `"not found"`, `"service unavailable"`,
/// `"timeout"` or `"internal error"`. It never contains SQL text, constraint names or values.
pub fn error_category(err: &Error) -> &'static str {
    category_for_status(status_for(err))
}

fn category_for_status(status: u16) -> &'static str {
    match status {
        409 => "conflict",
        422 => "invalid data",
        413 => "too large",
        404 => "not found",
        503 => "service unavailable",
        504 => "timeout",
        _ => "internal error",
    }
}

/// The JSON body `{"error":"<message>"}`; `message` is always one of our fixed strings.
fn json_body(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 12);
    out.push_str("{\"error\":\"");
    for c in message.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push_str("\"}");
    out
}

/// Logs the full error (statement text included, never values) once, when it becomes a
/// response; the client only gets [`error_category`].
fn log_error(err: &Error, status: u16) {
    if status >= 500 {
        tracing::error!(target: "aludel::web", status, error = %err, "request failed");
    } else {
        tracing::info!(target: "aludel::web", status, error = %err, "request failed");
    }
}

/// Why a `DbSession` could not be extracted.
///
/// Answers with its [`Rejection::status`] and the JSON body `{"error": "..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RejectionKind {
    /// The request's session is already held by another `DbSession`.
    SessionInUse,
    /// No session factory: neither a transaction layer nor the factory in the app's state.
    MissingFactory,
}

impl Rejection {
    pub(crate) const fn session_in_use() -> Self {
        Rejection {
            kind: RejectionKind::SessionInUse,
        }
    }

    pub(crate) const fn missing_factory() -> Self {
        Rejection {
            kind: RejectionKind::MissingFactory,
        }
    }

    /// The HTTP status: always 500, as both causes are bugs in the application.
    pub fn status(&self) -> u16 {
        500
    }

    /// The sentence explaining the rejection (logged; the body carries it too).
    pub fn body_text(&self) -> &'static str {
        match self.kind {
            RejectionKind::SessionInUse => {
                "the request's database session is already in use by another extractor"
            }
            RejectionKind::MissingFactory => {
                "no aludel::SessionFactory in the application's data or state"
            }
        }
    }

    fn json(&self) -> String {
        tracing::error!(target: "aludel::web", reason = self.body_text(), "DbSession rejected");
        json_body(self.body_text())
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.body_text())
    }
}

impl std::error::Error for Rejection {}

/// A per-request [`AsyncSession`], extracted in a handler (axum `FromRequestParts`, actix
/// `FromRequest`); derefs to the session.
///
/// Inside a transaction layer (axum `TransactionLayer`, actix `TransactionMiddleware`) it is the
/// request's session, which the layer commits or rolls back after the handler. Without one it
/// is a fresh session from the app's [`SessionFactory`], and the handler commits it itself;
/// what is not committed is rolled back when the session is dropped at the end of the handler.
///
/// Extracting a session touches no connection: the first statement checks one out.
/// A `DbSession` must not outlive its handler (e.g. be moved into a spawned task): inside a
/// transaction layer that is answered with a 500 and nothing is committed. Background work
/// opens a session of its own from the factory.
///
/// ```no_run
/// use aludel::web::DbSession;
///
/// async fn rename(mut db: DbSession) -> aludel::Result<()> {
///     db.execute(&aludel::sql("UPDATE users SET name = $1 WHERE id = $2").bind("ann").bind(1))
///         .await?;
///     db.commit().await // optional inside a transaction layer, which commits on 2xx/3xx
/// }
/// ```
#[derive(Debug)]
pub struct DbSession(SessionSlot);

#[derive(Debug)]
enum SessionSlot {
    /// A session of the handler's own (no transaction layer).
    Owned(Box<AsyncSession>),
    /// The request's session, owned by the transaction layer.
    Shared(OwnedMutexGuard<AsyncSession>),
}

impl DbSession {
    /// The request's session from a transaction layer, if there is one, else a new session
    /// from `factory`.
    fn extract(
        layer: Option<&RequestSession>,
        factory: impl FnOnce() -> Option<SessionFactory>,
    ) -> Result<Self, Rejection> {
        match layer {
            Some(shared) => Ok(DbSession(SessionSlot::Shared(shared.lock()?))),
            None => factory()
                .map(|f| DbSession(SessionSlot::Owned(Box::new(f.session()))))
                .ok_or_else(Rejection::missing_factory),
        }
    }

    /// Whether this is the request's session of a transaction layer (which commits it after
    /// the handler), rather than a session of the handler's own.
    pub fn is_request_transaction(&self) -> bool {
        matches!(self.0, SessionSlot::Shared(_))
    }
}

impl Deref for DbSession {
    type Target = AsyncSession;

    fn deref(&self) -> &AsyncSession {
        match &self.0 {
            SessionSlot::Owned(s) => s,
            SessionSlot::Shared(g) => g,
        }
    }
}

impl DerefMut for DbSession {
    fn deref_mut(&mut self) -> &mut AsyncSession {
        match &mut self.0 {
            SessionSlot::Owned(s) => s,
            SessionSlot::Shared(g) => g,
        }
    }
}

/// The session a transaction layer puts in the request's extensions: one per request, shared
/// with the `DbSession` extracted inside the handler.
#[derive(Clone)]
pub(crate) struct RequestSession(Arc<Mutex<AsyncSession>>);

impl fmt::Debug for RequestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSession").finish_non_exhaustive()
    }
}

/// What the layer did with the request's session after the handler.
pub(crate) enum Outcome {
    /// Committed, rolled back, or there was nothing to do.
    Done,
    /// The commit failed (and the transaction was rolled back): answer with this error.
    CommitFailed(Error),
    /// A `DbSession` outlived the handler (moved into a spawned task): nothing was committed;
    /// the session rolls back when its last holder drops it.
    Leaked,
}

impl RequestSession {
    /// A new request session. Creating a session touches no connection.
    pub(crate) fn new(factory: &SessionFactory) -> Self {
        RequestSession(Arc::new(Mutex::new(factory.session())))
    }

    /// Locks the session for one extractor.
    pub(crate) fn lock(&self) -> Result<OwnedMutexGuard<AsyncSession>, Rejection> {
        self.0
            .clone()
            .try_lock_owned()
            .map_err(|_| Rejection::session_in_use())
    }

    /// Commits on 2xx/3xx, rolls back otherwise. Runs before the response is returned.
    pub(crate) async fn finish(self, status: u16) -> Outcome {
        let mut session = match Arc::try_unwrap(self.0) {
            Ok(mutex) => mutex.into_inner(),
            Err(_) => {
                tracing::error!(
                    target: "aludel::web",
                    status,
                    "a DbSession outlived its handler (moved into a spawned task?); \
                     nothing was committed"
                );
                return Outcome::Leaked;
            }
        };
        if commits(status) {
            match session.commit().await {
                Ok(()) => Outcome::Done,
                Err(e) => {
                    if let Err(rb) = session.rollback().await {
                        tracing::debug!(target: "aludel::web", error = %rb, "rollback after a failed commit");
                    }
                    Outcome::CommitFailed(e)
                }
            }
        } else {
            if let Err(e) = session.rollback().await {
                // The connection is discarded by its drop; the response is an error already.
                tracing::warn!(target: "aludel::web", status, error = %e, "rollback failed");
            }
            Outcome::Done
        }
    }
}

/// Whether a response with this status commits the request's transaction: 2xx and 3xx.
pub(crate) fn commits(status: u16) -> bool {
    (200..400).contains(&status)
}

/// The status and body of the response that replaces a handler's when the session could not
/// be committed.
pub(crate) fn outcome_response(outcome: Outcome) -> Option<(u16, String)> {
    match outcome {
        Outcome::Done => None,
        Outcome::CommitFailed(e) => {
            let status = status_for(&e);
            log_error(&e, status);
            Some((status, json_body(error_category(&e))))
        }
        Outcome::Leaked => Some((500, json_body(category_for_status(500)))),
    }
}

/// Status and JSON body for an error response; logs the full error.
pub(crate) fn error_response_parts(err: &Error) -> (u16, String) {
    let status = status_for(err);
    log_error(err, status);
    (status, json_body(error_category(err)))
}

//! The one error type of aludel.
//!
//! [`Error`] is an opaque struct: callers ask it questions ([`Error::is_unique_violation`],
//! [`Error::is_retryable`], [`Error::constraint`] …) instead of matching on its inside.
//! Database errors are classified by SQLSTATE constants from `tokio_postgres::error::SqlState`,
//! never by message text, and the full server record stays reachable through
//! [`Error::as_db_error`].
//!
//! Error text never contains bound parameter values: the server's `DETAIL` line (where
//! PostgreSQL repeats key values, e.g. `Key (email)=(a@b.c) already exists.`) is left out of
//! `Display` unless the engine was built with
//! [`EngineBuilder::show_values_in_errors`](crate::EngineBuilder::show_values_in_errors).

mod db;
mod pool;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use tokio_postgres::error::{DbError, SqlState};

pub(crate) use self::db::EncodeReason;
pub use self::pool::PoolTimeout;

/// The result type of every fallible aludel operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in aludel.
///
/// Use the predicates (`is_*`) to decide what to do; use [`Error::as_db_error`] for the
/// server's full record.
pub struct Error(Box<Inner>);

struct Inner {
    kind: Kind,
    /// The SQL statement that failed, when there was one (never its parameter values).
    statement: Option<Box<str>>,
    /// Whether `Display` may print server text that can carry values (`DETAIL`).
    show_values: bool,
}

#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Kind {
    /// The server answered with an error.
    Db(tokio_postgres::Error),
    /// The connection broke (I/O error, server gone, backend terminated).
    ConnectionLost(Option<tokio_postgres::Error>),
    /// Opening a connection failed.
    Connect(tokio_postgres::Error),
    /// Opening a connection took longer than the connect timeout.
    ConnectTimeout(Option<Duration>),
    /// No connection attempt was made: the last one failed and the backoff delay (this much
    /// longer) has not passed.
    ConnectBackoff(Duration),
    /// The statement could not be encoded for sending; nothing reached the server and the
    /// connection is kept.
    Encode {
        reason: EncodeReason,
        /// The driver's error, or `None` when aludel refused before calling the driver.
        source: Option<tokio_postgres::Error>,
        message: Cow<'static, str>,
    },
    /// Any other driver-level failure (encoding a parameter, protocol error).
    Driver(tokio_postgres::Error),
    /// Waiting for a pooled connection timed out.
    PoolTimeout(PoolTimeout),
    /// The engine was closed.
    Closed,
    /// The configuration is invalid.
    Config(Cow<'static, str>),
    /// A query expected a row and got none.
    NotFound,
    /// A query expected at most one row and got more.
    MultipleRows,
    /// A column could not be read into the requested Rust type.
    Decode {
        column: Box<str>,
        source: tokio_postgres::Error,
    },
    /// The transaction was already aborted by an earlier error.
    TransactionAborted,
    /// The API was used in a way it does not allow (e.g. begin twice).
    InvalidRequest(Cow<'static, str>),
    /// An object's values were expired (commit, rollback, `expire`); refresh it.
    Expired { table: &'static str },
    /// An object is not attached to a session and its values are not loaded.
    Detached { table: &'static str },
    /// A relationship was read before it was loaded (or it is marked `raise`).
    NotLoaded { relation: &'static str, raise: bool },
    /// A `Deferred` column that was not loaded.
    ColumnNotLoaded { column: &'static str, raise: bool },
    /// A flush failed; the session refuses work until `rollback()`.
    PendingRollback,
    /// An UPDATE or DELETE matched fewer rows than expected (version mismatch or row gone).
    StaleData {
        table: &'static str,
        expected: u64,
        matched: u64,
    },
    /// `refresh` found no row for the object any more.
    RowGone { table: &'static str },
    /// A `Generated` field was read (or had to be sent) without a value; `column` names it
    /// when known (`table.column`).
    Unset {
        column: Option<(&'static str, &'static str)>,
    },
    /// A value was set on a column the server always generates (`GENERATED ALWAYS`).
    GeneratedAlways {
        table: &'static str,
        column: &'static str,
    },
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Error(Box::new(Inner {
            kind,
            statement: None,
            show_values: false,
        }))
    }

    /// Classifies a driver error: connection failures, server errors, statements that could
    /// not be encoded (nothing was sent), everything else.
    pub(crate) fn from_driver(e: tokio_postgres::Error) -> Self {
        match db::classify(&e) {
            db::Class::Lost => Error::new(Kind::ConnectionLost(Some(e))),
            db::Class::Db => Error::new(Kind::Db(e)),
            db::Class::Encode(reason) => Error::new(Kind::Encode {
                reason,
                source: Some(e),
                message: Cow::Borrowed(match reason {
                    EncodeReason::TooLarge => "a value or the parameter count is too large to send",
                    EncodeReason::Nul => "the SQL text contains a NUL byte",
                    EncodeReason::Type => "a value cannot be sent as its bound SQL type",
                }),
            }),
            db::Class::Other => Error::new(Kind::Driver(e)),
        }
    }

    /// A statement aludel refuses to send because the protocol could not carry it.
    pub(crate) fn encode(reason: EncodeReason, message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Kind::Encode {
            reason,
            source: None,
            message: message.into(),
        })
    }

    pub(crate) fn connect(e: tokio_postgres::Error) -> Self {
        Error::new(Kind::Connect(e))
    }

    /// Opening a connection did not finish within `after` (the connect timeout).
    pub(crate) fn connect_timeout(after: Option<Duration>) -> Self {
        Error::new(Kind::ConnectTimeout(after))
    }

    /// The server was unreachable at the last attempt; the next one is `retry_in` away.
    pub(crate) fn connect_backoff(retry_in: Duration) -> Self {
        Error::new(Kind::ConnectBackoff(retry_in))
    }

    pub(crate) fn config(msg: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Kind::Config(msg.into()))
    }

    pub(crate) fn invalid(msg: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Kind::InvalidRequest(msg.into()))
    }

    pub(crate) fn not_found() -> Self {
        Error::new(Kind::NotFound)
    }

    pub(crate) fn multiple_rows() -> Self {
        Error::new(Kind::MultipleRows)
    }

    pub(crate) fn closed() -> Self {
        Error::new(Kind::Closed)
    }

    pub(crate) fn connection_lost() -> Self {
        Error::new(Kind::ConnectionLost(None))
    }

    pub(crate) fn transaction_aborted() -> Self {
        Error::new(Kind::TransactionAborted)
    }

    pub(crate) fn decode(column: &str, source: tokio_postgres::Error) -> Self {
        Error::new(Kind::Decode {
            column: column.into(),
            source,
        })
    }

    pub(crate) fn expired(table: &'static str) -> Self {
        Error::new(Kind::Expired { table })
    }

    pub(crate) fn not_loaded(relation: &'static str, raise: bool) -> Self {
        Error::new(Kind::NotLoaded { relation, raise })
    }

    pub(crate) fn column_not_loaded(column: &'static str, raise: bool) -> Self {
        Error::new(Kind::ColumnNotLoaded { column, raise })
    }

    pub(crate) fn detached(table: &'static str) -> Self {
        Error::new(Kind::Detached { table })
    }

    pub(crate) fn pending_rollback() -> Self {
        Error::new(Kind::PendingRollback)
    }

    pub(crate) fn stale_data(table: &'static str, expected: u64, matched: u64) -> Self {
        Error::new(Kind::StaleData {
            table,
            expected,
            matched,
        })
    }

    pub(crate) fn row_gone(table: &'static str) -> Self {
        Error::new(Kind::RowGone { table })
    }

    pub(crate) fn unset() -> Self {
        Error::new(Kind::Unset { column: None })
    }

    pub(crate) fn unset_column(table: &'static str, column: &'static str) -> Self {
        Error::new(Kind::Unset {
            column: Some((table, column)),
        })
    }

    pub(crate) fn generated_always(table: &'static str, column: &'static str) -> Self {
        Error::new(Kind::GeneratedAlways { table, column })
    }

    pub(crate) fn from_pool_timeout(t: PoolTimeout) -> Self {
        Error::new(Kind::PoolTimeout(t))
    }

    /// Attaches the SQL text (never the values) that produced this error.
    pub(crate) fn with_statement(mut self, sql: &str) -> Self {
        if self.0.statement.is_none() {
            self.0.statement = Some(sql.into());
        }
        self
    }

    pub(crate) fn with_show_values(mut self, show: bool) -> Self {
        self.0.show_values = show;
        self
    }

    pub(crate) fn kind(&self) -> &Kind {
        &self.0.kind
    }

    /// The server's full error record (message, detail, hint, constraint, table, column,
    /// position …), when the server produced this error.
    pub fn as_db_error(&self) -> Option<&DbError> {
        match &self.0.kind {
            Kind::Db(e) | Kind::ConnectionLost(Some(e)) | Kind::Connect(e) => e.as_db_error(),
            _ => None,
        }
    }

    /// The SQLSTATE of a server error.
    pub fn code(&self) -> Option<&SqlState> {
        self.as_db_error().map(DbError::code)
    }

    /// The constraint a violation names (unique, foreign key, check, not null, exclusion).
    pub fn constraint(&self) -> Option<&str> {
        self.as_db_error().and_then(DbError::constraint)
    }

    /// The table a server error names.
    pub fn table(&self) -> Option<&str> {
        self.as_db_error().and_then(DbError::table)
    }

    /// The column a server error names (e.g. the column of a not-null violation).
    pub fn column(&self) -> Option<&str> {
        match &self.0.kind {
            Kind::Decode { column, .. } => Some(column),
            _ => self.as_db_error().and_then(DbError::column),
        }
    }

    /// The server's `DETAIL` text. It may contain the values of the offending row, which is
    /// why it is not part of `Display` by default.
    pub fn detail(&self) -> Option<&str> {
        self.as_db_error().and_then(DbError::detail)
    }

    /// The SQL statement (with placeholders, never values) that failed, if any.
    pub fn statement(&self) -> Option<&str> {
        self.0.statement.as_deref()
    }

    /// A UNIQUE or PRIMARY KEY constraint was violated (SQLSTATE 23505).
    pub fn is_unique_violation(&self) -> bool {
        self.code() == Some(&SqlState::UNIQUE_VIOLATION)
    }

    /// A FOREIGN KEY constraint was violated (SQLSTATE 23503).
    pub fn is_foreign_key_violation(&self) -> bool {
        self.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
    }

    /// A NOT NULL constraint was violated (SQLSTATE 23502).
    pub fn is_not_null_violation(&self) -> bool {
        self.code() == Some(&SqlState::NOT_NULL_VIOLATION)
    }

    /// A CHECK constraint was violated (SQLSTATE 23514).
    pub fn is_check_violation(&self) -> bool {
        self.code() == Some(&SqlState::CHECK_VIOLATION)
    }

    /// An EXCLUDE constraint was violated (SQLSTATE 23P01).
    pub fn is_exclusion_violation(&self) -> bool {
        self.code() == Some(&SqlState::EXCLUSION_VIOLATION)
    }

    /// Any integrity constraint violation (SQLSTATE class 23).
    pub fn is_integrity_error(&self) -> bool {
        self.code().is_some_and(|c| c.code().starts_with("23"))
    }

    /// The server rejected a value (SQLSTATE class 22, data exception): invalid text for the
    /// type, a NUL byte in text, a string too long for its column, a number out of range, a
    /// division by zero. The input is at fault, not the server: a web service answers 4xx.
    pub fn is_data_error(&self) -> bool {
        self.code().is_some_and(|c| c.code().starts_with("22"))
    }

    /// A server limit was exceeded (SQLSTATE class 54, program limit exceeded): a row or index
    /// entry too large, too many columns or arguments, a statement too complex.
    pub fn is_program_limit_exceeded(&self) -> bool {
        self.code().is_some_and(|c| c.code().starts_with("54"))
    }

    /// A serializable transaction could not be serialized (SQLSTATE 40001).
    pub fn is_serialization_failure(&self) -> bool {
        self.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
    }

    /// The server detected a deadlock and aborted this transaction (SQLSTATE 40P01).
    pub fn is_deadlock(&self) -> bool {
        self.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
    }

    /// Running the whole transaction again may succeed: serialization failure or deadlock.
    pub fn is_retryable(&self) -> bool {
        self.is_serialization_failure() || self.is_deadlock()
    }

    /// A write was attempted in a read-only transaction, e.g. on a replica (SQLSTATE 25006).
    pub fn is_read_only_transaction(&self) -> bool {
        self.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
    }

    /// A lock could not be taken at once (`NOWAIT`, `lock_timeout`; SQLSTATE 55P03).
    pub fn is_lock_not_available(&self) -> bool {
        self.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
    }

    /// The statement was cancelled on the server (SQLSTATE 57014): by `statement_timeout`
    /// or by a cancel request.
    pub fn is_query_canceled(&self) -> bool {
        self.code() == Some(&SqlState::QUERY_CANCELED)
    }

    /// The statement ran past `statement_timeout`.
    ///
    /// PostgreSQL reports a timeout and a cancel request with the same SQLSTATE (57014);
    /// the two are told apart by the server's message, which is reliable with English
    /// `lc_messages` only. Use [`Error::is_query_canceled`] for the class.
    pub fn is_statement_timeout(&self) -> bool {
        self.is_query_canceled()
            && self
                .as_db_error()
                .is_some_and(|e| e.message().contains("statement timeout"))
    }

    /// The connection to the server was lost (I/O error, backend terminated, server shut
    /// down). The connection is discarded, never returned to the pool.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self.0.kind, Kind::ConnectionLost(_))
    }

    /// A new connection could not be opened: refused, failed authentication, did not
    /// finish within the connect timeout (see [`Error::is_connect_timeout`]), or was not
    /// attempted because the last attempt failed moments ago (the pool backs off, with
    /// jitter, while the server is unreachable). Never [`Error::is_connection_lost`]: no
    /// connection existed yet.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.0.kind,
            Kind::Connect(_) | Kind::ConnectTimeout(_) | Kind::ConnectBackoff(_)
        )
    }

    /// Opening a connection took longer than the engine's connect timeout.
    pub fn is_connect_timeout(&self) -> bool {
        matches!(self.0.kind, Kind::ConnectTimeout(_))
    }

    /// The statement could not be encoded for sending, so it never reached the server: more
    /// than 65,535 bind parameters, a NUL byte in the SQL text, a value too large for the
    /// protocol, or a value that cannot be written as the SQL type it was bound as.
    ///
    /// Retrying cannot help (the same statement fails the same way); the connection is
    /// healthy and is kept, and an open transaction is not aborted by it.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut aludel::Connection) -> aludel::Result<()> {
    /// use aludel::sql;
    /// if let Err(err) = conn.execute(&sql("SELECT 1 /* \0 */")).await {
    ///     assert!(err.is_encode() && !err.is_connection_lost());
    /// }
    /// conn.execute(&sql("SELECT 1")).await?; // the same connection goes on
    /// # Ok(()) }
    /// ```
    pub fn is_encode(&self) -> bool {
        matches!(self.0.kind, Kind::Encode { .. })
    }

    /// An encode error because something was too large to send (parameter count past 65,535,
    /// a value or message past the protocol's length limit): the input's size is at fault,
    /// so a web handler answers 413 (as `web::status_for` does). Implies [`Error::is_encode`].
    pub fn is_encode_too_large(&self) -> bool {
        matches!(
            self.0.kind,
            Kind::Encode {
                reason: EncodeReason::TooLarge,
                ..
            }
        )
    }

    /// Waiting for a pooled connection timed out; see [`Error::pool_timeout`].
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self.0.kind, Kind::PoolTimeout(_))
    }

    /// The numbers behind a pool timeout: pool size, connections in use, waiters, time waited.
    pub fn pool_timeout(&self) -> Option<&PoolTimeout> {
        match &self.0.kind {
            Kind::PoolTimeout(t) => Some(t),
            _ => None,
        }
    }

    /// A row was expected and none was found (`one`, `get_one`, `scalar_one` …).
    pub fn is_not_found(&self) -> bool {
        matches!(self.0.kind, Kind::NotFound)
    }

    /// At most one row was expected and more were found.
    pub fn is_multiple_rows(&self) -> bool {
        matches!(self.0.kind, Kind::MultipleRows)
    }

    /// A column could not be decoded into the Rust type asked for; [`Error::column`] names it.
    pub fn is_decode(&self) -> bool {
        matches!(self.0.kind, Kind::Decode { .. })
    }

    /// The engine was closed with [`Engine::close`](crate::Engine::close).
    pub fn is_closed(&self) -> bool {
        matches!(self.0.kind, Kind::Closed)
    }

    /// The configuration (URL, pool options) is invalid.
    pub fn is_config(&self) -> bool {
        matches!(self.0.kind, Kind::Config(_))
    }

    /// The transaction was aborted by an earlier failed statement; only a rollback helps.
    pub fn is_transaction_aborted(&self) -> bool {
        matches!(self.0.kind, Kind::TransactionAborted)
    }

    /// The API was used in a way it does not allow (e.g. `begin` inside a transaction).
    pub fn is_invalid_request(&self) -> bool {
        matches!(self.0.kind, Kind::InvalidRequest(_))
    }

    /// The object's values were expired (after commit, rollback or `expire`): refresh it.
    /// Reading an expired object never runs SQL.
    pub fn is_expired(&self) -> bool {
        matches!(self.0.kind, Kind::Expired { .. })
    }

    /// A relationship was read before it was loaded, or loading it is refused because it is
    /// marked `raise` (SQLAlchemy's `MissingGreenlet` / `lazy="raise"` cases). aludel never
    /// loads implicitly: load it with a query option or `AsyncSession::load`.
    pub fn is_not_loaded(&self) -> bool {
        matches!(
            self.0.kind,
            Kind::NotLoaded { .. } | Kind::ColumnNotLoaded { .. }
        )
    }

    /// The object is detached from its session and its values are not loaded.
    pub fn is_detached(&self) -> bool {
        matches!(self.0.kind, Kind::Detached { .. })
    }

    /// A flush failed earlier; call `rollback()` before using the session again.
    pub fn is_pending_rollback(&self) -> bool {
        matches!(self.0.kind, Kind::PendingRollback)
    }

    /// An UPDATE/DELETE matched fewer rows than expected: a version-counter mismatch
    /// (another transaction changed the row) or a row deleted concurrently.
    pub fn is_stale_data(&self) -> bool {
        matches!(self.0.kind, Kind::StaleData { .. })
    }

    /// `refresh` found the object's row gone.
    pub fn is_row_gone(&self) -> bool {
        matches!(self.0.kind, Kind::RowGone { .. })
    }

    /// A [`Generated`](crate::Generated) field was read while unset: a new object whose
    /// server-filled value is not known before its flush.
    pub fn is_unset(&self) -> bool {
        matches!(self.0.kind, Kind::Unset { .. })
    }

    /// A new object has a value in a column the server always generates (`identity =
    /// "always"`); the flush refused it before any SQL and the session is unchanged. Leave
    /// the field [`Generated::unset`](crate::Generated::unset).
    pub fn is_generated_always(&self) -> bool {
        matches!(self.0.kind, Kind::GeneratedAlways { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.kind {
            Kind::Db(e) => db::fmt_db_error(e, self.0.show_values, f)?,
            Kind::ConnectionLost(Some(e)) => {
                f.write_str("connection lost: ")?;
                db::fmt_driver_error(e, self.0.show_values, f)?;
            }
            Kind::ConnectionLost(None) => f.write_str("connection lost")?,
            Kind::Connect(e) => {
                f.write_str("could not connect: ")?;
                db::fmt_driver_error(e, self.0.show_values, f)?;
            }
            Kind::ConnectTimeout(Some(t)) => write!(
                f,
                "could not connect: timed out after {} ms",
                millis(*t)
            )?,
            Kind::ConnectTimeout(None) => f.write_str("could not connect: timed out")?,
            Kind::ConnectBackoff(t) => write!(
                f,
                "could not connect: the server was unreachable at the last attempt; \
                 next attempt in {} ms",
                millis(*t)
            )?,
            Kind::Encode {
                message, source, ..
            } => {
                write!(f, "statement not sent: {message}")?;
                if let Some(e) = source {
                    f.write_str(" (")?;
                    db::fmt_driver_error(e, self.0.show_values, f)?;
                    f.write_str(")")?;
                }
            }
            Kind::Driver(e) => db::fmt_driver_error(e, self.0.show_values, f)?,
            Kind::PoolTimeout(t) => fmt::Display::fmt(t, f)?,
            Kind::Closed => f.write_str("the engine is closed")?,
            Kind::Config(m) => write!(f, "invalid configuration: {m}")?,
            Kind::NotFound => f.write_str("no row was found when one was required")?,
            Kind::MultipleRows => {
                f.write_str("more than one row was found when one was required")?;
            }
            Kind::Decode { column, source } => {
                write!(f, "cannot decode column `{column}`: ")?;
                db::fmt_driver_error(source, self.0.show_values, f)?;
            }
            Kind::TransactionAborted => f.write_str(
                "the transaction was aborted by an earlier error; roll it back before using it",
            )?,
            Kind::InvalidRequest(m) => f.write_str(m)?,
            Kind::Expired { table } => write!(
                f,
                "this `{table}` object's values were expired (commit, rollback or expire); refresh it first"
            )?,
            Kind::NotLoaded {
                relation,
                raise: false,
            } => write!(
                f,
                "`{relation}` is not loaded; load it with a loading option (selectin, joined) or \
                 `AsyncSession::load` (aludel never loads implicitly)"
            )?,
            Kind::NotLoaded {
                relation,
                raise: true,
            } => write!(f, "`{relation}` is not available due to lazy=\"raise\"")?,
            Kind::ColumnNotLoaded {
                column,
                raise: false,
            } => write!(
                f,
                "column `{column}` is deferred and not loaded; load it with `undefer` (a query \
                 option, or `AsyncSession::load`)"
            )?,
            Kind::ColumnNotLoaded {
                column,
                raise: true,
            } => write!(f, "column `{column}` is not available due to raiseload")?,
            Kind::Detached { table } => write!(
                f,
                "this `{table}` object is detached from its session and its values are not loaded"
            )?,
            Kind::PendingRollback => f.write_str(
                "this session's transaction was rolled back after a failed flush; call rollback() first",
            )?,
            Kind::StaleData { table, expected, matched } => write!(
                f,
                "UPDATE/DELETE of `{table}` expected to match {expected} row(s); {matched} matched"
            )?,
            Kind::RowGone { table } => write!(f, "the `{table}` row of this object no longer exists")?,
            Kind::Unset { column: None } => f.write_str(
                "this Generated value is unset: the server assigns it when the object is flushed",
            )?,
            Kind::Unset {
                column: Some((table, column)),
            } => write!(f, "`{table}.{column}` is an unset Generated value; give it a value")?,
            Kind::GeneratedAlways { table, column } => write!(
                f,
                "`{table}.{column}` is GENERATED ALWAYS: the server assigns it and refuses a value; \
                 leave it Generated::unset()"
            )?,
        }
        if let Some(sql) = &self.0.statement {
            write!(f, " [statement: {sql}]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug output lands in logs as readily as Display: keep values out of it too.
        let mut d = f.debug_struct("Error");
        d.field("kind", &db::KindDebug(&self.0.kind, self.0.show_values));
        if let Some(code) = self.code() {
            d.field("code", &code.code());
        }
        if let Some(sql) = &self.0.statement {
            d.field("statement", sql);
        }
        d.field("message", &format_args!("{self}"));
        d.finish()
    }
}

impl std::error::Error for Error {
    /// The driver error underneath, except for server errors whose record can carry row
    /// values (use [`Error::as_db_error`] for those) unless values were allowed in errors.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.kind {
            Kind::Db(e) | Kind::ConnectionLost(Some(e)) | Kind::Connect(e) | Kind::Driver(e) => {
                if e.as_db_error().is_some() && !self.0.show_values {
                    None
                } else {
                    Some(e)
                }
            }
            Kind::Decode { source, .. }
            | Kind::Encode {
                source: Some(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::from_driver(e)
    }
}

/// How long a pool waited; shared by the pool-timeout error and metrics.
pub(crate) fn millis(d: Duration) -> u128 {
    d.as_millis()
}

//! Classification and value-free rendering of server errors.

use std::fmt;

use tokio_postgres::error::{DbError, SqlState};

use super::Kind;

/// What a driver error means for the connection it happened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// The connection is gone or cannot be trusted.
    Lost,
    /// The server answered with an error; the connection is fine.
    Db,
    /// The request could not be encoded, so nothing was sent: the connection is fine.
    Encode(EncodeReason),
    /// Anything else (an unexpected message, a decoding failure).
    Other,
}

/// Why a statement could not be encoded for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EncodeReason {
    /// More parameters than the protocol's 65,535, or a value or message too large to send.
    TooLarge,
    /// A NUL byte in text the protocol sends as a C string (the SQL text itself).
    Nul,
    /// A value could not be written as the SQL type it was bound as.
    Type,
}

/// Classifies a driver error. tokio-postgres keeps its error kind private; its public signals
/// are `is_closed()`, the server record (`as_db_error`), its `Display` (one fixed text per
/// kind) and the source chain. Encoding happens into a buffer before anything is written to
/// the socket (`Client::with_buf`), so an encoding failure leaves the connection as it was.
pub(super) fn classify(e: &tokio_postgres::Error) -> Class {
    if e.is_closed() {
        return Class::Lost;
    }
    if let Some(code) = e.code() {
        let lost = code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW;
        return if lost { Class::Lost } else { Class::Db };
    }
    let text = e.to_string();
    let cause = io_cause(e);
    let too_large = |io: &std::io::Error| {
        let m = io.to_string();
        m.contains("too large") || m.contains("overflow")
    };
    // `Kind::Encode`: a frontend message could not be written (a count past i16, a length
    // past i32, a NUL in a C string).
    if text.starts_with("error encoding message") {
        return Class::Encode(match cause {
            Some(io) if is_nul(io) => EncodeReason::Nul,
            Some(io) if too_large(io) => EncodeReason::TooLarge,
            _ => EncodeReason::Type,
        });
    }
    // `Kind::ToSql`: a value refused the type it was bound as.
    if text.starts_with("error serializing parameter") {
        return Class::Encode(EncodeReason::Type);
    }
    // `Kind::Parameters`: the statement expects another number of parameters.
    if text.starts_with("expected ") && text.contains(" parameters but got ") {
        return Class::Encode(EncodeReason::Type);
    }
    // `query_typed` reports a NUL in the SQL text as a parse error while encoding.
    if text.starts_with("error parsing response") && cause.is_some_and(is_nul) {
        return Class::Encode(EncodeReason::Nul);
    }
    if cause.is_some() {
        // An I/O error, or a server message that could not be parsed: the protocol state is
        // unknown.
        return Class::Lost;
    }
    Class::Other
}

fn is_nul(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::InvalidInput && io.to_string().contains("embedded null")
}

fn io_cause(e: &tokio_postgres::Error) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

/// `ERROR 23505: duplicate key value violates unique constraint "users_email_key"`, plus the
/// detail line only when values may be shown.
pub(super) fn fmt_db_error(
    e: &tokio_postgres::Error,
    show_values: bool,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    match e.as_db_error() {
        Some(db) => fmt_record(db, show_values, f),
        None => fmt_driver_error(e, show_values, f),
    }
}

fn fmt_record(db: &DbError, show_values: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // Data exceptions (class 22) quote the rejected input in the message itself.
    if !show_values && db.code().code().starts_with("22") {
        return write!(
            f,
            "{} {}: invalid data (the server's message is hidden because it can quote the value)",
            db.severity(),
            db.code().code()
        );
    }
    write!(
        f,
        "{} {}: {}",
        db.severity(),
        db.code().code(),
        db.message()
    )?;
    if show_values {
        if let Some(detail) = db.detail() {
            write!(f, " (detail: {detail})")?;
        }
    }
    if let Some(hint) = db.hint() {
        write!(f, " (hint: {hint})")?;
    }
    Ok(())
}

/// Driver errors: the driver's own text, but for server records our value-free rendering.
pub(super) fn fmt_driver_error(
    e: &tokio_postgres::Error,
    show_values: bool,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    match e.as_db_error() {
        Some(db) => fmt_record(db, show_values, f),
        None => {
            write!(f, "{e}")?;
            // tokio-postgres keeps the useful part ("cannot convert between…", the I/O error)
            // in its source; its own Display is only the category.
            if let Some(source) = std::error::Error::source(e) {
                write!(f, ": {source}")?;
            }
            Ok(())
        }
    }
}

/// Debug for the kind without the server's detail text.
pub(super) struct KindDebug<'a>(pub(super) &'a Kind, pub(super) bool);

impl fmt::Debug for KindDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            Kind::Db(_) => "Db",
            Kind::ConnectionLost(_) => "ConnectionLost",
            Kind::Connect(_) => "Connect",
            Kind::ConnectTimeout(_) => "ConnectTimeout",
            Kind::ConnectBackoff(_) => "ConnectBackoff",
            Kind::Encode { .. } => "Encode",
            Kind::Driver(_) => "Driver",
            Kind::PoolTimeout(_) => "PoolTimeout",
            Kind::Closed => "Closed",
            Kind::Config(_) => "Config",
            Kind::NotFound => "NotFound",
            Kind::MultipleRows => "MultipleRows",
            Kind::Decode { .. } => "Decode",
            Kind::TransactionAborted => "TransactionAborted",
            Kind::InvalidRequest(_) => "InvalidRequest",
            Kind::Expired { .. } => "Expired",
            Kind::Detached { .. } => "Detached",
            Kind::NotLoaded { .. } | Kind::ColumnNotLoaded { .. } => "NotLoaded",
            Kind::PendingRollback => "PendingRollback",
            Kind::StaleData { .. } => "StaleData",
            Kind::RowGone { .. } => "RowGone",
            Kind::Unset { .. } => "Unset",
            Kind::GeneratedAlways { .. } => "GeneratedAlways",
        };
        if self.1 {
            if let Kind::Db(e) = self.0 {
                return write!(f, "{name}({e:?})");
            }
        }
        f.write_str(name)
    }
}

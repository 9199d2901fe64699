//! Classification and value-free rendering of server errors.

use std::fmt;

use tokio_postgres::error::{DbError, SqlState};

use super::Kind;

/// Server errors after which the connection is unusable: connection exceptions (class 08)
/// and the backend being terminated or the server shutting down (57P01…57P03).
pub(super) fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        None => is_io_error(e),
    }
}

fn is_io_error(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
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
        };
        if self.1 {
            if let Kind::Db(e) = self.0 {
                return write!(f, "{name}({e:?})");
            }
        }
        f.write_str(name)
    }
}

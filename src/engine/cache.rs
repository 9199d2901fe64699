//! The per-connection prepared-statement cache in `Cached` mode, and how it recovers when
//! the server no longer has what it holds.

use tokio_postgres::error::SqlState;

/// The server does not have a named statement this connection's cache holds (26000, e.g.
/// after a transaction-mode pooler moved the client to another backend, or `DEALLOCATE`
/// / `DISCARD ALL`), or already has one by the name being prepared (42P05, a backend another
/// client prepared on). Either way the connection's cache no longer matches the server.
pub(super) fn is_stale_statement(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::INVALID_SQL_STATEMENT_NAME || *c == SqlState::DUPLICATE_PSTATEMENT
    )
}

//! The per-connection prepared-statement cache in `Cached` mode, and how it recovers when
//! the server no longer has what it holds.

use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::StatementCache;
use tokio_postgres::error::SqlState;

/// The bound on each connection's prepared statements, and the engine-wide counters.
///
/// deadpool's per-connection cache has no bound and no order, so the bound is kept the
/// simple way: when a newly prepared statement takes a connection's cache past the bound,
/// the whole cache is emptied. Every dropped `Statement` is closed on the server by
/// tokio-postgres (a `Close` message queued when its last reference goes), so the
/// server-side count (`pg_prepared_statements`) never stays above the bound.
#[derive(Debug)]
pub(crate) struct Bound {
    max: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// Counters of the prepared-statement caches of one engine (all its connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StatementCacheStats {
    /// Statements found prepared on their connection.
    pub hits: u64,
    /// Statements that had to be prepared.
    pub misses: u64,
    /// Prepared statements closed to keep a connection within the bound.
    pub evictions: u64,
}

impl Bound {
    pub(crate) fn new(max: usize) -> Self {
        Bound {
            max: max.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Counts a lookup (a miss when the cache grew) and keeps the cache within the bound.
    pub(crate) fn after_prepare(&self, cache: &StatementCache, before: usize) {
        let size = cache.size();
        if size > before {
            self.misses.fetch_add(1, Ordering::Relaxed);
        } else {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        if size > self.max {
            cache.clear();
            self.evictions.fetch_add(size as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> StatementCacheStats {
        StatementCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

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

//! The per-connection prepared-statement cache in `Cached` mode (a bounded LRU), and how it
//! recovers when the server no longer has what it holds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

/// The bound on each connection's prepared statements, and the engine-wide counters.
///
/// Each connection's [`Statements`] keeps at most `max` statements and evicts the least
/// recently used one to make room. Evicting drops the cache's `Statement`; tokio-postgres
/// closes a statement on the server (a `Close` message, what `DEALLOCATE` does) when its
/// last clone is dropped, so once a statement still running has finished, the server-side
/// count (`pg_prepared_statements`) is within the bound.
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
    /// Prepared statements closed (least recently used first) to keep a connection within
    /// the bound.
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

    pub(crate) fn stats(&self) -> StatementCacheStats {
        StatementCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

/// One connection's prepared statements, by SQL text and parameter types, with a use
/// stamp for LRU eviction.
#[derive(Debug, Default)]
pub(crate) struct Statements {
    inner: Mutex<Lru>,
    /// A prepare was cut off: the server may hold a named statement the cache does not
    /// know, which nothing would ever close.
    orphaned: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Lru {
    /// SQL text → the statements prepared for it (one per parameter-type list; nearly
    /// always one).
    by_sql: HashMap<Box<str>, Vec<Entry>, foldhash::fast::RandomState>,
    len: usize,
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    types: Box<[Type]>,
    stmt: tokio_postgres::Statement,
    used: u64,
}

impl Statements {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The statement prepared for `sql` with `types`, marked as just used.
    pub(crate) fn get(
        &self,
        sql: &str,
        types: &[Type],
        bound: &Bound,
    ) -> Option<tokio_postgres::Statement> {
        let mut lru = self.lock();
        lru.clock += 1;
        let now = lru.clock;
        let found = lru
            .by_sql
            .get_mut(sql)?
            .iter_mut()
            .find(|e| *e.types == *types)?;
        found.used = now;
        bound.hits.fetch_add(1, Ordering::Relaxed);
        Some(found.stmt.clone())
    }

    /// Keeps a freshly prepared statement, evicting the least recently used ones past the
    /// bound.
    pub(crate) fn insert(
        &self,
        sql: &str,
        types: &[Type],
        stmt: tokio_postgres::Statement,
        bound: &Bound,
    ) {
        bound.misses.fetch_add(1, Ordering::Relaxed);
        let mut lru = self.lock();
        lru.clock += 1;
        let used = lru.clock;
        let entries = lru.by_sql.entry(sql.into()).or_default();
        match entries.iter_mut().find(|e| *e.types == *types) {
            // Prepared twice concurrently (pipelined statements): keep the newer.
            Some(e) => {
                e.stmt = stmt;
                e.used = used;
            }
            None => {
                entries.push(Entry {
                    types: types.into(),
                    stmt,
                    used,
                });
                lru.len += 1;
            }
        }
        while lru.len > bound.max {
            if !lru.evict_oldest() {
                break;
            }
            bound.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes that a prepare was cut off (see `orphaned`).
    pub(crate) fn mark_orphaned(&self) {
        self.orphaned.store(true, Ordering::Release);
    }

    /// Whether a prepare was cut off since the last call.
    pub(crate) fn take_orphaned(&self) -> bool {
        self.orphaned.swap(false, Ordering::AcqRel)
    }

    /// Forgets every statement (the server no longer has them, or they are stale).
    pub(crate) fn clear(&self) {
        let mut lru = self.lock();
        lru.by_sql.clear();
        lru.len = 0;
    }
}

impl Lru {
    /// Drops the least recently used statement. A linear scan: it runs only on a miss with a
    /// full cache, next to a prepare round trip that costs far more.
    fn evict_oldest(&mut self) -> bool {
        let oldest = self
            .by_sql
            .iter()
            .flat_map(|(sql, es)| es.iter().enumerate().map(move |(i, e)| (e.used, sql, i)))
            .min_by_key(|(used, _, _)| *used)
            .map(|(_, sql, i)| (sql.clone(), i));
        let Some((sql, i)) = oldest else {
            return false;
        };
        if let Some(entries) = self.by_sql.get_mut(&sql) {
            entries.swap_remove(i);
            if entries.is_empty() {
                self.by_sql.remove(&sql);
            }
            self.len -= 1;
        }
        true
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

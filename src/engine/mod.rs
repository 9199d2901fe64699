//! The engine: a lazily connecting, pooled handle to one PostgreSQL database.
//!
//! [`Engine`] is cheap to clone (one `Arc`) and opens no connection until the first checkout.
//! Checkouts hand out a [`Connection`], which guarantees that the pool only ever gets back a
//! connection that is idle and outside any transaction (see [`Connection`]).

mod builder;
mod cache;
mod connection;
mod ddl;
mod drain;
mod lexer;
mod manager;
mod metrics;
mod observe;
mod tx;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use deadpool::managed::{PoolError, TimeoutType};
use tokio_postgres::NoTls;

pub use self::builder::{EngineBuilder, SessionReset, StatementMode};
pub use self::cache::StatementCacheStats;
pub use self::connection::{Connection, Savepoint};
pub use self::ddl::{create_all, drop_all};
pub use self::metrics::PoolMetrics;
pub use self::observe::{Observer, StatementEvent, StatementKind};
pub use self::tx::{IsolationLevel, TxOptions};

use self::builder::PoolSettings;
use self::connection::Backend;
use self::metrics::Metrics;
use self::observe::Observers;
pub use crate::error::PoolTimeout;
use crate::error::{Error, Result};
use crate::row::{FromRow, Row};
use crate::sql::{Statement, Typed};

/// A handle to one database: a connection pool plus how statements are sent and observed.
///
/// ```no_run
/// # async fn demo() -> aludel::Result<()> {
/// use aludel::{sql, Engine};
///
/// let engine = Engine::new("postgres://postgres@127.0.0.1:5432/postgres")?;
/// let n: i64 = engine.query_one(&sql("SELECT $1::int8 + 1").bind(41_i64)).await?;
/// assert_eq!(n, 42);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) pg: tokio_postgres::Config,
    settings: PoolSettings,
    /// `None` when pooling is off; replaced wholesale by `dispose`.
    pool: RwLock<Option<Pool>>,
    closed: AtomicBool,
    /// The server's `default_transaction_isolation` is READ COMMITTED (asked once).
    pub(crate) server_read_committed: std::sync::OnceLock<bool>,
    pub(crate) exec: ExecSettings,
    /// The pool's counters, kept across `dispose`.
    pub(crate) metrics: Arc<Metrics>,
}

/// The pool, with aludel's manager (`engine/manager.rs`).
pub(crate) type Pool = deadpool::managed::Pool<manager::PgManager>;

/// A connection checked out of the pool.
pub(crate) type PoolObject = deadpool::managed::Object<manager::PgManager>;

/// How a connection runs statements; shared by every connection of an engine.
#[derive(Debug, Clone)]
pub(crate) struct ExecSettings {
    pub(crate) mode: StatementMode,
    pub(crate) observers: Observers,
    pub(crate) show_values: bool,
    pub(crate) default_tx: TxOptions,
    /// Sessions may defer BEGIN past plain reads at READ COMMITTED.
    pub(crate) lazy_begin: bool,
    /// The bound and counters of `Cached` mode's per-connection statement caches.
    pub(crate) stmt_cache: Arc<cache::Bound>,
    /// What a connection resets on return after unclassified SQL.
    pub(crate) reset: SessionReset,
}

/// A snapshot of the pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// The most connections the pool opens.
    pub max_size: usize,
    /// Connections open now (idle plus in use).
    pub size: usize,
    /// Idle connections ready for checkout.
    pub idle: usize,
    /// Connections checked out now.
    pub in_use: usize,
    /// Tasks waiting for a connection.
    pub waiting: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pool", &self.shared.settings)
            .field("exec", &self.shared.exec)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with default settings for `url` (`postgres://user@host:port/db?…` or a
    /// `key=value` string). Opens no connection.
    pub fn new(url: &str) -> Result<Engine> {
        EngineBuilder::new(url).build()
    }

    /// Starts configuring an engine for `url`.
    pub fn builder(url: &str) -> EngineBuilder {
        EngineBuilder::new(url)
    }

    /// Checks out a connection: from the pool, or a new one in no-pool mode.
    ///
    /// # Errors
    /// A pool-timeout error (with the pool's numbers) when no connection frees up within the
    /// wait timeout; a connect error when a new connection cannot be opened.
    ///
    /// # Cancel safety
    /// Dropping the future while it waits takes nothing from the pool.
    pub async fn connect(&self) -> Result<Connection> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::closed());
        }
        let pool = shared
            .pool
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let Some(pool) = pool else {
            return self.connect_unpooled().await;
        };
        let started = Instant::now();
        match pool.get().await {
            Ok(obj) => {
                shared.metrics.checkout(started.elapsed());
                Ok(Connection::new(
                    Backend::Pooled(Some(obj)),
                    self.shared.clone(),
                ))
            }
            Err(PoolError::Timeout(TimeoutType::Wait)) => {
                let s = pool.status();
                Err(Error::from_pool_timeout(PoolTimeout {
                    max_size: s.max_size,
                    size: s.size,
                    in_use: s.size.saturating_sub(s.available),
                    waiting: s.waiting,
                    waited: started.elapsed(),
                }))
            }
            // Creating (or health-checking) a connection took too long: no statement of
            // ours ran, so this is a connect error, never a lost connection.
            Err(PoolError::Timeout(_)) => {
                Err(Error::connect_timeout(shared.settings.create_timeout))
            }
            Err(PoolError::Backend(e)) => Err(e),
            Err(PoolError::Closed) => Err(Error::closed()),
            Err(e) => Err(Error::config(format!("pool error: {e}"))),
        }
    }

    async fn connect_unpooled(&self) -> Result<Connection> {
        let connect = self.shared.pg.connect(NoTls);
        let (client, connection) = match self.shared.settings.create_timeout {
            Some(t) => tokio::time::timeout(t, connect)
                .await
                .map_err(|_| Error::connect_timeout(Some(t)))?,
            None => connect.await,
        }
        .map_err(Error::connect)?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "aludel::engine", error = %e, "connection task ended");
            }
        });
        Ok(Connection::new(
            Backend::Direct(Some((client, task))),
            self.shared.clone(),
        ))
    }

    /// The pool's counters now. In no-pool mode everything is zero but `max_size`.
    pub fn pool_status(&self) -> PoolStatus {
        let guard = self.shared.pool.read().unwrap_or_else(|p| p.into_inner());
        match &*guard {
            Some(pool) => {
                let s = pool.status();
                PoolStatus {
                    max_size: s.max_size,
                    size: s.size,
                    idle: s.available,
                    in_use: s.size.saturating_sub(s.available),
                    waiting: s.waiting,
                }
            }
            None => PoolStatus {
                max_size: self.shared.settings.max_size,
                size: 0,
                idle: 0,
                in_use: 0,
                waiting: 0,
            },
        }
    }

    /// Closes every idle connection and starts a fresh pool; connections checked out now are
    /// closed when they come back. The engine stays usable (SQLAlchemy's `dispose()`).
    pub fn dispose(&self) -> Result<()> {
        if !self.shared.settings.pooled {
            return Ok(());
        }
        let fresh =
            builder::build_pool(&self.shared.pg, &self.shared.settings, &self.shared.metrics)?;
        let old = {
            let mut guard = self.shared.pool.write().unwrap_or_else(|p| p.into_inner());
            guard.replace(fresh)
        };
        if let Some(old) = old {
            old.close();
            old.manager().close();
        }
        Ok(())
    }

    /// Shuts the engine down: idle connections close now, checked-out ones when they come
    /// back, and every later checkout fails with a closed error. Correctness never depends
    /// on calling this; dropping the last handle cleans up too.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let guard = self.shared.pool.read().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = &*guard {
            pool.close();
            pool.manager().close();
        }
    }

    /// True after [`Engine::close`].
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Hits, misses and evictions of the per-connection prepared-statement caches
    /// (`Cached` mode), summed over every connection of this engine.
    pub fn statement_cache_stats(&self) -> StatementCacheStats {
        self.shared.exec.stmt_cache.stats()
    }

    /// The pool's counters now: connections created and discarded (by reason), cancelled
    /// statements drained or discarded, connect failures, waiters, checkout latency. See
    /// [`PoolMetrics`].
    pub fn metrics(&self) -> PoolMetrics {
        self.shared.metrics.snapshot(self.pool_status().waiting)
    }

    /// The statement mode connections of this engine use.
    pub fn statement_mode(&self) -> StatementMode {
        self.shared.exec.mode
    }

    /// Runs a statement on a pooled connection and returns all rows.
    pub async fn query(&self, stmt: &impl Statement) -> Result<Vec<Row>> {
        self.connect().await?.query(stmt).await
    }

    /// Runs a statement and maps every row into `T`.
    pub async fn query_as<T: FromRow>(&self, stmt: &impl Statement) -> Result<Vec<T>> {
        self.connect().await?.query_as(stmt).await
    }

    /// Runs a statement that must return exactly one row.
    pub async fn query_one<T: FromRow>(&self, stmt: &impl Statement) -> Result<T> {
        self.connect().await?.query_one(stmt).await
    }

    /// Runs a statement that returns zero or one row.
    pub async fn query_opt<T: FromRow>(&self, stmt: &impl Statement) -> Result<Option<T>> {
        self.connect().await?.query_opt(stmt).await
    }

    /// Runs a typed statement on a pooled connection and maps every row.
    pub async fn all<Q: Typed>(&self, q: &Q) -> Result<Vec<Q::Output>> {
        self.connect().await?.all(q).await
    }

    /// Runs a typed statement that must return exactly one row.
    pub async fn one<Q: Typed>(&self, q: &Q) -> Result<Q::Output> {
        self.connect().await?.one(q).await
    }

    /// Runs a typed statement that returns zero or one row.
    pub async fn one_or_none<Q: Typed>(&self, q: &Q) -> Result<Option<Q::Output>> {
        self.connect().await?.one_or_none(q).await
    }

    /// Runs a statement and returns the number of rows it affected.
    pub async fn execute(&self, stmt: &impl Statement) -> Result<u64> {
        self.connect().await?.execute(stmt).await
    }

    /// Runs `f` inside a transaction on one connection: commits when it returns `Ok`, rolls
    /// back when it returns `Err` (SQLAlchemy's `engine.begin()` block).
    ///
    /// ```no_run
    /// # async fn demo(engine: aludel::Engine) -> aludel::Result<()> {
    /// use aludel::sql;
    /// let moved = engine
    ///     .transaction(async |conn| {
    ///         conn.execute(&sql("UPDATE accounts SET balance = balance - 10 WHERE id = 1")).await?;
    ///         conn.execute(&sql("UPDATE accounts SET balance = balance + 10 WHERE id = 2")).await
    ///     })
    ///     .await?;
    /// # let _ = moved; Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// Dropping the future before the `COMMIT` is sent rolls the transaction back (after
    /// draining the statement in flight, if any). Dropping it while the `COMMIT` is in
    /// flight closes the connection, but a `COMMIT` already written may still commit: its
    /// outcome is then unknown (a caller that retries must make the work idempotent).
    pub async fn transaction<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        F: AsyncFnOnce(&mut Connection) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        let mut conn = self.connect().await?;
        conn.begin().await?;
        match f(&mut conn).await {
            Ok(v) => {
                conn.commit().await?;
                Ok(v)
            }
            Err(e) => {
                // The caller's error matters more than a failed rollback; a connection whose
                // rollback failed is discarded by its drop.
                let _ = conn.rollback().await;
                Err(e)
            }
        }
    }
}

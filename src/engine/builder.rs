//! Building an [`Engine`]: URL, pool limits, timeouts, statement mode, observers.

use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{Hook, HookError};

use super::manager::PgManager;
use super::metrics::Metrics;
use super::observe::{Observer, Observers};
use super::tx::{IsolationLevel, TxOptions};
use super::{Engine, ExecSettings, Pool, Shared};
use crate::error::{Error, Result};

/// How statements are sent to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StatementMode {
    /// Named prepared statements, cached per connection (the default and the fastest with a
    /// direct connection).
    ///
    /// When the server no longer has a statement the cache holds (SQLSTATE 26000, e.g. after
    /// `DISCARD ALL`, or 42P05 for a name that already exists), the connection's cache is
    /// dropped; outside a transaction the statement is prepared again and retried once, so
    /// the call succeeds. Inside a transaction that error aborted it, so it is returned.
    #[default]
    Cached,
    /// Unnamed statements with declared parameter types, prepared and executed in one round
    /// trip. **The mode for transaction-mode poolers** (PgBouncer in `pool_mode =
    /// transaction`, before 1.21 or without `max_prepared_statements`): there consecutive
    /// transactions of one client may run on different server connections, so named
    /// statements fail (26000) or, worse, can run another client's statement.
    ///
    /// ```
    /// use aludel::{Engine, engine::StatementMode};
    /// let engine = Engine::builder("postgres://app@127.0.0.1:6432/app")
    ///     .statement_mode(StatementMode::Unnamed)
    ///     .build()?;
    /// # Ok::<(), aludel::Error>(())
    /// ```
    Unnamed,
}

/// What else a connection resets when it goes back to the pool after SQL the engine could
/// not classify (raw `SET`, DDL, scripts, the driver client; see
/// [`Connection`](crate::Connection)).
///
/// A `ROLLBACK` is always queued then, so no transaction state reaches the pool. Session
/// state that outlives a transaction (`SET search_path`, `SET statement_timeout`, temporary
/// tables, advisory locks, `LISTEN`) is kept by default, as PostgreSQL keeps it: a raw
/// `SET` on a pooled connection is seen by that connection's next user. Pick a reset to
/// clear it; put per-engine settings in [`EngineBuilder::options`] instead, which survive
/// every reset.
///
/// ```
/// use aludel::engine::SessionReset;
/// let engine = aludel::Engine::builder("postgres://postgres@127.0.0.1:5432/postgres")
///     .session_reset(SessionReset::Clean)
///     .build()?;
/// # Ok::<(), aludel::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionReset {
    /// Only the `ROLLBACK` (the default; SQLAlchemy's `reset_on_return='rollback'`).
    #[default]
    Rollback,
    /// `ROLLBACK`, then `RESET ALL`: every setting goes back to its connection-start value
    /// (startup `options` included).
    ResetAll,
    /// `ROLLBACK`, then what `DISCARD ALL` does except dropping prepared statements (which
    /// the statement cache keeps using): `CLOSE ALL`, `SET SESSION AUTHORIZATION DEFAULT`,
    /// `RESET ALL`, `UNLISTEN *`, `pg_advisory_unlock_all()`, `DISCARD TEMP`,
    /// `DISCARD SEQUENCES`.
    Clean,
}

impl SessionReset {
    /// The statement queued after the `ROLLBACK`.
    pub(crate) fn sql(self) -> Option<&'static str> {
        match self {
            SessionReset::Rollback => None,
            SessionReset::ResetAll => Some("RESET ALL"),
            SessionReset::Clean => Some(
                "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
                 SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES",
            ),
        }
    }
}

/// Pool settings, with SQLAlchemy-like defaults.
#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    pub(crate) pooled: bool,
    pub(crate) max_size: usize,
    pub(crate) wait_timeout: Option<Duration>,
    pub(crate) create_timeout: Option<Duration>,
    pub(crate) recycle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) pre_ping: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            pooled: true,
            max_size: 10,
            wait_timeout: Some(Duration::from_secs(30)),
            create_timeout: Some(Duration::from_secs(5)),
            recycle_timeout: Some(Duration::from_secs(5)),
            max_lifetime: None,
            pre_ping: false,
        }
    }
}

/// Configures and builds an [`Engine`]. Building opens no connection.
///
/// ```
/// use std::time::Duration;
/// let engine = aludel::Engine::builder("postgres://postgres@127.0.0.1:5432/postgres")
///     .max_size(16)
///     .wait_timeout(Some(Duration::from_secs(5)))
///     .max_lifetime(Some(Duration::from_secs(1800)))
///     .application_name("billing-worker")
///     .build()?;
/// # Ok::<(), aludel::Error>(())
/// ```
#[must_use = "an EngineBuilder does nothing until .build()"]
pub struct EngineBuilder {
    url: Result<tokio_postgres::Config>,
    pool: PoolSettings,
    mode: StatementMode,
    observers: Vec<Arc<dyn Observer>>,
    slow: Option<Duration>,
    show_values: bool,
    default_tx: TxOptions,
    lazy_begin: bool,
    statement_cache_size: usize,
    reset: SessionReset,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("pool", &self.pool)
            .field("mode", &self.mode)
            .field("observers", &self.observers.len())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    pub(crate) fn new(url: &str) -> Self {
        let url = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::config(format!("invalid database URL: {e}")));
        EngineBuilder {
            url,
            pool: PoolSettings::default(),
            mode: StatementMode::default(),
            observers: Vec::new(),
            slow: None,
            show_values: false,
            default_tx: TxOptions::new(),
            lazy_begin: true,
            statement_cache_size: 256,
            reset: SessionReset::default(),
        }
    }

    /// The most connections the pool opens (default 10).
    pub fn max_size(mut self, n: usize) -> Self {
        self.pool.max_size = n;
        self
    }

    /// How long a checkout waits for a free connection before failing with a pool-timeout
    /// error (default 30 s; `None` waits forever).
    pub fn wait_timeout(mut self, t: Option<Duration>) -> Self {
        self.pool.wait_timeout = t;
        self
    }

    /// How long opening a new connection may take, all of it: TCP connect, TLS, startup and
    /// authentication (default 5 s; `None` waits as long as the OS does). A checkout that
    /// needs a new connection fails with [`Error::is_connect_timeout`] after it.
    ///
    /// While the server is unreachable, the pool also backs off: after a failed attempt,
    /// checkouts that need a new connection fail at once with [`Error::is_connect`] until
    /// the next probe (100 ms after the first failure, doubling up to 5 s, with jitter), and
    /// one checkout at a time probes. See `docs/architecture.md`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let engine = aludel::Engine::builder("postgres://postgres@127.0.0.1:5432/postgres")
    ///     .connect_timeout(Some(Duration::from_secs(2)))
    ///     .build()?;
    /// # Ok::<(), aludel::Error>(())
    /// ```
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.pool.create_timeout = t;
        if let (Ok(cfg), Some(t)) = (&mut self.url, t) {
            cfg.connect_timeout(t);
        }
        self
    }

    /// How long the checkout health check may take (default 5 s).
    pub fn recycle_timeout(mut self, t: Option<Duration>) -> Self {
        self.pool.recycle_timeout = t;
        self
    }

    /// Connections older than this are closed and replaced at checkout (`pool_recycle`).
    pub fn max_lifetime(mut self, t: Option<Duration>) -> Self {
        self.pool.max_lifetime = t;
        self
    }

    /// Pings each idle connection at checkout and replaces a dead one (`pool_pre_ping`).
    /// Off by default: it costs a round trip per checkout, and dead connections are detected
    /// and discarded anyway when a statement fails on them.
    pub fn pre_ping(mut self, on: bool) -> Self {
        self.pool.pre_ping = on;
        self
    }

    /// Opens a fresh connection for every checkout and closes it on release (`NullPool`).
    pub fn no_pool(mut self) -> Self {
        self.pool.pooled = false;
        self
    }

    /// Named cached statements (default) or unnamed typed statements for poolers.
    pub fn statement_mode(mut self, mode: StatementMode) -> Self {
        self.mode = mode;
        self
    }

    /// The most prepared statements each pooled connection keeps in `Cached` mode (default
    /// 256, at least 1). Past it the connection's statements are closed on the server and
    /// prepared again as needed, so a service with many distinct SQL texts does not grow
    /// every backend's memory without limit. See [`Engine::statement_cache_stats`].
    pub fn statement_cache_size(mut self, n: usize) -> Self {
        self.statement_cache_size = n;
        self
    }

    /// The `application_name` every connection reports in `pg_stat_activity`.
    pub fn application_name(mut self, name: &str) -> Self {
        if let Ok(cfg) = &mut self.url {
            cfg.application_name(name);
        }
        self
    }

    /// Server settings sent at connection start, e.g. `"-c search_path=tenant_1"`.
    pub fn options(mut self, options: &str) -> Self {
        if let Ok(cfg) = &mut self.url {
            cfg.options(options);
        }
        self
    }

    /// The isolation level of transactions that do not ask for one.
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.default_tx = self.default_tx.isolation(level);
        self
    }

    /// Makes transactions read-only unless they ask otherwise (e.g. for a replica engine).
    pub fn read_only(mut self, on: bool) -> Self {
        self.default_tx = self.default_tx.read_only(on);
        self
    }

    /// Registers a statement observer (see [`Observer`]).
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Logs statements slower than `threshold` at WARN on target `aludel::query::slow`.
    pub fn slow_statement_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.slow = threshold;
        self
    }

    /// Lets error text include the server's DETAIL line, which can contain row values. Off by
    /// default (SQLAlchemy's `hide_parameters`, inverted).
    pub fn show_values_in_errors(mut self, on: bool) -> Self {
        self.show_values = on;
        self
    }

    /// Lets sessions at READ COMMITTED run plain builder SELECTs before their transaction's
    /// `BEGIN`, which is sent with the first write (default on). A session that only reads
    /// then costs one statement per query instead of BEGIN + query + ROLLBACK. Turn it off
    /// when reads go through views or defaults that depend on the transaction start time
    /// (`now()` inside a view) and must agree with later writes; see
    /// `docs/architecture.md`. Other isolation levels always begin at once.
    pub fn lazy_begin(mut self, on: bool) -> Self {
        self.lazy_begin = on;
        self
    }

    /// What a connection resets on return after unclassified SQL, beyond the `ROLLBACK`
    /// that is always sent (default [`SessionReset::Rollback`]).
    pub fn session_reset(mut self, reset: SessionReset) -> Self {
        self.reset = reset;
        self
    }

    /// Builds the engine. No connection is opened until the first checkout.
    pub fn build(self) -> Result<Engine> {
        let pg = self.url?;
        if self.pool.max_size == 0 {
            return Err(Error::config("max_size must be at least 1"));
        }
        let settings = self.pool;
        let metrics = Arc::new(Metrics::default());
        let pool = if settings.pooled {
            Some(build_pool(&pg, &settings, &metrics)?)
        } else {
            None
        };
        let exec = ExecSettings {
            mode: self.mode,
            observers: Observers {
                list: self.observers.into(),
                slow: self.slow,
            },
            show_values: self.show_values,
            default_tx: self.default_tx,
            lazy_begin: self.lazy_begin,
            stmt_cache: Arc::new(super::cache::Bound::new(self.statement_cache_size)),
            reset: self.reset,
        };
        Ok(Engine {
            shared: Arc::new(Shared {
                pg,
                settings,
                pool: RwLock::new(pool),
                closed: std::sync::atomic::AtomicBool::new(false),
                server_read_committed: std::sync::OnceLock::new(),
                exec,
                metrics,
            }),
        })
    }
}

pub(crate) fn build_pool(
    pg: &tokio_postgres::Config,
    s: &PoolSettings,
    metrics: &Arc<Metrics>,
) -> Result<Pool> {
    let manager = PgManager::new(pg, s.create_timeout, s.pre_ping, metrics.clone());
    // No deadpool create timeout: the manager applies the connect timeout inside the
    // creation task, which outlives a cancelled checkout.
    let mut builder = Pool::builder(manager)
        .max_size(s.max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(s.wait_timeout)
        .recycle_timeout(s.recycle_timeout);
    if let Some(max) = s.max_lifetime {
        let metrics = metrics.clone();
        builder = builder.pre_recycle(Hook::sync_fn(move |_, object| {
            if object.age() >= max {
                Metrics::bump(&metrics.discarded_expired);
                Err(HookError::message("connection reached its max lifetime"))
            } else {
                Ok(())
            }
        }));
    }
    builder
        .build()
        .map_err(|e| Error::config(format!("cannot build the pool: {e}")))
}

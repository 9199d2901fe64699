//! How the pool opens, checks and closes connections: creation that outlives a cancelled
//! checkout, backoff while the server is unreachable, and a connect timeout covering the
//! whole handshake.
//!
//! * **Creation survives the caller.** deadpool runs `create` inside the checkout's future,
//!   so a checkout cancelled by its deadline would throw away a half-made connection. Here
//!   the connect runs on its own task; `create` awaits its result through a channel. If the
//!   checkout is dropped meanwhile, a guard parks the receiving end, and the next `create`
//!   adopts that connection (waiting for it if it is still being made) instead of opening
//!   another. A storm of cancelled checkouts therefore opens no more connections than
//!   would have been opened without deadlines.
//! * **Backoff.** After a failed attempt, checkouts fail at once with a typed connect error
//!   (`is_connect()`) until the next probe time; then exactly one checkout probes. The delay
//!   doubles per failure from [`BACKOFF_BASE`] up to [`BACKOFF_CAP`], with jitter (50–100 %)
//!   so that several processes do not retry in step. A success resets it.
//! * **Connect timeout** bounds TCP connect, TLS and the startup/authentication exchange
//!   (the driver's own `connect_timeout` covers only the TCP connect; a server that accepts
//!   and never answers would hang a checkout forever).

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics as ObjectMetrics, RecycleError, RecycleResult};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use super::cache::Statements;
use super::metrics::Metrics;
use crate::error::{Error, Result};

/// The first backoff delay after a failed connection attempt.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The longest backoff delay.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// One pooled connection: the driver client, its connection task, and its prepared
/// statements.
#[derive(Debug)]
pub(crate) struct PgConn {
    client: Client,
    task: JoinHandle<()>,
    pub(crate) statements: Statements,
}

impl Deref for PgConn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Ends the connection task, which closes the socket.
        self.task.abort();
    }
}

type Creation = oneshot::Receiver<Result<PgConn>>;

/// The pool's manager (see the module docs).
#[derive(Debug)]
pub(crate) struct PgManager {
    pg: Arc<tokio_postgres::Config>,
    connect_timeout: Option<Duration>,
    pre_ping: bool,
    metrics: Arc<Metrics>,
    /// Creations whose checkout was cancelled, oldest first.
    orphans: Mutex<VecDeque<Creation>>,
    /// The pool was closed: nothing parks any more, and what was parked is closed.
    closed: std::sync::atomic::AtomicBool,
    backoff: Arc<Backoff>,
}

impl PgManager {
    pub(crate) fn new(
        pg: &tokio_postgres::Config,
        connect_timeout: Option<Duration>,
        pre_ping: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        PgManager {
            pg: Arc::new(pg.clone()),
            connect_timeout,
            pre_ping,
            metrics,
            orphans: Mutex::new(VecDeque::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            backoff: Arc::new(Backoff::default()),
        }
    }

    /// The pool is closing: closes the parked connections (dropping a receiver makes its
    /// creation task drop the connection) and parks nothing from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let parked = std::mem::take(&mut *self.orphans());
        drop(parked);
    }

    fn orphans(&self) -> std::sync::MutexGuard<'_, VecDeque<Creation>> {
        self.orphans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Awaits a creation; if this future is dropped first, the creation is parked for the
    /// next `create`.
    async fn await_creation(&self, rx: Creation) -> Option<Result<PgConn>> {
        struct Park<'a> {
            rx: Option<Creation>,
            manager: &'a PgManager,
        }
        impl Drop for Park<'_> {
            fn drop(&mut self) {
                if let Some(rx) = self.rx.take() {
                    if self.manager.closed.load(Ordering::Acquire) {
                        // Dropping it closes the connection once it is made.
                        drop(rx);
                    } else {
                        self.manager.orphans().push_back(rx);
                    }
                }
            }
        }
        let mut park = Park {
            rx: Some(rx),
            manager: self,
        };
        let result = match park.rx.as_mut() {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        park.rx = None;
        result
    }

    /// Starts opening a connection on its own task.
    ///
    /// `probe`: this attempt is the backoff's one probe. If the task is dropped before it
    /// reports (its runtime shut down), the probe is given up, so that another may start;
    /// otherwise `probing` would stay set and every later checkout fail fast for ever.
    fn spawn_creation(&self, probe: bool) -> Creation {
        let (tx, rx) = oneshot::channel();
        let pg = self.pg.clone();
        let timeout = self.connect_timeout;
        let metrics = self.metrics.clone();
        let backoff = self.backoff.clone();
        let mut report = ProbeReport {
            backoff,
            pending: probe,
        };
        tokio::spawn(async move {
            let result = open(&pg, timeout).await;
            report.pending = false;
            report.backoff.record(result.is_ok());
            match &result {
                Ok(_) => Metrics::bump(&metrics.created),
                Err(e) => {
                    Metrics::bump(&metrics.connect_failures);
                    tracing::debug!(target: "aludel::engine", error = %e, "connection attempt failed");
                }
            }
            // The receiver is parked, not dropped, when the checkout was cancelled; it is
            // gone only with the pool, and then the connection closes here.
            let _ = tx.send(result);
        });
        rx
    }
}

impl managed::Manager for PgManager {
    type Type = PgConn;
    type Error = Error;

    async fn create(&self) -> Result<PgConn> {
        // A connection a cancelled checkout left behind comes first.
        loop {
            let parked = self.orphans().pop_front();
            let Some(rx) = parked else { break };
            match self.await_creation(rx).await {
                Some(Ok(conn)) if !conn.client.is_closed() => {
                    Metrics::bump(&self.metrics.adopted);
                    return Ok(conn);
                }
                // Failed or closed since: its failure already fed the backoff.
                _ => {}
            }
        }
        let probe = match self.backoff.admit() {
            Ok(probe) => probe,
            Err(retry_in) => {
                Metrics::bump(&self.metrics.connects_held_back);
                return Err(Error::connect_backoff(retry_in));
            }
        };
        let rx = self.spawn_creation(probe);
        match self.await_creation(rx).await {
            Some(result) => result,
            None => Err(Error::closed()),
        }
    }

    async fn recycle(&self, conn: &mut PgConn, _: &ObjectMetrics) -> RecycleResult<Error> {
        let healthy = !conn.client.is_closed()
            && (!self.pre_ping || conn.client.simple_query("").await.is_ok());
        if healthy {
            Ok(())
        } else {
            Metrics::bump(&self.metrics.discarded_unhealthy);
            Err(RecycleError::message(
                "connection closed or failed its ping",
            ))
        }
    }
}

/// Opens one connection and starts its connection task, within `timeout`.
async fn open(pg: &tokio_postgres::Config, timeout: Option<Duration>) -> Result<PgConn> {
    let connect = async {
        let (client, connection) = pg.connect(NoTls).await.map_err(Error::connect)?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "aludel::engine", error = %e, "connection task ended");
            }
        });
        Ok(PgConn {
            client,
            task,
            statements: Statements::default(),
        })
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, connect)
            .await
            .map_err(|_| Error::connect_timeout(Some(t)))?,
        None => connect.await,
    }
}

/// Clears the backoff's probe when a probing creation task is dropped before it reports.
struct ProbeReport {
    backoff: Arc<Backoff>,
    pending: bool,
}

impl Drop for ProbeReport {
    fn drop(&mut self) {
        if self.pending {
            self.backoff.abandon_probe();
        }
    }
}

/// Backoff state shared by the manager and its creation tasks.
#[derive(Debug, Default)]
struct Backoff {
    state: Mutex<BackoffState>,
    seed: AtomicU64,
}

#[derive(Debug, Default)]
struct BackoffState {
    /// Consecutive failed attempts.
    failures: u32,
    /// When the next probe may start.
    next_try: Option<Instant>,
    /// A probe is under way: everyone else fails fast until it reports.
    probing: bool,
}

impl Backoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, BackoffState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok` when an attempt may start now (`Ok(true)`: it is the probe); otherwise how long
    /// until the next probe.
    fn admit(&self) -> std::result::Result<bool, Duration> {
        let mut s = self.lock();
        if s.failures == 0 {
            return Ok(false);
        }
        let now = Instant::now();
        let wait = s
            .next_try
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        if s.probing || !wait.is_zero() {
            return Err(wait);
        }
        s.probing = true;
        Ok(true)
    }

    /// The probe ended without a result (its task was dropped): let the next one start.
    fn abandon_probe(&self) {
        self.lock().probing = false;
    }

    fn record(&self, ok: bool) {
        let jitter = self.jitter();
        let mut s = self.lock();
        s.probing = false;
        if ok {
            s.failures = 0;
            s.next_try = None;
            return;
        }
        let now = Instant::now();
        if s.next_try.is_some_and(|t| t > now) {
            // Attempts that were under way together fail together: one failure, not many.
            return;
        }
        s.failures = s.failures.saturating_add(1);
        let doublings = s.failures.saturating_sub(1).min(16);
        let delay = BACKOFF_BASE
            .saturating_mul(1u32 << doublings)
            .min(BACKOFF_CAP)
            .mul_f64(jitter);
        s.next_try = Some(now + delay);
    }

    /// A factor in [0.5, 1.0), different on every call and in every process.
    fn jitter(&self) -> f64 {
        let n = self.seed.fetch_add(1, Ordering::Relaxed);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        let bits = h.finish() >> 11; // 53 bits
        0.5 + (bits as f64 / (1u64 << 53) as f64) / 2.0
    }
}

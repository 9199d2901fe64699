//! Pool counters a service can export: what the pool created, threw away and why, how
//! cancelled statements ended, and how long checkouts waited.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the checkout-latency buckets; the last bucket is everything above.
const BUCKETS: [Duration; 4] = [
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
];

/// The live counters, shared by the engine, its pool manager and its drain tasks.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) created: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) connects_held_back: AtomicU64,
    pub(crate) adopted: AtomicU64,
    pub(crate) discarded_broken: AtomicU64,
    pub(crate) discarded_unhealthy: AtomicU64,
    pub(crate) discarded_expired: AtomicU64,
    pub(crate) cancelled_drained: AtomicU64,
    pub(crate) cancelled_discarded: AtomicU64,
    pub(crate) cancel_requests: AtomicU64,
    pub(crate) commits_in_doubt: AtomicU64,
    checkouts: AtomicU64,
    checkout_nanos: AtomicU64,
    checkout_buckets: [AtomicU64; 5],
}

impl Metrics {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one successful checkout that took `waited`.
    pub(crate) fn checkout(&self, waited: Duration) {
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.checkout_nanos.fetch_add(nanos, Ordering::Relaxed);
        let slot = BUCKETS
            .iter()
            .position(|b| waited <= *b)
            .unwrap_or(BUCKETS.len());
        if let Some(bucket) = self.checkout_buckets.get(slot) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, waiting: usize) -> PoolMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PoolMetrics {
            connections_created: get(&self.created),
            connect_failures: get(&self.connect_failures),
            connects_held_back: get(&self.connects_held_back),
            connections_adopted: get(&self.adopted),
            discarded_broken: get(&self.discarded_broken),
            discarded_unhealthy: get(&self.discarded_unhealthy),
            discarded_expired: get(&self.discarded_expired),
            cancelled_drained: get(&self.cancelled_drained),
            cancelled_discarded: get(&self.cancelled_discarded),
            cancel_requests: get(&self.cancel_requests),
            commits_in_doubt: get(&self.commits_in_doubt),
            waiting,
            checkouts: get(&self.checkouts),
            checkout_wait_total: Duration::from_nanos(get(&self.checkout_nanos)),
            checkout_wait_histogram: std::array::from_fn(|i| {
                self.checkout_buckets.get(i).map_or(0, get)
            }),
        }
    }
}

/// A snapshot of an engine's pool counters ([`Engine::metrics`](crate::Engine::metrics)).
///
/// Every count is cumulative since the engine was built (they survive
/// [`Engine::dispose`](crate::Engine::dispose)) except `waiting`, which is the number of tasks
/// waiting for a connection now. Export them as counters and a gauge:
///
/// ```no_run
/// # async fn demo(engine: aludel::Engine) {
/// let m = engine.metrics();
/// let discarded = m.discarded_broken + m.discarded_unhealthy + m.discarded_expired
///     + m.cancelled_discarded;
/// println!(
///     "created={} discarded={discarded} drained={} waiting={} mean wait={:?}",
///     m.connections_created,
///     m.cancelled_drained,
///     m.waiting,
///     m.mean_checkout_wait(),
/// );
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// Connections opened (each one is a new server session).
    pub connections_created: u64,
    /// Connection attempts that failed: refused, timed out, rejected by the server.
    pub connect_failures: u64,
    /// Checkouts failed at once, without a connection attempt, because the server was
    /// unreachable at the last attempt and the backoff delay had not passed yet.
    pub connects_held_back: u64,
    /// Connections whose checkout was cancelled while they were being opened, and that a
    /// later checkout used instead of opening another.
    pub connections_adopted: u64,
    /// Connections closed because they broke (connection error, terminated backend) or were
    /// invalidated ([`Connection::invalidate`](crate::Connection::invalidate)).
    pub discarded_broken: u64,
    /// Idle connections found closed (or failing the pre-ping) at checkout and replaced.
    pub discarded_unhealthy: u64,
    /// Connections closed at checkout for passing their max lifetime.
    pub discarded_expired: u64,
    /// Statements cancelled by dropping their future whose connection was drained back to
    /// idle and returned to the pool.
    pub cancelled_drained: u64,
    /// Statements cancelled by dropping their future whose connection could not be drained
    /// in time (or broke) and was closed.
    pub cancelled_discarded: u64,
    /// Cancel requests sent to the server for statements still running after the drain's
    /// grace period.
    pub cancel_requests: u64,
    /// `COMMIT`s whose future was dropped after the driver had the request: sent, and
    /// drained like any cancelled statement (counted in `cancelled_drained` or
    /// `cancelled_discarded` as well). Each one committed unless it failed; the caller that
    /// gave up cannot know which. A rising count means deadlines shorter than commits.
    pub commits_in_doubt: u64,
    /// Tasks waiting for a connection now.
    pub waiting: usize,
    /// Successful checkouts.
    pub checkouts: u64,
    /// The time successful checkouts waited, summed.
    pub checkout_wait_total: Duration,
    /// Successful checkouts by how long they waited: ≤ 1 ms, ≤ 10 ms, ≤ 100 ms, ≤ 1 s, more.
    pub checkout_wait_histogram: [u64; 5],
}

impl PoolMetrics {
    /// The mean time a successful checkout waited (zero before the first).
    pub fn mean_checkout_wait(&self) -> Duration {
        match u32::try_from(self.checkouts) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.checkout_wait_total / n,
            Err(_) => Duration::from_nanos(
                u64::try_from(self.checkout_wait_total.as_nanos()).unwrap_or(u64::MAX)
                    / self.checkouts,
            ),
        }
    }
}

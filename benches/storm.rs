//! The deadline storm (issue 14): a warm pool of 8, calls of `SELECT pg_sleep(0.005)` each
//! wrapped in `tokio::time::timeout` with a random 0–20 ms deadline, 16 callers at a time —
//! what a service behind tower's `TimeoutLayer` does under load. The same storm runs against
//! aludel and against plain tokio-postgres on 8 connections (checked out one caller at a
//! time, as a pool does), alternating, in the same process. Goodput is the number of calls
//! that completed within their deadline; new sessions are the `pg_stat_database.sessions`
//! delta of a database only this bench uses.
//!
//!     cargo bench --bench storm          # ALUDEL_BENCH_QUICK=1 for fewer rounds
//!
//! S1 is 800 single statements; S2 is 2,000 transactions (BEGIN, the sleep, COMMIT).
//! Targets: aludel's goodput ≥ 0.9× the bare driver's, new sessions ≤ 2× the pool size.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aludel::sql;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

const POOL: usize = 8;
const CALLERS: usize = 16;
const DB: &str = "aludel_storm";

/// `DATABASE_URL`, else the local server.
fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The same server, database `aludel_storm`, as a key=value string.
fn storm_url() -> String {
    let cfg: tokio_postgres::Config = base_url().parse().unwrap();
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres");
    let mut url = format!("host={host} port={port} user={user} dbname={DB}");
    if let Some(pw) = cfg.get_password() {
        url.push_str(&format!(" password={}", String::from_utf8_lossy(pw)));
    }
    url
}

/// Deadlines in 0..20 ms from a fixed xorshift sequence, the same for both sides.
fn deadlines(n: usize) -> Vec<Duration> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_micros(x % 20_000)
        })
        .collect()
}

/// Plain tokio-postgres on `POOL` connections: a caller takes one client for its call and
/// puts it back when done or dropped (a dropped query future leaves the client usable; the
/// driver discards the rest of the response and the next request queues behind it).
struct RawPool {
    clients: std::sync::Mutex<Vec<(Client, tokio_postgres::Statement)>>,
    permits: tokio::sync::Semaphore,
}

struct RawCheckout<'a> {
    pool: &'a RawPool,
    client: Option<(Client, tokio_postgres::Statement)>,
}

impl Drop for RawCheckout<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            self.pool.clients.lock().unwrap().push(c);
        }
    }
}

impl RawPool {
    async fn connect(url: &str) -> RawPool {
        let mut clients = Vec::new();
        for _ in 0..POOL {
            let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
            tokio::spawn(conn);
            let stmt = client.prepare("SELECT pg_sleep(0.005)").await.unwrap();
            clients.push((client, stmt));
        }
        RawPool {
            clients: std::sync::Mutex::new(clients),
            permits: tokio::sync::Semaphore::new(POOL),
        }
    }

    async fn call(&self, in_tx: bool) -> Result<(), tokio_postgres::Error> {
        let _permit = self.permits.acquire().await.unwrap();
        let mut out = RawCheckout {
            pool: self,
            client: self.clients.lock().unwrap().pop(),
        };
        let (client, stmt) = out.client.as_mut().unwrap();
        if in_tx {
            let tx = client.transaction().await?;
            tx.execute(&*stmt, &[]).await?;
            tx.commit().await
        } else {
            client.execute(&*stmt, &[]).await.map(|_| ())
        }
    }
}

async fn aludel_call(engine: &aludel::Engine, in_tx: bool) -> aludel::Result<()> {
    let q = sql("SELECT pg_sleep(0.005)");
    if in_tx {
        engine
            .transaction(async |c| c.execute(&q).await.map(|_| ()))
            .await
    } else {
        engine.execute(&q).await.map(|_| ())
    }
}

/// Runs `calls` under the deadlines with `CALLERS` concurrent callers; returns how many
/// completed in time.
async fn storm<F, Fut>(deadlines: &Arc<Vec<Duration>>, call: F) -> usize
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let callers = (0..CALLERS).map(|_| {
        let (next, done, deadlines, call) =
            (next.clone(), done.clone(), deadlines.clone(), call.clone());
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(d) = deadlines.get(i) else { return };
                if let Ok(true) = tokio::time::timeout(*d, call()).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    });
    for c in futures_util::future::join_all(callers).await {
        c.unwrap();
    }
    done.load(Ordering::Relaxed)
}

async fn sessions(admin: &Client) -> i64 {
    admin
        .query_one(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[derive(Default)]
struct Totals {
    done: usize,
    calls: usize,
    sessions: i64,
}

/// Both sides' totals and the aludel engine's metrics of every round.
#[derive(Default)]
struct Tally {
    a: Totals,
    r: Totals,
    metrics: Vec<aludel::engine::PoolMetrics>,
}

async fn round(
    url: &str,
    admin: &Client,
    deadlines: &Arc<Vec<Duration>>,
    in_tx: bool,
    aludel_first: bool,
    tally: &mut Tally,
) {
    let Tally { a, r, metrics } = tally;
    for side in [aludel_first, !aludel_first] {
        if side {
            let engine = aludel::Engine::builder(url).max_size(POOL).build().unwrap();
            let warm = futures_util::future::join_all((0..POOL).map(|_| engine.connect())).await;
            drop(warm);
            let before = sessions(admin).await;
            let done = storm(deadlines, {
                let engine = engine.clone();
                move || {
                    let engine = engine.clone();
                    async move { aludel_call(&engine, in_tx).await.is_ok() }
                }
            })
            .await;
            // Drains finish within the cancel grace plus a round trip.
            tokio::time::sleep(Duration::from_millis(200)).await;
            a.sessions += sessions(admin).await - before;
            a.done += done;
            a.calls += deadlines.len();
            metrics.push(engine.metrics());
            engine.close();
        } else {
            let pool = Arc::new(RawPool::connect(url).await);
            let before = sessions(admin).await;
            let done = storm(deadlines, {
                let pool = pool.clone();
                move || {
                    let pool = pool.clone();
                    async move { pool.call(in_tx).await.is_ok() }
                }
            })
            .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            r.sessions += sessions(admin).await - before;
            r.done += done;
            r.calls += deadlines.len();
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rounds: u32 = if std::env::var_os("ALUDEL_BENCH_QUICK").is_some() {
        2
    } else {
        6
    };
    let out = rt.block_on(async {
        let (setup, conn) = tokio_postgres::connect(&base_url(), NoTls).await.unwrap();
        tokio::spawn(conn);
        let exists = setup
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DB])
            .await
            .unwrap()
            .is_some();
        if !exists {
            setup
                .batch_execute(&format!("CREATE DATABASE {DB}"))
                .await
                .unwrap();
        }
        let url = storm_url();
        let (admin, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(conn);

        let mut table = String::from(
            "| storm | aludel goodput | raw goodput | ratio aludel/raw | target | new sessions aludel / raw (per round, pool of 8) | target |\n|---|---|---|---|---|---|---|\n",
        );
        let mut notes = Vec::new();
        for (name, calls, in_tx) in [
            ("S1 800 statements", 800, false),
            ("S2 2,000 transactions", 2000, true),
        ] {
            let deadlines = Arc::new(deadlines(calls));
            let mut tally = Tally::default();
            for i in 0..rounds {
                round(&url, &admin, &deadlines, in_tx, i % 2 == 0, &mut tally).await;
            }
            let Tally { a, r, metrics } = tally;
            let ratio = a.done as f64 / r.done.max(1) as f64;
            let per_round = |t: &Totals| t.sessions as f64 / f64::from(rounds);
            let ok = |b: bool| if b { "✓" } else { "✗" };
            table.push_str(&format!(
                "| {name} | {} / {} ({:.0} %) | {} / {} ({:.0} %) | {ratio:.3} | ≥ 0.90 {} | {:.1} / {:.1} | ≤ {} {} |\n",
                a.done,
                a.calls,
                100.0 * a.done as f64 / a.calls as f64,
                r.done,
                r.calls,
                100.0 * r.done as f64 / r.calls as f64,
                ok(ratio >= 0.9),
                per_round(&a),
                per_round(&r),
                2 * POOL,
                ok(per_round(&a) <= (2 * POOL) as f64),
            ));
            let sum = |f: fn(&aludel::engine::PoolMetrics) -> u64| metrics.iter().map(f).sum::<u64>();
            notes.push(format!(
                "{name}, aludel pool metrics over {rounds} rounds: created {} (warm-up {}), adopted {}, drained {}, discarded after cancel {}, cancel requests {}, commits in doubt {}, discarded broken {}",
                sum(|m| m.connections_created),
                POOL * rounds as usize,
                sum(|m| m.connections_adopted),
                sum(|m| m.cancelled_drained),
                sum(|m| m.cancelled_discarded),
                sum(|m| m.cancel_requests),
                sum(|m| m.commits_in_doubt),
                sum(|m| m.discarded_broken),
            ));
        }
        for n in notes {
            table.push('\n');
            table.push_str(&n);
            table.push('\n');
        }
        table
    });
    println!("\n== storm: aludel vs raw tokio-postgres (same run, alternating)\n{out}");
    let dir = std::path::Path::new("target/aludel-bench");
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(dir.join("storm.md"), out);
}

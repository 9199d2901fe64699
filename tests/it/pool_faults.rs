//! The pool under faults: cancelled statements, cancelled checkouts, a server that is down
//! or silent. Every assertion is on counts (connections, sessions, attempts), not on timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use aludel::sql;
use aludel::testing::TestDb;

/// Waits (bounded) until no connection is checked out or being drained.
pub(crate) async fn pool_settles(engine: &aludel::Engine) -> bool {
    for _ in 0..500 {
        if engine.pool_status().in_use == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

// covers: ENG-09, SES-14
#[tokio::test]
async fn a_thousand_cancelled_statements_leave_the_pool_its_connections_all_idle() {
    let db = TestDb::new().await.unwrap();
    db.engine()
        .execute(&sql("CREATE TABLE t (id int)"))
        .await
        .unwrap();
    let engine = db.engine_builder().max_size(4).build().unwrap();
    // Warm the pool: four connections, opened before any deadline applies.
    let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| engine.connect()))
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(held);
    assert!(pool_settles(&engine).await);
    assert_eq!(engine.metrics().connections_created, 4);

    // 8 workers × 125 calls, each cut off after 0–4 ms while its 10 ms statement runs (or
    // while it waits for a connection); every other call runs inside a transaction that
    // inserted a row first.
    let workers = (0..8u64).map(|w| {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut completed = 0u32;
            for i in 0..125u64 {
                let deadline = Duration::from_millis((w + i) % 5);
                let call = async {
                    let mut c = engine.connect().await?;
                    if i % 2 == 0 {
                        c.begin().await?;
                        c.execute(&sql("INSERT INTO t VALUES (1)")).await?;
                    }
                    c.execute(&sql("SELECT pg_sleep(0.01)")).await
                };
                if tokio::time::timeout(deadline, call).await.is_ok() {
                    completed += 1;
                }
            }
            completed
        })
    });
    let completed: u32 = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert!(pool_settles(&engine).await, "{:?}", engine.pool_status());

    let m = engine.metrics();
    assert!(
        m.cancelled_drained >= 100,
        "most calls were cancelled mid-statement ({completed} of 1000 completed): {m:?}"
    );
    assert_eq!(m.cancelled_discarded, 0, "{m:?}");
    assert_eq!(
        m.connections_created, 4,
        "no connection was replaced: {m:?}"
    );
    let status = engine.pool_status();
    assert_eq!((status.size, status.idle), (4, 4), "{status:?}");
    // The pool's four, and the test kit's own engine that created the table.
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            b.len() == 5 && b.iter().all(|(_, s)| s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "every backend idle, none in a transaction: {seen:?}");

    // Nothing of the storm reaches the next users: no cancel lands on their statements,
    // no row of a cancelled transaction was committed.
    let checks = (0..4).map(|_| async {
        let mut c = engine.connect().await?;
        let n: i64 = c.query_one(&sql("SELECT count(*) FROM t")).await?;
        c.execute(&sql("SELECT pg_sleep(0.02)")).await?;
        Ok::<_, aludel::Error>((n, c.in_transaction()))
    });
    for r in futures_util::future::join_all(checks).await {
        assert_eq!(r.unwrap(), (0, false));
    }
}

/// A TCP front for the test server that counts the connections it accepts and, by mode,
/// closes them at once (a server that is down), holds them without a byte (a silent
/// server), or forwards them to the real server, optionally after a delay (a slow one).
struct Front {
    port: u16,
    accepts: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
}

const DOWN: u8 = 0;
const SILENT: u8 = 1;
const UP: u8 = 2;
const SLOW: u8 = 3;

impl Front {
    async fn start(mode: u8) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepts = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(AtomicU8::new(mode));
        let cfg: tokio_postgres::Config = aludel::testing::database_url().parse().unwrap();
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            other => panic!("the test server must be reachable over TCP: {other:?}"),
        };
        let server = (host, cfg.get_ports().first().copied().unwrap_or(5432));
        tokio::spawn({
            let (accepts, mode) = (accepts.clone(), mode.clone());
            async move {
                let mut held = Vec::new();
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    accepts.fetch_add(1, Ordering::SeqCst);
                    match mode.load(Ordering::SeqCst) {
                        DOWN => drop(client),
                        SILENT => held.push(client),
                        m => {
                            let server = server.clone();
                            tokio::spawn(async move {
                                if m == SLOW {
                                    tokio::time::sleep(Duration::from_millis(300)).await;
                                }
                                let mut pg = tokio::net::TcpStream::connect(server).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut pg).await
                            });
                        }
                    }
                }
            }
        });
        Front {
            port,
            accepts,
            mode,
        }
    }

    fn url(&self) -> String {
        let mut url = aludel::testing::database_url();
        let cfg: tokio_postgres::Config = url.parse().unwrap();
        let user = cfg.get_user().unwrap_or("postgres").to_owned();
        let db = cfg.get_dbname().unwrap_or("postgres").to_owned();
        url = format!("postgres://{user}@127.0.0.1:{}/{db}", self.port);
        url
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

// covers: ENG-04, ERR-09
#[tokio::test]
async fn a_server_that_is_down_sees_a_bounded_number_of_attempts_and_is_used_again_when_back() {
    let front = Front::start(DOWN).await;
    let engine = aludel::Engine::builder(&front.url())
        .max_size(4)
        .build()
        .unwrap();
    // 8 request loops × 200 checkouts, 1 ms apart: 1,600 checkouts over at least 200 ms.
    let loops = (0..8).map(|_| {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut not_connect = 0;
            for _ in 0..200 {
                match engine.connect().await {
                    Err(e) if e.is_connect() => {}
                    _ => not_connect += 1,
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            not_connect
        })
    });
    let started = std::time::Instant::now();
    let odd: i32 = futures_util::future::join_all(loops)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    let elapsed = started.elapsed();
    assert_eq!(odd, 0, "every checkout failed with a typed connect error");
    let attempts = front.accepts();
    let m = engine.metrics();
    assert_eq!(m.connect_failures as usize, attempts, "{m:?}");
    assert_eq!(m.connects_held_back as usize, 1600 - attempts, "{m:?}");
    // Without backoff every checkout is an attempt (1,600). With it: the first wave (up to
    // the pool size), then one probe per backoff step; the steps double from 100 ms (50 ms
    // at the lowest jitter), so by time t at most 2 + log2(t / 50 ms) probes have run.
    let steps = (elapsed.as_millis() / 50).max(1).ilog2() as usize;
    assert!(
        attempts <= 4 + 2 + steps,
        "{attempts} attempts in {elapsed:?}"
    );
    assert!(attempts >= 2, "the pool probes again: {attempts}");

    // Back up: within the capped backoff, a checkout connects again.
    front.mode.store(UP, Ordering::SeqCst);
    let mut connected = None;
    for _ in 0..200 {
        match engine.connect().await {
            Ok(mut c) => {
                connected = Some(c.query_one::<i32>(&sql("SELECT 1")).await.unwrap());
                break;
            }
            Err(e) => assert!(e.is_connect(), "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connected, Some(1), "the pool never reconnected");
    assert_eq!(engine.metrics().connections_created, 1);
}

// covers: ENG-04, ERR-09
#[tokio::test]
async fn a_checkout_against_a_silent_server_fails_typed_within_the_connect_timeout() {
    let front = Front::start(SILENT).await;
    let timeout = Duration::from_millis(300);
    let engine = aludel::Engine::builder(&front.url())
        .max_size(2)
        .connect_timeout(Some(timeout))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = engine.connect().await.unwrap_err();
    let waited = started.elapsed();
    assert!(err.is_connect_timeout() && err.is_connect(), "{err:?}");
    assert!(!err.is_connection_lost());
    assert!(
        waited >= timeout && waited < timeout * 3,
        "failed after {waited:?} with a {timeout:?} connect timeout"
    );
    assert_eq!(front.accepts(), 1);
    // Right after, the pool backs off: a typed connect error at once, no new attempt.
    let err = engine.connect().await.unwrap_err();
    assert!(err.is_connect() && !err.is_connect_timeout(), "{err:?}");
    assert!(err.to_string().contains("next attempt in"), "{err}");
    assert_eq!(front.accepts(), 1);
    let m = engine.metrics();
    assert_eq!((m.connect_failures, m.connects_held_back), (1, 1), "{m:?}");
}

// covers: ENG-04, SES-14
#[tokio::test]
async fn a_checkout_cancelled_while_connecting_leaves_its_connection_to_the_next() {
    let front = Front::start(SLOW).await;
    let engine = aludel::Engine::builder(&front.url())
        .max_size(2)
        .build()
        .unwrap();
    // The server takes 300 ms to answer; the caller gives up after 50 ms.
    let cut = tokio::time::timeout(Duration::from_millis(50), engine.connect()).await;
    assert!(cut.is_err(), "the checkout was cut off while connecting");
    assert_eq!(engine.pool_status().size, 0);
    // The next checkout takes over the connection being made instead of opening another.
    let mut c = engine.connect().await.unwrap();
    assert_eq!(c.query_one::<i32>(&sql("SELECT 1")).await.unwrap(), 1);
    assert_eq!(front.accepts(), 1, "one connection opened, not two");
    let m = engine.metrics();
    assert_eq!(
        (m.connections_created, m.connections_adopted),
        (1, 1),
        "{m:?}"
    );
}

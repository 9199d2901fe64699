use std::time::{Duration, Instant};

use aludel::sql;
use aludel::testing::TestDb;

fn states(b: &[(i32, String)]) -> Vec<&str> {
    b.iter().map(|(_, s)| s.as_str()).collect()
}

// covers: ENG-03, ENG-04, ERR-09
#[tokio::test]
async fn a_third_checkout_of_a_pool_of_two_waits_then_times_out() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .max_size(2)
        .wait_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let mut a = engine.connect().await.unwrap();
    let mut b = engine.connect().await.unwrap();
    a.begin().await.unwrap();
    b.begin().await.unwrap();
    a.execute(&sql("SELECT 1")).await.unwrap();
    b.execute(&sql("SELECT 1")).await.unwrap();

    let started = Instant::now();
    let err = engine.connect().await.unwrap_err();
    let waited = started.elapsed();
    assert!(err.is_pool_timeout(), "{err:?}");
    assert!(
        waited >= Duration::from_millis(280) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    let t = err.pool_timeout().unwrap();
    assert_eq!((t.max_size, t.size, t.in_use), (2, 2, 2));
    assert!(t.waited >= Duration::from_millis(280));
    assert!(err.to_string().contains("max size 2"), "{err}");

    let backends = db.backends().await.unwrap();
    assert_eq!(backends.len(), 2, "exactly two backends: {backends:?}");
    let status = engine.pool_status();
    assert_eq!((status.size, status.in_use, status.idle), (2, 2, 0));

    // A waiter gets the connection as soon as one comes back.
    let waiter = tokio::spawn({
        let engine = engine.clone();
        async move { engine.connect().await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(engine.pool_status().waiting, 1);
    drop(a);
    waiter.await.unwrap().unwrap();
    drop(b);
}

// covers: ENG-08
#[tokio::test]
async fn a_connection_dropped_inside_a_transaction_comes_back_rolled_back() {
    let db = TestDb::new().await.unwrap();
    db.engine()
        .execute(&sql("CREATE TABLE t (id int)"))
        .await
        .unwrap();
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut c = engine.connect().await.unwrap();
    let pid = c.backend_pid().await.unwrap();
    c.begin().await.unwrap();
    c.execute(&sql("INSERT INTO t VALUES (1)")).await.unwrap();
    drop(c); // no commit, no rollback

    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            b.iter().all(|(_, s)| s != "idle in transaction")
        })
        .await
        .unwrap();
    assert!(ok, "left idle in transaction: {seen:?}");

    let mut c = engine.connect().await.unwrap();
    assert_eq!(
        c.backend_pid().await.unwrap(),
        pid,
        "the same backend came back to the pool"
    );
    assert!(!c.in_transaction());
    let n: i64 = c.query_one(&sql("SELECT count(*) FROM t")).await.unwrap();
    assert_eq!(n, 0, "the uncommitted row is gone");
    let level: String = c
        .query_one(&sql("SELECT current_setting('transaction_isolation')"))
        .await
        .unwrap();
    assert_eq!(level, "read committed");
}

// covers: ENG-09, SES-14
#[tokio::test]
async fn a_query_cancelled_by_drop_stops_on_the_server_and_its_connection_is_reused_idle() {
    let db = TestDb::new().await.unwrap();
    let engine = db.engine_builder().max_size(2).build().unwrap();
    let mut c = engine.connect().await.unwrap();
    let pid = c.backend_pid().await.unwrap();
    let task = tokio::spawn(async move {
        c.begin().await.unwrap();
        c.execute(&sql("SELECT pg_sleep(30)")).await
    });
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(5), |b| {
            b.iter().any(|(p, s)| *p == pid && s == "active")
        })
        .await
        .unwrap();
    assert!(ok, "the sleep never started: {seen:?}");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            states(b)
                .iter()
                .all(|s| *s != "active" && *s != "idle in transaction")
        })
        .await
        .unwrap();
    assert!(ok, "the cancelled query kept running: {seen:?}");
    assert!(
        crate::pool_faults::pool_settles(&engine).await,
        "the drain never gave the connection back: {:?}",
        engine.pool_status()
    );
    let m = engine.metrics();
    assert_eq!(
        (m.cancelled_drained, m.cancelled_discarded),
        (1, 0),
        "{m:?}"
    );
    assert_eq!(m.cancel_requests, 1, "a 30 s sleep needs a cancel request");
    assert_eq!(m.connections_created, 1, "{m:?}");

    let mut next = engine.connect().await.unwrap();
    assert_eq!(
        next.backend_pid().await.unwrap(),
        pid,
        "the drained connection is reused"
    );
    assert!(!next.in_transaction());
    let state: String = next
        .query_one(&sql(
            "SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()",
        ))
        .await
        .unwrap();
    assert_eq!(state, "active", "our own query is the only thing running");
}

// covers: ENG-09, ERR-11
#[tokio::test]
async fn a_backend_killed_mid_transaction_fails_typed_and_the_pool_recovers() {
    let db = TestDb::new().await.unwrap();
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut c = engine.connect().await.unwrap();
    let pid = c.backend_pid().await.unwrap();
    c.begin().await.unwrap();
    let killed: bool = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT pg_terminate_backend($1)").bind(pid))
        .await
        .unwrap();
    assert!(killed);
    let err = c.execute(&sql("SELECT 1")).await.unwrap_err();
    assert!(err.is_connection_lost(), "{err:?}");
    drop(c);
    let mut c = engine.connect().await.unwrap();
    assert_ne!(c.backend_pid().await.unwrap(), pid);
    c.execute(&sql("SELECT 1")).await.unwrap();
}

// covers: ENG-06
#[tokio::test]
async fn pre_ping_replaces_a_terminated_idle_connection() {
    let db = TestDb::new().await.unwrap();
    for pre_ping in [true, false] {
        let engine = db
            .engine_builder()
            .max_size(1)
            .pre_ping(pre_ping)
            .build()
            .unwrap();
        let pid = engine.connect().await.unwrap().backend_pid().await.unwrap();
        let _: bool = db
            .admin()
            .await
            .unwrap()
            .query_one(&sql("SELECT pg_terminate_backend($1)").bind(pid))
            .await
            .unwrap();
        let (_, gone) = db
            .wait_for_backends(Duration::from_secs(2), |b| b.iter().all(|(p, _)| *p != pid))
            .await
            .unwrap();
        assert!(gone);
        if pre_ping {
            // The ping on checkout finds the dead connection and opens a new one.
            let mut c = engine.connect().await.unwrap();
            assert_ne!(c.backend_pid().await.unwrap(), pid);
        } else {
            // Without the ping the dead connection may be handed out; its first statement fails
            // typed, it is discarded, and the next checkout works.
            let first = async {
                engine
                    .connect()
                    .await?
                    .query(&sql("SELECT pg_backend_pid()"))
                    .await
            };
            if let Err(e) = first.await {
                assert!(e.is_connection_lost(), "{e:?}");
            }
            let mut c = engine.connect().await.unwrap();
            assert_ne!(c.backend_pid().await.unwrap(), pid);
        }
    }
}

// covers: ENG-05
#[tokio::test]
async fn connections_past_their_max_lifetime_are_replaced_at_checkout() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .max_size(1)
        .max_lifetime(Some(Duration::from_millis(500)))
        .build()
        .unwrap();
    let a = engine.connect().await.unwrap().backend_pid().await.unwrap();
    let again = engine.connect().await.unwrap().backend_pid().await.unwrap();
    assert_eq!(a, again, "young connections are reused");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let b = engine.connect().await.unwrap().backend_pid().await.unwrap();
    assert_ne!(a, b);
}

// covers: ENG-10
#[tokio::test]
async fn dispose_closes_idle_connections_and_the_engine_stays_usable() {
    let db = TestDb::new().await.unwrap();
    let engine = db.engine_builder().max_size(3).build().unwrap();
    let mut held = engine.connect().await.unwrap();
    let held_pid = held.backend_pid().await.unwrap();
    {
        let mut a = engine.connect().await.unwrap();
        let mut b = engine.connect().await.unwrap();
        a.backend_pid().await.unwrap();
        b.backend_pid().await.unwrap();
    }
    assert_eq!(db.backends().await.unwrap().len(), 3);
    engine.dispose().unwrap();
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| b.len() == 1)
        .await
        .unwrap();
    assert!(ok, "only the checked-out connection may remain: {seen:?}");
    assert_eq!(seen[0].0, held_pid);
    drop(held);
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| b.is_empty())
        .await
        .unwrap();
    assert!(
        ok,
        "a connection returned after dispose must close: {seen:?}"
    );
    // Still usable, on a fresh pool.
    engine.execute(&sql("SELECT 1")).await.unwrap();

    engine.close();
    assert!(engine.connect().await.unwrap_err().is_closed());
}

// covers: SES-14, DI-06
#[tokio::test]
async fn fifty_checkouts_cancelled_at_random_points_leave_the_pool_healthy() {
    let db = TestDb::new().await.unwrap();
    let engine = db.engine_builder().max_size(5).build().unwrap();
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = engine.connect().await?;
            c.begin().await?;
            c.execute(&sql("SELECT pg_sleep(0.05)")).await?;
            if i % 2 == 0 {
                c.commit().await?;
            }
            Ok::<_, aludel::Error>(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            states(b).iter().all(|s| *s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "backends left busy: {seen:?}");
    assert!(
        crate::pool_faults::pool_settles(&engine).await,
        "{:?}",
        engine.pool_status()
    );
    engine.execute(&sql("SELECT 1")).await.unwrap();
}

// covers: ENG-08, SES-14
/// Poll a transaction's future N times (each poll after a real wake-up), then drop it, for
/// every N: the connection must never come back inside a transaction or mid-query.
#[tokio::test]
async fn dropping_a_transaction_at_every_poll_point_keeps_connections_clean() {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake};

    struct Flag(tokio::sync::Notify);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.notify_one();
        }
    }

    let db = TestDb::new().await.unwrap();
    db.engine()
        .execute(&sql("CREATE TABLE t (id int)"))
        .await
        .unwrap();
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut completed_at = None;
    for n in 0..100 {
        let flag = Arc::new(Flag(tokio::sync::Notify::new()));
        let waker = std::task::Waker::from(flag.clone());
        let mut fut = Box::pin(engine.transaction(async |c| {
            c.execute(&sql("INSERT INTO t VALUES (1)")).await?;
            c.execute(&sql("SELECT pg_sleep(0.001)")).await?;
            Ok::<_, aludel::Error>(())
        }));
        let mut finished = false;
        for i in 0..n {
            if i > 0 {
                flag.0.notified().await;
            }
            if let Poll::Ready(r) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
                r.unwrap();
                finished = true;
                break;
            }
        }
        drop(fut);
        let mut c = engine.connect().await.unwrap();
        assert!(!c.in_transaction());
        let state: String = c
            .query_one(&sql(
                "SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            ))
            .await
            .unwrap();
        assert_eq!(state, "active", "our own query is the only thing running");
        let rows: i64 = c.query_one(&sql("SELECT count(*) FROM t")).await.unwrap();
        assert_eq!(
            rows,
            i64::from(finished),
            "only a completed run may commit (n = {n})"
        );
        drop(c);
        if finished {
            completed_at = Some(n);
            break;
        }
    }
    assert!(
        completed_at.is_some(),
        "the transaction never completed within 100 polls"
    );
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            states(b).iter().all(|s| *s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "{seen:?}");
}

use std::time::Duration;

use aludel::testing::TestDb;
use aludel::{Model, create_all, schema::CreateOptions, select, sql};
use futures_util::{StreamExt, TryStreamExt};

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "narrow")]
struct Narrow {
    #[aludel(primary_key)]
    id: i64,
    v: i32,
}

async fn setup(n: i64) -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Narrow::TABLE], CreateOptions::default())
        .await
        .unwrap();
    c.execute(
        &sql("INSERT INTO narrow SELECT g, (g % 1000)::int4 FROM generate_series(1, $1::int8) g")
            .bind(n),
    )
    .await
    .unwrap();
    db
}

// covers: STR-01, STR-07
#[tokio::test]
async fn models_tuples_and_scalars_stream_in_order() {
    let db = setup(100_000).await;
    let mut s = db.engine().session();
    let mut models = s
        .stream(&select(Narrow::ALL).order_by(Narrow::id.asc()))
        .await
        .unwrap();
    let (mut n, mut sum) = (0i64, 0i64);
    while let Some(row) = models.try_next().await.unwrap() {
        n += 1;
        assert_eq!(row.id, n, "rows arrive in order");
        sum += i64::from(row.v);
    }
    assert_eq!(n, 100_000);
    let expected: i64 = (1..=100_000i64).map(|g| g % 1000).sum();
    assert_eq!(sum, expected);
    assert_eq!(s.identity_map_len(), 0, "streamed rows are not tracked");
    let tuples: Vec<(i64, i32)> = db
        .engine()
        .stream(
            &select((Narrow::id, Narrow::v))
                .filter(Narrow::id.le(3_i64))
                .order_by(Narrow::id.asc()),
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(tuples, [(1, 1), (2, 2), (3, 3)]);
    let scalars: Vec<i64> = db
        .engine()
        .stream(&select(Narrow::id).filter(Narrow::id.gt(99_998_i64)))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(scalars.len(), 2);
    assert_eq!(
        db.engine().pool_status().in_use,
        0,
        "a drained stream gives its connection back"
    );
}

// covers: STR-02, STR-03, RES-09
#[tokio::test]
async fn batched_mode_fetches_n_rows_per_round_trip() {
    let db = setup(2_500).await;
    let mark = db.recorder().len();
    let batches: Vec<Vec<Narrow>> = db
        .engine()
        .stream_batches(&select(Narrow::ALL).order_by(Narrow::id.asc()), 1_000)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        [1000, 1000, 500]
    );
    let fetches = db
        .recorder()
        .sql_since(mark)
        .into_iter()
        .filter(|q| q.starts_with("FETCH"))
        .count();
    assert_eq!(
        fetches, 4,
        "three batches and the empty fetch that ends the cursor"
    );
    let seen = db.recorder().sql_since(mark);
    assert!(
        seen.iter()
            .any(|q| q.starts_with("DECLARE aludel_stream NO SCROLL CURSOR FOR SELECT")),
        "{seen:?}"
    );
    let (states, ok) = db
        .wait_for_backends(Duration::from_secs(1), |b| {
            b.iter().all(|(_, s)| s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "the cursor's transaction ended: {states:?}");
}

// covers: STR-04, STR-05, ENG-09
#[tokio::test]
async fn dropping_a_stream_early_stops_the_query_and_its_connection_is_drained_for_reuse() {
    let db = setup(10).await;
    let engine = db.engine_builder().max_size(2).build().unwrap();
    let mut conn = engine.connect().await.unwrap();
    let pid = conn.backend_pid().await.unwrap();
    // A slow, long result: one row every 10 ms for 1,000 rows (10 s in all).
    let mut rows = conn
        .stream(&sql(
            "SELECT g, pg_sleep(0.01) FROM generate_series(1, 1000) g",
        ))
        .await
        .unwrap();
    for _ in 0..3 {
        rows.next().await.unwrap().unwrap();
    }
    drop(rows);
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(1), |b| {
            b.iter().all(|(p, s)| *p != pid || s != "active")
        })
        .await
        .unwrap();
    assert!(ok, "the query kept running on the server: {seen:?}");
    assert!(crate::pool_faults::pool_settles(&engine).await);
    assert_eq!(engine.metrics().cancelled_drained, 1);
    let mut next = engine.connect().await.unwrap();
    assert_eq!(
        next.backend_pid().await.unwrap(),
        pid,
        "a connection dropped mid-result is drained and reused"
    );
    assert!(!next.in_transaction());
    // Early break of a batched stream: the transaction is rolled back, the connection reused.
    let mut batches = engine
        .stream_batches(&select(Narrow::ALL), 2)
        .await
        .unwrap();
    batches.next().await.unwrap().unwrap();
    drop(batches);
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(1), |b| {
            b.iter().all(|(_, s)| s != "idle in transaction")
        })
        .await
        .unwrap();
    assert!(ok, "{seen:?}");
}

// covers: STR-01, DI-04
#[tokio::test]
async fn a_stream_moves_into_a_spawned_task() {
    let db = setup(50_000).await;
    let rows = db.engine().stream(&select(Narrow::v)).await.unwrap();
    let total = tokio::spawn(async move {
        rows.try_fold(0i64, |acc, v| async move { Ok(acc + i64::from(v)) })
            .await
    })
    .await
    .unwrap()
    .unwrap();
    let expected: i64 = (1..=50_000i64).map(|g| g % 1000).sum();
    assert_eq!(total, expected);
}

// covers: STR-01
#[tokio::test]
async fn an_error_mid_stream_arrives_after_the_good_rows() {
    let db = setup(1).await;
    let mut c = db.engine().connect().await.unwrap();
    c.batch_execute("CREATE VIEW numbers AS SELECT g FROM generate_series(1, 1000000) g")
        .await
        .unwrap();
    drop(c);
    #[derive(Model)]
    #[aludel(table = "numbers")]
    struct Numbers {
        #[aludel(primary_key)]
        g: i32,
    }
    let stream = db
        .engine()
        .stream(
            &select(aludel::query::Expr::<i32>::raw(
                "1 / (500000 - \"numbers\".\"g\")",
            ))
            .from::<Numbers>(),
        )
        .await
        .unwrap();
    let results: Vec<aludel::Result<i32>> = stream.collect().await;
    let good = results.iter().take_while(|r| r.is_ok()).count();
    assert_eq!(good, 499_999, "every row before the failing one arrives");
    let err = results[good].as_ref().unwrap_err();
    assert_eq!(
        err.code(),
        Some(&aludel::tokio_postgres::error::SqlState::DIVISION_BY_ZERO)
    );
    assert_eq!(results.len(), good + 1, "the stream ends after the error");
    assert_eq!(db.engine().pool_status().in_use, 0);
}

// covers: STR-01, STR-03
#[tokio::test]
async fn a_slow_consumer_holds_the_server_back_instead_of_buffering() {
    let db = setup(1).await;
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut conn = engine.connect().await.unwrap();
    let pid = conn.backend_pid().await.unwrap();
    // ~60 MB of result: far more than the socket buffers hold.
    let mut rows = conn
        .stream(&sql(
            "SELECT g, repeat('x', 60) FROM generate_series(1, 1000000) g",
        ))
        .await
        .unwrap();
    rows.next().await.unwrap().unwrap();
    let mut waiting = false;
    for _ in 0..100 {
        let ev: Option<String> = db
            .admin()
            .await
            .unwrap()
            .query_one(
                &sql("SELECT wait_event::text FROM pg_stat_activity WHERE pid = $1").bind(pid),
            )
            .await
            .unwrap();
        if ev.as_deref() == Some("ClientWrite") {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        waiting,
        "the server should be blocked writing to a client that is not reading"
    );
    assert!(rows.rows_read() < 10);
    drop(rows);
}

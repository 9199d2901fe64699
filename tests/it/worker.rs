//! The worker example's crash-and-resume path, run on the example's own code.

use std::time::Duration;

use aludel::sql;
use aludel::testing::TestDb;

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/worker.rs"]
mod example;

/// Rows, distinct orders and wrong totals in the results, read on a connection of its own.
async fn results(db: &TestDb) -> (i64, i64, i64) {
    let mut c = db.engine().connect().await.unwrap();
    c.query_one(&sql("SELECT count(*), count(DISTINCT order_id),
                count(*) FILTER (WHERE items <> 6 OR cents <> 600 * order_id)
         FROM aludel_worker_totals"))
        .await
        .unwrap()
}

// covers: STR-02, STR-05, SES-14
#[tokio::test]
async fn a_worker_killed_after_some_batches_resumes_and_processes_every_order_exactly_once() {
    let db = TestDb::new().await.unwrap();
    example::seed(db.engine(), 10_000).await.unwrap();
    let (tx, mut rx) = tokio::sync::watch::channel(example::Progress::default());
    let engine = db.engine().clone();
    let worker = tokio::spawn(async move {
        example::run(&engine, 500, move |p| {
            let _ = tx.send(p);
        })
        .await
    });
    // Killed once three batches are committed, wherever it is in the next one.
    let seen = *rx.wait_for(|p| p.batches >= 3).await.unwrap();
    assert_eq!(seen.total, Some(10_000), "the total is known up front");
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    // Once the killed worker's connections are drained (a COMMIT cut off in flight may
    // still land), what is committed is whole batches.
    let (states, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            b.iter().all(|(_, s)| s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "the killed worker left no transaction open: {states:?}");
    let (partial, distinct, wrong) = results(&db).await;
    assert!(
        (1_500..10_000).contains(&partial) && partial % 500 == 0,
        "whole batches committed, nothing of the one cut off: {partial}"
    );
    assert_eq!((distinct, wrong), (partial, 0));

    // Resumed: from the last committed order, by key.
    let done = example::run(db.engine(), 500, |_| {}).await.unwrap();
    let left = u64::try_from(10_000 - partial).unwrap();
    assert_eq!((done.done, done.total), (left, Some(left)));
    assert_eq!(
        results(&db).await,
        (10_000, 10_000, 0),
        "every order exactly once"
    );
}

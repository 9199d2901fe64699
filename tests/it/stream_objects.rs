//! Batches of tracked objects with their relationships (`session.stream_scalars`).

use std::time::Duration;

use aludel::load::{joined, selectin};
use aludel::testing::TestDb;
use aludel::{Many, Model, One, create_all, schema::CreateOptions, select, sql};
use futures_util::{StreamExt, TryStreamExt};

#[derive(Model, Debug, Clone)]
#[aludel(table = "sparents")]
struct Parent {
    #[aludel(primary_key)]
    id: i64,
    name: String,
    #[aludel(one_to_many(fk = Kid::parent_id, back_populates = parent, order_by = "id"))]
    kids: Many<Kid>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "skids")]
struct Kid {
    #[aludel(primary_key)]
    id: i64,
    #[aludel(references = "Parent::id")]
    parent_id: i64,
    #[aludel(many_to_one(fk = parent_id, back_populates = kids))]
    parent: One<Parent>,
    #[aludel(one_to_many(fk = Toy::kid_id, order_by = "id"))]
    toys: Many<Toy>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "stoys")]
struct Toy {
    #[aludel(primary_key)]
    id: i64,
    #[aludel(references = "Kid::id")]
    kid_id: i64,
}

/// `parents` parents with ids 1..=parents, three kids each (kid `3p + k`, k in 0..3), one toy
/// per kid (same id as its kid).
async fn setup(parents: i64) -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(
        &mut c,
        &[Parent::TABLE, Kid::TABLE, Toy::TABLE],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    c.execute(
        &sql("INSERT INTO sparents SELECT g, 'p' || g FROM generate_series(1, $1::int8) g")
            .bind(parents),
    )
    .await
    .unwrap();
    c.batch_execute(
        "INSERT INTO skids SELECT 3 * p.id + k, p.id FROM sparents p, generate_series(0, 2) k;
         INSERT INTO stoys SELECT id, id FROM skids;
         ANALYZE sparents, skids, stoys",
    )
    .await
    .unwrap();
    db
}

fn fetches(sqls: &[String]) -> usize {
    sqls.iter().filter(|q| q.starts_with("FETCH")).count()
}

// covers: STR-02, STR-07, STR-01
#[tokio::test]
async fn batches_of_parents_load_their_children_with_one_statement_per_batch() {
    let db = setup(100_000).await;
    let mut s = db.engine().session();
    let q = select(Parent::ALL)
        .order_by(Parent::id.asc())
        .options(selectin(Parent::kids));
    let mark = db.recorder().len();
    let mut batches = s.stream_scalars(&q, 1_000).await.unwrap();
    let (mut n, mut batches_seen, mut peak) = (0i64, 0, 0);
    // The previous batch is kept until the next one arrives: the map then holds two.
    let mut previous = Vec::new();
    while let Some(batch) = batches.try_next().await.unwrap() {
        batches_seen += 1;
        assert_eq!(batch.len(), 1_000);
        let live = batches.session().unwrap().identity_map_len();
        peak = peak.max(live);
        assert!(
            live <= 2 * (1_000 + 3_000),
            "the identity map holds at most two batches of parents and kids: {live}"
        );
        for p in &batch {
            n += 1;
            let parent = p.read().unwrap();
            assert_eq!(parent.id, n, "parents arrive in order");
            let kids = parent.kids.get().unwrap();
            let ids: Vec<i64> = kids.iter().map(|k| k.read().unwrap().id).collect();
            assert_eq!(ids, [3 * n, 3 * n + 1, 3 * n + 2], "parent {n}");
            for k in &kids {
                assert_eq!(k.read().unwrap().parent_id, n);
            }
        }
        previous = batch;
    }
    assert_eq!((n, batches_seen), (100_000, 100));
    assert_eq!(batches.rows_read(), 100_000);
    assert!(peak > 4_000, "objects are tracked while held: {peak}");
    drop(batches);
    drop(previous);
    assert_eq!(s.identity_map_len(), 0, "released once dropped");
    let seen = db.recorder().sql_since(mark);
    let queries: Vec<&String> = seen
        .iter()
        .filter(|q| !q.starts_with("FETCH") && !q.starts_with("BEGIN") && *q != "ROLLBACK")
        .collect();
    assert_eq!(
        queries.len(),
        1 + 100,
        "the DECLARE and one children statement per batch: {:?}",
        &queries[..3]
    );
    assert!(queries[0].starts_with("DECLARE aludel_objects_"));
    assert!(queries[1].contains("= ANY($1)"), "{}", queries[1]);
    assert_eq!(
        fetches(&seen),
        101,
        "one FETCH per batch, counted apart, and the empty one that ends the cursor"
    );
    assert_eq!(
        db.engine().pool_status().in_use,
        0,
        "the cursor's connection went back"
    );
}

// covers: STR-02, LOAD-02, LOAD-03
#[tokio::test]
async fn nested_selectin_and_joined_many_to_one_load_once_per_batch_and_joined_collections_are_refused()
 {
    let db = setup(250).await;
    let mut s = db.engine().session();
    // Two levels of selectin: one statement per level per batch.
    let q = select(Parent::ALL)
        .order_by(Parent::id.asc())
        .options(selectin(Parent::kids).then(selectin(Kid::toys)));
    let mark = db.recorder().len();
    let mut toys = 0;
    let mut batches = s.stream_scalars(&q, 100).await.unwrap();
    while let Some(batch) = batches.try_next().await.unwrap() {
        for p in &batch {
            for k in p.read().unwrap().kids.get().unwrap() {
                let kid = k.read().unwrap();
                let t = kid.toys.get().unwrap();
                assert_eq!(t.len(), 1);
                assert_eq!(t[0].read().unwrap().id, kid.id);
                toys += 1;
            }
        }
    }
    drop(batches);
    assert_eq!(toys, 750);
    let seen = db.recorder().sql_since(mark);
    assert_eq!(
        fetches(&seen),
        3,
        "100 + 100 + 50: the short batch is the last"
    );
    let selects = seen.iter().filter(|q| q.starts_with("SELECT")).count();
    assert_eq!(selects, 3 * 2, "kids and toys, once per batch");

    // joined many-to-one: the parent's columns come in the cursor's rows, no statement more.
    let q = select(Kid::ALL)
        .order_by(Kid::id.asc())
        .options(joined(Kid::parent));
    let mark = db.recorder().len();
    let mut kids = 0;
    let mut batches = s.stream_scalars(&q, 200).await.unwrap();
    while let Some(batch) = batches.try_next().await.unwrap() {
        for k in &batch {
            let kid = k.read().unwrap();
            let parent = kid.parent.get().unwrap().unwrap();
            assert_eq!(parent.read().unwrap().id, kid.parent_id);
            kids += 1;
        }
    }
    drop(batches);
    assert_eq!(kids, 750);
    let seen = db.recorder().sql_since(mark);
    assert!(seen[1].contains("JOIN"), "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|q| !q.starts_with("FETCH") && !q.starts_with("BEGIN") && *q != "ROLLBACK")
            .count(),
        1,
        "only the DECLARE: {seen:?}"
    );

    // A joined collection repeats each parent in its rows: refused before any SQL.
    let mark = db.recorder().len();
    let q = select(Parent::ALL).options(joined(Parent::kids));
    let err = s.stream_scalars(&q, 100).await.unwrap_err();
    assert!(err.is_invalid_request(), "{err}");
    assert!(err.to_string().contains("selectin"), "{err}");
    assert!(db.recorder().sql_since(mark).is_empty());
    let err = s.stream_scalars(&select(Parent::ALL), 0).await.unwrap_err();
    assert!(err.is_invalid_request(), "{err}");
}

// covers: STR-01, SES-01
#[tokio::test]
async fn in_the_sessions_transaction_the_stream_sees_flushed_rows_on_one_connection() {
    let db = setup(10).await;
    let engine = db.engine_builder().max_size(2).build().unwrap();
    let mut s = engine.session();
    let extra = aludel::Obj::new(Parent {
        id: 11,
        name: "new".into(),
        kids: Many::new(),
    });
    s.add(&extra).unwrap();
    s.flush().await.unwrap();
    let q = select(Parent::ALL)
        .order_by(Parent::id.asc())
        .options(selectin(Parent::kids));
    let mut ids = Vec::new();
    let mut batches = s.stream_scalars_in_transaction(&q, 4).await.unwrap();
    while let Some(batch) = batches.try_next().await.unwrap() {
        assert_eq!(
            engine.pool_status().in_use,
            1,
            "the session's own connection, none more"
        );
        for p in batch {
            ids.push(p.read().unwrap().id);
            if p.read().unwrap().id == 11 {
                assert!(aludel::Obj::ptr_eq(&p, &extra), "the session's own object");
                assert_eq!(p.read().unwrap().kids.len().unwrap(), 0);
            }
        }
    }
    drop(batches);
    assert_eq!(
        ids,
        (1..=11).collect::<Vec<i64>>(),
        "the flushed row is seen"
    );
    // Once the session's transaction has written, `stream_scalars` streams inside it too:
    // a committed-data snapshot would hand back rows from before the session's own writes.
    let own: Vec<i64> = s
        .stream_scalars(&q, 4)
        .await
        .unwrap()
        .map_ok(|b| b.iter().map(|p| p.read().unwrap().id).collect::<Vec<_>>())
        .try_concat()
        .await
        .unwrap();
    assert_eq!(own, (1..=11).collect::<Vec<i64>>());
    assert_eq!(engine.pool_status().in_use, 1, "no second connection");
    // The session goes on in the same transaction, and commits.
    let n: i64 = s
        .connection()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM sparents"))
        .await
        .unwrap();
    assert_eq!(n, 11);
    s.commit().await.unwrap();
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(1), |b| {
            b.iter().all(|(_, st)| st == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "{seen:?}");
}

fn idle(b: &[(i32, String)]) -> bool {
    b.iter().all(|(_, st)| st == "idle")
}

/// A view whose rows take 10 ms each: a FETCH of 1,000 of them runs for 10 s.
async fn slow_view(db: &TestDb) {
    db.engine()
        .connect()
        .await
        .unwrap()
        .batch_execute(
            "CREATE VIEW sslow AS SELECT id, name FROM sparents WHERE pg_sleep(0.01) IS NOT NULL",
        )
        .await
        .unwrap();
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "sslow")]
struct Slow {
    #[aludel(primary_key)]
    id: i64,
    name: String,
}

/// Polls `batches` until its FETCH runs on the server (the driver prepares it first).
async fn start_fetch<M: Model>(db: &TestDb, batches: &mut aludel::stream::ScalarBatches<'_, M>) {
    for _ in 0..200 {
        assert!(futures_util::poll!(batches.next()).is_pending());
        let backends = db.backends().await.unwrap();
        if backends.iter().any(|(_, st)| st == "active") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the FETCH never started");
}

// covers: STR-04, STR-05
#[tokio::test]
async fn dropping_an_object_stream_midway_leaves_nothing_running_and_the_session_usable() {
    let db = setup(3_000).await;
    slow_view(&db).await;
    let engine = db.engine_builder().max_size(2).build().unwrap();
    let q = select(Parent::ALL).options(selectin(Parent::kids));

    // Own connection, between batches: its transaction is rolled back.
    let mut s = engine.session();
    let mut batches = s.stream_scalars(&q, 100).await.unwrap();
    batches.next().await.unwrap().unwrap();
    drop(batches);
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(1), idle)
        .await
        .unwrap();
    assert!(ok, "no idle-in-transaction backend: {seen:?}");
    assert_eq!(s.all(&select(Parent::id)).await.unwrap().len(), 3_000);
    s.rollback().await.unwrap();

    // Own connection, mid-FETCH: the statement is cancelled, the connection drained.
    let slow = select(Slow::ALL);
    let mut batches = s.stream_scalars(&slow, 1_000).await.unwrap();
    start_fetch(&db, &mut batches).await;
    drop(batches);
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(1), idle)
        .await
        .unwrap();
    assert!(ok, "no active query left: {seen:?}");
    assert!(crate::pool_faults::pool_settles(&engine).await);
    assert_eq!(s.all(&select(Parent::id)).await.unwrap().len(), 3_000);
    s.commit().await.unwrap();

    // The session's transaction, between batches: the session goes on, and commits.
    let mut batches = s.stream_scalars_in_transaction(&q, 100).await.unwrap();
    batches.next().await.unwrap().unwrap();
    drop(batches);
    let mut again = s.stream_scalars_in_transaction(&q, 1_000).await.unwrap();
    let mut n = 0;
    while let Some(b) = again.try_next().await.unwrap() {
        n += b.len();
    }
    drop(again);
    assert_eq!(n, 3_000, "a second cursor beside the dropped one");
    s.commit().await.unwrap();
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(1), idle)
        .await
        .unwrap();
    assert!(ok, "{seen:?}");

    // The session's transaction, mid-FETCH: the connection is invalidated (statement
    // cancelled), the session begins anew.
    let mut batches = s.stream_scalars_in_transaction(&slow, 1_000).await.unwrap();
    start_fetch(&db, &mut batches).await;
    drop(batches);
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(1), |b| {
            b.iter()
                .all(|(_, st)| st != "active" && st != "idle in transaction")
        })
        .await
        .unwrap();
    assert!(ok, "no active query, no open transaction: {seen:?}");
    assert!(!s.in_transaction());
    assert_eq!(s.all(&select(Parent::id)).await.unwrap().len(), 3_000);
    s.commit().await.unwrap();
    assert!(crate::pool_faults::pool_settles(&engine).await);
}

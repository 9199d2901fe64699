//! Stale reads and lost writes at the seams: a stream over another snapshot, a slow COMMIT cut off, the key the server stored.

use aludel::testing::TestDb;
use aludel::{Model, create_all, schema::CreateOptions, select, sql};
use futures_util::TryStreamExt;

#[derive(Model, Debug, Clone)]
#[aludel(table = "rparents")]
struct RParent {
    #[aludel(primary_key)]
    id: i64,
    name: String,
}

async fn parents(n: i64) -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[RParent::TABLE], CreateOptions::default())
        .await
        .unwrap();
    c.execute(
        &sql("INSERT INTO rparents SELECT g, 'p' || g FROM generate_series(1, $1::int8) g").bind(n),
    )
    .await
    .unwrap();
    db
}

/// `stream_scalars` (own connection, committed snapshot) maps its rows into the session's
/// identity map. A row the session deleted and flushed in its open transaction (the stream's
/// own `open` flushes it) comes back as a new *persistent* object in that identity map, so the
/// session now holds a live object for a row its transaction has deleted: `get` returns it
/// from the map, with no SQL, although the same transaction sees no such row.
// covers: STR-01, SES-03
#[tokio::test]
async fn own_connection_stream_does_not_resurrect_a_row_the_session_deleted() {
    let db = parents(3).await;
    let mut s = db.engine().session();
    let p1 = s.get::<RParent>(1i64).await.unwrap().unwrap();
    s.delete(&p1).unwrap();
    let q = select(RParent::ALL).order_by(RParent::id.asc());
    let mut kept = Vec::new();
    {
        let mut batches = s.stream_scalars(&q, 10).await.unwrap();
        while let Some(b) = batches.try_next().await.unwrap() {
            kept.extend(b);
        }
    }
    let in_tx: i64 = s
        .connection()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM rparents WHERE id = 1"))
        .await
        .unwrap();
    assert_eq!(in_tx, 0, "the session's transaction deleted row 1");
    let got = s.get::<RParent>(1i64).await.unwrap();
    assert!(
        got.is_none(),
        "get(1) inside the transaction that deleted row 1 returned a live object \
         (state {:?}, ptr_eq with a streamed one: {})",
        got.as_ref().map(|o| o.state()),
        got.as_ref()
            .is_some_and(|g| kept.iter().any(|k| aludel::Obj::ptr_eq(k, g)))
    );
}

/// Same root cause, other side: an UPDATE the session flushed (the stream's `open` flushes
/// it) is invisible to the own-connection snapshot, and an object the caller no longer holds
/// is rebuilt from the committed row: the session hands out the pre-update value as a fresh
/// persistent object, and `get` keeps returning it (no SQL) inside the transaction that
/// changed the row.
// covers: STR-01, SES-03
#[tokio::test]
async fn own_connection_stream_does_not_hand_out_a_stale_copy_of_a_row_the_session_updated() {
    let db = parents(3).await;
    let mut s = db.engine().session();
    {
        let p2 = s.get::<RParent>(2i64).await.unwrap().unwrap();
        p2.write().unwrap().name = "changed".into();
    } // the session holds it until its flush
    let q = select(RParent::ALL).order_by(RParent::id.asc());
    let mut kept = Vec::new();
    {
        let mut batches = s.stream_scalars(&q, 10).await.unwrap();
        while let Some(b) = batches.try_next().await.unwrap() {
            kept.extend(b);
        }
    }
    let in_tx: String = s
        .connection()
        .await
        .unwrap()
        .query_one(&sql("SELECT name FROM rparents WHERE id = 2"))
        .await
        .unwrap();
    assert_eq!(in_tx, "changed", "the session's transaction updated row 2");
    let got = s.get::<RParent>(2i64).await.unwrap().unwrap();
    let name = got.read().unwrap().name.clone();
    assert_eq!(
        name, "changed",
        "the session's object for row 2 shows the value from before its own flushed UPDATE"
    );
}

/// A COMMIT whose future is dropped after the driver sent it is documented to commit unless
/// it fails ("it is sent, it commits unless it fails"), and the drain is documented to wait
/// for its answer. But the drain sends a cancel request once the COMMIT has run for 50 ms
/// (`CANCEL_AFTER`): a COMMIT that does real work at commit time (deferred constraint
/// triggers, deferred FK/unique checks, synchronous replication waits) is cancelled by aludel
/// itself and rolled back. Before b3ffb27 the connection was closed, which does not stop a
/// running COMMIT: it committed.
// covers: ENG-09
#[tokio::test]
async fn a_slow_commit_cut_off_after_it_was_sent_is_not_cancelled_by_the_drain() {
    use futures_util::FutureExt;
    let db = TestDb::new().await.unwrap();
    db.engine()
        .connect()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE t (id int);
             CREATE FUNCTION slow_check() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER t_slow AFTER INSERT ON t
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_check();",
        )
        .await
        .unwrap();
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut c = engine.connect().await.unwrap();
    c.begin().await.unwrap();
    c.execute(&sql("INSERT INTO t VALUES (1)")).await.unwrap();
    // Polled once (the driver has the COMMIT and sends it), then given up on.
    assert!(c.commit().now_or_never().is_none());
    drop(c);
    // The next checkout waits for the drain to hand the connection back.
    let next = engine.connect().await.unwrap();
    drop(next);
    let committed: i64 = db
        .engine()
        .query_one(&sql("SELECT count(*) FROM t"))
        .await
        .unwrap();
    let m = engine.metrics();
    assert_eq!(
        committed, 1,
        "the COMMIT the driver had sent was cancelled by the drain (cancel requests: {})",
        m.cancel_requests
    );
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "rtags")]
struct RTag {
    #[aludel(primary_key)]
    name: String,
    #[aludel(server_default = "'x'")]
    note: aludel::Generated<String>,
}

/// The flush's INSERT used to read the whole row back (RETURNING every column); with the
/// "RETURNING only server-filled columns" change (perf, 96bf713) an object keeps the primary
/// key it *sent*. When the server stores another key (a BEFORE INSERT trigger normalising
/// it; the same with `char(n)` padding or `varchar(n)` trimming of trailing blanks), the
/// object is filed in the identity map under a key no row has, and loading the row makes a
/// second object for it: two live objects for one row in one session.
// covers: SES-03, UOW-01
#[tokio::test]
async fn an_inserted_object_is_filed_under_the_key_the_server_stored() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[RTag::TABLE], CreateOptions::default())
        .await
        .unwrap();
    c.batch_execute(
        "CREATE FUNCTION lower_name() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.name := lower(NEW.name); RETURN NEW; END $$;
         CREATE TRIGGER rtags_lower BEFORE INSERT ON rtags
           FOR EACH ROW EXECUTE FUNCTION lower_name();",
    )
    .await
    .unwrap();
    drop(c);
    let mut s = db.engine().session();
    let tag = aludel::Obj::new(RTag {
        name: "Ann".into(),
        note: aludel::Generated::unset(),
    });
    s.add(&tag).unwrap();
    s.flush().await.unwrap();
    let loaded = s.get::<RTag>("ann".to_string()).await.unwrap().unwrap();
    assert!(
        aludel::Obj::ptr_eq(&tag, &loaded),
        "two objects for row 'ann': the inserted one says {:?}",
        tag.read().unwrap().name
    );
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "rcounters")]
struct RCounter {
    #[aludel(primary_key)]
    id: i64,
    n: i64,
}

/// The stale copy of the previous test turns into a lost write: the session increments a
/// counter (flushed by the stream's `open`), the own-connection stream hands back a fresh
/// object built from the committed row (n = 0), the caller increments that one, and the
/// commit writes n = 1: one of the session's own two increments is gone, and the flush said
/// nothing.
// covers: STR-01, UOW-02
#[tokio::test]
async fn incrementing_a_streamed_object_keeps_the_sessions_earlier_flushed_increment() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[RCounter::TABLE], CreateOptions::default())
        .await
        .unwrap();
    c.batch_execute("INSERT INTO rcounters VALUES (1, 0)")
        .await
        .unwrap();
    drop(c);
    let mut s = db.engine().session();
    {
        let c1 = s.get::<RCounter>(1i64).await.unwrap().unwrap();
        c1.write().unwrap().n += 1;
    }
    let q = select(RCounter::ALL);
    let mut kept = Vec::new();
    {
        let mut batches = s.stream_scalars(&q, 10).await.unwrap();
        while let Some(b) = batches.try_next().await.unwrap() {
            kept.extend(b);
        }
    }
    for obj in &kept {
        obj.write().unwrap().n += 1;
    }
    s.commit().await.unwrap();
    let n: i64 = db
        .engine()
        .query_one(&sql("SELECT n FROM rcounters WHERE id = 1"))
        .await
        .unwrap();
    assert_eq!(n, 2, "two increments in one session, one written");
}

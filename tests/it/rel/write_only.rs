//! Write-only collections (WO-01…WO-10): never loaded, changed with queued adds/removes,
//! read through statements scoped to the parent.

use aludel::testing::TestDb;
use aludel::{Obj, WriteOnly, sql};

use super::*;

async fn count(db: &TestDb, q: &'static str) -> i64 {
    db.admin().await.unwrap().query_one(&sql(q)).await.unwrap()
}

fn event(amount: i64) -> Event {
    Event {
        id: Generated::unset(),
        author_id: None,
        amount,
    }
}

async fn author_with_events(db: &TestDb, n: i64) -> (aludel::AsyncSession, Obj<Author>) {
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let a = author("busy");
    s.add(&a).unwrap();
    s.flush().await.unwrap();
    // WO-07: one multi-row INSERT per chunk with the parent's key filled in
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let rows: Vec<Event> = chunk.iter().map(|i| event(i % 100 - 50)).collect();
        let q = Author::events.insert(&a, rows).unwrap();
        s.execute(&q).await.unwrap();
    }
    s.commit().await.unwrap();
    (s, a)
}

// covers: WO-01, WO-02, WO-04, LOAD-08
#[tokio::test]
async fn adding_to_a_parent_with_100000_children_is_one_insert_and_loads_nothing() {
    let db = setup().await;
    let (mut s, a) = author_with_events(&db, 100_000).await;
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 100_000);
    let mark = db.recorder().len();
    a.write().unwrap().events.add(&Obj::new(event(7)));
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(q[0].starts_with("INSERT INTO \"events\""));
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 100_001);

    // WO-02: 10,000 adds → batched INSERTs, no SELECT at all
    let mark = db.recorder().len();
    let more: Vec<Obj<Event>> = (0..10_000).map(|i| Obj::new(event(i))).collect();
    a.write().unwrap().events.add_all(&more);
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    assert!(
        q.iter().all(|x| x.starts_with("INSERT INTO \"events\"")),
        "{q:#?}"
    );
    assert_eq!(q.len(), 10, "1,000 rows per INSERT");
}

// covers: WO-06, WO-10
#[tokio::test]
async fn select_is_scoped_to_the_parent_and_composes() {
    let db = setup().await;
    let (mut s, a) = author_with_events(&db, 300).await;
    let other = author("other");
    s.add(&other).unwrap();
    s.flush().await.unwrap();
    other.write().unwrap().events.add(&Obj::new(event(-1)));
    s.commit().await.unwrap();
    let q = Author::events
        .select(&a)
        .unwrap()
        .filter(Event::amount.lt(0))
        .limit(10);
    let sql_text = q.to_sql();
    assert!(
        sql_text.contains("\"events\".\"author_id\" = $1"),
        "{sql_text}"
    );
    assert!(
        sql_text.contains("ORDER BY \"events\".\"id\" ASC"),
        "{sql_text}"
    );
    let rows = s.scalars(&q).await.unwrap();
    assert_eq!(rows.len(), 10);
    let aid = a.read().unwrap().id.cloned().unwrap();
    assert!(rows.iter().all(|e| {
        let e = e.read().unwrap();
        e.amount < 0 && e.author_id == Some(aid)
    }));
    // many parents at once, one statement (what SQLAlchemy leaves to the user)
    let mark = db.recorder().len();
    let all = s
        .scalars(
            &Author::events
                .select_many(&[a.clone(), other.clone()])
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stmts(&db, mark).len(), 1);
    assert_eq!(all.len(), 301);
    // streamed in constant memory like any select
    use futures_util::TryStreamExt;
    let streamed: Vec<Event> = s
        .stream(&Author::events.select(&a).unwrap())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), 300);
}

// covers: WO-05
#[tokio::test]
async fn remove_deletes_the_orphan_with_one_statement() {
    let db = setup().await;
    let (mut s, a) = author_with_events(&db, 5).await;
    let first = s
        .scalars(&Author::events.select(&a).unwrap().limit(1))
        .await
        .unwrap();
    let mark = db.recorder().len();
    a.write().unwrap().events.remove(&first[0]);
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(q[0].starts_with("DELETE FROM \"events\""));
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 4);
}

// covers: WO-03
#[tokio::test]
async fn whole_collection_assignment_is_for_new_parents_only() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let (e1, e2, e3) = (Obj::new(event(1)), Obj::new(event(2)), Obj::new(event(3)));
    let a = Obj::new(Author {
        events: WriteOnly::from_objects([&e1, &e2, &e3]),
        ..author("new").get().unwrap()
    });
    s.add(&a).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE author_id IS NOT NULL"
        )
        .await,
        3
    );
    // replacing on a persistent parent: typed error, no SQL
    a.write().unwrap().events = WriteOnly::from_objects([&Obj::new(event(9))]);
    let mark = db.recorder().len();
    let e = s.flush().await.unwrap_err();
    assert!(e.is_invalid_request(), "{e}");
    assert!(
        e.to_string()
            .contains("does not support implicit iteration"),
        "{e}"
    );
    assert!(stmts(&db, mark).is_empty());
}

// covers: WO-07, WO-08
#[tokio::test]
async fn bulk_statements_touch_only_this_parents_rows() {
    let db = setup().await;
    let (mut s, a) = author_with_events(&db, 10).await;
    let other = author("other");
    s.add(&other).unwrap();
    s.flush().await.unwrap();
    let q = Author::events
        .insert(&other, vec![event(1), event(2), event(3), event(4)])
        .unwrap();
    let mark = db.recorder().len();
    assert_eq!(s.execute(&q).await.unwrap(), 4);
    assert_eq!(stmts(&db, mark).len(), 1, "one multi-VALUES INSERT");
    let n = s
        .execute(&Author::events.update(&a).unwrap().set(Event::amount, 0_i64))
        .await
        .unwrap();
    assert_eq!(n, 10);
    s.commit().await.unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) FROM events WHERE amount = 0").await,
        10
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM events WHERE amount <> 0").await,
        4
    );
    let n = s
        .execute(&Author::events.delete(&other).unwrap())
        .await
        .unwrap();
    assert_eq!(n, 4);
    s.commit().await.unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 10);
    // many-to-many bulk insert is refused with a typed error
    let e = Post::tags
        .insert(
            &post("x"),
            vec![Tag {
                id: Generated::unset(),
                name: "t".into(),
            }],
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("only supported for one-to-many"),
        "{e}"
    );
}

// covers: WO-09, REL-09
#[tokio::test]
async fn deleting_a_parent_with_100000_children_is_one_delete() {
    let db = setup().await;
    let (mut s, a) = author_with_events(&db, 100_000).await;
    s.delete(&a).unwrap();
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    // the author's other relationships have their own statements (null the posts' key,
    // drop follow links …); the 100,000 events are never touched: one DELETE of the author,
    // and ON DELETE CASCADE does the rest
    assert!(q.iter().all(|x| !x.contains("\"events\"")), "{q:#?}");
    assert_eq!(
        q.iter()
            .filter(|x| x.starts_with("DELETE FROM \"authors\""))
            .count(),
        1
    );
    assert!(q.iter().all(|x| !x.starts_with("SELECT \"events\"")));
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 0);
}

//! `merge` follows relationships (the merge cascade), and relationship history survives a
//! failed flush.

use aludel::testing::TestDb;
use aludel::{
    Many, Model, Obj, One, create_all, load::selectin, schema::CreateOptions, session::ObjectState,
    sql,
};

#[derive(Model, Debug, Clone)]
#[aludel(table = "parents")]
struct Parent {
    #[aludel(primary_key)]
    id: i64,
    #[aludel(unique)]
    name: String,
    #[aludel(one_to_many(fk = Kid::parent_id, back_populates = parent, order_by = "id"))]
    kids: Many<Kid>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "kids")]
struct Kid {
    #[aludel(primary_key)]
    id: i64,
    #[aludel(references = "Parent::id")]
    parent_id: Option<i64>,
    name: String,
    #[aludel(many_to_one(fk = parent_id, back_populates = kids))]
    parent: One<Parent>,
}

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(
        &mut c,
        &[Parent::TABLE, Kid::TABLE],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    c.batch_execute(
        "INSERT INTO parents VALUES (1, 'p'); \
         INSERT INTO kids VALUES (10, 1, 'k10'), (11, 1, 'k11')",
    )
    .await
    .unwrap();
    db
}

/// Kids of parent 1 as (id, name), seen from a second connection.
async fn kids_in_db(db: &TestDb) -> Vec<(i64, String)> {
    db.admin()
        .await
        .unwrap()
        .query_as(&sql(
            "SELECT id, name FROM kids WHERE parent_id = 1 ORDER BY id",
        ))
        .await
        .unwrap()
}

/// Parent 1 loaded with its kids, in a session that is then closed.
async fn detached_parent(db: &TestDb) -> Obj<Parent> {
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let p = s.get_one::<Parent>(1i64).await.unwrap();
    s.load(std::slice::from_ref(&p), selectin(Parent::kids))
        .await
        .unwrap();
    s.commit().await.unwrap();
    s.close().await.unwrap();
    p
}

// covers: SES-15
#[tokio::test]
async fn merging_an_unset_collection_leaves_the_loaded_one_alone() {
    let db = setup().await;
    let mut s = db.engine().session();
    let p = s.get_one::<Parent>(1i64).await.unwrap();
    s.load(std::slice::from_ref(&p), selectin(Parent::kids))
        .await
        .unwrap();
    let merged = s
        .merge(Parent {
            id: 1,
            name: "renamed".into(),
            kids: Many::new(),
        })
        .await
        .unwrap();
    assert!(Obj::ptr_eq(&merged, &p));
    assert_eq!(p.read().unwrap().kids.len().unwrap(), 2, "collection kept");
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let writes: Vec<String> = db
        .recorder()
        .queries_since(mark)
        .into_iter()
        .map(|r| r.sql)
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        writes[0].starts_with("UPDATE \"parents\" SET \"name\""),
        "{writes:?}"
    );
    assert_eq!(kids_in_db(&db).await.len(), 2);
}

// covers: SES-15
#[tokio::test]
async fn merging_a_detached_parent_merges_its_loaded_children() {
    let db = setup().await;
    let detached = detached_parent(&db).await;
    let kids = detached.read().unwrap().kids.get().unwrap();
    kids[0].write().unwrap().name = "k10 changed".into();
    let value = detached.get().unwrap();
    let mut s = db.engine().session();
    let p = s.merge(value).await.unwrap();
    assert!(!Obj::ptr_eq(&p, &detached));
    let merged_kids = p.read().unwrap().kids.get().unwrap();
    assert_eq!(merged_kids.len(), 2);
    for k in &merged_kids {
        assert!(s.contains(k), "children are the session's own");
        assert_eq!(k.state(), ObjectState::Persistent);
        assert!(!kids.iter().any(|d| Obj::ptr_eq(d, k)));
    }
    // The source stays detached and untouched.
    assert_eq!(kids[0].state(), ObjectState::Detached);
    s.commit().await.unwrap();
    assert_eq!(
        kids_in_db(&db).await,
        [(10, "k10 changed".into()), (11, "k11".into())]
    );
}

// covers: SES-15
#[tokio::test]
async fn merging_a_loaded_collection_makes_the_sessions_collection_match() {
    let db = setup().await;
    let detached = detached_parent(&db).await;
    let kids = detached.read().unwrap().kids.get().unwrap();
    Parent::kids.remove(&detached, &kids[1]).unwrap();
    let value = detached.get().unwrap();
    let mut s = db.engine().session();
    let p = s.merge(value).await.unwrap();
    assert_eq!(p.read().unwrap().kids.len().unwrap(), 1);
    s.commit().await.unwrap();
    // The removed child's key is cleared, as a collection removal does.
    assert_eq!(kids_in_db(&db).await, [(10, "k10".into())]);
}

// covers: SES-12, SES-10
#[tokio::test]
async fn children_of_a_parent_whose_flush_failed_are_inserted_by_the_retry() {
    let db = setup().await;
    let kid = |id: i64| {
        Obj::new(Kid {
            id,
            parent_id: None,
            name: format!("k{id}"),
            parent: One::new(),
        })
    };
    let kids = [kid(20), kid(21)];
    let parent = Obj::new(Parent {
        id: 2,
        name: "p".into(), // taken: the flush fails
        kids: Many::from_objects(&kids),
    });
    let mut s = db.engine().session();
    s.add(&parent).unwrap();
    assert!(s.commit().await.unwrap_err().is_unique_violation());
    s.rollback().await.unwrap();
    assert_eq!(parent.state(), ObjectState::Transient);
    assert!(kids.iter().all(|k| k.state() == ObjectState::Transient));
    parent.write().unwrap().name = "q".into();
    s.add(&parent).unwrap();
    s.commit().await.unwrap();
    let n: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM kids WHERE parent_id = 2"))
        .await
        .unwrap();
    assert_eq!(n, 2, "the children were cascaded again");
}

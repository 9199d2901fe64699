//! Changes made while detached, objects moved between sessions, and the other paths where a
//! write could be lost or a state could lie.

use aludel::testing::TestDb;
use aludel::{Model, Obj, create_all, schema::CreateOptions, session::ObjectState, sql};

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "accounts")]
struct Account {
    #[aludel(primary_key)]
    id: i64,
    name: String,
    balance: i64,
}

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Account::TABLE], CreateOptions::default())
        .await
        .unwrap();
    c.batch_execute("INSERT INTO accounts VALUES (1, 'ann', 10), (2, 'bob', 20)")
        .await
        .unwrap();
    db
}

/// (name, balance) of account `id`, seen from a second connection.
async fn row(db: &TestDb, id: i64) -> Option<(String, i64)> {
    db.admin()
        .await
        .unwrap()
        .query_as::<(String, i64)>(
            &sql("SELECT name, balance FROM accounts WHERE id = $1").bind(id),
        )
        .await
        .unwrap()
        .into_iter()
        .next()
}

/// Statements other than transaction control since `mark`.
fn writes(db: &TestDb, mark: usize) -> Vec<String> {
    db.recorder()
        .queries_since(mark)
        .into_iter()
        .map(|r| r.sql)
        .filter(|s| !s.starts_with("SELECT"))
        .collect()
}

// covers: SES-04, SES-13
#[tokio::test]
async fn a_change_made_while_detached_is_written_by_the_next_session() {
    let db = setup().await;
    let f = db.engine().session_builder().expire_on_commit(false);
    let mut s1 = f.session();
    let a = s1.get_one::<Account>(1i64).await.unwrap();
    s1.commit().await.unwrap();
    s1.close().await.unwrap();
    assert_eq!(a.state(), ObjectState::Detached);
    a.write().unwrap().balance = 99;
    let mut s2 = f.session();
    s2.add(&a).unwrap();
    assert_eq!(a.state(), ObjectState::Persistent);
    let mark = db.recorder().len();
    s2.commit().await.unwrap();
    let w = writes(&db, mark);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("UPDATE \"accounts\" SET \"balance\" ="),
        "{w:?}"
    );
    assert!(
        !w[0].contains("\"name\" ="),
        "only the changed column: {w:?}"
    );
    assert_eq!(row(&db, 1).await, Some(("ann".into(), 99)));
}

// covers: SES-04, SES-16
#[tokio::test]
async fn a_change_made_before_expunge_is_written_when_the_object_comes_back() {
    let db = setup().await;
    let mut s = db.engine().session();
    let a = s.get_one::<Account>(1i64).await.unwrap();
    a.write().unwrap().name = "Ann".into();
    s.expunge(&a);
    // Not flushed while out of the session (SES-16) …
    s.flush().await.unwrap();
    s.add(&a).unwrap();
    // … and written once it is back.
    s.commit().await.unwrap();
    assert_eq!(row(&db, 1).await, Some(("Ann".into(), 10)));
}

// covers: SES-04
#[tokio::test]
async fn an_object_whose_session_was_dropped_is_detached_and_its_change_is_kept() {
    let db = setup().await;
    let a = {
        let mut s = db.engine().session();
        let a = s.get_one::<Account>(2i64).await.unwrap();
        s.rollback().await.unwrap();
        s.refresh(&a).await.unwrap();
        a
    };
    // The session is gone: the object belongs to none, whatever it recorded before.
    assert_eq!(a.state(), ObjectState::Detached);
    a.write().unwrap().balance = 21;
    let mut s2 = db.engine().session();
    s2.add(&a).unwrap();
    s2.commit().await.unwrap();
    assert_eq!(row(&db, 2).await, Some(("bob".into(), 21)));
}

// covers: SES-04
#[tokio::test]
async fn adding_an_object_of_another_live_session_is_refused() {
    let db = setup().await;
    let mut s1 = db.engine().session();
    let mut s2 = db.engine().session();
    let a = s1.get_one::<Account>(1i64).await.unwrap();
    let err = s2.add(&a).unwrap_err();
    assert!(err.to_string().contains("another session"), "{err}");
    let p = Obj::new(Account {
        id: 3,
        name: "cy".into(),
        balance: 0,
    });
    s1.add(&p).unwrap();
    assert!(s2.add(&p).is_err());
    // Expunged there, it can move.
    s1.expunge(&a);
    s2.add(&a).unwrap();
    a.write().unwrap().balance = 11;
    s2.commit().await.unwrap();
    assert_eq!(row(&db, 1).await, Some(("ann".into(), 11)));
}

// covers: SES-04, SES-05
#[tokio::test]
async fn adding_back_an_object_marked_for_deletion_cancels_the_delete() {
    let db = setup().await;
    let mut s = db.engine().session();
    let a = s.get_one::<Account>(1i64).await.unwrap();
    s.delete(&a).unwrap();
    s.add(&a).unwrap();
    assert_eq!(a.state(), ObjectState::Persistent);
    assert!(s.deleted_objects::<Account>().is_empty());
    s.commit().await.unwrap();
    assert!(row(&db, 1).await.is_some());
    // Once a flush deleted it, adding it back is an error, not a silent no-op.
    let b = s.get_one::<Account>(2i64).await.unwrap();
    s.delete(&b).unwrap();
    s.flush().await.unwrap();
    assert!(s.add(&b).is_err());
    s.commit().await.unwrap();
    assert!(row(&db, 2).await.is_none());
}

// covers: SES-20, EXP-06
#[tokio::test]
async fn a_savepoint_rollback_expires_objects_a_criteria_update_reloaded() {
    let db = setup().await;
    let mut s = db.engine().session();
    let a = s.get_one::<Account>(1i64).await.unwrap();
    let sp = s.begin_nested().await.unwrap();
    s.update_where(
        aludel::update::<Account>()
            .set(Account::balance, 500i64)
            .filter(Account::id.eq(1i64)),
    )
    .await
    .unwrap();
    assert_eq!(a.read().unwrap().balance, 500);
    s.rollback_nested(sp).await.unwrap();
    // The database has 10 again: the object must not claim 500.
    assert!(a.is_expired());
    s.refresh(&a).await.unwrap();
    assert_eq!(a.read().unwrap().balance, 10);
    s.commit().await.unwrap();
}

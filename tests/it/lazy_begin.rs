//! Sessions at READ COMMITTED run plain builder SELECTs before their `BEGIN` (lazy begin):
//! what the statement log shows, and every path that must still begin at once.

use aludel::Generated;
use aludel::testing::TestDb;
use aludel::{
    Engine, Model, Obj, create_all, engine::IsolationLevel, engine::TxOptions, func::count_star,
    schema::CreateOptions, select, sql,
};

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "items")]
struct Item {
    #[aludel(primary_key, identity)]
    id: Generated<i32>,
    name: String,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "never_created")]
struct Missing {
    #[aludel(primary_key)]
    id: i32,
}

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Item::TABLE], CreateOptions::default())
        .await
        .unwrap();
    c.execute(&sql("INSERT INTO items (name) VALUES ('a'), ('b'), ('c')"))
        .await
        .unwrap();
    db
}

/// The statement log since `mark`, each statement's first word (or two for BEGIN options).
fn log(db: &TestDb, mark: usize) -> Vec<String> {
    db.recorder()
        .sql_since(mark)
        .into_iter()
        .map(|s| {
            if s.starts_with("BEGIN") {
                s
            } else {
                s.split_whitespace().next().unwrap_or("").to_owned()
            }
        })
        .collect()
}

#[tokio::test]
async fn a_read_only_session_sends_only_its_selects() {
    let db = setup().await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let all: Vec<Obj<Item>> = s.scalars(&select(Item::ALL)).await.unwrap();
    assert_eq!(all.len(), 3);
    let plain: Vec<Item> = s
        .all(&select(Item::ALL).filter(Item::name.eq("b")))
        .await
        .unwrap();
    assert_eq!(plain.len(), 1);
    // From the identity map: no SQL.
    let first_id = all[0].read().unwrap().id.cloned().unwrap();
    let a = s.get::<Item>(first_id).await.unwrap();
    assert!(a.is_some());
    let by_pk = s.get::<Item>(1_000).await.unwrap();
    assert!(by_pk.is_none());
    assert!(
        s.in_transaction(),
        "the session's transaction is open (not yet begun)"
    );
    let in_tx = db
        .backends()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, st)| st == "idle in transaction")
        .count();
    assert_eq!(
        in_tx,
        0,
        "no server transaction is held by plain reads: {:?}",
        db.recorder().sql_since(mark)
    );
    s.commit().await.unwrap();
    assert_eq!(log(&db, mark), ["SELECT", "SELECT", "SELECT"]);
    // Dropping a session that only read sends nothing either.
    let mark = db.recorder().len();
    {
        let mut s = db.engine().session();
        let _: Vec<Item> = s.all(&select(Item::ALL)).await.unwrap();
    }
    assert_eq!(log(&db, mark), ["SELECT"]);
    assert_eq!(db.engine().pool_status().in_use, 0);
}

#[tokio::test]
async fn the_first_write_begins_and_commits() {
    let db = setup().await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let a: Obj<Item> = s.get_one(1).await.unwrap();
    a.write().unwrap().name = "A".into();
    s.add(&Obj::new(Item {
        id: Generated::unset(),
        name: "d".into(),
    }))
    .unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        log(&db, mark),
        ["SELECT", "BEGIN", "INSERT", "UPDATE", "COMMIT"]
    );
    let names: Vec<String> = db
        .engine()
        .query_as(&sql("SELECT name FROM items ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(names, ["A", "b", "c", "d"]);
    // Rolling back after a write sends ROLLBACK; after reads only, nothing.
    let mark = db.recorder().len();
    let mut s = db.engine().session();
    let _: Vec<Item> = s.all(&select(Item::ALL)).await.unwrap();
    s.rollback().await.unwrap();
    assert_eq!(log(&db, mark), ["SELECT"]);
    let mark = db.recorder().len();
    let b: Obj<Item> = s.get_one(2).await.unwrap();
    b.write().unwrap().name = "B".into();
    s.flush().await.unwrap();
    s.rollback().await.unwrap();
    assert_eq!(log(&db, mark), ["SELECT", "BEGIN", "UPDATE", "ROLLBACK"]);
}

#[tokio::test]
async fn other_isolation_levels_locks_raw_sql_and_functions_begin_first() {
    let db = setup().await;
    for level in [IsolationLevel::RepeatableRead, IsolationLevel::Serializable] {
        let mut s = db
            .engine()
            .session_builder()
            .tx_options(TxOptions::new().isolation(level))
            .session();
        let mark = db.recorder().len();
        let _: Vec<Item> = s.all(&select(Item::ALL)).await.unwrap();
        s.commit().await.unwrap();
        let seen = log(&db, mark);
        assert!(seen[0].starts_with("BEGIN ISOLATION LEVEL"), "{seen:?}");
        assert_eq!(&seen[1..], ["SELECT", "COMMIT"]);
    }
    // Explicit READ COMMITTED defers like the default.
    let mut s = db
        .engine()
        .session_builder()
        .tx_options(TxOptions::new().isolation(IsolationLevel::ReadCommitted))
        .session();
    let mark = db.recorder().len();
    let _: Vec<Item> = s.all(&select(Item::ALL)).await.unwrap();
    s.commit().await.unwrap();
    assert_eq!(log(&db, mark), ["SELECT"]);

    // FOR UPDATE through get_for_update and through the builder.
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let _ = s.get_for_update::<Item>(1).await.unwrap();
    s.commit().await.unwrap();
    assert_eq!(log(&db, mark), ["BEGIN", "SELECT", "COMMIT"]);
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let _: Vec<Obj<Item>> = s.scalars(&select(Item::ALL).for_update()).await.unwrap();
    s.commit().await.unwrap();
    assert_eq!(log(&db, mark), ["BEGIN", "SELECT", "COMMIT"]);
    // Raw SQL (may call volatile functions).
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let _ = s.query(&sql("SELECT id FROM items")).await.unwrap();
    s.commit().await.unwrap();
    assert_eq!(log(&db, mark), ["BEGIN", "SELECT", "COMMIT"]);
    // A builder SELECT that calls a function.
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let _: Vec<i64> = s.all(&select(count_star()).from::<Item>()).await.unwrap();
    s.commit().await.unwrap();
    assert_eq!(log(&db, mark), ["BEGIN", "SELECT", "COMMIT"]);
    // Once begun, later plain reads run inside the transaction.
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let _ = s.query(&sql("SELECT 1")).await.unwrap();
    let _: Vec<Item> = s.all(&select(Item::ALL)).await.unwrap();
    s.commit().await.unwrap();
    assert_eq!(log(&db, mark), ["BEGIN", "SELECT", "SELECT", "COMMIT"]);
}

#[tokio::test]
async fn a_server_default_other_than_read_committed_or_lazy_begin_off_begins_first() {
    let db = setup().await;
    let serializable: Engine = db
        .engine_builder()
        .options(&format!(
            "-c search_path={} -c default_transaction_isolation=serializable",
            db.schema()
        ))
        .build()
        .unwrap();
    let off: Engine = db.engine_builder().lazy_begin(false).build().unwrap();
    for engine in [serializable, off] {
        let mut s = engine.session();
        let mark = db.recorder().len();
        let _: Vec<Item> = s.all(&select(Item::ALL)).await.unwrap();
        s.commit().await.unwrap();
        assert_eq!(log(&db, mark), ["BEGIN", "SELECT", "COMMIT"]);
    }
}

#[tokio::test]
async fn a_failed_plain_read_still_needs_a_rollback() {
    let db = setup().await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let err = s.all(&select(Missing::ALL)).await.unwrap_err();
    assert!(err.as_db_error().is_some(), "{err}");
    // As inside a transaction: the session refuses work until rollback.
    let again = s.all(&select(Item::ALL)).await.unwrap_err();
    assert!(again.is_transaction_aborted(), "{again}");
    assert!(s.commit().await.is_err());
    s.rollback().await.unwrap();
    let _: Vec<Item> = s.all(&select(Item::ALL)).await.unwrap();
    s.commit().await.unwrap();
    assert_eq!(log(&db, mark), ["SELECT", "SELECT"]);
}

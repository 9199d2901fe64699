//! `#[aludel::test]`: a schema per test with its models created, arguments by type, cleanup
//! even when the test panics.

use std::cell::RefCell;
use std::sync::Mutex;

use aludel::testing::{Recorder, TestDb, database_url};
use aludel::{AsyncSession, Engine, Generated, Model, Obj, func::count_star, select, sql};

#[derive(Model, Debug, Clone)]
#[aludel(table = "authors")]
struct Author {
    #[aludel(primary_key, identity)]
    id: Generated<i64>,
    name: String,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "notes")]
struct Note {
    #[aludel(primary_key, identity)]
    id: Generated<i64>,
    #[aludel(references = "Author::id")]
    author_id: Option<i64>,
    body: String,
}

fn note(body: &str) -> Obj<Note> {
    Obj::new(Note {
        id: Generated::unset(),
        author_id: None,
        body: body.into(),
    })
}

async fn tables_of(db: &TestDb) -> Vec<String> {
    let mut admin = db.admin().await.unwrap();
    admin
        .query_as(
            &sql("SELECT table_name::text FROM information_schema.tables \
                  WHERE table_schema = $1 ORDER BY table_name")
            .bind(db.schema().to_owned()),
        )
        .await
        .unwrap()
}

async fn schema_exists(schema: &str) -> bool {
    let n: i64 = Engine::builder(&database_url())
        .no_pool()
        .build()
        .unwrap()
        .query_one(
            &sql("SELECT count(*) FROM pg_namespace WHERE nspname = $1").bind(schema.to_owned()),
        )
        .await
        .unwrap();
    n == 1
}

// covers: DDL-01
#[aludel::test(models(Note, Author))]
async fn the_listed_models_exist_in_the_tests_own_schema(db: &TestDb, mut s: AsyncSession) {
    // Note references Author: created in foreign-key order whatever the list's order.
    assert_eq!(tables_of(db).await, ["authors", "notes"]);
    s.add(&note("hi")).unwrap();
    s.commit().await.unwrap();
    let mut admin = db.admin().await.unwrap();
    let bodies: Vec<String> = admin
        .query_as(&sql("SELECT body FROM notes"))
        .await
        .unwrap();
    assert_eq!(
        bodies,
        ["hi"],
        "committed rows are seen from a second connection"
    );
}

#[aludel::test]
async fn without_models_the_schema_is_empty(db: &TestDb, engine: Engine) {
    assert!(tables_of(db).await.is_empty());
    let path: String = engine.query_one(&sql("SHOW search_path")).await.unwrap();
    assert_eq!(
        path,
        db.schema(),
        "the engine argument works in the test's schema"
    );
}

#[aludel::test(models(Author))]
async fn a_test_may_return_a_result(mut s: AsyncSession, rec: Recorder) -> aludel::Result<()> {
    let mark = rec.len();
    let n: Vec<i64> = s.all(&select(count_star()).from::<Author>()).await?;
    assert_eq!(n, [0]);
    assert_eq!(
        rec.queries_since(mark).len(),
        1,
        "the recorder is the engine's"
    );
    Ok(())
}

/// Schemas seen by [`another_test_sees_an_empty_table`], however it was run.
static OTHER_SCHEMAS: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[aludel::test(models(Author, Note))]
async fn another_test_sees_an_empty_table(db: &TestDb, mut s: AsyncSession) {
    let n: Vec<i64> = s.all(&select(count_star()).from::<Note>()).await.unwrap();
    assert_eq!(
        n,
        [0],
        "another test's committed row leaked into this schema"
    );
    OTHER_SCHEMAS.lock().unwrap().push(db.schema().to_owned());
}

// covers: DDL-01
#[aludel::test(models(Author, Note))]
async fn two_tests_schemas_do_not_see_each_other(db: &TestDb, mut s: AsyncSession) {
    s.add(&note("mine")).unwrap();
    s.commit().await.unwrap();
    // The other test runs now, on a thread and runtime of its own, while this row is committed.
    std::thread::spawn(another_test_sees_an_empty_table)
        .join()
        .expect("the other test failed");
    let theirs = OTHER_SCHEMAS.lock().unwrap().last().cloned().unwrap();
    assert_ne!(theirs, db.schema());
    assert!(
        !schema_exists(&theirs).await,
        "the other test's schema outlived it"
    );
    let n: Vec<i64> = s.all(&select(count_star()).from::<Note>()).await.unwrap();
    assert_eq!(n, [1]);
}

thread_local! {
    static PANICKED_IN: RefCell<Option<String>> = const { RefCell::new(None) };
}

#[aludel::test(models(Author, Note))]
#[should_panic(expected = "the test failed here")]
async fn panics_holding_an_open_transaction(db: &TestDb, mut s: AsyncSession) {
    PANICKED_IN.with(|p| *p.borrow_mut() = Some(db.schema().to_owned()));
    s.add(&note("uncommitted")).unwrap();
    s.flush().await.unwrap(); // the session's backend is now idle in transaction
    assert!(schema_exists(db.schema()).await);
    panic!("the test failed here");
}

// covers: DDL-01
#[test]
fn a_panicking_test_still_drops_its_schema() {
    let outcome = std::panic::catch_unwind(panics_holding_an_open_transaction);
    assert!(outcome.is_err(), "the test body should have panicked");
    let schema = PANICKED_IN.with(|p| p.borrow_mut().take()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(
        !rt.block_on(schema_exists(&schema)),
        "schema {schema} is still in pg_namespace after the panic"
    );
}

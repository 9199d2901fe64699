use std::time::Duration;

use aludel::sql;
use aludel::testing::{Recorder, TestDb};
use aludel_migrate::{
    ADVISORY_LOCK_CLASS, EmbeddedFile, Migration, Migrations, Migrator, embed_migrations,
    migrate_to_head,
};

static FIXTURES: &[EmbeddedFile] = embed_migrations!("tests/fixtures/migrations");

fn fixtures() -> Migrations {
    Migrations::embedded(FIXTURES).unwrap()
}

async fn log(db: &TestDb) -> Vec<String> {
    let mut conn = db.admin().await.unwrap();
    conn.query_as(&sql("SELECT revision FROM applied_log ORDER BY revision"))
        .await
        .unwrap()
}

async fn versions(db: &TestDb) -> Vec<String> {
    let mut conn = db.admin().await.unwrap();
    conn.query_as(&sql(
        "SELECT revision FROM aludel_migrations ORDER BY revision",
    ))
    .await
    .unwrap()
}

// covers: MIG-01
#[tokio::test]
async fn embedded_migrations_run_at_start_up_once() {
    let db = TestDb::new().await.unwrap();
    assert_eq!(FIXTURES.len(), 3);
    let applied = migrate_to_head(db.engine(), FIXTURES).await.unwrap();
    assert_eq!(
        applied,
        [
            "0001_create_notes",
            "0002_add_note_title",
            "0003_index_titles_concurrently"
        ]
    );
    assert_eq!(log(&db).await, ["0001", "0002", "0003"]);
    // The next start finds nothing to do.
    assert!(
        migrate_to_head(db.engine(), FIXTURES)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(log(&db).await, ["0001", "0002", "0003"]);
    let m = Migrator::new(fixtures());
    assert_eq!(
        m.current(db.engine()).await.unwrap().as_deref(),
        Some("0003_index_titles_concurrently")
    );
    let applied = m.applied(db.engine()).await.unwrap();
    assert_eq!(
        applied[0].checksum,
        fixtures().iter().next().unwrap().checksum()
    );
}

// covers: MIG-01
#[tokio::test]
async fn two_processes_upgrading_at_once_apply_each_migration_once() {
    let db = TestDb::new().await.unwrap();
    // Hold the migration lock from a third connection, so both upgrades start, find it taken
    // and wait; then let go and let them race for it.
    let mut holder = db.admin().await.unwrap();
    let key =
        sql("SELECT pg_advisory_lock($1, hashtext(current_schema() || '.aludel_migrations'))")
            .bind(ADVISORY_LOCK_CLASS);
    holder.execute(&key).await.unwrap();

    let (ra, rb) = (Recorder::default(), Recorder::default());
    let ea = db.engine_builder().observer(ra.clone()).build().unwrap();
    let eb = db.engine_builder().observer(rb.clone()).build().unwrap();
    let a = tokio::spawn(async move { Migrator::new(fixtures()).upgrade(&ea, "head").await });
    let b = tokio::spawn(async move { Migrator::new(fixtures()).upgrade(&eb, "head").await });
    let tried = |r: &Recorder| {
        r.all()
            .iter()
            .any(|s| s.sql.contains("pg_try_advisory_lock"))
    };
    while !(tried(&ra) && tried(&rb)) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut conn = db.admin().await.unwrap();
    let untouched: bool = conn
        .query_one(&sql(
            "SELECT to_regclass('aludel_migrations') IS NULL AND to_regclass('notes') IS NULL",
        ))
        .await
        .unwrap();
    assert!(untouched, "nothing ran while the lock was held");
    drop(conn);
    let unlock =
        sql("SELECT pg_advisory_unlock($1, hashtext(current_schema() || '.aludel_migrations'))")
            .bind(ADVISORY_LOCK_CLASS);
    holder.execute(&unlock).await.unwrap();
    drop(holder);

    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    let mut counts = [a.len(), b.len()];
    counts.sort_unstable();
    assert_eq!(
        counts,
        [0, 3],
        "one process applied everything, the other nothing: {a:?} {b:?}"
    );
    assert_eq!(
        log(&db).await,
        ["0001", "0002", "0003"],
        "each migration's statements ran once"
    );
    assert_eq!(versions(&db).await.len(), 3);
}

// covers: MIG-01
#[tokio::test]
async fn an_edited_applied_migration_is_an_error_but_its_down_section_may_change() {
    let db = TestDb::new().await.unwrap();
    Migrator::new(fixtures())
        .upgrade(db.engine(), "0002")
        .await
        .unwrap();
    let mut list: Vec<Migration> = fixtures().iter().cloned().collect();
    list[1].down.push_str("\n-- fixed the downgrade");
    let edited_down = Migrator::new(Migrations::from_list(list.clone()).unwrap());
    assert_eq!(
        edited_down.current(db.engine()).await.unwrap().as_deref(),
        Some("0002_add_note_title")
    );

    list[1].up = list[1].up.replace("title text", "title varchar(200)");
    let edited_up = Migrator::new(Migrations::from_list(list).unwrap());
    let err = edited_up.upgrade(db.engine(), "head").await.unwrap_err();
    assert!(err.is_checksum_mismatch(), "{err}");
    assert!(err.to_string().contains("0002_add_note_title"), "{err}");
    assert_eq!(log(&db).await, ["0001", "0002"], "nothing more ran");
}

// covers: MIG-01
#[tokio::test]
async fn a_failing_migration_is_rolled_back_and_not_recorded() {
    let db = TestDb::new().await.unwrap();
    let mut list: Vec<Migration> = fixtures().iter().take(2).cloned().collect();
    list[1]
        .up
        .push_str("\nALTER TABLE no_such_table ADD COLUMN x int;");
    let m = Migrator::new(Migrations::from_list(list).unwrap());
    let err = m.upgrade(db.engine(), "head").await.unwrap_err();
    assert!(err.as_db().is_some(), "{err}");
    assert_eq!(
        m.current(db.engine()).await.unwrap().as_deref(),
        Some("0001_create_notes")
    );
    assert_eq!(
        log(&db).await,
        ["0001"],
        "the failed migration's insert was rolled back"
    );
    let mut conn = db.admin().await.unwrap();
    let has_title: bool = conn
        .query_one(&sql("SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'notes' AND column_name = 'title')"))
        .await
        .unwrap();
    assert!(!has_title);
}

// covers: MIG-01
#[tokio::test]
async fn create_index_concurrently_needs_a_non_transactional_migration() {
    let db = TestDb::new().await.unwrap();
    let mut list: Vec<Migration> = fixtures().iter().cloned().collect();
    list[2].transactional = true;
    let err = Migrator::new(Migrations::from_list(list).unwrap())
        .upgrade(db.engine(), "head")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("transaction block"), "{err}");
    assert_eq!(versions(&db).await.len(), 2);
    // As written (transactional: false) it runs.
    let done = Migrator::new(fixtures())
        .upgrade(db.engine(), "head")
        .await
        .unwrap();
    assert_eq!(done, ["0003_index_titles_concurrently"]);
    let mut conn = db.admin().await.unwrap();
    let valid: bool = conn
        .query_one(&sql(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'notes_title_idx'::regclass",
        ))
        .await
        .unwrap();
    assert!(valid);
}

// covers: MIG-01
#[tokio::test]
async fn downgrade_by_steps_to_a_revision_and_to_base() {
    let db = TestDb::new().await.unwrap();
    let m = Migrator::new(fixtures());
    m.upgrade(db.engine(), "head").await.unwrap();
    assert_eq!(
        m.downgrade(db.engine(), "-1").await.unwrap(),
        ["0003_index_titles_concurrently"]
    );
    assert_eq!(log(&db).await, ["0001", "0002"]);
    m.upgrade(db.engine(), "head").await.unwrap();
    assert_eq!(
        m.downgrade(db.engine(), "0001").await.unwrap(),
        ["0003_index_titles_concurrently", "0002_add_note_title"]
    );
    assert_eq!(
        m.current(db.engine()).await.unwrap().as_deref(),
        Some("0001_create_notes")
    );
    assert_eq!(
        m.downgrade(db.engine(), "base").await.unwrap(),
        ["0001_create_notes"]
    );
    assert_eq!(m.current(db.engine()).await.unwrap(), None);
    let mut conn = db.admin().await.unwrap();
    let left: i64 = conn
        .query_one(&sql("SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relname IN ('notes', 'applied_log')"))
        .await
        .unwrap();
    assert_eq!(left, 0);
}

// covers: MIG-01
#[tokio::test]
async fn offline_sql_runs_nothing_and_applied_by_hand_reaches_the_same_state() {
    let db = TestDb::new().await.unwrap();
    let m = Migrator::new(fixtures());
    let mark = db.recorder().len();
    let text = m.upgrade_sql(None, "0002").unwrap();
    assert_eq!(db.recorder().len(), mark, "offline mode sends nothing");
    assert!(
        text.contains("BEGIN;\nALTER TABLE notes ADD COLUMN title text;"),
        "{text}"
    );
    assert!(!text.contains("CONCURRENTLY"), "stops at the target");
    // What psql would do with it: one simple-protocol script.
    let mut conn = db.engine().connect().await.unwrap();
    conn.driver_client()
        .unwrap()
        .batch_execute(&text)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(
        m.current(db.engine()).await.unwrap().as_deref(),
        Some("0002_add_note_title"),
        "checksums recorded offline match"
    );
    assert_eq!(log(&db).await, ["0001", "0002"]);
    let rest = m.upgrade_sql(Some("0002"), "head").unwrap();
    assert!(
        rest.contains("CREATE INDEX CONCURRENTLY") && !rest.contains("BEGIN;"),
        "{rest}"
    );
    let back = m.downgrade_sql("0002", "base").unwrap();
    assert!(
        back.find("DELETE FROM applied_log").unwrap() < back.find("DROP TABLE notes").unwrap(),
        "{back}"
    );
}

// covers: MIG-01
#[tokio::test]
async fn revisions_must_form_one_chain() {
    let mut list: Vec<Migration> = fixtures().iter().cloned().collect();
    let mut branch = list[2].clone();
    branch.revision = "0003_other_branch".into();
    list.push(branch);
    let err = Migrations::from_list(list.clone()).unwrap_err();
    assert!(
        err.is_graph() && err.to_string().contains("multiple heads"),
        "{err}"
    );
    list.pop();
    list[1].parent = Some("0000_missing".into());
    assert!(Migrations::from_list(list).unwrap_err().is_graph());
    let db = TestDb::new().await.unwrap();
    let m = Migrator::new(fixtures());
    assert!(
        m.upgrade(db.engine(), "9999")
            .await
            .unwrap_err()
            .is_unknown_revision()
    );
    m.upgrade(db.engine(), "head").await.unwrap();
    // A database ahead of the code it runs with.
    let older =
        Migrator::new(Migrations::from_list(fixtures().iter().take(2).cloned().collect()).unwrap());
    assert!(
        older
            .current(db.engine())
            .await
            .unwrap_err()
            .is_unknown_revision()
    );
}

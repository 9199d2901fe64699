//! The round trip, through the command line as a user drives it: empty database →
//! autogenerate from the app's models → upgrade → check clean → change the models →
//! autogenerate → exactly those steps → upgrade → check clean → downgrade → the previous
//! reflection, exactly.

use std::path::PathBuf;

use aludel::testing::TestDb;
use aludel_migrate::{Cli, Migration, Schema, reflect};

use crate::conduit::{v1, v2};

/// A migrations folder of the test's own.
pub fn temp_dir(db: &TestDb) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{}_migrations", db.schema()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs one command line; returns (success, output).
pub async fn run(cli: &Cli, args: &[&str]) -> (bool, String) {
    let mut out = Vec::new();
    let ok = cli
        .run(args.iter().map(|s| (*s).to_owned()), &mut out)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    (ok, String::from_utf8(out).unwrap())
}

async fn live(db: &TestDb) -> Schema {
    let mut conn = db.engine().connect().await.unwrap();
    reflect(&mut conn, None)
        .await
        .unwrap()
        .without_tables(&["aludel_migrations"])
}

fn file(dir: &std::path::Path, revision: &str) -> Migration {
    let name = format!("{revision}.sql");
    Migration::parse(&name, &std::fs::read_to_string(dir.join(&name)).unwrap()).unwrap()
}

fn steps(m: &Migration) -> Vec<&str> {
    m.up.lines().filter(|l| l.starts_with("-- ")).collect()
}

// covers: MIG-01, REF-01, DDL-01
#[tokio::test]
async fn round_trip_from_an_empty_database_through_a_model_change_and_back() {
    let db = TestDb::new().await.unwrap();
    let dir = temp_dir(&db);
    let first = Cli::new(v1::TABLES).engine(db.engine().clone()).dir(&dir);

    let (_, out) = run(&first, &["revision", "--autogenerate", "-m", "init"]).await;
    assert!(out.contains("0001_init.sql"), "{out}");
    let init = file(&dir, "0001_init");
    assert_eq!(init.parent, None);
    assert_eq!(steps(&init)[0], "-- create enum type \"article_status\"");
    assert_eq!(
        steps(&init)
            .iter()
            .filter(|s| s.contains("create table"))
            .count(),
        7
    );
    let (_, out) = run(&first, &["upgrade"]).await;
    assert_eq!(out, "applied 0001_init\n");
    let (clean, out) = run(&first, &["check"]).await;
    assert!(clean, "{out}");
    let before = live(&db).await;
    assert_eq!(before.tables.len(), 7);

    let second = Cli::new(v2::TABLES).engine(db.engine().clone()).dir(&dir);
    let (clean, out) = run(&second, &["check"]).await;
    assert!(
        !clean,
        "check fails (exit 1) while the models are ahead: {out}"
    );
    let (_, out) = run(
        &second,
        &["revision", "--autogenerate", "-m", "bookmarks and more"],
    )
    .await;
    assert!(out.contains("0002_bookmarks_and_more.sql"), "{out}");
    let change = file(&dir, "0002_bookmarks_and_more");
    assert_eq!(
        change.parent.as_deref(),
        Some("0001_init"),
        "the header names its parent"
    );
    assert_eq!(
        steps(&change),
        [
            "-- add value 'archived' to enum type \"article_status\"",
            "-- create table \"bookmarks\"",
            "-- add column \"users\".\"location\"",
            "-- DESTRUCTIVE: drop column \"comments\".\"updated_at\" and its data",
            "-- create index \"bookmarks_user_id_idx\" on \"bookmarks\"",
            "-- create index \"articles_title_idx\" on \"articles\"",
            "-- add constraint \"bookmarks_article_id_fkey\" on \"bookmarks\"",
            "-- add constraint \"bookmarks_user_id_fkey\" on \"bookmarks\"",
        ],
        "exactly the model changes:\n{}",
        change.up
    );
    let text = std::fs::read_to_string(dir.join("0002_bookmarks_and_more.sql")).unwrap();
    assert!(
        text.contains("-- DESTRUCTIVE: 1 step(s) of `up` can lose data"),
        "{text}"
    );

    let (_, out) = run(&second, &["upgrade"]).await;
    assert_eq!(out, "applied 0002_bookmarks_and_more\n");
    let (clean, out) = run(&second, &["check"]).await;
    assert!(clean, "{out}");
    let (_, out) = run(&second, &["current"]).await;
    assert_eq!(out, "0002_bookmarks_and_more (head)\n");

    let (_, out) = run(&second, &["downgrade", "-1"]).await;
    assert_eq!(out, "reverted 0002_bookmarks_and_more\n");
    assert_eq!(
        live(&db).await,
        before,
        "downgrade restores the previous reflection exactly"
    );
    let (clean, out) = run(&first, &["check"]).await;
    assert!(clean, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

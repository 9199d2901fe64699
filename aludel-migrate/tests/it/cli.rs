//! The command line as a user drives it (`cargo run -- db <command>` in the app).

use aludel::testing::TestDb;
use aludel_migrate::{Cli, Migration};

use crate::conduit::v1;
use crate::roundtrip::{run, temp_dir};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/migrations");

fn copy_fixtures(db: &TestDb) -> std::path::PathBuf {
    let dir = temp_dir(db);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(FIXTURES).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir
}

// covers: MIG-01
#[tokio::test]
async fn upgrade_current_history_downgrade_from_the_command_line() {
    let db = TestDb::new().await.unwrap();
    let cli = Cli::new(&[]).engine(db.engine().clone()).dir(FIXTURES);
    let (_, out) = run(&cli, &["current"]).await;
    assert_eq!(out, "base\n");
    let (clean, out) = run(&cli, &["check"]).await;
    assert!(clean, "no models, no tables: {out}");
    let (_, out) = run(&cli, &["upgrade", "0002"]).await;
    assert_eq!(
        out,
        "applied 0001_create_notes\napplied 0002_add_note_title\n"
    );
    let (_, out) = run(&cli, &["history"]).await;
    assert_eq!(
        out,
        "0001_create_notes <- base  applied  create notes\n\
         0002_add_note_title <- 0001_create_notes  applied (current)  add note title\n\
         0003_index_titles_concurrently <- 0002_add_note_title  pending  index titles without blocking writes\n"
    );
    let (_, out) = run(&cli, &["upgrade"]).await;
    assert_eq!(out, "applied 0003_index_titles_concurrently\n");
    let (clean, out) = run(&cli, &["check"]).await;
    assert!(
        !clean && out.contains("drop table \"notes\""),
        "tables no model declares: {out}"
    );
    let owned_elsewhere = cli.clone().ignore_tables(&["notes", "applied_log"]);
    let (clean, out) = run(&owned_elsewhere, &["check"]).await;
    assert!(clean, "ignored tables are left alone: {out}");
    let (_, out) = run(&cli, &["current"]).await;
    assert_eq!(out, "0003_index_titles_concurrently (head)\n");
    let (_, out) = run(&cli, &["downgrade", "base"]).await;
    assert_eq!(
        out,
        "reverted 0003_index_titles_concurrently\nreverted 0002_add_note_title\nreverted 0001_create_notes\n"
    );
}

// covers: MIG-01
#[tokio::test]
async fn sql_mode_prints_without_connecting() {
    // Nothing listens on port 1: any connection attempt would fail the command.
    let cli = Cli::new(&[])
        .url("postgres://postgres@127.0.0.1:1/nowhere")
        .dir(FIXTURES);
    let (_, out) = run(&cli, &["upgrade", "--sql"]).await;
    assert!(out.contains("CREATE TABLE notes"), "{out}");
    assert!(out.contains("CREATE INDEX CONCURRENTLY"), "{out}");
    assert_eq!(out.matches("INSERT INTO \"aludel_migrations\"").count(), 3);
    let (_, out) = run(&cli, &["downgrade", "head:0001", "--sql"]).await;
    assert!(
        out.contains("DROP INDEX CONCURRENTLY")
            && out.contains("ALTER TABLE notes DROP COLUMN title"),
        "{out}"
    );
    assert!(!out.contains("DROP TABLE notes"), "stops at 0001: {out}");
    let mut sink = Vec::new();
    let err = cli
        .run(["downgrade", "-1", "--sql"].map(String::from), &mut sink)
        .await
        .unwrap_err();
    assert!(err.is_usage(), "offline downgrade needs FROM: {err}");
}

// covers: MIG-01
#[tokio::test]
async fn bad_command_lines_are_usage_errors() {
    let cli = Cli::new(&[]).dir(FIXTURES);
    for args in [
        &["frobnicate"][..],
        &["downgrade"],
        &["revision"],
        &["check", "--sql"],
        &["upgrade", "--bogus"],
        &[],
    ] {
        let mut sink = Vec::new();
        let err = cli
            .run(args.iter().map(|s| (*s).to_owned()), &mut sink)
            .await
            .unwrap_err();
        assert!(err.is_usage(), "{args:?}: {err}");
    }
}

// covers: MIG-01
#[tokio::test]
async fn revision_writes_a_template_after_the_head_and_autogenerate_wants_an_up_to_date_database() {
    let db = TestDb::new().await.unwrap();
    let dir = copy_fixtures(&db);
    let cli = Cli::new(v1::TABLES).engine(db.engine().clone()).dir(&dir);
    let (_, out) = run(&cli, &["revision", "-m", "Backfill titles!"]).await;
    assert!(out.contains("0004_backfill_titles.sql"), "{out}");
    let text = std::fs::read_to_string(dir.join("0004_backfill_titles.sql")).unwrap();
    let m = Migration::parse("0004_backfill_titles.sql", &text).unwrap();
    assert_eq!(m.parent.as_deref(), Some("0003_index_titles_concurrently"));
    assert_eq!((m.up.as_str(), m.down.as_str()), ("", ""));

    let mut sink = Vec::new();
    let err = cli
        .run(
            ["revision", "--autogenerate", "-m", "x"].map(String::from),
            &mut sink,
        )
        .await
        .unwrap_err();
    assert!(err.is_not_up_to_date(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// covers: REF-01
#[tokio::test]
async fn codegen_writes_models_to_a_file() {
    let db = TestDb::new().await.unwrap();
    let cli = Cli::new(&[]).engine(db.engine().clone()).dir(FIXTURES);
    run(&cli, &["upgrade"]).await;
    let out_file = std::env::temp_dir().join(format!("{}_models.rs", db.schema()));
    let out_arg = out_file.to_string_lossy().into_owned();
    run(&cli, &["codegen", "--out", &out_arg]).await;
    let code = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        code.contains("#[aludel(table = \"notes\")]\npub struct Note {"),
        "{code}"
    );
    assert!(
        code.contains("// codegen: table `applied_log` has no primary key"),
        "{code}"
    );
    assert!(
        !code.contains("aludel_migrations"),
        "the version table is not a model"
    );
    let _ = std::fs::remove_file(&out_file);
}

// covers: MIG-01
#[tokio::test]
async fn stamp_adopts_a_database_made_without_migrations() {
    // The schema of the first two fixtures, made by hand (as create_all would have).
    let db = crate::db_with(
        "CREATE TABLE applied_log (revision text NOT NULL);
         CREATE TABLE notes (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body text NOT NULL, title text);",
    )
    .await;
    let cli = Cli::new(&[]).engine(db.engine().clone()).dir(FIXTURES);
    let (_, out) = run(&cli, &["stamp", "0002"]).await;
    assert_eq!(
        out,
        "stamped 0002_add_note_title (2 revision(s) recorded)\n"
    );
    let (_, out) = run(&cli, &["upgrade"]).await;
    assert_eq!(
        out, "applied 0003_index_titles_concurrently\n",
        "only what the stamp left out runs"
    );
    let mut conn = db.admin().await.unwrap();
    let log: Vec<String> = conn
        .query_as(&aludel::sql("SELECT revision FROM applied_log"))
        .await
        .unwrap();
    assert_eq!(log, ["0003"]);
    drop(conn);
    let (_, out) = run(&cli, &["stamp", "base"]).await;
    assert_eq!(out, "stamped base (0 revision(s) recorded)\n");
    let (_, out) = run(&cli, &["current"]).await;
    assert_eq!(out, "base\n");
}

// covers: MIG-01, DDL-01
#[tokio::test]
async fn ddl_the_derive_cannot_declare_is_part_of_the_models_side() {
    const LOWER: &str = "CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))";
    let db = TestDb::new().await.unwrap();
    let dir = temp_dir(&db);
    let plain = Cli::new(v1::TABLES).engine(db.engine().clone()).dir(&dir);
    let cli = plain.clone().with_ddl(LOWER);
    let (_, out) = run(&cli, &["revision", "--autogenerate", "-m", "init"]).await;
    assert!(out.contains("0001_init.sql"), "{out}");
    let text = std::fs::read_to_string(dir.join("0001_init.sql")).unwrap();
    assert_eq!(
        text.matches(
            "CREATE UNIQUE INDEX \"users_email_lower_key\" ON \"users\" USING btree (lower(email));"
        )
        .count(),
        1,
        "autogenerate emits the extra DDL's index: {text}"
    );
    run(&cli, &["upgrade"]).await;
    let (clean, out) = run(&cli, &["check"]).await;
    assert!(clean, "{out}");
    let (clean, out) = run(&plain, &["check"]).await;
    assert!(
        !clean && out.contains("drop index \"users_email_lower_key\" on \"users\""),
        "without the DDL the index is one the models do not declare: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// covers: MIG-01
#[tokio::test]
async fn embedded_migrations_serve_when_the_folder_is_absent() {
    static FILES: &[aludel_migrate::EmbeddedFile] =
        aludel_migrate::embed_migrations!("tests/fixtures/migrations");
    let db = TestDb::new().await.unwrap();
    let absent = temp_dir(&db);
    let cli = Cli::new(&[])
        .engine(db.engine().clone())
        .dir(&absent)
        .embedded(FILES);
    let (_, out) = run(&cli, &["upgrade", "0001"]).await;
    assert_eq!(out, "applied 0001_create_notes\n");
    let (_, out) = run(&cli, &["current"]).await;
    assert_eq!(out, "0001_create_notes\n");
    // A folder that exists wins over the embedded copy.
    let present = cli.clone().dir(FIXTURES);
    let (_, out) = run(&present, &["history"]).await;
    assert_eq!(out.lines().count(), 3, "{out}");
    run(&cli, &["downgrade", "base"]).await;
}

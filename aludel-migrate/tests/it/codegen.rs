//! `codegen` on the app's database: the output is checked in as `codegen_conduit.rs`, which
//! this test binary compiles, and those compiled models round-trip `check` clean.
//! `ALUDEL_BLESS=1 cargo test -p aludel-migrate --test it codegen` rewrites the file.

use aludel::testing::TestDb;
use aludel::{create_all, schema::CreateOptions};
use aludel_migrate::{codegen, compare, reflect};

use crate::conduit::v1;

async fn app_database() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.engine().connect().await.unwrap();
    create_all(&mut conn, v1::TABLES, CreateOptions::default())
        .await
        .unwrap();
    db
}

// covers: REF-01, DDL-01
#[tokio::test]
async fn codegen_output_for_the_app_database_is_the_checked_in_module() {
    let db = app_database().await;
    let mut conn = db.engine().connect().await.unwrap();
    let code = codegen(&reflect(&mut conn, None).await.unwrap());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/codegen_conduit.rs");
    if std::env::var_os("ALUDEL_BLESS").is_some() {
        std::fs::write(path, &code).unwrap();
    }
    assert_eq!(
        code,
        include_str!("codegen_conduit.rs"),
        "codegen changed: rerun with ALUDEL_BLESS=1 and review the diff"
    );
}

// covers: REF-01, MIG-01
#[tokio::test]
async fn generated_models_compile_and_check_clean_against_the_database() {
    let db = app_database().await;
    let mut conn = db.engine().connect().await.unwrap();
    let cmp = compare(&mut conn, crate::codegen_conduit::TABLES, &[])
        .await
        .unwrap();
    assert!(cmp.is_clean(), "{}", aludel_migrate::render_plan(&cmp.up));
    assert_eq!(cmp.target, cmp.live);
    // The inferred relationships are real: many-to-one, one-to-many, many-to-many through
    // the link tables.
    use crate::codegen_conduit::{Article, User};
    let _ = (
        Article::author,
        Article::tags,
        User::articles,
        User::favorite_articles,
    );
}

// covers: REF-01
#[tokio::test]
async fn codegen_says_what_the_derive_cannot_declare() {
    let db = crate::db_with(
        "CREATE TABLE parents (a int, b int, PRIMARY KEY (a, b), note varchar(40));
         COMMENT ON TABLE parents IS 'composite key';
         CREATE TABLE kids (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             a int, b int,
             tags text[] NOT NULL DEFAULT '{}',
             doc jsonb,
             at timestamptz,
             twice int GENERATED ALWAYS AS (a * 2) STORED,
             \"type\" text,
             FOREIGN KEY (a, b) REFERENCES parents (a, b) ON UPDATE CASCADE
         );
         CREATE INDEX kids_recent ON kids (at DESC) WHERE at IS NOT NULL;
         CREATE TABLE log (line text);",
    )
    .await;
    let mut conn = db.engine().connect().await.unwrap();
    let code = codegen(&reflect(&mut conn, None).await.unwrap());
    for expected in [
        "// codegen: not declared by the derive: table comment: \"composite key\"",
        "// codegen: not declared by the derive: multi-column foreign key kids_a_b_fkey",
        "// codegen: not declared by the derive: index kids_recent: INDEX USING btree (at DESC) WHERE (at IS NOT NULL)",
        "#[aludel(primary_key, identity = \"always\")]\n    pub id: Generated<i64>,",
        "#[aludel(generated = \"(a * 2)\")]\n    pub twice: Generated<Option<i32>>,",
        "// codegen: table `log` has no primary key",
        "#[aludel(sql_type = \"character varying(40)\")]\n    pub note: Option<String>,",
        "#[aludel(server_default = \"'{}'::text[]\")]\n    pub tags: Generated<Vec<String>>,",
        "pub doc: Option<serde_json::Value>,",
        "#[aludel(column = \"type\")]\n    pub type_: Option<String>,",
    ] {
        assert!(code.contains(expected), "missing {expected:?} in:\n{code}");
    }
}

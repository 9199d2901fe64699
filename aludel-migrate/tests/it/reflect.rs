use aludel::sql;
use aludel_migrate::{ConstraintKind, FkAction, Identity, REFLECTION_QUERIES, reflect};

use crate::db_with;

// covers: REF-01
#[tokio::test]
async fn reflection_reads_every_kind_of_object() {
    let db = db_with(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE users (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             email varchar(200) NOT NULL UNIQUE,
             mood mood NOT NULL DEFAULT 'ok',
             score integer CHECK (score >= 0),
             doubled integer GENERATED ALWAYS AS (score * 2) STORED
         );
         COMMENT ON TABLE users IS 'people';
         COMMENT ON COLUMN users.email IS 'login';
         CREATE TABLE posts (
             id serial PRIMARY KEY,
             user_id bigint REFERENCES users (id) ON DELETE CASCADE ON UPDATE SET NULL,
             title text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now()
         );
         CREATE INDEX posts_recent ON posts (created_at DESC, id) WHERE title <> '';
         CREATE INDEX posts_lower_title ON posts (lower(title));",
    )
    .await;
    let mut conn = db.engine().connect().await.unwrap();
    let s = reflect(&mut conn, None).await.unwrap();
    assert_eq!(
        s.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["posts", "users"]
    );
    assert_eq!(s.enums[0].name, "mood");
    assert_eq!(s.enums[0].labels, ["sad", "ok", "happy"]);

    let users = s.table("users").unwrap();
    assert_eq!(users.comment.as_deref(), Some("people"));
    let id = users.column("id").unwrap();
    assert_eq!(
        (id.ty.as_str(), id.identity, id.nullable),
        ("bigint", Some(Identity::Always), false)
    );
    let email = users.column("email").unwrap();
    assert_eq!(email.ty, "character varying(200)");
    assert_eq!(email.comment.as_deref(), Some("login"));
    assert_eq!(
        users.column("mood").unwrap().default.as_deref(),
        Some("'ok'::mood")
    );
    let doubled = users.column("doubled").unwrap();
    assert_eq!(
        (doubled.generated.as_deref(), doubled.default.as_deref()),
        (Some("(score * 2)"), None)
    );
    assert_eq!(users.primary_key().unwrap().columns, ["id"]);
    let check = users.constraints_of(ConstraintKind::Check).next().unwrap();
    assert_eq!(check.definition, "CHECK ((score >= 0))");
    let unique = users.constraints_of(ConstraintKind::Unique).next().unwrap();
    assert_eq!(
        (unique.name.as_str(), unique.columns.as_slice()),
        ("users_email_key", ["email".to_owned()].as_slice())
    );

    let posts = s.table("posts").unwrap();
    assert_eq!(
        posts.column("id").unwrap().default.as_deref(),
        Some("nextval('posts_id_seq'::regclass)")
    );
    let fk = posts
        .constraints_of(ConstraintKind::ForeignKey)
        .next()
        .unwrap();
    let target = fk.foreign_key.as_ref().unwrap();
    assert_eq!(
        (target.table.as_str(), target.columns.as_slice()),
        ("users", ["id".to_owned()].as_slice())
    );
    assert_eq!(
        (target.on_delete, target.on_update),
        (FkAction::Cascade, FkAction::SetNull)
    );
    let names: Vec<&str> = posts.indexes.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["posts_lower_title", "posts_recent"],
        "the primary key's index is the constraint's"
    );
    assert_eq!(posts.indexes[0].definition, "btree (lower(title))");
    assert_eq!(posts.indexes[0].columns, [None]);
    assert_eq!(
        posts.indexes[1].definition,
        "btree (created_at DESC, id) WHERE (title <> ''::text)"
    );
    assert!(!posts.indexes[1].simple);
}

// covers: REF-01
#[tokio::test]
async fn reflection_is_scoped_to_the_current_schema() {
    let a = db_with("CREATE TABLE only_in_a (id int PRIMARY KEY)").await;
    let b = db_with("CREATE TABLE only_in_b (id int PRIMARY KEY)").await;
    let mut conn = a.engine().connect().await.unwrap();
    let s = reflect(&mut conn, None).await.unwrap();
    assert_eq!(s.tables.len(), 1);
    assert_eq!(s.tables[0].name, "only_in_a");
    // An explicit schema name reads that one instead.
    let other = reflect(&mut conn, Some(b.schema())).await.unwrap();
    assert_eq!(other.tables[0].name, "only_in_b");
}

// covers: REF-01
#[tokio::test]
async fn reflection_costs_the_same_few_queries_for_one_table_or_two_hundred() {
    let small = db_with("CREATE TABLE t0 (id int PRIMARY KEY)").await;
    let big = aludel::testing::TestDb::new().await.unwrap();
    let mut ddl = String::from("CREATE TYPE kind AS ENUM ('a', 'b');\n");
    for i in 0..200 {
        let parent = if i == 0 {
            String::new()
        } else {
            format!(", parent_id int REFERENCES t{} (id)", i - 1)
        };
        ddl.push_str(&format!(
            "CREATE TABLE t{i} (id int PRIMARY KEY, name text UNIQUE, k kind, n int CHECK (n > 0){parent});\n\
             CREATE INDEX t{i}_n ON t{i} (n DESC);\n"
        ));
    }
    let mut conn = big.engine().connect().await.unwrap();
    conn.driver_client()
        .unwrap()
        .batch_execute(&ddl)
        .await
        .unwrap();
    drop(conn);

    for (db, tables) in [(&small, 1), (&big, 200)] {
        let mut conn = db.engine().connect().await.unwrap();
        let mark = db.recorder().len();
        let s = reflect(&mut conn, None).await.unwrap();
        let queries = db.recorder().queries_since(mark);
        assert_eq!(s.tables.len(), tables);
        assert_eq!(
            queries.len(),
            REFLECTION_QUERIES,
            "{:#?}",
            queries.iter().map(|q| &q.sql).collect::<Vec<_>>()
        );
        assert!(
            queries.iter().all(|q| q.sql.contains("pg_")),
            "only catalog queries"
        );
    }
    let mut conn = big.engine().connect().await.unwrap();
    let s = reflect(&mut conn, None).await.unwrap();
    let t199 = s.table("t199").unwrap();
    assert_eq!(t199.constraints.len(), 4, "pkey, unique, check, fkey");
    assert_eq!(t199.indexes.len(), 1);
    let n: i64 = conn.query_one(&sql("SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'")).await.unwrap();
    assert_eq!(n, 200);
}

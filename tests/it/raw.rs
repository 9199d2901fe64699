use aludel::testing::TestDb;
use aludel::{query::AssertSqlSafe, query::Raw, sql, types::Bind};

// covers: RAW-01
#[tokio::test]
async fn values_are_bound_never_spliced() {
    let db = TestDb::new().await.unwrap();
    let e = db.engine();
    e.execute(&sql("CREATE TABLE t (id serial PRIMARY KEY, body text)"))
        .await
        .unwrap();
    let nasty = "'); DROP TABLE t; -- \"quoted\" ; $1 :name";
    e.execute(&sql("INSERT INTO t (body) VALUES (:body)").bind_named("body", nasty))
        .await
        .unwrap();
    let big = "x".repeat(1 << 20);
    e.execute(&sql("INSERT INTO t (body) VALUES ($1)").bind(big.clone()))
        .await
        .unwrap();
    let bodies: Vec<String> = e
        .query_as(&sql("SELECT body FROM t ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(bodies, [nasty.to_owned(), big]);

    // A NUL byte cannot be stored in text: a clear, typed error, and nothing written.
    let err = e
        .execute(&sql("INSERT INTO t (body) VALUES ($1)").bind("a\0b"))
        .await
        .unwrap_err();
    assert!(err.code().is_some(), "{err:?}");
    let n: i64 = e.query_one(&sql("SELECT count(*) FROM t")).await.unwrap();
    assert_eq!(n, 2);
}

// covers: RAW-01, QRY-02
#[tokio::test]
async fn in_lists_are_one_array_bind_and_may_be_empty() {
    let db = TestDb::new().await.unwrap();
    let e = db.engine();
    e.execute(&sql("CREATE TABLE t (id int)")).await.unwrap();
    e.execute(&sql("INSERT INTO t SELECT generate_series(1, 10)"))
        .await
        .unwrap();
    let some: Vec<i32> = e
        .query_as(
            &sql("SELECT id FROM t WHERE id = ANY(:ids) ORDER BY id")
                .bind_named("ids", vec![2, 4, 6]),
        )
        .await
        .unwrap();
    assert_eq!(some, [2, 4, 6]);
    let none: Vec<i32> = e
        .query_as(&sql("SELECT id FROM t WHERE id = ANY($1)").bind(Vec::<i32>::new()))
        .await
        .unwrap();
    assert!(none.is_empty());
    // 100,000 keys in one bind: far past the 65,535-parameter limit of expanded lists.
    let keys: Vec<i32> = (0..100_000).collect();
    let n: i64 = e
        .query_one(&sql("SELECT count(*) FROM t WHERE id = ANY($1)").bind(keys))
        .await
        .unwrap();
    assert_eq!(n, 10);
}

// covers: RAW-01
#[tokio::test]
async fn named_binds_are_checked() {
    let db = TestDb::new().await.unwrap();
    let e = db.engine();
    let missing = e
        .query(&sql("SELECT :a::int, :b::int").bind_named("a", 1))
        .await
        .unwrap_err();
    assert!(
        missing.is_invalid_request() && missing.to_string().contains(":b"),
        "{missing}"
    );
    let unknown = e
        .query(
            &sql("SELECT :a::int")
                .bind_named("a", 1)
                .bind_named("zzz", 2),
        )
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains(":zzz"), "{unknown}");
    let mixed = e.query(&sql("SELECT :a::int").bind(1)).await.unwrap_err();
    assert!(mixed.is_invalid_request());
    let (a, b): (i32, String) = e
        .query_one(
            &sql("SELECT :n::int, :s::text || :s")
                .bind_named("s", "x")
                .bind_named("n", 7),
        )
        .await
        .unwrap();
    assert_eq!((a, b.as_str()), (7, "xx"));
    // Runtime-built SQL needs the audit wrapper.
    let table = "pg_class";
    let n: i64 = e
        .query_one(&Raw::audited(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE false"
        ))))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

// covers: RAW-03
#[tokio::test]
async fn executemany_pipelines_one_statement_over_many_parameter_sets() {
    let db = TestDb::new().await.unwrap();
    let e = db.engine();
    e.execute(&sql("CREATE TABLE t (id int PRIMARY KEY, name text)"))
        .await
        .unwrap();
    let mut c = e.connect().await.unwrap();
    let n = aludel::assert_statements!(db.recorder(), 1, {
        c.execute_many(
            &sql("INSERT INTO t VALUES ($1, $2)"),
            (0..1000).map(|i| vec![Bind::new(i), Bind::new(format!("user {i}"))]),
        )
        .await
        .unwrap()
    });
    assert_eq!(n, 1000);
    let count: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM t"))
        .await
        .unwrap();
    assert_eq!(count, 1000);
    // One duplicate fails the call with a typed error.
    let err = c
        .execute_many(
            &sql("INSERT INTO t VALUES ($1, $2)"),
            [
                vec![Bind::new(5000), Bind::new("x")],
                vec![Bind::new(1), Bind::new("dup")],
            ],
        )
        .await
        .unwrap_err();
    assert!(err.is_unique_violation());
    let partial: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM t WHERE id = 5000"))
        .await
        .unwrap();
    assert_eq!(partial, 0, "a failed batch writes nothing");
}

// covers: RAW-04
#[tokio::test]
async fn copy_through_the_driver_client_joins_the_transaction() {
    use futures_util::SinkExt;
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    c.execute(&sql("CREATE TABLE t (id int, name text)"))
        .await
        .unwrap();
    c.begin().await.unwrap();
    {
        let client = c.driver_client().unwrap();
        let sink = client.copy_in("COPY t FROM STDIN").await.unwrap();
        let mut sink = std::pin::pin!(sink);
        sink.send(&b"1\tone\n2\ttwo\n"[..]).await.unwrap();
        sink.as_mut().finish().await.unwrap();
    }
    let n: i64 = c.query_one(&sql("SELECT count(*) FROM t")).await.unwrap();
    assert_eq!(n, 2, "rows copied in are visible inside the transaction");
    let outside: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM t"))
        .await
        .unwrap();
    assert_eq!(outside, 0, "and invisible outside it until commit");
    c.rollback().await.unwrap();
}

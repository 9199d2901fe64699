use aludel::sql;
use aludel::testing::{TempCluster, TestDb};

#[tokio::test]
async fn test_schemas_are_dropped_with_their_guard() {
    let db = TestDb::new().await.unwrap();
    let schema = db.schema().to_owned();
    db.engine()
        .execute(&sql("CREATE TABLE t (id int)"))
        .await
        .unwrap();
    drop(db); // ends the test's and the admin's backends, then drops the schema
    let n: i64 = aludel::Engine::new(&aludel::testing::database_url())
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM pg_namespace WHERE nspname = $1").bind(schema))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_throwaway_cluster_starts_serves_and_stops() {
    let cluster = tokio::task::spawn_blocking(TempCluster::start)
        .await
        .unwrap()
        .unwrap();
    let engine = aludel::Engine::builder(&cluster.url())
        .no_pool()
        .build()
        .unwrap();
    let v: String = engine.query_one(&sql("SHOW server_version")).await.unwrap();
    assert!(!v.is_empty());
    let port = cluster.port();
    drop(engine);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the cluster still listens"
    );
}

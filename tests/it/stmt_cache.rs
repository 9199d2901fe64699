//! `Cached` mode when the server loses the connection's named statements (a transaction-mode
//! pooler switching backends, `DEALLOCATE ALL`, `DISCARD ALL`): it fails at most once.

use aludel::testing::TestDb;
use aludel::tokio_postgres::error::SqlState;
use aludel::{engine::StatementMode, query::AssertSqlSafe, query::Raw, sql};

// covers: ENG-09, ERR-11
#[tokio::test]
async fn statements_the_server_forgot_are_prepared_again() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .max_size(1)
        .statement_mode(StatementMode::Cached)
        .build()
        .unwrap();
    let q = || sql("SELECT $1::int4 + 1").bind(41_i32);
    let mut c = engine.connect().await.unwrap();
    let pid = c.backend_pid().await.unwrap();
    assert_eq!(c.query_one::<i32>(&q()).await.unwrap(), 42);

    // Outside a transaction: the failed Bind aborted nothing, so it is re-prepared and run
    // once more, invisibly.
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    assert_eq!(c.query_one::<i32>(&q()).await.unwrap(), 42);
    assert_eq!(c.query_one::<i32>(&q()).await.unwrap(), 42);

    // Inside a transaction the error aborted it: reported, not retried; the cache is dropped,
    // so the next transaction works.
    c.begin().await.unwrap();
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    let err = c.query_one::<i32>(&q()).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&SqlState::INVALID_SQL_STATEMENT_NAME),
        "{err}"
    );
    assert!(!err.is_connection_lost());
    c.rollback().await.unwrap();
    assert_eq!(c.query_one::<i32>(&q()).await.unwrap(), 42);
    assert_eq!(
        c.backend_pid().await.unwrap(),
        pid,
        "the connection was kept"
    );
    drop(c);
    assert_eq!(engine.pool_status().size, 1);
}

// covers: ENG-15
#[tokio::test]
async fn prepared_statements_per_connection_stay_within_the_bound() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .max_size(1)
        .statement_cache_size(50)
        .build()
        .unwrap();
    let mut c = engine.connect().await.unwrap();
    let mut most = 0;
    for i in 0..1_000 {
        // 1,000 distinct SQL texts.
        let text = AssertSqlSafe(format!("SELECT $1::int4 + {i}"));
        let n: i32 = c.query_one(&Raw::audited(text).bind(1_i32)).await.unwrap();
        assert_eq!(n, i + 1);
        if i % 25 == 0 {
            let open: i64 = c
                .query_one(&sql("SELECT count(*) FROM pg_prepared_statements"))
                .await
                .unwrap();
            most = most.max(open);
        }
    }
    let open: i64 = c
        .query_one(&sql("SELECT count(*) FROM pg_prepared_statements"))
        .await
        .unwrap();
    most = most.max(open);
    assert!(most <= 50, "{most} prepared statements on one connection");
    assert!(most > 1, "the cache is used: {most}");
    let stats = engine.statement_cache_stats();
    assert!(stats.misses >= 1_000, "{stats:?}");
    assert!(stats.evictions >= 1_000 - 50, "{stats:?}");
    assert!(
        stats.hits >= 1,
        "the count query is prepared once and reused: {stats:?}"
    );
}

#[derive(aludel::Model, Debug, Clone, PartialEq)]
#[aludel(table = "pairs")]
struct Pair {
    #[aludel(primary_key)]
    a: i32,
    #[aludel(primary_key)]
    b: i32,
}

#[derive(aludel::Model, Debug, Clone, PartialEq)]
#[aludel(table = "singles")]
struct Single {
    #[aludel(primary_key)]
    id: i32,
}

// covers: SES-05, ENG-15
#[tokio::test]
async fn unit_of_work_deletes_are_one_statement_shape_whatever_the_row_count() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    aludel::create_all(&mut c, &[Pair::TABLE, Single::TABLE], Default::default())
        .await
        .unwrap();
    drop(c);
    let mut texts = std::collections::BTreeSet::new();
    let mut id = 0;
    for n in 1..=4 {
        let mut s = db.engine().session();
        let mut objs = Vec::new();
        for _ in 0..n {
            id += 1;
            objs.push((
                aludel::Obj::new(Pair { a: id, b: -id }),
                aludel::Obj::new(Single { id }),
            ));
        }
        for (p, one) in &objs {
            s.add(p).unwrap();
            s.add(one).unwrap();
        }
        s.commit().await.unwrap();
        for (p, one) in &objs {
            s.delete(p).unwrap();
            s.delete(one).unwrap();
        }
        let mark = db.recorder().len();
        s.commit().await.unwrap();
        texts.extend(
            db.recorder()
                .sql_since(mark)
                .into_iter()
                .filter(|q| q.starts_with("DELETE")),
        );
    }
    assert_eq!(texts.len(), 2, "one DELETE text per table: {texts:?}");
    let mut other = db.admin().await.unwrap();
    let left: i64 = other
        .query_one(&sql(
            "SELECT (SELECT count(*) FROM pairs) + (SELECT count(*) FROM singles)",
        ))
        .await
        .unwrap();
    assert_eq!(left, 0, "every row was deleted");
}

#[derive(aludel::Model, Debug, Clone, PartialEq)]
#[aludel(table = "counters")]
struct Counter {
    #[aludel(primary_key)]
    id: i32,
    n: i64,
    label: Option<String>,
}

// covers: SES-03, ENG-15
#[tokio::test]
async fn unit_of_work_updates_are_one_statement_shape_whatever_the_row_count() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    aludel::create_all(&mut c, &[Counter::TABLE], Default::default())
        .await
        .unwrap();
    drop(c);
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let objs: Vec<_> = (1..=10)
        .map(|id| {
            aludel::Obj::new(Counter {
                id,
                n: 0,
                label: None,
            })
        })
        .collect();
    for o in &objs {
        s.add(o).unwrap();
    }
    s.commit().await.unwrap();
    let mut texts = std::collections::BTreeSet::new();
    for n in 1..=4 {
        for o in objs.iter().take(n) {
            let mut w = o.write().unwrap();
            w.n = n as i64;
            w.label = Some(format!("v{n}"));
        }
        let mark = db.recorder().len();
        s.commit().await.unwrap();
        texts.extend(
            db.recorder()
                .sql_since(mark)
                .into_iter()
                .filter(|q| q.starts_with("UPDATE")),
        );
    }
    // Which columns changed decides the SET list; the row count no longer does.
    assert_eq!(texts.len(), 1, "one UPDATE text: {texts:?}");
    let mut other = db.admin().await.unwrap();
    let rows: Vec<(i32, i64, Option<String>)> = other
        .query_as(&sql(
            "SELECT id, n, label FROM counters WHERE n > 0 ORDER BY id",
        ))
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, 4, Some("v4".into())),
            (2, 4, Some("v4".into())),
            (3, 4, Some("v4".into())),
            (4, 4, Some("v4".into())),
        ]
    );
}

// covers: ENG-15
/// The cache is an LRU: 1,000 one-off shapes pass through a bound of 50 while three hot
/// shapes, used all along, stay prepared (prepared once each, never evicted).
#[tokio::test]
async fn hot_statements_survive_a_thousand_one_off_shapes() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .max_size(1)
        .statement_cache_size(50)
        .build()
        .unwrap();
    let mut c = engine.connect().await.unwrap();
    let hot = |k: i32| {
        sql([
            "SELECT $1::int4 * 2",
            "SELECT $1::int4 * 3",
            "SELECT $1::int4 * 5",
        ][k as usize])
        .bind(k)
    };
    let before = engine.statement_cache_stats();
    for i in 0..1_000 {
        let text = AssertSqlSafe(format!("SELECT $1::int4 - {i}"));
        let n: i32 = c.query_one(&Raw::audited(text).bind(i)).await.unwrap();
        assert_eq!(n, 0);
        let k = i % 3;
        let m: i32 = c.query_one(&hot(k)).await.unwrap();
        assert_eq!(m, k * [2, 3, 5][k as usize]);
    }
    let stats = engine.statement_cache_stats();
    let misses = stats.misses - before.misses;
    assert_eq!(misses, 1_000 + 3, "each hot shape prepared once: {stats:?}");
    assert_eq!(stats.evictions - before.evictions, 1_003 - 50, "{stats:?}");
    assert_eq!(stats.hits - before.hits, 1_000 - 3, "{stats:?}");

    let prepared: Vec<String> = c
        .query_as(&sql("SELECT statement FROM pg_prepared_statements"))
        .await
        .unwrap();
    assert!(prepared.len() <= 50, "{} prepared", prepared.len());
    for text in [
        "SELECT $1::int4 * 2",
        "SELECT $1::int4 * 3",
        "SELECT $1::int4 * 5",
    ] {
        assert!(
            prepared.iter().any(|p| p == text),
            "{text} was evicted: {prepared:?}"
        );
    }
    // The most recent one-off shapes are there, the oldest are closed on the server.
    assert!(prepared.iter().any(|p| p == "SELECT $1::int4 - 999"));
    assert!(!prepared.iter().any(|p| p == "SELECT $1::int4 - 0"));
}

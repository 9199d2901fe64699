//! Through a transaction-mode PgBouncer (started by `.ci/pgbouncer-up.sh` when it is not
//! running; never skipped).

use aludel::{Engine, engine::StatementMode, sql};

const PORT: u16 = 6439;

fn pgbouncer_url() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/pgbouncer-up.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(PORT.to_string())
        .status()
        .expect("run .ci/pgbouncer-up.sh");
    assert!(status.success(), "PgBouncer could not be started: {status}");
    format!("postgres://postgres@127.0.0.1:{PORT}/postgres")
}

// covers: ENG-09, ERR-11
#[tokio::test]
async fn cached_mode_behind_a_transaction_pooler_fails_once_not_forever() {
    let url = pgbouncer_url();
    let cached = Engine::builder(&url)
        .max_size(1)
        .statement_mode(StatementMode::Cached)
        .build()
        .unwrap();
    let other = Engine::builder(&url)
        .statement_mode(StatementMode::Unnamed)
        .build()
        .unwrap();
    let q = || sql("SELECT $1::int4 * 2").bind(21_i32);
    assert_eq!(cached.query_one::<i32>(&q()).await.unwrap(), 42);
    // Another client of the pooler drops every named statement of the one server
    // connection: the cached statement is gone on the server, still in aludel's cache.
    other
        .connect()
        .await
        .unwrap()
        .batch_execute("DEALLOCATE ALL")
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(cached.query_one::<i32>(&q()).await.unwrap(), 42);
    }
    // Unnamed, the mode for such poolers, never depends on server-side statements.
    for _ in 0..20 {
        assert_eq!(other.query_one::<i32>(&q()).await.unwrap(), 42);
    }
}

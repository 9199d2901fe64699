//! A background worker: streams a large table in one session and writes processed results in
//! batches with a second session, committing every N rows.
//!
//!     cargo run --example worker --features testing -- 200000 5000
//!
//! Uses DATABASE_URL, else local PostgreSQL on 127.0.0.1:5432, else a throwaway cluster.

#![allow(clippy::print_stdout)]

use aludel::{Engine, Model, create_all, select, sql};
use futures_util::TryStreamExt;

#[derive(Model, Debug)]
#[aludel(table = "aludel_worker_events")]
struct Event {
    #[aludel(primary_key)]
    id: i64,
    amount: i32,
}

#[derive(Model, Debug)]
#[aludel(table = "aludel_worker_totals")]
struct Total {
    #[aludel(primary_key)]
    event_id: i64,
    doubled: i64,
}

#[tokio::main]
async fn main() -> Result<(), aludel::Error> {
    let mut args = std::env::args().skip(1);
    let n: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let every: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let url = aludel::testing::database_url();
    let engine = Engine::builder(&url)
        .max_size(4)
        .application_name("aludel-worker")
        .build()?;

    let mut conn = engine.connect().await?;
    create_all(&mut conn, &[Event::TABLE, Total::TABLE], Default::default()).await?;
    conn.begin().await?;
    conn.execute(&sql("TRUNCATE aludel_worker_events, aludel_worker_totals"))
        .await?;
    conn.execute(
        &sql("INSERT INTO aludel_worker_events SELECT g, (g % 100)::int4 FROM generate_series(1, $1::int8) g")
            .bind(n),
    )
    .await?;
    conn.commit().await?;
    drop(conn);

    // Reader: one session streaming in constant memory.
    let mut reader = engine.session();
    let mut events = reader
        .stream(&select(Event::ALL).order_by(Event::id.asc()))
        .await?;
    // Writer: a second session, committing every `every` rows.
    let mut writer = engine.session();
    let mut batch: Vec<Total> = Vec::with_capacity(every);
    let (mut done, mut commits) = (0u64, 0u64);
    while let Some(e) = events.try_next().await? {
        batch.push(Total {
            event_id: e.id,
            doubled: i64::from(e.amount) * 2,
        });
        if batch.len() == every {
            writer.bulk_insert(&batch).await?;
            writer.commit().await?;
            done += batch.len() as u64;
            commits += 1;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        writer.bulk_insert(&batch).await?;
        writer.commit().await?;
        done += batch.len() as u64;
        commits += 1;
    }
    let check: i64 = engine
        .query_one(&sql("SELECT count(*) FROM aludel_worker_totals"))
        .await?;
    println!("processed={done} commits={commits} rows_in_totals={check}");
    Ok(())
}

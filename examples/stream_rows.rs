//! Streams a table of N narrow rows through a session in constant memory and prints the
//! count and a checksum. Creates the table when absent.
//!
//!     cargo run --release --example stream_rows --features testing -- 1000000
//!     /usr/bin/time -v target/release/examples/stream_rows 1000000   # peak RSS
//!
//! Uses DATABASE_URL, else local PostgreSQL on 127.0.0.1:5432, else a throwaway cluster.

#![allow(clippy::print_stdout)]

use aludel::{Engine, Model, create_all, select, sql};
use futures_util::TryStreamExt;

#[derive(Model, Debug)]
#[aludel(table = "aludel_stream_rows")]
struct Narrow {
    #[aludel(primary_key)]
    id: i64,
    v: i32,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), aludel::Error> {
    let n: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let url = aludel::testing::database_url();
    let engine = Engine::builder(&url)
        .max_size(2)
        .application_name("aludel-stream-rows")
        .build()?;

    let mut conn = engine.connect().await?;
    create_all(&mut conn, &[Narrow::TABLE], Default::default()).await?;
    let have: i64 = conn
        .query_one(&sql("SELECT count(*) FROM aludel_stream_rows"))
        .await?;
    if have != n {
        conn.begin().await?;
        conn.execute(&sql("TRUNCATE aludel_stream_rows")).await?;
        conn.execute(
            &sql("INSERT INTO aludel_stream_rows SELECT g, (g % 1000)::int4 FROM generate_series(1, $1::int8) g")
                .bind(n),
        )
        .await?;
        conn.commit().await?;
    }
    drop(conn);

    let mut session = engine.session();
    let mut rows = session.stream(&select(Narrow::ALL)).await?;
    let (mut count, mut checksum) = (0u64, 0i64);
    while let Some(row) = rows.try_next().await? {
        count += 1;
        checksum = checksum.wrapping_add(row.id * 31 + i64::from(row.v));
    }
    println!("rows={count} checksum={checksum}");
    Ok(())
}

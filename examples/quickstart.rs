//! A first look at aludel: an engine, a transaction, bound values, typed errors.
//!
//! Runs against `DATABASE_URL`, else local PostgreSQL on 127.0.0.1:5432, else a throwaway
//! cluster it starts itself (and says so).
//!
//!     cargo run --example quickstart --features testing

#![allow(clippy::print_stdout)]

use aludel::{Engine, sql};

#[tokio::main]
async fn main() -> Result<(), aludel::Error> {
    let url = aludel::testing::database_url();
    if std::env::var_os("DATABASE_URL").is_none() && !url.contains(":5432/") {
        println!("no PostgreSQL on 127.0.0.1:5432: started a throwaway cluster at {url}");
    }
    let engine = Engine::builder(&url)
        .max_size(4)
        .application_name("aludel-quickstart")
        .build()?;

    let mut conn = engine.connect().await?;
    conn.batch_execute(
        "CREATE TEMP TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text)",
    )
    .await?;
    conn.begin().await?;
    for (email, name) in [("ann@example.com", "Ann"), ("bob@example.com", "Bob")] {
        conn.execute(
            &sql("INSERT INTO users (email, name) VALUES ($1, $2)")
                .bind(email)
                .bind(name),
        )
        .await?;
    }
    conn.commit().await?;

    let dup = conn
        .execute(&sql("INSERT INTO users (email) VALUES ($1)").bind("ann@example.com"))
        .await;
    if let Err(e) = &dup {
        println!(
            "typed error: unique violation = {}, constraint = {:?}",
            e.is_unique_violation(),
            e.constraint()
        );
        println!("  shown without values: {e}");
    }

    let users: Vec<(i32, String, Option<String>)> = conn
        .query_as(&sql("SELECT id, email, name FROM users ORDER BY id"))
        .await?;
    for (id, email, name) in users {
        println!("{id}: {email} ({})", name.as_deref().unwrap_or("-"));
    }
    println!("pool: {:?}", engine.pool_status());
    Ok(())
}

//! The to-do service: `cargo run -p actix-app`, then `curl -d '{"title":"milk"}' -H
//! 'content-type: application/json' http://127.0.0.1:8080/todos`.
//!
//! `DATABASE_URL` (else PostgreSQL on 127.0.0.1:5432, else a throwaway cluster), `HOST`
//! (127.0.0.1), `PORT` (8080). The tables are created at start-up when missing.

use actix_web::{App, HttpServer};
use aludel::{Engine, create_all, schema::CreateOptions};

fn main() -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let engine = Engine::builder(&aludel::testing::database_url())
        .max_size(16)
        .application_name("actix-app")
        .build()
        .map_err(std::io::Error::other)?;
    let mut conn = engine.connect().await.map_err(std::io::Error::other)?;
    create_all(&mut conn, todos::TABLES, CreateOptions::default())
        .await
        .map_err(std::io::Error::other)?;
    drop(conn);

    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080u16);
    let app_engine = engine.clone();
    HttpServer::new(move || App::new().configure(todos::routes(app_engine.clone())))
        .bind((host, port))?
        .run()
        .await?;
    engine.close();
    Ok(())
}

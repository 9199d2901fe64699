//! The Conduit server.
//!
//! Environment:
//! - `DATABASE_URL`: PostgreSQL to use. Unset: `127.0.0.1:5432` when something listens
//!   there, else a throwaway cluster started for this process (and stopped with it).
//! - `HOST` (default `127.0.0.1`) and `PORT` (default `3000`).
//! - `JWT_SECRET`: token signing secret; a fixed development default otherwise (warned about).
//! - `RUST_LOG`: log filter such as `info` or `conduit=debug,aludel=info` (default `info`).
//!
//!     cargo run -p axum-app --release

use std::net::SocketAddr;
use std::time::Duration;

use aludel::Engine;
use aludel::testing::{DEFAULT_DATABASE_URL, TempCluster};
use conduit::{AppState, app, models};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEV_JWT_SECRET: &str = "conduit-development-secret-change-me";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    init_tracing();

    let (url, cluster) = database()?;
    let engine = Engine::builder(&url)
        .max_size(16)
        .application_name("conduit")
        .build()?;
    let mut conn = engine.connect().await?;
    models::create_schema(&mut conn).await?;
    drop(conn);

    let secret = std::env::var("JWT_SECRET").unwrap_or_else(|_| {
        tracing::warn!("JWT_SECRET is unset: signing tokens with a development default");
        DEV_JWT_SECRET.to_owned()
    });
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|e| format!("PORT={p}: {e}"))?,
        Err(_) => 3000,
    };
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("HOST={host}: {e}"))?;

    let router = app(AppState::new(engine.clone(), secret.as_bytes()));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("listening on http://{addr}/api");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;

    tracing::info!("shutting down: closing the connection pool");
    engine.close();
    drop(cluster); // stops and deletes a throwaway cluster, if one was started
    Ok(())
}

/// The database URL, and the throwaway cluster behind it when one had to be started.
fn database() -> Result<(String, Option<TempCluster>), Box<dyn std::error::Error + Send + Sync>> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok((url, None));
    }
    let local = SocketAddr::from(([127, 0, 0, 1], 5432));
    if std::net::TcpStream::connect_timeout(&local, Duration::from_secs(1)).is_ok() {
        return Ok((DEFAULT_DATABASE_URL.to_owned(), None));
    }
    let cluster = TempCluster::start().map_err(|e| {
        format!("no DATABASE_URL, nothing on 127.0.0.1:5432, and no throwaway cluster: {e}")
    })?;
    let url = cluster.url();
    tracing::warn!(%url, "no DATABASE_URL and nothing on 127.0.0.1:5432: started a throwaway PostgreSQL cluster (deleted at exit)");
    Ok((url, Some(cluster)))
}

fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

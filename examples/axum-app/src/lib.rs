//! Conduit, the RealWorld API, on axum and aludel.
//!
//! - [`models`]: the seven tables as `#[derive(Model)]` structs, created by `create_all`.
//! - [`queries`]: article, profile and comment loading in a fixed number of statements.
//! - [`routes`]: the handlers; each request runs in one transaction (aludel's
//!   `TransactionLayer` commits on 2xx/3xx and rolls back otherwise) through a `DbSession`.
//! - [`auth`]: argon2 password hashes, JWTs, the `AuthUser`/`MaybeUser` extractors.
//!
//! [`app`] builds the router; `main.rs` adds configuration, start-up and graceful shutdown.

pub mod auth;
pub mod error;
pub mod json;
pub mod models;
pub mod queries;
pub mod routes;
pub mod views;

use aludel::web::axum::TransactionLayer;
use aludel::{Engine, SessionFactory};
use axum::Router;
use axum::extract::FromRef;

use crate::auth::Jwt;

/// What handlers share: the engine, the session factory and the token keys.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The pooled engine (the export stream checks its own connection out of it).
    pub engine: Engine,
    /// Per-request sessions come from here.
    pub sessions: SessionFactory,
    /// Token signing and verification.
    pub jwt: Jwt,
}

impl AppState {
    /// State over `engine`, signing tokens with `jwt_secret`.
    pub fn new(engine: Engine, jwt_secret: &[u8]) -> Self {
        AppState {
            sessions: engine.session_builder(),
            engine,
            jwt: Jwt::new(jwt_secret),
        }
    }
}

impl FromRef<AppState> for SessionFactory {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}

impl FromRef<AppState> for Jwt {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

impl FromRef<AppState> for Engine {
    fn from_ref(state: &AppState) -> Self {
        state.engine.clone()
    }
}

/// The whole API under `/api`, one transaction per request.
pub fn app(state: AppState) -> Router {
    let layer = TransactionLayer::new(state.sessions.clone());
    Router::new()
        .nest("/api", routes::router())
        .fallback(|| async { error::ApiError::NotFound("route") })
        .layer(layer)
        .with_state(state)
}

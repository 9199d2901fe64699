//! Conduit, the RealWorld API, on axum and aludel.
//!
//! - [`models`]: the seven tables as `#[derive(Model)]` structs.
//! - [`db`]: the migrations in `migrations/`, applied at start-up, and the `db` subcommand.
//! - [`queries`]: article, profile and comment loading in a fixed number of statements.
//! - [`routes`]: the handlers; each request runs in one transaction (aludel's
//!   `TransactionLayer` commits on 2xx/3xx and rolls back otherwise) through a `DbSession`.
//! - [`auth`]: argon2 password hashes, JWTs, the `AuthUser`/`MaybeUser` extractors.
//!
//! [`app`] builds the router; `main.rs` adds configuration, start-up and graceful shutdown.

pub mod auth;
pub mod db;
pub mod error;
pub mod hashing;
pub mod json;
pub mod models;
pub mod queries;
pub mod routes;
pub mod validate;
pub mod views;

use aludel::web::axum::TransactionLayer;
use aludel::{Engine, SessionFactory};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};

pub use crate::auth::Jwt;

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
        AppState::with_jwt(engine, Jwt::new(jwt_secret))
    }

    /// State over `engine`, signing tokens with `jwt` (e.g. [`Jwt::random`]).
    pub fn with_jwt(engine: Engine, jwt: Jwt) -> Self {
        AppState {
            sessions: engine.session_builder(),
            engine,
            jwt,
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

/// The whole API under `/api`, one transaction per request. Request bodies over
/// [`validate::REQUEST_BODY_MAX`] answer 413; unknown routes 404 and known routes with
/// another method 405, both in the API's error shape.
pub fn app(state: AppState) -> Router {
    let layer = TransactionLayer::new(state.sessions.clone());
    Router::new()
        .nest("/api", routes::router())
        .fallback(|| async { error::ApiError::NotFound("route") })
        .layer(layer)
        .layer(DefaultBodyLimit::max(validate::REQUEST_BODY_MAX))
        .with_state(state)
}

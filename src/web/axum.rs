//! axum integration (feature `axum`): the [`DbSession`] extractor, the [`TransactionLayer`]
//! (a transaction per request, committed before the response is sent) and
//! `IntoResponse for aludel::Error`.
//!
//! The extractor finds the engine through `SessionFactory: FromRef<S>`: use the factory as the
//! router's state, or implement (or derive) `FromRef<AppState> for SessionFactory`. A factory
//! comes from [`Engine::session_builder`](crate::Engine::session_builder) or
//! `SessionFactory::from(engine)`.
//!
//! ```no_run
//! use aludel::web::axum::{DbSession, TransactionLayer};
//! use aludel::{sql, Engine, SessionFactory};
//! use axum::{routing::post, Router};
//!
//! async fn create_tag(mut db: DbSession, name: String) -> aludel::Result<&'static str> {
//!     db.execute(&sql("INSERT INTO tags (name) VALUES ($1)").bind(name)).await?;
//!     Ok("created") // 200: the layer commits before the client gets the response
//! }
//!
//! # fn demo() -> aludel::Result<()> {
//! let factory: SessionFactory = Engine::new("postgres://postgres@127.0.0.1:5432/app")?.into();
//! let app: Router = Router::new()
//!     .route("/tags", post(create_tag))
//!     .layer(TransactionLayer::new(factory.clone()))
//!     .with_state(factory);
//! # let _ = app; Ok(()) }
//! ```
//!
//! Without the layer, the same handler gets a session of its own and must call
//! [`commit`](crate::AsyncSession::commit) itself.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode, header};

use super::{RequestSession, error_response_parts, outcome_response};
use crate::error::Error;
use crate::session::SessionFactory;

pub use super::{DbSession, Rejection};

impl<S> FromRequestParts<S> for DbSession
where
    SessionFactory: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        DbSession::extract(parts.extensions.get::<RequestSession>(), || {
            Some(SessionFactory::from_ref(state))
        })
    }
}

fn json_response(status: u16, body: String) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        json_response(self.status(), self.json())
    }
}

/// [`super::status_for`] and a JSON body `{"error": "<category>"}` without SQL text or values;
/// the full error is logged on target `aludel::web` (ERROR for 5xx, INFO for 4xx).
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = error_response_parts(&self);
        json_response(status, body)
    }
}

/// A tower layer giving each request a transaction: the [`DbSession`] extracted in the
/// handler is the request's session, committed after the handler when the response status is
/// 2xx or 3xx and rolled back otherwise, before the response leaves the layer.
///
/// - A failed commit replaces the response with the error's response (e.g. 409 for a unique
///   violation found at COMMIT by a deferred constraint): the client never gets a 2xx for a
///   write that did not commit.
/// - A `DbSession` still alive after the handler (moved into a spawned task) turns the
///   response into a 500; nothing is committed.
/// - A handler that panics, or a request future dropped (client gone, timeout), drops the
///   session: its connection rolls back (or, mid-statement, is cancelled and discarded).
///
/// The session is created per request but opens no connection until its first statement,
/// so routes that never touch the database cost nothing. Add it with `Router::layer` (or
/// `route_layer`) around routes that extract [`DbSession`].
///
/// ```no_run
/// # fn demo(engine: aludel::Engine) {
/// use aludel::web::axum::TransactionLayer;
/// let factory = engine.session_builder().expire_on_commit(false);
/// let app: axum::Router = axum::Router::new()
///     // .route(...)
///     .layer(TransactionLayer::new(factory.clone()))
///     .with_state(factory);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TransactionLayer {
    factory: SessionFactory,
}

impl TransactionLayer {
    /// A layer whose request sessions come from `factory`.
    pub fn new(factory: SessionFactory) -> Self {
        TransactionLayer { factory }
    }
}

impl<S> tower_layer::Layer<S> for TransactionLayer {
    type Service = TransactionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TransactionService {
            inner,
            factory: self.factory.clone(),
        }
    }
}

/// The service [`TransactionLayer`] wraps around a route or router.
#[derive(Debug, Clone)]
pub struct TransactionService<S> {
    inner: S,
    factory: SessionFactory,
}

impl<S, B> tower_service::Service<Request<B>> for TransactionService<S>
where
    S: tower_service::Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let session = RequestSession::new(&self.factory);
        req.extensions_mut().insert(session.clone());
        // The clone that was driven to readiness serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // An `Err` from the inner service drops `session`, which rolls back.
            let res = inner.call(req).await?;
            let outcome = session.finish(res.status().as_u16()).await;
            Ok(match outcome_response(outcome) {
                None => res,
                Some((status, body)) => json_response(status, body),
            })
        })
    }
}

//! actix-web integration (feature `actix`): the [`DbSession`] extractor, the
//! [`TransactionMiddleware`] (a transaction per request, committed before the response is
//! sent) and `ResponseError for aludel::Error`.
//!
//! The extractor finds the engine in the app data: `web::Data<SessionFactory>` (or a plain
//! `SessionFactory` given to `App::app_data`). A factory comes from
//! [`Engine::session_builder`](crate::Engine::session_builder) or `SessionFactory::from(engine)`.
//!
//! ```no_run
//! use actix_web::{web, App, HttpResponse};
//! use aludel::web::actix::{DbSession, TransactionMiddleware};
//! use aludel::{sql, Engine, SessionFactory};
//!
//! async fn create_tag(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
//!     db.execute(&sql("INSERT INTO tags (name) VALUES ($1)").bind(name)).await?;
//!     Ok(HttpResponse::Created().finish()) // the middleware commits before the client sees it
//! }
//!
//! # fn demo() -> aludel::Result<()> {
//! let factory: SessionFactory = Engine::new("postgres://postgres@127.0.0.1:5432/app")?.into();
//! let app = App::new()
//!     .app_data(web::Data::new(factory.clone()))
//!     .wrap(TransactionMiddleware::new(factory))
//!     .route("/tags", web::post().to(create_tag));
//! # let _ = app; Ok(()) }
//! ```
//!
//! Without the middleware, the same handler gets a session of its own and must call
//! [`commit`](crate::AsyncSession::commit) itself.
//!
//! # Client disconnects
//! actix-web 4's `HttpServer` allows HTTP/1 half-closed connections by default
//! (`h1_allow_half_closed(true)`): a client that goes away after sending its request does
//! **not** cancel the handler. The handler runs to its end and, under the middleware, its
//! transaction commits on a 2xx/3xx status even though nobody reads the response. For
//! cancel-on-disconnect, build the server with `.h1_allow_half_closed(false)`: actix then
//! drops the request's future when it sees the client's EOF, which drops the session, and
//! the transaction rolls back (a statement in flight is cancelled and its connection
//! drained). Either way nothing is left open on the server.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

use super::{RequestSession, error_response_parts, outcome_response};
use crate::error::Error;
use crate::session::SessionFactory;

pub use super::{DbSession, Rejection};

impl FromRequest for DbSession {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        ready(DbSession::extract(
            extensions.get::<RequestSession>(),
            || {
                req.app_data::<web::Data<SessionFactory>>()
                    .map(|d| d.get_ref().clone())
                    .or_else(|| req.app_data::<SessionFactory>().cloned())
            },
        ))
    }
}

fn json_response(status: u16) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::build(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    b.insert_header(ContentType::json());
    b
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        json_response(self.status()).body(self.json())
    }
}

/// [`super::status_for`] and a JSON body `{"error": "<category>"}` without SQL text or values;
/// the full error is logged on target `aludel::web` (ERROR for 5xx, INFO for 4xx).
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(super::status_for(self)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let (status, body) = error_response_parts(self);
        json_response(status).body(body)
    }
}

/// Middleware giving each request a transaction: the [`DbSession`] extracted in the handler
/// is the request's session, committed after the handler when the response status is 2xx or
/// 3xx and rolled back otherwise, before the response leaves the middleware.
///
/// - A failed commit replaces the response with the error's response (e.g. 409 for a unique
///   violation found at COMMIT by a deferred constraint): the client never gets a 2xx for a
///   write that did not commit.
/// - A `DbSession` still alive after the handler (moved into a spawned task) turns the
///   response into a 500; nothing is committed.
/// - A request future dropped (client gone, timeout) drops the session: its connection rolls
///   back (or, mid-statement, is cancelled and discarded).
///
/// The session opens no connection until its first statement.
///
/// ```no_run
/// # fn demo(engine: aludel::Engine) {
/// use aludel::web::actix::TransactionMiddleware;
/// let factory = engine.session_builder();
/// let app = actix_web::App::new()
///     .app_data(actix_web::web::Data::new(factory.clone()))
///     .wrap(TransactionMiddleware::new(factory));
/// # let _ = app; }
/// ```
#[derive(Debug, Clone)]
pub struct TransactionMiddleware {
    factory: SessionFactory,
}

impl TransactionMiddleware {
    /// Middleware whose request sessions come from `factory`.
    pub fn new(factory: SessionFactory) -> Self {
        TransactionMiddleware { factory }
    }
}

impl<S, B> Transform<S, ServiceRequest> for TransactionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = TransactionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(TransactionService {
            service: Rc::new(service),
            factory: self.factory.clone(),
        }))
    }
}

/// The service [`TransactionMiddleware`] wraps around an app, scope or resource.
#[derive(Debug)]
pub struct TransactionService<S> {
    service: Rc<S>,
    factory: SessionFactory,
}

impl<S, B> Service<ServiceRequest> for TransactionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let session = RequestSession::new(&self.factory);
        req.extensions_mut().insert(session.clone());
        let fut = self.service.call(req);
        Box::pin(async move {
            // An `Err` drops `session` (and the request with its copy), which rolls back.
            let res = fut.await?;
            // The response keeps the request (and its extensions) alive: take the layer's
            // handle out so that only a leaked `DbSession` can still hold the session.
            res.request().extensions_mut().remove::<RequestSession>();
            let outcome = session.finish(res.status().as_u16()).await;
            Ok(match outcome_response(outcome) {
                None => res.map_into_left_body(),
                Some((status, body)) => {
                    let (req, _) = res.into_parts();
                    ServiceResponse::new(req, json_response(status).body(body))
                        .map_into_right_body()
                }
            })
        })
    }
}

//! API errors: every failure answers `{"errors": {"<key>": ["<message>"]}}` with the status
//! the RealWorld suite expects.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error a handler answers with.
#[derive(Debug)]
pub enum ApiError {
    /// 401 `token: is missing`: a protected route was called without a token.
    MissingToken,
    /// 401 `token: is invalid`: a token that does not verify, or names no user.
    InvalidToken,
    /// 401 `credentials: invalid`: wrong email or password.
    InvalidCredentials,
    /// 403 `<what>: forbidden`: not the owner.
    Forbidden(&'static str),
    /// 404 `<what>: not found`.
    NotFound(&'static str),
    /// 409 `<field>: has already been taken`.
    Taken(&'static str),
    /// 422 with one message per field.
    Validation(Vec<(&'static str, String)>),
    /// 400 `<part>: <message>`: a request the server cannot read (a path that is not UTF-8).
    BadRequest(&'static str, &'static str),
    /// 405 `method: not allowed`.
    MethodNotAllowed,
    /// 413 `body: is too large`.
    TooLarge,
    /// 415 `body: must be JSON (Content-Type: application/json)`.
    UnsupportedMediaType,
    /// A database error: aludel's mapping (409, 422, 413, 404, 503, 504, 500) without SQL in
    /// the body.
    Db(aludel::Error),
    /// 500: an internal failure (hashing, token signing).
    Internal(String),
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 422 `<field>: can't be blank`.
    pub fn blank(field: &'static str) -> Self {
        ApiError::Validation(vec![(field, "can't be blank".to_owned())])
    }

    /// 422 with one field and message.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![(field, message.into())])
    }
}

impl From<aludel::Error> for ApiError {
    fn from(e: aludel::Error) -> Self {
        ApiError::Db(e)
    }
}

fn body(key: &str, message: &str) -> serde_json::Value {
    json!({ "errors": { key: [message] } })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::MissingToken => (StatusCode::UNAUTHORIZED, body("token", "is missing")),
            ApiError::InvalidToken => (StatusCode::UNAUTHORIZED, body("token", "is invalid")),
            ApiError::InvalidCredentials => {
                (StatusCode::UNAUTHORIZED, body("credentials", "invalid"))
            }
            ApiError::Forbidden(what) => (StatusCode::FORBIDDEN, body(what, "forbidden")),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, body(what, "not found")),
            ApiError::Taken(field) => (StatusCode::CONFLICT, body(field, "has already been taken")),
            ApiError::BadRequest(part, message) => (StatusCode::BAD_REQUEST, body(part, message)),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                body("method", "not allowed"),
            ),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, body("body", "is too large")),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                body("body", "must be JSON (Content-Type: application/json)"),
            ),
            ApiError::Validation(fields) => {
                let mut errors = serde_json::Map::new();
                for (field, message) in fields {
                    match errors
                        .entry(field)
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                    {
                        serde_json::Value::Array(list) => list.push(message.into()),
                        other => *other = json!([message]),
                    }
                }
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "errors": errors }),
                )
            }
            // aludel's own mapping and logging; its body is `{"error": "<category>"}`, which
            // we re-wrap in the Conduit shape.
            ApiError::Db(e) => {
                let status = StatusCode::from_u16(aludel::web::status_for(&e))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let category = aludel::web::error_category(&e);
                if status.is_server_error() {
                    tracing::error!(error = %e, "database error");
                } else {
                    tracing::info!(error = %e, "database error");
                }
                (status, body("database", category))
            }
            ApiError::Internal(what) => {
                tracing::error!(error = %what, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    body("server", "internal error"),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

//! JSON in and out: body, query and path extractors whose rejections use the API's error
//! shape, the "absent vs null" helper for partial updates, and the timestamp format.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::error::Category;

use crate::error::ApiError;

/// A JSON request body. Unlike `axum::Json`, every rejection answers in the API's error shape
/// and none echoes Rust type names or the client's values: a body over
/// [`REQUEST_BODY_MAX`](crate::validate::REQUEST_BODY_MAX) is 413, a body that is not JSON
/// 422 `body: is not valid JSON`, a field of the wrong type 422 `body: user.email: has the
/// wrong type`, a missing content type 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::TooLarge);
            }
            Err(_) => return Err(ApiError::BadRequest("body", "could not be read")),
        };
        parse(&bytes).map(ApiJson)
    }
}

/// `application/json` or `application/<something>+json`, parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim();
    let Some((kind, sub)) = mime.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Deserializes a body; errors name the JSON path and the kind of problem only.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        describe(e.inner(), &path)
    })?;
    de.end().map_err(|e| describe(&e, "."))?;
    Ok(value)
}

/// `body: is not valid JSON`, `body: <path>: is missing`, `body: <path>: has the wrong
/// type`, or `body: <path>: is invalid`: never serde's text, which names Rust types and
/// repeats values.
fn describe(e: &serde_json::Error, path: &str) -> ApiError {
    if e.classify() != Category::Data {
        return ApiError::invalid("body", "is not valid JSON");
    }
    let message = e.to_string();
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        return ApiError::invalid("body", format!("{}: is missing", join(path, field)));
    }
    let what = if message.starts_with("invalid type") {
        "has the wrong type"
    } else {
        "is invalid"
    };
    let at = if path == "." { "body" } else { path };
    ApiError::invalid("body", format!("{at}: {what}"))
}

fn join(path: &str, field: &str) -> String {
    if path == "." || path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// `axum::extract::Query`, but a query string that does not parse answers 422
/// `{"errors": {"query": ["is invalid"]}}` instead of a plain-text 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(_) => Err(ApiError::invalid("query", "is invalid")),
        }
    }
}

/// `axum::extract::Path`, but a segment that is not UTF-8 (`%FF`) answers 400
/// `{"errors": {"path": ["is not valid UTF-8"]}}` instead of a plain-text 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e))
                if matches!(e.kind(), ErrorKind::InvalidUtf8InPathParam { .. }) =>
            {
                Err(ApiError::BadRequest("path", "is not valid UTF-8"))
            }
            Err(_) => Err(ApiError::NotFound("route")),
        }
    }
}

/// For `#[serde(default, deserialize_with = "present")]` on an `Option<Option<T>>` field:
/// absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`. serde alone merges
/// the first two, and `PUT` bodies must tell them apart.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// RFC 3339 in UTC with milliseconds (`2026-01-02T03:04:05.678Z`). Always applied to values
/// read back from the database, so a timestamp prints the same on every read.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

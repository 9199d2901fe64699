//! JSON in and out: a body extractor whose rejections use the API's error shape, the
//! "absent vs null" helper for partial updates, and the timestamp format.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{Deserialize, DeserializeOwned, Deserializer};

use crate::error::ApiError;

/// `axum::Json`, but a body that does not parse answers 422 `{"errors": {"body": [...]}}`
/// instead of axum's plain-text 400/415/422.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::invalid("body", rejection.body_text())),
        }
    }
}

/// `axum::extract::Query`, but a query string that does not parse answers 422
/// `{"errors": {"query": [...]}}` instead of a plain-text 400.
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
            Err(rejection) => Err(ApiError::invalid("query", rejection.body_text())),
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

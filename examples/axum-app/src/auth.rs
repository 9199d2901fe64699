//! Authentication: argon2id password hashes, HS256 JWTs carried as `Authorization: Token
//! <jwt>`, and the two extractors handlers use, [`AuthUser`] (token required) and
//! [`MaybeUser`] (token optional).
//!
//! The token's subject is the user's id, not the username: a token stays valid when the
//! user renames themselves. A token whose user no longer exists is a 401 like any invalid
//! token: the extractors look the user up in the request's session (a primary-key `get`,
//! which later `get`s of the same user in the handler answer from the identity map).
//!
//! Password hashing is bounded: argon2id holds ~19 MiB per hash, so hashes run on a fixed
//! pool of threads with memory of their own ([`crate::hashing`]); other requests wait for a
//! thread without holding a database connection.

use std::sync::Arc;

use aludel::SessionFactory;
use aludel::web::axum::DbSession;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::models::User;

/// How long a token stays valid.
const TOKEN_LIFETIME_SECS: i64 = 60 * 60 * 24 * 30;

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct Jwt {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jwt { .. }")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string (JWT subjects are strings).
    sub: String,
    exp: i64,
    iat: i64,
}

impl Jwt {
    /// Keys from a shared secret.
    pub fn new(secret: &[u8]) -> Self {
        Jwt {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
        }
    }

    /// Keys from 32 random bytes: tokens verify only in this process.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        Jwt::new(&secret)
    }

    /// A token for `user_id`.
    pub fn issue(&self, user_id: i64) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + TOKEN_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&Header::default(), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing a token: {e}")))
    }

    /// The user id in a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Result<i64, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &Validation::default())
            .map_err(|_| ApiError::InvalidToken)?;
        data.claims.sub.parse().map_err(|_| ApiError::InvalidToken)
    }
}

/// Hashes a password with argon2id and a random salt, on one of the bounded hashing threads
/// (see [`crate::hashing`]): it takes tens of milliseconds and 19 MiB by design.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    crate::hashing::hash(password).await
}

/// Whether `password` matches the stored PHC string (on a hashing thread, like
/// [`hash_password`]).
pub async fn verify_password(password: String, stored: String) -> Result<bool, ApiError> {
    crate::hashing::verify(password, stored).await
}

/// The token of a request: `Authorization: Token <jwt>` (`Bearer` is accepted too).
fn token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The authenticated user's id; rejects with 401 when the token is missing or invalid.
/// List it before any other extractor so that 401 comes before 404 and 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser(pub i64);

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Jwt: FromRef<S>,
    SessionFactory: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = token(parts).ok_or(ApiError::MissingToken)?;
        let id = Jwt::from_ref(state).verify(token)?;
        existing_user(parts, state, id).await.map(AuthUser)
    }
}

/// `id` when that user still exists (looked up in the request's session), else 401.
async fn existing_user<S>(parts: &mut Parts, state: &S, id: i64) -> Result<i64, ApiError>
where
    S: Send + Sync,
    SessionFactory: FromRef<S>,
{
    let mut db = DbSession::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match db.get::<User>(id).await? {
        Some(_) => Ok(id),
        None => Err(ApiError::InvalidToken),
    }
}

/// The viewer's id when a valid token came with the request. A missing token is an anonymous
/// viewer; an invalid one (or one whose user is gone) is still a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeUser(pub Option<i64>);

impl<S> FromRequestParts<S> for MaybeUser
where
    S: Send + Sync,
    Jwt: FromRef<S>,
    SessionFactory: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match token(parts) {
            None => Ok(MaybeUser(None)),
            Some(token) => {
                let id = Jwt::from_ref(state).verify(token)?;
                existing_user(parts, state, id)
                    .await
                    .map(|id| MaybeUser(Some(id)))
            }
        }
    }
}

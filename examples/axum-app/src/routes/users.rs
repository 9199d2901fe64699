//! `POST /users`, `POST /users/login`, `GET /user`, `PUT /user`.
//!
//! Registration and updates go through the session's unit of work: `add` + `flush` is the
//! `INSERT … RETURNING *`, and writing to a loaded object then flushing updates exactly the
//! changed columns (the partial UPDATE with a dynamic column set, without building one).

use aludel::web::axum::DbSession;
use aludel::{Generated, Obj, func::call as func, query::Expr, query::value, select};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{AuthUser, hash_password, verify_password};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, present};
use crate::models::{
    USERS_EMAIL_KEY, USERS_EMAIL_LOWER_KEY, USERS_USERNAME_KEY, USERS_USERNAME_LOWER_KEY, User,
};
use crate::validate::{BIO_MAX, Checks, EMAIL_MAX, IMAGE_MAX, PASSWORD_MAX, USERNAME_MAX};
use crate::views::UserView;

/// Passwords shorter than this are refused on update (NIST 800-63B minimum).
const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, Deserialize)]
pub(super) struct Wrapped<T> {
    user: T,
}

#[derive(Debug, Deserialize)]
pub(super) struct Register {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Login {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct UpdateUser {
    #[serde(default, deserialize_with = "present")]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    password: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    image: Option<Option<String>>,
}

fn user_response(state: &AppState, user: &User) -> ApiResult<Json<Value>> {
    let view = UserView {
        email: user.email.clone(),
        token: state.jwt.issue(user.id.cloned()?)?,
        username: user.username.clone(),
        bio: user.bio.clone(),
        image: user.image.clone(),
    };
    Ok(Json(json!({ "user": view })))
}

/// A unique violation on `users` names its constraint: 409 on the right field (the
/// case-sensitive constraint or the case-insensitive index).
fn taken_or(e: aludel::Error) -> ApiError {
    if !e.is_unique_violation() {
        return ApiError::Db(e);
    }
    match e.constraint() {
        Some(USERS_USERNAME_KEY | USERS_USERNAME_LOWER_KEY) => ApiError::Taken("username"),
        Some(USERS_EMAIL_KEY | USERS_EMAIL_LOWER_KEY) => ApiError::Taken("email"),
        _ => ApiError::Db(e),
    }
}

/// `lower(column)`, for the case-insensitive lookups the unique indexes on `lower(…)` serve.
fn lower(e: Expr<String>) -> Expr<String> {
    func("lower", vec![e.into()])
}

/// `POST /api/users`: 201 with the new user and a token.
pub(super) async fn register(
    State(state): State<AppState>,
    mut db: DbSession,
    ApiJson(body): ApiJson<Wrapped<Register>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut checks = Checks::new();
    let username = checks.required("username", body.user.username, USERNAME_MAX);
    let email = checks.required("email", body.user.email, EMAIL_MAX);
    let password = checks.required("password", body.user.password, PASSWORD_MAX);
    checks.finish()?;
    let user = Obj::new(User {
        id: Generated::unset(),
        username,
        email,
        password_hash: hash_password(password).await?,
        bio: None,
        image: None,
        created_at: Generated::unset(),
        updated_at: Generated::unset(),
    });
    db.add(&user)?;
    db.flush().await.map_err(taken_or)?;
    let stored = user.get()?;
    Ok((StatusCode::CREATED, user_response(&state, &stored)?))
}

/// `POST /api/users/login`: 401 `credentials: invalid` for an unknown email or a wrong
/// password alike. The email matches in any case (`lower(email) = lower($1)`).
pub(super) async fn login(
    State(state): State<AppState>,
    mut db: DbSession,
    ApiJson(body): ApiJson<Wrapped<Login>>,
) -> ApiResult<Json<Value>> {
    let mut checks = Checks::new();
    let email = checks.required("email", body.user.email, EMAIL_MAX);
    let password = checks.required("password", body.user.password, PASSWORD_MAX);
    checks.finish()?;
    let user = db
        .one_or_none(&select(User::ALL).filter(lower(User::email.expr()).eq(lower(value(email)))))
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    // Give the connection back before waiting for a hashing permit: a burst of logins must
    // not hold the pool while it queues for the CPU (the read sent no BEGIN; nothing to
    // commit).
    db.commit().await?;
    if !verify_password(password, user.password_hash.clone()).await? {
        return Err(ApiError::InvalidCredentials);
    }
    user_response(&state, &user)
}

/// `GET /api/user`: the token's user, through the identity map (`get` by primary key).
pub(super) async fn current(
    AuthUser(me): AuthUser,
    State(state): State<AppState>,
    mut db: DbSession,
) -> ApiResult<Json<Value>> {
    let user = db.get::<User>(me).await?.ok_or(ApiError::InvalidToken)?;
    let user = user.get()?;
    user_response(&state, &user)
}

/// `PUT /api/user`: absent fields stay, `null`/`""` clear `bio` and `image`, and `email`,
/// `username` and `password` may not be blank (nor the password short).
pub(super) async fn update(
    AuthUser(me): AuthUser,
    State(state): State<AppState>,
    mut db: DbSession,
    ApiJson(body): ApiJson<Wrapped<UpdateUser>>,
) -> ApiResult<Json<Value>> {
    let changes = body.user;
    let mut checks = Checks::new();
    for (field, value, max) in [
        ("username", &changes.username, USERNAME_MAX),
        ("email", &changes.email, EMAIL_MAX),
    ] {
        match value {
            Some(v) if v.as_deref().is_none_or(|v| v.trim().is_empty()) => {
                checks.push(field, "can't be blank");
            }
            Some(v) => checks.text(field, v.as_deref(), max),
            None => {}
        }
    }
    checks.text(
        "bio",
        changes.bio.as_ref().and_then(Option::as_deref),
        BIO_MAX,
    );
    checks.text(
        "image",
        changes.image.as_ref().and_then(Option::as_deref),
        IMAGE_MAX,
    );
    let mut new_password = None;
    match &changes.password {
        None => {}
        Some(None) => checks.push("password", "can't be blank"),
        Some(Some(p)) if p.is_empty() => checks.push("password", "can't be blank"),
        Some(Some(p)) if p.chars().count() < MIN_PASSWORD_LEN => checks.push(
            "password",
            format!("is too short (minimum is {MIN_PASSWORD_LEN} characters)"),
        ),
        Some(Some(p)) => {
            checks.text("password", Some(p), PASSWORD_MAX);
            new_password = Some(p.clone());
        }
    }
    checks.finish()?;
    let new_hash = match new_password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };

    let user = db.get::<User>(me).await?.ok_or(ApiError::InvalidToken)?;
    {
        let mut u = user.write()?;
        if let Some(Some(username)) = changes.username {
            u.username = username;
        }
        if let Some(Some(email)) = changes.email {
            u.email = email;
        }
        if let Some(hash) = new_hash {
            u.password_hash = hash;
        }
        if let Some(bio) = changes.bio {
            u.bio = bio.filter(|b| !b.is_empty());
        }
        if let Some(image) = changes.image {
            u.image = image.filter(|i| !i.is_empty());
        }
        u.updated_at = Utc::now().into();
    }
    // One UPDATE of the changed columns only, RETURNING the stored row.
    db.flush().await.map_err(taken_or)?;
    let stored = user.get()?;
    user_response(&state, &stored)
}

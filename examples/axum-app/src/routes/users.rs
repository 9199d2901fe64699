//! `POST /users`, `POST /users/login`, `GET /user`, `PUT /user`.
//!
//! Registration and updates go through the session's unit of work: `add` + `flush` is the
//! `INSERT … RETURNING *`, and writing to a loaded object then flushing updates exactly the
//! changed columns (the partial UPDATE with a dynamic column set, without building one).

use aludel::web::axum::DbSession;
use aludel::{Obj, select};
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
use crate::models::{USERS_EMAIL_KEY, USERS_USERNAME_KEY, User};
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

/// A required text field: present and not blank.
fn required(
    value: Option<String>,
    field: &'static str,
    errors: &mut Vec<(&'static str, String)>,
) -> String {
    match value {
        Some(v) if !v.trim().is_empty() => v,
        _ => {
            errors.push((field, "can't be blank".to_owned()));
            String::new()
        }
    }
}

fn user_response(state: &AppState, user: &User) -> ApiResult<Json<Value>> {
    let view = UserView {
        email: user.email.clone(),
        token: state.jwt.issue(user.id)?,
        username: user.username.clone(),
        bio: user.bio.clone(),
        image: user.image.clone(),
    };
    Ok(Json(json!({ "user": view })))
}

/// A unique violation on `users` names its constraint: 409 on the right field.
fn taken_or(e: aludel::Error) -> ApiError {
    match e.constraint() {
        Some(USERS_USERNAME_KEY) if e.is_unique_violation() => ApiError::Taken("username"),
        Some(USERS_EMAIL_KEY) if e.is_unique_violation() => ApiError::Taken("email"),
        _ => ApiError::Db(e),
    }
}

/// `POST /api/users`: 201 with the new user and a token.
pub(super) async fn register(
    State(state): State<AppState>,
    mut db: DbSession,
    ApiJson(body): ApiJson<Wrapped<Register>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut errors = Vec::new();
    let username = required(body.user.username, "username", &mut errors);
    let email = required(body.user.email, "email", &mut errors);
    let password = required(body.user.password, "password", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let now = Utc::now(); // placeholders: server defaults fill them, RETURNING brings them back
    let user = Obj::new(User {
        id: 0,
        username,
        email,
        password_hash: hash_password(password).await?,
        bio: None,
        image: None,
        created_at: now,
        updated_at: now,
    });
    db.add(&user)?;
    db.flush().await.map_err(taken_or)?;
    let stored = user.get()?;
    Ok((StatusCode::CREATED, user_response(&state, &stored)?))
}

/// `POST /api/users/login`: 401 `credentials: invalid` for an unknown email or a wrong
/// password alike.
pub(super) async fn login(
    State(state): State<AppState>,
    mut db: DbSession,
    ApiJson(body): ApiJson<Wrapped<Login>>,
) -> ApiResult<Json<Value>> {
    let mut errors = Vec::new();
    let email = required(body.user.email, "email", &mut errors);
    let password = required(body.user.password, "password", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let user = db
        .one_or_none(&select(User::ALL).filter(User::email.eq(email)))
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
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
    let mut errors = Vec::new();
    for (field, value) in [("username", &changes.username), ("email", &changes.email)] {
        if let Some(v) = value {
            if v.as_deref().is_none_or(|v| v.trim().is_empty()) {
                errors.push((field, "can't be blank".to_owned()));
            }
        }
    }
    let mut new_hash = None;
    match &changes.password {
        None => {}
        Some(None) => errors.push(("password", "can't be blank".to_owned())),
        Some(Some(p)) if p.is_empty() => errors.push(("password", "can't be blank".to_owned())),
        Some(Some(p)) if p.chars().count() < MIN_PASSWORD_LEN => errors.push((
            "password",
            format!("is too short (minimum is {MIN_PASSWORD_LEN} characters)"),
        )),
        Some(Some(p)) => new_hash = Some(hash_password(p.clone()).await?),
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }

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
        u.updated_at = Utc::now();
    }
    // One UPDATE of the changed columns only, RETURNING the stored row.
    db.flush().await.map_err(taken_or)?;
    let stored = user.get()?;
    user_response(&state, &stored)
}

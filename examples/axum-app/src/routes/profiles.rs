//! `GET /profiles/{username}`, `POST`/`DELETE /profiles/{username}/follow`.

use aludel::web::axum::DbSession;
use aludel::{delete, insert};
use axum::Json;
use serde_json::{Value, json};

use crate::auth::{AuthUser, MaybeUser};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiPath;
use crate::models::Follow;
use crate::queries::profile_by_username;
use crate::validate::{USERNAME_MAX, path_segment};

/// `GET /api/profiles/{username}`.
pub(super) async fn get_profile(
    MaybeUser(viewer): MaybeUser,
    mut db: DbSession,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    path_segment(&username, USERNAME_MAX, "profile")?;
    let (_, profile) = profile_by_username(&mut db, &username, viewer)
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    Ok(Json(json!({ "profile": profile })))
}

/// `POST /api/profiles/{username}/follow`: idempotent (`ON CONFLICT DO NOTHING` on the
/// composite key).
pub(super) async fn follow(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    path_segment(&username, USERNAME_MAX, "profile")?;
    let (id, mut profile) = profile_by_username(&mut db, &username, Some(me))
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    let row = Follow {
        follower_id: me,
        followee_id: id,
    };
    db.execute(&insert(&row).on_conflict_do_nothing((Follow::follower_id, Follow::followee_id)))
        .await?;
    profile.following = true;
    Ok(Json(json!({ "profile": profile })))
}

/// `DELETE /api/profiles/{username}/follow`: 200 with the profile (not 204).
pub(super) async fn unfollow(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    path_segment(&username, USERNAME_MAX, "profile")?;
    let (id, mut profile) = profile_by_username(&mut db, &username, Some(me))
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    db.execute(
        &delete::<Follow>().filter(Follow::follower_id.eq(me).and(Follow::followee_id.eq(id))),
    )
    .await?;
    profile.following = false;
    Ok(Json(json!({ "profile": profile })))
}

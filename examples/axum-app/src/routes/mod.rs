//! The handlers, one module per resource.
//!
//! Extractor order is the check order the API promises: the token first (401), then the
//! session and the path, then the body; handlers check existence (404) before ownership (403)
//! before field validation (422).

mod articles;
mod comments;
mod export;
mod profiles;
mod users;

use aludel::select;
use aludel::web::axum::DbSession;
use axum::Json;
use axum::Router;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::models::{ArticleTag, Tag};

/// The routes below `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", post(users::register))
        .route("/users/login", post(users::login))
        .route("/user", get(users::current).put(users::update))
        .route("/profiles/{username}", get(profiles::get_profile))
        .route(
            "/profiles/{username}/follow",
            post(profiles::follow).delete(profiles::unfollow),
        )
        .route("/articles", get(articles::list).post(articles::create))
        .route("/articles/feed", get(articles::feed))
        .route("/articles/export", get(export::export))
        .route(
            "/articles/{slug}",
            get(articles::get_article)
                .put(articles::update)
                .delete(articles::remove),
        )
        .route(
            "/articles/{slug}/favorite",
            post(articles::favorite).delete(articles::unfavorite),
        )
        .route(
            "/articles/{slug}/comments",
            get(comments::list).post(comments::create),
        )
        .route("/articles/{slug}/comments/{id}", delete(comments::remove))
        .route("/tags", get(tags))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// `GET /api/tags`: every tag some article uses, alphabetical.
async fn tags(mut db: DbSession) -> ApiResult<Json<Value>> {
    let names = db
        .all(
            &select(Tag::name)
                .filter(aludel::query::exists(
                    select(ArticleTag::tag_id).filter(ArticleTag::tag_id.eq(Tag::id)),
                ))
                .order_by(Tag::name.asc()),
        )
        .await?;
    Ok(Json(json!({ "tags": names })))
}

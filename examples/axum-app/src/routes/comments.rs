//! `GET`/`POST /articles/{slug}/comments`, `DELETE /articles/{slug}/comments/{id}`.

use aludel::web::axum::DbSession;
use aludel::{AsyncSession, Generated, Obj, One, select};
use axum::Json;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{AuthUser, MaybeUser};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiPath, timestamp};
use crate::models::{Article, Comment};
use crate::queries::profiles;
use crate::validate::{COMMENT_MAX, Checks, SLUG_MAX, path_segment};
use crate::views::{CommentView, Profile};

#[derive(Debug, Deserialize)]
pub(super) struct Wrapped {
    comment: NewComment,
}

#[derive(Debug, Deserialize)]
pub(super) struct NewComment {
    body: Option<String>,
}

fn view(c: Comment, author: Profile) -> aludel::Result<CommentView> {
    Ok(CommentView {
        id: c.id.cloned()?,
        created_at: timestamp(c.created_at.get()?),
        updated_at: timestamp(c.updated_at.get()?),
        body: c.body,
        author,
    })
}

async fn article_id(db: &mut AsyncSession, slug: String) -> ApiResult<i64> {
    path_segment(&slug, SLUG_MAX, "article")?;
    db.one_or_none(&select(Article::id).filter(Article::slug.eq(slug)))
        .await?
        .ok_or(ApiError::NotFound("article"))
}

/// `GET /api/articles/{slug}/comments`: oldest first; three statements for any number of
/// comments (the comments, their authors, the viewer's follows among them).
pub(super) async fn list(
    MaybeUser(viewer): MaybeUser,
    mut db: DbSession,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let article = article_id(&mut db, slug).await?;
    let comments = db
        .all(
            &select(Comment::ALL)
                .filter(Comment::article_id.eq(article))
                .order_by(Comment::created_at.asc())
                .order_by(Comment::id.asc()),
        )
        .await?;
    let mut author_ids: Vec<i64> = comments.iter().map(|c| c.author_id).collect();
    author_ids.sort_unstable();
    author_ids.dedup();
    let authors = profiles(&mut db, author_ids, viewer).await?;
    let views = comments
        .into_iter()
        .filter_map(|c| {
            let author = authors.get(&c.author_id)?.clone();
            Some(view(c, author))
        })
        .collect::<aludel::Result<Vec<CommentView>>>()?;
    Ok(Json(json!({ "comments": views })))
}

/// `POST /api/articles/{slug}/comments`: 201; 404 for an unknown article comes before 422.
pub(super) async fn create(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<Wrapped>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let article = article_id(&mut db, slug).await?;
    let mut checks = Checks::new();
    let text = checks.required("body", body.comment.body, COMMENT_MAX);
    checks.finish()?;
    let comment = Obj::new(Comment {
        id: Generated::unset(),
        article_id: article,
        author_id: me,
        body: text,
        created_at: Generated::unset(),
        updated_at: Generated::unset(),
        author: One::new(),
    });
    db.add(&comment)?;
    db.flush().await?; // INSERT … RETURNING *: id and timestamps come back
    let author = profiles(&mut db, vec![me], Some(me))
        .await?
        .remove(&me)
        .ok_or(ApiError::InvalidToken)?;
    let stored = comment.get()?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "comment": view(stored, author)? })),
    ))
}

/// `DELETE /api/articles/{slug}/comments/{id}`: the comment is looked up by `(id, article)`,
/// so 404 article, 404 comment and 403 stay distinct.
pub(super) async fn remove(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiPath((slug, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let article = article_id(&mut db, slug).await?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("comment"))?;
    let comment = db
        .scalars(
            &select(Comment::ALL).filter(Comment::id.eq(id).and(Comment::article_id.eq(article))),
        )
        .await?
        .pop()
        .ok_or(ApiError::NotFound("comment"))?;
    if comment.read()?.author_id != me {
        return Err(ApiError::Forbidden("comment"));
    }
    db.delete(&comment)?;
    db.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

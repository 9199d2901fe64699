//! `GET /api/articles/export`: every article as NDJSON, one JSON object per line, streamed
//! from the database to the client in constant memory.
//!
//! Not part of the RealWorld spec. The rows come from aludel's `RowStream`, which owns its
//! pooled connection and yields rows as the server sends them; `Body::from_stream` passes
//! them on, so a slow client slows the server down (TCP back-pressure) instead of buffering.

use aludel::{Engine, func::call as func, select};
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;

use crate::error::ApiResult;
use crate::json::timestamp;
use crate::models::{Article, ArticleTag, Tag, User};

/// One exported line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportLine<'a> {
    slug: &'a str,
    title: &'a str,
    description: &'a str,
    body: &'a str,
    tag_list: &'a [String],
    created_at: Option<String>,
    updated_at: Option<String>,
    author: &'a str,
}

/// Streams all articles, oldest first, each with its author's username and its tags (a
/// correlated `array_agg` subquery, so the stream stays one statement).
pub(super) async fn export(State(engine): State<Engine>) -> ApiResult<Response> {
    let tags = select(func::<Vec<String>>(
        "array_agg",
        vec![Tag::name.expr().into()],
    ))
    .from::<ArticleTag>()
    .join_related::<Tag>()
    .filter(ArticleTag::article_id.eq(Article::id))
    .as_scalar();
    let query = select((Article::ALL, User::username, tags))
        .join_related::<User>()
        .order_by(Article::id.asc());
    let rows = engine.stream(&query).await?;
    let lines = rows.map(|row| {
        row.map(|(article, author, tags)| {
            let mut tags = tags.unwrap_or_default();
            tags.sort();
            let line = ExportLine {
                slug: &article.slug,
                title: &article.title,
                description: &article.description,
                body: &article.body,
                tag_list: &tags,
                created_at: article.created_at.as_option().map(timestamp),
                updated_at: article.updated_at.as_option().map(timestamp),
                author: &author,
            };
            // Serializing plain strings and string lists cannot fail.
            let mut out = serde_json::to_vec(&line).unwrap_or_default();
            out.push(b'\n');
            out
        })
        .inspect_err(|e| tracing::error!(error = %e, "export stream failed"))
    });
    Ok((
        [(CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

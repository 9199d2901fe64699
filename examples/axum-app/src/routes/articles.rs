//! Articles: list, feed, get, create, update, delete, favorite, unfavorite.

use aludel::web::axum::DbSession;
use aludel::{
    AsyncSession, Generated, Many, Obj, One, delete, insert, insert_many, query::exists, select,
};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::Json;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{AuthUser, MaybeUser};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiPath, ApiQuery, present};
use crate::models::{Article, ArticleTag, Favorite, Tag};
use crate::queries::{ArticleFilter, ArticleRow, article_by_slug, list_articles, load_articles};
use crate::validate::{
    BODY_MAX, Checks, DESCRIPTION_MAX, SLUG_MAX, TAG_MAX, TITLE_MAX, USERNAME_MAX, path_segment,
};
use crate::views::ArticleView;

/// Page size when the request names none, and the most a request may ask for.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;
/// Longest `limit`/`offset` text (an i64 has 19 digits).
const NUMBER_MAX: usize = 24;

/// Query parameters of the list endpoints. Read as text so that a malformed number falls
/// back to the default instead of failing the request.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListParams {
    tag: Option<String>,
    author: Option<String>,
    favorited: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

impl ListParams {
    /// NUL and lengths of every parameter (the names at most as long as a stored name).
    fn check(&self) -> ApiResult<()> {
        let mut c = Checks::new();
        c.text("tag", self.tag.as_deref(), TAG_MAX);
        c.text("author", self.author.as_deref(), USERNAME_MAX);
        c.text("favorited", self.favorited.as_deref(), USERNAME_MAX);
        c.text("limit", self.limit.as_deref(), NUMBER_MAX);
        c.text("offset", self.offset.as_deref(), NUMBER_MAX);
        c.finish()
    }

    fn page(&self) -> (i64, i64) {
        let num = |v: &Option<String>| v.as_deref().and_then(|s| s.trim().parse::<i64>().ok());
        let limit = num(&self.limit)
            .unwrap_or(DEFAULT_LIMIT)
            .clamp(0, MAX_LIMIT);
        let offset = num(&self.offset).unwrap_or(0).max(0);
        (limit, offset)
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Wrapped<T> {
    article: T,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewArticle {
    title: Option<String>,
    description: Option<String>,
    body: Option<String>,
    #[serde(default)]
    tag_list: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ArticleChanges {
    #[serde(default, deserialize_with = "present")]
    title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    body: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    tag_list: Option<Option<Vec<String>>>,
}

fn list_response(articles: Vec<ArticleView>, count: i64) -> Json<Value> {
    Json(json!({ "articles": articles, "articlesCount": count }))
}

fn article_response(article: ArticleView) -> Json<Value> {
    Json(json!({ "article": article }))
}

/// `GET /api/articles?tag=&author=&favorited=&limit=&offset=`.
pub(super) async fn list(
    MaybeUser(viewer): MaybeUser,
    mut db: DbSession,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    params.check()?;
    let (limit, offset) = params.page();
    let filter = ArticleFilter {
        tag: params.tag,
        author: params.author,
        favorited: params.favorited,
        followed_by: None,
    };
    let (articles, count) = list_articles(&mut db, &filter, limit, offset, viewer).await?;
    Ok(list_response(articles, count))
}

/// `GET /api/articles/feed`: articles by the users the viewer follows.
pub(super) async fn feed(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    params.check()?;
    let (limit, offset) = params.page();
    let filter = ArticleFilter {
        followed_by: Some(me),
        ..ArticleFilter::default()
    };
    let (articles, count) = list_articles(&mut db, &filter, limit, offset, Some(me)).await?;
    Ok(list_response(articles, count))
}

/// `GET /api/articles/{slug}`.
pub(super) async fn get_article(
    MaybeUser(viewer): MaybeUser,
    mut db: DbSession,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    path_segment(&slug, SLUG_MAX, "article")?;
    let article = article_by_slug(&mut db, &slug, viewer)
        .await?
        .ok_or(ApiError::NotFound("article"))?;
    Ok(article_response(article))
}

/// `POST /api/articles`: 201. Duplicate titles get distinct slugs.
pub(super) async fn create(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiJson(body): ApiJson<Wrapped<NewArticle>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let new = body.article;
    let mut checks = Checks::new();
    let title = checks.required("title", new.title, TITLE_MAX);
    let description = checks.required("description", new.description, DESCRIPTION_MAX);
    let body_text = checks.required("body", new.body, BODY_MAX);
    if let Some(tags) = &new.tag_list {
        checks.tags(tags);
    }
    checks.finish()?;
    let mut draft = Article {
        id: Generated::unset(),
        slug: slugify(&title),
        title,
        description,
        body: body_text,
        author_id: me,
        created_at: Generated::unset(),
        updated_at: Generated::unset(),
        author: One::new(),
        tags: Many::new(),
    };
    // INSERT … ON CONFLICT (slug) DO NOTHING RETURNING *: no row back means the slug is
    // taken; try again with a random suffix. A conflict does not abort the transaction.
    let base = draft.slug.clone();
    let mut stored = None;
    for _ in 0..5 {
        stored = db
            .one_or_none(
                &insert(&draft)
                    .on_conflict_do_nothing(Article::slug)
                    .returning(Article::ALL),
            )
            .await?;
        if stored.is_some() {
            break;
        }
        draft.slug = format!("{base}-{}", suffix());
    }
    let stored = stored.ok_or_else(|| ApiError::Internal("no free slug".to_owned()))?;
    if let Some(tags) = new.tag_list {
        set_tags(&mut db, stored.id.cloned()?, tags).await?;
    }
    let view = load_articles(&mut db, vec![ArticleRow::try_from(&stored)?], Some(me))
        .await?
        .pop()
        .ok_or(ApiError::NotFound("article"))?;
    Ok((StatusCode::CREATED, article_response(view)))
}

/// The article with this slug as a session object (tracked: writes to it are flushed), or 404.
async fn article_obj(db: &mut AsyncSession, slug: String) -> ApiResult<Obj<Article>> {
    path_segment(&slug, SLUG_MAX, "article")?;
    db.scalars(&select(Article::ALL).filter(Article::slug.eq(slug)))
        .await?
        .pop()
        .ok_or(ApiError::NotFound("article"))
}

/// The article with this slug, if `me` wrote it: 404, then 403.
async fn own_article(db: &mut AsyncSession, slug: String, me: i64) -> ApiResult<Obj<Article>> {
    let article = article_obj(db, slug).await?;
    if article.read()?.author_id != me {
        return Err(ApiError::Forbidden("article"));
    }
    Ok(article)
}

/// `PUT /api/articles/{slug}`: partial update; `tagList` replaces the tags when present.
pub(super) async fn update(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<Wrapped<ArticleChanges>>,
) -> ApiResult<Json<Value>> {
    let article = own_article(&mut db, slug, me).await?;
    let changes = body.article;
    let mut checks = Checks::new();
    for (name, value, max) in [
        ("title", &changes.title, TITLE_MAX),
        ("description", &changes.description, DESCRIPTION_MAX),
        ("body", &changes.body, BODY_MAX),
    ] {
        match value {
            Some(v) if v.as_deref().is_none_or(|v| v.trim().is_empty()) => {
                checks.push(name, "can't be blank");
            }
            Some(v) => checks.text(name, v.as_deref(), max),
            None => {}
        }
    }
    match &changes.tag_list {
        Some(None) => checks.push("tagList", "can't be null"),
        Some(Some(tags)) => checks.tags(tags),
        None => {}
    }
    checks.finish()?;

    let id = article.read()?.id.cloned()?;
    let new_slug = match &changes.title {
        Some(Some(title)) if *title != article.read()?.title => {
            Some(free_slug(&mut db, &slugify(title), id).await?)
        }
        _ => None,
    };
    {
        let mut a = article.write()?;
        if let Some(Some(title)) = changes.title {
            a.title = title;
        }
        if let Some(slug) = new_slug {
            a.slug = slug;
        }
        if let Some(Some(description)) = changes.description {
            a.description = description;
        }
        if let Some(Some(body)) = changes.body {
            a.body = body;
        }
        a.updated_at = Utc::now().into();
    }
    // UPDATE of the changed columns, RETURNING the stored row (its timestamps included).
    db.flush().await?;
    if let Some(Some(tags)) = changes.tag_list {
        set_tags(&mut db, id, tags).await?;
    }
    let row = ArticleRow::try_from(&article.get()?)?;
    let view = load_articles(&mut db, vec![row], Some(me))
        .await?
        .pop()
        .ok_or(ApiError::NotFound("article"))?;
    Ok(article_response(view))
}

/// `DELETE /api/articles/{slug}`: 204. Comments, favorites and tag links go by
/// `ON DELETE CASCADE`.
pub(super) async fn remove(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let article = own_article(&mut db, slug, me).await?;
    db.delete(&article)?;
    db.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The id of the article with this slug, or 404.
async fn article_id(db: &mut AsyncSession, slug: String) -> ApiResult<i64> {
    path_segment(&slug, SLUG_MAX, "article")?;
    db.one_or_none(&select(Article::id).filter(Article::slug.eq(slug)))
        .await?
        .ok_or(ApiError::NotFound("article"))
}

/// `POST /api/articles/{slug}/favorite`: idempotent.
pub(super) async fn favorite(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = article_id(&mut db, slug.clone()).await?;
    let fav = Favorite {
        user_id: me,
        article_id: id,
    };
    db.execute(&insert(&fav).on_conflict_do_nothing((Favorite::user_id, Favorite::article_id)))
        .await?;
    let view = article_by_slug(&mut db, &slug, Some(me))
        .await?
        .ok_or(ApiError::NotFound("article"))?;
    Ok(article_response(view))
}

/// `DELETE /api/articles/{slug}/favorite`: 200 with the article.
pub(super) async fn unfavorite(
    AuthUser(me): AuthUser,
    mut db: DbSession,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = article_id(&mut db, slug.clone()).await?;
    db.execute(
        &delete::<Favorite>().filter(Favorite::user_id.eq(me).and(Favorite::article_id.eq(id))),
    )
    .await?;
    let view = article_by_slug(&mut db, &slug, Some(me))
        .await?
        .ok_or(ApiError::NotFound("article"))?;
    Ok(article_response(view))
}

/// Replaces the article's tags: upsert the names (`ON CONFLICT (name) DO NOTHING`), read
/// their ids, then swap the join rows. Three or four statements, whatever the tag count.
async fn set_tags(db: &mut AsyncSession, article_id: i64, names: Vec<String>) -> ApiResult<()> {
    let mut names: Vec<String> = names
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    db.execute(&delete::<ArticleTag>().filter(ArticleTag::article_id.eq(article_id)))
        .await?;
    if names.is_empty() {
        return Ok(());
    }
    let tags: Vec<Tag> = names
        .iter()
        .map(|name| Tag {
            id: Generated::unset(),
            name: name.clone(),
        })
        .collect();
    db.execute(&insert_many(&tags).on_conflict_do_nothing(Tag::name))
        .await?;
    let ids = db
        .all(&select(Tag::id).filter(Tag::name.in_list(names)))
        .await?;
    let links: Vec<ArticleTag> = ids
        .into_iter()
        .map(|tag_id| ArticleTag { article_id, tag_id })
        .collect();
    db.execute(&insert_many(&links)).await?;
    Ok(())
}

/// `base`, or `base-<suffix>` when another article has it already.
async fn free_slug(db: &mut AsyncSession, base: &str, own_id: i64) -> ApiResult<String> {
    let mut candidate = base.to_owned();
    for _ in 0..5 {
        let taken = db
            .one(&select(exists(
                select(Article::id).filter(
                    Article::slug
                        .eq(candidate.clone())
                        .and(Article::id.ne(own_id)),
                ),
            )))
            .await?;
        if !taken {
            return Ok(candidate);
        }
        candidate = format!("{base}-{}", suffix());
    }
    Err(ApiError::Internal("no free slug".to_owned()))
}

/// `"How to Train Your Dragon!"` → `"how-to-train-your-dragon"`.
pub(crate) fn slugify(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("article");
    }
    out
}

/// Six random base-36 characters.
fn suffix() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = OsRng.next_u64();
    (0..6)
        .map(|_| {
            let d = DIGITS[(n % 36) as usize];
            n /= 36;
            char::from(d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_lowercase_words_joined_by_dashes() {
        assert_eq!(
            slugify("How to Train Your Dragon!"),
            "how-to-train-your-dragon"
        );
        assert_eq!(slugify("  Rust -- & -- SQL  "), "rust-sql");
        assert_eq!(slugify("Ünïcødé ✓"), "ünïcødé");
        assert_eq!(slugify("!!!"), "article");
    }
}

//! Reading articles, profiles and comments with everything a response shows, in a fixed
//! number of statements whatever the page size (no N+1).
//!
//! Loading a page of N articles runs:
//!
//! 1. the page itself (filters, `ORDER BY created_at DESC, id DESC`, bound `LIMIT`/`OFFSET`,
//!    the body column left out);
//! 2. `count(*)` over the same filters, for `articlesCount`;
//! 3. the authors: `users WHERE id = ANY($1)`;
//! 4. the tags: `article_tags JOIN tags WHERE article_id = ANY($1) ORDER BY name`;
//! 5. the favorite counts: `favorites WHERE article_id = ANY($1) GROUP BY article_id`;
//! 6. (with a viewer) the viewer's favorites among the page: `favorites WHERE user_id = $1 AND
//!    article_id = ANY($2)`;
//! 7. (with a viewer) the viewer's follows among the authors.
//!
//! Steps 3–7 are what SQLAlchemy calls `selectinload`: one batched `= ANY($1)` statement per
//! relationship. They live in [`load_articles`] alone, so that switching to aludel's loading
//! options (being built) changes this one function.

use std::collections::{HashMap, HashSet};

use aludel::{AsyncSession, Expr, count_star, exists, select, value};
use chrono::{DateTime, Utc};

use crate::json::timestamp;
use crate::models::{Article, ArticleTag, Favorite, Follow, Tag, User};
use crate::views::{ArticleView, Profile};

/// An article's own columns; `body` is `None` when the query left it out (lists).
#[derive(Debug, Clone)]
pub struct ArticleRow {
    /// Key.
    pub id: i64,
    /// URL key.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Body, when loaded.
    pub body: Option<String>,
    /// Author id.
    pub author_id: i64,
    /// Creation time, as stored.
    pub created_at: DateTime<Utc>,
    /// Last update, as stored.
    pub updated_at: DateTime<Utc>,
}

impl From<Article> for ArticleRow {
    fn from(a: Article) -> Self {
        ArticleRow {
            id: a.id,
            slug: a.slug,
            title: a.title,
            description: a.description,
            body: Some(a.body),
            author_id: a.author_id,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// The filters of `GET /articles` and `GET /articles/feed`; all present ones must hold.
#[derive(Debug, Clone, Default)]
pub struct ArticleFilter {
    /// Tagged with this tag name.
    pub tag: Option<String>,
    /// Written by the user with this username.
    pub author: Option<String>,
    /// Favorited by the user with this username.
    pub favorited: Option<String>,
    /// Written by someone this user id follows (the feed).
    pub followed_by: Option<i64>,
}

impl ArticleFilter {
    /// The WHERE conditions, one per present filter, each a subquery on the related table.
    fn conditions(&self) -> Vec<Expr<bool>> {
        let mut out = Vec::new();
        if let Some(tag) = &self.tag {
            out.push(exists(
                select(ArticleTag::article_id)
                    .join_related::<Tag>()
                    .filter(ArticleTag::article_id.eq(Article::id))
                    .filter(Tag::name.eq(tag)),
            ));
        }
        if let Some(author) = &self.author {
            out.push(
                Article::author_id.in_subquery(select(User::id).filter(User::username.eq(author))),
            );
        }
        if let Some(fan) = &self.favorited {
            out.push(
                Article::id.in_subquery(
                    select(Favorite::article_id)
                        .join_related::<User>()
                        .filter(User::username.eq(fan)),
                ),
            );
        }
        if let Some(follower) = self.followed_by {
            out.push(
                Article::author_id.in_subquery(
                    select(Follow::followee_id).filter(Follow::follower_id.eq(follower)),
                ),
            );
        }
        out
    }
}

/// One page of articles, newest first, and the total count of matching articles.
pub async fn list_articles(
    s: &mut AsyncSession,
    filter: &ArticleFilter,
    limit: i64,
    offset: i64,
    viewer: Option<i64>,
) -> aludel::Result<(Vec<ArticleView>, i64)> {
    let conditions = filter.conditions();
    // Column omission: the list never reads `body`. (Nested tuples: a flat select list holds
    // at most six items.)
    let mut page = select((
        (
            Article::id,
            Article::slug,
            Article::title,
            Article::description,
        ),
        (Article::author_id, Article::created_at, Article::updated_at),
    ));
    let mut count = select(count_star()).from::<Article>();
    for c in conditions {
        page = page.filter(c.clone());
        count = count.filter(c);
    }
    let page = page
        .order_by(Article::created_at.desc())
        .order_by(Article::id.desc())
        .limit(limit)
        .offset(offset);
    let rows: Vec<ArticleRow> = s
        .execute(&page)
        .await?
        .into_iter()
        .map(
            |((id, slug, title, description), (author_id, created_at, updated_at))| ArticleRow {
                id,
                slug,
                title,
                description,
                body: None,
                author_id,
                created_at,
                updated_at,
            },
        )
        .collect();
    let total = s.one(&count).await?;
    Ok((load_articles(s, rows, viewer).await?, total))
}

/// The article with this slug, body included, as `viewer` sees it.
pub async fn article_by_slug(
    s: &mut AsyncSession,
    slug: &str,
    viewer: Option<i64>,
) -> aludel::Result<Option<ArticleView>> {
    let found = s
        .one_or_none(&select(Article::ALL).filter(Article::slug.eq(slug.to_owned())))
        .await?;
    match found {
        None => Ok(None),
        Some(a) => Ok(load_articles(s, vec![a.into()], viewer).await?.pop()),
    }
}

/// Completes article rows with their authors, tags, favorite counts and the viewer's flags:
/// at most five statements, whatever `rows.len()`; none for an empty page. Keeps `rows`' order.
pub async fn load_articles(
    s: &mut AsyncSession,
    rows: Vec<ArticleRow>,
    viewer: Option<i64>,
) -> aludel::Result<Vec<ArticleView>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let author_ids = distinct(rows.iter().map(|r| r.author_id));

    let authors = profiles(s, author_ids, viewer).await?;

    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    let tag_rows = s
        .execute(
            &select((ArticleTag::article_id, Tag::name))
                .join_related::<Tag>()
                .filter(ArticleTag::article_id.in_list(ids.clone()))
                .order_by(Tag::name.asc()),
        )
        .await?;
    for (article_id, name) in tag_rows {
        tags.entry(article_id).or_default().push(name);
    }

    let counts: HashMap<i64, i64> = s
        .execute(
            &select((Favorite::article_id, count_star()))
                .filter(Favorite::article_id.in_list(ids.clone()))
                .group_by(Favorite::article_id),
        )
        .await?
        .into_iter()
        .collect();

    let favorited: HashSet<i64> = match viewer {
        None => HashSet::new(),
        Some(me) => s
            .execute(
                &select(Favorite::article_id).filter(
                    Favorite::user_id
                        .eq(me)
                        .and(Favorite::article_id.in_list(ids)),
                ),
            )
            .await?
            .into_iter()
            .collect(),
    };

    Ok(rows
        .into_iter()
        .map(|r| ArticleView {
            tag_list: tags.remove(&r.id).unwrap_or_default(),
            favorited: favorited.contains(&r.id),
            favorites_count: counts.get(&r.id).copied().unwrap_or(0),
            author: authors
                .get(&r.author_id)
                .cloned()
                .unwrap_or_else(|| Profile {
                    // Unreachable with the foreign key in place; a placeholder beats a panic.
                    username: String::new(),
                    bio: None,
                    image: None,
                    following: false,
                }),
            slug: r.slug,
            title: r.title,
            description: r.description,
            body: r.body,
            created_at: timestamp(&r.created_at),
            updated_at: timestamp(&r.updated_at),
        })
        .collect())
}

/// Profiles of these users as `viewer` sees them: two statements (users, then the viewer's
/// follows among them), or one for an anonymous viewer.
pub async fn profiles(
    s: &mut AsyncSession,
    user_ids: Vec<i64>,
    viewer: Option<i64>,
) -> aludel::Result<HashMap<i64, Profile>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let users = s
        .execute(
            &select((User::id, User::username, User::bio, User::image))
                .filter(User::id.in_list(user_ids.clone())),
        )
        .await?;
    let followed: HashSet<i64> = match viewer {
        None => HashSet::new(),
        Some(me) => s
            .execute(
                &select(Follow::followee_id).filter(
                    Follow::follower_id
                        .eq(me)
                        .and(Follow::followee_id.in_list(user_ids)),
                ),
            )
            .await?
            .into_iter()
            .collect(),
    };
    Ok(users
        .into_iter()
        .map(|(id, username, bio, image)| {
            let following = followed.contains(&id);
            (
                id,
                Profile {
                    username,
                    bio,
                    image,
                    following,
                },
            )
        })
        .collect())
}

/// The profile of `username` as `viewer` sees it, in one statement (a correlated `EXISTS`
/// computes `following`), with the user's id.
pub async fn profile_by_username(
    s: &mut AsyncSession,
    username: &str,
    viewer: Option<i64>,
) -> aludel::Result<Option<(i64, Profile)>> {
    let following = match viewer {
        Some(me) => exists(
            select(Follow::follower_id).filter(
                Follow::follower_id
                    .eq(me)
                    .and(Follow::followee_id.eq(User::id)),
            ),
        ),
        None => value(false),
    };
    let row = s
        .one_or_none(
            &select((User::id, User::username, User::bio, User::image, following))
                .filter(User::username.eq(username.to_owned())),
        )
        .await?;
    Ok(row.map(|(id, username, bio, image, following)| {
        (
            id,
            Profile {
                username,
                bio,
                image,
                following,
            },
        )
    }))
}

fn distinct(ids: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(*id)).collect()
}

//! Reading articles, profiles and comments with everything a response shows, in a fixed
//! number of statements whatever the page size (no N+1).
//!
//! Loading a page of N articles runs:
//!
//! 1. the page itself with its authors, through aludel's `joined(Article::author)` option
//!    (one `LEFT OUTER JOIN`; filters, `ORDER BY created_at DESC, id DESC`, bound
//!    `LIMIT`/`OFFSET`);
//! 2. `count(*)` over the same filters, for `articlesCount`;
//! 3. the tags, through `selectin(Article::tags)`: one `= ANY($1)` statement over the page;
//! 4. the favorite counts: `favorites WHERE article_id = ANY($1) GROUP BY article_id`;
//! 5. (with a viewer) the viewer's favorites among the page;
//! 6. (with a viewer) the viewer's follows among the authors.
//!
//! 1 and 3 are relationship loading (the relationships are declared on [`Article`]); 4–6 are
//! aggregates and per-viewer flags, batched the same way by hand.

use std::collections::{HashMap, HashSet};

use aludel::{
    AsyncSession, Obj, func::count_star, load::Load, load::joined, load::selectin, query::Expr,
    query::exists, query::value, select,
};
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

impl TryFrom<&Article> for ArticleRow {
    type Error = aludel::Error;

    /// A stored article (its server-filled columns read back); an unset one is an error.
    fn try_from(a: &Article) -> aludel::Result<Self> {
        Ok(ArticleRow {
            id: a.id.cloned()?,
            slug: a.slug.clone(),
            title: a.title.clone(),
            description: a.description.clone(),
            body: Some(a.body.clone()),
            author_id: a.author_id,
            created_at: a.created_at.cloned()?,
            updated_at: a.updated_at.cloned()?,
        })
    }
}

/// What an article response needs loaded with the article: its author (joined into the same
/// statement) and its tags (one batched statement for the whole page).
fn article_loads() -> Load<Article> {
    joined(Article::author).and(selectin(Article::tags))
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
    let mut page = select(Article::ALL);
    let mut count = select(count_star()).from::<Article>();
    for c in conditions {
        page = page.filter(c.clone());
        count = count.filter(c);
    }
    let page = page
        .order_by(Article::created_at.desc())
        .order_by(Article::id.desc())
        .limit(limit)
        .offset(offset)
        .options(article_loads());
    let articles = s.scalars(&page).await?;
    let total = s.one(&count).await?;
    // List items carry no body.
    let rows = articles
        .iter()
        .map(|a| {
            let mut row = ArticleRow::try_from(&*a.read()?)?;
            row.body = None;
            Ok(row)
        })
        .collect::<aludel::Result<Vec<_>>>()?;
    Ok((views(s, rows, &articles, viewer).await?, total))
}

/// The article with this slug, body included, as `viewer` sees it.
pub async fn article_by_slug(
    s: &mut AsyncSession,
    slug: &str,
    viewer: Option<i64>,
) -> aludel::Result<Option<ArticleView>> {
    let found = s
        .scalars(
            &select(Article::ALL)
                .filter(Article::slug.eq(slug.to_owned()))
                .options(article_loads()),
        )
        .await?;
    let rows = found
        .iter()
        .map(|a| ArticleRow::try_from(&*a.read()?))
        .collect::<aludel::Result<Vec<_>>>()?;
    Ok(views(s, rows, &found, viewer).await?.pop())
}

/// Completes article rows (just written, say) with their authors, tags, favorite counts and
/// the viewer's flags, in a fixed number of statements. Keeps `rows`' order.
pub async fn load_articles(
    s: &mut AsyncSession,
    rows: Vec<ArticleRow>,
    viewer: Option<i64>,
) -> aludel::Result<Vec<ArticleView>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let articles = s
        .scalars(
            &select(Article::ALL)
                .filter(Article::id.in_list(ids))
                .options(article_loads()),
        )
        .await?;
    views(s, rows, &articles, viewer).await
}

/// Builds the responses: authors and tags from the loaded relationships (no SQL), favorite
/// counts and the viewer's flags in at most three batched statements.
async fn views(
    s: &mut AsyncSession,
    rows: Vec<ArticleRow>,
    articles: &[Obj<Article>],
    viewer: Option<i64>,
) -> aludel::Result<Vec<ArticleView>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut authors: HashMap<i64, Profile> = HashMap::new();
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for a in articles {
        let a = a.read()?;
        if let Some(user) = a.author.get()? {
            let u = user.read()?;
            authors.insert(
                u.id.cloned()?,
                Profile {
                    username: u.username.clone(),
                    bio: u.bio.clone(),
                    image: u.image.clone(),
                    following: false,
                },
            );
        }
        let names = a
            .tags
            .get()?
            .iter()
            .map(|t| Ok(t.read()?.name.clone()))
            .collect::<aludel::Result<Vec<_>>>()?;
        tags.insert(a.id.cloned()?, names);
    }
    if let Some(me) = viewer {
        let author_ids: Vec<i64> = authors.keys().copied().collect();
        let followed: Vec<i64> = s
            .all(
                &select(Follow::followee_id).filter(
                    Follow::follower_id
                        .eq(me)
                        .and(Follow::followee_id.in_list(author_ids)),
                ),
            )
            .await?;
        for id in followed {
            if let Some(p) = authors.get_mut(&id) {
                p.following = true;
            }
        }
    }

    let counts: HashMap<i64, i64> = s
        .all(
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
            .all(
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
        .all(
            &select((User::id, User::username, User::bio, User::image))
                .filter(User::id.in_list(user_ids.clone())),
        )
        .await?;
    let followed: HashSet<i64> = match viewer {
        None => HashSet::new(),
        Some(me) => s
            .all(
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

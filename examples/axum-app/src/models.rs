//! The Conduit data model: seven tables, declared once as `#[derive(Model)]` structs.
//!
//! The migrations in `migrations/` are generated from these declarations (keys,
//! `ON DELETE CASCADE` foreign keys, unique constraints and indexes) by
//! `axum-app db revision --autogenerate`, `db check` compares them with a database (see
//! [`crate::db`]), and the typed builder uses their column handles (`Article::slug`,
//! `Favorite::user_id`, …).

use aludel::{Generated, Many, Model, One, schema::TableDef};
use chrono::{DateTime, Utc};

/// A registered user. `username` and `email` are unique, in any case: their constraints
/// (`users_username_key`, `users_email_key`) and the indexes on `lower(…)`
/// (`users_username_lower_key`, `users_email_lower_key`) tell a duplicate username from a
/// duplicate email.
#[derive(Model, Debug, Clone)]
#[aludel(table = "users")]
pub struct User {
    /// Identity key.
    #[aludel(primary_key, identity)]
    pub id: Generated<i64>,
    /// Public name, used in profile URLs.
    #[aludel(unique)]
    pub username: String,
    /// Login name.
    #[aludel(unique)]
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Free text; `NULL` when unset.
    pub bio: Option<String>,
    /// Avatar URL; `NULL` when unset.
    pub image: Option<String>,
    /// Set by the server on INSERT.
    #[aludel(server_default = "now()")]
    pub created_at: Generated<DateTime<Utc>>,
    /// Set by the server on INSERT; bumped on every update.
    #[aludel(server_default = "now()")]
    pub updated_at: Generated<DateTime<Utc>>,
}

/// `follower` follows `followee`: the self-referential many-to-many of users.
#[derive(Model, Debug, Clone, PartialEq, Eq)]
#[aludel(table = "follows")]
pub struct Follow {
    /// Who follows.
    #[aludel(primary_key, references = "User::id", on_delete = "cascade")]
    pub follower_id: i64,
    /// Who is followed (indexed: "who follows X" and the feed's reverse lookups).
    #[aludel(primary_key, index, references = "User::id", on_delete = "cascade")]
    pub followee_id: i64,
}

/// An article. Lists order by `(created_at, id)` descending, served by the composite index.
#[derive(Model, Debug, Clone)]
#[aludel(table = "articles", index(created_at, id))]
pub struct Article {
    /// Identity key.
    #[aludel(primary_key, identity)]
    pub id: Generated<i64>,
    /// URL key, unique; derived from the title with a suffix on collision.
    #[aludel(unique)]
    pub slug: String,
    /// Title.
    pub title: String,
    /// Short description.
    pub description: String,
    /// Markdown body.
    pub body: String,
    /// The author; deleting a user deletes their articles.
    #[aludel(index, references = "User::id", on_delete = "cascade")]
    pub author_id: i64,
    /// Set by the server on INSERT.
    #[aludel(server_default = "now()")]
    pub created_at: Generated<DateTime<Utc>>,
    /// Set by the server on INSERT; bumped on every update.
    #[aludel(server_default = "now()")]
    pub updated_at: Generated<DateTime<Utc>>,
    /// The author (many-to-one): `joined` into list queries.
    #[aludel(many_to_one(fk = author_id))]
    pub author: One<User>,
    /// The tags (many-to-many through `article_tags`), alphabetical: loaded by `selectin`.
    #[aludel(many_to_many(secondary = ArticleTag, local = ArticleTag::article_id, remote = ArticleTag::tag_id, order_by = "name"))]
    pub tags: Many<Tag>,
}

/// A tag name. Tags outlive their articles (`GET /api/tags` lists only tags in use).
#[derive(Model, Debug, Clone)]
#[aludel(table = "tags")]
pub struct Tag {
    /// Identity key.
    #[aludel(primary_key, identity)]
    pub id: Generated<i64>,
    /// The tag itself, unique (the upsert's conflict target).
    #[aludel(unique)]
    pub name: String,
}

/// Article ↔ tag, many-to-many.
#[derive(Model, Debug, Clone, PartialEq, Eq)]
#[aludel(table = "article_tags")]
pub struct ArticleTag {
    /// The article; deleting it deletes its links.
    #[aludel(primary_key, references = "Article::id", on_delete = "cascade")]
    pub article_id: i64,
    /// The tag.
    #[aludel(primary_key, index, references = "Tag::id", on_delete = "cascade")]
    pub tag_id: i64,
}

/// A user's favorite article; the row count per article is its `favoritesCount`.
#[derive(Model, Debug, Clone, PartialEq, Eq)]
#[aludel(table = "favorites")]
pub struct Favorite {
    /// Who favorited.
    #[aludel(primary_key, references = "User::id", on_delete = "cascade")]
    pub user_id: i64,
    /// What was favorited.
    #[aludel(primary_key, index, references = "Article::id", on_delete = "cascade")]
    pub article_id: i64,
}

/// A comment on an article.
#[derive(Model, Debug, Clone)]
#[aludel(table = "comments", index(article_id, created_at))]
pub struct Comment {
    /// Identity key (a JSON integer in responses).
    #[aludel(primary_key, identity)]
    pub id: Generated<i64>,
    /// The article; deleting it deletes its comments.
    #[aludel(references = "Article::id", on_delete = "cascade")]
    pub article_id: i64,
    /// The author.
    #[aludel(references = "User::id", on_delete = "cascade")]
    pub author_id: i64,
    /// Text.
    pub body: String,
    /// Set by the server on INSERT.
    #[aludel(server_default = "now()")]
    pub created_at: Generated<DateTime<Utc>>,
    /// Set by the server on INSERT.
    #[aludel(server_default = "now()")]
    pub updated_at: Generated<DateTime<Utc>>,
    /// The author (many-to-one).
    #[aludel(many_to_one(fk = author_id))]
    pub author: One<User>,
}

/// Every table of the app, in any order (the models' side of `db check` and autogenerate).
pub const TABLES: &[&TableDef] = &[
    User::TABLE,
    Follow::TABLE,
    Article::TABLE,
    Tag::TABLE,
    ArticleTag::TABLE,
    Favorite::TABLE,
    Comment::TABLE,
];

/// The unique constraint on `users.username` (PostgreSQL's default name).
pub const USERS_USERNAME_KEY: &str = "users_username_key";
/// The unique constraint on `users.email` (PostgreSQL's default name).
pub const USERS_EMAIL_KEY: &str = "users_email_key";
/// The unique index on `lower(username)`: usernames are unique in any case (an expression
/// index, which model declarations do not describe: [`crate::db::MODEL_DDL`]).
pub const USERS_USERNAME_LOWER_KEY: &str = "users_username_lower_key";
/// The unique index on `lower(email)`: emails are unique in any case, and login finds them
/// in any case.
pub const USERS_EMAIL_LOWER_KEY: &str = "users_email_lower_key";

//! The showcase app's data model (examples/axum-app/src/models.rs, relationships left out:
//! they do not change the schema) as version 1, plus an article status enum; version 2 is
//! what the round trip changes it to.

#![allow(dead_code)]

pub mod v1 {
    use aludel::{Generated, Model, SqlEnum, schema::TableDef};
    use chrono::{DateTime, Utc};

    #[derive(SqlEnum, Debug, Clone, Copy, PartialEq, Eq)]
    #[aludel(type_name = "article_status", rename_all = "snake_case")]
    pub enum Status {
        Draft,
        Published,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "users")]
    pub struct User {
        #[aludel(primary_key, identity)]
        pub id: Generated<i64>,
        #[aludel(unique)]
        pub username: String,
        #[aludel(unique)]
        pub email: String,
        pub password_hash: String,
        pub bio: Option<String>,
        pub image: Option<String>,
        #[aludel(server_default = "now()")]
        pub created_at: Generated<DateTime<Utc>>,
        #[aludel(server_default = "now()")]
        pub updated_at: Generated<DateTime<Utc>>,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "follows")]
    pub struct Follow {
        #[aludel(primary_key, references = "User::id", on_delete = "cascade")]
        pub follower_id: i64,
        #[aludel(primary_key, index, references = "User::id", on_delete = "cascade")]
        pub followee_id: i64,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "articles", index(created_at, id))]
    pub struct Article {
        #[aludel(primary_key, identity)]
        pub id: Generated<i64>,
        #[aludel(unique)]
        pub slug: String,
        pub title: String,
        pub description: String,
        pub body: String,
        #[aludel(index, references = "User::id", on_delete = "cascade")]
        pub author_id: i64,
        #[aludel(server_default = "'draft'")]
        pub status: Generated<Status>,
        #[aludel(server_default = "now()")]
        pub created_at: Generated<DateTime<Utc>>,
        #[aludel(server_default = "now()")]
        pub updated_at: Generated<DateTime<Utc>>,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "tags")]
    pub struct Tag {
        #[aludel(primary_key, identity)]
        pub id: Generated<i64>,
        #[aludel(unique)]
        pub name: String,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "article_tags")]
    pub struct ArticleTag {
        #[aludel(primary_key, references = "Article::id", on_delete = "cascade")]
        pub article_id: i64,
        #[aludel(primary_key, index, references = "Tag::id", on_delete = "cascade")]
        pub tag_id: i64,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "favorites")]
    pub struct Favorite {
        #[aludel(primary_key, references = "User::id", on_delete = "cascade")]
        pub user_id: i64,
        #[aludel(primary_key, index, references = "Article::id", on_delete = "cascade")]
        pub article_id: i64,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "comments", index(article_id, created_at))]
    pub struct Comment {
        #[aludel(primary_key, identity)]
        pub id: Generated<i64>,
        #[aludel(references = "Article::id", on_delete = "cascade")]
        pub article_id: i64,
        #[aludel(references = "User::id", on_delete = "cascade")]
        pub author_id: i64,
        pub body: String,
        #[aludel(server_default = "now()")]
        pub created_at: Generated<DateTime<Utc>>,
        #[aludel(server_default = "now()")]
        pub updated_at: Generated<DateTime<Utc>>,
    }

    pub const TABLES: &[&TableDef] = &[
        User::TABLE,
        Follow::TABLE,
        Article::TABLE,
        Tag::TABLE,
        ArticleTag::TABLE,
        Favorite::TABLE,
        Comment::TABLE,
    ];
}

/// Version 2: a nullable column (`users.location`), an index (`articles.title`), a new table
/// with foreign keys (`bookmarks`), a new enum value (`archived`), a dropped column
/// (`comments.updated_at`).
pub mod v2 {
    use aludel::{Generated, Model, SqlEnum, schema::TableDef};
    use chrono::{DateTime, Utc};

    pub use super::v1::{ArticleTag, Favorite, Follow, Tag};

    #[derive(SqlEnum, Debug, Clone, Copy, PartialEq, Eq)]
    #[aludel(type_name = "article_status", rename_all = "snake_case")]
    pub enum Status {
        Draft,
        Published,
        Archived,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "users")]
    pub struct User {
        #[aludel(primary_key, identity)]
        pub id: Generated<i64>,
        #[aludel(unique)]
        pub username: String,
        #[aludel(unique)]
        pub email: String,
        pub password_hash: String,
        pub bio: Option<String>,
        pub image: Option<String>,
        #[aludel(server_default = "now()")]
        pub created_at: Generated<DateTime<Utc>>,
        #[aludel(server_default = "now()")]
        pub updated_at: Generated<DateTime<Utc>>,
        pub location: Option<String>,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "articles", index(created_at, id))]
    pub struct Article {
        #[aludel(primary_key, identity)]
        pub id: Generated<i64>,
        #[aludel(unique)]
        pub slug: String,
        #[aludel(index)]
        pub title: String,
        pub description: String,
        pub body: String,
        #[aludel(index, references = "super::v1::User::id", on_delete = "cascade")]
        pub author_id: i64,
        #[aludel(server_default = "'draft'")]
        pub status: Generated<Status>,
        #[aludel(server_default = "now()")]
        pub created_at: Generated<DateTime<Utc>>,
        #[aludel(server_default = "now()")]
        pub updated_at: Generated<DateTime<Utc>>,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "comments", index(article_id, created_at))]
    pub struct Comment {
        #[aludel(primary_key, identity)]
        pub id: Generated<i64>,
        #[aludel(references = "super::v1::Article::id", on_delete = "cascade")]
        pub article_id: i64,
        #[aludel(references = "super::v1::User::id", on_delete = "cascade")]
        pub author_id: i64,
        pub body: String,
        #[aludel(server_default = "now()")]
        pub created_at: Generated<DateTime<Utc>>,
    }

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "bookmarks")]
    pub struct Bookmark {
        #[aludel(primary_key, identity)]
        pub id: Generated<i64>,
        #[aludel(index, references = "super::v1::User::id", on_delete = "cascade")]
        pub user_id: i64,
        #[aludel(references = "super::v1::Article::id", on_delete = "cascade")]
        pub article_id: i64,
        pub note: Option<String>,
    }

    pub const TABLES: &[&TableDef] = &[
        User::TABLE,
        Follow::TABLE,
        Article::TABLE,
        Tag::TABLE,
        ArticleTag::TABLE,
        Favorite::TABLE,
        Comment::TABLE,
        Bookmark::TABLE,
    ];
}

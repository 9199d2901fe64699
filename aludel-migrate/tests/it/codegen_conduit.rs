//! Models generated from the database by `aludel_migrate::codegen`: review them, then own them.

use aludel::{Generated, Many, Model, One, SqlEnum};

/// The enum type `article_status`.
#[derive(SqlEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[aludel(type_name = "article_status")]
pub enum ArticleStatus {
    /// `draft`.
    #[aludel(rename = "draft")]
    Draft,
    /// `published`.
    #[aludel(rename = "published")]
    Published,
}

/// The table `article_tags`.
#[derive(Model, Debug, Clone)]
#[aludel(table = "article_tags")]
pub struct ArticleTag {
    /// `article_id` (bigint).
    #[aludel(primary_key, references = "Article::id", on_delete = "cascade")]
    pub article_id: i64,
    /// `tag_id` (bigint).
    #[aludel(primary_key, index, references = "Tag::id", on_delete = "cascade")]
    pub tag_id: i64,
    /// The `articles` row `article_id` points to.
    #[aludel(many_to_one(fk = article_id))]
    pub article: One<Article>,
    /// The `tags` row `tag_id` points to.
    #[aludel(many_to_one(fk = tag_id))]
    pub tag: One<Tag>,
}

/// The table `articles`.
#[derive(Model, Debug, Clone)]
#[aludel(table = "articles", index(created_at, id))]
pub struct Article {
    /// `id` (bigint).
    #[aludel(primary_key, identity)]
    pub id: Generated<i64>,
    /// `slug` (text).
    #[aludel(unique)]
    pub slug: String,
    /// `title` (text).
    pub title: String,
    /// `description` (text).
    pub description: String,
    /// `body` (text).
    pub body: String,
    /// `author_id` (bigint).
    #[aludel(index, references = "User::id", on_delete = "cascade")]
    pub author_id: i64,
    /// `status` (article_status).
    #[aludel(server_default = "'draft'::article_status")]
    pub status: Generated<ArticleStatus>,
    /// `created_at` (timestamp with time zone).
    #[aludel(server_default = "now()")]
    pub created_at: Generated<chrono::DateTime<chrono::Utc>>,
    /// `updated_at` (timestamp with time zone).
    #[aludel(server_default = "now()")]
    pub updated_at: Generated<chrono::DateTime<chrono::Utc>>,
    /// The `users` row `author_id` points to.
    #[aludel(many_to_one(fk = author_id))]
    pub author: One<User>,
    /// The `article_tags` rows whose `article_id` points here.
    #[aludel(one_to_many(fk = ArticleTag::article_id))]
    pub article_tags: Many<ArticleTag>,
    /// The `comments` rows whose `article_id` points here.
    #[aludel(one_to_many(fk = Comment::article_id))]
    pub comments: Many<Comment>,
    /// The `favorites` rows whose `article_id` points here.
    #[aludel(one_to_many(fk = Favorite::article_id))]
    pub favorites: Many<Favorite>,
    /// The `tags` rows linked through `article_tags`.
    #[aludel(many_to_many(secondary = ArticleTag, local = ArticleTag::article_id, remote = ArticleTag::tag_id))]
    pub tags: Many<Tag>,
    /// The `users` rows linked through `favorites`.
    #[aludel(many_to_many(secondary = Favorite, local = Favorite::article_id, remote = Favorite::user_id))]
    pub users: Many<User>,
}

/// The table `comments`.
#[derive(Model, Debug, Clone)]
#[aludel(table = "comments", index(article_id, created_at))]
pub struct Comment {
    /// `id` (bigint).
    #[aludel(primary_key, identity)]
    pub id: Generated<i64>,
    /// `article_id` (bigint).
    #[aludel(references = "Article::id", on_delete = "cascade")]
    pub article_id: i64,
    /// `author_id` (bigint).
    #[aludel(references = "User::id", on_delete = "cascade")]
    pub author_id: i64,
    /// `body` (text).
    pub body: String,
    /// `created_at` (timestamp with time zone).
    #[aludel(server_default = "now()")]
    pub created_at: Generated<chrono::DateTime<chrono::Utc>>,
    /// `updated_at` (timestamp with time zone).
    #[aludel(server_default = "now()")]
    pub updated_at: Generated<chrono::DateTime<chrono::Utc>>,
    /// The `articles` row `article_id` points to.
    #[aludel(many_to_one(fk = article_id))]
    pub article: One<Article>,
    /// The `users` row `author_id` points to.
    #[aludel(many_to_one(fk = author_id))]
    pub author: One<User>,
}

/// The table `favorites`.
#[derive(Model, Debug, Clone)]
#[aludel(table = "favorites")]
pub struct Favorite {
    /// `user_id` (bigint).
    #[aludel(primary_key, references = "User::id", on_delete = "cascade")]
    pub user_id: i64,
    /// `article_id` (bigint).
    #[aludel(primary_key, index, references = "Article::id", on_delete = "cascade")]
    pub article_id: i64,
    /// The `articles` row `article_id` points to.
    #[aludel(many_to_one(fk = article_id))]
    pub article: One<Article>,
    /// The `users` row `user_id` points to.
    #[aludel(many_to_one(fk = user_id))]
    pub user: One<User>,
}

/// The table `follows`.
#[derive(Model, Debug, Clone)]
#[aludel(table = "follows")]
pub struct Follow {
    /// `follower_id` (bigint).
    #[aludel(primary_key, references = "User::id", on_delete = "cascade")]
    pub follower_id: i64,
    /// `followee_id` (bigint).
    #[aludel(primary_key, index, references = "User::id", on_delete = "cascade")]
    pub followee_id: i64,
    /// The `users` row `followee_id` points to.
    #[aludel(many_to_one(fk = followee_id))]
    pub followee: One<User>,
    /// The `users` row `follower_id` points to.
    #[aludel(many_to_one(fk = follower_id))]
    pub follower: One<User>,
}

/// The table `tags`.
#[derive(Model, Debug, Clone)]
#[aludel(table = "tags")]
pub struct Tag {
    /// `id` (bigint).
    #[aludel(primary_key, identity)]
    pub id: Generated<i64>,
    /// `name` (text).
    #[aludel(unique)]
    pub name: String,
    /// The `article_tags` rows whose `tag_id` points here.
    #[aludel(one_to_many(fk = ArticleTag::tag_id))]
    pub article_tags: Many<ArticleTag>,
    /// The `articles` rows linked through `article_tags`.
    #[aludel(many_to_many(secondary = ArticleTag, local = ArticleTag::tag_id, remote = ArticleTag::article_id))]
    pub articles: Many<Article>,
}

/// The table `users`.
#[derive(Model, Debug, Clone)]
#[aludel(table = "users")]
pub struct User {
    /// `id` (bigint).
    #[aludel(primary_key, identity)]
    pub id: Generated<i64>,
    /// `username` (text).
    #[aludel(unique)]
    pub username: String,
    /// `email` (text).
    #[aludel(unique)]
    pub email: String,
    /// `password_hash` (text).
    pub password_hash: String,
    /// `bio` (text).
    pub bio: Option<String>,
    /// `image` (text).
    pub image: Option<String>,
    /// `created_at` (timestamp with time zone).
    #[aludel(server_default = "now()")]
    pub created_at: Generated<chrono::DateTime<chrono::Utc>>,
    /// `updated_at` (timestamp with time zone).
    #[aludel(server_default = "now()")]
    pub updated_at: Generated<chrono::DateTime<chrono::Utc>>,
    /// The `articles` rows whose `author_id` points here.
    #[aludel(one_to_many(fk = Article::author_id))]
    pub articles: Many<Article>,
    /// The `comments` rows whose `author_id` points here.
    #[aludel(one_to_many(fk = Comment::author_id))]
    pub comments: Many<Comment>,
    /// The `favorites` rows whose `user_id` points here.
    #[aludel(one_to_many(fk = Favorite::user_id))]
    pub favorites: Many<Favorite>,
    /// The `follows` rows whose `followee_id` points here.
    #[aludel(one_to_many(fk = Follow::followee_id))]
    pub follows_by_followee: Many<Follow>,
    /// The `follows` rows whose `follower_id` points here.
    #[aludel(one_to_many(fk = Follow::follower_id))]
    pub follows_by_follower: Many<Follow>,
    /// The `articles` rows linked through `favorites`.
    #[aludel(many_to_many(secondary = Favorite, local = Favorite::user_id, remote = Favorite::article_id))]
    pub favorite_articles: Many<Article>,
}

/// Every table, for `create_all` and `aludel_migrate::cli`.
pub const TABLES: &[&aludel::schema::TableDef] = &[
    ArticleTag::TABLE,
    Article::TABLE,
    Comment::TABLE,
    Favorite::TABLE,
    Follow::TABLE,
    Tag::TABLE,
    User::TABLE,
];

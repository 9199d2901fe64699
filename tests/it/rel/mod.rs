//! Relationships, loading strategies, cascades and write-only collections.

mod cascades;
mod loading;
mod write_only;

use aludel::Generated;
use aludel::testing::TestDb;
use aludel::{Many, Model, Obj, One, WriteOnly, create_all, schema::CreateOptions};

#[derive(Model, Debug, Clone)]
#[aludel(table = "authors")]
pub(crate) struct Author {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    pub(crate) name: String,
    #[aludel(one_to_many(fk = Post::author_id, back_populates = author, order_by = "id"))]
    pub(crate) posts: Many<Post>,
    #[aludel(one_to_one(fk = Profile::author_id, back_populates = author, cascade = "save-update, delete-orphan"))]
    pub(crate) profile: One<Profile>,
    #[aludel(many_to_many(secondary = Follow, local = Follow::follower_id, remote = Follow::followee_id))]
    pub(crate) following: Many<Author>,
    #[aludel(many_to_many(secondary = Follow, local = Follow::followee_id, remote = Follow::follower_id))]
    pub(crate) followers: Many<Author>,
    #[aludel(one_to_many(fk = Event::author_id, cascade = "all, delete-orphan", passive_deletes, order_by = "id"))]
    pub(crate) events: WriteOnly<Event>,
    #[aludel(one_to_many(fk = Note::author_id, lazy = "raise"))]
    pub(crate) notes: Many<Note>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "posts")]
pub(crate) struct Post {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(references = "Author::id")]
    pub(crate) author_id: Option<i64>,
    pub(crate) title: String,
    pub(crate) published: bool,
    #[aludel(many_to_one(fk = author_id, back_populates = posts))]
    pub(crate) author: One<Author>,
    #[aludel(one_to_many(fk = Comment::post_id, back_populates = post, cascade = "all, delete-orphan", order_by = "id"))]
    pub(crate) comments: Many<Comment>,
    #[aludel(many_to_many(secondary = PostTag, local = PostTag::post_id, remote = PostTag::tag_id, order_by = "name"))]
    pub(crate) tags: Many<Tag>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "comments")]
pub(crate) struct Comment {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(references = "Post::id")]
    pub(crate) post_id: Option<i64>,
    pub(crate) body: String,
    #[aludel(many_to_one(fk = post_id, back_populates = comments))]
    pub(crate) post: One<Post>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "profiles")]
pub(crate) struct Profile {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(references = "Author::id", unique)]
    pub(crate) author_id: Option<i64>,
    pub(crate) bio: String,
    #[aludel(many_to_one(fk = author_id, back_populates = profile))]
    pub(crate) author: One<Author>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "tags")]
pub(crate) struct Tag {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(unique)]
    pub(crate) name: String,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "post_tags")]
pub(crate) struct PostTag {
    #[aludel(primary_key, references = "Post::id", on_delete = "cascade")]
    pub(crate) post_id: i64,
    #[aludel(primary_key, references = "Tag::id", on_delete = "cascade")]
    pub(crate) tag_id: i64,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "follows")]
pub(crate) struct Follow {
    #[aludel(primary_key, references = "Author::id")]
    pub(crate) follower_id: i64,
    #[aludel(primary_key, references = "Author::id")]
    pub(crate) followee_id: i64,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "events")]
pub(crate) struct Event {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(references = "Author::id", on_delete = "cascade", index)]
    pub(crate) author_id: Option<i64>,
    pub(crate) amount: i64,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "notes")]
pub(crate) struct Note {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(references = "Author::id")]
    pub(crate) author_id: i64,
}

/// An adjacency list: categories in a tree.
#[derive(Model, Debug, Clone)]
#[aludel(table = "categories")]
pub(crate) struct Category {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(references = "Category::id")]
    pub(crate) parent_id: Option<i64>,
    pub(crate) name: String,
    #[aludel(many_to_one(fk = parent_id, back_populates = children))]
    pub(crate) parent: One<Category>,
    #[aludel(one_to_many(fk = Category::parent_id, back_populates = parent, order_by = "id"))]
    pub(crate) children: Many<Category>,
}

/// A tree whose relationships load by default (`lazy = "selectin"`), at every level.
#[derive(Model, Debug, Clone)]
#[aludel(table = "tree_nodes")]
pub(crate) struct TreeNode {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(references = "TreeNode::id")]
    pub(crate) parent_id: Option<i64>,
    pub(crate) name: String,
    #[aludel(many_to_one(fk = parent_id, back_populates = children, lazy = "selectin"))]
    pub(crate) parent: One<TreeNode>,
    #[aludel(one_to_many(fk = TreeNode::parent_id, back_populates = parent, order_by = "id", lazy = "selectin"))]
    pub(crate) children: Many<TreeNode>,
}

/// Two relationships to the same table.
#[derive(Model, Debug, Clone)]
#[aludel(table = "messages")]
pub(crate) struct Message {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    #[aludel(references = "Author::id")]
    pub(crate) sender_id: i64,
    #[aludel(references = "Author::id")]
    pub(crate) recipient_id: i64,
    #[aludel(many_to_one(fk = sender_id))]
    pub(crate) sender: One<Author>,
    #[aludel(many_to_one(fk = recipient_id))]
    pub(crate) recipient: One<Author>,
}

/// An association object: a link row with its own data.
#[derive(Model, Debug, Clone)]
#[aludel(table = "courses")]
pub(crate) struct Course {
    #[aludel(primary_key, identity)]
    pub(crate) id: Generated<i64>,
    pub(crate) title: String,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "enrollments")]
pub(crate) struct Enrollment {
    #[aludel(primary_key, references = "Author::id")]
    pub(crate) student_id: i64,
    #[aludel(primary_key, references = "Course::id")]
    pub(crate) course_id: i64,
    pub(crate) grade: Option<String>,
    #[aludel(many_to_one(fk = course_id))]
    pub(crate) course: One<Course>,
}

pub(crate) fn author(name: &str) -> Obj<Author> {
    Obj::new(Author {
        id: Generated::unset(),
        name: name.into(),
        posts: Many::new(),
        profile: One::new(),
        following: Many::new(),
        followers: Many::new(),
        events: WriteOnly::new(),
        notes: Many::new(),
    })
}

pub(crate) fn post(title: &str) -> Obj<Post> {
    Obj::new(Post {
        id: Generated::unset(),
        author_id: None,
        title: title.into(),
        published: true,
        author: One::new(),
        comments: Many::new(),
        tags: Many::new(),
    })
}

pub(crate) fn comment(body: &str) -> Obj<Comment> {
    Obj::new(Comment {
        id: Generated::unset(),
        post_id: None,
        body: body.into(),
        post: One::new(),
    })
}

pub(crate) fn category(name: &str) -> Obj<Category> {
    Obj::new(Category {
        id: Generated::unset(),
        parent_id: None,
        name: name.into(),
        parent: One::new(),
        children: Many::new(),
    })
}

pub(crate) async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(
        &mut c,
        &[
            Author::TABLE,
            Post::TABLE,
            Comment::TABLE,
            Profile::TABLE,
            Tag::TABLE,
            PostTag::TABLE,
            Follow::TABLE,
            Event::TABLE,
            Note::TABLE,
            Category::TABLE,
            Message::TABLE,
            Course::TABLE,
            Enrollment::TABLE,
            TreeNode::TABLE,
        ],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    db
}

/// `n` authors with `posts` posts each and `comments` comments per post, inserted with SQL.
pub(crate) async fn seed(db: &TestDb, n: i64, posts: i64, comments: i64) {
    let mut c = db.admin().await.unwrap();
    let schema = db.schema().to_owned();
    let script = format!(
        "SET search_path TO \"{schema}\";
         INSERT INTO authors (name) SELECT 'a' || g FROM generate_series(1, {n}) g;
         INSERT INTO posts (author_id, title, published)
           SELECT a.id, 'p' || a.id || '-' || g, g % 2 = 0 FROM authors a, generate_series(1, {posts}) g;
         INSERT INTO comments (post_id, body)
           SELECT p.id, 'c' || p.id || '-' || g FROM posts p, generate_series(1, {comments}) g;"
    );
    c.driver_client()
        .unwrap()
        .batch_execute(&script)
        .await
        .unwrap();
}

/// Statements (no transaction control) since `mark`.
pub(crate) fn stmts(db: &TestDb, mark: usize) -> Vec<String> {
    db.recorder()
        .queries_since(mark)
        .into_iter()
        .map(|r| r.sql)
        .collect()
}

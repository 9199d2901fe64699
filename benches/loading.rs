//! W4: load 100 users × 10 posts × 10 comments as a tree
//! (`Vec<(User, Vec<(Post, Vec<Comment>)>)>`), diesel_bench's loading_associations shape.
//!
//!     cargo bench --bench loading        # ALUDEL_BENCH_QUICK=1 for a fast pass
//!
//! Raw side: three prepared statements (users; posts `WHERE user_id = ANY($1)`; comments
//! `WHERE post_id = ANY($1)`), grouped in memory with hash maps: exactly 3 statements.
//!
//! aludel side: `select(User).options(selectin(User::posts).then(selectin(Post::comments)))`
//! through a session: the same 3 statements (checked by an observer before timing), rows
//! mapped into tracked objects through the identity map, the tree navigated from the
//! loaded relationships.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

mod common;

use aludel::Generated;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aludel::{Many, Model, Obj, load::selectin, select};
use common::RawUser;
use criterion::{Criterion, SamplingMode};

/// The bench tables with their relationships declared.
#[derive(Model, Debug, Clone)]
#[aludel(table = "users")]
pub struct TreeUser {
    #[aludel(primary_key, identity)]
    pub id: Generated<i32>,
    pub name: String,
    pub hair_color: Option<String>,
    #[aludel(one_to_many(fk = TreePost::user_id))]
    pub posts: Many<TreePost>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "posts")]
pub struct TreePost {
    #[aludel(primary_key, identity)]
    pub id: Generated<i32>,
    pub user_id: i32,
    pub title: String,
    pub body: Option<String>,
    #[aludel(one_to_many(fk = TreeComment::post_id))]
    pub comments: Many<TreeComment>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "comments")]
pub struct TreeComment {
    #[aludel(primary_key, identity)]
    pub id: Generated<i32>,
    pub post_id: i32,
    pub text: String,
}

async fn aludel_tree(engine: &aludel::Engine) -> Vec<Obj<TreeUser>> {
    let mut s = engine.session();
    s.scalars(
        &select(TreeUser::ALL)
            .options(selectin(TreeUser::posts).then(selectin(TreePost::comments))),
    )
    .await
    .unwrap()
}

fn count_tree(users: &[Obj<TreeUser>]) -> (usize, usize, usize) {
    let mut posts = 0;
    let mut comments = 0;
    for u in users {
        for p in u.read().unwrap().posts.get().unwrap() {
            posts += 1;
            comments += p.read().unwrap().comments.len().unwrap();
        }
    }
    (users.len(), posts, comments)
}

/// Counts statements (transaction control excluded).
#[derive(Debug, Default, Clone)]
struct Counter(Arc<AtomicUsize>);

impl aludel::engine::Observer for Counter {
    fn on_statement(&self, e: &aludel::engine::StatementEvent<'_>) {
        if matches!(e.kind, aludel::engine::StatementKind::Query) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[derive(Debug)]
pub struct RawPost {
    pub id: i32,
    pub user_id: i32,
    pub title: String,
    pub body: Option<String>,
}

#[derive(Debug)]
pub struct RawComment {
    pub id: i32,
    pub post_id: i32,
    pub text: String,
}

type Tree = Vec<(RawUser, Vec<(RawPost, Vec<RawComment>)>)>;

async fn raw_tree(raw: &deadpool_postgres::Pool) -> Tree {
    let c = raw.get().await.unwrap();
    let su = c
        .prepare_cached("SELECT id, name, hair_color FROM users")
        .await
        .unwrap();
    let sp = c
        .prepare_cached("SELECT id, user_id, title, body FROM posts WHERE user_id = ANY($1)")
        .await
        .unwrap();
    let sc = c
        .prepare_cached("SELECT id, post_id, text FROM comments WHERE post_id = ANY($1)")
        .await
        .unwrap();
    let users: Vec<RawUser> = c
        .query(&su, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| RawUser {
            id: r.get(0),
            name: r.get(1),
            hair_color: r.get(2),
        })
        .collect();
    let user_ids: Vec<i32> = users.iter().map(|u| u.id).collect();
    let posts: Vec<RawPost> = c
        .query(&sp, &[&user_ids])
        .await
        .unwrap()
        .iter()
        .map(|r| RawPost {
            id: r.get(0),
            user_id: r.get(1),
            title: r.get(2),
            body: r.get(3),
        })
        .collect();
    let post_ids: Vec<i32> = posts.iter().map(|p| p.id).collect();
    let mut comments_by_post: HashMap<i32, Vec<RawComment>> = HashMap::with_capacity(posts.len());
    for r in c.query(&sc, &[&post_ids]).await.unwrap().iter() {
        let cm = RawComment {
            id: r.get(0),
            post_id: r.get(1),
            text: r.get(2),
        };
        comments_by_post.entry(cm.post_id).or_default().push(cm);
    }
    let mut posts_by_user: HashMap<i32, Vec<(RawPost, Vec<RawComment>)>> =
        HashMap::with_capacity(users.len());
    for p in posts {
        let cs = comments_by_post.remove(&p.id).unwrap_or_default();
        posts_by_user.entry(p.user_id).or_default().push((p, cs));
    }
    users
        .into_iter()
        .map(|u| {
            let ps = posts_by_user.remove(&u.id).unwrap_or_default();
            (u, ps)
        })
        .collect()
}

fn w4(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    engine: &aludel::Engine,
    raw: &deadpool_postgres::Pool,
) {
    rt.block_on(common::seed_tree(100, 10));
    // Exactly three statements, checked once outside the timing.
    let counter = Counter::default();
    let counted = common::engine_builder(4)
        .observer(counter.clone())
        .build()
        .unwrap();
    let tree = rt.block_on(aludel_tree(&counted));
    assert_eq!(count_tree(&tree), (100, 1_000, 10_000));
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        3,
        "selectin chain: 3 statements"
    );
    common::note("W4: the aludel side ran exactly 3 statements (observer count)");
    let mut g = c.benchmark_group("W4 load 100 users x 10 posts x 10 comments");
    g.sampling_mode(SamplingMode::Flat);
    let key = "W4 tree 100x10x10".to_owned();
    g.bench_function("selectin chain vs raw 3 queries", |b| {
        b.iter_custom(|iters| {
            let raw = raw.clone();
            let engine = engine.clone();
            common::interleaved(
                rt,
                &key,
                iters,
                move || {
                    let engine = engine.clone();
                    async move {
                        let users = aludel_tree(&engine).await;
                        assert_eq!(count_tree(&users).2, 10_000);
                    }
                },
                move || {
                    let raw = raw.clone();
                    async move {
                        let tree = raw_tree(&raw).await;
                        assert_eq!(tree.len(), 100);
                        let comments: usize = tree
                            .iter()
                            .flat_map(|(_, p)| p.iter().map(|(_, c)| c.len()))
                            .sum();
                        assert_eq!(comments, 10_000);
                    }
                },
            )
        });
    });
    g.finish();
}

fn main() {
    let rt = common::runtime();
    let engine = common::engine(4);
    rt.block_on(common::reset(&engine));
    let raw = common::raw_pool(4);
    let mut c = common::criterion();
    w4(&mut c, &rt, &engine, &raw);
    c.final_summary();
    common::report("loading", &[("W4", 1.15)]);
}

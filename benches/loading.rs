//! W4: load 100 users × 10 posts × 10 comments as a tree
//! (`Vec<(User, Vec<(Post, Vec<Comment>)>)>`), diesel_bench's loading_associations shape.
//!
//!     cargo bench --bench loading --features testing        # ALUDEL_BENCH_QUICK=1 for a fast pass
//!
//! Raw side: three prepared statements (users; posts `WHERE user_id = ANY($1)`; comments
//! `WHERE post_id = ANY($1)`), grouped in memory with hash maps: exactly 3 statements.
//!
//! The aludel side (selectin loading, chained) is PENDING: relationships and loader options
//! are being built on another branch. Until then this group reports the raw side only.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::collections::HashMap;

use common::RawUser;
use criterion::{Criterion, SamplingMode};

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

fn w4(c: &mut Criterion, rt: &tokio::runtime::Runtime, raw: &deadpool_postgres::Pool) {
    rt.block_on(common::seed_tree(100, 10));
    let mut g = c.benchmark_group("W4 load 100 users x 10 posts x 10 comments");
    g.sampling_mode(SamplingMode::Flat);
    let key = "W4 tree 100x10x10".to_owned();
    g.bench_function("raw 3 queries", |b| {
        b.iter_custom(|iters| {
            let raw = raw.clone();
            // TODO(W4, relationships branch): time the aludel side interleaved with this one,
            // replacing `raw_only` by `common::interleaved` with, as its aludel closure:
            //
            //     let mut s = engine.session();
            //     let users: Vec<Obj<User>> = s
            //         .scalars(&select(User::ALL).options(selectin(User::posts).selectin(Post::comments)))
            //         .await
            //         .unwrap();
            //     // walk users → posts → comments, asserting 100 / 1,000 / 10,000
            //
            // and assert on the session's recorder (or an Observer) that exactly 3 statements
            // ran. Target: ratio ≤ 1.10 ("W4" in `report`'s targets below).
            common::raw_only(rt, &key, iters, move || {
                let raw = raw.clone();
                async move {
                    let tree = raw_tree(&raw).await;
                    assert_eq!(tree.len(), 100);
                    let posts: usize = tree.iter().map(|(_, p)| p.len()).sum();
                    let comments: usize = tree
                        .iter()
                        .flat_map(|(_, p)| p.iter().map(|(_, c)| c.len()))
                        .sum();
                    assert_eq!((posts, comments), (1_000, 10_000));
                }
            })
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
    w4(&mut c, &rt, &raw);
    c.final_summary();
    common::report("loading", &[("W4", 1.10)]);
}

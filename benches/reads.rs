//! Read workloads W1 (select all users: rows through `session.all`, and the tracked path —
//! `session.scalars` into the identity map, as a user loads objects — at n = 10,000), W3
//! (users LEFT JOIN posts), W6 (concurrent primary-key lookups).
//!
//!     cargo bench --bench reads          # ALUDEL_BENCH_QUICK=1 for a fast pass

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::type_complexity
)]

mod common;

use std::sync::Arc;

use aludel::{Obj, select};
use common::{Post, RawUser, User};
use criterion::{BenchmarkId, Criterion};

fn w1(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    engine: &aludel::Engine,
    raw: &deadpool_postgres::Pool,
) {
    let mut g = c.benchmark_group("W1 select all users");
    for n in [1i64, 100, 10_000] {
        rt.block_on(common::seed_users(n, false));
        let key = format!("W1 n={n}");
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let engine = engine.clone();
                let raw = raw.clone();
                common::interleaved(
                    rt,
                    &key,
                    iters,
                    move || {
                        let engine = engine.clone();
                        async move {
                            let mut s = engine.session();
                            let users: Vec<User> = s.all(&select(User::ALL)).await.unwrap();
                            assert_eq!(users.len() as i64, n);
                        }
                    },
                    move || {
                        let raw = raw.clone();
                        async move {
                            let users = common::raw_all_users(&raw).await;
                            assert_eq!(users.len() as i64, n);
                        }
                    },
                )
            });
        });
    }
    g.finish();
}

fn w3(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    engine: &aludel::Engine,
    raw: &deadpool_postgres::Pool,
) {
    let mut g = c.benchmark_group("W3 users left join posts");
    for n in [100i64, 10_000] {
        rt.block_on(common::seed_users(n, true));
        let key = format!("W3 n={n}");
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let engine = engine.clone();
                let raw = raw.clone();
                common::interleaved(
                    rt,
                    &key,
                    iters,
                    move || {
                        let engine = engine.clone();
                        async move {
                            let mut s = engine.session();
                            let q = select((User::ALL, Post::ALL.optional()))
                                .left_join::<Post>(Post::user_id.eq(User::id))
                                .filter(User::hair_color.eq("black"));
                            let rows: Vec<(User, Option<Post>)> = s.all(&q).await.unwrap();
                            assert_eq!(rows.len() as i64, n / 2);
                        }
                    },
                    move || {
                        let raw = raw.clone();
                        async move {
                            let c = raw.get().await.unwrap();
                            let st = c
                                .prepare_cached(
                                    "SELECT u.id, u.name, u.hair_color, p.id, p.user_id, p.title, p.body \
                                     FROM users u LEFT OUTER JOIN posts p ON p.user_id = u.id WHERE u.hair_color = $1",
                                )
                                .await
                                .unwrap();
                            let rows = c.query(&st, &[&"black"]).await.unwrap();
                            let out: Vec<(RawUser, Option<(i32, i32, String, Option<String>)>)> = rows
                                .iter()
                                .map(|r| {
                                    let u = RawUser { id: r.get(0), name: r.get(1), hair_color: r.get(2) };
                                    let pid: Option<i32> = r.get(3);
                                    (u, pid.map(|id| (id, r.get(4), r.get(5), r.get(6))))
                                })
                                .collect();
                            assert_eq!(out.len() as i64, n / 2);
                        }
                    },
                )
            });
        });
    }
    g.finish();
}

fn w6(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    rt.block_on(common::seed_users(1_000, false));
    let engine = common::engine(8);
    let raw = common::raw_pool(8);
    let mut g = c.benchmark_group("W6 64 tasks x 1000 pk lookups, pool 8");
    g.sample_size(10);
    // Quick mode: 64 × 200 lookups (same shape, a fifth of the work) to keep the pass short.
    let per_task: i32 = if common::quick() { 200 } else { 1000 };
    let key = format!("W6 64x{per_task}");
    g.bench_function("tasks", |b| {
        b.iter_custom(|iters| {
            let engine = engine.clone();
            let raw = raw.clone();
            common::interleaved(
                rt,
                &key,
                iters,
                move || {
                    let engine = engine.clone();
                    async move {
                        let tasks: Vec<_> = (0..64)
                            .map(|t| {
                                let engine = engine.clone();
                                tokio::spawn(async move {
                                    for i in 0..per_task {
                                        let mut s = engine.session();
                                        let id: i32 = (t * 1000 + i) % 1000 + 1;
                                        let u: Obj<User> = s.get_one(id).await.unwrap();
                                        drop(u);
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    }
                },
                move || {
                    let raw = raw.clone();
                    async move {
                        let tasks: Vec<_> = (0..64)
                            .map(|t| {
                                let raw = raw.clone();
                                tokio::spawn(async move {
                                    for i in 0..per_task {
                                        let c = raw.get().await.unwrap();
                                        let st = c
                                            .prepare_cached("SELECT id, name, hair_color FROM users WHERE id = $1")
                                            .await
                                            .unwrap();
                                        let id: i32 = (t * 1000 + i) % 1000 + 1;
                                        let r = c.query_one(&st, &[&id]).await.unwrap();
                                        let _u = RawUser { id: r.get(0), name: r.get(1), hair_color: r.get(2) };
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    }
                },
            )
        });
    });
    g.finish();
}

/// W1 on the tracked path (issue 20): `scalars` maps every row into the session's identity
/// map (one object per key); the session and its objects are dropped inside the timing.
fn w1_tracked(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    engine: &aludel::Engine,
    raw: &deadpool_postgres::Pool,
) {
    rt.block_on(common::seed_users(10_000, false));
    let mut g = c.benchmark_group("W1 tracked (scalars) 10000 users");
    let key = "W1 tracked n=10000".to_owned();
    g.bench_function("10000", |b| {
        b.iter_custom(|iters| {
            let engine = engine.clone();
            let raw = raw.clone();
            common::interleaved(
                rt,
                &key,
                iters,
                move || {
                    let engine = engine.clone();
                    async move {
                        let mut s = engine.session();
                        let users: Vec<Obj<User>> = s.scalars(&select(User::ALL)).await.unwrap();
                        assert_eq!(users.len(), 10_000);
                    }
                },
                move || {
                    let raw = raw.clone();
                    async move {
                        let users = common::raw_all_users(&raw).await;
                        assert_eq!(users.len(), 10_000);
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
    w1(&mut c, &rt, &engine, &raw);
    w3(&mut c, &rt, &engine, &raw);
    w6(&mut c, &rt);
    w1_tracked(&mut c, &rt, &engine, &raw);
    c.final_summary();
    common::report(
        "reads",
        &[
            ("W1 tracked", 1.15),
            ("W1", 1.10),
            ("W3", 1.10),
            ("W6", 1.0 / 0.95),
        ],
    );
    let _ = Arc::new(());
}

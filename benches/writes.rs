//! Write workloads W2 (insert N users in one transaction through the unit of work, commit
//! with `expire_on_commit` at its default, count them; and the same through the Core
//! `insert_many` at N = 1,000) and W8 (modify one column of 1,000 loaded users and flush).
//!
//!     cargo bench --bench writes        # ALUDEL_BENCH_QUICK=1 for a fast pass
//!
//! Raw baselines (hand-written tokio-postgres, same deadpool settings, spawned tasks):
//! - W2: `client.transaction()`, ONE multi-row `INSERT … VALUES ($1,$2),… RETURNING id`
//!   (prepared, cached per N; the ids are written back into the structs, as the ORM does),
//!   commit, then `SELECT count(*) … WHERE hair_color = $1` of the rows just inserted (each
//!   round tags its rows; `hair_color` is indexed). Also a row-by-row loop (one prepared
//!   single-row INSERT per user, awaited in turn, same transaction) at N = 1,000: aludel must
//!   be ≥ 5× faster than it.
//! - W8: the same 1,000 rows loaded untimed in an open transaction on both sides; timed: the
//!   in-memory change, ONE `UPDATE users SET name = v.name FROM unnest($1::int4[],
//!   $2::text[]) …`, and COMMIT. aludel's timed part: `obj.write()` × 1,000 + `commit()`
//!   (flush = one `UPDATE … FROM (VALUES …) RETURNING …`, then COMMIT).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::type_complexity
)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aludel::func::count_star;
use aludel::{Generated, Obj, select};
use common::{RawUser, User};
use criterion::{BenchmarkId, Criterion, SamplingMode};

fn raw_insert_sql(n: usize) -> String {
    let mut sql = String::from("INSERT INTO users (name, hair_color) VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
    }
    sql.push_str(" RETURNING id");
    sql
}

fn new_users(n: usize, tag: &str) -> Vec<RawUser> {
    (0..n)
        .map(|i| RawUser {
            id: 0,
            name: format!("User {i}"),
            hair_color: Some(tag.to_owned()),
        })
        .collect()
}

fn w2(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    engine: &aludel::Engine,
    raw: &deadpool_postgres::Pool,
) {
    rt.block_on(common::seed_users(0, false));
    let mut g = c.benchmark_group("W2 insert N users, one transaction");
    g.sampling_mode(SamplingMode::Flat);
    for n in [1usize, 100, 1_000] {
        let key = format!("W2 n={n}");
        let insert_sql: std::sync::Arc<str> = raw_insert_sql(n).into();
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let engine = engine.clone();
                let raw = raw.clone();
                let insert_sql = insert_sql.clone();
                common::interleaved(
                    rt,
                    &key,
                    iters,
                    move || {
                        let engine = engine.clone();
                        async move {
                            let tag = format!("r{}", ROUND.fetch_add(1, Ordering::Relaxed));
                            let mut s = engine.session();
                            let objs: Vec<Obj<User>> = (0..n)
                                .map(|i| {
                                    Obj::new(User {
                                        id: Generated::unset(),
                                        name: format!("User {i}"),
                                        hair_color: Some(tag.clone()),
                                    })
                                })
                                .collect();
                            s.add_all(&objs).unwrap();
                            s.commit().await.unwrap();
                            // The count reads after the commit (expire_on_commit, the default,
                            // expired the objects), as the W2 shape does.
                            let count: i64 = s
                                .one(
                                    &select(count_star())
                                        .from::<User>()
                                        .filter(User::hair_color.eq(tag.clone())),
                                )
                                .await
                                .unwrap();
                            assert_eq!(count, n as i64);
                        }
                    },
                    move || {
                        let raw = raw.clone();
                        let insert_sql = insert_sql.clone();
                        async move {
                            let tag = format!("r{}", ROUND.fetch_add(1, Ordering::Relaxed));
                            let mut users = new_users(n, &tag);
                            let mut c = raw.get().await.unwrap();
                            let st = c.prepare_cached(&insert_sql).await.unwrap();
                            let count_st = c
                                .prepare_cached("SELECT count(*) FROM users WHERE hair_color = $1")
                                .await
                                .unwrap();
                            let tx = c.transaction().await.unwrap();
                            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                                Vec::with_capacity(2 * n);
                            for u in &users {
                                params.push(&u.name);
                                params.push(&u.hair_color);
                            }
                            let rows = tx.query(&st, &params).await.unwrap();
                            drop(params);
                            for (u, r) in users.iter_mut().zip(&rows) {
                                u.id = r.get(0);
                            }
                            tx.commit().await.unwrap();
                            let count: i64 = c.query_one(&count_st, &[&tag]).await.unwrap().get(0);
                            assert_eq!(count, n as i64);
                            assert_eq!(users.len(), n);
                        }
                    },
                )
            });
        });
    }
    // The Core path (issue 20): one `insert_many(…).returning(id)` on a connection in an
    // explicit transaction, ids written back, commit, count — the raw side's exact work.
    let n = 1_000usize;
    let key = "W2 core n=1000".to_owned();
    let insert_sql: std::sync::Arc<str> = raw_insert_sql(n).into();
    g.bench_function("core 1000", |b| {
        b.iter_custom(|iters| {
            let engine = engine.clone();
            let raw = raw.clone();
            let insert_sql = insert_sql.clone();
            common::interleaved(
                rt,
                &key,
                iters,
                move || {
                    let engine = engine.clone();
                    async move {
                        let tag = format!("r{}", ROUND.fetch_add(1, Ordering::Relaxed));
                        let mut users: Vec<User> = (0..n)
                            .map(|i| User {
                                id: Generated::unset(),
                                name: format!("User {i}"),
                                hair_color: Some(tag.clone()),
                            })
                            .collect();
                        let mut c = engine.connect().await.unwrap();
                        c.begin().await.unwrap();
                        let ids = c
                            .all(&aludel::insert_many(&users).returning(User::id))
                            .await
                            .unwrap();
                        for (u, id) in users.iter_mut().zip(ids) {
                            u.id = id.into();
                        }
                        c.commit().await.unwrap();
                        let count: i64 = c
                            .one(
                                &select(count_star())
                                    .from::<User>()
                                    .filter(User::hair_color.eq(tag.clone())),
                            )
                            .await
                            .unwrap();
                        assert_eq!(count, n as i64);
                    }
                },
                move || {
                    let raw = raw.clone();
                    let insert_sql = insert_sql.clone();
                    async move {
                        let tag = format!("r{}", ROUND.fetch_add(1, Ordering::Relaxed));
                        let mut users = new_users(n, &tag);
                        let mut c = raw.get().await.unwrap();
                        let st = c.prepare_cached(&insert_sql).await.unwrap();
                        let count_st = c
                            .prepare_cached("SELECT count(*) FROM users WHERE hair_color = $1")
                            .await
                            .unwrap();
                        let tx = c.transaction().await.unwrap();
                        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                            Vec::with_capacity(2 * n);
                        for u in &users {
                            params.push(&u.name);
                            params.push(&u.hair_color);
                        }
                        let rows = tx.query(&st, &params).await.unwrap();
                        drop(params);
                        for (u, r) in users.iter_mut().zip(&rows) {
                            u.id = r.get(0);
                        }
                        tx.commit().await.unwrap();
                        let count: i64 = c.query_one(&count_st, &[&tag]).await.unwrap().get(0);
                        assert_eq!(count, n as i64);
                    }
                },
            )
        });
    });
    // aludel's unit of work against a row-by-row loop (target: ≥ 5× faster, ratio ≤ 0.20).
    let n = 1_000usize;
    let key = "W2 vs row-by-row loop n=1000".to_owned();
    g.bench_function("vs row-by-row 1000", |b| {
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
                        let objs: Vec<Obj<User>> = (0..n)
                            .map(|i| {
                                Obj::new(User {
                                    id: Generated::unset(),
                                    name: format!("User {i}"),
                                    hair_color: Some("hair_color".to_owned()),
                                })
                            })
                            .collect();
                        s.add_all(&objs).unwrap();
                        s.commit().await.unwrap();
                    }
                },
                move || {
                    let raw = raw.clone();
                    async move {
                        let mut users = new_users(n, "loop");
                        let mut c = raw.get().await.unwrap();
                        let st = c
                            .prepare_cached(
                                "INSERT INTO users (name, hair_color) VALUES ($1, $2) RETURNING id",
                            )
                            .await
                            .unwrap();
                        let tx = c.transaction().await.unwrap();
                        for u in &mut users {
                            let r = tx.query_one(&st, &[&u.name, &u.hair_color]).await.unwrap();
                            u.id = r.get(0);
                        }
                        tx.commit().await.unwrap();
                    }
                },
            )
        });
    });
    g.finish();
}

/// A distinct value per round, so every flush really changes every row.
static ROUND: AtomicU64 = AtomicU64::new(0);

fn w8(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    engine: &aludel::Engine,
    raw: &deadpool_postgres::Pool,
) {
    rt.block_on(common::seed_users(1_000, false));
    let mut g = c.benchmark_group("W8 modify 1000 loaded users, flush");
    g.sampling_mode(SamplingMode::Flat);
    let key = "W8 n=1000".to_owned();
    g.bench_function("1000", |b| {
        b.iter_custom(|iters| {
            let engine = engine.clone();
            let raw = raw.clone();
            common::interleaved_timed(
                rt,
                &key,
                iters,
                move || {
                    let engine = engine.clone();
                    async move {
                        let round = ROUND.fetch_add(1, Ordering::Relaxed);
                        let mut s = engine.session();
                        let users: Vec<Obj<User>> = s.scalars(&select(User::ALL)).await.unwrap();
                        assert_eq!(users.len(), 1_000);
                        let start = Instant::now();
                        for u in &users {
                            let mut w = u.write().unwrap();
                            w.name = format!("User {} r{round}", w.id.get().unwrap());
                        }
                        s.commit().await.unwrap();
                        start.elapsed()
                    }
                },
                move || {
                    let raw = raw.clone();
                    async move {
                        let round = ROUND.fetch_add(1, Ordering::Relaxed);
                        let mut c = raw.get().await.unwrap();
                        let sel = c
                            .prepare_cached("SELECT id, name, hair_color FROM users")
                            .await
                            .unwrap();
                        let upd = c
                            .prepare_cached(
                                "UPDATE users SET name = v.name FROM unnest($1::int4[], $2::text[]) AS v(id, name) WHERE users.id = v.id",
                            )
                            .await
                            .unwrap();
                        let tx = c.transaction().await.unwrap();
                        let mut users: Vec<RawUser> = tx
                            .query(&sel, &[])
                            .await
                            .unwrap()
                            .iter()
                            .map(|r| RawUser {
                                id: r.get(0),
                                name: r.get(1),
                                hair_color: r.get(2),
                            })
                            .collect();
                        assert_eq!(users.len(), 1_000);
                        let start = Instant::now();
                        for u in &mut users {
                            u.name = format!("User {} r{round}", u.id);
                        }
                        let ids: Vec<i32> = users.iter().map(|u| u.id).collect();
                        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
                        let n = tx.execute(&upd, &[&ids, &names]).await.unwrap();
                        assert_eq!(n, 1_000);
                        tx.commit().await.unwrap();
                        start.elapsed()
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
    w2(&mut c, &rt, &engine, &raw);
    w8(&mut c, &rt, &engine, &raw);
    c.final_summary();
    common::report(
        "writes",
        &[
            ("W2 vs row-by-row", 0.20),
            ("W2 core n=1000", 1.10),
            ("W2 n=1000", 1.30),
            ("W2", 1.15),
            ("W8", 1.30),
        ],
    );
    let _ = Duration::ZERO;
}

//! W6: stream 1,000,000 parents with their 3,000,000 children (`session.stream_scalars` with
//! `selectin`, batches of 1,000) against hand-written tokio-postgres doing the same: a
//! cursor, `FETCH FORWARD 1000`, one `= ANY($1)` statement per batch for the children,
//! grouped in a map. And STR-06: `session.stream` against the buffered `session.all` for
//! 100 / 10,000 / 1,000,000 narrow rows (the "raw" column is the buffered read there).
//!
//!     cargo bench --bench stream_objects   # ALUDEL_BENCH_QUICK=1 for a fast pass
//!
//! Peak RSS: as in `benches/stream.rs`, the binary re-runs itself as a child process
//! (`ALUDEL_BENCH_RSS_CHILD=<side>:<parents>`) that streams once and prints `VmHWM`, for
//! 100,000 and 1,000,000 parents: flat means the two peaks are the same. Target < 64 MiB.
//!
//! Its tables live in a schema of their own (`aludel_bench_stream`), so it can run beside
//! the other benches.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::collections::HashMap;

use aludel::load::selectin;
use aludel::{Many, Model, select};
use criterion::{Criterion, SamplingMode};
use futures_util::TryStreamExt;

const SCHEMA: &str = "aludel_bench_stream";
const PARENTS: i64 = 1_000_000;
const BATCH: usize = 1_000;

#[derive(Model, Debug, Clone)]
#[aludel(table = "parents")]
pub struct Parent {
    #[aludel(primary_key)]
    pub id: i64,
    pub name: String,
    #[aludel(one_to_many(fk = Kid::parent_id, order_by = "id"))]
    pub kids: Many<Kid>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "kids")]
pub struct Kid {
    #[aludel(primary_key)]
    pub id: i64,
    #[aludel(references = "Parent::id")]
    pub parent_id: i64,
    pub qty: i32,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "narrow")]
pub struct Narrow {
    #[aludel(primary_key)]
    pub id: i64,
    pub v: i32,
}

fn engine(size: usize) -> aludel::Engine {
    aludel::Engine::builder(&common::url())
        .max_size(size)
        .options(&format!("-c search_path={SCHEMA}"))
        .application_name("aludel-bench-stream")
        .build()
        .unwrap()
}

fn raw_pool(size: usize) -> deadpool_postgres::Pool {
    let mut cfg: tokio_postgres::Config = common::url().parse().unwrap();
    cfg.options(format!("-c search_path={SCHEMA}"));
    cfg.application_name("aludel-bench-stream-raw");
    let mgr = deadpool_postgres::Manager::from_config(
        cfg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(mgr)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .unwrap()
}

async fn seed() {
    let admin = aludel::Engine::new(&common::url()).unwrap();
    let mut c = admin.connect().await.unwrap();
    c.batch_execute(
        "DROP SCHEMA IF EXISTS aludel_bench_stream CASCADE; CREATE SCHEMA aludel_bench_stream;
         CREATE TABLE aludel_bench_stream.parents (id int8 PRIMARY KEY, name text NOT NULL);
         CREATE TABLE aludel_bench_stream.kids (id int8 PRIMARY KEY, parent_id int8 NOT NULL, qty int4 NOT NULL);
         CREATE TABLE aludel_bench_stream.narrow (id int8 PRIMARY KEY, v int4 NOT NULL);
         INSERT INTO aludel_bench_stream.parents SELECT g, 'parent ' || g FROM generate_series(1, 1000000) g;
         INSERT INTO aludel_bench_stream.kids SELECT 3 * p + k, p, (k + 1)::int4
             FROM generate_series(1, 1000000) p, generate_series(0, 2) k;
         CREATE INDEX ON aludel_bench_stream.kids (parent_id);
         INSERT INTO aludel_bench_stream.narrow SELECT g, (g % 1000)::int4 FROM generate_series(1, 1000000) g;",
    )
    .await
    .unwrap();
    // One statement each: VACUUM cannot run in the implicit transaction of a multi-statement
    // script.
    for vacuum in [
        "VACUUM ANALYZE aludel_bench_stream.parents",
        "VACUUM ANALYZE aludel_bench_stream.kids",
        "VACUUM ANALYZE aludel_bench_stream.narrow",
    ] {
        c.batch_execute(vacuum).await.unwrap();
    }
}

/// (parents, sum of the children's qty) streaming parents `1..=n` with their children.
async fn aludel_objects(engine: &aludel::Engine, n: i64) -> (i64, i64) {
    let mut s = engine.session();
    let q = select(Parent::ALL)
        .filter(Parent::id.le(n))
        .order_by(Parent::id.asc())
        .options(selectin(Parent::kids));
    let mut batches = s.stream_scalars(&q, BATCH).await.unwrap();
    let (mut parents, mut qty) = (0i64, 0i64);
    while let Some(batch) = batches.try_next().await.unwrap() {
        for p in &batch {
            parents += 1;
            for k in p.read().unwrap().kids.get().unwrap() {
                qty += i64::from(k.read().unwrap().qty);
            }
        }
    }
    (parents, qty)
}

struct RawParent {
    id: i64,
    #[allow(dead_code)]
    name: String,
    kids: Vec<RawKid>,
}

struct RawKid {
    #[allow(dead_code)]
    id: i64,
    qty: i32,
}

/// The same by hand: a cursor in a repeatable-read transaction, a batch of parents per
/// FETCH, their children with one `= ANY($1)` statement, grouped by parent.
async fn raw_objects(pool: &deadpool_postgres::Pool, n: i64) -> (i64, i64) {
    let mut c = pool.get().await.unwrap();
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .unwrap();
    tx.execute(
        "DECLARE raw_parents NO SCROLL CURSOR FOR SELECT id, name FROM parents WHERE id <= $1 ORDER BY id",
        &[&n],
    )
    .await
    .unwrap();
    let fetch = tx
        .prepare(&format!("FETCH FORWARD {BATCH} FROM raw_parents"))
        .await
        .unwrap();
    let kids = tx
        .prepare("SELECT id, parent_id, qty FROM kids WHERE parent_id = ANY($1) ORDER BY id")
        .await
        .unwrap();
    let (mut parents, mut qty) = (0i64, 0i64);
    loop {
        let rows = tx.query(&fetch, &[]).await.unwrap();
        if rows.is_empty() {
            break;
        }
        let mut batch: Vec<RawParent> = rows
            .iter()
            .map(|r| RawParent {
                id: r.get(0),
                name: r.get(1),
                kids: Vec::new(),
            })
            .collect();
        let ids: Vec<i64> = batch.iter().map(|p| p.id).collect();
        let mut by_parent: HashMap<i64, Vec<RawKid>> = HashMap::with_capacity(ids.len());
        for r in tx.query(&kids, &[&ids]).await.unwrap() {
            by_parent.entry(r.get(1)).or_default().push(RawKid {
                id: r.get(0),
                qty: r.get(2),
            });
        }
        for p in &mut batch {
            p.kids = by_parent.remove(&p.id).unwrap_or_default();
        }
        for p in &batch {
            parents += 1;
            qty += p.kids.iter().map(|k| i64::from(k.qty)).sum::<i64>();
        }
        if rows.len() < BATCH {
            break;
        }
    }
    tx.rollback().await.unwrap();
    (parents, qty)
}

fn expected(n: i64) -> (i64, i64) {
    (n, 6 * n)
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Child mode: stream `n` parents once, print the memory figures.
fn child(spec: &str) {
    let (side, n) = spec.split_once(':').unwrap();
    let n: i64 = n.parse().unwrap();
    let rt = common::runtime();
    let got = rt.block_on(async {
        if side == "aludel" {
            let engine = engine(1);
            drop(engine.connect().await.unwrap());
            let before = status_kib("VmRSS:");
            let got = aludel_objects(&engine, n).await;
            println!("RSS_BEFORE_KIB={before}");
            got
        } else {
            let raw = raw_pool(1);
            drop(raw.get().await.unwrap());
            let before = status_kib("VmRSS:");
            let got = raw_objects(&raw, n).await;
            println!("RSS_BEFORE_KIB={before}");
            got
        }
    });
    assert_eq!(got, expected(n));
    println!("VMHWM_KIB={}", status_kib("VmHWM:"));
}

fn measure_rss(side: &str, n: i64) -> (u64, u64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("ALUDEL_BENCH_RSS_CHILD", format!("{side}:{n}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (get("RSS_BEFORE_KIB="), get("VMHWM_KIB="))
}

fn w6(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let engine = engine(2);
    let raw = raw_pool(2);
    let mut g = c.benchmark_group("W6 stream 1M parents x 3 children");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    let key = "W6 objects n=1000000".to_owned();
    g.bench_function("1000000", |b| {
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
                        assert_eq!(aludel_objects(&engine, PARENTS).await, expected(PARENTS));
                    }
                },
                move || {
                    let raw = raw.clone();
                    async move {
                        assert_eq!(raw_objects(&raw, PARENTS).await, expected(PARENTS));
                    }
                },
            )
        });
    });
    g.finish();
}

async fn streamed(engine: &aludel::Engine, n: i64) -> i64 {
    let mut s = engine.session();
    let q = select(Narrow::ALL).filter(Narrow::id.le(n));
    let mut rows = s.stream(&q).await.unwrap();
    let mut sum = 0i64;
    while let Some(r) = rows.try_next().await.unwrap() {
        sum += i64::from(r.v);
    }
    sum
}

async fn buffered(engine: &aludel::Engine, n: i64) -> i64 {
    let mut s = engine.session();
    let q = select(Narrow::ALL).filter(Narrow::id.le(n));
    s.all(&q)
        .await
        .unwrap()
        .iter()
        .map(|r| i64::from(r.v))
        .sum()
}

fn str06(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let engine = engine(2);
    let mut g = c.benchmark_group("STR-06 stream vs buffered");
    for n in [100i64, 10_000, 1_000_000] {
        if n == 1_000_000 {
            g.sampling_mode(SamplingMode::Flat);
            g.sample_size(10);
        }
        let key = format!("STR-06 stream/buffered n={n}");
        g.bench_function(n.to_string(), |b| {
            b.iter_custom(|iters| {
                let (e1, e2) = (engine.clone(), engine.clone());
                common::interleaved(
                    rt,
                    &key,
                    iters,
                    move || {
                        let e = e1.clone();
                        async move {
                            assert!(streamed(&e, n).await > 0);
                        }
                    },
                    move || {
                        let e = e2.clone();
                        async move {
                            assert!(buffered(&e, n).await > 0);
                        }
                    },
                )
            });
        });
    }
    g.finish();
}

fn main() {
    if let Ok(spec) = std::env::var("ALUDEL_BENCH_RSS_CHILD") {
        child(&spec);
        return;
    }
    let rt = common::runtime();
    rt.block_on(seed());
    let mut c = common::criterion();
    w6(&mut c, &rt);
    str06(&mut c, &rt);
    c.final_summary();
    let mib = |k: u64| k as f64 / 1024.0;
    for side in ["aludel", "raw"] {
        let (b1, p1) = measure_rss(side, 100_000);
        let (b2, p2) = measure_rss(side, PARENTS);
        let verdict = if side == "raw" {
            ""
        } else if p2 < 64 * 1024 {
            " ✓ (< 64 MiB)"
        } else {
            " ✗ (≥ 64 MiB)"
        };
        common::note(format!(
            "Peak RSS streaming parents with 3 children each ({side}, child process, `VmHWM`): \
             100,000 parents {:.1} MiB (before {:.1}), 1,000,000 parents {:.1} MiB (before {:.1}){verdict}",
            mib(p1),
            mib(b1),
            mib(p2),
            mib(b2)
        ));
    }
    common::note(
        "STR-06 rows: the \"raw\" column is the buffered `session.all` of the same rows; the ratio \
         is stream / buffered.",
    );
    common::report("stream_objects", &[("W6", 1.30)]);
}

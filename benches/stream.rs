//! W5: stream 1,000,000 narrow rows (`narrow(id int8, v int4)`) with `session.stream`, against
//! tokio-postgres' `query_raw` row stream mapped with `Row::get` by index; and the peak
//! resident memory of doing it.
//!
//!     cargo bench --bench stream        # ALUDEL_BENCH_QUICK=1 for a fast pass
//!
//! Peak RSS: the bench binary re-runs itself as a child process
//! (`ALUDEL_BENCH_RSS_CHILD=aludel|raw`) that builds the runtime and pool, streams the
//! 1,000,000 rows once, and prints `VmHWM` (the kernel's peak resident set size) from
//! `/proc/self/status`, together with `VmRSS` just before the stream started (runtime,
//! connection, binary). A fresh process is needed because `VmHWM` never goes down: in the
//! benchmark process it would include the timing loop's history. Target: peak < 64 MiB.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

mod common;

use aludel::select;
use common::Narrow;
use criterion::{Criterion, SamplingMode};
use futures_util::{StreamExt, TryStreamExt};

const ROWS: i64 = 1_000_000;

async fn aludel_stream(engine: &aludel::Engine) -> i64 {
    let mut s = engine.session();
    let mut rows = s.stream(&select(Narrow::ALL)).await.unwrap();
    let (mut n, mut sum) = (0i64, 0i64);
    while let Some(r) = rows.try_next().await.unwrap() {
        n += 1;
        sum += i64::from(r.v) + r.id;
    }
    assert!(sum > 0);
    n
}

async fn raw_stream(raw: &deadpool_postgres::Pool) -> i64 {
    let c = raw.get().await.unwrap();
    let st = c.prepare_cached("SELECT id, v FROM narrow").await.unwrap();
    let rows = c
        .query_raw(
            &st,
            std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
        )
        .await
        .unwrap();
    let mut rows = std::pin::pin!(rows);
    let (mut n, mut sum) = (0i64, 0i64);
    while let Some(r) = rows.next().await {
        let r = r.unwrap();
        let row = Narrow {
            id: r.get(0),
            v: r.get(1),
        };
        n += 1;
        sum += i64::from(row.v) + row.id;
    }
    assert!(sum > 0);
    n
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Child mode: stream once, print the memory figures.
fn child(side: &str) {
    let rt = common::runtime();
    let n = rt.block_on(async {
        if side == "aludel" {
            let engine = common::engine(1);
            // Open the connection first so the baseline includes it.
            drop(engine.connect().await.unwrap());
            let before = status_kib("VmRSS:");
            let n = aludel_stream(&engine).await;
            println!("RSS_BEFORE_KIB={before}");
            n
        } else {
            let raw = common::raw_pool(1);
            drop(raw.get().await.unwrap());
            let before = status_kib("VmRSS:");
            let n = raw_stream(&raw).await;
            println!("RSS_BEFORE_KIB={before}");
            n
        }
    });
    assert_eq!(n, ROWS);
    println!("VMHWM_KIB={}", status_kib("VmHWM:"));
}

fn measure_rss(side: &str) -> (u64, u64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("ALUDEL_BENCH_RSS_CHILD", side)
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

fn w5(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let engine = common::engine(2);
    let raw = common::raw_pool(2);
    let mut g = c.benchmark_group("W5 stream 1M narrow rows");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    let key = "W5 n=1000000".to_owned();
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
                        assert_eq!(aludel_stream(&engine).await, ROWS);
                    }
                },
                move || {
                    let raw = raw.clone();
                    async move {
                        assert_eq!(raw_stream(&raw).await, ROWS);
                    }
                },
            )
        });
    });
    g.finish();
}

fn main() {
    if let Ok(side) = std::env::var("ALUDEL_BENCH_RSS_CHILD") {
        child(&side);
        return;
    }
    let rt = common::runtime();
    let engine = common::engine(2);
    rt.block_on(common::reset(&engine));
    rt.block_on(async {
        let admin = aludel::Engine::new(&common::url()).unwrap();
        let mut c = admin.connect().await.unwrap();
        c.execute(
            &aludel::sql(
                "INSERT INTO aludel_bench.narrow (id, v) SELECT g, (g % 1000)::int4 FROM generate_series(1, $1::int8) g",
            )
            .bind(ROWS),
        )
        .await
        .unwrap();
        c.batch_execute("VACUUM ANALYZE aludel_bench.narrow").await.unwrap();
    });
    let mut c = common::criterion();
    w5(&mut c, &rt);
    c.final_summary();
    let (a_before, a_peak) = measure_rss("aludel");
    let (r_before, r_peak) = measure_rss("raw");
    let mib = |k: u64| k as f64 / 1024.0;
    let verdict = if a_peak < 64 * 1024 { "✓" } else { "✗" };
    common::note(format!(
        "Peak RSS streaming 1,000,000 rows (child process, `VmHWM`): aludel {:.1} MiB (RSS before the stream {:.1} MiB), raw {:.1} MiB (before {:.1} MiB); target < 64 MiB {verdict}",
        mib(a_peak),
        mib(a_before),
        mib(r_peak),
        mib(r_before)
    ));
    common::report("stream", &[("W5", 1.10)]);
}

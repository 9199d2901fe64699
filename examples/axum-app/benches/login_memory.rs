//! Peak memory of the app process under 100 parallel logins (issue 15: unbounded argon2
//! took it to 1.9 GB). Starts the real binary (built in the bench profile) against a schema of
//! its own, registers one user, fires 100 logins at once from 100 threads, then reads the
//! app's `VmHWM` (peak resident set) from `/proc`. Fails (exit 1) at 300 MB or more.
//!
//!     cargo bench -p axum-app --bench login_memory

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::{http, peak_rss_kib, start};

const LOGINS: usize = 100;
const LIMIT_MB: u64 = 300;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(aludel::testing::TestDb::new()).unwrap();
    let base = aludel::testing::database_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{}", db.schema());
    let mut app = start(
        env!("CARGO_BIN_EXE_axum-app"),
        &[("DATABASE_URL", &url)],
        Duration::from_secs(120),
    );
    let pid = app.child.id();
    let port = app.port;
    let reg = r#"{"user":{"username":"mem","email":"mem@example.com","password":"password123"}}"#;
    assert_eq!(http(port, "POST", "/api/users", Some(reg)).0, 201);
    let login = r#"{"user":{"email":"mem@example.com","password":"password123"}}"#;
    assert_eq!(http(port, "POST", "/api/users/login", Some(login)).0, 200);
    let before = peak_rss_kib(pid);

    let barrier = Arc::new(Barrier::new(LOGINS));
    let started = Instant::now();
    let threads: Vec<_> = (0..LOGINS)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                http(port, "POST", "/api/users/login", Some(login)).0
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    let peak = peak_rss_kib(pid);
    let _ = app.child.kill();
    let _ = app.child.wait();
    drop(db);

    let ok = statuses.iter().filter(|s| **s == 200).count();
    println!(
        "{LOGINS} parallel logins: {ok} answered 200 in {:.1} s; app peak RSS (VmHWM) {:.1} MB \
         (after one login: {:.1} MB); limit {LIMIT_MB} MB",
        elapsed.as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    assert_eq!(ok, LOGINS, "statuses: {statuses:?}");
    if peak / 1024 >= LIMIT_MB {
        println!("FAIL: peak RSS over {LIMIT_MB} MB");
        std::process::exit(1);
    }
}

//! The real binary as an operator meets it: start-up logging, readable start-up failures, and
//! the throwaway cluster removed however the process ends.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{http, start};

const BIN: &str = env!("CARGO_BIN_EXE_axum-app");
const STARTUP: Duration = Duration::from_secs(120);

/// Runs the binary until it exits (it must, within a minute); returns its status and output.
fn run_to_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the app did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A URL for the app that puts its tables in the test's own schema.
fn schema_url(db: &aludel::testing::TestDb) -> String {
    let base = aludel::testing::database_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{}", db.schema())
}

#[tokio::test]
async fn start_up_failures_say_what_failed_and_what_to_set() {
    let db = aludel::testing::TestDb::new().await.unwrap();
    let url = schema_url(&db);
    // The port is taken.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, out) = run_to_exit(&[("PORT", &port), ("DATABASE_URL", &url)]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "cannot listen on 127.0.0.1:{port}: port {port} is already in use"
        )),
        "{out}"
    );
    assert!(out.contains("set PORT"), "{out}");
    assert!(!out.contains("Os {"), "no Debug of io errors: {out}");

    // The database is unreachable: the URL is shown with its password masked.
    let (code, out) =
        run_to_exit(&[("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/conduit")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("cannot connect to PostgreSQL at postgres://app:***@127.0.0.1:1/conduit"),
        "{out}"
    );
    assert!(out.contains("Set DATABASE_URL"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");

    // Bad settings name the variable.
    let (code, out) = run_to_exit(&[("PORT", "http"), ("DATABASE_URL", &url)]);
    assert_eq!(code, Some(1));
    assert!(out.contains("PORT=http is not a port number"), "{out}");
    let (code, out) = run_to_exit(&[("JWT_SECRET", "short"), ("DATABASE_URL", &url)]);
    assert_eq!(code, Some(1));
    assert!(out.contains("JWT_SECRET is 5 bytes long"), "{out}");
    drop(taken);
}

#[tokio::test]
async fn start_up_logs_the_server_and_the_database_and_no_fixed_secret() {
    let db = aludel::testing::TestDb::new().await.unwrap();
    let url = schema_url(&db);
    let env = [("DATABASE_URL", url.as_str())];
    let mut app = start(BIN, &env, STARTUP);
    let log = app.startup_log.join("\n");
    assert!(log.contains("database: PostgreSQL "), "{log}");
    assert!(log.contains("server: axum"), "{log}");
    assert!(log.contains("random secret"), "{log}");
    let (status, body) = http(app.port, "GET", "/api/tags", None);
    assert_eq!(status, 200, "{body}");
    // A second process has another secret: a token of the first does not verify there.
    let reg = r#"{"user":{"username":"proc","email":"proc@example.com","password":"password123"}}"#;
    let (status, body) = http(app.port, "POST", "/api/users", Some(reg));
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = v["user"]["token"].as_str().unwrap().to_owned();
    let mut other = start(BIN, &env, STARTUP);
    let req = format!("GET /api/user HTTP/1.1\r\nAuthorization: Token {token}\r\n");
    let (status, _) = authed(other.port, &req);
    assert_eq!(status, 401);
    let (status, _) = authed(app.port, &req);
    assert_eq!(status, 200);
    for a in [&mut app, &mut other] {
        let _ = a.child.kill();
        let _ = a.child.wait();
    }
}

/// A GET with an Authorization header (the helper sends none).
fn authed(port: u16, head: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "{head}Host: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw)
}

/// The throwaway cluster's folder, from the start-up log line that names it.
fn cluster_dir(log: &[String]) -> PathBuf {
    let marker = "/aludel-pg-";
    let line = log
        .iter()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no cluster folder in {log:#?}"));
    let at = line.find(marker).unwrap();
    let start = line[..at]
        .rfind(|c: char| c == '=' || c.is_whitespace())
        .map_or(0, |i| i + 1);
    let end = line[at..]
        .find(|c: char| c.is_whitespace() || c == '\u{1b}')
        .map_or(line.len(), |i| at + i);
    PathBuf::from(&line[start..end])
}

/// Waits (bounded) until `dir` is gone; false if it is still there after a minute.
fn gone(dir: &std::path::Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while dir.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

#[test]
fn the_throwaway_cluster_is_removed_when_the_app_is_killed_or_hung_up() {
    for signal in ["KILL", "HUP"] {
        let mut app = start(BIN, &[("CONDUIT_TEMP_DB", "1")], STARTUP);
        let dir = cluster_dir(&app.startup_log);
        assert!(dir.join("data").exists(), "{}", dir.display());
        let (status, _) = http(app.port, "GET", "/api/tags", None);
        assert_eq!(status, 200);
        let pid = app.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let exit = app.child.wait().unwrap();
        assert!(
            gone(&dir),
            "SIG{signal} ({exit}): {} is still there",
            dir.display()
        );
        // No server of that cluster is left running either (the watchdog shell itself may
        // still be finishing: it names the folder too).
        let dir_text = dir.display().to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
            let procs = String::from_utf8_lossy(&ps.stdout).into_owned();
            let servers: Vec<&str> = procs
                .lines()
                .filter(|l| l.contains(&dir_text) && !l.starts_with("sh "))
                .collect();
            if servers.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "SIG{signal} left a server: {servers:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

//! Running the real `axum-app` binary: start it on a free port, wait until it serves, talk
//! plain HTTP/1.1 to it. Shared by the process tests and the memory bench.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The app process and what it logged while starting.
pub(crate) struct App {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) startup_log: Vec<String>,
    /// Later log lines (the reader thread keeps draining stdout so the app never blocks).
    pub(crate) log: mpsc::Receiver<String>,
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `bin` with `env` on a free port; returns once it logged that it serves (at most
/// `wait`), or panics with its output.
pub(crate) fn start(bin: &str, env: &[(&str, &str)], wait: Duration) -> App {
    let (mut child, port, rx) = spawn(bin, env);
    let mut startup_log = Vec::new();
    loop {
        match rx.recv_timeout(wait) {
            Ok(line) => {
                let serving = line.contains("serving the RealWorld API");
                startup_log.push(line);
                if serving {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the app did not start: {startup_log:#?}");
            }
        }
    }
    App {
        child,
        port,
        startup_log,
        log: rx,
    }
}

/// Starts `bin` with `env` on a free port without waiting: the process, its port, and its
/// output lines (stdout and stderr) as they come.
pub(crate) fn spawn(bin: &str, env: &[(&str, &str)]) -> (Child, u16, mpsc::Receiver<String>) {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.env("PORT", port.to_string())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the app binary");
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    (child, port, rx)
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
pub(crate) fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `VmHWM` (peak resident set) of a process, in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

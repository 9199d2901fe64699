//! A throwaway PostgreSQL cluster: `initdb` + `pg_ctl` on a free port in a temporary folder.

use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// A private PostgreSQL server for this process, stopped and deleted on drop.
///
/// It is also stopped and deleted when the process dies without dropping it (SIGKILL, an
/// unhandled SIGHUP, `process::exit`, a panic that aborts): `start` spawns a small watchdog
/// shell (in its own process group, ignoring INT/TERM/HUP) that blocks reading a pipe whose
/// only write end this value holds. The kernel closes that end when the process ends, however
/// it ends; the watchdog then stops the server and removes its folder.
///
/// Uses the server binaries found through `PG_BIN`, `pg_config --bindir`, or the newest
/// `/usr/lib/postgresql/<version>/bin`. When run as root (PostgreSQL refuses to), the
/// cluster is created and run as the `postgres` OS user through `runuser`.
///
/// ```no_run
/// let cluster = aludel::testing::TempCluster::start()?;
/// let engine = aludel::Engine::new(&cluster.url());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TempCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    stopped: bool,
    /// The write end of the watchdog's pipe: closing it (drop, or process death) ends the
    /// watchdog, which then stops and deletes the cluster if that is still needed.
    watchdog: Option<ChildStdin>,
}

impl TempCluster {
    /// Creates and starts the cluster; returns once it accepts connections.
    pub fn start() -> io::Result<TempCluster> {
        let bin = find_bin_dir()?;
        let as_postgres = is_root();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("aludel-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir))?;
        }
        let port = free_port()?;
        let mut cluster = TempCluster {
            dir,
            bin,
            port,
            as_postgres,
            stopped: true,
            watchdog: None,
        };
        let data = cluster.data_dir();
        let mut initdb = cluster.command("initdb");
        run(initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ]))?;
        let opts = format!(
            "-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            cluster.dir.display()
        );
        let log = cluster.dir.join("postgres.log");
        let mut start = cluster.command("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(opts)
            .arg("-l")
            .arg(log)
            .args(["-w", "-t", "60", "start"]);
        // The watchdog first: from here on the folder is removed however this process ends.
        cluster.watchdog = cluster.spawn_watchdog();
        run(&mut start)?;
        cluster.stopped = false;
        Ok(cluster)
    }

    /// Spawns the watchdog that stops and deletes the cluster once its stdin pipe closes
    /// (`None` when no shell could be started: then only `Drop` cleans up).
    fn spawn_watchdog(&self) -> Option<ChildStdin> {
        let script = format!(
            "trap '' INT TERM HUP; while read -r _; do :; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            stop = self.stop_command_line(),
            dir = self.dir.display()
        );
        // Its own process group: a Ctrl-C or a CI job kill aimed at this process's group must
        // not take the watchdog down before it has stopped the cluster.
        Command::new("sh")
            .args(["-c", &script])
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .and_then(|mut child| child.stdin.take())
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Leaves the cluster running until this process exits, then stops and deletes it (the
    /// watchdog's pipe stays open until then). For process-wide fixtures, whose statics are
    /// never dropped.
    pub fn keep_until_process_exits(mut self) {
        let Some(pipe) = self.watchdog.take() else {
            return self.poll_until_process_exits();
        };
        // The pipe's write end lives as long as the process; the watchdog owns the cluster.
        std::mem::forget(pipe);
        self.stopped = true;
        self.dir = PathBuf::new();
    }

    /// The fallback without a watchdog pipe: a shell that polls this process's pid.
    fn poll_until_process_exits(mut self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = self.stop_command_line(),
            dir = self.dir.display()
        );
        let spawned = Command::new("sh")
            .args(["-c", &format!("trap '' INT TERM HUP; {script}")])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if spawned.is_ok() {
            // The watchdog owns the cluster now.
            self.stopped = true;
            self.dir = PathBuf::new();
        }
    }

    /// The folder holding the cluster (data, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn stop_command_line(&self) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let base = format!(
            "'{}' -D '{}' -m immediate stop",
            pg_ctl.display(),
            self.data_dir().display()
        );
        if self.as_postgres {
            format!("runuser -u postgres -- {base}")
        } else {
            base
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if !self.stopped {
            let data = self.data_dir();
            let mut stop = self.command("pg_ctl");
            stop.arg("-D").arg(&data).args(["-m", "immediate", "stop"]);
            let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

fn find_bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no PostgreSQL server binaries (initdb) found: install the server package or set PG_BIN",
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

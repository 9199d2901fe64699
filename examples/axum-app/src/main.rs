//! The Conduit server.
//!
//! Environment:
//! - `DATABASE_URL`: PostgreSQL to use. Unset: `127.0.0.1:5432` when something listens
//!   there, else a throwaway cluster started for this process (and removed with it, even
//!   when the process is killed). `CONDUIT_TEMP_DB=1` asks for the throwaway cluster always.
//! - `HOST` (default `127.0.0.1`) and `PORT` (default `3000`).
//! - `JWT_SECRET`: token signing secret. Unset: a random secret for this process (tokens
//!   stop verifying when it restarts; the log says so).
//! - `RUST_LOG`: log filter such as `info` or `conduit=debug,aludel=info` (default `info`).
//!
//! Start-up migrates the database to the head of the compiled-in `migrations/` (see
//! `conduit::db`). Start-up failures print one readable line (what failed, with the database
//! URL's password masked, and what to set) and exit with status 1.
//!
//!     cargo run -p axum-app --release
//!
//! `axum-app db <command>` is the migration tool instead (`DATABASE_URL` or `--url`, else
//! `127.0.0.1:5432`): `revision --autogenerate -m "…"`, `upgrade`, `downgrade -1`, `current`,
//! `history`, `check`, `stamp`, `codegen`; `axum-app db help` lists them.
//!
//!     cargo run -p axum-app -- db check

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use aludel::Engine;
use aludel::testing::{DEFAULT_DATABASE_URL, TempCluster};
use conduit::db::{self, Migrated};
use conduit::{AppState, Jwt, app};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Shortest `JWT_SECRET` accepted: HS256 wants at least 256 bits of key.
const MIN_SECRET_LEN: usize = 32;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    match command.as_deref() {
        None => {}
        Some("db") => return db_command(args),
        Some(other) => return usage(other),
    }
    init_tracing(false);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// `axum-app db …`: aludel-migrate's command line with the app's models. Its output is on
/// stdout (`db codegen` prints code there), the log on stderr.
fn db_command(args: impl Iterator<Item = String>) -> ExitCode {
    init_tracing(true);
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(db::cli().main(args)),
        Err(e) => fail(&format!("cannot start the async runtime: {e}")),
    }
}

#[allow(clippy::print_stderr)]
fn usage(arg: &str) -> ExitCode {
    eprintln!(
        "conduit: unknown argument `{arg}`\nusage: axum-app            serve the API (configured by the environment)\n       axum-app db <command>  migrations: revision, upgrade, downgrade, current, history, check, stamp, codegen (`db help`)"
    );
    ExitCode::from(2)
}

/// Prints a start-up failure: a person reads it, so no `Debug` of error values.
#[allow(clippy::print_stderr)]
fn fail(message: &str) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("conduit: {message}");
    ExitCode::FAILURE
}

async fn run() -> Result<(), String> {
    let addr = listen_address()?;
    let jwt = jwt()?;
    let (url, source, cluster) = database()?;
    let shown = mask_password(&url);
    let engine = Engine::builder(&url)
        .max_size(16)
        .application_name("conduit")
        .build()
        .map_err(|e| format!("DATABASE_URL={shown} is not a usable database URL: {e}"))?;
    let mut conn = engine.connect().await.map_err(|e| {
        format!(
            "cannot connect to PostgreSQL at {shown} ({source}): {e}. Set DATABASE_URL to a \
             reachable server (postgres://user:password@host:port/database), or unset it to use \
             127.0.0.1:5432 or a throwaway cluster"
        )
    })?;
    let (version, db, user): (String, String, String) = conn
        .query_one(&aludel::sql(
            "SELECT current_setting('server_version'), current_database(), current_user::text",
        ))
        .await
        .map_err(|e| format!("PostgreSQL at {shown} answered with an error: {e}"))?;
    drop(conn);
    tracing::info!(
        "database: PostgreSQL {version}, database \"{db}\" as \"{user}\" at {shown} ({source})"
    );
    match db::migrate(&engine)
        .await
        .map_err(|e| format!("migrating the schema in {shown} failed: {e}"))?
    {
        Migrated::Applied(done) if done.is_empty() => {
            tracing::info!("schema: at the head revision, no migration to apply");
        }
        Migrated::Applied(done) => {
            tracing::info!(
                "schema: applied {} migration(s): {}",
                done.len(),
                done.join(", ")
            );
        }
        Migrated::Stamped(done) => tracing::warn!(
            "schema: a database made by create_all matches the models; recorded as migrated to {} \
             without running anything",
            done.last().map_or("base", String::as_str)
        ),
    }

    let router = app(AppState::with_jwt(engine.clone(), jwt));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, &e))?;
    tracing::info!("server: axum (HTTP/1.1) serving the RealWorld API on http://{addr}/api");
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await;

    tracing::info!("shutting down: closing the connection pool");
    engine.close();
    drop(cluster); // stops and deletes a throwaway cluster, if one was started
    served.map_err(|e| format!("the server stopped: {e}"))
}

/// `HOST:PORT`, with errors that say which variable is wrong.
fn listen_address() -> Result<SocketAddr, String> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT={p} is not a port number (0-65535)"))?,
        Err(_) => 3000,
    };
    let ip: std::net::IpAddr = host.parse().map_err(|_| {
        format!("HOST={host} is not an IP address (e.g. 127.0.0.1, 0.0.0.0 or ::1)")
    })?;
    Ok(SocketAddr::new(ip, port))
}

fn bind_error(addr: SocketAddr, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let why = match e.kind() {
        ErrorKind::AddrInUse => format!(
            "port {} is already in use by another process; set PORT to a free port",
            addr.port()
        ),
        ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine; set HOST to one (127.0.0.1, 0.0.0.0)",
            addr.ip()
        ),
        ErrorKind::PermissionDenied => format!(
            "no permission to bind port {} (ports below 1024 need privileges); set PORT",
            addr.port()
        ),
        _ => e.to_string(),
    };
    format!("cannot listen on {addr}: {why}")
}

/// The token keys: `JWT_SECRET`, or a random secret for this process.
fn jwt() -> Result<Jwt, String> {
    match std::env::var("JWT_SECRET") {
        Ok(s) if s.len() >= MIN_SECRET_LEN => Ok(Jwt::new(s.as_bytes())),
        Ok(s) => Err(format!(
            "JWT_SECRET is {} bytes long; use at least {MIN_SECRET_LEN} random bytes \
             (e.g. `openssl rand -hex 32`)",
            s.len()
        )),
        Err(_) => {
            tracing::warn!(
                "JWT_SECRET is unset: signing tokens with a random secret made for this process; \
                 tokens stop working when it restarts (set JWT_SECRET to keep them)"
            );
            Ok(Jwt::random())
        }
    }
}

/// The database URL, where it came from, and the throwaway cluster behind it when one had
/// to be started.
fn database() -> Result<(String, &'static str, Option<TempCluster>), String> {
    let forced = std::env::var("CONDUIT_TEMP_DB").is_ok_and(|v| v == "1");
    if !forced {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok((url, "from DATABASE_URL", None));
        }
        let local = SocketAddr::from(([127, 0, 0, 1], 5432));
        if std::net::TcpStream::connect_timeout(&local, Duration::from_secs(1)).is_ok() {
            return Ok((
                DEFAULT_DATABASE_URL.to_owned(),
                "DATABASE_URL unset; the server on 127.0.0.1:5432",
                None,
            ));
        }
    }
    let cluster = TempCluster::start().map_err(|e| {
        format!(
            "no DATABASE_URL, nothing on 127.0.0.1:5432, and no throwaway cluster could be \
             started: {e}. Set DATABASE_URL to a PostgreSQL server"
        )
    })?;
    let url = cluster.url();
    tracing::warn!(
        dir = %cluster.dir().display(),
        "started a throwaway PostgreSQL cluster; it is deleted when this process exits"
    );
    Ok((url, "a throwaway cluster for this process", Some(cluster)))
}

/// `url` with its password replaced by `***`: in URL form (`postgres://user:pw@host`) and in
/// key/value form (`password=pw`).
fn mask_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            if let Some(colon) = out[rest..rest + at].find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    let mut masked = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let value = i + "password=".len();
        masked.push_str(&rest[..value]);
        masked.push_str("***");
        let tail = &rest[value..];
        let end = if let Some(quoted) = tail.strip_prefix('\'') {
            quoted.find('\'').map_or(tail.len(), |j| j + 2)
        } else {
            tail.find([' ', '&']).unwrap_or(tail.len())
        };
        rest = &tail[end..];
    }
    masked.push_str(rest);
    masked
}

/// The log: `RUST_LOG`, default `info` on stdout; for `db` commands default `warn`, on stderr.
fn init_tracing(command: bool) {
    let default = if command {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(default));
    let registry = tracing_subscriber::registry().with(filter);
    if command {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init();
    } else {
        registry.with(tracing_subscriber::fmt::layer()).init();
    }
}

/// Resolves on SIGINT (Ctrl-C), SIGTERM or SIGHUP: each drains in-flight requests, closes
/// the pool and removes a throwaway cluster.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind: SignalKind, name: &'static str| async move {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
                name
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for {name}");
                std::future::pending::<&'static str>().await
            }
        }
    };
    let name = tokio::select! {
        n = wait(SignalKind::interrupt(), "SIGINT") => n,
        n = wait(SignalKind::terminate(), "SIGTERM") => n,
        n = wait(SignalKind::hangup(), "SIGHUP") => n,
    };
    tracing::info!("{name} received");
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn passwords_are_masked_in_both_url_forms() {
        assert_eq!(
            mask_password("postgres://app:s3cr3t@db:5432/x?sslmode=require"),
            "postgres://app:***@db:5432/x?sslmode=require"
        );
        assert_eq!(mask_password("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(
            mask_password("host=db user=app password='a b' dbname=x"),
            "host=db user=app password=*** dbname=x"
        );
        assert_eq!(
            mask_password("postgres://db/x?user=app&password=pw&x=1"),
            "postgres://db/x?user=app&password=***&x=1"
        );
    }
}

//! Draining a connection whose statement was cancelled by dropping its future, so the pool
//! keeps it instead of closing it.
//!
//! tokio-postgres keeps a connection usable when a query future is dropped: its connection
//! task reads and throws away the rest of that response, and requests are answered in order.
//! So a request queued after the dropped one completes exactly when the server is back at
//! ReadyForQuery. The drain task owns the pooled object (the pool counts it as in use, so
//! nobody else can get it), queues that request (a `ROLLBACK` when a transaction may be
//! open), and waits:
//!
//! * done within [`CANCEL_AFTER`] (a short statement that was nearly finished): back to the
//!   pool, no cancel request sent;
//! * a `COMMIT`: awaited until [`DRAIN_TIMEOUT`], never cancelled (a cancel would roll back
//!   a commit still doing its work, which the driver had sent);
//! * still running: a cancel request is sent and awaited until the server closes the cancel
//!   connection (the postmaster has signalled the backend by then), then the queued request is
//!   awaited, then the reset runs once more, so a cancel that landed on the reset itself
//!   cannot leave a transaction open nor reach the next user's statement;
//! * broken, or not idle within [`DRAIN_TIMEOUT`]: closed.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_postgres::config::Host;
use tokio_postgres::{CancelToken, Client, NoTls};

use super::PoolObject;
use super::metrics::Metrics;

/// How long a cancelled statement may take to finish on its own before a cancel request is
/// sent. A cancel request costs the server a process fork and a TCP connection; most
/// cancelled statements (a request deadline hit during a short query) finish sooner.
pub(crate) const CANCEL_AFTER: Duration = Duration::from_millis(50);

/// The longest a connection may take to get back to idle before it is closed instead.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the drain must undo besides the statement itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reset {
    /// A transaction may be open: end it with `ROLLBACK`.
    pub(crate) rollback: bool,
    /// The engine's session-reset script, for a connection that ran unclassified SQL.
    pub(crate) script: Option<&'static str>,
    /// The statement cut off is a `COMMIT`: it is awaited (up to [`DRAIN_TIMEOUT`]) and never
    /// cancelled. A cancel request would roll back a commit doing work at commit time
    /// (deferred constraint triggers, a synchronous-replication wait) that the driver sent.
    pub(crate) commit: bool,
}

impl Reset {
    async fn run(self, client: &Client) -> Result<(), tokio_postgres::Error> {
        if !self.rollback && self.script.is_none() {
            // An empty query is the cheapest full round trip: EmptyQueryResponse, then
            // ReadyForQuery.
            return client.batch_execute("").await;
        }
        if self.rollback {
            client.batch_execute("ROLLBACK").await?;
        }
        if let Some(script) = self.script {
            client.batch_execute(script).await?;
        }
        Ok(())
    }
}

/// Hands `obj` to a background drain task. Gives it back (`Some`) when there is no runtime
/// to run the task on; the caller then closes it.
pub(crate) fn spawn(
    obj: PoolObject,
    reset: Reset,
    pg: &tokio_postgres::Config,
    metrics: Arc<Metrics>,
) -> Option<PoolObject> {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return Some(obj);
    };
    let target = CancelTarget::of(pg);
    let mut guard = Draining {
        obj: Some(obj),
        metrics,
    };
    handle.spawn(async move {
        let Some(obj) = guard.obj.as_ref() else {
            return;
        };
        if drain(obj, reset, target, &guard.metrics).await {
            Metrics::bump(&guard.metrics.cancelled_drained);
            drop(guard.obj.take()); // back to the pool
        }
        // Otherwise the guard closes it.
    });
    None
}

/// Owns the connection while it drains. Dropped with the connection still inside (the
/// drain failed, or the task was dropped before it finished: its runtime shut down, or the
/// task never ran), it takes the connection out of the pool's accounting and closes it:
/// dropping the pooled object itself would hand it back as it is, mid-statement or inside
/// a transaction.
struct Draining {
    obj: Option<PoolObject>,
    metrics: Arc<Metrics>,
}

impl Drop for Draining {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            Metrics::bump(&self.metrics.cancelled_discarded);
            // Out of the pool's accounting; dropping it closes the socket.
            drop(PoolObject::take(obj));
        }
    }
}

/// True when the connection is idle, outside a transaction, with nothing of the cancelled
/// statement left to arrive.
async fn drain(obj: &PoolObject, reset: Reset, target: CancelTarget, metrics: &Metrics) -> bool {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    if !settle(obj, reset, target, metrics, deadline).await {
        return false;
    }
    if obj.statements.take_orphaned() {
        // A prepare was cut off and its Parse has run by now: its named statement is on
        // the server, unknown to the cache. Start the cache afresh (dropping the cached
        // statements queues their Close, harmless once deallocated).
        obj.statements.clear();
        let client: &Client = obj;
        return matches!(
            timeout_at(deadline, client.batch_execute("DEALLOCATE ALL")).await,
            Ok(Ok(()))
        );
    }
    true
}

async fn settle(
    obj: &PoolObject,
    reset: Reset,
    target: CancelTarget,
    metrics: &Metrics,
    deadline: Instant,
) -> bool {
    let client: &Client = obj;
    let mut queued = pin!(reset.run(client));
    if reset.commit {
        return match timeout_at(deadline, queued).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) if !client.is_closed() => {
                matches!(timeout_at(deadline, reset.run(client)).await, Ok(Ok(())))
            }
            _ => false,
        };
    }
    match timeout(CANCEL_AFTER, queued.as_mut()).await {
        Ok(Ok(())) => return true,
        // A server error on the reset itself (not expected): run it once more below.
        Ok(Err(_)) if !client.is_closed() => {}
        Ok(Err(_)) => return false,
        Err(_) => {
            Metrics::bump(&metrics.cancel_requests);
            let token = client.cancel_token();
            if timeout_at(deadline, cancel(&token, &target)).await.is_err() {
                return false;
            }
            match timeout_at(deadline, queued).await {
                Ok(Err(_)) if client.is_closed() => return false,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
    matches!(timeout_at(deadline, reset.run(client)).await, Ok(Ok(())))
}

/// Where cancel requests go: the engine's first host (cancel requests go to the server the
/// connection was made to; aludel engines name one).
#[derive(Debug, Clone)]
enum CancelTarget {
    Tcp(String, u16),
    #[cfg(unix)]
    Unix(std::path::PathBuf),
    /// No address to connect to: fall back to the driver's own cancel.
    Driver,
}

impl CancelTarget {
    fn of(pg: &tokio_postgres::Config) -> Self {
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        if let Some(addr) = pg.get_hostaddrs().first() {
            return CancelTarget::Tcp(addr.to_string(), port);
        }
        match pg.get_hosts().first() {
            Some(Host::Tcp(h)) => CancelTarget::Tcp(h.clone(), port),
            #[cfg(unix)]
            Some(Host::Unix(dir)) => CancelTarget::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            _ => CancelTarget::Driver,
        }
    }
}

/// Sends a cancel request and waits until the server has acted on it: the server process
/// that reads a cancel request signals the backend and exits, so the end of the cancel
/// connection means the signal was sent. The driver's `cancel_query` returns as soon as the
/// request is written, which would let a late signal cancel the next user's statement.
async fn cancel(token: &CancelToken, target: &CancelTarget) {
    let sent = match target {
        CancelTarget::Tcp(host, port) => {
            match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
                Ok(mut s) => send_and_wait(token, &mut s).await,
                Err(e) => Err(CancelError::Io(e)),
            }
        }
        #[cfg(unix)]
        CancelTarget::Unix(path) => match tokio::net::UnixStream::connect(path).await {
            Ok(mut s) => send_and_wait(token, &mut s).await,
            Err(e) => Err(CancelError::Io(e)),
        },
        CancelTarget::Driver => token.cancel_query(NoTls).await.map_err(CancelError::Driver),
    };
    if let Err(e) = sent {
        tracing::debug!(target: "aludel::engine", error = %e, "cancel request failed");
    }
}

async fn send_and_wait<S>(token: &CancelToken, stream: &mut S) -> Result<(), CancelError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    token
        .cancel_query_raw(&mut *stream, NoTls)
        .await
        .map_err(CancelError::Driver)?;
    let mut sink = [0u8; 64];
    // The server sends nothing back: read until it closes the connection.
    while stream.read(&mut sink).await.map_err(CancelError::Io)? > 0 {}
    Ok(())
}

#[derive(Debug)]
enum CancelError {
    Io(std::io::Error),
    Driver(tokio_postgres::Error),
}

impl std::fmt::Display for CancelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CancelError::Io(e) => e.fmt(f),
            CancelError::Driver(e) => e.fmt(f),
        }
    }
}

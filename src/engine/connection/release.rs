//! How a connection goes back: the `Drop` guarantee of `Connection` (idle, outside any
//! transaction, or not at all), the drain hand-off and closing.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use tokio_postgres::{Client, NoTls};

use super::state::{Flight, Return};
use super::{Backend, Connection, Object};
use crate::engine::drain;
use crate::engine::metrics::Metrics;
use crate::engine::observe::{StatementEvent, StatementKind};

impl Connection {
    /// A statement was in flight (its future was dropped): a pooled connection goes to a
    /// drain task that brings it back to idle (cancelling the statement if it keeps running)
    /// and returns it to the pool; see `engine/drain.rs`. Without a runtime, or unpooled, it
    /// is cancelled and closed.
    pub(super) fn drain_or_discard(&mut self) {
        let reset = drain::Reset {
            rollback: self.state.tx.on_server() || self.state.dirty(),
            script: (self.state.dirty())
                .then(|| self.shared.exec.reset.sql())
                .flatten(),
            commit: self.state.flight == Flight::Commit,
        };
        let Backend::Pooled(slot) = &mut self.backend else {
            self.discard();
            return;
        };
        let Some(obj) = slot.take() else { return };
        if let Some(obj) = drain::spawn(obj, reset, &self.shared.pg, self.shared.metrics.clone()) {
            Metrics::bump(&self.shared.metrics.cancelled_discarded);
            *slot = Some(obj);
            self.discard();
        }
    }

    /// Detaches the connection from the pool and closes it; cancels a running statement
    /// first when one was in flight.
    pub(super) fn discard(&mut self) {
        let cancel = self.state.flight != Flight::Idle;
        match &mut self.backend {
            Backend::Pooled(slot) => {
                if let Some(obj) = slot.take() {
                    // Out of the pool's accounting for good; dropping the wrapper aborts its
                    // connection task, which closes the socket.
                    let wrapper = Object::take(obj);
                    spawn_cancel(cancel.then(|| wrapper.cancel_token()));
                }
            }
            Backend::Direct(slot) => {
                if let Some((client, task)) = slot.take() {
                    spawn_cancel(cancel.then(|| client.cancel_token()));
                    task.abort();
                }
            }
        }
    }
}

fn spawn_cancel(token: Option<tokio_postgres::CancelToken>) {
    let Some(token) = token else { return };
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            if let Err(e) = token.cancel_query(NoTls).await {
                tracing::debug!(target: "aludel::engine", error = %e, "cancel request failed");
            }
        });
    }
}

/// Sends `ROLLBACK` without waiting for the answer: the request is queued on the connection
/// during the first poll (tokio-postgres sends before its first await), and requests are
/// processed in order, so the next user of the connection runs after it.
///
/// `reset` (the engine's [`SessionReset`](crate::SessionReset) script) is queued after it, as
/// a request of its own: `DISCARD`-style statements refuse to run inside a transaction block.
fn queue_rollback(client: &Client, reset: Option<&'static str>) -> bool {
    let queue = |sql: &str| {
        let fut = client.batch_execute(sql);
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        !matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Err(_)))
    };
    queue("ROLLBACK") && reset.is_none_or(queue)
}

impl Drop for Connection {
    fn drop(&mut self) {
        let reset = match self.state.on_return() {
            Return::Close => {
                if matches!(self.backend, Backend::Pooled(Some(_))) {
                    Metrics::bump(&self.shared.metrics.discarded_broken);
                }
                return self.discard();
            }
            // A statement cut off, or whatever the driver client started: awaited (and
            // cancelled if it keeps running) before the connection goes back.
            Return::Drain { commit: false } => return self.drain_or_discard(),
            // Drained like any statement. Once its future was polled the driver has the
            // COMMIT and sends it: closing the connection would not stop it, only lose the
            // connection. Its outcome is unknown to the caller either way (the session marks
            // its objects in doubt); the drain waits for its answer (never cancelling it)
            // before the connection goes back.
            Return::Drain { commit: true } => {
                Metrics::bump(&self.shared.metrics.commits_in_doubt);
                return self.drain_or_discard();
            }
            Return::Pool => return,
            Return::Rollback { reset } => reset.then(|| self.shared.exec.reset.sql()).flatten(),
        };
        let queued = match self.client() {
            Ok(client) => queue_rollback(client, reset),
            Err(_) => false,
        };
        if !queued {
            return self.discard();
        }
        let sent = [("ROLLBACK", StatementKind::Rollback)]
            .into_iter()
            .chain(reset.map(|sql| (sql, StatementKind::Script)));
        for (sql, kind) in sent {
            self.shared.exec.observers.report(&StatementEvent {
                sql,
                kind,
                params: 0,
                rows: 0,
                elapsed: std::time::Duration::ZERO,
                error: None,
            });
        }
    }
}

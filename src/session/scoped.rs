//! A task-scoped session (SQLAlchemy's `async_scoped_session`) without a global registry: the
//! session lives in a task-local slot for the duration of one future and is rolled back and
//! dropped when that future ends, is cancelled, or panics.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::AsyncSession;
use crate::engine::Engine;
use crate::error::{Error, Result};

tokio::task_local! {
    static SCOPED: Arc<Mutex<AsyncSession>>;
}

/// Runs `f` with a session of its own reachable through [`scoped_session`] anywhere in the
/// same task. When `f` finishes (or is dropped) the session is dropped with it: an open
/// transaction is rolled back and the connection returns to the pool. Nothing global keeps
/// it alive.
///
/// ```no_run
/// # async fn demo(engine: aludel::Engine) -> aludel::Result<()> {
/// aludel::session::with_scoped_session(&engine, async {
///     let session = aludel::session::scoped_session()?;
///     let mut s = session.lock().await;
///     s.commit().await
/// })
/// .await
/// # }
/// ```
pub async fn with_scoped_session<F: Future>(engine: &Engine, f: F) -> F::Output {
    SCOPED
        .scope(Arc::new(Mutex::new(engine.session())), f)
        .await
}

/// The session of the enclosing [`with_scoped_session`].
///
/// # Errors
/// An invalid-request error outside such a scope.
pub fn scoped_session() -> Result<Arc<Mutex<AsyncSession>>> {
    SCOPED
        .try_with(Arc::clone)
        .map_err(|_| Error::invalid("scoped_session() called outside with_scoped_session"))
}

//! Owned, `'static` row streams that carry their pooled connection.
//!
//! [`RowStream`] yields rows as the server sends them: it holds the connection until it is
//! drained or dropped, so it can be returned from a function, moved into a spawned task or
//! turned into an HTTP body. The driver's response channel is bounded, so a slow consumer
//! slows the server (TCP back-pressure) and memory stays constant. Dropping it midway cancels
//! the query on the server and drains the connection back to the pool (see
//! `engine::connection`).
//!
//! [`BatchStream`] is the `yield_per` / `partitions` mode: a server-side cursor inside a
//! transaction, fetched `n` rows per round trip.
//!
//! [`ScalarBatches`] is the same cursor for tracked objects: batches of a session's objects
//! with their relationships loaded, one statement per relationship per batch.

mod objects;

pub use self::objects::ScalarBatches;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use futures_util::Stream;
use pin_project_lite::pin_project;

use crate::engine::Connection;
use crate::error::{Error, Result};
use crate::row::{FromRow, Row};
use crate::sql::{AssertSqlSafe, Raw, Typed};

pin_project! {
    /// Rows of one statement, mapped to `T` one at a time as they arrive.
    ///
    /// ```no_run
    /// # #[derive(aludel::Model)] #[aludel(table = "events")]
    /// # struct Event { #[aludel(primary_key)] id: i64 }
    /// # async fn demo(engine: aludel::Engine) -> aludel::Result<()> {
    /// use futures_util::TryStreamExt;
    /// let mut rows = engine.stream(&aludel::select(Event::ALL)).await?;
    /// while let Some(event) = rows.try_next().await? {
    ///     // constant memory, whatever the row count
    /// #   let _ = event;
    /// }
    /// # Ok(()) }
    /// ```
    pub struct RowStream<T> {
        // Boxed so that `RowStream` is `Unpin` and usable with `.next()` without `pin!`.
        inner: Pin<Box<tokio_postgres::RowStream>>,
        conn: Option<Connection>,
        sql: String,
        params: usize,
        started: Instant,
        rows: u64,
        // Deferred columns chosen by the statement's column options.
        cols: Option<crate::row::Columns>,
        _t: PhantomData<fn() -> T>,
    }
}

impl<T> std::fmt::Debug for RowStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("sql", &self.sql)
            .field("rows", &self.rows)
            .finish()
    }
}

impl<T> RowStream<T> {
    /// Rows yielded so far.
    pub fn rows_read(&self) -> u64 {
        self.rows
    }
}

impl Connection {
    /// Runs `q` and returns its rows as a stream that owns this connection.
    ///
    /// # Cancel safety
    /// Dropping the stream before its end cancels the statement on the server; the
    /// connection goes back to the pool only once the rest of the result is drained, never
    /// mid-result.
    pub async fn stream<Q: Typed>(mut self, q: &Q) -> Result<RowStream<Q::Output>> {
        let (sql, binds) = q.compile()?;
        let started = Instant::now();
        self.set_in_flight(true);
        let inner = match self.start(&sql, &binds).await {
            Ok(s) => s,
            Err(e) => {
                self.stream_finished(&sql, binds.len(), started, 0, Some(&e));
                self.set_in_flight(false);
                return Err(e.with_statement(&sql));
            }
        };
        Ok(RowStream {
            inner: Box::pin(inner),
            conn: Some(self),
            sql: sql.to_string(),
            params: binds.len(),
            started,
            rows: 0,
            cols: q.columns(),
            _t: PhantomData,
        })
    }
}

impl crate::Engine {
    /// Checks out a connection and streams `q` on it (see [`RowStream`]).
    pub async fn stream<Q: Typed>(&self, q: &Q) -> Result<RowStream<Q::Output>> {
        self.connect().await?.stream(q).await
    }

    /// Streams `q` in batches of `batch` rows through a server-side cursor inside a
    /// transaction: one round trip per batch (SQLAlchemy's `yield_per` and `partitions`).
    pub async fn stream_batches<Q>(&self, q: &Q, batch: usize) -> Result<BatchStream<Q::Output>>
    where
        Q: Typed,
        Q::Output: Send + 'static,
    {
        let conn = self.connect().await?;
        BatchStream::open(conn, q, batch).await
    }
}

impl<T: FromRow> Stream for RowStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if this.conn.is_none() {
            return Poll::Ready(None);
        }
        match ready!(this.inner.as_mut().poll_next(cx)) {
            Some(Ok(row)) => {
                *this.rows += 1;
                Poll::Ready(Some(crate::row::decode_row(&Row(row), *this.cols)))
            }
            Some(Err(e)) => {
                let err = Error::from_driver(e).with_statement(this.sql);
                if let Some(mut conn) = this.conn.take() {
                    conn.stream_finished(
                        this.sql,
                        *this.params,
                        *this.started,
                        *this.rows,
                        Some(&err),
                    );
                    // The server ended the statement with the error: the protocol is in sync.
                    if !err.is_connection_lost() {
                        conn.set_in_flight(false);
                    }
                }
                Poll::Ready(Some(Err(err)))
            }
            None => {
                if let Some(mut conn) = this.conn.take() {
                    conn.stream_finished(this.sql, *this.params, *this.started, *this.rows, None);
                    conn.set_in_flight(false);
                    // Back to the pool now, not when the stream value is dropped.
                    drop(conn);
                }
                Poll::Ready(None)
            }
        }
    }
}

type Fetch<T> = Pin<Box<dyn Future<Output = (Connection, Result<Vec<T>>)> + Send>>;
type Close = Pin<Box<dyn Future<Output = ()> + Send>>;

enum State<T> {
    Idle(Box<Connection>),
    Fetching(Fetch<T>),
    Closing(Close),
    Done,
}

/// Batches of up to `n` rows from a server-side cursor, one round trip each.
///
/// Holds its connection and transaction until drained or dropped; dropping it midway rolls
/// the transaction back (closing the cursor) or, mid-fetch, cancels the fetch and drains
/// the connection before it goes back.
pub struct BatchStream<T> {
    state: State<T>,
    batch: usize,
    cols: Option<crate::row::Columns>,
}

impl<T> std::fmt::Debug for BatchStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

const CURSOR: &str = "aludel_stream";

impl<T: FromRow + Send + 'static> BatchStream<T> {
    async fn open<Q: Typed<Output = T>>(mut conn: Connection, q: &Q, batch: usize) -> Result<Self> {
        if batch == 0 {
            return Err(Error::invalid("a batch needs at least one row"));
        }
        let (sql, binds) = q.compile()?;
        conn.begin().await?;
        let declare = Raw::audited(AssertSqlSafe(format!(
            "DECLARE {CURSOR} NO SCROLL CURSOR FOR {}",
            &*sql
        )))
        .with_binds(binds.into_owned());
        conn.execute(&declare).await?;
        Ok(BatchStream {
            state: State::Idle(Box::new(conn)),
            batch,
            cols: q.columns(),
        })
    }
}

impl<T: FromRow + Send + 'static> Stream for BatchStream<T> {
    type Item = Result<Vec<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let batch = self.batch;
        let cols = self.cols;
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Idle(conn) => {
                    let mut conn = *conn;
                    let fetch = Raw::audited(AssertSqlSafe(format!(
                        "FETCH FORWARD {batch} FROM {CURSOR}"
                    )));
                    self.state = State::Fetching(Box::pin(async move {
                        let r = conn.query_cols::<T>(&fetch, cols).await;
                        (conn, r)
                    }));
                }
                State::Fetching(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.state = State::Fetching(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready((conn, Ok(rows))) if rows.is_empty() => {
                        self.state = State::Closing(Box::pin(async move {
                            let mut conn = conn;
                            let _ = conn.rollback().await;
                        }));
                    }
                    Poll::Ready((conn, Ok(rows))) => {
                        self.state = State::Idle(Box::new(conn));
                        return Poll::Ready(Some(Ok(rows)));
                    }
                    Poll::Ready((conn, Err(e))) => {
                        drop(conn); // its drop rolls back or discards
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                State::Closing(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.state = State::Closing(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready(()) => return Poll::Ready(None),
                },
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl crate::AsyncSession {
    /// Flushes, then streams `q` on a connection of its own (see [`RowStream`]). Streamed rows
    /// are plain values, not tracked: the identity map does not grow while streaming.
    ///
    /// The stream reads outside the session's transaction: it sees committed data. Commit
    /// first when the stream must include this session's own changes.
    pub async fn stream<Q: Typed>(&mut self, q: &Q) -> Result<RowStream<Q::Output>> {
        self.flush().await?;
        self.engine().stream(q).await
    }

    /// Flushes, then streams `q` in batches of `batch` rows (see [`BatchStream`]).
    pub async fn stream_batches<Q>(&mut self, q: &Q, batch: usize) -> Result<BatchStream<Q::Output>>
    where
        Q: Typed,
        Q::Output: Send + 'static,
    {
        self.flush().await?;
        self.engine().stream_batches(q, batch).await
    }
}

//! aludel's integration tests: one binary, a schema per test, real PostgreSQL.
//!
//! Each test names the parity IDs it covers (`// covers: ENG-03`) from
//! `shared/spec/sqlalchemy-parity.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cancel_flush;
mod consistency;
mod deferred;
mod detached;
mod engine;
mod errors;
mod generated;
#[cfg(feature = "json")]
mod insert_many;
mod lazy_begin;
mod merge_cascade;
mod models;
mod pgbouncer;
mod pool;
mod pool_faults;
mod pool_hostile;
mod raw;
mod rel;
mod reset;
#[cfg(all(feature = "chrono", feature = "json"))]
mod session;
mod stmt_cache;
mod stream;
mod stream_objects;
mod test_attr;
mod testkit;
mod tracing;
#[cfg(all(
    feature = "json",
    feature = "uuid",
    feature = "chrono",
    feature = "time",
    feature = "decimal"
))]
mod types;
#[cfg(feature = "actix")]
mod web_actix;
#[cfg(feature = "axum")]
mod web_axum;
mod worker;

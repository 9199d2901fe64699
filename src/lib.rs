//! aludel: an async-first ORM runtime for Tokio services on PostgreSQL.
//!
//! aludel is to a Tokio service what SQLAlchemy 2.0's asyncio ORM is to a Python one: an
//! [`Engine`] over a real connection pool, task-scoped sessions with a unit of work and an
//! identity map, eager loading without implicit IO, and constant-memory row streams.
//!
//! ```no_run
//! # async fn demo() -> aludel::Result<()> {
//! use aludel::{sql, Engine};
//!
//! let engine = Engine::builder("postgres://postgres@127.0.0.1:5432/postgres")
//!     .max_size(8)
//!     .build()?; // lazy: no connection yet
//!
//! engine.transaction(async |conn| {
//!     conn.execute(&sql("CREATE TEMP TABLE notes (id int primary key, body text)")).await?;
//!     conn.execute(&sql("INSERT INTO notes VALUES ($1, $2)").bind(1).bind("hello")).await?;
//!     let body: String = conn.query_one(&sql("SELECT body FROM notes WHERE id = $1").bind(1)).await?;
//!     assert_eq!(body, "hello");
//!     Ok::<_, aludel::Error>(())
//! }).await?;
//! # Ok(()) }
//! ```
//!
//! # Features
//! | feature | what it adds |
//! |---|---|
//! | `testing` | the test kit: per-test schemas, a statement recorder, a throwaway cluster |
//! | `json` | `serde_json::Value` and `Json<T>` columns (jsonb), `->`, `->>`, `@>` |
//! | `uuid` | `uuid::Uuid` columns |
//! | `chrono` | `NaiveDate`, `NaiveTime`, `NaiveDateTime` (timestamp), `DateTime<Utc>` (timestamptz) |
//! | `time` | `Date`, `Time`, `PrimitiveDateTime` (timestamp), `OffsetDateTime` (timestamptz) |
//! | `decimal` | `rust_decimal::Decimal` (numeric) |
//! | `axum` | `web::axum`: per-request `DbSession` extractor, `TransactionLayer`, `IntoResponse for Error` |
//! | `actix` | `web::actix`: per-request `DbSession` extractor, `TransactionMiddleware`, `ResponseError for Error` |
//!
//! Design notes: `docs/architecture.md`.

pub mod engine;
mod error;
pub mod func;
pub mod load;
mod loading;
pub mod query;
mod row;
pub mod schema;
pub mod session;
mod sql;
mod state;
pub mod stream;
pub mod types;
mod value;

#[cfg(feature = "testing")]
pub mod testing;
#[cfg(any(feature = "axum", feature = "actix"))]
pub mod web;

// The names most programs need first. Everything else lives in a namespace: `engine`,
// `session`, `schema`, `stream` (the modules themselves), `query`, `func`, `load`, `types`.
pub use crate::engine::{Connection, Engine, create_all, drop_all};
pub use crate::error::{Error, Result};
pub use crate::loading::Deferred;
pub use crate::row::{FromRow, Row};
pub use crate::schema::{Generated, Model};
pub use crate::session::{AsyncSession, SessionFactory};
pub use crate::sql::{delete, insert, insert_many, select, sql, update};
pub use crate::state::{Many, Obj, One, Rel, WriteOnly};

/// `#[derive(Model)]`: maps a struct to a table. See the [`Model`] trait.
pub use aludel_macros::Model;
/// `#[derive(SqlEnum)]`: a fieldless enum as a native PostgreSQL enum type.
pub use aludel_macros::SqlEnum;
/// `#[derive(SqlNewtype)]`: a one-field tuple struct stored as its inner type (`Email(String)`).
pub use aludel_macros::SqlNewtype;
/// `#[aludel::test]` (feature `testing`): an `async fn` test on a schema of its own.
///
/// The test gets a fresh schema on the test kit's server ([`testing::TestDb`]) with the
/// listed models created (`create_all`, foreign-key order), its arguments made from it by
/// type ([`testing::TestArg`]: `Engine`, `AsyncSession`, `SessionFactory`, `Recorder`,
/// `&TestDb`), and runs on a current-thread Tokio runtime. The schema is dropped when the
/// test ends, also when it panics. Other attributes (`#[should_panic]`, `#[ignore]`) and a
/// `Result` return type work as on `#[test]`.
///
/// ```
/// use aludel::{AsyncSession, Generated, Model, Obj, select};
///
/// #[derive(Model, Debug, Clone)]
/// #[aludel(table = "notes")]
/// struct Note {
///     #[aludel(primary_key, identity)]
///     id: Generated<i64>,
///     body: String,
/// }
///
/// #[aludel::test(models(Note))]
/// async fn notes_round_trip(mut s: AsyncSession) -> aludel::Result<()> {
///     s.add(&Obj::new(Note { id: Generated::unset(), body: "hello".into() }))?;
///     s.commit().await?;
///     let notes = s.scalars(&select(Note::ALL)).await?;
///     assert_eq!(notes[0].read()?.body, "hello");
///     Ok(())
/// }
/// # notes_round_trip().unwrap();
/// ```
#[cfg(feature = "testing")]
pub use aludel_macros::test;

/// The guide for SQLAlchemy users (`docs/guide`): every example runs as a doctest against the
/// test kit's database.
#[cfg(all(
    any(doc, doctest),
    feature = "testing",
    feature = "json",
    feature = "chrono",
    feature = "axum",
    feature = "actix"
))]
pub mod guide {
    #![doc = include_str!("../docs/guide/README.md")]

    #[doc = include_str!("../docs/guide/01-engine.md")]
    pub mod engine {}
    #[doc = include_str!("../docs/guide/02-models.md")]
    pub mod models {}
    #[doc = include_str!("../docs/guide/03-sessions.md")]
    pub mod sessions {}
    #[doc = include_str!("../docs/guide/04-querying.md")]
    pub mod querying {}
    #[doc = include_str!("../docs/guide/05-relationships.md")]
    pub mod relationships {}
    #[doc = include_str!("../docs/guide/06-transactions.md")]
    pub mod transactions {}
    #[doc = include_str!("../docs/guide/07-streaming.md")]
    pub mod streaming {}
    #[doc = include_str!("../docs/guide/08-web.md")]
    pub mod web {}
    #[doc = include_str!("../docs/guide/09-testing.md")]
    pub mod testing {}
}

// The README's examples compile (and run, where not `no_run`) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Support for generated code; not a public API. `#[derive(Model)]`, `#[derive(SqlEnum)]` and
/// `#[derive(SqlNewtype)]` name every item they use through this one path.
#[doc(hidden)]
pub mod __private {
    pub use crate::__custom_type as custom_type;
    pub use crate::error::Result;
    pub use crate::loading::{Deferred, decode_column, deferred_bind, deferred_generated_bind};
    pub use crate::row::{Columns, FromRow, FromRowOpt, Row};
    pub use crate::schema::{
        Cascade, CheckDef, ColumnDef, ForeignKeyDef, Generated, IndexDef, KeyWriter, Lazy, Model,
        OnDelete, RelHandle, RelKind, RelVisitor, Secondary, TableDef,
    };
    pub use crate::sql::{
        Alias, All, Column, ColumnType, CustomType, IntoExpr, Node, bind_node, enum_from_sql,
        enum_to_sql, enum_type,
    };
    pub use crate::state::{Many, One, Rel, RelDef, Slot, WriteOnly};
    pub use crate::value::{Bind, SqlType};
    pub use tokio_postgres::types::private::BytesMut;
    pub use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, WrongType};
}

/// The driver aludel is built on, for the types its API exposes (`SqlState`, `DbError`,
/// `types::ToSql` …).
pub use tokio_postgres;

//! Support for `#[aludel::test]`: the arguments a test can take, its runtime and its setup.

use super::{Recorder, TestDb};
use crate::schema::{CreateOptions, TableDef};
use crate::{AsyncSession, Engine, SessionFactory, create_all};

/// What an `#[aludel::test]` function can take as arguments, each made from the test's
/// [`TestDb`]: [`Engine`] (the test's engine), [`AsyncSession`] (a new session on it),
/// [`SessionFactory`], [`Recorder`] (the statements the engine ran) and `&TestDb` itself
/// (the admin connection, the schema's name, the backends).
///
/// ```
/// use aludel::testing::{Recorder, TestDb};
/// use aludel::{AsyncSession, Engine};
///
/// #[aludel::test]
/// async fn every_kind_of_argument(engine: Engine, mut s: AsyncSession, rec: Recorder, db: &TestDb) {
///     let one: i32 = engine.query_one(&aludel::sql("SELECT 1")).await.unwrap();
///     assert_eq!(s.query(&aludel::sql("SELECT 2")).await.unwrap().len(), 1);
///     assert!(rec.sql_since(0).iter().any(|q| q == "SELECT 1"));
///     assert!(db.schema().starts_with("aludel_t"));
/// #   let _ = one;
/// }
/// # every_kind_of_argument();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of an `#[aludel::test]` function",
    note = "arguments are made from the test's `TestDb`: `Engine`, `AsyncSession`, \
            `SessionFactory`, `Recorder` or `&TestDb`"
)]
pub trait TestArg<'a>: Sized {
    /// The argument for the test running on `db`.
    fn from_test_db(db: &'a TestDb) -> Self;
}

impl<'a> TestArg<'a> for &'a TestDb {
    fn from_test_db(db: &'a TestDb) -> Self {
        db
    }
}

impl TestArg<'_> for Engine {
    fn from_test_db(db: &TestDb) -> Self {
        db.engine().clone()
    }
}

impl TestArg<'_> for AsyncSession {
    fn from_test_db(db: &TestDb) -> Self {
        db.engine().session()
    }
}

impl TestArg<'_> for SessionFactory {
    fn from_test_db(db: &TestDb) -> Self {
        db.engine().session_builder()
    }
}

impl TestArg<'_> for Recorder {
    fn from_test_db(db: &TestDb) -> Self {
        db.recorder().clone()
    }
}

/// The runtime an `#[aludel::test]` runs on (current-thread, IO and timers on, as
/// `#[tokio::test]`).
#[doc(hidden)]
pub fn __runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("#[aludel::test]: could not start a Tokio runtime: {e}"),
    }
}

/// A fresh [`TestDb`] with `models` created in its schema (foreign-key order).
///
/// # Panics
/// When the schema or the tables cannot be created: the test fails, it never skips.
#[doc(hidden)]
pub async fn __setup(models: &[&'static TableDef]) -> TestDb {
    let db = match TestDb::new().await {
        Ok(db) => db,
        Err(e) => panic!("#[aludel::test]: could not create the test schema: {e}"),
    };
    if !models.is_empty() {
        let created = match db.engine().connect().await {
            Ok(mut conn) => create_all(&mut conn, models, CreateOptions::default()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = created {
            panic!("#[aludel::test]: could not create the models' tables: {e}");
        }
    }
    db
}

//! The test kit (feature `testing`): what aludel's own tests use, and yours can too.
//!
//! * [`TestDb`]: a fresh schema per test on the server named by `DATABASE_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/postgres`), dropped by the guard's `Drop` even when
//!   the test panics. Its engines set `search_path` to the schema and a unique
//!   `application_name`, so a test can inspect only its own backends in `pg_stat_activity`.
//! * [`Recorder`] and [`assert_statements!`](crate::assert_statements): count and inspect the
//!   statements a block of code emits, so N+1 bugs fail tests.
//! * [`TempCluster`]: a throwaway PostgreSQL started from the installed server binaries, for
//!   machines where none runs. `TestDb` starts one by itself when `DATABASE_URL` is unset and
//!   nothing listens on 127.0.0.1:5432.

mod attr;
mod cluster;
mod recorder;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use self::attr::TestArg;
#[doc(hidden)]
pub use self::attr::{__runtime, __setup};
pub use self::cluster::TempCluster;
pub use self::recorder::{Recorded, Recorder};

use crate::engine::EngineBuilder;
use crate::sql::{AssertSqlSafe, Raw};
use crate::{Connection, Engine, Result, sql};

/// The default server when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static FALLBACK_URL: OnceLock<std::result::Result<String, String>> = OnceLock::new();

/// The server tests run against: `DATABASE_URL`, else local PostgreSQL on 127.0.0.1:5432,
/// else a throwaway cluster started once for this process (stopped when the process exits).
///
/// # Panics
/// When `DATABASE_URL` is unset, nothing listens on 127.0.0.1:5432 and no cluster can be
/// started: a test that needs a server never silently skips.
pub fn database_url() -> String {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return url;
    }
    let found = FALLBACK_URL.get_or_init(|| {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 5432));
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return Ok(DEFAULT_DATABASE_URL.to_owned());
        }
        let cluster = TempCluster::start().map_err(|e| e.to_string())?;
        let url = cluster.url();
        cluster.keep_until_process_exits();
        Ok(url)
    });
    match found {
        Ok(url) => url.clone(),
        Err(e) => panic!(
            "no PostgreSQL for the tests: DATABASE_URL is unset, nothing listens on \
             127.0.0.1:5432, and a throwaway cluster could not be started: {e}"
        ),
    }
}

/// A schema of its own for one test, dropped when the guard drops.
///
/// ```no_run
/// # async fn demo() -> aludel::Result<()> {
/// use aludel::{sql, testing::TestDb};
/// let db = TestDb::new().await?;
/// db.engine().execute(&sql("CREATE TABLE t (id int)")).await?;
/// aludel::assert_statements!(db.recorder(), 1, {
///     db.engine().execute(&sql("INSERT INTO t VALUES (1)")).await?
/// });
/// # Ok(()) }
/// ```
pub struct TestDb {
    url: String,
    schema: String,
    recorder: Recorder,
    engine: Engine,
    admin: Engine,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// Creates a fresh schema on [`database_url`].
    pub async fn new() -> Result<TestDb> {
        let url = database_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!(
            "aludel_t{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos % 100_000
        );
        let admin = Engine::builder(&url)
            .max_size(2)
            .application_name(&format!("{schema}_admin"))
            .options(&format!("-c search_path={schema}"))
            .build()?;
        admin
            .execute(&Raw::audited(AssertSqlSafe(format!(
                "CREATE SCHEMA {schema}"
            ))))
            .await?;
        let recorder = Recorder::default();
        let engine = Self::builder_for(&url, &schema, &recorder).build()?;
        Ok(TestDb {
            url,
            schema,
            recorder,
            engine,
            admin,
        })
    }

    fn builder_for(url: &str, schema: &str, recorder: &Recorder) -> EngineBuilder {
        Engine::builder(url)
            .application_name(schema)
            .options(&format!("-c search_path={schema}"))
            .observer(recorder.clone())
    }

    /// The engine of this test: `search_path` = the test's schema, statements recorded.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A builder preconfigured like [`TestDb::engine`], to set pool options of a test's own.
    pub fn engine_builder(&self) -> EngineBuilder {
        Self::builder_for(&self.url, &self.schema, &self.recorder)
    }

    /// The recorder attached to every engine from this guard.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// A second, independent connection (its own pool, not recorded) for checking what other
    /// transactions see.
    pub async fn admin(&self) -> Result<Connection> {
        self.admin.connect().await
    }

    /// The schema's name, which is also the `application_name` of the test's connections.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The `application_name` of the test's engines.
    pub fn application_name(&self) -> &str {
        &self.schema
    }

    /// The test's backends in `pg_stat_activity` as `(pid, state)`, seen from the admin
    /// connection.
    pub async fn backends(&self) -> Result<Vec<(i32, String)>> {
        let q = sql("SELECT pid, coalesce(state, '') FROM pg_stat_activity \
             WHERE application_name = $1 ORDER BY pid")
        .bind(self.schema.clone());
        self.admin.query_as(&q).await
    }

    /// Polls [`TestDb::backends`] until `pred` holds or `timeout` passes; returns the last
    /// observation and whether it held.
    pub async fn wait_for_backends(
        &self,
        timeout: Duration,
        pred: impl Fn(&[(i32, String)]) -> bool,
    ) -> Result<(Vec<(i32, String)>, bool)> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let b = self.backends().await?;
            if pred(&b) {
                return Ok((b, true));
            }
            if std::time::Instant::now() >= deadline {
                return Ok((b, false));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.engine.close();
        self.admin.close();
        let url = self.url.clone();
        let schema = std::mem::take(&mut self.schema);
        // Drop runs inside the test's runtime, where blocking on async work is not allowed:
        // clean up on a thread with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(engine) = Engine::builder(&url).no_pool().build() else {
                    return;
                };
                let Ok(mut conn) = engine.connect().await else {
                    return;
                };
                let terminate = sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name IN ($1, $1 || '_admin') AND pid <> pg_backend_pid()",
                )
                .bind(schema.clone());
                let _ = conn.query(&terminate).await;
                // Never wait forever on a lock a stray backend still holds.
                let _ = conn
                    .execute(&sql("SELECT set_config('lock_timeout', '5s', false)"))
                    .await;
                let drop = Raw::audited(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )));
                let _ = conn.execute(&drop).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// Asserts how many statements (transaction control excluded) a block emits, and returns the
/// block's value. The block may `.await`.
///
/// ```no_run
/// # async fn demo(db: &aludel::testing::TestDb) -> aludel::Result<()> {
/// let rows = aludel::assert_statements!(db.recorder(), 1, {
///     db.engine().query(&aludel::sql("SELECT 1")).await?
/// });
/// # let _ = rows; Ok(()) }
/// ```
#[macro_export]
macro_rules! assert_statements {
    ($recorder:expr, $expected:expr, $body:expr) => {{
        let __mark = $recorder.len();
        let __value = $body;
        let __seen = $recorder.queries_since(__mark);
        if __seen.len() != $expected {
            panic!(
                "expected {} statement(s), saw {}:\n{}",
                $expected,
                __seen.len(),
                __seen
                    .iter()
                    .map(|s| format!("  {}", s.sql))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        __value
    }};
}

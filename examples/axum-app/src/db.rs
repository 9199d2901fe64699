//! The schema's history: the migrations in `migrations/`, applied at start-up, and the `db`
//! subcommand.
//!
//! - [`migrate`] runs at start-up: the files of `migrations/` are compiled into the binary
//!   ([`MIGRATIONS`]) and applied up to the head under aludel-migrate's advisory lock, so
//!   instances starting at once apply each migration once.
//! - `axum-app db <command>` is aludel-migrate's command line over the app's models
//!   ([`cli`]): `revision --autogenerate -m "…"`, `upgrade`, `downgrade -1`, `current`,
//!   `history`, `check`, `stamp`, `codegen`.
//!
//! A new migration: change `src/models.rs`, then
//!
//! ```text
//! cargo run -p axum-app -- db upgrade                          # the database at head first
//! cargo run -p axum-app -- db revision --autogenerate -m "add bookmarks"
//! ```
//!
//! review the file written into `migrations/`, and commit it with the model change.

use aludel::Engine;
use aludel_migrate::{Cli, EmbeddedFile, Migrations, Migrator, compare_with};

use crate::models;

/// The migrations folder, compiled in (the build script rebuilds when a file is added).
pub static MIGRATIONS: &[EmbeddedFile] = aludel_migrate::embed_migrations!("migrations");

/// The schema the derive cannot declare: the case-insensitive unique indexes on
/// `lower(username)` and `lower(email)` ([`models::USERS_USERNAME_LOWER_KEY`],
/// [`models::USERS_EMAIL_LOWER_KEY`]). Part of the models' side of `db check` and
/// autogenerate, so the first migration creates them and `check` expects them.
pub const MODEL_DDL: &str =
    "CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));";

/// The version table (aludel-migrate's default).
pub const VERSION_TABLE: &str = "aludel_migrations";

/// The `db` command line: the app's models and [`MODEL_DDL`], the source tree's
/// `migrations/` folder (`--dir` for another), and the compiled-in migrations when that
/// folder does not exist (a binary deployed without its source tree).
pub fn cli() -> Cli {
    Cli::new(models::TABLES)
        .with_ddl(MODEL_DDL)
        .dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .embedded(MIGRATIONS)
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrated {
    /// These revisions were applied, in order (none: the database was at the head).
    Applied(Vec<String>),
    /// The database was made by `create_all` before the app had migrations and matches the
    /// models: its revisions up to the head were recorded without running anything (what
    /// `db stamp head` does).
    Stamped(Vec<String>),
}

/// Why [`migrate`] failed.
#[derive(Debug)]
pub enum MigrateError {
    /// Reading, comparing or applying migrations failed.
    Migrate(aludel_migrate::Error),
    /// The app's tables exist without a version table and differ from the models, so which
    /// revision the database is at cannot be told.
    Unversioned {
        /// Steps from the database to the models.
        steps: usize,
        /// What the steps do (`drop index "…" on "users"; …`).
        plan: String,
    },
}

impl std::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrateError::Migrate(e) => write!(f, "{e}"),
            MigrateError::Unversioned { steps, plan } => write!(
                f,
                "the database has the app's tables but no migration history ({VERSION_TABLE}), \
                 and they differ from the models in {steps} step(s): {plan}. Bring the schema to a \
                 revision and record it with `axum-app db stamp <revision>`, or use an empty \
                 database"
            ),
        }
    }
}

impl std::error::Error for MigrateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MigrateError::Migrate(e) => Some(e),
            MigrateError::Unversioned { .. } => None,
        }
    }
}

impl From<aludel_migrate::Error> for MigrateError {
    fn from(e: aludel_migrate::Error) -> Self {
        MigrateError::Migrate(e)
    }
}

impl From<aludel::Error> for MigrateError {
    fn from(e: aludel::Error) -> Self {
        MigrateError::Migrate(e.into())
    }
}

/// Brings the database (the connection's current schema) to the head of [`MIGRATIONS`]:
/// the start-up step, instead of `create_all`.
///
/// A database made by `create_all` before the app had migrations (the app's tables, no
/// version table) is adopted when it matches the models exactly: stamped at the head.
/// Otherwise it is an error that says what differs.
pub async fn migrate(engine: &Engine) -> Result<Migrated, MigrateError> {
    let migrator = Migrator::new(Migrations::embedded(MIGRATIONS)?).version_table(VERSION_TABLE);
    let mut conn = engine.connect().await?;
    let unversioned: bool = conn
        .query_one(
            &aludel::sql("SELECT to_regclass($1) IS NULL AND to_regclass($2) IS NOT NULL")
                .bind(aludel::query::quote_ident(VERSION_TABLE))
                .bind(aludel::query::quote_ident(models::User::TABLE.name)),
        )
        .await?;
    if unversioned {
        let cmp = compare_with(&mut conn, models::TABLES, &[MODEL_DDL], &[VERSION_TABLE]).await?;
        drop(conn);
        if !cmp.is_clean() {
            return Err(MigrateError::Unversioned {
                steps: cmp.up.ops.len(),
                plan: cmp
                    .up
                    .ops
                    .iter()
                    .map(aludel_migrate::Op::describe)
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        // Two instances adopting at once both stamp the same revisions: the same end state.
        return Ok(Migrated::Stamped(migrator.stamp(engine, "head").await?));
    }
    drop(conn);
    Ok(Migrated::Applied(migrator.upgrade(engine, "head").await?))
}

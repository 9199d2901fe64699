//! Migrations for aludel: what Alembic is to SQLAlchemy.
//!
//! * **Reflection** ([`reflect`]): a schema read from `pg_catalog` in five queries whatever
//!   the number of tables.
//! * **Autogenerate** ([`compare`], [`diff`], [`render_migration`]): the models a service
//!   compiles compared with the live database, as a plain-SQL migration file with `up` and
//!   `down` sections. Possible renames are flagged for review, never guessed; destructive
//!   steps are marked.
//! * **Runner** ([`Migrator`]): upgrade, downgrade, current, history; a version table with
//!   checksums; one transaction per migration; an advisory lock so two processes never apply
//!   a migration twice; offline `--sql` mode.
//! * **Embedded** ([`embed_migrations!`], [`migrate_to_head`]): the migrations compiled into
//!   the binary and applied at start-up with one call.
//! * **Command line** ([`cli`]): any binary with the models becomes the migration tool.
//! * **Codegen** ([`codegen()`]): `#[derive(Model)]` structs for an existing schema.
//!
//! ```no_run
//! # #[derive(aludel::Model)] struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i64> }
//! // src/bin/db.rs: `cargo run --bin db -- revision --autogenerate -m "add users"`
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     aludel_migrate::cli(&[User::TABLE]).await
//! }
//! ```
//!
//! Design notes: `docs/architecture.md`, section "Migrations".

mod auto;
mod cli;
mod codegen;
mod diff;
mod error;
mod reflect;
mod render;
mod runner;
mod schema;
mod script;
mod target;

pub use crate::auto::{Comparison, compare, compare_with};
pub use crate::cli::{Cli, cli};
pub use crate::codegen::codegen;
pub use crate::diff::{Op, Plan, diff};
pub use crate::error::{Error, Result};
pub use crate::reflect::{REFLECTION_QUERIES, reflect};
pub use crate::runner::{
    ADVISORY_LOCK_CLASS, Applied, EmbeddedFile, Migrations, Migrator, migrate_to_head,
};
pub use crate::schema::{
    Column, Constraint, ConstraintKind, EnumType, FkAction, ForeignKey, Identity, Index, Schema,
    Table,
};
pub use crate::script::{Migration, render_migration, render_plan, split_statements};
pub use crate::target::target_schema;

/// `embed_migrations!("migrations")`: the `*.sql` files of a folder (relative to the
/// crate's `Cargo.toml`) compiled into the binary as `&'static [EmbeddedFile]`, for
/// [`migrate_to_head`]. Editing a file rebuilds the binary; to see *new* files without a
/// rebuild of your crate, add a `build.rs` with `println!("cargo:rerun-if-changed=migrations");`.
pub use aludel_migrate_macros::embed_migrations;

//! Running migrations: the version table, the advisory lock, upgrade and downgrade.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aludel::{Connection, Engine, query::AssertSqlSafe, query::Raw, query::quote_ident, sql};

use crate::error::{Error, Result};
use crate::render::literal;
use crate::script::Migration;

/// A migration file compiled into the binary by [`embed_migrations!`](crate::embed_migrations).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedFile {
    /// File name (`0001_init.sql`).
    pub name: &'static str,
    /// File contents.
    pub contents: &'static str,
}

/// The migrations of a project, in chain order (first to head).
#[derive(Debug, Clone, Default)]
pub struct Migrations {
    chain: Vec<Migration>,
}

impl Migrations {
    /// Reads every `*.sql` file of `dir` (a missing folder holds no migrations).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Migrations> {
        let dir = dir.as_ref();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Migrations::default()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.extension().is_some_and(|x| x == "sql") {
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push(Migration::parse(&name, &text)?);
            }
        }
        Migrations::from_list(files)
    }

    /// The migrations compiled in with [`embed_migrations!`](crate::embed_migrations).
    pub fn embedded(files: &[EmbeddedFile]) -> Result<Migrations> {
        let list = files
            .iter()
            .map(|f| Migration::parse(f.name, f.contents))
            .collect::<Result<Vec<_>>>()?;
        Migrations::from_list(list)
    }

    /// Orders migrations into one chain by their parents.
    ///
    /// # Errors
    /// A graph error for two revisions with the same id, two first revisions, a missing
    /// parent, or two revisions with the same parent (two heads: merge them by setting one's
    /// parent to the other).
    pub fn from_list(mut list: Vec<Migration>) -> Result<Migrations> {
        list.sort_by(|a, b| a.revision.cmp(&b.revision));
        for w in list.windows(2) {
            if w[0].revision == w[1].revision {
                return Err(Error::graph(format!(
                    "two migrations are revision {}",
                    w[0].revision
                )));
            }
        }
        let mut chain = Vec::with_capacity(list.len());
        let mut parent: Option<String> = None;
        while !list.is_empty() {
            let children: Vec<usize> = (0..list.len())
                .filter(|&i| list[i].parent == parent)
                .collect();
            match children.as_slice() {
                [one] => {
                    let m = list.remove(*one);
                    parent = Some(m.revision.clone());
                    chain.push(m);
                }
                [] => {
                    let names: Vec<String> = list
                        .iter()
                        .map(|m| {
                            format!(
                                "{} (parent {})",
                                m.revision,
                                m.parent.as_deref().unwrap_or("base")
                            )
                        })
                        .collect();
                    return Err(Error::graph(format!(
                        "migrations not reachable from base: {}",
                        names.join(", ")
                    )));
                }
                many => {
                    let names: Vec<&str> =
                        many.iter().map(|&i| list[i].revision.as_str()).collect();
                    return Err(Error::graph(format!(
                        "several migrations follow {}: {} (multiple heads; set one's parent to the other)",
                        parent.as_deref().unwrap_or("base"),
                        names.join(", ")
                    )));
                }
            }
        }
        Ok(Migrations { chain })
    }

    /// The migrations, first to head.
    pub fn iter(&self) -> impl Iterator<Item = &Migration> {
        self.chain.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.chain.len()
    }

    /// No migrations.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// The last revision.
    pub fn head(&self) -> Option<&str> {
        self.chain.last().map(|m| m.revision.as_str())
    }

    /// The position of a revision given by id, unique id prefix, `base` (`None`) or `head`.
    pub fn resolve(&self, rev: &str) -> Result<Option<usize>> {
        match rev {
            "base" => return Ok(None),
            "head" | "heads" => {
                return Ok(self.chain.len().checked_sub(1));
            }
            _ => {}
        }
        if let Some(i) = self.chain.iter().position(|m| m.revision == rev) {
            return Ok(Some(i));
        }
        let hits: Vec<usize> = (0..self.chain.len())
            .filter(|&i| self.chain[i].revision.starts_with(rev))
            .collect();
        match hits.as_slice() {
            [one] => Ok(Some(*one)),
            _ => Err(Error::unknown_revision(rev)),
        }
    }

    pub(crate) fn get(&self, i: usize) -> &Migration {
        &self.chain[i]
    }
}

/// A row of the version table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// Revision id.
    pub revision: String,
    /// The checksum recorded when it ran.
    pub checksum: String,
}

/// Runs [`Migrations`] against a database.
///
/// The version table (`aludel_migrations` in the connection's current schema unless
/// [`Migrator::version_table`] says otherwise) holds one row per applied migration with its
/// checksum. Every command takes a session-level advisory lock keyed by the schema and table
/// name first, so two processes migrating at once run one after the other and the second
/// finds the work done.
#[derive(Debug, Clone)]
pub struct Migrator {
    migrations: Migrations,
    table: String,
}

/// `SELECT <function>(class, key)` for the migration lock: `$1` the class, `$2` the version
/// table's name, keyed with the current schema.
macro_rules! lock_sql {
    ($function:literal) => {
        concat!(
            "SELECT ",
            $function,
            "($1, hashtext(current_schema() || '.' || $2))"
        )
    };
}

/// The first key of the migration lock (`pg_advisory_lock(ADVISORY_LOCK_CLASS,
/// hashtext(current_schema() || '.' || version_table))`), to find it in `pg_locks`.
pub const ADVISORY_LOCK_CLASS: i32 = 0x616c_6d67; // "almg"

impl Migrator {
    /// A runner for `migrations`.
    pub fn new(migrations: Migrations) -> Self {
        Migrator {
            migrations,
            table: "aludel_migrations".to_owned(),
        }
    }

    /// Uses another version table name.
    #[must_use]
    pub fn version_table(mut self, name: &str) -> Self {
        name.clone_into(&mut self.table);
        self
    }

    /// The version table's name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The migrations.
    pub fn migrations(&self) -> &Migrations {
        &self.migrations
    }

    /// Applies the migrations after the database's current revision up to `target`
    /// (`"head"`, a revision id or unique prefix). Returns the revisions applied, in order.
    ///
    /// Each migration runs in its own transaction together with its version-table row, so a
    /// failing migration leaves the database at the previous revision; a migration marked
    /// `transactional: false` runs statement by statement and is recorded after its last.
    ///
    /// # Errors
    /// A checksum error when an applied migration's `up` section was edited; an unknown
    /// revision when the database holds a revision the files do not; the server's error when
    /// a statement fails.
    pub async fn upgrade(&self, engine: &Engine, target: &str) -> Result<Vec<String>> {
        let to = self.migrations.resolve(target)?;
        self.locked(engine, async |conn, this| {
            let current = this.verified_current(conn).await?;
            let start = current.map_or(0, |c| c + 1);
            let end = to.map_or(0, |t| t + 1);
            let mut done = Vec::new();
            for i in start..end {
                let m = this.migrations.get(i);
                this.apply(conn, m, true).await?;
                done.push(m.revision.clone());
            }
            Ok(done)
        })
        .await
    }

    /// Reverts applied migrations, head first, until `target` is the current revision:
    /// `"base"` (everything), a revision id or prefix, or `"-N"` (N steps back). Returns the
    /// revisions reverted.
    pub async fn downgrade(&self, engine: &Engine, target: &str) -> Result<Vec<String>> {
        self.locked(engine, async |conn, this| {
            let current = this.verified_current(conn).await?;
            let to = this.downgrade_target(current, target)?;
            let mut done = Vec::new();
            let mut i = current;
            while let Some(c) = i {
                if to.is_some_and(|t| c <= t) {
                    break;
                }
                let m = this.migrations.get(c);
                this.apply(conn, m, false).await?;
                done.push(m.revision.clone());
                i = c.checked_sub(1);
            }
            Ok(done)
        })
        .await
    }

    /// Records the revisions up to `target` as applied without running them (Alembic's
    /// `stamp`): for a database whose schema already matches, such as one made by
    /// `create_all` before the project had migrations. `"base"` empties the version table.
    /// Returns the revisions now recorded.
    pub async fn stamp(&self, engine: &Engine, target: &str) -> Result<Vec<String>> {
        let to = self.migrations.resolve(target)?;
        self.locked(engine, async |conn, this| {
            let upto = to.map_or(0, |t| t + 1);
            conn.begin().await?;
            conn.execute(&Raw::audited(AssertSqlSafe(format!(
                "DELETE FROM {}",
                quote_ident(&this.table)
            ))))
            .await?;
            let mut done = Vec::new();
            for m in this.migrations.chain.iter().take(upto) {
                conn.execute(&this.record(m)).await?;
                done.push(m.revision.clone());
            }
            conn.commit().await?;
            Ok(done)
        })
        .await
    }

    /// The version-table row of an applied migration.
    fn record(&self, m: &Migration) -> Raw {
        Raw::audited(AssertSqlSafe(format!(
            "INSERT INTO {} (revision, parent, message, checksum) VALUES ($1, $2, $3, $4)",
            quote_ident(&self.table)
        )))
        .bind(m.revision.clone())
        .bind(m.parent.clone())
        .bind(m.message.clone())
        .bind(m.checksum())
    }

    fn downgrade_target(&self, current: Option<usize>, target: &str) -> Result<Option<usize>> {
        if let Some(n) = target.strip_prefix('-') {
            let n: usize = n.parse().map_err(|_| {
                Error::usage(format!("`{target}`: expected -N, a revision or base"))
            })?;
            let cur = current.map_or(0, |c| c + 1);
            return Ok(cur.checked_sub(n + 1));
        }
        self.migrations.resolve(target)
    }

    /// The database's current revision (`None` at base), after checking the version table
    /// against the files.
    pub async fn current(&self, engine: &Engine) -> Result<Option<String>> {
        self.locked(engine, async |conn, this| {
            Ok(this
                .verified_current(conn)
                .await?
                .map(|i| this.migrations.get(i).revision.clone()))
        })
        .await
    }

    /// The version table's rows, in the chain's order.
    pub async fn applied(&self, engine: &Engine) -> Result<Vec<Applied>> {
        self.locked(engine, async |conn, this| this.read_applied(conn).await)
            .await
    }

    /// The SQL `upgrade` would run from `from` (`None`: base) to `target`, without running
    /// it (offline mode): the version table, each migration in `BEGIN`/`COMMIT` with its
    /// version row, under the advisory lock.
    pub fn upgrade_sql(&self, from: Option<&str>, target: &str) -> Result<String> {
        let start = match from {
            Some(f) => self.migrations.resolve(f)?.map_or(0, |i| i + 1),
            None => 0,
        };
        let end = self.migrations.resolve(target)?.map_or(0, |t| t + 1);
        let mut out = self.offline_prologue();
        for i in start..end {
            out.push_str(&self.offline_step(self.migrations.get(i), true));
        }
        out.push_str(&self.offline_epilogue());
        Ok(out)
    }

    /// The SQL `downgrade` would run from `from` (a revision) back to `target`.
    pub fn downgrade_sql(&self, from: &str, target: &str) -> Result<String> {
        let current = self.migrations.resolve(from)?;
        let to = self.downgrade_target(current, target)?;
        let mut out = self.offline_prologue();
        let mut i = current;
        while let Some(c) = i {
            if to.is_some_and(|t| c <= t) {
                break;
            }
            out.push_str(&self.offline_step(self.migrations.get(c), false));
            i = c.checked_sub(1);
        }
        out.push_str(&self.offline_epilogue());
        Ok(out)
    }

    fn offline_prologue(&self) -> String {
        format!(
            "-- aludel offline migration: run with psql -v ON_ERROR_STOP=1\n\
             SELECT pg_advisory_lock({ADVISORY_LOCK_CLASS}, hashtext(current_schema() || '.' || {}));\n{};\n",
            literal(&self.table),
            self.create_table_sql()
        )
    }

    fn offline_epilogue(&self) -> String {
        format!(
            "\nSELECT pg_advisory_unlock({ADVISORY_LOCK_CLASS}, hashtext(current_schema() || '.' || {}));\n",
            literal(&self.table)
        )
    }

    fn offline_step(&self, m: &Migration, up: bool) -> String {
        let (verb, body) = if up {
            ("upgrade", &m.up)
        } else {
            ("downgrade", &m.down)
        };
        let record = if up {
            format!(
                "INSERT INTO {} (revision, parent, message, checksum) VALUES ({}, {}, {}, {});",
                quote_ident(&self.table),
                literal(&m.revision),
                m.parent
                    .as_deref()
                    .map_or_else(|| "NULL".to_owned(), literal),
                literal(&m.message),
                literal(&m.checksum())
            )
        } else {
            format!(
                "DELETE FROM {} WHERE revision = {};",
                quote_ident(&self.table),
                literal(&m.revision)
            )
        };
        let mut s = format!("\n-- {verb} {}: {}\n", m.revision, m.message);
        if m.transactional {
            s.push_str("BEGIN;\n");
        }
        for stmt in crate::script::split_statements(body) {
            s.push_str(&stmt);
            s.push_str(";\n");
        }
        s.push_str(&record);
        s.push('\n');
        if m.transactional {
            s.push_str("COMMIT;\n");
        }
        s
    }

    fn create_table_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (revision text PRIMARY KEY, parent text, \
             message text NOT NULL, checksum text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
            quote_ident(&self.table)
        )
    }

    async fn ensure_table(&self, conn: &mut Connection) -> Result<()> {
        // The name is quoted; the rest is ours.
        conn.execute(&Raw::audited(AssertSqlSafe(self.create_table_sql())))
            .await?;
        Ok(())
    }

    async fn read_applied(&self, conn: &mut Connection) -> Result<Vec<Applied>> {
        let q = Raw::audited(AssertSqlSafe(format!(
            "SELECT revision, checksum FROM {}",
            quote_ident(&self.table)
        )));
        let rows: Vec<(String, String)> = conn.query_as(&q).await?;
        let mut applied: Vec<(usize, Applied)> = Vec::with_capacity(rows.len());
        for (revision, checksum) in rows {
            let i = self
                .migrations
                .chain
                .iter()
                .position(|m| m.revision == revision)
                .ok_or_else(|| Error::unknown_revision(revision.clone()))?;
            applied.push((i, Applied { revision, checksum }));
        }
        applied.sort_by_key(|(i, _)| *i);
        Ok(applied.into_iter().map(|(_, a)| a).collect())
    }

    /// The index of the current revision, after checking that the applied revisions are the
    /// chain's first ones and that their checksums match the files.
    async fn verified_current(&self, conn: &mut Connection) -> Result<Option<usize>> {
        let applied = self.read_applied(conn).await?;
        for (i, a) in applied.iter().enumerate() {
            let m = self.migrations.get(i);
            if m.revision != a.revision {
                return Err(Error::graph(format!(
                    "the database has {} applied but not {}, which comes before it",
                    a.revision, m.revision
                )));
            }
            if m.checksum() != a.checksum {
                return Err(Error::checksum(&m.revision));
            }
        }
        Ok(applied.len().checked_sub(1))
    }

    async fn apply(&self, conn: &mut Connection, m: &Migration, up: bool) -> Result<()> {
        let started = Instant::now();
        let statements = if up {
            m.up_statements()
        } else {
            m.down_statements()
        };
        let record = if up {
            self.record(m)
        } else {
            Raw::audited(AssertSqlSafe(format!(
                "DELETE FROM {} WHERE revision = $1",
                quote_ident(&self.table)
            )))
            .bind(m.revision.clone())
        };
        if m.transactional {
            conn.begin().await?;
        }
        let run = async {
            for s in &statements {
                // Migration files are reviewed SQL, like any other source file.
                conn.execute(&Raw::audited(AssertSqlSafe(s.as_str())))
                    .await?;
            }
            conn.execute(&record).await?;
            Ok::<_, aludel::Error>(())
        };
        let result = run.await;
        if m.transactional {
            match result {
                Ok(()) => conn.commit().await?,
                Err(e) => {
                    let _ = conn.rollback().await;
                    return Err(e.into());
                }
            }
        } else {
            result?;
        }
        tracing::info!(
            target: "aludel_migrate",
            revision = %m.revision,
            direction = if up { "upgrade" } else { "downgrade" },
            statements = statements.len(),
            ms = started.elapsed().as_millis() as u64,
            "migration applied"
        );
        Ok(())
    }

    /// Takes the migration lock, polling `pg_try_advisory_lock` rather than waiting in
    /// `pg_advisory_lock`: a backend blocked in a statement holds a snapshot, and
    /// `CREATE INDEX CONCURRENTLY` in the lock holder's migration waits for every older
    /// snapshot to go away — the two would wait for each other.
    async fn lock(&self, conn: &mut Connection) -> Result<()> {
        let mut pause = std::time::Duration::from_millis(25);
        let mut waited = false;
        loop {
            let q = sql(lock_sql!("pg_try_advisory_lock"))
                .bind(ADVISORY_LOCK_CLASS)
                .bind(self.table.clone());
            if conn.query_one::<bool>(&q).await? {
                return Ok(());
            }
            if !waited {
                tracing::info!(target: "aludel_migrate", "another process holds the migration lock; waiting");
                waited = true;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
        }
    }

    /// Runs `f` on a connection holding the migration lock, creating the version table
    /// first. The lock is released afterwards; when that fails the connection is closed
    /// (which releases it) rather than returned to the pool still holding it.
    async fn locked<T>(
        &self,
        engine: &Engine,
        f: impl AsyncFnOnce(&mut Connection, &Self) -> Result<T>,
    ) -> Result<T> {
        let mut conn = engine.connect().await?;
        self.lock(&mut conn).await?;
        let result = match self.ensure_table(&mut conn).await {
            Ok(()) => f(&mut conn, self).await,
            Err(e) => Err(e),
        };
        if conn.in_transaction() {
            let _ = conn.rollback().await;
        }
        let unlock = sql(lock_sql!("pg_advisory_unlock"))
            .bind(ADVISORY_LOCK_CLASS)
            .bind(self.table.clone());
        if conn.execute(&unlock).await.is_err() {
            conn.invalidate();
        }
        result
    }
}

/// Applies every embedded migration not yet applied: the one call a service makes on
/// start-up.
///
/// ```no_run
/// # async fn demo(engine: &aludel::Engine) -> aludel_migrate::Result<()> {
/// // The folder is relative to the crate's Cargo.toml (usually "migrations").
/// static MIGRATIONS: &[aludel_migrate::EmbeddedFile] =
///     aludel_migrate::embed_migrations!("tests/fixtures/migrations");
/// aludel_migrate::migrate_to_head(engine, MIGRATIONS).await?;
/// # Ok(()) }
/// ```
pub async fn migrate_to_head(engine: &Engine, files: &[EmbeddedFile]) -> Result<Vec<String>> {
    Migrator::new(Migrations::embedded(files)?)
        .upgrade(engine, "head")
        .await
}

/// The next revision id in `dir`: `NNNN_slug` with NNNN one more than the count.
pub(crate) fn next_revision(migrations: &Migrations, message: &str) -> String {
    let slug: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("_");
    let slug = if slug.is_empty() {
        "migration".to_owned()
    } else {
        slug
    };
    format!("{:04}_{slug}", migrations.len() + 1)
}

/// Where revision files are written: `dir/revision.sql`.
pub(crate) fn revision_path(dir: &Path, revision: &str) -> PathBuf {
    dir.join(format!("{revision}.sql"))
}

//! The command line, as a library entry point: a binary that knows the models hands them to
//! [`cli`] (or [`Cli`]) and gets Alembic's commands.
//!
//! ```text
//! revision -m MSG [--autogenerate]   write a new migration (diffed from the models)
//! upgrade [TARGET] [--sql]           apply up to TARGET (default head); --sql prints instead
//! downgrade TARGET [--sql]           revert to TARGET (-1, a revision, base)
//! stamp TARGET                       record as applied without running (a create_all database)
//! current                            the database's revision
//! history                            the chain, applied ones marked
//! check                              exit 1 when models and database differ
//! codegen [--out FILE]               models for the existing schema
//! options: --url URL (default $DATABASE_URL), --dir DIR (default ./migrations),
//!          --version-table NAME
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use aludel::{Engine, schema::TableDef};

use crate::auto::compare_with;
use crate::error::{Error, Result};
use crate::runner::{EmbeddedFile, Migrations, Migrator, next_revision, revision_path};
use crate::script::{Migration, render_migration, render_plan};

const USAGE: &str = "usage: <command> [options]
commands:
  revision -m MSG [--autogenerate]   write a new migration (--autogenerate: diffed from the models)
  upgrade [[FROM:]TARGET] [--sql]    apply migrations up to TARGET (default head); --sql prints the SQL
  downgrade [FROM:]TARGET [--sql]    revert to TARGET: -1, -N, a revision or base
  stamp TARGET                       record revisions up to TARGET as applied without running them
  current                            show the database's revision
  history                            list the migrations, marking the applied ones
  check                              exit 1 when the models and the database differ
  codegen [--out FILE]               write models for the existing schema
options:
  --url URL             database (default: $DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)
  --dir DIR             migrations folder (default: ./migrations)
  --version-table NAME  version table (default: aludel_migrations)";

/// Runs the command line of this process (`std::env::args()` after the program name) with
/// the given models, printing to stdout/stderr. Exit code 0 on success, 1 on failure or when
/// `check` finds differences, 2 for a bad command line.
///
/// ```no_run
/// # #[derive(aludel::Model)] struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i64> }
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     aludel_migrate::cli(&[User::TABLE]).await
/// }
/// ```
pub async fn cli(tables: &[&'static TableDef]) -> ExitCode {
    Cli::new(tables).main(std::env::args().skip(1)).await
}

/// The command line with its settings.
#[derive(Debug, Clone)]
pub struct Cli {
    tables: Vec<&'static TableDef>,
    dir: PathBuf,
    url: Option<String>,
    engine: Option<Engine>,
    version_table: String,
    ignore: Vec<String>,
    ddl: Vec<&'static str>,
    embedded: Option<&'static [EmbeddedFile]>,
}

/// What a command line asks for.
struct Args {
    command: String,
    positional: Vec<String>,
    message: Option<String>,
    autogenerate: bool,
    sql: bool,
    out: Option<PathBuf>,
}

impl Cli {
    /// A command line over these models; migrations in `./migrations`.
    pub fn new(tables: &[&'static TableDef]) -> Self {
        Cli {
            tables: tables.to_vec(),
            dir: PathBuf::from("migrations"),
            url: None,
            engine: None,
            version_table: "aludel_migrations".to_owned(),
            ignore: Vec::new(),
            ddl: Vec::new(),
            embedded: None,
        }
    }

    /// The migrations folder.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The database (default: `DATABASE_URL`, else the local server).
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Tables the models do not own (created by another tool or service): `check` and
    /// autogenerate leave them alone instead of planning to drop them. The version table is
    /// always left alone.
    #[must_use]
    pub fn ignore_tables(mut self, tables: &[&str]) -> Self {
        self.ignore.extend(tables.iter().map(|t| (*t).to_owned()));
        self
    }

    /// DDL the derive cannot declare (an expression index such as `lower(email)`, …), part of
    /// the models' side of `check` and autogenerate: it runs after the models' `create_all`
    /// in the scratch schema, where unqualified table names resolve to the scratch copies.
    ///
    /// ```no_run
    /// # #[derive(aludel::Model)] #[aludel(table = "users")] struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i64>, email: String }
    /// let cli = aludel_migrate::Cli::new(&[User::TABLE])
    ///     .with_ddl("CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))");
    /// # let _ = cli;
    /// ```
    #[must_use]
    pub fn with_ddl(mut self, ddl: &'static str) -> Self {
        self.ddl.push(ddl);
        self
    }

    /// The migrations compiled into the binary ([`embed_migrations!`](crate::embed_migrations)),
    /// used when the folder does not exist: a deployed binary far from its source tree still
    /// runs `upgrade`, `current`, `history`… (`revision` writes into the folder).
    #[must_use]
    pub fn embedded(mut self, files: &'static [EmbeddedFile]) -> Self {
        self.embedded = Some(files);
        self
    }

    fn migrations(&self) -> Result<Migrations> {
        match self.embedded {
            Some(files) if !self.dir.exists() => Migrations::embedded(files),
            _ => Migrations::from_dir(&self.dir),
        }
    }

    fn ignored(&self) -> Vec<&str> {
        std::iter::once(self.version_table.as_str())
            .chain(self.ignore.iter().map(String::as_str))
            .collect()
    }

    /// Uses this engine instead of connecting to a URL (the service's own configuration).
    #[must_use]
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Runs `args` (without the program name), printing to stdout/stderr; see [`cli`].
    pub async fn main(&self, args: impl IntoIterator<Item = String>) -> ExitCode {
        let mut out = std::io::stdout().lock();
        match self.run(args, &mut out).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "error: {e}");
                if e.is_usage() {
                    let _ = writeln!(err, "{USAGE}");
                    return ExitCode::from(2);
                }
                ExitCode::from(1)
            }
        }
    }

    /// Runs `args`, writing the output to `out`. `Ok(false)` when `check` found differences.
    pub async fn run(
        &self,
        args: impl IntoIterator<Item = String>,
        out: &mut dyn Write,
    ) -> Result<bool> {
        let mut me = self.clone();
        let args = me.parse(args)?;
        let w = |out: &mut dyn Write, s: &str| {
            writeln!(out, "{s}").map_err(|e| Error::io("<stdout>", e))
        };
        if args.command == "help" {
            w(out, USAGE)?;
            return Ok(true);
        }
        let migrator = Migrator::new(me.migrations()?).version_table(&me.version_table);
        if args.sql {
            return me.offline(&args, &migrator, out).map(|()| true);
        }
        if let Some(engine) = &me.engine {
            return me.online(&args, &migrator, engine, out).await;
        }
        let url = me
            .url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let engine = Engine::builder(&url)
            .max_size(2)
            .application_name("aludel-migrate")
            .build()?;
        let result = me.online(&args, &migrator, &engine, out).await;
        engine.close();
        result
    }

    fn parse(&mut self, args: impl IntoIterator<Item = String>) -> Result<Args> {
        let mut a = Args {
            command: String::new(),
            positional: Vec::new(),
            message: None,
            autogenerate: false,
            sql: false,
            out: None,
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .ok_or_else(|| Error::usage(format!("{name} needs a value")))
            };
            match arg.as_str() {
                "-m" | "--message" => a.message = Some(value(&arg)?),
                "--autogenerate" => a.autogenerate = true,
                "--sql" => a.sql = true,
                "--out" | "-o" => a.out = Some(PathBuf::from(value(&arg)?)),
                "--url" => self.url = Some(value(&arg)?),
                "--dir" => self.dir = PathBuf::from(value(&arg)?),
                "--version-table" => self.version_table = value(&arg)?,
                "-h" | "--help" => a.command = "help".to_owned(),
                s if s.starts_with("--") => {
                    return Err(Error::usage(format!("unknown option {s}")));
                }
                _ if a.command.is_empty() => a.command = arg,
                _ => a.positional.push(arg),
            }
        }
        let known = [
            "revision",
            "upgrade",
            "downgrade",
            "stamp",
            "current",
            "history",
            "check",
            "codegen",
            "help",
        ];
        if a.command.is_empty() {
            return Err(Error::usage("no command"));
        }
        if !known.contains(&a.command.as_str()) {
            return Err(Error::usage(format!("unknown command `{}`", a.command)));
        }
        if a.command == "revision" && a.message.is_none() {
            return Err(Error::usage("revision needs -m \"message\""));
        }
        if a.command == "downgrade" && a.positional.is_empty() {
            return Err(Error::usage(
                "downgrade needs a target: -1, a revision or base",
            ));
        }
        if a.sql && !matches!(a.command.as_str(), "upgrade" | "downgrade") {
            return Err(Error::usage("--sql is for upgrade and downgrade"));
        }
        Ok(a)
    }

    /// `--sql`: prints what would run; reads nothing from the database, so the starting
    /// revision is given as `FROM:TARGET` (upgrade defaults to base).
    fn offline(&self, args: &Args, migrator: &Migrator, out: &mut dyn Write) -> Result<()> {
        let spec = args.positional.first().map_or("head", String::as_str);
        let (from, to) = match spec.split_once(':') {
            Some((f, t)) => (Some(f), t),
            None => (None, spec),
        };
        let text = if args.command == "upgrade" {
            migrator.upgrade_sql(from, to)?
        } else {
            let from = from.ok_or_else(|| {
                Error::usage("downgrade --sql needs FROM:TARGET (offline mode reads no database)")
            })?;
            migrator.downgrade_sql(from, to)?
        };
        write!(out, "{text}").map_err(|e| Error::io("<stdout>", e))
    }

    async fn online(
        &self,
        args: &Args,
        migrator: &Migrator,
        engine: &Engine,
        out: &mut dyn Write,
    ) -> Result<bool> {
        let mut say = |s: String| writeln!(out, "{s}").map_err(|e| Error::io("<stdout>", e));
        let ignore = self.ignored();
        match args.command.as_str() {
            "upgrade" => {
                let target = args.positional.first().map_or("head", String::as_str);
                let done = migrator.upgrade(engine, target).await?;
                if done.is_empty() {
                    say("already at the target revision".to_owned())?;
                }
                for r in done {
                    say(format!("applied {r}"))?;
                }
            }
            "downgrade" => {
                for r in migrator.downgrade(engine, &args.positional[0]).await? {
                    say(format!("reverted {r}"))?;
                }
            }
            "stamp" => {
                let done = migrator.stamp(engine, &args.positional[0]).await?;
                let at = done.last().map_or("base", String::as_str);
                say(format!(
                    "stamped {at} ({} revision(s) recorded)",
                    done.len()
                ))?;
            }
            "current" => {
                let cur = migrator.current(engine).await?;
                let head = migrator.migrations().head();
                let c = cur.as_deref().unwrap_or("base");
                let mark = if cur.as_deref() == head {
                    " (head)"
                } else {
                    ""
                };
                say(format!("{c}{mark}"))?;
            }
            "history" => {
                let cur = migrator.current(engine).await?;
                let mut applied = cur.is_some();
                for m in migrator.migrations().iter() {
                    let mark = if Some(m.revision.as_str()) == cur.as_deref() {
                        " (current)"
                    } else {
                        ""
                    };
                    let state = if applied { "applied" } else { "pending" };
                    say(format!(
                        "{} <- {}  {state}{mark}  {}",
                        m.revision,
                        m.parent.as_deref().unwrap_or("base"),
                        m.message
                    ))?;
                    if Some(m.revision.as_str()) == cur.as_deref() {
                        applied = false;
                    }
                }
            }
            "check" => {
                let mut conn = engine.connect().await?;
                let cmp = compare_with(&mut conn, &self.tables, &self.ddl, &ignore).await?;
                if cmp.is_clean() {
                    say("no differences between the models and the database".to_owned())?;
                } else {
                    say(format!(
                        "the database differs from the models ({} step(s)):",
                        cmp.up.ops.len()
                    ))?;
                    say(render_plan(&cmp.up))?;
                    return Ok(false);
                }
            }
            "codegen" => {
                let mut conn = engine.connect().await?;
                let schema = crate::reflect::reflect(&mut conn, None)
                    .await?
                    .without_tables(&ignore);
                let code = crate::codegen::codegen(&schema);
                match &args.out {
                    Some(p) => std::fs::write(p, code).map_err(|e| Error::io(p, e))?,
                    None => say(code)?,
                }
            }
            "revision" => return self.revision(args, migrator, engine, out).await,
            _ => return Err(Error::usage(USAGE)),
        }
        Ok(true)
    }

    async fn revision(
        &self,
        args: &Args,
        migrator: &Migrator,
        engine: &Engine,
        out: &mut dyn Write,
    ) -> Result<bool> {
        let message = args.message.clone().unwrap_or_default();
        let head = migrator.migrations().head().map(str::to_owned);
        let revision = next_revision(migrator.migrations(), &message);
        let text = if args.autogenerate {
            let current = migrator.current(engine).await?;
            if current != head {
                return Err(Error::not_up_to_date(
                    current.as_deref().unwrap_or("base"),
                    head.as_deref().unwrap_or("base"),
                ));
            }
            let mut conn = engine.connect().await?;
            let cmp = compare_with(&mut conn, &self.tables, &self.ddl, &self.ignored()).await?;
            if cmp.is_clean() {
                writeln!(out, "no changes detected: nothing written")
                    .map_err(|e| Error::io("<stdout>", e))?;
                return Ok(true);
            }
            render_migration(&revision, head.as_deref(), &message, &cmp.up, &cmp.down)
        } else {
            let m = Migration {
                revision: revision.clone(),
                parent: head,
                message,
                transactional: true,
                up: String::new(),
                down: String::new(),
            };
            m.to_file()
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = revision_path(&self.dir, &revision);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        writeln!(out, "wrote {}", path.display()).map_err(|e| Error::io("<stdout>", e))?;
        Ok(true)
    }
}

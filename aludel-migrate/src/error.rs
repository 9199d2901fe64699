//! The crate's error type: aludel's [`aludel::Error`] for everything the database says, plus
//! what only migrations can get wrong (files, the revision graph, checksums).

use std::fmt;
use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. Opaque; ask with the `is_*` predicates.
pub struct Error(Box<Kind>);

enum Kind {
    Db(aludel::Error),
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Parse {
        file: String,
        message: String,
    },
    Checksum {
        revision: String,
    },
    UnknownRevision(String),
    Graph(String),
    NotUpToDate {
        current: String,
        head: String,
    },
    Usage(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error(Box::new(Kind::Io {
            path: path.into(),
            source,
        }))
    }

    pub(crate) fn parse(file: impl Into<String>, message: impl Into<String>) -> Self {
        Error(Box::new(Kind::Parse {
            file: file.into(),
            message: message.into(),
        }))
    }

    pub(crate) fn checksum(revision: impl Into<String>) -> Self {
        Error(Box::new(Kind::Checksum {
            revision: revision.into(),
        }))
    }

    pub(crate) fn unknown_revision(revision: impl Into<String>) -> Self {
        Error(Box::new(Kind::UnknownRevision(revision.into())))
    }

    pub(crate) fn graph(message: impl Into<String>) -> Self {
        Error(Box::new(Kind::Graph(message.into())))
    }

    pub(crate) fn not_up_to_date(current: impl Into<String>, head: impl Into<String>) -> Self {
        Error(Box::new(Kind::NotUpToDate {
            current: current.into(),
            head: head.into(),
        }))
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error(Box::new(Kind::Usage(message.into())))
    }

    /// The database error, when the server or the driver failed.
    pub fn as_db(&self) -> Option<&aludel::Error> {
        match &*self.0 {
            Kind::Db(e) => Some(e),
            _ => None,
        }
    }

    /// A migration file could not be read or written.
    pub fn is_io(&self) -> bool {
        matches!(&*self.0, Kind::Io { .. })
    }

    /// A migration file is malformed (no `-- +up` section, a bad header).
    pub fn is_parse(&self) -> bool {
        matches!(&*self.0, Kind::Parse { .. })
    }

    /// An applied migration's file was edited: its checksum no longer matches the one
    /// recorded when it was applied.
    pub fn is_checksum_mismatch(&self) -> bool {
        matches!(&*self.0, Kind::Checksum { .. })
    }

    /// A revision named on the command line or in the version table is not among the files.
    pub fn is_unknown_revision(&self) -> bool {
        matches!(&*self.0, Kind::UnknownRevision(_))
    }

    /// The revisions do not form one chain (two heads, a missing parent, a cycle).
    pub fn is_graph(&self) -> bool {
        matches!(&*self.0, Kind::Graph(_))
    }

    /// Autogenerate refused: the database is not at the head revision.
    pub fn is_not_up_to_date(&self) -> bool {
        matches!(&*self.0, Kind::NotUpToDate { .. })
    }

    /// A command line that does not parse.
    pub fn is_usage(&self) -> bool {
        matches!(&*self.0, Kind::Usage(_))
    }
}

impl From<aludel::Error> for Error {
    fn from(e: aludel::Error) -> Self {
        Error(Box::new(Kind::Db(e)))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Kind::Db(e) => write!(f, "{e}"),
            Kind::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Kind::Parse { file, message } => write!(f, "{file}: {message}"),
            Kind::Checksum { revision } => write!(
                f,
                "migration {revision} was edited after it was applied (checksum differs); \
                 revert the edit and write a new migration instead"
            ),
            Kind::UnknownRevision(r) => write!(f, "unknown revision `{r}`"),
            Kind::Graph(m) => write!(f, "{m}"),
            Kind::NotUpToDate { current, head } => write!(
                f,
                "the database is at {current}, not at the head {head}: upgrade first"
            ),
            Kind::Usage(m) => write!(f, "{m}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Kind::Db(e) => f.debug_tuple("Error::Db").field(e).finish(),
            _ => write!(f, "Error({self})"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            Kind::Db(e) => Some(e),
            Kind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

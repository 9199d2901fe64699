//! Transaction options: isolation level, read-only, deferrable.

use std::borrow::Cow;

/// A transaction isolation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// `READ UNCOMMITTED` (PostgreSQL runs it as READ COMMITTED).
    ReadUncommitted,
    /// `READ COMMITTED`, PostgreSQL's default.
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`.
    Serializable,
}

impl IsolationLevel {
    /// READ COMMITTED, or READ UNCOMMITTED (which PostgreSQL runs as READ COMMITTED).
    pub(crate) fn is_read_committed(self) -> bool {
        matches!(self, Self::ReadCommitted | Self::ReadUncommitted)
    }

    fn sql(self) -> &'static str {
        match self {
            Self::ReadUncommitted => "READ UNCOMMITTED",
            Self::ReadCommitted => "READ COMMITTED",
            Self::RepeatableRead => "REPEATABLE READ",
            Self::Serializable => "SERIALIZABLE",
        }
    }
}

/// How a transaction starts. Applied in the `BEGIN` statement itself, so nothing about it
/// outlives the transaction or leaks to the connection's next user.
///
/// ```
/// use aludel::{engine::IsolationLevel, engine::TxOptions};
/// let opts = TxOptions::new().isolation(IsolationLevel::Serializable).read_only(true);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxOptions {
    isolation: Option<IsolationLevel>,
    read_only: Option<bool>,
    deferrable: Option<bool>,
}

impl TxOptions {
    /// The server's defaults.
    pub const fn new() -> Self {
        TxOptions {
            isolation: None,
            read_only: None,
            deferrable: None,
        }
    }

    /// Sets the isolation level.
    #[must_use]
    pub const fn isolation(mut self, level: IsolationLevel) -> Self {
        self.isolation = Some(level);
        self
    }

    /// Makes the transaction read-only (or explicitly read-write).
    #[must_use]
    pub const fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// Makes a serializable read-only transaction deferrable.
    #[must_use]
    pub const fn deferrable(mut self, deferrable: bool) -> Self {
        self.deferrable = Some(deferrable);
        self
    }

    /// The isolation level asked for, if any.
    pub fn isolation_level(&self) -> Option<IsolationLevel> {
        self.isolation
    }

    /// Fills unset options from `defaults`.
    pub(crate) fn or(self, defaults: TxOptions) -> TxOptions {
        TxOptions {
            isolation: self.isolation.or(defaults.isolation),
            read_only: self.read_only.or(defaults.read_only),
            deferrable: self.deferrable.or(defaults.deferrable),
        }
    }

    /// The BEGIN statement, built only from fixed keywords.
    pub(crate) fn begin_sql(&self) -> Cow<'static, str> {
        if *self == TxOptions::new() {
            return Cow::Borrowed("BEGIN");
        }
        let mut parts: Vec<&str> = Vec::with_capacity(3);
        let iso;
        if let Some(level) = self.isolation {
            iso = format!("ISOLATION LEVEL {}", level.sql());
            parts.push(&iso);
        }
        match self.read_only {
            Some(true) => parts.push("READ ONLY"),
            Some(false) => parts.push("READ WRITE"),
            None => {}
        }
        match self.deferrable {
            Some(true) => parts.push("DEFERRABLE"),
            Some(false) => parts.push("NOT DEFERRABLE"),
            None => {}
        }
        Cow::Owned(format!("BEGIN {}", parts.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_sql_from_options() {
        assert_eq!(TxOptions::new().begin_sql(), "BEGIN");
        assert_eq!(
            TxOptions::new()
                .isolation(IsolationLevel::Serializable)
                .read_only(true)
                .begin_sql(),
            "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY"
        );
    }
}

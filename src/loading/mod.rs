//! Relationships and how they load.
//!
//! Relationships are declared on model fields ([`Many`], [`One`], [`WriteOnly`]) and named by
//! typed handles ([`Rel`]: `User::posts`). Nothing loads implicitly: a relationship that was
//! not loaded reads as a typed error and runs no SQL. Loading is asked for with query options
//! (`select(User::ALL).options(selectin(User::posts))`), per-relationship defaults
//! (`lazy = "selectin"`), or after the fact for many objects at once
//! ([`AsyncSession::load`](crate::AsyncSession::load): one query for all of them).
//!
//! Loaders run on a narrow [`Context`](crate::state::Context) (identity map + connection),
//! never on the session itself.

mod deferred;
mod exec;
mod strategy;
mod write_only;

use std::borrow::Cow;

pub use self::deferred::{
    ColumnOpt, Deferred, defer, deferred_bind, deferred_generated_bind, load_only, undefer,
    undefer_group,
};
pub(crate) use self::deferred::{ColumnPlan, load_columns};
pub(crate) use self::exec::{Step, default_steps, raise_declared, run_level, run_steps};
pub(crate) use self::strategy::Strategy;
pub use self::strategy::{
    Load, LoadOpt, contains_eager, joined, noload, raise, raiseload_all, selectin,
};

use crate::error::{Error, Result};
use crate::row::Columns;
use crate::schema::Model;
use crate::sql::{All, Bind, Select, SqlText, SqlType, Statement, Typed};

/// Decodes one column value from its wire bytes (used by generated `set_column`).
#[doc(hidden)]
pub fn decode_column<T>(raw: Option<&[u8]>, column: &'static str) -> Result<T>
where
    T: SqlType + for<'a> tokio_postgres::types::FromSql<'a>,
{
    let ty = T::sql_type();
    let r = match raw {
        Some(bytes) => T::from_sql(&ty, bytes),
        None => T::from_sql_null(&ty),
    };
    r.map_err(|e| {
        Error::invalid(format!(
            "cannot set column `{column}` from a related key: {e}"
        ))
    })
}

/// A `SELECT` of model rows with loading options: what
/// [`Select::options`](crate::query::Select::options) returns. Run it with
/// [`AsyncSession::scalars`](crate::AsyncSession::scalars).
#[derive(Debug)]
pub struct Loading<M: Model> {
    query: Select<All<M>>,
    load: Load<M>,
    /// Options loaded through the query's own joins, with their column offsets.
    joined: Vec<(usize, usize)>,
    /// The model's columns chosen by column options (`None`: the default list).
    columns: Option<ColumnPlan>,
}

impl<M: Model> Clone for Loading<M> {
    fn clone(&self) -> Self {
        Loading {
            query: self.query.clone(),
            load: self.load.clone(),
            joined: self.joined.clone(),
            columns: self.columns.clone(),
        }
    }
}

impl<M: Model> Select<All<M>> {
    /// Loads relationships of the selected objects (SQLAlchemy's `.options(...)`):
    /// `select(User::ALL).options(selectin(User::posts).and(joined(User::profile)))`.
    pub fn options(self, load: impl Into<Load<M>>) -> Loading<M> {
        let load = load.into();
        let mut query = self;
        let mut joined = Vec::new();
        let columns = match ColumnPlan::build(M::TABLE, &load.cols) {
            Ok(plan) => plan,
            Err(e) => {
                query.set_error(e.to_string());
                None
            }
        };
        let mut offset = <M as crate::row::FromRow>::column_count();
        if let Some(plan) = &columns {
            query.set_columns(M::TABLE.columns, plan.indexes.clone());
            offset = plan.indexes.len();
        }
        for (i, step) in load.steps.iter().enumerate() {
            let joins = matches!(step.strategy(), Strategy::Joined | Strategy::ContainsEager);
            if joins && step.join_into(&mut query) {
                joined.push((i, offset));
                offset += step.joined_columns();
            }
        }
        Loading {
            query,
            load,
            joined,
            columns,
        }
    }
}

impl<M: Model> Loading<M> {
    /// The SQL text of the statement (with its eager joins), for logs and tests.
    pub fn to_sql(&self) -> String {
        self.query.to_sql()
    }

    pub(crate) fn load(&self) -> &Load<M> {
        &self.load
    }

    /// `(option index, column offset)` of options loaded by the statement's joins.
    pub(crate) fn joined(&self) -> &[(usize, usize)] {
        &self.joined
    }
}

impl<M: Model> crate::sql::private::Sealed for Loading<M> {}

impl<M: Model> Statement for Loading<M> {
    fn compile(&self) -> Result<(SqlText<'_>, Cow<'_, [Bind]>)> {
        self.query.compile()
    }

    fn is_plain_read(&self) -> bool {
        self.query.is_plain_read()
    }
}

impl<M: Model> Typed for Loading<M> {
    type Output = M;
    fn loading(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn columns(&self) -> Option<Columns> {
        self.columns.as_ref().map(|p| p.set)
    }
}

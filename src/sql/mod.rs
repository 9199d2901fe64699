//! SQL statements: raw SQL with bound values, and the values themselves.

mod dml;
mod expr;
mod func;
mod raw;
mod select;
mod types;
mod value;
mod writer;

use std::borrow::Cow;

pub use self::dml::{
    Assignments, ColumnList, ConflictTarget, Delete, Insert, InsertSelect, OnConstraint, Update,
    delete, insert, insert_many, insert_select, update,
};
pub use self::expr::Node;
pub use self::expr::{Alias, Column, ColumnType, Expr, IntoExpr, Order, value};
pub use self::func::{
    AnyExpr, Window, avg, case, coalesce, count, count_star, dense_rank, excluded, exists, func,
    max, min, rank, row_number, sum,
};
pub use self::raw::{AssertSqlSafe, Raw, sql};
pub use self::select::{All, Compound, Cte, MaybeModel, Optional, Select, Selectable, select};
pub use self::types::{CustomType, bind_node, enum_from_sql, enum_to_sql, enum_type};
pub(crate) use self::value::bind_array;
pub use self::value::{Bind, SqlType};
pub use self::writer::{SqlText, quote_ident};

use crate::error::Result;

pub(crate) mod private {
    pub trait Sealed {}
}

/// A statement whose rows map to a known type (`SELECT`, or DML with `RETURNING`).
pub trait Typed: Statement {
    /// What each row maps to.
    type Output: crate::FromRow;

    /// The loading options carried by the statement, if any.
    #[doc(hidden)]
    fn loading(&self) -> Option<&crate::loading::Loading<Self::Output>>
    where
        Self::Output: crate::Model,
    {
        None
    }
}

/// Something that compiles to SQL text plus bound values: raw SQL ([`Raw`]) or a statement
/// from the typed builder. Sealed: only aludel's statement types implement it.
pub trait Statement: private::Sealed {
    /// The SQL text and the values to bind, in placeholder order.
    #[doc(hidden)]
    fn compile(&self) -> Result<(SqlText<'_>, Cow<'_, [Bind]>)>;
}

impl private::Sealed for Raw {}

impl Statement for Raw {
    fn compile(&self) -> Result<(SqlText<'_>, Cow<'_, [Bind]>)> {
        self.finish()
    }
}

/// Raw SQL yields [`Row`](crate::Row)s.
impl Typed for Raw {
    type Output = crate::Row;
}

impl<S: Statement> private::Sealed for &S {}

impl<S: Statement> Statement for &S {
    fn compile(&self) -> Result<(SqlText<'_>, Cow<'_, [Bind]>)> {
        (**self).compile()
    }
}

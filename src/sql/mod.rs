//! SQL statements: raw SQL with bound values, and the values themselves.

mod columnar;
mod compound;
mod ddl;
mod dml;
mod expr;
mod func;
mod keys;
mod raw;
mod select;
mod selectable;
mod types;
mod writer;

use std::borrow::Cow;

pub(crate) use self::ddl::{create_statements, drop_statements};
pub(crate) use self::dml::insert_rows_sql;
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
pub(crate) use self::keys::key_condition;
pub use self::raw::{AssertSqlSafe, Raw, sql};
pub use self::select::{All, Compound, Cte, MaybeModel, Optional, Select, Selectable, select};
pub use self::types::{CustomType, bind_node, enum_from_sql, enum_to_sql, enum_type};
pub use self::writer::{SqlText, quote_ident};
pub(crate) use crate::value::bind_array;
pub(crate) use crate::value::{Bind, SqlType};

use crate::error::Result;

pub(crate) mod private {
    pub trait Sealed {}
}

/// A statement whose rows map to a known type (`SELECT`, or DML with `RETURNING`).
pub trait Typed: Statement {
    /// What each row maps to.
    type Output: crate::FromRow;

    /// The loading options carried by the statement, if any: a `Loading<Self::Output>`
    /// (defined above this layer, in `loading`; the session downcasts it).
    #[doc(hidden)]
    fn loading(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// The deferred columns the statement's column options put in its rows (`None`: the
    /// output's default columns).
    #[doc(hidden)]
    fn columns(&self) -> Option<crate::row::Columns> {
        None
    }
}

/// Something that compiles to SQL text plus bound values: raw SQL ([`Raw`]) or a statement
/// from the typed builder. Sealed: only aludel's statement types implement it.
pub trait Statement: private::Sealed {
    /// The SQL text and the values to bind, in placeholder order.
    #[doc(hidden)]
    fn compile(&self) -> Result<(SqlText<'_>, Cow<'_, [Bind]>)>;

    /// True for a plain `SELECT` from the typed builder: no row locks, no `WITH` (which may
    /// hold DML). The session may run such a statement before its transaction's `BEGIN`
    /// when its text also passes [`plain_read_text`] (see `docs/architecture.md`).
    #[doc(hidden)]
    fn is_plain_read(&self) -> bool {
        false
    }
}

/// True when `sql` is a `SELECT` that calls no function and reads no transaction-dependent
/// value: no call syntax (`name(`, `"name"(`) except `ANY(` (the builder's `IN`), no
/// `CURRENT_…`/`LOCALTIME…` keyword, no `FOR …` row lock, no literal. Conservative on purpose: `count(*)` and
/// `CAST(…)` fail it; grouping parentheses (`WHERE (a = $1)`) pass.
pub(crate) fn plain_read_text(sql: &str) -> bool {
    let b = sql.as_bytes();
    if !b.starts_with(b"SELECT ") {
        return false;
    }
    let mut in_ident = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' => in_ident = !in_ident,
            _ if in_ident => {}
            // A call is `name(` or `"name"(`; a `(` after a space or operator only groups.
            b'(' if i > 0
                && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b'"'))
                && !b[..i].ends_with(b"ANY") =>
            {
                return false;
            }
            b'\'' | b';' => return false,
            b'C' if b[i..].starts_with(b"CURRENT_") => return false,
            b'L' if b[i..].starts_with(b"LOCALTIME") => return false,
            // Row locks, also inside subqueries (`FOR UPDATE`, `FOR SHARE`, …).
            b'F' if b[i..].starts_with(b"FOR ") => return false,
            _ => {}
        }
    }
    true
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

    fn is_plain_read(&self) -> bool {
        (**self).is_plain_read()
    }
}

#[cfg(test)]
mod tests {
    use super::plain_read_text;

    #[test]
    fn plain_read_text_is_conservative() {
        assert!(plain_read_text(
            r#"SELECT "users"."id", "users"."name" FROM "users" WHERE "users"."id" = ANY($1)"#
        ));
        assert!(plain_read_text(r#"SELECT "t"."now()" FROM "t""#));
        assert!(plain_read_text(
            r#"SELECT "items"."id" FROM "items" WHERE ("items"."name" = $1) AND (("a" < $2))"#
        ));
        for not in [
            r#"SELECT count(*) FROM "users""#,
            r#"SELECT "users"."id" FROM "users" WHERE "users"."at" < now()"#,
            r#"SELECT CURRENT_TIMESTAMP"#,
            r#"SELECT LOCALTIMESTAMP"#,
            r#"SELECT "users"."id" FROM "users" WHERE ("users"."at" < now())"#,
            r#"SELECT "my_fn"("users"."id") FROM "users""#,
            r#"SELECT "a" FROM "t" WHERE EXISTS (SELECT "b" FROM "u" FOR UPDATE)"#,
            r#"SELECT "id" FROM "users" WHERE "id" = lower($1)"#,
            r#"SELECT 'x'"#,
            r#"WITH x AS (DELETE FROM "t" RETURNING 1) SELECT 1"#,
            r#"UPDATE "t" SET "a" = $1"#,
        ] {
            assert!(!plain_read_text(not), "{not}");
        }
    }
}

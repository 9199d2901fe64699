//! The statement builder and raw SQL: statement types, expressions, columns, and the traits
//! every statement implements. The entry points (`select`, `insert`, `insert_many`, `update`,
//! `delete`, `sql`) are also at the crate root.

pub use crate::sql::{
    Alias, All, AssertSqlSafe, Assignments, Column, ColumnList, Compound, ConflictTarget, Cte,
    Delete, Expr, Insert, InsertSelect, IntoExpr, MaybeModel, OnConstraint, Optional, Order, Raw,
    Select, Selectable, SqlText, Statement, Typed, Update, case, delete, excluded, exists, insert,
    insert_many, insert_select, quote_ident, select, sql, update, value,
};

//! What a `SELECT` reads: models (`All`, `Optional`), columns, expressions and tuples of them.

use std::marker::PhantomData;

use super::expr::{Alias, Column, Expr};
use super::writer::Writer;
use crate::error::Result;
use crate::row::FromRow;
use crate::schema::Model;

/// What a `SELECT` reads: a model ([`All`]), a column, an expression, or a tuple of those.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be selected",
    note = "select a model (`User::ALL`), a column (`User::name`), an expression, or a tuple of them"
)]
pub trait Selectable {
    /// What each row maps to.
    type Output: FromRow;
    /// Writes the select list.
    #[doc(hidden)]
    fn render(&self, w: &mut Writer);
    /// The table to select from when the statement does not say (the first model or column).
    #[doc(hidden)]
    fn default_from(&self) -> Option<&'static str>;
    /// The model tables this selection reads (for joins inferred from foreign keys).
    #[doc(hidden)]
    fn tables(&self, _out: &mut Vec<&'static crate::schema::TableDef>) {}
}

/// Every column of model `M`, mapped to `M` (`User::ALL`).
pub struct All<M> {
    table: &'static str,
    _m: PhantomData<fn() -> M>,
}

impl<M> Clone for All<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for All<M> {}

impl<M> std::fmt::Debug for All<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.*", self.table)
    }
}

impl<M: Model> All<M> {
    #[doc(hidden)]
    pub const fn new() -> Self {
        All {
            table: M::TABLE.name,
            _m: PhantomData,
        }
    }

    /// All columns read through an alias.
    pub const fn of(alias: &Alias<M>) -> Self {
        All {
            table: alias.name,
            _m: PhantomData,
        }
    }

    /// The model from the outer side of a join: `None` when its primary key is NULL.
    pub const fn optional(self) -> Optional<M> {
        Optional(self)
    }
}

/// The columns `select(Model::ALL)` reads: all but `Deferred` ones.
pub(super) fn render_all(
    table: &'static str,
    columns: &'static [crate::schema::ColumnDef],
    w: &mut Writer,
) {
    let mut first = true;
    for c in columns.iter().filter(|c| !c.deferred) {
        if !first {
            w.push(", ");
        }
        first = false;
        w.ident(table);
        w.push(".");
        w.ident(c.name);
    }
}

impl<M: Model> Selectable for All<M> {
    type Output = M;
    fn render(&self, w: &mut Writer) {
        render_all(self.table, M::TABLE.columns, w);
    }
    fn default_from(&self) -> Option<&'static str> {
        Some(self.table)
    }
    fn tables(&self, out: &mut Vec<&'static crate::schema::TableDef>) {
        out.push(M::TABLE);
    }
}

/// A model from the outer side of a join (`Post::ALL.optional()`), mapped to `Option<M>`.
#[derive(Debug, Clone, Copy)]
pub struct Optional<M>(All<M>);

/// `Option<M>` for a model: `None` when the primary-key columns are NULL.
#[derive(Debug)]
pub struct MaybeModel<M>(pub Option<M>);

impl<M: Model> FromRow for MaybeModel<M> {
    fn from_row_at(row: &crate::Row, offset: usize) -> Result<Self> {
        <M as crate::row::FromRowOpt>::from_row_opt_at(row, offset).map(MaybeModel)
    }
    fn column_count() -> usize {
        <M as FromRow>::column_count()
    }
}

impl<M: Model> Selectable for Optional<M> {
    type Output = Option<M>;
    fn render(&self, w: &mut Writer) {
        self.0.render(w);
    }
    fn default_from(&self) -> Option<&'static str> {
        None
    }
}

impl<M: Model, F: FromRow + super::expr::ColumnType> Selectable for Column<M, F> {
    type Output = F;
    fn render(&self, w: &mut Writer) {
        self.node().render(w);
    }
    fn default_from(&self) -> Option<&'static str> {
        Some(M::TABLE.name)
    }
    fn tables(&self, out: &mut Vec<&'static crate::schema::TableDef>) {
        out.push(M::TABLE);
    }
}

impl<T: FromRow> Selectable for Expr<T> {
    type Output = T;
    fn render(&self, w: &mut Writer) {
        self.node.render(w);
    }
    fn default_from(&self) -> Option<&'static str> {
        self.node.first_table()
    }
}

macro_rules! tuple_selectable {
    ($($n:ident $i:tt),+) => {
        impl<$($n: Selectable),+> Selectable for ($($n,)+) {
            type Output = ($($n::Output,)+);
            fn render(&self, w: &mut Writer) {
                let mut first = true;
                $(
                    if !first { w.push(", "); }
                    first = false;
                    self.$i.render(w);
                )+
                let _ = first;
            }
            fn default_from(&self) -> Option<&'static str> {
                None $(.or_else(|| self.$i.default_from()))+
            }
            fn tables(&self, out: &mut Vec<&'static crate::schema::TableDef>) {
                $(self.$i.tables(out);)+
            }
        }
    };
}

tuple_selectable!(A 0);
tuple_selectable!(A 0, B 1);
tuple_selectable!(A 0, B 1, C 2);
tuple_selectable!(A 0, B 1, C 2, D 3);
tuple_selectable!(A 0, B 1, C 2, D 3, E 4);
tuple_selectable!(A 0, B 1, C 2, D 3, E 4, F 5);

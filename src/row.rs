//! Result rows and mapping them into Rust values.

use std::fmt;

use tokio_postgres::types::FromSql;

use crate::error::{Error, Result};

/// One row of a result, read by column index (fast) or name.
pub struct Row(pub(crate) tokio_postgres::Row);

impl Row {
    /// Reads column `idx` as `T`. A type mismatch is an error naming the column.
    #[inline]
    pub fn get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<T> {
        self.0.try_get(idx).map_err(|e| {
            let name = self.0.columns().get(idx).map_or("?", |c| c.name());
            Error::decode(name, e)
        })
    }

    /// Reads the column called `name` as `T`.
    pub fn get_by_name<'a, T: FromSql<'a>>(&'a self, name: &str) -> Result<T> {
        self.0.try_get(name).map_err(|e| Error::decode(name, e))
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The column names, in order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.0.columns().iter().map(|c| c.name())
    }

    /// The driver's row, for what this wrapper does not offer.
    pub fn as_driver_row(&self) -> &tokio_postgres::Row {
        &self.0
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Row")
            .field("columns", &self.0.columns().len())
            .finish()
    }
}

/// A column's value as the bytes on the wire, borrowed from the row (`None` = NULL).
pub(crate) struct RawSlice<'a>(pub(crate) Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawSlice<'a> {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawSlice(Some(raw)))
    }
    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawSlice(None))
    }
    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// A Rust value built from one result row.
///
/// Implemented for single values (`i32`, `String`, `Option<T>` … read from column 0), for
/// tuples of them (read by position), for [`Row`] itself, and by `#[derive(Model)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be built from a result row",
    note = "use a model, a tuple of column types, a single column type, or `aludel::Row`"
)]
pub trait FromRow: Sized {
    /// Builds the value from `row`, starting at column `offset` (tuples of models read several
    /// consecutive column ranges of one row).
    fn from_row_at(row: &Row, offset: usize) -> Result<Self>;

    /// How many columns this value reads.
    fn column_count() -> usize;

    /// Builds the value from a row holding the default columns plus the deferred ones
    /// `cols` names, in column order (models with `Deferred` fields; others ignore `cols`).
    #[doc(hidden)]
    #[inline]
    fn from_row_columns(row: &Row, offset: usize, cols: Columns) -> Result<Self> {
        let _ = cols;
        Self::from_row_at(row, offset)
    }

    /// Builds the value from the whole row.
    #[inline]
    fn from_row(row: &Row) -> Result<Self> {
        Self::from_row_at(row, 0)
    }
}

/// A value that may be absent from a row: a NULL column, or a model whose primary key is
/// NULL (the missing side of an outer join). `Option<T>` reads through it.
/// Implemented for the built-in types and by the derives.
#[doc(hidden)]
pub trait FromRowOpt: Sized {
    /// `None` when the value is absent at `offset`.
    fn from_row_opt_at(row: &Row, offset: usize) -> Result<Option<Self>>;
    /// How many columns the value reads.
    fn opt_column_count() -> usize;
}

impl<T: FromRowOpt> FromRow for Option<T> {
    #[inline]
    fn from_row_at(row: &Row, offset: usize) -> Result<Self> {
        T::from_row_opt_at(row, offset)
    }
    fn column_count() -> usize {
        T::opt_column_count()
    }
}

impl FromRow for Row {
    fn from_row_at(row: &Row, _offset: usize) -> Result<Self> {
        Ok(Row(row.0.clone()))
    }
    fn column_count() -> usize {
        0
    }
}

// `FromRow` for the built-in and feature column types: `sql/types.rs`, expanded from the
// one list in `value.rs`.

macro_rules! tuple_from_row {
    ($($name:ident),+) => {
        impl<$($name: FromRow),+> FromRow for ($($name,)+) {
            #[inline]
            #[allow(unused_assignments)]
            fn from_row_at(row: &Row, offset: usize) -> Result<Self> {
                let mut at = offset;
                Ok(($({
                    let v = $name::from_row_at(row, at)?;
                    at += $name::column_count();
                    v
                },)+))
            }
            fn column_count() -> usize { 0 $(+ $name::column_count())+ }
        }
    };
}

tuple_from_row!(A);
tuple_from_row!(A, B);
tuple_from_row!(A, B, C);
tuple_from_row!(A, B, C, D);
tuple_from_row!(A, B, C, D, E);
tuple_from_row!(A, B, C, D, E, F);
tuple_from_row!(A, B, C, D, E, F, G);
tuple_from_row!(A, B, C, D, E, F, G, H);

/// Decodes a row of a statement whose column options chose `cols` (`None`: the defaults).
#[inline]
pub(crate) fn decode_row<T: FromRow>(row: &Row, cols: Option<Columns>) -> Result<T> {
    match cols {
        Some(c) => T::from_row_columns(row, 0, c),
        None => T::from_row(row),
    }
}

/// The deferred columns a statement loads (bit `k` = the model's `k`-th deferred column),
/// and those that raise on access. Generated `from_row_columns` reads this.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Columns {
    /// Deferred columns present in the row.
    pub loaded: u64,
    /// Deferred columns absent from the row whose errors say `raiseload`.
    pub raise: u64,
}

impl Columns {
    /// Whether deferred column `k` is in the row.
    #[inline]
    pub fn has(&self, k: usize) -> bool {
        k < 64 && self.loaded & (1 << k) != 0
    }

    /// Whether deferred column `k`, absent, raises.
    #[inline]
    pub fn raises(&self, k: usize) -> bool {
        k < 64 && self.raise & (1 << k) != 0
    }
}

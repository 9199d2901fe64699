//! Model metadata: what `#[derive(Model)]` knows about a table, and the `Model` trait.

mod ddl;

pub(crate) use self::ddl::dependency_order as dependency_order_of;
pub use self::ddl::{CreateOptions, create_all, drop_all};

use tokio_postgres::types::Type;

use crate::row::FromRow;
use crate::sql::Bind;

/// A Rust struct mapped to a table. Implemented by `#[derive(Model)]`; not by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a model",
    note = "add `#[derive(aludel::Model)]` to the struct"
)]
pub trait Model: FromRow + crate::row::FromRowOpt + Send + Sync + 'static {
    /// The table's description.
    const TABLE: &'static TableDef;

    /// Appends the values of the columns an INSERT supplies ([`TableDef::insert_columns`]),
    /// in that order.
    fn insert_values(&self, out: &mut Vec<Bind>);

    /// The value of column `idx` (in [`TableDef::columns`] order).
    fn column_value(&self, idx: usize) -> Option<Bind>;

    /// Appends the identity key (the primary-key fields' encodings) to `out`.
    #[doc(hidden)]
    fn write_identity(&self, out: &mut tokio_postgres::types::private::BytesMut);

    /// Sets column `idx` from its wire encoding (`None` = NULL): how the unit of work copies
    /// a parent's key into a foreign key.
    #[doc(hidden)]
    fn set_column(&mut self, idx: usize, raw: Option<&[u8]>) -> crate::Result<()>;

    /// Builds the model from a row holding its default columns plus the deferred ones
    /// `cols` names (in column order), from `offset`.
    #[doc(hidden)]
    fn from_row_columns(
        row: &crate::Row,
        offset: usize,
        cols: crate::loading::Columns,
    ) -> crate::Result<Self>
    where
        Self: Sized,
    {
        let _ = cols;
        <Self as FromRow>::from_row_at(row, offset)
    }

    /// Calls `v.visit(rel)` for each relationship of the model.
    #[doc(hidden)]
    fn visit_relations<V: crate::loading::RelVisitor<Self>>(v: &mut V)
    where
        Self: Sized,
    {
        let _ = v;
    }
}

/// A table: columns, keys and constraints.
#[derive(Debug)]
#[non_exhaustive]
pub struct TableDef {
    /// Table name (unquoted; quoted when rendered).
    pub name: &'static str,
    /// Columns in field order; `SELECT` of a model reads them in this order.
    pub columns: &'static [ColumnDef],
    /// Composite UNIQUE constraints (column names).
    pub uniques: &'static [&'static [&'static str]],
    /// Indexes (column names).
    pub indexes: &'static [IndexDef],
    /// CHECK constraints.
    pub checks: &'static [CheckDef],
    /// Some column is `Deferred<_>` (left out of `select(Model::ALL)`).
    pub has_deferred: bool,
}

impl TableDef {
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        columns: &'static [ColumnDef],
        uniques: &'static [&'static [&'static str]],
        indexes: &'static [IndexDef],
        checks: &'static [CheckDef],
    ) -> Self {
        let mut has_deferred = false;
        let mut i = 0;
        while i < columns.len() {
            has_deferred |= columns[i].deferred;
            i += 1;
        }
        TableDef {
            name,
            columns,
            uniques,
            indexes,
            checks,
            has_deferred,
        }
    }

    /// The columns `select(Model::ALL)` reads, in order: all but `Deferred` ones.
    pub fn default_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| !c.deferred)
    }

    /// Primary-key columns, in declaration order.
    pub fn primary_key(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.primary_key)
    }

    /// Columns an INSERT supplies: all but server-generated ones.
    pub fn insert_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.is_insertable())
    }

    /// Where column `idx` sits in a `select(Model::ALL)` row; `None` for a `Deferred` column.
    pub(crate) fn default_position(&self, idx: usize) -> Option<usize> {
        let c = self.columns.get(idx)?;
        if c.deferred {
            return None;
        }
        Some(self.columns[..idx].iter().filter(|c| !c.deferred).count())
    }

    /// The index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Tables this one references through foreign keys.
    pub fn references(&self) -> impl Iterator<Item = &'static TableDef> + '_ {
        self.columns
            .iter()
            .filter_map(|c| c.foreign_key.as_ref().map(|fk| (fk.table)()))
    }
}

/// One column.
#[derive(Debug)]
#[non_exhaustive]
pub struct ColumnDef {
    /// Column name in the database.
    pub name: &'static str,
    /// Rust field name.
    pub field: &'static str,
    /// The SQL type values are sent and read as.
    pub sql_type: fn() -> Type,
    /// An explicit DDL type (`varchar(80)`), overriding the one derived from `sql_type`.
    pub ddl_type: Option<&'static str>,
    /// `Option<T>` field: NULL allowed.
    pub nullable: bool,
    /// Part of the primary key.
    pub primary_key: bool,
    /// `GENERATED BY DEFAULT AS IDENTITY`: the server assigns it on INSERT.
    pub identity: bool,
    /// A server default expression (`now()`); such columns are filled by the server on INSERT.
    pub server_default: Option<&'static str>,
    /// A single-column UNIQUE constraint.
    pub unique: bool,
    /// A single-column index.
    pub index: bool,
    /// A foreign key to another model's column.
    pub foreign_key: Option<ForeignKeyDef>,
    /// The optimistic-locking version counter (`#[aludel(version)]`).
    pub version: bool,
    /// A `Deferred<_>` field: not loaded unless a statement asks for it.
    pub deferred: bool,
    /// The deferral group (`#[aludel(group = "…")]`), for `undefer_group`.
    pub group: Option<&'static str>,
}

impl ColumnDef {
    #[doc(hidden)]
    pub const fn new(name: &'static str, field: &'static str, sql_type: fn() -> Type) -> Self {
        ColumnDef {
            name,
            field,
            sql_type,
            ddl_type: None,
            nullable: false,
            primary_key: false,
            identity: false,
            server_default: None,
            unique: false,
            index: false,
            foreign_key: None,
            version: false,
            deferred: false,
            group: None,
        }
    }

    #[doc(hidden)]
    pub const fn versioned(mut self) -> Self {
        self.version = true;
        self
    }

    #[doc(hidden)]
    pub const fn deferred(mut self, group: Option<&'static str>) -> Self {
        self.deferred = true;
        self.group = group;
        self
    }

    #[doc(hidden)]
    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
    pub const fn with(
        mut self,
        ddl_type: Option<&'static str>,
        nullable: bool,
        primary_key: bool,
        identity: bool,
        server_default: Option<&'static str>,
        unique: bool,
        index: bool,
        foreign_key: Option<ForeignKeyDef>,
    ) -> Self {
        self.ddl_type = ddl_type;
        self.nullable = nullable;
        self.primary_key = primary_key;
        self.identity = identity;
        self.server_default = server_default;
        self.unique = unique;
        self.index = index;
        self.foreign_key = foreign_key;
        self
    }

    /// True when an INSERT supplies this column (not identity, no server default).
    pub fn is_insertable(&self) -> bool {
        !self.identity && self.server_default.is_none()
    }
}

/// A foreign key from one column to another model's column.
#[derive(Debug)]
#[non_exhaustive]
pub struct ForeignKeyDef {
    /// The referenced table.
    pub table: fn() -> &'static TableDef,
    /// The referenced column.
    pub column: &'static str,
    /// What happens to this row when the referenced one is deleted.
    pub on_delete: OnDelete,
}

impl ForeignKeyDef {
    #[doc(hidden)]
    pub const fn new(
        table: fn() -> &'static TableDef,
        column: &'static str,
        on_delete: OnDelete,
    ) -> Self {
        ForeignKeyDef {
            table,
            column,
            on_delete,
        }
    }
}

/// `ON DELETE` action of a foreign key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnDelete {
    /// `NO ACTION` (the default).
    NoAction,
    /// `RESTRICT`.
    Restrict,
    /// `CASCADE`.
    Cascade,
    /// `SET NULL`.
    SetNull,
    /// `SET DEFAULT`.
    SetDefault,
}

impl OnDelete {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::NoAction => "NO ACTION",
            Self::Restrict => "RESTRICT",
            Self::Cascade => "CASCADE",
            Self::SetNull => "SET NULL",
            Self::SetDefault => "SET DEFAULT",
        }
    }
}

/// An index over one or more columns.
#[derive(Debug)]
#[non_exhaustive]
pub struct IndexDef {
    /// Column names.
    pub columns: &'static [&'static str],
    /// `CREATE UNIQUE INDEX`.
    pub unique: bool,
}

impl IndexDef {
    #[doc(hidden)]
    pub const fn new(columns: &'static [&'static str], unique: bool) -> Self {
        IndexDef { columns, unique }
    }
}

/// A named CHECK constraint with a SQL expression written in the model.
#[derive(Debug)]
#[non_exhaustive]
pub struct CheckDef {
    /// Constraint name.
    pub name: &'static str,
    /// The SQL boolean expression (from a string literal in the derive).
    pub expr: &'static str,
}

impl CheckDef {
    #[doc(hidden)]
    pub const fn new(name: &'static str, expr: &'static str) -> Self {
        CheckDef { name, expr }
    }
}

/// Whether two descriptions are the same table. By name: a `&'static` from a `const` item
/// is not guaranteed to have one address across uses, so pointer equality would be wrong.
pub(crate) fn same_table(a: &TableDef, b: &TableDef) -> bool {
    a.name == b.name
}

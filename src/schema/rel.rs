//! Relationship metadata the derive writes for each relationship field: its kind, join
//! columns, link table, cascades and default loading strategy. The typed handle (`Rel`) and
//! the field slots live in `state`, since slots hold objects.

use crate::error::{Error, Result};

use super::{Model, TableDef};

/// Which way the foreign key points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    /// The parent holds the foreign key (`post.author`).
    ManyToOne,
    /// The children hold the foreign key (`user.posts`).
    OneToMany,
    /// Like one-to-many, with at most one child (`user.profile`).
    OneToOne,
    /// Through a secondary (link) table (`article.tags`).
    ManyToMany,
}

/// What the unit of work does to related objects (SQLAlchemy's `cascade=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cascade {
    /// Adding the parent to a session adds its new related objects (default on).
    pub save_update: bool,
    /// Deleting the parent deletes its children.
    pub delete: bool,
    /// A child removed from the collection is deleted.
    pub delete_orphan: bool,
}

impl Cascade {
    /// `save-update` only: SQLAlchemy's default (`merge` has no separate meaning here).
    pub const DEFAULT: Cascade = Cascade {
        save_update: true,
        delete: false,
        delete_orphan: false,
    };
}

/// The default loading strategy of a relationship (`lazy = "…"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lazy {
    /// Not loaded unless asked for (a query option or `AsyncSession::load`). The default:
    /// where SQLAlchemy would lazy-load on access, aludel returns a typed error.
    Explicit,
    /// Loaded with every query for the parent, by one extra `= ANY($1)` query.
    Selectin,
    /// Loaded in the parent's query with a LEFT OUTER JOIN.
    Joined,
    /// Loading it is an error (for tests that must prove no extra SQL runs).
    Raise,
    /// Never loaded: reads as empty.
    NoLoad,
    /// A write-only collection.
    WriteOnly,
}

/// The link table of a many-to-many relationship.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Secondary {
    /// Its table.
    pub table: fn() -> &'static TableDef,
    /// Its columns referencing the parent's key.
    pub local: &'static [&'static str],
    /// Its columns referencing the target's key.
    pub remote: &'static [&'static str],
}

/// Column names of `cols`, or the primary key of `t`.
pub(crate) fn cols_or_pk(
    cols: Option<&'static [&'static str]>,
    t: &'static TableDef,
) -> Vec<&'static str> {
    match cols {
        Some(c) => c.to_vec(),
        None => t.primary_key().map(|c| c.name).collect(),
    }
}

/// Where columns `names` sit in a `select(Model::ALL)` row (join keys are never deferred).
pub(crate) fn row_positions(t: &'static TableDef, names: &[&'static str]) -> Result<Vec<usize>> {
    indexes(t, names)?
        .into_iter()
        .zip(names)
        .map(|(i, n)| {
            t.default_position(i).ok_or_else(|| {
                Error::invalid(format!(
                    "`{}.{n}` joins a relationship and cannot be Deferred",
                    t.name
                ))
            })
        })
        .collect()
}

/// Column indexes of `names` in `t`.
pub(crate) fn indexes(t: &'static TableDef, names: &[&'static str]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            t.column_index(n)
                .ok_or_else(|| Error::invalid(format!("no column `{n}` in table `{}`", t.name)))
        })
        .collect()
}

/// A relationship handle, as the derive's `visit_relations` passes it: `Rel<P, Target>`.
#[doc(hidden)]
pub trait RelHandle<P>: Copy + 'static {
    /// The related model.
    type Target: Model;
}

/// Visits the relationships of a model (generated code calls it once per relationship).
#[doc(hidden)]
pub trait RelVisitor<P: Model> {
    /// Called with each relationship handle.
    fn visit<R: RelHandle<P>>(&mut self, rel: R);
}

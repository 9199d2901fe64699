//! The relationship fields a model holds: [`Many`], [`One`] and [`WriteOnly`].
//!
//! A slot is either *not loaded* (reading it is a typed error and runs no SQL) or *loaded*.
//! Slots also keep the pending history the unit of work writes at the next flush.

use std::fmt;
use std::sync::{Arc, Weak};

use super::object::{Cell, Obj};
use crate::error::{Error, Result};
use crate::schema::Model;

/// One reference from a slot to a related object. References set by the user or a loader
/// are strong; the reverse side filled in by `back_populates` is weak, so two objects that
/// point at each other never keep each other alive.
pub(crate) enum Edge<C: Model> {
    Strong(Obj<C>),
    Weak(Weak<Cell<C>>),
}

impl<C: Model> Clone for Edge<C> {
    fn clone(&self) -> Self {
        match self {
            Edge::Strong(o) => Edge::Strong(o.clone()),
            Edge::Weak(w) => Edge::Weak(w.clone()),
        }
    }
}

impl<C: Model> Edge<C> {
    pub(crate) fn get(&self) -> Option<Obj<C>> {
        match self {
            Edge::Strong(o) => Some(o.clone()),
            Edge::Weak(w) => w.upgrade().map(Obj),
        }
    }

    pub(crate) fn is(&self, obj: &Obj<C>) -> bool {
        match self {
            Edge::Strong(o) => Obj::ptr_eq(o, obj),
            Edge::Weak(w) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(&obj.0)),
        }
    }
}

/// A collection relationship (one-to-many, many-to-many): `user.posts`.
///
/// Read it with [`Many::get`]; a collection that was not loaded is an error, never a query.
/// Change it through the relationship handle (`User::posts.add(&user, &post)`), which keeps
/// the other side in sync in memory; the flush writes foreign keys and link rows.
pub struct Many<C: Model> {
    pub(crate) items: Option<Vec<Edge<C>>>,
    pub(crate) raise: bool,
    pub(crate) relation: &'static str,
    pub(crate) added: Vec<Obj<C>>,
    pub(crate) removed: Vec<Obj<C>>,
}

impl<C: Model> Default for Many<C> {
    /// An empty, loaded collection (a new object has no related rows yet).
    fn default() -> Self {
        Many {
            items: Some(Vec::new()),
            raise: false,
            relation: "",
            added: Vec::new(),
            removed: Vec::new(),
        }
    }
}

impl<C: Model> Clone for Many<C> {
    /// Clones the loaded contents; pending history stays with the original.
    fn clone(&self) -> Self {
        Many {
            items: self.items.clone(),
            raise: self.raise,
            relation: self.relation,
            added: Vec::new(),
            removed: Vec::new(),
        }
    }
}

impl<C: Model> fmt::Debug for Many<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.items {
            Some(items) => write!(f, "Many({} loaded)", items.len()),
            None => f.write_str("Many(not loaded)"),
        }
    }
}

impl<C: Model> Many<C> {
    /// An empty collection, for a new object.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new object's initial members: inserted (or linked) with the parent at its flush.
    pub fn from_objects<'a>(objs: impl IntoIterator<Item = &'a Obj<C>>) -> Self {
        let added: Vec<Obj<C>> = objs.into_iter().cloned().collect();
        Many {
            items: Some(added.iter().cloned().map(Edge::Strong).collect()),
            added,
            ..Self::default()
        }
    }

    #[doc(hidden)]
    pub const fn not_loaded(relation: &'static str) -> Self {
        Many {
            items: None,
            raise: false,
            relation,
            added: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// Whether the collection is loaded.
    pub fn is_loaded(&self) -> bool {
        self.items.is_some()
    }

    /// The related objects, in load order. Never runs SQL.
    ///
    /// # Errors
    /// `is_not_loaded()` when the collection was not loaded (or is marked `raise`), or when a
    /// member filled in through `back_populates` was dropped since.
    pub fn get(&self) -> Result<Vec<Obj<C>>> {
        let items = self
            .items
            .as_ref()
            .ok_or_else(|| Error::not_loaded(self.relation, self.raise))?;
        items
            .iter()
            .map(|e| {
                e.get()
                    .ok_or_else(|| Error::not_loaded(self.relation, false))
            })
            .collect()
    }

    /// The number of related objects.
    ///
    /// # Errors
    /// As [`Many::get`].
    pub fn len(&self) -> Result<usize> {
        self.items
            .as_ref()
            .map(Vec::len)
            .ok_or_else(|| Error::not_loaded(self.relation, self.raise))
    }

    /// True when loaded and empty.
    ///
    /// # Errors
    /// As [`Many::get`].
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    pub(crate) fn set_loaded(&mut self, relation: &'static str, items: Vec<Edge<C>>) {
        self.items = Some(items);
        self.raise = false;
        self.relation = relation;
    }

    pub(crate) fn set_unloaded(&mut self, relation: &'static str, raise: bool) {
        self.items = None;
        self.raise = raise;
        self.relation = relation;
    }

    /// Appends to the loaded contents (if loaded) without recording history.
    pub(crate) fn link(&mut self, edge: Edge<C>) {
        if let Some(items) = &mut self.items {
            if let Some(obj) = edge.get() {
                if items.iter().any(|e| e.is(&obj)) {
                    return;
                }
            }
            items.push(edge);
        }
    }

    pub(crate) fn unlink(&mut self, obj: &Obj<C>) {
        if let Some(items) = &mut self.items {
            items.retain(|e| !e.is(obj));
        }
    }

    pub(crate) fn record_add(&mut self, obj: &Obj<C>) {
        if let Some(i) = self.removed.iter().position(|o| Obj::ptr_eq(o, obj)) {
            self.removed.remove(i);
        } else if !self.added.iter().any(|o| Obj::ptr_eq(o, obj)) {
            self.added.push(obj.clone());
        }
    }

    pub(crate) fn record_remove(&mut self, obj: &Obj<C>) {
        if let Some(i) = self.added.iter().position(|o| Obj::ptr_eq(o, obj)) {
            self.added.remove(i);
        } else if !self.removed.iter().any(|o| Obj::ptr_eq(o, obj)) {
            self.removed.push(obj.clone());
        }
    }

    /// Strong members currently loaded (for cascades).
    pub(crate) fn loaded_objects(&self) -> Vec<Obj<C>> {
        self.items.iter().flatten().filter_map(Edge::get).collect()
    }
}

/// A scalar relationship (many-to-one, one-to-one): `post.author`.
///
/// Read it with [`One::get`] (`Ok(None)` when there is no related row); assign it through the
/// relationship handle (`Post::author.set(&post, Some(&user))`).
pub struct One<C: Model> {
    pub(crate) target: Option<Option<Edge<C>>>,
    pub(crate) raise: bool,
    pub(crate) relation: &'static str,
    /// Assigned since the last flush: the flush copies the target's key into the foreign key.
    pub(crate) changed: bool,
    /// The previous target when it was replaced (one-to-one orphan handling).
    pub(crate) replaced: Option<Obj<C>>,
}

impl<C: Model> Default for One<C> {
    /// Loaded and empty (a new object refers to nothing yet).
    fn default() -> Self {
        One {
            target: Some(None),
            raise: false,
            relation: "",
            changed: false,
            replaced: None,
        }
    }
}

impl<C: Model> Clone for One<C> {
    fn clone(&self) -> Self {
        One {
            target: self.target.clone(),
            raise: self.raise,
            relation: self.relation,
            changed: false,
            replaced: None,
        }
    }
}

impl<C: Model> fmt::Debug for One<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(Some(_)) => f.write_str("One(loaded)"),
            Some(None) => f.write_str("One(none)"),
            None => f.write_str("One(not loaded)"),
        }
    }
}

impl<C: Model> One<C> {
    /// Nothing related yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new object's initial target: the flush sets the foreign key from it.
    pub fn to(obj: &Obj<C>) -> Self {
        One {
            target: Some(Some(Edge::Strong(obj.clone()))),
            changed: true,
            ..Self::default()
        }
    }

    #[doc(hidden)]
    pub const fn not_loaded(relation: &'static str) -> Self {
        One {
            target: None,
            raise: false,
            relation,
            changed: false,
            replaced: None,
        }
    }

    /// Whether the reference is loaded.
    pub fn is_loaded(&self) -> bool {
        self.target.is_some()
    }

    /// The related object, `None` when there is none. Never runs SQL.
    ///
    /// # Errors
    /// `is_not_loaded()` when not loaded (or marked `raise`), or when the object filled in
    /// through `back_populates` was dropped since.
    pub fn get(&self) -> Result<Option<Obj<C>>> {
        match &self.target {
            None => Err(Error::not_loaded(self.relation, self.raise)),
            Some(None) => Ok(None),
            Some(Some(e)) => e
                .get()
                .map(Some)
                .ok_or_else(|| Error::not_loaded(self.relation, false)),
        }
    }

    pub(crate) fn set_loaded(&mut self, relation: &'static str, target: Option<Edge<C>>) {
        self.target = Some(target);
        self.raise = false;
        self.relation = relation;
    }

    pub(crate) fn set_unloaded(&mut self, relation: &'static str, raise: bool) {
        self.target = None;
        self.raise = raise;
        self.relation = relation;
    }

    pub(crate) fn current(&self) -> Option<Obj<C>> {
        self.target
            .as_ref()
            .and_then(|t| t.as_ref())
            .and_then(Edge::get)
    }
}

/// A write-only collection (SQLAlchemy's `WriteOnlyMapped`): it never loads its members.
///
/// Queue changes with [`WriteOnly::add`] / [`WriteOnly::remove`]; the flush writes them. Read
/// members through a statement scoped to the parent: `User::events.select(&user)?`, which
/// you filter, paginate or stream. There is no way to iterate it in place: that is the point.
///
/// ```compile_fail
/// fn count(c: &aludel::WriteOnly<Post>) -> usize { c.iter().count() } // no iteration
/// # #[derive(aludel::Model)] struct Post { #[aludel(primary_key)] id: i64 }
/// ```
pub struct WriteOnly<C: Model> {
    pub(crate) added: Vec<Obj<C>>,
    pub(crate) removed: Vec<Obj<C>>,
    /// Set by [`WriteOnly::from_objects`]: a whole-collection assignment, allowed only for
    /// new parents.
    pub(crate) assigned: bool,
    pub(crate) relation: &'static str,
}

impl<C: Model> Default for WriteOnly<C> {
    fn default() -> Self {
        WriteOnly {
            added: Vec::new(),
            removed: Vec::new(),
            assigned: false,
            relation: "",
        }
    }
}

impl<C: Model> Clone for WriteOnly<C> {
    /// An empty handle: pending changes stay with the original.
    fn clone(&self) -> Self {
        WriteOnly {
            relation: self.relation,
            ..Self::default()
        }
    }
}

impl<C: Model> fmt::Debug for WriteOnly<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WriteOnly(+{} -{} pending)",
            self.added.len(),
            self.removed.len()
        )
    }
}

impl<C: Model> WriteOnly<C> {
    /// A handle with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    #[doc(hidden)]
    pub const fn named(relation: &'static str) -> Self {
        WriteOnly {
            added: Vec::new(),
            removed: Vec::new(),
            assigned: false,
            relation,
        }
    }

    /// Initial members of a *new* parent. Assigning a whole collection to a persistent parent
    /// is refused at flush (it would need the current members, which are never loaded).
    pub fn from_objects<'a>(objs: impl IntoIterator<Item = &'a Obj<C>>) -> Self {
        WriteOnly {
            added: objs.into_iter().cloned().collect(),
            assigned: true,
            ..Self::default()
        }
    }

    /// Queues `obj` to join the collection at the next flush (INSERT of a new object, or
    /// the foreign key / link row for an existing one). Loads nothing.
    pub fn add(&mut self, obj: &Obj<C>) {
        if let Some(i) = self.removed.iter().position(|o| Obj::ptr_eq(o, obj)) {
            self.removed.remove(i);
        } else {
            self.added.push(obj.clone());
        }
    }

    /// Queues several objects, in order.
    pub fn add_all<'a>(&mut self, objs: impl IntoIterator<Item = &'a Obj<C>>) {
        for o in objs {
            self.add(o);
        }
    }

    /// Queues `obj` (a persistent member) to leave the collection at the next flush: its row is
    /// deleted with `delete-orphan`, else its foreign key is set to NULL (one-to-many) or its
    /// link row deleted (many-to-many). No query checks that it was a member.
    pub fn remove(&mut self, obj: &Obj<C>) {
        if let Some(i) = self.added.iter().position(|o| Obj::ptr_eq(o, obj)) {
            self.added.remove(i);
        } else {
            self.removed.push(obj.clone());
        }
    }

    /// Number of queued additions and removals.
    pub fn pending(&self) -> (usize, usize) {
        (self.added.len(), self.removed.len())
    }
}

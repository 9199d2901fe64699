//! The transaction journal: every change a flush (or a criteria write) makes to objects, in
//! order, recorded *before* the statement that makes it is awaited. A rollback — of the
//! transaction, of a savepoint, or after a flush that failed or was dropped midway — undoes
//! the entries newest first, so no object keeps a state the database does not have.

use std::sync::{Arc, Weak};

use super::object::AnyObj;

/// Restores what a flush took from an object's relationship slots (see
/// [`super::relations::prepare`]).
pub(crate) type Undo = Box<dyn FnOnce() + Send + Sync>;

/// One change to objects made inside the current transaction.
pub(crate) enum Entry {
    /// A pending object a flush took for INSERT (inserted, or about to be). Undo: transient,
    /// out of the identity map (SQLAlchemy: pending and new-persistent objects are expunged).
    Inserted(Arc<dyn AnyObj>),
    /// A persistent object a flush or criteria DELETE deleted (or is deleting). Undo:
    /// persistent again, back in the identity map. Commit detaches it.
    Deleted(Arc<dyn AnyObj>),
    /// An object whose columns were written or reloaded. Undo: expired (its values come from
    /// the database again). Weak: an object the application dropped needs no undo.
    Updated(Weak<dyn AnyObj>),
    /// Relationship history the flush consumed. Undo: put back when its object went back to
    /// transient (a re-add cascades again); otherwise the slot is expired (not loaded).
    History(Undo),
}

/// Entries of the current transaction, oldest first; savepoints remember where they began.
#[derive(Default)]
pub(crate) struct Journal {
    entries: Vec<Entry>,
}

impl Journal {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn push(&mut self, e: Entry) {
        self.entries.push(e);
    }

    pub(crate) fn inserted(&mut self, objs: impl IntoIterator<Item = Arc<dyn AnyObj>>) {
        self.entries.extend(objs.into_iter().map(Entry::Inserted));
    }

    pub(crate) fn updated(&mut self, obj: &Arc<dyn AnyObj>) {
        self.entries.push(Entry::Updated(Arc::downgrade(obj)));
    }

    /// Takes the entries from `start` on (a savepoint's, or all of them), newest first.
    pub(crate) fn take_from(&mut self, start: usize) -> Vec<Entry> {
        let mut tail = self.entries.split_off(start.min(self.entries.len()));
        tail.reverse();
        tail
    }

    /// Objects deleted in this transaction (commit detaches them).
    pub(crate) fn deleted(&self) -> impl Iterator<Item = &Arc<dyn AnyObj>> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Deleted(o) => Some(o),
            _ => None,
        })
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Drops entries that only a savepoint rollback needs (expiry of written objects):
    /// outside savepoints a rollback expires every object anyway, so a long transaction does
    /// not keep what it wrote alive.
    pub(crate) fn compact(&mut self) {
        self.entries.retain(|e| !matches!(e, Entry::Updated(_)));
    }
}

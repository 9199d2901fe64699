//! What relationship history asks of a flush, computed from the objects alone: cascades
//! (save-update, delete, delete-orphan), foreign keys to copy from parents, keys to clear,
//! link rows, and what deleting a parent does to its children. The session's unit of work
//! (`session/relations.rs`) turns this into statements.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::identity::Context;
use super::object::{AnyObj, Obj, ObjectState};
use super::rel::{Rel, RelVisitor, Slot};
use crate::error::{Error, Result};
use crate::schema::{Model, RelKind, TableDef};
use crate::sql::Bind;

/// Restores what a flush took from an object's relationship slots (journaled by the
/// session, run if the flush is rolled back).
pub(crate) type Undo = Box<dyn FnOnce() + Send + Sync>;

/// One thing a relationship change asks of the flush.
pub(crate) enum RelWork {
    /// Make sure the object is in the session (save-update cascade).
    Cascade(Arc<dyn AnyObj>),
    /// Copy `from`'s columns into `to`'s before `to` is written.
    SyncKey {
        to: Arc<dyn AnyObj>,
        to_cols: Vec<usize>,
        from: Arc<dyn AnyObj>,
        from_cols: Vec<usize>,
    },
    /// Set the object's columns to NULL (a child removed from its parent).
    ClearKey {
        obj: Arc<dyn AnyObj>,
        cols: Vec<usize>,
    },
    /// Delete the object (delete-orphan).
    Delete(Arc<dyn AnyObj>),
    /// The previous target of a one-to-one: deleted (orphan) or its key cleared *before* the
    /// INSERTs, so a unique key on the foreign key lets the replacement in.
    Replaced {
        obj: Arc<dyn AnyObj>,
        cols: Vec<usize>,
        delete: bool,
    },
    /// Puts back the history taken from a slot if the flush is rolled back (journaled).
    Undo(Undo),
    /// Insert or delete one link row.
    Link {
        table: &'static TableDef,
        local: &'static [&'static str],
        remote: &'static [&'static str],
        parent: (Arc<dyn AnyObj>, Vec<usize>),
        child: (Arc<dyn AnyObj>, Vec<usize>),
        add: bool,
    },
}

type LoadChildren = for<'a> fn(
    &'a mut dyn Context,
    &'static str,
    Vec<&'static str>,
    Vec<Vec<Bind>>,
) -> BoxFuture<'a, Result<Vec<Arc<dyn AnyObj>>>>;

/// What deleting a parent means for one of its relationships.
pub(crate) struct DeleteRule {
    pub(crate) kind: RelKind,
    /// The table holding the foreign key (the child's, or the link table).
    pub(crate) table: &'static TableDef,
    pub(crate) cols: Vec<&'static str>,
    pub(crate) parent_key: Vec<Bind>,
    pub(crate) cascade_delete: bool,
    pub(crate) passive: bool,
    pub(crate) loaded: Vec<Arc<dyn AnyObj>>,
    /// Child columns holding the key, for loaded children (in memory).
    pub(crate) child_idx: Vec<usize>,
    pub(crate) load: LoadChildren,
}

struct WorkVisitor<'a, M: Model> {
    obj: &'a Obj<M>,
    is_new: bool,
    out: &'a mut Vec<RelWork>,
    err: Option<Error>,
}

impl<M: Model> WorkVisitor<'_, M> {
    /// Journals how to undo taking history from one slot: `restore` when the object went
    /// back to transient (a re-add cascades again), else the slot is expired (not loaded),
    /// as SQLAlchemy expires relationships on rollback.
    fn undo(&mut self, f: impl FnOnce(&mut M, bool) + Send + Sync + 'static) {
        let weak = Arc::downgrade(&self.obj.0);
        self.out.push(RelWork::Undo(Box::new(move || {
            if let Some(cell) = weak.upgrade() {
                let obj = Obj(cell);
                let restore = obj.state() == ObjectState::Transient;
                obj.with_value_mut(|v| f(v, restore));
            }
        })));
    }

    fn collection<C: Model>(
        &mut self,
        rel: Rel<M, C>,
        added: Vec<Obj<C>>,
        removed: Vec<Obj<C>>,
    ) -> Result<()> {
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let def = rel.def();
        let parent = self.obj.erased();
        let local = rel.local_idx()?;
        match (&def.secondary, def.kind) {
            (Some(sec), _) => {
                let table = (sec.table)();
                let target = rel.remote_idx()?;
                for (list, add) in [(added, true), (removed, false)] {
                    for c in list {
                        if add && def.cascade.save_update {
                            self.out.push(RelWork::Cascade(c.erased()));
                        }
                        if !add && def.cascade.delete_orphan {
                            self.out.push(RelWork::Delete(c.erased()));
                        }
                        self.out.push(RelWork::Link {
                            table,
                            local: sec.local,
                            remote: sec.remote,
                            parent: (parent.clone(), local.clone()),
                            child: (c.erased(), target.clone()),
                            add,
                        });
                    }
                }
            }
            (None, _) => {
                let remote = rel.remote_idx()?;
                for c in added {
                    if def.cascade.save_update {
                        self.out.push(RelWork::Cascade(c.erased()));
                    }
                    self.out.push(RelWork::SyncKey {
                        to: c.erased(),
                        to_cols: remote.clone(),
                        from: parent.clone(),
                        from_cols: local.clone(),
                    });
                }
                for c in removed {
                    self.out.push(if def.cascade.delete_orphan {
                        RelWork::Delete(c.erased())
                    } else {
                        RelWork::ClearKey {
                            obj: c.erased(),
                            cols: remote.clone(),
                        }
                    });
                }
            }
        }
        Ok(())
    }

    fn visit_inner<C: Model>(&mut self, rel: Rel<M, C>) -> Result<()> {
        let def = rel.def();
        match &def.slot {
            Slot::Many(f) => {
                let (added, removed) = self.obj.with_value_mut(|v| {
                    let s = f(v);
                    (std::mem::take(&mut s.added), std::mem::take(&mut s.removed))
                });
                if !added.is_empty() || !removed.is_empty() {
                    let (a, r, f, path) = (added.clone(), removed.clone(), *f, def.path);
                    self.undo(move |v, restore| {
                        let s = f(v);
                        if restore {
                            s.added.extend(a);
                            s.removed.extend(r);
                        } else {
                            s.set_unloaded(path, false);
                        }
                    });
                }
                self.collection(rel, added, removed)
            }
            Slot::WriteOnly(f) => {
                let (added, removed, assigned) = self.obj.with_value_mut(|v| {
                    let s = f(v);
                    (
                        std::mem::take(&mut s.added),
                        std::mem::take(&mut s.removed),
                        std::mem::take(&mut s.assigned),
                    )
                });
                if !added.is_empty() || !removed.is_empty() || assigned {
                    let (a, r, f) = (added.clone(), removed.clone(), *f);
                    self.undo(move |v, restore| {
                        if restore {
                            let s = f(v);
                            s.added.extend(a);
                            s.removed.extend(r);
                            s.assigned |= assigned;
                        }
                    });
                }
                if assigned && !self.is_new {
                    return Err(Error::invalid(format!(
                        "collection `{}` does not support implicit iteration; collection \
                         replacement operations can't be used on a persistent parent (use add/remove)",
                        def.path
                    )));
                }
                self.collection(rel, added, removed)
            }
            Slot::One(f) => {
                let (changed, target, replaced) = self.obj.with_value_mut(|v| {
                    let s = f(v);
                    (
                        std::mem::take(&mut s.changed),
                        s.current(),
                        s.replaced.take(),
                    )
                });
                if !changed {
                    return Ok(());
                }
                {
                    let (old, f, path) = (replaced.clone(), *f, def.path);
                    self.undo(move |v, restore| {
                        let s = f(v);
                        if restore {
                            s.changed = true;
                            if s.replaced.is_none() {
                                s.replaced = old;
                            }
                        } else {
                            s.set_unloaded(path, false);
                        }
                    });
                }
                let me = self.obj.erased();
                let local = rel.local_idx()?;
                let remote = rel.remote_idx()?;
                if def.kind == RelKind::ManyToOne {
                    match target {
                        Some(t) => {
                            if def.cascade.save_update {
                                self.out.push(RelWork::Cascade(t.erased()));
                            }
                            self.out.push(RelWork::SyncKey {
                                to: me,
                                to_cols: local,
                                from: t.erased(),
                                from_cols: remote,
                            });
                        }
                        None => self.out.push(RelWork::ClearKey {
                            obj: me,
                            cols: local,
                        }),
                    }
                    return Ok(());
                }
                // one-to-one with the key on the child
                if let Some(old) = replaced {
                    self.out.push(RelWork::Replaced {
                        obj: old.erased(),
                        cols: remote.clone(),
                        delete: def.cascade.delete_orphan,
                    });
                }
                if let Some(t) = target {
                    if def.cascade.save_update {
                        self.out.push(RelWork::Cascade(t.erased()));
                    }
                    self.out.push(RelWork::SyncKey {
                        to: t.erased(),
                        to_cols: remote,
                        from: me,
                        from_cols: local,
                    });
                }
                Ok(())
            }
        }
    }
}

impl<M: Model> RelVisitor<M> for WorkVisitor<'_, M> {
    fn visit<C: Model>(&mut self, rel: Rel<M, C>) {
        if self.err.is_none() {
            if let Err(e) = self.visit_inner(rel) {
                self.err = Some(e);
            }
        }
    }
}

/// Takes the relationship history of `obj` and turns it into work for the flush.
pub(crate) fn rel_work<M: Model>(obj: Obj<M>, out: &mut Vec<RelWork>) -> Result<()> {
    let is_new = matches!(obj.state(), ObjectState::Pending | ObjectState::Transient);
    let mut v = WorkVisitor {
        obj: &obj,
        is_new,
        out,
        err: None,
    };
    M::visit_relations(&mut v);
    v.err.map_or(Ok(()), Err)
}

fn load_children<'a, C: Model>(
    s: &'a mut dyn Context,
    table: &'static str,
    cols: Vec<&'static str>,
    keys: Vec<Vec<Bind>>,
) -> BoxFuture<'a, Result<Vec<Arc<dyn AnyObj>>>> {
    Box::pin(async move {
        let cond = crate::sql::key_condition(table, &cols, &keys);
        let q = crate::sql::select(crate::sql::All::<C>::new())
            .filter(crate::sql::Expr::from_node(cond));
        let objs = super::identity::fetch_objects::<C>(s, &q).await?;
        Ok(objs.iter().map(Obj::erased).collect())
    })
}

struct DeleteVisitor<'a, M: Model> {
    obj: &'a Obj<M>,
    out: Vec<DeleteRule>,
}

impl<M: Model> RelVisitor<M> for DeleteVisitor<'_, M> {
    fn visit<C: Model>(&mut self, rel: Rel<M, C>) {
        let def = rel.def();
        if def.kind == RelKind::ManyToOne {
            return;
        }
        let Ok(local) = rel.local_idx() else { return };
        let parent_key: Vec<Bind> = self
            .obj
            .with_value(|v| local.iter().filter_map(|i| v.column_value(*i)).collect());
        let loaded: Vec<Arc<dyn AnyObj>> = self.obj.with_value_mut(|v| match &def.slot {
            Slot::Many(f) => f(v).loaded_objects().iter().map(Obj::erased).collect(),
            Slot::One(f) => f(v).current().iter().map(Obj::erased).collect(),
            Slot::WriteOnly(_) => Vec::new(),
        });
        let (table, cols, child_idx) = match &def.secondary {
            Some(sec) => ((sec.table)(), sec.local.to_vec(), Vec::new()),
            None => {
                let names = crate::schema::cols_or_pk(def.remote, C::TABLE);
                let Ok(idx) = rel.remote_idx() else { return };
                (C::TABLE, names, idx)
            }
        };
        self.out.push(DeleteRule {
            kind: def.kind,
            table,
            cols,
            parent_key,
            cascade_delete: def.cascade.delete,
            passive: def.passive_deletes,
            loaded,
            child_idx,
            load: load_children::<C>,
        });
    }
}

pub(crate) fn delete_rules<M: Model>(obj: Obj<M>) -> Vec<DeleteRule> {
    let mut v = DeleteVisitor {
        obj: &obj,
        out: Vec::new(),
    };
    M::visit_relations(&mut v);
    v.out
}

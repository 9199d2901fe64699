//! `merge` with the merge cascade (SQLAlchemy's default): columns are copied onto the
//! session's object with change tracking, and relationship slots the merged value *set* are
//! merged recursively; slots it did not load or set leave the session's side as it is.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::object::{AnyObj, encode};
use super::{AsyncSession, Obj, ObjectState, pk_binds};
use crate::error::Result;
use crate::schema::Model;
use crate::state::{Many, One, Rel, RelVisitor, Slot};

/// Source object (by address) → the session's object it merged into.
type Memo = HashMap<usize, Arc<dyn AnyObj>>;

/// One relationship to merge, typed inside, run after the columns are copied.
type Task =
    Box<dyn for<'a> FnOnce(&'a mut AsyncSession, &'a mut Memo) -> BoxFuture<'a, Result<()>> + Send>;

fn addr<T: ?Sized>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as *const () as usize
}

/// Whether a collection in a merged value says something: loaded by a session, or changed.
/// `Many::new()` says nothing (an unset slot), so it never empties the session's collection.
fn many_is_set<C: Model>(m: &Many<C>) -> bool {
    m.items.is_some() && (!m.relation.is_empty() || !m.added.is_empty() || !m.removed.is_empty())
}

fn one_is_set<C: Model>(o: &One<C>) -> bool {
    o.target.is_some() && (!o.relation.is_empty() || o.changed)
}

/// Collects, per relationship the source set, a task that merges its members onto `target`.
struct Collect<M: Model> {
    target: Obj<M>,
    tasks: Vec<Task>,
}

impl<M: Model> Collect<M> {
    fn visit_source<C: Model>(&mut self, rel: Rel<M, C>, source: &mut M) {
        match &rel.def().slot {
            Slot::Many(f) => {
                let slot = f(source);
                if !many_is_set(slot) {
                    return;
                }
                // Strong members only: the weak ones are the reverse side of a pair.
                let members: Vec<Obj<C>> = slot
                    .items
                    .iter()
                    .flatten()
                    .filter_map(|e| match e {
                        crate::state::Edge::Strong(o) => Some(o.clone()),
                        crate::state::Edge::Weak(_) => None,
                    })
                    .collect();
                let target = self.target.clone();
                self.tasks.push(Box::new(move |s, memo| {
                    Box::pin(merge_many(s, memo, rel, target, members))
                }));
            }
            Slot::One(f) => {
                let slot = f(source);
                if !one_is_set(slot) {
                    return;
                }
                let member = match &slot.target {
                    Some(Some(crate::state::Edge::Strong(o))) => Some(o.clone()),
                    Some(Some(crate::state::Edge::Weak(_))) => return,
                    _ => None,
                };
                let target = self.target.clone();
                self.tasks.push(Box::new(move |s, memo| {
                    Box::pin(merge_one(s, memo, rel, target, member))
                }));
            }
            // No loaded state to merge; pending changes stay with the source.
            Slot::WriteOnly(_) => {}
        }
    }
}

struct Visit<'a, M: Model> {
    collect: &'a mut Collect<M>,
    source: &'a mut M,
}

impl<M: Model> RelVisitor<M> for Visit<'_, M> {
    fn visit<C: Model>(&mut self, rel: Rel<M, C>) {
        self.collect.visit_source(rel, self.source);
    }
}

fn tasks_for<M: Model>(target: &Obj<M>, source: &mut M) -> Vec<Task> {
    let mut collect = Collect {
        target: target.clone(),
        tasks: Vec::new(),
    };
    M::visit_relations(&mut Visit {
        collect: &mut collect,
        source,
    });
    collect.tasks
}

async fn merge_many<P: Model, C: Model>(
    s: &mut AsyncSession,
    memo: &mut Memo,
    rel: Rel<P, C>,
    target: Obj<P>,
    members: Vec<Obj<C>>,
) -> Result<()> {
    let mut merged = Vec::with_capacity(members.len());
    for m in members {
        merged.push(merge_obj(s, memo, m).await?);
    }
    let Slot::Many(f) = &rel.def().slot else {
        return Ok(());
    };
    let f = *f;
    if target.state() == ObjectState::Pending {
        // A new parent: its collection holds the source's members; put the merged ones in
        // their place (the flush inserts or links them).
        target.with_value_mut(|v| {
            let slot = f(v);
            slot.items = Some(
                merged
                    .iter()
                    .cloned()
                    .map(crate::state::Edge::Strong)
                    .collect(),
            );
            slot.added
                .retain(|a| merged.iter().any(|m| Obj::ptr_eq(a, m)));
            for m in &merged {
                if !slot.added.iter().any(|a| Obj::ptr_eq(a, m)) {
                    slot.added.push(m.clone());
                }
            }
        });
        return Ok(());
    }
    if !target.with_value_mut(|v| f(v).is_loaded()) {
        s.load(std::slice::from_ref(&target), crate::loading::selectin(rel))
            .await?;
    }
    let current = target.with_value_mut(|v| f(v).loaded_objects());
    for c in &current {
        if !merged.iter().any(|m| Obj::ptr_eq(m, c)) {
            rel.remove(&target, c)?;
        }
    }
    for m in &merged {
        if !current.iter().any(|c| Obj::ptr_eq(m, c)) {
            rel.add(&target, m)?;
        }
    }
    Ok(())
}

async fn merge_one<P: Model, C: Model>(
    s: &mut AsyncSession,
    memo: &mut Memo,
    rel: Rel<P, C>,
    target: Obj<P>,
    member: Option<Obj<C>>,
) -> Result<()> {
    let merged = match member {
        Some(m) => Some(merge_obj(s, memo, m).await?),
        None => None,
    };
    let Slot::One(f) = &rel.def().slot else {
        return Ok(());
    };
    let f = *f;
    let current = target.with_value_mut(|v| {
        let slot = f(v);
        slot.is_loaded().then(|| slot.current())
    });
    let same = match (&current, &merged) {
        (Some(Some(c)), Some(m)) => Obj::ptr_eq(c, m),
        (Some(None), None) => true,
        _ => false,
    };
    if !same {
        rel.set(&target, merged.as_ref())?;
    }
    Ok(())
}

/// Copies the loaded columns of `from` onto `to`, tracked (changed ones are UPDATEd).
fn copy_columns(
    to: &Arc<dyn AnyObj>,
    from: &dyn Fn(usize) -> Option<crate::sql::Bind>,
) -> Result<()> {
    for i in 0..to.table().columns.len() {
        let Some(b) = from(i) else { continue };
        let raw = encode(&b);
        let now = to.column(i).map(|c| encode(&c));
        if now.as_ref() != Some(&raw) {
            to.clone().set_column_raw(i, raw.as_deref(), true)?;
        }
    }
    Ok(())
}

/// Merges one related object: the session's object with its key (from the identity map or
/// one SELECT) gets its columns and, recursively, its set relationships. A related object
/// with no row joins the session itself as pending (SQLAlchemy would copy it).
fn merge_obj<'a, C: Model>(
    s: &'a mut AsyncSession,
    memo: &'a mut Memo,
    src: Obj<C>,
) -> BoxFuture<'a, Result<Obj<C>>> {
    Box::pin(async move {
        let erased = src.erased();
        if erased.session_is(&s.registry) && src.state() != ObjectState::Detached {
            return Ok(src);
        }
        if let Some(done) = memo.get(&addr(&erased)) {
            if let Ok(cell) = done.clone().as_any().downcast::<super::object::Cell<C>>() {
                return Ok(Obj(cell));
            }
        }
        let pk = erased.pk_binds();
        // An unset (`Generated`) key part: a new object, nothing to look up.
        let found = if pk.len() == C::TABLE.primary_key().count() {
            s.get_impl::<C>(pk, false).await?
        } else {
            None
        };
        let target = match found {
            Some(t) => t,
            None => {
                if erased.effective_state() != ObjectState::Transient {
                    erased.make_transient();
                }
                s.add(&src)?;
                src.clone()
            }
        };
        memo.insert(addr(&erased), target.erased());
        if Obj::ptr_eq(&target, &src) {
            return Ok(target);
        }
        copy_columns(&target.erased(), &|i| erased.column(i))?;
        let tasks = src.with_value_mut(|v| tasks_for(&target, v));
        for t in tasks {
            t(s, memo).await?;
        }
        Ok(target)
    })
}

impl AsyncSession {
    /// Copies `value`'s columns onto the session's object with the same primary key (loading
    /// it with one SELECT when it is not in the identity map) and returns that object; changed
    /// columns are written at the next flush. When no row has that key (or the key is an
    /// unset [`Generated`](crate::Generated)), `value` becomes a new pending object, inserted
    /// at flush with the key it carries. Unset `Generated` columns are not copied. SQLAlchemy's `merge`, with its merge cascade:
    /// related objects in a relationship `value` loaded or set are merged the same way
    /// (recursively) and the session's collection becomes exactly them; a relationship
    /// `value` did not load or set (`Many::new()`, `One::new()`) leaves the session's side
    /// as it is.
    ///
    /// ```no_run
    /// # #[derive(aludel::Model, Clone)] #[aludel(table = "users")]
    /// # struct User { #[aludel(primary_key)] id: i64, name: String }
    /// # async fn demo(s: &mut aludel::AsyncSession, detached: User) -> aludel::Result<()> {
    /// let user = s.merge(detached).await?;   // session-owned; the argument is untouched
    /// s.commit().await?;                     // UPDATE of the changed columns only
    /// # Ok(()) }
    /// ```
    pub async fn merge<M: Model>(&mut self, mut value: M) -> Result<Obj<M>> {
        let pk = pk_binds(&value);
        // An unset (`Generated`) key part: a new object, nothing to look up.
        let existing = if pk.len() == M::TABLE.primary_key().count() {
            self.get_impl::<M>(pk, false).await?
        } else {
            None
        };
        let mut memo = Memo::default();
        let (obj, tasks) = match existing {
            Some(obj) => {
                copy_columns(&obj.erased(), &|i| value.column_value(i))?;
                let tasks = tasks_for(&obj, &mut value);
                (obj, tasks)
            }
            None => {
                let obj = Obj::new(value);
                self.add(&obj)?;
                let tasks = obj.with_value_mut(|v| tasks_for(&obj, v));
                (obj, tasks)
            }
        };
        for t in tasks {
            t(self, &mut memo).await?;
        }
        Ok(obj)
    }
}

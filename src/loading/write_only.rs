//! Statements scoped to one parent's relationship: how write-only collections are read and
//! bulk-changed (WO-06…WO-08), and available on every collection.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::schema::{Model, RelKind, cols_or_pk, indexes};
use crate::sql::{
    All, Bind, Delete, Expr, Insert, Node, Select, Update, delete, insert_many, select, update,
};
use crate::state::{Obj, Rel, encode};

impl<P: Model, C: Model> Rel<P, C> {
    /// The parent's key values (its join columns), refusing a parent without one yet.
    fn parent_key(&self, parent: &Obj<P>) -> Result<Vec<Bind>> {
        let idx = self.local_idx()?;
        let binds: Vec<Bind> =
            parent.with_value(|v| idx.iter().filter_map(|i| v.column_value(*i)).collect());
        if binds.len() != idx.len() || binds.iter().any(|b| encode(b).is_none()) {
            return Err(Error::invalid(format!(
                "`{}`: the parent has no key yet (flush it first)",
                self.0.path
            )));
        }
        Ok(binds)
    }

    /// The condition selecting `parent`'s members: on the target's foreign key, or (many-to-many)
    /// through the link table.
    fn member_condition(&self, parent: &Obj<P>) -> Result<Node> {
        let def = self.0;
        let key = self.parent_key(parent)?;
        let eq_all = |table: &'static str, cols: &[&'static str]| -> Node {
            let mut out: Option<Node> = None;
            for (c, b) in cols.iter().zip(&key) {
                let eq = Node::Binary(
                    "=",
                    Box::new(Node::Column { table, name: c }),
                    Box::new(Node::Bind(b.clone())),
                );
                out = Some(match out {
                    Some(prev) => Node::Binary("AND", Box::new(prev), Box::new(eq)),
                    None => eq,
                });
            }
            out.unwrap_or(Node::Raw("false"))
        };
        match (&def.secondary, def.kind) {
            (Some(sec), _) => {
                let st = (sec.table)();
                let target_pk = cols_or_pk(def.remote, C::TABLE);
                let (Some(pk), Some(link)) = (target_pk.first(), sec.remote.first()) else {
                    return Err(Error::invalid("many-to-many link without columns"));
                };
                if target_pk.len() != 1 || sec.remote.len() != 1 {
                    return Err(Error::invalid(format!(
                        "`{}`: scoped statements support single-column keys",
                        def.path
                    )));
                }
                let sub = select(Expr::<LinkValue>::from_node(Node::Column {
                    table: st.name,
                    name: link,
                }))
                .filter(Expr::from_node(eq_all(st.name, sec.local)));
                Ok(Node::InSubquery {
                    value: Box::new(Node::Column {
                        table: C::TABLE.name,
                        name: pk,
                    }),
                    sub: Arc::new(sub),
                    negate: false,
                })
            }
            (None, RelKind::OneToMany | RelKind::OneToOne) => {
                Ok(eq_all(C::TABLE.name, &cols_or_pk(def.remote, C::TABLE)))
            }
            (None, _) => Err(Error::invalid(format!(
                "`{}` is many-to-one: it has no members to select",
                def.path
            ))),
        }
    }

    /// `SELECT` of `parent`'s members (with the relationship's `order_by`): filter, paginate
    /// or stream it as any select. This is how a write-only collection is read.
    ///
    /// # Errors
    /// A parent without a key yet (new, not flushed), or a many-to-one relationship.
    pub fn select(&self, parent: &Obj<P>) -> Result<Select<All<C>>> {
        let mut q = select(All::<C>::new()).filter(Expr::from_node(self.member_condition(parent)?));
        for (col, desc) in self.0.order_by {
            let e = Expr::<()>::from_node(Node::Column {
                table: C::TABLE.name,
                name: col,
            });
            q = q.order_by(if *desc { e.desc() } else { e.asc() });
        }
        Ok(q)
    }

    /// A multi-row `INSERT` of new members with the foreign key set from `parent` (one-to-many
    /// only): bulk insert without the unit of work.
    ///
    /// # Errors
    /// A many-to-many relationship ("bulk INSERT only supported for one-to-many collections;
    /// for many-to-many, add the objects and flush"), or a parent without a key yet.
    pub fn insert(&self, parent: &Obj<P>, mut rows: Vec<C>) -> Result<Insert<C>> {
        if self.0.kind != RelKind::OneToMany && self.0.kind != RelKind::OneToOne {
            return Err(Error::invalid(format!(
                "`{}`: write-only bulk INSERT is only supported for one-to-many collections; \
                 for many-to-many, add the objects and flush",
                self.0.path
            )));
        }
        let key = self.parent_key(parent)?;
        let fk = self.remote_idx()?;
        for row in &mut rows {
            for (i, b) in fk.iter().zip(&key) {
                row.set_column(*i, encode(b).as_deref())?;
            }
        }
        Ok(insert_many(&rows))
    }

    /// An `UPDATE` of `parent`'s members only; add `.set(...)` (and more filters).
    ///
    /// # Errors
    /// As [`Rel::select`].
    pub fn update(&self, parent: &Obj<P>) -> Result<Update<C>> {
        Ok(update::<C>().filter(Expr::from_node(self.member_condition(parent)?)))
    }

    /// A `DELETE` of `parent`'s members only (their rows, not just the links).
    ///
    /// # Errors
    /// As [`Rel::select`].
    pub fn delete(&self, parent: &Obj<P>) -> Result<Delete<C>> {
        Ok(delete::<C>().filter(Expr::from_node(self.member_condition(parent)?)))
    }

    /// Members of many parents at once, in one `SELECT` (one-to-many): what SQLAlchemy's
    /// write-only collections lack (WO-10). Group the rows by their foreign key.
    ///
    /// # Errors
    /// As [`Rel::select`].
    pub fn select_many(&self, parents: &[Obj<P>]) -> Result<Select<All<C>>> {
        let def = self.0;
        let local = indexes(P::TABLE, &cols_or_pk(def.local, P::TABLE))?;
        let mut keys = Vec::new();
        for p in parents {
            let k: Vec<Bind> =
                p.with_value(|v| local.iter().filter_map(|i| v.column_value(*i)).collect());
            keys.push(k);
        }
        let (table, cols) = match &def.secondary {
            Some(_) => {
                return Err(Error::invalid(format!(
                    "`{}`: use AsyncSession::load for many-to-many members of many parents",
                    def.path
                )));
            }
            None => (C::TABLE.name, cols_or_pk(def.remote, C::TABLE)),
        };
        let cond = crate::sql::key_condition(table, &cols, &keys);
        let mut q = select(All::<C>::new()).filter(Expr::from_node(cond));
        for (col, desc) in def.order_by {
            let e = Expr::<()>::from_node(Node::Column { table, name: col });
            q = q.order_by(if *desc { e.desc() } else { e.asc() });
        }
        Ok(q)
    }
}

/// A link-table column in a select list, read back as raw key bytes by the caller.
#[derive(Debug)]
struct LinkValue;

impl crate::row::FromRow for LinkValue {
    fn from_row_at(_: &crate::row::Row, _: usize) -> crate::error::Result<Self> {
        Ok(LinkValue)
    }
    fn column_count() -> usize {
        1
    }
}

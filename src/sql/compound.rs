//! Set operations: `SELECT`s combined with UNION / UNION ALL / INTERSECT / EXCEPT.

use std::borrow::Cow;

use super::expr::{Expr, Node, Order};
use super::select::Select;
use super::selectable::Selectable;
use super::writer::Writer;
use super::{Bind, Statement, Typed, private};
use crate::error::Result;

/// Selects combined with UNION / UNION ALL / INTERSECT / EXCEPT, with an optional ORDER BY and
/// LIMIT over the combined rows.
#[derive(Clone, Debug)]
pub struct Compound<S> {
    parts: Vec<(&'static str, Select<S>)>,
    order: Vec<Order>,
    limit: Option<i64>,
}

impl<S: Selectable + Clone + std::fmt::Debug + Send + Sync + 'static> Compound<S> {
    pub(super) fn new(first: Select<S>, op: &'static str, second: Select<S>) -> Self {
        Compound {
            parts: vec![("", first), (op, second)],
            order: Vec::new(),
            limit: None,
        }
    }

    /// Adds `UNION other`.
    pub fn union(mut self, other: Select<S>) -> Self {
        self.parts.push(("UNION", other));
        self
    }

    /// Adds `UNION ALL other`.
    pub fn union_all(mut self, other: Select<S>) -> Self {
        self.parts.push(("UNION ALL", other));
        self
    }

    /// `ORDER BY` over the combined rows, by position: `1` is the first output column.
    pub fn order_by_position(mut self, position: &'static str, descending: bool) -> Self {
        let node = Node::Raw(position);
        self.order.push(if descending {
            Expr::<()>::from_node(node).desc()
        } else {
            Expr::<()>::from_node(node).asc()
        });
        self
    }

    /// `LIMIT n` over the combined rows.
    pub fn limit(mut self, n: i64) -> Self {
        self.limit = Some(n);
        self
    }

    fn render(&self, w: &mut Writer) {
        for (op, part) in &self.parts {
            if !op.is_empty() {
                w.push(" ");
                w.push(op);
                w.push(" ");
            }
            w.push("(");
            part.render(w);
            w.push(")");
        }
        if !self.order.is_empty() {
            w.push(" ORDER BY ");
            w.comma_list(&self.order, |w, o| o.render(w));
        }
        if let Some(n) = self.limit {
            w.push(" LIMIT ");
            w.bind(Bind::new(n));
        }
    }

    /// The SQL text this statement sends.
    pub fn to_sql(&self) -> String {
        let mut w = Writer::new();
        self.render(&mut w);
        w.sql
    }
}

impl<S> private::Sealed for Compound<S> {}

impl<S: Selectable + Clone + std::fmt::Debug + Send + Sync + 'static> Statement for Compound<S> {
    fn compile(&self) -> Result<(super::SqlText<'_>, Cow<'_, [Bind]>)> {
        let (sql, binds) = super::writer::compile_cached(|w| {
            self.render(w);
            Ok(())
        })?;
        Ok((sql, Cow::Owned(binds)))
    }
}

impl<S: Selectable + Clone + std::fmt::Debug + Send + Sync + 'static> Typed for Compound<S> {
    type Output = S::Output;
}

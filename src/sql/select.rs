//! `SELECT` statements.

use std::borrow::Cow;

use super::expr::{Alias, Expr, IntoExpr, Node, Order};
use super::writer::Writer;
use super::{Bind, Statement, Typed, private};
use crate::error::Result;
use crate::schema::{Model, same_table};

pub use super::compound::Compound;
use super::selectable::render_all;
pub use super::selectable::{All, MaybeModel, Optional, Selectable};

/// A `SELECT` embedded in another statement (subqueries, set operations).
#[doc(hidden)]
#[allow(unreachable_pub)] // named in the hidden expression tree; not reachable by users
pub trait RenderSelect: Send + Sync + std::fmt::Debug {
    fn render_select(&self, w: &mut Writer);
}

impl<S: Selectable + Clone + std::fmt::Debug + Send + Sync + 'static> RenderSelect for Select<S> {
    fn render_select(&self, w: &mut Writer) {
        self.render(w);
    }
}

fn eq_cols(lt: &'static str, lc: &'static str, rt: &'static str, rc: &'static str) -> Node {
    Node::Binary(
        "=",
        Box::new(Node::Column {
            table: lt,
            name: lc,
        }),
        Box::new(Node::Column {
            table: rt,
            name: rc,
        }),
    )
}

/// A named common table expression (`WITH name (columns) AS (…)`), referred to by name.
///
/// Its columns are read with [`Cte::col`], typed by the caller (the CTE's body decides what
/// they hold). Build the body with [`Select::with`] or [`Select::with_recursive`].
#[derive(Clone, Copy, Debug)]
pub struct Cte {
    name: &'static str,
    columns: &'static [&'static str],
}

impl Cte {
    /// A CTE called `name` with these output columns.
    pub const fn new(name: &'static str, columns: &'static [&'static str]) -> Self {
        Cte { name, columns }
    }

    /// Column `name` of this CTE, read as `T`.
    pub fn col<T>(&self, name: &'static str) -> Expr<T> {
        Expr::from_node(Node::Column {
            table: self.name,
            name,
        })
    }
}

#[derive(Clone, Debug)]
struct With {
    cte: Cte,
    base: std::sync::Arc<dyn RenderSelect>,
    step: Option<std::sync::Arc<dyn RenderSelect>>,
}

#[derive(Clone, Debug)]
struct Join {
    kind: &'static str,
    table: &'static str,
    alias: Option<&'static str>,
    on: Node,
    /// `JOIN LATERAL (subquery) AS table (columns)` instead of a table.
    lateral: Option<(std::sync::Arc<dyn RenderSelect>, &'static [&'static str])>,
}

#[derive(Clone, Debug)]
enum Distinct {
    No,
    All,
    On(Vec<Node>),
}

/// A `SELECT` statement, built step by step; every method returns a new statement, so a base
/// query can be shared and refined.
///
/// ```
/// # #[derive(aludel::Model)] #[aludel(table = "users")]
/// # struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i32>, name: String, hair_color: Option<String> }
/// use aludel::select;
/// let q = select(User::ALL)
///     .filter(User::hair_color.eq("black"))
///     .order_by(User::name.asc())
///     .limit(10);
/// assert_eq!(
///     q.to_sql(),
///     r#"SELECT "users"."id", "users"."name", "users"."hair_color" FROM "users" WHERE ("users"."hair_color" = $1) ORDER BY "users"."name" ASC LIMIT $2"#
/// );
/// ```
#[derive(Clone, Debug)]
pub struct Select<S> {
    sel: S,
    from: Option<(&'static str, Option<&'static str>)>,
    joins: Vec<Join>,
    filter: Option<Node>,
    group_by: Vec<Node>,
    having: Option<Node>,
    order: Vec<Order>,
    limit: Option<i64>,
    offset: Option<i64>,
    distinct: Distinct,
    lock: Option<&'static str>,
    /// Common table expressions, rendered as the statement's `WITH` clause.
    with: Vec<With>,
    /// Model tables named by `from`/joins (the selection's own are asked for when needed).
    defs: Vec<&'static crate::schema::TableDef>,
    /// A mistake found while building, reported when the statement compiles.
    error: Option<String>,
    /// Columns of eagerly joined relationships, selected after the selection:
    /// `(table alias, columns)`.
    extra: Vec<(&'static str, &'static [crate::schema::ColumnDef])>,
    /// The selection's columns chosen by column options (`load_only`, `undefer`): indexes
    /// into the model's columns, replacing its default list.
    only: Option<(&'static [crate::schema::ColumnDef], Vec<usize>)>,
}

/// Starts a `SELECT` of `sel`: `select(User::ALL)`, `select((User::id, User::name))`.
pub fn select<S: Selectable>(sel: S) -> Select<S> {
    Select {
        sel,
        from: None,
        joins: Vec::new(),
        filter: None,
        group_by: Vec::new(),
        having: None,
        order: Vec::new(),
        limit: None,
        offset: None,
        distinct: Distinct::No,
        lock: None,
        defs: Vec::new(),
        error: None,
        extra: Vec::new(),
        only: None,
        with: Vec::new(),
    }
}

impl<S: Selectable> Select<S> {
    /// `FROM` a model's table (when the select list does not imply it).
    pub fn from<M: Model>(mut self) -> Self {
        self.from = Some((M::TABLE.name, None));
        self.defs.push(M::TABLE);
        self
    }

    /// `FROM` a model's table under an alias.
    pub fn from_alias<M: Model>(mut self, alias: &Alias<M>) -> Self {
        self.from = Some((M::TABLE.name, Some(alias.name)));
        self
    }

    /// `WHERE cond`, AND-ed with earlier filters.
    pub fn filter(mut self, cond: Expr<bool>) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(prev) => Node::Binary("AND", Box::new(prev), Box::new(cond.node)),
            None => cond.node,
        });
        self
    }

    fn join_impl<M: Model>(
        mut self,
        kind: &'static str,
        alias: Option<&'static str>,
        on: Expr<bool>,
    ) -> Self {
        self.joins.push(Join {
            kind,
            table: M::TABLE.name,
            alias,
            on: on.node,
            lateral: None,
        });
        self.defs.push(M::TABLE);
        self
    }

    /// The ON condition along the one foreign key between `M` and a table already in the
    /// query (either direction).
    fn fk_condition<M: Model>(&self) -> std::result::Result<Node, String> {
        let mut tables = self.defs.clone();
        self.sel.tables(&mut tables);
        let target = M::TABLE;
        let mut found: Vec<Node> = Vec::new();
        let mut seen: Vec<&'static crate::schema::TableDef> = Vec::new();
        for t in tables.iter().filter(|t| !same_table(t, target)) {
            if seen.iter().any(|s| same_table(s, t)) {
                continue;
            }
            seen.push(t);
            for c in target.columns {
                if let Some(fk) = &c.foreign_key {
                    if same_table((fk.table)(), t) {
                        found.push(eq_cols(target.name, c.name, t.name, fk.column));
                    }
                }
            }
            for c in t.columns {
                if let Some(fk) = &c.foreign_key {
                    if same_table((fk.table)(), target) {
                        found.push(eq_cols(t.name, c.name, target.name, fk.column));
                    }
                }
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(format!(
                "no foreign key joins `{}` to the tables of this query; give the ON condition",
                target.name
            )),
            n => Err(format!(
                "{n} foreign keys could join `{}`; give the ON condition",
                target.name
            )),
        }
    }

    /// `JOIN m ON …` along the declared foreign key between `M` and the query's tables.
    pub fn join_related<M: Model>(mut self) -> Self {
        match self.fk_condition::<M>() {
            Ok(on) => self.join_impl::<M>("JOIN", None, Expr::from_node(on)),
            Err(e) => {
                self.error.get_or_insert(e);
                self
            }
        }
    }

    /// `LEFT OUTER JOIN m ON …` along the declared foreign key.
    pub fn left_join_related<M: Model>(mut self) -> Self {
        match self.fk_condition::<M>() {
            Ok(on) => self.join_impl::<M>("LEFT OUTER JOIN", None, Expr::from_node(on)),
            Err(e) => {
                self.error.get_or_insert(e);
                self
            }
        }
    }

    /// `JOIN table ON cond`.
    pub fn join<M: Model>(self, on: Expr<bool>) -> Self {
        self.join_impl::<M>("JOIN", None, on)
    }

    /// `LEFT OUTER JOIN table ON cond`.
    pub fn left_join<M: Model>(self, on: Expr<bool>) -> Self {
        self.join_impl::<M>("LEFT OUTER JOIN", None, on)
    }

    /// `FULL OUTER JOIN table ON cond`.
    pub fn full_join<M: Model>(self, on: Expr<bool>) -> Self {
        self.join_impl::<M>("FULL OUTER JOIN", None, on)
    }

    /// `JOIN table AS alias ON cond` (self-joins).
    pub fn join_alias<M: Model>(self, alias: &Alias<M>, on: Expr<bool>) -> Self {
        self.join_impl::<M>("JOIN", Some(alias.name), on)
    }

    /// `LEFT OUTER JOIN table AS alias ON cond`.
    pub fn left_join_alias<M: Model>(self, alias: &Alias<M>, on: Expr<bool>) -> Self {
        self.join_impl::<M>("LEFT OUTER JOIN", Some(alias.name), on)
    }

    /// Adds `LEFT OUTER JOIN table AS alias ON on` and selects the joined table's columns
    /// after the selection (joined eager loading).
    pub(crate) fn add_joined(
        &mut self,
        table: &'static str,
        alias: &'static str,
        on: Node,
        columns: &'static [crate::schema::ColumnDef],
    ) {
        self.joins.push(Join {
            kind: "LEFT OUTER JOIN",
            table,
            alias: Some(alias),
            on,
            lateral: None,
        });
        if !columns.is_empty() {
            self.extra.push((alias, columns));
        }
    }

    /// Selects the default columns of a table the statement already joins, after the
    /// selection (`contains_eager`).
    pub(crate) fn add_columns_of(
        &mut self,
        name: &'static str,
        columns: &'static [crate::schema::ColumnDef],
    ) {
        self.extra.push((name, columns));
    }

    /// Selects these columns of the model (by index) instead of its default list.
    pub(crate) fn set_columns(
        &mut self,
        columns: &'static [crate::schema::ColumnDef],
        idx: Vec<usize>,
    ) {
        self.only = Some((columns, idx));
    }

    /// Records a mistake found while building; the statement reports it when compiled.
    pub(crate) fn set_error(&mut self, e: String) {
        self.error.get_or_insert(e);
    }

    /// Whether LIMIT, OFFSET or DISTINCT shape the rows (a joined collection would change
    /// what they count).
    pub(crate) fn limits_rows(&self) -> bool {
        self.limit.is_some() || self.offset.is_some() || !matches!(self.distinct, Distinct::No)
    }

    /// The name the main table goes by in this statement (its alias, else its name).
    pub(crate) fn main_name(&self) -> Option<&'static str> {
        match self.from {
            Some((t, a)) => Some(a.unwrap_or(t)),
            None => self.sel.default_from(),
        }
    }

    /// `ORDER BY …`, after earlier orderings.
    pub fn order_by(mut self, order: Order) -> Self {
        self.order.push(order);
        self
    }

    /// `LIMIT n` (bound).
    pub fn limit(mut self, n: i64) -> Self {
        self.limit = Some(n);
        self
    }

    /// `OFFSET n` (bound).
    pub fn offset(mut self, n: i64) -> Self {
        self.offset = Some(n);
        self
    }

    /// `SELECT DISTINCT`.
    pub fn distinct(mut self) -> Self {
        self.distinct = Distinct::All;
        self
    }

    /// `SELECT DISTINCT ON (expr)`: the first row per value, by the statement's ORDER BY.
    pub fn distinct_on<T>(mut self, e: impl IntoExpr<T>) -> Self {
        let node = e.into_node();
        match &mut self.distinct {
            Distinct::On(v) => v.push(node),
            _ => self.distinct = Distinct::On(vec![node]),
        }
        self
    }

    /// `GROUP BY expr`, after earlier groupings.
    pub fn group_by<T>(mut self, e: impl IntoExpr<T>) -> Self {
        self.group_by.push(e.into_node());
        self
    }

    /// `HAVING cond`.
    pub fn having(mut self, cond: Expr<bool>) -> Self {
        self.having = Some(cond.node);
        self
    }

    /// `FOR UPDATE`.
    pub fn for_update(mut self) -> Self {
        self.lock = Some("FOR UPDATE");
        self
    }

    /// `FOR UPDATE SKIP LOCKED` (job queues).
    pub fn for_update_skip_locked(mut self) -> Self {
        self.lock = Some("FOR UPDATE SKIP LOCKED");
        self
    }

    /// `FOR UPDATE NOWAIT`.
    pub fn for_update_nowait(mut self) -> Self {
        self.lock = Some("FOR UPDATE NOWAIT");
        self
    }

    /// `FOR SHARE`.
    pub fn for_share(mut self) -> Self {
        self.lock = Some("FOR SHARE");
        self
    }

    /// This query as a scalar subquery `(SELECT …)`: one row, one column (NULL when no row).
    pub fn as_scalar(self) -> Expr<Option<S::Output>>
    where
        S: Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        Expr::from_node(Node::Subquery(std::sync::Arc::new(self)))
    }

    /// `self UNION other` (duplicates removed).
    pub fn union(self, other: Select<S>) -> Compound<S>
    where
        S: Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        Compound::new(self, "UNION", other)
    }

    /// `self UNION ALL other`.
    pub fn union_all(self, other: Select<S>) -> Compound<S>
    where
        S: Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        Compound::new(self, "UNION ALL", other)
    }

    /// `self INTERSECT other`.
    pub fn intersect(self, other: Select<S>) -> Compound<S>
    where
        S: Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        Compound::new(self, "INTERSECT", other)
    }

    /// `self EXCEPT other`.
    pub fn except(self, other: Select<S>) -> Compound<S>
    where
        S: Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        Compound::new(self, "EXCEPT", other)
    }

    /// The SQL text this statement sends.
    pub fn to_sql(&self) -> String {
        let mut w = Writer::new();
        self.render(&mut w);
        w.sql
    }

    /// `WITH cte AS (body)`: makes the CTE available to this statement.
    pub fn with<B>(mut self, cte: &Cte, body: Select<B>) -> Self
    where
        B: Selectable + Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        self.with.push(With {
            cte: *cte,
            base: std::sync::Arc::new(body),
            step: None,
        });
        self
    }

    /// `WITH RECURSIVE cte AS (base UNION ALL step)`: `step` refers to the CTE itself (join it
    /// with [`Select::join_cte`]); both parts produce the same row type.
    pub fn with_recursive<A, B>(mut self, cte: &Cte, base: Select<A>, step: Select<B>) -> Self
    where
        A: Selectable + Clone + std::fmt::Debug + Send + Sync + 'static,
        B: Selectable<Output = A::Output> + Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        self.with.push(With {
            cte: *cte,
            base: std::sync::Arc::new(base),
            step: Some(std::sync::Arc::new(step)),
        });
        self
    }

    /// `FROM cte`.
    pub fn from_cte(mut self, cte: &Cte) -> Self {
        self.from = Some((cte.name, None));
        self
    }

    /// `JOIN cte ON cond`.
    pub fn join_cte(mut self, cte: &Cte, on: Expr<bool>) -> Self {
        self.joins.push(Join {
            kind: "JOIN",
            table: cte.name,
            alias: None,
            on: on.node,
            lateral: None,
        });
        self
    }

    /// `LEFT OUTER JOIN LATERAL (sub) AS name (columns) ON cond`: a subquery run per row of the
    /// query so far (top-N per group); read its columns with [`Cte::col`] on `name`.
    pub fn left_join_lateral<B>(mut self, name: &Cte, sub: Select<B>, on: Expr<bool>) -> Self
    where
        B: Selectable + Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        self.joins.push(Join {
            kind: "LEFT OUTER JOIN",
            table: name.name,
            alias: None,
            on: on.node,
            lateral: Some((std::sync::Arc::new(sub), name.columns)),
        });
        self
    }

    pub(crate) fn render(&self, w: &mut Writer) {
        if !self.with.is_empty() {
            w.push(if self.with.iter().any(|c| c.step.is_some()) {
                "WITH RECURSIVE "
            } else {
                "WITH "
            });
            w.comma_list(&self.with, |w, c| {
                w.ident(c.cte.name);
                w.push(" (");
                w.comma_list(c.cte.columns, |w, col| w.ident(col));
                w.push(") AS (");
                c.base.render_select(w);
                if let Some(step) = &c.step {
                    w.push(" UNION ALL ");
                    step.render_select(w);
                }
                w.push(")");
            });
            w.push(" ");
        }
        w.push("SELECT ");
        match &self.distinct {
            Distinct::No => {}
            Distinct::All => w.push("DISTINCT "),
            Distinct::On(nodes) => {
                w.push("DISTINCT ON (");
                w.comma_list(nodes, |w, n| n.render(w));
                w.push(") ");
            }
        }
        match (&self.only, self.sel.default_from()) {
            (Some((columns, idx)), Some(table)) => {
                let mut first = true;
                for c in idx.iter().filter_map(|&i| columns.get(i)) {
                    if !first {
                        w.push(", ");
                    }
                    first = false;
                    w.ident(table);
                    w.push(".");
                    w.ident(c.name);
                }
            }
            _ => self.sel.render(w),
        }
        for (alias, columns) in &self.extra {
            w.push(", ");
            render_all(alias, columns, w);
        }
        if let Some((table, alias)) = self
            .from
            .or_else(|| self.sel.default_from().map(|t| (t, None)))
        {
            w.push(" FROM ");
            w.ident(table);
            if let Some(a) = alias {
                w.push(" AS ");
                w.ident(a);
            }
        }
        for j in &self.joins {
            w.push(" ");
            w.push(j.kind);
            w.push(" ");
            if let Some((sub, columns)) = &j.lateral {
                w.push("LATERAL (");
                sub.render_select(w);
                w.push(") AS ");
                w.ident(j.table);
                w.push(" (");
                w.comma_list(columns, |w, c| w.ident(c));
                w.push(")");
            } else {
                w.ident(j.table);
            }
            if let Some(a) = j.alias {
                w.push(" AS ");
                w.ident(a);
            }
            w.push(" ON ");
            j.on.render(w);
        }
        if let Some(f) = &self.filter {
            w.push(" WHERE ");
            f.render(w);
        }
        if !self.group_by.is_empty() {
            w.push(" GROUP BY ");
            w.comma_list(&self.group_by, |w, n| n.render(w));
        }
        if let Some(h) = &self.having {
            w.push(" HAVING ");
            h.render(w);
        }
        if !self.order.is_empty() {
            w.push(" ORDER BY ");
            w.comma_list(&self.order, |w, o| o.render(w));
        }
        if let Some(n) = self.limit {
            w.push(" LIMIT ");
            w.bind(Bind::new(n));
        }
        if let Some(n) = self.offset {
            w.push(" OFFSET ");
            w.bind(Bind::new(n));
        }
        if let Some(l) = self.lock {
            w.push(" ");
            w.push(l);
        }
    }
}

impl<S> private::Sealed for Select<S> {}

impl<S: Selectable> Statement for Select<S> {
    fn compile(&self) -> Result<(super::SqlText<'_>, Cow<'_, [Bind]>)> {
        if let Some(e) = &self.error {
            return Err(crate::Error::invalid(e.clone()));
        }
        let (sql, binds) = super::writer::compile_cached(|w| {
            self.render(w);
            Ok(())
        })?;
        Ok((sql, Cow::Owned(binds)))
    }

    fn is_plain_read(&self) -> bool {
        self.lock.is_none() && self.with.is_empty()
    }
}

impl<S: Selectable> Typed for Select<S> {
    type Output = S::Output;
}

//! `INSERT` (with upsert), `UPDATE` and `DELETE`, each with optional `RETURNING`.

use std::borrow::Cow;
use std::marker::PhantomData;

use super::columnar::{Columnar, NotColumnar};
use super::expr::{Column, Expr, IntoExpr, Node};
use super::select::Selectable;
use super::writer::Writer;
use super::{Bind, Statement, Typed, private};
use crate::error::{Error, Result};
use crate::schema::{Model, TableDef};

/// What an `ON CONFLICT` names: one column or a tuple of columns of `M` (the unique index
/// they form), or a constraint by name ([`OnConstraint`]).
pub trait ConflictTarget<M> {
    /// The column names.
    #[doc(hidden)]
    fn names(&self) -> Vec<&'static str>;
    /// The constraint name, for `ON CONFLICT ON CONSTRAINT`.
    #[doc(hidden)]
    fn constraint(&self) -> Option<&'static str> {
        None
    }
}

/// `ON CONFLICT ON CONSTRAINT name`.
#[derive(Debug, Clone, Copy)]
pub struct OnConstraint(pub &'static str);

impl<M> ConflictTarget<M> for OnConstraint {
    fn names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn constraint(&self) -> Option<&'static str> {
        Some(self.0)
    }
}

#[derive(Clone, Debug)]
enum Target {
    Columns(Vec<&'static str>),
    Constraint(&'static str),
}

impl Target {
    fn of<M>(t: &impl ConflictTarget<M>) -> Target {
        match t.constraint() {
            Some(c) => Target::Constraint(c),
            None => Target::Columns(t.names()),
        }
    }

    fn render(&self, w: &mut Writer) {
        match self {
            Target::Columns(cols) => {
                w.push(" ON CONFLICT (");
                w.comma_list(cols, |w, c| w.ident(c));
                w.push(")");
            }
            Target::Constraint(name) => {
                w.push(" ON CONFLICT ON CONSTRAINT ");
                w.ident(name);
            }
        }
    }
}

impl<M, F> ConflictTarget<M> for Column<M, F> {
    fn names(&self) -> Vec<&'static str> {
        vec![self.name()]
    }
}

impl<M, F1, F2> ConflictTarget<M> for (Column<M, F1>, Column<M, F2>) {
    fn names(&self) -> Vec<&'static str> {
        vec![self.0.name(), self.1.name()]
    }
}

impl<M, F1, F2, F3> ConflictTarget<M> for (Column<M, F1>, Column<M, F2>, Column<M, F3>) {
    fn names(&self) -> Vec<&'static str> {
        vec![self.0.name(), self.1.name(), self.2.name()]
    }
}

/// `SET column = value` items.
#[derive(Clone, Debug, Default)]
pub struct Assignments(Vec<(&'static str, Node)>);

impl Assignments {
    /// An empty list.
    pub fn new() -> Self {
        Assignments(Vec::new())
    }

    /// Adds `col = value`.
    pub fn set<M, F>(mut self, col: Column<M, F>, value: impl IntoExpr<F>) -> Self {
        self.0.push((col.name(), value.into_node()));
        self
    }

    fn render(&self, w: &mut Writer) {
        w.comma_list(&self.0, |w, (name, value)| {
            w.ident(name);
            w.push(" = ");
            value.render(w);
        });
    }
}

#[derive(Clone, Debug)]
enum Conflict {
    None,
    DoNothing(Target),
    DoUpdate {
        target: Target,
        set: Assignments,
        filter: Option<Node>,
    },
}

/// An `INSERT` of one or more rows of `M` (one statement), returning `R`.
///
/// The rows travel as one array parameter per column (`INSERT … SELECT … FROM unnest($1,
/// $2, …) WITH ORDINALITY … ORDER BY …`): the SQL text is the same for 1 row and for a
/// million, the bind count does not grow with the rows, and `RETURNING` yields rows in input
/// order. A column type without an array form makes it `VALUES (…), (…)`, one bind per value.
#[derive(Clone, Debug)]
pub struct Insert<M, R = ()> {
    body: Body,
    conflict: Conflict,
    /// `ON CONFLICT (…) WHERE pred`: picks a partial unique index as the arbiter.
    arbiter_where: Option<Node>,
    returning: Option<Writer2>,
    /// Why the statement cannot be sent (reported when it compiles, before any SQL).
    invalid: Option<String>,
    /// A `GENERATED ALWAYS` column a row gives a value (refused before any SQL).
    always: Option<&'static str>,
    _m: PhantomData<fn() -> (M, R)>,
}

/// The rows of an [`Insert`].
#[derive(Clone, Debug)]
enum Body {
    /// No rows.
    Empty,
    /// Rows that leave every column to the server: `DEFAULT VALUES` (one row only).
    Defaults { rows: usize },
    /// Rows that all set the same columns `cols`: one array per column.
    Columns {
        cols: Vec<&'static str>,
        data: Columnar,
    },
    /// One bind per value, `None` rendered `DEFAULT`: rows that set different columns, or a
    /// column type without an array form.
    Values {
        cols: Vec<&'static str>,
        rows: Vec<Vec<Option<Bind>>>,
    },
}

impl Body {
    /// The body for `rows` of `t`, each with one value per insert column (`None`: left to
    /// the server). Columns no row sets are left out; when every row sets the same columns
    /// they go as arrays, else as `VALUES` with `DEFAULT` cells. `Err`: why it cannot be
    /// sent.
    fn of(t: &'static TableDef, rows: Vec<Vec<Option<Bind>>>) -> std::result::Result<Self, String> {
        if rows.is_empty() {
            return Ok(Body::Empty);
        }
        let names: Vec<&'static str> = t.insert_columns().map(|c| c.name).collect();
        let sent: Vec<usize> = (0..names.len())
            .filter(|&j| rows.iter().any(|r| matches!(r.get(j), Some(Some(_)))))
            .collect();
        if sent.is_empty() {
            return Ok(Body::Defaults { rows: rows.len() });
        }
        let cols: Vec<&'static str> = sent.iter().map(|&j| names[j]).collect();
        let rows: Vec<Vec<Option<Bind>>> = rows
            .into_iter()
            .map(|mut r| {
                sent.iter()
                    .map(|&j| r.get_mut(j).and_then(Option::take))
                    .collect()
            })
            .collect();
        let uniform = rows.iter().all(|r| r.iter().all(Option::is_some));
        if uniform {
            let full: Vec<Vec<Bind>> = rows
                .iter()
                .map(|r| r.iter().flatten().cloned().collect())
                .collect();
            match Columnar::build(&full, cols.len()) {
                Ok(data) => return Ok(Body::Columns { cols, data }),
                Err(NotColumnar::Encode(e)) => {
                    return Err(format!(
                        "a `{}` row to insert could not be encoded: {e}",
                        t.name
                    ));
                }
                Err(NotColumnar::Unsupported) => {}
            }
        }
        let binds: usize = rows.iter().map(|r| r.iter().flatten().count()).sum();
        if binds > MAX_BINDS {
            return Err(format!(
                "{} rows of `{}` need {binds} bind parameters (at most {MAX_BINDS}): they set \
                 different columns or a column type has no array form to send them as one \
                 parameter per column; insert them in smaller batches inside one transaction",
                rows.len(),
                t.name,
            ));
        }
        Ok(Body::Values { cols, rows })
    }

    fn render(&self, w: &mut Writer) -> Result<()> {
        match self {
            Body::Empty => return Err(Error::invalid("an INSERT needs at least one row")),
            Body::Defaults { rows } => {
                if *rows > 1 {
                    return Err(Error::invalid(
                        "a multi-row INSERT needs at least one client-supplied column",
                    ));
                }
                w.push(" DEFAULT VALUES");
            }
            Body::Columns { cols, data } => {
                render_column_list(w, cols);
                data.render(w);
            }
            Body::Values { cols, rows } => {
                render_column_list(w, cols);
                w.push(" VALUES ");
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        w.push(", ");
                    }
                    w.push("(");
                    w.comma_list(row, |w, b| match b {
                        Some(b) => w.bind(b.clone()),
                        None => w.push("DEFAULT"),
                    });
                    w.push(")");
                }
            }
        }
        Ok(())
    }
}

/// The unit of work's INSERT of `rows` of `t` (one value per insert column, `None`: left to
/// the server) with `RETURNING returning`: the SQL text and its binds. Rows that set the same
/// columns go as arrays, one statement shape per table and column set.
pub(crate) fn insert_rows_sql(
    t: &'static TableDef,
    rows: Vec<Vec<Option<Bind>>>,
    returning: &str,
) -> Result<(String, Vec<Bind>)> {
    let body = Body::of(t, rows).map_err(Error::invalid)?;
    let mut w = Writer::new();
    w.push("INSERT INTO ");
    w.ident(t.name);
    body.render(&mut w)?;
    w.push(" RETURNING ");
    w.push_text(returning);
    Ok((w.sql, w.binds))
}

/// Bind parameters one statement can carry (the protocol counts them in 16 bits).
const MAX_BINDS: usize = 65_535;

/// A rendered `RETURNING` list (kept as text: it has no binds).
#[derive(Clone, Debug)]
struct Writer2(String);

fn returning_sql<S: Selectable>(sel: &S) -> Writer2 {
    let mut w = Writer::new();
    sel.render(&mut w);
    Writer2(w.sql)
}

/// `INSERT INTO m (…)` of one model value (the same statement shape as [`insert_many`]).
pub fn insert<M: Model>(row: &M) -> Insert<M> {
    insert_many(std::slice::from_ref(row))
}

/// One `INSERT` of many model values, any number of them: the columns go as arrays
/// (`… SELECT … FROM unnest($1, $2, …) WITH ORDINALITY …`, one bind per column, three for an
/// array-typed column), so the SQL text is the same for every row count and `RETURNING`
/// yields rows in input order.
///
/// A [`Generated`](crate::Generated) column is sent when the rows set it and left out
/// (the server fills it) when none does; rows that differ go as `VALUES` with `DEFAULT` in
/// the unset cells.
///
/// ```
/// use aludel::Generated;
/// # #[derive(aludel::Model)] #[aludel(table = "users")]
/// # struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i32>, name: String, age: Option<i32> }
/// let rows = [
///     User { id: Generated::unset(), name: "ann".into(), age: None },
///     User { id: Generated::unset(), name: "bo".into(), age: Some(7) },
/// ];
/// assert_eq!(
///     aludel::insert_many(&rows).to_sql().unwrap(),
///     r#"INSERT INTO "users" ("name", "age") SELECT "u"."c1", "u"."c2" FROM unnest($1, $2) WITH ORDINALITY AS "u"("c1", "c2", "n") ORDER BY "u"."n""#
/// );
/// let mixed = [
///     User { id: 7.into(), name: "cy".into(), age: None },
///     User { id: Generated::unset(), name: "di".into(), age: None },
/// ];
/// assert_eq!(
///     aludel::insert_many(&mixed).to_sql().unwrap(),
///     r#"INSERT INTO "users" ("id", "name", "age") VALUES ($1, $2, $3), (DEFAULT, $4, $5)"#
/// );
/// ```
pub fn insert_many<'a, M: Model>(rows: impl IntoIterator<Item = &'a M>) -> Insert<M> {
    let t = M::TABLE;
    let mut unloaded = None;
    let mut always = None;
    let rows: Vec<Vec<Option<Bind>>> = rows
        .into_iter()
        .map(|r| {
            if always.is_none() {
                always = generated_always_set(r);
            }
            if t.has_deferred && unloaded.is_none() {
                unloaded = t
                    .columns
                    .iter()
                    .enumerate()
                    .find(|(i, c)| {
                        c.deferred && !c.is_server_filled() && r.column_value(*i).is_none()
                    })
                    .map(|(_, c)| c.name);
            }
            let mut v = Vec::new();
            r.insert_values(&mut v);
            v
        })
        .collect();
    let mut invalid = unloaded.map(|c| {
        format!(
            "a `{}` row to insert has Deferred column `{c}` not loaded; give it a value \
             (Deferred::new)",
            t.name
        )
    });
    let body = match Body::of(t, rows) {
        Ok(b) => b,
        Err(e) => {
            invalid.get_or_insert(e);
            Body::Empty
        }
    };
    Insert {
        body,
        conflict: Conflict::None,
        arbiter_where: None,
        returning: None,
        invalid,
        always,
        _m: PhantomData,
    }
}

/// The first column of `row` the server always generates that has a value (refused).
fn generated_always_set<M: Model>(row: &M) -> Option<&'static str> {
    M::TABLE
        .columns
        .iter()
        .enumerate()
        .find(|(i, c)| !c.is_insertable() && row.column_value(*i).is_some())
        .map(|(_, c)| c.name)
}

impl<M: Model, R> Insert<M, R> {
    /// `RETURNING sel`: the statement now yields `sel`'s output per inserted row.
    pub fn returning<S: Selectable>(self, sel: S) -> Insert<M, S::Output> {
        Insert {
            body: self.body,
            conflict: self.conflict,
            arbiter_where: self.arbiter_where,
            returning: Some(returning_sql(&sel)),
            invalid: self.invalid,
            always: self.always,
            _m: PhantomData,
        }
    }

    /// `ON CONFLICT (target) DO NOTHING`.
    pub fn on_conflict_do_nothing(mut self, target: impl ConflictTarget<M>) -> Self {
        self.conflict = Conflict::DoNothing(Target::of(&target));
        self
    }

    /// `ON CONFLICT (target) DO UPDATE SET …` (use [`excluded`](super::excluded) for the
    /// proposed values), optionally `WHERE filter`.
    pub fn on_conflict_do_update(
        mut self,
        target: impl ConflictTarget<M>,
        set: Assignments,
        filter: Option<Expr<bool>>,
    ) -> Self {
        self.conflict = Conflict::DoUpdate {
            target: Target::of(&target),
            set,
            filter: filter.map(|f| f.node),
        };
        self
    }

    /// `ON CONFLICT (target) WHERE pred`: the conflict target is the partial unique index
    /// whose predicate is `pred` (SQLAlchemy's `index_where`). Write `pred` without bound
    /// values (e.g. `Article::live.expr()`): the planner must prove it implies the index's
    /// predicate, which it cannot do for a parameter under a generic plan.
    pub fn conflict_index_where(mut self, pred: Expr<bool>) -> Self {
        self.arbiter_where = Some(pred.node);
        self
    }

    fn render_arbiter(&self, w: &mut Writer) {
        if let Some(p) = &self.arbiter_where {
            w.push(" WHERE ");
            p.render(w);
        }
    }

    fn render(&self, w: &mut Writer) -> Result<()> {
        let t = M::TABLE;
        if let Some(c) = self.always {
            return Err(Error::generated_always(t.name, c));
        }
        if let Some(msg) = &self.invalid {
            return Err(Error::invalid(msg.clone()));
        }
        w.push("INSERT INTO ");
        w.ident(t.name);
        self.body.render(w)?;
        match &self.conflict {
            Conflict::None => {}
            Conflict::DoNothing(target) => {
                target.render(w);
                self.render_arbiter(w);
                w.push(" DO NOTHING");
            }
            Conflict::DoUpdate {
                target,
                set,
                filter,
            } => {
                target.render(w);
                self.render_arbiter(w);
                w.push(" DO UPDATE SET ");
                set.render(w);
                if let Some(f) = filter {
                    w.push(" WHERE ");
                    f.render(w);
                }
            }
        }
        render_returning(w, self.returning.as_ref());
        Ok(())
    }
}

/// ` ("a", "b", …)`: the columns an INSERT supplies.
fn render_column_list(w: &mut Writer, cols: &[&'static str]) {
    w.push(" (");
    w.comma_list(cols, |w, c| w.ident(c));
    w.push(")");
}

/// An `UPDATE` of `M`'s table, returning `R`.
#[derive(Clone, Debug)]
pub struct Update<M, R = ()> {
    set: Assignments,
    from: Vec<&'static str>,
    filter: Option<Node>,
    returning: Option<Writer2>,
    _m: PhantomData<fn() -> (M, R)>,
}

/// `UPDATE m SET …`; add `.set(…)` and `.filter(…)`.
pub fn update<M: Model>() -> Update<M> {
    Update {
        set: Assignments::new(),
        from: Vec::new(),
        filter: None,
        returning: None,
        _m: PhantomData,
    }
}

impl<M: Model, R> Update<M, R> {
    /// `UPDATE … FROM other`: join another table; relate it in `filter`.
    pub fn from<O: Model>(mut self) -> Self {
        self.from.push(O::TABLE.name);
        self
    }

    /// Adds `col = value` to the SET list.
    pub fn set<F>(mut self, col: Column<M, F>, value: impl IntoExpr<F>) -> Self {
        self.set = self.set.set(col, value);
        self
    }

    /// `WHERE cond`, AND-ed with earlier filters.
    pub fn filter(mut self, cond: Expr<bool>) -> Self {
        self.filter = Some(and(self.filter.take(), cond.node));
        self
    }

    /// `RETURNING sel`.
    pub fn returning<S: Selectable>(self, sel: S) -> Update<M, S::Output> {
        Update {
            set: self.set,
            from: self.from,
            filter: self.filter,
            returning: Some(returning_sql(&sel)),
            _m: PhantomData,
        }
    }

    fn render(&self, w: &mut Writer) -> Result<()> {
        if self.set.0.is_empty() {
            return Err(Error::invalid("an UPDATE needs at least one SET item"));
        }
        w.push("UPDATE ");
        w.ident(M::TABLE.name);
        w.push(" SET ");
        self.set.render(w);
        if !self.from.is_empty() {
            w.push(" FROM ");
            w.comma_list(&self.from, |w, t| w.ident(t));
        }
        render_where(w, self.filter.as_ref());
        render_returning(w, self.returning.as_ref());
        Ok(())
    }
}

/// A `DELETE` from `M`'s table, returning `R`.
#[derive(Clone, Debug)]
pub struct Delete<M, R = ()> {
    using: Vec<&'static str>,
    filter: Option<Node>,
    returning: Option<Writer2>,
    _m: PhantomData<fn() -> (M, R)>,
}

/// `DELETE FROM m`; add `.filter(…)` (without one, every row goes).
pub fn delete<M: Model>() -> Delete<M> {
    Delete {
        using: Vec::new(),
        filter: None,
        returning: None,
        _m: PhantomData,
    }
}

impl<M: Model, R> Delete<M, R> {
    /// `DELETE … USING other`: join another table; relate it in `filter`.
    pub fn using<O: Model>(mut self) -> Self {
        self.using.push(O::TABLE.name);
        self
    }

    /// `WHERE cond`, AND-ed with earlier filters.
    pub fn filter(mut self, cond: Expr<bool>) -> Self {
        self.filter = Some(and(self.filter.take(), cond.node));
        self
    }

    /// `RETURNING sel`.
    pub fn returning<S: Selectable>(self, sel: S) -> Delete<M, S::Output> {
        Delete {
            using: self.using,
            filter: self.filter,
            returning: Some(returning_sql(&sel)),
            _m: PhantomData,
        }
    }

    fn render(&self, w: &mut Writer) -> Result<()> {
        w.push("DELETE FROM ");
        w.ident(M::TABLE.name);
        if !self.using.is_empty() {
            w.push(" USING ");
            w.comma_list(&self.using, |w, t| w.ident(t));
        }
        render_where(w, self.filter.as_ref());
        render_returning(w, self.returning.as_ref());
        Ok(())
    }
}

fn render_where(w: &mut Writer, filter: Option<&Node>) {
    if let Some(f) = filter {
        w.push(" WHERE ");
        f.render(w);
    }
}

fn render_returning(w: &mut Writer, returning: Option<&Writer2>) {
    if let Some(r) = returning {
        w.push(" RETURNING ");
        w.push_text(&r.0);
    }
}

fn and(prev: Option<Node>, next: Node) -> Node {
    match prev {
        Some(p) => Node::Binary("AND", Box::new(p), Box::new(next)),
        None => next,
    }
}

macro_rules! statement_impls {
    ($($ty:ident),*) => {$(
        impl<M, R> private::Sealed for $ty<M, R> {}
        impl<M: Model, R> Statement for $ty<M, R> {
            fn compile(&self) -> Result<(super::SqlText<'_>, Cow<'_, [Bind]>)> {
                let (sql, binds) = super::writer::compile_cached(|w| self.render(w))?;
                Ok((sql, Cow::Owned(binds)))
            }
        }
        impl<M: Model, R: crate::FromRow> Typed for $ty<M, R> {
            type Output = R;
        }
        impl<M: Model, R> $ty<M, R> {
            /// The SQL text this statement sends.
            pub fn to_sql(&self) -> Result<String> {
                let mut w = Writer::new();
                self.render(&mut w)?;
                Ok(w.sql)
            }
        }
    )*};
}

statement_impls!(Insert, Update, Delete, InsertSelect);

/// Columns of `M` filled by `INSERT … SELECT`: one column or a tuple of columns; `Values` is
/// the row type the `SELECT` must produce.
pub trait ColumnList<M> {
    /// The Rust types of the listed columns, in order.
    type Values;
    /// The column names.
    #[doc(hidden)]
    fn names(&self) -> Vec<&'static str>;
}

impl<M, F> ColumnList<M> for Column<M, F> {
    type Values = F;
    fn names(&self) -> Vec<&'static str> {
        vec![self.name()]
    }
}

impl<M, F1, F2> ColumnList<M> for (Column<M, F1>, Column<M, F2>) {
    type Values = (F1, F2);
    fn names(&self) -> Vec<&'static str> {
        vec![self.0.name(), self.1.name()]
    }
}

impl<M, F1, F2, F3> ColumnList<M> for (Column<M, F1>, Column<M, F2>, Column<M, F3>) {
    type Values = (F1, F2, F3);
    fn names(&self) -> Vec<&'static str> {
        vec![self.0.name(), self.1.name(), self.2.name()]
    }
}

/// `INSERT INTO m (cols) SELECT …`, returning `R`.
#[derive(Clone, Debug)]
pub struct InsertSelect<M, R = ()> {
    columns: Vec<&'static str>,
    sub: std::sync::Arc<dyn super::select::RenderSelect>,
    returning: Option<Writer2>,
    _m: PhantomData<fn() -> (M, R)>,
}

/// `INSERT INTO m (columns) SELECT …`: the select's row type must match the columns' types.
///
/// ```
/// # #[derive(aludel::Model)] #[aludel(table = "users")]
/// # struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i32>, name: String }
/// # #[derive(aludel::Model)] #[aludel(table = "archive")]
/// # struct Archived { #[aludel(primary_key)] user_id: i32, name: String }
/// let q = aludel::query::insert_select((Archived::user_id, Archived::name), aludel::select((User::id, User::name)));
/// assert_eq!(
///     q.to_sql().unwrap(),
///     r#"INSERT INTO "archive" ("user_id", "name") SELECT "users"."id", "users"."name" FROM "users""#
/// );
/// ```
pub fn insert_select<M, C, S>(columns: C, sub: super::select::Select<S>) -> InsertSelect<M>
where
    M: Model,
    C: ColumnList<M>,
    S: Selectable<Output = C::Values> + Clone + std::fmt::Debug + Send + Sync + 'static,
{
    InsertSelect {
        columns: columns.names(),
        sub: std::sync::Arc::new(sub),
        returning: None,
        _m: PhantomData,
    }
}

impl<M: Model, R> InsertSelect<M, R> {
    /// `RETURNING sel`.
    pub fn returning<S: Selectable>(self, sel: S) -> InsertSelect<M, S::Output> {
        InsertSelect {
            columns: self.columns,
            sub: self.sub,
            returning: Some(returning_sql(&sel)),
            _m: PhantomData,
        }
    }

    fn render(&self, w: &mut Writer) -> Result<()> {
        w.push("INSERT INTO ");
        w.ident(M::TABLE.name);
        w.push(" (");
        w.comma_list(&self.columns, |w, c| w.ident(c));
        w.push(") ");
        self.sub.render_select(w);
        render_returning(w, self.returning.as_ref());
        Ok(())
    }
}

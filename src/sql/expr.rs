//! Typed SQL expressions: columns, values, operators and functions.
//!
//! `Expr<T>` is an SQL expression whose values read as the Rust type `T`. Operators only
//! accept operands of the same type, so `User::name.eq(5)` does not compile.

use std::marker::PhantomData;

use super::func::{AnyExpr, Window};
use super::writer::Writer;
use super::{Bind, SqlType};
use crate::schema::Model;

/// The untyped expression tree; typed wrappers keep it honest.
#[derive(Clone, Debug)]
#[doc(hidden)]
#[allow(unreachable_pub)] // named in `IntoExpr`'s hidden method; not reachable by users
pub enum Node {
    Column {
        table: &'static str,
        name: &'static str,
    },
    Bind(Bind),
    Raw(&'static str),
    /// A raw fragment whose `?` marks are filled with the argument nodes, in order.
    Fragment(&'static [&'static str], Vec<Node>),
    Star,
    Binary(&'static str, Box<Node>, Box<Node>),
    Not(Box<Node>),
    Postfix(Box<Node>, &'static str),
    Func(&'static str, Vec<Node>),
    Any {
        value: Box<Node>,
        array: Box<Node>,
        negate: bool,
    },
    Between(Box<Node>, Box<Node>, Box<Node>),
    Cast(Box<Node>, &'static str),
    Case(Vec<(Node, Node)>, Option<Box<Node>>),
    Excluded(&'static str),
    /// `(SELECT …)`
    Subquery(std::sync::Arc<dyn super::select::RenderSelect>),
    /// `EXISTS (SELECT …)`
    Exists(std::sync::Arc<dyn super::select::RenderSelect>),
    /// `value [NOT] IN (SELECT …)`
    InSubquery {
        value: Box<Node>,
        sub: std::sync::Arc<dyn super::select::RenderSelect>,
        negate: bool,
    },
    /// `f(…) OVER (PARTITION BY … ORDER BY …)`
    Over(Box<Node>, Window),
}

impl Node {
    /// The first table a column in this expression belongs to (to infer `FROM`).
    pub(crate) fn first_table(&self) -> Option<&'static str> {
        match self {
            Node::Column { table, .. } => Some(table),
            Node::Binary(_, l, r) => l.first_table().or_else(|| r.first_table()),
            Node::Not(e) | Node::Postfix(e, _) | Node::Cast(e, _) => e.first_table(),
            Node::Func(_, args) | Node::Fragment(_, args) => {
                args.iter().find_map(Node::first_table)
            }
            Node::Any { value, array, .. } => value.first_table().or_else(|| array.first_table()),
            Node::Between(a, b, c) => a
                .first_table()
                .or_else(|| b.first_table())
                .or_else(|| c.first_table()),
            Node::Case(arms, e) => arms
                .iter()
                .find_map(|(w, t)| w.first_table().or_else(|| t.first_table()))
                .or_else(|| e.as_ref().and_then(|e| e.first_table())),
            Node::InSubquery { value, .. } => value.first_table(),
            Node::Over(e, _) => e.first_table(),
            Node::Bind(_)
            | Node::Raw(_)
            | Node::Star
            | Node::Excluded(_)
            | Node::Subquery(_)
            | Node::Exists(_) => None,
        }
    }

    pub(crate) fn render(&self, w: &mut Writer) {
        match self {
            Node::Column { table, name } => {
                w.ident(table);
                w.push(".");
                w.ident(name);
            }
            Node::Bind(b) => w.bind(b.clone()),
            Node::Raw(s) => w.push(s),
            Node::Fragment(pieces, args) => {
                for (i, piece) in pieces.iter().enumerate() {
                    w.push(piece);
                    if let Some(arg) = args.get(i) {
                        arg.render(w);
                    }
                }
            }
            Node::Star => w.push("*"),
            Node::Binary(op, l, r) => {
                w.push("(");
                l.render(w);
                w.push(" ");
                w.push(op);
                w.push(" ");
                r.render(w);
                w.push(")");
            }
            Node::Not(e) => {
                w.push("(NOT ");
                e.render(w);
                w.push(")");
            }
            Node::Postfix(e, op) => {
                w.push("(");
                e.render(w);
                w.push(" ");
                w.push(op);
                w.push(")");
            }
            Node::Func(name, args) => {
                w.push(name);
                w.push("(");
                w.comma_list(args, |w, a| a.render(w));
                w.push(")");
            }
            Node::Any {
                value,
                array,
                negate,
            } => {
                w.push("(");
                if *negate {
                    w.push("NOT (");
                }
                value.render(w);
                w.push(" = ANY(");
                array.render(w);
                w.push(")");
                if *negate {
                    w.push(")");
                }
                w.push(")");
            }
            Node::Between(e, lo, hi) => {
                w.push("(");
                e.render(w);
                w.push(" BETWEEN ");
                lo.render(w);
                w.push(" AND ");
                hi.render(w);
                w.push(")");
            }
            Node::Cast(e, ty) => {
                w.push("CAST(");
                e.render(w);
                w.push(" AS ");
                w.push(ty);
                w.push(")");
            }
            Node::Case(arms, otherwise) => {
                w.push("CASE");
                for (when, then) in arms {
                    w.push(" WHEN ");
                    when.render(w);
                    w.push(" THEN ");
                    then.render(w);
                }
                if let Some(e) = otherwise {
                    w.push(" ELSE ");
                    e.render(w);
                }
                w.push(" END");
            }
            Node::Excluded(name) => {
                w.push("EXCLUDED.");
                w.ident(name);
            }
            Node::Subquery(sub) => {
                w.push("(");
                sub.render_select(w);
                w.push(")");
            }
            Node::Exists(sub) => {
                w.push("EXISTS (");
                sub.render_select(w);
                w.push(")");
            }
            Node::InSubquery { value, sub, negate } => {
                w.push("(");
                value.render(w);
                w.push(if *negate { " NOT IN (" } else { " IN (" });
                sub.render_select(w);
                w.push("))");
            }
            Node::Over(e, window) => {
                e.render(w);
                w.push(" OVER (");
                let mut sep = "";
                if !window.partition.is_empty() {
                    w.push("PARTITION BY ");
                    w.comma_list(&window.partition, |w, n| n.render(w));
                    sep = " ";
                }
                if !window.order.is_empty() {
                    w.push(sep);
                    w.push("ORDER BY ");
                    w.comma_list(&window.order, |w, o| o.render(w));
                }
                w.push(")");
            }
        }
    }
}

/// An SQL expression whose value reads as `T`.
pub struct Expr<T> {
    pub(crate) node: Node,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Expr<T> {
    fn clone(&self) -> Self {
        Expr::from_node(self.node.clone())
    }
}

impl<T> std::fmt::Debug for Expr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.node.fmt(f)
    }
}

impl<T> Expr<T> {
    pub(crate) fn from_node(node: Node) -> Self {
        Expr {
            node,
            _t: PhantomData,
        }
    }

    /// A raw SQL fragment typed as `T`, for constructs the builder lacks. Only `&'static str`:
    /// values never go into SQL text.
    pub fn raw(sql: &'static str) -> Self {
        Expr::from_node(Node::Raw(sql))
    }

    /// A raw SQL fragment with arguments: each `?` in `pieces`' gaps is an argument, bound
    /// or rendered, never spliced. `pieces` has one more item than `args`:
    /// `Expr::<bool>::fragment(&["lower(", ") = lower(", ")"], vec![User::name.expr().into(), value(s).into()])`.
    pub fn fragment(pieces: &'static [&'static str], args: Vec<AnyExpr>) -> Self {
        Expr::from_node(Node::Fragment(
            pieces,
            args.into_iter().map(|a| a.0).collect(),
        ))
    }

    /// `CAST(expr AS ty)`, read as `U`; `ty` is SQL written in the source (e.g. `"float8"`).
    pub fn cast<U>(self, ty: &'static str) -> Expr<U> {
        Expr::from_node(Node::Cast(Box::new(self.node), ty))
    }
}

/// A column of model `M` whose Rust field type is `F` (`Option<T>` for nullable columns).
pub struct Column<M, F> {
    table: &'static str,
    name: &'static str,
    _t: PhantomData<fn() -> (M, F)>,
}

impl<M, F> Clone for Column<M, F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M, F> Copy for Column<M, F> {}

impl<M, F> std::fmt::Debug for Column<M, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.table, self.name)
    }
}

impl<M, F> Column<M, F> {
    #[doc(hidden)]
    pub const fn new(table: &'static str, name: &'static str) -> Self {
        Column {
            table,
            name,
            _t: PhantomData,
        }
    }

    /// The column's name in the database.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The same column, read through a table alias (self-joins).
    pub const fn of(self, alias: &Alias<M>) -> Self {
        Column {
            table: alias.name,
            name: self.name,
            _t: PhantomData,
        }
    }

    pub(crate) fn node(&self) -> Node {
        Node::Column {
            table: self.table,
            name: self.name,
        }
    }
}

impl<M, F: ColumnType> Column<M, F> {
    /// This column as an expression of its non-null type.
    pub fn expr(self) -> Expr<F::Base> {
        Expr::from_node(self.node())
    }
}

/// A model's table under another name, for self-joins: `let boss = User::alias("boss")`.
#[derive(Debug)]
pub struct Alias<M> {
    pub(crate) name: &'static str,
    _m: PhantomData<fn() -> M>,
}

impl<M> Clone for Alias<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Alias<M> {}

impl<M: Model> Alias<M> {
    /// An alias called `name` for `M`'s table.
    pub const fn new(name: &'static str) -> Self {
        Alias {
            name,
            _m: PhantomData,
        }
    }
}

/// Maps a field type to the type its expressions compare as: `Option<T>` → `T`.
pub trait ColumnType {
    /// The non-null type.
    type Base: SqlType;
}

/// Something usable where an `Expr<T>` is expected: an expression, a column, or a value
/// (bound, never spliced).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as an SQL expression of type `{T}`",
    label = "expected a value, column or expression of type `{T}`",
    note = "operands must have the column's type: compare text with text, integers with the same integer type"
)]
pub trait IntoExpr<T> {
    /// The expression node.
    #[doc(hidden)]
    fn into_node(self) -> Node;
}

impl<T> IntoExpr<T> for Expr<T> {
    fn into_node(self) -> Node {
        self.node
    }
}

impl<M, F: ColumnType> IntoExpr<F::Base> for Column<M, F> {
    fn into_node(self) -> Node {
        self.node()
    }
}

// `ColumnType` and `IntoExpr` for the built-in and feature column types: `sql/types.rs`,
// expanded from the one list in `value.rs`.

impl IntoExpr<String> for &'static str {
    fn into_node(self) -> Node {
        Node::Bind(Bind::new(self))
    }
}

impl IntoExpr<Option<String>> for &'static str {
    fn into_node(self) -> Node {
        Node::Bind(Bind::new(Some(self)))
    }
}

impl IntoExpr<String> for &String {
    fn into_node(self) -> Node {
        Node::Bind(Bind::new(self.clone()))
    }
}

/// Binds `value` as an expression (when a literal's type must be stated).
pub fn value<T: SqlType>(value: T) -> Expr<T> {
    Expr::from_node(Node::Bind(Bind::new(value)))
}

fn bin<T>(op: &'static str, l: Node, r: Node) -> Expr<T> {
    Expr::from_node(Node::Binary(op, Box::new(l), Box::new(r)))
}

/// Operators shared by columns and expressions of type `T`.
macro_rules! operators {
    () => {
        /// `self = other`
        pub fn eq(self, other: impl IntoExpr<T>) -> Expr<bool> {
            bin("=", self.lhs(), other.into_node())
        }
        /// `self <> other`
        pub fn ne(self, other: impl IntoExpr<T>) -> Expr<bool> {
            bin("<>", self.lhs(), other.into_node())
        }
        /// `self < other`
        pub fn lt(self, other: impl IntoExpr<T>) -> Expr<bool> {
            bin("<", self.lhs(), other.into_node())
        }
        /// `self <= other`
        pub fn le(self, other: impl IntoExpr<T>) -> Expr<bool> {
            bin("<=", self.lhs(), other.into_node())
        }
        /// `self > other`
        pub fn gt(self, other: impl IntoExpr<T>) -> Expr<bool> {
            bin(">", self.lhs(), other.into_node())
        }
        /// `self >= other`
        pub fn ge(self, other: impl IntoExpr<T>) -> Expr<bool> {
            bin(">=", self.lhs(), other.into_node())
        }
        /// `self BETWEEN lo AND hi`
        pub fn between(self, lo: impl IntoExpr<T>, hi: impl IntoExpr<T>) -> Expr<bool> {
            Expr::from_node(Node::Between(
                Box::new(self.lhs()),
                Box::new(lo.into_node()),
                Box::new(hi.into_node()),
            ))
        }
        /// `self = ANY($1)` with the list as one array bind: no parameter-count limit, and an
        /// empty list matches nothing.
        pub fn in_list(self, list: Vec<T>) -> Expr<bool>
        where
            Vec<T>: SqlType,
        {
            Expr::from_node(Node::Any {
                value: Box::new(self.lhs()),
                array: Box::new(Node::Bind(Bind::new(list))),
                negate: false,
            })
        }
        /// `NOT (self = ANY($1))`.
        pub fn not_in_list(self, list: Vec<T>) -> Expr<bool>
        where
            Vec<T>: SqlType,
        {
            Expr::from_node(Node::Any {
                value: Box::new(self.lhs()),
                array: Box::new(Node::Bind(Bind::new(list))),
                negate: true,
            })
        }
        /// `self IN (subquery)`; the subquery must select values of the same type.
        pub fn in_subquery<S>(self, sub: super::select::Select<S>) -> Expr<bool>
        where
            S: super::select::Selectable<Output = T>
                + Clone
                + std::fmt::Debug
                + Send
                + Sync
                + 'static,
        {
            Expr::from_node(Node::InSubquery {
                value: Box::new(self.lhs()),
                sub: std::sync::Arc::new(sub),
                negate: false,
            })
        }
        /// `self NOT IN (subquery)`.
        pub fn not_in_subquery<S>(self, sub: super::select::Select<S>) -> Expr<bool>
        where
            S: super::select::Selectable<Output = T>
                + Clone
                + std::fmt::Debug
                + Send
                + Sync
                + 'static,
        {
            Expr::from_node(Node::InSubquery {
                value: Box::new(self.lhs()),
                sub: std::sync::Arc::new(sub),
                negate: true,
            })
        }
        /// `self IS NULL`
        pub fn is_null(self) -> Expr<bool> {
            Expr::from_node(Node::Postfix(Box::new(self.lhs()), "IS NULL"))
        }
        /// `self IS NOT NULL`
        pub fn is_not_null(self) -> Expr<bool> {
            Expr::from_node(Node::Postfix(Box::new(self.lhs()), "IS NOT NULL"))
        }
        /// `ORDER BY self ASC`
        pub fn asc(self) -> Order {
            Order::new(self.lhs(), "ASC")
        }
        /// `ORDER BY self DESC`
        pub fn desc(self) -> Order {
            Order::new(self.lhs(), "DESC")
        }
    };
}

macro_rules! text_operators {
    () => {
        /// `self LIKE pattern` (the pattern is bound).
        pub fn like(self, pattern: impl IntoExpr<String>) -> Expr<bool> {
            bin("LIKE", self.lhs(), pattern.into_node())
        }
        /// `self ILIKE pattern`.
        pub fn ilike(self, pattern: impl IntoExpr<String>) -> Expr<bool> {
            bin("ILIKE", self.lhs(), pattern.into_node())
        }
        /// Starts with `prefix` (matched literally: `%` and `_` in it are not wildcards).
        pub fn starts_with(self, prefix: &str) -> Expr<bool> {
            bin(
                "LIKE",
                self.lhs(),
                Node::Bind(Bind::new(format!("{}%", escape_like(prefix)))),
            )
        }
        /// Contains `part` (matched literally).
        pub fn contains(self, part: &str) -> Expr<bool> {
            bin(
                "LIKE",
                self.lhs(),
                Node::Bind(Bind::new(format!("%{}%", escape_like(part)))),
            )
        }
    };
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl<T> Expr<T> {
    fn lhs(self) -> Node {
        self.node
    }
    operators!();
}

impl Expr<String> {
    text_operators!();
}

impl<M, F: ColumnType> Column<M, F> {
    fn lhs(self) -> Node {
        self.node()
    }
}

impl<M, F: ColumnType<Base = T>, T> Column<M, F> {
    operators!();
}

impl<M, F: ColumnType<Base = String>> Column<M, F> {
    text_operators!();
}

macro_rules! arithmetic {
    ($($t:ty),*) => {$(
        impl Expr<$t> {
            /// `self + other`
            #[allow(clippy::should_implement_trait)]
            pub fn add(self, other: impl IntoExpr<$t>) -> Expr<$t> {
                bin("+", self.node, other.into_node())
            }
            /// `self - other`
            #[allow(clippy::should_implement_trait)]
            pub fn sub(self, other: impl IntoExpr<$t>) -> Expr<$t> {
                bin("-", self.node, other.into_node())
            }
            /// `self * other`
            #[allow(clippy::should_implement_trait)]
            pub fn mul(self, other: impl IntoExpr<$t>) -> Expr<$t> {
                bin("*", self.node, other.into_node())
            }
        }
    )*};
}

arithmetic!(i16, i32, i64, f32, f64);

impl<M, F: ColumnType<Base = Vec<T>>, T> Column<M, F>
where
    Vec<T>: SqlType,
{
    /// `self && other`: the arrays share an element.
    pub fn overlaps(self, other: Vec<T>) -> Expr<bool> {
        bin("&&", self.node(), Node::Bind(Bind::new(other)))
    }
    /// `self @> other`: every element of `other` is in the array.
    pub fn contains_all(self, other: Vec<T>) -> Expr<bool> {
        bin("@>", self.node(), Node::Bind(Bind::new(other)))
    }
    /// `self <@ other`: every element of the array is in `other`.
    pub fn contained_by(self, other: Vec<T>) -> Expr<bool> {
        bin("<@", self.node(), Node::Bind(Bind::new(other)))
    }
    /// `$1 = ANY(self)`: the array holds `value`.
    pub fn has(self, value: T) -> Expr<bool>
    where
        T: SqlType,
    {
        Expr::from_node(Node::Any {
            value: Box::new(Node::Bind(Bind::new(value))),
            array: Box::new(self.node()),
            negate: false,
        })
    }
}

impl Expr<bool> {
    /// `self AND other`
    pub fn and(self, other: impl IntoExpr<bool>) -> Expr<bool> {
        bin("AND", self.node, other.into_node())
    }
    /// `self OR other`
    pub fn or(self, other: impl IntoExpr<bool>) -> Expr<bool> {
        bin("OR", self.node, other.into_node())
    }
    /// `NOT self`
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr<bool> {
        Expr::from_node(Node::Not(Box::new(self.node)))
    }
}

/// An `ORDER BY` item.
#[derive(Clone, Debug)]
pub struct Order {
    pub(crate) node: Node,
    pub(crate) dir: &'static str,
    pub(crate) nulls: Option<&'static str>,
}

impl Order {
    fn new(node: Node, dir: &'static str) -> Self {
        Order {
            node,
            dir,
            nulls: None,
        }
    }
    /// `NULLS FIRST`
    pub fn nulls_first(mut self) -> Self {
        self.nulls = Some("NULLS FIRST");
        self
    }
    /// `NULLS LAST`
    pub fn nulls_last(mut self) -> Self {
        self.nulls = Some("NULLS LAST");
        self
    }
    pub(crate) fn render(&self, w: &mut Writer) {
        self.node.render(w);
        w.push(" ");
        w.push(self.dir);
        if let Some(n) = self.nulls {
            w.push(" ");
            w.push(n);
        }
    }
}

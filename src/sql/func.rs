//! SQL functions, aggregates, window functions, CASE and friends, as typed expressions.

use super::SqlType;
use super::expr::{Column, Expr, IntoExpr, Node, Order};

/// `count(*)`
pub fn count_star() -> Expr<i64> {
    Expr::from_node(Node::Func("count", vec![Node::Star]))
}

/// `count(expr)`: non-null values.
pub fn count<T>(e: impl IntoExpr<T>) -> Expr<i64> {
    Expr::from_node(Node::Func("count", vec![e.into_node()]))
}

/// `max(expr)`; NULL over no rows.
pub fn max<T>(e: impl IntoExpr<T>) -> Expr<Option<T>> {
    Expr::from_node(Node::Func("max", vec![e.into_node()]))
}

/// `min(expr)`; NULL over no rows.
pub fn min<T>(e: impl IntoExpr<T>) -> Expr<Option<T>> {
    Expr::from_node(Node::Func("min", vec![e.into_node()]))
}

/// `sum(expr)` cast back to the argument's type (PostgreSQL widens integer sums); NULL over
/// no rows.
pub fn sum<T: SqlType>(e: impl IntoExpr<T>) -> Expr<Option<T>> {
    let ty = T::sql_type();
    let name: &'static str = match ty.name() {
        "int2" => "int2",
        "int4" => "int4",
        "int8" => "int8",
        "float4" => "float4",
        _ => "float8",
    };
    Expr::from_node(Node::Cast(
        Box::new(Node::Func("sum", vec![e.into_node()])),
        name,
    ))
}

/// `avg(expr)` as float8; NULL over no rows.
pub fn avg<T>(e: impl IntoExpr<T>) -> Expr<Option<f64>> {
    Expr::from_node(Node::Cast(
        Box::new(Node::Func("avg", vec![e.into_node()])),
        "float8",
    ))
}

/// `coalesce(a, b)`: `a` unless it is NULL, else `b`.
pub fn coalesce<T>(a: impl IntoExpr<T>, b: impl IntoExpr<T>) -> Expr<T> {
    Expr::from_node(Node::Func("coalesce", vec![a.into_node(), b.into_node()]))
}

/// Any SQL function by name (a literal from the source), typed by the caller:
/// `func::<String>("lower", vec![User::name.expr().into()])`.
pub fn func<T>(name: &'static str, args: Vec<AnyExpr>) -> Expr<T> {
    Expr::from_node(Node::Func(name, args.into_iter().map(|a| a.0).collect()))
}

/// An expression of any type, as a function argument.
#[derive(Clone, Debug)]
pub struct AnyExpr(pub(crate) Node);

impl<T> From<Expr<T>> for AnyExpr {
    fn from(e: Expr<T>) -> Self {
        AnyExpr(e.node)
    }
}

/// `CASE WHEN … THEN … [ELSE …] END`.
pub fn case<T>(arms: Vec<(Expr<bool>, Expr<T>)>, otherwise: Option<Expr<T>>) -> Expr<T> {
    Expr::from_node(Node::Case(
        arms.into_iter().map(|(w, t)| (w.node, t.node)).collect(),
        otherwise.map(|e| Box::new(e.node)),
    ))
}

/// A window for `OVER (…)`: `Window::new().partition_by(Post::user_id).order_by(Post::id.desc())`.
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub(crate) partition: Vec<Node>,
    pub(crate) order: Vec<Order>,
}

impl Window {
    /// An empty window (the whole result).
    pub fn new() -> Self {
        Window::default()
    }
    /// `PARTITION BY expr`, after earlier partitions.
    pub fn partition_by<T>(mut self, e: impl IntoExpr<T>) -> Self {
        self.partition.push(e.into_node());
        self
    }
    /// `ORDER BY …` inside the window.
    pub fn order_by(mut self, o: Order) -> Self {
        self.order.push(o);
        self
    }
}

impl<T> Expr<T> {
    /// `self OVER (window)`: an aggregate as a window function.
    pub fn over(self, window: Window) -> Expr<T> {
        Expr::from_node(Node::Over(Box::new(self.node), window))
    }
}

/// `row_number() OVER (window)`.
pub fn row_number(window: Window) -> Expr<i64> {
    Expr::from_node(Node::Over(
        Box::new(Node::Func("row_number", Vec::new())),
        window,
    ))
}

/// `rank() OVER (window)`.
pub fn rank(window: Window) -> Expr<i64> {
    Expr::from_node(Node::Over(Box::new(Node::Func("rank", Vec::new())), window))
}

/// `dense_rank() OVER (window)`.
pub fn dense_rank(window: Window) -> Expr<i64> {
    Expr::from_node(Node::Over(
        Box::new(Node::Func("dense_rank", Vec::new())),
        window,
    ))
}

/// `EXISTS (subquery)`; the subquery may refer to the outer query's columns (correlated).
pub fn exists<S: super::select::Selectable + Clone + std::fmt::Debug + Send + Sync + 'static>(
    sub: super::select::Select<S>,
) -> Expr<bool> {
    Expr::from_node(Node::Exists(std::sync::Arc::new(sub)))
}

/// The value an `INSERT … ON CONFLICT DO UPDATE` proposed for `col`.
pub fn excluded<M, F>(col: Column<M, F>) -> Expr<F> {
    Expr::from_node(Node::Excluded(col.name()))
}

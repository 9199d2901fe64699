//! How loading options run: one level of the object graph per round trip. The statements
//! of every sibling option (and every chunk of keys) are sent together on the session's
//! connection, which tokio-postgres pipelines. Rows go through the identity map; the
//! parents' slots are filled and the children handed to the next level's options.

/// foldhash (seeded per process) for the grouping maps: keys are short and hashed per row.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::deferred::ColumnPlan;
use super::strategy::{Load, LoadOpt, Strategy, opt};
use crate::error::{Error, Result};
use crate::row::{RawSlice, Row};
use crate::schema::{Model, RelKind, cols_or_pk, row_positions};
use crate::sql::{All, Bind, Expr, Node, Order, Select, Statement, select};
use crate::state::{Context, Edge, Key, Obj, Rel, RelVisitor, Slot, identity_key_non_null};

/// What a selectin option sends for one level, and which key each parent has.
pub(crate) struct Prepared {
    pub(crate) stmts: Vec<(Arc<str>, Vec<Bind>)>,
    keys: Vec<Option<Key>>,
}

/// One option, with its target type erased so options for different relationships of the
/// same parent can sit in one list.
pub(crate) trait Step<P: Model>: Send + Sync {
    fn rel_path(&self) -> &'static str;
    fn strategy(&self) -> Strategy;
    /// The relationship is declared `lazy = "raise"`.
    fn declared_raise(&self) -> bool;
    /// Raise / noload: marks the slots, no SQL.
    fn mark(&self, parents: &[Obj<P>]);
    fn statements(&self, s: &dyn Context, parents: &[Obj<P>]) -> Result<Prepared>;
    fn apply<'a>(
        &'a self,
        s: &'a mut dyn Context,
        parents: &'a [Obj<P>],
        prepared: Prepared,
        rows: Vec<Vec<tokio_postgres::Row>>,
    ) -> BoxFuture<'a, Result<()>>;
    /// Adds the join to the parent query; false when this option must load by selectin.
    fn join_into(&self, q: &mut Select<All<P>>) -> bool;
    /// Fills the slots from the joined columns at `offset`, then runs the next level.
    fn apply_joined<'a>(
        &'a self,
        s: &'a mut dyn Context,
        parents: &'a [Obj<P>],
        rows: &'a [tokio_postgres::Row],
        offset: usize,
    ) -> BoxFuture<'a, Result<()>>;
    fn joined_columns(&self) -> usize;
    /// A relationship's own default or a wildcard (see [`LoadOpt::default`]).
    fn is_default(&self) -> bool;
    /// Whether `parent`'s slot for this relationship is loaded.
    fn loaded_on(&self, parent: &Obj<P>) -> bool;
}

/// The wire-encoded key of `binds`, `None` when any of them is NULL.
fn key_of(binds: &[Bind]) -> Option<Key> {
    identity_key_non_null(binds)
}

pub(crate) fn to_arc(sql: crate::sql::SqlText<'_>) -> Arc<str> {
    match sql {
        crate::sql::SqlText::Borrowed(s) => Arc::from(s),
        crate::sql::SqlText::Shared(s) | crate::sql::SqlText::Fresh(s) => s,
    }
}

fn column_order(table: &'static str, name: &'static str, desc: bool) -> Order {
    let e = Expr::<()>::from_node(Node::Column { table, name });
    if desc { e.desc() } else { e.asc() }
}

impl<P: Model, C: Model> LoadOpt<P, C> {
    /// The target-side key of a loaded child (its join columns, or the link column read
    /// from the row for many-to-many).
    /// The row columns holding a child's join key: its target-side columns, or the link
    /// column selected after them (many-to-many).
    fn key_columns(&self, plan: Option<&ColumnPlan>) -> Result<Vec<usize>> {
        if self.rel.def().kind == RelKind::ManyToMany {
            return Ok(vec![match plan {
                Some(p) => p.indexes.len(),
                None => <C as crate::row::FromRow>::column_count(),
            }]);
        }
        let names = cols_or_pk(self.rel.def().remote, C::TABLE);
        match plan {
            None => row_positions(C::TABLE, &names),
            Some(p) => names
                .iter()
                .map(|n| {
                    let idx = C::TABLE.column_index(n);
                    p.indexes
                        .iter()
                        .position(|&i| Some(i) == idx)
                        .ok_or_else(|| Error::invalid(format!("join column `{n}` not selected")))
                })
                .collect(),
        }
    }

    /// The related objects' columns chosen by column options under `then`.
    fn child_plan(&self) -> Result<Option<ColumnPlan>> {
        ColumnPlan::build(C::TABLE, &self.then.cols)
    }

    /// Fills each parent's slot with its children, and the children's reverse side.
    fn assign(&self, parents: &[Obj<P>], keys: &[Option<Key>], groups: &HashMap<Key, Vec<Obj<C>>>) {
        let def = self.rel.def();
        let empty = Vec::new();
        for (parent, key) in parents.iter().zip(keys) {
            let children = key.as_ref().and_then(|k| groups.get(k)).unwrap_or(&empty);
            parent.with_value_mut(|v| match &def.slot {
                Slot::Many(f) => f(v).set_loaded(
                    def.path,
                    children.iter().cloned().map(Edge::Strong).collect(),
                ),
                Slot::One(f) => {
                    f(v).set_loaded(def.path, children.first().cloned().map(Edge::Strong));
                }
                Slot::WriteOnly(_) => {}
            });
            // The reverse side of a one-to-many / one-to-one is the parent itself: known
            // without SQL (weak, so the pair does not keep itself alive).
            if let (Some(back), RelKind::OneToMany | RelKind::OneToOne) = (def.back, def.kind) {
                let back = back();
                if let Slot::One(g) = &back.def().slot {
                    for child in children {
                        child.with_value_mut(|c| {
                            let slot = g(c);
                            if !slot.changed {
                                slot.set_loaded(
                                    back.def().path,
                                    Some(Edge::Weak(Arc::downgrade(&parent.0))),
                                );
                            }
                        });
                    }
                }
            }
        }
    }
}

/// Any column's value as its wire bytes (the key of a link row).
struct RawKey(Option<Vec<u8>>);

impl<'a> tokio_postgres::types::FromSql<'a> for RawKey {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawKey(Some(raw.to_vec())))
    }
    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawKey(None))
    }
    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// The identity-key encoding of columns `cols` of `row`; `None` when one is NULL.
pub(crate) fn row_key(row: &tokio_postgres::Row, cols: &[usize]) -> Option<Key> {
    let mut key = Key::new();
    for &i in cols {
        let RawSlice(v) = row.try_get(i).ok()?;
        let v = v?;
        key.extend_from_slice(&u32::try_from(v.len()).ok()?.to_le_bytes());
        key.extend_from_slice(v);
    }
    Some(key)
}

/// Children in first-seen order, each once.
fn distinct<C: Model>(groups: &HashMap<Key, Vec<Obj<C>>>, order: &[Obj<C>]) -> Vec<Obj<C>> {
    let _ = groups;
    let mut seen = HashSet::with_capacity_and_hasher(order.len(), Default::default());
    order
        .iter()
        .filter(|o| seen.insert(Arc::as_ptr(&o.0) as usize))
        .cloned()
        .collect()
}

impl<P: Model, C: Model> Step<P> for LoadOpt<P, C> {
    fn rel_path(&self) -> &'static str {
        self.rel.def().path
    }

    fn strategy(&self) -> Strategy {
        self.strategy
    }

    fn declared_raise(&self) -> bool {
        self.rel.def().lazy == crate::schema::Lazy::Raise
    }

    fn mark(&self, parents: &[Obj<P>]) {
        let def = self.rel.def();
        let raise = self.strategy == Strategy::Raise;
        for p in parents {
            p.with_value_mut(|v| match &def.slot {
                Slot::Many(f) if raise => f(v).set_unloaded(def.path, true),
                Slot::Many(f) => f(v).set_loaded(def.path, Vec::new()),
                Slot::One(f) if raise => f(v).set_unloaded(def.path, true),
                Slot::One(f) => f(v).set_loaded(def.path, None),
                Slot::WriteOnly(_) => {}
            });
        }
    }

    fn statements(&self, s: &dyn Context, parents: &[Obj<P>]) -> Result<Prepared> {
        let def = self.rel.def();
        if matches!(def.slot, Slot::WriteOnly(_)) {
            return Err(Error::invalid(format!(
                "`{}` is write-only: it is never loaded; use `{}.select(&parent)`",
                def.path, def.name
            )));
        }
        let local = self.rel.local_idx()?;
        let mut keys = Vec::with_capacity(parents.len());
        let mut wanted: Vec<Vec<Bind>> = Vec::new();
        let mut seen = HashSet::with_capacity_and_hasher(parents.len(), Default::default());
        for p in parents {
            let binds: Vec<Bind> = p
                .read()?
                .pipe(|v| local.iter().filter_map(|i| v.column_value(*i)).collect());
            if binds.len() != local.len() {
                return Err(Error::invalid(format!(
                    "`{}`: a key column of the parent is not loaded",
                    def.path
                )));
            }
            let key = key_of(&binds);
            if let Some(k) = &key {
                // Many-to-one targets already in the identity map need no SQL.
                let known = def.kind == RelKind::ManyToOne
                    && def.remote.is_none()
                    && crate::state::lookup::<C>(s.identity_map(), k).is_some();
                if !known && seen.insert(k.clone()) {
                    wanted.push(binds);
                }
            }
            keys.push(key);
        }
        let mut stmts = Vec::new();
        for chunk in wanted.chunks(self.chunk) {
            stmts.push(self.chunk_statement(chunk)?);
        }
        Ok(Prepared { stmts, keys })
    }

    fn apply<'a>(
        &'a self,
        s: &'a mut dyn Context,
        parents: &'a [Obj<P>],
        prepared: Prepared,
        rows: Vec<Vec<tokio_postgres::Row>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let def = self.rel.def();
            let mut groups: HashMap<Key, Vec<Obj<C>>> =
                HashMap::with_capacity_and_hasher(prepared.keys.len(), Default::default());
            let mut order = Vec::with_capacity(rows.iter().map(Vec::len).sum());
            let plan = self.child_plan()?;
            let cols = plan.as_ref().map(|p| p.set);
            let key_cols = self.key_columns(plan.as_ref())?;
            let (identity, registry) = s.identity();
            // Every row may be a new object: grow the map once, not by doubling.
            identity.reserve(order.capacity());
            for row in rows.into_iter().flatten() {
                // The key straight from the row's wire bytes: the same encoding the parents'
                // keys were written in.
                let key = row_key(&row, &key_cols);
                let child = crate::state::identify_into::<C>(
                    identity,
                    registry,
                    &Row(row),
                    0,
                    false,
                    cols,
                )?;
                if let Some(k) = key {
                    groups.entry(k).or_default().push(child.clone());
                }
                order.push(child);
            }
            if def.kind == RelKind::ManyToOne {
                // Targets found in the identity map instead of queried.
                for k in prepared.keys.iter().flatten() {
                    if !groups.contains_key(k) {
                        if let Some(obj) = crate::state::lookup::<C>(s.identity_map(), k) {
                            order.push(obj.clone());
                            groups.insert(k.clone(), vec![obj]);
                        }
                    }
                }
            }
            self.assign(parents, &prepared.keys, &groups);
            let children = distinct(&groups, &order);
            run_level(s, &children, &self.then).await
        })
    }

    fn join_into(&self, q: &mut Select<All<P>>) -> bool {
        let def = self.rel.def();
        if self.strategy == Strategy::ContainsEager {
            q.add_columns_of(self.source.unwrap_or(C::TABLE.name), C::TABLE.columns);
            return true;
        }
        let collection = matches!(def.kind, RelKind::OneToMany | RelKind::ManyToMany);
        if def.kind == RelKind::ManyToMany
            || (collection && q.limits_rows())
            || !self.then.cols.is_empty()
        {
            return false;
        }
        let Some(main) = q.main_name() else {
            return false;
        };
        let local = cols_or_pk(def.local, P::TABLE);
        let remote = cols_or_pk(def.remote, C::TABLE);
        if local.len() != remote.len() || local.is_empty() {
            return false;
        }
        let mut on: Option<Node> = None;
        for (l, r) in local.iter().zip(&remote) {
            let eq = Node::Binary(
                "=",
                Box::new(Node::Column {
                    table: def.alias,
                    name: r,
                }),
                Box::new(Node::Column {
                    table: main,
                    name: l,
                }),
            );
            on = Some(match on {
                Some(prev) => Node::Binary("AND", Box::new(prev), Box::new(eq)),
                None => eq,
            });
        }
        let Some(mut on) = on else { return false };
        if let Some(f) = &self.filter {
            // Criteria on a joined relationship go into ON (they filter children, not parents);
            // they must name the target through its alias, so only alias-free criteria apply.
            on = Node::Binary("AND", Box::new(on), Box::new(f.clone()));
        }
        q.add_joined(C::TABLE.name, def.alias, on, C::TABLE.columns);
        true
    }

    fn joined_columns(&self) -> usize {
        <C as crate::row::FromRow>::column_count()
    }

    fn is_default(&self) -> bool {
        self.default
    }

    fn loaded_on(&self, parent: &Obj<P>) -> bool {
        let def = self.rel.def();
        parent.with_value_mut(|v| match &def.slot {
            Slot::Many(f) => f(v).is_loaded(),
            Slot::One(f) => f(v).is_loaded(),
            Slot::WriteOnly(_) => true,
        })
    }

    fn apply_joined<'a>(
        &'a self,
        s: &'a mut dyn Context,
        parents: &'a [Obj<P>],
        rows: &'a [tokio_postgres::Row],
        offset: usize,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let def = self.rel.def();
            let mut per_parent: HashMap<usize, Vec<Obj<C>>> = HashMap::default();
            // (parent, child) pairs seen: a joined collection repeats neither.
            let mut pairs = HashSet::default();
            let mut order = Vec::new();
            let pk = row_positions(C::TABLE, &cols_or_pk(None, C::TABLE))?;
            for (parent, row) in parents.iter().zip(rows) {
                let list = per_parent
                    .entry(Arc::as_ptr(&parent.0) as usize)
                    .or_default();
                let present = pk.iter().all(|i| {
                    row.try_get::<_, RawKey>(offset + i)
                        .is_ok_and(|k| k.0.is_some())
                });
                if !present {
                    continue;
                }
                let child = crate::state::identify::<C>(s, &Row(row.clone()), offset, None)?;
                if pairs.insert((
                    Arc::as_ptr(&parent.0) as usize,
                    Arc::as_ptr(&child.0) as usize,
                )) {
                    list.push(child.clone());
                }
                order.push(child);
            }
            let unique_parents = crate::state::unique(parents.to_vec());
            let mut groups: HashMap<Key, Vec<Obj<C>>> = HashMap::default();
            let mut keys = Vec::with_capacity(unique_parents.len());
            for (i, p) in unique_parents.iter().enumerate() {
                // A synthetic per-parent key: the join already paired rows with parents.
                let key = Key::from_slice(&(i as u64).to_le_bytes());
                if let Some(list) = per_parent.remove(&(Arc::as_ptr(&p.0) as usize)) {
                    groups.insert(key.clone(), list);
                }
                keys.push(Some(key));
            }
            let _ = def;
            self.assign(&unique_parents, &keys, &groups);
            let children = distinct(&groups, &order);
            run_level(s, &children, &self.then).await
        })
    }
}

impl<P: Model, C: Model> LoadOpt<P, C> {
    fn chunk_statement(&self, keys: &[Vec<Bind>]) -> Result<(Arc<str>, Vec<Bind>)> {
        let def = self.rel.def();
        let c_name = C::TABLE.name;
        // The option's ordering replaces the relationship's own.
        let orders: Vec<Order> = if self.order.is_empty() {
            def.order_by
                .iter()
                .map(|(col, desc)| column_order(c_name, col, *desc))
                .collect()
        } else {
            self.order.clone()
        };
        let mut q = select(All::<C>::new());
        if let Some(plan) = self.child_plan()? {
            q.set_columns(C::TABLE.columns, plan.indexes);
        }
        match &def.secondary {
            Some(sec) => {
                let st = (sec.table)();
                let link_col = *sec
                    .local
                    .first()
                    .ok_or_else(|| Error::invalid("many-to-many link without columns"))?;
                if sec.local.len() != 1 {
                    return Err(Error::invalid(format!(
                        "`{}`: many-to-many loading supports single-column keys",
                        def.path
                    )));
                }
                let target_pk = cols_or_pk(def.remote, C::TABLE);
                let mut on: Option<Node> = None;
                for (l, r) in sec.remote.iter().zip(&target_pk) {
                    let eq = Node::Binary(
                        "=",
                        Box::new(Node::Column {
                            table: st.name,
                            name: l,
                        }),
                        Box::new(Node::Column {
                            table: c_name,
                            name: r,
                        }),
                    );
                    on = Some(match on {
                        Some(prev) => Node::Binary("AND", Box::new(prev), Box::new(eq)),
                        None => eq,
                    });
                }
                // The link column comes after the target's columns: it groups the rows.
                let li = st.column_index(link_col).ok_or_else(|| {
                    Error::invalid(format!("no column `{link_col}` in `{}`", st.name))
                })?;
                q.add_joined(
                    st.name,
                    st.name,
                    on.unwrap_or(Node::Raw("true")),
                    &st.columns[li..=li],
                );
                q = q.filter(Expr::from_node(crate::sql::key_condition(
                    st.name, sec.local, keys,
                )));
            }
            None => {
                let remote = cols_or_pk(def.remote, C::TABLE);
                q = q.filter(Expr::from_node(crate::sql::key_condition(
                    c_name, &remote, keys,
                )));
            }
        }
        if let Some(f) = &self.filter {
            q = q.filter(Expr::from_node(f.clone()));
        }
        for o in orders {
            q = q.order_by(o);
        }
        let (sql, binds) = q.compile()?;
        let compiled = (to_arc(sql), binds.into_owned());
        Ok(compiled)
    }
}

/// Runs one level: the options of `load`, plus the relationships' own defaults (or the
/// wildcard) for those no option names, all in one pipelined batch.
pub(crate) async fn run_level<P: Model>(
    s: &mut dyn Context,
    parents: &[Obj<P>],
    load: &Load<P>,
) -> Result<()> {
    if parents.is_empty() {
        return Ok(());
    }
    let covered: Vec<&'static str> = load.steps.iter().map(|s| s.rel_path()).collect();
    let mut steps = load.steps.clone();
    steps.extend(default_steps::<P>(&covered, load.raise_all));
    run_steps(s, parents, &steps).await
}

/// Runs one level of options on `parents`: raise/noload marks, then every selectin statement
/// of the level in one pipelined batch, then each option's next level. Default options only
/// see parents whose slot is not loaded.
pub(crate) async fn run_steps<P: Model>(
    s: &mut dyn Context,
    parents: &[Obj<P>],
    steps: &[Arc<dyn Step<P>>],
) -> Result<()> {
    if steps.is_empty() || parents.is_empty() {
        return Ok(());
    }
    let mut batch = Vec::new();
    let mut prepared = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let own: std::borrow::Cow<'_, [Obj<P>]> = if step.is_default() {
            parents
                .iter()
                .filter(|p| !step.loaded_on(p))
                .cloned()
                .collect::<Vec<_>>()
                .into()
        } else {
            parents.into()
        };
        if own.is_empty() {
            continue;
        }
        match step.strategy() {
            Strategy::ContainsEager => {
                return Err(Error::invalid(format!(
                    "contains_eager(`{}`) reads the statement's own join: give it to \
                     select(..).options(), at the first level",
                    step.rel_path()
                )));
            }
            Strategy::Raise | Strategy::NoLoad => step.mark(&own),
            Strategy::Selectin | Strategy::Joined => {
                let p = step.statements(s, &own)?;
                batch.extend(p.stmts.iter().cloned());
                prepared.push((i, p, own));
            }
        }
    }
    let rows = if batch.is_empty() {
        Vec::new()
    } else {
        s.connection().await?.run_pipelined(&batch).await?
    };
    let mut rows = rows.into_iter();
    for (i, p, own) in prepared {
        let n = p.stmts.len();
        let mine: Vec<_> = rows.by_ref().take(n).collect();
        steps[i].apply(s, &own, p, mine).await?;
    }
    Ok(())
}

/// Small helper: apply a closure to a borrowed value.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// The options a model's relationships ask for by default (`lazy = "selectin"` …), except
/// those already `covered` by explicit options.
pub(crate) fn default_steps<M: Model>(
    covered: &[&'static str],
    raise_all: bool,
) -> Vec<Arc<dyn Step<M>>> {
    struct Defaults<'a, M: Model> {
        covered: &'a [&'static str],
        raise_all: bool,
        out: Vec<Arc<dyn Step<M>>>,
    }
    impl<M: Model> RelVisitor<M> for Defaults<'_, M> {
        fn visit<C: Model>(&mut self, rel: Rel<M, C>) {
            use crate::schema::Lazy;
            if self.covered.contains(&rel.def().path) {
                return;
            }
            let strategy = match rel.def().lazy {
                Lazy::WriteOnly => return,
                _ if self.raise_all => Strategy::Raise,
                Lazy::Selectin | Lazy::Joined => Strategy::Selectin,
                Lazy::Raise => Strategy::Raise,
                Lazy::NoLoad => Strategy::NoLoad,
                Lazy::Explicit => return,
            };
            let mut o = opt(rel, strategy);
            o.default = true;
            self.out.push(Arc::new(o));
        }
    }
    let mut v = Defaults {
        covered,
        raise_all,
        out: Vec::new(),
    };
    M::visit_relations(&mut v);
    v.out
}

/// The first option whose relationship is declared `lazy = "raise"`.
pub(crate) fn raise_declared<M: Model>(load: &Load<M>) -> Option<&'static str> {
    load.steps
        .iter()
        .find(|s| s.declared_raise() && s.strategy() != Strategy::Raise)
        .map(|s| s.rel_path())
}

//! Column deferral: [`Deferred`] fields and the `defer` / `undefer` / `load_only` options.
//!
//! A column whose field is `Deferred<T>` is left out of `select(Model::ALL)` (SQLAlchemy's
//! `deferred()` mapping): reading it before it is loaded is a typed not-loaded error and runs
//! no SQL. Query options choose the columns per statement, and
//! [`AsyncSession::load`](crate::AsyncSession::load) loads them afterwards for many objects in
//! one statement.

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::row::Columns;
use crate::schema::{Model, TableDef};
use crate::sql::{All, Bind, Column, ColumnList, Expr, SqlType, Statement, select};
use crate::state::{Context, Key, Obj};

/// A column field that is loaded only when asked for (large text, blobs, rarely read JSON).
///
/// ```no_run
/// use aludel::{Generated, Deferred, Model, select, load::undefer};
///
/// #[derive(Model, Clone, Debug)]
/// #[aludel(table = "books")]
/// struct Book {
///     #[aludel(primary_key, identity)]
///     id: Generated<i64>,
///     title: String,
///     summary: Deferred<String>,
/// }
///
/// # async fn demo(s: &mut aludel::AsyncSession) -> aludel::Result<()> {
/// let books = s.scalars(&select(Book::ALL)).await?;          // SELECT id, title
/// assert!(books[0].read()?.summary.get().unwrap_err().is_not_loaded());
/// s.load(&books, undefer(Book::summary)).await?;             // one SELECT for all of them
/// let text = books[0].read()?.summary.get()?.clone();
/// # let _ = text;
/// let with_summary = s
///     .scalars(&select(Book::ALL).options(undefer(Book::summary)))
///     .await?;                                               // SELECT id, title, summary
/// # let _ = with_summary; Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Deferred<T> {
    state: State<T>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum State<T> {
    Loaded(T),
    NotLoaded { column: &'static str, raise: bool },
}

impl<T> Deferred<T> {
    /// A loaded value (how new objects are built).
    pub const fn new(value: T) -> Self {
        Deferred {
            state: State::Loaded(value),
        }
    }

    /// The not-loaded state; `column` names it in errors (`"books.summary"`).
    #[doc(hidden)]
    pub const fn not_loaded(column: &'static str, raise: bool) -> Self {
        Deferred {
            state: State::NotLoaded { column, raise },
        }
    }

    /// The value.
    ///
    /// # Errors
    /// `is_not_loaded()` when the column was not loaded; no SQL runs.
    pub fn get(&self) -> Result<&T> {
        match &self.state {
            State::Loaded(v) => Ok(v),
            State::NotLoaded { column, raise } => Err(Error::column_not_loaded(column, *raise)),
        }
    }

    /// The value, mutably (through `obj.write()`, so the change is flushed).
    ///
    /// # Errors
    /// `is_not_loaded()` when the column was not loaded.
    pub fn get_mut(&mut self) -> Result<&mut T> {
        match &mut self.state {
            State::Loaded(v) => Ok(v),
            State::NotLoaded { column, raise } => Err(Error::column_not_loaded(column, *raise)),
        }
    }

    /// Replaces the value, loaded or not (a write needs no read: the flush updates it).
    pub fn set(&mut self, value: T) {
        self.state = State::Loaded(value);
    }

    /// Whether the value is loaded.
    pub fn is_loaded(&self) -> bool {
        matches!(self.state, State::Loaded(_))
    }

    /// The value when loaded.
    pub fn loaded(&self) -> Option<&T> {
        match &self.state {
            State::Loaded(v) => Some(v),
            State::NotLoaded { .. } => None,
        }
    }

    /// The value, taken out.
    ///
    /// # Errors
    /// `is_not_loaded()` when the column was not loaded.
    pub fn into_inner(self) -> Result<T> {
        match self.state {
            State::Loaded(v) => Ok(v),
            State::NotLoaded { column, raise } => Err(Error::column_not_loaded(column, raise)),
        }
    }
}

impl<T: Default> Default for Deferred<T> {
    /// A loaded default value.
    fn default() -> Self {
        Deferred::new(T::default())
    }
}

impl<T> From<T> for Deferred<T> {
    fn from(value: T) -> Self {
        Deferred::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Loaded(v) => v.fmt(f),
            State::NotLoaded { .. } => f.write_str("<not loaded>"),
        }
    }
}

/// The bound value of a deferred field for an INSERT (the flush refuses not-loaded ones
/// before any SQL; NULL is never sent in their place).
#[doc(hidden)]
pub fn deferred_bind<T: SqlType + Clone>(field: &Deferred<T>) -> Bind {
    match field.loaded() {
        Some(v) => Bind::new(v.clone()),
        None => Bind::new(Option::<T>::None),
    }
}

/// The bound value of a `Deferred<Generated<T>>` field: `None` when not loaded or unset (an
/// INSERT leaves the column to the server).
#[doc(hidden)]
pub fn deferred_generated_bind<T: SqlType + Clone>(
    field: &Deferred<crate::schema::Generated<T>>,
) -> Option<Bind> {
    field.loaded().and_then(crate::schema::Generated::bind)
}

/// One column option.
#[derive(Debug, Clone)]
pub(crate) enum ColOpt {
    /// Leave the column out (`raise`: its error says so).
    Defer(&'static str, bool),
    /// Load a deferred column.
    Undefer(&'static str),
    /// Load only these columns (and the primary key); the rest must be `Deferred`.
    Only(Vec<&'static str>, bool),
    /// Load the deferred columns of a group.
    UndeferGroup(&'static str),
}

/// A column loading option for model `M`: [`defer`], [`undefer`], [`load_only`],
/// [`undefer_group`]. Combine with relationship options through `.and(...)`.
#[derive(Debug, Clone)]
pub struct ColumnOpt<M: Model> {
    pub(crate) opt: ColOpt,
    _m: std::marker::PhantomData<fn() -> M>,
}

impl<M: Model> ColumnOpt<M> {
    fn new(opt: ColOpt) -> Self {
        ColumnOpt {
            opt,
            _m: std::marker::PhantomData,
        }
    }

    /// Makes reading the left-out columns say `raiseload` (SQLAlchemy's
    /// `defer(col, raiseload=True)` / `load_only(…, raiseload=True)`).
    pub fn raiseload(mut self) -> Self {
        match &mut self.opt {
            ColOpt::Defer(_, r) | ColOpt::Only(_, r) => *r = true,
            ColOpt::Undefer(_) | ColOpt::UndeferGroup(_) => {}
        }
        self
    }

    /// Adds more options (column or relationship ones).
    pub fn and(self, other: impl Into<super::Load<M>>) -> super::Load<M> {
        super::Load::from(self).and(other)
    }
}

/// Leaves a `Deferred` column out of this statement (it is left out by default; this undoes
/// an `undefer` or `undefer_group` given earlier in the same options). With
/// [`AsyncSession::load`](crate::AsyncSession::load), which only loads, it does nothing.
pub fn defer<M: Model, T>(col: Column<M, T>) -> ColumnOpt<M> {
    ColumnOpt::new(ColOpt::Defer(col.name(), false))
}

/// Loads a `Deferred` column in this statement; with
/// [`AsyncSession::load`](crate::AsyncSession::load), loads it for objects in hand.
pub fn undefer<M: Model, T>(col: Column<M, T>) -> ColumnOpt<M> {
    ColumnOpt::new(ColOpt::Undefer(col.name()))
}

/// Loads the `Deferred` columns declared with `#[aludel(group = "…")]`.
pub fn undefer_group<M: Model>(group: &'static str) -> ColumnOpt<M> {
    ColumnOpt::new(ColOpt::UndeferGroup(group))
}

/// Loads only these columns and the primary key: `load_only((Book::id, Book::title))`.
/// Every column left out must be a `Deferred` field (a plain field has no not-loaded state):
/// the statement reports any other as an error, before running.
pub fn load_only<M: Model, L: ColumnList<M>>(cols: L) -> ColumnOpt<M> {
    ColumnOpt::new(ColOpt::Only(cols.names(), false))
}

/// What a statement selects of model `M` after its column options.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnPlan {
    /// Column indexes in table order.
    pub(crate) indexes: Vec<usize>,
    pub(crate) set: Columns,
}

impl ColumnPlan {
    /// The plan for a list of options on `t` (`None` when the options change nothing).
    pub(crate) fn build(t: &'static TableDef, opts: &[ColOpt]) -> Result<Option<ColumnPlan>> {
        if opts.is_empty() {
            return Ok(None);
        }
        let deferred: Vec<usize> = (0..t.columns.len())
            .filter(|&i| t.columns[i].deferred)
            .collect();
        let find = |name: &str| -> Result<usize> {
            t.column_index(name)
                .ok_or_else(|| Error::invalid(format!("no column `{name}` in `{}`", t.name)))
        };
        let bit = |idx: usize| deferred.iter().position(|&d| d == idx);
        let mut set = Columns::default();
        for opt in opts {
            match opt {
                ColOpt::Undefer(name) => {
                    let k = bit(find(name)?).ok_or_else(|| not_deferrable(t, name))?;
                    set.loaded |= 1 << k;
                    set.raise &= !(1 << k);
                }
                ColOpt::Defer(name, raise) => {
                    let k = bit(find(name)?).ok_or_else(|| not_deferrable(t, name))?;
                    set.loaded &= !(1 << k);
                    if *raise {
                        set.raise |= 1 << k;
                    } else {
                        set.raise &= !(1 << k);
                    }
                }
                ColOpt::UndeferGroup(group) => {
                    for (k, &i) in deferred.iter().enumerate() {
                        if t.columns[i].group == Some(*group) {
                            set.loaded |= 1 << k;
                            set.raise &= !(1 << k);
                        }
                    }
                }
                ColOpt::Only(names, raise) => {
                    let mut keep = Vec::with_capacity(names.len());
                    for n in names {
                        keep.push(find(n)?);
                    }
                    for (i, c) in t.columns.iter().enumerate() {
                        if keep.contains(&i) || c.primary_key {
                            if let Some(k) = bit(i) {
                                set.loaded |= 1 << k;
                                set.raise &= !(1 << k);
                            }
                        } else if let Some(k) = bit(i) {
                            set.loaded &= !(1 << k);
                            if *raise {
                                set.raise |= 1 << k;
                            }
                        } else {
                            return Err(Error::invalid(format!(
                                "load_only leaves out `{}.{}`, which is not a Deferred<_> field \
                                 (only Deferred columns can be left unloaded)",
                                t.name, c.name
                            )));
                        }
                    }
                }
            }
        }
        let indexes = (0..t.columns.len())
            .filter(|&i| match bit(i) {
                Some(k) => set.has(k),
                None => true,
            })
            .collect();
        Ok(Some(ColumnPlan { indexes, set }))
    }

    /// Deferred columns (by table index) this plan loads.
    pub(crate) fn loaded_deferred(&self, t: &TableDef) -> Vec<usize> {
        self.indexes
            .iter()
            .copied()
            .filter(|&i| t.columns[i].deferred)
            .collect()
    }
}

/// Loads deferred columns of objects in hand (`session.load(&objs, undefer(col))`): one
/// `SELECT pk, cols … WHERE pk = ANY($1)` for all objects that lack one of them (chunks
/// pipelined); objects that have them all cost nothing.
pub(crate) async fn load_columns<M: Model>(
    s: &mut dyn Context,
    objs: &[Obj<M>],
    opts: &[ColOpt],
) -> Result<()> {
    let t = M::TABLE;
    let Some(plan) = ColumnPlan::build(t, opts)? else {
        return Ok(());
    };
    let wanted = plan.loaded_deferred(t);
    if wanted.is_empty() {
        return Ok(());
    }
    let pk: Vec<usize> = (0..t.columns.len())
        .filter(|&i| t.columns[i].primary_key)
        .collect();
    let pk_names: Vec<&'static str> = pk.iter().map(|&i| t.columns[i].name).collect();
    let mut by_key: HashMap<Key, Vec<Obj<M>>> = HashMap::new();
    let mut keys: Vec<Vec<Bind>> = Vec::new();
    for o in objs {
        let missing = o
            .read()?
            .pipe_ref(|v| wanted.iter().any(|&i| v.column_value(i).is_none()));
        if !missing {
            continue;
        }
        let binds = o.erased().pk_binds();
        let list = by_key.entry(o.erased().key()).or_default();
        if list.is_empty() {
            keys.push(binds);
        }
        if !list.iter().any(|x| Obj::ptr_eq(x, o)) {
            list.push(o.clone());
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    // Primary key first, then the wanted columns.
    let mut idx = pk.clone();
    idx.extend(&wanted);
    let mut stmts = Vec::new();
    for chunk in keys.chunks(super::strategy::CHUNK) {
        let mut q = select(All::<M>::new()).filter(Expr::from_node(crate::sql::key_condition(
            t.name, &pk_names, chunk,
        )));
        q.set_columns(t.columns, idx.clone());
        let (sql, binds) = q.compile()?;
        stmts.push((super::exec::to_arc(sql), binds.into_owned()));
    }
    let results = s.connection().await?.run_pipelined(&stmts).await?;
    let key_pos: Vec<usize> = (0..pk.len()).collect();
    for row in results.iter().flatten() {
        let Some(key) = super::exec::row_key(row, &key_pos) else {
            continue;
        };
        let Some(found) = by_key.remove(&key) else {
            continue;
        };
        for (n, &i) in wanted.iter().enumerate() {
            let crate::row::RawSlice(raw) = row
                .try_get(pk.len() + n)
                .map_err(|e| Error::decode(t.columns[i].name, e))?;
            for o in &found {
                o.fill_column(i, raw)?;
            }
        }
    }
    if !by_key.is_empty() {
        return Err(Error::row_gone(t.name));
    }
    Ok(())
}

trait PipeRef {
    fn pipe_ref<T>(&self, f: impl FnOnce(&Self) -> T) -> T {
        f(self)
    }
}
impl<T: ?Sized> PipeRef for T {}

fn not_deferrable(t: &TableDef, name: &str) -> Error {
    Error::invalid(format!(
        "`{}.{name}` is not a Deferred<_> field: it is always loaded",
        t.name
    ))
}

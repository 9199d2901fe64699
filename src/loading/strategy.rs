//! Loading options: what to load (`selectin`, `joined`, `contains_eager`, `raise`,
//! `noload`, the `raiseload_all` wildcard) and how to chain them. How they run is in
//! `exec.rs`.

use std::sync::Arc;

use super::exec::Step;
use crate::schema::Model;
use crate::sql::{Expr, Node, Order};
use crate::state::Rel;

/// Parent keys per statement of a selectin load, by default. The keys travel as one array
/// parameter, so there is no placeholder limit to stay under (SQLAlchemy's reason for 500):
/// a level of up to 10,000 parents is one statement; beyond that, chunks are pipelined.
pub(crate) const CHUNK: usize = 10_000;

/// How an option loads its relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    Selectin,
    Joined,
    Raise,
    NoLoad,
    /// Read from the statement's own join (`contains_eager`).
    ContainsEager,
}

/// One loading option: a relationship, a strategy, optional criteria and ordering, and the
/// options for the next level. Build with [`selectin`], [`joined`], [`raise`] or [`noload`].
pub struct LoadOpt<P: Model, C: Model> {
    pub(crate) rel: Rel<P, C>,
    pub(crate) strategy: Strategy,
    pub(crate) filter: Option<Node>,
    pub(crate) order: Vec<Order>,
    /// Options for the next level (relationships, columns, wildcard).
    pub(crate) then: Load<C>,
    pub(crate) chunk: usize,
    /// A relationship's own default (`lazy = …`, or a wildcard): applies only to parents
    /// whose slot is not loaded yet, so cycles of defaults end.
    pub(crate) default: bool,
    /// `contains_eager`: the name the target goes by in the statement (alias or table).
    pub(crate) source: Option<&'static str>,
}

impl<P: Model, C: Model> std::fmt::Debug for LoadOpt<P, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOpt")
            .field("rel", &self.rel)
            .field("strategy", &self.strategy)
            .field("then", &self.then)
            .finish()
    }
}

pub(super) fn opt<P: Model, C: Model>(rel: Rel<P, C>, strategy: Strategy) -> LoadOpt<P, C> {
    LoadOpt {
        rel,
        strategy,
        filter: None,
        order: Vec::new(),
        then: Load::default(),
        chunk: CHUNK,
        default: false,
        source: None,
    }
}

/// Loads the relationship with one extra query per level: `WHERE fk = ANY($1)` over the
/// parents' keys (one array parameter; 10,000 keys per statement), whatever the number of
/// parents. The recommended
/// strategy for collections.
///
/// ```no_run
/// # use aludel::{select, load::selectin, Model, Many, One};
/// # #[derive(Model, Clone, Debug)] #[aludel(table = "users")]
/// # struct User { #[aludel(primary_key)] id: i64,
/// #   #[aludel(one_to_many(fk = Post::user_id))] posts: Many<Post> }
/// # #[derive(Model, Clone, Debug)] #[aludel(table = "posts")]
/// # struct Post { #[aludel(primary_key)] id: i64, #[aludel(references = "User::id")] user_id: i64,
/// #   published: bool, #[aludel(one_to_many(fk = Comment::post_id))] comments: Many<Comment> }
/// # #[derive(Model, Clone, Debug)] #[aludel(table = "comments")]
/// # struct Comment { #[aludel(primary_key)] id: i64, #[aludel(references = "Post::id")] post_id: i64 }
/// # async fn demo(s: &mut aludel::AsyncSession) -> aludel::Result<()> {
/// // users, their published posts (newest first) and each post's comments: 3 statements
/// let users = s
///     .scalars(&select(User::ALL).options(
///         selectin(User::posts)
///             .filter(Post::published.eq(true))
///             .order_by(Post::id.desc())
///             .then(selectin(Post::comments)),
///     ))
///     .await?;
/// for post in users[0].read()?.posts.get()? {
///     let n = post.read()?.comments.len()?;
/// #   let _ = n;
/// }
/// # Ok(()) }
/// ```
pub fn selectin<P: Model, C: Model>(rel: Rel<P, C>) -> LoadOpt<P, C> {
    opt(rel, Strategy::Selectin)
}

/// Loads the relationship in the parent query with a `LEFT OUTER JOIN` (one statement;
/// parents de-duplicated). Recommended for many-to-one. A joined *collection* on a query
/// with LIMIT/OFFSET/DISTINCT, a many-to-many, or a joined option below the first level
/// loads by [`selectin`] instead, so LIMIT always counts parents.
pub fn joined<P: Model, C: Model>(rel: Rel<P, C>) -> LoadOpt<P, C> {
    opt(rel, Strategy::Joined)
}

/// Fills the relationship from the statement's own join instead of loading it (SQLAlchemy's
/// `contains_eager`): the related table's columns are added to the select list, read from
/// the table (or [`LoadOpt::from_alias`]) the query joins. What the join and the WHERE clause
/// keep is what the collection holds, so a filtered join is a filtered eager load:
///
/// ```no_run
/// # use aludel::{load::contains_eager, select, Model, Many};
/// # #[derive(Model, Clone, Debug)] #[aludel(table = "users")]
/// # struct User { #[aludel(primary_key)] id: i64,
/// #   #[aludel(one_to_many(fk = Post::user_id))] posts: Many<Post> }
/// # #[derive(Model, Clone, Debug)] #[aludel(table = "posts")]
/// # struct Post { #[aludel(primary_key)] id: i64, #[aludel(references = "User::id")] user_id: i64,
/// #   published: bool }
/// # async fn demo(s: &mut aludel::AsyncSession) -> aludel::Result<()> {
/// // users with their published posts only, in one statement
/// let users = s
///     .scalars(
///         &select(User::ALL)
///             .join_related::<Post>()
///             .filter(Post::published.eq(true))
///             .options(contains_eager(User::posts)),
///     )
///     .await?;
/// # let _ = users; Ok(()) }
/// ```
pub fn contains_eager<P: Model, C: Model>(rel: Rel<P, C>) -> LoadOpt<P, C> {
    opt(rel, Strategy::ContainsEager)
}

/// Marks the relationship so reading it is an error that says it is not available due to
/// `lazy="raise"`; nothing is loaded (for tests that prove no extra SQL runs).
pub fn raise<P: Model, C: Model>(rel: Rel<P, C>) -> LoadOpt<P, C> {
    opt(rel, Strategy::Raise)
}

/// Marks the relationship as loaded and empty, without SQL.
pub fn noload<P: Model, C: Model>(rel: Rel<P, C>) -> LoadOpt<P, C> {
    opt(rel, Strategy::NoLoad)
}

impl<P: Model, C: Model> LoadOpt<P, C> {
    /// For [`contains_eager`]: the statement joins the related table under this alias.
    pub fn from_alias(mut self, alias: &crate::sql::Alias<C>) -> Self {
        self.source = Some(alias.name);
        self
    }

    /// Loads only the related rows matching `cond` (SQLAlchemy's `rel.and_(…)`).
    pub fn filter(mut self, cond: Expr<bool>) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(prev) => Node::Binary("AND", Box::new(prev), Box::new(cond.node)),
            None => cond.node,
        });
        self
    }

    /// Orders each parent's related objects (instead of the relationship's own `order_by`).
    pub fn order_by(mut self, order: Order) -> Self {
        self.order.push(order);
        self
    }

    /// Parent keys per selectin statement (default 10,000; SQLAlchemy uses 500). The chunks
    /// of one level are sent pipelined, in one round trip.
    pub fn chunk_size(mut self, keys: usize) -> Self {
        self.chunk = keys.max(1);
        self
    }

    /// Options for the next level: `selectin(User::posts).then(joined(Post::author))`.
    /// Call it several times for sibling relationships of the next level. Column options
    /// (`undefer(Post::body)`) and [`raiseload_all`] apply to the related objects too.
    pub fn then(mut self, next: impl Into<Load<C>>) -> Self {
        self.then = std::mem::take(&mut self.then).and(next);
        self
    }

    /// Several options on the same parents: `selectin(User::posts).and(selectin(User::followers))`.
    /// Sibling selectin loads are sent together: one round trip for the level.
    pub fn and(self, other: impl Into<Load<P>>) -> Load<P> {
        Load::from(self).and(other)
    }
}

/// A set of loading options for objects of `M` (see [`LoadOpt::and`]).
pub struct Load<M: Model> {
    pub(crate) steps: Vec<Arc<dyn Step<M>>>,
    /// Column options (`defer`, `undefer`, `load_only`), in the order given.
    pub(crate) cols: Vec<super::deferred::ColOpt>,
    /// `raiseload("*")`: every relationship no option names raises, whatever its `lazy`.
    pub(crate) raise_all: bool,
}

impl<M: Model> Clone for Load<M> {
    fn clone(&self) -> Self {
        Load {
            steps: self.steps.clone(),
            cols: self.cols.clone(),
            raise_all: self.raise_all,
        }
    }
}

impl<M: Model> std::fmt::Debug for Load<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.steps.iter().map(|s| s.rel_path()).collect();
        f.debug_struct("Load")
            .field("relationships", &names)
            .field("columns", &self.cols)
            .field("raise_all", &self.raise_all)
            .finish()
    }
}

impl<M: Model> Default for Load<M> {
    fn default() -> Self {
        Load {
            steps: Vec::new(),
            cols: Vec::new(),
            raise_all: false,
        }
    }
}

/// SQLAlchemy's `raiseload("*")`: every relationship of these objects that no other option
/// names is marked so reading it says `lazy="raise"`, whatever its declared `lazy`
/// (`select(User::ALL).options(selectin(User::posts).and(raiseload_all()))`). Under
/// [`LoadOpt::then`] it applies to the related objects of that level.
pub fn raiseload_all<M: Model>() -> Load<M> {
    Load {
        raise_all: true,
        ..Load::default()
    }
}

impl<M: Model> Load<M> {
    /// Adds more options.
    pub fn and(mut self, other: impl Into<Load<M>>) -> Self {
        let other = other.into();
        self.steps.extend(other.steps);
        self.cols.extend(other.cols);
        self.raise_all |= other.raise_all;
        self
    }
}

impl<P: Model, C: Model> From<LoadOpt<P, C>> for Load<P> {
    fn from(o: LoadOpt<P, C>) -> Self {
        Load {
            steps: vec![Arc::new(o)],
            ..Load::default()
        }
    }
}

impl<M: Model> From<super::deferred::ColumnOpt<M>> for Load<M> {
    fn from(o: super::deferred::ColumnOpt<M>) -> Self {
        Load {
            cols: vec![o.opt],
            ..Load::default()
        }
    }
}

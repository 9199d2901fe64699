//! A generic async CRUD repository: a thin layer over a session, not a second way to the
//! database.

use std::marker::PhantomData;

use super::{AsyncSession, Obj, PrimaryKey};
use crate::error::Result;
use crate::schema::Model;
use crate::sql::{All, Column, ColumnType, Expr, IntoExpr, Order, SqlType, count_star, select};

/// CRUD over one model, borrowing a session: `session.repo::<User>()`.
///
/// ```no_run
/// # #[derive(aludel::Model, Clone)] #[aludel(table = "users")]
/// # struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i32>, name: String }
/// # async fn demo(s: &mut aludel::AsyncSession) -> aludel::Result<()> {
/// use aludel::session::ListOptions;
/// let page = s
///     .repo::<User>()
///     .list(ListOptions::new().filter(User::name.starts_with("a")).order_by(User::id.asc()).limit(20))
///     .await?;
/// println!("{} of {}", page.items.len(), page.total);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Repository<'s, M> {
    session: &'s mut AsyncSession,
    _m: PhantomData<fn() -> M>,
}

/// Filters, ordering and paging for [`Repository::list`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    filter: Option<Expr<bool>>,
    order: Vec<Order>,
    limit: Option<i64>,
    offset: Option<i64>,
}

impl ListOptions {
    /// No filter, no order, no limit.
    pub fn new() -> Self {
        ListOptions::default()
    }
    /// Adds a filter (AND-ed with earlier ones).
    pub fn filter(mut self, cond: Expr<bool>) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(prev) => prev.and(cond),
            None => cond,
        });
        self
    }
    /// Adds an ordering.
    pub fn order_by(mut self, o: Order) -> Self {
        self.order.push(o);
        self
    }
    /// At most `n` items.
    pub fn limit(mut self, n: i64) -> Self {
        self.limit = Some(n);
        self
    }
    /// Skip `n` items.
    pub fn offset(mut self, n: i64) -> Self {
        self.offset = Some(n);
        self
    }
}

/// One page of a listing and the total count over the same filter.
#[derive(Debug)]
pub struct Page<M: Model> {
    /// The page's objects.
    pub items: Vec<Obj<M>>,
    /// How many rows match the filter in all.
    pub total: i64,
}

/// One page of a keyset (cursor) listing.
#[derive(Debug)]
pub struct KeysetPage<M: Model, K> {
    /// The page's objects, ordered by the key.
    pub items: Vec<Obj<M>>,
    /// The cursor for the next page (`None` on the last page).
    pub next: Option<K>,
}

impl AsyncSession {
    /// A CRUD repository for `M` over this session.
    pub fn repo<M: Model>(&mut self) -> Repository<'_, M> {
        Repository {
            session: self,
            _m: PhantomData,
        }
    }
}

impl<M: Model> Repository<'_, M> {
    /// By primary key (identity map first).
    pub async fn get(&mut self, pk: impl PrimaryKey) -> Result<Option<Obj<M>>> {
        self.session.get::<M>(pk).await
    }

    /// Many by a single-column key, in one query (`= ANY($1)`).
    pub async fn get_many<F>(
        &mut self,
        key: Column<M, F>,
        values: Vec<F::Base>,
    ) -> Result<Vec<Obj<M>>>
    where
        F: ColumnType,
        Vec<F::Base>: SqlType,
    {
        self.session
            .scalars(&select(All::<M>::new()).filter(key.in_list(values)))
            .await
    }

    /// A filtered, ordered page with the total count.
    pub async fn list(&mut self, opts: ListOptions) -> Result<Page<M>> {
        let mut q = select(All::<M>::new());
        let mut c = select(count_star()).from::<M>();
        if let Some(f) = opts.filter {
            q = q.filter(f.clone());
            c = c.filter(f);
        }
        for o in opts.order {
            q = q.order_by(o);
        }
        if let Some(n) = opts.limit {
            q = q.limit(n);
        }
        if let Some(n) = opts.offset {
            q = q.offset(n);
        }
        let items = self.session.scalars(&q).await?;
        let total = self.session.one(&c).await?;
        Ok(Page { items, total })
    }

    /// Keyset pagination on a unique, ordered column: the `limit` rows after `after`, and the
    /// cursor for the next page, read from the last item by `cursor`.
    ///
    /// ```no_run
    /// # #[derive(aludel::Model)] #[aludel(table = "users")]
    /// # struct User { #[aludel(primary_key, identity)] id: aludel::Generated<i32> }
    /// # async fn demo(s: &mut aludel::AsyncSession) -> aludel::Result<()> {
    /// let mut after = None;
    /// loop {
    ///     let page = s.repo::<User>().list_after(User::id, after, 100, None, |u| u.id.cloned().unwrap_or_default()).await?;
    ///     // … use page.items …
    ///     match page.next { Some(next) => after = Some(next), None => break }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_after<F, K>(
        &mut self,
        key: Column<M, F>,
        after: Option<K>,
        limit: i64,
        filter: Option<Expr<bool>>,
        cursor: impl Fn(&M) -> K,
    ) -> Result<KeysetPage<M, K>>
    where
        F: ColumnType,
        K: IntoExpr<F::Base>,
    {
        let mut q = select(All::<M>::new()).order_by(key.asc()).limit(limit);
        if let Some(f) = filter {
            q = q.filter(f);
        }
        if let Some(a) = after {
            q = q.filter(key.gt(a));
        }
        let items = self.session.scalars(&q).await?;
        let next = match items.last() {
            Some(last) if items.len() as i64 == limit => Some(cursor(&*last.read()?)),
            _ => None,
        };
        Ok(KeysetPage { items, next })
    }

    /// How many rows match.
    pub async fn count(&mut self, filter: Option<Expr<bool>>) -> Result<i64> {
        let mut c = select(count_star()).from::<M>();
        if let Some(f) = filter {
            c = c.filter(f);
        }
        self.session.one(&c).await
    }

    /// Whether any row matches.
    pub async fn exists(&mut self, filter: Expr<bool>) -> Result<bool> {
        Ok(self.count(Some(filter)).await? > 0)
    }

    /// Adds a new object and flushes it (its key and defaults are filled in).
    pub async fn create(&mut self, value: M) -> Result<Obj<M>> {
        let obj = Obj::new(value);
        self.session.add(&obj)?;
        self.session.flush().await?;
        Ok(obj)
    }

    /// Flushes changes made to `obj` through `write()`.
    pub async fn update(&mut self, _obj: &Obj<M>) -> Result<()> {
        self.session.flush().await
    }

    /// Deletes `obj` and flushes.
    pub async fn delete(&mut self, obj: &Obj<M>) -> Result<()> {
        self.session.delete(obj)?;
        self.session.flush().await
    }
}

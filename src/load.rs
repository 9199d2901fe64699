//! Loading options: relationship strategies (`selectin`, `joined`, `contains_eager`,
//! `raise`, `noload`) and column options (`defer`, `undefer`, `load_only` …), passed to
//! [`Select::options`](crate::query::Select::options) or [`AsyncSession::load`](crate::AsyncSession::load).

pub use crate::loading::{
    ColumnOpt, Load, LoadOpt, Loading, contains_eager, defer, joined, load_only, noload, raise,
    raiseload_all, selectin, undefer, undefer_group,
};

//! SQL functions: aggregates (`count`, `sum`, `max` …), window functions (`row_number`,
//! `rank` … with [`Window`]), `coalesce`, and [`call`] for any
//! other function by name.

pub use crate::sql::func as call;
pub use crate::sql::{
    AnyExpr, Window, avg, coalesce, count, count_star, dense_rank, max, min, rank, row_number, sum,
};

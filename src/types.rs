//! Column types: the [`SqlType`] trait every bound value implements, its
//! [`Bind`] carrier, custom and JSON types.

pub use crate::sql::{ColumnType, CustomType};
pub use crate::value::{Bind, SqlType};
/// A JSON value stored as jsonb, (de)serialized with serde (feature `json`).
#[cfg(feature = "json")]
pub use tokio_postgres::types::Json;

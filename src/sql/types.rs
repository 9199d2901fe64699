//! Column types from optional crates, each behind a feature: `json`, `uuid`, `chrono`, `time`,
//! `decimal`. Each type binds as one PostgreSQL type, compares with itself, reads from rows,
//! and has an array form (`Vec<T>`).

#[allow(unused_imports)]
use tokio_postgres::types::Type;

#[allow(unused_imports)]
use super::expr::{ColumnType, IntoExpr, Node};
#[allow(unused_imports)]
use super::{Bind, SqlType};
#[allow(unused_imports)]
use crate::row::{FromRow, Row};

/// Implements everything a column type needs, for one concrete type.
#[allow(unused_macros)]
macro_rules! column_type {
    ($t:ty => $pg:expr, $arr:expr) => {
        impl SqlType for $t {
            fn sql_type() -> Type {
                $pg
            }
        }
        impl SqlType for Vec<$t> {
            fn sql_type() -> Type {
                $arr
            }
        }
        impl ColumnType for $t {
            type Base = $t;
        }
        impl ColumnType for Option<$t> {
            type Base = $t;
        }
        impl ColumnType for Vec<$t> {
            type Base = Vec<$t>;
        }
        impl ColumnType for Option<Vec<$t>> {
            type Base = Vec<$t>;
        }
        impl IntoExpr<$t> for $t {
            fn into_node(self) -> Node {
                Node::Bind(Bind::new(self))
            }
        }
        impl IntoExpr<Option<$t>> for $t {
            fn into_node(self) -> Node {
                Node::Bind(Bind::new(Some(self)))
            }
        }
        impl IntoExpr<Option<$t>> for Option<$t> {
            fn into_node(self) -> Node {
                Node::Bind(Bind::new(self))
            }
        }
        impl IntoExpr<Vec<$t>> for Vec<$t> {
            fn into_node(self) -> Node {
                Node::Bind(Bind::new(self))
            }
        }
        impl FromRow for $t {
            #[inline]
            fn from_row_at(row: &Row, offset: usize) -> crate::Result<Self> {
                row.get(offset)
            }
            fn column_count() -> usize {
                1
            }
        }
        impl crate::row::FromRowOpt for $t {
            #[inline]
            fn from_row_opt_at(row: &Row, offset: usize) -> crate::Result<Option<Self>> {
                row.get(offset)
            }
            fn opt_column_count() -> usize {
                1
            }
        }
        impl crate::row::FromRowOpt for Vec<$t> {
            #[inline]
            fn from_row_opt_at(row: &Row, offset: usize) -> crate::Result<Option<Self>> {
                row.get(offset)
            }
            fn opt_column_count() -> usize {
                1
            }
        }
        impl FromRow for Vec<$t> {
            #[inline]
            fn from_row_at(row: &Row, offset: usize) -> crate::Result<Self> {
                row.get(offset)
            }
            fn column_count() -> usize {
                1
            }
        }
    };
}

#[cfg(feature = "uuid")]
column_type!(uuid::Uuid => Type::UUID, Type::UUID_ARRAY);

#[cfg(feature = "decimal")]
column_type!(rust_decimal::Decimal => Type::NUMERIC, Type::NUMERIC_ARRAY);

#[cfg(feature = "chrono")]
mod chrono_types {
    use super::*;
    column_type!(chrono::NaiveDate => Type::DATE, Type::DATE_ARRAY);
    column_type!(chrono::NaiveTime => Type::TIME, Type::TIME_ARRAY);
    column_type!(chrono::NaiveDateTime => Type::TIMESTAMP, Type::TIMESTAMP_ARRAY);
    column_type!(chrono::DateTime<chrono::Utc> => Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY);
}

#[cfg(feature = "time")]
mod time_types {
    use super::*;
    column_type!(time::Date => Type::DATE, Type::DATE_ARRAY);
    column_type!(time::Time => Type::TIME, Type::TIME_ARRAY);
    column_type!(time::PrimitiveDateTime => Type::TIMESTAMP, Type::TIMESTAMP_ARRAY);
    column_type!(time::OffsetDateTime => Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY);
}

#[cfg(feature = "json")]
mod json_types {
    use super::*;
    use tokio_postgres::types::Json;

    column_type!(serde_json::Value => Type::JSONB, Type::JSONB_ARRAY);

    impl<T> SqlType for Json<T>
    where
        T: serde::Serialize + std::fmt::Debug + Send + Sync + 'static,
    {
        fn sql_type() -> Type {
            Type::JSONB
        }
    }
    impl<T> ColumnType for Json<T>
    where
        T: serde::Serialize + std::fmt::Debug + Send + Sync + 'static,
    {
        type Base = Json<T>;
    }
    impl<T> ColumnType for Option<Json<T>>
    where
        T: serde::Serialize + std::fmt::Debug + Send + Sync + 'static,
    {
        type Base = Json<T>;
    }
    impl<T> IntoExpr<Json<T>> for Json<T>
    where
        T: serde::Serialize + std::fmt::Debug + Send + Sync + 'static,
    {
        fn into_node(self) -> Node {
            Node::Bind(Bind::new(self))
        }
    }
    impl<T> IntoExpr<Option<Json<T>>> for Option<Json<T>>
    where
        T: serde::Serialize + std::fmt::Debug + Send + Sync + 'static,
    {
        fn into_node(self) -> Node {
            Node::Bind(Bind::new(self))
        }
    }
    impl<T> FromRow for Json<T>
    where
        T: serde::de::DeserializeOwned,
    {
        fn from_row_at(row: &Row, offset: usize) -> crate::Result<Self> {
            row.get(offset)
        }
        fn column_count() -> usize {
            1
        }
    }

    impl<T> crate::row::FromRowOpt for Json<T>
    where
        T: serde::de::DeserializeOwned,
    {
        fn from_row_opt_at(row: &Row, offset: usize) -> crate::Result<Option<Self>> {
            row.get(offset)
        }
        fn opt_column_count() -> usize {
            1
        }
    }

    /// JSONB operators.
    impl<M, F: ColumnType> super::super::expr::Column<M, F> {
        /// `self -> key`: a member as JSONB.
        pub fn json_get(self, key: &'static str) -> super::super::expr::Expr<serde_json::Value> {
            super::super::expr::Expr::from_node(Node::Binary(
                "->",
                Box::new(self.node()),
                Box::new(Node::Bind(Bind::new(key))),
            ))
        }
        /// `self ->> key`: a member as text.
        pub fn json_get_text(self, key: &'static str) -> super::super::expr::Expr<Option<String>> {
            super::super::expr::Expr::from_node(Node::Binary(
                "->>",
                Box::new(self.node()),
                Box::new(Node::Bind(Bind::new(key))),
            ))
        }
        /// `self @> value`: JSONB containment.
        pub fn json_contains(self, value: serde_json::Value) -> super::super::expr::Expr<bool> {
            super::super::expr::Expr::from_node(Node::Binary(
                "@>",
                Box::new(self.node()),
                Box::new(Node::Bind(Bind::new(value))),
            ))
        }
    }
}

/// The declared type of a `#[derive(SqlEnum)]` enum: OID 0 lets the server resolve the real
/// type by name when a statement is prepared.
#[doc(hidden)]
pub fn enum_type(name: &'static str, labels: &[&'static str]) -> Type {
    let labels = labels.iter().map(|l| (*l).to_owned()).collect();
    Type::new(
        name.to_owned(),
        0,
        tokio_postgres::types::Kind::Enum(labels),
        String::new(),
    )
}

/// Writes an enum label (its binary form is its text).
#[doc(hidden)]
pub fn enum_to_sql(
    label: &str,
    out: &mut tokio_postgres::types::private::BytesMut,
) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
    out.extend_from_slice(label.as_bytes());
    Ok(tokio_postgres::types::IsNull::No)
}

/// The index of a label read from the server.
#[doc(hidden)]
pub fn enum_from_sql(
    raw: &[u8],
    labels: &[&'static str],
    type_name: &str,
) -> Result<usize, Box<dyn std::error::Error + Sync + Send>> {
    labels
        .iter()
        .position(|l| l.as_bytes() == raw)
        .ok_or_else(|| {
            format!(
                "`{}` is not a label of enum `{type_name}` known to this program",
                String::from_utf8_lossy(raw)
            )
            .into()
        })
}

/// A bound value as an expression node (for generated `IntoExpr` impls).
#[doc(hidden)]
pub fn bind_node<T: SqlType>(value: T) -> Node {
    Node::Bind(Bind::new(value))
}

/// Implemented by `#[derive(SqlEnum)]` and `#[derive(SqlNewtype)]`: a column type defined in
/// the user's crate. Gives nullable columns of it (`Option<T>`) their expression support
/// (orphan rules keep the derives from generating those impls).
pub trait CustomType: SqlType {}

impl<T: CustomType> ColumnType for Option<T> {
    type Base = T;
}

impl<T: CustomType> IntoExpr<Option<T>> for Option<T> {
    fn into_node(self) -> Node {
        Node::Bind(Bind::new(self))
    }
}

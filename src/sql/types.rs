//! Column types from optional crates, each behind a feature: `json`, `uuid`, `chrono`, `time`,
//! `decimal`. Each type binds as one PostgreSQL type, compares with itself, reads from rows,
//! and has an array form (`Vec<T>`).

use tokio_postgres::types::Type;

use super::expr::{ColumnType, Expr, IntoExpr, Node};
#[allow(unused_imports)]
use super::{Bind, SqlType};
use crate::row::{FromRow, FromRowOpt, Row};

/// What a column type needs beyond `SqlType`, for one type `$t` (a scalar, or an array
/// `Vec<…>`): nullable columns of it, comparisons with values, `Option` values and
/// expressions of it, and reading it from rows.
macro_rules! column_type {
    ($t:ty) => {
        impl ColumnType for $t {
            type Base = $t;
        }
        impl ColumnType for Option<$t> {
            type Base = $t;
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
        impl IntoExpr<Option<$t>> for Expr<$t> {
            fn into_node(self) -> Node {
                <Expr<$t> as IntoExpr<$t>>::into_node(self)
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
        impl FromRowOpt for $t {
            #[inline]
            fn from_row_opt_at(row: &Row, offset: usize) -> crate::Result<Option<Self>> {
                row.get(offset)
            }
            fn opt_column_count() -> usize {
                1
            }
        }
    };
}

/// [`column_type!`] for each type of a list (`$t => $pg, $arr;`, the format of
/// `value::builtin_types!`) and for its array.
macro_rules! column_types {
    ($($t:ty => $pg:expr, $arr:expr;)*) => {$(
        column_type!($t);
        column_type!(Vec<$t>);
    )*};
}

crate::value::builtin_types!(column_types);
column_type!(Vec<u8>);

/// A feature's column types: `SqlType` as the built-ins get it (`value::sql_types!`), and
/// the rest ([`column_types!`]).
#[allow(unused_macros)]
macro_rules! feature_types {
    ($($t:ty => $pg:expr, $arr:expr;)*) => {
        crate::value::sql_types! { $($t => $pg, $arr;)* }
        column_types! { $($t => $pg, $arr;)* }
    };
}

#[cfg(feature = "uuid")]
feature_types! { uuid::Uuid => Type::UUID, Type::UUID_ARRAY; }

#[cfg(feature = "decimal")]
feature_types! { rust_decimal::Decimal => Type::NUMERIC, Type::NUMERIC_ARRAY; }

#[cfg(feature = "chrono")]
mod chrono_types {
    use super::*;
    feature_types! { chrono::NaiveDate => Type::DATE, Type::DATE_ARRAY; }
    feature_types! { chrono::NaiveTime => Type::TIME, Type::TIME_ARRAY; }
    feature_types! { chrono::NaiveDateTime => Type::TIMESTAMP, Type::TIMESTAMP_ARRAY; }
    feature_types! { chrono::DateTime<chrono::Utc> => Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY; }
}

#[cfg(feature = "time")]
mod time_types {
    use super::*;
    feature_types! { time::Date => Type::DATE, Type::DATE_ARRAY; }
    feature_types! { time::Time => Type::TIME, Type::TIME_ARRAY; }
    feature_types! { time::PrimitiveDateTime => Type::TIMESTAMP, Type::TIMESTAMP_ARRAY; }
    feature_types! { time::OffsetDateTime => Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY; }
}

#[cfg(feature = "json")]
mod json_types {
    use super::*;
    use tokio_postgres::types::Json;

    feature_types! { serde_json::Value => Type::JSONB, Type::JSONB_ARRAY; }

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

/// What `#[derive(SqlEnum)]` and `#[derive(SqlNewtype)]` give a user's type beyond its
/// `ToSql`/`FromSql`/`SqlType`: the impls [`column_type!`] gives a built-in type, less the
/// `Option<T>` ones orphan rules keep out of the user's crate (the blankets over
/// [`CustomType`] below give those). The derives expand this macro (through
/// `aludel::__private::custom_type`), so a column type's impls are written once, here.
#[doc(hidden)]
#[macro_export]
macro_rules! __custom_type {
    ($t:ty) => {
        impl $crate::__private::CustomType for $t {}
        impl $crate::__private::ColumnType for $t {
            type Base = $t;
        }
        impl $crate::__private::IntoExpr<$t> for $t {
            fn into_node(self) -> $crate::__private::Node {
                $crate::__private::bind_node(self)
            }
        }
        impl $crate::__private::IntoExpr<::core::option::Option<$t>> for $t {
            fn into_node(self) -> $crate::__private::Node {
                $crate::__private::bind_node(::core::option::Option::Some(self))
            }
        }
        impl $crate::__private::FromRow for $t {
            fn from_row_at(
                row: &$crate::__private::Row,
                offset: usize,
            ) -> $crate::__private::Result<Self> {
                row.get(offset)
            }
            fn column_count() -> usize {
                1
            }
        }
        impl $crate::__private::FromRowOpt for $t {
            fn from_row_opt_at(
                row: &$crate::__private::Row,
                offset: usize,
            ) -> $crate::__private::Result<::core::option::Option<Self>> {
                row.get(offset)
            }
            fn opt_column_count() -> usize {
                1
            }
        }
    };
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

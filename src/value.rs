//! Values bound to statements, each with the PostgreSQL type it is sent as.

use std::fmt;
use std::sync::Arc;

use tokio_postgres::types::{ToSql, Type};

/// A Rust type that is sent to PostgreSQL as one known SQL type.
///
/// Every bound value carries its type, so statements can be prepared with declared parameter
/// types (the server coerces, e.g. an `i32` compared with a `bigint` column) and can be sent as
/// unnamed, typed statements for transaction-mode poolers such as PgBouncer.
///
/// Implemented for the built-in scalar types, `Option<T>` (NULL) and `Vec<T>` (arrays).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be bound as a SQL value",
    note = "aludel binds bool, integers, floats, String, &'static str, Vec<u8>, Option<T>, Vec<T> and the types of enabled features"
)]
pub trait SqlType: ToSql + Send + Sync + 'static {
    /// The PostgreSQL type values of this Rust type are sent as.
    fn sql_type() -> Type
    where
        Self: Sized;
}

/// The built-in column types, each with the PostgreSQL type it is sent as and its array
/// type: the one list every built-in impl expands from. `builtin_types!(m)` calls
/// `m! { $($t => $pg, $arr;)* }`: here for `SqlType`, in `sql/types.rs` for the rest of what
/// a column type needs (`ColumnType`, `IntoExpr`, `FromRow`), which the feature types and
/// the derives' types get from the same macros there.
macro_rules! builtin_types {
    ($then:ident) => {
        $then! {
            bool => Type::BOOL, Type::BOOL_ARRAY;
            i8 => Type::CHAR, Type::CHAR_ARRAY;
            i16 => Type::INT2, Type::INT2_ARRAY;
            i32 => Type::INT4, Type::INT4_ARRAY;
            i64 => Type::INT8, Type::INT8_ARRAY;
            u32 => Type::OID, Type::OID_ARRAY;
            f32 => Type::FLOAT4, Type::FLOAT4_ARRAY;
            f64 => Type::FLOAT8, Type::FLOAT8_ARRAY;
            String => Type::TEXT, Type::TEXT_ARRAY;
        }
    };
}
pub(crate) use builtin_types;

/// `SqlType` for each `$t` (sent as `$pg`) and `Vec<$t>` (as `$arr`).
macro_rules! sql_types {
    ($($t:ty => $pg:expr, $arr:expr;)*) => {$(
        impl $crate::value::SqlType for $t {
            fn sql_type() -> Type { $pg }
        }
        impl $crate::value::SqlType for Vec<$t> {
            fn sql_type() -> Type { $arr }
        }
    )*};
}
pub(crate) use sql_types;

builtin_types!(sql_types);

// Bound, never read: a `&'static str` compares with text columns (`IntoExpr<String>`).
sql_types! {
    &'static str => Type::TEXT, Type::TEXT_ARRAY;
}

impl SqlType for Vec<u8> {
    fn sql_type() -> Type {
        Type::BYTEA
    }
}

impl SqlType for &'static [u8] {
    fn sql_type() -> Type {
        Type::BYTEA
    }
}

impl<T: SqlType> SqlType for Option<T> {
    fn sql_type() -> Type {
        T::sql_type()
    }
}

/// One bound parameter: the value and the SQL type it is sent as.
#[derive(Clone)]
pub struct Bind {
    value: Arc<dyn ToSql + Send + Sync>,
    ty: Type,
}

impl Bind {
    /// Binds `value` as its [`SqlType`].
    pub fn new<T: SqlType>(value: T) -> Self {
        Bind {
            value: Arc::new(value),
            ty: T::sql_type(),
        }
    }

    /// A value of an internal `ToSql` type sent as `ty` (arrays the builder assembles).
    pub(crate) fn from_parts(value: Arc<dyn ToSql + Send + Sync>, ty: Type) -> Self {
        Bind { value, ty }
    }

    /// The SQL type this value is sent as.
    pub fn sql_type(&self) -> &Type {
        &self.ty
    }

    pub(crate) fn as_to_sql(&self) -> &(dyn ToSql + Sync) {
        &*self.value
    }
}

impl fmt::Debug for Bind {
    /// Shows the type only: bound values never reach logs or error text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bind(${})", self.ty.name())
    }
}

/// The array type whose elements are `elem`, for the element types keys use.
fn array_of(elem: &Type) -> Option<Type> {
    Some(match *elem {
        Type::BOOL => Type::BOOL_ARRAY,
        Type::CHAR => Type::CHAR_ARRAY,
        Type::INT2 => Type::INT2_ARRAY,
        Type::INT4 => Type::INT4_ARRAY,
        Type::INT8 => Type::INT8_ARRAY,
        Type::OID => Type::OID_ARRAY,
        Type::FLOAT4 => Type::FLOAT4_ARRAY,
        Type::FLOAT8 => Type::FLOAT8_ARRAY,
        Type::TEXT => Type::TEXT_ARRAY,
        Type::VARCHAR => Type::VARCHAR_ARRAY,
        Type::BPCHAR => Type::BPCHAR_ARRAY,
        Type::NAME => Type::NAME_ARRAY,
        Type::BYTEA => Type::BYTEA_ARRAY,
        Type::UUID => Type::UUID_ARRAY,
        Type::NUMERIC => Type::NUMERIC_ARRAY,
        Type::DATE => Type::DATE_ARRAY,
        Type::TIME => Type::TIME_ARRAY,
        Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
        Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
        _ => return None,
    })
}

/// Already-bound values of one type sent as one array parameter (`= ANY($1)` over keys
/// the loader collected as [`Bind`]s). Written in PostgreSQL's binary array format.
#[derive(Debug)]
struct BindArray {
    elem: Type,
    items: Vec<Bind>,
}

impl ToSql for BindArray {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let n = i32::try_from(self.items.len())?;
        out.extend_from_slice(&1i32.to_be_bytes()); // dimensions
        let nulls_at = out.len();
        out.extend_from_slice(&0i32.to_be_bytes()); // has nulls
        out.extend_from_slice(&self.elem.oid().to_be_bytes());
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        let mut has_null = false;
        for b in &self.items {
            let at = out.len();
            out.extend_from_slice(&0i32.to_be_bytes());
            match b.as_to_sql().to_sql_checked(b.sql_type(), out)? {
                tokio_postgres::types::IsNull::No => {
                    let len = i32::try_from(out.len() - at - 4)?;
                    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
                tokio_postgres::types::IsNull::Yes => {
                    has_null = true;
                    out[at..at + 4].copy_from_slice(&(-1i32).to_be_bytes());
                }
            }
        }
        if has_null {
            out[nulls_at..nulls_at + 4].copy_from_slice(&1i32.to_be_bytes());
        }
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), tokio_postgres::types::Kind::Array(_))
    }

    tokio_postgres::types::to_sql_checked!();
}

/// One array bind of `items` (all of one SQL type), or `None` when that type has no known
/// array type (callers fall back to one placeholder per value).
pub(crate) fn bind_array(items: Vec<Bind>) -> Option<Bind> {
    let elem = items.first()?.sql_type().clone();
    if items.iter().any(|b| b.sql_type() != &elem) {
        return None;
    }
    let ty = array_of(&elem)?;
    Some(Bind {
        value: Arc::new(BindArray { elem, items }),
        ty,
    })
}

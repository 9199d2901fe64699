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

macro_rules! sql_types {
    ($($t:ty => $pg:expr, $arr:expr;)*) => {$(
        impl SqlType for $t {
            fn sql_type() -> Type { $pg }
        }
        impl SqlType for Vec<$t> {
            fn sql_type() -> Type { $arr }
        }
    )*};
}

sql_types! {
    bool => Type::BOOL, Type::BOOL_ARRAY;
    i8 => Type::CHAR, Type::CHAR_ARRAY;
    i16 => Type::INT2, Type::INT2_ARRAY;
    i32 => Type::INT4, Type::INT4_ARRAY;
    i64 => Type::INT8, Type::INT8_ARRAY;
    u32 => Type::OID, Type::OID_ARRAY;
    f32 => Type::FLOAT4, Type::FLOAT4_ARRAY;
    f64 => Type::FLOAT8, Type::FLOAT8_ARRAY;
    String => Type::TEXT, Type::TEXT_ARRAY;
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

//! SQL statements: raw SQL with bound values, and the values themselves.

mod raw;
mod value;

use std::borrow::Cow;

pub use self::raw::{AssertSqlSafe, Raw, sql};
pub use self::value::{Bind, SqlType};

use crate::error::Result;

mod private {
    pub trait Sealed {}
}

/// Something that compiles to SQL text plus bound values: raw SQL ([`Raw`]) or a statement
/// from the typed builder. Sealed: only aludel's statement types implement it.
pub trait Statement: private::Sealed {
    /// The SQL text and the values to bind, in placeholder order.
    #[doc(hidden)]
    fn compile(&self) -> Result<(Cow<'_, str>, Cow<'_, [Bind]>)>;
}

impl private::Sealed for Raw {}

impl Statement for Raw {
    fn compile(&self) -> Result<(Cow<'_, str>, Cow<'_, [Bind]>)> {
        self.finish()
    }
}

impl<S: Statement> private::Sealed for &S {}

impl<S: Statement> Statement for &S {
    fn compile(&self) -> Result<(Cow<'_, str>, Cow<'_, [Bind]>)> {
        (**self).compile()
    }
}

//! [`Generated`]: the field type of a column the server can fill (identity, server default),
//! with an *unset* state that is never confused with a value.

use std::fmt;

use tokio_postgres::types::{FromSql, Type};

use crate::error::{Error, Result};
use crate::value::{Bind, SqlType};

/// A column the server fills when the INSERT leaves it out: an identity column or one with a
/// `server_default`. Unset, the INSERT omits the column and the server's value is read back
/// (`RETURNING`); set, the value is sent as given, as SQLAlchemy does with an attribute the
/// application assigned.
///
/// `#[derive(Model)]` requires this type on every `identity` and `server_default` field, so
/// "leave it to the server" is spelled [`Generated::unset`] (or `Default::default()`) and
/// can never be a placeholder value such as `0` that is silently replaced or silently sent.
///
/// ```no_run
/// use aludel::{Generated, Model, Obj};
///
/// #[derive(Model, Clone, Debug)]
/// #[aludel(table = "items")]
/// struct Item {
///     #[aludel(primary_key, identity)]
///     id: Generated<i64>,
///     name: String,
/// }
///
/// # async fn demo(s: &mut aludel::AsyncSession) -> aludel::Result<()> {
/// let auto = Obj::new(Item { id: Generated::unset(), name: "a".into() });
/// let fixed = Obj::new(Item { id: 5000.into(), name: "b".into() });
/// s.add_all([&auto, &fixed])?;
/// s.flush().await?;                         // the server numbers `auto`; `fixed` is 5000
/// let id: i64 = *auto.read()?.id.get()?;    // read back by RETURNING
/// assert_eq!(fixed.read()?.id, 5000);
/// # let _ = id; Ok(()) }
/// ```
///
/// There is no `Deref` to `T`: reading an unset value is a typed error
/// ([`Error::is_unset`]) from [`Generated::get`], not a default or a panic hidden behind `*`.
/// Comparing with a value (`id == 5`) is allowed: an unset value equals nothing.
///
/// A column declared `identity = "always"` (`GENERATED ALWAYS AS IDENTITY`) takes no value
/// from the client: a set value on a new object is refused at flush, before any SQL
/// ([`Error::is_generated_always`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Generated<T>(Option<T>);

impl<T> Generated<T> {
    /// No value: an INSERT leaves the column to the server.
    pub const fn unset() -> Self {
        Generated(None)
    }

    /// A value the INSERT sends as given.
    pub const fn new(value: T) -> Self {
        Generated(Some(value))
    }

    /// The value.
    ///
    /// # Errors
    /// [`Error::is_unset`] when no value was set or read back yet (a new object before its
    /// flush).
    pub fn get(&self) -> Result<&T> {
        self.0.as_ref().ok_or_else(Error::unset)
    }

    /// The value, mutably (through `obj.write()`, so a change of a persistent object is
    /// flushed).
    ///
    /// # Errors
    /// [`Error::is_unset`] when no value is set.
    pub fn get_mut(&mut self) -> Result<&mut T> {
        self.0.as_mut().ok_or_else(Error::unset)
    }

    /// Sets the value (a new object sends it in its INSERT).
    pub fn set(&mut self, value: T) {
        self.0 = Some(value);
    }

    /// Back to unset: a new object's INSERT leaves the column to the server again.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// Whether a value is set.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// The value, or `None` when unset.
    pub fn as_option(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// The value taken out, or `None` when unset.
    pub fn into_option(self) -> Option<T> {
        self.0
    }

    /// The value taken out.
    ///
    /// # Errors
    /// [`Error::is_unset`] when no value is set.
    pub fn into_inner(self) -> Result<T> {
        self.0.ok_or_else(Error::unset)
    }
}

impl<T: Clone> Generated<T> {
    /// A copy of the value.
    ///
    /// # Errors
    /// [`Error::is_unset`] when no value is set.
    pub fn cloned(&self) -> Result<T> {
        self.get().cloned()
    }
}

impl<T: SqlType + Clone> Generated<T> {
    /// The bound value, `None` when unset (called by derived code).
    #[doc(hidden)]
    pub fn bind(&self) -> Option<Bind> {
        self.0.as_ref().map(|v| Bind::new(v.clone()))
    }
}

/// A value read from a row is set (a NULL is `T`'s NULL: `Generated<Option<T>>` reads
/// `Some(None)`).
impl<'a, T: FromSql<'a>> FromSql<'a> for Generated<T> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        T::from_sql(ty, raw).map(Generated::new)
    }

    fn from_sql_null(
        ty: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        T::from_sql_null(ty).map(Generated::new)
    }

    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }
}

/// Unset is `null` (feature `serde`).
#[cfg(feature = "serde")]
impl<T: serde::Serialize> serde::Serialize for Generated<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// `null` (or a missing field, with `#[serde(default)]`) is unset (feature `serde`).
#[cfg(feature = "serde")]
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Generated<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Generated)
    }
}

impl<T> Default for Generated<T> {
    /// Unset.
    fn default() -> Self {
        Generated(None)
    }
}

impl<T> From<T> for Generated<T> {
    fn from(value: T) -> Self {
        Generated(Some(value))
    }
}

impl<T: PartialEq> PartialEq<T> for Generated<T> {
    /// Equal when set to an equal value; an unset value equals nothing.
    fn eq(&self, other: &T) -> bool {
        self.0.as_ref() == Some(other)
    }
}

impl PartialEq<str> for Generated<String> {
    fn eq(&self, other: &str) -> bool {
        self.0.as_deref() == Some(other)
    }
}

impl PartialEq<&str> for Generated<String> {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_deref() == Some(*other)
    }
}

impl<T: fmt::Debug> fmt::Debug for Generated<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("<unset>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Generated;

    #[test]
    fn unset_is_a_typed_error_and_equals_nothing() {
        let mut g: Generated<i32> = Generated::default();
        assert!(g.get().is_err_and(|e| e.is_unset()));
        assert_ne!(g, 0);
        assert_eq!(format!("{g:?}"), "<unset>");
        g.set(7);
        assert_eq!(g, 7);
        assert_eq!(g.cloned().ok(), Some(7));
        assert_eq!(Generated::from(7), g);
        g.clear();
        assert!(!g.is_set());
        assert_eq!(g.into_option(), None);
    }

    #[cfg(feature = "json")]
    #[test]
    fn unset_is_null_in_json() {
        let v: Vec<Generated<i32>> = vec![Generated::new(3), Generated::unset()];
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, "[3,null]");
        let back: Vec<Generated<i32>> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}

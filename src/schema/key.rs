//! [`KeyWriter`]: how a model's primary key becomes an identity-map key, written in one place
//! for derived code (the model's fields) and the runtime (bound key values).

use tokio_postgres::types::IsNull;
use tokio_postgres::types::private::BytesMut;

use super::Generated;
use crate::value::{Bind, SqlType};

/// Where [`Model::write_identity`](super::Model::write_identity) appends the primary-key
/// fields: each field's wire encoding, length-prefixed, NULL as `u32::MAX`. Opaque outside
/// the crate, so the driver's buffer type is not part of `Model`.
#[doc(hidden)]
#[derive(Debug)]
pub struct KeyWriter<'a>(&'a mut BytesMut);

type Encoded = std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>>;

impl<'a> KeyWriter<'a> {
    /// Appends to `buf`.
    pub(crate) fn new(buf: &'a mut BytesMut) -> Self {
        KeyWriter(buf)
    }

    /// Appends one primary-key field (called by derived code).
    pub fn part<T: SqlType>(&mut self, value: &T) {
        self.put(|o| value.to_sql_checked(&T::sql_type(), o));
    }

    /// Appends one `Generated` primary-key field; an unset one reads as NULL (a new object's
    /// key before its INSERT).
    pub fn part_generated<T: SqlType>(&mut self, value: &Generated<T>) {
        match value.as_option() {
            Some(v) => self.part(v),
            None => self.0.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }

    /// Appends one bound value (a key the runtime has as binds, in the same format).
    pub(crate) fn bind(&mut self, b: &Bind) {
        self.put(|out| b.as_to_sql().to_sql_checked(b.sql_type(), out));
    }

    fn put(&mut self, write: impl FnOnce(&mut BytesMut) -> Encoded) {
        let out = &mut *self.0;
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match write(out) {
            Ok(IsNull::No) => {
                let n = (out.len() - start - 4) as u32;
                out[start..start + 4].copy_from_slice(&n.to_le_bytes());
            }
            _ => {
                out.truncate(start);
                out.extend_from_slice(&u32::MAX.to_le_bytes());
            }
        }
    }
}

//! Identity keys: the primary-key values of a row, each as a length-prefixed wire encoding,
//! stored inline (no allocation) for the common shapes — one `int4`/`int8`/`uuid` key or a
//! composite of two `int8` — and on the heap only beyond [`INLINE`] bytes.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};

use tokio_postgres::types::private::BytesMut;

use crate::schema::{KeyWriter, Model};
use crate::sql::Bind;

/// Bytes held inline: a `uuid` key (4 + 16) or two `int8` keys (2 × (4 + 8)) fit.
const INLINE: usize = 24;

/// An identity key (see the module docs). Compared and hashed as its bytes.
#[derive(Clone)]
pub(crate) struct Key(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Key {
    /// The empty key.
    pub(crate) const fn new() -> Self {
        Key(Repr::Inline {
            len: 0,
            buf: [0; INLINE],
        })
    }

    /// A key holding `bytes`.
    pub(crate) fn from_slice(bytes: &[u8]) -> Self {
        let mut k = Key::new();
        k.extend_from_slice(bytes);
        k
    }

    /// Appends bytes, moving to the heap past [`INLINE`] bytes.
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            Repr::Inline { len, buf } => {
                let at = usize::from(*len);
                if at + bytes.len() <= INLINE {
                    buf[at..at + bytes.len()].copy_from_slice(bytes);
                    // at + len ≤ INLINE < 256.
                    *len = (at + bytes.len()) as u8;
                } else {
                    let mut v = Vec::with_capacity(at + bytes.len());
                    v.extend_from_slice(&buf[..at]);
                    v.extend_from_slice(bytes);
                    self.0 = Repr::Heap(v);
                }
            }
            Repr::Heap(v) => v.extend_from_slice(bytes),
        }
    }

    /// The key's bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Heap(v) => v,
        }
    }
}

impl Default for Key {
    fn default() -> Self {
        Key::new()
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// By bytes (the flush sorts dirty rows by key).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for Key {
    /// An inline key as three words (bytes past its length are always zero, so equal keys
    /// hash equal): a few multiplications instead of a byte-slice hash per row.
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Inline { len, buf } => {
                let word = |i: usize| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&buf[i * 8..i * 8 + 8]);
                    u64::from_le_bytes(w)
                };
                state.write_u64(word(0) ^ (u64::from(*len) << 59));
                if *len > 8 {
                    state.write_u64(word(1));
                    state.write_u64(word(2));
                }
            }
            Repr::Heap(v) => v.hash(state),
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:02x?})", self.as_slice())
    }
}

thread_local! {
    /// The buffer keys are encoded into before they are copied inline (the wire encoders
    /// write into a `BytesMut`); reused, so encoding a key allocates nothing.
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(64));
}

/// Encodes through the per-thread scratch buffer and copies the bytes into a [`Key`].
fn with_scratch(write: impl FnOnce(&mut BytesMut)) -> Key {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            write(&mut buf);
            Key::from_slice(&buf)
        }
        // Not reached (the encoders never build a key themselves); a fresh buffer is correct.
        Err(_) => {
            let mut buf = BytesMut::new();
            write(&mut buf);
            Key::from_slice(&buf)
        }
    })
}

/// The identity key of a model value (its primary-key fields, as the derive writes them).
pub(crate) fn key_of_value<M: Model>(value: &M) -> Key {
    with_scratch(|buf| value.write_identity(&mut KeyWriter::new(buf)))
}

/// The identity key of the model row at `offset` of `row` (all default columns, as
/// `FromRow::from_row_at` reads them) straight from the primary-key columns' wire bytes, when
/// every key column has a type whose wire form is exactly what [`KeyWriter`] writes (integers,
/// `uuid`, text): no re-encoding of the decoded values. `None` otherwise (the caller encodes
/// the value).
pub(crate) fn key_from_row<M: Model>(row: &tokio_postgres::Row, offset: usize) -> Option<Key> {
    use tokio_postgres::types::Type;
    let t = M::TABLE;
    let mut key = Key::new();
    for (at, c) in (offset..).zip(t.columns.iter().filter(|c| !c.deferred)) {
        if c.primary_key {
            let ty = row.columns().get(at)?.type_();
            if !matches!(
                *ty,
                Type::INT2 | Type::INT4 | Type::INT8 | Type::UUID | Type::TEXT | Type::VARCHAR
            ) {
                return None;
            }
            let crate::row::RawSlice(raw) = row.try_get(at).ok()?;
            let raw = raw?;
            key.extend_from_slice(&u32::try_from(raw.len()).ok()?.to_le_bytes());
            key.extend_from_slice(raw);
        }
    }
    Some(key)
}

/// The identity key of a row from bound primary-key values (the format the derive writes
/// through [`KeyWriter`]).
pub(crate) fn identity_key(pk: &[Bind]) -> Key {
    with_scratch(|buf| {
        let mut w = KeyWriter::new(buf);
        for b in pk {
            w.bind(b);
        }
    })
}

/// As [`identity_key`], `None` when a value is NULL (or cannot be encoded): one encoding
/// pass, no allocation.
pub(crate) fn identity_key_non_null(pk: &[Bind]) -> Option<Key> {
    let key = identity_key(pk);
    (!has_null_part(&key)).then_some(key)
}

/// Whether a key holds a NULL part (length `u32::MAX`, as [`KeyWriter`] writes NULL).
fn has_null_part(mut bytes: &[u8]) -> bool {
    while let Some((len, rest)) = bytes.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len);
        if len == u32::MAX {
            return true;
        }
        match rest.get(len as usize..) {
            Some(tail) => bytes = tail,
            None => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{Key, has_null_part};

    #[test]
    fn inline_and_heap_keys_compare_by_bytes() {
        let long: Vec<u8> = (0..40).collect();
        let mut grown = Key::from_slice(&long[..20]);
        grown.extend_from_slice(&long[20..]);
        assert_eq!(grown, Key::from_slice(&long));
        assert_eq!(&*grown, &long[..]);
        assert_ne!(Key::from_slice(&[1, 2]), Key::from_slice(&[1, 2, 0]));
        assert_eq!(Key::new().as_slice(), &[] as &[u8]);
    }

    #[test]
    fn null_parts_are_found() {
        let mut k = Key::from_slice(&4u32.to_le_bytes());
        k.extend_from_slice(&[0, 0, 0, 7]);
        assert!(!has_null_part(&k));
        k.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(has_null_part(&k));
    }
}

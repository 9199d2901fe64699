//! Rendering statements: SQL text with `$n` placeholders, and the binds in order; and the
//! per-shape cache that keeps the text of a statement shape once it has been rendered.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use super::Bind;

/// Accumulates SQL text and bound values while a statement renders.
///
/// In *key* mode nothing is written: the writer records the statement's shape as the exact
/// sequence of its static fragments (address and length; dynamic text by content) and bind
/// positions. Equal keys mean equal SQL text, without hashing collisions.
#[derive(Debug, Default)]
#[doc(hidden)]
#[allow(unreachable_pub)] // named in `Selectable`'s hidden method; not reachable by users
pub struct Writer {
    pub(crate) sql: String,
    pub(crate) binds: Vec<Bind>,
    key: Option<Vec<usize>>,
}

const BIND: usize = usize::MAX;
const TEXT: usize = usize::MAX - 1;

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            sql: String::with_capacity(128),
            binds: Vec::new(),
            key: None,
        }
    }

    /// A writer that records the shape key instead of text.
    pub(crate) fn keyed() -> Self {
        Writer {
            sql: String::new(),
            binds: Vec::new(),
            key: Some(Vec::with_capacity(64)),
        }
    }

    /// A fragment from the program's text (keywords, operators, derive-generated names).
    pub(crate) fn push(&mut self, s: &'static str) {
        match &mut self.key {
            Some(k) => {
                k.push(s.as_ptr() as usize);
                k.push(s.len());
            }
            None => self.sql.push_str(s),
        }
    }

    /// Text built at runtime (keyed by content).
    pub(crate) fn push_text(&mut self, s: &str) {
        match &mut self.key {
            Some(k) => {
                k.push(TEXT);
                k.push(s.len());
                k.extend(s.as_bytes().chunks(std::mem::size_of::<usize>()).map(|c| {
                    let mut word = [0u8; std::mem::size_of::<usize>()];
                    word[..c.len()].copy_from_slice(c);
                    usize::from_ne_bytes(word)
                }));
            }
            None => self.sql.push_str(s),
        }
    }

    pub(crate) fn ident(&mut self, name: &'static str) {
        match &mut self.key {
            Some(k) => {
                k.push(name.as_ptr() as usize);
                k.push(name.len());
            }
            None => push_quoted(&mut self.sql, name),
        }
    }

    pub(crate) fn bind(&mut self, b: Bind) {
        self.binds.push(b);
        match &mut self.key {
            Some(k) => k.push(BIND),
            None => {
                self.sql.push('$');
                self.sql.push_str(&self.binds.len().to_string());
            }
        }
    }

    pub(crate) fn comma_list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            each(self, item);
        }
    }
}

/// The SQL text of a compiled statement: borrowed from the statement, or shared from the
/// shape cache.
#[derive(Debug, Clone)]
pub enum SqlText<'a> {
    /// Text owned by the statement itself (raw SQL).
    Borrowed(&'a str),
    /// Text of this statement shape, taken from the cache.
    Shared(Arc<str>),
    /// Text rendered just now (the first time this shape was seen), now cached.
    Fresh(Arc<str>),
}

impl std::ops::Deref for SqlText<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            SqlText::Borrowed(s) => s,
            SqlText::Shared(s) | SqlText::Fresh(s) => s,
        }
    }
}

impl SqlText<'_> {
    /// True when the text came from the shape cache (it was not rendered again).
    pub fn is_cached(&self) -> bool {
        matches!(self, SqlText::Shared(_))
    }
}

/// Shapes kept at most; past that, new shapes are rendered every time (a program that builds
/// unbounded distinct shapes must not grow memory without bound).
const CACHE_LIMIT: usize = 4096;

type ShapeCache = RwLock<HashMap<Box<[usize]>, Arc<str>>>;

fn cache() -> &'static ShapeCache {
    static CACHE: OnceLock<ShapeCache> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Renders a statement through the shape cache: one keyed pass that also collects the binds,
/// and the text pass only the first time a shape is seen.
pub(crate) fn compile_cached(
    render: impl Fn(&mut Writer) -> crate::Result<()>,
) -> crate::Result<(SqlText<'static>, Vec<Bind>)> {
    let mut keyed = Writer::keyed();
    render(&mut keyed)?;
    let key = keyed.key.take().unwrap_or_default();
    let hit = cache()
        .read()
        .ok()
        .and_then(|m| m.get(key.as_slice()).cloned());
    if let Some(sql) = hit {
        return Ok((SqlText::Shared(sql), keyed.binds));
    }
    let mut w = Writer::new();
    render(&mut w)?;
    let sql: Arc<str> = Arc::from(w.sql);
    if let Ok(mut m) = cache().write() {
        if m.len() < CACHE_LIMIT {
            m.insert(key.into_boxed_slice(), sql.clone());
        }
    }
    // The text pass collected the same binds in the same order; keep the keyed pass's.
    Ok((SqlText::Fresh(sql), keyed.binds))
}

/// `"name"`, with embedded quotes doubled: identifiers are always quoted.
pub fn quote_ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    push_quoted(&mut s, name);
    s
}

fn push_quoted(out: &mut String, name: &str) {
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(super::quote_ident("user"), "\"user\"");
        assert_eq!(super::quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}

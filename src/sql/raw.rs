//! Raw SQL with bound parameters: `sql("… WHERE id = $1").bind(7)`.

use std::borrow::Cow;
use std::fmt;

use crate::error::{Error, Result};
use crate::value::{Bind, SqlType};

/// SQL text built at runtime that a person has checked for injection.
///
/// aludel accepts `&'static str` SQL as it is; anything assembled at runtime must be wrapped in
/// `AssertSqlSafe` to say "I audited this: no user input is spliced into it". Values never go
/// into SQL text at all; bind them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertSqlSafe<T>(pub T);

/// A raw SQL statement and its bound values.
///
/// Placeholders are PostgreSQL's positional `$1, $2, …`, or named `:name` placeholders bound
/// with [`Raw::bind_named`] (rewritten to positional ones; `::casts`, string literals, quoted
/// identifiers and comments are left alone). A list for `IN` is one array bind:
/// `WHERE id = ANY($1)` with a `Vec<i32>`, which also works for an empty list.
///
/// ```
/// use aludel::sql;
/// let q = sql("SELECT name FROM users WHERE id = $1 AND name <> $2").bind(7).bind("root");
/// assert_eq!(q.sql(), "SELECT name FROM users WHERE id = $1 AND name <> $2");
/// assert_eq!(q.binds().len(), 2);
///
/// let q = sql("SELECT * FROM users WHERE id = ANY(:ids) AND name = :name")
///     .bind_named("name", "ann")
///     .bind_named("ids", vec![1, 2, 3]);
/// assert_eq!(q.sql(), "SELECT * FROM users WHERE id = ANY($1) AND name = $2");
/// ```
#[derive(Clone)]
pub struct Raw {
    sql: Cow<'static, str>,
    binds: Vec<Bind>,
    /// Named placeholders in order of first appearance, when the text uses them.
    names: Vec<Box<str>>,
    named: Vec<Option<Bind>>,
}

/// Raw SQL from a string literal (or any `&'static str`).
pub fn sql(text: &'static str) -> Raw {
    Raw::from_cow(Cow::Borrowed(text))
}

impl Raw {
    /// Raw SQL assembled at runtime, after an audit.
    pub fn audited(text: AssertSqlSafe<impl Into<String>>) -> Raw {
        Raw::from_cow(Cow::Owned(text.0.into()))
    }

    fn from_cow(text: Cow<'static, str>) -> Raw {
        let (rewritten, names) = rewrite_named(&text);
        let sql = match rewritten {
            Some(s) => Cow::Owned(s),
            None => text,
        };
        let named = vec![None; names.len()];
        Raw {
            sql,
            binds: Vec::new(),
            names,
            named,
        }
    }

    /// Binds the next positional parameter (`$1`, then `$2`, …).
    #[must_use]
    pub fn bind<T: SqlType>(mut self, value: T) -> Raw {
        self.binds.push(Bind::new(value));
        self
    }

    /// Binds a named `:name` parameter. Binding a name the text does not use is reported when
    /// the statement runs.
    #[must_use]
    pub fn bind_named<T: SqlType>(mut self, name: &str, value: T) -> Raw {
        match self.names.iter().position(|n| &**n == name) {
            Some(i) => self.named[i] = Some(Bind::new(value)),
            None => self.names_unknown(name),
        }
        self
    }

    fn names_unknown(&mut self, name: &str) {
        // Remember the mistake as an unbound extra name; `finish` reports it.
        self.names.push(name.into());
        self.named.push(None);
    }

    /// Appends already-built binds (for statements aludel assembles itself).
    pub(crate) fn with_binds(mut self, binds: Vec<Bind>) -> Raw {
        self.binds.extend(binds);
        self
    }

    /// The SQL text as it is sent (named placeholders already rewritten to `$n`).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The positional binds (named binds are merged in when the statement runs).
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// Checks and returns the SQL text and the full bind list.
    pub(crate) fn finish(&self) -> Result<(super::SqlText<'_>, Cow<'_, [Bind]>)> {
        if self.names.is_empty() {
            return Ok((
                super::SqlText::Borrowed(&self.sql),
                Cow::Borrowed(&self.binds),
            ));
        }
        if !self.binds.is_empty() {
            return Err(Error::invalid(
                "a raw statement cannot mix named and positional binds",
            ));
        }
        let mut binds = Vec::with_capacity(self.named.len());
        for (name, bind) in self.names.iter().zip(&self.named) {
            match bind {
                Some(b) => binds.push(b.clone()),
                None => {
                    return Err(Error::invalid(format!(
                        "named parameter `:{name}` is not bound, or is not used by the statement"
                    )));
                }
            }
        }
        Ok((super::SqlText::Borrowed(&self.sql), Cow::Owned(binds)))
    }
}

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Raw")
            .field("sql", &self.sql)
            .field("binds", &self.binds.len())
            .finish()
    }
}

/// Rewrites `:name` placeholders to `$n`, skipping literals, quoted identifiers, dollar-quoted
/// strings, comments and `::` casts. Returns `None` when the text has no named placeholder.
fn rewrite_named(text: &str) -> (Option<String>, Vec<Box<str>>) {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut names: Vec<Box<str>> = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' if i > 0 && matches!(bytes[i - 1], b'E' | b'e') => i = skip_escaped(bytes, i),
            b'\'' | b'"' => i = skip_quoted(bytes, i, bytes[i]),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'$' => i = skip_dollar_quoted(text, i),
            b':' if bytes.get(i + 1) == Some(&b':') => i += 2,
            // `arr[lo:hi]` and `a:b` right after an identifier are not placeholders.
            b':' if i > 0
                && (bytes[i - 1].is_ascii_alphanumeric()
                    || matches!(bytes[i - 1], b'_' | b']' | b')')) =>
            {
                i += 1;
            }
            b':' if bytes
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                let name = &text[start..end];
                let n = match names.iter().position(|x| &**x == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name.into());
                        names.len()
                    }
                };
                out.push_str(&text[copied..i]);
                out.push('$');
                out.push_str(&n.to_string());
                copied = end;
                i = end;
            }
            _ => i += 1,
        }
    }
    if names.is_empty() {
        return (None, names);
    }
    out.push_str(&text[copied..]);
    (Some(out), names)
}

/// `E'…'` strings: backslash escapes the next byte.
fn skip_escaped(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// `$1` placeholders pass through; `$tag$ … $tag$` strings are skipped whole.
fn skip_dollar_quoted(text: &str, start: usize) -> usize {
    let rest = &text[start + 1..];
    let tag_len = rest
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    if rest.as_bytes().get(tag_len) != Some(&b'$') || rest.starts_with(|c: char| c.is_ascii_digit())
    {
        return start + 1;
    }
    let tag = &text[start..start + tag_len + 2];
    let body = start + tag.len();
    text[body..]
        .find(tag)
        .map_or(text.len(), |n| body + n + tag.len())
}

#[cfg(test)]
mod tests {
    use super::rewrite_named;

    #[test]
    fn named_placeholders_skip_casts_literals_and_comments() {
        let (sql, names) = rewrite_named(
            "SELECT :a::int, ':b', \":c\", $x$ :d $x$ -- :e\n, /* :f */ :a, :g_2 FROM t",
        );
        assert_eq!(
            sql.as_deref(),
            Some("SELECT $1::int, ':b', \":c\", $x$ :d $x$ -- :e\n, /* :f */ $1, $2 FROM t")
        );
        assert_eq!(names.iter().map(|n| &**n).collect::<Vec<_>>(), ["a", "g_2"]);
    }

    #[test]
    fn slices_and_escape_strings_are_not_placeholders() {
        assert_eq!(rewrite_named("SELECT arr[lo:hi], arr[1:2] FROM t").0, None);
        let (sql, names) = rewrite_named("SELECT E'it\\'s :x', :y");
        assert_eq!(sql.as_deref(), Some("SELECT E'it\\'s :x', $1"));
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn positional_text_is_untouched() {
        assert_eq!(rewrite_named("SELECT $1, $2::text").0, None);
    }
}

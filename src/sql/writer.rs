//! Rendering statements: SQL text with `$n` placeholders, and the binds in order.

use super::Bind;

/// Accumulates SQL text and bound values while a statement renders.
#[derive(Debug, Default)]
#[doc(hidden)]
#[allow(unreachable_pub)] // named in `Selectable`'s hidden method; not reachable by users
pub struct Writer {
    pub(crate) sql: String,
    pub(crate) binds: Vec<Bind>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            sql: String::with_capacity(128),
            binds: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }

    pub(crate) fn ident(&mut self, name: &str) {
        push_quoted(&mut self.sql, name);
    }

    pub(crate) fn bind(&mut self, b: Bind) {
        self.binds.push(b);
        self.sql.push('$');
        self.sql.push_str(itoa(self.binds.len()).as_str());
    }

    pub(crate) fn comma_list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            each(self, item);
        }
    }
}

fn itoa(n: usize) -> String {
    n.to_string()
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

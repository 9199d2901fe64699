//! A small SQL lexer for the return path: which statements a text holds and what their first
//! keywords are.
//!
//! It knows PostgreSQL's token rules that can hide a keyword or a `;`: whitespace, `--` and
//! nested `/* */` comments, `'…'` strings (with `''`), `E'…'` strings (with backslash escapes),
//! `"…"` identifiers, `$tag$…$tag$` dollar quoting, and `BEGIN ATOMIC … END` bodies of
//! `CREATE FUNCTION`/`PROCEDURE` (whose inner `;` do not end the statement).
//!
//! Two uses, neither of which the pool's safety depends on alone:
//! * [`Scan::control`] refuses transaction control sent as SQL text (a courtesy: the error
//!   says to use `begin`/`commit`/`rollback`);
//! * [`Scan::plain`] lets a connection skip the `ROLLBACK` it otherwise queues on return after
//!   raw SQL. It is a whitelist: one statement whose first keyword is a read or DML keyword,
//!   which cannot start or end a transaction block. Anything else (DDL, `SET`, `CALL`, `DO`,
//!   scripts, text the lexer does not recognise) is not plain, and the connection is reset.

/// What a SQL text holds, as far as the return path cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The first transaction-control statement in the text (`BEGIN`, `COMMIT`, …), by its
    /// first keyword as written in upper case.
    pub(crate) control: Option<&'static str>,
    /// One statement that cannot touch transaction or session state: it starts with
    /// `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `WITH`, `VALUES`, `TABLE` or `SHOW` and calls
    /// no `set_config`.
    pub(crate) plain: bool,
}

/// Statements whose first keyword(s) control the transaction.
fn control_keyword(first: &str, second: &str) -> Option<&'static str> {
    const SIMPLE: [&str; 8] = [
        "BEGIN",
        "START",
        "COMMIT",
        "END",
        "ROLLBACK",
        "ABORT",
        "SAVEPOINT",
        "RELEASE",
    ];
    if let Some(k) = SIMPLE.iter().find(|k| first.eq_ignore_ascii_case(k)) {
        return Some(k);
    }
    if first.eq_ignore_ascii_case("PREPARE") && second.eq_ignore_ascii_case("TRANSACTION") {
        return Some("PREPARE TRANSACTION");
    }
    None
}

fn plain_keyword(first: &str) -> bool {
    const PLAIN: [&str; 8] = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES", "TABLE", "SHOW",
    ];
    PLAIN.iter().any(|k| first.eq_ignore_ascii_case(k))
}

/// Per-statement state while scanning.
#[derive(Default)]
struct Stmt<'a> {
    first: Option<&'a str>,
    second: Option<&'a str>,
    /// The statement started with something other than a word (`(`, a number …).
    odd_start: bool,
    /// `CREATE` statement: `BEGIN`/`CASE` … `END` nesting of an SQL-standard body.
    creates: bool,
    atomic_depth: u32,
    calls_set_config: bool,
    /// The previous word, to see `BEGIN ATOMIC`.
    prev: Option<&'a str>,
}

/// Scans `sql`.
pub(crate) fn scan(sql: &str) -> Scan {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut control = None;
    let mut statements = 0u32;
    let mut plain = true;
    let mut cur = Stmt::default();
    let mut end_statement = |cur: &mut Stmt<'_>, control: &mut Option<&'static str>| {
        let Some(first) = cur.first else {
            if cur.odd_start {
                statements += 1;
                plain = false;
            }
            *cur = Stmt::default();
            return;
        };
        statements += 1;
        let second = cur.second.unwrap_or("");
        if let Some(k) = control_keyword(first, second) {
            control.get_or_insert(k);
        }
        if !plain_keyword(first) || cur.calls_set_config || statements > 1 {
            plain = false;
        }
        *cur = Stmt::default();
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i),
            b'\'' => {
                note_token(&mut cur);
                i = skip_quoted(b, i, b'\'', false);
            }
            b'"' => {
                // A quoted identifier is a word, but never a keyword.
                if cur.first.is_none() {
                    cur.odd_start = true;
                }
                i = skip_quoted(b, i, b'"', false);
            }
            b'$' => {
                note_token(&mut cur);
                i = skip_dollar(b, i);
            }
            b';' => {
                if cur.atomic_depth > 0 {
                    i += 1;
                    continue;
                }
                end_statement(&mut cur, &mut control);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'$') || b[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &sql[start..i];
                // E'…' (and e'…'): a string with backslash escapes.
                if word.eq_ignore_ascii_case("E") && b.get(i) == Some(&b'\'') {
                    note_token(&mut cur);
                    i = skip_quoted(b, i, b'\'', true);
                    continue;
                }
                note_word(&mut cur, word);
            }
            _ => {
                note_token(&mut cur);
                i += 1;
            }
        }
    }
    end_statement(&mut cur, &mut control);
    Scan {
        control,
        plain: plain && statements == 1,
    }
}

fn note_token(cur: &mut Stmt<'_>) {
    if cur.first.is_none() {
        cur.odd_start = true;
    }
}

fn note_word<'a>(cur: &mut Stmt<'a>, word: &'a str) {
    if cur.odd_start {
        // Not a statement that starts with a keyword: never plain, never control.
    } else if cur.first.is_none() {
        cur.first = Some(word);
        cur.creates = word.eq_ignore_ascii_case("CREATE");
    } else if cur.second.is_none() {
        cur.second = Some(word);
    }
    if word.eq_ignore_ascii_case("set_config") {
        cur.calls_set_config = true;
    }
    if cur.creates {
        let after_begin = cur.prev.is_some_and(|p| p.eq_ignore_ascii_case("BEGIN"));
        let opens = (word.eq_ignore_ascii_case("ATOMIC") && after_begin)
            || (cur.atomic_depth > 0 && word.eq_ignore_ascii_case("CASE"));
        if opens {
            cur.atomic_depth += 1;
        } else if cur.atomic_depth > 0 && word.eq_ignore_ascii_case("END") {
            cur.atomic_depth -= 1;
        }
    }
    cur.prev = Some(word);
}

/// Skips a (nested) block comment starting at `i`; returns the index after it.
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0u32;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// Skips a quoted string or identifier starting at `i` (the opening quote); a doubled quote
/// is an escaped quote, and with `backslash` a backslash escapes the next byte.
fn skip_quoted(b: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    i += 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// Skips `$tag$…$tag$` starting at `i`, or just the `$` of a parameter (`$1`).
fn skip_dollar(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    if b.get(j).is_some_and(u8::is_ascii_digit) {
        return j;
    }
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
        j += 1;
    }
    if b.get(j) != Some(&b'$') {
        return i + 1;
    }
    let tag = &b[i..=j];
    let mut k = j + 1;
    while k + tag.len() <= b.len() {
        if &b[k..k + tag.len()] == tag {
            return k + tag.len();
        }
        k += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::scan;

    fn control(sql: &str) -> Option<&'static str> {
        scan(sql).control
    }

    #[test]
    fn transaction_control_is_found_behind_comments_case_and_whitespace() {
        for (sql, k) in [
            ("BEGIN", "BEGIN"),
            ("begin", "BEGIN"),
            ("/* c */ BEGIN", "BEGIN"),
            ("/* a /* nested */ still comment */ BEGIN", "BEGIN"),
            ("-- c\nBEGIN", "BEGIN"),
            ("-- c\r\n  \t begin isolation level serializable", "BEGIN"),
            ("START TRANSACTION", "START"),
            ("/* c */ COMMIT", "COMMIT"),
            ("COMMIT AND CHAIN", "COMMIT"),
            ("END", "END"),
            ("end transaction", "END"),
            ("ABORT", "ABORT"),
            ("ROLLBACK TO SAVEPOINT x", "ROLLBACK"),
            ("SAVEPOINT x", "SAVEPOINT"),
            ("RELEASE x", "RELEASE"),
            ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
            ("COMMIT PREPARED 'x'", "COMMIT"),
            ("SELECT 1; BEGIN", "BEGIN"),
            ("CREATE TABLE t (a int);\n-- then\nCOMMIT;", "COMMIT"),
            ("SELECT 1;;begin;", "BEGIN"),
        ] {
            assert_eq!(control(sql), Some(k), "{sql:?}");
        }
    }

    #[test]
    fn keywords_inside_literals_comments_and_bodies_are_not_control() {
        for sql in [
            "SELECT 'BEGIN'",
            "SELECT 'a;'';BEGIN'",
            "SELECT E'\\';BEGIN'",
            "SELECT \"begin\" FROM t",
            "SELECT 1 -- ; BEGIN",
            "SELECT 1 /* ; BEGIN */",
            "DO $$ BEGIN PERFORM 1; END $$",
            "DO $body$ BEGIN COMMIT; END $body$",
            "SELECT $1::int",
            "PREPARE q AS SELECT 1",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "",
            "  ;  ",
        ] {
            assert_eq!(control(sql), None, "{sql:?}");
        }
    }

    #[test]
    fn only_one_read_or_dml_statement_is_plain() {
        for sql in [
            "SELECT 1",
            "  select pg_sleep(0.005)",
            "/* c */ INSERT INTO t VALUES (1)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "SELECT 1;",
            "SHOW search_path",
        ] {
            assert!(scan(sql).plain, "{sql:?}");
        }
        for sql in [
            "SET search_path = x",
            "SELECT set_config('search_path', 'x', false)",
            "SELECT 1; SELECT 2",
            "CALL p()",
            "DO $$ BEGIN END $$",
            "CREATE TABLE t (a int)",
            "(SELECT 1)",
            "\"weird\"",
            "BEGIN",
            "",
            "LISTEN x",
        ] {
            assert!(!scan(sql).plain, "{sql:?}");
        }
    }
}

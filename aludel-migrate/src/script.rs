//! Migration files: plain SQL with a header and two sections.
//!
//! ```text
//! -- aludel migration
//! -- revision: 0002_add_bio
//! -- parent: 0001_init
//! -- message: add bio
//! -- transactional: true
//!
//! -- +up
//! ALTER TABLE "users" ADD COLUMN "bio" text;
//!
//! -- +down
//! ALTER TABLE "users" DROP COLUMN "bio";
//! ```
//!
//! `parent: base` starts the chain. `transactional: false` runs the statements one by one
//! outside a transaction (for `CREATE INDEX CONCURRENTLY`). The checksum recorded when a
//! migration is applied is the SHA-256 of its `up` section (line endings normalised), so an
//! edit to what already ran is caught while the `down` section stays fixable.

use sha2::{Digest, Sha256};

use crate::diff::Plan;
use crate::error::{Error, Result};

/// One migration: its place in the chain and its SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// The revision id (the file name without `.sql`).
    pub revision: String,
    /// The revision it follows; `None` for the first.
    pub parent: Option<String>,
    /// What it does, in a few words.
    pub message: String,
    /// Runs in one transaction (the default).
    pub transactional: bool,
    /// The `up` section.
    pub up: String,
    /// The `down` section.
    pub down: String,
}

impl Migration {
    /// Parses a migration file; `name` is used for errors and, without a `revision:` header,
    /// as the revision (without `.sql`).
    pub fn parse(name: &str, text: &str) -> Result<Migration> {
        let text = text.replace("\r\n", "\n");
        let stem = name.rsplit('/').next().unwrap_or(name);
        let stem = stem.strip_suffix(".sql").unwrap_or(stem);
        let mut m = Migration {
            revision: stem.to_owned(),
            parent: None,
            message: String::new(),
            transactional: true,
            up: String::new(),
            down: String::new(),
        };
        let mut parent_seen = false;
        #[derive(PartialEq)]
        enum Part {
            Header,
            Up,
            Down,
        }
        let mut part = Part::Header;
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for line in text.lines() {
            let marker = line.trim();
            if marker == "-- +up" {
                if part != Part::Header {
                    return Err(Error::parse(
                        name,
                        "`-- +up` appears twice or after `-- +down`",
                    ));
                }
                part = Part::Up;
                continue;
            }
            if marker == "-- +down" {
                if part != Part::Up {
                    return Err(Error::parse(name, "`-- +down` must follow `-- +up`"));
                }
                part = Part::Down;
                continue;
            }
            match part {
                Part::Header => {
                    let Some(kv) = marker.strip_prefix("--") else {
                        if marker.is_empty() {
                            continue;
                        }
                        return Err(Error::parse(name, "SQL before `-- +up`"));
                    };
                    let Some((k, v)) = kv.split_once(':') else {
                        continue;
                    };
                    let v = v.trim();
                    match k.trim() {
                        "revision" => m.revision = v.to_owned(),
                        "parent" => {
                            parent_seen = true;
                            m.parent = (v != "base" && !v.is_empty()).then(|| v.to_owned());
                        }
                        "message" => m.message = v.to_owned(),
                        "transactional" => {
                            m.transactional = match v {
                                "true" => true,
                                "false" => false,
                                _ => {
                                    return Err(Error::parse(name, "transactional: true or false"));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Part::Up => up.push(line),
                Part::Down => down.push(line),
            }
        }
        if part == Part::Header {
            return Err(Error::parse(name, "no `-- +up` section"));
        }
        if !parent_seen {
            return Err(Error::parse(
                name,
                "no `-- parent:` header (use `base` for the first)",
            ));
        }
        m.up = up.join("\n").trim().to_owned();
        m.down = down.join("\n").trim().to_owned();
        Ok(m)
    }

    /// The file's text.
    pub fn to_file(&self) -> String {
        self.to_file_with(&[])
    }

    fn to_file_with(&self, header_notes: &[String]) -> String {
        let mut s = String::from("-- aludel migration\n");
        s.push_str(&format!("-- revision: {}\n", self.revision));
        s.push_str(&format!(
            "-- parent: {}\n",
            self.parent.as_deref().unwrap_or("base")
        ));
        s.push_str(&format!("-- message: {}\n", self.message));
        s.push_str(&format!("-- transactional: {}\n", self.transactional));
        for n in header_notes {
            s.push_str("--\n");
            for line in wrap(n, 94) {
                s.push_str(&format!("-- {line}\n"));
            }
        }
        s.push_str("\n-- +up\n");
        if !self.up.is_empty() {
            s.push_str(&self.up);
            s.push('\n');
        }
        s.push_str("\n-- +down\n");
        if !self.down.is_empty() {
            s.push_str(&self.down);
            s.push('\n');
        }
        s
    }

    /// SHA-256 of the `up` section, hex.
    pub fn checksum(&self) -> String {
        let digest = Sha256::digest(self.up.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The `up` statements, split at top-level semicolons.
    pub fn up_statements(&self) -> Vec<String> {
        split_statements(&self.up)
    }

    /// The `down` statements.
    pub fn down_statements(&self) -> Vec<String> {
        split_statements(&self.down)
    }
}

/// A new migration file from an up plan and a down plan, with the reviewer's notes (possible
/// renames) in the header and each destructive step marked.
pub fn render_migration(
    revision: &str,
    parent: Option<&str>,
    message: &str,
    up: &Plan,
    down: &Plan,
) -> String {
    let mut notes = Vec::new();
    for r in &up.reviews {
        notes.push(format!("REVIEW: {r}"));
    }
    let destructive = up.destructive_count();
    if destructive > 0 {
        notes.push(format!(
            "DESTRUCTIVE: {destructive} step(s) of `up` can lose data; each is marked below."
        ));
    }
    let m = Migration {
        revision: revision.to_owned(),
        parent: parent.map(str::to_owned),
        message: message.to_owned(),
        transactional: true,
        up: render_plan(up),
        down: render_plan(down),
    };
    m.to_file_with(&notes)
}

/// The SQL of a plan: each step's statements under a comment saying what it does.
pub fn render_plan(plan: &Plan) -> String {
    let mut blocks = Vec::new();
    for op in &plan.ops {
        let mut b = String::new();
        if op.is_destructive() {
            b.push_str(&format!("-- DESTRUCTIVE: {}\n", op.describe()));
        } else {
            b.push_str(&format!("-- {}\n", op.describe()));
        }
        for s in op.statements() {
            b.push_str(&s);
            b.push_str(";\n");
        }
        blocks.push(b);
    }
    blocks.join("\n").trim_end().to_owned()
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Splits SQL text at top-level `;`: semicolons inside quotes (`'…'`, `E'…'`, `"…"`),
/// dollar quotes (`$tag$…$tag$`) and comments (`--`, nested `/* */`) do not split. Statements
/// that are empty or only comments are left out.
pub fn split_statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let push = |s: &str, out: &mut Vec<String>| {
        let t = s.trim();
        if !strip_comments(t).trim().is_empty() {
            out.push(t.to_owned());
        }
    };
    while i < b.len() {
        match b[i] {
            b'\'' => {
                let escaped = i > 0 && matches!(b[i - 1], b'E' | b'e');
                i += 1;
                while i < b.len() {
                    if escaped && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while i < b.len() && depth > 0 {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => i = skip_dollar(sql, i),
            b';' => {
                push(&sql[start..i], &mut out);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < sql.len() {
        push(&sql[start..], &mut out);
    }
    out
}

/// Past a `$tag$…$tag$` string starting at `i`, or one byte on when `$` starts none (`$1`).
fn skip_dollar(sql: &str, i: usize) -> usize {
    let rest = &sql[i + 1..];
    let Some(end) = rest.find('$') else {
        return i + 1;
    };
    let tag = &rest[..end];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(k, c)| c == '_' || c.is_alphabetic() || (k > 0 && c.is_ascii_digit()));
    if !valid {
        return i + 1;
    }
    let delim = format!("${tag}$");
    let body = i + delim.len();
    match sql[body..].find(&delim) {
        Some(n) => body + n + delim.len(),
        None => sql.len(),
    }
}

/// The text without `--` comment lines (for telling comment-only statements apart).
fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "-- a comment; not a split\nCREATE TABLE \"a;b\" (x text DEFAULT 'x;y');\n\
                   DO $body$ BEGIN PERFORM 1; END $body$;\n/* c; /* nested; */ */ SELECT E'\\';';\n\
                   SELECT $1;\n-- trailing comment only";
        let got = split_statements(sql);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].ends_with("DEFAULT 'x;y')"));
        assert_eq!(got[1], "DO $body$ BEGIN PERFORM 1; END $body$");
        assert!(got[2].ends_with("SELECT E'\\';'"));
        assert_eq!(got[3], "SELECT $1");
    }

    #[test]
    fn file_round_trips_and_checksum_covers_up_only() {
        let m = Migration::parse(
            "0002_x.sql",
            "-- aludel migration\n-- revision: 0002_x\n-- parent: 0001_a\n-- message: add x\n\
             -- transactional: false\n\n-- +up\nCREATE INDEX CONCURRENTLY i ON t (x);\n\n-- +down\nDROP INDEX i;\n",
        )
        .unwrap();
        assert_eq!(m.parent.as_deref(), Some("0001_a"));
        assert!(!m.transactional);
        let again = Migration::parse("0002_x.sql", &m.to_file()).unwrap();
        assert_eq!(again, m);
        let mut edited_down = m.clone();
        edited_down.down = "DROP INDEX IF EXISTS i;".into();
        assert_eq!(edited_down.checksum(), m.checksum());
        let mut edited_up = m.clone();
        edited_up.up.push_str("\nSELECT 1;");
        assert_ne!(edited_up.checksum(), m.checksum());
    }

    #[test]
    fn malformed_files_are_parse_errors() {
        assert!(
            Migration::parse("a.sql", "-- parent: base\nSELECT 1;")
                .unwrap_err()
                .is_parse()
        );
        assert!(
            Migration::parse("a.sql", "-- +up\nSELECT 1;")
                .unwrap_err()
                .is_parse()
        );
    }
}

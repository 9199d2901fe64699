//! The one-way data flow of `docs/architecture.md`, checked from the source: every
//! `crate::…` path in `src/` (in `use` lines and in code) must name a module *below* the
//! file's own top-level module in the order written in the architecture document. Root
//! re-exports (`crate::Engine`) count as the module they come from. No database needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The marker line in docs/architecture.md; the line after it lists the layers.
const MARKER: &str = "<!-- layers: lowest first; tests/layers.rs enforces this order -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The layer order, lowest first, from the architecture document.
fn layer_order() -> Vec<String> {
    let doc =
        fs::read_to_string(root().join("docs/architecture.md")).expect("read architecture.md");
    let mut lines = doc.lines().skip_while(|l| l.trim() != MARKER);
    assert!(
        lines.next().is_some(),
        "docs/architecture.md has no `{MARKER}` line"
    );
    let line = lines.next().expect("a line of layers after the marker");
    let names: Vec<String> = line
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect();
    assert!(
        names.len() > 3,
        "no layers on the line after the marker: {line}"
    );
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments, string and char literals blanked out (newlines kept).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &b[i..j]);
            i = j;
        } else if c == b'r'
            && matches!(b.get(i + 1), Some(b'#') | Some(b'"'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let hashes = b[i + 1..].iter().take_while(|&&h| h == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain((0..hashes).map(|_| '#'))
                .collect();
            let start = i + 2 + hashes;
            let end = src[start..]
                .find(&close)
                .map_or(b.len(), |n| start + n + close.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '"'), or a lifetime ('a) left as it is.
            let len = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..].iter().position(|&x| x == b'\'').map(|p| p + 3)
            } else {
                let ch = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            match len {
                Some(n) => {
                    blank(&mut out, &b[i..i + n]);
                    i += n;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().expect("char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segment of every `crate::…` path in `code`: `crate::a::b` gives `a`,
/// `crate::{a, b::c}` gives `a` and `b`.
fn crate_targets(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let (mut depth, mut name, mut names) = (0, String::new(), Vec::new());
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => names.push(std::mem::take(&mut name)),
                    _ if depth == 0 => name.push(ch),
                    _ => {}
                }
            }
            names.push(name);
            out.extend(
                names
                    .iter()
                    .map(|n| ident_at(n.trim()).to_owned())
                    .filter(|n| !n.is_empty()),
            );
        } else {
            let name = ident_at(after);
            if !name.is_empty() {
                out.push(name.to_owned());
            }
        }
    }
    out
}

/// Names the crate root re-exports from a module: `pub use crate::engine::{Engine, …}`.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let code = code_only(lib);
    let mut map = BTreeMap::new();
    for stmt in code.split(';') {
        let Some(at) = stmt.find("pub use crate::") else {
            continue;
        };
        let path = &stmt[at + "pub use crate::".len()..];
        let module = ident_at(path).to_owned();
        let tail = &path[module.len()..];
        match (tail.find('{'), tail.rfind('}')) {
            (Some(a), Some(z)) => {
                let mut depth = 0;
                let mut name = String::new();
                let mut names = Vec::new();
                for ch in tail[a + 1..z].chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => names.push(std::mem::take(&mut name)),
                        _ => name.push(ch),
                    }
                }
                names.push(name);
                for n in names {
                    let last = n.rsplit("::").next().unwrap_or("").trim();
                    let last = last.rsplit(" as ").next().unwrap_or(last).trim();
                    if !last.is_empty() {
                        map.insert(last.to_owned(), module.clone());
                    }
                }
            }
            _ => {
                let last = tail.rsplit("::").next().unwrap_or("").trim();
                if !last.is_empty() {
                    map.insert(last.to_owned(), module.clone());
                }
            }
        }
    }
    map
}

fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts = rel.components();
    let first = parts.next()?.as_os_str().to_str()?.to_owned();
    if parts.next().is_some() {
        return Some(first);
    }
    let stem = first.strip_suffix(".rs")?;
    (stem != "lib").then(|| stem.to_owned())
}

#[test]
fn imports_only_go_down_the_layers() {
    let order = layer_order();
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let src = root().join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).expect("read lib.rs");
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();

    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = top_module(&src, file) else {
            continue;
        };
        modules.insert(module.clone());
        let code = code_only(&fs::read_to_string(file).expect("read source"));
        let shown = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        for target in crate_targets(&code) {
            let target_module = if rank.contains_key(target.as_str()) {
                target.clone()
            } else if let Some(m) = reexports.get(&target) {
                m.clone()
            } else {
                problems.push(format!(
                    "{shown}: `crate::{target}` is neither a layer nor a root re-export"
                ));
                continue;
            };
            if target_module != module {
                edges
                    .entry((module.clone(), target_module))
                    .or_default()
                    .insert(shown.clone());
            }
        }
    }
    for m in &modules {
        if !rank.contains_key(m.as_str()) {
            problems.push(format!(
                "module `{m}` is not in the layer order of docs/architecture.md"
            ));
        }
    }
    for m in &order {
        if !modules.contains(m) {
            problems.push(format!(
                "layer `{m}` of docs/architecture.md is not a module of src/"
            ));
        }
    }
    for ((from, to), files) in &edges {
        let (Some(a), Some(b)) = (rank.get(from.as_str()), rank.get(to.as_str())) else {
            continue;
        };
        if b > a {
            problems.push(format!(
                "`{from}` imports `{to}`, a layer above it ({})",
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "layer order {order:?} broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_paths_in_code_and_groups_not_in_comments_or_strings() {
    let code = code_only(
        "use crate::{a, b::{c, d}};\n// crate::hidden\nlet s = \"crate::nope\"; let r = r#\"crate::raw\"#;\n\
         fn f<'a>(x: &'a crate::e::T) -> char { let _ = crate::F; '\"' }\n/* crate::block */ $crate::macro_path",
    );
    assert_eq!(crate_targets(&code), ["a", "b", "e", "F"]);
    let map =
        root_reexports("pub use crate::engine::{Engine, x::Y as Z};\npub use crate::error::Error;");
    assert_eq!(map.get("Engine").map(String::as_str), Some("engine"));
    assert_eq!(map.get("Z").map(String::as_str), Some("engine"));
    assert_eq!(map.get("Error").map(String::as_str), Some("error"));
}

/// The names the crate root exports publicly: every `pub use` of lib.rs outside the
/// `__private` module and not under `#[doc(hidden)]`, groups expanded.
fn public_root_names(lib: &str) -> Vec<String> {
    let mut code = code_only(lib);
    if let Some(start) = code.find("pub mod __private") {
        let open = start + code[start..].find('{').expect("module body");
        let (mut depth, mut end) = (0, open);
        for (i, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = open + i + 1;
                break;
            }
        }
        code.replace_range(start..end, "");
    }
    let mut names = Vec::new();
    for stmt in code.split(';') {
        let Some(at) = stmt.find("pub use ") else {
            continue;
        };
        if stmt[..at].contains("#[doc(hidden)]") {
            continue;
        }
        let path = stmt[at + "pub use ".len()..].trim();
        match (path.find('{'), path.rfind('}')) {
            (Some(a), Some(z)) => names.extend(
                path[a + 1..z]
                    .split(',')
                    .map(|n| n.rsplit("::").next().unwrap_or("").trim().to_owned())
                    .map(|n| n.rsplit(" as ").next().unwrap_or("").trim().to_owned())
                    .filter(|n| !n.is_empty()),
            ),
            _ => names.push(path.rsplit("::").next().unwrap_or(path).trim().to_owned()),
        }
    }
    names
}

#[test]
fn the_crate_root_exports_few_names() {
    let lib = fs::read_to_string(root().join("src/lib.rs")).expect("read lib.rs");
    let names = public_root_names(&lib);
    assert!(
        names.len() <= 30,
        "the crate root exports {} names (keep it to the ~30 a program needs first; the rest \
         belongs in a namespace): {names:?}",
        names.len()
    );
    for first in [
        "Engine",
        "AsyncSession",
        "Obj",
        "Model",
        "Error",
        "Result",
        "select",
        "sql",
    ] {
        assert!(
            names.iter().any(|n| n == first),
            "`{first}` is not at the crate root"
        );
    }
}

//! Models from a database: `#[derive(Model)]` structs (and `#[derive(SqlEnum)]` enums) for a
//! reflected schema, with relationships inferred from foreign keys — the `sqlacodegen` path
//! for teams adopting aludel on a live database.
//!
//! Columns the server fills (identity, `GENERATED ALWAYS` identity, default, stored
//! generated expression) get `Generated<T>` fields, so a model built with
//! `Generated::unset()` leaves them to the server and a set value is sent.
//!
//! What the derive cannot declare (expression, partial or descending indexes, `ON UPDATE`
//! actions, multi-column foreign keys, comments) is written as a `// codegen:` comment next
//! to the item, and `check` will report it as a difference.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::diff::uses_type;
use crate::schema::{Column, ConstraintKind, FkAction, Identity, Schema, Table};

/// Rust source for the schema's tables and enum types.
pub fn codegen(schema: &Schema) -> String {
    let names = StructNames::new(schema);
    let mut body = String::new();
    let mut uses: BTreeSet<&str> = BTreeSet::from(["Model"]);
    for e in &schema.enums {
        uses.insert("SqlEnum");
        let _ = writeln!(body, "/// The enum type `{}`.", e.name);
        let _ = writeln!(
            body,
            "#[derive(SqlEnum, Debug, Clone, Copy, PartialEq, Eq)]"
        );
        let _ = writeln!(body, "#[aludel(type_name = {})]", rust_str(&e.name));
        let _ = writeln!(body, "pub enum {} {{", pascal(&e.name));
        let mut seen = BTreeSet::new();
        for label in &e.labels {
            let mut v = pascal(label);
            if v.is_empty() || v.starts_with(|c: char| c.is_ascii_digit()) {
                v = format!("V{v}");
            }
            while !seen.insert(v.clone()) {
                v.push('_');
            }
            let _ = writeln!(body, "    /// `{label}`.");
            let _ = writeln!(body, "    #[aludel(rename = {})]", rust_str(label));
            let _ = writeln!(body, "    {v},");
        }
        let _ = writeln!(body, "}}\n");
    }
    for t in &schema.tables {
        if t.primary_key().is_some() {
            model(schema, t, &names, &mut uses, &mut body);
        } else {
            let _ = writeln!(
                body,
                "// codegen: table `{}` has no primary key, which a model needs: left out.\n",
                t.name
            );
        }
    }
    let mut out = String::from(
        "//! Models generated from the database by `aludel_migrate::codegen`: review them, then \
         own them.\n\n",
    );
    let list: Vec<&str> = uses.into_iter().collect();
    let _ = writeln!(out, "use aludel::{{{}}};\n", list.join(", "));
    out.push_str(&body);
    let _ = writeln!(
        out,
        "/// Every table, for `create_all` and `aludel_migrate::cli`."
    );
    let _ = writeln!(out, "pub const TABLES: &[&aludel::schema::TableDef] = &[");
    for t in schema.tables.iter().filter(|t| t.primary_key().is_some()) {
        let _ = writeln!(out, "    {}::TABLE,", names.of(&t.name));
    }
    let _ = writeln!(out, "];");
    out
}

/// Struct names by table, made unique.
struct StructNames(Vec<(String, String)>);

impl StructNames {
    fn new(schema: &Schema) -> Self {
        let mut taken: BTreeSet<String> = schema.enums.iter().map(|e| pascal(&e.name)).collect();
        let mut out = Vec::new();
        for t in &schema.tables {
            let mut n = pascal(&singular(&t.name));
            if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) {
                n = format!("T{n}");
            }
            while !taken.insert(n.clone()) {
                n.push_str("Row");
            }
            out.push((t.name.clone(), n));
        }
        StructNames(out)
    }

    fn of(&self, table: &str) -> String {
        self.0
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| pascal(table))
    }
}

fn model(
    schema: &Schema,
    t: &Table,
    names: &StructNames,
    uses: &mut BTreeSet<&str>,
    out: &mut String,
) {
    let pk: Vec<String> = t
        .primary_key()
        .map(|c| c.columns.clone())
        .unwrap_or_default();
    let mut table_attrs = vec![format!("table = {}", rust_str(&t.name))];
    let mut notes: Vec<String> = Vec::new();
    let mut unique_cols = BTreeSet::new();
    for c in t.constraints_of(ConstraintKind::Unique) {
        if c.columns.len() == 1 && c.definition == format!("UNIQUE ({})", pg_ident(&c.columns[0])) {
            unique_cols.insert(c.columns[0].clone());
        } else if c.definition.starts_with("UNIQUE (") && !c.definition.contains("NULLS") {
            table_attrs.push(format!("unique({})", c.columns.join(", ")));
        } else {
            notes.push(format!("unique constraint {}: {}", c.name, c.definition));
        }
    }
    let mut index_cols = BTreeSet::new();
    for i in &t.indexes {
        let cols: Option<Vec<&str>> = i.columns.iter().map(|c| c.as_deref()).collect();
        match cols {
            Some(cols) if i.simple && !i.unique && cols.len() == 1 => {
                index_cols.insert(cols[0].to_owned());
            }
            Some(cols) if i.simple && !i.unique => {
                table_attrs.push(format!("index({})", cols.join(", ")));
            }
            _ => notes.push(format!(
                "index {}: {}INDEX USING {}",
                i.name,
                if i.unique { "UNIQUE " } else { "" },
                i.definition
            )),
        }
    }
    for c in t.constraints_of(ConstraintKind::Check) {
        let expr = c
            .definition
            .strip_prefix("CHECK (")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or(&c.definition);
        table_attrs.push(format!(
            "check(name = {}, expr = {})",
            rust_str(&c.name),
            rust_str(expr)
        ));
    }
    for c in t.constraints_of(ConstraintKind::ForeignKey) {
        if c.columns.len() > 1 {
            notes.push(format!(
                "multi-column foreign key {}: {}",
                c.name, c.definition
            ));
        }
    }
    for c in t.constraints_of(ConstraintKind::Exclusion) {
        notes.push(format!("exclusion constraint {}: {}", c.name, c.definition));
    }
    if let Some(c) = &t.comment {
        notes.push(format!("table comment: {c:?}"));
    }
    let sname = names.of(&t.name);
    let _ = writeln!(out, "/// The table `{}`.", t.name);
    for n in &notes {
        let _ = writeln!(out, "// codegen: not declared by the derive: {n}");
    }
    let _ = writeln!(out, "#[derive(Model, Debug, Clone)]");
    let _ = writeln!(out, "#[aludel({})]", table_attrs.join(", "));
    let _ = writeln!(out, "pub struct {sname} {{");
    let mut fields: BTreeSet<String> = BTreeSet::new();
    for c in &t.columns {
        let field = field_name(&c.name);
        fields.insert(field.clone());
        if c.identity.is_some() || c.default.is_some() || c.generated.is_some() {
            uses.insert("Generated");
        }
        column(
            schema,
            t,
            c,
            &field,
            &pk,
            &unique_cols,
            &index_cols,
            names,
            out,
        );
    }
    relations(schema, t, names, &mut fields, uses, out);
    let _ = writeln!(out, "}}\n");
}

#[allow(clippy::too_many_arguments)]
fn column(
    schema: &Schema,
    t: &Table,
    c: &Column,
    field: &str,
    pk: &[String],
    unique_cols: &BTreeSet<String>,
    index_cols: &BTreeSet<String>,
    names: &StructNames,
    out: &mut String,
) {
    let mut attrs = Vec::new();
    if field != c.name {
        attrs.push(format!("column = {}", rust_str(&c.name)));
    }
    if pk.contains(&c.name) {
        attrs.push("primary_key".to_owned());
    }
    match c.identity {
        Some(Identity::ByDefault) => attrs.push("identity".to_owned()),
        Some(Identity::Always) => attrs.push("identity = \"always\"".to_owned()),
        None => {}
    }
    if let Some(d) = &c.default {
        attrs.push(format!("server_default = {}", rust_str(d)));
    }
    if let Some(g) = &c.generated {
        attrs.push(format!("generated = {}", rust_str(g)));
    }
    let server_filled = c.identity.is_some() || c.default.is_some() || c.generated.is_some();
    if unique_cols.contains(&c.name) {
        attrs.push("unique".to_owned());
    }
    if index_cols.contains(&c.name) {
        attrs.push("index".to_owned());
    }
    let (rust, default_ty) = rust_type(schema, &c.ty);
    match &default_ty {
        Some(d) if *d == c.ty => {}
        Some(_) | None => attrs.push(format!("sql_type = {}", rust_str(&c.ty))),
    }
    if rust == "String" && default_ty.is_none() {
        let _ = writeln!(
            out,
            "    // codegen: no Rust type for `{}`: read and written as text",
            c.ty
        );
    }
    let fk = t
        .constraints_of(ConstraintKind::ForeignKey)
        .find(|k| k.columns == [c.name.clone()]);
    if let Some(fk) = fk.and_then(|k| k.foreign_key.as_ref()) {
        if schema.table(&fk.table).is_some() && fk.columns.len() == 1 {
            attrs.push(format!(
                "references = \"{}::{}\"",
                names.of(&fk.table),
                field_name(&fk.columns[0])
            ));
            if fk.on_delete != FkAction::NoAction {
                attrs.push(format!(
                    "on_delete = \"{}\"",
                    fk.on_delete.sql().to_ascii_lowercase()
                ));
            }
            if fk.on_update != FkAction::NoAction {
                let _ = writeln!(
                    out,
                    "    // codegen: not declared by the derive: ON UPDATE {}",
                    fk.on_update.sql()
                );
            }
        }
    }
    if let Some(cm) = &c.comment {
        let _ = writeln!(out, "    // codegen: column comment {cm:?}");
    }
    let _ = writeln!(out, "    /// `{}` ({}).", c.name, c.ty);
    if !attrs.is_empty() {
        let _ = writeln!(out, "    #[aludel({})]", attrs.join(", "));
    }
    let mut ty = if c.nullable {
        format!("Option<{rust}>")
    } else {
        rust
    };
    if server_filled {
        ty = format!("Generated<{ty}>");
    }
    let _ = writeln!(out, "    pub {field}: {ty},");
}

/// Relationship fields: many-to-one for each single-column foreign key to another table's
/// primary key, one-to-many on the other side.
fn relations(
    schema: &Schema,
    t: &Table,
    names: &StructNames,
    fields: &mut BTreeSet<String>,
    uses: &mut BTreeSet<&str>,
    out: &mut String,
) {
    let unique = |base: String, fields: &mut BTreeSet<String>| {
        let mut n = base;
        while !fields.insert(n.clone()) {
            n.push_str("_rel");
        }
        n
    };
    for (fk_col, target) in simple_fks(schema, t) {
        let base = fk_col
            .strip_suffix("_id")
            .map_or_else(|| format!("{fk_col}_ref"), str::to_owned);
        let name = unique(field_name(&base), fields);
        uses.insert("One");
        let _ = writeln!(
            out,
            "    /// The `{}` row `{fk_col}` points to.",
            target.name
        );
        let _ = writeln!(
            out,
            "    #[aludel(many_to_one(fk = {}))]",
            field_name(fk_col)
        );
        let _ = writeln!(out, "    pub {name}: One<{}>,", names.of(&target.name));
    }
    for child in schema.tables.iter().filter(|c| c.primary_key().is_some()) {
        let fks: Vec<&str> = simple_fks(schema, child)
            .into_iter()
            .filter(|(_, target)| target.name == t.name)
            .map(|(col, _)| col)
            .collect();
        for col in &fks {
            let base = if fks.len() == 1 {
                child.name.clone()
            } else {
                format!(
                    "{}_by_{}",
                    child.name,
                    col.strip_suffix("_id").unwrap_or(col)
                )
            };
            let name = unique(field_name(&base), fields);
            uses.insert("Many");
            let _ = writeln!(
                out,
                "    /// The `{}` rows whose `{col}` points here.",
                child.name
            );
            let _ = writeln!(
                out,
                "    #[aludel(one_to_many(fk = {}::{}))]",
                names.of(&child.name),
                field_name(col)
            );
            let _ = writeln!(out, "    pub {name}: Many<{}>,", names.of(&child.name));
        }
    }
    for link in &schema.tables {
        let Some([(mine, a), (theirs, b)]) = link_table(schema, link) else {
            continue;
        };
        for ((local, here), (remote, there)) in [((mine, a), (theirs, b)), ((theirs, b), (mine, a))]
        {
            if here.name != t.name {
                continue;
            }
            let plain = field_name(&there.name);
            let base = if fields.contains(&plain) {
                field_name(&format!("{}_{}", singular(&link.name), there.name))
            } else {
                plain
            };
            let name = unique(base, fields);
            uses.insert("Many");
            let _ = writeln!(
                out,
                "    /// The `{}` rows linked through `{}`.",
                there.name, link.name
            );
            let ln = names.of(&link.name);
            let _ = writeln!(
                out,
                "    #[aludel(many_to_many(secondary = {ln}, local = {ln}::{}, remote = {ln}::{}))]",
                field_name(local),
                field_name(remote)
            );
            let _ = writeln!(out, "    pub {name}: Many<{}>,", names.of(&there.name));
        }
    }
}

/// A pure link table: two columns, both the primary key, each a foreign key to the primary
/// key of a different table (many-to-many between those two).
fn link_table<'a>(schema: &'a Schema, t: &'a Table) -> Option<[(&'a str, &'a Table); 2]> {
    let fks = simple_fks(schema, t);
    let pk = t.primary_key()?;
    match fks.as_slice() {
        [a, b] if t.columns.len() == 2 && pk.columns.len() == 2 && a.1.name != b.1.name => {
            Some([*a, *b])
        }
        _ => None,
    }
}

/// `(column, referenced table)` for each single-column foreign key of `t` to the whole
/// single-column primary key of a table in the schema.
fn simple_fks<'a>(schema: &'a Schema, t: &'a Table) -> Vec<(&'a str, &'a Table)> {
    t.constraints_of(ConstraintKind::ForeignKey)
        .filter_map(|c| {
            let fk = c.foreign_key.as_ref()?;
            let target = schema.table(&fk.table)?;
            let pk = target.primary_key()?;
            (c.columns.len() == 1 && pk.columns == fk.columns)
                .then(|| (c.columns[0].as_str(), target))
        })
        .collect()
}

/// The Rust type for a reflected type, and the type `create_all` makes for that Rust type
/// (`None` when there is no Rust type for it).
fn rust_type(schema: &Schema, ty: &str) -> (String, Option<String>) {
    if let Some(elem) = ty.strip_suffix("[]") {
        let (r, d) = rust_type(schema, elem);
        let is_enum = schema.enums.iter().any(|e| uses_type(elem, &e.name));
        return match d {
            Some(d) if !is_enum => (format!("Vec<{r}>"), Some(format!("{d}[]"))),
            _ => ("String".to_owned(), None),
        };
    }
    if let Some(e) = schema.enums.iter().find(|e| uses_type(ty, &e.name)) {
        return (pascal(&e.name), Some(ty.to_owned()));
    }
    let (r, d): (&str, &str) = match ty {
        "smallint" => ("i16", ty),
        "integer" => ("i32", ty),
        "bigint" => ("i64", ty),
        "real" => ("f32", ty),
        "double precision" => ("f64", ty),
        "boolean" => ("bool", ty),
        "text" => ("String", ty),
        "bytea" => ("Vec<u8>", ty),
        "oid" => ("u32", ty),
        "\"char\"" => ("i8", ty),
        "uuid" => ("uuid::Uuid", ty),
        "jsonb" => ("serde_json::Value", ty),
        "json" => ("serde_json::Value", "jsonb"),
        "date" => ("chrono::NaiveDate", ty),
        "time without time zone" => ("chrono::NaiveTime", ty),
        "timestamp without time zone" => ("chrono::NaiveDateTime", ty),
        "timestamp with time zone" => ("chrono::DateTime<chrono::Utc>", ty),
        _ if ty.starts_with("character") => ("String", "text"),
        _ if ty.starts_with("numeric") => ("rust_decimal::Decimal", "numeric"),
        _ => return ("String".to_owned(), None),
    };
    (r.to_owned(), Some(d.to_owned()))
}

/// `users` → `user`, `categories` → `category`, `addresses` → `address`.
fn singular(name: &str) -> String {
    if let Some(s) = name.strip_suffix("ies") {
        return format!("{s}y");
    }
    for end in ["sses", "shes", "ches", "xes"] {
        if name.ends_with(end) {
            return name[..name.len() - 2].to_owned();
        }
    }
    if name.ends_with('s') && !name.ends_with("ss") && !name.ends_with("us") {
        return name[..name.len() - 1].to_owned();
    }
    name.to_owned()
}

fn pascal(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|f| {
                    f.to_uppercase()
                        .chain(cs.flat_map(char::to_lowercase))
                        .collect::<String>()
                })
                .unwrap_or_default()
        })
        .collect()
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// A snake_case Rust field name for a column (keywords get a trailing `_`).
fn field_name(col: &str) -> String {
    let mut s = String::new();
    for c in col.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else {
            s.push('_');
        }
    }
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// How PostgreSQL writes an identifier in definitions: bare when it is lower-case letters,
/// digits and underscores, quoted otherwise.
fn pg_ident(name: &str) -> String {
    let bare = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_owned()
    } else {
        aludel::query::quote_ident(name)
    }
}

fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(singular("users"), "user");
        assert_eq!(singular("categories"), "category");
        assert_eq!(singular("addresses"), "address");
        assert_eq!(singular("status"), "status");
        assert_eq!(pascal("article_tags"), "ArticleTags");
        assert_eq!(field_name("type"), "type_");
        assert_eq!(field_name("Full Name"), "full_name");
    }
}

//! SQL for each [`Op`]: plain statements a reviewer can read and edit. Identifiers are
//! quoted; types, defaults and definitions are the server's own spelling.

use aludel::query::quote_ident as q;

use crate::diff::{Op, uses_type};
use crate::schema::{Column, Table};

/// A SQL string literal.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Op {
    /// One line saying what the step does (the comment above its SQL in a migration file).
    pub fn describe(&self) -> String {
        match self {
            Op::CreateEnum(e) => format!("create enum type \"{}\"", e.name),
            Op::AddEnumValue { ty, label, .. } => {
                format!("add value '{label}' to enum type \"{ty}\"")
            }
            Op::RecreateEnum { from, to, .. } => {
                let gone: Vec<String> = from
                    .labels
                    .iter()
                    .filter(|l| !to.labels.contains(l))
                    .map(|l| literal(l))
                    .collect();
                let what = if gone.is_empty() {
                    "to reorder its labels".to_owned()
                } else {
                    format!(
                        "without {}; rows holding it make this step fail",
                        gone.join(", ")
                    )
                };
                format!("rebuild enum type \"{}\" {what}", to.name)
            }
            Op::DropEnum(e) => format!("drop enum type \"{}\"", e.name),
            Op::CreateTable(t) => format!("create table \"{}\"", t.name),
            Op::DropTable(t) => format!("drop table \"{}\" and its rows", t.name),
            Op::AddColumn { table, column } => {
                format!("add column \"{table}\".\"{}\"", column.name)
            }
            Op::DropColumn { table, column } => {
                format!("drop column \"{table}\".\"{}\" and its data", column.name)
            }
            Op::AlterColumn { table, from, to } => {
                let mut what = Vec::new();
                if from.ty != to.ty {
                    what.push(format!("type {} -> {}", from.ty, to.ty));
                }
                if from.nullable != to.nullable {
                    what.push(
                        if to.nullable {
                            "drop NOT NULL"
                        } else {
                            "set NOT NULL"
                        }
                        .to_owned(),
                    );
                }
                if from.default != to.default {
                    what.push("default".to_owned());
                }
                if from.identity != to.identity {
                    what.push("identity".to_owned());
                }
                format!(
                    "alter column \"{table}\".\"{}\": {}",
                    to.name,
                    what.join(", ")
                )
            }
            Op::ReplaceGeneratedColumn { table, to, .. } => format!(
                "replace generated column \"{table}\".\"{}\" (values are recomputed)",
                to.name
            ),
            Op::AddConstraint { table, constraint } => {
                format!("add constraint \"{}\" on \"{table}\"", constraint.name)
            }
            Op::DropConstraint { table, constraint } => {
                format!("drop constraint \"{}\" on \"{table}\"", constraint.name)
            }
            Op::CreateIndex { table, index } => {
                format!("create index \"{}\" on \"{table}\"", index.name)
            }
            Op::DropIndex { table, index } => {
                format!("drop index \"{}\" on \"{table}\"", index.name)
            }
            Op::TableComment { table, .. } => format!("comment on table \"{table}\""),
            Op::ColumnComment { table, column, .. } => {
                format!("comment on column \"{table}\".\"{column}\"")
            }
        }
    }

    /// The step's SQL statements, without trailing semicolons.
    pub fn statements(&self) -> Vec<String> {
        match self {
            Op::CreateEnum(e) => vec![create_enum(&e.name, &e.labels)],
            Op::AddEnumValue {
                ty,
                label,
                before,
                after,
            } => {
                let pos = match (before, after) {
                    (Some(b), _) => format!(" BEFORE {}", literal(b)),
                    (None, Some(a)) => format!(" AFTER {}", literal(a)),
                    (None, None) => String::new(),
                };
                vec![format!(
                    "ALTER TYPE {} ADD VALUE {}{pos}",
                    q(ty),
                    literal(label)
                )]
            }
            Op::RecreateEnum { from, to, columns } => {
                recreate_enum(&from.name, &to.labels, columns)
            }
            Op::DropEnum(e) => vec![format!("DROP TYPE {}", q(&e.name))],
            Op::CreateTable(t) => vec![create_table(t)],
            Op::DropTable(t) => vec![format!("DROP TABLE {}", q(&t.name))],
            Op::AddColumn { table, column } => vec![format!(
                "ALTER TABLE {} ADD COLUMN {}",
                q(table),
                column_def(column)
            )],
            Op::DropColumn { table, column } => vec![format!(
                "ALTER TABLE {} DROP COLUMN {}",
                q(table),
                q(&column.name)
            )],
            Op::AlterColumn { table, from, to } => alter_column(table, from, to),
            Op::ReplaceGeneratedColumn { table, from, to } => vec![
                format!("ALTER TABLE {} DROP COLUMN {}", q(table), q(&from.name)),
                format!("ALTER TABLE {} ADD COLUMN {}", q(table), column_def(to)),
            ],
            Op::AddConstraint { table, constraint } => vec![format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                q(table),
                q(&constraint.name),
                constraint.definition
            )],
            Op::DropConstraint { table, constraint } => vec![format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                q(table),
                q(&constraint.name)
            )],
            Op::CreateIndex { table, index } => vec![format!(
                "CREATE {}INDEX {} ON {} USING {}",
                if index.unique { "UNIQUE " } else { "" },
                q(&index.name),
                q(table),
                index.definition
            )],
            Op::DropIndex { index, .. } => vec![format!("DROP INDEX {}", q(&index.name))],
            Op::TableComment { table, comment } => vec![format!(
                "COMMENT ON TABLE {} IS {}",
                q(table),
                comment
                    .as_deref()
                    .map_or_else(|| "NULL".to_owned(), literal)
            )],
            Op::ColumnComment {
                table,
                column,
                comment,
            } => vec![format!(
                "COMMENT ON COLUMN {}.{} IS {}",
                q(table),
                q(column),
                comment
                    .as_deref()
                    .map_or_else(|| "NULL".to_owned(), literal)
            )],
        }
    }
}

fn create_enum(name: &str, labels: &[String]) -> String {
    let list: Vec<String> = labels.iter().map(|l| literal(l)).collect();
    format!("CREATE TYPE {} AS ENUM ({})", q(name), list.join(", "))
}

fn recreate_enum(name: &str, labels: &[String], columns: &[(String, Column)]) -> Vec<String> {
    let old = format!("{name}__aludel_old");
    let mut out = vec![
        format!("ALTER TYPE {} RENAME TO {}", q(name), q(&old)),
        create_enum(name, labels),
    ];
    for (table, c) in columns {
        let array = if c.ty.ends_with("[]") { "[]" } else { "" };
        if c.default.is_some() {
            out.push(format!(
                "ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT",
                q(table),
                q(&c.name)
            ));
        }
        out.push(format!(
            "ALTER TABLE {t} ALTER COLUMN {c} TYPE {ty}{array} USING {c}::text{array}::{ty}{array}",
            t = q(table),
            c = q(&c.name),
            ty = q(name)
        ));
        if let Some(d) = &c.default {
            out.push(format!(
                "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {d}",
                q(table),
                q(&c.name)
            ));
        }
    }
    debug_assert!(columns.iter().all(|(_, c)| uses_type(&c.ty, name)));
    out.push(format!("DROP TYPE {}", q(&old)));
    out
}

/// A column as it appears in `CREATE TABLE` and `ADD COLUMN`.
fn column_def(c: &Column) -> String {
    let mut s = format!("{} {}", q(&c.name), c.ty);
    if let Some(id) = c.identity {
        s.push_str(&format!(" GENERATED {} AS IDENTITY", id.sql()));
    }
    if let Some(g) = &c.generated {
        s.push_str(&format!(" GENERATED ALWAYS AS ({g}) STORED"));
    }
    if !c.nullable {
        s.push_str(" NOT NULL");
    }
    if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    s
}

fn create_table(t: &Table) -> String {
    let mut parts: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("    {}", column_def(c)))
        .collect();
    let mut cons: Vec<_> = t.constraints.iter().collect();
    // The primary key first, as people write it.
    cons.sort_by_key(|c| (c.kind, c.name.clone()));
    for c in cons {
        parts.push(format!("    CONSTRAINT {} {}", q(&c.name), c.definition));
    }
    format!("CREATE TABLE {} (\n{}\n)", q(&t.name), parts.join(",\n"))
}

fn alter_column(table: &str, from: &Column, to: &Column) -> Vec<String> {
    let prefix = format!("ALTER TABLE {} ALTER COLUMN {}", q(table), q(&to.name));
    let mut out = Vec::new();
    if from.identity.is_some() && to.identity.is_none() {
        out.push(format!("{prefix} DROP IDENTITY"));
    }
    let default_changes = from.default != to.default;
    // Without a type change, SET DEFAULT replaces the old one; with one, the old default
    // may not cast to the new type, so it goes first.
    if default_changes && from.default.is_some() && (to.default.is_none() || from.ty != to.ty) {
        out.push(format!("{prefix} DROP DEFAULT"));
    }
    if from.ty != to.ty {
        out.push(format!(
            "{prefix} TYPE {ty} USING {c}::{ty}",
            ty = to.ty,
            c = q(&to.name)
        ));
    }
    if from.nullable != to.nullable {
        out.push(format!(
            "{prefix} {} NOT NULL",
            if to.nullable { "DROP" } else { "SET" }
        ));
    }
    if default_changes {
        if let Some(d) = &to.default {
            out.push(format!("{prefix} SET DEFAULT {d}"));
        }
    }
    match (from.identity, to.identity) {
        (None, Some(id)) => out.push(format!("{prefix} ADD GENERATED {} AS IDENTITY", id.sql())),
        (Some(a), Some(b)) if a != b => out.push(format!("{prefix} SET GENERATED {}", b.sql())),
        _ => {}
    }
    out
}

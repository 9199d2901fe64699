//! Autogenerate's core: the steps that turn one [`Schema`] into another.
//!
//! Objects are matched by name (tables, columns, enum types) or by definition (constraints,
//! indexes: a name-only difference is no difference). Renames are never guessed: a dropped
//! and an added object that look alike are planned as a drop and an add, and a
//! [`Plan::reviews`] note says what a rename would look like. Steps that lose data
//! ([`Op::is_destructive`]) are marked in the generated file.

use crate::schema::{Column, Constraint, ConstraintKind, EnumType, Index, Schema, Table};

/// One step of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `CREATE TYPE … AS ENUM`.
    CreateEnum(EnumType),
    /// `ALTER TYPE … ADD VALUE … BEFORE/AFTER …`.
    AddEnumValue {
        /// The type.
        ty: String,
        /// The new label.
        label: String,
        /// Placed before this label (first position) …
        before: Option<String>,
        /// … or after this one.
        after: Option<String>,
    },
    /// Labels removed or reordered: the type is rebuilt and its columns converted through
    /// text (rows holding a removed label fail the conversion).
    RecreateEnum {
        /// The type as it is.
        from: EnumType,
        /// The type as it becomes.
        to: EnumType,
        /// The columns of that type (or an array of it) after the migration: (table, column).
        columns: Vec<(String, Column)>,
    },
    /// `DROP TYPE`.
    DropEnum(EnumType),
    /// `CREATE TABLE` with its columns, primary key, unique, check and exclusion constraints
    /// (foreign keys, indexes and comments are steps of their own).
    CreateTable(Table),
    /// `DROP TABLE` (destructive).
    DropTable(Table),
    /// `ALTER TABLE … ADD COLUMN`.
    AddColumn {
        /// Table.
        table: String,
        /// The new column.
        column: Column,
    },
    /// `ALTER TABLE … DROP COLUMN` (destructive).
    DropColumn {
        /// Table.
        table: String,
        /// The column as it is.
        column: Column,
    },
    /// Type, nullability, default or identity of a column change.
    AlterColumn {
        /// Table.
        table: String,
        /// The column as it is.
        from: Column,
        /// The column as it becomes.
        to: Column,
    },
    /// A generated column's expression changes: dropped and added again (values are
    /// recomputed, nothing is lost).
    ReplaceGeneratedColumn {
        /// Table.
        table: String,
        /// The column as it is.
        from: Column,
        /// The column as it becomes.
        to: Column,
    },
    /// `ALTER TABLE … ADD CONSTRAINT`.
    AddConstraint {
        /// Table.
        table: String,
        /// The constraint.
        constraint: Constraint,
    },
    /// `ALTER TABLE … DROP CONSTRAINT`.
    DropConstraint {
        /// Table.
        table: String,
        /// The constraint.
        constraint: Constraint,
    },
    /// `CREATE INDEX`.
    CreateIndex {
        /// Table.
        table: String,
        /// The index.
        index: Index,
    },
    /// `DROP INDEX`.
    DropIndex {
        /// Table.
        table: String,
        /// The index.
        index: Index,
    },
    /// `COMMENT ON TABLE`.
    TableComment {
        /// Table.
        table: String,
        /// The new comment (`None` removes it).
        comment: Option<String>,
    },
    /// `COMMENT ON COLUMN`.
    ColumnComment {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The new comment (`None` removes it).
        comment: Option<String>,
    },
}

impl Op {
    /// True when the step can lose data: dropping a table or a column, narrowing a column's
    /// type, removing enum labels.
    pub fn is_destructive(&self) -> bool {
        match self {
            Op::DropTable(_) | Op::DropColumn { .. } | Op::RecreateEnum { .. } => true,
            Op::AlterColumn { from, to, .. } => from.ty != to.ty && !widens(&from.ty, &to.ty),
            _ => false,
        }
    }

    /// The step's place in a plan: creations of types first, then what depends on them;
    /// foreign keys dropped first and added last.
    fn phase(&self) -> u8 {
        match self {
            Op::CreateEnum(_) | Op::AddEnumValue { .. } => 0,
            Op::DropConstraint { constraint, .. }
                if constraint.kind == ConstraintKind::ForeignKey =>
            {
                1
            }
            Op::DropIndex { .. } | Op::DropConstraint { .. } => 2,
            Op::DropTable(_) => 3,
            Op::CreateTable(_) => 4,
            Op::AddColumn { .. } => 5,
            Op::AlterColumn { .. } | Op::ReplaceGeneratedColumn { .. } => 6,
            Op::DropColumn { .. } => 7,
            Op::RecreateEnum { .. } => 8,
            Op::AddConstraint { constraint, .. }
                if constraint.kind == ConstraintKind::ForeignKey =>
            {
                11
            }
            Op::AddConstraint { .. } => 9,
            Op::CreateIndex { .. } => 10,
            Op::TableComment { .. } | Op::ColumnComment { .. } => 12,
            Op::DropEnum(_) => 13,
        }
    }
}

/// Whether changing a column from type `from` to `to` keeps every value.
pub(crate) fn widens(from: &str, to: &str) -> bool {
    const INTS: [&str; 3] = ["smallint", "integer", "bigint"];
    let rank = |t: &str| INTS.iter().position(|x| *x == t);
    if let (Some(a), Some(b)) = (rank(from), rank(to)) {
        return a <= b;
    }
    if rank(from).is_some() && to == "numeric" {
        return true;
    }
    let varchar = |t: &str| {
        t.strip_prefix("character varying(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|n| n.parse::<u32>().ok())
    };
    match (from, to) {
        ("real", "double precision") => true,
        (_, "text") | (_, "character varying") => {
            from == "text"
                || from.starts_with("character varying")
                || from.starts_with("character(")
        }
        _ => match (varchar(from), varchar(to)) {
            (Some(a), Some(b)) => a <= b,
            _ => false,
        },
    }
}

/// The steps from one schema to another, in the order they run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The steps.
    pub ops: Vec<Op>,
    /// Notes for the reviewer: possible renames planned as drop + add.
    pub reviews: Vec<String>,
}

impl Plan {
    /// No step: the schemas are the same.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many steps can lose data.
    pub fn destructive_count(&self) -> usize {
        self.ops.iter().filter(|o| o.is_destructive()).count()
    }
}

/// The plan that turns `from` (usually the reflected database) into `to` (usually
/// [`crate::target_schema`] of the models).
pub fn diff(from: &Schema, to: &Schema) -> Plan {
    let mut ops = Vec::new();
    let mut reviews = Vec::new();
    diff_enums(from, to, &mut ops);
    let dropped: Vec<&Table> = from
        .tables
        .iter()
        .filter(|t| to.table(&t.name).is_none())
        .collect();
    let created: Vec<&Table> = to
        .tables
        .iter()
        .filter(|t| from.table(&t.name).is_none())
        .collect();
    for t in &dropped {
        // Foreign keys between dropped tables go first, so the drops need no order.
        for fk in t.constraints_of(ConstraintKind::ForeignKey) {
            let target = fk.foreign_key.as_ref().map(|f| f.table.as_str());
            if target != Some(t.name.as_str())
                && dropped.iter().any(|d| Some(d.name.as_str()) == target)
            {
                ops.push(Op::DropConstraint {
                    table: t.name.clone(),
                    constraint: fk.clone(),
                });
            }
        }
        ops.push(Op::DropTable((*t).clone()));
    }
    for t in &created {
        create_table(t, &mut ops);
    }
    for d in &dropped {
        for c in &created {
            if same_columns(d, c) {
                reviews.push(format!(
                    "table \"{}\" may have been renamed to \"{}\": this migration drops \"{}\" \
                     (and its rows) and creates \"{}\". To keep the rows, replace both steps \
                     with: ALTER TABLE \"{}\" RENAME TO \"{}\";",
                    d.name, c.name, d.name, c.name, d.name, c.name
                ));
            }
        }
    }
    for t in &from.tables {
        if let Some(new) = to.table(&t.name) {
            diff_table(t, new, &mut ops, &mut reviews);
        }
    }
    // Stable: within a phase, steps keep the order they were planned in (table by table,
    // by name).
    ops.sort_by_key(Op::phase);
    Plan { ops, reviews }
}

fn same_columns(a: &Table, b: &Table) -> bool {
    let key = |t: &Table| {
        let mut k: Vec<(String, String)> = t
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect();
        k.sort();
        k
    };
    !a.columns.is_empty() && key(a) == key(b)
}

fn create_table(t: &Table, ops: &mut Vec<Op>) {
    let mut inline = t.clone();
    inline
        .constraints
        .retain(|c| c.kind != ConstraintKind::ForeignKey);
    inline.indexes.clear();
    inline.comment = None;
    for c in &mut inline.columns {
        c.comment = None;
    }
    ops.push(Op::CreateTable(inline));
    for c in t.constraints_of(ConstraintKind::ForeignKey) {
        ops.push(Op::AddConstraint {
            table: t.name.clone(),
            constraint: c.clone(),
        });
    }
    for i in &t.indexes {
        ops.push(Op::CreateIndex {
            table: t.name.clone(),
            index: i.clone(),
        });
    }
    if t.comment.is_some() {
        ops.push(Op::TableComment {
            table: t.name.clone(),
            comment: t.comment.clone(),
        });
    }
    for c in t.columns.iter().filter(|c| c.comment.is_some()) {
        ops.push(Op::ColumnComment {
            table: t.name.clone(),
            column: c.name.clone(),
            comment: c.comment.clone(),
        });
    }
}

fn diff_enums(from: &Schema, to: &Schema, ops: &mut Vec<Op>) {
    for e in &to.enums {
        match from.enum_type(&e.name) {
            None => ops.push(Op::CreateEnum(e.clone())),
            Some(old) if old.labels == e.labels => {}
            Some(old) if is_subsequence(&old.labels, &e.labels) => {
                for (i, label) in e.labels.iter().enumerate() {
                    if old.labels.contains(label) {
                        continue;
                    }
                    let (before, after) = if i == 0 {
                        (e.labels.get(1).cloned(), None)
                    } else {
                        (None, Some(e.labels[i - 1].clone()))
                    };
                    ops.push(Op::AddEnumValue {
                        ty: e.name.clone(),
                        label: label.clone(),
                        before,
                        after,
                    });
                }
            }
            Some(old) => {
                let columns = to
                    .tables
                    .iter()
                    .flat_map(|t| t.columns.iter().map(move |c| (t, c)))
                    .filter(|(_, c)| uses_type(&c.ty, &e.name))
                    .map(|(t, c)| (t.name.clone(), c.clone()))
                    .collect();
                ops.push(Op::RecreateEnum {
                    from: old.clone(),
                    to: e.clone(),
                    columns,
                });
            }
        }
    }
    for e in &from.enums {
        if to.enum_type(&e.name).is_none() {
            ops.push(Op::DropEnum(e.clone()));
        }
    }
}

fn is_subsequence(short: &[String], long: &[String]) -> bool {
    let mut it = long.iter();
    short.iter().all(|s| it.any(|l| l == s))
}

/// Whether a column type (as `format_type` spells it) is the enum `name` or an array of it.
pub(crate) fn uses_type(ty: &str, name: &str) -> bool {
    let base = ty.strip_suffix("[]").unwrap_or(ty);
    base == name || base.strip_prefix('"').and_then(|b| b.strip_suffix('"')) == Some(name)
}

fn diff_table(from: &Table, to: &Table, ops: &mut Vec<Op>, reviews: &mut Vec<String>) {
    let table = &to.name;
    let mut dropped = Vec::new();
    let mut added = Vec::new();
    for c in &from.columns {
        match to.column(&c.name) {
            None => {
                dropped.push(c);
                ops.push(Op::DropColumn {
                    table: table.clone(),
                    column: c.clone(),
                });
            }
            Some(n) => diff_column(table, c, n, ops),
        }
    }
    for c in &to.columns {
        if from.column(&c.name).is_none() {
            added.push(c);
            ops.push(Op::AddColumn {
                table: table.clone(),
                column: Column {
                    comment: None,
                    ..c.clone()
                },
            });
            if c.comment.is_some() {
                ops.push(Op::ColumnComment {
                    table: table.clone(),
                    column: c.name.clone(),
                    comment: c.comment.clone(),
                });
            }
            if !c.nullable && c.default.is_none() && c.identity.is_none() && c.generated.is_none() {
                reviews.push(format!(
                    "column \"{table}\".\"{}\" is added NOT NULL without a default: the step \
                     fails when the table has rows (add a DEFAULT, or add it nullable, fill it, \
                     then SET NOT NULL)",
                    c.name
                ));
            }
        }
    }
    for d in &dropped {
        for a in added.iter().filter(|a| a.ty == d.ty) {
            reviews.push(format!(
                "column \"{table}\".\"{}\" may have been renamed to \"{}\": this migration drops \
                 \"{}\" (and its data) and adds \"{}\". To keep the data, replace both steps \
                 with: ALTER TABLE \"{table}\" RENAME COLUMN \"{}\" TO \"{}\";",
                d.name, a.name, d.name, a.name, d.name, a.name
            ));
        }
    }
    diff_matched(
        &from.constraints,
        &to.constraints,
        Constraint::same_definition,
        |c| Op::DropConstraint {
            table: table.clone(),
            constraint: c.clone(),
        },
        |c| Op::AddConstraint {
            table: table.clone(),
            constraint: c.clone(),
        },
        ops,
    );
    diff_matched(
        &from.indexes,
        &to.indexes,
        Index::same_definition,
        |i| Op::DropIndex {
            table: table.clone(),
            index: i.clone(),
        },
        |i| Op::CreateIndex {
            table: table.clone(),
            index: i.clone(),
        },
        ops,
    );
    if from.comment != to.comment {
        ops.push(Op::TableComment {
            table: table.clone(),
            comment: to.comment.clone(),
        });
    }
}

/// Drops what `from` has and `to` lacks, adds the reverse; each match is used once.
fn diff_matched<T>(
    from: &[T],
    to: &[T],
    same: impl Fn(&T, &T) -> bool,
    drop: impl Fn(&T) -> Op,
    add: impl Fn(&T) -> Op,
    ops: &mut Vec<Op>,
) {
    let mut used = vec![false; to.len()];
    for f in from {
        match (0..to.len()).find(|&i| !used[i] && same(f, &to[i])) {
            Some(i) => used[i] = true,
            None => ops.push(drop(f)),
        }
    }
    for (i, t) in to.iter().enumerate() {
        if !used[i] {
            ops.push(add(t));
        }
    }
}

fn diff_column(table: &str, from: &Column, to: &Column, ops: &mut Vec<Op>) {
    if from.generated != to.generated || (to.generated.is_some() && from.ty != to.ty) {
        ops.push(Op::ReplaceGeneratedColumn {
            table: table.to_owned(),
            from: from.clone(),
            to: to.clone(),
        });
    } else if from.ty != to.ty
        || from.nullable != to.nullable
        || from.default != to.default
        || from.identity != to.identity
    {
        ops.push(Op::AlterColumn {
            table: table.to_owned(),
            from: from.clone(),
            to: to.clone(),
        });
    }
    if from.comment != to.comment {
        ops.push(Op::ColumnComment {
            table: table.to_owned(),
            column: to.name.clone(),
            comment: to.comment.clone(),
        });
    }
}

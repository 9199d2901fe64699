//! Reflection: a schema read from `pg_catalog` in five queries, whatever the number of tables
//! (SQLAlchemy 2.0's bulk reflection; the test counts them for 200 tables).

use std::collections::BTreeMap;

use aludel::{Connection, engine::IsolationLevel, engine::TxOptions, sql};

use crate::error::Result;
use crate::schema::{
    Column, Constraint, ConstraintKind, EnumType, FkAction, ForeignKey, Identity, Index, Schema,
    Table,
};

const TABLES: &str = "SELECT c.relname::text, obj_description(c.oid, 'pg_class') \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = coalesce($1, current_schema()) AND c.relkind IN ('r', 'p') \
     AND NOT c.relispartition ORDER BY c.relname";

const COLUMNS: &str = "SELECT c.relname::text, a.attname::text, \
     format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), \
     a.attidentity::text, a.attgenerated::text, col_description(c.oid, a.attnum) \
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
     WHERE n.nspname = coalesce($1, current_schema()) AND c.relkind IN ('r', 'p') \
     AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped \
     ORDER BY c.relname, a.attnum";

const CONSTRAINTS: &str = "SELECT c.relname::text, con.conname::text, con.contype::text, \
     pg_get_constraintdef(con.oid), \
     ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(num, ord) \
           JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord), \
     rc.relname::text, \
     ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord) \
           JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord), \
     con.confupdtype::text, con.confdeltype::text \
     FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_class rc ON rc.oid = con.confrelid \
     WHERE n.nspname = coalesce($1, current_schema()) AND c.relkind IN ('r', 'p') \
     AND NOT c.relispartition AND con.contype IN ('p', 'u', 'c', 'f', 'x') \
     ORDER BY c.relname, con.conname";

const INDEXES: &str = "SELECT c.relname::text, i.relname::text, x.indisunique, \
     substring(pg_get_indexdef(x.indexrelid) from ' USING (.*)$'), \
     ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(num, ord) \
           LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num \
           WHERE k.ord <= x.indnkeyatts ORDER BY k.ord), \
     (am.amname = 'btree' AND x.indexprs IS NULL AND x.indpred IS NULL \
      AND x.indnatts = x.indnkeyatts AND NOT x.indnullsnotdistinct \
      AND NOT (0 <> ANY (x.indoption::int2[]))) \
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
     JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_am am ON am.oid = i.relam \
     WHERE n.nspname = coalesce($1, current_schema()) AND c.relkind IN ('r', 'p') \
     AND NOT c.relispartition \
     AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid \
                     AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u', 'x')) \
     ORDER BY c.relname, i.relname";

const ENUMS: &str = "SELECT t.typname::text, \
     ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid \
           ORDER BY e.enumsortorder) \
     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
     WHERE n.nspname = coalesce($1, current_schema()) AND t.typtype = 'e' ORDER BY t.typname";

/// How many catalog queries [`reflect`] sends, whatever the schema holds.
pub const REFLECTION_QUERIES: usize = 5;

/// Reads the schema `schema` (the connection's `current_schema()` when `None`): tables,
/// columns (types, nullability, defaults, identity, generated expressions, comments), primary
/// keys, unique/check/foreign-key/exclusion constraints, indexes (expression, partial,
/// `DESC`, `INCLUDE`), enum types and their labels. Five catalog queries in all, in one
/// `REPEATABLE READ` read-only transaction (one snapshot) unless a transaction is open.
///
/// ```no_run
/// # async fn demo(conn: &mut aludel::Connection) -> aludel_migrate::Result<()> {
/// let schema = aludel_migrate::reflect(conn, None).await?;
/// for t in &schema.tables {
///     let _ = (&t.name, t.columns.len());
/// }
/// # Ok(()) }
/// ```
pub async fn reflect(conn: &mut Connection, schema: Option<&str>) -> Result<Schema> {
    let own_tx = !conn.in_transaction();
    if own_tx {
        let opts = TxOptions::new()
            .isolation(IsolationLevel::RepeatableRead)
            .read_only(true);
        conn.begin_with(opts).await?;
    }
    let result = read_all(conn, schema.map(str::to_owned)).await;
    if own_tx {
        // A read-only transaction: ending it either way changes nothing.
        conn.rollback().await?;
    }
    result
}

async fn read_all(conn: &mut Connection, ns: Option<String>) -> Result<Schema> {
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for row in conn.query(&sql(TABLES).bind(ns.clone())).await? {
        let name: String = row.get(0)?;
        tables.insert(
            name.clone(),
            Table {
                name,
                columns: Vec::new(),
                constraints: Vec::new(),
                indexes: Vec::new(),
                comment: row.get(1)?,
            },
        );
    }
    for row in conn.query(&sql(COLUMNS).bind(ns.clone())).await? {
        let table: String = row.get(0)?;
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let default: Option<String> = row.get(4)?;
        let identity: String = row.get(5)?;
        let generated: String = row.get(6)?;
        let is_generated = generated == "s";
        t.columns.push(Column {
            name: row.get(1)?,
            ty: row.get(2)?,
            nullable: !row.get::<bool>(3)?,
            default: if is_generated { None } else { default.clone() },
            identity: match identity.as_str() {
                "a" => Some(Identity::Always),
                "d" => Some(Identity::ByDefault),
                _ => None,
            },
            generated: if is_generated { default } else { None },
            comment: row.get(7)?,
        });
    }
    for row in conn.query(&sql(CONSTRAINTS).bind(ns.clone())).await? {
        let table: String = row.get(0)?;
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let code: String = row.get(2)?;
        let kind = match code.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "c" => ConstraintKind::Check,
            "f" => ConstraintKind::ForeignKey,
            _ => ConstraintKind::Exclusion,
        };
        let foreign_key = if kind == ConstraintKind::ForeignKey {
            let upd: String = row.get(7)?;
            let del: String = row.get(8)?;
            Some(ForeignKey {
                table: row.get::<Option<String>>(5)?.unwrap_or_default(),
                columns: row.get(6)?,
                on_update: FkAction::from_code(&upd),
                on_delete: FkAction::from_code(&del),
            })
        } else {
            None
        };
        t.constraints.push(Constraint {
            name: row.get(1)?,
            kind,
            definition: row.get(3)?,
            columns: row.get(4)?,
            foreign_key,
        });
    }
    for row in conn.query(&sql(INDEXES).bind(ns.clone())).await? {
        let table: String = row.get(0)?;
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        t.indexes.push(Index {
            name: row.get(1)?,
            unique: row.get(2)?,
            definition: row.get::<Option<String>>(3)?.unwrap_or_default(),
            columns: row.get(4)?,
            simple: row.get(5)?,
        });
    }
    let mut enums = Vec::new();
    for row in conn.query(&sql(ENUMS).bind(ns)).await? {
        enums.push(EnumType::new(row.get::<String>(0)?, row.get(1)?));
    }
    Ok(Schema {
        tables: tables.into_values().collect(),
        enums,
    })
}

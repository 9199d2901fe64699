//! The builder's multi-row `INSERT` sent as column arrays: one statement shape for any number
//! of rows.
//!
//! ```text
//! INSERT INTO "t" ("a", "m", "tags")
//! SELECT "u"."c1", "u"."c2"::"mood", $1["u"."s3":"u"."e3"]
//! FROM unnest($2, $3, $4, $5) WITH ORDINALITY AS "u"("c1", "c2", "s3", "e3", "n")
//! ORDER BY "u"."n"
//! ```
//!
//! Each column's values travel as one array parameter in PostgreSQL's binary array format
//! (NULL elements included), so the text depends on the table and the column types only, never
//! on the row count, and the bind count is fixed (65,535 binds never limit the rows).
//!
//! What `unnest` cannot carry directly, and how it is carried:
//! - **Array-typed columns**: `unnest` of a two-dimensional array would flatten it (and rows of
//!   different lengths do not form one). All rows' elements go into one flat array parameter,
//!   and each row takes its slice `flat[start:end]`, with `start`/`end` unnested alongside the
//!   other columns; a NULL `end` makes the slice NULL (a NULL array), `end = start - 1` an
//!   empty one.
//! - **`#[derive(SqlEnum)]` types**, declared with OID 0 so the server resolves them by name:
//!   an array's element type must be a real OID, so the labels travel as `text[]` (an enum's
//!   binary form is its label) and the select list casts them by name.
//! - **JSON/JSONB** and every other built-in type with an array type: sent as is.
//! - **Omitted columns** (identity and server-default columns the derive leaves to the server):
//!   not in the column list, so the server applies their defaults to every row.
//!
//! A column type this module has no array type for (a hand-written `SqlType` with a type the
//! table below does not know, or an OID-0 type that is not an enum) makes the statement fall
//! back to `VALUES (…), (…)`, one bind per value.
//!
//! **Order.** `WITH ORDINALITY` numbers the input rows and `ORDER BY` that number is the order
//! the INSERT's source produces rows in; PostgreSQL's `ModifyTable` inserts and projects
//! `RETURNING` row by row in its source's order, so returned rows come back in input order
//! (the guarantee SQLAlchemy's insertmanyvalues builds on with its sentinel `ORDER BY`). The
//! planner knows the ordinality column is sorted, so the `ORDER BY` costs no sort.

use std::fmt;
use std::sync::Arc;

use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type};

use super::Bind;
use super::writer::{Writer, quote_ident};

/// How one column's values are sent.
#[derive(Clone, Debug)]
enum Plan {
    /// One array of the column's values; `cast` is the enum type name the text is cast to.
    Scalar { values: Bind, cast: Option<String> },
    /// An array-typed column: the elements of every row in `flat`, row `i` is
    /// `flat[starts[i]:ends[i]]`; `cast` is the enum array type the text array is cast to.
    Array {
        flat: Bind,
        starts: Bind,
        ends: Bind,
        cast: Option<String>,
    },
}

/// The rows of a multi-row INSERT as one array parameter per column (see the module docs).
#[derive(Clone, Debug)]
pub(super) struct Columnar {
    plans: Vec<Plan>,
}

/// Why the rows cannot go as arrays.
#[derive(Debug)]
pub(super) enum NotColumnar {
    /// A column type has no array form here: send the rows as `VALUES`.
    Unsupported,
    /// A value could not be encoded (the message goes into the statement's error).
    Encode(String),
}

impl Columnar {
    /// The plan for `rows` (each with one bind per insert column, `ncols` of them).
    pub(super) fn build(rows: &[Vec<Bind>], ncols: usize) -> Result<Columnar, NotColumnar> {
        let plans = (0..ncols)
            .map(|j| plan_column(rows, j))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Columnar { plans })
    }

    /// Renders ` SELECT … FROM unnest(…) WITH ORDINALITY AS "u"(…) ORDER BY "u"."n"`.
    pub(super) fn render(&self, w: &mut Writer) {
        w.push(" SELECT ");
        for (j, plan) in self.plans.iter().enumerate() {
            if j > 0 {
                w.push(", ");
            }
            let n = j + 1;
            match plan {
                Plan::Scalar { cast, .. } => {
                    w.push_text(&format!("\"u\".\"c{n}\""));
                    if let Some(c) = cast {
                        w.push("::");
                        w.push_text(c);
                    }
                }
                Plan::Array { flat, cast, .. } => {
                    w.bind(flat.clone());
                    w.push_text(&format!("[\"u\".\"s{n}\":\"u\".\"e{n}\"]"));
                    if let Some(c) = cast {
                        w.push("::");
                        w.push_text(c);
                        w.push("[]");
                    }
                }
            }
        }
        w.push(" FROM unnest(");
        for (j, plan) in self.plans.iter().enumerate() {
            if j > 0 {
                w.push(", ");
            }
            match plan {
                Plan::Scalar { values, .. } => w.bind(values.clone()),
                Plan::Array { starts, ends, .. } => {
                    w.bind(starts.clone());
                    w.push(", ");
                    w.bind(ends.clone());
                }
            }
        }
        w.push(") WITH ORDINALITY AS \"u\"(");
        for (j, plan) in self.plans.iter().enumerate() {
            let n = j + 1;
            match plan {
                Plan::Scalar { .. } => w.push_text(&format!("\"c{n}\", ")),
                Plan::Array { .. } => w.push_text(&format!("\"s{n}\", \"e{n}\", ")),
            }
        }
        w.push("\"n\") ORDER BY \"u\".\"n\"");
    }
}

fn plan_column(rows: &[Vec<Bind>], j: usize) -> Result<Plan, NotColumnar> {
    let cell = |r: &Vec<Bind>| r.get(j).cloned().ok_or(NotColumnar::Unsupported);
    let ty = cell(rows.first().ok_or(NotColumnar::Unsupported)?)?
        .sql_type()
        .clone();
    let cells = rows.iter().map(cell).collect::<Result<Vec<_>, _>>()?;
    if cells.iter().any(|b| b.sql_type() != &ty) {
        return Err(NotColumnar::Unsupported);
    }
    if let Kind::Array(elem) = ty.kind() {
        return plan_array_column(&ty, elem, &cells);
    }
    let (wire, array_ty, cast) = wire_type(&ty)?;
    let values = Encoded::of_binds(&ty, wire, &cells).map_err(NotColumnar::Encode)?;
    Ok(Plan::Scalar {
        values: values.into_bind(array_ty),
        cast,
    })
}

/// The element OID written on the wire, the array type of the parameter, and the name an
/// OID-0 enum is cast to.
fn wire_type(ty: &Type) -> Result<(u32, Type, Option<String>), NotColumnar> {
    if ty.oid() == 0 {
        return match ty.kind() {
            Kind::Enum(_) => Ok((
                Type::TEXT.oid(),
                Type::TEXT_ARRAY,
                Some(quote_ident(ty.name())),
            )),
            _ => Err(NotColumnar::Unsupported),
        };
    }
    let array = array_of(ty).ok_or(NotColumnar::Unsupported)?;
    Ok((ty.oid(), array, None))
}

fn plan_array_column(ty: &Type, elem: &Type, cells: &[Bind]) -> Result<Plan, NotColumnar> {
    let (wire, flat_ty, cast) = if elem.oid() == 0 {
        wire_type(elem)?
    } else {
        (elem.oid(), ty.clone(), None)
    };
    let mut flat = Encoded::new(wire);
    let mut starts = Encoded::new(Type::INT4.oid());
    let mut ends = Encoded::new(Type::INT4.oid());
    let mut buf = BytesMut::new();
    for b in cells {
        buf.clear();
        let start = flat.count.checked_add(1).ok_or_else(too_many)?;
        starts.push_i32(Some(start)).map_err(NotColumnar::Encode)?;
        let end = match b.as_to_sql().to_sql_checked(ty, &mut buf) {
            Ok(IsNull::Yes) => None,
            Ok(IsNull::No) => {
                let n = flat.append_elements(&buf).map_err(NotColumnar::Encode)?;
                Some(start - 1 + n)
            }
            Err(e) => return Err(NotColumnar::Encode(e.to_string())),
        };
        ends.push_i32(end).map_err(NotColumnar::Encode)?;
    }
    Ok(Plan::Array {
        flat: flat.into_bind(flat_ty),
        starts: starts.into_bind(Type::INT4_ARRAY),
        ends: ends.into_bind(Type::INT4_ARRAY),
        cast,
    })
}

fn too_many() -> NotColumnar {
    NotColumnar::Encode("more array elements than an int4 counts".into())
}

/// A one-dimensional array, already in PostgreSQL's binary format minus its header.
struct Encoded {
    /// The element type's OID written in the header.
    elem_oid: u32,
    count: i32,
    has_null: bool,
    /// The elements, each as a length (`-1`: NULL) and its bytes.
    bytes: Vec<u8>,
}

impl fmt::Debug for Encoded {
    /// The size only: bound values never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoded({} elements)", self.count)
    }
}

impl Encoded {
    fn new(elem_oid: u32) -> Self {
        Encoded {
            elem_oid,
            count: 0,
            has_null: false,
            bytes: Vec::new(),
        }
    }

    /// Every bind encoded as `ty` (NULLs as NULL elements).
    fn of_binds(ty: &Type, elem_oid: u32, binds: &[Bind]) -> Result<Self, String> {
        let mut out = Encoded::new(elem_oid);
        let mut buf = BytesMut::new();
        for b in binds {
            buf.clear();
            match b.as_to_sql().to_sql_checked(ty, &mut buf) {
                Ok(IsNull::No) => out.push(Some(&buf))?,
                Ok(IsNull::Yes) => out.push(None)?,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(out)
    }

    fn push(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        self.count = self
            .count
            .checked_add(1)
            .ok_or("more rows than an array holds")?;
        match value {
            Some(v) => {
                let len = i32::try_from(v.len()).map_err(|_| "a value over 2 GiB")?;
                self.bytes.extend_from_slice(&len.to_be_bytes());
                self.bytes.extend_from_slice(v);
            }
            None => {
                self.has_null = true;
                self.bytes.extend_from_slice(&(-1i32).to_be_bytes());
            }
        }
        Ok(())
    }

    fn push_i32(&mut self, v: Option<i32>) -> Result<(), String> {
        self.push(v.map(i32::to_be_bytes).as_ref().map(|b| &b[..]))
    }

    /// Appends the elements of one binary-encoded one-dimensional array; returns how many.
    fn append_elements(&mut self, raw: &[u8]) -> Result<i32, String> {
        let word = |at: usize| -> Result<i32, String> {
            raw.get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(i32::from_be_bytes)
                .ok_or_else(|| "a truncated array value".to_owned())
        };
        let ndim = word(0)?;
        if ndim == 0 {
            return Ok(0);
        }
        if ndim != 1 {
            return Err(format!(
                "a {ndim}-dimensional array value; an INSERT of many rows takes one-dimensional arrays"
            ));
        }
        let has_null = word(4)? != 0;
        let n = word(12)?;
        self.count = self.count.checked_add(n).ok_or("too many array elements")?;
        self.has_null |= has_null;
        self.bytes
            .extend_from_slice(raw.get(20..).unwrap_or_default());
        Ok(n)
    }

    fn into_bind(self, array_ty: Type) -> Bind {
        Bind::from_parts(Arc::new(self), array_ty)
    }
}

impl ToSql for Encoded {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&1i32.to_be_bytes()); // dimensions
        out.extend_from_slice(&i32::from(self.has_null).to_be_bytes());
        out.extend_from_slice(&self.elem_oid.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        out.extend_from_slice(&self.bytes);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(_))
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The array type of a built-in element type.
fn array_of(elem: &Type) -> Option<Type> {
    Some(match *elem {
        Type::BOOL => Type::BOOL_ARRAY,
        Type::BYTEA => Type::BYTEA_ARRAY,
        Type::CHAR => Type::CHAR_ARRAY,
        Type::NAME => Type::NAME_ARRAY,
        Type::INT2 => Type::INT2_ARRAY,
        Type::INT4 => Type::INT4_ARRAY,
        Type::INT8 => Type::INT8_ARRAY,
        Type::OID => Type::OID_ARRAY,
        Type::FLOAT4 => Type::FLOAT4_ARRAY,
        Type::FLOAT8 => Type::FLOAT8_ARRAY,
        Type::NUMERIC => Type::NUMERIC_ARRAY,
        Type::MONEY => Type::MONEY_ARRAY,
        Type::TEXT => Type::TEXT_ARRAY,
        Type::VARCHAR => Type::VARCHAR_ARRAY,
        Type::BPCHAR => Type::BPCHAR_ARRAY,
        Type::JSON => Type::JSON_ARRAY,
        Type::JSONB => Type::JSONB_ARRAY,
        Type::XML => Type::XML_ARRAY,
        Type::UUID => Type::UUID_ARRAY,
        Type::DATE => Type::DATE_ARRAY,
        Type::TIME => Type::TIME_ARRAY,
        Type::TIMETZ => Type::TIMETZ_ARRAY,
        Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
        Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
        Type::INTERVAL => Type::INTERVAL_ARRAY,
        Type::INET => Type::INET_ARRAY,
        Type::CIDR => Type::CIDR_ARRAY,
        Type::MACADDR => Type::MACADDR_ARRAY,
        Type::MACADDR8 => Type::MACADDR8_ARRAY,
        Type::BIT => Type::BIT_ARRAY,
        Type::VARBIT => Type::VARBIT_ARRAY,
        Type::POINT => Type::POINT_ARRAY,
        Type::BOX => Type::BOX_ARRAY,
        Type::INT4_RANGE => Type::INT4_RANGE_ARRAY,
        Type::INT8_RANGE => Type::INT8_RANGE_ARRAY,
        Type::NUM_RANGE => Type::NUM_RANGE_ARRAY,
        Type::TS_RANGE => Type::TS_RANGE_ARRAY,
        Type::TSTZ_RANGE => Type::TSTZ_RANGE_ARRAY,
        Type::DATE_RANGE => Type::DATE_RANGE_ARRAY,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_postgres::types::private::BytesMut;
    use tokio_postgres::types::{ToSql, Type};

    use super::{Columnar, Encoded, NotColumnar};
    use crate::sql::Bind;

    #[test]
    fn a_type_without_an_array_form_is_sent_as_values() {
        let rows = vec![vec![Bind::from_parts(Arc::new(5_i64), Type::PG_LSN)]];
        assert!(matches!(
            Columnar::build(&rows, 1),
            Err(NotColumnar::Unsupported)
        ));
        let mixed = vec![vec![Bind::new(1_i32)], vec![Bind::new(1_i64)]];
        assert!(matches!(
            Columnar::build(&mixed, 1),
            Err(NotColumnar::Unsupported)
        ));
    }

    #[test]
    fn array_values_are_flattened_and_counted() {
        let mut flat = Encoded::new(Type::TEXT.oid());
        for (v, n) in [
            (vec!["a".to_owned(), "b".to_owned()], 2),
            (Vec::new(), 0),
            (vec!["c".to_owned()], 1),
        ] {
            let mut buf = BytesMut::new();
            v.to_sql(&Type::TEXT_ARRAY, &mut buf).unwrap();
            assert_eq!(flat.append_elements(&buf).unwrap(), n);
        }
        assert_eq!(flat.count, 3);
        let mut out = BytesMut::new();
        flat.to_sql(&Type::TEXT_ARRAY, &mut out).unwrap();
        let back: Vec<String> =
            tokio_postgres::types::FromSql::from_sql(&Type::TEXT_ARRAY, &out).unwrap();
        assert_eq!(back, ["a", "b", "c"]);
        let two_dims = [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 25];
        assert!(flat.append_elements(&two_dims).is_err());
    }
}

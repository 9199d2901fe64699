//! Key conditions: the `WHERE` that selects rows by a list of keys, in one bounded shape
//! where the key's types allow it (loaders, the unit of work, write-only collections).

use super::expr::Node;
use crate::value::Bind;

/// `cols = ANY($1)` (one column) or `(c1 = $1 AND c2 = $2) OR …` (composite keys).
pub(crate) fn key_condition(
    table: &'static str,
    cols: &[&'static str],
    keys: &[Vec<Bind>],
) -> Node {
    if let [col] = cols {
        let items: Vec<Bind> = keys.iter().filter_map(|k| k.first().cloned()).collect();
        if let Some(array) = crate::value::bind_array(items.clone()) {
            return Node::Any {
                value: Box::new(Node::Column { table, name: col }),
                array: Box::new(Node::Bind(array)),
                negate: false,
            };
        }
    }
    if let Some(tuple) = composite_in_arrays(table, cols, keys) {
        return tuple;
    }
    let mut out: Option<Node> = None;
    for key in keys {
        let mut and: Option<Node> = None;
        for (c, b) in cols.iter().zip(key) {
            let eq = Node::Binary(
                "=",
                Box::new(Node::Column { table, name: c }),
                Box::new(Node::Bind(b.clone())),
            );
            and = Some(match and {
                Some(prev) => Node::Binary("AND", Box::new(prev), Box::new(eq)),
                None => eq,
            });
        }
        if let Some(and) = and {
            out = Some(match out {
                Some(prev) => Node::Binary("OR", Box::new(prev), Box::new(and)),
                None => and,
            });
        }
    }
    out.unwrap_or(Node::Raw("false"))
}

/// `(c1, c2) IN (SELECT * FROM unnest($1, $2))` for two- and three-column keys: one array
/// bind per column, so the statement's text is the same for any number of keys (a bounded
/// shape, one prepared statement). `None` for other widths or types without an array type.
fn composite_in_arrays(
    table: &'static str,
    cols: &[&'static str],
    keys: &[Vec<Bind>],
) -> Option<Node> {
    const TWO: &[&str] = &["(", ", ", ") IN (SELECT * FROM unnest(", ", ", "))"];
    const THREE: &[&str] = &[
        "(",
        ", ",
        ", ",
        ") IN (SELECT * FROM unnest(",
        ", ",
        ", ",
        "))",
    ];
    let pieces = match cols.len() {
        2 => TWO,
        3 => THREE,
        _ => return None,
    };
    let mut args: Vec<Node> = cols
        .iter()
        .map(|c| Node::Column { table, name: c })
        .collect();
    for i in 0..cols.len() {
        let column: Vec<Bind> = keys
            .iter()
            .map(|k| k.get(i).cloned())
            .collect::<Option<_>>()?;
        args.push(Node::Bind(crate::value::bind_array(column)?));
    }
    Some(Node::Fragment(pieces, args))
}

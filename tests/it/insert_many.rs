//! The builder's multi-row INSERT: columns as arrays (`unnest`), one statement shape and a
//! fixed bind count for any row count, rows returned in input order.

use aludel::Generated;
use aludel::testing::TestDb;
use aludel::{
    Model, SqlEnum, create_all, engine::StatementMode, func::count_star, insert, insert_many,
    schema::CreateOptions, select, sql,
};

#[derive(SqlEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[aludel(type_name = "bulk_mood")]
enum Mood {
    Calm,
    Busy,
    #[aludel(rename = "so so")]
    SoSo,
}

/// Eight client-supplied columns of every kind `unnest` needs care with (arrays, NULL arrays,
/// an OID-0 enum, JSONB, NULLs), an identity and a server-default column left to the server.
#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "bulk")]
struct Bulk {
    #[aludel(primary_key, identity)]
    id: Generated<i32>,
    #[aludel(unique)]
    name: String,
    n: i64,
    note: Option<String>,
    tags: Vec<String>,
    scores: Option<Vec<i32>>,
    mood: Mood,
    last: Option<Mood>,
    doc: serde_json::Value,
    #[aludel(server_default = "7")]
    rank: Generated<i32>,
}

const COLUMNS: usize = 8;

/// Row `i`: names in a scrambled order (so input order is not sorted order), NULLs, empty and
/// NULL arrays, quotes, commas and braces inside array elements, a NUL-free unicode mix.
fn row(i: usize) -> Bulk {
    let k = (i * 7919) % 100_003;
    Bulk {
        id: Generated::unset(),
        name: format!("r{k:06}"),
        n: i as i64 - 5_000,
        note: (i % 3 == 0).then(|| format!("note \"{i}\", {{x}} ünï")),
        tags: (0..i % 4).map(|t| format!("t{t},{{\"{i}\"}}")).collect(),
        scores: match i % 5 {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some((0..(i % 7) as i32).map(|s| s * 10).collect()),
        },
        mood: [Mood::Calm, Mood::Busy, Mood::SoSo][i % 3],
        last: (i % 2 == 0).then_some(Mood::SoSo),
        doc: serde_json::json!({ "i": i, "list": [i, null], "s": "a\"b" }),
        rank: Generated::unset(),
    }
}

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Bulk::TABLE], CreateOptions::default())
        .await
        .unwrap();
    db
}

/// 1, 10 and 10,000 rows (10,000 × 8 values is past the protocol's 65,535 binds) go as the
/// same SQL text with the same bind count, in both statement modes; RETURNING comes back in
/// input order and a second connection sees every value as sent, defaults filled.
// covers: SES-18, RAW-03, ENG-15, TYP-04, TYP-06
#[tokio::test]
async fn one_statement_shape_for_any_row_count_and_rows_in_input_order() {
    let db = setup().await;
    let big = 10_000;
    assert!(big * COLUMNS > 65_535);
    let mut sent = Vec::new();
    let mut shapes = Vec::new();
    let mut next = 0;
    for (mode, n) in [
        (StatementMode::Cached, 1),
        (StatementMode::Cached, 10),
        (StatementMode::Cached, big),
        (StatementMode::Unnamed, 1),
        (StatementMode::Unnamed, 10),
        (StatementMode::Unnamed, 3_000),
    ] {
        let engine = db.engine_builder().statement_mode(mode).build().unwrap();
        let rows: Vec<Bulk> = (next..next + n).map(row).collect();
        next += n;
        let mark = db.recorder().len();
        let back: Vec<(i32, String)> = engine
            .all(&insert_many(&rows).returning((Bulk::id, Bulk::name)))
            .await
            .unwrap();
        let rec = db.recorder().queries_since(mark);
        assert_eq!(rec.len(), 1, "{mode:?} {n}: one statement");
        shapes.push((rec[0].sql.clone(), rec[0].params));
        // RETURNING in input order: the names as sent, the identity increasing with them.
        let names: Vec<&str> = back.iter().map(|(_, s)| s.as_str()).collect();
        let want: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, want, "{mode:?} {n}");
        assert!(back.windows(2).all(|w| w[0].0 < w[1].0), "{mode:?} {n}");
        sent.extend(rows.into_iter().zip(back).map(|(mut r, (id, _))| {
            r.id = id.into();
            r.rank = 7.into();
            r
        }));
    }
    let (text, params) = &shapes[0];
    assert!(text.contains("unnest("), "{text}");
    assert_eq!(
        *params,
        COLUMNS + 4,
        "one bind per column, three per array column"
    );
    for s in &shapes {
        assert_eq!(s, &shapes[0]);
    }
    // The same statement through `insert` (one row).
    let mark = db.recorder().len();
    let one = row(next);
    let _: Vec<(i32, String)> = db
        .engine()
        .all(&insert(&one).returning((Bulk::id, Bulk::name)))
        .await
        .unwrap();
    assert_eq!(db.recorder().queries_since(mark)[0].sql, *text);

    let mut admin = db.admin().await.unwrap();
    let stored: Vec<Bulk> = admin
        .all(&select(Bulk::ALL).order_by(Bulk::id.asc()))
        .await
        .unwrap();
    assert_eq!(stored.len(), sent.len() + 1);
    assert_eq!(stored[sent.len()].name, one.name);
    assert_eq!(&stored[..sent.len()], &sent[..]);
}

/// Upserts go through the same shape: a second run of the same rows updates them all and
/// `DO NOTHING` skips them all, whatever the count.
// covers: UPS-01, SES-18
#[tokio::test]
async fn upserts_of_many_rows_use_the_array_shape() {
    let db = setup().await;
    let e = db.engine();
    let rows: Vec<Bulk> = (0..9_000).map(row).collect();
    let ids: Vec<i32> = e
        .all(&insert_many(&rows).returning(Bulk::id))
        .await
        .unwrap();
    assert_eq!(ids.len(), 9_000);
    let bumped: Vec<Bulk> = rows
        .iter()
        .map(|r| Bulk {
            n: r.n + 1_000_000,
            ..r.clone()
        })
        .collect();
    let mark = db.recorder().len();
    let updated: Vec<(i32, i64)> = e
        .all(
            &insert_many(&bumped)
                .on_conflict_do_update(
                    Bulk::name,
                    aludel::query::Assignments::new()
                        .set(Bulk::n, aludel::query::excluded(Bulk::n)),
                    None,
                )
                .returning((Bulk::id, Bulk::n)),
        )
        .await
        .unwrap();
    assert_eq!(updated.iter().map(|u| u.0).collect::<Vec<_>>(), ids);
    assert!(
        updated
            .iter()
            .zip(&rows)
            .all(|(u, r)| u.1 == r.n + 1_000_000)
    );
    let skipped = e
        .execute(&insert_many(&rows).on_conflict_do_nothing(Bulk::name))
        .await
        .unwrap();
    assert_eq!(skipped, 0);
    let rec = db.recorder().queries_since(mark);
    assert!(
        rec.iter()
            .all(|r| r.sql.contains("unnest(") && r.params == COLUMNS + 4)
    );
    let mut admin = db.admin().await.unwrap();
    let total: i64 = admin
        .one(
            &select(count_star())
                .from::<Bulk>()
                .filter(Bulk::n.ge(500_000)),
        )
        .await
        .unwrap();
    assert_eq!(total, 9_000);
}

/// A row the server rejects fails the whole statement: nothing of it is written.
// covers: SES-18
#[tokio::test]
async fn a_bad_row_fails_the_whole_insert() {
    let db = setup().await;
    let mut rows: Vec<Bulk> = (0..20_000).map(row).collect();
    rows[15_000].note = Some("nul \0 byte".into());
    let err = db.engine().execute(&insert_many(&rows)).await.unwrap_err();
    assert!(err.is_data_error(), "{err:?}");
    let mut admin = db.admin().await.unwrap();
    let n: i64 = admin
        .query_one(&sql("SELECT count(*) FROM bulk"))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

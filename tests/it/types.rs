//! Column types from the optional features round-trip through models and filters.

use aludel::testing::TestDb;
use aludel::{Model, create_all, insert, select, types::Json};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Prefs {
    theme: String,
    tags: Vec<String>,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "things")]
struct Thing {
    #[aludel(primary_key)]
    id: uuid::Uuid,
    price: rust_decimal::Decimal,
    born: chrono::NaiveDate,
    seen_at: chrono::DateTime<chrono::Utc>,
    local: chrono::NaiveDateTime,
    t_date: time::Date,
    t_at: time::OffsetDateTime,
    meta: serde_json::Value,
    prefs: Json<Prefs>,
    scores: Vec<i32>,
    note: Option<Json<Prefs>>,
    blob: Vec<u8>,
    ratio: f64,
}

fn sample() -> Thing {
    Thing {
        id: uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0),
        price: "12345678.90".parse().unwrap(),
        born: chrono::NaiveDate::from_ymd_opt(1999, 12, 31).unwrap(),
        seen_at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
        local: chrono::NaiveDate::from_ymd_opt(2024, 3, 31)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap(),
        t_date: time::Date::from_calendar_date(2020, time::Month::February, 29).unwrap(),
        t_at: time::OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap(),
        meta: serde_json::json!({"a": 1, "nested": {"b": [true, null]}, "name": "x"}),
        prefs: Json(Prefs {
            theme: "dark".into(),
            tags: vec!["x".into(), "y'z".into()],
        }),
        scores: vec![3, 1, 2],
        note: None,
        blob: vec![0, 255, 1, 254],
        ratio: 0.25,
    }
}

// covers: TYP-01, TYP-02, TYP-03, TYP-05, TYP-06
#[tokio::test]
async fn feature_types_round_trip_and_filter() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Thing::TABLE], Default::default())
        .await
        .unwrap();
    let t = sample();
    let back: Thing = c.one(&insert(&t).returning(Thing::ALL)).await.unwrap();
    assert_eq!(back, t);

    // The session time zone does not change what a timestamptz reads as.
    let mut other = db.engine().connect().await.unwrap();
    other
        .batch_execute("SET TIME ZONE 'America/New_York'")
        .await
        .unwrap();
    let again: Thing = other
        .one(&select(Thing::ALL).filter(Thing::id.eq(t.id)))
        .await
        .unwrap();
    assert_eq!(again.seen_at, t.seen_at);
    assert_eq!(
        again.local, t.local,
        "a naive timestamp is stored as written"
    );

    let by_price: Vec<uuid::Uuid> = c
        .all(
            &select(Thing::id)
                .filter(Thing::price.gt("12345678.89".parse::<rust_decimal::Decimal>().unwrap())),
        )
        .await
        .unwrap();
    assert_eq!(by_price, [t.id]);
    let by_date: i64 = c
        .one(
            &select(aludel::func::count_star())
                .from::<Thing>()
                .filter(Thing::born.lt(chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap())),
        )
        .await
        .unwrap();
    assert_eq!(by_date, 1);
    let name: Option<String> = c
        .one(&select(Thing::meta.json_get_text("name")))
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("x"));
    let nested: serde_json::Value = c
        .one(&select(Thing::meta.json_get("nested")))
        .await
        .unwrap();
    assert_eq!(nested, serde_json::json!({"b": [true, null]}));
    let contains: i64 = c
        .one(
            &select(aludel::func::count_star())
                .from::<Thing>()
                .filter(Thing::meta.json_contains(serde_json::json!({"a": 1}))),
        )
        .await
        .unwrap();
    assert_eq!(contains, 1);
    let typed: aludel::types::Json<Prefs> = c.one(&select(Thing::prefs)).await.unwrap();
    assert_eq!(typed.0.tags[1], "y'z");
    let stored_type: String = c
        .query_one(&aludel::sql("SELECT pg_typeof(prefs)::text FROM things"))
        .await
        .unwrap();
    assert_eq!(stored_type, "jsonb");

    // NUMERIC(10,2)-style overflow is a typed data error, not a panic or a silent rounding.
    c.batch_execute("CREATE TABLE money (v numeric(10,2))")
        .await
        .unwrap();
    let big: rust_decimal::Decimal = "123456789012.5".parse().unwrap();
    let err = c
        .execute(&aludel::sql("INSERT INTO money VALUES ($1)").bind(big))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&aludel::tokio_postgres::error::SqlState::NUMERIC_VALUE_OUT_OF_RANGE)
    );
}

/// Every built-in type of the one list in `value.rs` is a whole column type: it binds, reads
/// back, and compares in filters, nullable and as an array. `i8` ("char") and `u32` (oid)
/// were bindable and readable but not comparable, and `Vec<i16>`/`Vec<f32>` columns had no
/// expressions, before the list was written once.
#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "builtins")]
struct Builtins {
    #[aludel(primary_key)]
    id: i64,
    #[aludel(sql_type = "\"char\"")]
    flag: i8,
    object: u32,
    maybe_object: Option<u32>,
    small: i16,
    real: f32,
    smalls: Vec<i16>,
    reals: Vec<f32>,
    objects: Option<Vec<u32>>,
}

// covers: TYP-07
#[tokio::test]
async fn every_builtin_type_filters_reads_and_compares_nullable() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Builtins::TABLE], Default::default())
        .await
        .unwrap();
    let row = Builtins {
        id: 1,
        flag: b'y' as i8,
        object: 4_000_000_000,
        maybe_object: None,
        small: -3,
        real: 0.5,
        smalls: vec![1, -2],
        reals: vec![0.25],
        objects: Some(vec![7, 8]),
    };
    let back: Builtins = c.one(&insert(&row).returning(Builtins::ALL)).await.unwrap();
    assert_eq!(back, row);
    let found: Vec<Builtins> = c
        .all(
            &select(Builtins::ALL)
                .filter(Builtins::flag.eq(b'y' as i8))
                .filter(Builtins::object.eq(4_000_000_000u32))
                .filter(Builtins::maybe_object.is_null())
                .filter(Builtins::small.lt(0i16))
                .filter(Builtins::real.eq(0.5f32))
                .filter(Builtins::smalls.eq(vec![1i16, -2]))
                .filter(Builtins::reals.contains_all(vec![0.25f32]))
                .filter(Builtins::objects.eq(vec![7u32, 8])),
        )
        .await
        .unwrap();
    assert_eq!(found, [row]);
}

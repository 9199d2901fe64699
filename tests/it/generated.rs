//! Server-filled columns (identity, server default, generated): a value the application gives
//! is sent, an unset `Generated` is left to the server and read back, and `GENERATED ALWAYS`
//! columns refuse a value before any SQL (issue 13, item 3).

use aludel::testing::TestDb;
use aludel::{
    Generated, Model, Obj, create_all, insert_many, schema::CreateOptions, session::ObjectState,
    sql,
};

#[derive(Model, Debug, Clone)]
#[aludel(table = "items")]
struct Item {
    #[aludel(primary_key, identity)]
    id: Generated<i64>,
    name: String,
    #[aludel(server_default = "'fresh'")]
    note: Generated<String>,
}

/// `GENERATED ALWAYS AS IDENTITY` and a stored generated column.
#[derive(Model, Debug, Clone)]
#[aludel(table = "orders")]
struct Order {
    #[aludel(primary_key, identity = "always")]
    id: Generated<i64>,
    qty: i64,
    price: i64,
    #[aludel(generated = "qty * price")]
    total: Generated<i64>,
}

fn item(id: Option<i64>, name: &str) -> Item {
    Item {
        id: id.map_or_else(Generated::unset, Generated::new),
        name: name.into(),
        note: Generated::unset(),
    }
}

fn order(qty: i64, price: i64) -> Order {
    Order {
        id: Generated::unset(),
        qty,
        price,
        total: Generated::unset(),
    }
}

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(
        &mut c,
        &[Item::TABLE, Order::TABLE],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    db
}

/// (id, name, note) of every item, by id, read from a second connection.
async fn items(db: &TestDb) -> Vec<(i64, String, String)> {
    db.admin()
        .await
        .unwrap()
        .query_as::<(i64, String, String)>(&sql("SELECT id, name, note FROM items ORDER BY id"))
        .await
        .unwrap()
}

fn inserts(db: &TestDb, mark: usize) -> Vec<String> {
    db.recorder()
        .queries_since(mark)
        .into_iter()
        .map(|r| r.sql)
        .filter(|s| s.starts_with("INSERT"))
        .collect()
}

// covers: SES-09, TYP-07
#[tokio::test]
async fn an_explicit_identity_value_is_inserted_and_an_unset_one_is_read_back() {
    let db = setup().await;
    let mut s = db.engine().session();
    let fixed = Obj::new(item(Some(5000), "fixed"));
    let auto = Obj::new(item(None, "auto"));
    s.add_all([&fixed, &auto]).unwrap();
    assert!(auto.read().unwrap().id.get().unwrap_err().is_unset());
    s.flush().await.unwrap();
    assert_eq!(fixed.read().unwrap().id, 5000);
    assert_eq!(
        *auto.read().unwrap().id.get().unwrap(),
        1,
        "read back by RETURNING"
    );
    assert_eq!(auto.read().unwrap().note, "fresh".to_owned());
    s.commit().await.unwrap();
    assert_eq!(
        items(&db).await,
        vec![
            (1, "auto".into(), "fresh".into()),
            (5000, "fixed".into(), "fresh".into())
        ]
    );
}

// covers: SES-09
#[tokio::test]
async fn an_explicit_server_default_value_is_kept_and_an_unset_one_gets_the_default() {
    let db = setup().await;
    let mut s = db.engine().session();
    let mut given = item(None, "given");
    given.note = "mine".to_owned().into();
    let given = Obj::new(given);
    let left = Obj::new(item(None, "left"));
    s.add_all([&given, &left]).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        items(&db).await,
        vec![
            (1, "given".into(), "mine".into()),
            (2, "left".into(), "fresh".into())
        ]
    );
}

// covers: SES-09
#[cfg(feature = "chrono")]
#[tokio::test]
async fn an_explicit_timestamp_is_kept_where_the_server_default_is_now() {
    use chrono::{DateTime, TimeZone, Utc};

    #[derive(Model, Debug, Clone)]
    #[aludel(table = "events")]
    struct Event {
        #[aludel(primary_key, identity)]
        id: Generated<i32>,
        #[aludel(server_default = "now()")]
        created_at: Generated<DateTime<Utc>>,
    }

    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Event::TABLE], CreateOptions::default())
        .await
        .unwrap();
    let past = Utc.with_ymd_and_hms(2001, 2, 3, 0, 0, 0).unwrap();
    let mut s = db.engine().session();
    let old = Obj::new(Event {
        id: Generated::unset(),
        created_at: past.into(),
    });
    let new = Obj::new(Event {
        id: Generated::unset(),
        created_at: Generated::unset(),
    });
    s.add_all([&old, &new]).unwrap();
    s.commit().await.unwrap();
    let rows = db
        .admin()
        .await
        .unwrap()
        .query_as::<(i32, DateTime<Utc>, bool)>(&sql(
            "SELECT id, created_at, created_at > now() - interval '1 hour' FROM events ORDER BY id",
        ))
        .await
        .unwrap();
    assert_eq!(rows[0].1, past);
    assert!(!rows[0].2);
    assert!(rows[1].2, "the unset one got now()");
}

// covers: SES-08, SES-09
#[tokio::test]
async fn a_batch_mixing_set_and_unset_keys_keeps_add_order_and_values() {
    let db = setup().await;
    let mut s = db.engine().session();
    let ids = [None, Some(7000), None, None, Some(7001), Some(7002), None];
    let objs: Vec<Obj<Item>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Obj::new(item(*id, &format!("n{i}"))))
        .collect();
    s.add_all(&objs).unwrap();
    let mark = db.recorder().len();
    s.flush().await.unwrap();
    // consecutive rows with the same set columns share a statement, in add order
    assert_eq!(inserts(&db, mark).len(), 5, "{:#?}", inserts(&db, mark));
    let got: Vec<i64> = objs
        .iter()
        .map(|o| *o.read().unwrap().id.get().unwrap())
        .collect();
    assert_eq!(got, vec![1, 7000, 2, 3, 7001, 7002, 4]);
    s.commit().await.unwrap();
    let rows = items(&db).await;
    for (i, id) in got.iter().enumerate() {
        assert!(
            rows.iter().any(|r| r.0 == *id && r.1 == format!("n{i}")),
            "{rows:?}"
        );
    }
    assert_eq!(rows.len(), ids.len());
}

// covers: SES-08, ENG-15
#[tokio::test]
async fn flush_inserts_keep_one_statement_shape_per_column_set() {
    let db = setup().await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let mut next = 10_000;
    for n in [1usize, 7, 50] {
        let unset: Vec<Obj<Item>> = (0..n).map(|_| Obj::new(item(None, "u"))).collect();
        let set: Vec<Obj<Item>> = (0..n)
            .map(|_| {
                next += 1;
                Obj::new(item(Some(next), "s"))
            })
            .collect();
        s.add_all(&unset).unwrap();
        s.flush().await.unwrap();
        s.add_all(&set).unwrap();
        s.flush().await.unwrap();
    }
    let mut shapes = inserts(&db, mark);
    assert_eq!(shapes.len(), 6);
    shapes.sort();
    shapes.dedup();
    assert_eq!(shapes.len(), 2, "{shapes:#?}");
    assert!(shapes.iter().all(|q| q.contains("unnest(")), "{shapes:#?}");
    s.commit().await.unwrap();
    assert_eq!(items(&db).await.len(), 2 * 58);
}

// covers: SES-09, ERR-10
#[tokio::test]
async fn a_value_in_a_generated_always_column_is_refused_before_any_sql() {
    let db = setup().await;
    let mut s = db.engine().session();
    let mut bad = order(2, 3);
    bad.id = 77.into();
    let bad = Obj::new(bad);
    s.add(&bad).unwrap();
    let mark = db.recorder().len();
    let e = s.flush().await.unwrap_err();
    assert!(e.is_generated_always(), "{e}");
    assert!(db.recorder().since(mark).is_empty(), "no statement at all");
    assert_eq!(bad.state(), ObjectState::Pending);
    // a stored generated column refuses a value the same way
    bad.write().unwrap().id.clear();
    bad.write().unwrap().total = 1.into();
    assert!(s.flush().await.unwrap_err().is_generated_always());
    assert!(db.recorder().since(mark).is_empty());
    // unset, both are the server's
    bad.write().unwrap().total.clear();
    s.flush().await.unwrap();
    let r = bad.read().unwrap();
    assert_eq!((*r.id.get().unwrap(), *r.total.get().unwrap()), (1, 6));
    drop(r);
    s.commit().await.unwrap();
    let ddl = db
        .admin()
        .await
        .unwrap()
        .query_as::<(String, String)>(&sql(
            "SELECT column_name::text, coalesce(identity_generation, generation_expression)::text \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = 'orders' AND column_name IN ('id', 'total') ORDER BY 1",
        ))
        .await
        .unwrap();
    assert_eq!(ddl[0], ("id".into(), "ALWAYS".into()));
    assert_eq!(ddl[1].0, "total");
    assert!(ddl[1].1.contains("qty * price"), "{ddl:?}");
    // the builder refuses it too
    let mut row = order(1, 1);
    row.id = 5.into();
    assert!(
        insert_many(&[row])
            .to_sql()
            .unwrap_err()
            .is_generated_always()
    );
}

// covers: SES-15
#[tokio::test]
async fn merge_of_an_unknown_key_inserts_that_key() {
    let db = setup().await;
    let mut s = db.engine().session();
    let merged = s.merge(item(Some(999), "merged")).await.unwrap();
    assert_eq!(merged.state(), ObjectState::Pending);
    // an unset key is a new object: no lookup
    let mark = db.recorder().len();
    let fresh = s.merge(item(None, "fresh")).await.unwrap();
    assert!(
        db.recorder()
            .queries_since(mark)
            .iter()
            .all(|q| !q.sql.starts_with("SELECT")),
        "no lookup for an unset key"
    );
    s.commit().await.unwrap();
    assert_eq!(
        items(&db).await,
        vec![
            (1, "fresh".into(), "fresh".into()),
            (999, "merged".into(), "fresh".into())
        ]
    );
    let _ = fresh;
}

// covers: SES-18
#[tokio::test]
async fn insert_many_sends_set_columns_and_leaves_unset_ones_to_the_server() {
    let db = setup().await;
    let mut c = db.engine().connect().await.unwrap();
    let all_set = [item(Some(100), "a"), item(Some(101), "b")];
    let q = insert_many(&all_set);
    assert!(q.to_sql().unwrap().starts_with(
        r#"INSERT INTO "items" ("id", "name") SELECT "u"."c1", "u"."c2" FROM unnest($1, $2)"#
    ));
    assert_eq!(c.execute(&q).await.unwrap(), 2);
    let none_set = [item(None, "c"), item(None, "d")];
    let q = insert_many(&none_set);
    assert!(
        q.to_sql()
            .unwrap()
            .starts_with(r#"INSERT INTO "items" ("name") SELECT "u"."c1" FROM unnest($1)"#)
    );
    assert_eq!(c.execute(&q).await.unwrap(), 2);
    let mut mixed = [item(Some(200), "e"), item(None, "f")];
    mixed[1].note = "own".to_owned().into();
    let q = insert_many(&mixed);
    assert_eq!(
        q.to_sql().unwrap(),
        r#"INSERT INTO "items" ("id", "name", "note") VALUES ($1, $2, DEFAULT), (DEFAULT, $3, $4)"#
    );
    assert_eq!(c.execute(&q).await.unwrap(), 2);
    assert_eq!(
        items(&db).await,
        vec![
            (1, "c".into(), "fresh".into()),
            (2, "d".into(), "fresh".into()),
            (3, "f".into(), "own".into()),
            (100, "a".into(), "fresh".into()),
            (101, "b".into(), "fresh".into()),
            (200, "e".into(), "fresh".into()),
        ]
    );
}

// covers: SES-12, SES-09
#[tokio::test]
async fn a_rolled_back_insert_keeps_the_servers_key_and_a_re_add_sends_it() {
    let db = setup().await;
    let mut s = db.engine().session();
    let a = Obj::new(item(None, "a"));
    let o = Obj::new(order(2, 5));
    s.add(&a).unwrap();
    s.add(&o).unwrap();
    s.flush().await.unwrap();
    assert_eq!(a.read().unwrap().id, 1);
    s.rollback().await.unwrap();
    assert_eq!(a.state(), ObjectState::Transient);
    assert_eq!(a.read().unwrap().id, 1, "kept, as SQLAlchemy does");
    // GENERATED ALWAYS refuses the value: it is forgotten instead
    assert!(!o.read().unwrap().id.is_set());
    s.add(&a).unwrap();
    s.add(&o).unwrap();
    let mark = db.recorder().len();
    s.flush().await.unwrap();
    let sent = inserts(&db, mark);
    // every value the server gave is sent back, the identity as well as the default
    assert!(
        sent[0].starts_with(r#"INSERT INTO "items" ("id", "name", "note")"#),
        "{sent:?}"
    );
    assert_eq!(o.read().unwrap().id, 2, "the sequence moved on");
    s.commit().await.unwrap();
    assert_eq!(items(&db).await, vec![(1, "a".into(), "fresh".into())]);
}

// covers: SES-18
#[tokio::test]
async fn bulk_update_refuses_an_unset_generated_value_before_any_sql() {
    let db = setup().await;
    let mut s = db.engine().session();
    s.bulk_insert(&[item(Some(1), "a")]).await.unwrap();
    let mark = db.recorder().len();
    let e = s.bulk_update(&[item(Some(1), "b")]).await.unwrap_err();
    assert!(e.is_unset(), "{e}");
    assert!(e.to_string().contains("items.note"), "{e}");
    assert!(db.recorder().queries_since(mark).is_empty());
    let mut full = item(Some(1), "b");
    full.note = "n".to_owned().into();
    assert_eq!(s.bulk_update(&[full]).await.unwrap(), 1);
    s.commit().await.unwrap();
    assert_eq!(items(&db).await, vec![(1, "b".into(), "n".into())]);
}

//! Column deferral: `Deferred<T>` fields, `defer` / `undefer` / `undefer_group` /
//! `load_only`, explicit batched column loads, and how deferred columns flush.

use aludel::Generated;
use aludel::testing::TestDb;
use aludel::{
    Deferred, Many, Model, Obj, One, create_all, load::defer, load::joined, load::load_only,
    load::selectin, load::undefer, load::undefer_group, schema::CreateOptions, select, sql,
};

#[derive(Model, Debug, Clone)]
#[aludel(table = "shelves")]
struct Shelf {
    #[aludel(primary_key, identity)]
    id: Generated<i64>,
    name: String,
    #[aludel(one_to_many(fk = Book::shelf_id, back_populates = shelf, order_by = "id"))]
    books: Many<Book>,
}

/// Deferred fields sit between plain ones, so row positions are exercised.
#[derive(Model, Debug, Clone)]
#[aludel(table = "books")]
struct Book {
    #[aludel(primary_key, identity)]
    id: Generated<i64>,
    summary: Deferred<String>,
    title: String,
    #[aludel(group = "media")]
    cover: Deferred<Option<Vec<u8>>>,
    #[aludel(references = "Shelf::id")]
    shelf_id: Option<i64>,
    #[aludel(group = "media")]
    blurb: Deferred<Option<String>>,
    #[aludel(many_to_one(fk = shelf_id, back_populates = books))]
    shelf: One<Shelf>,
}

/// Every column but the key and name is deferred: `load_only` can leave them all out.
#[derive(Model, Debug, Clone)]
#[aludel(table = "docs")]
struct Doc {
    #[aludel(primary_key)]
    id: i64,
    name: String,
    body: Deferred<String>,
    meta: Deferred<Option<String>>,
    #[aludel(server_default = "'fresh'")]
    note: Deferred<Generated<String>>,
}

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(
        &mut c,
        &[Shelf::TABLE, Book::TABLE, Doc::TABLE],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    db
}

/// `n` books on two shelves, committed.
async fn seed(db: &TestDb, n: i64) {
    let mut s = db.engine().session();
    let shelves: Vec<Obj<Shelf>> = ["left", "right"]
        .iter()
        .map(|name| {
            Obj::new(Shelf {
                id: Generated::unset(),
                name: (*name).into(),
                books: Many::default(),
            })
        })
        .collect();
    for sh in &shelves {
        s.add(sh).unwrap();
    }
    s.flush().await.unwrap();
    for i in 0..n {
        let shelf = shelves[(i % 2) as usize]
            .read()
            .unwrap()
            .id
            .cloned()
            .unwrap();
        let b = Obj::new(Book {
            id: Generated::unset(),
            summary: Deferred::new(format!("summary {i}")),
            title: format!("t{i}"),
            cover: Deferred::new(Some(vec![i as u8; 4])),
            shelf_id: Some(shelf),
            blurb: Deferred::new(None),
            shelf: One::default(),
        });
        s.add(&b).unwrap();
    }
    s.commit().await.unwrap();
}

fn stmts(db: &TestDb, mark: usize) -> Vec<String> {
    db.recorder()
        .queries_since(mark)
        .into_iter()
        .map(|r| r.sql)
        .collect()
}

async fn scalar(db: &TestDb, q: &'static str) -> String {
    db.admin().await.unwrap().query_one(&sql(q)).await.unwrap()
}

// covers: LOAD-12, ERR-01
#[tokio::test]
async fn deferred_columns_are_left_out_and_reading_them_is_a_typed_error_without_sql() {
    let db = setup().await;
    seed(&db, 4).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let books = s
        .scalars(&select(Book::ALL).order_by(Book::id.asc()))
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 1);
    assert!(
        q[0].starts_with(
            "SELECT \"books\".\"id\", \"books\".\"title\", \"books\".\"shelf_id\" FROM"
        ),
        "{}",
        q[0]
    );
    let mark = db.recorder().len();
    let b = books[1].read().unwrap();
    // plain columns after deferred ones are read from the right positions
    assert_eq!(b.title, "t1");
    assert!(b.shelf_id.is_some());
    let e = b.summary.get().unwrap_err();
    assert!(e.is_not_loaded(), "{e}");
    assert!(e.to_string().contains("books.summary"), "{e}");
    assert!(e.to_string().contains("undefer"), "{e}");
    assert!(b.cover.get().unwrap_err().is_not_loaded());
    assert!(!b.blurb.is_loaded());
    assert_eq!(
        db.recorder().len(),
        mark,
        "reading a deferred column ran SQL"
    );
}

// covers: LOAD-12
#[tokio::test]
async fn load_only_selects_exactly_those_columns() {
    let db = setup().await;
    db.admin()
        .await
        .unwrap()
        .execute(&sql(
            "INSERT INTO docs (id, name, body, meta) VALUES (1, 'a', 'long text', 'm'), (2, 'b', 'more', NULL)",
        ))
        .await
        .unwrap();
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let docs = s
        .scalars(
            &select(Doc::ALL)
                .order_by(Doc::id.asc())
                .options(load_only((Doc::id, Doc::name))),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert_eq!(
        q,
        vec![
            "SELECT \"docs\".\"id\", \"docs\".\"name\" FROM \"docs\" ORDER BY \"docs\".\"id\" ASC"
                .to_string()
        ]
    );
    assert_eq!(docs[1].read().unwrap().name, "b");
    assert!(
        docs[0]
            .read()
            .unwrap()
            .body
            .get()
            .unwrap_err()
            .is_not_loaded()
    );

    // load_only naming a deferred column loads it, and only it
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let docs = s
        .scalars(
            &select(Doc::ALL)
                .order_by(Doc::id.asc())
                .options(load_only((Doc::name, Doc::body)).raiseload()),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert!(
        q[0].starts_with("SELECT \"docs\".\"id\", \"docs\".\"name\", \"docs\".\"body\" FROM"),
        "{}",
        q[0]
    );
    let d = docs[0].read().unwrap();
    assert_eq!(d.body.get().unwrap(), "long text");
    // raiseload: the error says so
    let e = d.meta.get().unwrap_err();
    assert!(
        e.is_not_loaded() && e.to_string().contains("raiseload"),
        "{e}"
    );
}

// covers: LOAD-12
#[tokio::test]
async fn load_only_leaving_out_a_plain_field_is_refused_before_sql() {
    let db = setup().await;
    seed(&db, 2).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let e = s
        .scalars(&select(Book::ALL).options(load_only((Book::id, Book::title))))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("shelf_id"), "{e}");
    assert!(e.to_string().contains("Deferred"), "{e}");
    assert!(stmts(&db, mark).is_empty());
    // undefer of a plain column is refused too
    let e = s
        .scalars(&select(Book::ALL).options(undefer(Book::title)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("books.title"), "{e}");
    assert!(stmts(&db, mark).is_empty());
    // the session is still usable
    assert_eq!(s.scalars(&select(Book::ALL)).await.unwrap().len(), 2);
}

// covers: LOAD-12
#[tokio::test]
async fn undefer_and_undefer_group_add_their_columns() {
    let db = setup().await;
    seed(&db, 3).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let books = s
        .scalars(
            &select(Book::ALL)
                .order_by(Book::id.asc())
                .options(undefer(Book::summary)),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert!(
        q[0].starts_with(
            "SELECT \"books\".\"id\", \"books\".\"summary\", \"books\".\"title\", \"books\".\"shelf_id\" FROM"
        ),
        "{}",
        q[0]
    );
    {
        let b = books[2].read().unwrap();
        assert_eq!(b.summary.get().unwrap(), "summary 2");
        assert_eq!(b.title, "t2");
        assert!(!b.cover.is_loaded());
    }

    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let books = s
        .scalars(
            &select(Book::ALL).order_by(Book::id.asc()).options(
                undefer_group::<Book>("media")
                    .and(undefer(Book::summary))
                    .and(defer(Book::summary)),
            ),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert!(
        q[0].starts_with(
            "SELECT \"books\".\"id\", \"books\".\"title\", \"books\".\"cover\", \"books\".\"shelf_id\", \"books\".\"blurb\" FROM"
        ),
        "{}",
        q[0]
    );
    let b = books[1].read().unwrap();
    assert_eq!(b.cover.get().unwrap().as_deref(), Some(&[1u8; 4][..]));
    assert_eq!(b.blurb.get().unwrap(), &None);
    assert!(b.shelf_id.is_some());
    assert!(!b.summary.is_loaded(), "defer after undefer wins");
}

// covers: LOAD-12, LOAD-13
#[tokio::test]
async fn an_explicit_column_load_is_one_statement_for_all_objects() {
    let db = setup().await;
    seed(&db, 50).await;
    let mut s = db.engine().session();
    let books = s
        .scalars(&select(Book::ALL).order_by(Book::id.asc()))
        .await
        .unwrap();
    let mark = db.recorder().len();
    s.load(&books, undefer(Book::summary)).await.unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(
        q[0].starts_with("SELECT \"books\".\"id\", \"books\".\"summary\" FROM \"books\" WHERE (\"books\".\"id\" = ANY($1))"),
        "{}",
        q[0]
    );
    for (i, b) in books.iter().enumerate() {
        assert_eq!(
            b.read().unwrap().summary.get().unwrap(),
            &format!("summary {i}")
        );
        assert!(!s.is_modified(b), "loading a column is not a change");
    }
    // everything is loaded now: no SQL
    let mark = db.recorder().len();
    s.load(&books, undefer(Book::summary)).await.unwrap();
    assert!(stmts(&db, mark).is_empty());
    // a commit writes nothing back
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    assert!(stmts(&db, mark).iter().all(|q| !q.starts_with("UPDATE")));
}

// covers: LOAD-12, SES-02
#[tokio::test]
async fn a_later_query_fills_deferred_columns_of_objects_in_the_identity_map() {
    let db = setup().await;
    seed(&db, 3).await;
    let mut s = db.engine().session();
    let first = s
        .scalars(&select(Book::ALL).order_by(Book::id.asc()))
        .await
        .unwrap();
    // an unflushed change to a plain column survives the second load
    first[0].write().unwrap().title = "changed".into();
    let again = s
        .scalars(
            &select(Book::ALL)
                .order_by(Book::id.asc())
                .options(undefer(Book::summary)),
        )
        .await
        .unwrap();
    // autoflush wrote the title first; the same objects come back, now with their summaries
    assert!(Obj::ptr_eq(&first[0], &again[0]));
    assert_eq!(first[0].read().unwrap().summary.get().unwrap(), "summary 0");
    assert_eq!(first[0].read().unwrap().title, "changed");
    let mark = db.recorder().len();
    s.flush().await.unwrap();
    assert!(
        stmts(&db, mark).is_empty(),
        "filled columns are not changes"
    );
}

// covers: LOAD-12, SES-10
#[tokio::test]
async fn writing_a_deferred_column_without_loading_it_updates_only_that_column() {
    let db = setup().await;
    seed(&db, 2).await;
    let mut s = db.engine().session();
    let books = s
        .scalars(&select(Book::ALL).order_by(Book::id.asc()))
        .await
        .unwrap();
    books[0].write().unwrap().summary.set("rewritten".into());
    // NULL into a nullable deferred column that was never loaded is a change too
    books[1].write().unwrap().cover.set(None);
    let mark = db.recorder().len();
    s.flush().await.unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 2, "{q:#?}");
    assert!(
        q.iter()
            .any(|q| q.starts_with("UPDATE \"books\" SET \"summary\" = ")),
        "{q:#?}"
    );
    assert!(
        q.iter()
            .any(|q| q.starts_with("UPDATE \"books\" SET \"cover\" = ")),
        "{q:#?}"
    );
    assert!(q.iter().all(|q| !q.contains("\"title\" =")), "{q:#?}");
    // the value written stays readable after the RETURNING write-back
    assert_eq!(books[0].read().unwrap().summary.get().unwrap(), "rewritten");
    s.commit().await.unwrap();
    assert_eq!(
        scalar(&db, "SELECT summary || '/' || coalesce(encode((SELECT cover FROM books ORDER BY id OFFSET 1 LIMIT 1), 'hex'), 'null') FROM books ORDER BY id LIMIT 1").await,
        "rewritten/null"
    );
}

// covers: LOAD-12, SES-04
#[tokio::test]
async fn new_objects_insert_their_deferred_values_and_keep_them_in_memory() {
    let db = setup().await;
    let mut s = db.engine().session();
    let d = Obj::new(Doc {
        id: 7,
        name: "x".into(),
        body: Deferred::new("body text".into()),
        meta: Deferred::new(Some("m".into())),
        // unset: the server fills it
        note: Deferred::new(Generated::unset()),
    });
    let given = Obj::new(Doc {
        id: 8,
        name: "y".into(),
        body: Deferred::new("b".into()),
        meta: Deferred::new(None),
        note: Deferred::new(Generated::new("mine".into())),
    });
    s.add_all([&d, &given]).unwrap();
    let mark = db.recorder().len();
    s.flush().await.unwrap();
    let q = stmts(&db, mark);
    assert!(
        q[0].starts_with("INSERT INTO \"docs\" (\"id\", \"name\", \"body\", \"meta\") SELECT"),
        "{}",
        q[0]
    );
    assert!(
        q[1].starts_with(
            "INSERT INTO \"docs\" (\"id\", \"name\", \"body\", \"meta\", \"note\") SELECT"
        ),
        "a value given is sent: {}",
        q[1]
    );
    // RETURNING reads the default columns; the deferred values the flush wrote are kept
    assert_eq!(d.read().unwrap().body.get().unwrap(), "body text");
    assert_eq!(given.read().unwrap().note.get().unwrap(), "mine");
    assert!(!d.read().unwrap().note.is_loaded());
    s.load(std::slice::from_ref(&d), undefer(Doc::note))
        .await
        .unwrap();
    assert_eq!(d.read().unwrap().note.get().unwrap(), "fresh");
    s.commit().await.unwrap();
    assert_eq!(
        scalar(&db, "SELECT body || '/' || meta FROM docs WHERE id = 7").await,
        "body text/m"
    );
    assert_eq!(
        scalar(&db, "SELECT note FROM docs WHERE id = 8").await,
        "mine"
    );
}

// covers: LOAD-12, ERR-04
#[tokio::test]
async fn inserting_a_not_loaded_deferred_column_is_refused_and_writes_nothing() {
    let db = setup().await;
    seed(&db, 1).await;
    let mut s = db.engine().session();
    let loaded = s.scalars(&select(Book::ALL)).await.unwrap();
    let row = loaded[0].get().unwrap();
    let mut copy = row.clone();
    copy.id = Generated::unset();
    copy.title = "copy".into();
    let c = Obj::new(copy);
    s.add(&c).unwrap();
    let e = s.flush().await.unwrap_err();
    assert!(e.to_string().contains("summary"), "{e}");
    s.rollback().await.unwrap();
    assert_eq!(scalar(&db, "SELECT count(*)::text FROM books").await, "1");
    // the same through the statement builder: an error when the statement compiles
    let e = s.execute(&aludel::insert(&row)).await.unwrap_err();
    assert!(e.to_string().contains("summary"), "{e}");
}

// covers: LOAD-12, LOAD-02, LOAD-03
#[tokio::test]
async fn relationship_loads_read_their_columns_around_deferred_ones() {
    let db = setup().await;
    seed(&db, 6).await;
    let mut s = db.engine().session();
    let shelves = s
        .scalars(
            &select(Shelf::ALL)
                .order_by(Shelf::id.asc())
                .options(selectin(Shelf::books)),
        )
        .await
        .unwrap();
    let books = shelves[0].read().unwrap().books.get().unwrap();
    assert_eq!(books.len(), 3);
    assert_eq!(books[1].read().unwrap().title, "t2");
    assert!(!books[1].read().unwrap().summary.is_loaded());

    // joined target columns come after the selected (undeferred) columns of the parent
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let books = s
        .scalars(
            &select(Book::ALL)
                .order_by(Book::id.asc())
                .options(undefer(Book::summary).and(joined(Book::shelf))),
        )
        .await
        .unwrap();
    assert_eq!(stmts(&db, mark).len(), 1);
    for (i, b) in books.iter().enumerate() {
        let b = b.read().unwrap();
        assert_eq!(b.summary.get().unwrap(), &format!("summary {i}"));
        let shelf = b.shelf.get().unwrap().unwrap();
        assert_eq!(
            shelf.read().unwrap().name,
            if i % 2 == 0 { "left" } else { "right" }
        );
    }
}

// covers: LOAD-12, LOAD-11
#[tokio::test]
async fn column_options_apply_to_related_objects_under_then() {
    let db = setup().await;
    seed(&db, 4).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let shelves = s
        .scalars(
            &select(Shelf::ALL)
                .order_by(Shelf::id.asc())
                .options(selectin(Shelf::books).then(undefer(Book::summary))),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 2, "{q:#?}");
    assert!(
        q[1].starts_with(
            "SELECT \"books\".\"id\", \"books\".\"summary\", \"books\".\"title\", \"books\".\"shelf_id\" FROM"
        ),
        "{}",
        q[1]
    );
    let books = shelves[1].read().unwrap().books.get().unwrap();
    assert_eq!(books.len(), 2);
    let b = books[0].read().unwrap();
    assert_eq!(b.summary.get().unwrap(), "summary 1");
    assert_eq!(b.title, "t1");
    assert!(!b.cover.is_loaded());
    // a joined option with column options for its target loads by selectin instead
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let shelves = s
        .scalars(
            &select(Shelf::ALL)
                .order_by(Shelf::id.asc())
                .options(joined(Shelf::books).then(undefer_group::<Book>("media"))),
        )
        .await
        .unwrap();
    assert_eq!(stmts(&db, mark).len(), 2);
    let books = shelves[0].read().unwrap().books.get().unwrap();
    assert_eq!(
        books[1].read().unwrap().cover.get().unwrap().as_deref(),
        Some(&[2u8; 4][..])
    );
}

// covers: LOAD-12, STR-01
#[tokio::test]
async fn column_options_decode_the_same_outside_the_identity_map() {
    use futures_util::StreamExt;
    let db = setup().await;
    seed(&db, 3).await;
    let q = select(Book::ALL)
        .order_by(Book::id.asc())
        .options(undefer(Book::summary));
    let mut s = db.engine().session();
    // untracked values: the summary sits before the title in the row
    let rows = s.all(&q).await.unwrap();
    assert_eq!(rows[2].title, "t2");
    assert_eq!(rows[2].summary.get().unwrap(), "summary 2");
    let one = s.first(&q).await.unwrap().unwrap();
    assert_eq!(one.title, "t0");
    let mut stream = db.engine().stream(&q).await.unwrap();
    let mut n = 0;
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        assert_eq!(b.summary.get().unwrap(), &format!("summary {n}"));
        assert_eq!(b.title, format!("t{n}"));
        n += 1;
    }
    assert_eq!(n, 3);
    // bulk_update sends every column: a row without its deferred values is refused first
    let mark = db.recorder().len();
    let plain = s.all(&select(Book::ALL)).await.unwrap();
    let e = s.bulk_update(&plain).await.unwrap_err();
    assert!(e.to_string().contains("Deferred"), "{e}");
    assert_eq!(stmts(&db, mark).len(), 1, "only the SELECT ran");
}

//! Loading strategies: not loaded by default, selectin, joined, raise, noload, explicit
//! batched loads, chained and filtered options, pipelined sibling loads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use aludel::testing::TestDb;
use aludel::{
    Engine, Many, Obj, One, load::contains_eager, load::joined, load::noload, load::raise,
    load::raiseload_all, load::selectin, select,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

// covers: LOAD-01, LOAD-06, ERR-01
#[tokio::test]
async fn an_unloaded_relationship_is_a_typed_error_and_runs_no_sql() {
    let db = setup().await;
    seed(&db, 3, 2, 1).await;
    let mut s = db.engine().session();
    let authors = s
        .scalars(&select(Author::ALL).order_by(Author::id.asc()))
        .await
        .unwrap();
    let mark = db.recorder().len();
    {
        let a = authors[0].read().unwrap();
        let e = a.posts.get().unwrap_err();
        assert!(e.is_not_loaded(), "{e}");
        assert!(e.to_string().contains("authors.posts"), "{e}");
        assert!(a.profile.get().unwrap_err().is_not_loaded());
        assert!(a.following.len().unwrap_err().is_not_loaded());
        // declared lazy = "raise": the message says why
        let e = a.notes.get().unwrap_err();
        assert!(e.to_string().contains("lazy=\"raise\""), "{e}");
    }
    assert_eq!(
        db.recorder().len(),
        mark,
        "reading unloaded relationships ran SQL"
    );
}

// covers: LOAD-02, LOAD-11, REL-01
#[tokio::test]
async fn selectin_chain_loads_every_level_in_one_statement() {
    let db = setup().await;
    seed(&db, 40, 3, 2).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let authors = s
        .scalars(
            &select(Author::ALL)
                .order_by(Author::id.asc())
                .options(selectin(Author::posts).then(selectin(Post::comments))),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 3, "{q:#?}");
    assert!(
        q[1].contains("\"posts\".\"author_id\" = ANY($1)"),
        "{}",
        q[1]
    );
    assert!(
        q[2].contains("\"comments\".\"post_id\" = ANY($1)"),
        "{}",
        q[2]
    );
    assert_eq!(authors.len(), 40);
    let mark = db.recorder().len();
    for a in &authors {
        let posts = a.read().unwrap().posts.get().unwrap();
        assert_eq!(posts.len(), 3);
        for p in &posts {
            let p = p.read().unwrap();
            assert_eq!(p.author_id, Some(a.read().unwrap().id.cloned().unwrap()));
            assert_eq!(p.comments.len().unwrap(), 2);
            // the reverse side is known without SQL
            assert!(Obj::ptr_eq(&p.author.get().unwrap().unwrap(), a));
        }
    }
    assert_eq!(db.recorder().len(), mark, "navigation ran SQL");
}

// covers: LOAD-02, LOAD-01, LOAD-13
#[tokio::test]
async fn explicit_loads_are_batched_one_statement_per_level() {
    let db = setup().await;
    seed(&db, 1200, 1, 0).await;
    let mut s = db.engine().session();
    let authors = s.scalars(&select(Author::ALL)).await.unwrap();
    // the keys of a level go in one array parameter: one statement for 1,200 parents
    let mark = db.recorder().len();
    s.load(&authors, selectin(Author::posts)).await.unwrap();
    assert_eq!(stmts(&db, mark).len(), 1);
    for a in &authors {
        assert_eq!(a.read().unwrap().posts.len().unwrap(), 1);
    }
    // SQLAlchemy's 500-key chunks on request: 3 statements (pipelined)
    let mut s = db.engine().session();
    let authors = s.scalars(&select(Author::ALL)).await.unwrap();
    let mark = db.recorder().len();
    s.load(&authors, selectin(Author::posts).chunk_size(500))
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert_eq!(
        q.len(),
        3,
        "1,200 parents = 3 chunks of at most 500: {q:#?}"
    );
    for a in &authors {
        assert_eq!(a.read().unwrap().posts.len().unwrap(), 1);
    }
    // a relationship declared lazy = "raise" refuses an awaited load too
    let e = s.load(&authors, selectin(Author::notes)).await.unwrap_err();
    assert!(e.is_not_loaded() && e.to_string().contains("raise"), "{e}");
}

// covers: LOAD-03
#[tokio::test]
async fn joined_loads_in_the_same_statement_and_deduplicates_parents() {
    let db = setup().await;
    seed(&db, 5, 4, 0).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let posts = s
        .scalars(
            &select(Post::ALL)
                .order_by(Post::id.asc())
                .options(joined(Post::author)),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(
        q[0].contains("LEFT OUTER JOIN \"authors\" AS \"posts__author\""),
        "{}",
        q[0]
    );
    assert_eq!(posts.len(), 20);
    let by_author = |id: Option<i64>| -> Vec<Obj<Author>> {
        posts
            .iter()
            .filter(|p| p.read().unwrap().author_id == id)
            .map(|p| p.read().unwrap().author.get().unwrap().unwrap())
            .collect()
    };
    let same = by_author(Some(1));
    assert_eq!(same.len(), 4);
    assert!(
        same.iter().all(|a| Obj::ptr_eq(a, &same[0])),
        "one identity per author row"
    );

    // a joined collection: parents once each, children complete
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let authors = s
        .scalars(
            &select(Author::ALL)
                .order_by(Author::id.asc())
                .options(joined(Author::posts)),
        )
        .await
        .unwrap();
    assert_eq!(stmts(&db, mark).len(), 1);
    assert_eq!(authors.len(), 5, "parents de-duplicated");
    for a in &authors {
        assert_eq!(a.read().unwrap().posts.len().unwrap(), 4);
    }

    // LIMIT counts parents, not joined rows
    let mut s = db.engine().session();
    let authors = s
        .scalars(
            &select(Author::ALL)
                .order_by(Author::id.asc())
                .limit(2)
                .options(joined(Author::posts)),
        )
        .await
        .unwrap();
    assert_eq!(authors.len(), 2);
    for a in &authors {
        assert_eq!(a.read().unwrap().posts.len().unwrap(), 4);
    }
}

// covers: LOAD-06, LOAD-07
#[tokio::test]
async fn raise_and_noload_options_emit_no_sql() {
    let db = setup().await;
    seed(&db, 2, 2, 0).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let authors = s
        .scalars(&select(Author::ALL).options(raise(Author::posts).and(noload(Author::followers))))
        .await
        .unwrap();
    assert_eq!(stmts(&db, mark).len(), 1);
    let a = authors[0].read().unwrap();
    let e = a.posts.get().unwrap_err();
    assert!(
        e.is_not_loaded() && e.to_string().contains("lazy=\"raise\""),
        "{e}"
    );
    assert_eq!(a.followers.len().unwrap(), 0);
}

// covers: LOAD-11, LOAD-10
#[tokio::test]
async fn options_filter_and_order_the_related_rows() {
    let db = setup().await;
    seed(&db, 3, 6, 0).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let authors = s
        .scalars(
            &select(Author::ALL).options(
                selectin(Author::posts)
                    .filter(Post::published.eq(true))
                    .order_by(Post::id.desc()),
            ),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert!(q[1].contains("\"posts\".\"published\" = $2"), "{}", q[1]);
    assert!(q[1].contains("ORDER BY \"posts\".\"id\" DESC"), "{}", q[1]);
    for a in &authors {
        let posts = a.read().unwrap().posts.get().unwrap();
        assert_eq!(posts.len(), 3, "only published posts");
        let ids: Vec<i64> = posts
            .iter()
            .map(|p| p.read().unwrap().id.cloned().unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(ids, sorted);
        assert!(posts.iter().all(|p| p.read().unwrap().published));
    }
}

// covers: LOAD-02, REL-04, REL-06
#[tokio::test]
async fn many_to_many_and_self_referential_loads() {
    let db = setup().await;
    seed(&db, 4, 1, 0).await;
    let mut c = db.admin().await.unwrap();
    c.driver_client()
        .unwrap()
        .batch_execute(
            "INSERT INTO follows VALUES (1, 2), (1, 3), (2, 3), (4, 1);
             INSERT INTO tags (name) VALUES ('rust'), ('sql'), ('async');
             INSERT INTO post_tags SELECT p.id, t.id FROM posts p, tags t WHERE p.author_id = 1;",
        )
        .await
        .unwrap();
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let authors = s
        .scalars(
            &select(Author::ALL).order_by(Author::id.asc()).options(
                selectin(Author::following)
                    .and(selectin(Author::followers))
                    .and(selectin(Author::posts).then(selectin(Post::tags))),
            ),
        )
        .await
        .unwrap();
    assert_eq!(stmts(&db, mark).len(), 5, "{:#?}", stmts(&db, mark));
    let names = |v: Vec<Obj<Author>>| -> Vec<String> {
        let mut n: Vec<String> = v.iter().map(|a| a.read().unwrap().name.clone()).collect();
        n.sort();
        n
    };
    let a1 = authors[0].read().unwrap();
    assert_eq!(names(a1.following.get().unwrap()), ["a2", "a3"]);
    assert_eq!(names(a1.followers.get().unwrap()), ["a4"]);
    let p = a1.posts.get().unwrap();
    let tags: Vec<String> = p[0]
        .read()
        .unwrap()
        .tags
        .get()
        .unwrap()
        .iter()
        .map(|t| t.read().unwrap().name.clone())
        .collect();
    assert_eq!(
        tags,
        ["async", "rust", "sql"],
        "ordered by the relationship's order_by"
    );
    // the same author object on both sides (identity map)
    let a2 = &a1.following.get().unwrap()[0];
    assert!(Obj::ptr_eq(a2, &authors[1]) || Obj::ptr_eq(a2, &authors[2]));
}

// covers: REL-06
#[tokio::test]
async fn a_tree_of_depth_four_loads_in_five_statements() {
    let db = setup().await;
    let mut s = db.engine().session();
    // built in memory and flushed in one go: parents get their ids before their children
    let root = category("root");
    let mut level = vec![root.clone()];
    for depth in 1..4 {
        let mut next = Vec::new();
        for parent in &level {
            for i in 0..2 {
                let c = category(&format!("d{depth}-{i}"));
                Category::children.add(parent, &c).unwrap();
                next.push(c);
            }
        }
        level = next;
    }
    s.add(&root).unwrap();
    s.commit().await.unwrap();
    let mut check = db.admin().await.unwrap();
    let n: i64 = check
        .query_one(&aludel::sql(
            "SELECT count(*) FROM categories WHERE parent_id IS NOT NULL",
        ))
        .await
        .unwrap();
    assert_eq!(n, 14, "every child inserted with its parent's id");

    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let roots = s
        .scalars(
            &select(Category::ALL)
                .filter(Category::parent_id.is_null())
                .options(
                    selectin(Category::children)
                        .then(selectin(Category::children).then(selectin(Category::children))),
                ),
        )
        .await
        .unwrap();
    assert!(stmts(&db, mark).len() <= 5);
    let leaves = roots[0].read().unwrap().children.get().unwrap()[0]
        .read()
        .unwrap()
        .children
        .get()
        .unwrap()[1]
        .read()
        .unwrap()
        .children
        .get()
        .unwrap();
    assert_eq!(leaves.len(), 2);
    let parent = leaves[0].read().unwrap().parent.get().unwrap().unwrap();
    assert!(parent.read().unwrap().name.starts_with("d2-"));
}

// covers: REL-07
#[tokio::test]
async fn two_relationships_to_the_same_table_stay_apart() {
    let db = setup().await;
    seed(&db, 2, 0, 0).await;
    let mut c = db.admin().await.unwrap();
    c.driver_client()
        .unwrap()
        .batch_execute(
            "INSERT INTO messages (sender_id, recipient_id) VALUES (1, 2), (2, 1), (1, 1)",
        )
        .await
        .unwrap();
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let msgs = s
        .scalars(
            &select(Message::ALL)
                .order_by(Message::id.asc())
                .options(joined(Message::sender).and(joined(Message::recipient))),
        )
        .await
        .unwrap();
    assert_eq!(stmts(&db, mark).len(), 1);
    let pair = |m: &Obj<Message>| {
        let m = m.read().unwrap();
        (
            m.sender
                .get()
                .unwrap()
                .unwrap()
                .read()
                .unwrap()
                .name
                .clone(),
            m.recipient
                .get()
                .unwrap()
                .unwrap()
                .read()
                .unwrap()
                .name
                .clone(),
        )
    };
    assert_eq!(pair(&msgs[0]), ("a1".into(), "a2".into()));
    assert_eq!(pair(&msgs[1]), ("a2".into(), "a1".into()));
    assert_eq!(pair(&msgs[2]), ("a1".into(), "a1".into()));
}

/// A TCP proxy in front of PostgreSQL that counts the client's request bursts: a burst is
/// what the client sends before it next hears from the server, so bursts = round trips.
struct Proxy {
    port: u16,
    bursts: Arc<AtomicUsize>,
}

async fn proxy() -> Proxy {
    let cfg: tokio_postgres::Config = aludel::testing::database_url().parse().unwrap();
    let host = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".to_owned(),
    };
    let upstream = format!(
        "{host}:{}",
        cfg.get_ports().first().copied().unwrap_or(5432)
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bursts = Arc::new(AtomicUsize::new(0));
    let counter = bursts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let last = Arc::new(AtomicU8::new(0));
            let (l1, l2, bursts) = (last.clone(), last, counter.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if l1.swap(1, Ordering::SeqCst) != 1 {
                        bursts.fetch_add(1, Ordering::SeqCst);
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    l2.store(2, Ordering::SeqCst);
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Proxy { port, bursts }
}

fn proxied_engine(db: &TestDb, port: u16) -> Engine {
    let cfg: tokio_postgres::Config = aludel::testing::database_url().parse().unwrap();
    let url = format!(
        "postgres://{}@127.0.0.1:{port}/{}",
        cfg.get_user().unwrap_or("postgres"),
        cfg.get_dbname().unwrap_or("postgres")
    );
    Engine::builder(&url)
        .max_size(1)
        .options(&format!("-c search_path={}", db.schema()))
        .application_name(db.schema())
        .observer(db.recorder().clone())
        .build()
        .unwrap()
}

// covers: LOAD-02
#[tokio::test]
async fn sibling_loads_of_one_level_share_one_round_trip() {
    let db = setup().await;
    seed(&db, 20, 2, 0).await;
    let p = proxy().await;
    let engine = proxied_engine(&db, p.port);
    let opts = || {
        selectin(Author::posts)
            .and(selectin(Author::followers))
            .and(selectin(Author::following))
    };
    // warm the statement cache (first use prepares each statement)
    let mut s = engine.session();
    let authors = s.scalars(&select(Author::ALL)).await.unwrap();
    s.load(&authors, opts()).await.unwrap();
    s.rollback().await.unwrap();

    let mut s = engine.session();
    let authors = s.scalars(&select(Author::ALL)).await.unwrap();
    let mark = db.recorder().len();
    let before = p.bursts.load(Ordering::SeqCst);
    s.load(&authors, opts()).await.unwrap();
    let trips = p.bursts.load(Ordering::SeqCst) - before;
    assert_eq!(stmts(&db, mark).len(), 3);
    assert_eq!(
        trips, 1,
        "three sibling loads, one round trip (unpipelined: 3)"
    );
    for a in &authors {
        assert_eq!(a.read().unwrap().posts.len().unwrap(), 2);
    }
}

#[derive(aludel::Model, Debug, Clone)]
#[aludel(table = "shelves")]
struct Shelf {
    #[aludel(primary_key)]
    building: String,
    #[aludel(primary_key)]
    number: i32,
    #[aludel(one_to_many(fk(Book::building, Book::shelf), order_by = "id"))]
    books: aludel::Many<Book>,
}

#[derive(aludel::Model, Debug, Clone)]
#[aludel(table = "books")]
struct Book {
    #[aludel(primary_key)]
    id: i32,
    building: String,
    shelf: i32,
}

// covers: LOAD-02 (composite-key parents: tuple matching)
#[tokio::test]
async fn selectin_works_for_composite_key_parents() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    aludel::create_all(
        &mut c,
        &[Shelf::TABLE, Book::TABLE],
        aludel::schema::CreateOptions::default(),
    )
    .await
    .unwrap();
    c.driver_client()
        .unwrap()
        .batch_execute(
            "INSERT INTO shelves VALUES ('a', 1), ('a', 2), ('b', 1);
             INSERT INTO books VALUES (1, 'a', 1), (2, 'a', 1), (3, 'a', 2), (4, 'b', 1), (5, 'b', 2);",
        )
        .await
        .unwrap();
    drop(c);
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let shelves = s
        .scalars(
            &select(Shelf::ALL)
                .order_by(Shelf::building.asc())
                .order_by(Shelf::number.asc())
                .options(selectin(Shelf::books)),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 2, "{q:#?}");
    // One array per key column: the same text for any number of parents.
    assert!(
        q[1].contains(
            "(\"books\".\"building\", \"books\".\"shelf\") IN (SELECT * FROM unnest($1, $2))"
        ),
        "{}",
        q[1]
    );
    let ids = |sh: &Obj<Shelf>| -> Vec<i32> {
        sh.read()
            .unwrap()
            .books
            .get()
            .unwrap()
            .iter()
            .map(|b| b.read().unwrap().id)
            .collect()
    };
    assert_eq!(ids(&shelves[0]), [1, 2]);
    assert_eq!(ids(&shelves[1]), [3]);
    assert_eq!(
        ids(&shelves[2]),
        [4],
        "book 5 sits on a shelf that does not exist"
    );
}

// covers: LOAD-11, LOAD-06
#[tokio::test]
async fn raiseload_all_marks_every_relationship_no_option_names() {
    let db = setup().await;
    seed(&db, 3, 2, 1).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let authors = s
        .scalars(
            &select(Author::ALL)
                .order_by(Author::id.asc())
                .options(selectin(Author::posts).and(raiseload_all())),
        )
        .await
        .unwrap();
    assert_eq!(stmts(&db, mark).len(), 2);
    let mark = db.recorder().len();
    let a = authors[0].read().unwrap();
    assert_eq!(a.posts.len().unwrap(), 2);
    for e in [
        a.profile.get().unwrap_err(),
        a.following.len().unwrap_err(),
        a.followers.len().unwrap_err(),
    ] {
        assert!(
            e.is_not_loaded() && e.to_string().contains("lazy=\"raise\""),
            "{e}"
        );
    }
    // the wildcard is scoped to the authors: the posts' own relationships are only not loaded
    let posts = a.posts.get().unwrap();
    let e = posts[0].read().unwrap().comments.len().unwrap_err();
    assert!(e.is_not_loaded() && !e.to_string().contains("raise"), "{e}");
    assert_eq!(db.recorder().len(), mark);

    // under `then`, it applies to the next level; slots filled by back_populates stay loaded
    let mut s = db.engine().session();
    let authors = s
        .scalars(
            &select(Author::ALL)
                .order_by(Author::id.asc())
                .options(selectin(Author::posts).then(raiseload_all())),
        )
        .await
        .unwrap();
    let a = authors[0].read().unwrap();
    let p = a.posts.get().unwrap()[0].clone();
    let p = p.read().unwrap();
    assert!(
        p.comments
            .len()
            .unwrap_err()
            .to_string()
            .contains("lazy=\"raise\"")
    );
    assert!(
        p.tags
            .len()
            .unwrap_err()
            .to_string()
            .contains("lazy=\"raise\"")
    );
    assert!(Obj::ptr_eq(&p.author.get().unwrap().unwrap(), &authors[0]));
    // and an author's relationships are untouched by it
    assert!(!a.profile.get().unwrap_err().to_string().contains("raise"));
}

// covers: REL-06, LOAD-02, LOAD-11
#[tokio::test]
async fn declared_selectin_defaults_apply_at_every_level_and_stop_at_loaded_slots() {
    let db = setup().await;
    let mut s = db.engine().session();
    fn node(name: String) -> Obj<TreeNode> {
        Obj::new(TreeNode {
            id: Generated::unset(),
            parent_id: None,
            name,
            parent: One::new(),
            children: Many::new(),
        })
    }
    // depth 4: 1 + 2 + 4 + 8 nodes
    let root = node("root".into());
    let mut level = vec![root.clone()];
    for depth in 1..4 {
        let mut next = Vec::new();
        for (i, parent) in level.iter().enumerate() {
            for j in 0..2 {
                let child = node(format!("n{depth}-{i}-{j}"));
                TreeNode::children.add(parent, &child).unwrap();
                next.push(child);
            }
        }
        level = next;
    }
    s.add(&root).unwrap();
    s.commit().await.unwrap();

    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let roots = s
        .scalars(&select(TreeNode::ALL).filter(TreeNode::parent_id.is_null()))
        .await
        .unwrap();
    // the roots, then one statement per level below (the leaves' empty children included);
    // the parents are known from back_populates and never queried
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 5, "{q:#?}");
    assert!(
        q[1..].iter().all(|q| q.contains("\"parent_id\" = ANY($1)")),
        "{q:#?}"
    );
    let mut count = 0;
    let mut stack = roots.clone();
    while let Some(n) = stack.pop() {
        count += 1;
        let n = n.read().unwrap();
        for c in n.children.get().unwrap() {
            assert_eq!(c.read().unwrap().parent_id, n.id.as_option().copied());
            stack.push(c);
        }
    }
    assert_eq!(count, 15);
    let root = roots[0].read().unwrap();
    assert!(root.parent.get().unwrap().is_none());
}

// covers: LOAD-10, LOAD-03
#[tokio::test]
async fn contains_eager_fills_a_relationship_from_the_statements_own_join() {
    let db = setup().await;
    // posts alternate published / not; authors 1..=4 with 4 posts each
    seed(&db, 4, 4, 1).await;
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let authors = s
        .scalars(
            &select(Author::ALL)
                .join_related::<Post>()
                .filter(Post::published.eq(true))
                .order_by(Author::id.asc())
                .order_by(Post::id.asc())
                .options(contains_eager(Author::posts).then(selectin(Post::comments))),
        )
        .await
        .unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 2, "{q:#?}");
    // one join (the user's), the posts' columns read from it
    assert_eq!(q[0].matches("JOIN").count(), 1, "{}", q[0]);
    assert!(q[0].contains("\"posts\".\"title\""), "{}", q[0]);
    assert_eq!(authors.len(), 4, "parents de-duplicated");
    for a in &authors {
        let posts = a.read().unwrap().posts.get().unwrap();
        // a filtered eager load: only the rows the statement kept
        assert_eq!(posts.len(), 2);
        for p in &posts {
            let p = p.read().unwrap();
            assert!(p.published);
            assert_eq!(p.comments.len().unwrap(), 1);
        }
    }

    // through an alias, with an outer join: authors without a matching post get an empty
    // collection
    let mut s = db.engine().session();
    let p = Post::alias("p");
    let authors = s
        .scalars(
            &select(Author::ALL)
                .left_join_alias(
                    &p,
                    Post::author_id
                        .of(&p)
                        .expr()
                        .eq(Author::id.expr())
                        .and(Post::title.of(&p).eq("p1-2".to_string())),
                )
                .order_by(Author::id.asc())
                .options(contains_eager(Author::posts).from_alias(&p)),
        )
        .await
        .unwrap();
    assert_eq!(authors.len(), 4);
    let first = authors[0].read().unwrap().posts.get().unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].read().unwrap().title, "p1-2");
    assert_eq!(authors[1].read().unwrap().posts.len().unwrap(), 0);

    // it reads the statement's own join: refused anywhere else
    let e = s
        .load(&authors, contains_eager(Author::posts))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("contains_eager"), "{e}");
}

/// EXP-02: commit expires relationships as well as columns. A query that loads an expired
/// object again without loading a relationship leaves that relationship not loaded, never
/// the collection as it was before the commit (here a new object's empty one, while another
/// connection added a post); a relationship with unflushed changes keeps them.
// covers: EXP-02, EXP-03, IDM-05
#[tokio::test]
async fn relationships_expired_by_commit_are_not_read_stale_after_a_requery() {
    let db = setup().await;
    let mut s = db.engine().session();
    let a = author("new");
    s.add(&a).unwrap();
    s.commit().await.unwrap();
    let id: i64 = db
        .engine()
        .query_one(&aludel::sql("SELECT max(id) FROM authors"))
        .await
        .unwrap();
    db.engine()
        .execute(
            &aludel::sql("INSERT INTO posts (author_id, title, published) VALUES ($1, 'p', true)")
                .bind(id),
        )
        .await
        .unwrap();
    let again = s.scalars(&select(Author::ALL)).await.unwrap();
    assert!(Obj::ptr_eq(&again[0], &a));
    let err = a.read().unwrap().posts.get().unwrap_err();
    assert!(err.is_not_loaded(), "{err}");
    // Loading it reads what the table holds now.
    s.load(std::slice::from_ref(&a), selectin(Author::posts))
        .await
        .unwrap();
    assert_eq!(a.read().unwrap().posts.len().unwrap(), 1);
    // Loaded by the query itself: fresh as well.
    s.commit().await.unwrap();
    let again = s
        .scalars(&select(Author::ALL).options(selectin(Author::posts)))
        .await
        .unwrap();
    assert_eq!(again[0].read().unwrap().posts.len().unwrap(), 1);
}

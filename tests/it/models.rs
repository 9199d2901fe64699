use aludel::Generated;
use aludel::testing::TestDb;
use aludel::{
    Model, create_all, delete, drop_all, func::avg, func::call as func, func::coalesce,
    func::count, func::count_star, func::max, func::sum, insert, insert_many, query::Assignments,
    query::Expr, query::case, query::excluded, query::value, schema::CreateOptions, select, sql,
    update,
};

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(
    table = "users",
    check(name = "users_name_not_blank", expr = "name <> ''")
)]
struct User {
    #[aludel(primary_key, identity)]
    id: Generated<i32>,
    #[aludel(unique)]
    name: String,
    #[aludel(index)]
    hair_color: Option<String>,
    #[aludel(column = "manager", references = "User::id", on_delete = "set null")]
    manager_id: Option<i32>,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "posts", index(user_id, title))]
struct Post {
    #[aludel(primary_key, identity)]
    id: Generated<i32>,
    #[aludel(references = "User::id", on_delete = "cascade")]
    user_id: i32,
    title: String,
    body: Option<String>,
    #[aludel(server_default = "0")]
    score: Generated<i64>,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "tags")]
struct Tag {
    #[aludel(primary_key)]
    name: String,
    uses: i32,
}

fn user(name: &str, hair: Option<&str>) -> User {
    User {
        id: Generated::unset(),
        name: name.to_owned(),
        hair_color: hair.map(str::to_owned),
        manager_id: None,
    }
}

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    // Posts listed first: create_all must still create users before posts.
    create_all(
        &mut c,
        &[Post::TABLE, Tag::TABLE, User::TABLE],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    let users = [
        user("ann", Some("black")),
        user("bob", Some("brown")),
        user("cid", None),
        user("dee", Some("black")),
    ];
    let ids: Vec<i32> = c
        .all(&insert_many(&users).returning(User::id))
        .await
        .unwrap();
    assert_eq!(ids.len(), 4);
    for (i, uid) in ids.iter().enumerate() {
        for p in 0..i {
            let post = Post {
                id: Generated::unset(),
                user_id: *uid,
                title: format!("post {p} by {uid}"),
                body: None,
                score: Generated::unset(),
            };
            c.execute(&insert(&post)).await.unwrap();
        }
    }
    db
}

// covers: DDL-01, TYP-07
#[tokio::test]
async fn create_all_follows_foreign_keys_and_is_idempotent() {
    let db = setup().await;
    let mut c = db.engine().connect().await.unwrap();
    create_all(
        &mut c,
        &[User::TABLE, Post::TABLE, Tag::TABLE],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    let constraints: Vec<(String, String)> = c
        .query_as(&sql(
            "SELECT conname::text, contype::text FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
             WHERE n.nspname = current_schema() ORDER BY conname",
        ))
        .await
        .unwrap();
    let names: Vec<&str> = constraints.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "posts_pkey",
        "posts_user_id_fkey",
        "users_manager_fkey",
        "users_name_key",
        "users_name_not_blank",
        "users_pkey",
        "tags_pkey",
    ] {
        assert!(names.contains(&expected), "missing {expected}: {names:?}");
    }
    let indexes: Vec<String> = c
        .query_as(&sql(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1",
        ))
        .await
        .unwrap();
    assert!(
        indexes.contains(&"users_hair_color_idx".to_owned())
            && indexes.contains(&"posts_user_id_title_idx".to_owned()),
        "{indexes:?}"
    );
    let on_delete: String = c
        .query_one(&sql("SELECT confdeltype::text FROM pg_constraint WHERE conname = 'posts_user_id_fkey' AND connamespace = current_schema()::regnamespace"))
        .await
        .unwrap();
    assert_eq!(on_delete, "c", "ON DELETE CASCADE");
    drop_all(
        &mut c,
        &[User::TABLE, Post::TABLE, Tag::TABLE],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    let left: i64 = c
        .query_one(&sql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
        ))
        .await
        .unwrap();
    assert_eq!(left, 0);
}

// covers: QRY-01, QRY-02, RES-07
#[tokio::test]
async fn select_filters_with_typed_operators() {
    let db = setup().await;
    let e = db.engine();
    let names = |q: aludel::query::Select<aludel::query::Column<User, String>>| async move {
        e.all(&q.order_by(User::name.asc())).await.unwrap()
    };

    let base = select(User::name);
    assert_eq!(
        names(base.clone().filter(User::hair_color.eq("black"))).await,
        ["ann", "dee"]
    );
    assert_eq!(
        names(base.clone().filter(User::hair_color.ne("black"))).await,
        ["bob"]
    );
    assert_eq!(
        names(base.clone().filter(User::hair_color.is_null())).await,
        ["cid"]
    );
    assert_eq!(
        names(
            base.clone()
                .filter(User::name.gt("bob").and(User::name.le("dee")))
        )
        .await,
        ["cid", "dee"]
    );
    assert_eq!(
        names(base.clone().filter(User::name.between("b", "c"))).await,
        ["bob"]
    );
    assert_eq!(
        names(
            base.clone()
                .filter(User::name.in_list(vec!["ann".into(), "cid".into()]))
        )
        .await,
        ["ann", "cid"]
    );
    assert_eq!(
        names(
            base.clone()
                .filter(User::name.not_in_list(vec!["ann".into()]))
        )
        .await,
        ["bob", "cid", "dee"]
    );
    assert!(
        names(base.clone().filter(User::name.in_list(vec![])))
            .await
            .is_empty(),
        "empty IN matches nothing"
    );
    assert_eq!(
        names(base.clone().filter(User::name.like("%e%"))).await,
        ["dee"]
    );
    assert_eq!(
        names(base.clone().filter(User::name.ilike("A%"))).await,
        ["ann"]
    );
    assert_eq!(
        names(base.clone().filter(User::name.starts_with("b"))).await,
        ["bob"]
    );
    assert_eq!(
        names(base.clone().filter(User::name.contains("i"))).await,
        ["cid"]
    );
    assert_eq!(
        names(
            base.clone().filter(
                User::hair_color
                    .eq("black")
                    .or(User::hair_color.is_null())
                    .not()
            )
        )
        .await,
        ["bob"]
    );
    // The base statement was not changed by any refinement.
    assert_eq!(base.to_sql(), r#"SELECT "users"."name" FROM "users""#);
    // LIKE metacharacters in starts_with/contains are literal.
    assert!(
        names(base.clone().filter(User::name.contains("%")))
            .await
            .is_empty()
    );
}

// covers: QRY-04, RES-06, RES-02
#[tokio::test]
async fn ordering_paging_distinct_and_aggregates() {
    let db = setup().await;
    let e = db.engine();
    let page: Vec<User> = e
        .all(
            &select(User::ALL)
                .order_by(User::hair_color.asc().nulls_first())
                .order_by(User::name.desc())
                .limit(2)
                .offset(1),
        )
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["dee", "ann"]
    );
    let q = select(User::ALL).order_by(User::name.asc()).limit(2);
    assert!(
        q.to_sql()
            .ends_with(r#"ORDER BY "users"."name" ASC LIMIT $1"#),
        "{}",
        q.to_sql()
    );

    let first_per_color: Vec<(Option<String>, String)> = e
        .all(
            &select((User::hair_color, User::name))
                .distinct_on(User::hair_color)
                .order_by(User::hair_color.asc())
                .order_by(User::name.desc()),
        )
        .await
        .unwrap();
    assert_eq!(
        first_per_color,
        [
            (Some("black".into()), "dee".into()),
            (Some("brown".into()), "bob".into()),
            (None, "cid".into())
        ]
    );
    let colors: Vec<Option<String>> = e
        .all(
            &select(User::hair_color)
                .distinct()
                .order_by(User::hair_color.asc()),
        )
        .await
        .unwrap();
    assert_eq!(colors.len(), 3);

    let per_user: Vec<(i32, i64)> = e
        .all(
            &select((Post::user_id, count_star()))
                .group_by(Post::user_id)
                .having(count_star().ge(2))
                .order_by(Post::user_id.asc()),
        )
        .await
        .unwrap();
    assert_eq!(per_user.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [2, 3]);
    let (n, mx, total, mean): (i64, Option<i32>, Option<i32>, Option<f64>) = e
        .one(&select((
            count(User::id),
            max(User::id),
            sum(User::id),
            avg(User::id),
        )))
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        total.unwrap(),
        (1..=mx.unwrap()).sum::<i32>(),
        "ids are 1..=4 on a fresh table"
    );
    assert!((mean.unwrap() - 2.5).abs() < 1e-9);
    let none: Option<User> = e
        .one_or_none(&select(User::ALL).filter(User::name.eq("zed")))
        .await
        .unwrap();
    assert!(none.is_none());
    let err = e.one(&select(User::ALL)).await.unwrap_err();
    assert!(err.is_multiple_rows());
}

// covers: QRY-03, QRY-09
#[tokio::test]
async fn joins_outer_joins_and_self_joins() {
    let db = setup().await;
    let e = db.engine();
    let rows: Vec<(User, Option<Post>)> = e
        .all(
            &select((User::ALL, Post::ALL.optional()))
                .left_join::<Post>(Post::user_id.eq(User::id))
                .filter(User::hair_color.eq("black"))
                .order_by(User::id.asc())
                .order_by(Post::id.asc()),
        )
        .await
        .unwrap();
    // ann has no posts (one row, None); dee has three.
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].0.name, "ann");
    assert!(rows[0].1.is_none());
    assert!(
        rows[1..]
            .iter()
            .all(|(u, p)| u.name == "dee" && p.as_ref().unwrap().user_id == *u.id.get().unwrap())
    );

    let inner: Vec<(String, String)> = e
        .all(
            &select((User::name, Post::title))
                .join::<Post>(Post::user_id.eq(User::id))
                .order_by(Post::id.asc()),
        )
        .await
        .unwrap();
    assert_eq!(inner.len(), 6);

    let mut c = e.connect().await.unwrap();
    c.execute(
        &update::<User>()
            .set(
                User::manager_id,
                Expr::<Option<i32>>::raw("(SELECT min(id) FROM users)"),
            )
            .filter(User::name.ne("ann")),
    )
    .await
    .unwrap();
    let boss = User::alias("boss");
    let pairs: Vec<(String, String)> = c
        .all(
            &select((User::name, User::name.of(&boss)))
                .join_alias(&boss, User::manager_id.eq(User::id.of(&boss)))
                .order_by(User::name.asc()),
        )
        .await
        .unwrap();
    assert_eq!(
        pairs,
        [
            ("bob".into(), "ann".into()),
            ("cid".into(), "ann".into()),
            ("dee".into(), "ann".into())
        ]
    );

    let labels: Vec<(String, String, String)> = c
        .all(
            &select((
                User::name,
                case(
                    vec![(User::hair_color.eq("black"), value("dark".to_owned()))],
                    Some(value("other".to_owned())),
                ),
                coalesce(User::hair_color, "unknown"),
            ))
            .order_by(User::name.asc()),
        )
        .await
        .unwrap();
    assert_eq!(labels[0], ("ann".into(), "dark".into(), "black".into()));
    assert_eq!(labels[2], ("cid".into(), "other".into(), "unknown".into()));
    let upper: Vec<String> = c
        .all(
            &select(func::<String>("upper", vec![User::name.expr().into()]))
                .from::<User>()
                .order_by(User::name.asc()),
        )
        .await
        .unwrap();
    assert_eq!(upper[0], "ANN");
    let as_text: String = c
        .one(&select(User::id.expr().cast::<String>("text")).filter(User::name.eq("ann")))
        .await
        .unwrap();
    assert_eq!(as_text, "1");
}

// covers: QRY-13, SES-09
#[tokio::test]
async fn insert_update_delete_with_returning() {
    let db = setup().await;
    let e = db.engine();
    let uid: i32 = e
        .one(&select(User::id).filter(User::name.eq("bob")))
        .await
        .unwrap();
    let post = Post {
        id: Generated::unset(),
        user_id: uid,
        title: "fresh".into(),
        body: Some("b".into()),
        score: Generated::unset(),
    };
    let stored: Post = e.one(&insert(&post).returning(Post::ALL)).await.unwrap();
    assert!(*stored.id.get().unwrap() > 0, "identity written back");
    assert_eq!(
        stored.score, 0,
        "unset: the server default came back via RETURNING"
    );
    assert_eq!(
        insert(&post).to_sql().unwrap(),
        r#"INSERT INTO "posts" ("user_id", "title", "body") SELECT "u"."c1", "u"."c2", "u"."c3" FROM unnest($1, $2, $3) WITH ORDINALITY AS "u"("c1", "c2", "c3", "n") ORDER BY "u"."n""#
    );
    let given = Post {
        score: 99.into(),
        title: "given".into(),
        ..post.clone()
    };
    let stored: Post = e.one(&insert(&given).returning(Post::ALL)).await.unwrap();
    assert_eq!(stored.score, 99, "a value given is sent, not replaced");
    e.execute(&delete::<Post>().filter(Post::title.eq("given")))
        .await
        .unwrap();

    let updated: Vec<(i32, i64)> = e
        .all(
            &update::<Post>()
                .set(Post::score, 5_i64)
                .set(Post::body, None::<String>)
                .filter(Post::user_id.eq(uid))
                .returning((Post::id, Post::score)),
        )
        .await
        .unwrap();
    assert_eq!(updated.len(), 2);
    assert!(updated.iter().all(|(_, s)| *s == 5));
    let nulls: i64 = e
        .one(
            &select(count_star())
                .from::<Post>()
                .filter(Post::body.is_null().and(Post::user_id.eq(uid))),
        )
        .await
        .unwrap();
    assert_eq!(nulls, 2);

    let deleted: Vec<String> = e
        .all(
            &delete::<Post>()
                .filter(Post::title.eq("fresh"))
                .returning(Post::title),
        )
        .await
        .unwrap();
    assert_eq!(deleted, ["fresh"]);
    // ON DELETE CASCADE from the model's foreign key.
    let gone = e
        .execute(&delete::<User>().filter(User::name.eq("dee")))
        .await
        .unwrap();
    assert_eq!(gone, 1);
    let left: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM posts"))
        .await
        .unwrap();
    assert_eq!(left, 3);
}

// covers: UPS-01, UPS-02
#[tokio::test]
async fn upsert_do_nothing_and_do_update_with_excluded() {
    let db = setup().await;
    let e = db.engine();
    let tags = [
        Tag {
            name: "rust".into(),
            uses: 1,
        },
        Tag {
            name: "sql".into(),
            uses: 1,
        },
        Tag {
            name: "pg".into(),
            uses: 1,
        },
    ];
    let first: Vec<String> = e
        .all(
            &insert_many(&tags)
                .on_conflict_do_nothing(Tag::name)
                .returning(Tag::name),
        )
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    let again: Vec<String> = e
        .all(
            &insert_many(&tags)
                .on_conflict_do_nothing(Tag::name)
                .returning(Tag::name),
        )
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "conflicting rows are skipped and not returned"
    );

    let bump = [
        Tag {
            name: "rust".into(),
            uses: 10,
        },
        Tag {
            name: "new".into(),
            uses: 1,
        },
        Tag {
            name: "pg".into(),
            uses: 0,
        },
    ];
    let stmt = insert_many(&bump)
        .on_conflict_do_update(
            Tag::name,
            Assignments::new().set(Tag::uses, excluded(Tag::uses)),
            Some(excluded(Tag::uses).gt(0)), // never lower a count to zero
        )
        .returning(Tag::ALL);
    assert!(stmt.to_sql().unwrap().contains(
        r#"ON CONFLICT ("name") DO UPDATE SET "uses" = EXCLUDED."uses" WHERE (EXCLUDED."uses" > $"#
    ));
    let changed: Vec<Tag> = e.all(&stmt).await.unwrap();
    assert_eq!(changed.len(), 2, "pg was filtered out by the WHERE");
    let all: Vec<Tag> = e
        .all(&select(Tag::ALL).order_by(Tag::name.asc()))
        .await
        .unwrap();
    let pairs: Vec<(&str, i32)> = all.iter().map(|t| (t.name.as_str(), t.uses)).collect();
    assert_eq!(pairs, [("new", 1), ("pg", 1), ("rust", 10), ("sql", 1)]);
}

// covers: QRY-10, IDM-02
#[tokio::test]
async fn row_locks_for_update_skip_locked() {
    let db = setup().await;
    let e = db.engine();
    let mut a = e.connect().await.unwrap();
    let mut b = e.connect().await.unwrap();
    a.begin().await.unwrap();
    b.begin().await.unwrap();
    let queue = select(User::ALL)
        .order_by(User::id.asc())
        .limit(2)
        .for_update_skip_locked();
    let got_a: Vec<User> = a.all(&queue).await.unwrap();
    let got_b: Vec<User> = b.all(&queue).await.unwrap();
    assert_eq!(got_a.len(), 2);
    assert_eq!(got_b.len(), 2);
    assert!(
        got_a.iter().all(|x| got_b.iter().all(|y| x.id != y.id)),
        "two workers never grab the same row"
    );
    let err = b
        .all(
            &select(User::ALL)
                .filter(User::id.eq(got_a[0].id.cloned().unwrap()))
                .for_update_nowait(),
        )
        .await
        .unwrap_err();
    assert!(err.is_lock_not_available());
}

// covers: TYP-03, TYP-07
#[tokio::test]
async fn values_round_trip_unchanged() {
    let db = setup().await;
    let e = db.engine();
    for s in [
        "it's",
        "semi;colon",
        "quote\"d",
        "ünïcødé ✓",
        "'); DROP TABLE tags; --",
    ] {
        let t = Tag {
            name: s.to_owned(),
            uses: 7,
        };
        let back: Tag = e.one(&insert(&t).returning(Tag::ALL)).await.unwrap();
        assert_eq!(back, t);
    }
    let big = Post {
        id: Generated::unset(),
        user_id: 1,
        title: "big".into(),
        body: Some("y".repeat(1 << 20)),
        score: Generated::unset(),
    };
    let back: Post = e.one(&insert(&big).returning(Post::ALL)).await.unwrap();
    assert_eq!(back.body, big.body, "1 MiB of text round-trips");
    let bad = e
        .execute(&insert(&Tag {
            name: "nul\0byte".into(),
            uses: 1,
        }))
        .await
        .unwrap_err();
    assert!(bad.code().is_some(), "{bad:?}");
    let blank = e.execute(&insert(&user("", None))).await.unwrap_err();
    assert!(blank.is_check_violation());
    assert_eq!(blank.constraint(), Some("users_name_not_blank"));
    let dup = e.execute(&insert(&user("ann", None))).await.unwrap_err();
    assert_eq!(dup.constraint(), Some("users_name_key"));
}

// covers: QRY-05, QRY-07, QRY-08
#[tokio::test]
async fn subqueries_set_operations_and_window_functions() {
    use aludel::{func::Window, func::rank, func::row_number, query::exists};
    let db = setup().await;
    let e = db.engine();

    // Correlated scalar subquery: post count per user.
    let counts: Vec<(String, Option<i64>)> = e
        .all(
            &select((
                User::name,
                select(count_star())
                    .from::<Post>()
                    .filter(Post::user_id.eq(User::id))
                    .as_scalar(),
            ))
            .order_by(User::name.asc()),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        [
            ("ann".into(), Some(0)),
            ("bob".into(), Some(1)),
            ("cid".into(), Some(2)),
            ("dee".into(), Some(3))
        ]
    );

    // EXISTS (correlated) and IN (subquery).
    let with_posts: Vec<String> = e
        .all(
            &select(User::name)
                .filter(exists(select(Post::id).filter(Post::user_id.eq(User::id))))
                .order_by(User::name.asc()),
        )
        .await
        .unwrap();
    assert_eq!(with_posts, ["bob", "cid", "dee"]);
    let q = select(User::name)
        .filter(User::id.not_in_subquery(select(Post::user_id)))
        .order_by(User::name.asc());
    assert!(
        q.to_sql()
            .contains(r#"NOT IN (SELECT "posts"."user_id" FROM "posts")"#),
        "{}",
        q.to_sql()
    );
    assert_eq!(e.all(&q).await.unwrap(), ["ann"]);
    let in_sub: Vec<String> = e
        .all(&select(User::name).filter(
            User::id.in_subquery(select(Post::user_id).filter(Post::title.like("post 2%"))),
        ))
        .await
        .unwrap();
    assert_eq!(in_sub, ["dee"]);

    // UNION / UNION ALL / INTERSECT / EXCEPT, binds numbered across the parts.
    let black = select(User::name).filter(User::hair_color.eq("black"));
    let brown = select(User::name).filter(User::hair_color.eq("brown"));
    let both: Vec<String> = e
        .all(
            &black
                .clone()
                .union(brown.clone())
                .order_by_position("1", false),
        )
        .await
        .unwrap();
    assert_eq!(both, ["ann", "bob", "dee"]);
    let twice: Vec<String> = e
        .all(&black.clone().union_all(black.clone()))
        .await
        .unwrap();
    assert_eq!(twice.len(), 4);
    let none: Vec<String> = e
        .all(&black.clone().intersect(brown.clone()))
        .await
        .unwrap();
    assert!(none.is_empty());
    let all_but: Vec<String> = e
        .all(
            &select(User::name)
                .except(brown)
                .order_by_position("1", true)
                .limit(2),
        )
        .await
        .unwrap();
    assert_eq!(all_but, ["dee", "cid"]);
    assert!(
        black
            .union(select(User::name).filter(User::name.eq("x")))
            .to_sql()
            .contains("$2")
    );

    // Window functions: the newest post per user, and a rank over all posts.
    let newest: Vec<(i32, String, i64)> = e
        .all(
            &select((
                Post::user_id,
                Post::title,
                row_number(
                    Window::new()
                        .partition_by(Post::user_id)
                        .order_by(Post::id.desc()),
                ),
            ))
            .order_by(Post::user_id.asc())
            .order_by(Post::id.desc()),
        )
        .await
        .unwrap();
    let firsts: Vec<&(i32, String, i64)> = newest.iter().filter(|r| r.2 == 1).collect();
    assert_eq!(firsts.len(), 3, "one newest post per author");
    let ranks: Vec<i64> = e
        .all(
            &select(rank(Window::new().order_by(Post::user_id.asc())))
                .from::<Post>()
                .order_by(Post::user_id.asc()),
        )
        .await
        .unwrap();
    assert_eq!(ranks, [1, 2, 2, 4, 4, 4]);
    let running: Vec<Option<i64>> = e
        .all(
            &select(aludel::func::count(Post::id).over(Window::new().order_by(Post::id.asc())))
                .from::<Post>()
                .order_by(Post::id.asc()),
        )
        .await
        .unwrap()
        .into_iter()
        .map(Some)
        .collect();
    assert_eq!(running.last().copied().flatten(), Some(6));
}

#[derive(aludel::SqlEnum, Debug, Clone, Copy, PartialEq)]
#[aludel(type_name = "mood", rename_all = "snake_case")]
enum Mood {
    Happy,
    Sad,
    #[aludel(rename = "meh")]
    SoSo,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "moods")]
struct MoodRow {
    #[aludel(primary_key, identity)]
    id: Generated<i32>,
    mood: Mood,
    last: Option<Mood>,
}

// covers: TYP-04, DDL-01
#[tokio::test]
async fn native_enums_round_trip_in_both_statement_modes() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[MoodRow::TABLE], CreateOptions::default())
        .await
        .unwrap();
    create_all(&mut c, &[MoodRow::TABLE], CreateOptions::default())
        .await
        .unwrap(); // idempotent
    let labels: Vec<String> = c
        .query_as(&sql("SELECT unnest(enum_range(NULL::mood))::text"))
        .await
        .unwrap();
    assert_eq!(labels, ["happy", "sad", "meh"]);
    for mode in [
        aludel::engine::StatementMode::Cached,
        aludel::engine::StatementMode::Unnamed,
    ] {
        let engine = db.engine_builder().statement_mode(mode).build().unwrap();
        let row = MoodRow {
            id: Generated::unset(),
            mood: Mood::SoSo,
            last: Some(Mood::Happy),
        };
        let back: MoodRow = engine
            .one(&insert(&row).returning(MoodRow::ALL))
            .await
            .unwrap();
        assert_eq!((back.mood, back.last), (Mood::SoSo, Some(Mood::Happy)));
        let sad: Vec<i32> = engine
            .all(&select(MoodRow::id).filter(MoodRow::mood.eq(Mood::Sad)))
            .await
            .unwrap();
        assert!(sad.is_empty());
        let n: i64 = engine
            .one(
                &select(count_star()).from::<MoodRow>().filter(
                    MoodRow::mood
                        .eq(Mood::SoSo)
                        .and(MoodRow::last.is_not_null()),
                ),
            )
            .await
            .unwrap();
        assert!(n >= 1, "{mode:?}");
    }
    // A label this program does not know is a clear decode error naming the column.
    c.execute(&sql("ALTER TYPE mood ADD VALUE 'angry'"))
        .await
        .unwrap();
    c.execute(&sql("INSERT INTO moods (mood) VALUES ('angry')"))
        .await
        .unwrap();
    let err = c.all(&select(MoodRow::mood)).await.unwrap_err();
    assert!(err.is_decode() && err.column() == Some("mood"), "{err:?}");
    // An invalid label from SQL text is the server's typed data error.
    let bad = c
        .execute(&sql("INSERT INTO moods (mood) VALUES ('furious')"))
        .await
        .unwrap_err();
    assert_eq!(
        bad.code(),
        Some(&aludel::tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
    );
    drop_all(&mut c, &[MoodRow::TABLE], CreateOptions::default())
        .await
        .unwrap();
    let types: i64 = c.query_one(&sql("SELECT count(*) FROM pg_type WHERE typname = 'mood' AND typnamespace = current_schema()::regnamespace")).await.unwrap();
    assert_eq!(types, 0, "drop_all drops the enum type too");
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "archive")]
struct Archived {
    #[aludel(primary_key)]
    user_id: i32,
    name: String,
}

// covers: QRY-03, QRY-13
#[tokio::test]
async fn fk_joins_insert_select_update_from_and_delete_using() {
    let db = setup().await;
    let e = db.engine();
    let mut c = e.connect().await.unwrap();
    create_all(&mut c, &[Archived::TABLE], CreateOptions::default())
        .await
        .unwrap();

    // The ON condition comes from the declared foreign key (either direction).
    let q = select((User::name, Post::title))
        .from::<User>()
        .join_related::<Post>()
        .order_by(Post::id.asc());
    assert!(
        q.to_sql()
            .contains(r#"JOIN "posts" ON ("posts"."user_id" = "users"."id")"#),
        "{}",
        q.to_sql()
    );
    assert_eq!(c.all(&q).await.unwrap().len(), 6);
    let reverse = select(Post::title)
        .join_related::<User>()
        .filter(User::name.eq("dee"));
    assert_eq!(c.all(&reverse).await.unwrap().len(), 3);
    // Tables with no foreign key between them: a typed error when the statement runs.
    let no_path = select(Tag::name).join_related::<Post>();
    let err = c.all(&no_path).await.unwrap_err();
    assert!(
        err.is_invalid_request() && err.to_string().contains("no foreign key"),
        "{err}"
    );

    let copied: Vec<i32> = c
        .all(
            &aludel::query::insert_select(
                (Archived::user_id, Archived::name),
                select((User::id, User::name)).filter(User::hair_color.is_null()),
            )
            .returning(Archived::user_id),
        )
        .await
        .unwrap();
    assert_eq!(copied.len(), 1);

    // UPDATE … FROM and DELETE … USING, related in the WHERE clause.
    let bumped = c
        .execute(
            &update::<Post>()
                .set(Post::score, 7_i64)
                .from::<User>()
                .filter(Post::user_id.eq(User::id).and(User::name.eq("cid"))),
        )
        .await
        .unwrap();
    assert_eq!(bumped, 2);
    let removed: Vec<i32> = c
        .all(
            &delete::<Post>()
                .using::<User>()
                .filter(Post::user_id.eq(User::id).and(User::hair_color.eq("brown")))
                .returning(Post::id),
        )
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    let left: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM posts"))
        .await
        .unwrap();
    assert_eq!(left, 5);
}

// covers: ENG-15, QRY-01
#[tokio::test]
async fn a_statement_shape_is_rendered_once_and_reused() {
    use aludel::query::Statement;
    let db = setup().await;
    let shape = |name: &'static str, n: i64| {
        select(aludel::query::All::of(&User::alias("shape_probe")).optional())
            .from_alias(&User::alias("shape_probe"))
            .filter(User::name.of(&User::alias("shape_probe")).eq(name))
            .limit(n)
    };
    let first = shape("ann", 1);
    let (sql1, binds1) = first.compile().unwrap();
    let second = shape("bob", 5);
    let (sql2, binds2) = second.compile().unwrap();
    assert!(
        !sql1.is_cached() || sql2.is_cached(),
        "a shape seen before comes from the cache"
    );
    assert!(
        sql2.is_cached(),
        "the second compile of one shape must not render the text again"
    );
    assert_eq!(&*sql1, &*sql2);
    assert_eq!(&*sql2, first.to_sql());
    assert_eq!(binds1.len(), 2);
    assert_eq!(binds2.len(), 2);
    // Different values, same shape; the results still differ correctly.
    let a: Vec<Option<User>> = db.engine().all(&shape("ann", 1)).await.unwrap();
    let b: Vec<Option<User>> = db.engine().all(&shape("bob", 1)).await.unwrap();
    assert_eq!(a[0].as_ref().unwrap().name, "ann");
    assert_eq!(b[0].as_ref().unwrap().name, "bob");
    // A different shape (another operator) is a different entry.
    let other = select(User::id).filter(User::name.ne("ann"));
    assert_ne!(&*other.compile().unwrap().0, &*sql1);
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "categories")]
struct Category {
    #[aludel(primary_key)]
    id: i32,
    #[aludel(references = "Category::id", on_delete = "cascade")]
    parent_id: Option<i32>,
    name: String,
}

// covers: QRY-06, QRY-09, REL-06
#[tokio::test]
async fn recursive_ctes_fragments_and_arithmetic() {
    use aludel::{func::AnyExpr, query::Cte, query::Expr, query::value};
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Category::TABLE], CreateOptions::default())
        .await
        .unwrap();
    let rows = [
        (1, None, "root"),
        (2, Some(1), "a"),
        (3, Some(1), "b"),
        (4, Some(2), "a1"),
        (5, Some(4), "a1x"),
        (6, None, "other"),
    ];
    let cats: Vec<Category> = rows
        .iter()
        .map(|(id, p, n)| Category {
            id: *id,
            parent_id: *p,
            name: (*n).to_owned(),
        })
        .collect();
    c.execute(&insert_many(&cats)).await.unwrap();

    // Every descendant of category 2, with its depth below it.
    let tree = Cte::new("tree", &["id", "depth"]);
    let base = select((Category::id, value(0_i32))).filter(Category::id.eq(2));
    let step = select((Category::id, tree.col::<i32>("depth").add(1)))
        .from::<Category>()
        .join_cte(&tree, Category::parent_id.eq(tree.col::<i32>("id")));
    let q = select((tree.col::<i32>("id"), tree.col::<i32>("depth")))
        .with_recursive(&tree, base, step)
        .from_cte(&tree)
        .order_by(tree.col::<i32>("depth").asc());
    assert!(
        q.to_sql()
            .starts_with(r#"WITH RECURSIVE "tree" ("id", "depth") AS (SELECT"#),
        "{}",
        q.to_sql()
    );
    let found: Vec<(i32, i32)> = c.all(&q).await.unwrap();
    assert_eq!(found, [(2, 0), (4, 1), (5, 2)]);

    // A non-recursive CTE.
    let roots = Cte::new("roots", &["id"]);
    let n: i64 = c
        .one(
            &select(count_star())
                .with(
                    &roots,
                    select(Category::id).filter(Category::parent_id.is_null()),
                )
                .from_cte(&roots),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);

    // A raw fragment with a bound argument, and arithmetic.
    let matched: Vec<i32> = c
        .all(
            &select(Category::id)
                .filter(Expr::<bool>::fragment(
                    &["upper(", ") = ", ""],
                    vec![
                        AnyExpr::from(Category::name.expr()),
                        value("A1X".to_owned()).into(),
                    ],
                ))
                .filter(Category::id.expr().mul(2).sub(1).gt(8)),
        )
        .await
        .unwrap();
    assert_eq!(matched, [5]);
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "articles")]
struct Article {
    #[aludel(primary_key, identity)]
    id: Generated<i32>,
    slug: String,
    tags: Vec<String>,
    live: bool,
}

fn article(slug: &str, tags: &[&str], live: bool) -> Article {
    Article {
        id: Generated::unset(),
        slug: slug.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        live,
    }
}

// covers: TYP-06, UPS-01
#[tokio::test]
async fn array_operators_and_a_partial_index_as_upsert_arbiter() {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Article::TABLE], CreateOptions::default())
        .await
        .unwrap();
    // Slugs are unique among live articles only.
    c.batch_execute("CREATE UNIQUE INDEX articles_live_slug ON articles (slug) WHERE live")
        .await
        .unwrap();
    let rows = [
        article("a", &["rust", "db"], true),
        article("b", &["go"], true),
        article("c", &["rust"], false),
    ];
    c.execute(&insert_many(&rows)).await.unwrap();

    let slugs = |q: aludel::query::Select<aludel::query::Column<Article, String>>| {
        q.order_by(Article::slug.asc())
    };
    assert_eq!(
        c.all(&slugs(select(Article::slug).filter(
            Article::tags.overlaps(vec!["db".into(), "go".into()])
        )))
        .await
        .unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        c.all(&slugs(select(Article::slug).filter(
            Article::tags.contains_all(vec!["rust".into(), "db".into()])
        )))
        .await
        .unwrap(),
        ["a"]
    );
    assert_eq!(
        c.all(&slugs(select(Article::slug).filter(
            Article::tags.contained_by(vec!["rust".into(), "go".into()])
        )))
        .await
        .unwrap(),
        ["b", "c"]
    );
    assert_eq!(
        c.all(&slugs(
            select(Article::slug).filter(Article::tags.has("rust".into()))
        ))
        .await
        .unwrap(),
        ["a", "c"]
    );

    // ON CONFLICT (slug) WHERE live: the partial index decides; a dead "a" does not conflict.
    let again = [article("a", &["updated"], true)];
    let up = insert_many(&again)
        .on_conflict_do_update(
            Article::slug,
            Assignments::new().set(Article::tags, excluded(Article::tags)),
            None,
        )
        .conflict_index_where(Article::live.expr())
        .returning(Article::ALL);
    assert!(
        up.to_sql()
            .unwrap()
            .contains(r#"ON CONFLICT ("slug") WHERE "articles"."live" DO UPDATE"#),
        "{}",
        up.to_sql().unwrap()
    );
    let changed: Vec<Article> = c.all(&up).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].tags, ["updated"]);
    let count: i64 = c
        .one(&select(count_star()).from::<Article>())
        .await
        .unwrap();
    assert_eq!(count, 3, "the live row was updated, not duplicated");
}

#[derive(aludel::SqlNewtype, Debug, Clone, PartialEq)]
struct Email(String);

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "memberships")]
struct Membership {
    #[aludel(primary_key, references = "User::id", on_delete = "cascade")]
    user_id: i32,
    #[aludel(primary_key)]
    team: String,
    contact: Option<Email>,
    seats: i32,
}

// covers: QRY-03, QRY-05, UPS-01, TYP-08
#[tokio::test]
async fn composite_keys_on_constraint_full_and_lateral_joins_and_newtypes() {
    use aludel::{query::Cte, query::OnConstraint};
    let db = setup().await;
    let e = db.engine();
    let mut c = e.connect().await.unwrap();
    create_all(&mut c, &[Membership::TABLE], CreateOptions::default())
        .await
        .unwrap();
    let pk: String = c
        .query_one(&sql("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'memberships_pkey' AND connamespace = current_schema()::regnamespace"))
        .await
        .unwrap();
    assert_eq!(pk, "PRIMARY KEY (user_id, team)");

    let m = |user_id: i32, team: &str, seats: i32| Membership {
        user_id,
        team: team.into(),
        contact: Some(Email(format!("{team}@example.com"))),
        seats,
    };
    c.execute(&insert_many(&[
        m(1, "core", 1),
        m(1, "web", 2),
        m(2, "core", 3),
    ]))
    .await
    .unwrap();
    // Composite-key conflict, named by constraint.
    let up = insert(&m(1, "core", 10)).on_conflict_do_update(
        OnConstraint("memberships_pkey"),
        Assignments::new().set(Membership::seats, excluded(Membership::seats)),
        None,
    );
    assert!(
        up.to_sql()
            .unwrap()
            .contains(r#"ON CONFLICT ON CONSTRAINT "memberships_pkey" DO UPDATE"#)
    );
    c.execute(&up).await.unwrap();
    let seats: i32 = c
        .one(
            &select(Membership::seats)
                .filter(Membership::user_id.eq(1).and(Membership::team.eq("core"))),
        )
        .await
        .unwrap();
    assert_eq!(seats, 10);

    // Newtype columns compare and read as their own type.
    let who: Vec<(i32, Option<Email>)> = c
        .all(
            &select((Membership::user_id, Membership::contact))
                .filter(Membership::contact.eq(Email("web@example.com".into()))),
        )
        .await
        .unwrap();
    assert_eq!(who, [(1, Some(Email("web@example.com".into())))]);

    // FULL OUTER JOIN keeps unmatched rows of both sides.
    let full: Vec<(Option<String>, Option<String>)> = c
        .all(
            &select((
                User::name.expr().cast::<Option<String>>("text"),
                Membership::team.expr().cast::<Option<String>>("text"),
            ))
            .from::<User>()
            .full_join::<Membership>(Membership::user_id.eq(User::id)),
        )
        .await
        .unwrap();
    assert_eq!(
        full.len(),
        5,
        "3 memberships of ann/bob + cid and dee without any: {full:?}"
    );

    // LATERAL: each user's newest post title (NULL for users without posts).
    let latest = Cte::new("latest", &["title"]);
    let newest: Vec<(String, Option<String>)> = c
        .all(
            &select((User::name, latest.col::<Option<String>>("title")))
                .from::<User>()
                .left_join_lateral(
                    &latest,
                    select(Post::title)
                        .filter(Post::user_id.eq(User::id))
                        .order_by(Post::id.desc())
                        .limit(1),
                    Expr::raw("true"),
                )
                .order_by(User::name.asc()),
        )
        .await
        .unwrap();
    assert_eq!(newest.len(), 4);
    assert_eq!(newest[0], ("ann".into(), None));
    assert!(
        newest[3].1.as_deref().unwrap().starts_with("post 2"),
        "{newest:?}"
    );
}

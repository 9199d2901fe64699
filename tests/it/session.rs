use aludel::Generated;
use std::time::Duration;

use aludel::testing::TestDb;
use aludel::{
    AsyncSession, Model, Obj, create_all, func::count_star, schema::CreateOptions, select,
    session::ObjectState, sql,
};

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "users")]
struct User {
    #[aludel(primary_key, identity)]
    id: Generated<i32>,
    #[aludel(unique)]
    name: String,
    hair_color: Option<String>,
    #[aludel(server_default = "now()")]
    created_at: Generated<chrono::DateTime<chrono::Utc>>,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "posts")]
struct Post {
    #[aludel(primary_key, identity)]
    id: Generated<i32>,
    #[aludel(references = "User::id", on_delete = "cascade")]
    user_id: i32,
    title: String,
    #[aludel(version)]
    version: i32,
}

fn user(name: &str) -> Obj<User> {
    Obj::new(User {
        id: Generated::unset(),
        name: name.into(),
        hair_color: None,
        created_at: Generated::unset(),
    })
}

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    let mut c = db.engine().connect().await.unwrap();
    create_all(
        &mut c,
        &[User::TABLE, Post::TABLE],
        CreateOptions::default(),
    )
    .await
    .unwrap();
    db
}

fn inserts(db: &TestDb, mark: usize) -> Vec<String> {
    db.recorder()
        .sql_since(mark)
        .into_iter()
        .filter(|s| s.starts_with("INSERT"))
        .collect()
}

// covers: SES-02, TX-01
#[tokio::test]
async fn sessions_are_lazy_and_autobegin_on_first_statement() {
    let db = setup().await;
    let before = db.backends().await.unwrap();
    let sessions: Vec<AsyncSession> = (0..1000).map(|_| db.engine().session()).collect();
    assert_eq!(
        db.backends().await.unwrap(),
        before,
        "a session touched a connection"
    );
    drop(sessions);
    let mut s = db.engine().session();
    let mark = db.recorder().len();
    let _: Vec<i64> = s.all(&select(count_star()).from::<User>()).await.unwrap();
    assert_eq!(
        db.recorder().sql_since(mark)[0],
        "BEGIN",
        "autobegin before the first statement"
    );
    let in_tx = db
        .backends()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, s)| s == "idle in transaction")
        .count();
    assert_eq!(
        in_tx, 1,
        "exactly one backend holds the session's transaction"
    );
    s.commit().await.unwrap();
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(1), |b| {
            b.iter().all(|(_, s)| s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "{seen:?}");
    assert_eq!(
        db.engine().pool_status().in_use,
        0,
        "commit gave the connection back"
    );
}

// covers: SES-04, SES-07, SES-08, SES-09
#[tokio::test]
async fn five_thousand_adds_flush_in_five_batched_inserts_with_keys_in_add_order() {
    let db = setup().await;
    let mut s = db.engine().session();
    let objs: Vec<Obj<User>> = (0..5000).map(|i| user(&format!("u{i:05}"))).collect();
    s.add_all(&objs).unwrap();
    assert!(objs.iter().all(|o| o.state() == ObjectState::Pending));
    let mark = db.recorder().len();
    s.flush().await.unwrap();
    let ins = inserts(&db, mark);
    assert_eq!(ins.len(), 5, "≤ 1,000 rows per INSERT");
    assert!(ins[0].contains("RETURNING"), "{}", &ins[0][..80]);
    let ids: Vec<i32> = objs
        .iter()
        .map(|o| o.read().unwrap().id.cloned().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "keys follow add order");
    let created = objs[0].read().unwrap().created_at.cloned().unwrap();
    assert!(
        created > chrono::DateTime::UNIX_EPOCH,
        "server default read back by RETURNING"
    );
    assert!(objs.iter().all(|o| o.state() == ObjectState::Persistent));
    s.commit().await.unwrap();
    let n: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM users"))
        .await
        .unwrap();
    assert_eq!(n, 5000);
}

// covers: SES-07, SES-04
#[tokio::test]
async fn parents_are_inserted_before_children_whatever_the_add_order() {
    let db = setup().await;
    let mut s = db.engine().session();
    let ann = user("ann");
    s.add(&ann).unwrap();
    s.flush().await.unwrap();
    let ann_id = ann.read().unwrap().id.cloned().unwrap();
    // Add a child first, then a new parent: the users INSERT must still come first.
    let post = Obj::new(Post {
        id: Generated::unset(),
        user_id: ann_id,
        title: "hello".into(),
        version: 1,
    });
    let bob = user("bob");
    s.add(&post).unwrap();
    s.add(&bob).unwrap();
    let mark = db.recorder().len();
    s.flush().await.unwrap();
    let ins = inserts(&db, mark);
    assert_eq!(ins.len(), 2);
    assert!(
        ins[0].starts_with("INSERT INTO \"users\"") && ins[1].starts_with("INSERT INTO \"posts\""),
        "{ins:?}"
    );
    s.commit().await.unwrap();
}

// covers: IDM-01, IDM-02, IDM-07
#[tokio::test]
async fn one_object_per_row_and_gets_from_the_map_need_no_sql() {
    let db = setup().await;
    let mut s = db.engine().session();
    let ann = user("ann");
    s.add(&ann).unwrap();
    s.commit().await.unwrap();

    let mut s = db.engine().session();
    let a = s
        .scalars(&select(User::ALL).filter(User::name.eq("ann")))
        .await
        .unwrap()
        .remove(0);
    let b = s.scalars(&select(User::ALL)).await.unwrap().remove(0);
    assert!(Obj::ptr_eq(&a, &b), "the same row is the same object");
    let id = a.read().unwrap().id.cloned().unwrap();
    let again = aludel::assert_statements!(db.recorder(), 0, {
        s.get::<User>(id).await.unwrap().unwrap()
    });
    assert_eq!(again, a);

    // Another transaction changes the row: the loaded object is not overwritten…
    db.admin()
        .await
        .unwrap()
        .execute(&sql("UPDATE users SET hair_color = 'red'"))
        .await
        .unwrap();
    let c = s.scalars(&select(User::ALL)).await.unwrap().remove(0);
    assert_eq!(c.read().unwrap().hair_color, None);
    // …unless asked (populate_existing).
    let d = s
        .scalars_populate_existing(&select(User::ALL))
        .await
        .unwrap()
        .remove(0);
    assert!(Obj::ptr_eq(&a, &d));
    assert_eq!(a.read().unwrap().hair_color.as_deref(), Some("red"));
    assert!(s.get::<User>(id + 1000).await.unwrap().is_none());
    assert!(
        s.get_one::<User>(id + 1000)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

// covers: SES-17, SES-06
#[tokio::test]
async fn updates_write_only_changed_columns_and_equal_assignments_write_nothing() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let ann = user("ann");
    s.add(&ann).unwrap();
    s.commit().await.unwrap();

    ann.write().unwrap().name = "ann".into(); // same value
    assert!(!s.is_modified(&ann));
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    assert!(
        db.recorder()
            .sql_since(mark)
            .iter()
            .all(|q| !q.starts_with("UPDATE")),
        "no UPDATE for an equal value"
    );

    ann.write().unwrap().hair_color = Some("black".into());
    assert!(s.is_modified(&ann));
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let updates: Vec<String> = db
        .recorder()
        .sql_since(mark)
        .into_iter()
        .filter(|q| q.starts_with("UPDATE"))
        .collect();
    assert_eq!(updates.len(), 1);
    assert!(
        updates[0].contains("SET \"hair_color\" = v.") && !updates[0].contains("\"name\" = v."),
        "{}",
        updates[0]
    );
    let color: Option<String> = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT hair_color FROM users"))
        .await
        .unwrap();
    assert_eq!(color.as_deref(), Some("black"));

    // Autoflush: a query sees the session's own pending changes.
    ann.write().unwrap().name = "annie".into();
    let found: Vec<String> = s
        .all(&select(User::name).filter(User::name.eq("annie")))
        .await
        .unwrap();
    assert_eq!(found, ["annie"]);
    s.rollback().await.unwrap();
}

// covers: SES-08, SES-07
#[tokio::test]
async fn dirty_rows_with_the_same_changed_columns_share_one_update() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let objs: Vec<Obj<User>> = (0..300).map(|i| user(&format!("u{i}"))).collect();
    s.add_all(&objs).unwrap();
    s.commit().await.unwrap();
    for (i, o) in objs.iter().enumerate() {
        if i % 2 == 0 {
            o.write().unwrap().hair_color = Some(format!("c{i}"));
        } else {
            o.write().unwrap().name = format!("renamed{i}");
        }
    }
    let mark = db.recorder().len();
    s.flush().await.unwrap();
    let updates: Vec<String> = db
        .recorder()
        .sql_since(mark)
        .into_iter()
        .filter(|q| q.starts_with("UPDATE"))
        .collect();
    assert_eq!(updates.len(), 2, "one UPDATE per changed-column set");
    s.commit().await.unwrap();
    let n: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql(
            "SELECT count(*) FROM users WHERE name LIKE 'renamed%' OR hair_color LIKE 'c%'",
        ))
        .await
        .unwrap();
    assert_eq!(n, 300);
}

// covers: EXP-01, EXP-02, EXP-03, EXP-04, ERR-01, ERR-02, IDM-08
#[tokio::test]
async fn expire_on_commit_makes_reads_typed_errors_with_zero_sql() {
    let db = setup().await;
    let mut s = db.engine().session();
    assert!(s.config().expire_on_commit, "SQLAlchemy's default");
    let ann = user("ann");
    s.add(&ann).unwrap();
    s.commit().await.unwrap();
    let err = aludel::assert_statements!(db.recorder(), 0, { ann.read().unwrap_err() });
    assert!(err.is_expired(), "{err:?}");
    assert!(ann.write().unwrap_err().is_expired());
    let mark = db.recorder().len();
    s.refresh(&ann).await.unwrap();
    let selects: Vec<String> = db
        .recorder()
        .queries_since(mark)
        .into_iter()
        .map(|r| r.sql)
        .collect();
    assert_eq!(selects.len(), 1, "refresh is one SELECT: {selects:?}");
    assert_eq!(ann.read().unwrap().name, "ann");
    s.commit().await.unwrap();
    s.close().await.unwrap();
    let detached = ann.read().unwrap_err();
    assert!(detached.is_detached(), "expired and detached: {detached:?}");

    // With expire_on_commit off, objects stay readable after commit and close, with no SQL.
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let bob = user("bob");
    s.add(&bob).unwrap();
    s.commit().await.unwrap();
    s.close().await.unwrap();
    let name = aludel::assert_statements!(db.recorder(), 0, { bob.read().unwrap().name.clone() });
    assert_eq!(name, "bob");
    assert_eq!(bob.state(), ObjectState::Detached);
}

// covers: EXP-05, SES-12, IDM-03, IDM-05
#[tokio::test]
async fn rollback_expires_everything_and_undoes_states() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let b = user("b");
    let c = user("c");
    s.add_all([&b, &c]).unwrap();
    s.commit().await.unwrap();

    let a = user("a");
    s.add(&a).unwrap();
    s.flush().await.unwrap();
    assert_eq!(a.state(), ObjectState::Persistent);
    b.write().unwrap().name = "b-changed".into();
    s.delete(&c).unwrap();
    s.flush().await.unwrap();
    assert_eq!(c.state(), ObjectState::Deleted);
    s.rollback().await.unwrap();

    assert_eq!(
        a.state(),
        ObjectState::Transient,
        "inserted in the rolled-back transaction"
    );
    assert_eq!(
        c.state(),
        ObjectState::Persistent,
        "its delete was rolled back"
    );
    assert!(
        b.read().unwrap_err().is_expired(),
        "rollback expires whatever expire_on_commit says"
    );
    s.refresh(&b).await.unwrap();
    assert_eq!(b.read().unwrap().name, "b", "the database value");
    // expire() discards unflushed changes.
    b.write().unwrap().name = "lost".into();
    s.expire(&b);
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    assert!(
        db.recorder()
            .sql_since(mark)
            .iter()
            .all(|q| !q.starts_with("UPDATE"))
    );
}

// covers: SES-10, ERR-07, SES-11
#[tokio::test]
async fn a_failed_flush_writes_nothing_and_requires_rollback() {
    let db = setup().await;
    let mut s = db.engine().session();
    s.add(&user("dup")).unwrap();
    s.commit().await.unwrap();

    let mut s = db.engine().session();
    let ok = user("fine");
    s.add(&ok).unwrap();
    s.add(&user("dup")).unwrap();
    let err = s.flush().await.unwrap_err();
    assert!(err.is_unique_violation(), "{err:?}");
    let next = s
        .all(&select(count_star()).from::<User>())
        .await
        .unwrap_err();
    assert!(next.is_pending_rollback(), "{next:?}");
    assert!(s.commit().await.unwrap_err().is_pending_rollback());
    s.rollback().await.unwrap();
    let n: Vec<i64> = s.all(&select(count_star()).from::<User>()).await.unwrap();
    assert_eq!(n, [1], "nothing of the failed flush was written");
    let seen: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM users"))
        .await
        .unwrap();
    assert_eq!(seen, 1);
    assert_eq!(
        db.engine().pool_status().in_use,
        1,
        "only this session's connection is out"
    );
}

// covers: SES-05, SES-16, SES-13
#[tokio::test]
async fn delete_expunge_and_close() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let a = user("a");
    let b = user("b");
    s.add_all([&a, &b]).unwrap();
    s.commit().await.unwrap();
    s.delete(&a).unwrap();
    assert!(
        s.delete(&user("never-added"))
            .unwrap_err()
            .is_invalid_request()
    );
    s.expunge(&b);
    b.write().unwrap().name = "ignored".into();
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let sqls = db.recorder().sql_since(mark);
    assert!(
        sqls.iter().any(|q| q.starts_with("DELETE FROM \"users\"")),
        "{sqls:?}"
    );
    assert!(
        sqls.iter().all(|q| !q.starts_with("UPDATE")),
        "an expunged object is not flushed"
    );
    assert_eq!(
        a.state(),
        ObjectState::Detached,
        "deleted + commit → detached"
    );
    let names: Vec<String> = db
        .admin()
        .await
        .unwrap()
        .query_as(&sql("SELECT name FROM users"))
        .await
        .unwrap();
    assert_eq!(names, ["b"]);
    s.close().await.unwrap();
    assert_eq!(s.identity_map_len(), 0);
}

// covers: OPT-01, ERR-05, EXP-08
#[tokio::test]
async fn a_stale_version_fails_the_flush() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let owner = user("owner");
    s.add(&owner).unwrap();
    s.flush().await.unwrap();
    let post = Obj::new(Post {
        id: Generated::unset(),
        user_id: owner.read().unwrap().id.cloned().unwrap(),
        title: "v1".into(),
        version: 1,
    });
    s.add(&post).unwrap();
    s.commit().await.unwrap();

    post.write().unwrap().title = "v2".into();
    s.commit().await.unwrap();
    assert_eq!(
        post.read().unwrap().version,
        2,
        "the version was bumped and read back"
    );

    // Another session bumps the version behind our back.
    let mut other = db.engine().session();
    let theirs = other
        .get_one::<Post>(post.read().unwrap().id.cloned().unwrap())
        .await
        .unwrap();
    theirs.write().unwrap().title = "theirs".into();
    other.commit().await.unwrap();

    post.write().unwrap().title = "mine".into();
    let err = s.commit().await.unwrap_err();
    assert!(err.is_stale_data(), "{err:?}");
    s.rollback().await.unwrap();
    s.refresh(&post).await.unwrap();
    assert_eq!(post.read().unwrap().title, "theirs");
    assert_eq!(post.read().unwrap().version, 3);
}

// covers: IDM-04
#[tokio::test]
async fn clean_objects_the_application_drops_leave_the_identity_map() {
    let db = setup().await;
    let mut s = db.engine().session();
    let objs: Vec<Obj<User>> = (0..2000).map(|i| user(&format!("u{i}"))).collect();
    s.add_all(&objs).unwrap();
    s.commit().await.unwrap();
    drop(objs);
    let mut s = db.engine().session();
    for _ in 0..5 {
        let page = s.scalars(&select(User::ALL)).await.unwrap();
        assert_eq!(page.len(), 2000);
        drop(page);
        assert_eq!(
            s.identity_map_len(),
            0,
            "nothing keeps dropped clean objects alive"
        );
    }
    let kept = s.scalars(&select(User::ALL).limit(10)).await.unwrap();
    assert_eq!(s.identity_map_len(), 10);
    kept[0].write().unwrap().name = "held".into();
    drop(kept);
    assert_eq!(
        s.identity_map_len(),
        1,
        "a written object is held until flushed"
    );
    s.commit().await.unwrap();
}

// covers: SES-03
#[tokio::test]
async fn sessions_move_across_tasks() {
    let db = setup().await;
    let mut s = db.engine().session();
    s.add(&user("x")).unwrap();
    let handle = tokio::spawn(async move {
        s.commit().await.unwrap();
        s
    });
    let mut s = handle.await.unwrap();
    let n: Vec<i64> = s.all(&select(count_star()).from::<User>()).await.unwrap();
    assert_eq!(n, [1]);
}

// covers: TX-04, EXP-06, TX-05
#[tokio::test]
async fn per_row_savepoints_keep_the_good_rows() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let names: Vec<String> = (0..100)
        .map(|i| format!("n{}", if i % 10 == 9 { i - 1 } else { i }))
        .collect();
    let mark = db.recorder().len();
    let mut kept = 0;
    for name in &names {
        let sp = s.begin_nested().await.unwrap();
        assert!(s.in_nested_transaction());
        s.add(&user(name)).unwrap();
        match s.flush().await {
            Ok(()) => {
                s.commit_nested(sp).await.unwrap();
                kept += 1;
            }
            Err(e) => {
                assert!(e.is_unique_violation(), "{e:?}");
                s.rollback_nested(sp).await.unwrap();
            }
        }
    }
    s.commit().await.unwrap();
    assert_eq!(kept, 90);
    let n: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM users"))
        .await
        .unwrap();
    assert_eq!(n, 90);
    let seen = db.recorder().sql_since(mark);
    assert!(seen.iter().any(|q| q.starts_with("SAVEPOINT")));
    assert!(seen.iter().any(|q| q.starts_with("RELEASE SAVEPOINT")));
    assert!(seen.iter().any(|q| q.starts_with("ROLLBACK TO SAVEPOINT")));

    // EXP-06: A changed before the savepoint, B inside; rolling back the savepoint expires B only.
    let a = s.get_one::<User>(1).await.unwrap();
    let b = s.get_one::<User>(2).await.unwrap();
    a.write().unwrap().hair_color = Some("before".into());
    let sp = s.begin_nested().await.unwrap(); // flushes A's change
    b.write().unwrap().hair_color = Some("inside".into());
    s.flush().await.unwrap();
    s.rollback_nested(sp).await.unwrap();
    assert_eq!(
        a.read().unwrap().hair_color.as_deref(),
        Some("before"),
        "A keeps its state"
    );
    assert!(
        b.read().unwrap_err().is_expired(),
        "B was changed inside the savepoint"
    );
    s.refresh(&b).await.unwrap();
    assert_eq!(b.read().unwrap().hair_color, None);
    s.commit().await.unwrap();
}

// covers: SES-01, TX-02
#[tokio::test]
async fn the_transaction_helper_commits_rolls_back_and_retries() {
    let db = setup().await;
    let factory = db.engine().session_builder();
    let id = factory
        .transaction(async |s| {
            let u = user("helper");
            s.add(&u)?;
            s.flush().await?;
            Ok(u.read()?.id.clone())
        })
        .await
        .unwrap();
    assert!(id.cloned().unwrap() > 0);
    let failed: aludel::Result<()> = factory
        .transaction(async |s| {
            s.add(&user("never"))?;
            s.flush().await?;
            Err(s.get_one::<User>(-1).await.unwrap_err())
        })
        .await;
    assert!(failed.unwrap_err().is_not_found());
    let names: Vec<String> = db
        .admin()
        .await
        .unwrap()
        .query_as(&sql("SELECT name FROM users"))
        .await
        .unwrap();
    assert_eq!(names, ["helper"], "the failed block left nothing");

    // Two serializable transactions with write skew: the loser is retried and succeeds.
    let serial = db.engine().session_builder().tx_options(
        aludel::engine::TxOptions::new().isolation(aludel::engine::IsolationLevel::Serializable),
    );
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let run = |tag: &'static str| {
        let serial = serial.clone();
        let attempts = attempts.clone();
        let barrier = barrier.clone();
        async move {
            serial
                .transaction_with_retry(5, async |s| {
                    let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let count: Vec<i64> = s.all(&select(count_star()).from::<User>()).await?;
                    if n < 2 {
                        barrier.wait().await; // both read before either writes
                    }
                    s.add(&user(&format!("{tag}{}", count[0])))?;
                    s.flush().await
                })
                .await
        }
    };
    let (a, b) = tokio::join!(run("a"), run("b"));
    a.unwrap();
    b.unwrap();
    assert!(
        attempts.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "one side was retried"
    );
    let n: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM users"))
        .await
        .unwrap();
    assert_eq!(n, 3);
}

// covers: SES-14, SES-09
#[tokio::test]
async fn dropping_session_futures_at_every_poll_point_leaves_no_transaction_behind() {
    use std::future::Future;
    use std::task::{Context, Poll, Wake};
    struct Flag(tokio::sync::Notify);
    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.notify_one();
        }
    }
    let db = setup().await;
    let engine = db.engine_builder().max_size(1).build().unwrap();
    let mut done_at = None;
    let mut in_doubt = 0;
    for n in 0..60 {
        let mut s = engine.session();
        let u = user(&format!("poll{n}"));
        s.add(&u).unwrap();
        let flag = std::sync::Arc::new(Flag(tokio::sync::Notify::new()));
        let waker = std::task::Waker::from(flag.clone());
        let finished = {
            let mut fut = Box::pin(s.commit());
            let mut finished = false;
            for i in 0..n {
                if i > 0 {
                    flag.0.notified().await;
                }
                if let Poll::Ready(r) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
                    r.unwrap();
                    finished = true;
                    break;
                }
            }
            finished
        };
        drop(s);
        let mut c = engine.connect().await.unwrap();
        assert!(!c.in_transaction());
        let rows: i64 = c
            .query_one(&sql("SELECT count(*) FROM users WHERE name = $1").bind(format!("poll{n}")))
            .await
            .unwrap();
        // A COMMIT the driver already had is sent and drained after its future is dropped
        // (its outcome is unknown to the caller): a cut-off commit writes all or nothing.
        if finished {
            assert_eq!(rows, 1, "n = {n}");
        } else {
            assert!(rows <= 1, "n = {n}: {rows}");
            in_doubt += usize::from(rows == 1);
        }
        drop(c);
        if finished {
            done_at = Some(n);
            break;
        }
    }
    assert!(done_at.is_some());
    // Only the polls while COMMIT is in flight can commit without finishing (one, or two
    // when a wake-up before the answer gives the cut one more poll there).
    assert!(in_doubt <= 2, "{in_doubt} cut-off commits wrote");
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            b.iter().all(|(_, s)| s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "{seen:?}");
    assert!(
        crate::pool_faults::pool_settles(&engine).await,
        "{:?}",
        engine.pool_status()
    );
}

// covers: SES-09
#[tokio::test]
async fn values_computed_by_the_server_on_update_come_back_without_a_select() {
    let db = setup().await;
    let mut c = db.engine().connect().await.unwrap();
    c.batch_execute(
        "CREATE FUNCTION shout() RETURNS trigger AS $$ BEGIN NEW.hair_color := upper(NEW.hair_color); RETURN NEW; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER shout BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION shout();",
    )
    .await
    .unwrap();
    drop(c);
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let u = user("t");
    s.add(&u).unwrap();
    s.commit().await.unwrap();
    u.write().unwrap().hair_color = Some("quiet".into());
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let selects = db
        .recorder()
        .queries_since(mark)
        .into_iter()
        .filter(|r| r.sql.starts_with("SELECT"))
        .count();
    assert_eq!(selects, 0);
    assert_eq!(
        u.read().unwrap().hair_color.as_deref(),
        Some("QUIET"),
        "the trigger's value, via RETURNING"
    );
}

// covers: SES-15, SES-18, SES-20, RES-02, RES-03, RES-04, RES-05, RES-06, OPT-04
#[tokio::test]
async fn merge_bulk_insert_and_criteria_writes_keep_objects_in_sync() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();

    // Bulk insert: 2,500 rows in 3 statements, untracked; then 3 tracked rows in input order.
    let rows: Vec<User> = (0..2500)
        .map(|i| User {
            id: Generated::unset(),
            name: format!("b{i}"),
            hair_color: None,
            created_at: Generated::unset(),
        })
        .collect();
    let mark = db.recorder().len();
    assert_eq!(s.bulk_insert(&rows).await.unwrap(), 2500);
    assert_eq!(inserts(&db, mark).len(), 3);
    assert_eq!(s.identity_map_len(), 0, "bulk rows are not tracked");
    let tracked = s
        .bulk_insert_returning(
            ["x", "y", "z"]
                .iter()
                .map(|n| User {
                    id: Generated::unset(),
                    name: (*n).into(),
                    hair_color: None,
                    created_at: Generated::unset(),
                })
                .collect(),
        )
        .await
        .unwrap();
    let ids: Vec<i32> = tracked
        .iter()
        .map(|o| o.read().unwrap().id.cloned().unwrap())
        .collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[2]);
    s.commit().await.unwrap();

    // merge: a detached value with one changed column → UPDATE of that column only.
    let mut detached = tracked[0].get().unwrap();
    detached.hair_color = Some("merged".into());
    let mark = db.recorder().len();
    let merged = s.merge(detached).await.unwrap();
    assert!(
        Obj::ptr_eq(&merged, &tracked[0]),
        "merged into the loaded object"
    );
    s.flush().await.unwrap();
    let updates: Vec<String> = db
        .recorder()
        .sql_since(mark)
        .into_iter()
        .filter(|q| q.starts_with("UPDATE"))
        .collect();
    assert_eq!(updates.len(), 1);
    assert!(updates[0].contains("\"hair_color\" = v.") && !updates[0].contains("\"name\" = v."));
    // merge of an unknown key → INSERT.
    let fresh = s
        .merge(User {
            id: 999_999.into(),
            name: "merged-new".into(),
            hair_color: None,
            created_at: Generated::unset(),
        })
        .await
        .unwrap();
    assert_eq!(fresh.state(), ObjectState::Pending);
    s.commit().await.unwrap();

    // Criteria UPDATE: the loaded object sees the new value without a SELECT.
    let y = &tracked[1];
    let mark = db.recorder().len();
    let n = s
        .update_where(
            aludel::update::<User>()
                .set(User::hair_color, "bulk")
                .filter(User::name.in_list(vec!["y".into(), "z".into()])),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(y.read().unwrap().hair_color.as_deref(), Some("bulk"));
    assert_eq!(
        db.recorder().queries_since(mark).len(),
        1,
        "one statement, RETURNING included"
    );
    // Criteria DELETE: the loaded object becomes deleted.
    let gone = s
        .delete_where(aludel::delete::<User>().filter(User::name.eq("z")))
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert_eq!(tracked[2].state(), ObjectState::Deleted);
    s.commit().await.unwrap();
    assert_eq!(tracked[2].state(), ObjectState::Detached);

    // Result helpers.
    let one = s
        .one(&select(User::name).filter(User::name.eq("x")))
        .await
        .unwrap();
    assert_eq!(one, "x");
    assert!(
        s.one_or_none(&select(User::name).filter(User::name.eq("nobody")))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.one(&select(User::name))
            .await
            .unwrap_err()
            .is_multiple_rows()
    );
    let mark = db.recorder().len();
    let first = s
        .first(&select(User::name).order_by(User::name.asc()))
        .await
        .unwrap();
    assert!(
        !db.recorder()
            .sql_since(mark)
            .iter()
            .any(|q| q.contains("LIMIT")),
        "first() adds no LIMIT"
    );
    assert_eq!(first.as_deref(), Some("b0"));
    s.rollback().await.unwrap();
}

// covers: DI-05
#[tokio::test]
async fn repository_crud_paging_and_scoped_sessions() {
    use aludel::session::ListOptions;
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let mut repo = s.repo::<User>();
    for i in 0..25 {
        repo.create(User {
            id: Generated::unset(),
            name: format!("r{i:02}"),
            hair_color: (i % 2 == 0).then(|| "black".into()),
            created_at: Generated::unset(),
        })
        .await
        .unwrap();
    }
    let page = repo
        .list(
            ListOptions::new()
                .filter(User::hair_color.eq("black"))
                .order_by(User::name.desc())
                .limit(5)
                .offset(1),
        )
        .await
        .unwrap();
    assert_eq!(page.total, 13);
    assert_eq!(page.items.len(), 5);
    assert_eq!(page.items[0].read().unwrap().name, "r22");
    assert_eq!(repo.count(None).await.unwrap(), 25);
    assert!(repo.exists(User::name.eq("r07")).await.unwrap());
    assert!(!repo.exists(User::name.eq("zz")).await.unwrap());
    let some = repo
        .get_many(User::name, vec!["r01".into(), "r02".into()])
        .await
        .unwrap();
    assert_eq!(some.len(), 2);

    // Keyset pages of 10 walk all 25 rows exactly once.
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = repo
            .list_after(User::id, after, 10, None, |u| u.id.cloned().unwrap())
            .await
            .unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|o| o.read().unwrap().id.cloned().unwrap()),
        );
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    let victim = repo.get(seen[0]).await.unwrap().unwrap();
    victim.write().unwrap().name = "renamed".into();
    repo.update(&victim).await.unwrap();
    repo.delete(&victim).await.unwrap();
    s.commit().await.unwrap();
    let names: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM users"))
        .await
        .unwrap();
    assert_eq!(names, 24);

    // Task-scoped sessions: each task sees its own; nothing outlives the scopes.
    assert!(
        aludel::session::scoped_session()
            .unwrap_err()
            .is_invalid_request()
    );
    let engine = db.engine().clone();
    let weak: Vec<std::sync::Weak<tokio::sync::Mutex<AsyncSession>>> =
        futures_util::future::join_all((0..200).map(|_| {
            let engine = engine.clone();
            async move {
                aludel::session::with_scoped_session(&engine, async {
                    let shared = aludel::session::scoped_session().unwrap();
                    let weak = std::sync::Arc::downgrade(&shared);
                    let mut s = shared.lock().await;
                    let _: Vec<i64> = s.all(&select(count_star()).from::<User>()).await.unwrap();
                    weak
                })
                .await
            }
        }))
        .await;
    assert!(
        weak.iter().all(|w| w.upgrade().is_none()),
        "a scoped session outlived its scope"
    );
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            b.iter().all(|(_, s)| s == "idle")
        })
        .await
        .unwrap();
    assert!(ok, "scoped sessions left transactions open: {seen:?}");
}

#[derive(Model, Debug, Clone, PartialEq)]
#[aludel(table = "docs")]
struct Doc {
    #[aludel(primary_key)]
    id: i32,
    meta: serde_json::Value,
    tags: Vec<String>,
}

// covers: TYP-01, TYP-06, SES-19
#[tokio::test]
async fn in_place_edits_of_json_and_arrays_are_flushed_and_bulk_updates_by_key() {
    let db = setup().await;
    let mut c = db.engine().connect().await.unwrap();
    create_all(&mut c, &[Doc::TABLE], CreateOptions::default())
        .await
        .unwrap();
    drop(c);
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let doc = Obj::new(Doc {
        id: 1,
        meta: serde_json::json!({"views": 1, "tags": ["a"]}),
        tags: vec!["x".into()],
    });
    s.add(&doc).unwrap();
    s.commit().await.unwrap();

    // Mutate inside the JSON value and push to the array, in place.
    {
        let mut d = doc.write().unwrap();
        d.meta["views"] = serde_json::json!(2);
        d.tags.push("y".into());
    }
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let updates: Vec<String> = db
        .recorder()
        .sql_since(mark)
        .into_iter()
        .filter(|q| q.starts_with("UPDATE"))
        .collect();
    assert_eq!(
        updates.len(),
        1,
        "in-place edits are seen by the snapshot diff"
    );
    let (views, tags): (i64, Vec<String>) = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql(
            "SELECT (meta->>'views')::int8, tags FROM docs WHERE id = 1",
        ))
        .await
        .unwrap();
    assert_eq!((views, tags), (2, vec!["x".to_owned(), "y".to_owned()]));

    // Bulk UPDATE by primary key: 1,000 rows in one statement.
    let rows: Vec<Doc> = (2..1002)
        .map(|i| Doc {
            id: i,
            meta: serde_json::json!({}),
            tags: vec![],
        })
        .collect();
    s.bulk_insert(&rows).await.unwrap();
    let changed: Vec<Doc> = rows
        .iter()
        .map(|r| Doc {
            tags: vec![format!("t{}", r.id)],
            ..r.clone()
        })
        .collect();
    let mark = db.recorder().len();
    assert_eq!(s.bulk_update(&changed).await.unwrap(), 1000);
    let updates = db
        .recorder()
        .sql_since(mark)
        .into_iter()
        .filter(|q| q.starts_with("UPDATE"))
        .count();
    assert_eq!(updates, 1);
    let missing = [Doc {
        id: 99_999,
        meta: serde_json::json!({}),
        tags: vec![],
    }];
    assert!(s.bulk_update(&missing).await.unwrap_err().is_stale_data());
    s.commit().await.unwrap();
    let t: Vec<String> = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT tags FROM docs WHERE id = 500"))
        .await
        .unwrap();
    assert_eq!(t, ["t500"]);
}

// covers: SES-17, IDM-02, IDM-06, RES-08, RES-10, RES-12, SES-13, SES-06, TX-03
#[tokio::test]
async fn introspection_locks_unique_mappings_invalidate_and_autoflush_off() {
    let db = setup().await;
    let mut s = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .session();
    let a = user("a");
    let b = user("b");
    s.add_all([&a, &b]).unwrap();
    assert_eq!(s.new_objects::<User>(), [a.clone(), b.clone()]);
    s.commit().await.unwrap();
    let pid1 = s.connection().await.unwrap().backend_pid().await.unwrap();
    a.write().unwrap().hair_color = Some("x".into());
    b.write().unwrap().name = "b".into(); // unchanged
    s.delete(&b).unwrap();
    assert_eq!(s.dirty_objects::<User>(), std::slice::from_ref(&a));
    assert_eq!(s.deleted_objects::<User>(), std::slice::from_ref(&b));
    assert!(s.new_objects::<User>().is_empty());
    s.commit().await.unwrap(); // commit-as-you-go: a second transaction in the same session

    // FOR UPDATE holds the row lock: another session's NOWAIT fails with 55P03.
    let id = a.read().unwrap().id.cloned().unwrap();
    let locked = s.get_for_update::<User>(id).await.unwrap().unwrap();
    assert!(Obj::ptr_eq(&locked, &a));
    let mut other = db.engine().session();
    let err = other
        .query(&sql("SELECT id FROM users WHERE id = $1 FOR UPDATE NOWAIT").bind(id))
        .await
        .unwrap_err();
    assert!(err.is_lock_not_available(), "{err:?}");
    other.rollback().await.unwrap();
    s.refresh_for_update(&a).await.unwrap();
    s.commit().await.unwrap();

    // unique(): a join that repeats the parent row yields each object once.
    let mut c = db.engine().connect().await.unwrap();
    c.execute(&sql("INSERT INTO posts (user_id, title, version) SELECT $1, 'p' || g, 1 FROM generate_series(1, 3) g").bind(id))
        .await
        .unwrap();
    drop(c);
    let repeated = s
        .scalars(&select(User::ALL).join::<Post>(Post::user_id.eq(User::id)))
        .await
        .unwrap();
    assert_eq!(repeated.len(), 3);
    assert_eq!(aludel::session::unique(repeated), std::slice::from_ref(&a));

    // Rows by column name (mappings).
    let rows = s
        .query(&sql("SELECT id AS user_id, name FROM users"))
        .await
        .unwrap();
    assert_eq!(rows[0].get_by_name::<String>("name").unwrap(), "a");
    assert_eq!(
        rows[0].column_names().collect::<Vec<_>>(),
        ["user_id", "name"]
    );

    // invalidate(): the connection is discarded, its backend never comes back.
    let pid2 = s.connection().await.unwrap().backend_pid().await.unwrap();
    s.invalidate();
    assert_eq!(a.state(), ObjectState::Detached);
    let (_, gone) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            b.iter().all(|(p, _)| *p != pid2)
        })
        .await
        .unwrap();
    assert!(gone, "the invalidated backend is still there");
    for _ in 0..5 {
        let mut fresh = db.engine().session();
        let p = fresh
            .connection()
            .await
            .unwrap()
            .backend_pid()
            .await
            .unwrap();
        assert_ne!(p, pid2);
        fresh.rollback().await.unwrap();
    }
    let _ = pid1;

    // autoflush off: a query does not see unflushed pending objects.
    let mut manual = db.engine().session_builder().autoflush(false).session();
    manual.add(&user("unflushed")).unwrap();
    let n: Vec<i64> = manual
        .all(
            &select(count_star())
                .from::<User>()
                .filter(User::name.eq("unflushed")),
        )
        .await
        .unwrap();
    assert_eq!(n, [0]);
    manual.flush().await.unwrap();
    let n: Vec<i64> = manual
        .all(
            &select(count_star())
                .from::<User>()
                .filter(User::name.eq("unflushed")),
        )
        .await
        .unwrap();
    assert_eq!(n, [1]);
    manual.rollback().await.unwrap();
}

// covers: SES-23, TX-08
#[tokio::test]
async fn a_session_joined_to_an_outer_transaction_commits_into_savepoints() {
    let db = setup().await;
    let mut outer = db.engine().connect().await.unwrap();
    outer.begin().await.unwrap();
    let mut s = AsyncSession::join_transaction(db.engine(), outer, Default::default()).unwrap();
    s.add(&user("kept-by-session")).unwrap();
    let mark = db.recorder().len();
    s.commit().await.unwrap(); // code under test "commits"
    let seen = db.recorder().sql_since(mark);
    assert!(
        seen.iter().any(|q| q.starts_with("SAVEPOINT"))
            && seen.iter().any(|q| q.starts_with("RELEASE")),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|q| q == "COMMIT"),
        "a joined session never commits the outer transaction"
    );
    s.add(&user("rolled-back")).unwrap();
    s.flush().await.unwrap();
    s.rollback().await.unwrap();
    let mut outer = s.into_connection().unwrap();
    let names: Vec<String> = outer
        .query_as(&sql("SELECT name FROM users ORDER BY name"))
        .await
        .unwrap();
    assert_eq!(
        names,
        ["kept-by-session"],
        "the session's rollback undid only its savepoint"
    );
    let outside: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM users"))
        .await
        .unwrap();
    assert_eq!(
        outside, 0,
        "nothing is visible outside the outer transaction"
    );
    outer.rollback().await.unwrap(); // teardown
    let after: i64 = db
        .admin()
        .await
        .unwrap()
        .query_one(&sql("SELECT count(*) FROM users"))
        .await
        .unwrap();
    assert_eq!(after, 0);
    let plain = db.engine().connect().await.unwrap();
    assert!(
        AsyncSession::join_transaction(db.engine(), plain, Default::default())
            .unwrap_err()
            .is_invalid_request()
    );
}

// covers: IDM-03, EVT-04
#[tokio::test]
async fn every_state_transition_is_reported() {
    use ObjectState::*;
    use aludel::session::SessionEvent as E;
    let db = setup().await;
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<E>::new()));
    let sink = log.clone();
    let factory = db
        .engine()
        .session_builder()
        .expire_on_commit(false)
        .on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let take = || std::mem::take(&mut *log.lock().unwrap());
    let t = |from, to| E::Transition {
        table: "users",
        from,
        to,
    };

    let mut s = factory.session();
    let a = user("a");
    assert_eq!(a.state(), Transient);
    s.add(&a).unwrap();
    assert_eq!(take(), [t(Transient, Pending)]);
    s.flush().await.unwrap();
    assert_eq!(take(), [t(Pending, Persistent), E::AfterFlush]);
    s.delete(&a).unwrap();
    s.flush().await.unwrap();
    assert_eq!(a.state(), Deleted);
    s.rollback().await.unwrap();
    let events = take();
    assert!(
        events.contains(&t(Deleted, Transient)),
        "inserted and deleted in a rolled-back transaction → transient: {events:?}"
    );
    assert!(events.ends_with(&[E::AfterRollback]));

    let b = user("b");
    s.add(&b).unwrap();
    s.commit().await.unwrap();
    take();
    s.delete(&b).unwrap();
    s.commit().await.unwrap();
    let events = take();
    assert_eq!(events.first(), Some(&t(Persistent, Deleted)));
    assert!(
        events.contains(&t(Deleted, Detached)),
        "deleted + commit → detached: {events:?}"
    );
    assert_eq!(b.state(), Detached);

    let c = user("c");
    s.add(&c).unwrap();
    s.commit().await.unwrap();
    take();
    let mut s2 = factory.session();
    let loaded = s2.scalars(&select(User::ALL)).await.unwrap();
    assert_eq!(take(), [E::Loaded { table: "users" }]);
    s2.expunge(&loaded[0]);
    assert_eq!(take(), [t(Persistent, Detached)]);
    s2.add(&loaded[0]).unwrap();
    assert_eq!(take(), [t(Detached, Persistent)]);
    s2.rollback().await.unwrap();
}

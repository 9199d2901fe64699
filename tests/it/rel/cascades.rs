//! Writing relationships: both sides in sync in memory, foreign keys and link rows at flush,
//! and the cascades — checked from a second connection.

use aludel::testing::TestDb;
use aludel::{Obj, One, load::selectin, select, sql};

use super::*;

async fn count(db: &TestDb, q: &'static str) -> i64 {
    db.admin().await.unwrap().query_one(&sql(q)).await.unwrap()
}

// covers: REL-01, REL-02, REL-08
#[tokio::test]
async fn appending_sets_the_back_reference_in_memory_and_the_fk_at_flush() {
    let db = setup().await;
    let mut s = db.engine().session();
    let ann = author("ann");
    s.add(&ann).unwrap();
    s.flush().await.unwrap();
    let mark = db.recorder().len();
    let p = post("hello");
    Author::posts.add(&ann, &p).unwrap();
    // back_populates: the post knows its author, without SQL
    assert!(Obj::ptr_eq(
        &p.read().unwrap().author.get().unwrap().unwrap(),
        &ann
    ));
    assert_eq!(ann.read().unwrap().posts.len().unwrap(), 1);
    assert_eq!(db.recorder().len(), mark);
    // save-update cascade: the new post is inserted with the author's id
    s.commit().await.unwrap();
    let n = count(
        &db,
        "SELECT count(*) FROM posts p JOIN authors a ON a.id = p.author_id WHERE a.name = 'ann'",
    )
    .await;
    assert_eq!(n, 1);
}

// covers: REL-02, REL-08
#[tokio::test]
async fn assigning_a_new_parent_inserts_it_first() {
    let db = setup().await;
    let mut s = db.engine().session();
    let p = post("orphan");
    s.add(&p).unwrap();
    s.flush().await.unwrap();
    let bob = author("bob");
    Post::author.set(&p, Some(&bob)).unwrap();
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    assert!(q[0].starts_with("INSERT INTO \"authors\""), "{q:#?}");
    assert!(q[1].starts_with("UPDATE \"posts\""), "{q:#?}");
    let n = count(
        &db,
        "SELECT count(*) FROM posts p JOIN authors a ON a.id = p.author_id WHERE a.name = 'bob'",
    )
    .await;
    assert_eq!(n, 1);
    // and clearing it writes NULL
    s.refresh(&p).await.unwrap();
    Post::author.set(&p, None).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) FROM posts WHERE author_id IS NULL").await,
        1
    );
}

// covers: REL-01, REL-08
#[tokio::test]
async fn a_new_parent_with_children_is_written_in_one_flush_parents_first() {
    let db = setup().await;
    let mut s = db.engine().session();
    let (p1, p2) = (post("one"), post("two"));
    let c = comment("nice");
    Post::comments.add(&p1, &c).unwrap();
    let cy = Obj::new(Author {
        posts: Many::from_objects([&p1, &p2]),
        ..author("cy").get().unwrap()
    });
    s.add(&cy).unwrap();
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 3, "one INSERT per table, batched: {q:#?}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM posts WHERE author_id IS NOT NULL"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM comments WHERE post_id IS NOT NULL"
        )
        .await,
        1
    );
}

// covers: REL-01, REL-08
#[tokio::test]
async fn removing_a_child_nulls_its_fk_or_deletes_an_orphan() {
    let db = setup().await;
    seed(&db, 1, 2, 2).await;
    let mut s = db.engine().session();
    let authors = s
        .scalars(
            &select(Author::ALL).options(selectin(Author::posts).then(selectin(Post::comments))),
        )
        .await
        .unwrap();
    let posts = authors[0].read().unwrap().posts.get().unwrap();
    // posts: default cascade → FK set to NULL
    Author::posts.remove(&authors[0], &posts[0]).unwrap();
    assert!(posts[0].read().unwrap().author.get().unwrap().is_none());
    // comments: delete-orphan → DELETE
    let comments = posts[1].read().unwrap().comments.get().unwrap();
    Post::comments.remove(&posts[1], &comments[0]).unwrap();
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 2, "{q:#?}");
    assert_eq!(
        count(&db, "SELECT count(*) FROM posts WHERE author_id IS NULL").await,
        1
    );
    assert_eq!(count(&db, "SELECT count(*) FROM comments").await, 3);
}

// covers: REL-08, REL-09
#[tokio::test]
async fn deleting_a_parent_cascades_or_nulls_as_declared() {
    let db = setup().await;
    seed(&db, 2, 2, 3).await;
    // post.comments is `all, delete-orphan` without passive deletes: the flush loads the
    // comments (one SELECT for the post) and deletes them before the post
    let mut s = db.engine().session();
    let p = s.get_one::<Post>(1_i64).await.unwrap();
    s.delete(&p).unwrap();
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    assert!(q[0].starts_with("SELECT"), "{q:#?}");
    assert!(
        q.iter().any(|x| x.starts_with("DELETE FROM \"comments\"")),
        "{q:#?}"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM comments WHERE post_id = 1").await,
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM comments").await, 9);

    // author.posts has the default cascade: deleting the author nulls the posts' FK in one
    // UPDATE, without loading them
    let mut s = db.engine().session();
    let a = s.get_one::<Author>(2_i64).await.unwrap();
    s.delete(&a).unwrap();
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    // (the profile, a one-to-one with delete-orphan, is looked up to be deleted with it)
    assert!(
        q.iter()
            .all(|x| !(x.starts_with("SELECT") && x.contains("FROM \"posts\""))),
        "{q:#?}"
    );
    assert!(
        q.iter()
            .any(|x| x.starts_with("UPDATE \"posts\" SET \"author_id\" = NULL")),
        "{q:#?}"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM posts WHERE author_id IS NULL").await,
        2
    );
}

// covers: REL-03
#[tokio::test]
async fn replacing_a_one_to_one_deletes_the_orphan() {
    let db = setup().await;
    let mut s = db.engine().session();
    let ann = author("ann");
    let first = Obj::new(Profile {
        id: Generated::unset(),
        author_id: None,
        bio: "first".into(),
        author: One::new(),
    });
    Author::profile.add(&ann, &first).unwrap();
    s.add(&ann).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM profiles WHERE author_id IS NOT NULL"
        )
        .await,
        1
    );
    s.refresh(&ann).await.unwrap();
    // The commit expired `ann.profile` with the rest of `ann` (EXP-02): load the current
    // profile so the replacement knows the orphan.
    s.load(std::slice::from_ref(&ann), selectin(Author::profile))
        .await
        .unwrap();
    let second = Obj::new(Profile {
        id: Generated::unset(),
        author_id: None,
        bio: "second".into(),
        author: One::new(),
    });
    s.refresh(&first).await.unwrap();
    Author::profile.add(&ann, &second).unwrap();
    s.commit().await.unwrap();
    let bios: Vec<String> = db
        .admin()
        .await
        .unwrap()
        .query_as(&sql("SELECT bio FROM profiles"))
        .await
        .unwrap();
    assert_eq!(bios, ["second"]);
}

// covers: REL-04
#[tokio::test]
async fn many_to_many_links_follow_the_collection_and_go_with_either_side() {
    let db = setup().await;
    let mut s = db.engine().session();
    let p = post("tagged");
    let tags: Vec<Obj<Tag>> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            Obj::new(Tag {
                id: Generated::unset(),
                name: (*n).into(),
            })
        })
        .collect();
    for t in &tags {
        Post::tags.add(&p, t).unwrap();
    }
    s.add(&p).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM post_tags").await, 3);
    s.refresh(&p).await.unwrap();
    Post::tags.remove(&p, &tags[0]).unwrap();
    let mark = db.recorder().len();
    s.commit().await.unwrap();
    let q = stmts(&db, mark);
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(q[0].starts_with("DELETE FROM \"post_tags\""));
    assert_eq!(count(&db, "SELECT count(*) FROM post_tags").await, 2);
    // deleting the post removes its link rows; the tags stay
    s.refresh(&p).await.unwrap();
    s.delete(&p).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM post_tags").await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM tags").await, 3);
}

// covers: REL-05
#[tokio::test]
async fn association_objects_carry_their_own_columns() {
    let db = setup().await;
    let mut s = db.engine().session();
    let ann = author("ann");
    let course = Obj::new(Course {
        id: Generated::unset(),
        title: "SQL".into(),
    });
    s.add_all([&ann]).unwrap();
    s.add(&course).unwrap();
    s.flush().await.unwrap();
    let (aid, cid) = (
        ann.read().unwrap().id.cloned().unwrap(),
        course.read().unwrap().id.cloned().unwrap(),
    );
    let e = Obj::new(Enrollment {
        student_id: aid,
        course_id: cid,
        grade: None,
        course: One::new(),
    });
    s.add(&e).unwrap();
    s.commit().await.unwrap();
    let mut s = db.engine().session();
    let rows = s
        .scalars(&select(Enrollment::ALL).options(aludel::load::joined(Enrollment::course)))
        .await
        .unwrap();
    rows[0].write().unwrap().grade = Some("A".into());
    let title = rows[0]
        .read()
        .unwrap()
        .course
        .get()
        .unwrap()
        .unwrap()
        .read()
        .unwrap()
        .title
        .clone();
    assert_eq!(title, "SQL");
    s.commit().await.unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) FROM enrollments WHERE grade = 'A'").await,
        1
    );
}

// covers: REL-06, REL-04
#[tokio::test]
async fn users_follow_users() {
    let db = setup().await;
    let mut s = db.engine().session();
    let (a, b) = (author("a"), author("b"));
    Author::following.add(&a, &b).unwrap();
    s.add(&a).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM follows f JOIN authors x ON x.id = f.follower_id WHERE x.name = 'a'").await, 1);
}

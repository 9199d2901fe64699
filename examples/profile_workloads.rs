//! A fixed amount of one benchmark workload, for instruction-count profiling:
//!
//!     cargo build --release --example profile_workloads
//!     valgrind --tool=callgrind target/release/examples/profile_workloads w7 5
//!
//! Workloads (tables from `benches/`, schema `aludel_bench`; run a bench once first, or
//! pass `seed` as the first argument): `w1` (2,000 sessions selecting one user), `w2`
//! (insert 1,000 users through the unit of work), `w7` (tracked load of 10,000 users), `w8`
//! (modify 1,000 loaded users, flush), `w4` (the selectin chain over 100 users × 10 posts ×
//! 10 comments; run `cargo bench --bench loading` first, it seeds that tree). The second
//! argument repeats the workload.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use aludel::Generated;
use aludel::{Many, Model, Obj, load::selectin, select};

#[derive(Model, Debug, Clone)]
#[aludel(table = "users")]
pub struct User {
    #[aludel(primary_key, identity)]
    pub id: Generated<i32>,
    pub name: String,
    pub hair_color: Option<String>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "users")]
pub struct TreeUser {
    #[aludel(primary_key, identity)]
    pub id: Generated<i32>,
    pub name: String,
    pub hair_color: Option<String>,
    #[aludel(one_to_many(fk = TreePost::user_id))]
    pub posts: Many<TreePost>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "posts")]
pub struct TreePost {
    #[aludel(primary_key, identity)]
    pub id: Generated<i32>,
    pub user_id: i32,
    pub title: String,
    pub body: Option<String>,
    #[aludel(one_to_many(fk = TreeComment::post_id))]
    pub comments: Many<TreeComment>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "comments")]
pub struct TreeComment {
    #[aludel(primary_key, identity)]
    pub id: Generated<i32>,
    pub post_id: i32,
    pub text: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("w7", String::as_str);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let engine = aludel::Engine::builder(
        &std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    )
    .max_size(2)
    .options("-c search_path=aludel_bench")
    .build()
    .unwrap();
    let seed = async |n: i64| {
        let mut c = engine.connect().await.unwrap();
        c.batch_execute("TRUNCATE users RESTART IDENTITY")
            .await
            .unwrap();
        c.execute(
            &aludel::sql(
                "INSERT INTO users (name) SELECT 'User ' || g FROM generate_series(1, $1::int8) g",
            )
            .bind(n),
        )
        .await
        .unwrap();
    };
    match which {
        "w1" => {
            seed(1).await;
            for _ in 0..reps * 2000 {
                let mut s = engine.session();
                let users: Vec<User> = s.all(&select(User::ALL)).await.unwrap();
                assert_eq!(users.len(), 1);
            }
        }
        "w6" => {
            seed(1000).await;
            for i in 0..reps * 2000 {
                let mut s = engine.session();
                let u: Obj<User> = s.get_one((i % 1000) as i32 + 1).await.unwrap();
                drop(u);
            }
        }
        "w2" => {
            seed(0).await;
            for _ in 0..reps {
                let mut s = engine.session();
                let objs: Vec<Obj<User>> = (0..1000)
                    .map(|i| {
                        Obj::new(User {
                            id: Generated::unset(),
                            name: format!("User {i}"),
                            hair_color: Some("hair_color".to_owned()),
                        })
                    })
                    .collect();
                s.add_all(&objs).unwrap();
                s.commit().await.unwrap();
            }
        }
        "w7" => {
            seed(10_000).await;
            for _ in 0..reps {
                let mut s = engine.session();
                let users: Vec<Obj<User>> = s.scalars(&select(User::ALL)).await.unwrap();
                assert_eq!(users.len(), 10_000);
            }
        }
        "w4" => {
            for _ in 0..reps {
                let mut s = engine.session();
                let users: Vec<Obj<TreeUser>> = s
                    .scalars(
                        &select(TreeUser::ALL)
                            .options(selectin(TreeUser::posts).then(selectin(TreePost::comments))),
                    )
                    .await
                    .unwrap();
                assert_eq!(users.len(), 100);
            }
        }
        "w8" => {
            seed(1000).await;
            for r in 0..reps {
                let mut s = engine.session();
                let users: Vec<Obj<User>> = s.scalars(&select(User::ALL)).await.unwrap();
                for u in &users {
                    let mut w = u.write().unwrap();
                    w.name = format!("User {} r{r}", w.id.get().unwrap());
                }
                s.commit().await.unwrap();
            }
        }
        other => panic!("unknown workload {other}"),
    }
    println!("{which} x{reps} done");
}

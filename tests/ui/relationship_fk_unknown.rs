use aludel::{Model, One};

#[derive(Model)]
#[aludel(table = "users")]
struct User {
    #[aludel(primary_key)]
    id: i64,
}

// covers: REL-07 (a misconfigured relationship is a compile error, not a runtime surprise)
#[derive(Model)]
#[aludel(table = "posts")]
struct Post {
    #[aludel(primary_key)]
    id: i64,
    user_id: i64,
    #[aludel(many_to_one(fk = owner_id))]
    author: One<User>,
}

fn main() {}

use aludel::Model;

#[derive(Model)]
struct User {
    #[aludel(primary_key, autoincrement)]
    id: i32,
}

fn main() {}

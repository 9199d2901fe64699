use aludel::Model;

#[derive(Model)]
struct User {
    id: i32,
    name: String,
}

fn main() {}

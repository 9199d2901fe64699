use aludel::Model;

#[derive(Model)]
#[aludel(table = "users")]
struct User {
    #[aludel(primary_key, identity)]
    id: aludel::Generated<i32>,
    name: String,
}

fn main() {
    let _ = aludel::select(User::ALL).filter(User::name.eq(5));
}

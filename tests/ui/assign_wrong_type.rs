use aludel::Model;

#[derive(Model)]
#[aludel(table = "users")]
struct User {
    #[aludel(primary_key, identity)]
    id: aludel::Generated<i32>,
    age: i32,
}

fn main() {
    let _ = aludel::update::<User>().set(User::age, "forty");
}

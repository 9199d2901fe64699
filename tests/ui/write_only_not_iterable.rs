use aludel::{Model, WriteOnly};

#[derive(Model)]
#[aludel(table = "users")]
struct User {
    #[aludel(primary_key)]
    id: i64,
    #[aludel(one_to_many(fk = Event::user_id))]
    events: WriteOnly<Event>,
}

#[derive(Model)]
#[aludel(table = "events")]
struct Event {
    #[aludel(primary_key)]
    id: i64,
    user_id: i64,
}

// covers: WO-02 (a write-only collection cannot be read as a list)
fn count(u: &User) -> usize {
    u.events.iter().count()
}

fn main() {}

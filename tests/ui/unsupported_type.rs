use aludel::Model;

#[derive(Model)]
struct Event {
    #[aludel(primary_key)]
    id: i32,
    at: std::time::Instant,
}

fn main() {}

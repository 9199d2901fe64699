use aludel::Model;

// A server-filled column must be a `Generated<T>`: with a plain `i64`, `0` would be a value
// silently replaced (or silently sent).
#[derive(Model)]
struct Item {
    #[aludel(primary_key, identity)]
    id: i64,
    #[aludel(server_default = "now()", sql_type = "timestamptz")]
    created_at: String,
}

// `Generated<T>` on a column the server does not fill means nothing.
#[derive(Model)]
struct Note {
    #[aludel(primary_key)]
    id: aludel::Generated<i64>,
}

fn main() {}

#[aludel::test]
async fn takes_a_string(name: String) {
    let _ = name;
}

fn main() {}

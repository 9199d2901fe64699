// Two concurrent operations on one session: the second `&mut` borrow is refused.
async fn two_at_once(engine: aludel::Engine) {
    let mut s = engine.session();
    let a = s.flush();
    let b = s.flush();
    let _ = futures_util::future::join(a, b).await;
}

fn main() {}

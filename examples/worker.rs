//! A background worker: streams orders with their items in batches from one snapshot,
//! computes each order's total, and writes the totals in batches with a second session,
//! one commit per batch. Resumable: a restart continues after the last committed order
//! (keyset on the order key, never an offset), so a crash at any point leaves every order
//! processed exactly once in the end.
//!
//!     cargo run --example worker --features testing -- 200000 1000
//!
//! Uses DATABASE_URL, else local PostgreSQL on 127.0.0.1:5432, else a throwaway cluster.

#![allow(clippy::print_stdout)]

use aludel::load::selectin;
use aludel::{Engine, Many, Model, create_all, select, sql};
use futures_util::TryStreamExt;

#[derive(Model, Debug, Clone)]
#[aludel(table = "aludel_worker_orders")]
pub(crate) struct Order {
    #[aludel(primary_key)]
    pub(crate) id: i64,
    #[aludel(one_to_many(fk = Item::order_id, order_by = "id"))]
    pub(crate) items: Many<Item>,
}

#[derive(Model, Debug, Clone)]
#[aludel(table = "aludel_worker_items")]
pub(crate) struct Item {
    #[aludel(primary_key)]
    pub(crate) id: i64,
    #[aludel(references = "Order::id")]
    pub(crate) order_id: i64,
    pub(crate) qty: i32,
    pub(crate) cents: i64,
}

/// What the worker writes: one row per order, its key the order's (a second write of the
/// same order would be a unique violation, not a silent double count).
#[derive(Model, Debug, Clone)]
#[aludel(table = "aludel_worker_totals")]
pub(crate) struct Total {
    #[aludel(primary_key)]
    pub(crate) order_id: i64,
    pub(crate) items: i32,
    pub(crate) cents: i64,
}

/// How far the worker is: orders done (this run), of `total` to do (this run), in `batches`
/// commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) done: u64,
    pub(crate) total: Option<u64>,
    pub(crate) batches: u64,
}

/// Creates the tables and `orders` orders of three items each (item `3o + k`: qty `k + 1`,
/// `100 · o` cents).
pub(crate) async fn seed(engine: &Engine, orders: i64) -> aludel::Result<()> {
    let mut conn = engine.connect().await?;
    create_all(
        &mut conn,
        &[Order::TABLE, Item::TABLE, Total::TABLE],
        Default::default(),
    )
    .await?;
    conn.begin().await?;
    conn.execute(&sql(
        "TRUNCATE aludel_worker_totals, aludel_worker_items, aludel_worker_orders",
    ))
    .await?;
    conn.execute(
        &sql("INSERT INTO aludel_worker_orders SELECT g FROM generate_series(1, $1::int8) g")
            .bind(orders),
    )
    .await?;
    conn.execute(&sql("INSERT INTO aludel_worker_items
         SELECT 3 * o.id + k, o.id, (k + 1)::int4, 100 * o.id
         FROM aludel_worker_orders o, generate_series(0, 2) k"))
        .await?;
    conn.commit().await?;
    Ok(())
}

/// One order's total: what the worker computes.
fn total(order: &aludel::Obj<Order>) -> aludel::Result<Total> {
    let o = order.read()?;
    let (mut items, mut cents) = (0i32, 0i64);
    for item in o.items.get()? {
        let item = item.read()?;
        items += item.qty;
        cents += i64::from(item.qty) * item.cents;
    }
    Ok(Total {
        order_id: o.id,
        items,
        cents,
    })
}

/// Processes every order not processed yet, `batch` orders per commit, calling `report`
/// after each commit.
pub(crate) async fn run(
    engine: &Engine,
    batch: usize,
    mut report: impl FnMut(Progress),
) -> aludel::Result<Progress> {
    let mut writer = engine.session();
    // The resume point: the last order whose total is committed.
    let last: i64 = writer
        .connection()
        .await?
        .query_one(&sql(
            "SELECT coalesce(max(order_id), 0) FROM aludel_worker_totals",
        ))
        .await?;
    writer.commit().await?;
    let q = select(Order::ALL)
        .filter(Order::id.gt(last))
        .order_by(Order::id.asc())
        .options(selectin(Order::items));
    // The reader: its own snapshot, one FETCH and one items statement per batch.
    let mut reader = engine.session();
    let mut orders = reader.stream_scalars(&q, batch).await?;
    let mut progress = Progress {
        total: Some(orders.count_total().await?),
        ..Progress::default()
    };
    while let Some(batch) = orders.try_next().await? {
        let totals = batch
            .iter()
            .map(total)
            .collect::<aludel::Result<Vec<_>>>()?;
        writer.bulk_insert(&totals).await?;
        writer.commit().await?;
        progress.done += totals.len() as u64;
        progress.batches += 1;
        report(progress);
    }
    Ok(progress)
}

#[tokio::main]
async fn main() -> Result<(), aludel::Error> {
    let mut args = std::env::args().skip(1);
    let n: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let url = aludel::testing::database_url();
    let engine = Engine::builder(&url)
        .max_size(4)
        .application_name("aludel-worker")
        .build()?;
    seed(&engine, n).await?;
    let done = run(&engine, batch, |p| {
        if p.batches % 50 == 0 {
            println!("{} / {:?} orders", p.done, p.total);
        }
    })
    .await?;
    let (rows, cents): (i64, i64) = engine
        .query_one(&sql(
            "SELECT count(*), coalesce(sum(cents), 0)::int8 FROM aludel_worker_totals",
        ))
        .await?;
    println!(
        "processed={} batches={} rows_in_totals={rows} cents={cents}",
        done.done, done.batches
    );
    Ok(())
}

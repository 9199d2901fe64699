//! aludel in one screen: related models, a unit of work, a filtered query with eager loading,
//! an edit flushed as one UPDATE of the changed column, a row stream. Uses DATABASE_URL, else
//! 127.0.0.1:5432, else a throwaway cluster; recreates schema `aludel_quickstart` each run.
//!
//!     cargo run --example quickstart --features testing

#![allow(clippy::print_stdout)]

use aludel::testing::{Recorder, database_url};
use aludel::{Engine, Generated, Many, Model, Obj, One, create_all, load::selectin, select};
use futures_util::TryStreamExt;

#[derive(Model, Debug, Clone, Default)]
#[aludel(table = "authors")]
struct Author {
    #[aludel(primary_key, identity)]
    id: Generated<i64>,
    name: String,
    #[aludel(one_to_many(fk = Book::author_id, back_populates = author))]
    books: Many<Book>,
}

#[derive(Model, Debug, Clone, Default)]
#[aludel(table = "books")]
struct Book {
    #[aludel(primary_key, identity)]
    id: Generated<i64>,
    #[aludel(references = "Author::id")]
    author_id: Option<i64>,
    title: String,
    #[aludel(many_to_one(fk = author_id, back_populates = books))]
    author: One<Author>,
}

#[tokio::main]
async fn main() -> aludel::Result<()> {
    let log = Recorder::default(); // an observer keeping every statement the engine runs
    let show =
        |what: &str, mark: usize| println!("{what}:\n  {}", log.sql_since(mark).join("\n  "));
    let engine = Engine::builder(&database_url())
        .options("-c search_path=aludel_quickstart")
        .observer(log.clone())
        .build()?; // a pool; no connection until the first statement
    let mut conn = engine.connect().await?;
    conn.batch_execute(
        "DROP SCHEMA IF EXISTS aludel_quickstart CASCADE; CREATE SCHEMA aludel_quickstart",
    )
    .await?;
    create_all(&mut conn, &[Author::TABLE, Book::TABLE], Default::default()).await?;
    drop(conn);

    let mut s = engine.session(); // a unit of work: objects in, statements out at flush
    let books = ["Earthsea", "The Dispossessed", "Excession"].map(|title| {
        Obj::new(Book {
            title: title.into(),
            ..Default::default()
        })
    });
    let ursula = Obj::new(Author {
        name: "Ursula".into(),
        books: Many::from_objects(&books[..2]), // the flush sets books.author_id
        ..Default::default()
    });
    let iain = Obj::new(Author {
        name: "Iain".into(),
        books: Many::from_objects(&books[2..]),
        ..Default::default()
    });
    let mark = log.len();
    s.add_all([&ursula, &iain])?; // the books come along (save-update cascade)
    s.commit().await?;
    show("added 2 authors with 3 books", mark);

    // A filter and an eager load: 2 statements however many authors match, no lazy IO later.
    let mark = log.len();
    let q = select(Author::ALL).filter(Author::name.eq("Ursula"));
    let found = s.scalars(&q.options(selectin(Author::books))).await?;
    for book in found[0].read()?.books.get()? {
        println!("Ursula wrote {}", book.read()?.title);
    }
    show("loaded with", mark);

    // Edit in memory; the commit writes the changed column only.
    let earthsea = found[0].read()?.books.get()?.remove(0);
    earthsea.write()?.title = "A Wizard of Earthsea".into();
    let mark = log.len();
    s.commit().await?;
    show("the edit flushed as", mark);

    // Stream rows in constant memory: decoded as they arrive on the session's connection.
    let by_title = select(Book::ALL).order_by(Book::title.asc());
    let mut rows = s.stream(&by_title).await?;
    while let Some(book) = rows.try_next().await? {
        println!("streamed: {}", book.title);
    }
    Ok(())
}

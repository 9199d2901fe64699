//! actix-web: per-request sessions, the transaction middleware, error responses (feature
//! `actix`). Services are driven with `actix_web::test` on the test's Tokio runtime.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, ResponseError, test, web};
use aludel::testing::TestDb;
use aludel::web::actix::{DbSession, TransactionMiddleware};
use aludel::{Engine, SessionFactory, sql};
use futures_util::FutureExt;
use futures_util::future::join_all;

async fn setup() -> TestDb {
    let db = TestDb::new().await.unwrap();
    db.engine()
        .execute(&sql(
            "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE)",
        ))
        .await
        .unwrap();
    db
}

async fn insert(db: &mut DbSession, name: &str) -> aludel::Result<u64> {
    db.execute(&sql("INSERT INTO items (name) VALUES ($1)").bind(name.to_owned()))
        .await
}

async fn committed(db: &TestDb) -> Vec<String> {
    let mut c = db.admin().await.unwrap();
    c.query_as(&sql("SELECT name FROM items ORDER BY name"))
        .await
        .unwrap()
}

fn post(uri: &str, body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .set_payload(body.to_owned())
}

async fn body_of<B: actix_web::body::MessageBody>(res: ServiceResponse<B>) -> String {
    String::from_utf8(test::read_body(res).await.to_vec()).unwrap()
}

async fn assert_no_open_transactions(db: &TestDb, engine: &Engine) {
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(2), |b| {
            b.iter()
                .all(|(_, s)| s != "idle in transaction" && s != "active")
        })
        .await
        .unwrap();
    assert!(ok, "backends left in a transaction: {seen:?}");
    // Connections cut off mid-statement come back once their drain task is done.
    assert!(
        crate::pool_faults::pool_settles(engine).await,
        "{:?}",
        engine.pool_status()
    );
}

async fn ok(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, &name).await?;
    Ok(HttpResponse::Created().finish())
}

async fn client_error(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, &name).await?;
    Ok(HttpResponse::UnprocessableEntity().finish())
}

async fn server_error(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, &name).await?;
    Ok(HttpResponse::InternalServerError().finish())
}

async fn redirect(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, &name).await?;
    Ok(HttpResponse::SeeOther().finish())
}

async fn duplicate(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, &name).await?;
    insert(&mut db, "taken").await?;
    Ok(HttpResponse::Created().finish())
}

async fn slow(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, &name).await?;
    db.execute(&sql("SELECT pg_sleep(30)")).await?;
    Ok(HttpResponse::Created().finish())
}

async fn short(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, &name).await?;
    db.execute(&sql("SELECT pg_sleep(0.005)")).await?;
    Ok(HttpResponse::Created().finish())
}

async fn panics(mut db: DbSession, name: String) -> HttpResponse {
    insert(&mut db, &name).await.unwrap();
    panic!("handler bug after a write");
}

async fn take_slot(mut db: DbSession) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, "with-slot").await?;
    db.execute(&sql("INSERT INTO slots VALUES (1)")).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn leaks(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
    insert(&mut db, &name).await?;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(db);
    });
    Ok(HttpResponse::Created().finish())
}

/// Inserts a note for the item whose id is the body (text cast to int on the server).
async fn note(mut db: DbSession, item: String) -> Result<HttpResponse, aludel::Error> {
    db.execute(&sql("INSERT INTO notes (item_id) VALUES ($1::text::int)").bind(item))
        .await?;
    Ok(HttpResponse::Created().finish())
}

macro_rules! app {
    ($factory:expr) => {{
        let factory: SessionFactory = $factory;
        test::init_service(
            App::new()
                .app_data(web::Data::new(factory.clone()))
                .wrap(TransactionMiddleware::new(factory))
                .route("/ok", web::post().to(ok))
                .route("/note", web::post().to(note))
                .route("/client-error", web::post().to(client_error))
                .route("/server-error", web::post().to(server_error))
                .route("/redirect", web::post().to(redirect))
                .route("/duplicate", web::post().to(duplicate))
                .route("/slow", web::post().to(slow))
                .route("/short", web::post().to(short))
                .route("/panics", web::post().to(panics))
                .route("/slot", web::post().to(take_slot))
                .route("/leaks", web::post().to(leaks)),
        )
        .await
    }};
}

// covers: DI-02, DI-03
#[tokio::test]
async fn middleware_commits_2xx_3xx_and_rolls_back_every_other_status() {
    let db = setup().await;
    db.engine()
        .execute(&sql("INSERT INTO items (name) VALUES ('taken')"))
        .await
        .unwrap();
    let app = app!(db.engine().session_builder());
    let cases = [
        ("/ok", "a-created", StatusCode::CREATED),
        ("/redirect", "b-redirected", StatusCode::SEE_OTHER),
        ("/client-error", "c-422", StatusCode::UNPROCESSABLE_ENTITY),
        ("/server-error", "d-500", StatusCode::INTERNAL_SERVER_ERROR),
        ("/duplicate", "e-duplicate", StatusCode::CONFLICT),
    ];
    for (uri, name, want) in cases {
        let res = test::call_service(&app, post(uri, name).to_request()).await;
        assert_eq!(res.status(), want, "{uri}");
        let states = db.backends().await.unwrap();
        assert!(
            states.iter().all(|(_, s)| s != "idle in transaction"),
            "{uri}: {states:?}"
        );
        assert_eq!(db.engine().pool_status().in_use, 0, "{uri}");
    }
    assert_eq!(committed(&db).await, ["a-created", "b-redirected", "taken"]);
}

// covers: DI-01
#[tokio::test]
async fn without_the_middleware_the_handler_owns_its_session() {
    async fn commits(mut db: DbSession, name: String) -> Result<HttpResponse, aludel::Error> {
        assert!(!db.is_request_transaction());
        insert(&mut db, &name).await?;
        db.commit().await?;
        Ok(HttpResponse::Created().finish())
    }
    let db = setup().await;
    // A plain `SessionFactory` in the app data works as well as `web::Data`.
    let app = test::init_service(
        App::new()
            .app_data(SessionFactory::from(db.engine().clone()))
            .route("/commits", web::post().to(commits))
            .route("/forgets", web::post().to(ok)),
    )
    .await;
    let res = test::call_service(&app, post("/commits", "kept").to_request()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = test::call_service(&app, post("/forgets", "lost").to_request()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(committed(&db).await, ["kept"]);
    assert_no_open_transactions(&db, db.engine()).await;
}

// covers: DI-01
#[tokio::test]
async fn without_a_factory_the_extractor_is_rejected() {
    let app = test::init_service(App::new().route("/ok", web::post().to(ok))).await;
    let res = test::call_service(&app, post("/ok", "x").to_request()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body_of(res).await,
        r#"{"error":"no aludel::SessionFactory in the application's data or state"}"#
    );
}

// covers: DI-02
#[tokio::test]
async fn a_commit_that_fails_is_never_a_200() {
    let db = setup().await;
    db.engine()
        .execute(&sql(
            "CREATE TABLE slots (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)",
        ))
        .await
        .unwrap();
    db.engine()
        .execute(&sql("INSERT INTO slots VALUES (1)"))
        .await
        .unwrap();
    let app = app!(db.engine().session_builder());
    let res = test::call_service(&app, post("/slot", "").to_request()).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(body_of(res).await, r#"{"error":"conflict"}"#);
    assert_eq!(committed(&db).await, Vec::<String>::new());
    assert_no_open_transactions(&db, db.engine()).await;
}

// covers: DI-03, DI-06
#[tokio::test]
async fn a_panicking_handler_rolls_back() {
    let db = setup().await;
    let app = app!(db.engine().session_builder());
    let caught = AssertUnwindSafe(app.call(post("/panics", "never").to_request()))
        .catch_unwind()
        .await;
    assert!(caught.is_err(), "the handler did not panic");
    assert_no_open_transactions(&db, db.engine()).await;
    assert_eq!(committed(&db).await, Vec::<String>::new());
    let res = test::call_service(&app, post("/ok", "after").to_request()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(committed(&db).await, ["after"]);
}

// covers: DI-06, DI-03
#[tokio::test]
async fn cancelled_requests_return_their_connections() {
    let db = setup().await;
    let engine = db.engine_builder().max_size(10).build().unwrap();
    let app = app!(engine.session_builder());
    let requests =
        join_all((0..100).map(|i| app.call(post("/slow", &format!("n{i}")).to_request())));
    tokio::select! {
        _ = requests => panic!("the slow requests finished"),
        seen = db.wait_for_backends(Duration::from_secs(5), |b| {
            b.iter().filter(|(_, s)| s == "active").count() == 10
        }) => {
            let (seen, ok) = seen.unwrap();
            assert!(ok, "the handlers never reached pg_sleep: {seen:?}");
        }
    }
    // `select!` dropped the 100 request futures: 10 mid-query, 90 waiting for the pool.
    assert_no_open_transactions(&db, &engine).await;
    assert_eq!(committed(&db).await, Vec::<String>::new());
}

// covers: DI-01
#[tokio::test]
async fn two_hundred_concurrent_requests_through_a_pool_of_ten() {
    let db = setup().await;
    let engine = db
        .engine_builder()
        .max_size(10)
        .wait_timeout(Some(Duration::from_secs(5)))
        .build()
        .unwrap();
    let app = app!(engine.session_builder());
    let responses = join_all(
        (0..200)
            .map(|i| test::call_service(&app, post("/short", &format!("n{i:03}")).to_request())),
    )
    .await;
    for res in responses {
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert_eq!(committed(&db).await.len(), 200);
    let status = engine.pool_status();
    assert!(status.size <= 10, "{status:?}");
    assert_eq!(status.in_use, 0, "{status:?}");
}

// covers: DI-04
#[tokio::test]
async fn a_session_leaked_into_a_task_is_a_500_and_not_committed() {
    let db = setup().await;
    let app = app!(db.engine().session_builder());
    let res = test::call_service(&app, post("/leaks", "leaked").to_request()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body_of(res).await, r#"{"error":"internal error"}"#);
    assert_no_open_transactions(&db, db.engine()).await;
    assert_eq!(committed(&db).await, Vec::<String>::new());
}

// covers: DI-02
#[tokio::test]
async fn errors_map_to_statuses_without_sql_in_the_body() {
    let db = setup().await;
    db.engine()
        .execute(&sql("INSERT INTO items (name) VALUES ('secret-value')"))
        .await
        .unwrap();
    let engine = db
        .engine_builder()
        .max_size(1)
        .wait_timeout(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    let mut c = engine.connect().await.unwrap();
    let unique = c
        .execute(&sql("INSERT INTO items (name) VALUES ($1)").bind("secret-value"))
        .await
        .unwrap_err();
    let not_found = c
        .query_one::<i32>(&sql("SELECT id FROM items WHERE name = $1").bind("nobody"))
        .await
        .unwrap_err();
    let pool_timeout = engine.connect().await.unwrap_err();
    c.begin().await.unwrap();
    c.execute(&sql("SET LOCAL statement_timeout = '20ms'"))
        .await
        .unwrap();
    let timeout = c.execute(&sql("SELECT pg_sleep(5)")).await.unwrap_err();
    c.rollback().await.unwrap();
    let other = c
        .execute(&sql("SELECT no_such_column FROM items WHERE name = $1").bind("secret-value"))
        .await
        .unwrap_err();

    let cases = [
        (unique, 409, "conflict"),
        (not_found, 404, "not found"),
        (pool_timeout, 503, "service unavailable"),
        (timeout, 504, "timeout"),
        (other, 500, "internal error"),
    ];
    for (err, status, category) in cases {
        assert_eq!(err.status_code().as_u16(), status, "{err:?}");
        let res = err.error_response();
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/json"
        );
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(body, format!(r#"{{"error":"{category}"}}"#));
        for leak in ["secret", "items", "SELECT", "INSERT", "nobody", "$1"] {
            assert!(!body.contains(leak), "{body}");
        }
    }
}

/// A text of `n` characters that does not compress (an index entry keeps it whole).
fn incompressible(n: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

/// Bad data that reaches the server through a handler is the client's fault: a NUL byte
/// (22021) and text that is not a number (22P02) are 422, a value too large for the unique
/// index (54000) is 413, a foreign key to a missing row (23503) is 409. Nothing is
/// committed, no transaction stays open, and the bodies carry neither SQL nor the values.
// covers: DI-02, DI-03
#[tokio::test]
async fn bad_data_from_the_client_is_4xx_not_500() {
    let db = setup().await;
    db.engine()
        .execute(&sql(
            "CREATE TABLE notes (id serial PRIMARY KEY, item_id int NOT NULL REFERENCES items)",
        ))
        .await
        .unwrap();
    let app = app!(db.engine().session_builder());
    let cases = [
        ("/ok", "nul\0byte".to_owned(), 422, "invalid data", "22021"),
        ("/note", "12abc".to_owned(), 422, "invalid data", "22P02"),
        ("/ok", incompressible(4_000), 413, "too large", "54000"),
        ("/note", "987654".to_owned(), 409, "conflict", "23503"),
    ];
    for (uri, value, status, category, sqlstate) in cases {
        let res = test::call_service(&app, post(uri, &value).to_request()).await;
        assert_eq!(res.status().as_u16(), status, "{uri} ({sqlstate})");
        assert_eq!(
            body_of(res).await,
            format!(r#"{{"error":"{category}"}}"#),
            "{sqlstate}"
        );
        assert_no_open_transactions(&db, db.engine()).await;
    }
    assert_eq!(committed(&db).await, Vec::<String>::new());
    let mut admin = db.admin().await.unwrap();
    let notes: i64 = admin
        .query_one(&sql("SELECT count(*) FROM notes"))
        .await
        .unwrap();
    assert_eq!(notes, 0);
}

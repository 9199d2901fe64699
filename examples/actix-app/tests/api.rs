//! The service through `actix_web::test`, on real PostgreSQL: each test has a schema of its
//! own (`#[aludel::test]`), and what a request committed is checked from a second connection.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::{App, test};
use aludel::sql;
use aludel::testing::TestDb;
use serde_json::{Value, json};
use todos::Todo;

async fn body<B: MessageBody>(res: ServiceResponse<B>) -> (StatusCode, Value) {
    let status = res.status();
    let bytes = test::read_body(res).await;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

/// The titles committed, seen from the test's second connection.
async fn committed(db: &TestDb) -> Vec<(String, bool)> {
    db.admin()
        .await
        .unwrap()
        .query_as(&sql("SELECT title, done FROM todos ORDER BY id"))
        .await
        .unwrap()
}

fn post(uri: &str, body: Value) -> test::TestRequest {
    test::TestRequest::post().uri(uri).set_json(body)
}

// covers: DI-02, SES-11
#[aludel::test(models(Todo))]
async fn crud_round_trip_commits_each_request(db: &TestDb) {
    let app = test::init_service(App::new().configure(todos::routes(db.engine().clone()))).await;

    let (status, made) =
        body(test::call_service(&app, post("/todos", json!({"title": "milk"})).to_request()).await)
            .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(made["title"], "milk");
    let id = made["id"].as_i64().unwrap();
    // The middleware committed before the response: a second connection sees the row.
    assert_eq!(committed(db).await, [("milk".to_owned(), false)]);

    let uri = format!("/todos/{id}");
    let (status, got) =
        body(test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await).await;
    assert_eq!((status, got), (StatusCode::OK, made.clone()));

    let mark = db.recorder().len();
    let req = test::TestRequest::patch()
        .uri(&uri)
        .set_json(json!({"done": true}));
    let (status, changed) = body(test::call_service(&app, req.to_request()).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(changed["done"], true);
    let updates: Vec<String> = db
        .recorder()
        .sql_since(mark)
        .into_iter()
        .filter(|s| s.starts_with("UPDATE"))
        .collect();
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert!(
        updates[0].contains(r#"SET "done""#) && !updates[0].contains(r#""title" ="#),
        "only the changed column: {}",
        updates[0]
    );
    assert_eq!(committed(db).await, [("milk".to_owned(), true)]);

    let res = test::call_service(&app, test::TestRequest::delete().uri(&uri).to_request()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(committed(db).await.is_empty());
    let res = test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

// covers: DI-02, TX-01
#[aludel::test(models(Todo))]
async fn a_failed_request_rolls_back_everything_it_wrote(db: &TestDb) {
    let app = test::init_service(App::new().configure(todos::routes(db.engine().clone()))).await;
    let batch = json!([{"title": "a"}, {"title": "b"}, {"title": "a"}]);
    let (status, err) =
        body(test::call_service(&app, post("/todos/batch", batch).to_request()).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(
        committed(db).await.is_empty(),
        "the first two inserts were committed"
    );

    let blank = json!([{"title": "c"}, {"title": "  "}]);
    let res = test::call_service(&app, post("/todos/batch", blank).to_request()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(committed(db).await.is_empty(), "a 4xx response rolls back");

    let ok = json!([{"title": "c"}, {"title": "d"}]);
    let (status, made) =
        body(test::call_service(&app, post("/todos/batch", ok).to_request()).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(made.as_array().unwrap().len(), 2);
    assert_eq!(committed(db).await.len(), 2);
    let (seen, idle) = db
        .wait_for_backends(std::time::Duration::from_secs(2), |b| {
            b.iter().all(|(_, s)| s != "idle in transaction")
        })
        .await
        .unwrap();
    assert!(idle, "a request left a transaction open: {seen:?}");
}

// covers: QRY-02, QRY-04
#[aludel::test(models(Todo))]
async fn listing_filters_pages_and_counts(db: &TestDb) {
    let app = test::init_service(App::new().configure(todos::routes(db.engine().clone()))).await;
    let batch = json!([{"title": "a"}, {"title": "b"}, {"title": "c"}]);
    let res = test::call_service(&app, post("/todos/batch", batch).to_request()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    db.engine()
        .execute(&sql("UPDATE todos SET done = true WHERE title <> 'b'"))
        .await
        .unwrap();

    let get = |uri: &'static str| test::TestRequest::get().uri(uri).to_request();
    let (_, page) = body(test::call_service(&app, get("/todos?done=true&limit=1")).await).await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["title"], "a");
    let (_, page) =
        body(test::call_service(&app, get("/todos?done=true&limit=1&offset=1")).await).await;
    assert_eq!(page["items"][0]["title"], "c");
    let (_, page) = body(test::call_service(&app, get("/todos?done=false")).await).await;
    assert_eq!(
        (page["total"].clone(), page["items"][0]["title"].clone()),
        (json!(1), json!("b"))
    );
}

// covers: STR-01
#[aludel::test(models(Todo))]
async fn export_streams_every_row_as_ndjson(db: &TestDb) {
    db.engine()
        .execute(&sql(
            "INSERT INTO todos (title, done) SELECT 'todo ' || g, g % 2 = 0 FROM generate_series(1, 2000) g",
        ))
        .await
        .unwrap();
    let app = test::init_service(App::new().configure(todos::routes(db.engine().clone()))).await;
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri("/todos/export").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/x-ndjson"
    );
    let bytes = test::read_body(res).await;
    let lines: Vec<Value> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2000);
    assert_eq!(lines[0], json!({"id": 1, "title": "todo 1", "done": false}));
    assert_eq!(lines[1999]["title"], "todo 2000");
    assert_eq!(
        db.engine().pool_status().in_use,
        0,
        "the stream gave its connection back"
    );
}

#[aludel::test(models(Todo))]
async fn blank_titles_and_duplicates_are_client_errors(db: &TestDb) {
    let app = test::init_service(App::new().configure(todos::routes(db.engine().clone()))).await;
    let res = test::call_service(&app, post("/todos", json!({"title": ""})).to_request()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = test::call_service(&app, post("/todos", json!({"title": "x"})).to_request()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (status, err) =
        body(test::call_service(&app, post("/todos", json!({"title": "x"})).to_request()).await)
            .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        !err.to_string().contains("\"x\""),
        "the error body echoes no values: {err}"
    );
    assert_eq!(committed(db).await, [("x".to_owned(), false)]);
}

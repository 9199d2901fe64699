//! axum: per-request sessions, the transaction layer, error responses (feature `axum`).

use std::time::Duration;

use aludel::testing::TestDb;
use aludel::web::axum::{DbSession, TransactionLayer};
use aludel::{Engine, SessionFactory, sql};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use tower::ServiceExt;

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

/// Names in `items`, read through the admin connection (another pool, another transaction).
async fn committed(db: &TestDb) -> Vec<String> {
    let mut c = db.admin().await.unwrap();
    c.query_as(&sql("SELECT name FROM items ORDER BY name"))
        .await
        .unwrap()
}

fn post_req(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
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

async fn ok(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
    insert(&mut db, &name).await?;
    Ok(StatusCode::CREATED)
}

async fn client_error(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
    insert(&mut db, &name).await?;
    Ok(StatusCode::UNPROCESSABLE_ENTITY)
}

async fn server_error(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
    insert(&mut db, &name).await?;
    Ok(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn redirect(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
    insert(&mut db, &name).await?;
    Ok(StatusCode::SEE_OTHER)
}

/// Inserts `name`, then a second row that violates the unique constraint: a 409 from `?`.
async fn duplicate(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
    insert(&mut db, &name).await?;
    insert(&mut db, "taken").await?;
    Ok(StatusCode::CREATED)
}

/// Inserts a note for the item whose id is the body (text cast to int on the server).
async fn note(mut db: DbSession, item: String) -> aludel::Result<StatusCode> {
    db.execute(&sql("INSERT INTO notes (item_id) VALUES ($1::text::int)").bind(item))
        .await?;
    Ok(StatusCode::CREATED)
}

fn app(factory: SessionFactory) -> Router {
    Router::new()
        .route("/ok", post(ok))
        .route("/note", post(note))
        .route("/client-error", post(client_error))
        .route("/server-error", post(server_error))
        .route("/redirect", post(redirect))
        .route("/duplicate", post(duplicate))
        .layer(TransactionLayer::new(factory.clone()))
        .with_state(factory)
}

// covers: DI-02, DI-03
#[tokio::test]
async fn layer_commits_2xx_3xx_and_rolls_back_every_other_status() {
    let db = setup().await;
    db.engine()
        .execute(&sql("INSERT INTO items (name) VALUES ('taken')"))
        .await
        .unwrap();
    let app = app(db.engine().session_builder());

    let cases = [
        ("/ok", "a-created", StatusCode::CREATED),
        ("/redirect", "b-redirected", StatusCode::SEE_OTHER),
        ("/client-error", "c-422", StatusCode::UNPROCESSABLE_ENTITY),
        ("/server-error", "d-500", StatusCode::INTERNAL_SERVER_ERROR),
        ("/duplicate", "e-duplicate", StatusCode::CONFLICT),
    ];
    for (uri, name, want) in cases {
        let (status, _) = send(&app, post_req(uri, name)).await;
        assert_eq!(status, want, "{uri}");
        // The commit or rollback finished before the response came out of the layer.
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
async fn without_the_layer_the_handler_owns_its_session() {
    async fn commits(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
        assert!(!db.is_request_transaction());
        insert(&mut db, &name).await?;
        db.commit().await?;
        Ok(StatusCode::CREATED)
    }
    // Forgets to commit: the dropped session rolls back, whatever the status.
    async fn forgets(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
        insert(&mut db, &name).await?;
        Ok(StatusCode::CREATED)
    }
    let db = setup().await;
    let app = Router::new()
        .route("/commits", post(commits))
        .route("/forgets", post(forgets))
        .with_state(SessionFactory::from(db.engine().clone()));

    assert_eq!(
        send(&app, post_req("/commits", "kept")).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&app, post_req("/forgets", "lost")).await.0,
        StatusCode::CREATED
    );
    assert_eq!(committed(&db).await, ["kept"]);
    assert_no_open_transactions(&db, db.engine()).await;
}

// covers: DI-01, DI-03
#[tokio::test]
async fn request_sessions_open_no_connection_until_used() {
    async fn untouched(db: DbSession) -> StatusCode {
        assert!(db.is_request_transaction());
        StatusCode::OK
    }
    let db = setup().await;
    let engine = db.engine_builder().build().unwrap();
    let app = Router::new()
        .route("/untouched", get(untouched))
        .route("/no-extractor", get(|| async { "hi" }))
        .layer(TransactionLayer::new(engine.session_builder()))
        .with_state(engine.session_builder());
    let mark = db.recorder().len();
    for uri in ["/untouched", "/no-extractor"] {
        let (status, _) = send(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(db.recorder().sql_since(mark), Vec::<String>::new());
    assert_eq!(engine.pool_status().size, 0, "a connection was opened");
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
    async fn take_slot(mut db: DbSession) -> aludel::Result<StatusCode> {
        insert(&mut db, "with-slot").await?;
        // Deferred: the INSERT succeeds, the violation surfaces at COMMIT.
        db.execute(&sql("INSERT INTO slots VALUES (1)")).await?;
        Ok(StatusCode::OK)
    }
    let factory = db.engine().session_builder();
    let app = Router::new()
        .route("/slot", post(take_slot))
        .layer(TransactionLayer::new(factory.clone()))
        .with_state(factory);

    let (status, body) = send(&app, post_req("/slot", "")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, r#"{"error":"conflict"}"#);
    assert_eq!(committed(&db).await, Vec::<String>::new());
    assert_no_open_transactions(&db, db.engine()).await;
}

// covers: DI-03, DI-06
#[tokio::test]
async fn a_panicking_handler_rolls_back() {
    async fn panics(mut db: DbSession, name: String) -> StatusCode {
        insert(&mut db, &name).await.unwrap();
        panic!("handler bug after a write");
    }
    let db = setup().await;
    let factory = db.engine().session_builder();
    let app = Router::new()
        .route("/panics", post(panics))
        .route("/ok", post(ok))
        .layer(TransactionLayer::new(factory.clone()))
        .with_state(factory);

    let joined = tokio::spawn(app.clone().oneshot(post_req("/panics", "never")))
        .await
        .unwrap_err();
    assert!(joined.is_panic());
    assert_no_open_transactions(&db, db.engine()).await;
    assert_eq!(committed(&db).await, Vec::<String>::new());
    // The pool is healthy afterwards.
    assert_eq!(
        send(&app, post_req("/ok", "after")).await.0,
        StatusCode::CREATED
    );
    assert_eq!(committed(&db).await, ["after"]);
}

// covers: DI-06, DI-03
#[tokio::test]
async fn cancelled_requests_return_their_connections() {
    async fn slow(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
        insert(&mut db, &name).await?;
        db.execute(&sql("SELECT pg_sleep(30)")).await?;
        Ok(StatusCode::CREATED)
    }
    let db = setup().await;
    let engine = db.engine_builder().max_size(10).build().unwrap();
    let factory = engine.session_builder();
    let app = Router::new()
        .route("/slow", post(slow))
        .layer(TransactionLayer::new(factory.clone()))
        .with_state(factory);

    let tasks: Vec<_> = (0..100)
        .map(|i| tokio::spawn(app.clone().oneshot(post_req("/slow", &format!("n{i}")))))
        .collect();
    let (seen, ok) = db
        .wait_for_backends(Duration::from_secs(5), |b| {
            b.iter().filter(|(_, s)| s == "active").count() == 10
        })
        .await
        .unwrap();
    assert!(ok, "the handlers never reached pg_sleep: {seen:?}");
    for t in &tasks {
        t.abort(); // the client went away: the request future is dropped
    }
    for t in tasks {
        assert!(t.await.unwrap_err().is_cancelled());
    }
    assert_no_open_transactions(&db, &engine).await;
    assert_eq!(committed(&db).await, Vec::<String>::new());
}

// covers: DI-01
#[tokio::test]
async fn two_hundred_concurrent_requests_through_a_pool_of_ten() {
    async fn short(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
        insert(&mut db, &name).await?;
        db.execute(&sql("SELECT pg_sleep(0.005)")).await?;
        Ok(StatusCode::CREATED)
    }
    let db = setup().await;
    let engine = db
        .engine_builder()
        .max_size(10)
        .wait_timeout(Some(Duration::from_secs(5)))
        .build()
        .unwrap();
    let factory = engine.session_builder();
    let app = Router::new()
        .route("/short", post(short))
        .layer(TransactionLayer::new(factory.clone()))
        .with_state(factory);

    let tasks: Vec<_> = (0..200)
        .map(|i| tokio::spawn(app.clone().oneshot(post_req("/short", &format!("n{i:03}")))))
        .collect();
    for t in tasks {
        let res = t.await.unwrap().unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert_eq!(committed(&db).await.len(), 200);
    let status = engine.pool_status();
    assert!(status.size <= 10, "{status:?}");
    assert_eq!(status.in_use, 0, "{status:?}");
}

// covers: DI-04
#[tokio::test]
async fn background_work_opens_its_own_session_after_the_response() {
    type Job = tokio::sync::oneshot::Receiver<()>;
    async fn with_job(
        State(factory): State<SessionFactory>,
        mut db: DbSession,
        name: String,
    ) -> aludel::Result<Response> {
        insert(&mut db, &name).await?;
        let (go, wait): (_, Job) = tokio::sync::oneshot::channel();
        let job = tokio::spawn(async move {
            wait.await.ok();
            // A session of the job's own; the request's one is committed and gone.
            let mut s = factory.session();
            let seen: i64 = s
                .connection()
                .await?
                .query_one(&sql("SELECT count(*) FROM items WHERE name = $1").bind(name))
                .await?;
            s.execute(&sql("INSERT INTO items (name) VALUES ('from-job')"))
                .await?;
            s.commit().await?;
            Ok::<_, aludel::Error>(seen)
        });
        JOB.lock().unwrap().replace((go, job));
        Ok(StatusCode::ACCEPTED.into_response())
    }
    type Handle = (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<aludel::Result<i64>>,
    );
    static JOB: std::sync::Mutex<Option<Handle>> = std::sync::Mutex::new(None);

    let db = setup().await;
    let factory = db.engine().session_builder();
    let app = Router::new()
        .route("/job", post(with_job))
        .layer(TransactionLayer::new(factory.clone()))
        .with_state(factory);

    assert_eq!(
        send(&app, post_req("/job", "request-row")).await.0,
        StatusCode::ACCEPTED
    );
    // The response is out: the request's row is committed, its connection is back.
    assert_eq!(db.engine().pool_status().in_use, 0);
    assert_eq!(committed(&db).await, ["request-row"]);
    let (go, job) = JOB.lock().unwrap().take().unwrap();
    go.send(()).unwrap();
    assert_eq!(
        job.await.unwrap().unwrap(),
        1,
        "the job saw the committed row"
    );
    assert_eq!(committed(&db).await, ["from-job", "request-row"]);
}

// covers: DI-04
#[tokio::test]
async fn a_session_leaked_into_a_task_is_a_500_and_not_committed() {
    async fn leaks(mut db: DbSession, name: String) -> aludel::Result<StatusCode> {
        insert(&mut db, &name).await?;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(db);
        });
        Ok(StatusCode::CREATED)
    }
    let db = setup().await;
    let factory = db.engine().session_builder();
    let app = Router::new()
        .route("/leaks", post(leaks))
        .layer(TransactionLayer::new(factory.clone()))
        .with_state(factory);

    let (status, body) = send(&app, post_req("/leaks", "leaked")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, r#"{"error":"internal error"}"#);
    assert_no_open_transactions(&db, db.engine()).await;
    assert_eq!(committed(&db).await, Vec::<String>::new());
}

// covers: DI-03
#[tokio::test]
async fn a_second_extractor_of_the_request_session_is_rejected() {
    async fn two(_a: DbSession, _b: DbSession) -> StatusCode {
        StatusCode::OK
    }
    let db = setup().await;
    let factory = db.engine().session_builder();
    let app = Router::new()
        .route("/two", get(two))
        .layer(TransactionLayer::new(factory.clone()))
        .with_state(factory);
    let (status, body) = send(&app, Request::get("/two").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.starts_with(r#"{"error":"the request's database session"#),
        "{body}"
    );
}

/// Real errors of each class, their status and a body without SQL, names or values.
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
    let mut s = engine.session();
    let c = s.connection().await.unwrap();

    let unique = c
        .execute(&sql("INSERT INTO items (name) VALUES ($1)").bind("secret-value"))
        .await
        .unwrap_err();
    c.rollback().await.unwrap();
    c.begin().await.unwrap();
    let not_found = c
        .query_one::<i32>(&sql("SELECT id FROM items WHERE name = $1").bind("nobody"))
        .await
        .unwrap_err();
    let pool_timeout = engine.connect().await.unwrap_err();
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
        assert_eq!(aludel::web::status_for(&err), status, "{err:?}");
        assert_eq!(aludel::web::error_category(&err), category);
        let res = err.into_response();
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(res.headers()["content-type"], "application/json");
        let body = res.into_body().collect().await.unwrap().to_bytes();
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
    let app = app(db.engine().session_builder());
    let long = incompressible(4_000);
    let cases = [
        ("/ok", "nul\0byte".to_owned(), 422, "invalid data", "22021"),
        ("/note", "12abc".to_owned(), 422, "invalid data", "22P02"),
        ("/ok", long, 413, "too large", "54000"),
        ("/note", "987654".to_owned(), 409, "conflict", "23503"),
    ];
    for (uri, value, status, category, sqlstate) in cases {
        let (got, body) = send(&app, post_req(uri, &value)).await;
        assert_eq!(got.as_u16(), status, "{uri} ({sqlstate}): {body}");
        assert_eq!(body, format!(r#"{{"error":"{category}"}}"#), "{sqlstate}");
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

//! Hostile input against the whole router, in-process: every text field, query parameter and
//! path segment with NUL bytes, over-long, unicode and SQL-injection text; wrong JSON types;
//! forged, expired, `alg: none` tokens and tokens of deleted users; oversized bodies; wrong
//! methods. No answer may be a 5xx, and no error body may carry SQL, the values sent, or
//! Rust internals.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aludel::sql;
use aludel::testing::TestDb;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use conduit::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &[u8] = b"hostile-suite-secret-of-32-bytes!";
const INJECTION: &str = "x'); DROP TABLE users; --";
const NUL: &str = "nul\u{0}byte";

/// One request and the status it must get.
struct Case {
    label: String,
    method: &'static str,
    uri: String,
    token: Option<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    want: u16,
}

fn case(label: &str, method: &'static str, uri: &str, token: Option<&str>, body: Value) -> Case {
    Case {
        label: label.to_owned(),
        method,
        uri: uri.to_owned(),
        token: token.map(str::to_owned),
        content_type: Some("application/json"),
        body: if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        },
        want: 0,
    }
}

impl Case {
    fn want(mut self, status: u16) -> Self {
        self.want = status;
        self
    }
    fn raw(mut self, body: &[u8], content_type: Option<&'static str>) -> Self {
        self.body = body.to_vec();
        self.content_type = content_type;
        self
    }
}

async fn send(app: &Router, c: &Case) -> (u16, String, Option<String>) {
    let mut req = Request::builder().method(c.method).uri(&c.uri);
    if let Some(ct) = c.content_type {
        if !c.body.is_empty() {
            req = req.header(header::CONTENT_TYPE, ct);
        }
    }
    if let Some(t) = &c.token {
        req = req.header(header::AUTHORIZATION, format!("Token {t}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(c.body.clone())).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned(), ct)
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// What no error body may contain: SQL, server internals, serde's Rust type names, the
/// hostile values themselves.
const FORBIDDEN: &[&str] = &[
    "select ",
    "insert ",
    "update ",
    "delete ",
    "unnest",
    "$1",
    "sqlstate",
    "constraint",
    "violates",
    "duplicate key",
    "pg_",
    "struct ",
    "invalid type",
    "expected",
    "line 1",
    "column",
    "panicked",
    "aludel",
    "serde",
    "tokio",
    "::",
    "drop table",
    "nul\u{0}",
    "\\u0000",
    "aaaaaaaaaaaaaaaa",
    "register",
    "wrapped",
    "newarticle",
    "string \"",
    "integer `",
];

async fn register(app: &Router, name: &str) -> String {
    let c = case(
        "register",
        "POST",
        "/api/users",
        None,
        json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "password123"}}),
    );
    let (status, body, _) = send(app, &c).await;
    assert_eq!(status, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["user"]["token"].as_str().unwrap().to_owned()
}

#[allow(clippy::too_many_lines)] // one list of cases reads better than many small functions
fn cases(alice: &str, ghost: &str, slug: &str, comment: i64) -> Vec<Case> {
    let long = |n: usize| "a".repeat(n);
    let user = |u: Value| json!({ "user": u });
    let art = |a: Value| json!({ "article": a });
    let a = Some(alice);
    let now = chrono::Utc::now().timestamp();
    let expired = sign(
        &json!({"sub": "1", "iat": now - 7200, "exp": now - 3600}),
        SECRET,
    );
    let forged = sign(
        &json!({"sub": "1", "iat": now, "exp": now + 3600}),
        b"another secret",
    );
    let not_a_number = sign(
        &json!({"sub": "abc", "iat": now, "exp": now + 3600}),
        SECRET,
    );
    let nobody = sign(
        &json!({"sub": "987654321", "iat": now, "exp": now + 3600}),
        SECRET,
    );
    let alg_none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(format!(r#"{{"sub":"1","iat":{now},"exp":{}}}"#, now + 3600).as_bytes())
    );
    let huge = format!(r#"{{"user":{{"username":"{}"}}}}"#, long(2 * 1024 * 1024));
    let many_tags: Vec<String> = (0..40_000).map(|i| format!("t{i}")).collect();
    let article_path = format!("/api/articles/{slug}");
    let comments_path = format!("{article_path}/comments");
    let mut v = vec![
        // Registration: every field with NUL, too long, wrong types, broken JSON.
        case("register username NUL", "POST", "/api/users", None, user(json!({"username": NUL, "email": "n1@example.com", "password": "password123"}))).want(422),
        case("register username long", "POST", "/api/users", None, user(json!({"username": long(65), "email": "n2@example.com", "password": "password123"}))).want(422),
        case("register email NUL", "POST", "/api/users", None, user(json!({"username": "n3", "email": NUL, "password": "password123"}))).want(422),
        case("register email long", "POST", "/api/users", None, user(json!({"username": "n4", "email": format!("{}@x.io", long(300)), "password": "password123"}))).want(422),
        case("register password NUL", "POST", "/api/users", None, user(json!({"username": "n5", "email": "n5@example.com", "password": NUL}))).want(422),
        case("register password long", "POST", "/api/users", None, user(json!({"username": "n6", "email": "n6@example.com", "password": long(300)}))).want(422),
        case("register username number", "POST", "/api/users", None, user(json!({"username": 5, "email": "n7@example.com", "password": "password123"}))).want(422),
        case("register user is a string", "POST", "/api/users", None, json!({"user": "alice"})).want(422),
        case("register user is null", "POST", "/api/users", None, json!({"user": null})).want(422),
        case("register root array", "POST", "/api/users", None, json!([1, 2])).want(422),
        case("register no user key", "POST", "/api/users", None, json!({"person": {}})).want(422),
        case("register broken JSON", "POST", "/api/users", None, Value::Null).raw(b"{\"user\": {", Some("application/json")).want(422),
        case("register trailing garbage", "POST", "/api/users", None, Value::Null).raw(b"{\"user\": {}} x", Some("application/json")).want(422),
        case("register no content type", "POST", "/api/users", None, Value::Null).raw(br#"{"user":{}}"#, None).want(415),
        case("register text/plain", "POST", "/api/users", None, Value::Null).raw(br#"{"user":{}}"#, Some("text/plain")).want(415),
        case("register 2 MiB body", "POST", "/api/users", None, Value::Null).raw(huge.as_bytes(), Some("application/json")).want(413),
        case("register invalid UTF-8", "POST", "/api/users", None, Value::Null).raw(b"{\"user\":{\"username\":\"\xff\xfe\"}}", Some("application/json")).want(422),
        case("register unicode", "POST", "/api/users", None, user(json!({"username": "ünïcødé 🎉", "email": "uni@example.com", "password": "password123"}))).want(201),
        case("register injection", "POST", "/api/users", None, user(json!({"username": INJECTION, "email": "inj@example.com", "password": "password123"}))).want(201),
        // Case-insensitive uniqueness and login.
        case("register username other case", "POST", "/api/users", None, user(json!({"username": "ALICE", "email": "alice2@example.com", "password": "password123"}))).want(409),
        case("register email other case", "POST", "/api/users", None, user(json!({"username": "alice3", "email": "ALICE@Example.com", "password": "password123"}))).want(409),
        case("login email other case", "POST", "/api/users/login", None, user(json!({"email": "Alice@EXAMPLE.com", "password": "password123"}))).want(200),
        case("login email NUL", "POST", "/api/users/login", None, user(json!({"email": NUL, "password": "password123"}))).want(422),
        case("login password long", "POST", "/api/users/login", None, user(json!({"email": "alice@example.com", "password": long(5000)}))).want(422),
        case("login injection", "POST", "/api/users/login", None, user(json!({"email": "' OR '1'='1", "password": "' OR '1'='1"}))).want(401),
        case("login wrong types", "POST", "/api/users/login", None, user(json!({"email": ["a"], "password": {}}))).want(422),
        // Profile updates.
        case("update bio NUL", "PUT", "/api/user", a, user(json!({"bio": NUL}))).want(422),
        case("update bio long", "PUT", "/api/user", a, user(json!({"bio": long(5000)}))).want(422),
        case("update image long", "PUT", "/api/user", a, user(json!({"image": long(3000)}))).want(422),
        case("update email NUL", "PUT", "/api/user", a, user(json!({"email": NUL}))).want(422),
        case("update username long", "PUT", "/api/user", a, user(json!({"username": long(100)}))).want(422),
        case("update username taken other case", "PUT", "/api/user", a, user(json!({"username": "BOB"}))).want(409),
        case("update bio wrong type", "PUT", "/api/user", a, user(json!({"bio": 42}))).want(422),
        case("update bio injection", "PUT", "/api/user", a, user(json!({"bio": INJECTION}))).want(200),
        // Tokens.
        case("token forged", "GET", "/api/user", Some(&forged), Value::Null).want(401),
        case("token expired", "GET", "/api/user", Some(&expired), Value::Null).want(401),
        case("token alg none", "GET", "/api/user", Some(&alg_none), Value::Null).want(401),
        case("token garbage", "GET", "/api/user", Some("abc.def.ghi"), Value::Null).want(401),
        case("token huge", "GET", "/api/user", Some(&long(8000)), Value::Null).want(401),
        case("token subject not a number", "GET", "/api/user", Some(&not_a_number), Value::Null).want(401),
        case("token of no user", "GET", "/api/user", Some(&nobody), Value::Null).want(401),
        case("token of no user, optional auth", "GET", "/api/articles", Some(&nobody), Value::Null).want(401),
        case("deleted user: current user", "GET", "/api/user", Some(ghost), Value::Null).want(401),
        case("deleted user: update", "PUT", "/api/user", Some(ghost), user(json!({"bio": "x"}))).want(401),
        case("deleted user: create article", "POST", "/api/articles", Some(ghost), art(json!({"title": "t", "description": "d", "body": "b"}))).want(401),
        case("deleted user: comment", "POST", &comments_path, Some(ghost), json!({"comment": {"body": "hi"}})).want(401),
        case("deleted user: favorite", "POST", &format!("{article_path}/favorite"), Some(ghost), Value::Null).want(401),
        case("deleted user: follow", "POST", "/api/profiles/alice/follow", Some(ghost), Value::Null).want(401),
        case("deleted user: feed", "GET", "/api/articles/feed", Some(ghost), Value::Null).want(401),
        case("deleted user: list", "GET", "/api/articles", Some(ghost), Value::Null).want(401),
        // Articles.
        case("article title NUL", "POST", "/api/articles", a, art(json!({"title": NUL, "description": "d", "body": "b"}))).want(422),
        case("article title long", "POST", "/api/articles", a, art(json!({"title": long(201), "description": "d", "body": "b"}))).want(422),
        case("article description long", "POST", "/api/articles", a, art(json!({"title": "t", "description": long(1001), "body": "b"}))).want(422),
        case("article body long", "POST", "/api/articles", a, art(json!({"title": "t", "description": "d", "body": long(100_001)}))).want(422),
        case("article body NUL", "POST", "/api/articles", a, art(json!({"title": "t", "description": "d", "body": NUL}))).want(422),
        case("article 21 tags", "POST", "/api/articles", a, art(json!({"title": "t", "description": "d", "body": "b", "tagList": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}))).want(422),
        case("article 40,000 tags", "POST", "/api/articles", a, art(json!({"title": "t", "description": "d", "body": "b", "tagList": many_tags}))).want(422),
        case("article tag NUL", "POST", "/api/articles", a, art(json!({"title": "t", "description": "d", "body": "b", "tagList": [NUL]}))).want(422),
        case("article tag long", "POST", "/api/articles", a, art(json!({"title": "t", "description": "d", "body": "b", "tagList": [long(65)]}))).want(422),
        case("article tagList a string", "POST", "/api/articles", a, art(json!({"title": "t", "description": "d", "body": "b", "tagList": "rust"}))).want(422),
        case("article tagList numbers", "POST", "/api/articles", a, art(json!({"title": "t", "description": "d", "body": "b", "tagList": [1, 2]}))).want(422),
        case("article title a number", "POST", "/api/articles", a, art(json!({"title": 1, "description": "d", "body": "b"}))).want(422),
        case("article unicode", "POST", "/api/articles", a, art(json!({"title": "Ünïcødé ✓ 标题 🎉", "description": "ß", "body": "ℝ", "tagList": ["ünï", "标签"]}))).want(201),
        case("article injection", "POST", "/api/articles", a, art(json!({"title": INJECTION, "description": INJECTION, "body": INJECTION, "tagList": [INJECTION]}))).want(201),
        case("article update title NUL", "PUT", &article_path, a, art(json!({"title": NUL}))).want(422),
        case("article update body long", "PUT", &article_path, a, art(json!({"body": long(100_001)}))).want(422),
        case("article update tags too many", "PUT", &article_path, a, art(json!({"tagList": (0..100).map(|i| format!("x{i}")).collect::<Vec<_>>()}))).want(422),
        case("article update 2 MiB", "PUT", &article_path, a, Value::Null).raw(format!(r#"{{"article":{{"body":"{}"}}}}"#, long(2 * 1024 * 1024)).as_bytes(), Some("application/json")).want(413),
        // Comments.
        case("comment NUL", "POST", &comments_path, a, json!({"comment": {"body": NUL}})).want(422),
        case("comment long", "POST", &comments_path, a, json!({"comment": {"body": long(10_001)}})).want(422),
        case("comment wrong type", "POST", &comments_path, a, json!({"comment": {"body": true}})).want(422),
        case("comment injection", "POST", &comments_path, a, json!({"comment": {"body": INJECTION}})).want(201),
        // Query parameters.
        case("list tag NUL", "GET", "/api/articles?tag=a%00b", None, Value::Null).want(422),
        case("list tag long", "GET", &format!("/api/articles?tag={}", long(65)), None, Value::Null).want(422),
        case("list author NUL", "GET", "/api/articles?author=%00", None, Value::Null).want(422),
        case("list author long", "GET", &format!("/api/articles?author={}", long(1000)), None, Value::Null).want(422),
        case("list favorited NUL", "GET", "/api/articles?favorited=x%00", None, Value::Null).want(422),
        case("list limit NUL", "GET", "/api/articles?limit=%00", None, Value::Null).want(422),
        case("list offset long", "GET", &format!("/api/articles?offset={}", "9".repeat(100)), None, Value::Null).want(422),
        case("list limit negative", "GET", "/api/articles?limit=-5", None, Value::Null).want(200),
        case("list limit not a number", "GET", "/api/articles?limit=abc&offset=1e9", None, Value::Null).want(200),
        case("list offset i64 max", "GET", "/api/articles?offset=9223372036854775807", None, Value::Null).want(200),
        case("list tag injection", "GET", "/api/articles?tag=%27%20OR%201%3D1%20--", None, Value::Null).want(200),
        case("list tag unicode", "GET", "/api/articles?tag=%E6%A0%87%E7%AD%BE", None, Value::Null).want(200),
        case("list tag invalid UTF-8", "GET", "/api/articles?tag=%FF%FE", None, Value::Null).want(200),
        case("list tag twice", "GET", "/api/articles?tag=a&tag=b", None, Value::Null).want(422),
        case("feed limit NUL", "GET", "/api/articles/feed?limit=%00", a, Value::Null).want(422),
        // Path segments.
        case("article slug NUL", "GET", "/api/articles/a%00b", None, Value::Null).want(404),
        case("article slug invalid UTF-8", "GET", "/api/articles/%FF%FE", None, Value::Null).want(400),
        case("article slug long", "GET", &format!("/api/articles/{}", long(5000)), None, Value::Null).want(404),
        case("article slug injection", "GET", "/api/articles/%27%3B%20DROP%20TABLE%20articles%3B--", None, Value::Null).want(404),
        case("delete slug NUL", "DELETE", "/api/articles/%00", a, Value::Null).want(404),
        case("favorite slug invalid UTF-8", "POST", "/api/articles/%C3%28/favorite", a, Value::Null).want(400),
        case("comments slug NUL", "GET", "/api/articles/%00/comments", None, Value::Null).want(404),
        case("comment id not a number", "DELETE", &format!("{comments_path}/abc"), a, Value::Null).want(404),
        case("comment id huge", "DELETE", &format!("{comments_path}/99999999999999999999999"), a, Value::Null).want(404),
        case("comment id negative", "DELETE", &format!("{comments_path}/-1"), a, Value::Null).want(404),
        case("comment id invalid UTF-8", "DELETE", &format!("{comments_path}/%FF"), a, Value::Null).want(400),
        case("profile NUL", "GET", "/api/profiles/%00", None, Value::Null).want(404),
        case("profile long", "GET", &format!("/api/profiles/{}", long(3000)), None, Value::Null).want(404),
        case("profile invalid UTF-8", "GET", "/api/profiles/%FF", None, Value::Null).want(400),
        case("follow NUL", "POST", "/api/profiles/a%00/follow", a, Value::Null).want(404),
        case("profile injection", "GET", "/api/profiles/%27%20OR%20%271%27%3D%271", None, Value::Null).want(404),
        // Methods and routes.
        case("PATCH user", "PATCH", "/api/user", a, json!({})).want(405),
        case("DELETE tags", "DELETE", "/api/tags", None, Value::Null).want(405),
        case("PUT articles", "PUT", "/api/articles", a, json!({})).want(405),
        case("unknown route", "GET", "/api/nothing/here", None, Value::Null).want(404),
        case("unknown route NUL", "GET", "/api/%00", None, Value::Null).want(404),
    ];
    // Our own comment, deleted by its id (a real one: 204).
    v.push(
        case(
            "comment delete",
            "DELETE",
            &format!("{comments_path}/{comment}"),
            a,
            Value::Null,
        )
        .want(204),
    );
    v
}

/// The error body shape: `{"errors": {"<key>": ["<message>", …]}}`, nothing else.
fn assert_error_shape(label: &str, body: &str) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{label}: {body}"));
    let errors = v["errors"]
        .as_object()
        .unwrap_or_else(|| panic!("{label}: {body}"));
    assert_eq!(v.as_object().unwrap().len(), 1, "{label}: {body}");
    for (key, messages) in errors {
        assert!(key.len() < 40, "{label}: {body}");
        for m in messages
            .as_array()
            .unwrap_or_else(|| panic!("{label}: {body}"))
        {
            assert!(m.as_str().is_some_and(|m| m.len() < 120), "{label}: {body}");
        }
    }
}

// covers: DI-01, DI-02
#[tokio::test]
async fn hostile_requests_get_4xx_in_the_api_shape_and_never_leak() {
    let db = TestDb::new().await.unwrap();
    conduit::db::migrate(db.engine()).await.unwrap();
    let mut conn = db.engine().connect().await.unwrap();
    let app = app(AppState::new(db.engine().clone(), SECRET));
    let alice = register(&app, "alice").await;
    register(&app, "bob").await;
    let ghost = register(&app, "ghost").await;
    conn.execute(&sql("DELETE FROM users WHERE username = 'ghost'"))
        .await
        .unwrap();
    drop(conn);
    let a = Some(alice.as_str());
    let (status, body, _) = send(
        &app,
        &case(
            "base article",
            "POST",
            "/api/articles",
            a,
            json!({"article": {"title": "Base", "description": "d", "body": "b", "tagList": ["base"]}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let slug = serde_json::from_str::<Value>(&body).unwrap()["article"]["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body, _) = send(
        &app,
        &case(
            "base comment",
            "POST",
            &format!("/api/articles/{slug}/comments"),
            a,
            json!({"comment": {"body": "first"}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let comment = serde_json::from_str::<Value>(&body).unwrap()["comment"]["id"]
        .as_i64()
        .unwrap();

    let cases = cases(&alice, &ghost, &slug, comment);
    assert!(cases.len() >= 60, "{} requests", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let (status, body, content_type) = send(&app, c).await;
        if status >= 500 || status != c.want {
            failures.push(format!("{}: {status} (want {}) {body}", c.label, c.want));
            continue;
        }
        if status >= 400 {
            assert_eq!(
                content_type.as_deref(),
                Some("application/json"),
                "{}",
                c.label
            );
            assert_error_shape(&c.label, &body);
            let lower = body.to_lowercase();
            for f in FORBIDDEN {
                assert!(!lower.contains(f), "{}: body leaks {f:?}: {body}", c.label);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // What was accepted was stored as sent, and the tables are all still there.
    let mut admin = db.admin().await.unwrap();
    let titles: Vec<String> = admin
        .query_as(&sql("SELECT title FROM articles ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(titles, ["Base", "Ünïcødé ✓ 标题 🎉", INJECTION]);
    let names: Vec<String> = admin
        .query_as(&sql("SELECT username FROM users ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(names, ["alice", "bob", "ünïcødé 🎉", INJECTION]);
    let bio: Option<String> = admin
        .query_one(&sql("SELECT bio FROM users WHERE username = 'alice'"))
        .await
        .unwrap();
    assert_eq!(bio.as_deref(), Some(INJECTION));
    let tags: i64 = admin
        .query_one(&sql("SELECT count(*) FROM tags"))
        .await
        .unwrap();
    assert_eq!(
        tags, 4,
        "base, the two unicode tags and the injection tag only"
    );
}

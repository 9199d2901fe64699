//! The router driven in-process (`tower::ServiceExt::oneshot`) against a schema of its own
//! (`aludel::testing::TestDb`), with aludel's statement recorder counting what each request
//! runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use aludel::testing::TestDb;
use aludel::{Generated, insert_many, select};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use conduit::models::{Article, ArticleTag, Favorite, Follow, Tag, User};
use conduit::{AppState, app};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

struct Harness {
    db: TestDb,
    state: AppState,
    app: Router,
}

async fn harness() -> Harness {
    let db = TestDb::new().await.unwrap();
    conduit::db::migrate(db.engine()).await.unwrap();
    let state = AppState::new(db.engine().clone(), b"test secret");
    let app = app(state.clone());
    Harness { db, state, app }
}

impl Harness {
    async fn request(&self, req: Request<Body>) -> (StatusCode, String, Option<String>) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            String::from_utf8(bytes.to_vec()).unwrap(),
            content_type,
        )
    }

    async fn get(&self, uri: &str, viewer: Option<i64>) -> (StatusCode, Value) {
        let mut req = Request::get(uri);
        if let Some(id) = viewer {
            let token = self.state.jwt.issue(id).unwrap();
            req = req.header(header::AUTHORIZATION, format!("Token {token}"));
        }
        let (status, body, _) = self.request(req.body(Body::empty()).unwrap()).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Token {t}"));
        }
        let (status, body, _) = self
            .request(req.body(Body::from(body.to_string())).unwrap())
            .await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Users straight into the table (no password hashing); returns their ids in order.
    async fn users(&self, names: &[&str]) -> Vec<i64> {
        let rows: Vec<User> = names
            .iter()
            .map(|n| User {
                id: Generated::unset(),
                username: (*n).to_owned(),
                email: format!("{n}@example.com"),
                password_hash: "not a hash".to_owned(),
                bio: None,
                image: None,
                created_at: Generated::unset(),
                updated_at: Generated::unset(),
            })
            .collect();
        self.db
            .engine()
            .all(&insert_many(&rows).returning(User::id))
            .await
            .unwrap()
    }

    /// `n` articles by `authors` in turn, each tagged `common` and `tag<i>`, favorited by
    /// `fans` when `i` is even.
    async fn articles(&self, start: usize, n: usize, authors: &[i64], fans: &[i64]) {
        let e = self.db.engine();
        let rows: Vec<Article> = (start..start + n)
            .map(|i| Article {
                id: Generated::unset(),
                slug: format!("article-{i}"),
                title: format!("Article {i}"),
                description: format!("about {i}"),
                body: format!("body {i}"),
                author_id: authors[i % authors.len()],
                created_at: Generated::unset(),
                updated_at: Generated::unset(),
                author: aludel::One::new(),
                tags: aludel::Many::new(),
            })
            .collect();
        let ids: Vec<i64> = e
            .all(&insert_many(&rows).returning(Article::id))
            .await
            .unwrap();
        let tags: Vec<Tag> = std::iter::once("common".to_owned())
            .chain((start..start + n).map(|i| format!("tag{i}")))
            .map(|name| Tag {
                id: Generated::unset(),
                name,
            })
            .collect();
        e.execute(&insert_many(&tags).on_conflict_do_nothing(Tag::name))
            .await
            .unwrap();
        let tag_ids: Vec<(String, i64)> = e.all(&select((Tag::name, Tag::id))).await.unwrap();
        let tag_id = |name: &str| tag_ids.iter().find(|(n, _)| n == name).unwrap().1;
        let mut links = Vec::new();
        let mut favs = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            let i = start + k;
            links.push(ArticleTag {
                article_id: *id,
                tag_id: tag_id("common"),
            });
            links.push(ArticleTag {
                article_id: *id,
                tag_id: tag_id(&format!("tag{i}")),
            });
            if i % 2 == 0 {
                favs.extend(fans.iter().map(|f| Favorite {
                    user_id: *f,
                    article_id: *id,
                }));
            }
        }
        e.execute(&insert_many(&links)).await.unwrap();
        if !favs.is_empty() {
            e.execute(&insert_many(&favs)).await.unwrap();
        }
    }

    /// Runs `GET uri` and returns the body and the statements it ran (transaction control
    /// included).
    async fn counted(&self, uri: &str, viewer: Option<i64>) -> (Value, Vec<String>) {
        let mark = self.db.recorder().len();
        let (status, body) = self.get(uri, viewer).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        (body, self.db.recorder().sql_since(mark))
    }
}

// covers: DI-01
#[tokio::test]
async fn listing_articles_runs_the_same_statements_for_1_and_25_articles() {
    let h = harness().await;
    let ids = h.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    h.db.engine()
        .execute(&insert_many(&[Follow {
            follower_id: bob,
            followee_id: alice,
        }]))
        .await
        .unwrap();

    h.articles(0, 1, &[alice], &[bob, carol]).await;
    let (one, one_sql) = h.counted("/api/articles", Some(bob)).await;
    let (_, one_anon) = h.counted("/api/articles", None).await;
    let (_, one_feed) = h.counted("/api/articles/feed", Some(bob)).await;
    assert_eq!(one["articlesCount"], 1);

    h.articles(1, 24, &[alice, carol], &[bob, carol]).await;
    let (many, many_sql) = h.counted("/api/articles?limit=25", Some(bob)).await;
    let (_, many_anon) = h.counted("/api/articles?limit=25", None).await;
    let (feed, many_feed) = h.counted("/api/articles/feed?limit=25", Some(bob)).await;

    println!(
        "GET /api/articles statements: 1 article → {}, 25 articles → {} (anonymous: {} → {}, feed: {} → {})",
        one_sql.len(),
        many_sql.len(),
        one_anon.len(),
        many_anon.len(),
        one_feed.len(),
        many_feed.len()
    );
    for s in &many_sql {
        println!("  {s}");
    }
    assert_eq!(one_sql.len(), many_sql.len(), "N+1: {many_sql:#?}");
    assert_eq!(one_anon.len(), many_anon.len(), "N+1: {many_anon:#?}");
    assert_eq!(one_feed.len(), many_feed.len(), "N+1: {many_feed:#?}");
    // The counts the README states: with a viewer, the viewer's row (the token's user must
    // exist), the page, tags, count, follows, favorite counts, the viewer's favorites, plus
    // BEGIN/COMMIT (count(*) is not a plain read, so the transaction opens); anonymous, the
    // page, tags, count, favorite counts, plus BEGIN/COMMIT.
    assert_eq!(many_sql.len(), 9, "{many_sql:#?}");
    assert_eq!(many_anon.len(), 6, "{many_anon:#?}");
    assert_eq!(many_feed.len(), 9, "{many_feed:#?}");

    // And the batched loads put the right data on every item.
    let articles = many["articles"].as_array().unwrap();
    assert_eq!(articles.len(), 25);
    assert_eq!(many["articlesCount"], 25);
    for a in articles {
        let n: usize = a["slug"].as_str().unwrap()["article-".len()..]
            .parse()
            .unwrap();
        assert!(a.get("body").is_none(), "list items carry no body");
        assert_eq!(
            a["tagList"],
            serde_json::json!(["common", format!("tag{n}")])
        );
        let author = if n % 2 == 0 { "alice" } else { "carol" };
        assert_eq!(a["author"]["username"], author);
        assert_eq!(a["author"]["following"], author == "alice");
        assert_eq!(a["favorited"], n % 2 == 0);
        assert_eq!(a["favoritesCount"], if n % 2 == 0 { 2 } else { 0 });
    }
    // Newest first, ties broken by id: the last inserted comes first.
    assert_eq!(articles[0]["slug"], "article-24");
    // The feed holds only alice's articles (13 of 25).
    assert_eq!(feed["articlesCount"], 13);
}

#[tokio::test]
async fn export_streams_every_article_as_ndjson() {
    let h = harness().await;
    let ids = h.users(&["writer"]).await;
    h.articles(0, 30, &ids, &[]).await;
    let (status, body, content_type) = h
        .request(
            Request::get("/api/articles/export")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/x-ndjson"));
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    assert_eq!(lines[0]["slug"], "article-0");
    assert_eq!(lines[0]["body"], "body 0");
    assert_eq!(lines[0]["author"], "writer");
    assert_eq!(lines[29]["tagList"], serde_json::json!(["common", "tag29"]));
}

#[tokio::test]
async fn a_write_flow_with_the_suite_status_codes() {
    let h = harness().await;
    let (status, body) = h
        .send(
            "POST",
            "/api/users",
            None,
            serde_json::json!({"user": {"username": "ann", "email": "ann@example.com", "password": "password123"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["bio"], Value::Null);
    let token = body["user"]["token"].as_str().unwrap().to_owned();

    let (status, body) = h
        .send(
            "POST",
            "/api/users",
            None,
            serde_json::json!({"user": {"username": "ann", "email": "other@example.com", "password": "password123"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["errors"]["username"][0], "has already been taken");

    let article = serde_json::json!({"article": {"title": "Hello", "description": "d", "body": "b", "tagList": ["z", "a"]}});
    let (status, created) = h
        .send("POST", "/api/articles", Some(&token), article.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["article"]["tagList"], serde_json::json!(["a", "z"]));
    let (status, second) = h.send("POST", "/api/articles", Some(&token), article).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(created["article"]["slug"], second["article"]["slug"]);

    let slug = created["article"]["slug"].as_str().unwrap().to_owned();
    let (status, updated) = h
        .send(
            "PUT",
            &format!("/api/articles/{slug}"),
            Some(&token),
            serde_json::json!({"article": {"body": "new"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        updated["article"]["createdAt"],
        created["article"]["createdAt"]
    );
    assert_ne!(
        updated["article"]["updatedAt"],
        created["article"]["updatedAt"]
    );
    assert_eq!(updated["article"]["tagList"], serde_json::json!(["a", "z"]));

    let (status, body) = h
        .send(
            "PUT",
            &format!("/api/articles/{slug}"),
            Some(&token),
            serde_json::json!({"article": {"tagList": null}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A new title gives a new slug; taking the other article's title gives a suffixed one.
    let (status, renamed) = h
        .send(
            "PUT",
            &format!("/api/articles/{slug}"),
            Some(&token),
            serde_json::json!({"article": {"title": "Brand New"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["article"]["slug"], "brand-new");
    let other = second["article"]["slug"].as_str().unwrap().to_owned();
    let (status, clash) = h
        .send(
            "PUT",
            &format!("/api/articles/{other}"),
            Some(&token),
            serde_json::json!({"article": {"title": "Brand New"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{clash}");
    let clash_slug = clash["article"]["slug"].as_str().unwrap();
    assert!(clash_slug.starts_with("brand-new-"), "{clash_slug}");
    let slug = "brand-new".to_owned();

    // Without a token: 401 before the missing article's 404.
    let (status, body) = h
        .send("DELETE", "/api/articles/nope/comments/1", None, Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"]["token"][0], "is missing");

    let (status, _) = h
        .send(
            "DELETE",
            &format!("/api/articles/{slug}"),
            Some(&token),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h.get(&format!("/api/articles/{slug}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"]["article"][0], "not found");
}

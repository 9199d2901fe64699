use std::sync::{Arc, Mutex};
use std::time::Duration;

use aludel::sql;
use aludel::testing::TestDb;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// (target, span name or `event:LEVEL`, recorded fields)
type Seen = (String, String, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);
impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let m = attrs.metadata();
        self.0
            .lock()
            .unwrap()
            .push((m.target().to_owned(), m.name().to_owned(), fields));
    }
    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        values.record(&mut Fields(&mut fields));
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.2.extend(fields);
        }
    }
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let m = event.metadata();
        self.0.lock().unwrap().push((
            m.target().to_owned(),
            format!("event:{}", m.level()),
            fields,
        ));
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

// covers: ENG-16
#[tokio::test(flavor = "current_thread")]
async fn each_statement_gets_a_span_with_otel_fields_and_slow_ones_warn() {
    let db = TestDb::new().await.unwrap();
    let engine = db
        .engine_builder()
        .slow_statement_threshold(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    // Another test's thread may have registered the engine's callsites while no subscriber
    // wanted them; recompute their interest now that this thread's subscriber exists.
    tracing::callsite::rebuild_interest_cache();

    engine
        .query(&sql("SELECT $1::text AS secret").bind("hunter2"))
        .await
        .unwrap();
    engine.execute(&sql("SELECT pg_sleep(0.1)")).await.unwrap();

    let seen = capture.0.lock().unwrap().clone();
    let spans: Vec<_> = seen
        .iter()
        .filter(|(t, n, _)| t == "aludel::query" && n == "db.query")
        .collect();
    assert_eq!(spans.len(), 2, "{seen:#?}");
    let first = &spans[0].2;
    assert_eq!(field(first, "db.system"), Some("postgresql"));
    assert_eq!(field(first, "db.operation"), Some("SELECT"));
    assert_eq!(
        field(first, "db.statement"),
        Some("SELECT $1::text AS secret")
    );
    assert_eq!(field(first, "otel.kind"), Some("client"));
    assert_eq!(field(first, "db.rows"), Some("1"));
    assert!(field(first, "elapsed_ms").is_some());
    assert!(
        !format!("{seen:?}").contains("hunter2"),
        "a bound value reached the trace"
    );

    let slow: Vec<_> = seen
        .iter()
        .filter(|(t, n, _)| t == "aludel::query::slow" && n == "event:WARN")
        .collect();
    assert_eq!(slow.len(), 1, "{seen:#?}");
    assert_eq!(field(&slow[0].2, "statement"), Some("SELECT pg_sleep(0.1)"));
}

//! aludel's tracing spans and pool metrics through OpenTelemetry, printed to stdout.
//!
//! Every statement is a `db.query` span on target `aludel::query` with OpenTelemetry's
//! field names (`db.system`, `db.operation`, `db.statement`, `otel.kind = client`, rows,
//! elapsed, error); `tracing-opentelemetry` turns them into OTel spans, children of the
//! application's own span. Pool state becomes OTel gauges named after the semantic
//! conventions' `db.client.connection.*`. Swap the stdout exporters for OTLP ones in a service.
//!
//!     cargo run --example observability --features testing
//!
//! Uses DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster.

#![allow(clippy::print_stdout)]

use aludel::{Engine, sql};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let traces = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    let metrics = SdkMeterProvider::builder()
        .with_periodic_exporter(opentelemetry_stdout::MetricExporter::default())
        .build();
    // aludel's spans are DEBUG: the layer without a filter exports them all.
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(traces.tracer("aludel-example")));
    tracing::subscriber::set_global_default(subscriber)?;

    let engine = Engine::builder(&aludel::testing::database_url())
        .max_size(4)
        .application_name("aludel-observability")
        .build()?;

    // Pool gauges, read from the engine whenever the metrics are collected.
    let meter = metrics.meter("aludel");
    let e = engine.clone();
    let _connections = meter
        .u64_observable_gauge("db.client.connection.count")
        .with_callback(move |gauge| {
            let s = e.pool_status();
            let pool = KeyValue::new("db.client.connection.pool.name", "aludel-observability");
            gauge.observe(
                s.idle as u64,
                &[
                    pool.clone(),
                    KeyValue::new("db.client.connection.state", "idle"),
                ],
            );
            gauge.observe(
                s.in_use as u64,
                &[pool, KeyValue::new("db.client.connection.state", "used")],
            );
        })
        .build();
    let e = engine.clone();
    let _created = meter
        .u64_observable_counter("aludel.pool.connections_created")
        .with_callback(move |c| c.observe(e.metrics().connections_created, &[]))
        .build();

    // The application's span: the statements below become its children in the trace.
    async {
        let n: i64 = engine
            .query_one(&sql("SELECT count(*) FROM pg_class"))
            .await?;
        let mut conn = engine.connect().await?;
        conn.begin().await?;
        conn.execute(&sql("SELECT pg_sleep(0.01)")).await?;
        conn.commit().await?;
        let failed = engine.execute(&sql("SELECT 1 / 0")).await; // an error span
        println!("pg_class rows: {n}; division error: {}", failed.is_err());
        Ok::<_, aludel::Error>(())
    }
    .instrument(tracing::info_span!("report"))
    .await?;

    metrics.force_flush()?; // collect the gauges once now
    engine.close();
    traces.shutdown()?;
    metrics.shutdown()?;
    Ok(())
}

//! Logs, traces and the metrics/health HTTP endpoint.
//!
//! Logs go to stderr (`CANDOR_LOG` filter, default `warn` for the one-shot
//! commands and `info` for services). When `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set, spans are also exported over OTLP/gRPC.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes exported spans when dropped.
pub struct Guard(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.shutdown();
        }
    }
}

/// Sets up logging, and trace export if configured. Needs a tokio runtime
/// when exporting.
pub fn init(service: &'static str, default_filter: &str) -> Guard {
    let filter = match std::env::var("CANDOR_LOG") {
        Ok(f) if !f.trim().is_empty() => match tracing_subscriber::EnvFilter::builder().parse(&f) {
            Ok(filter) => filter,
            Err(e) => {
                eprintln!(
                    "error: CANDOR_LOG `{f}` is not a log filter (such as info, or warn,candor_worker=debug): {e}"
                );
                std::process::exit(crate::exit::BAD_INPUT);
            }
        },
        _ => tracing_subscriber::EnvFilter::new(default_filter),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        registry.init();
        return Guard(None);
    }
    use opentelemetry::trace::TracerProvider as _;
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_tonic().build() {
        Ok(e) => e,
        Err(e) => {
            registry.init();
            tracing::error!(error = %e, "OTLP trace export is off: cannot build the exporter");
            return Guard(None);
        }
    };
    let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
        exporter,
        opentelemetry_sdk::runtime::Tokio,
    )
    .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    let tracer = provider.tracer("candor");
    registry.with(tracing_opentelemetry::layer().with_tracer(tracer)).init();
    Guard(Some(provider))
}

type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

/// The content type of `/metrics`: the OpenMetrics text that the crates'
/// registries encode (prometheus-client's `encoding::text`), which
/// Prometheus asks for first when it scrapes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the HTTP endpoint serves.
pub struct Endpoints {
    /// The registry's OpenMetrics text.
    pub metrics: Probe,
    /// Ok when the service can do its work; the error says why not.
    pub ready: Probe,
    /// The backlog as JSON at `/queue` (the coordinator's, for autoscalers).
    pub queue: Option<Probe>,
    /// The live web view's routes, under `/view` (the coordinator's).
    pub view: Option<axum::Router>,
}

/// A GET route answering `probe`'s text with `content_type`, or 503 with its error.
fn text_route(probe: Probe, content_type: &'static str) -> axum::routing::MethodRouter {
    use axum::http::StatusCode;
    axum::routing::get(move || {
        let probe = probe.clone();
        async move {
            match probe().await {
                Ok(text) => (StatusCode::OK, [("content-type", content_type)], text),
                Err(e) => (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "text/plain")], e),
            }
        }
    })
}

/// Serves `/metrics`, `/healthz`, `/readyz` (and `/queue` and `/view` when given) on `listener`.
pub async fn serve_http(listener: tokio::net::TcpListener, e: Endpoints) {
    let mut app = axum::Router::new()
        .route("/metrics", text_route(e.metrics, OPENMETRICS))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/readyz", text_route(e.ready, "text/plain"));
    if let Some(queue) = e.queue {
        app = app.route("/queue", text_route(queue, "application/json"));
    }
    if let Some(view) = e.view {
        app = app.merge(view);
    }
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "http endpoint stopped");
    }
}

/// Binds `addr`, naming the flag in the error.
pub async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{flag} {addr}: cannot listen: {e}"))
}

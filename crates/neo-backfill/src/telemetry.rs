//! Logs and traces. Logs are JSON lines (stdout for `serve` and `worker`, stderr for the
//! operator's commands, whose stdout is their answer); traces go over OTLP/HTTP (JSON) when
//! `--otlp-endpoint` is set.
//!
//! Two layers with filters of their own share one registry. The log layer keeps `NEO_LOG` and
//! is never shown the service's own spans: a log line is the same with traces on or off, and no
//! span is rendered to JSON for a log that does not print it. The trace layer takes spans only,
//! of the `neo_*` crates, at info whatever `NEO_LOG` says: no dependency's spans (sqlx, hyper),
//! and no events, which may quote an upstream error with its URL.
//!
//! Exporting must never slow the service or take it down: ended spans go to a bounded queue
//! (full, it drops them) drained by the SDK's batch thread, whose HTTP calls run on the
//! service's tokio runtime; no request or dispatch waits for them. A failing collector is
//! logged once, at warn, and again only after it recovered. Dropping the [`Guard`] at exit
//! sends what is queued, within a bound, so the spans of a SIGTERM shutdown are not lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing::Metadata;
use tracing_subscriber::filter::{filter_fn, FilterExt, FilterFn, LevelFilter};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::args::{redact_url, TelemetryArgs};

/// One export attempt, retries included (the batch thread waits for it, not the service).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long exit waits for the last spans to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// Keeps the telemetry pipeline alive; dropping it flushes what is buffered.
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                tracing::warn!(error = %e, "traces: the last spans may not have been sent");
            }
        }
    }
}

/// Installs the global subscriber. `telemetry` is `None` for commands that have no traces.
pub fn init(to_stdout: bool, telemetry: Option<&TelemetryArgs>) -> anyhow::Result<Guard> {
    let endpoint = telemetry.and_then(|t| t.otlp_endpoint.as_deref());
    let provider = endpoint.map(tracer_provider).transpose()?;
    let writer = if to_stdout {
        BoxMakeWriter::new(std::io::stdout)
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    match &provider {
        // Traces: two layers with filters of their own (per-layer filtering).
        Some(p) => tracing_subscriber::registry()
            .with(log_layer(writer))
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(p.tracer("neo-backfill"))
                    .with_location(false)
                    .with_target(false)
                    .with_threads(false)
                    .with_tracked_inactivity(false)
                    .with_context_activation(false)
                    .with_filter(traces_filter()),
            )
            .try_init(),
        // No traces: global filters only. A lone per-layer-filtered layer was seen to drop
        // an event (`serve`'s "listening" line, after a `log` crate's enabled check on the
        // same thread), so the default setup keeps to what the log lines always used.
        None => logs_only(writer).try_init(),
    }
    .context("installing the log subscriber")?;
    if let Some(e) = endpoint {
        tracing::info!(endpoint = %redact_url(e), "exporting traces over OTLP/HTTP");
    }
    Ok(Guard { provider })
}

/// `NEO_LOG`, or the default.
fn log_filter() -> EnvFilter {
    EnvFilter::try_from_env("NEO_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
}

/// The JSON log lines.
fn json_lines<S>(writer: BoxMakeWriter) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .log_internal_errors(true)
        .with_writer(writer)
}

/// Without traces: the JSON log lines behind `NEO_LOG` and a second global filter that turns
/// the service's own spans off where they are created (the dispatch hot path pays one load).
fn logs_only(writer: BoxMakeWriter) -> impl tracing::Subscriber + Send + Sync {
    let filter = log_filter();
    let hint = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    tracing_subscriber::registry()
        .with(filter)
        .with(filter_fn(|m| !own_span(m)).with_max_level_hint(hint))
        .with(json_lines(writer))
}

/// With traces: the JSON log lines filtered by `NEO_LOG` as ever, and never shown the
/// service's own spans (those are the trace layer's).
fn log_layer<S>(writer: BoxMakeWriter) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // The hint keeps `NEO_LOG`'s as the log layer's (a filter without one would lift the
    // process-wide maximum level to trace).
    let not_ours = filter_fn(|m| !own_span(m)).with_max_level_hint(LevelFilter::TRACE);
    json_lines(writer).with_filter(log_filter().and(not_ours))
}

/// A span of the service's own crates (`neo_api`, `neo_orchestrator`, ...).
fn own_span(m: &Metadata<'_>) -> bool {
    m.is_span() && m.target().starts_with("neo_")
}

/// What the trace layer takes: the service's own spans at info or above, whatever `NEO_LOG`.
fn traces_filter() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    let exported: fn(&Metadata<'_>) -> bool = |m| own_span(m) && *m.level() <= tracing::Level::INFO;
    filter_fn(exported).with_max_level_hint(LevelFilter::INFO)
}

fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = traces_url(endpoint)?;
    let rt = tokio::runtime::Handle::try_current().context("traces need the tokio runtime")?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(EXPORT_TIMEOUT)
        .build()
        .context("building the OTLP HTTP client")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OnRuntime { http, rt })
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("building the OTLP span exporter")?;
    // Queue size, batch size and delay: the SDK's defaults (2048, 512, 5 s), or the standard
    // `OTEL_BSP_*` variables.
    let processor = BatchSpanProcessor::builder(Quiet {
        inner: exporter,
        failing: AtomicBool::new(false),
    })
    .build();
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("neo-backfill");
    }
    let resource = resource
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// `--otlp-endpoint` is the collector's base URL (`http://host:4318`); the traces path is
/// added unless it is there already.
fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let e = endpoint.trim().trim_end_matches('/');
    if !(e.starts_with("http://") || e.starts_with("https://")) || e.contains(char::is_whitespace) {
        bail!(
            "--otlp-endpoint must be an http(s) URL, such as http://127.0.0.1:4318 (got {})",
            redact_url(endpoint)
        );
    }
    Ok(if e.ends_with("/v1/traces") {
        e.to_owned()
    } else {
        format!("{e}/v1/traces")
    })
}

/// The async reqwest client, run on the service's runtime: the SDK's batch thread has no
/// reactor of its own and only waits for the answer.
#[derive(Debug)]
struct OnRuntime {
    http: reqwest::Client,
    rt: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        match self
            .rt
            .spawn(async move { http.send_bytes(request).await })
            .await
        {
            // reqwest's errors quote the URL, which may hold credentials: never in a log.
            Ok(r) => r.map_err(|e| match e.downcast::<reqwest::Error>() {
                Ok(e) => Box::new(e.without_url()) as HttpError,
                Err(e) => e,
            }),
            Err(e) => Err(format!("the export task ended: {e}").into()),
        }
    }
}

/// Logs the first failed export at warn and the recovery at info; nothing per span or batch.
#[derive(Debug)]
struct Quiet<E> {
    inner: E,
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for Quiet<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let r = self.inner.export(batch).await;
        match &r {
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                error = %e,
                spans = n,
                "traces: export failed; spans are dropped until the collector answers (logged once)"
            ),
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("traces: export works again")
            }
            _ => {}
        }
        r
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn traces_url_adds_the_path_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318/").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/v1/traces").unwrap(),
            "https://otel.example/v1/traces"
        );
        let err = traces_url("ftp://u:hunter2@h").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    /// The log lines written by a test's subscriber.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Stands for the trace layer: the names of the spans it was shown.
    struct Seen(Arc<Mutex<Vec<&'static str>>>);

    impl<S: tracing::Subscriber> Layer<S> for Seen {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.lock().unwrap().push(attrs.metadata().name());
        }
    }

    fn spans_and_events() {
        let span =
            tracing::info_span!(target: "neo_orchestrator::dispatch", "own", backfill.id = "bf_1");
        span.in_scope(|| tracing::warn!(target: "neo_orchestrator", "inside"));
        let _ = tracing::info_span!(target: "sqlx::query", "dependency");
        let _ = tracing::debug_span!(target: "neo_api", "own.debug");
    }

    /// Without an endpoint the service's spans are disabled at their call site (the dispatch
    /// hot path pays one load), and the log layer still takes its events, unchanged.
    #[test]
    fn own_spans_are_off_without_traces() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = logs_only(BoxMakeWriter::new(move || w.clone()));
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!(target: "neo_orchestrator::dispatch", "t.span");
            assert!(span.is_disabled());
            assert!(!tracing::span_enabled!(target: "neo_api", tracing::Level::INFO));
            assert!(tracing::event_enabled!(target: "neo_orchestrator", tracing::Level::INFO));
            spans_and_events();
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            out.contains("inside") && !out.contains("spans") && !out.contains("bf_1"),
            "{out}"
        );
    }

    /// With traces, the trace layer is shown the service's own info spans and nothing else,
    /// and the log lines stay the same.
    #[test]
    fn only_own_spans_are_traced() {
        let buf = Buf::default();
        let w = buf.clone();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry()
            .with(log_layer(BoxMakeWriter::new(move || w.clone())))
            .with(Seen(seen.clone()).with_filter(traces_filter()));
        tracing::subscriber::with_default(sub, spans_and_events);
        assert_eq!(*seen.lock().unwrap(), ["own"]);
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            out.contains("inside") && !out.contains("spans") && !out.contains("bf_1"),
            "{out}"
        );
    }
}

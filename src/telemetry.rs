//! Builds the tracing subscriber: logs (a fmt layer, human-readable or JSON, behind its own
//! filter, `RUST_LOG`, default `info`) and, when an OTLP endpoint is configured,
//! OpenTelemetry traces exported over OTLP/gRPC (over TLS to an `https` endpoint).
//!
//! Each layer has its own filter, so `RUST_LOG` only decides which log lines are written:
//! at `warn`, or `off`, every call is still traced. The OpenTelemetry layer takes the
//! service's own spans (target `cxmetrics`, INFO and above: the RPC, its phases and its
//! database statements), whatever `RUST_LOG` says; which of those are exported is the
//! sampler's business (`OTEL_TRACES_SAMPLER`). Spans of other crates (h2, hyper, tonic, the
//! exporter itself) never reach the exporter, so exporting cannot feed on itself.
//!
//! A span exists when some layer wants it: without an exporter and with `RUST_LOG=warn`,
//! INFO spans are not even created, so a quiet service pays nothing for them.
//!
//! Export never slows a call down: finished spans go to a bounded queue that a batch task on
//! the tokio runtime drains; when the collector is down or slow the queue fills and further
//! spans are dropped, with one warning. Without an endpoint there is no exporter at all.

use std::{fmt, time::Duration};

use anyhow::Context as _;
use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::{
    Resource, runtime,
    trace::{SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing::{Event, Level, Metadata, Subscriber, span, subscriber::Interest};
use tracing_opentelemetry::OtelData;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{LevelFilter, Targets},
    fmt::{
        FmtContext, FormatEvent, FormatFields, MakeWriter,
        format::{DefaultFields, Format, Writer},
    },
    layer::{self, Filter},
    prelude::*,
    registry::LookupSpan,
};

use crate::config::{LogFormat, OtlpSettings};

/// The filter of the logs when `RUST_LOG` is not set. sqlx logs PostgreSQL's notices at
/// INFO; the migrator's "relation already exists, skipping" is not worth a line.
const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// The longest the exporter may take to send its last spans at exit.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The installed telemetry; call [`Telemetry::shutdown`] before the process exits so that
/// the last spans are exported.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs the global subscriber, exporting spans as `otlp` says when it is given.
/// Call once, first thing in `main`, inside the tokio runtime.
pub fn init(format: LogFormat, otlp: Option<&OtlpSettings>) -> anyhow::Result<Telemetry> {
    let provider = otlp.map(otlp_provider).transpose()?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs = log_layer(
        format,
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr),
    );
    subscriber(logs, filter, provider.as_ref())
        .try_init()
        .context("installing the tracing subscriber")?;
    Ok(Telemetry { provider })
}

/// The log layer: `fmt` writing one line per event, in `format`.
fn log_layer<W>(
    format: LogFormat,
    fmt: tracing_subscriber::fmt::Layer<Registry, DefaultFields, Format, W>,
) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => fmt
            .event_format(WithTraceIds::json(
                tracing_subscriber::fmt::format()
                    .json()
                    .with_current_span(true),
            ))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .boxed(),
        LogFormat::Text => fmt
            .event_format(WithTraceIds::text(tracing_subscriber::fmt::format()))
            .boxed(),
    }
}

/// The logs behind their own `filter`, beside the OpenTelemetry layer of `provider` behind
/// its own: neither filter decides what the other layer sees.
fn subscriber(
    logs: Box<dyn Layer<Registry> + Send + Sync>,
    filter: EnvFilter,
    provider: Option<&SdkTracerProvider>,
) -> impl Subscriber + Send + Sync + for<'a> LookupSpan<'a> + use<> {
    tracing_subscriber::registry()
        .with(logs.with_filter(Evaluated(filter)))
        .with(provider.map(otel_layer))
}

/// A per-layer filter that decides exactly as `F` does, but never lets a callsite's interest
/// be cached as `always`. tracing-subscriber (0.3.23) skips the filter pass of a callsite that
/// every per-layer filter always wants, and its layers then act on the enabled bits that the
/// thread's previous pass left behind; a pass that every filter rejected does not reset them,
/// so the next such event or span could vanish from every layer: with
/// `RUST_LOG=cxmetrics=info` and an exporter, "cxmetrics listening" was never written. Asking
/// each time costs one filter check per enabled callsite hit; callsites no layer wants are
/// still rejected once, at registration.
struct Evaluated<F>(F);

impl<S, F: Filter<S>> Filter<S> for Evaluated<F> {
    fn enabled(&self, metadata: &Metadata<'_>, cx: &layer::Context<'_, S>) -> bool {
        self.0.enabled(metadata, cx)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        match self.0.callsite_enabled(metadata) {
            interest if interest.is_always() => Interest::sometimes(),
            interest => interest,
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &layer::Context<'_, S>) -> bool {
        self.0.event_enabled(event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: layer::Context<'_, S>) {
        self.0.on_new_span(attrs, id, cx)
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: layer::Context<'_, S>) {
        self.0.on_record(id, values, cx)
    }

    fn on_enter(&self, id: &span::Id, cx: layer::Context<'_, S>) {
        self.0.on_enter(id, cx)
    }

    fn on_exit(&self, id: &span::Id, cx: layer::Context<'_, S>) {
        self.0.on_exit(id, cx)
    }

    fn on_close(&self, id: span::Id, cx: layer::Context<'_, S>) {
        self.0.on_close(id, cx)
    }
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter, waiting at most
    /// [`SHUTDOWN_TIMEOUT`]. A collector that does not answer in time loses those spans.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let (done, result) = tokio::sync::oneshot::channel();
        // The flush blocks its thread while the runtime performs the export; a plain thread
        // (not the blocking pool, which the runtime waits for at exit) cannot hold up the exit.
        std::thread::spawn(move || {
            let _ = done.send(provider.shutdown());
        });
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, result).await {
            Ok(Ok(Ok(()))) => tracing::debug!("trace exporter flushed"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "could not flush the trace exporter"),
            Ok(Err(_)) => tracing::warn!("the trace exporter stopped without a result"),
            Err(_) => tracing::warn!(
                timeout = ?SHUTDOWN_TIMEOUT,
                "the trace exporter did not flush in time; its last spans are lost"
            ),
        }
    }
}

/// A tracer provider that batches spans and exports them over OTLP/gRPC, over TLS to an
/// `https` endpoint.
///
/// Sampling follows `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (parent-based,
/// always on, by default) and the batch queue `OTEL_BSP_*`, as the SDK reads them.
fn otlp_provider(otlp: &OtlpSettings) -> anyhow::Result<SdkTracerProvider> {
    let mut builder = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&otlp.endpoint);
    if let Some(tls) = &otlp.tls {
        builder = builder.with_tls_config(tls.clone());
    }
    let exporter = builder
        .build()
        .with_context(|| format!("building the OTLP exporter for {}", otlp.endpoint))?;
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource())
        .build())
}

/// `service.name` from `OTEL_SERVICE_NAME` (or `OTEL_RESOURCE_ATTRIBUTES`), `cxmetrics`
/// when neither names it, and `service.version`.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let unnamed = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_none_or(|name| name.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if unnamed {
        builder = builder.with_service_name("cxmetrics");
    }
    builder.build()
}

/// The layer that turns the service's spans (target `cxmetrics`, INFO and above) into
/// OpenTelemetry spans of `provider`.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("cxmetrics"))
        // Per-span bookkeeping that nobody debugging a call needs.
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_filter(Evaluated(
            Targets::new().with_target("cxmetrics", Level::INFO),
        ))
}

/// An event format that adds the trace and span ids of the current span, when it is traced,
/// so that a log line leads to its trace: as `trace_id` and `span_id` keys of the JSON
/// object, or appended to the text line.
pub struct WithTraceIds<F> {
    inner: F,
    json: bool,
}

impl<F> WithTraceIds<F> {
    pub fn json(inner: F) -> Self {
        Self { inner, json: true }
    }

    pub fn text(inner: F) -> Self {
        Self { inner, json: false }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Inside a subscriber callback `Span::current()` is unavailable: look the event's
        // spans up in the registry, innermost first, for one the OpenTelemetry layer traces.
        let ids = ctx.event_scope().and_then(|mut scope| {
            scope.find_map(|span| {
                let extensions = span.extensions();
                let data = extensions.get::<OtelData>()?;
                Some((data.trace_id()?, data.span_id()?))
            })
        });
        let Some((trace_id, span_id)) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let line = line.trim_end_matches('\n');
        match line.strip_suffix('}') {
            Some(object) if self.json => writeln!(
                writer,
                r#"{object},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#
            ),
            _ => writeln!(writer, "{line} trace_id={trace_id} span_id={span_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::trace::InMemorySpanExporter;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::*;

    /// Collects everything written to it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// The log layer of `format` writing to `captured`, without colours.
    fn logs(format: LogFormat, captured: &Captured) -> Box<dyn Layer<Registry> + Send + Sync> {
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(captured.clone())
            .with_ansi(false);
        log_layer(format, fmt)
    }

    /// Logs one event inside a traced span; returns the output and the span's ids.
    fn log_in_a_span(format: LogFormat) -> (String, String, String) {
        let provider = SdkTracerProvider::builder().build();
        let captured = Captured::default();
        let subscriber = subscriber(
            logs(format, &captured),
            EnvFilter::new("info"),
            Some(&provider),
        );
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            tracing::info!(rows = 3, "done");
            let context = span.context();
            let ids = context.span().span_context().clone();
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        (captured.text(), trace_id, span_id)
    }

    #[test]
    fn a_json_log_line_carries_the_trace_and_span_ids_as_keys() {
        let (output, trace_id, span_id) = log_in_a_span(LogFormat::Json);
        let line: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
        assert_eq!(line["trace_id"], trace_id.as_str(), "{output}");
        assert_eq!(line["span_id"], span_id.as_str(), "{output}");
        assert_eq!(line["fields"]["message"], "done");
        assert_ne!(trace_id, opentelemetry::TraceId::INVALID.to_string());
    }

    #[test]
    fn a_text_log_line_ends_with_the_trace_and_span_ids() {
        let (output, trace_id, span_id) = log_in_a_span(LogFormat::Text);
        assert!(
            output.ends_with(&format!(" trace_id={trace_id} span_id={span_id}\n")),
            "{output}"
        );
        assert!(output.contains("done rows=3"), "{output}");
    }

    #[test]
    fn a_log_line_outside_any_span_is_left_alone() {
        let captured = Captured::default();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = subscriber(
            logs(LogFormat::Text, &captured),
            EnvFilter::new("info"),
            Some(&provider),
        );
        tracing::subscriber::with_default(subscriber, || tracing::info!("alone"));
        let output = captured.text();
        assert!(output.ends_with("alone\n"), "{output}");
    }

    #[test]
    fn a_quiet_log_filter_hides_log_lines_but_every_service_span_is_still_traced() {
        for quiet in ["warn", "off"] {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let captured = Captured::default();
            let subscriber = subscriber(
                logs(LogFormat::Text, &captured),
                EnvFilter::new(quiet),
                Some(&provider),
            );
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("work");
                let _entered = span.enter();
                tracing::debug_span!("detail").in_scope(|| tracing::info!("done"));
                tracing::warn!("slow");
            });
            let names: Vec<_> = exporter
                .get_finished_spans()
                .unwrap()
                .into_iter()
                .map(|span| span.name)
                .collect();
            assert_eq!(names, ["work"], "RUST_LOG={quiet}");
            let output = captured.text();
            assert!(!output.contains("done"), "RUST_LOG={quiet}: {output}");
            assert_eq!(output.contains("slow"), quiet == "warn", "{output}");
        }
    }

    #[test]
    fn without_an_exporter_a_span_below_the_log_level_is_never_created() {
        let captured = Captured::default();
        let subscriber = subscriber(
            logs(LogFormat::Text, &captured),
            EnvFilter::new("warn"),
            None,
        );
        tracing::subscriber::with_default(subscriber, || {
            assert!(tracing::info_span!("work").is_disabled());
            assert!(!tracing::warn_span!("trouble").is_disabled());
        });
    }
}

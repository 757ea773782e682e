//! The span trees of calls, read from the SDK's in-memory exporter. One subscriber and
//! provider serve the whole test binary; each test finds its own spans by trace id (every
//! call sends its own `traceparent`), so tests run in parallel without seeing each other's.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use cxmetrics::proto::{
    self as pb, import_records_request::Record, metrics_service_client::MetricsServiceClient,
};
use opentelemetry::{
    Value,
    trace::{SpanId, SpanKind, Status, TraceId},
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tonic::{Code, Request, service::interceptor::InterceptedService, transport::Channel};
use tracing_subscriber::prelude::*;

use crate::helpers::*;

/// The exporter behind the global subscriber, installed on first use.
static EXPORTER: LazyLock<(InMemorySpanExporter, SdkTracerProvider)> = LazyLock::new(|| {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(cxmetrics::telemetry::otel_layer(&provider))
        .init();
    (exporter, provider)
});

/// A calling service's span: its context goes with every request as `traceparent`.
struct Caller {
    trace_id: TraceId,
    span_id: SpanId,
}

impl Caller {
    fn new() -> Self {
        LazyLock::force(&EXPORTER);
        Self {
            trace_id: TraceId::from_bytes(rand::random()),
            span_id: SpanId::from_bytes(rand::random()),
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let traceparent = format!("00-{}-{}-01", self.trace_id, self.span_id);
        let metadata = request.metadata_mut();
        metadata.insert("traceparent", traceparent.parse().unwrap());
        metadata.insert("tracestate", "caller=abc".parse().unwrap());
        request
    }

    /// The spans of this caller's trace, once `server_spans` SERVER spans have ended.
    async fn trace(&self, server_spans: usize) -> Trace {
        let trace_id = self.trace_id;
        wait_for(
            |span| span.span_context.trace_id() == trace_id,
            server_spans,
        )
        .await
    }
}

/// Finished spans that match `keep`, once `server_spans` of them are SERVER spans (the
/// SERVER span ends last, after the reply is sent).
async fn wait_for(keep: impl Fn(&SpanData) -> bool, server_spans: usize) -> Trace {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans: Vec<SpanData> = EXPORTER
            .0
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(&keep)
            .collect();
        let servers = spans
            .iter()
            .filter(|s| s.span_kind == SpanKind::Server)
            .count();
        if servers >= server_spans {
            return Trace(spans);
        }
        assert!(
            Instant::now() < deadline,
            "{servers} of {server_spans} server spans ended: {:?}",
            names(&spans)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_ref()).collect()
}

struct Trace(Vec<SpanData>);

impl Trace {
    fn named(&self, name: &str) -> Vec<&SpanData> {
        self.0.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> &SpanData {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "{name} in {:?}", names(&self.0));
        found[0]
    }

    fn server(&self) -> &SpanData {
        let servers: Vec<_> = self
            .0
            .iter()
            .filter(|s| s.span_kind == SpanKind::Server)
            .collect();
        assert_eq!(servers.len(), 1, "{:?}", names(&self.0));
        servers[0]
    }

    fn clients(&self) -> Vec<&SpanData> {
        let mut clients: Vec<_> = self
            .0
            .iter()
            .filter(|s| s.span_kind == SpanKind::Client)
            .collect();
        clients.sort_by_key(|s| s.start_time);
        clients
    }

    /// Whether `span` descends from `ancestor` (through any number of spans).
    fn is_under(&self, span: &SpanData, ancestor: &SpanData) -> bool {
        let mut parent = span.parent_span_id;
        while parent != SpanId::INVALID {
            if parent == ancestor.span_context.span_id() {
                return true;
            }
            match self.0.iter().find(|s| s.span_context.span_id() == parent) {
                Some(next) => parent = next.parent_span_id,
                None => return false,
            }
        }
        false
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn string(span: &SpanData, key: &str) -> String {
    match attribute(span, key) {
        Some(value) => value.as_str().into_owned(),
        None => panic!("{} has no {key}: {:?}", span.name, span.attributes),
    }
}

fn status_code(span: &SpanData) -> Option<Value> {
    attribute(span, "rpc.grpc.status_code")
}

type Metrics = MetricsServiceClient<InterceptedService<Channel, Bearer>>;

fn metrics(app: &TestApp) -> Metrics {
    let bearer = Bearer(Some(format!("Bearer {}", app.key).parse().unwrap()));
    MetricsServiceClient::with_interceptor(app.channel.clone(), bearer)
}

fn nps_request() -> pb::MetricRequest {
    pb::MetricRequest {
        time_range: Some(pb::TimeRange {
            start_time: Some(ts(t0() - chrono::Duration::days(60))),
            end_time: Some(ts(t0() + chrono::Duration::days(1))),
        }),
        granularity: pb::Granularity::Month as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_write_is_a_server_span_joined_to_the_caller_with_a_client_span_per_statement() {
    let app = spawn_app().await;
    let caller = Caller::new();
    let request = pb::RecordSurveyResponseRequest {
        survey_response: Some(nps("r1", "c1", 9)),
    };
    app.feedback()
        .record_survey_response(caller.request(request))
        .await
        .expect("write");

    let trace = caller.trace(1).await;
    let server = trace.server();
    assert_eq!(
        server.name,
        "cxmetrics.v1.FeedbackService/RecordSurveyResponse"
    );
    assert_eq!(server.parent_span_id, caller.span_id);
    assert!(server.parent_span_is_remote);
    assert_eq!(server.span_context.trace_state().header(), "caller=abc");
    assert_eq!(string(server, "rpc.system"), "grpc");
    assert_eq!(
        string(server, "rpc.service"),
        "cxmetrics.v1.FeedbackService"
    );
    assert_eq!(string(server, "rpc.method"), "RecordSurveyResponse");
    assert_eq!(status_code(server), Some(Value::I64(0)));
    assert_eq!(string(server, "cxmetrics.tenant"), TENANT);
    assert_eq!(server.status, Status::Unset);

    let clients = trace.clients();
    assert_eq!(
        names(&clients.iter().map(|s| (*s).clone()).collect::<Vec<_>>()),
        [
            "SELECT api_keys",
            "BEGIN",
            "INSERT survey_responses",
            "COMMIT"
        ]
    );
    for client in &clients {
        assert!(trace.is_under(client, server), "{}", client.name);
        assert_eq!(string(client, "db.system"), "postgresql");
        assert_eq!(string(client, "db.system.name"), "postgresql");
        assert_eq!(client.status, Status::Unset);
    }
    let insert = clients[2];
    assert_eq!(string(insert, "db.operation.name"), "INSERT");
    assert_eq!(string(insert, "db.collection.name"), "survey_responses");
    let text = string(insert, "db.query.text");
    assert!(
        text.starts_with("insert into survey_responses") && text.contains("$14"),
        "{text}"
    );
    assert!(trace.is_under(insert, trace.one("write_batch")));
}

#[tokio::test]
async fn a_metric_query_shows_its_phases_under_the_server_span() {
    let app = spawn_app().await;
    app.feedback()
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(nps("r1", "c1", 9)),
        })
        .await
        .expect("write");
    let caller = Caller::new();
    metrics(&app)
        .get_nps(caller.request(nps_request()))
        .await
        .expect("nps");

    let trace = caller.trace(1).await;
    let server = trace.server();
    assert_eq!(server.name, "cxmetrics.v1.MetricsService/GetNps");
    assert_eq!(string(server, "rpc.method"), "GetNps");
    let phases = ["validate", "plan", "score_counts", "compute"].map(|name| trace.one(name));
    for phase in phases {
        assert_eq!(phase.parent_span_id, server.span_context.span_id());
        assert_eq!(phase.span_kind, SpanKind::Internal);
    }
    assert!(
        phases.windows(2).all(|w| w[0].end_time <= w[1].start_time),
        "phases run in order"
    );
    // An unfiltered NPS reads the survey rollups.
    let select = trace.one("SELECT survey_rollups");
    assert_eq!(select.span_kind, SpanKind::Client);
    assert_eq!(select.parent_span_id, phases[2].span_context.span_id());
    assert!(string(select, "db.query.text").contains("survey_rollups"));
}

#[tokio::test]
async fn invalid_argument_leaves_the_status_unset_and_an_internal_failure_is_an_error() {
    let app = spawn_app().await;
    let bad = Caller::new();
    let status = app
        .feedback()
        .record_survey_response(bad.request(pb::RecordSurveyResponseRequest {
            survey_response: Some(nps("r1", "c1", 11)),
        }))
        .await
        .expect_err("score 11 is out of range");
    assert_eq!(status.code(), Code::InvalidArgument);
    let trace = bad.trace(1).await;
    assert_eq!(status_code(trace.server()), Some(Value::I64(3)));
    assert_eq!(trace.server().status, Status::Unset);
    assert!(trace.named("BEGIN").is_empty(), "nothing is written");

    sqlx::query("alter table survey_rollups rename to survey_rollups_gone")
        .execute(app.store.pool())
        .await
        .unwrap();
    let failing = Caller::new();
    let status = metrics(&app)
        .get_nps(failing.request(nps_request()))
        .await
        .expect_err("the table is gone");
    assert_eq!(status.code(), Code::Internal);
    let trace = failing.trace(1).await;
    assert_eq!(status_code(trace.server()), Some(Value::I64(13)));
    assert!(
        matches!(trace.server().status, Status::Error { .. }),
        "{:?}",
        trace.server().status
    );
    let select = trace.one("SELECT survey_rollups");
    assert!(matches!(select.status, Status::Error { .. }));
    assert_eq!(string(select, "error.type"), "42P01");
}

#[tokio::test]
async fn a_call_without_trace_context_starts_its_own_trace() {
    let app = spawn_app().await;
    LazyLock::force(&EXPORTER);
    let tenant = format!("tenant-{}", uuid::Uuid::new_v4().simple());
    let key = app.create_key(&tenant, "read,write").await;
    app.feedback_with(Some(&key))
        .upsert_customer(pb::UpsertCustomerRequest {
            customer: Some(customer("c1")),
        })
        .await
        .expect("write");

    let tenant_value = Value::from(tenant.clone());
    let trace = wait_for(
        |s| attribute(s, "cxmetrics.tenant").as_ref() == Some(&tenant_value),
        1,
    )
    .await;
    let server = trace.server();
    assert_eq!(server.name, "cxmetrics.v1.FeedbackService/UpsertCustomer");
    assert_eq!(server.parent_span_id, SpanId::INVALID);
    assert!(server.span_context.is_sampled());
}

#[tokio::test]
async fn an_import_shows_one_span_per_chunk() {
    let app = spawn_app().await;
    let caller = Caller::new();
    let messages: Vec<_> = (0..2_500)
        .map(|i| pb::ImportRecordsRequest {
            record: Some(Record::Customer(customer(&format!("c{i}")))),
        })
        .collect();
    let reply = app
        .feedback()
        .import_records(caller.request(tokio_stream::iter(messages)))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(reply.created, 2_500);

    let trace = caller.trace(1).await;
    let server = trace.server();
    assert_eq!(server.name, "cxmetrics.v1.FeedbackService/ImportRecords");
    let mut chunks = trace.named("import_chunk");
    chunks.sort_by_key(|s| s.start_time);
    let sizes: Vec<_> = chunks.iter().map(|c| attribute(c, "records")).collect();
    assert_eq!(
        sizes,
        [1_000, 1_000, 500].map(|n| Some(Value::I64(n))).to_vec()
    );
    let inserts = trace.named("INSERT customers");
    assert_eq!(inserts.len(), 3);
    for chunk in chunks {
        assert_eq!(chunk.parent_span_id, server.span_context.span_id());
        assert_eq!(
            inserts.iter().filter(|i| trace.is_under(i, chunk)).count(),
            1
        );
    }
}

#[tokio::test]
async fn no_secret_or_record_content_appears_in_any_span() {
    let app = spawn_app().await;
    let caller = Caller::new();
    let mut record = nps("SECRET-RESPONSE-ID", "SECRET-CUSTOMER", 3);
    record.comment = "SECRET COMMENT: the agent was rude".into();
    record.channel = "SECRET-CHANNEL".into();
    record.attributes = [("plan".to_string(), "SECRET-PLAN".to_string())].into();
    let mut feedback = app.feedback();
    feedback
        .record_survey_response(caller.request(pb::RecordSurveyResponseRequest {
            survey_response: Some(record.clone()),
        }))
        .await
        .expect("write");
    let listed = feedback
        .list_survey_responses(caller.request(pb::ListSurveyResponsesRequest {
            time_range: nps_request().time_range,
            filter: Some(pb::MetricFilter {
                channels: vec!["SECRET-CHANNEL".into()],
                attributes: [("plan".to_string(), "SECRET-PLAN".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.survey_responses.len(), 1);
    let erased = feedback
        .delete_customer_data(caller.request(pb::DeleteCustomerDataRequest {
            customer_id: "SECRET-CUSTOMER".into(),
        }))
        .await
        .expect("erase")
        .into_inner();
    assert_eq!(erased.deleted_survey_responses, 1);

    let trace = caller.trace(3).await;
    let secret = app.key.rsplit('_').next().unwrap();
    let mut texts = Vec::new();
    for span in &trace.0 {
        texts.push(span.name.to_string());
        texts.extend(
            span.attributes
                .iter()
                .map(|kv| kv.value.as_str().into_owned()),
        );
        for event in span.events.iter() {
            texts.push(event.name.to_string());
            texts.extend(
                event
                    .attributes
                    .iter()
                    .map(|kv| kv.value.as_str().into_owned()),
            );
        }
    }
    assert!(texts.len() > 30, "{texts:?}");
    for text in &texts {
        assert!(
            !text.contains("SECRET") && !text.contains(secret) && !text.contains("Bearer"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn an_http_request_is_a_server_span_joined_to_the_caller_with_the_database_spans_under_it() {
    let app = spawn_app().await;
    app.feedback()
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(nps("r1", "c1", 9)),
        })
        .await
        .expect("write");
    let caller = Caller::new();
    let url = app.url(&format!(
        "/v1/metrics/nps?start=2026-01-01&end=2026-03-02&granularity=month&api_key={}",
        app.key
    ));
    let response = reqwest::Client::new()
        .get(url)
        .header(
            "traceparent",
            format!("00-{}-{}-01", caller.trace_id, caller.span_id),
        )
        .send()
        .await
        .expect("HTTP request");
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();

    let trace = caller.trace(1).await;
    let server = trace.server();
    assert_eq!(server.name, "GET /v1/metrics/nps");
    assert_eq!(server.parent_span_id, caller.span_id);
    assert_eq!(string(server, "http.request.method"), "GET");
    assert_eq!(string(server, "http.route"), "/v1/metrics/nps");
    assert_eq!(string(server, "url.path"), "/v1/metrics/nps");
    assert_eq!(string(server, "cxmetrics.tenant"), TENANT);
    assert_eq!(
        attribute(server, "http.response.status_code"),
        Some(Value::I64(200))
    );
    let select = trace.one("SELECT survey_rollups");
    assert!(trace.is_under(select, server));
    let secret = app.key.rsplit('_').next().unwrap();
    for span in &trace.0 {
        for kv in &span.attributes {
            assert!(!kv.value.as_str().contains(secret), "{kv:?}");
        }
    }

    // A bad request is a client error: the span records the status, not an error.
    let caller = Caller::new();
    let response = reqwest::Client::new()
        .get(app.url("/v1/survey-responses?start=x"))
        .bearer_auth(&app.key)
        .header(
            "traceparent",
            format!("00-{}-{}-01", caller.trace_id, caller.span_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let trace = caller.trace(1).await;
    let server = trace.server();
    assert_eq!(server.name, "GET /v1/survey-responses");
    assert_eq!(
        attribute(server, "http.response.status_code"),
        Some(Value::I64(400))
    );
    assert_eq!(server.status, Status::Unset);
}

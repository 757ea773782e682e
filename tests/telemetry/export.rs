//! The real binary exporting over OTLP/gRPC: to a receiver started here (whatever `RUST_LOG`
//! says), to an endpoint where nothing listens, and to one that accepts connections but never
//! answers.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use cxmetrics::proto::{self as pb, feedback_service_client::FeedbackServiceClient};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
    process::Child,
    task::JoinHandle,
};
use tonic::{Request, transport::Channel};

use crate::{
    collector::{Collector, Received, dead_endpoint, string_attribute},
    helpers::*,
};

async fn client(addr: &str, key: &str) -> Feedback {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    FeedbackServiceClient::with_interceptor(
        channel,
        Bearer(Some(format!("Bearer {key}").parse().unwrap())),
    )
}

/// Sends SIGTERM; returns how long the process took to exit (successfully).
pub(crate) async fn terminate(child: &mut Child) -> Duration {
    let pid = child.id().unwrap().to_string();
    let started = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the server exits")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    started.elapsed()
}

async fn write(client: &mut Feedback, id: &str) -> Duration {
    let started = Instant::now();
    client
        .upsert_customer(pb::UpsertCustomerRequest {
            customer: Some(customer(id)),
        })
        .await
        .expect("write");
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Makes an UpsertCustomer call as the child of a caller's span; returns the trace id and
/// the caller's span id.
pub(crate) async fn traced_write(addr: &str, key: &str) -> ([u8; 16], [u8; 8]) {
    let trace_id: [u8; 16] = rand::random();
    let caller_span: [u8; 8] = rand::random();
    let mut request = Request::new(pb::UpsertCustomerRequest {
        customer: Some(customer(&format!("c-{}", hex::encode(trace_id)))),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!(
            "00-{}-{}-01",
            hex::encode(trace_id),
            hex::encode(caller_span)
        )
        .parse()
        .unwrap(),
    );
    client(addr, key)
        .await
        .upsert_customer(request)
        .await
        .expect("write");
    (trace_id, caller_span)
}

/// Checks that `received` holds the server span of the write under `caller_span` and a
/// client span per statement; returns the server span.
pub(crate) fn assert_write_trace(received: &[Received], caller_span: [u8; 8]) -> &Received {
    let server = received
        .iter()
        .find(|r| r.span.kind == SpanKind::Server as i32)
        .unwrap_or_else(|| panic!("no server span among {received:?}"));
    assert_eq!(
        server.span.name,
        "cxmetrics.v1.FeedbackService/UpsertCustomer"
    );
    assert_eq!(server.span.parent_span_id, caller_span);
    let statements: Vec<_> = received
        .iter()
        .filter(|r| r.span.kind == SpanKind::Client as i32)
        .map(|r| r.span.name.as_str())
        .collect();
    for name in ["BEGIN", "INSERT customers", "COMMIT"] {
        assert!(statements.contains(&name), "{statements:?}");
    }
    server
}

#[tokio::test]
async fn the_binary_exports_its_spans_over_otlp_and_flushes_the_last_ones_on_sigterm() {
    let app = spawn_app().await;
    let (collector, endpoint) = Collector::start().await;
    // Batches are due only after a minute: what arrives before was flushed at exit.
    let (mut child, addr) = spawn_binary(
        &app.database_url,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "cxmetrics-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
    )
    .await;
    let (trace_id, caller_span) = traced_write(&addr, &app.key).await;
    assert!(collector.trace(&trace_id).is_empty(), "nothing is due yet");

    terminate(&mut child).await;
    let received = collector.trace(&trace_id);
    let server = assert_write_trace(&received, caller_span);
    assert_eq!(
        string_attribute(&server.span.attributes, "cxmetrics.tenant").as_deref(),
        Some(TENANT)
    );
    assert_eq!(server.service_name.as_deref(), Some("cxmetrics-under-test"));
    assert_eq!(
        server.service_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
}

/// Starts the binary with `RUST_LOG=rust_log` on a port chosen here (a quiet log does not
/// announce it) and waits until it accepts connections. Returns the process, its address
/// and its log lines, complete once it has exited.
/// Whether the server at `addr` answers health checks with SERVING.
async fn serving(addr: &str) -> bool {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

async fn spawn_quiet_binary(
    database_url: &str,
    rust_log: &str,
    env: &[(&str, &str)],
) -> (Child, String, JoinHandle<Vec<String>>) {
    let addr = dead_endpoint()
        .await
        .trim_start_matches("http://")
        .to_owned();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cxmetrics"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("CXMETRICS_LISTEN", &addr)
        .env("CXMETRICS_LOG_FORMAT", "json")
        .env("RUST_LOG", rust_log)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the binary");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });
    // Ready once health reads SERVING: the binary listens at once, but serves calls only
    // after it has migrated the database.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serving(&addr).await {
        assert!(child.try_wait().unwrap().is_none(), "the binary exited");
        assert!(
            Instant::now() < deadline,
            "the binary never served on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, addr, log)
}

#[tokio::test]
async fn a_quiet_log_level_still_exports_every_span_and_logs_only_what_it_allows() {
    let app = spawn_app().await;
    let (collector, endpoint) = Collector::start().await;
    for rust_log in ["warn", "off", "cxmetrics=info"] {
        let (mut child, addr, log) = spawn_quiet_binary(
            &app.database_url,
            rust_log,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
        )
        .await;
        let (trace_id, caller_span) = traced_write(&addr, &app.key).await;
        terminate(&mut child).await;
        assert_write_trace(&collector.trace(&trace_id), caller_span);

        let log: Vec<serde_json::Value> = log
            .await
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).expect("JSON log line"))
            .collect();
        let allowed = |line: &serde_json::Value| match rust_log {
            "warn" => line["level"] == "WARN" || line["level"] == "ERROR",
            "off" => false,
            _ => line["target"].as_str().unwrap().starts_with("cxmetrics"),
        };
        assert!(
            log.iter().all(allowed),
            "RUST_LOG={rust_log} let through: {log:?}"
        );
        // Every line the filter allows is written, also right after checks it rejected.
        let listening = log
            .iter()
            .any(|line| line["fields"]["message"] == "cxmetrics listening");
        assert_eq!(listening, rust_log == "cxmetrics=info", "{log:?}");
    }
}

/// A collector that accepts connections and never answers.
async fn silent_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_collector_that_is_down_or_silent_neither_slows_calls_nor_holds_up_the_exit() {
    let app = spawn_app().await;
    let (down, silent) = (dead_endpoint().await, silent_endpoint().await);
    let mut servers = Vec::new();
    for env in [
        vec![],
        vec![("OTEL_EXPORTER_OTLP_ENDPOINT", down.as_str())],
        vec![("OTEL_EXPORTER_OTLP_ENDPOINT", silent.as_str())],
    ] {
        let (child, addr) = spawn_binary(&app.database_url, &env).await;
        servers.push((child, client(&addr, &app.key).await));
    }
    let mut samples = vec![Vec::new(); servers.len()];
    for round in 0..130 {
        // Interleaved, so that load from elsewhere hits every server alike.
        for (i, (_, client)) in servers.iter_mut().enumerate() {
            let took = write(client, &format!("c{i}-{round}")).await;
            if round >= 30 {
                samples[i].push(took);
            }
        }
    }
    let [off, down, silent] = [0, 1, 2].map(|i| median(samples[i].clone()));
    eprintln!("median write: no exporter {off:?}, collector down {down:?}, silent {silent:?}");
    assert!(down <= off * 2, "down: {down:?} against {off:?}");
    assert!(silent <= off * 2, "silent: {silent:?} against {off:?}");

    for (child, _) in servers.iter_mut().skip(1) {
        let took = terminate(child).await;
        assert!(
            took < cxmetrics::telemetry::SHUTDOWN_TIMEOUT + Duration::from_secs(3),
            "exit took {took:?}"
        );
    }
}

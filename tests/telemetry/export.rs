//! The real binary exporting over OTLP/gRPC: to a receiver started here, to an endpoint where
//! nothing listens, and to one that accepts connections but never answers.

use std::time::{Duration, Instant};

use cxmetrics::proto::{self as pb, feedback_service_client::FeedbackServiceClient};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::{net::TcpListener, process::Child};
use tonic::{Request, transport::Channel};

use crate::{
    collector::{Collector, dead_endpoint, string_attribute},
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
async fn terminate(child: &mut Child) -> Duration {
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
    let trace_id: [u8; 16] = rand::random();
    let caller_span: [u8; 8] = rand::random();
    let mut request = Request::new(pb::UpsertCustomerRequest {
        customer: Some(customer("c1")),
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
    client(&addr, &app.key)
        .await
        .upsert_customer(request)
        .await
        .expect("write");
    assert!(collector.trace(&trace_id).is_empty(), "nothing is due yet");

    terminate(&mut child).await;
    let received = collector.trace(&trace_id);
    let server = received
        .iter()
        .find(|r| r.span.kind == SpanKind::Server as i32)
        .expect("the server span was flushed at exit");
    assert_eq!(
        server.span.name,
        "cxmetrics.v1.FeedbackService/UpsertCustomer"
    );
    assert_eq!(server.span.parent_span_id, caller_span);
    assert_eq!(
        string_attribute(&server.span.attributes, "cxmetrics.tenant").as_deref(),
        Some(TENANT)
    );
    assert_eq!(server.service_name.as_deref(), Some("cxmetrics-under-test"));
    assert_eq!(
        server.service_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let statements: Vec<_> = received
        .iter()
        .filter(|r| r.span.kind == SpanKind::Client as i32)
        .map(|r| r.span.name.as_str())
        .collect();
    for name in ["BEGIN", "INSERT customers", "COMMIT"] {
        assert!(statements.contains(&name), "{statements:?}");
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

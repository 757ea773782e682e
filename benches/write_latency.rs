//! The cost of tracing on a write (needs DATABASE_URL): the median latency of
//! `UpsertCustomer` through the real binary, with tracing off (no endpoint), on with a live
//! OTLP collector, and on with a collector that is down, in the same run. Calls to the three
//! servers are interleaved so that load from elsewhere hits them alike.
//!
//! `cargo bench --bench write_latency` runs 2,000 calls per server; under `cargo test` it
//! runs a few as a smoke test.

#[path = "../tests/telemetry/collector.rs"]
#[allow(dead_code)]
mod collector;
#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use collector::{Collector, dead_endpoint};
use cxmetrics::proto::{self as pb, feedback_service_client::FeedbackServiceClient};
use helpers::{Bearer, Feedback, customer, spawn_app, spawn_binary};
use tonic::transport::Channel;

async fn client(addr: &str, key: &str) -> anyhow::Result<Feedback> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let bearer = Bearer(Some(format!("Bearer {key}").parse()?));
    Ok(FeedbackServiceClient::with_interceptor(channel, bearer))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let (warmup, calls) = if full { (200, 2_000) } else { (5, 20) };
    let app = spawn_app().await;
    let (collector, live) = Collector::start().await;
    let dead = dead_endpoint().await;
    let setups: [(&str, Vec<(&str, &str)>); 3] = [
        ("tracing off", vec![]),
        (
            "tracing on, live collector",
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", live.as_str())],
        ),
        (
            "tracing on, dead collector",
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", dead.as_str())],
        ),
    ];
    let mut servers = Vec::new();
    for (_, env) in &setups {
        let (child, addr) = spawn_binary(&app.database_url, env).await;
        servers.push((child, client(&addr, &app.key).await?));
    }
    let mut samples = vec![Vec::with_capacity(calls); servers.len()];
    for round in 0..warmup + calls {
        for (i, (_, client)) in servers.iter_mut().enumerate() {
            let request = pb::UpsertCustomerRequest {
                customer: Some(customer(&format!("c{i}-{round}"))),
            };
            let started = Instant::now();
            client.upsert_customer(request).await?;
            if round >= warmup {
                samples[i].push(started.elapsed());
            }
        }
    }
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    println!("UpsertCustomer through the binary, median of {calls} calls each:");
    for ((name, _), m) in setups.iter().zip(&medians) {
        let ratio = m.as_secs_f64() / medians[0].as_secs_f64();
        let micros = m.as_secs_f64() * 1e6;
        println!("  {name:<28} {micros:>8.1} µs  {ratio:.2}x");
    }
    // SIGTERM, so that the live server flushes its last spans before the count.
    for (mut child, _) in servers {
        if let Some(pid) = child.id() {
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()?;
        }
        child.wait().await?;
    }
    println!(
        "  spans received by the live collector: {}",
        collector.received().len()
    );
    Ok(())
}

//! Writes under an overload of expensive reads (needs DATABASE_URL). Through the real
//! binary, one writer sends `UpsertCustomer` every 20 ms and its latency is measured:
//! - on an idle service (the baseline);
//! - while readers keep four times the read limit (8) of one-year monthly GetNps calls in
//!   flight, with admission control as configured by default;
//! - the same overload with the limits raised out of the way (10,000), as the service
//!   behaved without admission control.
//!
//! The share of reads shed (RESOURCE_EXHAUSTED) and the latency of the admitted ones are
//! printed too. `cargo bench --bench overload` runs 10 s per phase over 300,000 responses;
//! under `cargo test` it runs briefly on a few rows as a smoke test.

#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use cxmetrics::proto::{
    self as pb, feedback_service_client::FeedbackServiceClient,
    metrics_service_client::MetricsServiceClient,
};
use helpers::{Bearer, TENANT, TestApp, connect, customer, spawn_app, spawn_binary};
use tonic::Code;

/// Readers in flight: four times the default global read limit.
const READERS: usize = 32;

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p).div_ceil(100).max(1) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn seed(app: &TestApp, responses: i64) -> anyhow::Result<()> {
    sqlx::query(
        "insert into survey_responses (tenant_id, response_id, survey_id, kind, score,
            scale_min, scale_max, customer_id, channel, respond_time, update_time)
         select $1, 'r' || g, 's1', 1, g % 11, 0, 10, 'c' || (g % 5000),
            (array['email', 'chat', 'phone'])[1 + g % 3],
            timestamptz '2025-01-01' + (g * 311 % 31536000) * interval '1 second', now()
         from generate_series(1, $2) g",
    )
    .bind(TENANT)
    .bind(responses)
    .execute(app.store.pool())
    .await?;
    sqlx::query("analyze survey_responses")
        .execute(app.store.pool())
        .await?;
    Ok(())
}

fn one_year_monthly() -> pb::MetricRequest {
    pb::MetricRequest {
        time_range: Some(pb::TimeRange {
            start_time: Some(prost_types::Timestamp {
                seconds: 1_735_686_000,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: 1_767_222_000,
                nanos: 0,
            }),
        }),
        time_zone: "Europe/Berlin".into(),
        granularity: pb::Granularity::Month as i32,
        ..Default::default()
    }
}

#[derive(Default)]
struct Reads {
    admitted: AtomicU64,
    shed: AtomicU64,
    admitted_micros: AtomicU64,
}

/// Runs the writer (and `readers` readers) against `addr` for `length`; returns the sorted
/// write latencies and the read counts.
async fn phase(
    addr: &str,
    key: &str,
    readers: usize,
    length: Duration,
    tag: &str,
) -> anyhow::Result<(Vec<Duration>, Arc<Reads>)> {
    let bearer = Bearer(Some(format!("Bearer {key}").parse()?));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(Reads::default());
    let mut tasks = Vec::new();
    for _ in 0..readers {
        // Each reader on its own connection, as separate dashboards are.
        let channel = connect(addr, None).await?;
        let mut metrics = MetricsServiceClient::with_interceptor(channel, bearer.clone());
        let (stop, reads) = (stop.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match metrics.get_nps(one_year_monthly()).await {
                    Ok(_) => {
                        reads.admitted.fetch_add(1, Ordering::Relaxed);
                        reads
                            .admitted_micros
                            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    }
                    Err(s) if s.code() == Code::ResourceExhausted => {
                        reads.shed.fetch_add(1, Ordering::Relaxed);
                        // A well-behaved client waits before it retries; this one keeps
                        // the pressure on and comes back soon.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(s) => panic!("a read failed: {s:?}"),
                }
            }
        }));
    }
    let channel = connect(addr, None).await?;
    let mut writer = FeedbackServiceClient::with_interceptor(channel, bearer);
    // Let the readers reach their steady state first.
    tokio::time::sleep(Duration::from_millis(if readers > 0 { 1_000 } else { 0 })).await;
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < length {
        let request = pb::UpsertCustomerRequest {
            customer: Some(customer(&format!("{tag}-{}", latencies.len()))),
        };
        let call = Instant::now();
        writer.upsert_customer(request).await?;
        latencies.push(call.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    latencies.sort();
    Ok((latencies, reads))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let (responses, length) = if full {
        (300_000, Duration::from_secs(10))
    } else {
        (2_000, Duration::from_millis(500))
    };
    let app = spawn_app().await;
    seed(&app, responses).await?;
    let (_limited, limited) = spawn_binary(&app.database_url, &[]).await;
    let (_unlimited, unlimited) = spawn_binary(
        &app.database_url,
        &[
            ("CXMETRICS_MAX_CONCURRENT_READS", "10000"),
            ("CXMETRICS_MAX_CONCURRENT_READS_PER_TENANT", "10000"),
        ],
    )
    .await;
    let (idle, _) = phase(&limited, &app.key, 0, length, "idle").await?;
    let (loaded, reads) = phase(&limited, &app.key, READERS, length, "limited").await?;
    let (open, open_reads) = phase(&unlimited, &app.key, READERS, length, "open").await?;

    println!(
        "UpsertCustomer every 20 ms; {READERS} readers of one-year monthly GetNps over \
         {responses} responses"
    );
    println!(
        "  {:<34} {:>6} {:>9} {:>9} {:>11}",
        "setup", "writes", "p50 ms", "p99 ms", "p99 / idle"
    );
    let idle_p99 = percentile(&idle, 99);
    for (name, samples) in [
        ("idle service", &idle),
        ("4x read overload, admission on", &loaded),
        ("4x read overload, no admission", &open),
    ] {
        println!(
            "  {name:<34} {:>6} {:>9.2} {:>9.2} {:>10.2}x",
            samples.len(),
            ms(percentile(samples, 50)),
            ms(percentile(samples, 99)),
            percentile(samples, 99).as_secs_f64() / idle_p99.as_secs_f64()
        );
    }
    for (name, reads) in [("admission on", &reads), ("no admission", &open_reads)] {
        let admitted = reads.admitted.load(Ordering::Relaxed);
        let shed = reads.shed.load(Ordering::Relaxed);
        let mean = reads.admitted_micros.load(Ordering::Relaxed) as f64 / admitted.max(1) as f64;
        println!(
            "  reads, {name:<13} {admitted:>6} answered (mean {:.0} ms), {shed:>6} shed \
             ({:.1}% of attempts)",
            mean / 1e3,
            100.0 * shed as f64 / (admitted + shed).max(1) as f64
        );
    }
    Ok(())
}

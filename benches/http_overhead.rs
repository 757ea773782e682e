//! The HTTP API's overhead over gRPC (needs DATABASE_URL): the same one-year monthly NPS
//! over 1,000,000 responses as GetNps, as HTTP JSON and as HTTP CSV, interleaved, median of
//! several runs each, in one run of the service; and the ratios. Then a CSV export of
//! 1,000,000 interactions, read as it streams, with the process's peak memory before and
//! after.
//!
//! `cargo bench --bench http_overhead` runs the full size; under `cargo test` it runs a tiny
//! size as a smoke test.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use cxmetrics::{
    commands,
    config::Settings,
    grpc::convert::to_timestamp,
    proto::{self as pb, metrics_service_client::MetricsServiceClient},
    startup::Application,
    storage::{DEFAULT_READ_TIMEOUT, DEFAULT_WRITE_TIMEOUT, DbSettings, Store},
};
use sqlx::{Connection, Executor, PgConnection};
use tonic::{Request, transport::Channel};

fn year_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The process's peak resident memory so far (VmHWM), in KiB.
fn peak_rss_kib() -> anyhow::Result<i64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("bad VmHWM line"))?
        .parse()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let (rows, runs) = if full { (1_000_000i64, 9) } else { (10_000, 3) };
    let admin = std::env::var("DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("set DATABASE_URL (scripts/test does) to run the benchmark")
    })?;
    let name = format!("bench_http_{}", std::process::id());
    let mut conn = PgConnection::connect(&admin).await?;
    conn.execute(format!("create database {name}").as_str())
        .await?;
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let db = DbSettings {
        url,
        max_connections: 8,
        read_max_connections: 8,
        acquire_timeout: Duration::from_secs(5),
        read_timeout: DEFAULT_READ_TIMEOUT,
        write_timeout: DEFAULT_WRITE_TIMEOUT,
        read_url: None,
    };
    let store = Store::connect_lazy(&db)?;
    store.migrate().await?;
    let key = commands::create_key(&store, "bench", "read").await?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        db,
        shutdown_grace: Duration::from_secs(5),
        max_message_bytes: 16 << 20,
        max_streams_per_connection: 100,
        key_cache_ttl: Duration::from_secs(60),
        read_limits: Default::default(),
        health_interval: Duration::from_secs(5),
        tls: None,
        cors_origins: Vec::new(),
    };
    let app = Application::build_with_store(settings, store.clone()).await?;
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    sqlx::query(
        "insert into survey_responses (tenant_id, response_id, survey_id, kind, score, scale_min,
             scale_max, customer_id, channel, respond_time, update_time)
         select 'bench', 'gen-' || g, 's' || (g % 4), 1, (g % 11), 0, 10, 'c' || (g % 50000),
                (array['email', 'chat', 'phone'])[1 + g % 3],
                $1::timestamptz + (g * 31536 / $2::bigint) * interval '1000 seconds',
                'epoch'
         from generate_series(0, $2::bigint - 1) g",
    )
    .bind(year_start())
    .bind(rows)
    .execute(store.pool())
    .await?;
    sqlx::query("vacuum analyze survey_responses")
        .execute(store.pool())
        .await?;

    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut metrics = MetricsServiceClient::new(channel);
    let request = pb::MetricRequest {
        time_range: Some(pb::TimeRange {
            start_time: Some(to_timestamp(year_start())),
            end_time: Some(to_timestamp(
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            )),
        }),
        time_zone: "Europe/Berlin".into(),
        granularity: pb::Granularity::Month as i32,
        ..Default::default()
    };
    let http = reqwest::Client::new();
    let url = format!(
        "http://{addr}/v1/metrics/nps?start=2025-01-01T00:00:00Z&end=2026-01-01T00:00:00Z\
         &time_zone=Europe/Berlin&granularity=month"
    );
    let (mut grpc, mut json, mut csv) = (Vec::new(), Vec::new(), Vec::new());
    // One warm-up round, then the runs, the three transports interleaved.
    for run in 0..=runs {
        let started = Instant::now();
        let mut call = Request::new(request.clone());
        call.metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse()?);
        let report = metrics.get_nps(call).await?.into_inner();
        let grpc_time = started.elapsed();
        let buckets = report.series.len();
        assert_eq!(report.total.unwrap_or_default().responses, rows);

        let started = Instant::now();
        let body = http
            .get(&url)
            .bearer_auth(&key)
            .send()
            .await?
            .text()
            .await?;
        let json_time = started.elapsed();
        assert!(body.contains("\"rows\""), "{body}");

        let started = Instant::now();
        let body = http
            .get(format!("{url}&format=csv"))
            .bearer_auth(&key)
            .send()
            .await?
            .text()
            .await?;
        let csv_time = started.elapsed();
        assert_eq!(body.lines().count(), buckets + 1, "{body}");
        if run > 0 {
            grpc.push(grpc_time);
            json.push(json_time);
            csv.push(csv_time);
        }
    }
    let (grpc, json, csv) = (median(grpc), median(json), median(csv));
    println!(
        "NPS one year, monthly, Europe/Berlin, {rows} responses, median of {runs}: \
         gRPC {:.1} ms, HTTP JSON {:.1} ms ({:.2}x), HTTP CSV {:.1} ms ({:.2}x)",
        ms(grpc),
        ms(json),
        json.as_secs_f64() / grpc.as_secs_f64(),
        ms(csv),
        csv.as_secs_f64() / grpc.as_secs_f64(),
    );

    // A CSV export of every interaction streams page by page: the peak resident memory of
    // this process (server and client) barely moves while it runs.
    sqlx::query(
        "insert into interactions (tenant_id, interaction_id, customer_id, channel, agent_id,
             team_id, open_time, first_response_time, resolve_time, update_time)
         select 'bench', 'gen-' || g, 'c' || (g % 50000), (array['email', 'chat'])[1 + g % 2],
                'agent-' || (g % 40), 'team-' || (g % 5), t,
                case when g % 10 <> 0 then t + (g % 7200) * interval '1 second' end,
                case when g % 4 <> 0 then t + (g % 259200) * interval '1 second' end, 'epoch'
         from generate_series(0, $2::bigint - 1) g,
              lateral (select $1::timestamptz + (g * 31536 / $2::bigint) * interval '1000 seconds') as o(t)",
    )
    .bind(year_start())
    .bind(rows)
    .execute(store.pool())
    .await?;
    sqlx::query("vacuum analyze interactions")
        .execute(store.pool())
        .await?;
    let before = peak_rss_kib()?;
    let started = Instant::now();
    let mut export = http
        .get(format!(
            "http://{addr}/v1/interactions?start=2025-01-01&end=2026-01-01&format=csv"
        ))
        .bearer_auth(&key)
        .send()
        .await?;
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = export.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let export_time = started.elapsed();
    assert_eq!(lines as i64, rows + 1);
    let after = peak_rss_kib()?;
    println!(
        "CSV export of {rows} interactions: {:.1} MB in {:.1} s; peak RSS {:.1} MiB before, \
         {:.1} MiB after (+{:.1} MiB)",
        bytes as f64 / 1e6,
        export_time.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
    );

    let _ = stop.send(());
    server.await??;
    conn.execute(format!("drop database if exists {name} with (force)").as_str())
        .await?;
    Ok(())
}

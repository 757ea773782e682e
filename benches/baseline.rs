//! End-to-end figures over real gRPC and PostgreSQL (needs DATABASE_URL):
//! - ImportRecords throughput on 100,000 survey responses, against the same records sent
//!   as BatchRecordSurveyResponses calls of 1,000 (the baseline);
//! - latency of a one-year monthly GetNps over 1,000,000 responses (median of several runs),
//!   against a bare `count(*)` over the same rows (the cost of merely reading them);
//! - GetResponseTimes over 1,000,000 interactions, wall-clock and in business hours, and
//!   GetRetention over 100,000 customers, each against a bare `count(*)`.
//!
//! `cargo bench --bench baseline` runs the full sizes; under `cargo test` it runs tiny sizes
//! as a smoke test.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use cxmetrics::{
    commands,
    config::Settings,
    grpc::convert::to_timestamp,
    proto::{
        self as pb, calendar_service_client::CalendarServiceClient,
        feedback_service_client::FeedbackServiceClient,
        metrics_service_client::MetricsServiceClient,
    },
    startup::Application,
    storage::{DEFAULT_READ_TIMEOUT, DEFAULT_WRITE_TIMEOUT, DbSettings, Store},
};
use sqlx::{Connection, Executor, PgConnection};
use tonic::{Request, transport::Channel};

struct Sizes {
    import: usize,
    responses: i64,
    interactions: i64,
    customers: i64,
    runs: usize,
}

fn with_bearer<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

fn year_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn response(prefix: &str, i: usize) -> pb::SurveyResponse {
    pb::SurveyResponse {
        response_id: format!("{prefix}-{i}"),
        survey_id: "s1".into(),
        kind: pb::SurveyKind::Nps as i32,
        score: (i % 11) as i32,
        customer_id: format!("c{}", i % 5000),
        channel: ["email", "chat", "phone"][i % 3].into(),
        respond_time: Some(to_timestamp(
            year_start() + chrono::Duration::seconds((i as i64 * 311) % 31_536_000),
        )),
        ..Default::default()
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            import: 100_000,
            responses: 1_000_000,
            interactions: 1_000_000,
            customers: 100_000,
            runs: 7,
        }
    } else {
        Sizes {
            import: 2_000,
            responses: 10_000,
            interactions: 10_000,
            customers: 1_000,
            runs: 3,
        }
    };
    let admin = std::env::var("DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("set DATABASE_URL (scripts/test does) to run the benchmark")
    })?;
    let name = format!("bench_{}", std::process::id());
    let mut conn = PgConnection::connect(&admin).await?;
    conn.execute(format!("drop database if exists {name}").as_str())
        .await?;
    conn.execute(format!("create database {name}").as_str())
        .await?;
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

    let db = DbSettings {
        url: url.clone(),
        max_connections: 8,
        read_max_connections: 8,
        acquire_timeout: Duration::from_secs(5),
        read_timeout: DEFAULT_READ_TIMEOUT,
        write_timeout: DEFAULT_WRITE_TIMEOUT,
        read_url: None,
    };
    let store = Store::connect_lazy(&db)?;
    store.migrate().await?;
    let key = commands::create_key(&store, "bench", "read,write").await?;
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
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut feedback = FeedbackServiceClient::new(channel.clone());

    // Import: one stream vs batches of 1,000.
    let records: Vec<_> = (0..sizes.import)
        .map(|i| pb::ImportRecordsRequest {
            record: Some(pb::import_records_request::Record::SurveyResponse(
                response("imp", i),
            )),
        })
        .collect();
    let started = Instant::now();
    let reply = feedback
        .import_records(with_bearer(&key, tokio_stream::iter(records)))
        .await?
        .into_inner();
    let import_secs = started.elapsed().as_secs_f64();
    assert_eq!(reply.created as usize, sizes.import);
    let started = Instant::now();
    let all: Vec<_> = (0..sizes.import).map(|i| response("bat", i)).collect();
    for chunk in all.chunks(1000) {
        feedback
            .batch_record_survey_responses(with_bearer(
                &key,
                pb::BatchRecordSurveyResponsesRequest {
                    survey_responses: chunk.to_vec(),
                },
            ))
            .await?;
    }
    let batch_secs = started.elapsed().as_secs_f64();
    let import_rate = sizes.import as f64 / import_secs;
    let batch_rate = sizes.import as f64 / batch_secs;
    println!(
        "ImportRecords: {} records in {import_secs:.2} s = {import_rate:.0} records/s; \
         batches of 1,000: {batch_rate:.0} records/s; ratio import/batch = {:.2}",
        sizes.import,
        import_rate / batch_rate
    );

    // GetNps over a year of responses, loaded with SQL.
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
    .bind(sizes.responses)
    .execute(store.pool())
    .await?;
    sqlx::query("vacuum analyze survey_responses")
        .execute(store.pool())
        .await?;
    let total_rows: i64 = sqlx::query_scalar("select count(*) from survey_responses")
        .fetch_one(store.pool())
        .await?;

    let mut metrics = MetricsServiceClient::new(channel.clone());
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
    let mut nps_samples = Vec::new();
    let mut responses = 0;
    for _ in 0..sizes.runs {
        let started = Instant::now();
        let report = metrics
            .get_nps(with_bearer(&key, request.clone()))
            .await?
            .into_inner();
        nps_samples.push(started.elapsed());
        responses = report.total.unwrap_or_default().responses;
    }
    let mut count_samples = Vec::new();
    for _ in 0..sizes.runs {
        let started = Instant::now();
        let _: i64 = sqlx::query_scalar(
            "select count(*) from survey_responses
             where tenant_id = 'bench' and kind = 1 and respond_time >= $1 and respond_time < $2",
        )
        .bind(year_start())
        .bind(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
        .fetch_one(store.pool())
        .await?;
        count_samples.push(started.elapsed());
    }
    let (nps, count) = (median(nps_samples), median(count_samples));
    println!(
        "GetNps one year, monthly, Europe/Berlin: {responses} responses of {total_rows} rows: \
         median {:.1} ms over {} runs; bare count(*) of the same rows {:.1} ms; ratio {:.2}",
        nps.as_secs_f64() * 1e3,
        sizes.runs,
        count.as_secs_f64() * 1e3,
        nps.as_secs_f64() / count.as_secs_f64()
    );

    // GetResponseTimes over a year of interactions, and GetRetention over customers.
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
    .bind(sizes.interactions)
    .execute(store.pool())
    .await?;
    sqlx::query(
        "insert into customers (tenant_id, customer_id, acquire_time, churn_time, update_time)
         select 'bench', 'c' || g, a, case when g % 3 = 0 then a + (g % 400) * interval '1 day' end,
                'epoch'
         from generate_series(0, $2::bigint - 1) g,
              lateral (select $1::timestamptz - interval '1 year' + (g % 700) * interval '1 day') as c(a)",
    )
    .bind(year_start())
    .bind(sizes.customers)
    .execute(store.pool())
    .await?;
    sqlx::query("vacuum analyze").execute(store.pool()).await?;
    let rt_request = pb::ResponseTimeRequest {
        query: Some(request.clone()),
        first_response_target: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        resolution_target: Some(prost_types::Duration {
            seconds: 86_400,
            nanos: 0,
        }),
        calendar_id: String::new(),
        exact: false,
    };
    let mut rt_samples = Vec::new();
    for _ in 0..sizes.runs {
        let started = Instant::now();
        metrics
            .get_response_times(with_bearer(&key, rt_request.clone()))
            .await?;
        rt_samples.push(started.elapsed());
    }
    let mut rt_count = Vec::new();
    for _ in 0..sizes.runs {
        let started = Instant::now();
        let _: i64 = sqlx::query_scalar(
            "select count(*) from interactions
             where tenant_id = 'bench' and open_time >= $1 and open_time < $2",
        )
        .bind(year_start())
        .bind(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
        .fetch_one(store.pool())
        .await?;
        rt_count.push(started.elapsed());
    }
    let (rt, rt_base) = (median(rt_samples), median(rt_count));
    println!(
        "GetResponseTimes one year, monthly, SLA targets: {} interactions: median {:.1} ms; \
         bare count(*) {:.1} ms; ratio {:.2}",
        sizes.interactions,
        rt.as_secs_f64() * 1e3,
        rt_base.as_secs_f64() * 1e3,
        rt.as_secs_f64() / rt_base.as_secs_f64()
    );
    // The same query in business hours: Mon-Fri 09:00-18:00 in Berlin, minus holidays.
    let calendar = pb::Calendar {
        calendar_id: "office".into(),
        time_zone: "Europe/Berlin".into(),
        weekly_hours: (1..=5)
            .map(|day| pb::BusinessHours {
                day_of_week: day,
                start: "09:00".into(),
                end: "18:00".into(),
            })
            .collect(),
        holidays: vec![
            "2025-01-01".into(),
            "2025-12-25".into(),
            "2025-12-26".into(),
        ],
        update_time: None,
    };
    CalendarServiceClient::new(channel.clone())
        .upsert_calendar(with_bearer(
            &key,
            pb::UpsertCalendarRequest {
                calendar: Some(calendar),
            },
        ))
        .await?;
    let business_request = pb::ResponseTimeRequest {
        calendar_id: "office".into(),
        ..rt_request
    };
    let mut business_samples = Vec::new();
    for _ in 0..sizes.runs {
        let started = Instant::now();
        metrics
            .get_response_times(with_bearer(&key, business_request.clone()))
            .await?;
        business_samples.push(started.elapsed());
    }
    let business = median(business_samples);
    println!(
        "GetResponseTimes in business hours (calendar): median {:.1} ms; ratio to wall-clock {:.2}",
        business.as_secs_f64() * 1e3,
        business.as_secs_f64() / rt.as_secs_f64()
    );
    let retention_request = pb::RetentionRequest {
        time_range: request.time_range,
        time_zone: "Europe/Berlin".into(),
        granularity: pb::Granularity::Month as i32,
        group_by_nps_category: false,
    };
    let mut retention_samples = Vec::new();
    for _ in 0..sizes.runs {
        let started = Instant::now();
        metrics
            .get_retention(with_bearer(&key, retention_request.clone()))
            .await?;
        retention_samples.push(started.elapsed());
    }
    let mut customer_count = Vec::new();
    for _ in 0..sizes.runs {
        let started = Instant::now();
        let _: i64 = sqlx::query_scalar("select count(*) from customers where tenant_id = 'bench'")
            .fetch_one(store.pool())
            .await?;
        customer_count.push(started.elapsed());
    }
    let (retention, retention_base) = (median(retention_samples), median(customer_count));
    println!(
        "GetRetention one year, monthly: {} customers: median {:.1} ms; bare count(*) {:.1} ms; \
         ratio {:.2}",
        sizes.customers,
        retention.as_secs_f64() * 1e3,
        retention_base.as_secs_f64() * 1e3,
        retention.as_secs_f64() / retention_base.as_secs_f64()
    );

    let _ = stop.send(());
    server.await??;
    conn.execute(format!("drop database if exists {name} with (force)").as_str())
        .await?;
    Ok(())
}

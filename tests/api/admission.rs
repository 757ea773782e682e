//! Admission control over gRPC: reads past the limits are shed with RESOURCE_EXHAUSTED and
//! a RetryInfo, while writes and other tenants go on.

use std::time::{Duration, Instant};

use cxmetrics::{app::ReadLimits, proto as pb};
use sqlx::{Connection, Executor, PgConnection};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

fn nps_request() -> pb::MetricRequest {
    pb::MetricRequest {
        time_range: Some(pb::TimeRange {
            start_time: Some(ts(t0() - chrono::Duration::days(1))),
            end_time: Some(ts(t0() + chrono::Duration::days(1))),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn reads_past_the_tenant_limit_are_shed_with_a_retry_delay_while_writes_go_on() {
    let app = spawn_app_with(Options {
        read_limits: ReadLimits {
            global: 4,
            per_tenant: 1,
        },
        ..Options::default()
    })
    .await;
    let other_key = app.create_key("tenant-b", "read").await;
    let metrics = |key: &str| app.metrics_with(key);
    // Warm the key caches, so that the lock below holds only the reads.
    metrics(&app.key).get_nps(nps_request()).await.unwrap();
    metrics(&other_key).get_nps(nps_request()).await.unwrap();

    // The first read waits behind this lock, holding the tenant's one running slot.
    let mut lock = PgConnection::connect(&app.database_url).await.unwrap();
    lock.execute("begin").await.unwrap();
    lock.execute("lock table survey_responses, survey_rollups in access exclusive mode")
        .await
        .unwrap();
    let running = tokio::spawn({
        let mut client = metrics(&app.key);
        async move { client.get_nps(nps_request()).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The second queues for its turn and gives up after the queue wait; the third finds
    // the queue full and is shed at once.
    let queued = tokio::spawn({
        let mut client = metrics(&app.key);
        async move { client.get_nps(nps_request()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let shed = metrics(&app.key).get_nps(nps_request()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    let retry = shed.get_details_retry_info().expect("RetryInfo details");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));

    // Writes are not held by the reads.
    app.feedback()
        .upsert_customer(pb::UpsertCustomerRequest {
            customer: Some(customer("c1")),
        })
        .await
        .expect("a write while reads are shed");
    let queued = queued.await.unwrap().unwrap_err();
    assert_eq!(queued.code(), Code::ResourceExhausted, "{queued:?}");
    // Another tenant has slots of its own; it waits for the lock like anyone, so it is
    // started now and checked once the lock is gone.
    let other = tokio::spawn({
        let mut client = metrics(&other_key);
        async move { client.get_nps(nps_request()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.execute("rollback").await.unwrap();
    running.await.unwrap().expect("the running read finishes");
    other
        .await
        .unwrap()
        .expect("the other tenant's read was admitted");
}

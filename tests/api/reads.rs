//! Reads: a query blocked behind a lock is cancelled by PostgreSQL when the caller's
//! deadline (or the service's read timeout) runs out, instead of waiting on after nobody
//! wants its answer; with a read database, metric and listing reads go there.

use std::time::Duration;

use cxmetrics::proto::{self as pb, metrics_service_client::MetricsServiceClient};
use sqlx::{Connection, Executor, PgConnection};
use tonic::{Code, Request};

use crate::helpers::*;

fn nps_request(key: &str, timeout: Option<Duration>) -> Request<pb::MetricRequest> {
    let mut request = Request::new(pb::MetricRequest {
        time_range: Some(pb::TimeRange {
            start_time: Some(ts(t0() - chrono::Duration::days(1))),
            end_time: Some(ts(t0() + chrono::Duration::days(1))),
        }),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    request
}

/// Holds an exclusive lock on the survey responses and their rollups until dropped (rolled
/// back), so that every NPS read waits.
async fn lock_responses(app: &TestApp) -> PgConnection {
    let mut conn = PgConnection::connect(&app.database_url).await.unwrap();
    conn.execute("begin").await.unwrap();
    conn.execute("lock table survey_responses, survey_rollups in access exclusive mode")
        .await
        .unwrap();
    conn
}

/// Statements of this database waiting for a lock, polled until none is left (or 5 s).
async fn lock_waiters_after_settling(app: &TestApp) -> i64 {
    let sql = "select count(*) from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock'";
    for _ in 0..50 {
        if app.count(sql).await == 0 {
            return 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.count(sql).await
}

#[tokio::test]
async fn a_query_is_cancelled_in_the_database_when_the_callers_deadline_passes() {
    let app = spawn_app().await;
    app.feedback()
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(nps("r1", "c1", 9)),
        })
        .await
        .unwrap();
    let lock = lock_responses(&app).await;
    let mut metrics = MetricsServiceClient::new(app.channel.clone());
    let status = metrics
        .get_nps(nps_request(&app.key, Some(Duration::from_millis(300))))
        .await
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert_eq!(
        lock_waiters_after_settling(&app).await,
        0,
        "the blocked query must not keep waiting after the deadline"
    );
    drop(lock);
    let report = metrics
        .get_nps(nps_request(&app.key, Some(Duration::from_secs(10))))
        .await
        .expect("a query with time to spare answers once the lock is gone")
        .into_inner();
    assert_eq!(report.total.unwrap().responses, 1);
}

#[tokio::test]
async fn the_read_timeout_bounds_a_caller_without_a_deadline() {
    let app = spawn_app_with(Options {
        read_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let _lock = lock_responses(&app).await;
    let status = MetricsServiceClient::new(app.channel.clone())
        .get_nps(nps_request(&app.key, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(lock_waiters_after_settling(&app).await, 0);
}

#[tokio::test]
async fn the_rollup_compactor_does_not_queue_behind_a_table_lock() {
    let app = spawn_app().await;
    let _lock = lock_responses(&app).await;
    // The compactor runs every second; give it time to meet the lock.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        lock_waiters_after_settling(&app).await,
        0,
        "background compaction must give up on a held lock, not wait on it"
    );
}

#[tokio::test]
async fn metric_and_listing_reads_go_to_the_read_database_and_writes_to_the_primary() {
    // The "replica": a second database of the same schema, written through its own server.
    let replica = spawn_app().await;
    let app = spawn_app_with(Options {
        read_database_url: Some(replica.database_url.clone()),
        ..Options::default()
    })
    .await;
    let record = |app: &TestApp, response: pb::SurveyResponse| {
        let mut feedback = app.feedback();
        async move {
            feedback
                .record_survey_response(pb::RecordSurveyResponseRequest {
                    survey_response: Some(response),
                })
                .await
                .unwrap();
        }
    };
    record(&app, nps("on-primary", "c1", 10)).await;
    record(&replica, nps("on-replica", "c2", 3)).await;
    assert_eq!(app.count("select count(*) from survey_responses").await, 1);

    let report = MetricsServiceClient::new(app.channel.clone())
        .get_nps(nps_request(&app.key, None))
        .await
        .unwrap()
        .into_inner();
    let total = report.total.unwrap();
    assert_eq!((total.responses, total.nps), (1, Some(-100.0)));
    let mut request = Request::new(pb::ListSurveyResponsesRequest {
        time_range: nps_request(&app.key, None).into_inner().time_range,
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", app.key).parse().unwrap(),
    );
    let listed = app
        .feedback_with(None)
        .list_survey_responses(request)
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = listed
        .survey_responses
        .iter()
        .map(|r| r.response_id.as_str())
        .collect();
    assert_eq!(ids, ["on-replica"]);
}

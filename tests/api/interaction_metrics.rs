//! Hand cases for response times, retention and cohorts.

use chrono::{DateTime, Duration, Utc};
use cxmetrics::proto as pb;
use tonic::Code;

use crate::helpers::*;

fn metrics(app: &TestApp) -> Metrics {
    app.metrics_with(&app.key)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn range(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<pb::TimeRange> {
    Some(pb::TimeRange {
        start_time: Some(ts(start)),
        end_time: Some(ts(end)),
    })
}

fn minutes(m: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: m * 60,
        nanos: 0,
    })
}

#[tokio::test]
async fn sla_counts_old_unanswered_interactions_as_breached_and_young_ones_as_neither() {
    let app = spawn_app().await;
    let now = Utc::now();
    let opened = |id: &str, ago: Duration, answered_after: Option<Duration>| {
        let mut i = interaction(id, "c1");
        i.open_time = Some(ts(now - ago));
        i.first_response_time = answered_after.map(|d| ts(now - ago + d));
        i
    };
    let interactions = vec![
        opened("met", Duration::hours(5), Some(Duration::minutes(30))),
        opened("late", Duration::hours(5), Some(Duration::minutes(90))),
        opened("old-waiting", Duration::hours(2), None),
        opened("young-waiting", Duration::minutes(10), None),
    ];
    app.feedback()
        .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest { interactions })
        .await
        .unwrap();
    // From the rollups with sketch percentiles, and from the raw rows with exact ones: the
    // same exact counts, SLA and extremes either way.
    for exact in [false, true] {
        let report = metrics(&app)
            .get_response_times(pb::ResponseTimeRequest {
                query: Some(pb::MetricRequest {
                    time_range: range(now - Duration::days(1), now + Duration::minutes(1)),
                    ..Default::default()
                }),
                first_response_target: minutes(60),
                exact,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let total = report.total.unwrap();
        assert_eq!((total.interactions, total.unanswered), (4, 2));
        let sla = total.first_response_sla.unwrap();
        assert_eq!((sla.met, sla.breached), (1, 2));
        assert!((sla.attainment.unwrap() - 100.0 / 3.0).abs() < 1e-9);
        assert!(
            total.resolution_sla.is_none(),
            "no resolution target, no resolution SLA"
        );
        let first = total.first_response.unwrap();
        assert_eq!(
            (first.count, first.min_seconds, first.max_seconds),
            (2, Some(1800.0), Some(5400.0))
        );
        assert_eq!(first.mean_seconds, Some(3600.0));
        assert_eq!(first.percentiles_exact, exact);
        let p50 = first.p50_seconds.unwrap();
        if exact {
            assert_eq!(p50, 3600.0);
        } else {
            assert!((p50 - 3600.0).abs() <= 0.01 * 3600.0, "{p50}");
        }
    }
}

#[tokio::test]
async fn response_time_requests_reject_bad_targets_and_survey_dimensions() {
    let app = spawn_app().await;
    let t = utc("2026-06-01T00:00:00Z");
    let query = pb::MetricRequest {
        time_range: range(t, t + Duration::days(1)),
        ..Default::default()
    };
    let status = metrics(&app)
        .get_response_times(pb::ResponseTimeRequest {
            query: Some(query.clone()),
            first_response_target: minutes(-5),
            resolution_target: minutes(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["first_response_target", "resolution_target"]
    );
    let status = metrics(&app)
        .get_response_times(pb::ResponseTimeRequest {
            query: Some(pb::MetricRequest {
                filter: Some(pb::MetricFilter {
                    survey_ids: vec!["s1".into()],
                    ..Default::default()
                }),
                ..query
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["query.filter.survey_ids"]);
    let status = metrics(&app)
        .get_response_times(pb::ResponseTimeRequest {
            query: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["query.time_range"]);
}

#[tokio::test]
async fn a_customer_acquired_exactly_at_the_start_is_new_and_one_churning_exactly_at_the_end_is_retained()
 {
    let app = spawn_app().await;
    let (s, e) = (utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z"));
    let customers = [
        ("at-start", s, None),
        ("before", s - Duration::days(10), Some(e)),
        (
            "churned-inside",
            s - Duration::days(10),
            Some(s + Duration::days(3)),
        ),
        ("churned-at-start", s - Duration::days(10), Some(s)),
        (
            "churned-before",
            s - Duration::days(10),
            Some(s - Duration::seconds(1)),
        ),
    ];
    for (id, acquire, churn) in customers {
        app.feedback()
            .upsert_customer(pb::UpsertCustomerRequest {
                customer: Some(pb::Customer {
                    customer_id: id.into(),
                    acquire_time: Some(ts(acquire)),
                    churn_time: churn.map(ts),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let total = metrics(&app)
        .get_retention(pb::RetentionRequest {
            time_range: range(s, e),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    // S: before, churned-inside, churned-at-start (active at s: churn >= s).
    assert_eq!(total.start_customers, 3);
    assert_eq!(total.new_customers, 1);
    // Retained: before (churn exactly at e).
    assert_eq!((total.retained, total.churned), (1, 2));
    // E: at-start and before (churn >= e).
    assert_eq!(total.end_customers, 2);
    assert!((total.retention_rate.unwrap() - 100.0 / 3.0).abs() < 1e-9);
}

#[tokio::test]
async fn retention_groups_by_the_latest_nps_answer_before_the_start() {
    let app = spawn_app().await;
    let (s, e) = (utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z"));
    for id in ["p", "d", "u"] {
        app.feedback()
            .upsert_customer(pb::UpsertCustomerRequest {
                customer: Some(pb::Customer {
                    customer_id: id.into(),
                    acquire_time: Some(ts(s - Duration::days(100))),
                    churn_time: (id == "d").then(|| ts(s + Duration::days(1))),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let answer = |id: &str, customer: &str, score, at| {
        let mut r = nps(id, customer, score);
        r.respond_time = Some(ts(at));
        r
    };
    app.feedback()
        .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
            survey_responses: vec![
                answer("p1", "p", 2, s - Duration::days(20)),
                answer("p2", "p", 10, s - Duration::days(2)),
                answer("d1", "d", 3, s - Duration::days(5)),
                // After the start: does not count.
                answer("u1", "u", 10, s + Duration::days(1)),
            ],
        })
        .await
        .unwrap();
    let groups = metrics(&app)
        .get_retention(pb::RetentionRequest {
            time_range: range(s, e),
            group_by_nps_category: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .groups;
    let got: Vec<_> = groups
        .iter()
        .map(|g| {
            let st = g.stats.as_ref().unwrap();
            (
                g.key.as_str(),
                st.start_customers,
                st.retained,
                st.retention_rate,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("promoter", 1, 1, Some(100.0)),
            ("passive", 0, 0, None),
            ("detractor", 1, 0, Some(0.0)),
            ("unknown", 1, 1, Some(100.0))
        ]
    );
}

#[tokio::test]
async fn a_cohort_with_no_later_activity_has_zero_active_in_later_periods() {
    let app = spawn_app().await;
    let answer = |id: &str, customer: &str, at: &str| {
        let mut r = nps(id, customer, 9);
        r.respond_time = Some(ts(utc(at)));
        r
    };
    app.feedback()
        .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
            survey_responses: vec![
                answer("a1", "a", "2026-01-05T10:00:00Z"),
                answer("b1", "b", "2026-01-20T10:00:00Z"),
                answer("b2", "b", "2026-03-02T10:00:00Z"),
                // c's first activity ever is in December, before the range: not a January member.
                answer("c0", "c", "2025-12-20T10:00:00Z"),
                answer("c1", "c", "2026-01-10T10:00:00Z"),
                answer("d1", "d", "2026-02-10T10:00:00Z"),
            ],
        })
        .await
        .unwrap();
    let cohorts = metrics(&app)
        .get_cohort_retention(pb::CohortRetentionRequest {
            time_range: range(utc("2026-01-01T00:00:00Z"), utc("2026-03-01T00:00:00Z")),
            granularity: pb::Granularity::Month as i32,
            periods: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cohorts;
    let got: Vec<_> = cohorts.iter().map(|c| (c.size, c.active.clone())).collect();
    assert_eq!(got, [(2, vec![2, 0, 1, 0]), (1, vec![1, 0, 0, 0])]);
    assert_eq!(cohorts[0].rates, [100.0, 0.0, 50.0, 0.0]);
}

#[tokio::test]
async fn cohort_requests_need_a_granularity_and_sane_periods() {
    let app = spawn_app().await;
    let status = metrics(&app)
        .get_cohort_retention(pb::CohortRetentionRequest {
            time_range: range(utc("2026-01-01T00:00:00Z"), utc("2026-03-01T00:00:00Z")),
            periods: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["granularity", "periods"]);
}

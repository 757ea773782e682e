//! Hand-written metric cases: DST days, half-hour zones, range edges, category edges,
//! scales, empty ranges, missing attributes, empty previous periods, and access.

use chrono::{DateTime, Duration, Utc};
use cxmetrics::proto as pb;
use tonic::Code;

use crate::helpers::*;

fn metrics(app: &TestApp, key: &str) -> Metrics {
    app.metrics_with(key)
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

fn response(id: usize, kind: pb::SurveyKind, score: i32, at: DateTime<Utc>) -> pb::SurveyResponse {
    pb::SurveyResponse {
        response_id: format!("r{id}"),
        survey_id: "s1".into(),
        kind: kind as i32,
        score,
        customer_id: "c1".into(),
        respond_time: Some(ts(at)),
        ..Default::default()
    }
}

async fn record_all(app: &TestApp, responses: Vec<pb::SurveyResponse>) {
    for chunk in responses.chunks(1000) {
        app.feedback()
            .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                survey_responses: chunk.to_vec(),
            })
            .await
            .expect("record");
    }
}

/// One NPS answer every hour from `start` for `hours` hours.
fn hourly(start: DateTime<Utc>, hours: i64) -> Vec<pb::SurveyResponse> {
    (0..hours)
        .map(|h| {
            response(
                h as usize,
                pb::SurveyKind::Nps,
                10,
                start + Duration::hours(h),
            )
        })
        .collect()
}

async fn series_counts(
    app: &TestApp,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    zone: &str,
    granularity: pb::Granularity,
) -> Vec<(DateTime<Utc>, i64)> {
    let report = metrics(app, &app.key)
        .get_nps(pb::MetricRequest {
            time_range: range(start, end),
            time_zone: zone.into(),
            granularity: granularity as i32,
            ..Default::default()
        })
        .await
        .expect("nps")
        .into_inner();
    report
        .series
        .into_iter()
        .map(|p| {
            let t = cxmetrics::grpc::convert::from_timestamp(&p.start_time.unwrap()).unwrap();
            (t, p.stats.unwrap().responses)
        })
        .collect()
}

#[tokio::test]
async fn new_york_dst_days_have_23_and_25_hourly_answers() {
    let app = spawn_app().await;
    // 2026-03-07 00:00 EST to 2026-03-10 00:00 EDT, and around the November change.
    record_all(&app, hourly(utc("2026-03-07T05:00:00Z"), 71)).await;
    let days = series_counts(
        &app,
        utc("2026-03-07T05:00:00Z"),
        utc("2026-03-10T04:00:00Z"),
        "America/New_York",
        pb::Granularity::Day,
    )
    .await;
    assert_eq!(
        days,
        [
            (utc("2026-03-07T05:00:00Z"), 24),
            (utc("2026-03-08T05:00:00Z"), 23),
            (utc("2026-03-09T04:00:00Z"), 24)
        ]
    );
    // The ISO week holding the spring-forward Sunday has 167 hours.
    let weeks = series_counts(
        &app,
        utc("2026-03-02T05:00:00Z"),
        utc("2026-03-16T04:00:00Z"),
        "America/New_York",
        pb::Granularity::Week,
    )
    .await;
    assert_eq!(
        weeks.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [utc("2026-03-02T05:00:00Z"), utc("2026-03-09T04:00:00Z")]
    );
    assert_eq!(weeks[0].1 + weeks[1].1, 71);
}

#[tokio::test]
async fn berlin_fall_back_day_has_25_hourly_answers() {
    let app = spawn_app().await;
    // 2026-10-24 00:00 CEST (22:00 UTC) for three local days.
    record_all(&app, hourly(utc("2026-10-23T22:00:00Z"), 73)).await;
    let days = series_counts(
        &app,
        utc("2026-10-23T22:00:00Z"),
        utc("2026-10-26T23:00:00Z"),
        "Europe/Berlin",
        pb::Granularity::Day,
    )
    .await;
    assert_eq!(
        days,
        [
            (utc("2026-10-23T22:00:00Z"), 24),
            (utc("2026-10-24T22:00:00Z"), 25),
            (utc("2026-10-25T23:00:00Z"), 24)
        ]
    );
    let weeks = series_counts(
        &app,
        utc("2026-10-18T22:00:00Z"),
        utc("2026-11-01T23:00:00Z"),
        "Europe/Berlin",
        pb::Granularity::Week,
    )
    .await;
    // Monday 2026-10-19 00:00 CEST, Monday 2026-10-26 00:00 CET.
    assert_eq!(
        weeks.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [utc("2026-10-18T22:00:00Z"), utc("2026-10-25T23:00:00Z")]
    );
    assert_eq!((weeks[0].1, weeks[1].1), (49, 24));
}

#[tokio::test]
async fn kolkata_and_kathmandu_days_start_at_their_own_midnights() {
    let app = spawn_app().await;
    // Kolkata midnight is 18:30 UTC, Kathmandu midnight 18:15 UTC.
    let at = |s: &str| utc(s);
    record_all(
        &app,
        vec![
            response(1, pb::SurveyKind::Nps, 9, at("2026-05-01T18:14:59Z")),
            response(2, pb::SurveyKind::Nps, 9, at("2026-05-01T18:15:00Z")),
            response(3, pb::SurveyKind::Nps, 9, at("2026-05-01T18:29:59Z")),
            response(4, pb::SurveyKind::Nps, 9, at("2026-05-01T18:30:00Z")),
        ],
    )
    .await;
    let (start, end) = (utc("2026-04-30T18:00:00Z"), utc("2026-05-02T18:00:00Z"));
    let kathmandu = series_counts(&app, start, end, "Asia/Kathmandu", pb::Granularity::Day).await;
    assert_eq!(
        kathmandu,
        [
            (start, 0),
            (utc("2026-04-30T18:15:00Z"), 1),
            (utc("2026-05-01T18:15:00Z"), 3)
        ]
    );
    let kolkata = series_counts(&app, start, end, "Asia/Kolkata", pb::Granularity::Day).await;
    assert_eq!(
        kolkata,
        [
            (start, 0),
            (utc("2026-04-30T18:30:00Z"), 3),
            (utc("2026-05-01T18:30:00Z"), 1)
        ]
    );
}

#[tokio::test]
async fn the_start_is_inclusive_and_the_end_exclusive() {
    let app = spawn_app().await;
    let (start, end) = (utc("2026-06-01T00:00:00Z"), utc("2026-06-02T00:00:00Z"));
    record_all(
        &app,
        vec![
            response(
                1,
                pb::SurveyKind::Nps,
                10,
                start - Duration::nanoseconds(1000),
            ),
            response(2, pb::SurveyKind::Nps, 10, start),
            response(3, pb::SurveyKind::Nps, 0, end - Duration::nanoseconds(1000)),
            response(4, pb::SurveyKind::Nps, 0, end),
        ],
    )
    .await;
    let total = metrics(&app, &app.key)
        .get_nps(pb::MetricRequest {
            time_range: range(start, end),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!(
        (total.responses, total.promoters, total.detractors),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn csat_top_two_box_uses_each_answers_own_scale() {
    let app = spawn_app().await;
    let t = utc("2026-06-01T12:00:00Z");
    let mut responses = Vec::new();
    for (max, scores) in [
        (3, vec![1, 2, 3]),
        (5, vec![3, 4, 5]),
        (7, vec![5, 6, 7]),
        (10, vec![8, 9, 10]),
    ] {
        for score in scores {
            let mut r = response(responses.len(), pb::SurveyKind::Csat, score, t);
            r.scale = Some(pb::ScoreScale { min: 1, max });
            responses.push(r);
        }
    }
    record_all(&app, responses).await;
    let total = metrics(&app, &app.key)
        .get_csat(pb::MetricRequest {
            time_range: range(t, t + Duration::hours(1)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    // Satisfied: 2,3 | 4,5 | 6,7 | 9,10.
    assert_eq!((total.responses, total.satisfied), (12, 8));
    let csat = total.csat.unwrap();
    assert!((csat - 200.0 / 3.0).abs() < 1e-9);
    assert!(total.ci_low.unwrap() < csat && csat < total.ci_high.unwrap());
}

#[tokio::test]
async fn nps_category_edges_are_six_seven_eight_nine() {
    let app = spawn_app().await;
    let t = utc("2026-06-01T12:00:00Z");
    record_all(
        &app,
        [0, 6, 7, 8, 9, 10]
            .iter()
            .enumerate()
            .map(|(i, s)| response(i, pb::SurveyKind::Nps, *s, t))
            .collect(),
    )
    .await;
    let total = metrics(&app, &app.key)
        .get_nps(pb::MetricRequest {
            time_range: range(t, t + Duration::hours(1)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!(
        (total.detractors, total.passives, total.promoters),
        (2, 2, 2)
    );
    assert_eq!(total.nps, Some(0.0));
}

#[tokio::test]
async fn an_empty_range_has_zero_counts_and_absent_rates() {
    let app = spawn_app().await;
    let (start, end) = (utc("2026-01-01T00:00:00Z"), utc("2026-01-04T00:00:00Z"));
    let request = pb::MetricRequest {
        time_range: range(start, end),
        granularity: pb::Granularity::Day as i32,
        compare_previous: true,
        ..Default::default()
    };
    let mut client = metrics(&app, &app.key);
    let nps = client.get_nps(request.clone()).await.unwrap().into_inner();
    let total = nps.total.unwrap();
    assert_eq!(
        (total.responses, total.nps, total.margin_of_error),
        (0, None, None)
    );
    assert_eq!(nps.series.len(), 3);
    assert!(
        nps.series
            .iter()
            .all(|p| p.stats.as_ref().unwrap().nps.is_none())
    );
    assert_eq!(nps.change.unwrap().delta, None);
    let csat = client
        .get_csat(request.clone())
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!(
        (csat.responses, csat.csat, csat.ci_low, csat.mean_score),
        (0, None, None, None)
    );
    let ces = client
        .get_ces(request)
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!((ces.responses, ces.easy_share), (0, None));
}

#[tokio::test]
async fn records_without_the_grouping_attribute_form_the_empty_group() {
    let app = spawn_app().await;
    let t = utc("2026-06-01T12:00:00Z");
    let mut a = response(1, pb::SurveyKind::Nps, 10, t);
    a.attributes = [("plan".to_string(), "pro".to_string())].into();
    let b = response(2, pb::SurveyKind::Nps, 0, t);
    record_all(&app, vec![a, b]).await;
    let groups = metrics(&app, &app.key)
        .get_nps(pb::MetricRequest {
            time_range: range(t, t + Duration::hours(1)),
            group_by: pb::Dimension::Attribute as i32,
            group_by_attribute: "plan".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .groups;
    let got: Vec<_> = groups
        .iter()
        .map(|g| (g.key.as_str(), g.stats.as_ref().unwrap().nps))
        .collect();
    assert_eq!(got, [("", Some(-100.0)), ("pro", Some(100.0))]);
}

#[tokio::test]
async fn compare_previous_with_an_empty_previous_period_has_no_delta() {
    let app = spawn_app().await;
    let t = utc("2026-06-01T12:00:00Z");
    record_all(&app, vec![response(1, pb::SurveyKind::Ces, 6, t)]).await;
    let report = metrics(&app, &app.key)
        .get_ces(pb::MetricRequest {
            time_range: range(t, t + Duration::days(1)),
            compare_previous: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.previous.unwrap().responses, 0);
    let change = report.change.unwrap();
    assert_eq!(
        (change.delta, change.p_value, change.significant),
        (None, None, false)
    );
    assert_eq!(report.total.unwrap().easy, 1);
}

#[tokio::test]
async fn metrics_need_the_read_scope_and_name_bad_fields() {
    let app = spawn_app().await;
    let write_only = app.create_key(TENANT, "write").await;
    let t = utc("2026-06-01T12:00:00Z");
    let request = pb::MetricRequest {
        time_range: range(t, t + Duration::days(1)),
        ..Default::default()
    };
    let status = metrics(&app, &write_only)
        .get_nps(request.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = metrics(&app, "nonsense")
        .get_nps(request.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let bad = pb::MetricRequest {
        time_zone: "Europe/Atlantis".into(),
        ..request
    };
    let status = metrics(&app, &app.key).get_csat(bad).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["time_zone"]);
    let too_long = pb::MetricRequest {
        time_range: range(t - Duration::days(3700), t),
        ..Default::default()
    };
    let status = metrics(&app, &app.key).get_ces(too_long).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["time_range"]);
}

#[tokio::test]
async fn agent_filters_and_groups_follow_the_linked_interaction() {
    let app = spawn_app().await;
    let t = utc("2026-06-01T12:00:00Z");
    let mut feedback = app.feedback();
    for (id, agent) in [("i1", "ann"), ("i2", "bob")] {
        let mut i = interaction(id, "c1");
        i.agent_id = agent.into();
        feedback
            .upsert_interaction(pb::UpsertInteractionRequest {
                interaction: Some(i),
            })
            .await
            .unwrap();
    }
    let mut responses = Vec::new();
    for (n, (link, score)) in [("i1", 5), ("i1", 4), ("i2", 1), ("", 5)]
        .into_iter()
        .enumerate()
    {
        let mut r = response(n, pb::SurveyKind::Csat, score, t);
        r.interaction_id = link.into();
        responses.push(r);
    }
    record_all(&app, responses).await;
    let base = pb::MetricRequest {
        time_range: range(t, t + Duration::hours(1)),
        ..Default::default()
    };
    let mut client = metrics(&app, &app.key);
    let groups = client
        .get_csat(pb::MetricRequest {
            group_by: pb::Dimension::Agent as i32,
            ..base.clone()
        })
        .await
        .unwrap()
        .into_inner()
        .groups;
    let got: Vec<_> = groups
        .iter()
        .map(|g| (g.key.as_str(), g.stats.as_ref().unwrap().responses))
        .collect();
    assert_eq!(got, [("", 1), ("ann", 2), ("bob", 1)]);
    let filtered = client
        .get_csat(pb::MetricRequest {
            filter: Some(pb::MetricFilter {
                agent_ids: vec!["ann".into()],
                ..Default::default()
            }),
            ..base
        })
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!((filtered.responses, filtered.satisfied), (2, 2));
}

/// NPS per month per channel in Europe/Berlin, February to May 2026: the range crosses the
/// spring-forward change (March 29) and May has no answers.
#[tokio::test]
async fn each_channel_has_its_own_monthly_nps_series_across_dst() {
    let app = spawn_app().await;
    let answers = [
        // January 31, 23:59:59 CET: in the previous period only.
        ("email", 0, "2026-01-31T22:59:59Z"),
        // February 1, 00:00 CET, the range's first instant.
        ("email", 10, "2026-01-31T23:00:00Z"),
        // February 28, 23:59:59 CET.
        ("chat", 3, "2026-02-28T22:59:59Z"),
        // March 1, 00:30 CET (still February in UTC).
        ("email", 8, "2026-02-28T23:30:00Z"),
        // March 29, 03:30 CEST, just after the change.
        ("email", 9, "2026-03-29T01:30:00Z"),
        // March 31, 23:30 CEST.
        ("chat", 9, "2026-03-31T21:30:00Z"),
        // April 1, 00:30 CEST (still March at the winter offset).
        ("chat", 10, "2026-03-31T22:30:00Z"),
        // April 30, 23:59:59 CEST.
        ("chat", 6, "2026-04-30T21:59:59Z"),
        // June 1, 00:00 CEST: the range's end, excluded.
        ("email", 7, "2026-05-31T22:00:00Z"),
    ];
    let responses = answers
        .iter()
        .enumerate()
        .map(|(i, (channel, score, at))| pb::SurveyResponse {
            channel: channel.to_string(),
            ..response(i, pb::SurveyKind::Nps, *score, utc(at))
        })
        .collect();
    record_all(&app, responses).await;
    let report = metrics(&app, &app.key)
        .get_nps(pb::MetricRequest {
            time_range: range(utc("2026-01-31T23:00:00Z"), utc("2026-05-31T22:00:00Z")),
            time_zone: "Europe/Berlin".into(),
            granularity: pb::Granularity::Month as i32,
            group_by: pb::Dimension::Channel as i32,
            compare_previous: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let months = [
        utc("2026-01-31T23:00:00Z"),
        utc("2026-02-28T23:00:00Z"),
        utc("2026-03-31T22:00:00Z"),
        utc("2026-04-30T22:00:00Z"),
    ];
    // (responses, promoters, passives, detractors, nps) per point.
    type Row = (i64, i64, i64, i64, Option<f64>);
    let row =
        |s: &pb::NpsStats| -> Row { (s.responses, s.promoters, s.passives, s.detractors, s.nps) };
    let series = |points: &[pb::NpsPoint]| -> Vec<(DateTime<Utc>, Row)> {
        points
            .iter()
            .map(|p| {
                let t = cxmetrics::grpc::convert::from_timestamp(&p.start_time.unwrap()).unwrap();
                (t, row(p.stats.as_ref().unwrap()))
            })
            .collect()
    };
    let keys: Vec<_> = report.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["chat", "email"]);
    let (chat, email) = (&report.groups[0], &report.groups[1]);
    assert_eq!(
        series(&chat.series),
        [
            (months[0], (1, 0, 0, 1, Some(-100.0))),
            (months[1], (1, 1, 0, 0, Some(100.0))),
            (months[2], (2, 1, 0, 1, Some(0.0))),
            (months[3], (0, 0, 0, 0, None)),
        ]
    );
    assert_eq!(
        series(&email.series),
        [
            (months[0], (1, 1, 0, 0, Some(100.0))),
            (months[1], (2, 1, 1, 0, Some(50.0))),
            (months[2], (0, 0, 0, 0, None)),
            (months[3], (0, 0, 0, 0, None)),
        ]
    );
    // Two answers, half promoters, no detractors: 1.96 x 100 x sqrt(0.5 / 2).
    let moe = email.series[1].stats.as_ref().unwrap().margin_of_error;
    assert!((moe.unwrap() - 1.96 * 100.0 * 0.125f64.sqrt()).abs() < 1e-9);
    assert_eq!(
        email.series[2].stats.as_ref().unwrap().margin_of_error,
        None
    );

    // The groups' totals and the report's series hold the same answers.
    assert_eq!(row(chat.stats.as_ref().unwrap()), (4, 2, 0, 2, Some(0.0)));
    let email_total = email.stats.as_ref().unwrap();
    assert_eq!(
        (
            email_total.responses,
            email_total.promoters,
            email_total.passives,
            email_total.detractors
        ),
        (3, 2, 1, 0)
    );
    assert!((email_total.nps.unwrap() - 200.0 / 3.0).abs() < 1e-9);
    let overall: Vec<_> = series(&report.series)
        .into_iter()
        .map(|(t, r)| (t, r.0))
        .collect();
    assert_eq!(
        overall,
        [
            (months[0], 2),
            (months[1], 3),
            (months[2], 2),
            (months[3], 0)
        ]
    );
    // The previous period's answer is in `previous`, in no series.
    assert_eq!(report.previous.unwrap().responses, 1);
}

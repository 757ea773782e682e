//! Property tests for response times, retention and cohorts: every figure equals a
//! reference computation over the raw records written here (sorted-array percentiles,
//! per-customer walks), sharing no code with the service.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use cxmetrics::proto as pb;
use proptest::prelude::*;

use crate::helpers::*;

const ZONES: &[&str] = &["UTC", "America/New_York", "Europe/Berlin", "Asia/Kathmandu"];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap()
}

fn to_time(t: &prost_types::Timestamp) -> DateTime<Utc> {
    cxmetrics::grpc::convert::from_timestamp(t).unwrap()
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
        (None, None) => true,
        _ => false,
    }
}

async fn tenant_key(app: &TestApp) -> String {
    let tenant = format!("ref-{}", uuid::Uuid::new_v4().simple());
    app.create_key(&tenant, "read,write").await
}

fn metrics(app: &TestApp, key: &str) -> Metrics {
    app.metrics_with(key)
}

// ---------------------------------------------------------------- response times

#[derive(Debug, Clone)]
struct Inter {
    open: DateTime<Utc>,
    first: Option<i64>,
    resolve: Option<i64>,
    agent: &'static str,
    channel: &'static str,
}

fn inter_strategy() -> impl Strategy<Value = Inter> {
    (
        0..(120 * 24 * 60i64),
        proptest::option::weighted(0.8, 0..(3 * 24 * 3600i64)),
        proptest::option::weighted(0.6, 0..(9 * 24 * 3600i64)),
        0..3usize,
        0..3usize,
    )
        .prop_map(|(minute, first, resolve, agent, channel)| Inter {
            open: base() + Duration::minutes(minute) + Duration::milliseconds(minute % 1000),
            first,
            resolve,
            agent: ["", "ann", "bob"][agent],
            channel: ["", "email", "chat"][channel],
        })
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// Checks every field of `got` against `values` (the durations, in any order).
pub(crate) fn check_durations(got: &pb::DurationStats, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(got.count, values.len() as i64);
    let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    assert!(close(got.mean_seconds, mean), "{got:?}");
    assert!(close(got.min_seconds, values.first().copied()));
    assert!(close(got.max_seconds, values.last().copied()));
    for (g, p) in [
        (got.p50_seconds, 0.5),
        (got.p90_seconds, 0.9),
        (got.p95_seconds, 0.95),
        (got.p99_seconds, 0.99),
    ] {
        assert!(
            close(g, percentile(&values, p)),
            "p{p}: {g:?} vs {:?}",
            percentile(&values, p)
        );
    }
}

fn check_sla(
    got: &Option<pb::SlaStats>,
    durations: &[Option<f64>],
    waited: &[f64],
    target: Option<f64>,
) {
    let Some(target) = target else {
        assert!(got.is_none());
        return;
    };
    let got = got.as_ref().expect("sla stats with a target");
    let mut met = 0;
    let mut breached = 0;
    for (d, w) in durations.iter().zip(waited) {
        match d {
            Some(d) if *d <= target => met += 1,
            Some(_) => breached += 1,
            None if *w > target => breached += 1,
            None => {}
        }
    }
    assert_eq!((got.met, got.breached), (met, breached));
    let attainment = (met + breached > 0).then(|| 100.0 * met as f64 / (met + breached) as f64);
    assert!(close(got.attainment, attainment));
}

fn check_rt(
    got: &pb::ResponseTimeStats,
    items: &[&Inter],
    targets: (Option<f64>, Option<f64>),
    now: DateTime<Utc>,
) {
    assert_eq!(got.interactions, items.len() as i64);
    assert_eq!(
        got.unanswered,
        items.iter().filter(|i| i.first.is_none()).count() as i64
    );
    assert_eq!(
        got.unresolved,
        items.iter().filter(|i| i.resolve.is_none()).count() as i64
    );
    let secs = |ms: Option<i64>| ms.map(|s| s as f64);
    let first: Vec<Option<f64>> = items.iter().map(|i| secs(i.first)).collect();
    let resolve: Vec<Option<f64>> = items.iter().map(|i| secs(i.resolve)).collect();
    check_durations(
        got.first_response.as_ref().unwrap(),
        first.iter().flatten().copied().collect(),
    );
    check_durations(
        got.resolution.as_ref().unwrap(),
        resolve.iter().flatten().copied().collect(),
    );
    let waited: Vec<f64> = items
        .iter()
        .map(|i| (now - i.open).num_milliseconds() as f64 / 1000.0)
        .collect();
    check_sla(&got.first_response_sla, &first, &waited, targets.0);
    check_sla(&got.resolution_sla, &resolve, &waited, targets.1);
}

async fn run_response_times(
    inters: Vec<Inter>,
    tz: &'static str,
    granularity: i32,
    group_by: i32,
    targets: (Option<f64>, Option<f64>),
    start_h: i64,
    len_h: i64,
) {
    let app = &world().app;
    let key = tenant_key(app).await;
    let records: Vec<_> = inters
        .iter()
        .enumerate()
        .map(|(n, i)| pb::Interaction {
            interaction_id: format!("i{n}"),
            customer_id: "c".into(),
            channel: i.channel.into(),
            agent_id: i.agent.into(),
            open_time: Some(ts(i.open)),
            first_response_time: i.first.map(|s| ts(i.open + Duration::seconds(s))),
            resolve_time: i.resolve.map(|s| ts(i.open + Duration::seconds(s))),
            ..Default::default()
        })
        .collect();
    if !records.is_empty() {
        app.feedback_with(Some(&key))
            .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest {
                interactions: records,
            })
            .await
            .unwrap();
    }
    let (start, end) = (
        base() + Duration::hours(start_h),
        base() + Duration::hours(start_h + len_h),
    );
    let to_duration = |s: Option<f64>| {
        s.map(|s| prost_types::Duration {
            seconds: s as i64,
            nanos: 0,
        })
    };
    let report = metrics(app, &key)
        .get_response_times(pb::ResponseTimeRequest {
            query: Some(pb::MetricRequest {
                time_range: Some(pb::TimeRange {
                    start_time: Some(ts(start)),
                    end_time: Some(ts(end)),
                }),
                time_zone: tz.into(),
                granularity,
                group_by,
                compare_previous: true,
                ..Default::default()
            }),
            first_response_target: to_duration(targets.0),
            resolution_target: to_duration(targets.1),
            calendar_id: String::new(),
            // The exactness test of the raw path; the rollups' answers are checked against
            // it in `interaction_rollups.rs`.
            exact: true,
        })
        .await
        .unwrap()
        .into_inner();
    let now = Utc::now();
    let in_range = |from: DateTime<Utc>, to: DateTime<Utc>| -> Vec<&Inter> {
        inters
            .iter()
            .filter(|i| i.open >= from && i.open < to)
            .collect()
    };
    let current = in_range(start, end);
    check_rt(report.total.as_ref().unwrap(), &current, targets, now);
    check_rt(
        report.previous.as_ref().unwrap(),
        &in_range(start - (end - start), start),
        targets,
        now,
    );
    // Series: every point covers [its start, the next point's start or the range end).
    let zone: Tz = tz.parse().unwrap();
    let mut starts: Vec<DateTime<Utc>> = report
        .series
        .iter()
        .map(|p| to_time(p.start_time.as_ref().unwrap()))
        .collect();
    if granularity == 0 {
        assert!(starts.is_empty());
    } else {
        assert_eq!(starts.first(), Some(&start));
        for t in &starts[1..] {
            assert_eq!(
                t.with_timezone(&zone).time(),
                chrono::NaiveTime::MIN,
                "buckets start at local midnight"
            );
        }
        starts.push(end);
        for (w, point) in starts.windows(2).zip(&report.series) {
            check_rt(
                point.stats.as_ref().unwrap(),
                &in_range(w[0], w[1]),
                targets,
                now,
            );
        }
    }
    let key_of = |i: &Inter| -> String {
        match group_by {
            2 => i.channel.into(),
            3 => i.agent.into(),
            _ => String::new(),
        }
    };
    let mut groups: BTreeMap<String, Vec<&Inter>> = BTreeMap::new();
    if group_by != 0 {
        for i in &current {
            groups.entry(key_of(i)).or_default().push(i);
        }
    }
    assert_eq!(
        report
            .groups
            .iter()
            .map(|g| g.key.clone())
            .collect::<Vec<_>>(),
        groups.keys().cloned().collect::<Vec<_>>()
    );
    for g in &report.groups {
        check_rt(g.stats.as_ref().unwrap(), &groups[&g.key], targets, now);
        // The group's own series: the report's buckets, each over the group's members.
        let group_starts: Vec<DateTime<Utc>> = g
            .series
            .iter()
            .map(|p| to_time(p.start_time.as_ref().unwrap()))
            .collect();
        if granularity == 0 {
            assert!(group_starts.is_empty());
            continue;
        }
        assert_eq!(group_starts[..], starts[..starts.len() - 1]);
        for (w, point) in starts.windows(2).zip(&g.series) {
            let members: Vec<&Inter> = in_range(w[0], w[1])
                .into_iter()
                .filter(|i| key_of(i) == g.key)
                .collect();
            check_rt(point.stats.as_ref().unwrap(), &members, targets, now);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn response_time_figures_equal_the_reference(
        inters in proptest::collection::vec(inter_strategy(), 0..200),
        tz in 0..ZONES.len(),
        granularity in prop_oneof![Just(0), Just(1), Just(2), Just(3)],
        group_by in prop_oneof![Just(0), Just(2), Just(3)],
        first_target in proptest::option::of(1..(2 * 24 * 3600i64)),
        resolve_target in proptest::option::of(1..(5 * 24 * 3600i64)),
        start_h in 0..(90 * 24i64),
        len_h in 1..(40 * 24i64),
    ) {
        let targets = (first_target.map(|t| t as f64), resolve_target.map(|t| t as f64));
        world().runtime.block_on(run_response_times(inters, ZONES[tz], granularity, group_by, targets, start_h, len_h));
    }
}

// ---------------------------------------------------------------- retention

#[derive(Debug, Clone)]
struct Cust {
    acquire: DateTime<Utc>,
    churn: Option<DateTime<Utc>>,
    nps: Vec<(DateTime<Utc>, i32)>,
}

fn day(d: i64) -> DateTime<Utc> {
    base() + Duration::days(d)
}

fn cust_strategy() -> impl Strategy<Value = Cust> {
    (
        0..200i64,
        proptest::option::of(0..200i64),
        proptest::collection::vec((0..200i64, 0..=10i32), 0..3),
    )
        .prop_map(|(a, c, nps)| Cust {
            acquire: day(a),
            // Churn exactly on some period boundaries too (whole days).
            churn: c.map(|c| day(a + c)),
            nps: nps
                .into_iter()
                .map(|(d, s)| (day(d) + Duration::hours(7), s))
                .collect(),
        })
}

fn ref_retention(custs: &[&Cust], s: DateTime<Utc>, e: DateTime<Utc>) -> (i64, i64, i64, i64) {
    let active = |c: &Cust, t: DateTime<Utc>| c.acquire < t && c.churn.is_none_or(|x| x >= t);
    let start = custs.iter().filter(|c| active(c, s)).count() as i64;
    let end = custs.iter().filter(|c| active(c, e)).count() as i64;
    let new = custs
        .iter()
        .filter(|c| c.acquire >= s && c.acquire < e)
        .count() as i64;
    let retained = custs
        .iter()
        .filter(|c| active(c, s) && c.churn.is_none_or(|x| x >= e))
        .count() as i64;
    (start, end, new, retained)
}

fn check_retention(got: &pb::RetentionStats, want: (i64, i64, i64, i64)) {
    let (start, end, new, retained) = want;
    assert_eq!(
        (
            got.start_customers,
            got.end_customers,
            got.new_customers,
            got.retained,
            got.churned
        ),
        (start, end, new, retained, start - retained)
    );
    let rate = (start > 0).then(|| 100.0 * retained as f64 / start as f64);
    assert!(
        close(got.retention_rate, rate) && close(got.churn_rate, rate.map(|r| 100.0 - r)),
        "{got:?}"
    );
}

async fn run_retention(
    custs: Vec<Cust>,
    tz: &'static str,
    granularity: i32,
    start_d: i64,
    len_d: i64,
) {
    let app = &world().app;
    let key = tenant_key(app).await;
    let mut feedback = app.feedback_with(Some(&key));
    let mut responses = Vec::new();
    for (n, c) in custs.iter().enumerate() {
        feedback
            .upsert_customer(pb::UpsertCustomerRequest {
                customer: Some(pb::Customer {
                    customer_id: format!("c{n}"),
                    acquire_time: Some(ts(c.acquire)),
                    churn_time: c.churn.map(ts),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
        for (k, (t, score)) in c.nps.iter().enumerate() {
            let mut r = nps(&format!("r{n}-{k}"), &format!("c{n}"), *score);
            r.respond_time = Some(ts(*t));
            responses.push(r);
        }
    }
    if !responses.is_empty() {
        feedback
            .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                survey_responses: responses,
            })
            .await
            .unwrap();
    }
    let (start, end) = (day(start_d), day(start_d + len_d));
    let report = metrics(app, &key)
        .get_retention(pb::RetentionRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(ts(start)),
                end_time: Some(ts(end)),
            }),
            time_zone: tz.into(),
            granularity,
            group_by_nps_category: true,
        })
        .await
        .unwrap()
        .into_inner();
    let all: Vec<&Cust> = custs.iter().collect();
    check_retention(
        report.total.as_ref().unwrap(),
        ref_retention(&all, start, end),
    );
    let mut starts: Vec<DateTime<Utc>> = report
        .series
        .iter()
        .map(|p| to_time(p.start_time.as_ref().unwrap()))
        .collect();
    if granularity == 0 {
        assert!(starts.is_empty());
    } else {
        assert_eq!(starts[0], start);
        starts.push(end);
        for (w, p) in starts.windows(2).zip(&report.series) {
            check_retention(p.stats.as_ref().unwrap(), ref_retention(&all, w[0], w[1]));
        }
    }
    let category = |c: &Cust| -> &str {
        match c
            .nps
            .iter()
            .filter(|(t, _)| *t < start)
            .max_by_key(|(t, _)| *t)
        {
            None => "unknown",
            Some((_, s)) if *s >= 9 => "promoter",
            Some((_, s)) if *s >= 7 => "passive",
            Some(_) => "detractor",
        }
    };
    let keys: Vec<_> = report.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["promoter", "passive", "detractor", "unknown"]);
    for g in &report.groups {
        let members: Vec<&Cust> = custs.iter().filter(|c| category(c) == g.key).collect();
        check_retention(
            g.stats.as_ref().unwrap(),
            ref_retention(&members, start, end),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn retention_figures_equal_the_reference(
        custs in proptest::collection::vec(cust_strategy(), 0..40),
        tz in 0..ZONES.len(),
        granularity in prop_oneof![Just(0), Just(1), Just(2), Just(3)],
        start_d in 0..150i64,
        len_d in 1..90i64,
    ) {
        world().runtime.block_on(run_retention(custs, ZONES[tz], granularity, start_d, len_d));
    }
}

// ---------------------------------------------------------------- cohorts

fn month_key(t: DateTime<Utc>, tz: Tz) -> (i32, u32) {
    let d = t.with_timezone(&tz).date_naive();
    (d.year(), d.month())
}

fn add_months(key: (i32, u32), k: u32) -> (i32, u32) {
    let m = key.0 * 12 + key.1 as i32 - 1 + k as i32;
    (m.div_euclid(12), (m.rem_euclid(12) + 1) as u32)
}

async fn run_cohorts(
    activity: Vec<(usize, i64, bool)>,
    tz: &'static str,
    start_d: i64,
    len_d: i64,
    periods: i32,
) {
    let app = &world().app;
    let key = tenant_key(app).await;
    let mut feedback = app.feedback_with(Some(&key));
    let mut responses = Vec::new();
    let mut interactions = Vec::new();
    let mut events: HashMap<usize, Vec<DateTime<Utc>>> = HashMap::new();
    for (n, (customer, hours, is_response)) in activity.iter().enumerate() {
        let t = base() + Duration::hours(*hours);
        events.entry(*customer).or_default().push(t);
        if *is_response {
            let mut r = nps(&format!("r{n}"), &format!("c{customer}"), 8);
            r.respond_time = Some(ts(t));
            responses.push(r);
        } else {
            let mut i = interaction(&format!("i{n}"), &format!("c{customer}"));
            i.open_time = Some(ts(t));
            i.first_response_time = None;
            interactions.push(i);
        }
    }
    if !responses.is_empty() {
        feedback
            .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                survey_responses: responses,
            })
            .await
            .unwrap();
    }
    if !interactions.is_empty() {
        feedback
            .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest { interactions })
            .await
            .unwrap();
    }
    let (start, end) = (day(start_d), day(start_d + len_d));
    let report = metrics(app, &key)
        .get_cohort_retention(pb::CohortRetentionRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(ts(start)),
                end_time: Some(ts(end)),
            }),
            time_zone: tz.into(),
            granularity: pb::Granularity::Month as i32,
            periods,
        })
        .await
        .unwrap()
        .into_inner();
    let zone: Tz = tz.parse().unwrap();
    // Reference: months whose local first instant lies in [start, end).
    let first_local = start.with_timezone(&zone).date_naive();
    let mut cohort_months = Vec::new();
    let mut d = NaiveDate::from_ymd_opt(first_local.year(), first_local.month(), 1).unwrap();
    loop {
        let t = zone
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .to_utc();
        if t >= end {
            break;
        }
        if t >= start {
            cohort_months.push((t, (d.year(), d.month())));
        }
        d = d.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    assert_eq!(report.cohorts.len(), cohort_months.len());
    for (cohort, (t, month)) in report.cohorts.iter().zip(&cohort_months) {
        assert_eq!(to_time(cohort.start_time.as_ref().unwrap()), *t);
        let members: Vec<&Vec<DateTime<Utc>>> = events
            .values()
            .filter(|ts| month_key(*ts.iter().min().unwrap(), zone) == *month)
            .collect();
        assert_eq!(cohort.size, members.len() as i64);
        let active: Vec<i64> = (0..periods as u32)
            .map(|k| {
                members
                    .iter()
                    .filter(|ts| {
                        ts.iter()
                            .any(|t| month_key(*t, zone) == add_months(*month, k))
                    })
                    .count() as i64
            })
            .collect();
        assert_eq!(cohort.active, active);
        let rates: Vec<f64> = if members.is_empty() {
            Vec::new()
        } else {
            active
                .iter()
                .map(|a| 100.0 * *a as f64 / members.len() as f64)
                .collect()
        };
        assert_eq!(cohort.rates.len(), rates.len());
        for (g, w) in cohort.rates.iter().zip(&rates) {
            assert!((g - w).abs() < 1e-9);
        }
    }
    let _ = HashSet::<usize>::new();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cohort_tables_equal_the_reference(
        activity in proptest::collection::vec((0..25usize, 0..(300 * 24i64), any::<bool>()), 0..120),
        tz in 0..ZONES.len(),
        start_d in 0..200i64,
        len_d in 1..120i64,
        periods in 1..6i32,
    ) {
        world().runtime.block_on(run_cohorts(activity, ZONES[tz], start_d, len_d, periods));
    }
}

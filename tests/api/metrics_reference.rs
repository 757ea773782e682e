//! Property test: every field of the NPS, CSAT and CES reports equals a reference
//! computation written here, over random records and random queries. The reference walks
//! the raw records one by one; it shares no code with the service.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use cxmetrics::proto as pb;
use proptest::prelude::*;

use crate::helpers::*;

#[derive(Debug, Clone)]
struct Resp {
    id: usize,
    kind: pb::SurveyKind,
    scale: (i32, i32),
    score: i32,
    at: DateTime<Utc>,
    survey: &'static str,
    channel: &'static str,
    plan: Option<&'static str>,
    interaction: Option<usize>,
}

#[derive(Debug, Clone)]
struct Inter {
    agent: &'static str,
    team: &'static str,
}

#[derive(Debug, Clone)]
struct Query {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    tz: &'static str,
    granularity: pb::Granularity,
    group_by: pb::Dimension,
    compare_previous: bool,
    channels: Vec<&'static str>,
    agent_ids: Vec<&'static str>,
    plan: Option<&'static str>,
}

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Kathmandu",
];
const CHANNELS: &[&str] = &["", "email", "chat"];
const AGENTS: &[&str] = &["", "a1", "a2"];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap()
}

fn resp_strategy() -> impl Strategy<Value = Resp> {
    (
        0..3usize,
        0..4usize,
        0u32..1000,
        0..(240 * 24 * 60i64),
        0..2usize,
        0..3usize,
        0..3usize,
        proptest::option::of(0..6usize),
    )
        .prop_map(
            |(k, scale_i, score_seed, minute, survey, channel, plan, interaction)| {
                let (kind, scale) = match k {
                    0 => (pb::SurveyKind::Nps, (0, 10)),
                    1 => (
                        pb::SurveyKind::Csat,
                        [(1, 3), (1, 5), (1, 7), (1, 10)][scale_i],
                    ),
                    _ => (
                        pb::SurveyKind::Ces,
                        [(1, 7), (1, 5), (0, 6), (1, 7)][scale_i],
                    ),
                };
                let points = (scale.1 - scale.0 + 1) as u32;
                Resp {
                    id: 0,
                    kind,
                    scale,
                    score: scale.0 + (score_seed % points) as i32,
                    at: base() + Duration::minutes(minute),
                    survey: ["s1", "s2"][survey],
                    channel: CHANNELS[channel],
                    plan: [None, Some("pro"), Some("free")][plan],
                    interaction,
                }
            },
        )
}

fn query_strategy() -> impl Strategy<Value = Query> {
    (
        0..(200 * 24i64),
        1..(60 * 24i64),
        0..ZONES.len(),
        0..6i32,
        0..6i32,
        any::<bool>(),
        proptest::sample::subsequence(vec!["email", "chat"], 0..=1),
        proptest::sample::subsequence(vec!["a1", "a2"], 0..=1),
        proptest::option::of(prop_oneof![Just("pro"), Just("free")]),
    )
        .prop_map(
            |(offset_h, len_h, tz, g, d, compare_previous, channels, agent_ids, plan)| {
                let start = base() + Duration::hours(20 * 24 + offset_h) + Duration::minutes(17);
                Query {
                    start,
                    end: start + Duration::hours(len_h),
                    tz: ZONES[tz],
                    granularity: pb::Granularity::try_from(g).unwrap(),
                    group_by: pb::Dimension::try_from(d).unwrap(),
                    compare_previous,
                    channels,
                    agent_ids,
                    plan,
                }
            },
        )
}

/// The bucket a local date belongs to, as a comparable key.
fn bucket_key(g: pb::Granularity, d: NaiveDate) -> (i32, u32) {
    match g {
        pb::Granularity::Unspecified => (0, 0),
        pb::Granularity::Day => (d.year(), d.ordinal()),
        pb::Granularity::Week => (d.iso_week().year(), d.iso_week().week()),
        pb::Granularity::Month => (d.year(), d.month()),
        pb::Granularity::Quarter => (d.year(), d.month0() / 3),
        pb::Granularity::Year => (d.year(), 0),
    }
}

fn key_at(q: &Query, t: DateTime<Utc>) -> (i32, u32) {
    let tz: Tz = q.tz.parse().unwrap();
    bucket_key(q.granularity, t.with_timezone(&tz).date_naive())
}

fn group_key(q: &Query, r: &Resp, inters: &[Inter]) -> String {
    let inter = r.interaction.map(|i| &inters[i]);
    match q.group_by {
        pb::Dimension::Survey => r.survey.into(),
        pb::Dimension::Channel => r.channel.into(),
        pb::Dimension::Agent => inter.map(|i| i.agent).unwrap_or("").into(),
        pb::Dimension::Team => inter.map(|i| i.team).unwrap_or("").into(),
        pb::Dimension::Attribute => r.plan.unwrap_or("").into(),
        pb::Dimension::Unspecified => String::new(),
    }
}

fn matches(q: &Query, r: &Resp, inters: &[Inter]) -> bool {
    let agent = r.interaction.map(|i| inters[i].agent).unwrap_or("");
    (q.channels.is_empty() || q.channels.contains(&r.channel))
        && (q.agent_ids.is_empty() || q.agent_ids.contains(&agent))
        && (q.plan.is_none() || q.plan == r.plan)
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9 * (1.0 + a.abs()),
        (None, None) => true,
        _ => false,
    }
}

fn p_two_sided(z: f64) -> f64 {
    libm::erfc(z.abs() / 2f64.sqrt())
}

/// Reference NPS stats and the standard error.
fn ref_nps(rs: &[&Resp]) -> (pb::NpsStats, Option<f64>) {
    let n = rs.len() as i64;
    let p = rs.iter().filter(|r| r.score >= 9).count() as i64;
    let d = rs.iter().filter(|r| r.score <= 6).count() as i64;
    let mut s = pb::NpsStats {
        responses: n,
        promoters: p,
        passives: n - p - d,
        detractors: d,
        nps: None,
        margin_of_error: None,
    };
    let mut se = None;
    if n > 0 {
        let (pf, df, nf) = (p as f64 / n as f64, d as f64 / n as f64, n as f64);
        s.nps = Some(100.0 * (pf - df));
        s.margin_of_error = Some(1.96 * 100.0 * ((pf + df - (pf - df).powi(2)) / nf).sqrt());
        se = Some(100.0 * ((pf + df - (pf - df).powi(2)) / nf).sqrt());
    }
    (s, se)
}

fn ref_csat(rs: &[&Resp]) -> pb::CsatStats {
    let n = rs.len() as i64;
    let sat = rs.iter().filter(|r| r.score >= r.scale.1 - 1).count() as i64;
    let mut counts = std::collections::HashMap::new();
    for r in rs {
        *counts.entry(r.score).or_insert(0i64) += 1;
    }
    let mut s = pb::CsatStats {
        responses: n,
        satisfied: sat,
        score_counts: counts,
        ..Default::default()
    };
    if n > 0 {
        let (nf, p) = (n as f64, sat as f64 / n as f64);
        s.csat = Some(100.0 * p);
        s.mean_score = Some(rs.iter().map(|r| r.score as f64).sum::<f64>() / nf);
        let z = 1.959963984540054f64;
        let c = (p + z * z / (2.0 * nf)) / (1.0 + z * z / nf);
        let h = z / (1.0 + z * z / nf) * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt();
        s.ci_low = Some(100.0 * (c - h).max(0.0));
        s.ci_high = Some(100.0 * (c + h).min(1.0));
    }
    s
}

fn ref_ces(rs: &[&Resp]) -> pb::CesStats {
    let n = rs.len() as i64;
    let easy = rs.iter().filter(|r| r.score >= r.scale.1 - 2).count() as i64;
    let mut s = pb::CesStats {
        responses: n,
        easy,
        ..Default::default()
    };
    if n > 0 {
        s.easy_share = Some(100.0 * easy as f64 / n as f64);
        s.mean_score = Some(rs.iter().map(|r| r.score as f64).sum::<f64>() / n as f64);
    }
    s
}

fn ref_two_proportion(x1: i64, n1: i64, x2: i64, n2: i64) -> Option<(f64, Option<f64>)> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pool = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pool * (1.0 - pool) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    let p = if se > 0.0 {
        Some(p_two_sided((p1 - p2) / se))
    } else if p1 == p2 {
        Some(1.0)
    } else {
        None
    };
    Some((100.0 * (p1 - p2), p))
}

fn check_change(
    change: &Option<pb::MetricChange>,
    want: Option<(f64, Option<f64>)>,
    compare: bool,
) {
    if !compare {
        assert!(change.is_none());
        return;
    }
    let change = change.as_ref().expect("change with compare_previous");
    match want {
        None => assert_eq!(change.delta, None),
        Some((delta, p)) => {
            assert!(close(change.delta, Some(delta)), "{change:?} vs {delta}");
            assert!(close(change.p_value, p), "{change:?} vs {p:?}");
            assert_eq!(change.significant, p.is_some_and(|p| p < 0.05));
        }
    }
}

/// The series the reference expects: bucket keys in order, from the start's to the end's.
fn ref_buckets(q: &Query) -> Vec<(i32, u32)> {
    let tz: Tz = q.tz.parse().unwrap();
    let first = q.start.with_timezone(&tz).date_naive();
    let last = (q.end - Duration::nanoseconds(1))
        .with_timezone(&tz)
        .date_naive();
    let mut keys: Vec<(i32, u32)> = Vec::new();
    for d in first.iter_days().take_while(|d| *d <= last) {
        let k = bucket_key(q.granularity, d);
        if keys.last() != Some(&k) {
            keys.push(k);
        }
    }
    keys
}

fn request(q: &Query) -> pb::MetricRequest {
    pb::MetricRequest {
        time_range: Some(pb::TimeRange {
            start_time: Some(ts(q.start)),
            end_time: Some(ts(q.end)),
        }),
        time_zone: q.tz.into(),
        granularity: q.granularity as i32,
        filter: Some(pb::MetricFilter {
            channels: q.channels.iter().map(|s| s.to_string()).collect(),
            agent_ids: q.agent_ids.iter().map(|s| s.to_string()).collect(),
            attributes: q
                .plan
                .map(|p| [("plan".to_string(), p.to_string())].into())
                .unwrap_or_default(),
            ..Default::default()
        }),
        group_by: q.group_by as i32,
        group_by_attribute: if q.group_by == pb::Dimension::Attribute {
            "plan".into()
        } else {
            String::new()
        },
        compare_previous: q.compare_previous,
    }
}

/// Checks the series start times and returns, per point, the records of its bucket.
fn check_series<'a, T>(
    q: &Query,
    points: &[(Option<prost_types::Timestamp>, T)],
    rs: &[&'a Resp],
) -> Vec<Vec<&'a Resp>> {
    if q.granularity == pb::Granularity::Unspecified {
        assert!(points.is_empty());
        return Vec::new();
    }
    let keys = ref_buckets(q);
    assert_eq!(points.len(), keys.len(), "dense series of {q:?}");
    for (i, (start, _)) in points.iter().enumerate() {
        let t = cxmetrics::grpc::convert::from_timestamp(start.as_ref().unwrap()).unwrap();
        if i == 0 {
            assert_eq!(t, q.start);
        } else {
            assert_eq!(key_at(q, t), keys[i]);
            assert_ne!(
                key_at(q, t - Duration::seconds(1)),
                keys[i],
                "point {i} starts at its bucket's first instant"
            );
        }
    }
    keys.iter()
        .map(|k| {
            rs.iter()
                .copied()
                .filter(|r| key_at(q, r.at) == *k)
                .collect()
        })
        .collect()
}

/// Checks a group's series like the report's (dense, the reference's buckets) and that its
/// start times are the report series' own; returns, per point, the group's records of its
/// bucket.
fn check_group_series<'a, T>(
    q: &Query,
    report_starts: &[Option<prost_types::Timestamp>],
    points: &[(Option<prost_types::Timestamp>, T)],
    members: &[&'a Resp],
) -> Vec<Vec<&'a Resp>> {
    assert_eq!(
        points.iter().map(|p| p.0).collect::<Vec<_>>(),
        report_starts,
        "a group's series has the report series' start times"
    );
    check_series(q, points, members)
}

async fn run_case(app: &TestApp, mut resps: Vec<Resp>, q: Query, case: usize) {
    let tenant = format!("prop-{case}-{}", uuid::Uuid::new_v4().simple());
    let key = app.create_key(&tenant, "read,write").await;
    let inters: Vec<Inter> = (0..6)
        .map(|i| Inter {
            agent: AGENTS[i % 3],
            team: ["t1", "t2"][i % 2],
        })
        .collect();
    let mut feedback = app.feedback_with(Some(&key));
    let interactions = inters
        .iter()
        .enumerate()
        .map(|(i, it)| pb::Interaction {
            interaction_id: format!("i{i}"),
            customer_id: "c".into(),
            agent_id: it.agent.into(),
            team_id: it.team.into(),
            open_time: Some(ts(base())),
            ..Default::default()
        })
        .collect();
    feedback
        .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest { interactions })
        .await
        .unwrap();
    for (i, r) in resps.iter_mut().enumerate() {
        r.id = i;
    }
    let batch: Vec<_> = resps
        .iter()
        .map(|r| pb::SurveyResponse {
            response_id: format!("r{}", r.id),
            survey_id: r.survey.into(),
            kind: r.kind as i32,
            score: r.score,
            scale: Some(pb::ScoreScale {
                min: r.scale.0,
                max: r.scale.1,
            }),
            customer_id: "c".into(),
            interaction_id: r.interaction.map(|i| format!("i{i}")).unwrap_or_default(),
            channel: r.channel.into(),
            respond_time: Some(ts(r.at)),
            attributes: r
                .plan
                .map(|p| [("plan".to_string(), p.to_string())].into())
                .unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    if !resps.is_empty() {
        feedback
            .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                survey_responses: batch,
            })
            .await
            .unwrap();
    }

    let mut metrics = app.metrics_with(&key);
    let len = q.end - q.start;
    let of_kind = |kind: pb::SurveyKind, from: DateTime<Utc>, to: DateTime<Utc>| -> Vec<&Resp> {
        resps
            .iter()
            .filter(|r| r.kind == kind && r.at >= from && r.at < to && matches(&q, r, &inters))
            .collect()
    };

    // NPS
    let report = metrics.get_nps(request(&q)).await.unwrap().into_inner();
    let starts: Vec<_> = report.series.iter().map(|p| p.start_time).collect();
    let cur = of_kind(pb::SurveyKind::Nps, q.start, q.end);
    let (total, se1) = ref_nps(&cur);
    assert_nps(report.total.as_ref().unwrap(), &total);
    let points: Vec<_> = report
        .series
        .iter()
        .map(|p| (p.start_time, p.stats.unwrap()))
        .collect();
    for (got, want) in points.iter().zip(check_series(&q, &points, &cur)) {
        assert_nps(&got.1, &ref_nps(&want).0);
    }
    let groups = groups_of(&q, &inters, &cur);
    assert_eq!(
        report
            .groups
            .iter()
            .map(|g| g.key.clone())
            .collect::<Vec<_>>(),
        groups.keys().cloned().collect::<Vec<_>>()
    );
    for g in &report.groups {
        assert_nps(g.stats.as_ref().unwrap(), &ref_nps(&groups[&g.key]).0);
        let points: Vec<_> = g
            .series
            .iter()
            .map(|p| (p.start_time, p.stats.unwrap()))
            .collect();
        for (got, want) in
            points
                .iter()
                .zip(check_group_series(&q, &starts, &points, &groups[&g.key]))
        {
            assert_nps(&got.1, &ref_nps(&want).0);
        }
    }
    let prev = of_kind(pb::SurveyKind::Nps, q.start - len, q.start);
    let (previous, se2) = ref_nps(&prev);
    if q.compare_previous {
        assert_nps(report.previous.as_ref().unwrap(), &previous);
    }
    let want = match (total.nps, previous.nps) {
        (Some(a), Some(b)) => {
            let se = (se1.unwrap().powi(2) + se2.unwrap().powi(2)).sqrt();
            let p = if se > 0.0 {
                Some(p_two_sided((a - b) / se))
            } else if a == b {
                Some(1.0)
            } else {
                None
            };
            Some((a - b, p))
        }
        _ => None,
    };
    check_change(&report.change, want, q.compare_previous);

    // CSAT
    let report = metrics.get_csat(request(&q)).await.unwrap().into_inner();
    let starts: Vec<_> = report.series.iter().map(|p| p.start_time).collect();
    let cur = of_kind(pb::SurveyKind::Csat, q.start, q.end);
    assert_csat(report.total.as_ref().unwrap(), &ref_csat(&cur));
    let points: Vec<_> = report
        .series
        .iter()
        .map(|p| (p.start_time, p.stats.clone().unwrap()))
        .collect();
    for (got, want) in points.iter().zip(check_series(&q, &points, &cur)) {
        assert_csat(&got.1, &ref_csat(&want));
    }
    let groups = groups_of(&q, &inters, &cur);
    assert_eq!(report.groups.len(), groups.len());
    for g in &report.groups {
        assert_csat(g.stats.as_ref().unwrap(), &ref_csat(&groups[&g.key]));
        let points: Vec<_> = g
            .series
            .iter()
            .map(|p| (p.start_time, p.stats.clone().unwrap()))
            .collect();
        for (got, want) in
            points
                .iter()
                .zip(check_group_series(&q, &starts, &points, &groups[&g.key]))
        {
            assert_csat(&got.1, &ref_csat(&want));
        }
    }
    let prev = of_kind(pb::SurveyKind::Csat, q.start - len, q.start);
    let (a, b) = (ref_csat(&cur), ref_csat(&prev));
    check_change(
        &report.change,
        ref_two_proportion(a.satisfied, a.responses, b.satisfied, b.responses),
        q.compare_previous,
    );

    // CES
    let report = metrics.get_ces(request(&q)).await.unwrap().into_inner();
    let starts: Vec<_> = report.series.iter().map(|p| p.start_time).collect();
    let cur = of_kind(pb::SurveyKind::Ces, q.start, q.end);
    assert_ces(report.total.as_ref().unwrap(), &ref_ces(&cur));
    let points: Vec<_> = report
        .series
        .iter()
        .map(|p| (p.start_time, p.stats.unwrap()))
        .collect();
    for (got, want) in points.iter().zip(check_series(&q, &points, &cur)) {
        assert_ces(&got.1, &ref_ces(&want));
    }
    let groups = groups_of(&q, &inters, &cur);
    assert_eq!(report.groups.len(), groups.len());
    for g in &report.groups {
        assert_ces(g.stats.as_ref().unwrap(), &ref_ces(&groups[&g.key]));
        let points: Vec<_> = g
            .series
            .iter()
            .map(|p| (p.start_time, p.stats.unwrap()))
            .collect();
        for (got, want) in
            points
                .iter()
                .zip(check_group_series(&q, &starts, &points, &groups[&g.key]))
        {
            assert_ces(&got.1, &ref_ces(&want));
        }
    }
    let prev = of_kind(pb::SurveyKind::Ces, q.start - len, q.start);
    let (a, b) = (ref_ces(&cur), ref_ces(&prev));
    if q.compare_previous {
        assert_ces(report.previous.as_ref().unwrap(), &b);
    }
    check_change(
        &report.change,
        ref_two_proportion(a.easy, a.responses, b.easy, b.responses),
        q.compare_previous,
    );
}

fn groups_of<'a>(q: &Query, inters: &[Inter], rs: &[&'a Resp]) -> BTreeMap<String, Vec<&'a Resp>> {
    let mut g: BTreeMap<String, Vec<&Resp>> = BTreeMap::new();
    if q.group_by != pb::Dimension::Unspecified {
        for r in rs {
            g.entry(group_key(q, r, inters)).or_default().push(r);
        }
    }
    g
}

fn assert_nps(got: &pb::NpsStats, want: &pb::NpsStats) {
    assert_eq!(
        (got.responses, got.promoters, got.passives, got.detractors),
        (
            want.responses,
            want.promoters,
            want.passives,
            want.detractors
        )
    );
    assert!(
        close(got.nps, want.nps) && close(got.margin_of_error, want.margin_of_error),
        "{got:?} vs {want:?}"
    );
}

fn assert_csat(got: &pb::CsatStats, want: &pb::CsatStats) {
    assert_eq!(
        (got.responses, got.satisfied, &got.score_counts),
        (want.responses, want.satisfied, &want.score_counts)
    );
    assert!(
        close(got.csat, want.csat) && close(got.mean_score, want.mean_score),
        "{got:?} vs {want:?}"
    );
    assert!(
        close(got.ci_low, want.ci_low) && close(got.ci_high, want.ci_high),
        "{got:?} vs {want:?}"
    );
}

fn assert_ces(got: &pb::CesStats, want: &pb::CesStats) {
    assert_eq!((got.responses, got.easy), (want.responses, want.easy));
    assert!(
        close(got.easy_share, want.easy_share) && close(got.mean_score, want.mean_score),
        "{got:?} vs {want:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_report_field_equals_the_reference_computation(
        resps in proptest::collection::vec(resp_strategy(), 0..300),
        q in query_strategy(),
    ) {
        static CASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let w = world();
        w.runtime.block_on(run_case(&w.app, resps, q, case));
    }
}

//! Property test: for random records and random queries (metric, zone, granularity,
//! filters, group_by, comparison), the HTTP JSON and CSV answers hold exactly the numbers
//! of the gRPC answer to the same query, row for row.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use chrono_tz::Tz;
use cxmetrics::proto as pb;
use proptest::prelude::*;
use serde_json::Value;

use crate::{helpers::*, http::client};

const ZONES: &[&str] = &["UTC", "America/New_York", "Europe/Berlin", "Asia/Kathmandu"];
const CHANNELS: &[&str] = &["", "email", "chat"];
const AGENTS: &[&str] = &["", "a1", "a2"];
const GRANULARITIES: &[&str] = &["", "day", "week", "month", "quarter", "year"];
const GROUPS: &[&str] = &["", "survey", "channel", "agent", "team", "attribute:plan"];
const METRICS: &[&str] = &["nps", "csat", "ces", "response-times"];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap()
}

#[derive(Debug, Clone)]
struct Record {
    kind: usize,
    score_seed: u32,
    minute: i64,
    survey: usize,
    channel: usize,
    agent: usize,
    plan: usize,
    answer_after: Option<i64>,
}

#[derive(Debug, Clone)]
struct Query {
    metric: &'static str,
    start_day: i64,
    days: i64,
    /// Bare dates (local midnight) rather than RFC 3339 instants.
    dates: bool,
    zone: &'static str,
    granularity: usize,
    group_by: usize,
    compare_previous: bool,
    channel: Option<&'static str>,
    agent: Option<&'static str>,
    plan: Option<&'static str>,
    survey: Option<&'static str>,
    team: Option<&'static str>,
    target_minutes: Option<i64>,
    csv_by_accept: bool,
}

fn record() -> impl Strategy<Value = Record> {
    (
        0..3usize,
        any::<u32>(),
        0..(200 * 24 * 60i64),
        0..2usize,
        0..3usize,
        0..3usize,
        0..3usize,
        proptest::option::of(1..(3 * 24 * 60i64)),
    )
        .prop_map(
            |(kind, score_seed, minute, survey, channel, agent, plan, answer_after)| Record {
                kind,
                score_seed,
                minute,
                survey,
                channel,
                agent,
                plan,
                answer_after,
            },
        )
}

fn query() -> impl Strategy<Value = Query> {
    (
        (
            0..METRICS.len(),
            0..150i64,
            1..120i64,
            any::<bool>(),
            0..ZONES.len(),
        ),
        (
            0..GRANULARITIES.len(),
            0..GROUPS.len(),
            any::<bool>(),
            proptest::option::weighted(0.25, prop_oneof![Just("s1"), Just("s2")]),
            proptest::option::weighted(0.25, prop_oneof![Just("t1"), Just("t2")]),
        ),
        (
            proptest::option::weighted(0.25, prop_oneof![Just("email"), Just("chat")]),
            proptest::option::weighted(0.25, prop_oneof![Just("a1"), Just("a2")]),
            proptest::option::weighted(0.25, prop_oneof![Just("pro"), Just("free")]),
            proptest::option::of(1..(2 * 24 * 60i64)),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (metric, start_day, days, dates, zone),
                (granularity, group_by, compare_previous, survey, team),
                (channel, agent, plan, target_minutes, csv_by_accept),
            )| {
                let metric = METRICS[metric];
                // Survey grouping does not apply to interactions.
                let group_by = if metric == "response-times" && group_by == 1 {
                    2
                } else {
                    group_by
                };
                Query {
                    metric,
                    start_day,
                    days,
                    dates,
                    zone: ZONES[zone],
                    granularity,
                    group_by,
                    compare_previous,
                    channel,
                    agent,
                    plan,
                    // Survey filters do not apply to interactions.
                    survey: survey.filter(|_| metric != "response-times"),
                    team,
                    target_minutes,
                    csv_by_accept,
                }
            },
        )
}

/// The records of one case: survey responses, each linked to an interaction of its own.
fn records(tenant_records: &[Record]) -> (Vec<pb::SurveyResponse>, Vec<pb::Interaction>) {
    let mut responses = Vec::new();
    let mut interactions = Vec::new();
    for (i, r) in tenant_records.iter().enumerate() {
        let at = base() + Duration::minutes(r.minute);
        let (kind, scale) = [
            (pb::SurveyKind::Nps, (0, 10)),
            (pb::SurveyKind::Csat, (1, 5)),
            (pb::SurveyKind::Ces, (1, 7)),
        ][r.kind];
        let plan = ["", "pro", "free"][r.plan];
        let attributes: std::collections::HashMap<String, String> = if plan.is_empty() {
            Default::default()
        } else {
            [("plan".to_string(), plan.to_string())].into()
        };
        interactions.push(pb::Interaction {
            interaction_id: format!("i{i}"),
            customer_id: format!("c{}", i % 5),
            channel: CHANNELS[r.channel].into(),
            agent_id: AGENTS[r.agent].into(),
            team_id: AGENTS[r.agent].replace('a', "t"),
            open_time: Some(ts(at)),
            first_response_time: r.answer_after.map(|m| ts(at + Duration::minutes(m))),
            resolve_time: r.answer_after.map(|m| ts(at + Duration::minutes(2 * m))),
            attributes: attributes.clone(),
            ..Default::default()
        });
        responses.push(pb::SurveyResponse {
            response_id: format!("r{i}"),
            survey_id: ["s1", "s2"][r.survey].into(),
            kind: kind as i32,
            score: scale.0 + (r.score_seed % (scale.1 - scale.0 + 1) as u32) as i32,
            customer_id: format!("c{}", i % 5),
            interaction_id: format!("i{i}"),
            channel: CHANNELS[r.channel].into(),
            respond_time: Some(ts(at)),
            attributes,
            ..Default::default()
        });
    }
    (responses, interactions)
}

impl Query {
    fn zone(&self) -> Tz {
        self.zone.parse().unwrap()
    }

    fn day(&self, offset: i64) -> chrono::NaiveDate {
        base().date_naive() + Duration::days(self.start_day + offset)
    }

    /// The range as instants: with `dates`, local midnights in the zone.
    fn range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let at = |d: chrono::NaiveDate| -> DateTime<Utc> {
            if self.dates {
                self.zone()
                    .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
                    .earliest()
                    .unwrap()
                    .to_utc()
            } else {
                Utc.from_utc_datetime(&d.and_hms_opt(7, 30, 0).unwrap())
            }
        };
        (at(self.day(0)), at(self.day(self.days)))
    }

    fn grpc(&self) -> pb::MetricRequest {
        let (start, end) = self.range();
        let group_by = match GROUPS[self.group_by] {
            "" => pb::Dimension::Unspecified,
            "survey" => pb::Dimension::Survey,
            "channel" => pb::Dimension::Channel,
            "agent" => pb::Dimension::Agent,
            "team" => pb::Dimension::Team,
            _ => pb::Dimension::Attribute,
        };
        pb::MetricRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(ts(start)),
                end_time: Some(ts(end)),
            }),
            time_zone: self.zone.into(),
            granularity: self.granularity as i32,
            filter: Some(pb::MetricFilter {
                channels: self.channel.into_iter().map(String::from).collect(),
                agent_ids: self.agent.into_iter().map(String::from).collect(),
                survey_ids: self.survey.into_iter().map(String::from).collect(),
                team_ids: self.team.into_iter().map(String::from).collect(),
                attributes: self
                    .plan
                    .map(|p| [("plan".to_string(), p.to_string())].into())
                    .unwrap_or_default(),
            }),
            group_by: group_by as i32,
            group_by_attribute: if group_by == pb::Dimension::Attribute {
                "plan".into()
            } else {
                String::new()
            },
            compare_previous: self.compare_previous,
        }
    }

    fn url(&self, app: &TestApp, key: &str) -> String {
        let (start, end) = if self.dates {
            (self.day(0).to_string(), self.day(self.days).to_string())
        } else {
            let (s, e) = self.range();
            (s.to_rfc3339(), e.to_rfc3339())
        };
        let mut params: Vec<(&str, String)> = vec![
            ("start", start),
            ("end", end),
            ("time_zone", self.zone.into()),
            ("api_key", key.into()),
        ];
        let mut push = |name: &'static str, value: &str| {
            if !value.is_empty() {
                params.push((name, value.to_owned()));
            }
        };
        push("granularity", GRANULARITIES[self.granularity]);
        push("group_by", GROUPS[self.group_by]);
        push("channel", self.channel.unwrap_or_default());
        push("agent_id", self.agent.unwrap_or_default());
        push("survey_id", self.survey.unwrap_or_default());
        push("team_id", self.team.unwrap_or_default());
        push("attribute.plan", self.plan.unwrap_or_default());
        if self.compare_previous {
            push("compare_previous", "true");
        }
        let target = self.target_minutes.map(|m| (m * 60).to_string());
        if self.metric == "response-times" {
            push(
                "first_response_target",
                target.as_deref().unwrap_or_default(),
            );
        }
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        app.url(&format!("/v1/metrics/{}?{query}", self.metric))
    }
}

/// One row of the answer: `period_start` as an instant with its offset, `group`, and every
/// stats column as a number (absent: None).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    start: Option<DateTime<FixedOffset>>,
    group: Option<String>,
    stats: BTreeMap<String, Option<f64>>,
}

fn n(v: i64) -> Option<f64> {
    Some(v as f64)
}

fn nps_stats(s: &pb::NpsStats) -> BTreeMap<String, Option<f64>> {
    [
        ("responses", n(s.responses)),
        ("promoters", n(s.promoters)),
        ("passives", n(s.passives)),
        ("detractors", n(s.detractors)),
        ("nps", s.nps),
        ("margin_of_error", s.margin_of_error),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn csat_stats(s: &pb::CsatStats, scores: &[i32]) -> BTreeMap<String, Option<f64>> {
    let mut out: BTreeMap<String, Option<f64>> = [
        ("responses", n(s.responses)),
        ("satisfied", n(s.satisfied)),
        ("csat", s.csat),
        ("mean_score", s.mean_score),
        ("ci_low", s.ci_low),
        ("ci_high", s.ci_high),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for score in scores {
        let count = s.score_counts.get(score).copied().unwrap_or(0);
        out.insert(format!("score_counts_{score}"), n(count));
    }
    out
}

fn ces_stats(s: &pb::CesStats) -> BTreeMap<String, Option<f64>> {
    [
        ("responses", n(s.responses)),
        ("easy", n(s.easy)),
        ("easy_share", s.easy_share),
        ("mean_score", s.mean_score),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn response_time_stats(s: &pb::ResponseTimeStats) -> BTreeMap<String, Option<f64>> {
    let mut out: BTreeMap<String, Option<f64>> = BTreeMap::new();
    out.insert("interactions".into(), n(s.interactions));
    out.insert("unanswered".into(), n(s.unanswered));
    out.insert("unresolved".into(), n(s.unresolved));
    for (prefix, d) in [
        ("first_response", s.first_response.unwrap_or_default()),
        ("resolution", s.resolution.unwrap_or_default()),
    ] {
        out.insert(format!("{prefix}_count"), n(d.count));
        for (stat, v) in [
            ("mean", d.mean_seconds),
            ("min", d.min_seconds),
            ("max", d.max_seconds),
            ("p50", d.p50_seconds),
            ("p90", d.p90_seconds),
            ("p95", d.p95_seconds),
            ("p99", d.p99_seconds),
        ] {
            out.insert(format!("{prefix}_{stat}_seconds"), v);
        }
        out.insert(
            format!("{prefix}_percentiles_exact"),
            Some(f64::from(u8::from(d.percentiles_exact))),
        );
    }
    for (prefix, sla) in [
        ("first_response_sla", &s.first_response_sla),
        ("resolution_sla", &s.resolution_sla),
    ] {
        out.insert(format!("{prefix}_met"), sla.as_ref().and_then(|s| n(s.met)));
        out.insert(
            format!("{prefix}_breached"),
            sla.as_ref().and_then(|s| n(s.breached)),
        );
        out.insert(
            format!("{prefix}_attainment"),
            sla.as_ref().and_then(|s| s.attainment),
        );
    }
    out
}

/// A group of a gRPC report: its key, its stats and its own series.
type Group<S> = (String, S, Vec<(prost_types::Timestamp, S)>);

/// The rows the gRPC report stands for: the total alone, the series, each group's total,
/// or (with both a granularity and a group_by) each group's own series.
fn expected<S>(
    q: &Query,
    total: S,
    series: Vec<(prost_types::Timestamp, S)>,
    groups: Vec<Group<S>>,
    flat: impl Fn(&S) -> BTreeMap<String, Option<f64>>,
) -> Vec<Row> {
    let (bucketed, grouped) = (q.granularity > 0, q.group_by > 0);
    if !bucketed && !grouped {
        return vec![Row {
            start: None,
            group: None,
            stats: flat(&total),
        }];
    }
    let zone = q.zone();
    let start = |t: &prost_types::Timestamp| {
        let t = Utc.timestamp_opt(t.seconds, t.nanos as u32).unwrap();
        Some(t.with_timezone(&zone).fixed_offset())
    };
    match (bucketed, grouped) {
        (true, false) => series
            .iter()
            .map(|(t, s)| Row {
                start: start(t),
                group: None,
                stats: flat(s),
            })
            .collect(),
        (false, _) => groups
            .iter()
            .map(|(key, s, _)| Row {
                start: None,
                group: Some(key.clone()),
                stats: flat(s),
            })
            .collect(),
        (true, true) => groups
            .iter()
            .flat_map(|(key, _, series)| {
                series.iter().map(|(t, s)| Row {
                    start: start(t),
                    group: Some(key.clone()),
                    stats: flat(s),
                })
            })
            .collect(),
    }
}

async fn grpc_rows(app: &TestApp, key: &str, q: &Query) -> (Vec<Row>, Value) {
    let mut metrics = app.metrics_with(key);
    let request = q.grpc();
    match q.metric {
        "nps" => {
            let r = metrics.get_nps(request).await.unwrap().into_inner();
            let summary = summary(
                r.total.as_ref().map(nps_stats),
                r.previous.as_ref().map(nps_stats),
            );
            let series = r
                .series
                .into_iter()
                .map(|p| (p.start_time.unwrap(), p.stats.unwrap()));
            let groups = r.groups.into_iter().map(|g| {
                let series = g.series.into_iter();
                let series = series.map(|p| (p.start_time.unwrap(), p.stats.unwrap()));
                (g.key, g.stats.unwrap(), series.collect())
            });
            (
                expected(
                    q,
                    r.total.unwrap(),
                    series.collect(),
                    groups.collect(),
                    nps_stats,
                ),
                summary,
            )
        }
        "csat" => {
            let r = metrics.get_csat(request).await.unwrap().into_inner();
            let mut scores: Vec<i32> = r
                .total
                .as_ref()
                .unwrap()
                .score_counts
                .keys()
                .copied()
                .collect();
            scores.sort();
            let flat = |s: &pb::CsatStats| csat_stats(s, &scores);
            let summary = summary(r.total.as_ref().map(flat), r.previous.as_ref().map(flat));
            let series = r
                .series
                .into_iter()
                .map(|p| (p.start_time.unwrap(), p.stats.unwrap()));
            let groups = r.groups.into_iter().map(|g| {
                let series = g.series.into_iter();
                let series = series.map(|p| (p.start_time.unwrap(), p.stats.unwrap()));
                (g.key, g.stats.unwrap(), series.collect())
            });
            (
                expected(
                    q,
                    r.total.unwrap(),
                    series.collect(),
                    groups.collect(),
                    flat,
                ),
                summary,
            )
        }
        "ces" => {
            let r = metrics.get_ces(request).await.unwrap().into_inner();
            let summary = summary(
                r.total.as_ref().map(ces_stats),
                r.previous.as_ref().map(ces_stats),
            );
            let series = r
                .series
                .into_iter()
                .map(|p| (p.start_time.unwrap(), p.stats.unwrap()));
            let groups = r.groups.into_iter().map(|g| {
                let series = g.series.into_iter();
                let series = series.map(|p| (p.start_time.unwrap(), p.stats.unwrap()));
                (g.key, g.stats.unwrap(), series.collect())
            });
            (
                expected(
                    q,
                    r.total.unwrap(),
                    series.collect(),
                    groups.collect(),
                    ces_stats,
                ),
                summary,
            )
        }
        _ => {
            let r = metrics
                .get_response_times(pb::ResponseTimeRequest {
                    query: Some(request),
                    first_response_target: q.target_minutes.map(|m| prost_types::Duration {
                        seconds: m * 60,
                        nanos: 0,
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let flat = response_time_stats;
            let summary = summary(r.total.as_ref().map(flat), r.previous.as_ref().map(flat));
            let series = r
                .series
                .into_iter()
                .map(|p| (p.start_time.unwrap(), p.stats.unwrap()));
            let groups = r.groups.into_iter().map(|g| {
                let series = g.series.into_iter();
                let series = series.map(|p| (p.start_time.unwrap(), p.stats.unwrap()));
                (g.key, g.stats.unwrap(), series.collect())
            });
            (
                expected(
                    q,
                    r.total.unwrap(),
                    series.collect(),
                    groups.collect(),
                    flat,
                ),
                summary,
            )
        }
    }
}

fn summary(
    total: Option<BTreeMap<String, Option<f64>>>,
    previous: Option<BTreeMap<String, Option<f64>>>,
) -> Value {
    let json = |m: BTreeMap<String, Option<f64>>| -> Value {
        m.into_iter()
            .map(|(k, v)| (k, v.map_or(Value::Null, |v| serde_json::json!(v))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    serde_json::json!({"total": total.map(json), "previous": previous.map(json)})
}

/// A JSON number or null as f64; integers compare as themselves, booleans as 1 and 0.
fn number(v: &Value) -> Option<f64> {
    if v.is_null() {
        None
    } else if let Some(b) = v.as_bool() {
        Some(f64::from(u8::from(b)))
    } else {
        Some(v.as_f64().expect("a number"))
    }
}

fn json_rows(body: &Value) -> Vec<Row> {
    let columns: Vec<&str> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut out = Row {
                start: None,
                group: None,
                stats: BTreeMap::new(),
            };
            for name in &columns {
                let v = &row[*name];
                match *name {
                    "period_start" => {
                        out.start = v.as_str().map(|s| DateTime::parse_from_rfc3339(s).unwrap())
                    }
                    "group" => out.group = v.as_str().map(String::from),
                    _ => {
                        out.stats.insert(name.to_string(), number(v));
                    }
                }
            }
            out
        })
        .collect()
}

fn csv_rows(text: &str) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let mut out = Row {
                start: None,
                group: None,
                stats: BTreeMap::new(),
            };
            for (name, v) in headers.iter().zip(record.iter()) {
                match name {
                    "period_start" => {
                        out.start =
                            (!v.is_empty()).then(|| DateTime::parse_from_rfc3339(v).unwrap())
                    }
                    // An empty group key reads back as empty, as absent groups do not exist.
                    "group" => out.group = Some(v.to_owned()),
                    _ => {
                        let value = match v {
                            "" => None,
                            "true" => Some(1.0),
                            "false" => Some(0.0),
                            v => Some(v.parse::<f64>().unwrap()),
                        };
                        out.stats.insert(name.to_owned(), value);
                    }
                }
            }
            out
        })
        .collect()
}

/// CSV cannot tell an absent group from the empty key: compare both as text.
fn csv_comparable(rows: &[Row], grouped: bool) -> Vec<Row> {
    rows.iter()
        .cloned()
        .map(|mut r| {
            if grouped {
                r.group = Some(r.group.unwrap_or_default());
            }
            r
        })
        .collect()
}

async fn check(app: &TestApp, key: &str, q: &Query) {
    let (want, want_summary) = grpc_rows(app, key, q).await;
    let url = q.url(app, key);
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let got = json_rows(&body);
    assert_eq!(got, want, "JSON of {url}");
    // Each period_start carries the zone's offset at that instant.
    for row in &got {
        if let Some(t) = row.start {
            let local = t.with_timezone(&q.zone()).fixed_offset();
            assert_eq!(t.offset(), local.offset(), "{url}");
        }
    }
    let total: BTreeMap<String, Option<f64>> = body["summary"]["total"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), number(v)))
        .collect();
    let want_total: BTreeMap<String, Option<f64>> = want_summary["total"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), number(v)))
        .collect();
    assert_eq!(total, want_total, "summary of {url}");
    assert_eq!(
        body["summary"]["previous"].is_null(),
        !q.compare_previous,
        "{url}"
    );
    assert_eq!(body["summary"]["change"].is_null(), !q.compare_previous);

    let request = if q.csv_by_accept {
        client().get(&url).header("accept", "text/csv")
    } else {
        client().get(format!("{url}&format=csv"))
    };
    let csv = request.send().await.unwrap();
    assert_eq!(csv.status(), 200);
    let got = csv_rows(&csv.text().await.unwrap());
    let grouped = q.group_by > 0;
    assert_eq!(
        csv_comparable(&got, grouped),
        csv_comparable(&want, grouped),
        "CSV of {url}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn http_answers_hold_the_numbers_of_the_grpc_answers(
        data in proptest::collection::vec(record(), 0..120),
        queries in proptest::collection::vec(query(), 1..4),
    ) {
        let world = world();
        world.runtime.block_on(async {
            let app = &world.app;
            let tenant = format!("http-{}", uuid::Uuid::new_v4().simple());
            let key = app.create_key(&tenant, "read,write").await;
            let (responses, interactions) = records(&data);
            let value = format!("Bearer {key}").parse().unwrap();
            let mut feedback = cxmetrics::proto::feedback_service_client::FeedbackServiceClient::with_interceptor(
                app.channel.clone(),
                Bearer(Some(value)),
            );
            if !data.is_empty() {
                feedback
                    .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest { interactions })
                    .await
                    .unwrap();
                feedback
                    .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                        survey_responses: responses,
                    })
                    .await
                    .unwrap();
            }
            for q in &queries {
                check(app, &key, q).await;
            }
        });
    }
}

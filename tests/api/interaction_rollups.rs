//! The response times the rollups serve against the raw rows: after random writes, updates,
//! out-of-order versions, erasures and compactions, every exact figure from the rollups
//! (`exact = false`) equals the one computed from the raw rows (`exact = true`, itself checked
//! against an independent reference in `interaction_reference.rs`), in zones with :45 and
//! half-hour DST offsets, and every sketch percentile lies within 1% of the exact one.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use cxmetrics::proto as pb;
use proptest::prelude::*;

use crate::helpers::*;

const ZONES: &[&str] = &[
    "UTC",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Europe/Berlin",
    "America/St_Johns",
];

/// Whole hours, three days before now: every record fits before now + 1 day, and SLA
/// cutoffs (now - target) fall among the open times.
fn base() -> DateTime<Utc> {
    let now = Utc::now() - Duration::days(3);
    now.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        id: usize,
        customer: usize,
        /// Milliseconds after `base`.
        open: i64,
        first: Option<i64>,
        resolve: Option<i64>,
        dims: (usize, usize, usize),
        version: i64,
    },
    Erase(usize),
    Compact(i32),
}

fn op() -> impl Strategy<Value = Op> {
    let millis = prop_oneof![Just(0i64), 0..600_000i64, 0..86_400_000i64];
    prop_oneof![
        8 => (
            0..16usize,
            0..3usize,
            0..(2 * 86_400_000i64),
            proptest::option::weighted(0.7, millis.clone()),
            proptest::option::weighted(0.5, millis),
            (0..3usize, 0..3usize, 0..3usize),
            0..6i64,
        )
            .prop_map(|(id, customer, open, first, resolve, dims, version)| Op::Upsert {
                id,
                customer,
                open,
                first,
                resolve,
                dims,
                version,
            }),
        1 => (0..3usize).prop_map(Op::Erase),
        1 => (1..40i32).prop_map(Op::Compact),
    ]
}

async fn apply(app: &TestApp, key: &str, ops: &[Op]) {
    let base = base();
    let mut feedback = app.feedback_with(Some(key));
    for op in ops {
        match op {
            Op::Upsert {
                id,
                customer,
                open,
                first,
                resolve,
                dims: (channel, agent, team),
                version,
            } => {
                let open_time = base + Duration::milliseconds(*open);
                let at = |ms: &Option<i64>| ms.map(|ms| ts(open_time + Duration::milliseconds(ms)));
                let interaction = pb::Interaction {
                    interaction_id: format!("i{id}"),
                    customer_id: format!("c{customer}"),
                    channel: ["", "email", "chat"][*channel].into(),
                    agent_id: ["", "ann", "bob"][*agent].into(),
                    team_id: ["", "north", "south"][*team].into(),
                    open_time: Some(ts(open_time)),
                    first_response_time: at(first),
                    resolve_time: at(resolve),
                    update_time: Some(ts(t0() + Duration::hours(*version))),
                    ..Default::default()
                };
                feedback
                    .upsert_interaction(pb::UpsertInteractionRequest {
                        interaction: Some(interaction),
                    })
                    .await
                    .unwrap();
            }
            Op::Erase(customer) => {
                feedback
                    .delete_customer_data(pb::DeleteCustomerDataRequest {
                        customer_id: format!("c{customer}"),
                    })
                    .await
                    .unwrap();
            }
            Op::Compact(max_keys) => {
                app.store.compact_rollups(*max_keys).await.unwrap();
            }
        }
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * (1.0 + a.abs()),
        (None, None) => true,
        _ => false,
    }
}

/// Within 1% (relative) of the exact value, and absent exactly when it is.
fn within_one_percent(approx: Option<f64>, exact: Option<f64>) -> bool {
    match (approx, exact) {
        (Some(a), Some(e)) => (a - e).abs() <= 0.01 * e.abs() * (1.0 + 1e-9) + 1e-9,
        (None, None) => true,
        _ => false,
    }
}

fn same_durations(sketched: &pb::DurationStats, exact: &pb::DurationStats, what: &str) {
    assert_eq!(sketched.count, exact.count, "{what}");
    assert!(
        close(sketched.mean_seconds, exact.mean_seconds),
        "{what}: mean {sketched:?} vs {exact:?}"
    );
    assert!(
        close(sketched.min_seconds, exact.min_seconds),
        "{what}: min {sketched:?} vs {exact:?}"
    );
    assert!(
        close(sketched.max_seconds, exact.max_seconds),
        "{what}: max {sketched:?} vs {exact:?}"
    );
    assert!(
        !sketched.percentiles_exact && exact.percentiles_exact,
        "{what}"
    );
    for (a, e) in [
        (sketched.p50_seconds, exact.p50_seconds),
        (sketched.p90_seconds, exact.p90_seconds),
        (sketched.p95_seconds, exact.p95_seconds),
        (sketched.p99_seconds, exact.p99_seconds),
    ] {
        assert!(
            within_one_percent(a, e),
            "{what}: {a:?} vs {e:?} ({sketched:?} vs {exact:?})"
        );
    }
}

fn same_stats(sketched: &pb::ResponseTimeStats, exact: &pb::ResponseTimeStats, what: &str) {
    assert_eq!(
        (
            sketched.interactions,
            sketched.unanswered,
            sketched.unresolved
        ),
        (exact.interactions, exact.unanswered, exact.unresolved),
        "{what}"
    );
    same_durations(
        sketched.first_response.as_ref().unwrap(),
        exact.first_response.as_ref().unwrap(),
        &format!("{what} first response"),
    );
    same_durations(
        sketched.resolution.as_ref().unwrap(),
        exact.resolution.as_ref().unwrap(),
        &format!("{what} resolution"),
    );
    assert_eq!(
        sketched.first_response_sla, exact.first_response_sla,
        "{what}"
    );
    assert_eq!(sketched.resolution_sla, exact.resolution_sla, "{what}");
}

fn same_reports(sketched: &pb::ResponseTimeReport, exact: &pb::ResponseTimeReport) {
    same_stats(
        sketched.total.as_ref().unwrap(),
        exact.total.as_ref().unwrap(),
        "total",
    );
    same_stats(
        sketched.previous.as_ref().unwrap(),
        exact.previous.as_ref().unwrap(),
        "previous",
    );
    assert_eq!(sketched.series.len(), exact.series.len());
    for (a, e) in sketched.series.iter().zip(&exact.series) {
        assert_eq!(a.start_time, e.start_time);
        same_stats(
            a.stats.as_ref().unwrap(),
            e.stats.as_ref().unwrap(),
            "point",
        );
    }
    let keys =
        |r: &pb::ResponseTimeReport| r.groups.iter().map(|g| g.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(sketched), keys(exact));
    for (a, e) in sketched.groups.iter().zip(&exact.groups) {
        same_stats(a.stats.as_ref().unwrap(), e.stats.as_ref().unwrap(), &a.key);
        for (p, q) in a.series.iter().zip(&e.series) {
            same_stats(p.stats.as_ref().unwrap(), q.stats.as_ref().unwrap(), &a.key);
        }
    }
}

#[derive(Debug, Clone)]
struct Ask {
    zone: &'static str,
    granularity: i32,
    group_by: i32,
    channel_filter: bool,
    /// Seconds after `base`, and length in seconds: odd instants leave raw slivers.
    start: i64,
    length: i64,
    /// Milliseconds.
    first_target: Option<i64>,
    resolution_target: Option<i64>,
}

/// SLA targets in milliseconds: whole seconds up to two days, or any millisecond up to ten
/// minutes, as often as the durations themselves.
fn target() -> impl Strategy<Value = i64> {
    prop_oneof![(1..(2 * 86_400i64)).prop_map(|s| s * 1000), 1..600_000i64]
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        prop::sample::select(ZONES),
        prop_oneof![Just(0), Just(1), Just(2), Just(3)],
        prop_oneof![Just(0), Just(2), Just(3), Just(4)],
        any::<bool>(),
        // Long ranges that start weeks before the records read UTC months, with the
        // stretches between their boundaries and the nearest month start added or
        // subtracted; those stretches often hold records.
        prop_oneof![Just(-86_400i64), -86_400..86_400i64, -(40 * 86_400i64)..0],
        prop_oneof![
            Just(5 * 86_400i64),
            3_600..(5 * 86_400i64),
            (30 * 86_400i64)..(80 * 86_400i64)
        ],
        proptest::option::of(target()),
        proptest::option::of(target()),
    )
        .prop_map(
            |(zone, granularity, group_by, channel_filter, start, length, first, resolution)| Ask {
                zone,
                granularity,
                group_by,
                channel_filter,
                start,
                length,
                first_target: first,
                resolution_target: resolution,
            },
        )
}

async fn report(app: &TestApp, key: &str, ask: &Ask, exact: bool) -> pb::ResponseTimeReport {
    let start = base() + Duration::seconds(ask.start);
    let seconds = |ms: Option<i64>| {
        ms.map(|ms| prost_types::Duration {
            seconds: ms / 1000,
            nanos: (ms % 1000 * 1_000_000) as i32,
        })
    };
    app.metrics_with(key)
        .get_response_times(pb::ResponseTimeRequest {
            query: Some(pb::MetricRequest {
                time_range: Some(pb::TimeRange {
                    start_time: Some(ts(start)),
                    end_time: Some(ts(start + Duration::seconds(ask.length))),
                }),
                time_zone: ask.zone.into(),
                granularity: ask.granularity,
                group_by: ask.group_by,
                filter: ask.channel_filter.then(|| pb::MetricFilter {
                    channels: vec!["email".into(), "chat".into()],
                    ..Default::default()
                }),
                compare_previous: true,
                ..Default::default()
            }),
            first_response_target: seconds(ask.first_target),
            resolution_target: seconds(ask.resolution_target),
            exact,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn check(ops: Vec<Op>, asks: Vec<Ask>) {
    let app = &world().app;
    let tenant = format!("roll-{}", uuid::Uuid::new_v4().simple());
    let key = app.create_key(&tenant, "read,write").await;
    apply(app, &key, &ops).await;
    for ask in &asks {
        let sketched = report(app, &key, ask, false).await;
        let exact = report(app, &key, ask, true).await;
        same_reports(&sketched, &exact);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rollup_figures_equal_the_raw_rows_after_writes_updates_and_erasures(
        ops in prop::collection::vec(op(), 0..60),
        asks in prop::collection::vec(ask(), 1..4),
    ) {
        world().runtime.block_on(check(ops, asks));
    }

    #[test]
    fn every_sketch_percentile_is_within_one_percent_of_the_exact_one(
        // Log-uniform from a millisecond to a day; None is a zero duration.
        durations in prop::collection::vec(prop_oneof![1 => Just(None), 9 => (-3.0..4.9f64).prop_map(Some)], 1..300),
        zone in prop::sample::select(ZONES),
    ) {
        let ops = durations
            .iter()
            .enumerate()
            .map(|(n, exponent)| Op::Upsert {
                id: n,
                customer: 0,
                open: (n as i64 * 7_919_000) % (2 * 86_400_000),
                first: Some(exponent.map_or(0, |e| (10f64.powf(e) * 1e3) as i64)),
                resolve: Some(exponent.map_or(0, |e| (10f64.powf(e + 0.1) * 1e3) as i64)),
                dims: (n % 3, 0, 0),
                version: 0,
            })
            .collect();
        let ask = Ask {
            zone,
            granularity: 1,
            group_by: 2,
            channel_filter: false,
            start: 0,
            length: 2 * 86_400,
            first_target: Some(3_600_000),
            resolution_target: None,
        };
        world().runtime.block_on(check(ops, vec![ask]));
    }
}

/// Ranges that read a UTC month minus, or plus, the hours between their boundaries and the
/// month's start, with records in those hours: the figures still equal the raw rows'.
#[test]
fn a_month_read_subtracts_and_adds_the_hours_at_its_edges() {
    let base = base();
    let month = base
        .date_naive()
        .with_day(1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let from_month = |minutes: i64| (month - base + Duration::minutes(minutes)).num_milliseconds();
    let ops = [-120, -30, 60, 90, 180]
        .into_iter()
        .enumerate()
        .map(|(n, minutes)| Op::Upsert {
            id: n,
            customer: n % 3,
            open: from_month(minutes),
            first: Some(60_000 * (n as i64 + 1)),
            resolve: (n % 2 == 0).then_some(3_600_000),
            dims: (n % 3, 0, 0),
            version: 0,
        })
        .collect();
    let seconds_from_base = |minutes: i64| from_month(minutes) / 1000;
    let asks = [
        (120, "UTC"),
        (-60, "UTC"),
        (120, "Europe/Berlin"),
        (-60, "Asia/Kathmandu"),
    ]
    .into_iter()
    .map(|(minutes, zone)| Ask {
        zone,
        granularity: 0,
        group_by: 0,
        channel_filter: false,
        start: seconds_from_base(minutes),
        length: 20 * 86_400,
        first_target: None,
        resolution_target: None,
    })
    .collect();
    world().runtime.block_on(check(ops, asks));
}

/// Durations a millisecond under, at and over a target of 90.5 s, and zero durations with a
/// target of half a millisecond: the rollups judge the target's own sketch bucket as the raw
/// rows do, and both as the definition does (at the target is met).
#[test]
fn a_duration_at_its_target_meets_it() {
    let cases = [(90_499, 90_500), (90_500, 90_500), (90_501, 90_500), (0, 1)];
    for ((first, target), zone) in
        cases
            .into_iter()
            .zip(["UTC", "Europe/Berlin", "Asia/Kathmandu", "UTC"])
    {
        let durations = [first - 1, first, first, first + 1].map(|d| d.max(0));
        let ops: Vec<Op> = durations
            .iter()
            .enumerate()
            .map(|(n, &d)| Op::Upsert {
                id: n,
                customer: 0,
                open: 3_600_000 * n as i64,
                first: Some(d),
                resolve: Some(d),
                dims: (0, 0, 0),
                version: 0,
            })
            .collect();
        let ask = Ask {
            zone,
            granularity: 3,
            group_by: 0,
            channel_filter: false,
            start: -86_400,
            length: 40 * 86_400,
            first_target: Some(target),
            resolution_target: Some(target),
        };
        let app = &world().app;
        world().runtime.block_on(async {
            let tenant = format!("at-target-{}", uuid::Uuid::new_v4().simple());
            let key = app.create_key(&tenant, "read,write").await;
            apply(app, &key, &ops).await;
            let sketched = report(app, &key, &ask, false).await;
            let exact = report(app, &key, &ask, true).await;
            same_reports(&sketched, &exact);
            let met = durations.iter().filter(|&&d| d <= target).count() as i64;
            let stats = sketched.total.unwrap();
            for sla in [stats.first_response_sla, stats.resolution_sla] {
                let sla = sla.unwrap();
                assert_eq!(
                    (sla.met, sla.breached),
                    (met, 4 - met),
                    "{first} ms vs {target} ms"
                );
            }
        });
    }
}

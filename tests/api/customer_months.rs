//! Cohort activity from `customer_activity` and `customer_months` against the raw rows:
//! after random writes of responses and interactions, newer versions that move them to other
//! instants, months and customers, erasures and partial compactions, the rows of a monthly,
//! quarterly or yearly cohort grid in any zone are the same from every source that is exact
//! for the grid. Compactions run between the reads too, so customers with months not yet
//! folded, and months with retractions not yet recomputed, are read every way.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use cxmetrics::{
    domain::{
        Granularity, TenantId, TimeRange,
        cohorts::{ActivitySource, CohortPlan},
    },
    proto as pb,
};
use proptest::prelude::*;

use crate::helpers::*;

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/St_Johns",
    // The extreme offsets: +14 and -12 hours.
    "Pacific/Kiritimati",
    "Etc/GMT+12",
];

#[derive(Debug, Clone)]
enum Op {
    /// A response (`is_response`) or an interaction of `customer`, `minutes` after `base`,
    /// as version `version` of record `id`.
    Write {
        id: usize,
        is_response: bool,
        customer: usize,
        minutes: i64,
        version: i64,
    },
    Erase(usize),
    Compact(i32),
}

/// Around the turns of the months of 2025, where local months start in UTC's previous or
/// next day: the last and first days of January to April.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn minutes() -> impl Strategy<Value = i64> {
    let edge = (0..4i64, -(36 * 60)..(36 * 60i64)).prop_map(|(month, off)| {
        let start = NaiveDate::from_ymd_opt(2025, 2 + month as u32, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        (start - base()).num_minutes() + off
    });
    prop_oneof![3 => edge, 1 => 0..(150 * 24 * 60i64)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..30usize, any::<bool>(), 0..12usize, minutes(), 0..4i64).prop_map(
            |(id, is_response, customer, minutes, version)| Op::Write {
                id,
                is_response,
                customer,
                minutes,
                version,
            }
        ),
        1 => (0..12usize).prop_map(Op::Erase),
        2 => (1..30i32).prop_map(Op::Compact),
    ]
}

async fn apply(app: &TestApp, key: &str, ops: &[Op]) {
    let mut feedback = app.feedback_with(Some(key));
    for op in ops {
        match op {
            Op::Write {
                id,
                is_response,
                customer,
                minutes,
                version,
            } => {
                let at = ts(base() + Duration::minutes(*minutes));
                let update_time = Some(ts(t0() + Duration::hours(*version)));
                let customer = format!("c{customer}");
                if *is_response {
                    let mut r = nps(&format!("r{id}"), &customer, 7);
                    r.respond_time = Some(at);
                    r.update_time = update_time;
                    feedback
                        .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                            survey_responses: vec![r],
                        })
                        .await
                        .unwrap();
                } else {
                    let mut i = interaction(&format!("i{id}"), &customer);
                    i.open_time = Some(at);
                    i.first_response_time = None;
                    i.update_time = update_time;
                    feedback
                        .upsert_interaction(pb::UpsertInteractionRequest {
                            interaction: Some(i),
                        })
                        .await
                        .unwrap();
                }
            }
            Op::Erase(customer) => {
                feedback
                    .delete_customer_data(pb::DeleteCustomerDataRequest {
                        customer_id: format!("c{customer}"),
                    })
                    .await
                    .unwrap();
            }
            Op::Compact(max_rows) => {
                app.store.compact_rollups(*max_rows).await.unwrap();
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Grid {
    zone: &'static str,
    granularity: Granularity,
    /// Days after Dec 1, 2024 of the range's start, and its length in days.
    start: i64,
    days: i64,
    periods: usize,
}

fn grid() -> impl Strategy<Value = Grid> {
    (
        prop::sample::select(ZONES),
        prop::sample::select(vec![
            Granularity::Month,
            Granularity::Quarter,
            Granularity::Year,
        ]),
        0..60i64,
        1..150i64,
        1..5usize,
    )
        .prop_map(|(zone, granularity, start, days, periods)| Grid {
            zone,
            granularity,
            start,
            days,
            periods,
        })
}

async fn same_activity(app: &TestApp, tenant: &TenantId, grid: &Grid) {
    let tz: Tz = grid.zone.parse().unwrap();
    let day = |d: i64| {
        let date = NaiveDate::from_ymd_opt(2024, 12, 1).unwrap() + Duration::days(d);
        tz.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .to_utc()
    };
    let range = TimeRange::new(day(grid.start), day(grid.start + grid.days)).unwrap();
    let plan = CohortPlan::new(range, tz, grid.granularity, grid.periods);
    let best = ActivitySource::for_grid(plan.grid());
    // A grid of one boundary has no bucket: any source is exact for it.
    match grid.granularity {
        _ if plan.grid().len() < 2 => {}
        Granularity::Month => assert_eq!(best, ActivitySource::Customers, "{grid:?}"),
        _ => assert_eq!(best, ActivitySource::Months, "{grid:?}"),
    }
    let read = |source| {
        app.store.cohort_activity(
            tenant,
            plan.grid(),
            plan.cohorts_end(),
            grid.periods,
            source,
            None,
        )
    };
    let order = |a: &cxmetrics::domain::cohorts::CohortActivity| (a.cohort, a.bucket);
    let mut raw = read(ActivitySource::Raw).await.unwrap();
    raw.sort_by_key(order);
    let mut sources = vec![ActivitySource::Months, best];
    sources.dedup();
    for source in sources {
        let mut rows = read(source).await.unwrap();
        rows.sort_by_key(order);
        assert_eq!(rows, raw, "{grid:?} from {source:?}");
    }
}

async fn check(ops: Vec<Op>, grids: Vec<Grid>) {
    let app = &world().app;
    let name = format!("months-{}", uuid::Uuid::new_v4().simple());
    let tenant = TenantId::parse(&name).unwrap();
    let key = app.create_key(&name, "read,write").await;
    apply(app, &key, &ops).await;
    for (n, grid) in grids.iter().enumerate() {
        same_activity(app, &tenant, grid).await;
        if n % 2 == 0 {
            app.store.compact_rollups(7).await.unwrap();
        }
    }
    // Once everything is folded, every customer is read from its one row.
    while app.store.compact_rollups(1_000).await.unwrap() > 0 {}
    for grid in &grids {
        same_activity(app, &tenant, grid).await;
    }
    for check in app.store.verify_rollups(Some(&tenant)).await.unwrap() {
        assert_eq!(check.differing_keys, 0, "{check:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cohort_activity_from_customer_months_equals_the_raw_rows(
        ops in prop::collection::vec(op(), 0..50),
        grids in prop::collection::vec(grid(), 1..4),
    ) {
        world().runtime.block_on(check(ops, grids));
    }
}

/// A retraction makes its month read from the raw rows until it is compacted, and the
/// compaction recomputes the month's extremes from them.
#[test]
fn a_moved_record_leaves_its_old_month_and_instant() {
    let ops = vec![
        Op::Write {
            id: 1,
            is_response: true,
            customer: 0,
            minutes: 31 * 24 * 60 + 30, // Feb 1, 00:30 UTC: February in Berlin
            version: 0,
        },
        Op::Write {
            id: 2,
            is_response: false,
            customer: 0,
            minutes: 31 * 24 * 60 - 30, // Jan 31, 23:30 UTC: February in Berlin too
            version: 0,
        },
        Op::Write {
            id: 2,
            is_response: false,
            customer: 0,
            minutes: 10 * 24 * 60, // moved to Jan 11: the customer's cohort is January now
            version: 1,
        },
    ];
    // A customer active in local April only through the last instant of its UTC March.
    let ops = ops
        .into_iter()
        .chain([
            Op::Write {
                id: 3,
                is_response: true,
                customer: 1,
                minutes: 63 * 24 * 60 + 12 * 60, // Mar 5, 12:00 UTC
                version: 0,
            },
            Op::Write {
                id: 4,
                is_response: false,
                customer: 1,
                minutes: 89 * 24 * 60 + 23 * 60 + 30, // Mar 31, 23:30 UTC: April in Berlin
                version: 0,
            },
            Op::Compact(100),
        ])
        .collect();
    let grid = Grid {
        zone: "Europe/Berlin",
        granularity: Granularity::Month,
        start: 31,
        days: 90,
        periods: 3,
    };
    world()
        .runtime
        .block_on(check(ops, vec![grid.clone(), grid.clone(), grid]));
}

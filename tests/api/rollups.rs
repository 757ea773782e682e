//! The survey rollups against the raw rows: after random writes, updates, stale versions and
//! erasures, in zones whose buckets need quarter-hours (Kathmandu) and half-hour DST (Lord
//! Howe); under parallel writers into the same slots; and through `rollups verify` and
//! `rollups rebuild`.
//!
//! The raw path is reached with an attribute filter every record matches: attribute filters
//! are never served from the rollups. A model of the stored state, kept here, checks both.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use cxmetrics::{domain::TenantId, proto as pb};
use proptest::prelude::*;

use crate::helpers::*;

const SURVEYS: &[&str] = &["s1", "s2"];
const CHANNELS: &[&str] = &["", "email", "chat"];
const ZONES: &[&str] = &[
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Europe/Berlin",
    "UTC",
];

#[derive(Debug, Clone)]
enum Op {
    /// Write these responses in one batch call.
    Write(Vec<Resp>),
    /// Erase a customer.
    Erase(usize),
    /// Fold the deltas now (the server also does, every second).
    Compact,
}

#[derive(Debug, Clone)]
struct Resp {
    id: usize,
    kind: usize,
    score_seed: i32,
    minute: i64,
    survey: usize,
    channel: usize,
    customer: usize,
    /// Hours after t0 of update_time: equal or older versions change nothing.
    version: i64,
}

impl Resp {
    fn kind(&self) -> pb::SurveyKind {
        [
            pb::SurveyKind::Nps,
            pb::SurveyKind::Csat,
            pb::SurveyKind::Ces,
        ][self.kind]
    }

    fn score(&self) -> i32 {
        let (min, max) = [(0, 10), (1, 5), (1, 7)][self.kind];
        min + self.score_seed.rem_euclid(max - min + 1)
    }

    fn at(&self) -> DateTime<Utc> {
        base() + Duration::minutes(self.minute)
    }

    fn proto(&self) -> pb::SurveyResponse {
        pb::SurveyResponse {
            response_id: format!("r{}", self.id),
            survey_id: SURVEYS[self.survey].into(),
            kind: self.kind() as i32,
            score: self.score(),
            customer_id: format!("c{}", self.customer),
            channel: CHANNELS[self.channel].into(),
            respond_time: Some(ts(self.at())),
            attributes: [("all".to_string(), "yes".to_string())].into(),
            update_time: Some(ts(t0() + Duration::hours(self.version))),
            ..Default::default()
        }
    }
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 20, 0, 0, 0).unwrap()
}

fn resp() -> impl Strategy<Value = Resp> {
    (
        0..40usize,
        0..3usize,
        any::<i32>(),
        // Around both DST changes of Lord Howe and Berlin (October), minute by minute.
        0..(45 * 24 * 60i64),
        0..2usize,
        0..3usize,
        0..6usize,
        0..4i64,
    )
        .prop_map(
            |(id, kind, score_seed, minute, survey, channel, customer, version)| Resp {
                id,
                kind,
                score_seed,
                minute,
                survey,
                channel,
                customer,
                version,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(resp(), 1..12).prop_map(Op::Write),
        1 => (0..6usize).prop_map(Op::Erase),
        1 => Just(Op::Compact),
    ]
}

#[derive(Debug, Clone)]
struct Query {
    zone: &'static str,
    start_day: i64,
    /// Minutes after the local midnight the range starts and ends at: 0 for midnight,
    /// anything else leaves slivers no grain covers.
    offset: i64,
    days: i64,
    granularity: pb::Granularity,
    group_by: pb::Dimension,
    channel: Option<usize>,
}

fn query() -> impl Strategy<Value = Query> {
    (
        prop::sample::select(ZONES),
        0..30i64,
        prop_oneof![3 => Just(0i64), 1 => 1..1440i64],
        1..40i64,
        prop::sample::select(vec![
            pb::Granularity::Unspecified,
            pb::Granularity::Day,
            pb::Granularity::Week,
            pb::Granularity::Month,
        ]),
        prop::sample::select(vec![
            pb::Dimension::Unspecified,
            pb::Dimension::Survey,
            pb::Dimension::Channel,
        ]),
        proptest::option::of(1..3usize),
    )
        .prop_map(
            |(zone, start_day, offset, days, granularity, group_by, channel)| Query {
                zone,
                start_day,
                offset,
                days,
                granularity,
                group_by,
                channel,
            },
        )
}

impl Query {
    fn range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let tz: Tz = self.zone.parse().unwrap();
        let local = |day: i64| {
            let date = NaiveDate::from_ymd_opt(2025, 9, 20).unwrap() + Duration::days(day);
            let t = date.and_hms_opt(0, 0, 0).unwrap() + Duration::minutes(self.offset);
            // A local time in a DST gap (Berlin's lost hour, Lord Howe's lost half hour)
            // does not exist: take the one an hour later, past the gap.
            tz.from_local_datetime(&t)
                .earliest()
                .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
                .unwrap()
                .with_timezone(&Utc)
        };
        (local(self.start_day), local(self.start_day + self.days))
    }

    fn request(&self, raw: bool) -> pb::MetricRequest {
        let (start, end) = self.range();
        let mut filter = pb::MetricFilter::default();
        if let Some(c) = self.channel {
            filter.channels = vec![CHANNELS[c].into()];
        }
        if raw {
            filter.attributes = [("all".to_string(), "yes".to_string())].into();
        }
        pb::MetricRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(ts(start)),
                end_time: Some(ts(end)),
            }),
            time_zone: self.zone.into(),
            granularity: self.granularity as i32,
            group_by: self.group_by as i32,
            filter: Some(filter),
            compare_previous: true,
            ..Default::default()
        }
    }
}

/// The stored state the writes should leave: per id, the newest version written since the
/// customer's last erasure.
fn model(ops: &[Op]) -> HashMap<usize, Resp> {
    let mut stored: HashMap<usize, Resp> = HashMap::new();
    for op in ops {
        match op {
            Op::Write(batch) => {
                for r in batch {
                    if stored.get(&r.id).is_none_or(|old| old.version < r.version) {
                        stored.insert(r.id, r.clone());
                    }
                }
            }
            Op::Erase(customer) => stored.retain(|_, r| r.customer != *customer),
            Op::Compact => {}
        }
    }
    stored
}

async fn apply(app: &TestApp, key: &str, tenant: &str, ops: &[Op]) {
    let mut feedback = app.feedback_with(Some(key));
    for op in ops {
        match op {
            Op::Write(batch) => {
                feedback
                    .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                        survey_responses: batch.iter().map(Resp::proto).collect(),
                    })
                    .await
                    .expect("batch write");
            }
            Op::Erase(customer) => {
                feedback
                    .delete_customer_data(pb::DeleteCustomerDataRequest {
                        customer_id: format!("c{customer}"),
                    })
                    .await
                    .expect("erase");
            }
            Op::Compact => {
                app.store
                    .compact_rollups(cxmetrics::storage::COMPACT_ROWS)
                    .await
                    .expect("compact");
            }
        }
    }
    let tenant = TenantId::parse(tenant).unwrap();
    assert_rollups_match(app, &tenant).await;
}

async fn assert_rollups_match(app: &TestApp, tenant: &TenantId) {
    for check in app
        .store
        .verify_rollups(Some(tenant))
        .await
        .expect("verify")
    {
        assert_eq!(check.differing_keys, 0, "{check:?}");
    }
}

async fn run_case(app: &TestApp, ops: Vec<Op>, queries: Vec<Query>, case: usize) {
    let tenant = format!("rollups-{case}");
    let key = app.create_key(&tenant, "read,write").await;
    apply(app, &key, &tenant, &ops).await;
    let stored = model(&ops);
    let mut metrics = app.metrics_with(&key);
    for q in &queries {
        let (start, end) = q.range();
        let in_range = |kind: pb::SurveyKind| {
            stored
                .values()
                .filter(|r| r.kind() == kind && r.at() >= start && r.at() < end)
                .filter(|r| q.channel.is_none_or(|c| r.channel == c))
                .count() as i64
        };
        let nps = metrics
            .get_nps(q.request(false))
            .await
            .unwrap()
            .into_inner();
        let raw = metrics.get_nps(q.request(true)).await.unwrap().into_inner();
        assert_eq!(nps, raw, "{q:?}");
        assert_eq!(
            nps.total.unwrap().responses,
            in_range(pb::SurveyKind::Nps),
            "{q:?}"
        );

        let csat = metrics
            .get_csat(q.request(false))
            .await
            .unwrap()
            .into_inner();
        let raw = metrics
            .get_csat(q.request(true))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(csat, raw, "{q:?}");
        assert_eq!(
            csat.total.unwrap().responses,
            in_range(pb::SurveyKind::Csat),
            "{q:?}"
        );

        let ces = metrics
            .get_ces(q.request(false))
            .await
            .unwrap()
            .into_inner();
        let raw = metrics.get_ces(q.request(true)).await.unwrap().into_inner();
        assert_eq!(ces, raw, "{q:?}");
        assert_eq!(
            ces.total.unwrap().responses,
            in_range(pb::SurveyKind::Ces),
            "{q:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rollup_answers_equal_the_raw_rows_after_updates_stale_versions_and_erasures(
        ops in proptest::collection::vec(op(), 1..25),
        queries in proptest::collection::vec(query(), 1..4),
    ) {
        static CASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let w = world();
        w.runtime.block_on(run_case(&w.app, ops, queries, case));
    }
}

/// Eight writers send overlapping batches (the same ids, in different orders, with newer
/// versions) into the same two quarter-hours while the rollups are compacted and rebuilt:
/// no call fails, and every count is exact.
#[tokio::test]
async fn parallel_writers_into_the_same_slots_count_exactly_while_compacted_and_rebuilt() {
    let app = spawn_app().await;
    let slot = Utc.with_ymd_and_hms(2025, 6, 1, 10, 0, 0).unwrap();
    let writers = (0..8u32).map(|w| {
        let mut feedback = app.feedback();
        tokio::spawn(async move {
            for round in 0..12u32 {
                let mut responses: Vec<pb::SurveyResponse> = (0..150u32)
                    .map(|i| {
                        let mut r = nps(
                            &format!("r{i}"),
                            &format!("c{}", i % 7),
                            ((i + w + round) % 11) as i32,
                        );
                        r.respond_time = Some(ts(slot + Duration::seconds(i64::from(i * 11))));
                        r.channel = CHANNELS[(i % 3) as usize].into();
                        r.attributes = [("all".to_string(), "yes".to_string())].into();
                        r.update_time =
                            Some(ts(t0() + Duration::seconds(i64::from(round * 8 + w))));
                        r
                    })
                    .collect();
                if w % 2 == 1 {
                    responses.reverse();
                }
                feedback
                    .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                        survey_responses: responses,
                    })
                    .await
                    .expect("no batch fails: no deadlock, no serialization failure");
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    let store = app.store.clone();
    let upkeep = tokio::spawn(async move {
        for i in 0..20 {
            store
                .compact_rollups(cxmetrics::storage::COMPACT_ROWS)
                .await
                .expect("compact");
            if i == 10 {
                store.rebuild_rollups(None).await.expect("online rebuild");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    for w in writers {
        w.await.unwrap();
    }
    upkeep.await.unwrap();

    assert_rollups_match(&app, &TenantId::parse(TENANT).unwrap()).await;
    let request = |raw: bool| pb::MetricRequest {
        time_range: Some(pb::TimeRange {
            start_time: Some(ts(slot - Duration::hours(1))),
            end_time: Some(ts(slot + Duration::hours(1))),
        }),
        time_zone: "Asia/Kathmandu".into(),
        group_by: pb::Dimension::Channel as i32,
        filter: raw.then(|| pb::MetricFilter {
            attributes: [("all".to_string(), "yes".to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut metrics = app.metrics_with(&app.key);
    let report = metrics.get_nps(request(false)).await.unwrap().into_inner();
    assert_eq!(report.total.as_ref().unwrap().responses, 150);
    let promoters = app
        .count("select count(*) from survey_responses where score >= 9")
        .await;
    assert_eq!(report.total.unwrap().promoters, promoters);
    assert_eq!(
        report,
        metrics.get_nps(request(true)).await.unwrap().into_inner()
    );
}

/// `rollups verify` passes on consistent rollups and exits non-zero, naming the table, when
/// a count is wrong; `rollups rebuild --tenant` repairs it.
#[tokio::test]
async fn the_rollups_commands_verify_and_rebuild() {
    let app = spawn_app().await;
    let responses = (0..30)
        .map(|i| nps(&format!("r{i}"), "c1", i % 11))
        .collect();
    app.feedback()
        .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
            survey_responses: responses,
        })
        .await
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_cxmetrics");
    // Awaited, not waited for: a blocked test thread would stop the server it runs, whose
    // compactor may hold rows that a rebuild waits for.
    let run = |args: &[&str]| {
        tokio::process::Command::new(bin)
            .args(args)
            .env("DATABASE_URL", &app.database_url)
            .output()
    };
    let out = run(&["rollups", "verify"]).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("survey_rollups: 0 differing keys"),
        "{out:?}"
    );

    // A lost delta: one day's promoters count one too few.
    sqlx::query(
        "insert into survey_rollups
             (tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score, n)
         values ($1, 1, 3, $2, 'survey-1', '', 0, 10, 9, -1)",
    )
    .bind(TENANT)
    .bind(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap())
    .execute(app.store.pool())
    .await
    .unwrap();
    let out = run(&["rollups", "verify"]).await.unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("survey_rollups: 1 differing keys"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rollups rebuild"),
        "{out:?}"
    );

    let out = run(&["rollups", "rebuild", "--tenant", TENANT])
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = run(&["rollups", "verify", "--tenant", TENANT])
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = run(&["rollups", "rebuild", "--tenant", "bad tenant!"])
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tenant"),
        "{out:?}"
    );
}

/// A database migrated up to the migration that adds the month and hour rollups over every
/// dimension, with records in it, has them counted in those grains by that migration:
/// `rollups verify` finds no difference, and unfiltered reads have slots to read.
#[tokio::test]
async fn the_undivided_rollups_migration_counts_what_is_already_stored() {
    use sqlx::{Executor, postgres::PgPoolOptions};

    let url = create_database().await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let earlier = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "20261201000003" {
            std::fs::copy(&path, earlier.path().join(name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(earlier.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    // Three months of records, every 7 hours and 13 minutes, in two tenants.
    pool.execute(
        "insert into survey_responses (tenant_id, response_id, survey_id, kind, score,
             scale_min, scale_max, customer_id, channel, respond_time, update_time)
         select 't' || g % 2, 'r' || g, 's' || g % 3, 1, g % 11, 0, 10, 'c' || g % 17,
                case when g % 4 = 0 then null else 'web' end,
                timestamptz '2025-01-20 00:00+00' + g * interval '433 minutes', now()
         from generate_series(1, 300) g;
         insert into interactions (tenant_id, interaction_id, customer_id, channel, agent_id,
             team_id, open_time, first_response_time, resolve_time, update_time)
         select 't' || g % 2, 'i' || g, 'c' || g % 17, 'chat', 'a' || g % 3, null,
                timestamptz '2025-01-20 00:00+00' + g * interval '433 minutes',
                timestamptz '2025-01-20 00:00+00' + g * interval '433 minutes'
                    + (g % 50) * interval '97 seconds',
                null, now()
         from generate_series(1, 300) g",
    )
    .await
    .unwrap();
    let store = cxmetrics::storage::Store::from_pool(pool.clone());
    store.migrate().await.unwrap();
    for check in store.verify_rollups(None).await.unwrap() {
        assert_eq!(check.differing_keys, 0, "{check:?}");
    }
    for table in ["survey_rollups", "interaction_rollups"] {
        let sql = format!("select count(distinct slot) from {table} where grain = $1");
        for (grain, slots, what) in [
            (5_i16, 4_i64, "the months January to April 2025"),
            (6, 300, "every record in an hour of its own"),
        ] {
            let found: i64 = sqlx::query_scalar(&sql)
                .bind(grain)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(found, slots, "{table}: {what}");
        }
    }
    // The later migrations fill the per-customer tables too: 17 customers in each tenant.
    for table in ["customer_months", "customer_activity"] {
        let sql = format!("select count(distinct (tenant_id, customer_id)) from {table}");
        let customers: i64 = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
        assert_eq!(customers, 34, "{table}");
    }
}

//! Metrics at ten million records (issue 11; needs DATABASE_URL), through the built binary
//! running as its own process, in a fresh database:
//! - loads 1M, then 10M survey responses and as many interactions of one tenant over 2025,
//!   plus 1M customers, with plain SQL into the raw tables, so that whatever triggers keep
//!   derived tables current run as they do on any write;
//! - for one-year monthly GetNps (in Europe/Berlin, by channel, in Asia/Kathmandu), GetCsat,
//!   GetResponseTimes with SLA targets, GetRetention and GetCohortRetention: p50 and p99 over
//!   gRPC at 1 and 4 concurrent clients, the naive SQL a data analyst would write for the
//!   same answer, their ratio, the latency against the first size, and the server's peak
//!   resident memory growth during the calls;
//! - ingest: records/s of ImportRecords and of BatchRecordSurveyResponses (1,000 per call)
//!   from 4 clients, against a COPY of the same rows into the same table;
//! - the portal: the time from navigation to a fully drawn overview of 2025 in
//!   Europe/Berlin, in headless Chromium (as the portal's tests drive it), first load and
//!   p50 of the reloads.
//!
//! Every answer is compared with the naive SQL's; any difference fails the run once the
//! figures are printed. `cargo bench --bench scale` runs 1M then 10M rows;
//! `CXMETRICS_SCALE_SIZES=1000000` (a comma-separated list) picks other sizes. Under
//! `cargo test` it runs 2,000 rows as a smoke test.
//!
//! For working on one query at scale: `CXMETRICS_SCALE_DATABASE=name` loads into that
//! database (created when missing), keeps it, and adds to what an earlier run loaded there;
//! `CXMETRICS_SCALE_QUERIES=Cohort` measures only the queries whose label contains that
//! text.

#[path = "../tests/portal/browser.rs"]
#[allow(dead_code)]
mod browser;
#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::{Asia::Kathmandu, Europe::Berlin, Tz};
use cxmetrics::{
    commands,
    grpc::convert::{from_timestamp, to_timestamp},
    proto as pb,
    storage::Store,
};
use futures::future::try_join_all;
use helpers::{Metrics, connect, feedback_client, metrics_client, with_database};
use sqlx::{Connection, Executor, PgConnection, Row, postgres::PgPoolOptions};
use tonic::transport::Channel;

/// The tenant whose data the metrics read.
const TENANT: &str = "bench";
/// Customers loaded (fewer when every size is smaller).
const CUSTOMERS: i64 = 1_000_000;
/// Survey responses each ingest method writes (fewer when the first size is smaller).
const INGEST_ROWS: usize = 200_000;
/// Rows per load statement, so that progress can be printed.
const LOAD_CHUNK: i64 = 1_000_000;
/// Concurrent clients of the second latency phase and of ingest.
const CLIENTS: usize = 4;
/// Records per BatchRecordSurveyResponses call.
const BATCH: usize = 1_000;
/// SLA targets of the GetResponseTimes queries.
const FIRST_RESPONSE_TARGET_SECS: i64 = 3_600;
const RESOLUTION_TARGET_SECS: i64 = 86_400;
/// Relative error allowed between two percentiles: sketches promise 1% (design section 4).
const SKETCH: f64 = 0.01;
/// The same for exact percentiles: only floating-point noise.
const EXACT: f64 = 1e-9;

/// The queries measured at every size, in order, one line each, so that a variant is one
/// more line. Exact percentiles, once `ResponseTimeRequest` has `exact`, are
/// `Query::response_times("GetResponseTimes exact, Berlin", |r| r.exact = true, EXACT),`.
const QUERIES: &[Query] = &[
    Query::nps("GetNps monthly, Berlin", Berlin, false),
    Query::nps("GetNps monthly by channel, Berlin", Berlin, true),
    Query::nps("GetNps monthly, Kathmandu", Kathmandu, false),
    Query::csat("GetCsat monthly, Berlin"),
    Query::response_times("GetResponseTimes monthly + SLA, Berlin", |_| {}, SKETCH),
    Query::response_times("GetResponseTimes exact, Berlin", |r| r.exact = true, EXACT),
    Query::retention("GetRetention monthly, Berlin"),
    Query::cohorts("GetCohortRetention monthly x 12, Berlin", 12),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = Plan::new(full)?;
    let admin = std::env::var("DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("set DATABASE_URL (scripts/test does) to run the benchmark")
    })?;
    let mut conn = PgConnection::connect(&admin)
        .await
        .context("connecting to DATABASE_URL")?;
    if let Some(name) = &plan.keep {
        let exists = sqlx::query("select 1 from pg_database where datname = $1")
            .bind(name)
            .fetch_optional(&mut conn)
            .await?
            .is_some();
        if !exists {
            conn.execute(format!(r#"create database "{name}""#).as_str())
                .await?;
        }
        return run(&plan, &with_database(&admin, name)).await;
    }
    let name = format!("bench_scale_{}", uuid::Uuid::new_v4().simple());
    conn.execute(format!(r#"create database "{name}""#).as_str())
        .await?;
    let outcome = run(&plan, &with_database(&admin, &name)).await;
    // Dropped whatever happened: a bench database holds gigabytes.
    PgConnection::connect(&admin)
        .await?
        .execute(format!(r#"drop database "{name}" with (force)"#).as_str())
        .await
        .context("dropping the bench database")?;
    outcome
}

async fn run(plan: &Plan, url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = Store::from_pool(PgPoolOptions::new().max_connections(4).connect(url).await?);
    store.migrate().await?;
    let bench = Bench {
        url: url.to_owned(),
        key: commands::create_key(&store, TENANT, "read,write").await?,
        store,
    };
    let mut loader = Loader::connect(url).await?;
    let (mut measured, mut ingested, mut portals) = (Vec::new(), Vec::new(), Vec::new());
    for &size in &plan.sizes {
        let mut loaded = loader.load(Table::Customers, plan.customers).await?;
        loaded |= loader.load(Table::SurveyResponses, size).await?;
        loaded |= loader.load(Table::Interactions, size).await?;
        if loaded {
            after_load(&bench.store).await?;
        }
        for query in QUERIES.iter().filter(|q| {
            plan.queries
                .as_ref()
                .is_none_or(|s| q.label.contains(s.as_str()))
        }) {
            let result = measure(&bench, plan, query, size).await?;
            println!("{}", result.line());
            measured.push(result);
        }
        if plan
            .queries
            .as_ref()
            .is_none_or(|s| PORTAL.contains(s.as_str()))
        {
            portals.push(portal_overview(&bench, size).await?);
            println!("{}", portals[portals.len() - 1]);
        }
        ingested.extend(ingest(&bench, &mut loader, plan.ingest, size).await?);
    }
    println!("\n{}", metrics_table(&measured, plan.customers));
    println!("{}", ingest_table(&ingested));
    for line in &portals {
        println!("{line}");
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "whole run, loads included: {took:.0} s ({:.1} min)",
        took / 60.0
    );
    let differ: Vec<_> = measured.iter().filter(|m| m.agrees.is_err()).collect();
    for m in &differ {
        if let Err(why) = &m.agrees {
            println!(
                "{} at {} rows differs from the naive SQL: {why}",
                m.label,
                human(m.size)
            );
        }
    }
    ensure!(
        differ.is_empty(),
        "{} answers differ from the naive SQL",
        differ.len()
    );
    Ok(())
}

/// Runs after every load, before anything is measured. `vacuum analyze` gives the planner
/// statistics and the visibility map the new rows, as autovacuum would in production; rollup
/// compaction, once it exists, belongs here too.
async fn after_load(store: &Store) -> anyhow::Result<()> {
    // The load skipped the triggers: count everything it wrote, as `rollups rebuild` does.
    let started = Instant::now();
    let rows = store.rebuild_rollups(None).await?;
    println!(
        "rollups rebuild: {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    sqlx::query("vacuum analyze").execute(store.pool()).await?;
    println!("vacuum analyze: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The bench database and the key of its tenant.
struct Bench {
    url: String,
    store: Store,
    key: String,
}

// ---------------------------------------------------------------------------------------
// Sizes and repetitions
// ---------------------------------------------------------------------------------------

/// How big and how long: full sizes under `cargo bench`, tiny ones under `cargo test`.
struct Plan {
    /// Survey responses (and as many interactions) after each load, increasing.
    sizes: Vec<i64>,
    customers: i64,
    ingest: usize,
    /// Calls in each latency phase: at least `min` over all clients, at most `max` each.
    calls: Repeat,
    /// Runs of each naive query.
    naive: Repeat,
    /// The database to load into and keep (`CXMETRICS_SCALE_DATABASE`).
    keep: Option<String>,
    /// Only the queries whose label contains this (`CXMETRICS_SCALE_QUERIES`).
    queries: Option<String>,
}

/// At least `min` repetitions, then more while under `budget`, up to `max`: enough samples
/// for a p99 where calls are fast, a bounded run where they are not.
#[derive(Debug, Clone, Copy)]
struct Repeat {
    min: usize,
    max: usize,
    budget: Duration,
}

impl Repeat {
    fn more(&self, done: usize, started: Instant) -> bool {
        done < self.min || (done < self.max && started.elapsed() < self.budget)
    }
}

impl Plan {
    fn new(full: bool) -> anyhow::Result<Self> {
        let sizes = match std::env::var("CXMETRICS_SCALE_SIZES") {
            Ok(list) => parse_sizes(&list)?,
            Err(std::env::VarError::NotPresent) if full => vec![1_000_000, 10_000_000],
            Err(std::env::VarError::NotPresent) => vec![2_000],
            Err(e) => bail!("CXMETRICS_SCALE_SIZES: {e}"),
        };
        let (smallest, largest) = (sizes[0], sizes[sizes.len() - 1]);
        let (calls, naive) = if full {
            let calls = Repeat {
                min: 3,
                max: 20,
                budget: Duration::from_secs(20),
            };
            let naive = Repeat {
                min: 1,
                max: 3,
                budget: Duration::from_secs(30),
            };
            (calls, naive)
        } else {
            let times = |n| Repeat {
                min: n,
                max: n,
                budget: Duration::ZERO,
            };
            (times(2), times(1))
        };
        Ok(Self {
            sizes,
            customers: CUSTOMERS.min(largest),
            ingest: INGEST_ROWS.min(usize::try_from(smallest)?),
            calls,
            naive,
            keep: std::env::var("CXMETRICS_SCALE_DATABASE").ok(),
            queries: std::env::var("CXMETRICS_SCALE_QUERIES").ok(),
        })
    }
}

/// "1000000, 10_000_000" as increasing sizes.
fn parse_sizes(list: &str) -> anyhow::Result<Vec<i64>> {
    let mut sizes =
        list.split(',')
            .map(|s| {
                let size: i64 = s.trim().replace('_', "").parse().with_context(|| {
                    format!("CXMETRICS_SCALE_SIZES: {s:?} is not a number of rows")
                })?;
                ensure!(size > 0, "CXMETRICS_SCALE_SIZES: sizes must be positive");
                Ok(size)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

/// Session functions (pg_temp) of the loading connection, so that the bench leaves nothing
/// in the schema. Every random value of row g is a hash of (g, draw number): row g is the
/// same whichever load or chunk writes it, so the first 1M rows of the 10M are the 1M
/// measured first, and the ingest rows are those of the metrics.
/// - `uniform`: a draw in [0, 1);
/// - `normal`: a standard normal draw, from two uniform ones (Box-Muller);
/// - `moment`: an instant of 2025, its day drawn from the cumulative day weights `days`,
///   its UTC hour from `hours` (`width_bucket` over thresholds starting at 0), its second
///   within the hour uniformly.
const GENERATORS: &str = "
create function pg_temp.uniform(g bigint, draw int) returns float8
    language sql immutable parallel safe
    as $$ select (hashint8extended(g, draw) & 9007199254740991)::float8 / 9007199254740992 $$;
create function pg_temp.normal(g bigint, draw int) returns float8
    language sql immutable parallel safe
    as $$ select sqrt(-2 * ln(1 - pg_temp.uniform(g, draw)))
                 * cos(2 * pi() * pg_temp.uniform(g, draw + 1)) $$;
create function pg_temp.moment(g bigint, draw int, days float8[], hours float8[])
    returns timestamptz language sql immutable parallel safe
    as $$ select timestamptz '2025-01-01 00:00:00+00'
                 + ((width_bucket(pg_temp.uniform(g, draw), days) - 1) * 86400
                    + (width_bucket(pg_temp.uniform(g, draw + 1), hours) - 1) * 3600
                    + floor(3600 * pg_temp.uniform(g, draw + 2))) * interval '1 second' $$;
";

const RESPONSE_COLUMNS: &str = "tenant_id, response_id, survey_id, kind, score, scale_min, \
    scale_max, customer_id, channel, respond_time, update_time";

/// Survey responses g in [$1, $2) of tenant $3, at instants of `moment` over the day and hour
/// thresholds $4 and $5:
/// - surveys: s1 asks NPS (40% of all answers), s2 asks NPS (20%) and CSAT (30%), s3 asks
///   CES (10%);
/// - NPS scores 0..10 with shares 2,1,1,2,2,4,6,10,18,24,30% (NPS about 36); CSAT 1..5 with
///   5,7,13,35,40%; CES 1..7 with 3,4,8,15,25,25,20%;
/// - customers c0..c199999, some far more often than others;
/// - channels email 35%, chat 25%, phone 15%, web 15%, none 10%.
const RESPONSES: &str = "
select $3::text as tenant_id, 'r' || g as response_id,
       (array['s1', 's2', 's2', 's3'])[d.q] as survey_id,
       (array[1, 1, 2, 3])[d.q]::smallint as kind,
       (case when d.q <= 2
             then width_bucket(pg_temp.uniform(g, 2),
                      array[0, .02, .03, .04, .06, .08, .12, .18, .28, .46, .70]::float8[]) - 1
             when d.q = 3
             then width_bucket(pg_temp.uniform(g, 2), array[0, .05, .12, .25, .60]::float8[])
             else width_bucket(pg_temp.uniform(g, 2),
                      array[0, .03, .07, .15, .30, .55, .80]::float8[])
        end)::smallint as score,
       (array[0, 0, 1, 1])[d.q]::smallint as scale_min,
       (array[10, 10, 5, 7])[d.q]::smallint as scale_max,
       'c' || floor(200000 * pow(pg_temp.uniform(g, 3), 1.3))::int as customer_id,
       (array['email', 'chat', 'phone', 'web', null])[
           width_bucket(pg_temp.uniform(g, 4), array[0, .35, .60, .75, .90]::float8[])] as channel,
       d.t as respond_time, d.t as update_time
from generate_series($1::bigint, $2::bigint - 1) g,
     lateral (select width_bucket(pg_temp.uniform(g, 1), array[0, .4, .6, .9]::float8[]) as q,
                     pg_temp.moment(g, 5, $4, $5) as t) d";

const INTERACTION_COLUMNS: &str = "tenant_id, interaction_id, customer_id, channel, agent_id, \
    team_id, open_time, first_response_time, resolve_time, update_time";

/// Interactions g in [$1, $2) of tenant $3, opened at instants of `moment` over $4 and $5:
/// - customers and channels as for the responses; 50 agents in 5 teams;
/// - first response after a log-normal delay (median 30 minutes, p99 about 1.5 days; chat
///   10 and phone 20 times faster), none yet for 5%;
/// - resolution a log-normal time after the first response (median 4 hours), none yet for
///   8% of the answered ones. Times in whole seconds, as helpdesks record them.
const INTERACTIONS: &str = "
select $3::text as tenant_id, 'i' || g as interaction_id,
       'c' || floor(200000 * pow(pg_temp.uniform(g, 13), 1.3))::int as customer_id,
       d.channel, 'agent-' || d.agent as agent_id, 'team-' || (d.agent % 5) as team_id,
       d.t as open_time, r.first_response_time, r.resolve_time,
       coalesce(r.resolve_time, r.first_response_time, d.t) as update_time
from generate_series($1::bigint, $2::bigint - 1) g,
     lateral (select (array['email', 'chat', 'phone', 'web', null])[
                         width_bucket(pg_temp.uniform(g, 14),
                                      array[0, .35, .60, .75, .90]::float8[])] as channel,
                     floor(50 * pg_temp.uniform(g, 15))::int as agent,
                     pg_temp.moment(g, 11, $4, $5) as t) d,
     lateral (select case when pg_temp.uniform(g, 16) >= 0.05
                          then round(least(5184000, exp(ln(1800) + 1.8 * pg_temp.normal(g, 17))
                                   * case d.channel when 'chat' then 0.1
                                                    when 'phone' then 0.05 else 1 end))
                     end as first_seconds,
                     round(least(5184000, exp(ln(14400) + 1.5 * pg_temp.normal(g, 19))))
                         as resolve_seconds) s,
     lateral (select d.t + s.first_seconds * interval '1 second' as first_response_time,
                     case when pg_temp.uniform(g, 21) >= 0.08
                          then d.t + (s.first_seconds + s.resolve_seconds) * interval '1 second'
                     end as resolve_time) r";

const CUSTOMER_COLUMNS: &str = "tenant_id, customer_id, acquire_time, churn_time, update_time";

/// Customers c[$1]..c[$2 - 1] of tenant $3, acquired from 2019 through 2025 at a growing
/// rate; 30% churned at a uniform time between their acquisition and the end of 2025.
const CUSTOMERS_SQL: &str = "
select $3::text as tenant_id, 'c' || g as customer_id, a.t as acquire_time,
       case when pg_temp.uniform(g, 32) < 0.3
            then a.t + round(pg_temp.uniform(g, 33)
                     * extract(epoch from timestamptz '2026-01-01 00:00:00+00' - a.t))
                     * interval '1 second'
       end as churn_time,
       a.t as update_time
from generate_series($1::bigint, $2::bigint - 1) g,
     lateral (select timestamptz '2019-01-01 00:00:00+00'
                     + round(sqrt(pg_temp.uniform(g, 31))
                             * extract(epoch from timestamptz '2026-01-01 00:00:00+00'
                                                - timestamptz '2019-01-01 00:00:00+00'))
                     * interval '1 second' as t) a";

#[derive(Debug, Clone, Copy)]
enum Table {
    SurveyResponses,
    Interactions,
    Customers,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::SurveyResponses => "survey_responses",
            Table::Interactions => "interactions",
            Table::Customers => "customers",
        }
    }

    fn insert(self) -> String {
        let (columns, rows) = match self {
            Table::SurveyResponses => (RESPONSE_COLUMNS, RESPONSES),
            Table::Interactions => (INTERACTION_COLUMNS, INTERACTIONS),
            Table::Customers => (CUSTOMER_COLUMNS, CUSTOMERS_SQL),
        };
        format!("insert into {} ({columns}) {rows}", self.name())
    }
}

/// The loading connection (which holds the generators) and how many rows each table has.
struct Loader {
    conn: PgConnection,
    loaded: BTreeMap<&'static str, i64>,
    days: Vec<f64>,
    hours: Vec<f64>,
}

impl Loader {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect(url).await?;
        conn.execute(GENERATORS).await?;
        // What an earlier run left in a kept database (the rows of a load are numbered, so
        // a load goes on where that one stopped).
        let mut loaded = BTreeMap::new();
        for table in [
            Table::SurveyResponses,
            Table::Interactions,
            Table::Customers,
        ] {
            let rows: i64 = sqlx::query_scalar(&format!(
                "select count(*) from {} where tenant_id = $1",
                table.name()
            ))
            .bind(TENANT)
            .fetch_one(&mut conn)
            .await?;
            loaded.insert(table.name(), rows);
        }
        Ok(Self {
            conn,
            loaded,
            days: thresholds(&day_weights()),
            hours: thresholds(&HOUR_WEIGHTS),
        })
    }

    /// Adds rows to `table` until it holds `rows`, in chunks of `LOAD_CHUNK`; whether it
    /// added any.
    async fn load(&mut self, table: Table, rows: i64) -> anyhow::Result<bool> {
        let have = self.loaded.get(table.name()).copied().unwrap_or(0);
        let sql = table.insert();
        let started = Instant::now();
        // The load skips the rollup triggers (`after_load` rebuilds the rollups in one pass,
        // much faster than a trigger per chunk and the compaction after it). What the
        // triggers cost a write is measured by `ingest`, with them on.
        self.conn
            .execute("set session_replication_role = replica")
            .await?;
        for from in (have..rows).step_by(LOAD_CHUNK as usize) {
            let to = (from + LOAD_CHUNK).min(rows);
            sqlx::query(&sql)
                .bind(from)
                .bind(to)
                .bind(TENANT)
                .bind(&self.days)
                .bind(&self.hours)
                .execute(&mut self.conn)
                .await
                .with_context(|| format!("loading {}", table.name()))?;
            println!(
                "loaded {} of {} {} ({:.0} s)",
                human(to),
                human(rows),
                table.name(),
                started.elapsed().as_secs_f64()
            );
        }
        self.conn
            .execute("set session_replication_role = origin")
            .await?;
        self.loaded.insert(table.name(), rows.max(have));
        Ok(rows > have)
    }

    /// The first `rows` survey responses of the load, as tenant `tenant`'s.
    async fn responses(&mut self, tenant: &str, rows: usize) -> anyhow::Result<Vec<Generated>> {
        Ok(sqlx::query_as(RESPONSES)
            .bind(0i64)
            .bind(i64::try_from(rows)?)
            .bind(tenant)
            .bind(&self.days)
            .bind(&self.hours)
            .fetch_all(&mut self.conn)
            .await?)
    }
}

/// Relative volume of each day of 2025: weekends quieter than weekdays, a summer dip, a
/// quiet end of December, and growth of 30% over the year.
fn day_weights() -> Vec<f64> {
    (0..365)
        .map(|day| {
            let date = NaiveDate::from_yo_opt(2025, day + 1).expect("2025 has 365 days");
            let week = match date.weekday() {
                Weekday::Sat => 0.55,
                Weekday::Sun => 0.45,
                _ => 1.0,
            };
            let season = match (date.month(), date.day()) {
                (8, _) => 0.8,
                (12, 24..) => 0.5,
                _ => 1.0,
            };
            week * season * (1.0 + 0.3 * f64::from(day) / 364.0)
        })
        .collect()
}

/// Relative volume of each UTC hour: office hours in Europe, a long evening tail.
const HOUR_WEIGHTS: [f64; 24] = [
    0.15, 0.1, 0.1, 0.1, 0.15, 0.3, 0.6, 1.0, 1.3, 1.4, 1.4, 1.3, 1.3, 1.4, 1.4, 1.3, 1.1, 0.9,
    0.7, 0.6, 0.5, 0.4, 0.3, 0.2,
];

/// `width_bucket` thresholds that pick index i with probability weights[i] / sum: the
/// cumulative shares before each index, starting at 0.
fn thresholds(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .scan(0.0, |before, w| {
            let start = *before / total;
            *before += w;
            Some(start)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The queries: the service's request and the naive SQL for the same answer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Query {
    label: &'static str,
    zone: Tz,
    metric: Metric,
}

#[derive(Debug, Clone, Copy)]
enum Metric {
    Nps {
        by_channel: bool,
    },
    Csat,
    ResponseTimes {
        /// Changes the base request (targets set, monthly) into this variant.
        adjust: fn(&mut pb::ResponseTimeRequest),
        /// Relative error allowed for its percentiles.
        percentiles: f64,
    },
    Retention,
    Cohorts {
        periods: i32,
    },
}

/// A service reply, of any of the metrics.
enum Reply {
    Nps(pb::NpsReport),
    Csat(pb::CsatReport),
    ResponseTimes(Box<pb::ResponseTimeReport>),
    Retention(pb::RetentionReport),
    Cohorts(pb::CohortRetentionReport),
}

/// The figures of an answer by "month [group] figure", as both the service and the naive
/// SQL give them. Empty buckets, which the service lists and SQL does not, are left out.
#[derive(Debug, Default)]
struct Answer(BTreeMap<String, f64>);

impl Answer {
    fn put(&mut self, month: &str, group: &str, figure: &str, value: f64) {
        self.0.insert(format!("{month} [{group}] {figure}"), value);
    }

    fn put_some(&mut self, month: &str, group: &str, figure: &str, value: Option<f64>) {
        if let Some(value) = value {
            self.put(month, group, figure, value);
        }
    }
}

impl Query {
    const fn nps(label: &'static str, zone: Tz, by_channel: bool) -> Self {
        Self {
            label,
            zone,
            metric: Metric::Nps { by_channel },
        }
    }

    const fn csat(label: &'static str) -> Self {
        Self {
            label,
            zone: Berlin,
            metric: Metric::Csat,
        }
    }

    const fn response_times(
        label: &'static str,
        adjust: fn(&mut pb::ResponseTimeRequest),
        percentiles: f64,
    ) -> Self {
        Self {
            label,
            zone: Berlin,
            metric: Metric::ResponseTimes {
                adjust,
                percentiles,
            },
        }
    }

    const fn retention(label: &'static str) -> Self {
        Self {
            label,
            zone: Berlin,
            metric: Metric::Retention,
        }
    }

    const fn cohorts(label: &'static str, periods: i32) -> Self {
        Self {
            label,
            zone: Berlin,
            metric: Metric::Cohorts { periods },
        }
    }

    /// 2025 in the query's zone: from local midnight of January 1 to that of the next year.
    fn year(&self) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
        let midnight = |year| {
            self.zone
                .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
                .single()
                .map(|t| t.to_utc())
                .with_context(|| format!("no single midnight on {year}-01-01 in {}", self.zone))
        };
        Ok((midnight(2025)?, midnight(2026)?))
    }

    fn time_range(&self) -> anyhow::Result<pb::TimeRange> {
        let (start, end) = self.year()?;
        Ok(pb::TimeRange {
            start_time: Some(to_timestamp(start)),
            end_time: Some(to_timestamp(end)),
        })
    }

    fn metric_request(&self, group_by: pb::Dimension) -> anyhow::Result<pb::MetricRequest> {
        Ok(pb::MetricRequest {
            time_range: Some(self.time_range()?),
            time_zone: self.zone.name().into(),
            granularity: pb::Granularity::Month as i32,
            group_by: group_by as i32,
            ..Default::default()
        })
    }

    /// One call of the query.
    async fn call(&self, client: &mut Metrics) -> anyhow::Result<Reply> {
        let monthly = || self.metric_request(pb::Dimension::Unspecified);
        Ok(match self.metric {
            Metric::Nps { by_channel } => {
                let dimension = if by_channel {
                    pb::Dimension::Channel
                } else {
                    pb::Dimension::Unspecified
                };
                let request = self.metric_request(dimension)?;
                Reply::Nps(client.get_nps(request).await?.into_inner())
            }
            Metric::Csat => Reply::Csat(client.get_csat(monthly()?).await?.into_inner()),
            Metric::ResponseTimes { adjust, .. } => {
                let mut request = pb::ResponseTimeRequest {
                    query: Some(monthly()?),
                    first_response_target: Some(seconds(FIRST_RESPONSE_TARGET_SECS)),
                    resolution_target: Some(seconds(RESOLUTION_TARGET_SECS)),
                    ..Default::default()
                };
                adjust(&mut request);
                Reply::ResponseTimes(Box::new(
                    client.get_response_times(request).await?.into_inner(),
                ))
            }
            Metric::Retention => {
                let request = pb::RetentionRequest {
                    time_range: Some(self.time_range()?),
                    time_zone: self.zone.name().into(),
                    granularity: pb::Granularity::Month as i32,
                    group_by_nps_category: false,
                };
                Reply::Retention(client.get_retention(request).await?.into_inner())
            }
            Metric::Cohorts { periods } => {
                let request = pb::CohortRetentionRequest {
                    time_range: Some(self.time_range()?),
                    time_zone: self.zone.name().into(),
                    granularity: pb::Granularity::Month as i32,
                    periods,
                };
                Reply::Cohorts(client.get_cohort_retention(request).await?.into_inner())
            }
        })
    }

    /// The service's reply as figures comparable with the naive SQL's.
    fn answer(&self, reply: &Reply) -> anyhow::Result<Answer> {
        let month = |t: &Option<prost_types::Timestamp>| -> anyhow::Result<String> {
            let t = t
                .as_ref()
                .and_then(from_timestamp)
                .context("a bucket without a start")?;
            Ok(t.with_timezone(&self.zone).format("%Y-%m").to_string())
        };
        let mut a = Answer::default();
        match reply {
            Reply::Nps(report) => {
                let total = [(String::new(), &report.series)];
                let groups = report.groups.iter().map(|g| (g.key.clone(), &g.series));
                let series: Vec<_> = if report.groups.is_empty() {
                    total.into_iter().collect()
                } else {
                    groups.collect()
                };
                for (group, points) in series {
                    for p in points {
                        let s = p.stats.as_ref().context("a bucket without stats")?;
                        if s.responses > 0 {
                            let m = month(&p.start_time)?;
                            a.put(&m, &group, "responses", s.responses as f64);
                            a.put(&m, &group, "promoters", s.promoters as f64);
                            a.put(&m, &group, "detractors", s.detractors as f64);
                            a.put_some(&m, &group, "nps", s.nps);
                        }
                    }
                }
            }
            Reply::Csat(report) => {
                for p in &report.series {
                    let s = p.stats.as_ref().context("a bucket without stats")?;
                    if s.responses > 0 {
                        let m = month(&p.start_time)?;
                        a.put(&m, "", "responses", s.responses as f64);
                        a.put(&m, "", "satisfied", s.satisfied as f64);
                        a.put_some(&m, "", "mean", s.mean_score);
                    }
                }
            }
            Reply::ResponseTimes(report) => {
                for p in &report.series {
                    let s = p.stats.as_ref().context("a bucket without stats")?;
                    if s.interactions > 0 {
                        response_time_figures(&mut a, &month(&p.start_time)?, s);
                    }
                }
            }
            Reply::Retention(report) => {
                for p in &report.series {
                    let s = p.stats.as_ref().context("a bucket without stats")?;
                    let m = month(&p.start_time)?;
                    a.put(&m, "", "start", s.start_customers as f64);
                    a.put(&m, "", "end", s.end_customers as f64);
                    a.put(&m, "", "new", s.new_customers as f64);
                    a.put(&m, "", "retained", s.retained as f64);
                }
            }
            Reply::Cohorts(report) => {
                for c in report.cohorts.iter().filter(|c| c.size > 0) {
                    let m = month(&c.start_time)?;
                    a.put(&m, "", "size", c.size as f64);
                    for (k, active) in c.active.iter().enumerate().filter(|(_, n)| **n > 0) {
                        a.put(&m, "", &format!("+{k}"), *active as f64);
                    }
                }
            }
        }
        Ok(a)
    }

    /// How far apart the service's figure `key` and the naive SQL's may be, relatively:
    /// counts exactly, means and shares up to floating-point noise, percentiles as promised.
    fn tolerance(&self, key: &str) -> f64 {
        let percentile = ["p50", "p90", "p95", "p99"]
            .iter()
            .any(|p| key.ends_with(p));
        match self.metric {
            Metric::ResponseTimes { percentiles, .. } if percentile => percentiles,
            _ if key.ends_with("mean") || key.ends_with("nps") => EXACT,
            _ => 0.0,
        }
    }

    /// Where the service's answer and the naive SQL's differ, if anywhere.
    fn compare(&self, service: &Answer, naive: &Answer) -> Result<(), String> {
        if service.0.is_empty() {
            return Err("the service's answer holds no figures".into());
        }
        let keys: BTreeSet<&String> = service.0.keys().chain(naive.0.keys()).collect();
        let mut differences = Vec::new();
        for key in keys {
            let (s, n) = (service.0.get(key), naive.0.get(key));
            let same = match (s, n) {
                (Some(s), Some(n)) => (s - n).abs() <= self.tolerance(key) * s.abs().max(n.abs()),
                _ => false,
            };
            if !same {
                differences.push((key, s, n));
            }
        }
        if differences.is_empty() {
            return Ok(());
        }
        let mut why = format!("{} figures differ", differences.len());
        for (key, s, n) in differences.iter().take(5) {
            let _ = write!(why, "; {key}: service {s:?}, naive SQL {n:?}");
        }
        Err(why)
    }
}

fn seconds(seconds: i64) -> prost_types::Duration {
    prost_types::Duration { seconds, nanos: 0 }
}

fn response_time_figures(a: &mut Answer, m: &str, s: &pb::ResponseTimeStats) {
    a.put(m, "", "interactions", s.interactions as f64);
    a.put(m, "", "unanswered", s.unanswered as f64);
    a.put(m, "", "unresolved", s.unresolved as f64);
    for (name, d) in [("first", &s.first_response), ("resolution", &s.resolution)] {
        let Some(d) = d else { continue };
        a.put(m, "", &format!("{name} count"), d.count as f64);
        a.put_some(m, "", &format!("{name} mean"), d.mean_seconds);
        a.put_some(m, "", &format!("{name} min"), d.min_seconds);
        a.put_some(m, "", &format!("{name} max"), d.max_seconds);
        a.put_some(m, "", &format!("{name} p50"), d.p50_seconds);
        a.put_some(m, "", &format!("{name} p90"), d.p90_seconds);
        a.put_some(m, "", &format!("{name} p95"), d.p95_seconds);
        a.put_some(m, "", &format!("{name} p99"), d.p99_seconds);
    }
    for (name, sla) in [
        ("first", &s.first_response_sla),
        ("resolution", &s.resolution_sla),
    ] {
        let Some(sla) = sla else { continue };
        a.put(m, "", &format!("{name} met"), sla.met as f64);
        a.put(m, "", &format!("{name} breached"), sla.breached as f64);
    }
}

/// One-year monthly NPS as an analyst writes it: bucket by the local month, count with
/// filters. $1 tenant, $2 zone, [$3, $4) the range.
const NAIVE_NPS: &str = "
select date_trunc('month', respond_time at time zone $2) as month,
       count(*) as responses,
       count(*) filter (where score >= 9) as promoters,
       count(*) filter (where score <= 6) as detractors,
       100.0 * (count(*) filter (where score >= 9) - count(*) filter (where score <= 6))::float8
           / count(*) as nps
from survey_responses
where tenant_id = $1 and kind = 1 and respond_time >= $3 and respond_time < $4
group by 1
order by 1";

/// The same by channel.
const NAIVE_NPS_BY_CHANNEL: &str = "
select date_trunc('month', respond_time at time zone $2) as month, channel,
       count(*) as responses,
       count(*) filter (where score >= 9) as promoters,
       count(*) filter (where score <= 6) as detractors,
       100.0 * (count(*) filter (where score >= 9) - count(*) filter (where score <= 6))::float8
           / count(*) as nps
from survey_responses
where tenant_id = $1 and kind = 1 and respond_time >= $3 and respond_time < $4
group by 1, 2
order by 1, 2";

/// One-year monthly CSAT (every answer on 1..5, satisfied = 4 or 5).
const NAIVE_CSAT: &str = "
select date_trunc('month', respond_time at time zone $2) as month,
       count(*) as responses,
       count(*) filter (where score >= 4) as satisfied,
       avg(score)::float8 as mean
from survey_responses
where tenant_id = $1 and kind = 2 and respond_time >= $3 and respond_time < $4
group by 1
order by 1";

/// One-year monthly response times with `percentile_cont`, SLA targets $5 (first
/// response) and $6 (resolution) in seconds; still waiting and older than a target is a
/// breach.
const NAIVE_RESPONSE_TIMES: &str = "
select date_trunc('month', open_time at time zone $2) as month,
       count(*) as interactions,
       count(*) filter (where first_response_time is null) as unanswered,
       count(*) filter (where resolve_time is null) as unresolved,
       count(first_response_time) as first_count,
       avg(extract(epoch from first_response_time - open_time))::float8 as first_mean,
       min(extract(epoch from first_response_time - open_time))::float8 as first_min,
       max(extract(epoch from first_response_time - open_time))::float8 as first_max,
       percentile_cont(array[0.5, 0.9, 0.95, 0.99]) within group
           (order by extract(epoch from first_response_time - open_time)) as first_p,
       count(resolve_time) as resolution_count,
       avg(extract(epoch from resolve_time - open_time))::float8 as resolution_mean,
       min(extract(epoch from resolve_time - open_time))::float8 as resolution_min,
       max(extract(epoch from resolve_time - open_time))::float8 as resolution_max,
       percentile_cont(array[0.5, 0.9, 0.95, 0.99]) within group
           (order by extract(epoch from resolve_time - open_time)) as resolution_p,
       count(*) filter (where extract(epoch from first_response_time - open_time) <= $5)
           as first_met,
       count(*) filter (where extract(epoch from first_response_time - open_time) > $5
                           or first_response_time is null
                              and extract(epoch from now() - open_time) > $5) as first_breached,
       count(*) filter (where extract(epoch from resolve_time - open_time) <= $6)
           as resolution_met,
       count(*) filter (where extract(epoch from resolve_time - open_time) > $6
                           or resolve_time is null
                              and extract(epoch from now() - open_time) > $6)
           as resolution_breached
from interactions
where tenant_id = $1 and open_time >= $3 and open_time < $4
group by 1
order by 1";

/// Monthly retention: every month against every customer. $3 and $4 the first and last
/// month's local start.
const NAIVE_RETENTION: &str = "
with months as (
    select m as month, m at time zone $2 as s, (m + interval '1 month') at time zone $2 as e
    from generate_series($3::timestamp, $4::timestamp, interval '1 month') m
)
select m.month,
       count(*) filter (where c.acquire_time < m.s
                          and (c.churn_time is null or c.churn_time >= m.s)) as start_customers,
       count(*) filter (where c.acquire_time < m.e
                          and (c.churn_time is null or c.churn_time >= m.e)) as end_customers,
       count(*) filter (where c.acquire_time >= m.s and c.acquire_time < m.e) as new_customers,
       count(*) filter (where c.acquire_time < m.s
                          and (c.churn_time is null or c.churn_time >= m.e)) as retained
from months m cross join customers c
where c.tenant_id = $1
group by 1
order by 1";

/// Monthly cohorts: each customer's active months, the first of them its cohort; $3 and $4
/// the local range of cohorts, $5 the periods. (A join of first months with active months
/// looks as natural, but PostgreSQL misjudges the filtered side as one row and loops.)
const NAIVE_COHORTS: &str = "
with months as (
    select customer_id, date_trunc('month', t at time zone $2) as month
    from (select customer_id, respond_time as t from survey_responses where tenant_id = $1
          union all
          select customer_id, open_time from interactions where tenant_id = $1) activity
    group by 1, 2
), cohorts as (
    select month, min(month) over (partition by customer_id) as cohort from months
)
select cohort,
       ((extract(year from month) - extract(year from cohort)) * 12
        + extract(month from month) - extract(month from cohort))::int as period,
       count(*) as customers
from cohorts
where cohort >= $3 and cohort < $4 and month < cohort + $5 * interval '1 month'
group by 1, 2
order by 1, 2";

impl Query {
    /// The naive SQL's answer.
    async fn naive(&self, conn: &mut PgConnection) -> anyhow::Result<Answer> {
        let (start, end) = self.year()?;
        let local = |t: DateTime<Utc>| t.with_timezone(&self.zone).naive_local();
        let zone = self.zone.name();
        let month = |row: &sqlx::postgres::PgRow, column: &str| -> anyhow::Result<String> {
            Ok(row
                .try_get::<NaiveDateTime, _>(column)?
                .format("%Y-%m")
                .to_string())
        };
        let mut a = Answer::default();
        match self.metric {
            Metric::Nps { by_channel } => {
                let sql = if by_channel {
                    NAIVE_NPS_BY_CHANNEL
                } else {
                    NAIVE_NPS
                };
                let rows = sqlx::query(sql)
                    .bind(TENANT)
                    .bind(zone)
                    .bind(start)
                    .bind(end)
                    .fetch_all(&mut *conn)
                    .await?;
                for row in &rows {
                    let m = month(row, "month")?;
                    let group = if by_channel {
                        row.try_get::<Option<String>, _>("channel")?
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    for figure in ["responses", "promoters", "detractors"] {
                        a.put(&m, &group, figure, row.try_get::<i64, _>(figure)? as f64);
                    }
                    a.put(&m, &group, "nps", row.try_get("nps")?);
                }
            }
            Metric::Csat => {
                let rows = sqlx::query(NAIVE_CSAT)
                    .bind(TENANT)
                    .bind(zone)
                    .bind(start)
                    .bind(end)
                    .fetch_all(&mut *conn)
                    .await?;
                for row in &rows {
                    let m = month(row, "month")?;
                    a.put(
                        &m,
                        "",
                        "responses",
                        row.try_get::<i64, _>("responses")? as f64,
                    );
                    a.put(
                        &m,
                        "",
                        "satisfied",
                        row.try_get::<i64, _>("satisfied")? as f64,
                    );
                    a.put(&m, "", "mean", row.try_get("mean")?);
                }
            }
            Metric::ResponseTimes { .. } => {
                let rows = sqlx::query(NAIVE_RESPONSE_TIMES)
                    .bind(TENANT)
                    .bind(zone)
                    .bind(start)
                    .bind(end)
                    .bind(FIRST_RESPONSE_TARGET_SECS as f64)
                    .bind(RESOLUTION_TARGET_SECS as f64)
                    .fetch_all(&mut *conn)
                    .await?;
                for row in &rows {
                    naive_response_times(&mut a, &month(row, "month")?, row)?;
                }
            }
            Metric::Retention => {
                let last_month = local(end) - chrono::Months::new(1);
                let rows = sqlx::query(NAIVE_RETENTION)
                    .bind(TENANT)
                    .bind(zone)
                    .bind(local(start))
                    .bind(last_month)
                    .fetch_all(&mut *conn)
                    .await?;
                for row in &rows {
                    let m = month(row, "month")?;
                    for (figure, column) in [
                        ("start", "start_customers"),
                        ("end", "end_customers"),
                        ("new", "new_customers"),
                        ("retained", "retained"),
                    ] {
                        a.put(&m, "", figure, row.try_get::<i64, _>(column)? as f64);
                    }
                }
            }
            Metric::Cohorts { periods } => {
                let rows = sqlx::query(NAIVE_COHORTS)
                    .bind(TENANT)
                    .bind(zone)
                    .bind(local(start))
                    .bind(local(end))
                    .bind(periods)
                    .fetch_all(&mut *conn)
                    .await?;
                for row in &rows {
                    let m = month(row, "cohort")?;
                    let (period, customers): (i32, i64) =
                        (row.try_get("period")?, row.try_get("customers")?);
                    a.put(&m, "", &format!("+{period}"), customers as f64);
                    if period == 0 {
                        a.put(&m, "", "size", customers as f64);
                    }
                }
            }
        }
        Ok(a)
    }
}

fn naive_response_times(
    a: &mut Answer,
    m: &str,
    row: &sqlx::postgres::PgRow,
) -> anyhow::Result<()> {
    for figure in ["interactions", "unanswered", "unresolved"] {
        a.put(m, "", figure, row.try_get::<i64, _>(figure)? as f64);
    }
    for name in ["first", "resolution"] {
        let count: i64 = row.try_get(format!("{name}_count").as_str())?;
        a.put(m, "", &format!("{name} count"), count as f64);
        for stat in ["mean", "min", "max"] {
            let value: Option<f64> = row.try_get(format!("{name}_{stat}").as_str())?;
            a.put_some(m, "", &format!("{name} {stat}"), value);
        }
        let percentiles: Option<Vec<f64>> = row.try_get(format!("{name}_p").as_str())?;
        for (p, value) in ["p50", "p90", "p95", "p99"]
            .iter()
            .zip(percentiles.unwrap_or_default())
        {
            a.put(m, "", &format!("{name} {p}"), value);
        }
        for sla in ["met", "breached"] {
            let value: i64 = row.try_get(format!("{name}_{sla}").as_str())?;
            a.put(m, "", &format!("{name} {sla}"), value as f64);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The portal
// ---------------------------------------------------------------------------------------

/// The label of the portal's figure (`CXMETRICS_SCALE_QUERIES` selects it by this).
const PORTAL: &str = "Portal overview drawn";
/// Loads of the overview after the first.
const PORTAL_RELOADS: usize = 5;

/// The time from navigation until the overview of 2025 in Europe/Berlin is fully drawn
/// (`body[data-state=ready]`: every card's queries answered and rendered), in headless
/// Chromium against the release binary: the first load after signing in, then the p50 of
/// reloads (the browser caches the portal's files; the metrics are asked again each time).
async fn portal_overview(bench: &Bench, size: i64) -> anyhow::Result<String> {
    let server = Server::start(&bench.url).await?;
    let base = format!("http://{}/", server.addr);
    let browser = browser::Browser::start().await?;
    browser.sign_in(&base, &bench.key).await?;
    let url = format!(
        "{base}?page=overview&start=2025-01-01&end=2026-01-01&tz=Europe%2FBerlin\
         &granularity=month"
    );
    let mut loads = Vec::new();
    for _ in 0..=PORTAL_RELOADS {
        loads.push(browser.open(&url).await?);
        let state = browser.state().await?;
        ensure!(state == "ready", "the overview ended {state}, not ready");
    }
    browser.close().await?;
    server.stop().await?;
    let first = loads.remove(0);
    loads.sort();
    Ok(format!(
        "{PORTAL} at {} responses: first load {:.0} ms, p50 of {PORTAL_RELOADS} reloads {:.0} ms",
        human(size),
        first.as_secs_f64() * 1e3,
        loads[loads.len() / 2].as_secs_f64() * 1e3
    ))
}

// ---------------------------------------------------------------------------------------
// The server process and its memory
// ---------------------------------------------------------------------------------------

/// The binary serving the bench database as its own process, and connections to it.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    /// host:port of its gRPC and HTTP listener.
    addr: String,
    /// One connection per client, as separate callers would have.
    channels: Vec<Channel>,
}

impl Server {
    async fn start(url: &str) -> anyhow::Result<Self> {
        // A generous read timeout, so that a slow metric is measured rather than cancelled.
        let env = [("CXMETRICS_READ_TIMEOUT_SECS", "3600")];
        let (child, addr) = helpers::spawn_binary(url, &env).await;
        let pid = child.id().context("the server exited at start")?;
        let mut channels = Vec::new();
        for _ in 0..CLIENTS {
            channels.push(connect(&addr, None).await?);
        }
        Ok(Self {
            child,
            pid,
            addr: addr.to_string(),
            channels,
        })
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// A figure of /proc/<pid>/status, such as VmRSS or VmHWM, in KiB.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    let kib = line.trim().trim_end_matches("kB").trim();
    Ok(kib.parse()?)
}

/// Memory the kernel could still give processes, in KiB.
fn available_kib() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .context("no MemAvailable in /proc/meminfo")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// The peak resident memory of a process over a stretch of time: the kernel's high-water
/// mark once reset (writing 5 to clear_refs), or, where that is not allowed, VmRSS sampled
/// every few milliseconds.
enum PeakRss {
    Kernel {
        pid: u32,
    },
    Sampled {
        peak: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
        sampler: tokio::task::JoinHandle<()>,
    },
}

impl PeakRss {
    fn start(pid: u32) -> anyhow::Result<Self> {
        if std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok() {
            return Ok(Self::Kernel { pid });
        }
        let peak = Arc::new(AtomicU64::new(status_kib(pid, "VmRSS")?));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    match status_kib(pid, "VmRSS") {
                        Ok(rss) => peak.fetch_max(rss, Ordering::Relaxed),
                        Err(_) => break,
                    };
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        Ok(Self::Sampled {
            peak,
            stop,
            sampler,
        })
    }

    async fn finish(self) -> anyhow::Result<u64> {
        match self {
            Self::Kernel { pid } => status_kib(pid, "VmHWM"),
            Self::Sampled {
                peak,
                stop,
                sampler,
            } => {
                stop.store(true, Ordering::Relaxed);
                sampler.await?;
                Ok(peak.load(Ordering::Relaxed))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Measuring a query
// ---------------------------------------------------------------------------------------

/// Latencies of one phase, sorted.
struct Latencies(Vec<Duration>);

impl Latencies {
    /// The nearest-rank percentile `p` (0..=100).
    fn percentile(&self, p: usize) -> Duration {
        let rank = (self.0.len() * p).div_ceil(100).max(1);
        self.0[rank.min(self.0.len()) - 1]
    }
}

/// A phase of calls at some concurrency: latencies and the server's peak memory growth.
struct Phase {
    latencies: Latencies,
    rss_growth_mib: f64,
}

struct Measured {
    label: &'static str,
    size: i64,
    one: Phase,
    /// None when 4 clients at once would need more memory than the machine has.
    four: Option<Phase>,
    naive: Latencies,
    agrees: Result<(), String>,
}

impl Measured {
    /// The result as one line of progress.
    fn line(&self) -> String {
        let four = match &self.four {
            Some(p) => format!("p50 {}", ms(p.latencies.percentile(50))),
            None => "skipped".into(),
        };
        format!(
            "{} at {} rows: 1 client p50 {}, 4 clients {four}, naive SQL {}, agrees: {}",
            self.label,
            human(self.size),
            ms(self.one.latencies.percentile(50)),
            ms(self.naive.percentile(50)),
            if self.agrees.is_ok() { "yes" } else { "NO" }
        )
    }
}

/// One query at one size: a fresh server (so that its memory starts from idle), a warm-up
/// call whose answer is kept, the 1-client and 4-client phases, then the naive SQL on the
/// same data with the server stopped.
async fn measure(bench: &Bench, plan: &Plan, query: &Query, size: i64) -> anyhow::Result<Measured> {
    let server = Server::start(&bench.url).await?;
    let clients: Vec<Metrics> = server
        .channels
        .iter()
        .map(|c| metrics_client(c, &bench.key))
        .collect();
    let idle = status_kib(server.pid, "VmRSS")?;
    let growth_mib = |peak: u64| (peak as f64 - idle as f64) / 1024.0;

    let probe = PeakRss::start(server.pid)?;
    let reply = query.call(&mut clients[0].clone()).await?;
    let latencies = timed(query, &clients[..1], plan.calls).await?;
    let one = Phase {
        latencies,
        rss_growth_mib: growth_mib(probe.finish().await?),
    };
    // Four clients hold about four times what one call holds.
    let needed_kib = 4.0 * one.rss_growth_mib.max(0.0) * 1024.0;
    let four = if needed_kib < available_kib()? as f64 / 2.0 {
        let probe = PeakRss::start(server.pid)?;
        let latencies = timed(query, &clients, plan.calls).await?;
        Some(Phase {
            latencies,
            rss_growth_mib: growth_mib(probe.finish().await?),
        })
    } else {
        None
    };
    server.stop().await?;

    let mut conn = PgConnection::connect(&bench.url).await?;
    let mut naive = Vec::new();
    let mut naive_answer = Answer::default();
    let started = Instant::now();
    while plan.naive.more(naive.len(), started) {
        let t = Instant::now();
        naive_answer = query.naive(&mut conn).await?;
        naive.push(t.elapsed());
    }
    naive.sort();
    Ok(Measured {
        label: query.label,
        size,
        agrees: query.compare(&query.answer(&reply)?, &naive_answer),
        one,
        four,
        naive: Latencies(naive),
    })
}

/// Latencies of `query` from every client at once, each calling in sequence as `calls`
/// allows. The minimum counts calls over all clients: a call that takes minutes alone must
/// not be repeated minutes times four when four run at once.
async fn timed(query: &Query, clients: &[Metrics], calls: Repeat) -> anyhow::Result<Latencies> {
    let started = Instant::now();
    let calls = Repeat {
        min: calls.min.div_ceil(clients.len()),
        ..calls
    };
    let per_client = clients.iter().cloned().map(|mut client| async move {
        let mut samples = Vec::new();
        while calls.more(samples.len(), started) {
            let t = Instant::now();
            query.call(&mut client).await?;
            samples.push(t.elapsed());
        }
        anyhow::Ok(samples)
    });
    let mut all = try_join_all(per_client).await?.concat();
    all.sort();
    Ok(Latencies(all))
}

// ---------------------------------------------------------------------------------------
// Ingest
// ---------------------------------------------------------------------------------------

/// One tenant per ingest method, so that all three write the same rows into the same table,
/// under the same indexes and triggers.
const COPY_TENANT: &str = "ingest-copy";
const IMPORT_TENANT: &str = "ingest-import";
const BATCH_TENANT: &str = "ingest-batch";

/// A generated survey response, as the loads write it.
#[derive(Debug, sqlx::FromRow)]
struct Generated {
    tenant_id: String,
    response_id: String,
    survey_id: String,
    kind: i16,
    score: i16,
    scale_min: i16,
    scale_max: i16,
    customer_id: String,
    channel: Option<String>,
    respond_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

impl Generated {
    fn to_pb(&self) -> pb::SurveyResponse {
        pb::SurveyResponse {
            response_id: self.response_id.clone(),
            survey_id: self.survey_id.clone(),
            kind: i32::from(self.kind),
            score: i32::from(self.score),
            scale: Some(pb::ScoreScale {
                min: i32::from(self.scale_min),
                max: i32::from(self.scale_max),
            }),
            customer_id: self.customer_id.clone(),
            channel: self.channel.clone().unwrap_or_default(),
            respond_time: Some(to_timestamp(self.respond_time)),
            update_time: Some(to_timestamp(self.update_time)),
            ..Default::default()
        }
    }

    /// The row in COPY's text format, columns as `RESPONSE_COLUMNS`.
    fn copy_line(&self, out: &mut String) {
        let text = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
                .replace('\r', "\\r")
        };
        let channel = self.channel.as_deref().map_or("\\N".into(), text);
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{channel}\t{}\t{}",
            text(&self.tenant_id),
            text(&self.response_id),
            text(&self.survey_id),
            self.kind,
            self.score,
            self.scale_min,
            self.scale_max,
            text(&self.customer_id),
            self.respond_time.to_rfc3339(),
            self.update_time.to_rfc3339(),
        );
    }
}

struct Ingested {
    /// Survey responses of the bench tenant in the table meanwhile.
    size: i64,
    method: &'static str,
    records: usize,
    elapsed: Duration,
}

impl Ingested {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// The same `rows` survey responses written by COPY, by ImportRecords from 4 streams and by
/// BatchRecordSurveyResponses from 4 clients, each into a tenant of its own; every message
/// is built before the clock starts. The rows are deleted afterwards, so that the next load
/// starts from the bench tenant's rows alone.
async fn ingest(
    bench: &Bench,
    loader: &mut Loader,
    rows: usize,
    size: i64,
) -> anyhow::Result<Vec<Ingested>> {
    let tenants = [COPY_TENANT, IMPORT_TENANT, BATCH_TENANT];
    // What an interrupted run left in a kept database.
    sqlx::query("delete from survey_responses where tenant_id = any($1)")
        .bind(&tenants[..])
        .execute(bench.store.pool())
        .await?;
    let generated = loader.responses(COPY_TENANT, rows).await?;
    let mut copy_text = String::new();
    for row in &generated {
        row.copy_line(&mut copy_text);
    }
    let share = rows.div_ceil(CLIENTS).max(1);
    let records: Vec<Vec<pb::SurveyResponse>> = generated
        .chunks(share)
        .map(|chunk| chunk.iter().map(Generated::to_pb).collect())
        .collect();
    drop(generated);
    let done = |method, started: Instant| Ingested {
        size,
        method,
        records: rows,
        elapsed: started.elapsed(),
    };

    let started = Instant::now();
    let copied = copy(&bench.store, copy_text.as_bytes()).await?;
    let mut results = vec![done("COPY (text, 1 connection)", started)];
    ensure!(copied == rows as u64, "COPY stored {copied} of {rows} rows");

    let server = Server::start(&bench.url).await?;
    let import_key = commands::create_key(&bench.store, IMPORT_TENANT, "write").await?;
    let batch_key = commands::create_key(&bench.store, BATCH_TENANT, "write").await?;
    let streams: Vec<_> = records
        .iter()
        .map(|chunk| {
            let messages: Vec<_> = chunk
                .iter()
                .map(|r| pb::ImportRecordsRequest {
                    record: Some(pb::import_records_request::Record::SurveyResponse(
                        r.clone(),
                    )),
                })
                .collect();
            messages
        })
        .collect();
    let started = Instant::now();
    let imports = server
        .channels
        .iter()
        .zip(streams)
        .map(|(channel, messages)| {
            let mut client = feedback_client(channel, &import_key);
            async move {
                let reply = client
                    .import_records(tokio_stream::iter(messages))
                    .await?
                    .into_inner();
                anyhow::Ok(reply.created)
            }
        });
    let created: i64 = try_join_all(imports).await?.iter().sum();
    results.push(done("ImportRecords (4 streams)", started));
    ensure!(
        created == rows as i64,
        "ImportRecords created {created} of {rows} records"
    );

    let calls: Vec<Vec<_>> = records
        .iter()
        .map(|chunk| {
            chunk
                .chunks(BATCH)
                .map(|batch| pb::BatchRecordSurveyResponsesRequest {
                    survey_responses: batch.to_vec(),
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let batches = server.channels.iter().zip(calls).map(|(channel, calls)| {
        let mut client = feedback_client(channel, &batch_key);
        async move {
            for call in calls {
                client.batch_record_survey_responses(call).await?;
            }
            anyhow::Ok(())
        }
    });
    try_join_all(batches).await?;
    results.push(done(
        "BatchRecordSurveyResponses x 1,000 (4 clients)",
        started,
    ));
    server.stop().await?;

    let stored: i64 =
        sqlx::query_scalar("select count(*) from survey_responses where tenant_id = any($1)")
            .bind(&tenants[..])
            .fetch_one(bench.store.pool())
            .await?;
    ensure!(
        stored == 3 * rows as i64,
        "the ingest tenants hold {stored} rows, not 3 x {rows}"
    );
    sqlx::query("delete from survey_responses where tenant_id = any($1)")
        .bind(&tenants[..])
        .execute(bench.store.pool())
        .await?;
    for r in &results {
        println!(
            "ingest at {} rows: {}: {:.0} records/s",
            human(size),
            r.method,
            r.rate()
        );
    }
    Ok(results)
}

/// COPY of `text` (rows in `RESPONSE_COLUMNS` order) into survey_responses; the rows stored.
async fn copy(store: &Store, text: &[u8]) -> anyhow::Result<u64> {
    let mut conn = store.pool().acquire().await?;
    let statement = format!("copy survey_responses ({RESPONSE_COLUMNS}) from stdin");
    let mut copy = conn.copy_in_raw(&statement).await?;
    for chunk in text.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    Ok(copy.finish().await?)
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// 10000000 as "10M", 2000 as "2k".
fn human(n: i64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn metrics_table(measured: &[Measured], customers: i64) -> String {
    let customers = human(customers);
    let mut out = format!(
        "Metrics over one year (2025) of one tenant: rows = survey responses and as many \
         interactions, customers = {customers}; server = the built binary, restarted per \
         query; p50/p99 over all calls of a phase (n = calls), each client calling in \
         sequence; naive = median of its runs; RSS+ = server peak RSS over idle\n\n\
         | query | rows | 1 client p50 / p99 (n) | 4 clients p50 / p99 (n) | naive SQL (runs) \
         | naive / service p50 | p50 / p50 at first size | RSS+ 1 client | RSS+ 4 clients \
         | agrees |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let phase = |p: &Phase| {
        let l = &p.latencies;
        format!(
            "{} / {} ({})",
            ms(l.percentile(50)),
            ms(l.percentile(99)),
            l.0.len()
        )
    };
    for m in measured {
        let p50 = m.one.latencies.percentile(50).as_secs_f64();
        let first = measured
            .iter()
            .find(|f| f.label == m.label)
            .map(|f| f.one.latencies.percentile(50).as_secs_f64());
        let growth = match first {
            Some(first) if m.size != measured[0].size => format!("{:.2}x", p50 / first),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} ({}) | {:.1}x | {growth} | {:.0} MB | {} | {} |",
            m.label,
            human(m.size),
            phase(&m.one),
            m.four.as_ref().map_or("skipped (memory)".into(), phase),
            ms(m.naive.percentile(50)),
            m.naive.0.len(),
            m.naive.percentile(50).as_secs_f64() / p50,
            m.one.rss_growth_mib,
            m.four
                .as_ref()
                .map_or("-".into(), |p| format!("{:.0} MB", p.rss_growth_mib)),
            if m.agrees.is_ok() { "yes" } else { "NO" },
        );
    }
    out
}

fn ingest_table(ingested: &[Ingested]) -> String {
    let mut out = String::from(
        "Ingest of the same survey responses per method, each into a tenant of its own of the \
         same table\n\n| rows in table | method | records | seconds | records/s | vs COPY |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in ingested {
        let copy = ingested
            .iter()
            .find(|c| c.size == r.size && c.method.starts_with("COPY"))
            .map_or(f64::NAN, Ingested::rate);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.0} | {:.2}x |",
            human(r.size),
            r.method,
            r.records,
            r.elapsed.as_secs_f64(),
            r.rate(),
            r.rate() / copy
        );
    }
    out
}

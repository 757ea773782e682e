//! The response-time report's aggregates, computed in PostgreSQL: only aggregates come back,
//! never a row per interaction.
//!
//! `response_times_from_rollups` reads `interaction_rollups`
//! (migrations/20261201000002_interaction_rollups.sql) over the UTC slots that tile each
//! bucket, plus the raw rows of the slivers no slot covers (`domain::grains`), and returns
//! partial summaries per bucket and group that the caller adds up: counts, sums and the
//! DDSketch per bucket index from the rollups; the exact minimum and maximum from the raw
//! rows of the lowest and highest non-empty sketch bucket only; the SLA counts from the
//! sketch buckets wholly below or above the target plus, in the one bucket that holds it,
//! the raw rows that met it (the rest of that bucket's count breached it); the unanswered
//! that waited longer than a target from slots wholly before the cutoff (the cover is cut
//! there). Every raw look is an index range scan
//! (`interactions_*_bucket`), all in one statement, so in one snapshot.
//!
//! `response_times_exact` reads the raw interactions of the range once and aggregates them
//! with grouping sets: per bucket, per bucket and group, and with a granularity the whole
//! range (all groups and each group), with exact `percentile_cont`. Durations are measured in
//! SQL, in wall-clock time or, given a calendar's open intervals as arrays with prefix sums
//! of open time (`BusinessClock::columns`), in business time: the open time before an instant
//! is one `width_bucket` lookup, so a duration is two.

use chrono::{DateTime, Utc};
use sqlx::{
    Postgres, QueryBuilder, Row,
    postgres::{PgRow, types::PgInterval},
};

use super::{Store, bucket_index, filters};
use crate::{
    domain::{
        MetricQuery, TenantId,
        calendar::ClockColumns,
        grains::Cover,
        report::{Bucketed, ReportPlan, ScopeSets, Scoped},
        response_times::{
            DurationSummary, Measure, PERCENTILES, Percentiles, SlaTargets, Summary, rollup_cover,
            within_target,
        },
    },
    error::Error,
};

/// What the aggregation of one report reads.
#[derive(Debug, Clone, Copy)]
pub struct ResponseTimeRead<'a> {
    pub tenant: &'a TenantId,
    pub query: &'a MetricQuery,
    pub plan: &'a ReportPlan,
    pub targets: SlaTargets,
    /// The instant waits are measured to, on a whole microsecond.
    pub now: DateTime<Utc>,
    /// Business time when given; wall-clock time otherwise.
    pub clock: Option<&'a ClockColumns>,
}

impl Store {
    /// The exact aggregates of every scope the report needs, from the raw interactions.
    #[tracing::instrument(skip_all, fields(buckets = read.plan.buckets() as i64, business_hours = read.clock.is_some()))]
    pub async fn response_times_exact(
        &self,
        read: &ResponseTimeRead<'_>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<Scoped<Summary>>, Error> {
        if read.plan.boundaries.len() < 2 {
            return Ok(Vec::new());
        }
        let sets = read.plan.scope_sets(read.query);
        let mut qb = QueryBuilder::new(
            "select * from (select *, dense_rank() over (order by grp) as grp_rank from (",
        );
        push_exact(&mut qb, read, sets);
        qb.push(") cells) ranked where grp is null or grp_rank <= ")
            .push_bind(limit_plus_one(read.plan.group_limit()));
        let rows = self.read_rows(qb.build(), deadline).await?;
        let buckets = read.plan.buckets();
        let mut scoped = Vec::with_capacity(rows.len());
        for row in &rows {
            let bucket = match row.try_get::<Option<i32>, _>("bucket")? {
                Some(b) => Some(bucket_index(i64::from(b) + 1, buckets)?),
                // The previous period's whole-range scope is its bucket already.
                None if !row.try_get::<bool, _>("current")? => continue,
                None => None,
            };
            scoped.push(Scoped {
                bucket,
                group: row.try_get("grp")?,
                item: exact_summary(row)?,
            });
        }
        Ok(scoped)
    }
}

impl Store {
    /// Partial summaries per bucket and group (the group "" when ungrouped) whose sums per
    /// scope are the report's figures, from the rollups, read over the buckets' cover cut
    /// at the SLA cutoffs (`response_times::rollup_cover`).
    #[tracing::instrument(skip_all, fields(buckets = read.plan.buckets() as i64, slots, slivers))]
    pub async fn response_times_from_rollups(
        &self,
        read: &ResponseTimeRead<'_>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<Bucketed<Summary>>, Error> {
        if read.plan.boundaries.len() < 2 {
            return Ok(Vec::new());
        }
        let cuts: Vec<_> = read
            .targets
            .cutoffs(read.now)
            .into_iter()
            .flatten()
            .collect();
        let cover = rollup_cover(&read.plan.boundaries, &cuts, undivided(read.query));
        let span = tracing::Span::current();
        span.record("slots", cover.slots.len() as i64);
        span.record("slivers", cover.slivers.len() as i64);
        let mut qb = QueryBuilder::new("");
        push_rollup_read(&mut qb, read, &cover);
        let rows = self.read_rows(qb.build(), deadline).await?;
        let buckets = read.plan.buckets();
        rows.iter()
            .map(|row| {
                Ok(Bucketed {
                    bucket: bucket_index(i64::from(row.try_get::<i32, _>("bucket")?) + 1, buckets)?,
                    group: row.try_get("grp")?,
                    item: rollup_part(row)?,
                })
            })
            .collect()
    }
}

/// Rollup measure codes of the migration.
const ANSWERED: i16 = 1;
const RESOLVED: i16 = 2;
const UNANSWERED: i16 = 3;
const UNRESOLVED: i16 = 4;

/// The two durations: rollup measure code, the raw column that ends it, its target, and
/// the measure code of the interactions still waiting for it.
fn durations(targets: SlaTargets) -> [(i16, &'static str, Option<f64>, i16); 2] {
    [
        (
            ANSWERED,
            "i.first_response_time",
            targets.first_response,
            UNANSWERED,
        ),
        (RESOLVED, "i.resolve_time", targets.resolution, UNRESOLVED),
    ]
}

/// True when the query neither filters nor groups by a rolled-up dimension (channel, agent,
/// team): it then reads the rollups' days and months over every dimension.
fn undivided(query: &MetricQuery) -> bool {
    let filter = &query.filter;
    query.group_by.is_none()
        && filter.channels.is_empty()
        && filter.agent_ids.is_empty()
        && filter.team_ids.is_empty()
}

/// The rollup read: rows `kind` 0 (a sketch's counts `n` per sketch bucket `idx`, as
/// arrays, of one `measure`, with their `seconds`, `late` waiting past the cutoff, and the
/// `target_idx`), 1 (the extremes `lo`, `hi`)
/// and 2 (the target bucket's `met`, `breached`), each with `bucket` and `grp`.
fn push_rollup_read(
    qb: &mut QueryBuilder<'static, Postgres>,
    read: &ResponseTimeRead<'_>,
    cover: &Cover,
) {
    let query = read.query;
    let group_by = query.group_by.as_ref();
    let filter = &query.filter;
    let mut slots = cover.slot_columns();
    if undivided(query) {
        slots.read_undivided();
    }
    let slivers = cover.sliver_columns();
    let [first_cut, resolution_cut] = read.targets.cutoffs(read.now);
    let tenant = read.tenant.as_str().to_owned();
    // Rollup rows (alias `i`: their dimension columns are named as the interactions', ''
    // for none, so the interaction filter and group expressions apply as they are).
    qb.push("with parts as (select * from ");
    filters::push_slot_parts(qb, slots);
    qb.push("), slivers as (select * from ");
    filters::push_sliver_parts(qb, slivers);
    qb.push("), ").push("deltas as (select p.bucket, ");
    filters::push_interaction_group(qb, group_by);
    // Lateral and fenced (`offset 0` keeps the planner from flattening it into a join),
    // so that each part is an index-only range scan of its own slots (the columns are the
    // covering index's): the planner cannot tell how few rows the parts select and would
    // rather scan all of the tenant's rollups.
    qb.push(
        " as grp, i.measure, i.bucket as idx, i.slot as t, i.n * p.sign as n, \
         i.seconds * p.sign as seconds from parts p \
         cross join lateral (select i.channel, i.agent_id, i.team_id, i.measure, i.bucket, \
         i.slot, i.n, i.seconds from interaction_rollups i where i.tenant_id = ",
    )
    .push_bind(tenant.clone())
    .push(" and i.grain = p.grain and i.slot >= p.part_from and i.slot < p.part_to");
    filters::push_interaction_filter(qb, filter);
    qb.push(" offset 0) i union all select p.bucket, ");
    filters::push_interaction_group(qb, group_by);
    qb.push(
        " as grp, m.measure, m.bucket, i.open_time, p.sign, m.seconds * p.sign from slivers p \
         cross join lateral (select * from interactions i where i.tenant_id = ",
    )
    .push_bind(tenant.clone())
    .push(" and i.open_time >= p.part_from and i.open_time < p.part_to");
    filters::push_interaction_filter(qb, filter);
    qb.push(
        " offset 0) i cross join lateral \
         interaction_rollup_measures(i.open_time, i.first_response_time, i.resolve_time) m",
    );
    qb.push(
        "), sketch as (select bucket, grp, measure, idx, sum(n)::int8 as n, \
         sum(seconds) as seconds, coalesce(sum(n) filter (where measure = ",
    )
    .push_bind(UNANSWERED)
    .push(" and t < ")
    .push_bind(first_cut)
    .push("::timestamptz or measure = ")
    .push_bind(UNRESOLVED)
    .push(" and t < ")
    .push_bind(resolution_cut)
    .push(
        "::timestamptz), 0)::int8 as late from deltas group by 1, 2, 3, 4 \
         having sum(n) <> 0 or sum(seconds) <> 0), ",
    );
    if group_by.is_some() {
        // Only the first `limit + 1` groups: enough to tell there are more than the limit.
        qb.push("cells as (select * from (select *, dense_rank() over (order by grp) as grp_rank from sketch) ranked where grp_rank <= ")
            .push_bind(limit_plus_one(read.plan.group_limit()))
            .push(")");
    } else {
        qb.push("cells as (select * from sketch)");
    }
    // A sketch per bucket, group and measure, as arrays: a row per cell would cost the
    // service more to receive than the statement takes.
    qb.push(
        " select 0 as kind, bucket, grp, measure, array_agg(idx) as idx, array_agg(n) as n, \
           sum(seconds)::float8 as seconds, sum(late)::int8 as late, \
           null::float8 as lo, null::float8 as hi, null::int8 as met, null::int8 as breached, \
           case measure when ",
    )
    .push_bind(ANSWERED)
    .push(" then response_time_bucket(")
    .push_bind(read.targets.first_response)
    .push("::float8) when ")
    .push_bind(RESOLVED)
    .push(" then response_time_bucket(")
    .push_bind(read.targets.resolution)
    .push("::float8) end as target_idx from cells group by bucket, grp, measure");
    for (measure, end, target, _) in durations(read.targets) {
        let seconds = format!("interaction_seconds(i.open_time, {end})");
        let bucket = format!("response_time_bucket({seconds})");
        // The extremes: the raw rows of the lowest and highest non-empty sketch bucket.
        qb.push(" union all select 1, e.bucket, e.grp, e.measure, null, null, null, null, ")
            .push(format_args!(
                "(select min({seconds}) from interactions i where {bucket} = e.lo and "
            ));
        push_raw_cell(qb, read, "e");
        qb.push(format_args!(
            "), (select max({seconds}) from interactions i where {bucket} = e.hi and "
        ));
        push_raw_cell(qb, read, "e");
        qb.push(
            "), null, null, null from (select bucket, grp, measure, min(idx) as lo, max(idx) as hi \
                 from cells where measure = ",
        )
        .push_bind(measure)
        .push(" group by 1, 2, 3) e");
        if let Some(target) = target {
            // The raw rows of the target's own bucket in each cell that has any: those no
            // longer than the target met it, the rest of the bucket's count breached it.
            // Intervals are compared, not seconds (`within_target`).
            let within = PgInterval {
                months: 0,
                days: 0,
                // A target past the i64 microseconds no interval holds is met by every
                // duration, as by the longest interval there is.
                microseconds: within_target(target).unwrap_or(i64::MAX),
            };
            qb.push(" union all select 2, c.bucket, c.grp, c.measure, null, null, null, null, null, null, ")
                .push("x.met, c.n - x.met, null from (select bucket, grp, measure, n from cells where measure = ")
                .push_bind(measure)
                .push(" and idx = response_time_bucket(")
                .push_bind(target)
                .push(format_args!("::float8)) c cross join lateral (select count(*) filter (where {end} - i.open_time <= "))
                .push_bind(within)
                .push(format_args!(") as met from interactions i where {bucket} = response_time_bucket("))
                .push_bind(target)
                .push("::float8) and ");
            push_raw_cell(qb, read, "c");
            qb.push(") x");
        }
    }
}

/// The raw rows of one cell (`alias`.bucket, `alias`.grp): the tenant's interactions opened
/// in the bucket, in the group, passing the filter.
fn push_raw_cell(
    qb: &mut QueryBuilder<'static, Postgres>,
    read: &ResponseTimeRead<'_>,
    alias: &str,
) {
    let boundaries = read.plan.boundaries.clone();
    qb.push("i.tenant_id = ")
        .push_bind(read.tenant.as_str().to_owned())
        .push(" and i.open_time >= (")
        .push_bind(boundaries.clone())
        .push(format_args!(
            "::timestamptz[])[{alias}.bucket + 1] and i.open_time < ("
        ))
        .push_bind(boundaries)
        .push(format_args!("::timestamptz[])[{alias}.bucket + 2] and "));
    filters::push_interaction_group(qb, read.query.group_by.as_ref());
    qb.push(format_args!(" = {alias}.grp"));
    filters::push_interaction_filter(qb, &read.query.filter);
}

/// One row of the rollup read as a partial summary.
fn rollup_part(row: &PgRow) -> Result<Summary, Error> {
    let measure_code: i16 = row.try_get("measure")?;
    let measure = match measure_code {
        ANSWERED | UNANSWERED => Measure::FirstResponse,
        RESOLVED | UNRESOLVED => Measure::Resolution,
        other => return Err(Error::Internal(anyhow::anyhow!("rollup measure {other}"))),
    };
    let part = match row.try_get::<i32, _>("kind")? {
        0 if measure_code == UNANSWERED || measure_code == UNRESOLVED => {
            let n: Vec<i64> = row.try_get("n")?;
            Summary::waiting_part(measure, n.iter().sum(), row.try_get("late")?)
        }
        0 => {
            let (idx, n): (Vec<i16>, Vec<i64>) = (row.try_get("idx")?, row.try_get("n")?);
            if idx.len() != n.len() {
                return Err(Error::Internal(anyhow::anyhow!(
                    "sketch arrays of unequal length"
                )));
            }
            Summary::sketch_part(
                measure,
                idx.into_iter().zip(n),
                row.try_get("seconds")?,
                row.try_get("target_idx")?,
            )
        }
        1 => Summary::extremes_part(measure, row.try_get("lo")?, row.try_get("hi")?),
        _ => Summary::target_part(measure, row.try_get("met")?, row.try_get("breached")?),
    };
    Ok(part)
}

fn limit_plus_one(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)
}

/// The seconds from `i.open_time` to `end` (an SQL expression; the lateral `k` holds the
/// calendar lookups of `i.open_time` as `k_open` and of `end` as `k_end`).
fn seconds_to(end: &str, k_end: &str, business: bool) -> String {
    if business {
        format!(
            "(({}) - ({}))::float8 / 1000000",
            open_micros_until(end, k_end),
            open_micros_until("i.open_time", "k_open")
        )
    } else {
        format!("extract(epoch from {end} - i.open_time)::float8")
    }
}

/// Open microseconds of the calendar `cal` before `t`, `k` its `width_bucket` in the starts.
fn open_micros_until(t: &str, k: &str) -> String {
    format!(
        "case when k.{k} = 0 then 0 else cal.before[k.{k}] + \
         (extract(epoch from least({t}, cal.ends[k.{k}]) - cal.starts[k.{k}]) * 1000000)::int8 end"
    )
}

/// The aggregation over the raw interactions, a row per scope: `current`, `bucket` and
/// `grp` (null when the scope spans every bucket or group), then the `exact_summary` columns.
fn push_exact(
    qb: &mut QueryBuilder<'static, Postgres>,
    read: &ResponseTimeRead<'_>,
    sets: ScopeSets,
) {
    let boundaries = &read.plan.boundaries;
    let business = read.clock.is_some();
    if let Some(clock) = read.clock {
        qb.push("with cal as (select ")
            .push_bind(clock.starts.clone())
            .push("::timestamptz[] as starts, ")
            .push_bind(clock.ends.clone())
            .push("::timestamptz[] as ends, ")
            .push_bind(clock.open_micros_before.clone())
            .push("::int8[] as before) ");
    }
    // An ungrouped report has no group in any grouping set.
    let grp = if sets.per_group {
        "grp"
    } else {
        "null::text as grp"
    };
    qb.push(format_args!(
        "select current, bucket, {grp}, count(*) as interactions, "
    ))
    .push("count(*) filter (where first is null) as unanswered, ")
    .push("count(*) filter (where resolution is null) as unresolved");
    for (measure, target) in [
        ("first", read.targets.first_response),
        ("resolution", read.targets.resolution),
    ] {
        qb.push(format_args!(
            ", count({measure}) as {measure}_n, sum({measure}) as {measure}_seconds, \
             min({measure}) as {measure}_min, max({measure}) as {measure}_max, \
             percentile_cont("
        ))
        .push_bind(PERCENTILES.to_vec())
        .push(format_args!(
            "::float8[]) within group (order by {measure}) as {measure}_p, \
             count(*) filter (where {measure} <= "
        ))
        .push_bind(target)
        .push(format_args!(
            "::float8) as {measure}_met, count(*) filter (where {measure} > "
        ))
        .push_bind(target)
        .push(format_args!("::float8 or {measure}_wait > "))
        .push_bind(target)
        .push(format_args!("::float8) as {measure}_breached"));
    }
    qb.push(" from (select width_bucket(i.open_time, ")
        .push_bind(boundaries.clone())
        .push("::timestamptz[]) - 1 as bucket, width_bucket(i.open_time, ")
        .push_bind(boundaries.clone())
        .push("::timestamptz[]) - 1 >= ")
        .push_bind(i32::try_from(read.plan.first_current()).unwrap_or(i32::MAX))
        .push(" as current, ");
    filters::push_interaction_group(qb, read.query.group_by.as_ref());
    qb.push(format_args!(
        " as grp, {} as first, {} as resolution, ",
        seconds_to("i.first_response_time", "k_first", business),
        seconds_to("i.resolve_time", "k_resolve", business),
    ));
    // Still waiting: how long until now (never negative: an interaction opened after now
    // has waited no time).
    let waited = seconds_to("greatest(i.open_time, waits.t)", "k_now", business);
    qb.push(format_args!(
        "case when i.first_response_time is null then {waited} end as first_wait, \
         case when i.resolve_time is null then {waited} end as resolution_wait \
         from interactions i cross join (select "
    ))
    .push_bind(read.now)
    .push("::timestamptz as t) waits");
    if business {
        qb.push(
            " cross join cal cross join lateral (select \
             width_bucket(i.open_time, cal.starts) as k_open, \
             width_bucket(i.first_response_time, cal.starts) as k_first, \
             width_bucket(i.resolve_time, cal.starts) as k_resolve, \
             width_bucket(greatest(i.open_time, waits.t), cal.starts) as k_now) k",
        );
    }
    qb.push(" where i.tenant_id = ")
        .push_bind(read.tenant.as_str().to_owned())
        .push(" and i.open_time >= ")
        .push_bind(boundaries[0])
        .push(" and i.open_time < ")
        .push_bind(boundaries[boundaries.len() - 1]);
    filters::push_interaction_filter(qb, &read.query.filter);
    qb.push(") measured group by grouping sets (");
    qb.push(grouping_sets(sets).join(", "));
    qb.push(")");
}

/// The grouping sets of the scopes `sets` asks for.
fn grouping_sets(sets: ScopeSets) -> Vec<&'static str> {
    let mut out = vec!["(current, bucket)"];
    if sets.per_group {
        out.push("(current, bucket, grp)");
    }
    if sets.whole_range {
        out.push("(current)");
        if sets.per_group {
            out.push("(current, grp)");
        }
    }
    out
}

/// A scope's `Summary` from the columns `push_exact` names.
fn exact_summary(row: &PgRow) -> Result<Summary, Error> {
    let duration = |measure: &str| -> Result<DurationSummary, Error> {
        let p: Option<Vec<Option<f64>>> = row.try_get(format!("{measure}_p").as_str())?;
        let mut percentiles = [None; 4];
        for (slot, value) in percentiles.iter_mut().zip(p.unwrap_or_default()) {
            *slot = value;
        }
        Ok(DurationSummary {
            count: row.try_get(format!("{measure}_n").as_str())?,
            seconds: row
                .try_get::<Option<f64>, _>(format!("{measure}_seconds").as_str())?
                .unwrap_or_default(),
            min: row.try_get(format!("{measure}_min").as_str())?,
            max: row.try_get(format!("{measure}_max").as_str())?,
            percentiles: Percentiles::Exact(percentiles),
            met: row.try_get(format!("{measure}_met").as_str())?,
            breached: row.try_get(format!("{measure}_breached").as_str())?,
        })
    };
    Ok(Summary {
        interactions: row.try_get("interactions")?,
        unanswered: row.try_get("unanswered")?,
        unresolved: row.try_get("unresolved")?,
        first_response: duration("first")?,
        resolution: duration("resolution")?,
    })
}

//! The response-time report's aggregates, computed in PostgreSQL: only aggregates come back,
//! never a row per interaction.
//!
//! `response_times_exact` reads the raw interactions of the range once and aggregates them
//! with grouping sets: per bucket, per bucket and group, and with a granularity the whole
//! range (all groups and each group), with exact `percentile_cont`. Durations are measured in
//! SQL, in wall-clock time or, given a calendar's open intervals as arrays with prefix sums
//! of open time (`BusinessClock::columns`), in business time: the open time before an instant
//! is one `width_bucket` lookup, so a duration is two.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Row, postgres::PgRow};

use super::{Store, bucket_index, filters};
use crate::{
    domain::{
        MetricQuery, TenantId,
        calendar::ClockColumns,
        report::{ReportPlan, ScopeSets, Scoped},
        response_times::{DurationSummary, PERCENTILES, Percentiles, SlaTargets, Summary},
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

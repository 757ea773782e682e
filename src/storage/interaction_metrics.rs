//! Queries behind the retention and cohort reports.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, bucket_index};
use crate::{
    domain::{
        SurveyKind, TenantId,
        cohorts::{ActivitySource, CohortActivity},
        grains,
        retention::CustomerSpan,
    },
    error::Error,
};

impl Store {
    /// Customers grouped by the `width_bucket` of their acquire and churn times over
    /// `boundaries`, and by the score of their latest NPS answer before `category_at` when it
    /// is given: one scan of the tenant's customers whatever the number of periods.
    #[tracing::instrument(skip_all, fields(boundaries = boundaries.len() as i64))]
    pub async fn customer_spans(
        &self,
        tenant: &TenantId,
        boundaries: &[DateTime<Utc>],
        category_at: Option<DateTime<Utc>>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<CustomerSpan>, Error> {
        let latest_nps = if category_at.is_some() {
            "(select r.score from survey_responses r
              where r.tenant_id = c.tenant_id and r.customer_id = c.customer_id and r.kind = $3
                and r.respond_time < $4
              order by r.respond_time desc, r.response_id desc limit 1)"
        } else {
            "null::smallint"
        };
        let sql = format!(
            "select width_bucket(c.acquire_time, $2::timestamptz[]) as acquired,
                    width_bucket(c.churn_time, $2::timestamptz[]) as churned,
                    {latest_nps} as latest, count(*) as customers
             from customers c where c.tenant_id = $1
             group by 1, 2, 3"
        );
        let query = sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(boundaries)
            .bind(SurveyKind::Nps.code())
            .bind(category_at);
        let rows = self.read_rows(query, deadline).await?;
        rows.iter()
            .map(|row| {
                Ok(CustomerSpan {
                    acquired: row.try_get::<i32, _>("acquired")?.into(),
                    churned: row.try_get::<Option<i32>, _>("churned")?.map(i64::from),
                    latest: row.try_get("latest")?,
                    customers: row.try_get("customers")?,
                })
            })
            .collect()
    }

    /// For customers whose first activity ever (a survey response or an interaction) falls
    /// in `[b0, bn)`: rows (cohort bucket, activity bucket, distinct active customers) over
    /// `boundaries`, activity buckets counted from the cohort's on. `ActivitySource::Months`
    /// and `Customers` must only be given for a grid they are exact for
    /// (`ActivitySource::for_grid`).
    #[tracing::instrument(skip_all, fields(buckets = boundaries.len() as i64 - 1, source = ?source))]
    pub async fn cohort_activity(
        &self,
        tenant: &TenantId,
        boundaries: &[DateTime<Utc>],
        cohorts_end: DateTime<Utc>,
        periods: usize,
        source: ActivitySource,
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<CohortActivity>, Error> {
        let sql = match source {
            ActivitySource::Raw => RAW_COHORTS,
            ActivitySource::Months => MONTHS_COHORTS,
            ActivitySource::Customers => CUSTOMERS_COHORTS,
        };
        let query = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(boundaries)
            .bind(cohorts_end)
            .bind(i32::try_from(periods).map_err(|e| Error::Internal(e.into()))?)
            .bind(boundaries.last().copied());
        // A bit per `width_bucket` value (0 to the number of boundaries), the first set.
        let first_bit = format!("1{}", "0".repeat(boundaries.len()));
        let query = match source {
            ActivitySource::Raw => query,
            ActivitySource::Months => query.bind(first_bit),
            ActivitySource::Customers => {
                let first_month = grains::consecutive_months(boundaries).ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!(
                        "cohorts from customer_activity for a grid they are not exact for"
                    ))
                })?;
                let buckets = boundaries.len().saturating_sub(1);
                let month_bits = usize::try_from(first_month).unwrap_or(0) + buckets;
                let gaps: Vec<String> = grains::month_start_gaps(boundaries)
                    .iter()
                    .map(|(from, to)| format!("[{},{})", from.to_rfc3339(), to.to_rfc3339()))
                    .collect();
                query
                    .bind(first_bit)
                    .bind("0".repeat(month_bits))
                    .bind(first_month + 1)
                    .bind(i32::try_from(buckets).map_err(|e| Error::Internal(e.into()))?)
                    .bind(format!("{{{}}}", gaps.join(",")))
            }
        };
        let rows = self.read_rows(query, deadline).await?;
        rows.iter()
            .map(|row| {
                let buckets = boundaries.len().saturating_sub(1);
                Ok(CohortActivity {
                    cohort: bucket_index(row.try_get::<i32, _>("cohort")?.into(), buckets)?,
                    bucket: bucket_index(row.try_get::<i32, _>("bucket")?.into(), buckets)?,
                    active: row.try_get("active")?,
                })
            })
            .collect()
    }
}

/// Cohort rows from every survey response and interaction of tenant $1 before $5: each
/// customer's buckets with activity, and the earliest instant in each, counted once per
/// (customer, bucket) before anything is joined; the first of them is the customer's
/// cohort. Activity after the grid can be neither a member's first nor in one of its
/// buckets.
const RAW_COHORTS: &str = "with activity as (
        select customer_id, respond_time as t from survey_responses
        where tenant_id = $1 and respond_time < $5
        union all
        select customer_id, open_time from interactions
        where tenant_id = $1 and open_time < $5
    ), buckets as (
        select customer_id, width_bucket(t, $2::timestamptz[]) as bucket, min(t) as first
        from activity group by 1, 2
    ), members as (
        select bucket, min(bucket) over w as cohort, min(first) over w as first
        from buckets window w as (partition by customer_id)
    )
    select cohort, bucket, count(*) as active from members
    where first >= ($2::timestamptz[])[1] and first < $3 and bucket < cohort + $4
    group by 1, 2";

/// The parts of the cohort queries that read `customer_months`, as literals for `concat!`.
macro_rules! cohort_sql {
    (pending) => {
        "select distinct customer_id, month from customer_months
         where tenant_id = $1 and fresh and retracts"
    };
    (spans, $only:literal) => {
        concat!(
            "select c.customer_id, c.first_at, c.last_at
             from customer_months c
             where c.tenant_id = $1 and not c.retracts and c.first_at < $5 ",
            $only,
            " and not exists (select from pending p
                              where p.customer_id = c.customer_id and p.month = c.month)
             union all
             select p.customer_id, a.first_at, a.last_at from pending p
             cross join lateral customer_month_activity($1, p.customer_id, p.month) a
             where a.n > 0 and a.first_at < $5"
        )
    };
    (masks) => {
        "select min(first_at) as first,
                bit_or(($6::text::varbit >> width_bucket(first_at, $2::timestamptz[]))
                       | ($6::text::varbit >> width_bucket(
                             case when last_at < $5 then last_at else first_at end,
                             $2::timestamptz[]))) as mask
         from spans group by customer_id"
    };
    (members) => {
        "select width_bucket(first, $2::timestamptz[]) as cohort, mask, count(*) as customers
         from customers where first >= ($2::timestamptz[])[1] and first < $3
         group by 1, 2
     )
     select cohort, cohort + k as bucket, sum(customers)::int8 as active
     from members cross join generate_series(0, $4 - 1) k
     where cohort + k < length(mask) and get_bit(mask, cohort + k) = 1
     group by 1, 2"
    };
}

/// The same rows from `customer_months`, for a grid no bucket of which lies inside a UTC
/// month. `spans` is each customer's first and last instant per UTC month; a month with a
/// retraction not yet compacted is recomputed from its raw rows by the function compaction
/// uses. `$6` is a bit string with a bit per bucket number, the first set. A customer is its
/// first instant and the set of buckets its spans start or end in, as a bit mask; customers
/// of one cohort with the same mask are counted together before the mask is read per period.
const MONTHS_COHORTS: &str = concat!(
    "with pending as (",
    cohort_sql!(pending),
    "), spans as (",
    cohort_sql!(spans, ""),
    "), customers as (",
    cohort_sql!(masks),
    "), members as (",
    cohort_sql!(members),
);

/// The same rows from `customer_activity` (one row per customer), for a grid of
/// consecutive UTC months give or take `grains::MONTH_EDGE` at each boundary
/// (`ActivitySource::Customers`). A customer none of whose instants near a month's edge lies
/// between a boundary and its month start (`$10`, `grains::month_start_gaps`) was active in
/// the buckets of its months; any other in the buckets of its `inside` months and those
/// its edge instants lie in. A customer with rows in `customer_months` that are not folded
/// yet is read from there, as `MONTHS_COHORTS` does. `$7` is as many zero bits as the first
/// month's number and the buckets, `$8` the first month's bit (1-based), `$9` the buckets.
/// The text parameters are parsed once, in subqueries, not once per row.
const CUSTOMERS_COHORTS: &str = concat!(
    "with fresh as (
        select distinct customer_id from customer_months where tenant_id = $1 and fresh
    ), pending as (",
    cohort_sql!(pending),
    "), spans as (",
    cohort_sql!(
        spans,
        "and c.customer_id in (select customer_id from fresh)"
    ),
    "), customers as (",
    cohort_sql!(masks),
    " union all
        select a.first_at,
               case when a.edges && (select $10::text::tstzmultirange)
                    then customer_activity_buckets(a.inside, (select $7::text::varbit), $8, $9)
                         | coalesce((select bit_or($6::text::varbit
                                                   >> width_bucket(lower(r), $2::timestamptz[]))
                                     from unnest(a.edges) r where lower(r) < $5),
                                    $6::text::varbit >> length($6))
                    else customer_activity_buckets(a.months, (select $7::text::varbit), $8, $9) end
        from customer_activity a
        where a.tenant_id = $1 and a.first_at >= ($2::timestamptz[])[1] and a.first_at < $3
          and not exists (select from fresh f where f.customer_id = a.customer_id)
    ), members as (",
    cohort_sql!(members),
);

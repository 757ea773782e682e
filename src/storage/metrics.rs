//! Aggregation queries of the survey metrics: counts per score, per scale, per bucket and per
//! group, computed in PostgreSQL; the arithmetic happens in `domain::stats`.
//!
//! A query that filters and groups by survey and channel at most is read from the rollups
//! (migrations/20261201000001_survey_rollups.sql): each bucket as whole UTC slots of the
//! rollup grains plus, when a boundary is not on a quarter-hour, slivers of raw rows
//! (`domain::grains`). Any other query (attribute filters, agent or team through the linked
//! interaction) counts the raw rows, bucketed by `width_bucket` over the boundaries, which
//! the planner estimates well (grouping by `date_trunc(..., zone)` it does not).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Row};

use super::{Store, bucket_index, filters};
use crate::{
    domain::{
        GroupBy, MetricQuery, ScoreScale, SurveyKind, TenantId, grains, report::BucketCount,
        stats::ScoreCount,
    },
    error::Error,
};

/// Whether the rollups hold every dimension `query` filters or groups by.
pub fn rollups_serve(query: &MetricQuery) -> bool {
    let filter = &query.filter;
    !filter.uses_interaction()
        && filter.attributes.is_empty()
        && matches!(
            query.group_by,
            None | Some(GroupBy::Survey) | Some(GroupBy::Channel)
        )
}

impl Store {
    /// Counts survey responses of `kind` per bucket of `boundaries` (`[b0, b1, ..., bn]`,
    /// bucket i is `[b_i, b_i+1)`), group, score and scale, with the query's filter.
    #[tracing::instrument(skip_all, fields(kind = ?kind, buckets = boundaries.len() as i64 - 1))]
    pub async fn score_counts(
        &self,
        tenant: &TenantId,
        kind: SurveyKind,
        query: &MetricQuery,
        boundaries: &[DateTime<Utc>],
        group_limit: usize,
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<BucketCount>, Error> {
        if boundaries.len() < 2 {
            return Ok(Vec::new());
        }
        let buckets = boundaries.len() - 1;
        let grouped = query.group_by.is_some();
        let mut qb = filters::limited_groups_head(grouped);
        if rollups_serve(query) {
            push_rollup_counts(&mut qb, tenant, kind, query, boundaries);
        } else {
            push_raw_counts(&mut qb, tenant, kind, query, boundaries);
        }
        filters::push_limited_groups_tail(&mut qb, grouped, group_limit);
        let rows = self.read_rows(qb.build(), deadline).await?;
        rows.iter()
            .map(|row| {
                Ok(BucketCount {
                    bucket: bucket_index(i64::from(row.try_get::<i32, _>("bucket")?) + 1, buckets)?,
                    group: row.try_get("grp")?,
                    item: ScoreCount {
                        score: row.try_get("score")?,
                        scale: ScoreScale {
                            min: row.try_get("scale_min")?,
                            max: row.try_get("scale_max")?,
                        },
                        count: row.try_get("n")?,
                    },
                })
            })
            .collect()
    }
}

/// Rows (bucket, grp, score, scale_min, scale_max, n) from the raw responses, bucketed with
/// `width_bucket` (0-based).
fn push_raw_counts(
    qb: &mut QueryBuilder<'static, Postgres>,
    tenant: &TenantId,
    kind: SurveyKind,
    query: &MetricQuery,
    boundaries: &[DateTime<Utc>],
) {
    let group_by = query.group_by.as_ref();
    qb.push("select width_bucket(r.respond_time, ");
    qb.push_bind(boundaries.to_vec())
        .push("::timestamptz[]) - 1 as bucket, ");
    filters::push_response_group(qb, group_by);
    qb.push(" as grp, r.score, r.scale_min, r.scale_max, count(*) as n from survey_responses r");
    if query.filter.uses_interaction() || group_by.is_some_and(GroupBy::uses_interaction) {
        qb.push(filters::LINKED_INTERACTION);
    }
    push_tenant_and_kind(qb, tenant, kind);
    qb.push(" and r.respond_time >= ")
        .push_bind(boundaries[0])
        .push(" and r.respond_time < ")
        .push_bind(boundaries[boundaries.len() - 1]);
    filters::push_response_filter(qb, &query.filter);
    qb.push(" group by 1, 2, 3, 4, 5");
}

/// The same rows from the rollups' slots, plus the raw rows of the slivers no slot covers.
/// Queries that neither filter nor group by survey or channel read the grains kept over
/// every survey and channel, UTC months included: a row per score and scale and slot.
fn push_rollup_counts(
    qb: &mut QueryBuilder<'static, Postgres>,
    tenant: &TenantId,
    kind: SurveyKind,
    query: &MetricQuery,
    boundaries: &[DateTime<Utc>],
) {
    let filter = &query.filter;
    let undivided =
        query.group_by.is_none() && filter.survey_ids.is_empty() && filter.channels.is_empty();
    let cover = if undivided {
        grains::cover_by_months(boundaries, &[])
    } else {
        grains::cover(boundaries)
    };
    let mut slots = cover.slot_columns();
    if undivided {
        slots.read_undivided();
    }
    let group_by = query.group_by.as_ref();
    qb.push("select bucket, grp, score, scale_min, scale_max, sum(n)::int8 as n from (select p.bucket, ");
    filters::push_response_group(qb, group_by);
    qb.push(" as grp, r.score, r.scale_min, r.scale_max, r.n * p.sign as n from ");
    filters::push_slot_parts(qb, slots);
    qb.push(" cross join lateral (select * from survey_rollups r where r.tenant_id = ")
        .push_bind(tenant.as_str().to_owned())
        .push(" and r.kind = ")
        .push_bind(kind.code())
        .push(" and r.grain = p.grain and r.slot >= p.part_from and r.slot < p.part_to");
    filters::push_response_filter(qb, filter);
    // `offset 0` keeps the lateral subquery a parameterized index scan per slot range: the
    // planner cannot estimate range joins against `unnest` and would scan the whole table.
    qb.push(" offset 0) r");
    if !cover.slivers.is_empty() {
        qb.push(" union all select p.bucket, ");
        filters::push_response_group(qb, group_by);
        qb.push(" as grp, r.score, r.scale_min, r.scale_max, p.sign from ");
        filters::push_sliver_parts(qb, cover.sliver_columns());
        qb.push(" cross join lateral (select * from survey_responses r");
        push_tenant_and_kind(qb, tenant, kind);
        qb.push(" and r.respond_time >= p.part_from and r.respond_time < p.part_to");
        filters::push_response_filter(qb, filter);
        qb.push(" offset 0) r");
    }
    qb.push(") counted group by 1, 2, 3, 4, 5 having sum(n) <> 0");
}

/// ` where r.tenant_id = ... and r.kind = ...`.
fn push_tenant_and_kind(
    qb: &mut QueryBuilder<'static, Postgres>,
    tenant: &TenantId,
    kind: SurveyKind,
) {
    qb.push(" where r.tenant_id = ")
        .push_bind(tenant.as_str().to_owned())
        .push(" and r.kind = ")
        .push_bind(kind.code());
}

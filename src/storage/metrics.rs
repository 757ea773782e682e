//! Aggregation queries of the survey metrics: counts per score, per scale, per bucket and per
//! group, computed in PostgreSQL; the arithmetic happens in `domain::stats`.
//!
//! Buckets are passed in as an array of boundaries and assigned with `width_bucket`, which
//! the planner estimates well (grouping by `date_trunc(..., zone)` it does not).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, bucket_index, filters};
use crate::{
    domain::{
        GroupBy, MetricQuery, ScoreScale, SurveyKind, TenantId, report::BucketCount,
        stats::ScoreCount,
    },
    error::Error,
};

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
        let (Some(first), Some(last)) = (boundaries.first(), boundaries.last()) else {
            return Ok(Vec::new());
        };
        let buckets = boundaries.len() - 1;
        let group_by = query.group_by.as_ref();
        let grouped = query.group_by.is_some();
        let mut qb = filters::limited_groups_head(grouped);
        qb.push("select width_bucket(r.respond_time, ");
        qb.push_bind(boundaries.to_vec())
            .push("::timestamptz[]) - 1 as bucket, ");
        filters::push_response_group(&mut qb, group_by);
        qb.push(
            " as grp, r.score, r.scale_min, r.scale_max, count(*) as n from survey_responses r",
        );
        if query.filter.uses_interaction() || group_by.is_some_and(GroupBy::uses_interaction) {
            qb.push(filters::LINKED_INTERACTION);
        }
        qb.push(" where r.tenant_id = ")
            .push_bind(tenant.as_str().to_owned())
            .push(" and r.kind = ")
            .push_bind(kind.code())
            .push(" and r.respond_time >= ")
            .push_bind(*first)
            .push(" and r.respond_time < ")
            .push_bind(*last);
        filters::push_response_filter(&mut qb, &query.filter);
        qb.push(" group by 1, 2, 3, 4, 5");
        filters::push_limited_groups_tail(&mut qb, grouped, group_limit);
        let query = qb.build();
        let rows = self.read_rows(query, deadline).await?;
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

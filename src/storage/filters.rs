//! The `where` clauses a `Filter` adds to queries over survey responses (`r`, with the
//! linked interaction as `i`) and interactions (`i`). Shared by metrics and listings.

use sqlx::{Postgres, QueryBuilder};

use crate::domain::{
    Filter, GroupBy,
    grains::{SliverColumns, SlotColumns},
};

/// `left join` of the interaction a survey response links to, as `i`.
pub const LINKED_INTERACTION: &str = " left join interactions i
    on i.tenant_id = r.tenant_id and i.interaction_id = r.interaction_id";

/// A query builder whose query, when `grouped`, is wrapped (with `push_limited_groups_tail`)
/// so that it returns the rows of its first `limit + 1` groups only (by its `grp` column):
/// enough to tell that there are more than `limit` without fetching every group of a key
/// with millions of values.
pub fn limited_groups_head(grouped: bool) -> QueryBuilder<'static, Postgres> {
    QueryBuilder::new(if grouped {
        "select * from (select *, dense_rank() over (order by grp) as grp_rank from ("
    } else {
        ""
    })
}

/// Closes `limited_groups_head`.
pub fn push_limited_groups_tail(qb: &mut QueryBuilder<'_, Postgres>, grouped: bool, limit: usize) {
    if grouped {
        qb.push(") grouped) ranked where grp_rank <= ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1));
    }
}

/// Appends ` and ...` for every non-empty field of `filter` on survey responses.
pub fn push_response_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &Filter) {
    push_any(qb, "r.survey_id", &filter.survey_ids);
    push_any(qb, "r.channel", &filter.channels);
    push_any(qb, "i.agent_id", &filter.agent_ids);
    push_any(qb, "i.team_id", &filter.team_ids);
    push_attributes(qb, "r", filter);
}

/// Appends ` and ...` for every non-empty field of `filter` on interactions (`survey_ids`
/// does not apply and must be rejected before).
pub fn push_interaction_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &Filter) {
    push_any(qb, "i.channel", &filter.channels);
    push_any(qb, "i.agent_id", &filter.agent_ids);
    push_any(qb, "i.team_id", &filter.team_ids);
    push_attributes(qb, "i", filter);
}

fn push_any(qb: &mut QueryBuilder<'_, Postgres>, column: &str, values: &[String]) {
    if !values.is_empty() {
        qb.push(format_args!(" and {column} = any("))
            .push_bind(values.to_vec())
            .push(")");
    }
}

fn push_attributes(qb: &mut QueryBuilder<'_, Postgres>, alias: &str, filter: &Filter) {
    if !filter.attributes.is_empty() {
        let wanted = serde_json::to_value(&filter.attributes).unwrap_or_default();
        qb.push(format_args!(" and {alias}.attributes @> "))
            .push_bind(wanted)
            .push("::jsonb");
    }
}

/// The group key expression of `group_by` over survey responses; "" for a missing value.
pub fn push_response_group(qb: &mut QueryBuilder<'_, Postgres>, group_by: Option<&GroupBy>) {
    match group_by {
        None => qb.push("''"),
        Some(GroupBy::Survey) => qb.push("r.survey_id"),
        Some(GroupBy::Channel) => qb.push("coalesce(r.channel, '')"),
        Some(GroupBy::Agent) => qb.push("coalesce(i.agent_id, '')"),
        Some(GroupBy::Team) => qb.push("coalesce(i.team_id, '')"),
        Some(GroupBy::Attribute(key)) => qb
            .push("coalesce(r.attributes ->> ")
            .push_bind(key.clone())
            .push(", '')"),
    };
}

/// The group key expression of `group_by` over interactions; "" for a missing value.
/// `GroupBy::Survey` does not apply to interactions and must be rejected before.
pub fn push_interaction_group(qb: &mut QueryBuilder<'_, Postgres>, group_by: Option<&GroupBy>) {
    match group_by {
        None | Some(GroupBy::Survey) => qb.push("''"),
        Some(GroupBy::Channel) => qb.push("coalesce(i.channel, '')"),
        Some(GroupBy::Agent) => qb.push("coalesce(i.agent_id, '')"),
        Some(GroupBy::Team) => qb.push("coalesce(i.team_id, '')"),
        Some(GroupBy::Attribute(key)) => qb
            .push("coalesce(i.attributes ->> ")
            .push_bind(key.clone())
            .push(", '')"),
    };
}

/// `unnest(...) as p (grain, part_from, part_to, bucket, sign)`: a cover's rollup slot
/// ranges as rows, one per range, for a lateral read of each; what a range counts is
/// multiplied by its `sign`.
pub fn push_slot_parts(qb: &mut QueryBuilder<'_, Postgres>, slots: SlotColumns) {
    qb.push("unnest(")
        .push_bind(slots.grains)
        .push("::int2[], ")
        .push_bind(slots.from)
        .push("::timestamptz[], ")
        .push_bind(slots.to)
        .push("::timestamptz[], ")
        .push_bind(slots.buckets)
        .push("::int4[], ")
        .push_bind(slots.signs)
        .push("::int2[]) as p (grain, part_from, part_to, bucket, sign)");
}

/// `unnest(...) as p (part_from, part_to, bucket, sign)`: a cover's raw slivers as rows.
pub fn push_sliver_parts(qb: &mut QueryBuilder<'_, Postgres>, slivers: SliverColumns) {
    qb.push("unnest(")
        .push_bind(slivers.from)
        .push("::timestamptz[], ")
        .push_bind(slivers.to)
        .push("::timestamptz[], ")
        .push_bind(slivers.buckets)
        .push("::int4[], ")
        .push_bind(slivers.signs)
        .push("::int2[]) as p (part_from, part_to, bucket, sign)");
}

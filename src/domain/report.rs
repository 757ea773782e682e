//! Turns score counts per bucket and group into a report: the total, a dense series, one
//! entry per group, and the previous period with the change. Shared by every survey metric.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    query::MetricQuery,
    stats::{Change, ScoreCount},
};

/// One aggregated item (score counts, or one interaction's durations) of a bucket and group,
/// as storage returns them.
#[derive(Debug, Clone)]
pub struct Bucketed<T> {
    /// Index into the buckets the query was run with (see `ReportPlan`).
    pub bucket: usize,
    /// The group key; "" when ungrouped or the record lacks the value.
    pub group: String,
    pub item: T,
}

/// Score counts of one bucket and group.
pub type BucketCount = Bucketed<ScoreCount>;

/// The buckets to aggregate over: with `compare_previous`, bucket 0 is the previous period
/// and the series follows; otherwise the series starts at bucket 0.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    pub boundaries: Vec<DateTime<Utc>>,
    previous: bool,
}

impl ReportPlan {
    #[tracing::instrument(name = "plan", skip_all)]
    pub fn new(query: &MetricQuery) -> Self {
        let mut boundaries = query.boundaries();
        if query.compare_previous {
            boundaries.insert(0, query.range.previous().start());
        }
        Self {
            boundaries,
            previous: query.compare_previous,
        }
    }

    /// How many buckets the query runs over (the previous period's included).
    pub fn buckets(&self) -> usize {
        self.boundaries.len().saturating_sub(1)
    }

    /// The most groups this report may have (`query::group_limit`).
    pub fn group_limit(&self) -> usize {
        super::query::group_limit(self.buckets())
    }

    /// The first bucket that belongs to the requested range.
    fn first_current(&self) -> usize {
        usize::from(self.previous)
    }
}

/// Whether `rows` hold more than `limit` distinct groups (storage returns at most one
/// more than the limit, so this looks at few rows past it).
pub fn exceeds_groups<T>(rows: &[Bucketed<T>], limit: usize) -> bool {
    let mut groups = std::collections::HashSet::new();
    rows.iter()
        .any(|r| groups.insert(r.group.as_str()) && groups.len() > limit)
}

/// A computed report for stats type `S` and change type `C`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<S, C = Change> {
    pub total: S,
    /// One point per bucket, empty ones included; empty without a granularity.
    pub series: Vec<(DateTime<Utc>, S)>,
    /// One entry per group, ordered by key; empty without a group_by.
    pub groups: Vec<(String, S)>,
    pub previous: Option<S>,
    pub change: Option<C>,
}

/// Assembles the report from the rows with `stats` (items -> stats) and `change`.
#[tracing::instrument(name = "compute", skip_all, fields(rows = rows.len() as i64))]
pub fn build<T: Copy, S, C>(
    query: &MetricQuery,
    plan: &ReportPlan,
    rows: &[Bucketed<T>],
    stats: impl Fn(&[T]) -> S,
    change: impl Fn(&S, &S) -> C,
) -> Report<S, C> {
    let first = plan.first_current();
    let current: Vec<&Bucketed<T>> = rows.iter().filter(|r| r.bucket >= first).collect();
    let total = stats(&current.iter().map(|r| r.item).collect::<Vec<_>>());

    let series = if query.granularity.is_some() {
        let buckets = plan.boundaries.len() - 1;
        let mut per_bucket: Vec<Vec<T>> = vec![Vec::new(); buckets];
        for r in &current {
            per_bucket[r.bucket].push(r.item);
        }
        (first..buckets)
            .map(|b| (plan.boundaries[b], stats(&per_bucket[b])))
            .collect()
    } else {
        Vec::new()
    };

    let groups = if query.group_by.is_some() {
        let mut per_group: BTreeMap<&str, Vec<T>> = BTreeMap::new();
        for r in &current {
            per_group.entry(r.group.as_str()).or_default().push(r.item);
        }
        per_group
            .into_iter()
            .map(|(key, counts)| (key.to_owned(), stats(&counts)))
            .collect()
    } else {
        Vec::new()
    };

    let (previous, change) = if plan.previous {
        let before: Vec<T> = rows
            .iter()
            .filter(|r| r.bucket == 0)
            .map(|r| r.item)
            .collect();
        let previous = stats(&before);
        let change = change(&total, &previous);
        (Some(previous), Some(change))
    } else {
        (None, None)
    };

    Report {
        total,
        series,
        groups,
        previous,
        change,
    }
}

//! Turns score counts per bucket and group into a report: the total, a dense series, one
//! entry per group, and the previous period with the change. Shared by every survey metric.

use std::collections::{BTreeMap, HashMap};

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
    pub fn first_current(&self) -> usize {
        usize::from(self.previous)
    }

    /// The scopes a report of `query` reads pre-aggregated items of.
    pub fn scope_sets(&self, query: &MetricQuery) -> ScopeSets {
        ScopeSets {
            per_group: query.group_by.is_some(),
            whole_range: query.granularity.is_some(),
        }
    }

    /// The scope of the requested range as a whole: without a granularity that is the one
    /// bucket after the previous period's, with one it is every bucket from there.
    fn current(&self, sets: ScopeSets) -> Option<usize> {
        (!sets.whole_range).then(|| self.first_current())
    }
}

/// Which scopes a report needs besides one per bucket (the series, the previous period,
/// and without a granularity the whole range): per group in each bucket, and with a
/// granularity the requested range as a whole (all groups and, grouped, each group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeSets {
    pub per_group: bool,
    pub whole_range: bool,
}

/// An item aggregated over one scope: one bucket (or, None, every bucket of the requested
/// range) and one group (or, None, all of them).
#[derive(Debug, Clone, PartialEq)]
pub struct Scoped<T> {
    pub bucket: Option<usize>,
    pub group: Option<String>,
    pub item: T,
}

/// Whether `scoped` holds more than `limit` distinct groups.
pub fn exceeds_scoped_groups<T>(scoped: &[Scoped<T>], limit: usize) -> bool {
    let mut groups = std::collections::HashSet::new();
    scoped
        .iter()
        .filter_map(|s| s.group.as_deref())
        .any(|g| groups.insert(g) && groups.len() > limit)
}

/// The scoped items of a report from mergeable items per bucket and group (the group ""
/// when ungrouped): each scope's item is the sum of its cells', with `add`.
pub fn roll_up<T: Clone, E>(
    query: &MetricQuery,
    plan: &ReportPlan,
    cells: &[Bucketed<T>],
    empty: impl Fn() -> T,
    add: impl Fn(&mut T, &T) -> Result<(), E>,
) -> Result<Vec<Scoped<T>>, E> {
    let sets = plan.scope_sets(query);
    let mut scopes: BTreeMap<(Option<usize>, Option<&str>), T> = BTreeMap::new();
    for cell in cells {
        let group = sets.per_group.then_some(cell.group.as_str());
        let mut keys = vec![(Some(cell.bucket), None)];
        if sets.per_group {
            keys.push((Some(cell.bucket), group));
        }
        if sets.whole_range && cell.bucket >= plan.first_current() {
            keys.push((None, None));
            if sets.per_group {
                keys.push((None, group));
            }
        }
        for key in keys {
            add(scopes.entry(key).or_insert_with(&empty), &cell.item)?;
        }
    }
    Ok(scopes
        .into_iter()
        .map(|((bucket, group), item)| Scoped {
            bucket,
            group: group.map(str::to_owned),
            item,
        })
        .collect())
}

/// Assembles the report from items aggregated per scope (`ScopeSets`), with `stats` (an
/// item, or None for a scope without records -> stats) and `change`.
#[tracing::instrument(name = "compute", skip_all, fields(scopes = scoped.len() as i64))]
pub fn build_scoped<T, S, C>(
    query: &MetricQuery,
    plan: &ReportPlan,
    scoped: &[Scoped<T>],
    stats: impl Fn(Option<&T>) -> S,
    change: impl Fn(&S, &S) -> C,
) -> Report<S, C> {
    let sets = plan.scope_sets(query);
    let current = plan.current(sets);
    let items: HashMap<(Option<usize>, Option<&str>), &T> = scoped
        .iter()
        .map(|s| ((s.bucket, s.group.as_deref()), &s.item))
        .collect();
    let get = |bucket: Option<usize>, group: Option<&str>| items.get(&(bucket, group)).copied();
    let series_of = |group: Option<&str>| -> Vec<Point<S>> {
        if query.granularity.is_none() {
            return Vec::new();
        }
        (plan.first_current()..plan.buckets())
            .map(|b| Point {
                start: plan.boundaries[b],
                stats: stats(get(Some(b), group)),
            })
            .collect()
    };
    let keys: std::collections::BTreeSet<&str> = scoped
        .iter()
        .filter(|s| s.bucket == current)
        .filter_map(|s| s.group.as_deref())
        .collect();
    let groups = keys
        .into_iter()
        .map(|key| GroupReport {
            key: key.to_owned(),
            stats: stats(get(current, Some(key))),
            series: series_of(Some(key)),
        })
        .collect();
    let total = stats(get(current, None));
    let (previous, change) = if plan.previous {
        let previous = stats(get(Some(0), None));
        let change = change(&total, &previous);
        (Some(previous), Some(change))
    } else {
        (None, None)
    };
    Report {
        total,
        series: series_of(None),
        groups,
        previous,
        change,
    }
}

/// Whether `rows` hold more than `limit` distinct groups (storage returns at most one
/// more than the limit, so this looks at few rows past it).
pub fn exceeds_groups<T>(rows: &[Bucketed<T>], limit: usize) -> bool {
    let mut groups = std::collections::HashSet::new();
    rows.iter()
        .any(|r| groups.insert(r.group.as_str()) && groups.len() > limit)
}

/// One bucket of a series: where it starts, and its stats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<S> {
    pub start: DateTime<Utc>,
    pub stats: S,
}

/// One group of a report: its key, its stats over the range, and with a granularity its own
/// dense series, point for point at the same start times as the report's series.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport<S> {
    pub key: String,
    pub stats: S,
    /// One point per bucket, empty ones included; empty without a granularity.
    pub series: Vec<Point<S>>,
}

/// A computed report for stats type `S` and change type `C`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<S, C = Change> {
    pub total: S,
    /// One point per bucket, empty ones included; empty without a granularity.
    pub series: Vec<Point<S>>,
    /// One entry per group, ordered by key; empty without a group_by.
    pub groups: Vec<GroupReport<S>>,
    pub previous: Option<S>,
    pub change: Option<C>,
}

/// The items of the requested range, sorted once into the total, each bucket, each group
/// and, with a granularity and a group_by, each group's buckets.
struct Split<'a, T> {
    total: Vec<T>,
    /// Indexed by bucket (the previous period's slot, if any, stays empty).
    per_bucket: Vec<Vec<T>>,
    per_group: BTreeMap<&'a str, GroupItems<T>>,
}

/// One group's items, and with a granularity its items per bucket.
struct GroupItems<T> {
    items: Vec<T>,
    per_bucket: Vec<Vec<T>>,
}

impl<'a, T: Copy> Split<'a, T> {
    /// One pass over the rows; `rows` are bounded by `query::group_limit` (buckets x groups).
    fn new(query: &MetricQuery, plan: &ReportPlan, rows: &'a [Bucketed<T>]) -> Self {
        let first = plan.first_current();
        let buckets = if query.granularity.is_some() {
            plan.buckets()
        } else {
            0
        };
        let mut split = Self {
            total: Vec::new(),
            per_bucket: vec![Vec::new(); buckets],
            per_group: BTreeMap::new(),
        };
        for r in rows.iter().filter(|r| r.bucket >= first) {
            split.total.push(r.item);
            if buckets > 0 {
                split.per_bucket[r.bucket].push(r.item);
            }
            if query.group_by.is_some() {
                let group = split
                    .per_group
                    .entry(r.group.as_str())
                    .or_insert_with(|| GroupItems {
                        items: Vec::new(),
                        per_bucket: vec![Vec::new(); buckets],
                    });
                group.items.push(r.item);
                if buckets > 0 {
                    group.per_bucket[r.bucket].push(r.item);
                }
            }
        }
        split
    }
}

/// The dense series over `per_bucket`, from the first bucket of the requested range.
fn dense_series<T, S>(
    plan: &ReportPlan,
    per_bucket: &[Vec<T>],
    stats: &impl Fn(&[T]) -> S,
) -> Vec<Point<S>> {
    (plan.first_current()..per_bucket.len())
        .map(|b| Point {
            start: plan.boundaries[b],
            stats: stats(&per_bucket[b]),
        })
        .collect()
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
    let split = Split::new(query, plan, rows);
    let total = stats(&split.total);
    let series = dense_series(plan, &split.per_bucket, &stats);
    let groups = split
        .per_group
        .into_iter()
        .map(|(key, group)| GroupReport {
            key: key.to_owned(),
            stats: stats(&group.items),
            series: dense_series(plan, &group.per_bucket, &stats),
        })
        .collect();

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        buckets::Granularity,
        query::{Filter, GroupBy, TimeRange},
    };

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn query(granularity: Option<Granularity>) -> MetricQuery {
        MetricQuery {
            range: TimeRange::new(utc("2026-01-01T00:00:00Z"), utc("2026-01-04T00:00:00Z"))
                .unwrap(),
            time_zone: chrono_tz::UTC,
            granularity,
            filter: Filter::default(),
            group_by: Some(GroupBy::Channel),
            compare_previous: true,
        }
    }

    fn row(bucket: usize, group: &str, item: i64) -> Bucketed<i64> {
        Bucketed {
            bucket,
            group: group.into(),
            item,
        }
    }

    fn sum(items: &[i64]) -> i64 {
        items.iter().sum()
    }

    fn points(days: &[DateTime<Utc>], values: [i64; 3]) -> Vec<Point<i64>> {
        days.iter()
            .zip(values)
            .map(|(start, stats)| Point {
                start: *start,
                stats,
            })
            .collect()
    }

    #[test]
    fn each_group_has_a_dense_series_without_the_previous_period() {
        let query = query(Some(Granularity::Day));
        let plan = ReportPlan::new(&query);
        // Bucket 0 is the previous period, buckets 1..=3 the three days.
        let rows = [
            row(0, "chat", 100),
            row(1, "chat", 1),
            row(3, "chat", 2),
            row(3, "chat", 4),
            row(2, "email", 8),
        ];
        let report = build(&query, &plan, &rows, sum, |a, b| a - b);
        let days = [
            utc("2026-01-01T00:00:00Z"),
            utc("2026-01-02T00:00:00Z"),
            utc("2026-01-03T00:00:00Z"),
        ];
        assert_eq!(
            report.groups,
            [
                GroupReport {
                    key: "chat".into(),
                    stats: 7,
                    series: points(&days, [1, 0, 6]),
                },
                GroupReport {
                    key: "email".into(),
                    stats: 8,
                    series: points(&days, [0, 8, 0]),
                },
            ]
        );
        assert_eq!(report.series, points(&days, [1, 8, 6]));
        assert_eq!((report.total, report.previous), (15, Some(100)));
    }

    #[test]
    fn groups_have_no_series_without_a_granularity() {
        let query = query(None);
        let plan = ReportPlan::new(&query);
        let rows = [row(0, "chat", 100), row(1, "chat", 1), row(1, "email", 8)];
        let report = build(&query, &plan, &rows, sum, |a, b| a - b);
        assert!(report.series.is_empty());
        assert_eq!(
            report
                .groups
                .iter()
                .map(|g| (g.key.as_str(), g.stats, g.series.len()))
                .collect::<Vec<_>>(),
            [("chat", 1, 0), ("email", 8, 0)]
        );
    }

    #[test]
    fn scoped_items_rolled_up_from_cells_give_the_same_report_as_the_items() {
        for granularity in [None, Some(Granularity::Day)] {
            let query = query(granularity);
            let plan = ReportPlan::new(&query);
            // Without a granularity there are two buckets: the previous period and the range.
            let b = |day: usize| {
                if granularity.is_some() {
                    day
                } else {
                    day.min(1)
                }
            };
            let rows = [
                row(0, "chat", 100),
                row(1, "chat", 1),
                row(b(3), "chat", 2),
                row(b(3), "chat", 4),
                row(b(2), "email", 8),
            ];
            let scoped = roll_up(
                &query,
                &plan,
                &rows,
                || 0,
                |a, b| {
                    *a += b;
                    Ok::<_, ()>(())
                },
            )
            .unwrap();
            let from_scopes = build_scoped(
                &query,
                &plan,
                &scoped,
                |s| s.copied().unwrap_or(0),
                |a, b| a - b,
            );
            assert_eq!(from_scopes, build(&query, &plan, &rows, sum, |a, b| a - b));
            assert!(!exceeds_scoped_groups(&scoped, 2));
            assert!(exceeds_scoped_groups(&scoped, 1));
        }
    }
}

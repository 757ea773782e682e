//! Cohort retention: which buckets are cohorts, the bucket grid their activity is counted
//! on, and the table of active members per offset.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{
    TimeRange,
    buckets::{Granularity, bucket_starts},
};

/// The most offsets a cohort table may have.
pub const MAX_PERIODS: usize = 60;

/// One row of the cohort table.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    pub start: DateTime<Utc>,
    pub size: i64,
    /// Members active in bucket cohort + k, for k in 0..periods.
    pub active: Vec<i64>,
    /// 100 x active / size; empty when size is 0.
    pub rates: Vec<f64>,
}

/// The bucket grid of a cohort query: cohorts are the buckets whose start lies inside the
/// range; the grid goes on `periods` buckets past the last cohort.
#[derive(Debug, Clone)]
pub struct CohortPlan {
    /// Bucket i is `[boundaries[i], boundaries[i + 1])`.
    pub boundaries: Vec<DateTime<Utc>>,
    /// Index of the first cohort bucket, and how many cohorts there are.
    first: usize,
    cohorts: usize,
    periods: usize,
}

impl CohortPlan {
    #[tracing::instrument(name = "plan", skip_all)]
    pub fn new(range: TimeRange, tz: Tz, granularity: Granularity, periods: usize) -> Self {
        // The buckets that begin before the range end, then `periods` more (the last one
        // closing the grid). Both walks are bounded (`bucket_starts`).
        let first_date = granularity.truncate(range.start().with_timezone(&tz).date_naive());
        let mut boundaries: Vec<DateTime<Utc>> = Vec::new();
        let mut after = Some(first_date);
        for (date, t) in bucket_starts(tz, first_date, range.end(), granularity) {
            boundaries.push(t);
            after = granularity.next(date);
        }
        let inside = boundaries.len();
        if let Some(after) = after {
            boundaries.extend(
                bucket_starts(tz, after, DateTime::<Utc>::MAX_UTC, granularity)
                    .take(periods)
                    .map(|(_, t)| t),
            );
        }
        let first = usize::from(boundaries.first().is_some_and(|b| *b < range.start()));
        Self {
            boundaries,
            first,
            cohorts: inside.saturating_sub(first),
            periods,
        }
    }

    /// How many cohorts (rows of the table) there are.
    pub fn cohorts(&self) -> usize {
        self.cohorts
    }

    /// The end of the last cohort: members are customers whose first activity falls in
    /// `[boundaries[first], cohorts_end)`.
    pub fn cohorts_end(&self) -> DateTime<Utc> {
        // The grid has `periods >= 1` buckets past the last cohort, so this index exists
        // unless the calendar ran out; then the grid's last boundary ends the cohorts.
        let end = self.first + self.cohorts;
        self.boundaries
            .get(end)
            .or(self.boundaries.last())
            .copied()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The boundaries from the first cohort on (what storage buckets activity over).
    pub fn grid(&self) -> &[DateTime<Utc>] {
        &self.boundaries[self.first..]
    }

    /// Builds the table from rows (cohort index, bucket index, active) over `grid()`, in one
    /// pass over the rows. A row outside the table is a storage bug, reported as such.
    #[tracing::instrument(name = "compute", skip_all, fields(rows = rows.len() as i64))]
    pub fn build(&self, rows: &[CohortActivity]) -> Result<Vec<Cohort>, String> {
        let mut active = vec![vec![0i64; self.periods]; self.cohorts];
        for row in rows {
            let cell = row
                .bucket
                .checked_sub(row.cohort)
                .and_then(|k| active.get_mut(row.cohort)?.get_mut(k));
            match cell {
                Some(cell) => *cell += row.active,
                None => {
                    return Err(format!(
                        "activity row (cohort {}, bucket {}) outside {} cohorts x {} periods",
                        row.cohort, row.bucket, self.cohorts, self.periods
                    ));
                }
            }
        }
        let grid = self.grid();
        Ok(active
            .into_iter()
            .zip(grid)
            .map(|(active, start)| {
                let size = active.first().copied().unwrap_or(0);
                let rates = if size > 0 {
                    active
                        .iter()
                        .map(|a| 100.0 * *a as f64 / size as f64)
                        .collect()
                } else {
                    Vec::new()
                };
                Cohort {
                    start: *start,
                    size,
                    active,
                    rates,
                }
            })
            .collect())
    }
}

/// Where storage reads cohort activity from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivitySource {
    /// One row per customer (`customer_activity`): its first instant, the UTC months it was
    /// active well inside of, and its instants near a month's edge. Exact for a grid whose
    /// buckets are consecutive UTC months give or take `grains::MONTH_EDGE` at each
    /// boundary, as local months in any zone are (`grains::consecutive_months`).
    Customers,
    /// Each customer's first and last instant per UTC month (`customer_months`): exact when
    /// every UTC month meets at most two buckets of the grid, as local months, quarters and
    /// years in any zone do (`grains::no_bucket_inside_a_month`).
    Months,
    /// Every survey response and interaction.
    Raw,
}

impl ActivitySource {
    /// The cheapest source that is exact for the buckets of `grid`.
    pub fn for_grid(grid: &[DateTime<Utc>]) -> Self {
        if super::grains::consecutive_months(grid).is_some() {
            Self::Customers
        } else if super::grains::no_bucket_inside_a_month(grid) {
            Self::Months
        } else {
            Self::Raw
        }
    }
}

/// Distinct customers of cohort `cohort` active in grid bucket `bucket` (indexes into
/// `CohortPlan::grid`, `bucket >= cohort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CohortActivity {
    pub cohort: usize,
    pub bucket: usize,
    pub active: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn only_buckets_that_start_inside_the_range_are_cohorts() {
        let range =
            TimeRange::new(utc("2026-01-15T00:00:00Z"), utc("2026-04-01T00:00:00Z")).unwrap();
        let plan = CohortPlan::new(range, Tz::UTC, Granularity::Month, 3);
        let cohorts = plan.build(&[]).unwrap();
        let starts: Vec<_> = cohorts.iter().map(|c| c.start).collect();
        assert_eq!(
            starts,
            [utc("2026-02-01T00:00:00Z"), utc("2026-03-01T00:00:00Z")]
        );
        assert_eq!(plan.cohorts_end(), utc("2026-04-01T00:00:00Z"));
        // The grid reaches three periods past the last cohort.
        assert_eq!(*plan.grid().last().unwrap(), utc("2026-06-01T00:00:00Z"));
    }

    #[test]
    fn an_aligned_start_is_a_cohort_and_rates_divide_by_size() {
        let range =
            TimeRange::new(utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z")).unwrap();
        let plan = CohortPlan::new(range, Tz::UTC, Granularity::Month, 3);
        let row = |cohort, bucket, active| CohortActivity {
            cohort,
            bucket,
            active,
        };
        let cohorts = plan.build(&[row(0, 0, 4), row(0, 2, 1)]).unwrap();
        assert_eq!(cohorts.len(), 1);
        assert_eq!(
            (cohorts[0].size, cohorts[0].active.clone()),
            (4, vec![4, 0, 1])
        );
        assert_eq!(cohorts[0].rates, [100.0, 0.0, 25.0]);
        let empty = plan.build(&[]).unwrap();
        assert!(empty[0].rates.is_empty());
        // A row past the last period, or before its cohort, is refused.
        assert!(plan.build(&[row(0, 3, 1)]).is_err());
        assert!(plan.build(&[row(1, 1, 1)]).is_err());
    }
}

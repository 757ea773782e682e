//! Cohort retention: which buckets are cohorts, the bucket grid their activity is counted
//! on, and the table of active members per offset.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{
    TimeRange,
    buckets::{Granularity, start_of_day},
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
        // The buckets that begin before the range end, then `periods` more and a closing one.
        let mut date = granularity.truncate(range.start().with_timezone(&tz).date_naive());
        let mut boundaries = Vec::new();
        loop {
            let t = start_of_day(tz, date);
            if t >= range.end() {
                break;
            }
            boundaries.push(t);
            date = granularity.next(date);
        }
        let inside = boundaries.len();
        for _ in 0..periods {
            boundaries.push(start_of_day(tz, date));
            date = granularity.next(date);
        }
        let first = usize::from(boundaries[0] < range.start());
        Self {
            boundaries,
            first,
            cohorts: inside - first,
            periods,
        }
    }

    /// The end of the last cohort: members are customers whose first activity falls in
    /// `[boundaries[first], cohorts_end)`.
    pub fn cohorts_end(&self) -> DateTime<Utc> {
        self.boundaries[self.first + self.cohorts]
    }

    /// The boundaries from the first cohort on (what storage buckets activity over).
    pub fn grid(&self) -> &[DateTime<Utc>] {
        &self.boundaries[self.first..]
    }

    /// Builds the table from rows (cohort index, bucket index, active) over `grid()`.
    #[tracing::instrument(name = "compute", skip_all, fields(rows = rows.len() as i64))]
    pub fn build(&self, rows: &[(usize, usize, i64)]) -> Vec<Cohort> {
        let grid = self.grid();
        (0..self.cohorts)
            .map(|c| {
                let active: Vec<i64> = (0..self.periods)
                    .map(|k| {
                        rows.iter()
                            .filter(|(cohort, bucket, _)| *cohort == c && *bucket == c + k)
                            .map(|(_, _, n)| *n)
                            .sum()
                    })
                    .collect();
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
                    start: grid[c],
                    size,
                    active,
                    rates,
                }
            })
            .collect()
    }
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
        let cohorts = plan.build(&[]);
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
        let cohorts = plan.build(&[(0, 0, 4), (0, 2, 1)]);
        assert_eq!(cohorts.len(), 1);
        assert_eq!(
            (cohorts[0].size, cohorts[0].active.clone()),
            (4, vec![4, 0, 1])
        );
        assert_eq!(cohorts[0].rates, [100.0, 0.0, 25.0]);
        let empty = plan.build(&[]);
        assert!(empty[0].rates.is_empty());
    }
}

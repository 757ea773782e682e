//! Retention arithmetic: from customers' acquire and churn buckets to each period's counts,
//! and from counts to rates.
//!
//! Storage groups customers by the `width_bucket` of their acquire and churn times over the
//! boundaries `b_0 < ... < b_n` (index k means `b_(k-1) <= t < b_k`, 0 before `b_0`, n + 1
//! from `b_n` on). Then "t < b_j" is "k <= j", and every count of every period follows from
//! those indexes in one pass over the groups plus one over the buckets, however many
//! customers and periods there are.

/// Counts of one period `[s, e)`, computed by storage.
use super::report::{GroupReport, Point};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionCounts {
    /// Active at s: acquired before s, not churned before s.
    pub start: i64,
    /// Active at e.
    pub end: i64,
    /// Acquired in [s, e).
    pub new: i64,
    /// Of the start customers, not churned before e.
    pub retained: i64,
}

impl RetentionCounts {
    pub fn add(&mut self, other: &RetentionCounts) {
        self.start += other.start;
        self.end += other.end;
        self.new += other.new;
        self.retained += other.retained;
    }
}

/// Customers who share their acquire and churn buckets (and NPS category answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerSpan {
    /// `width_bucket` of the acquire time.
    pub acquired: i64,
    /// `width_bucket` of the churn time; None while not churned.
    pub churned: Option<i64>,
    /// The latest NPS score, when the query asked for it.
    pub latest: Option<i16>,
    pub customers: i64,
}

impl CustomerSpan {
    /// Active at `b_j`: acquired before it and not churned before it.
    fn active_at(&self, j: i64) -> bool {
        self.acquired <= j && self.churned.is_none_or(|c| c > j)
    }

    /// The counts of period `[b_s, b_e)` these customers contribute.
    pub fn counts(&self, s: i64, e: i64) -> RetentionCounts {
        let n = self.customers;
        let count = |yes: bool| if yes { n } else { 0 };
        RetentionCounts {
            start: count(self.active_at(s)),
            end: count(self.active_at(e)),
            new: count(self.acquired > s && self.acquired <= e),
            retained: count(self.active_at(s) && self.churned.is_none_or(|c| c > e)),
        }
    }
}

/// The counts of each bucket `[b_j, b_(j+1))`, j in 0..buckets, in O(spans + buckets):
/// each span adds to a range of buckets, recorded in difference arrays.
pub fn bucket_counts(spans: &[CustomerSpan], buckets: usize) -> Vec<RetentionCounts> {
    let n = buckets as i64;
    // Boundaries 0..=n where the span is active: [acquired, churned - 1].
    let mut active = vec![0i64; buckets + 2];
    // Buckets where the span is retained (active at b_j, not churned before b_(j+1)):
    // [acquired, churned - 2].
    let mut retained = vec![0i64; buckets + 1];
    let mut new = vec![0i64; buckets];
    let add = |diff: &mut [i64], from: i64, to: i64, last: i64, value: i64| {
        let (from, to) = (from.max(0), to.min(last));
        if from <= to {
            diff[from as usize] += value;
            diff[to as usize + 1] -= value;
        }
    };
    for span in spans {
        let churned = span.churned.unwrap_or(i64::MAX);
        add(
            &mut active,
            span.acquired,
            churned.saturating_sub(1),
            n,
            span.customers,
        );
        add(
            &mut retained,
            span.acquired,
            churned.saturating_sub(2),
            n - 1,
            span.customers,
        );
        if (1..=n).contains(&span.acquired) {
            new[span.acquired as usize - 1] += span.customers;
        }
    }
    let running = |diff: &[i64]| -> Vec<i64> {
        diff.iter()
            .scan(0, |sum, d| {
                *sum += d;
                Some(*sum)
            })
            .collect()
    };
    let (active, retained) = (running(&active), running(&retained));
    (0..buckets)
        .map(|j| RetentionCounts {
            start: active[j],
            end: active[j + 1],
            new: new[j],
            retained: retained[j],
        })
        .collect()
}

/// A retention report: the whole range, one point per bucket (with a granularity) and one
/// entry per NPS category (when asked for).
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionReport {
    pub total: RetentionStats,
    pub series: Vec<Point<RetentionStats>>,
    /// One group per NPS category, without a series of its own.
    pub groups: Vec<GroupReport<RetentionStats>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionStats {
    pub start_customers: i64,
    pub end_customers: i64,
    pub new_customers: i64,
    pub retained: i64,
    pub churned: i64,
    pub retention_rate: Option<f64>,
    pub churn_rate: Option<f64>,
}

impl From<RetentionCounts> for RetentionStats {
    fn from(c: RetentionCounts) -> Self {
        let retention_rate = (c.start > 0).then(|| 100.0 * c.retained as f64 / c.start as f64);
        Self {
            start_customers: c.start,
            end_customers: c.end,
            new_customers: c.new,
            retained: c.retained,
            churned: c.start - c.retained,
            retention_rate,
            churn_rate: retention_rate.map(|r| 100.0 - r),
        }
    }
}

/// The NPS category of a customer's latest answer, the key of a retention group.
pub fn nps_category(latest_score: Option<i16>) -> &'static str {
    match latest_score {
        None => "unknown",
        Some(9..) => "promoter",
        Some(7..=8) => "passive",
        Some(_) => "detractor",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_counts_equal_each_bucket_counted_alone() {
        let mut spans = Vec::new();
        for acquired in 0..=6 {
            for churned in (acquired..=7).map(Some).chain([None]) {
                spans.push(CustomerSpan {
                    acquired,
                    churned,
                    latest: None,
                    customers: acquired + 1,
                });
            }
        }
        let buckets = 5;
        let fast = bucket_counts(&spans, buckets);
        for (j, got) in fast.iter().enumerate() {
            let mut want = RetentionCounts::default();
            for span in &spans {
                want.add(&span.counts(j as i64, j as i64 + 1));
            }
            assert_eq!(*got, want, "bucket {j}");
        }
    }

    #[test]
    fn rates_are_absent_without_start_customers() {
        let s = RetentionStats::from(RetentionCounts {
            start: 0,
            end: 3,
            new: 3,
            retained: 0,
        });
        assert_eq!((s.retention_rate, s.churn_rate), (None, None));
        let s = RetentionStats::from(RetentionCounts {
            start: 4,
            end: 4,
            new: 1,
            retained: 3,
        });
        assert_eq!(
            (s.churned, s.retention_rate, s.churn_rate),
            (1, Some(75.0), Some(25.0))
        );
    }

    #[test]
    fn nps_categories_follow_the_score_edges() {
        let got: Vec<_> = [None, Some(6), Some(7), Some(8), Some(9)]
            .into_iter()
            .map(nps_category)
            .collect();
        assert_eq!(
            got,
            ["unknown", "detractor", "passive", "passive", "promoter"]
        );
    }
}

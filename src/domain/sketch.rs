//! The DDSketch of response times (Masson, Rim and Lee, "DDSketch: a fast and fully-mergeable
//! quantile sketch with relative-error guarantees", VLDB 2019).
//!
//! A duration of `x > 0` seconds falls in bucket `i = ceil(log_gamma(x))`, with
//! `gamma = (1 + a) / (1 - a)` and `a = 0.01`, so bucket `i` holds `(gamma^(i-1), gamma^i]`
//! and stands for `2 gamma^i / (gamma + 1)`, which is within `a` (relative) of every value in
//! it. Zero durations have a bucket of their own and stand for exactly 0. Sketches merge by
//! adding the counts per bucket, so the rollups keep one count per bucket and slot, and a
//! sketch of any range is the sum of its slots'.
//!
//! The bucket index is computed in PostgreSQL only (`response_time_bucket` in
//! migrations/20261201000002_interaction_rollups.sql): one function decides membership for
//! the rollups, the expression indexes and every query, so that "below the target's bucket"
//! means the same everywhere. `index` here is its twin for the unit tests.

use std::collections::BTreeMap;

/// The relative accuracy `a`.
pub const RELATIVE_ERROR: f64 = 0.01;

/// The bucket of zero durations: below every other bucket.
pub const ZERO_BUCKET: i16 = i16::MIN;

/// `gamma = (1 + a) / (1 - a)`.
pub fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// The bucket of a duration of `seconds`, as PostgreSQL's `response_time_bucket`.
pub fn index(seconds: f64) -> i16 {
    if seconds > 0.0 {
        (seconds.ln() / gamma().ln()).ceil() as i16
    } else {
        ZERO_BUCKET
    }
}

/// The value bucket `i` stands for: `2 gamma^i / (gamma + 1)`, or 0 for the zero bucket.
pub fn value(i: i16) -> f64 {
    if i == ZERO_BUCKET {
        0.0
    } else {
        2.0 * gamma().powi(i32::from(i)) / (gamma() + 1.0)
    }
}

/// Counts per bucket of a set of durations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    counts: BTreeMap<i16, i64>,
}

impl Sketch {
    /// Adds `n` durations to bucket `i` (`n` may be negative while rollup deltas are
    /// summed; a bucket whose count reaches 0 is dropped).
    pub fn add(&mut self, i: i16, n: i64) {
        let count = self.counts.entry(i).or_default();
        *count += n;
        if *count == 0 {
            self.counts.remove(&i);
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        for (&i, &n) in &other.counts {
            self.add(i, n);
        }
    }

    pub fn count(&self) -> i64 {
        self.counts.values().sum()
    }

    /// The bucket of the value of 0-based rank `rank` in sorted order.
    fn bucket_of_rank(&self, rank: i64) -> Option<i16> {
        let mut seen = 0;
        self.counts.iter().find_map(|(&i, &n)| {
            seen += n;
            (seen > rank).then_some(i)
        })
    }

    /// The `p` quantile the way `percentile_cont` interpolates (between the values of ranks
    /// floor and ceil of p x (n - 1)), each rank's value taken as its bucket's: a convex
    /// combination of two values each within `a` of the exact ones, so within `a` of
    /// `percentile_cont` itself. Clamped to the exact `[min, max]`, which only brings it
    /// closer.
    pub fn quantile(&self, p: f64, min: f64, max: f64) -> Option<f64> {
        let n = self.count();
        if n <= 0 {
            return None;
        }
        let position = p * (n - 1) as f64;
        let (lo, hi) = (position.floor(), position.ceil());
        let a = value(self.bucket_of_rank(lo as i64)?);
        let b = value(self.bucket_of_rank(hi as i64)?);
        Some((a + (b - a) * (position - lo)).clamp(min, max))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::response_times::percentile_cont;

    fn sketch_of(values: &[f64]) -> Sketch {
        let mut s = Sketch::default();
        for v in values {
            s.add(index(*v), 1);
        }
        s
    }

    #[test]
    fn a_bucket_stands_for_a_value_within_one_percent_of_its_bounds() {
        for i in [-600_i16, -1, 0, 1, 500, 1000] {
            let (low, high) = (gamma().powi(i32::from(i) - 1), gamma().powi(i32::from(i)));
            let v = value(i);
            assert!((v - low) / low <= RELATIVE_ERROR + 1e-12);
            assert!((high - v) / high <= RELATIVE_ERROR + 1e-12);
        }
    }

    #[test]
    fn zero_durations_have_their_own_bucket_and_value() {
        let s = sketch_of(&[0.0, 0.0, 0.0, 10.0]);
        assert_eq!(index(0.0), ZERO_BUCKET);
        assert_eq!(s.quantile(0.5, 0.0, 10.0), Some(0.0));
        assert_eq!(Sketch::default().quantile(0.5, 0.0, 0.0), None);
    }

    #[test]
    fn retracted_counts_leave_no_empty_buckets() {
        let mut s = sketch_of(&[5.0, 7.0]);
        s.add(index(5.0), -1);
        assert_eq!(s.count(), 1);
        assert_eq!(s, sketch_of(&[7.0]));
    }

    proptest! {
        #[test]
        fn every_quantile_is_within_one_percent_of_percentile_cont(
            mut values in prop::collection::vec(
                prop_oneof![Just(0.0), 1e-6..1e9f64, 1.0..1e5f64],
                1..300,
            ),
            p in prop::sample::select(vec![0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
        ) {
            values.sort_by(f64::total_cmp);
            let exact = percentile_cont(&values, p).unwrap();
            let (min, max) = (values[0], values[values.len() - 1]);
            let got = sketch_of(&values).quantile(p, min, max).unwrap();
            prop_assert!((got - exact).abs() <= RELATIVE_ERROR * exact * (1.0 + 1e-9),
                "p{p}: {got} vs {exact}");
        }
    }
}

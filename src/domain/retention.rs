//! Retention arithmetic: from the counts of one period to rates.

/// Counts of one period `[s, e)`, computed by storage.
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

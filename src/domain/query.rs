//! A validated metric query: time range, zone, buckets, filter, grouping and comparison.

use std::collections::BTreeMap;

use chrono::{DateTime, Months, Utc};
use chrono_tz::Tz;

use super::buckets::{self, Granularity};

/// A half-open range `[start, end)` with `start < end`, at most ten years long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TimeRange {
    pub const MAX_YEARS: u32 = 10;

    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        if start >= end {
            return Err("end_time must be after start_time".into());
        }
        let limit = start.checked_add_months(Months::new(12 * Self::MAX_YEARS));
        if limit.is_none_or(|limit| end > limit) {
            return Err(format!("must span at most {} years", Self::MAX_YEARS));
        }
        Ok(Self { start, end })
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Self {
        Self {
            start: self.start - (self.end - self.start),
            end: self.start,
        }
    }
}

/// Which records count: every non-empty field must match (AND); within a list, any value
/// (OR); every attribute entry must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub survey_ids: Vec<String>,
    pub channels: Vec<String>,
    pub agent_ids: Vec<String>,
    pub team_ids: Vec<String>,
    pub attributes: BTreeMap<String, String>,
}

impl Filter {
    /// Whether the filter needs the interaction linked to a survey response.
    pub fn uses_interaction(&self) -> bool {
        !self.agent_ids.is_empty() || !self.team_ids.is_empty()
    }
}

/// What a report is grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    Survey,
    Channel,
    Agent,
    Team,
    Attribute(String),
}

impl GroupBy {
    pub fn uses_interaction(&self) -> bool {
        matches!(self, GroupBy::Agent | GroupBy::Team)
    }
}

/// Everything a metric report needs to know about what to compute.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub range: TimeRange,
    pub time_zone: Tz,
    pub granularity: Option<Granularity>,
    pub filter: Filter,
    pub group_by: Option<GroupBy>,
    pub compare_previous: bool,
}

impl MetricQuery {
    /// The bucket boundaries of the series (`[start, end]` without a granularity).
    pub fn boundaries(&self) -> Vec<DateTime<Utc>> {
        buckets::boundaries(
            self.range.start(),
            self.range.end(),
            self.time_zone,
            self.granularity,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn an_empty_or_reversed_range_is_rejected() {
        let t = utc("2026-01-01T00:00:00Z");
        assert!(TimeRange::new(t, t).is_err());
        assert!(TimeRange::new(t, t - chrono::Duration::seconds(1)).is_err());
    }

    #[test]
    fn ten_years_is_the_longest_range() {
        let t = utc("2016-01-01T00:00:00Z");
        assert!(TimeRange::new(t, utc("2026-01-01T00:00:00Z")).is_ok());
        assert!(TimeRange::new(t, utc("2026-01-01T00:00:01Z")).is_err());
    }

    #[test]
    fn the_previous_period_has_the_same_length_and_ends_at_the_start() {
        let r = TimeRange::new(utc("2026-03-01T00:00:00Z"), utc("2026-03-11T00:00:00Z")).unwrap();
        let p = r.previous();
        assert_eq!(
            (p.start(), p.end()),
            (utc("2026-02-19T00:00:00Z"), r.start())
        );
    }
}

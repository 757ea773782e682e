//! A validated metric query: time range, zone, buckets, filter, grouping and comparison.

use std::collections::BTreeMap;

use chrono::{DateTime, Months, TimeZone, Utc};
use chrono_tz::Tz;

use super::{
    buckets::{self, Granularity},
    response_times::SlaTargets,
};

/// A half-open range `[start, end)` with `start < end`, at most ten years long, inside the
/// years 1900..2200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// The first and last year a time range may touch.
pub const FIRST_YEAR: i32 = 1900;
pub const LAST_YEAR: i32 = 2200;

impl TimeRange {
    pub const MAX_YEARS: u32 = 10;

    /// `FIRST_YEAR-01-01T00:00:00Z`: the earliest instant a range may start at.
    pub fn earliest() -> DateTime<Utc> {
        year_start(FIRST_YEAR)
    }

    /// `(LAST_YEAR + 1)-01-01T00:00:00Z`: the latest instant a range may end at.
    pub fn latest() -> DateTime<Utc> {
        year_start(LAST_YEAR + 1)
    }

    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        if start < Self::earliest() || end > Self::latest() {
            return Err(format!(
                "must lie within the years {FIRST_YEAR} to {LAST_YEAR} \
                 ({} to {})",
                Self::earliest().to_rfc3339(),
                Self::latest().to_rfc3339()
            ));
        }
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

    /// The period of the same length just before this one. It may begin before
    /// `FIRST_YEAR`, by ten years at most, which chrono represents with room to spare, so
    /// the subtraction cannot overflow.
    pub fn previous(&self) -> Self {
        Self {
            start: self.start - (self.end - self.start),
            end: self.start,
        }
    }
}

fn year_start(year: i32) -> DateTime<Utc> {
    // January 1st 00:00 UTC exists in every year chrono can represent, these among them.
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The most values one filter list (`survey_ids`, `channels`, ...) may hold.
pub const MAX_FILTER_VALUES: usize = 1_000;
/// The most groups one report may have.
pub const MAX_GROUPS: usize = 1_000;
/// The most cells (buckets x groups, or cohorts x periods) one report may have.
pub const MAX_CELLS: usize = 20_000;

/// How many groups a grouped report over `buckets` buckets may have: `MAX_GROUPS`, or
/// fewer so that buckets x groups stays within `MAX_CELLS`.
pub fn group_limit(buckets: usize) -> usize {
    (MAX_CELLS / buckets.max(1)).clamp(1, MAX_GROUPS)
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

/// A parsed `ResponseTimeRequest`.
#[derive(Debug)]
pub struct ResponseTimeQuery {
    pub query: MetricQuery,
    pub targets: SlaTargets,
    pub calendar_id: Option<String>,
    /// Exact percentiles even where the rollups' sketch would serve.
    pub exact: bool,
}

impl ResponseTimeQuery {
    /// Whether the rollups answer this query: they hold channel, agent and team at UTC
    /// grains with a sketch of the wall-clock durations, so attribute filters or groups, a
    /// business-hours calendar and exact percentiles need the raw rows.
    pub fn reads_rollups(&self) -> bool {
        !self.exact
            && self.calendar_id.is_none()
            && self.query.filter.attributes.is_empty()
            && !matches!(self.query.group_by, Some(GroupBy::Attribute(_)))
    }
}

/// A parsed retention request: the range, zone, optional buckets and NPS grouping.
#[derive(Debug)]
pub struct RetentionQuery {
    pub range: TimeRange,
    pub time_zone: Tz,
    pub granularity: Option<Granularity>,
    pub by_nps_category: bool,
}

/// A parsed cohort request.
#[derive(Debug)]
pub struct CohortQuery {
    pub range: TimeRange,
    pub time_zone: Tz,
    pub granularity: Granularity,
    pub periods: usize,
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
    fn ranges_must_lie_within_1900_and_2200() {
        assert!(TimeRange::new(utc("1900-01-01T00:00:00Z"), utc("1900-02-01T00:00:00Z")).is_ok());
        assert!(TimeRange::new(utc("1899-12-31T23:59:59Z"), utc("1900-02-01T00:00:00Z")).is_err());
        assert!(TimeRange::new(utc("2200-12-01T00:00:00Z"), utc("2201-01-01T00:00:00Z")).is_ok());
        assert!(TimeRange::new(utc("2200-12-01T00:00:00Z"), utc("2201-01-01T00:00:01Z")).is_err());
        let extreme = TimeRange::new(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        assert!(extreme.unwrap_err().contains("1900 to 2200"));
        // The previous period of the earliest range is representable.
        let first = TimeRange::new(TimeRange::earliest(), utc("1910-01-01T00:00:00Z")).unwrap();
        assert_eq!(first.previous().end(), TimeRange::earliest());
    }

    #[test]
    fn the_group_limit_keeps_buckets_times_groups_within_the_cap() {
        assert_eq!(group_limit(1), MAX_GROUPS);
        assert_eq!(group_limit(3_654), MAX_CELLS / 3_654);
        assert_eq!(group_limit(MAX_CELLS * 2), 1);
        assert_eq!(group_limit(0), MAX_GROUPS);
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

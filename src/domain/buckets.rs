//! Bucket boundaries of a time range in a time zone: local midnights, ISO weeks (Monday),
//! months, quarters and years, computed with the tz database so that DST days are 23 or 25
//! hours long and zones with :30 and :45 offsets cut at their own midnight.

use chrono::{DateTime, Datelike, Days, Duration, LocalResult, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The size of the buckets of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Granularity {
    /// The first local date of the bucket that holds `date`.
    pub fn truncate(self, date: NaiveDate) -> NaiveDate {
        let first_of_month =
            |month: u32| NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date);
        match self {
            Granularity::Day => date,
            Granularity::Week => date - Days::new(u64::from(date.weekday().num_days_from_monday())),
            Granularity::Month => first_of_month(date.month()),
            Granularity::Quarter => first_of_month((date.month0() / 3) * 3 + 1),
            Granularity::Year => first_of_month(1),
        }
    }

    /// The first local date of the bucket after the one starting at `start`; None past the
    /// end of the calendar chrono can represent.
    pub fn next(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Granularity::Day => start.checked_add_days(Days::new(1)),
            Granularity::Week => start.checked_add_days(Days::new(7)),
            Granularity::Month => start.checked_add_months(Months::new(1)),
            Granularity::Quarter => start.checked_add_months(Months::new(3)),
            Granularity::Year => start.checked_add_months(Months::new(12)),
        }
    }
}

/// The most buckets a series may have: a ten-year range (the longest `TimeRange`) has at
/// most 3,654 local days, plus the previous period's bucket. Every loop over buckets stops
/// here at the latest, whatever the dates.
pub const MAX_BUCKETS: usize = 4_000;

/// The local dates `first`, `g.next(first)`, ... while they begin before `end` in `tz`, at
/// most `MAX_BUCKETS` of them. Terminates: each step moves strictly forward or stops.
pub fn bucket_starts(
    tz: Tz,
    first: NaiveDate,
    end: DateTime<Utc>,
    g: Granularity,
) -> impl Iterator<Item = (NaiveDate, DateTime<Utc>)> {
    std::iter::successors(Some(first), move |date| {
        g.next(*date).filter(|next| next > date)
    })
    .take(MAX_BUCKETS)
    .map(move |date| (date, start_of_day(tz, date)))
    .take_while(move |(_, t)| *t < end)
}

/// The instant a local date begins in `tz`: local midnight, or the first instant after it
/// when a DST gap swallows midnight (e.g. America/Santiago), or the earlier of two midnights.
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        LocalResult::None => {
            // Gaps are whole minutes and shorter than a day: the day starts at the first
            // local minute that exists.
            (1..=24 * 60)
                .map(|m| midnight + Duration::minutes(m))
                .find_map(|local| tz.from_local_datetime(&local).earliest())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
        }
    }
}

/// The boundaries `[start, b1, ..., end]` of the buckets that overlap `[start, end)`: the
/// first bucket is cut to start at `start`, the last to end at `end`. Without a granularity
/// the whole range is one bucket.
pub fn boundaries(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    tz: Tz,
    granularity: Option<Granularity>,
) -> Vec<DateTime<Utc>> {
    let mut bounds = vec![start];
    if let Some(g) = granularity {
        let first = g.next(g.truncate(start.with_timezone(&tz).date_naive()));
        // The next bucket of the start's bucket begins after `start`.
        bounds.extend(
            first
                .into_iter()
                .flat_map(|first| bucket_starts(tz, first, end, g))
                .map(|(_, t)| t),
        );
    }
    bounds.push(end);
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn hours_between(bounds: &[DateTime<Utc>]) -> Vec<i64> {
        bounds
            .windows(2)
            .map(|w| (w[1] - w[0]).num_hours())
            .collect()
    }

    #[test]
    fn new_york_spring_forward_day_has_23_hours_and_fall_back_25() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let b = boundaries(
            utc("2026-03-07T05:00:00Z"),
            utc("2026-03-10T04:00:00Z"),
            tz,
            Some(Granularity::Day),
        );
        assert_eq!(hours_between(&b), [24, 23, 24]);
        let b = boundaries(
            utc("2026-10-31T04:00:00Z"),
            utc("2026-11-03T05:00:00Z"),
            tz,
            Some(Granularity::Day),
        );
        assert_eq!(hours_between(&b), [24, 25, 24]);
    }

    #[test]
    fn kathmandu_days_start_at_its_own_midnight() {
        let tz: Tz = "Asia/Kathmandu".parse().unwrap();
        let b = boundaries(
            utc("2026-01-01T00:00:00Z"),
            utc("2026-01-03T00:00:00Z"),
            tz,
            Some(Granularity::Day),
        );
        // Local midnight is 18:15 UTC the day before; the range is cut at both ends.
        assert_eq!(
            b,
            [
                utc("2026-01-01T00:00:00Z"),
                utc("2026-01-01T18:15:00Z"),
                utc("2026-01-02T18:15:00Z"),
                utc("2026-01-03T00:00:00Z")
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_quarters_on_their_first_month() {
        let b = boundaries(
            utc("2026-01-01T00:00:00Z"),
            utc("2026-01-20T00:00:00Z"),
            Tz::UTC,
            Some(Granularity::Week),
        );
        assert_eq!(
            b,
            [
                utc("2026-01-01T00:00:00Z"),
                utc("2026-01-05T00:00:00Z"),
                utc("2026-01-12T00:00:00Z"),
                utc("2026-01-19T00:00:00Z"),
                utc("2026-01-20T00:00:00Z")
            ]
        );
        let b = boundaries(
            utc("2026-02-10T00:00:00Z"),
            utc("2026-12-01T00:00:00Z"),
            Tz::UTC,
            Some(Granularity::Quarter),
        );
        assert_eq!(
            b,
            [
                utc("2026-02-10T00:00:00Z"),
                utc("2026-04-01T00:00:00Z"),
                utc("2026-07-01T00:00:00Z"),
                utc("2026-10-01T00:00:00Z"),
                utc("2026-12-01T00:00:00Z")
            ]
        );
    }

    #[test]
    fn an_aligned_range_is_not_cut() {
        let b = boundaries(
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
            Tz::UTC,
            Some(Granularity::Month),
        );
        assert_eq!(b.len(), 13);
        let b = boundaries(
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
            Tz::UTC,
            Some(Granularity::Year),
        );
        assert_eq!(
            b,
            [utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z")]
        );
        let b = boundaries(
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
            Tz::UTC,
            None,
        );
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn buckets_at_the_end_of_the_representable_calendar_stop() {
        let end = DateTime::<Utc>::MAX_UTC;
        let start = end - Duration::days(3650);
        let b = boundaries(start, end, Tz::UTC, Some(Granularity::Day));
        assert!(b.len() <= MAX_BUCKETS + 2, "{}", b.len());
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(b.last(), Some(&end));
    }

    #[test]
    fn a_day_whose_midnight_falls_in_a_dst_gap_starts_at_one() {
        // Santiago springs forward at 24:00 on 2026-09-05: 2026-09-06 begins at 01:00 local.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let start = start_of_day(tz, NaiveDate::from_ymd_opt(2026, 9, 6).unwrap());
        assert_eq!(start, utc("2026-09-06T04:00:00Z"));
    }
}

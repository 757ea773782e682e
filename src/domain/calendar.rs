//! Business-hours calendars: weekly open intervals in a time zone, minus whole-day holidays,
//! and the clock that measures durations in open time only.
//!
//! An instant is open when its local wall-clock time (in the calendar's zone) falls inside
//! one of the intervals of its local weekday and its local date is not a holiday. On DST
//! days this is exact: an interval across the spring-forward gap is an hour shorter, one
//! across the repeated autumn hour an hour longer.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

pub const MINUTES_PER_DAY: u16 = 24 * 60;

/// One open interval of a weekday, in local minutes since midnight: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BusinessHours {
    /// 1 = Monday .. 7 = Sunday.
    day_of_week: u8,
    start: u16,
    /// After `start`, at most 1440 (midnight at the end of the day).
    end: u16,
}

impl BusinessHours {
    /// `[start, end)` on `day_of_week` (1 = Monday .. 7 = Sunday); None unless
    /// `start < end <= 1440`.
    pub fn new(day_of_week: u8, start: u16, end: u16) -> Option<Self> {
        ((1..=7).contains(&day_of_week) && start < end && end <= MINUTES_PER_DAY).then_some(Self {
            day_of_week,
            start,
            end,
        })
    }

    pub fn day_of_week(&self) -> u8 {
        self.day_of_week
    }

    pub fn start(&self) -> u16 {
        self.start
    }

    pub fn end(&self) -> u16 {
        self.end
    }

    pub fn overlaps(&self, other: &Self) -> bool {
        self.day_of_week == other.day_of_week && self.start < other.end && other.start < self.end
    }
}

/// Weekly hours in a zone, minus holidays. Its intervals never overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    calendar_id: String,
    time_zone: Tz,
    /// Sorted by day, then start; no two overlap.
    weekly_hours: Vec<BusinessHours>,
    holidays: BTreeSet<NaiveDate>,
}

/// Two intervals of a calendar that overlap: the index of the later one in the list given,
/// and of the earlier one it overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    pub later: usize,
    pub earlier: usize,
}

/// Intervals taken one at a time, each refused when it overlaps one taken before it.
#[derive(Debug, Default)]
pub struct IntervalSet {
    kept: Vec<(usize, BusinessHours)>,
}

impl IntervalSet {
    /// Takes interval number `position`, or returns the position of the kept interval it
    /// overlaps.
    pub fn admit(&mut self, position: usize, hours: BusinessHours) -> Result<(), usize> {
        match self.kept.iter().find(|(_, h)| h.overlaps(&hours)) {
            Some((earlier, _)) => Err(*earlier),
            None => {
                self.kept.push((position, hours));
                Ok(())
            }
        }
    }
}

/// The intervals that overlap an earlier one: each is compared with the earlier intervals
/// that overlap nothing themselves, and reported with the first of those it overlaps.
pub fn find_overlaps(weekly_hours: &[BusinessHours]) -> Vec<Overlap> {
    let mut set = IntervalSet::default();
    weekly_hours
        .iter()
        .enumerate()
        .filter_map(|(later, hours)| {
            set.admit(later, *hours)
                .err()
                .map(|earlier| Overlap { later, earlier })
        })
        .collect()
}

impl Calendar {
    /// A calendar of `weekly_hours` in any order; the overlaps when any two overlap (each
    /// interval is compared with the earlier ones that overlap nothing themselves).
    pub fn new(
        calendar_id: String,
        time_zone: Tz,
        weekly_hours: Vec<BusinessHours>,
        holidays: BTreeSet<NaiveDate>,
    ) -> Result<Self, Vec<Overlap>> {
        let overlaps = find_overlaps(&weekly_hours);
        if !overlaps.is_empty() {
            return Err(overlaps);
        }
        let mut weekly_hours = weekly_hours;
        weekly_hours.sort();
        Ok(Self {
            calendar_id,
            time_zone,
            weekly_hours,
            holidays,
        })
    }

    pub fn calendar_id(&self) -> &str {
        &self.calendar_id
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// Sorted by day, then start.
    pub fn weekly_hours(&self) -> &[BusinessHours] {
        &self.weekly_hours
    }

    pub fn holidays(&self) -> &BTreeSet<NaiveDate> {
        &self.holidays
    }

    /// The open time between `from` and `to`, ready to measure durations inside that span.
    /// Instants outside the span count as closed.
    pub fn clock(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> BusinessClock {
        let (from, to) = (nanos(from), nanos(to.max(from)));
        let offsets = OffsetSegments::new(self.time_zone, from, to);
        let first = self.local_date(from).pred_opt().unwrap_or(NaiveDate::MIN);
        let last = self.local_date(to).succ_opt().unwrap_or(NaiveDate::MAX);
        let mut open = Vec::new();
        for date in first.iter_days().take_while(|d| *d <= last) {
            if self.holidays.contains(&date) {
                continue;
            }
            let weekday = date.weekday().number_from_monday() as u8;
            let midnight = local_nanos(date);
            for hours in self
                .weekly_hours
                .iter()
                .filter(|h| h.day_of_week == weekday)
            {
                let start = midnight + i64::from(hours.start) * NANOS_PER_MINUTE;
                let end = midnight + i64::from(hours.end) * NANOS_PER_MINUTE;
                offsets.to_utc(start, end, |s, e| {
                    let (s, e) = (s.max(from), e.min(to));
                    if s < e {
                        open.push((s, e));
                    }
                });
            }
        }
        BusinessClock::new(open)
    }

    fn local_date(&self, t: i64) -> NaiveDate {
        DateTime::from_timestamp_nanos(t)
            .with_timezone(&self.time_zone)
            .date_naive()
    }
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_DAY: i64 = 24 * 60 * NANOS_PER_MINUTE;

/// Nanoseconds since the epoch; saturates far outside the years records may carry.
fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// A local midnight as if it were UTC, in nanoseconds (local wall-clock time arithmetic).
fn local_nanos(date: NaiveDate) -> i64 {
    date.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX)
}

/// The zone's UTC offsets over a span: segment `i` starts at `starts[i]` (the first one
/// reaches back without limit, the last one forward) and has `offsets[i]` (local - UTC).
struct OffsetSegments {
    starts: Vec<i64>,
    offsets: Vec<i64>,
}

impl OffsetSegments {
    /// Scans the span (with two days of margin) a day at a time and finds each transition
    /// to the second by bisection. Zones change offset at most once within a day.
    fn new(zone: Tz, from: i64, to: i64) -> Self {
        let offset = |t: i64| {
            let utc = DateTime::from_timestamp_nanos(t).naive_utc();
            i64::from(zone.offset_from_utc_datetime(&utc).fix().local_minus_utc())
                * NANOS_PER_SECOND
        };
        let begin = from.saturating_sub(2 * NANOS_PER_DAY);
        let end = to.saturating_add(2 * NANOS_PER_DAY);
        let mut segments = Self {
            starts: vec![i64::MIN],
            offsets: vec![offset(begin)],
        };
        let mut t = begin;
        while t < end {
            let next = t.saturating_add(NANOS_PER_DAY).min(end);
            let (before, after) = (offset(t), offset(next));
            if before != after {
                let (mut lo, mut hi) = (t, next);
                while hi - lo > NANOS_PER_SECOND {
                    let mid = lo + (hi - lo) / 2;
                    if offset(mid) == before {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                // The transition lies in (lo, hi], within a second, and on a whole second.
                segments.starts.push(hi - hi.rem_euclid(NANOS_PER_SECOND));
                segments.offsets.push(after);
            }
            t = next;
        }
        segments
    }

    /// Calls `emit(start, end)` with the UTC pieces of the instants whose local time lies in
    /// `[local_start, local_end)`: one piece, none inside a gap, two around a repeated hour.
    fn to_utc(&self, local_start: i64, local_end: i64, mut emit: impl FnMut(i64, i64)) {
        // Offsets stay within a day of UTC, so only segments near the local span matter.
        let first = self
            .starts
            .partition_point(|s| *s <= local_start.saturating_sub(2 * NANOS_PER_DAY))
            .saturating_sub(1);
        for i in first..self.starts.len() {
            let seg_start = self.starts[i];
            if seg_start > local_end.saturating_add(2 * NANOS_PER_DAY) {
                break;
            }
            let seg_end = self.starts.get(i + 1).copied().unwrap_or(i64::MAX);
            let offset = self.offsets[i];
            let start = (local_start - offset).max(seg_start);
            let end = (local_end - offset).min(seg_end);
            if start < end {
                emit(start, end);
            }
        }
    }
}

/// `BusinessClock::columns`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClockColumns {
    pub starts: Vec<DateTime<Utc>>,
    pub ends: Vec<DateTime<Utc>>,
    pub open_micros_before: Vec<i64>,
}

/// Open time as sorted disjoint UTC intervals with the open time before each, so that the
/// open time between two instants takes two binary searches.
#[derive(Debug, Clone)]
pub struct BusinessClock {
    intervals: Vec<(i64, i64)>,
    open_before: Vec<i64>,
}

impl BusinessClock {
    fn new(mut intervals: Vec<(i64, i64)>) -> Self {
        intervals.sort_unstable();
        let mut open_before = Vec::with_capacity(intervals.len());
        let mut total = 0i64;
        for (start, end) in &intervals {
            open_before.push(total);
            total += end - start;
        }
        Self {
            intervals,
            open_before,
        }
    }

    /// Open nanoseconds before `t` (within the clock's span).
    fn open_until(&self, t: i64) -> i64 {
        let i = self.intervals.partition_point(|(start, _)| *start <= t);
        match i.checked_sub(1) {
            None => 0,
            Some(i) => {
                let (start, end) = self.intervals[i];
                self.open_before[i] + t.min(end) - start
            }
        }
    }

    /// The open intervals as parallel columns for PostgreSQL, which looks an instant up
    /// with `width_bucket` over `starts`: open time before `t` is `open_micros_before[k] +
    /// (min(t, ends[k]) - starts[k])` for the last start `k` at or before `t`, as
    /// `open_until` computes it here. Exact when the clock's span is on whole microseconds
    /// (as every interval edge inside it then is).
    pub fn columns(&self) -> ClockColumns {
        ClockColumns {
            starts: self
                .intervals
                .iter()
                .map(|(s, _)| DateTime::from_timestamp_nanos(*s))
                .collect(),
            ends: self
                .intervals
                .iter()
                .map(|(_, e)| DateTime::from_timestamp_nanos(*e))
                .collect(),
            open_micros_before: self.open_before.iter().map(|n| n / 1_000).collect(),
        }
    }

    /// Open seconds from `a` to `b` (negative when `b` is before `a`). A start outside
    /// hours counts from the next opening.
    pub fn seconds_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
        let open = self.open_until(nanos(b)) - self.open_until(nanos(a));
        open as f64 / NANOS_PER_SECOND as f64
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Days, Duration, NaiveDateTime, Timelike};
    use proptest::prelude::*;

    use super::*;

    fn hours(day: u8, start: &str, end: &str) -> BusinessHours {
        let minutes = |s: &str| {
            let (h, m) = s.split_once(':').unwrap();
            h.parse::<u16>().unwrap() * 60 + m.parse::<u16>().unwrap()
        };
        BusinessHours {
            day_of_week: day,
            start: minutes(start),
            end: minutes(end),
        }
    }

    fn calendar(zone: Tz, weekly_hours: Vec<BusinessHours>, holidays: &[&str]) -> Calendar {
        Calendar {
            calendar_id: "c".into(),
            time_zone: zone,
            weekly_hours,
            holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    fn weekdays_9_to_18(zone: Tz) -> Calendar {
        calendar(
            zone,
            (1..=5).map(|d| hours(d, "09:00", "18:00")).collect(),
            &[],
        )
    }

    fn at(zone: Tz, local: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
        zone.from_local_datetime(&naive)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn between(calendar: &Calendar, a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
        calendar
            .clock(a - Duration::days(3), b + Duration::days(3))
            .seconds_between(a, b)
    }

    /// The reference: whether one instant is open, straight from the definition.
    fn is_open(calendar: &Calendar, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&calendar.time_zone);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let day = local.weekday().number_from_monday() as u8;
        !calendar.holidays.contains(&local.date_naive())
            && calendar
                .weekly_hours
                .iter()
                .any(|h| h.day_of_week == day && h.start <= minute && minute < h.end)
    }

    /// Open seconds between two whole minutes, walking minute by minute.
    fn walk(calendar: &Calendar, a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
        let mut t = a;
        let mut open = 0.0;
        while t < b {
            if is_open(calendar, t) {
                open += 60.0;
            }
            t += Duration::minutes(1);
        }
        open
    }

    #[test]
    fn a_calendar_refuses_overlapping_intervals_and_sorts_the_rest() {
        let h = |day, start, end| BusinessHours::new(day, start, end).unwrap();
        let overlaps = Calendar::new(
            "c".into(),
            Tz::UTC,
            vec![
                h(1, 540, 720),
                h(1, 700, 800),
                h(1, 790, 900),
                h(2, 0, 1440),
            ],
            BTreeSet::new(),
        )
        .unwrap_err();
        // The third overlaps only the rejected second, so only the second is reported.
        assert_eq!(
            overlaps,
            [Overlap {
                later: 1,
                earlier: 0
            }]
        );
        let c = Calendar::new(
            "c".into(),
            Tz::UTC,
            vec![h(2, 60, 120), h(1, 600, 660), h(1, 0, 60)],
            BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(
            c.weekly_hours(),
            [h(1, 0, 60), h(1, 600, 660), h(2, 60, 120)]
        );
        assert!(BusinessHours::new(0, 0, 60).is_none());
        assert!(BusinessHours::new(8, 0, 60).is_none());
        assert!(BusinessHours::new(1, 60, 60).is_none());
        assert!(BusinessHours::new(1, 0, 1441).is_none());
    }

    #[test]
    fn friday_evening_to_monday_morning_is_ten_business_minutes() {
        let zone = Tz::Europe__Berlin;
        let c = weekdays_9_to_18(zone);
        let friday = at(zone, "2026-11-20 17:55");
        let monday = at(zone, "2026-11-23 09:05");
        assert_eq!(between(&c, friday, monday), 600.0);
    }

    #[test]
    fn a_holiday_is_closed_all_day() {
        let zone = Tz::Europe__Berlin;
        let mut c = weekdays_9_to_18(zone);
        let (a, b) = (at(zone, "2026-12-24 08:00"), at(zone, "2026-12-28 10:00"));
        // Thursday 9 h, Friday 9 h, Monday 1 h.
        assert_eq!(between(&c, a, b), 19.0 * 3600.0);
        c.holidays.insert("2026-12-25".parse().unwrap());
        assert_eq!(between(&c, a, b), 10.0 * 3600.0);
    }

    #[test]
    fn a_lunch_break_is_closed() {
        let zone = Tz::America__New_York;
        let c = calendar(
            zone,
            vec![hours(3, "09:00", "12:00"), hours(3, "13:00", "17:30")],
            &[],
        );
        let (a, b) = (at(zone, "2026-11-18 11:30"), at(zone, "2026-11-18 13:15"));
        assert_eq!(between(&c, a, b), 45.0 * 60.0);
    }

    #[test]
    fn a_request_outside_hours_counts_from_the_next_opening() {
        let zone = Tz::UTC;
        let c = weekdays_9_to_18(zone);
        let (a, b) = (at(zone, "2026-11-17 06:00"), at(zone, "2026-11-17 09:30"));
        assert_eq!(between(&c, a, b), 1800.0);
        let (a, b) = (at(zone, "2026-11-17 19:00"), at(zone, "2026-11-17 23:00"));
        assert_eq!(between(&c, a, b), 0.0);
    }

    #[test]
    fn dst_nights_lose_and_gain_an_hour_of_round_the_clock_service() {
        let zone = Tz::Europe__Berlin;
        let always = calendar(
            zone,
            (1..=7).map(|d| hours(d, "00:00", "24:00")).collect(),
            &[],
        );
        // 2026-03-29 has 23 hours in Berlin, 2026-10-25 has 25.
        let spring = between(
            &always,
            at(zone, "2026-03-29 00:00"),
            at(zone, "2026-03-30 00:00"),
        );
        assert_eq!(spring, 23.0 * 3600.0);
        let autumn = between(
            &always,
            at(zone, "2026-10-25 00:00"),
            at(zone, "2026-10-26 00:00"),
        );
        assert_eq!(autumn, 25.0 * 3600.0);
        // Night hours 01:00-04:00 across the gap are two real hours.
        let night = calendar(zone, vec![hours(7, "01:00", "04:00")], &[]);
        let (a, b) = (at(zone, "2026-03-28 12:00"), at(zone, "2026-03-30 12:00"));
        assert_eq!(between(&night, a, b), 2.0 * 3600.0);
        assert_eq!(walk(&night, a, b), 2.0 * 3600.0);
        // ... and four around the repeated hour.
        let (a, b) = (at(zone, "2026-10-24 12:00"), at(zone, "2026-10-26 12:00"));
        assert_eq!(between(&night, a, b), 4.0 * 3600.0);
        assert_eq!(walk(&night, a, b), 4.0 * 3600.0);
    }

    #[test]
    fn durations_keep_sub_second_precision() {
        let zone = Tz::UTC;
        let c = weekdays_9_to_18(zone);
        let a = at(zone, "2026-11-17 10:00") + Duration::milliseconds(250);
        let b = at(zone, "2026-11-17 10:00") + Duration::milliseconds(1750);
        assert_eq!(between(&c, a, b), 1.5);
        assert_eq!(between(&c, b, a), -1.5);
    }

    #[test]
    fn the_columns_hold_the_intervals_in_order_with_the_open_time_before_each() {
        let zone = Tz::UTC;
        let c = weekdays_9_to_18(zone);
        let clock = c.clock(at(zone, "2026-11-16 00:00"), at(zone, "2026-11-19 00:00"));
        let columns = clock.columns();
        assert_eq!(columns.starts.len(), 3);
        assert_eq!(columns.starts[1], at(zone, "2026-11-17 09:00"));
        assert_eq!(columns.ends[1], at(zone, "2026-11-17 18:00"));
        assert_eq!(
            columns.open_micros_before,
            [0, 9 * 3_600_000_000, 18 * 3_600_000_000]
        );
    }

    #[test]
    fn instants_outside_the_span_count_as_closed() {
        let zone = Tz::UTC;
        let c = weekdays_9_to_18(zone);
        let clock = c.clock(at(zone, "2026-11-17 10:00"), at(zone, "2026-11-17 11:00"));
        let (a, b) = (at(zone, "2026-11-17 09:00"), at(zone, "2026-11-17 12:00"));
        assert_eq!(clock.seconds_between(a, b), 3600.0);
    }

    const ZONES: &[Tz] = &[
        Tz::UTC,
        Tz::Europe__Berlin,
        Tz::America__New_York,
        Tz::Australia__Lord_Howe,
        Tz::Asia__Kathmandu,
        Tz::America__Santiago,
    ];

    fn arb_hours() -> impl Strategy<Value = Vec<BusinessHours>> {
        // Up to three intervals per day on a quarter-hour grid, cut into disjoint pieces.
        prop::collection::vec((1u8..=7, 0u16..=96, 0u16..=96), 1..12).prop_map(|raw| {
            let mut out: Vec<BusinessHours> = Vec::new();
            for (day, a, b) in raw {
                let (start, end) = (a.min(b) * 15, a.max(b) * 15);
                let h = BusinessHours {
                    day_of_week: day,
                    start,
                    end,
                };
                if start < end && !out.iter().any(|o| o.overlaps(&h)) {
                    out.push(h);
                }
            }
            out.sort();
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn business_seconds_match_a_minute_walk(
            zone in prop::sample::select(ZONES),
            weekly_hours in arb_hours(),
            // Around the 2026 DST changes of both hemispheres.
            base in prop::sample::select(vec!["2026-03-27 00:00", "2026-04-03 00:00", "2026-10-23 00:00", "2026-11-13 00:00"]),
            start_minute in 0i64..4 * 1440,
            length_minutes in 0i64..4 * 1440,
            holiday_offset in prop::option::of(0u64..6),
        ) {
            let base = NaiveDateTime::parse_from_str(base, "%Y-%m-%d %H:%M").unwrap().and_utc();
            let holidays: BTreeSet<NaiveDate> = holiday_offset
                .map(|d| base.date_naive() + Days::new(d))
                .into_iter()
                .collect();
            let c = Calendar { calendar_id: "c".into(), time_zone: zone, weekly_hours, holidays };
            let a = base + Duration::minutes(start_minute);
            let b = a + Duration::minutes(length_minutes);
            prop_assert_eq!(between(&c, a, b), walk(&c, a, b));
        }
    }
}

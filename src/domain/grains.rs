//! How buckets with arbitrary boundaries are read from rollups kept at fixed UTC grains.
//!
//! Rollups count records per UTC quarter-hour, hour and day. Every zone offset in use since
//! the 1970s is a whole number of quarter-hours, so a local bucket (a day, month, ... in any
//! IANA zone, DST included) is whole UTC days in its middle, whole hours and quarter-hours at
//! its two edges, and nothing else. A boundary that is not on a quarter-hour (a range that
//! starts at 10:07, or an offset with seconds) leaves a sliver at each edge that no grain
//! covers: those slivers are read from the raw records.
//!
//! `cover` takes the largest grain that fits at every step, so a one-year monthly series is
//! 365 days, at most 23 hours and 3 quarter-hours per boundary, and no raw rows.
//!
//! The rollups also keep UTC calendar months over every dimension. `cover_by_months` reads a
//! bucket that spans one or more of them as those months, minus or plus the stretch between
//! each of its boundaries and the nearest UTC month start (covered as above, with sign -1
//! where it is subtracted): a one-year monthly series in any zone is twelve months and a
//! few hours per boundary. Counts are sums, so subtracting them is exact.

use chrono::{DateTime, Datelike, Duration, Months, NaiveTime, Utc};

/// A UTC grain of a rollup. `code` is its value in the rollup tables' `grain` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    QuarterHour,
    Hour,
    Day,
    /// A UTC calendar month (kept over every dimension only: `cover_by_months`).
    Month,
}

impl Grain {
    /// The fixed-width grains, finest first: the order `cover` peels the edges in.
    pub const FIXED: [Grain; 3] = [Grain::QuarterHour, Grain::Hour, Grain::Day];

    pub fn code(self) -> i16 {
        match self {
            Grain::QuarterHour => 1,
            Grain::Hour => 2,
            Grain::Day => 3,
            Grain::Month => 5,
        }
    }

    /// The width of a fixed-width grain (a month has none).
    fn width(self) -> Option<Duration> {
        match self {
            Grain::QuarterHour => Some(Duration::minutes(15)),
            Grain::Hour => Some(Duration::hours(1)),
            Grain::Day => Some(Duration::days(1)),
            Grain::Month => None,
        }
    }

    /// The slot start at or before `t`: `t` floored to the grain, counted from the Unix
    /// epoch in UTC (as PostgreSQL's `date_bin(width, t, '1970-01-01 00:00+00')`), or the
    /// first instant of its UTC month.
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let Some(width) = self.width() else {
            let first = t.date_naive().with_day(1).unwrap_or(t.date_naive());
            return first.and_time(NaiveTime::MIN).and_utc();
        };
        let width = width.num_microseconds().unwrap_or(i64::MAX);
        let micros = t.timestamp_micros();
        let floored = micros - micros.rem_euclid(width);
        DateTime::from_timestamp_micros(floored).unwrap_or(t)
    }

    /// The slot start at or after `t` (`t` itself when no later slot can be represented).
    pub fn ceil(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let floor = self.floor(t);
        if floor == t {
            return t;
        }
        let next = match self.width() {
            Some(width) => floor.checked_add_signed(width),
            None => floor.checked_add_months(Months::new(1)),
        };
        next.unwrap_or(t)
    }
}

/// Consecutive slots of one grain, `[from, to)`, counted `sign` times (1, or -1 for a
/// stretch subtracted from a month) into bucket `bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub grain: Grain,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: usize,
    pub sign: i16,
}

/// A part `[from, to)` that no grain covers, read from raw rows and counted `sign` times
/// into bucket `bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliver {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: usize,
    pub sign: i16,
}

/// Buckets `[b_i, b_i+1)` of a boundary list, as rollup slots plus raw slivers. Together
/// they count every instant of a bucket exactly once into it and every other instant zero
/// times: `cover` leaves no instant in two parts, `cover_by_months` cancels what a month
/// adds beyond its bucket by subtracting it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cover {
    pub slots: Vec<Slots>,
    pub slivers: Vec<Sliver>,
}

impl Cover {
    /// The slot ranges as parallel columns (grain code, from, to, bucket), as SQL's `unnest`
    /// takes them.
    pub fn slot_columns(&self) -> SlotColumns {
        SlotColumns {
            grains: self.slots.iter().map(|s| s.grain.code()).collect(),
            from: self.slots.iter().map(|s| s.from).collect(),
            to: self.slots.iter().map(|s| s.to).collect(),
            buckets: self.slots.iter().map(|s| bucket_i32(s.bucket)).collect(),
            signs: self.slots.iter().map(|s| s.sign).collect(),
        }
    }

    /// The slivers as parallel columns (from, to, bucket, sign).
    pub fn sliver_columns(&self) -> SliverColumns {
        SliverColumns {
            from: self.slivers.iter().map(|s| s.from).collect(),
            to: self.slivers.iter().map(|s| s.to).collect(),
            buckets: self.slivers.iter().map(|s| bucket_i32(s.bucket)).collect(),
            signs: self.slivers.iter().map(|s| s.sign).collect(),
        }
    }
}

/// `Cover::slots` as columns.
#[derive(Debug, Clone, Default)]
pub struct SlotColumns {
    pub grains: Vec<i16>,
    pub from: Vec<DateTime<Utc>>,
    pub to: Vec<DateTime<Utc>>,
    pub buckets: Vec<i32>,
    pub signs: Vec<i16>,
}

/// The rollup grains kept over every dimension: hours (6), days (4) and months (5).
const UNDIVIDED: [(Grain, i16); 3] = [(Grain::Hour, 6), (Grain::Day, 4), (Grain::Month, 5)];

impl SlotColumns {
    /// Reads hours and days from the rollups' grains over every dimension (months are kept
    /// only there), for queries that neither filter nor group by a rolled-up dimension.
    pub fn read_undivided(&mut self) {
        for grain in &mut self.grains {
            if let Some((_, code)) = UNDIVIDED.iter().find(|(g, _)| g.code() == *grain) {
                *grain = *code;
            }
        }
    }
}

/// `Cover::slivers` as columns.
#[derive(Debug, Clone, Default)]
pub struct SliverColumns {
    pub from: Vec<DateTime<Utc>>,
    pub to: Vec<DateTime<Utc>>,
    pub buckets: Vec<i32>,
    pub signs: Vec<i16>,
}

/// Bucket indexes are below `MAX_BUCKETS`, far inside `i32`.
fn bucket_i32(bucket: usize) -> i32 {
    i32::try_from(bucket).unwrap_or(i32::MAX)
}

/// The cover of the buckets of `boundaries` (`[b0, b1, ..., bn]`, increasing).
pub fn cover(boundaries: &[DateTime<Utc>]) -> Cover {
    let mut cover = Cover::default();
    for (bucket, pair) in boundaries.windows(2).enumerate() {
        cover_bucket(&mut cover, bucket, pair[0], pair[1], 1);
    }
    cover
}

/// The cover of the buckets of `boundaries` that reads UTC months (`Grain::Month`, kept
/// over every dimension only) where a bucket spans one: bucket `[a, b)` is the months from
/// the month start nearest `a` to the one nearest `b`, plus `[a, ma)` or minus `[ma, a)`,
/// and the same at `b`, those stretches covered as by `cover`. A bucket whose months, with
/// the stretches, would reach across an instant of `uncut` is covered as by `cover`, so that
/// no part straddles one.
pub fn cover_by_months(boundaries: &[DateTime<Utc>], uncut: &[DateTime<Utc>]) -> Cover {
    let mut cover = Cover::default();
    for (bucket, pair) in boundaries.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        let (ma, mb) = (nearest_month_start(a), nearest_month_start(b));
        let (lo, hi) = (a.min(ma), b.max(mb));
        if ma >= mb || uncut.iter().any(|t| *t > lo && *t < hi) {
            cover_bucket(&mut cover, bucket, a, b, 1);
            continue;
        }
        push(&mut cover, Some(Grain::Month), bucket, ma, mb, 1);
        for (from, to, sign) in [(a, ma, 1), (ma, a, -1), (mb, b, 1), (b, mb, -1)] {
            cover_bucket(&mut cover, bucket, from, to, sign);
        }
    }
    cover
}

/// True when no bucket of `boundaries` lies strictly inside one UTC month (starting after
/// the month does and ending before it ends). Every UTC month then meets the buckets, and
/// the stretches before and after them, as a whole, a prefix or a suffix of itself: the
/// first and the last instant of a customer's activity in the month tell every bucket it
/// was active in there.
pub fn no_bucket_inside_a_month(boundaries: &[DateTime<Utc>]) -> bool {
    boundaries.windows(2).all(|pair| {
        let month_start = Grain::Month.floor(pair[0]);
        month_start == pair[0] || pair[1] >= Grain::Month.ceil(pair[0])
    })
}

/// How near a UTC month's edges an instant must lie for its local month to depend on the
/// zone: zone offsets lie between -12 and +14 hours (`customer_activity` in migrations/).
pub const MONTH_EDGE: Duration = Duration::hours(14);

/// When every boundary lies within `MONTH_EDGE` of the start of consecutive UTC months (a
/// grid of local months, in any zone): the number of the first such month, counted from
/// January 2000 (0), which must not be later than it. Each bucket then holds every instant of
/// its UTC month that does not lie within `MONTH_EDGE` of the month's edges.
pub fn consecutive_months(boundaries: &[DateTime<Utc>]) -> Option<i32> {
    let first = nearest_month_start(*boundaries.first()?);
    let number = (first.year() - 2000) * 12 + i32::try_from(first.month0()).ok()?;
    let mut month = first;
    for &b in boundaries {
        if (b - month).abs() > MONTH_EDGE {
            return None;
        }
        month = month.checked_add_months(Months::new(1))?;
    }
    (number >= 0).then_some(number)
}

/// The stretches between each boundary and the UTC month start nearest it, for a grid of
/// `consecutive_months`: the only instants that lie in another bucket than their UTC
/// month's own.
pub fn month_start_gaps(boundaries: &[DateTime<Utc>]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    boundaries
        .iter()
        .map(|&b| (b, nearest_month_start(b)))
        .filter(|(b, m)| b != m)
        .map(|(b, m)| (b.min(m), b.max(m)))
        .collect()
}

/// The UTC month start nearest `t` (the earlier one on a tie).
fn nearest_month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let (floor, ceil) = (Grain::Month.floor(t), Grain::Month.ceil(t));
    if ceil - t < t - floor { ceil } else { floor }
}

/// Peels `[start, end)` from the outside in: a raw sliver up to the first quarter-hour,
/// quarter-hours up to the first hour, hours up to the first day, and the mirror image at
/// the end; whatever is left in the middle is whole slots of the largest grain reached.
fn cover_bucket(
    cover: &mut Cover,
    bucket: usize,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    sign: i16,
) {
    let (mut lo, mut hi) = (start, end);
    let mut finer: Option<Grain> = None;
    for grain in Grain::FIXED {
        let (inner_lo, inner_hi) = (grain.ceil(lo), grain.floor(hi));
        if inner_lo >= inner_hi {
            break;
        }
        push(cover, finer, bucket, lo, inner_lo, sign);
        push(cover, finer, bucket, inner_hi, hi, sign);
        (lo, hi) = (inner_lo, inner_hi);
        finer = Some(grain);
    }
    push(cover, finer, bucket, lo, hi, sign);
}

/// Adds `[from, to)` as slots of `grain`, or as a sliver when there is no grain.
fn push(
    cover: &mut Cover,
    grain: Option<Grain>,
    bucket: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    sign: i16,
) {
    if from >= to {
        return;
    }
    match grain {
        Some(grain) => cover.slots.push(Slots {
            grain,
            from,
            to,
            bucket,
            sign,
        }),
        None => cover.slivers.push(Sliver {
            from,
            to,
            bucket,
            sign,
        }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};
    use chrono_tz::Tz;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{
        Granularity,
        buckets::{bucket_starts, start_of_day},
    };

    fn is_aligned(grain: Grain, t: DateTime<Utc>) -> bool {
        grain.floor(t) == t
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Every part is aligned to its grain, and every instant counts once into its bucket
    /// and zero times into any other: the signed counts are constant between consecutive
    /// part ends and boundaries, so checking each of those points checks every instant.
    fn check_signed(boundaries: &[DateTime<Utc>], cover: &Cover) {
        let mut parts: Vec<(usize, DateTime<Utc>, DateTime<Utc>, i16)> = Vec::new();
        for s in &cover.slots {
            assert!(
                is_aligned(s.grain, s.from) && is_aligned(s.grain, s.to),
                "{s:?}"
            );
            parts.push((s.bucket, s.from, s.to, s.sign));
        }
        for s in &cover.slivers {
            parts.push((s.bucket, s.from, s.to, s.sign));
        }
        for (bucket, pair) in boundaries.windows(2).enumerate() {
            let mine: Vec<_> = parts.iter().filter(|p| p.0 == bucket).collect();
            let mut points: Vec<DateTime<Utc>> = pair.to_vec();
            points.extend(mine.iter().flat_map(|p| [p.1, p.2]));
            for t in points {
                let counted: i32 = mine
                    .iter()
                    .filter(|p| p.1 <= t && t < p.2)
                    .map(|p| i32::from(p.3))
                    .sum();
                let inside = pair[0] <= t && t < pair[1];
                assert_eq!(counted, i32::from(inside), "bucket {bucket} at {t}");
            }
        }
    }

    /// Every part is aligned to its grain and inside its bucket, and the parts of each bucket
    /// tile it exactly.
    fn check(boundaries: &[DateTime<Utc>], cover: &Cover) {
        check_signed(boundaries, cover);
        let mut parts: Vec<(usize, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for s in &cover.slots {
            assert_eq!(s.sign, 1, "{s:?}");
            assert!(
                is_aligned(s.grain, s.from) && is_aligned(s.grain, s.to),
                "{s:?}"
            );
            parts.push((s.bucket, s.from, s.to));
        }
        for s in &cover.slivers {
            assert_eq!(s.sign, 1, "{s:?}");
            // No whole quarter-hour lies inside a sliver.
            let q = Grain::QuarterHour;
            assert!(q.ceil(s.from) >= q.floor(s.to), "{s:?}");
            parts.push((s.bucket, s.from, s.to));
        }
        parts.sort();
        for (bucket, pair) in boundaries.windows(2).enumerate() {
            let mine: Vec<_> = parts.iter().filter(|p| p.0 == bucket).collect();
            let mut at = pair[0];
            for (_, from, to) in mine {
                assert_eq!(*from, at, "gap or overlap in bucket {bucket}");
                assert!(from < to);
                at = *to;
            }
            assert_eq!(at, pair[1], "bucket {bucket} not covered to its end");
        }
    }

    #[test]
    fn a_berlin_month_is_its_utc_days_and_a_few_hours_at_the_edges() {
        // March 2025 in Berlin: from 23:00 UTC on Feb 28 to 22:00 UTC on Mar 31 (DST).
        let b = [at("2025-02-28T23:00:00Z"), at("2025-03-31T22:00:00Z")];
        let c = cover(&b);
        check(&b, &c);
        assert!(c.slivers.is_empty());
        let days: Vec<_> = c.slots.iter().filter(|s| s.grain == Grain::Day).collect();
        assert_eq!(days.len(), 1);
        assert_eq!(
            (days[0].from, days[0].to),
            (at("2025-03-01T00:00:00Z"), at("2025-03-31T00:00:00Z"))
        );
        let hours: Vec<_> = c
            .slots
            .iter()
            .filter(|s| s.grain == Grain::Hour)
            .map(|s| (s.from, s.to))
            .collect();
        assert_eq!(
            hours,
            [
                (at("2025-02-28T23:00:00Z"), at("2025-03-01T00:00:00Z")),
                (at("2025-03-31T00:00:00Z"), at("2025-03-31T22:00:00Z"))
            ]
        );
        assert!(c.slots.iter().all(|s| s.grain != Grain::QuarterHour));
    }

    #[test]
    fn kathmandu_edges_need_quarter_hours_and_odd_instants_need_slivers() {
        // A Kathmandu day (+05:45) starts at 18:15 UTC.
        let b = [at("2025-06-01T18:15:00Z"), at("2025-06-02T18:15:00Z")];
        let c = cover(&b);
        check(&b, &c);
        assert!(c.slivers.is_empty());
        let quarters: Vec<_> = c
            .slots
            .iter()
            .filter(|s| s.grain == Grain::QuarterHour)
            .map(|s| (s.from, s.to))
            .collect();
        assert_eq!(
            quarters,
            [
                (at("2025-06-01T18:15:00Z"), at("2025-06-01T19:00:00Z")),
                (at("2025-06-02T18:00:00Z"), at("2025-06-02T18:15:00Z"))
            ]
        );
        let b = [
            at("2025-06-01T10:07:30Z"),
            at("2025-06-01T10:12:00Z"),
            at("2025-06-03T00:00:00.5Z"),
        ];
        let c = cover(&b);
        check(&b, &c);
        assert_eq!(
            c.slivers[0],
            Sliver {
                from: b[0],
                to: b[1],
                bucket: 0,
                sign: 1
            }
        );
        assert!(c.slivers.iter().any(|s| s.bucket == 1 && s.to == b[2]));
    }

    #[test]
    fn floors_and_ceilings_hold_before_the_epoch_and_at_the_extremes() {
        let t = at("1969-12-31T23:50:00Z");
        assert_eq!(Grain::Hour.floor(t), at("1969-12-31T23:00:00Z"));
        assert_eq!(Grain::Hour.ceil(t), at("1970-01-01T00:00:00Z"));
        assert_eq!(
            Grain::Day.ceil(at("1900-01-01T00:00:00Z")),
            at("1900-01-01T00:00:00Z")
        );
        let c = cover(&[at("1900-01-01T00:00:00Z"), at("2200-01-01T00:00:00Z")]);
        assert_eq!(c.slots.len(), 1);
        assert!(cover(&[]).slots.is_empty() && cover(&[t]).slots.is_empty());
    }

    #[test]
    fn a_berlin_month_is_its_utc_month_minus_and_plus_an_hour() {
        // March 2025 in Berlin: from 23:00 UTC on Feb 28 to 22:00 UTC on Mar 31 (DST).
        let b = [at("2025-02-28T23:00:00Z"), at("2025-03-31T22:00:00Z")];
        let c = cover_by_months(&b, &[]);
        check_signed(&b, &c);
        let parts: Vec<_> = c
            .slots
            .iter()
            .map(|s| (s.grain, s.from, s.to, s.sign))
            .collect();
        assert_eq!(
            parts,
            [
                (
                    Grain::Month,
                    at("2025-03-01T00:00:00Z"),
                    at("2025-04-01T00:00:00Z"),
                    1
                ),
                (
                    Grain::Hour,
                    at("2025-02-28T23:00:00Z"),
                    at("2025-03-01T00:00:00Z"),
                    1
                ),
                (
                    Grain::Hour,
                    at("2025-03-31T22:00:00Z"),
                    at("2025-04-01T00:00:00Z"),
                    -1
                ),
            ]
        );
        assert!(c.slivers.is_empty());
        // A week spans no month, an instant to avoid inside the month's reach keeps the
        // plain cover.
        let week = [at("2025-03-02T23:00:00Z"), at("2025-03-09T23:00:00Z")];
        assert_eq!(cover_by_months(&week, &[]), cover(&week));
        assert_eq!(
            cover_by_months(&b, &[at("2025-03-31T23:00:00Z")]),
            cover(&b)
        );
        assert_eq!(
            Grain::Month.ceil(at("2025-12-31T23:00:00Z")),
            at("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            Grain::Month.floor(at("1969-12-31T23:00:00Z")),
            at("1969-12-01T00:00:00Z")
        );
    }

    #[test]
    fn local_months_quarters_and_years_meet_each_utc_month_at_its_edges() {
        for zone in [
            "Europe/Berlin",
            "Asia/Kathmandu",
            "Pacific/Kiritimati",
            "Pacific/Niue",
        ] {
            let tz: Tz = zone.parse().unwrap();
            let first = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
            let end = start_of_day(tz, NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
            for g in [Granularity::Month, Granularity::Quarter, Granularity::Year] {
                let b: Vec<_> = bucket_starts(tz, first, end, g).map(|(_, t)| t).collect();
                assert!(no_bucket_inside_a_month(&b), "{zone} {g:?}");
            }
            for g in [Granularity::Day, Granularity::Week] {
                let b: Vec<_> = bucket_starts(tz, first, end, g).map(|(_, t)| t).collect();
                assert!(!no_bucket_inside_a_month(&b), "{zone} {g:?}");
            }
        }
        // A month that starts after a UTC month does and ends before it ends.
        assert!(!no_bucket_inside_a_month(&[
            at("2025-03-01T01:00:00Z"),
            at("2025-03-31T23:00:00Z")
        ]));
        assert!(no_bucket_inside_a_month(&[
            at("2025-03-01T00:00:00Z"),
            at("2025-03-31T23:00:00Z"),
            at("2025-04-30T23:00:00Z")
        ]));
    }

    #[test]
    fn local_months_in_every_zone_are_consecutive_utc_months_within_the_edge() {
        let first = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
        for zone in chrono_tz::TZ_VARIANTS {
            let end = start_of_day(zone, NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
            let b: Vec<_> = bucket_starts(zone, first, end, Granularity::Month)
                .map(|(_, t)| t)
                .collect();
            // January 2019 is month 228 since January 2000.
            assert_eq!(consecutive_months(&b), Some(228), "{zone}");
            for g in [Granularity::Quarter, Granularity::Year, Granularity::Day] {
                let b: Vec<_> = bucket_starts(zone, first, end, g).map(|(_, t)| t).collect();
                assert_eq!(consecutive_months(&b), None, "{zone} {g:?}");
            }
        }
        // 14 hours from a month start at most, on either side.
        assert_eq!(
            consecutive_months(&[at("2025-02-28T10:00:00Z"), at("2025-04-01T14:00:00Z")]),
            Some(302)
        );
        assert_eq!(
            consecutive_months(&[at("2025-02-28T09:59:59Z"), at("2025-04-01T00:00:00Z")]),
            None
        );
        assert_eq!(
            consecutive_months(&[at("2025-03-01T00:00:00Z"), at("2025-04-01T14:00:01Z")]),
            None
        );
        // Months before January 2000 have no bit.
        assert_eq!(
            consecutive_months(&[at("1999-12-01T00:00:00Z"), at("2000-01-01T00:00:00Z")]),
            None
        );
        assert_eq!(consecutive_months(&[at("2000-01-01T00:00:00Z")]), Some(0));
        assert_eq!(consecutive_months(&[]), None);
    }

    const ZONES: [&str; 6] = [
        "UTC",
        "Europe/Berlin",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "America/St_Johns",
        "America/Santiago",
    ];

    proptest! {
        #[test]
        fn local_buckets_in_any_zone_are_tiled_without_slivers(
            zone in prop::sample::select(ZONES.to_vec()),
            day in 0_i64..3000,
            days in 1_i64..400,
            g in prop::sample::select(vec![Granularity::Day, Granularity::Week, Granularity::Month]),
        ) {
            let tz: Tz = zone.parse().unwrap();
            let first = NaiveDate::from_ymd_opt(2018, 1, 1).unwrap() + Duration::days(day);
            let end = start_of_day(tz, first + Duration::days(days));
            let mut b: Vec<_> = bucket_starts(tz, first, end, g).map(|(_, t)| t).collect();
            b.push(end);
            let c = cover(&b);
            check(&b, &c);
            prop_assert!(c.slivers.is_empty(), "{zone}: {:?}", c.slivers);
        }

        #[test]
        fn local_buckets_in_any_zone_are_counted_once_by_months(
            zone in prop::sample::select(ZONES.to_vec()),
            day in 0_i64..3000,
            days in 1_i64..800,
            g in prop::sample::select(vec![
                Granularity::Day, Granularity::Week, Granularity::Month, Granularity::Quarter,
                Granularity::Year,
            ]),
            cut in prop::option::of(0_i64..800 * 96),
        ) {
            let tz: Tz = zone.parse().unwrap();
            let first = NaiveDate::from_ymd_opt(2018, 1, 1).unwrap() + Duration::days(day);
            let end = start_of_day(tz, first + Duration::days(days));
            let mut b: Vec<_> = bucket_starts(tz, first, end, g).map(|(_, t)| t).collect();
            b.push(end);
            // As `response_times::rollup_cover` does: an instant to avoid is a boundary too.
            let uncut: Vec<_> = cut.map(|q| b[0] + Duration::minutes(15 * q)).into_iter().collect();
            b.extend(uncut.iter().filter(|t| **t < end));
            b.sort();
            b.dedup();
            let c = cover_by_months(&b, &uncut);
            check_signed(&b, &c);
            prop_assert!(c.slivers.is_empty(), "{zone}: {:?}", c.slivers);
            for s in &c.slots {
                prop_assert!(uncut.iter().all(|t| *t <= s.from || *t >= s.to), "{s:?}");
            }
            let monthly = matches!(g, Granularity::Month | Granularity::Quarter | Granularity::Year);
            if monthly && uncut.is_empty() && b.len() > 3 {
                prop_assert!(c.slots.iter().any(|s| s.grain == Grain::Month));
            }
        }

        #[test]
        fn arbitrary_boundaries_are_counted_once_by_months(mut ts in prop::collection::vec(0_i64..2_000_000_000_000, 2..8)) {
            ts.sort();
            ts.dedup();
            let b: Vec<_> = ts.iter().map(|ms| Utc.timestamp_millis_opt(*ms).unwrap()).collect();
            check_signed(&b, &cover_by_months(&b, &[]));
        }

        #[test]
        fn arbitrary_boundaries_are_tiled(mut ts in prop::collection::vec(0_i64..2_000_000_000_000, 2..8)) {
            ts.sort();
            ts.dedup();
            let b: Vec<_> = ts.iter().map(|ms| Utc.timestamp_millis_opt(*ms).unwrap()).collect();
            check(&b, &cover(&b));
        }
    }
}

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

use chrono::{DateTime, Duration, Utc};

/// A UTC grain of a rollup. `code` is its value in the rollup tables' `grain` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    QuarterHour,
    Hour,
    Day,
}

impl Grain {
    /// Finest first: the order `cover` peels the edges in.
    pub const ALL: [Grain; 3] = [Grain::QuarterHour, Grain::Hour, Grain::Day];

    pub fn code(self) -> i16 {
        match self {
            Grain::QuarterHour => 1,
            Grain::Hour => 2,
            Grain::Day => 3,
        }
    }

    pub fn width(self) -> Duration {
        match self {
            Grain::QuarterHour => Duration::minutes(15),
            Grain::Hour => Duration::hours(1),
            Grain::Day => Duration::days(1),
        }
    }

    /// The slot start at or before `t`: `t` floored to the grain, counted from the Unix
    /// epoch in UTC (as PostgreSQL's `date_bin(width, t, '1970-01-01 00:00+00')`).
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let width = self.width().num_microseconds().unwrap_or(i64::MAX);
        let micros = t.timestamp_micros();
        let floored = micros - micros.rem_euclid(width);
        DateTime::from_timestamp_micros(floored).unwrap_or(t)
    }

    /// The slot start at or after `t`.
    pub fn ceil(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let floor = self.floor(t);
        if floor == t {
            t
        } else {
            floor.checked_add_signed(self.width()).unwrap_or(t)
        }
    }
}

/// Consecutive slots of one grain, `[from, to)`, all inside bucket `bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub grain: Grain,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: usize,
}

/// A part of bucket `bucket`, `[from, to)`, that no grain covers: read from raw rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliver {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: usize,
}

/// Buckets `[b_i, b_i+1)` of a boundary list, as rollup slots plus raw slivers. Together
/// they cover every bucket exactly once: no instant is in two parts, none is left out.
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
        }
    }

    /// The slivers as parallel columns (from, to, bucket).
    pub fn sliver_columns(&self) -> SliverColumns {
        SliverColumns {
            from: self.slivers.iter().map(|s| s.from).collect(),
            to: self.slivers.iter().map(|s| s.to).collect(),
            buckets: self.slivers.iter().map(|s| bucket_i32(s.bucket)).collect(),
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
}

impl SlotColumns {
    /// Reads the whole days from rollup grain `code` instead of `Grain::Day`: the rollups'
    /// day over every dimension, for queries that neither filter nor group by one.
    pub fn days_from(&mut self, code: i16) {
        for grain in &mut self.grains {
            if *grain == Grain::Day.code() {
                *grain = code;
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
}

/// Bucket indexes are below `MAX_BUCKETS`, far inside `i32`.
fn bucket_i32(bucket: usize) -> i32 {
    i32::try_from(bucket).unwrap_or(i32::MAX)
}

/// The cover of the buckets of `boundaries` (`[b0, b1, ..., bn]`, increasing).
pub fn cover(boundaries: &[DateTime<Utc>]) -> Cover {
    let mut cover = Cover::default();
    for (bucket, pair) in boundaries.windows(2).enumerate() {
        cover_bucket(&mut cover, bucket, pair[0], pair[1]);
    }
    cover
}

/// Peels `[start, end)` from the outside in: a raw sliver up to the first quarter-hour,
/// quarter-hours up to the first hour, hours up to the first day, and the mirror image at
/// the end; whatever is left in the middle is whole slots of the largest grain reached.
fn cover_bucket(cover: &mut Cover, bucket: usize, start: DateTime<Utc>, end: DateTime<Utc>) {
    let (mut lo, mut hi) = (start, end);
    let mut finer: Option<Grain> = None;
    for grain in Grain::ALL {
        let (inner_lo, inner_hi) = (grain.ceil(lo), grain.floor(hi));
        if inner_lo >= inner_hi {
            break;
        }
        push(cover, finer, bucket, lo, inner_lo);
        push(cover, finer, bucket, inner_hi, hi);
        (lo, hi) = (inner_lo, inner_hi);
        finer = Some(grain);
    }
    push(cover, finer, bucket, lo, hi);
}

/// Adds `[from, to)` as slots of `grain`, or as a sliver when there is no grain.
fn push(
    cover: &mut Cover,
    grain: Option<Grain>,
    bucket: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
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
        }),
        None => cover.slivers.push(Sliver { from, to, bucket }),
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

    /// Every part is aligned to its grain and inside its bucket, and the parts of each bucket
    /// tile it exactly.
    fn check(boundaries: &[DateTime<Utc>], cover: &Cover) {
        let mut parts: Vec<(usize, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for s in &cover.slots {
            assert!(
                is_aligned(s.grain, s.from) && is_aligned(s.grain, s.to),
                "{s:?}"
            );
            parts.push((s.bucket, s.from, s.to));
        }
        for s in &cover.slivers {
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
                bucket: 0
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
        fn arbitrary_boundaries_are_tiled(mut ts in prop::collection::vec(0_i64..2_000_000_000_000, 2..8)) {
            ts.sort();
            ts.dedup();
            let b: Vec<_> = ts.iter().map(|ms| Utc.timestamp_millis_opt(*ms).unwrap()).collect();
            check(&b, &cover(&b));
        }
    }
}

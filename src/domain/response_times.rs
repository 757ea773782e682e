//! Response-time arithmetic: the figures PostgreSQL aggregates over a set of interactions
//! (counts, sums, extremes, SLA counts, and exact percentiles or a sketch), merged across
//! buckets and groups when they come from rollups, then turned into the reported stats.

use chrono::{DateTime, Utc};

use super::{
    Limits,
    grains::{self, Cover, Grain},
    sketch::Sketch,
    stats::{Change, two_proportion_change},
};

/// SLA targets in seconds (of the same clock the durations are measured in).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SlaTargets {
    pub first_response: Option<f64>,
    pub resolution: Option<f64>,
}

impl SlaTargets {
    /// The instants before which an interaction opened and still waiting at `now` (on a
    /// whole microsecond, as stored times are) has waited longer than each target in
    /// wall-clock time: waits are whole microseconds, so a wait is over the target exactly
    /// when it is over the target rounded down to the microsecond.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> [Option<DateTime<Utc>>; 2] {
        let cutoff = |target: Option<f64>| {
            // Targets are validated durations; one past chrono's range has no cutoff.
            now.checked_sub_signed(chrono::Duration::microseconds(within_target(target?)?))
        };
        [cutoff(self.first_response), cutoff(self.resolution)]
    }
}

/// The longest whole-microsecond duration that meets `target` seconds: the largest `d` whose
/// seconds, as PostgreSQL gives them (`extract(epoch ...)::float8`, the correctly rounded
/// `d / 10^6`, which is what dividing in f64 gives too), are at most `target`. A duration
/// of whole microseconds meets the target exactly when it is at most this long, so SQL can
/// compare instants instead of computing seconds. None for a target beyond i64 microseconds.
pub fn within_target(target: f64) -> Option<i64> {
    let seconds = |d: i64| d as f64 / 1e6;
    let guess = (target * 1e6).floor();
    if guess.is_nan() || guess.abs() >= 2f64.powi(62) {
        return None;
    }
    let mut d = guess as i64;
    while seconds(d + 1) <= target {
        d += 1;
    }
    while seconds(d) > target {
        d -= 1;
    }
    Some(d)
}

/// The span a business clock must cover to measure every stored interaction opened from
/// `first` on up to `now`: stored times are never before `Limits::earliest_time()` nor more
/// than a day after they were written. Whole UTC days, so that every edge of an open
/// interval inside it is on a whole microsecond as PostgreSQL stores times.
pub fn clock_span(first: DateTime<Utc>, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = Grain::Day;
    let from = first.max(Limits::earliest_time());
    let to = now
        .checked_add_signed(chrono::Duration::days(2))
        .unwrap_or(now);
    (day.floor(from), day.floor(to.max(from)))
}

/// `t` rounded down to the microsecond, as PostgreSQL stores it.
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The percentile ranks every report gives, in the order of `DurationStats`.
pub const PERCENTILES: [f64; 4] = [0.50, 0.90, 0.95, 0.99];

/// How the percentiles of a set of durations are known.
#[derive(Debug, Clone, PartialEq)]
pub enum Percentiles {
    /// `percentile_cont` at each of `PERCENTILES`, computed in PostgreSQL.
    Exact([Option<f64>; 4]),
    /// Counts per bucket, within 1% (relative) of the exact percentiles.
    Sketch(Sketch),
}

impl Default for Percentiles {
    fn default() -> Self {
        Self::Exact([None; 4])
    }
}

/// The aggregates of one duration (first response or resolution) over a set of
/// interactions, as storage computes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurationSummary {
    /// Interactions that have the duration (answered, or resolved).
    pub count: i64,
    /// The sum of their durations, in seconds.
    pub seconds: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub percentiles: Percentiles,
    /// Under the request's target (0 without one): within it, over it or waiting longer.
    pub met: i64,
    pub breached: i64,
}

/// Two summaries cannot be added: exact percentiles of a union do not follow from its
/// parts'. Only the rollups' sketch summaries are ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("exact percentiles cannot be merged")]
pub struct NotMergeable;

impl DurationSummary {
    pub fn add(&mut self, other: &Self) -> Result<(), NotMergeable> {
        match (&mut self.percentiles, &other.percentiles) {
            (Percentiles::Sketch(mine), Percentiles::Sketch(theirs)) => mine.merge(theirs),
            _ if other.count == 0 && other.percentiles == Percentiles::default() => {}
            _ => return Err(NotMergeable),
        }
        self.count += other.count;
        self.seconds += other.seconds;
        self.min = option_min(self.min, other.min);
        self.max = option_max(self.max, other.max);
        self.met += other.met;
        self.breached += other.breached;
        Ok(())
    }

    /// The reported stats; percentiles from the sketch lie within `[min, max]`.
    pub fn stats(&self) -> DurationStats {
        let mean = (self.count > 0).then(|| self.seconds / self.count as f64);
        let (p, exact) = match &self.percentiles {
            Percentiles::Exact(p) => (*p, true),
            Percentiles::Sketch(sketch) => match (self.min, self.max) {
                (Some(min), Some(max)) => {
                    (PERCENTILES.map(|q| sketch.quantile(q, min, max)), false)
                }
                _ => ([None; 4], false),
            },
        };
        DurationStats {
            count: self.count,
            mean,
            min: self.min,
            max: self.max,
            p50: p[0],
            p90: p[1],
            p95: p[2],
            p99: p[3],
            percentiles_exact: exact,
        }
    }

    fn sla(&self, target: Option<f64>) -> Option<SlaStats> {
        target?;
        let judged = self.met + self.breached;
        Some(SlaStats {
            met: self.met,
            breached: self.breached,
            attainment: (judged > 0).then(|| 100.0 * self.met as f64 / judged as f64),
        })
    }
}

fn option_min(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn option_max(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Which duration a rollup row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    FirstResponse,
    Resolution,
}

impl Summary {
    fn duration_mut(&mut self, measure: Measure) -> &mut DurationSummary {
        match measure {
            Measure::FirstResponse => &mut self.first_response,
            Measure::Resolution => &mut self.resolution,
        }
    }

    /// Interactions counted per sketch bucket (`cells`: bucket, count), whose `measure` took
    /// `seconds` in all. Against a target in bucket `target_bucket` those below it meet it,
    /// those above breach it; the target's own bucket is decided row by row (`target_part`).
    pub fn sketch_part(
        measure: Measure,
        cells: impl IntoIterator<Item = (i16, i64)>,
        seconds: f64,
        target_bucket: Option<i16>,
    ) -> Self {
        let mut s = Self::sketched();
        let d = s.duration_mut(measure);
        d.seconds = seconds;
        for (bucket, n) in cells {
            d.count += n;
            if let Percentiles::Sketch(sketch) = &mut d.percentiles {
                sketch.add(bucket, n);
            }
            match target_bucket {
                Some(t) if bucket < t => d.met += n,
                Some(t) if bucket > t => d.breached += n,
                _ => {}
            }
        }
        if measure == Measure::FirstResponse {
            s.interactions = s.first_response.count;
        }
        s
    }

    /// `n` interactions still without `measure`, `late` of them waiting longer than the
    /// target.
    pub fn waiting_part(measure: Measure, n: i64, late: i64) -> Self {
        let mut s = Self::sketched();
        match measure {
            Measure::FirstResponse => {
                s.interactions = n;
                s.unanswered = n;
            }
            Measure::Resolution => s.unresolved = n,
        }
        s.duration_mut(measure).breached = late;
        s
    }

    /// The exact extremes of `measure`, read inside its lowest and highest sketch bucket.
    pub fn extremes_part(measure: Measure, min: Option<f64>, max: Option<f64>) -> Self {
        let mut s = Self::sketched();
        let d = s.duration_mut(measure);
        (d.min, d.max) = (min, max);
        s
    }

    /// The interactions of the target's own sketch bucket, judged one by one.
    pub fn target_part(measure: Measure, met: i64, breached: i64) -> Self {
        let mut s = Self::sketched();
        let d = s.duration_mut(measure);
        (d.met, d.breached) = (met, breached);
        s
    }
}

/// The parts of the buckets of `boundaries` for reading rollups: `grains::cover` (or, for a
/// read over every dimension, `grains::cover_by_months`) of the buckets cut at `cuts` too
/// (the SLA cutoffs), each part still naming its own bucket, so that every rollup slot lies
/// wholly before or after each cutoff.
pub fn rollup_cover(boundaries: &[DateTime<Utc>], cuts: &[DateTime<Utc>], months: bool) -> Cover {
    let (Some(first), Some(last)) = (boundaries.first(), boundaries.last()) else {
        return Cover::default();
    };
    let mut refined: Vec<DateTime<Utc>> = boundaries
        .iter()
        .chain(cuts.iter().filter(|c| *c > first && *c < last))
        .copied()
        .collect();
    refined.sort();
    refined.dedup();
    // The bucket of refined window j: the last boundary at or before its start.
    let bucket_of = |j: usize| boundaries.partition_point(|b| *b <= refined[j]) - 1;
    let mut cover = if months {
        grains::cover_by_months(&refined, cuts)
    } else {
        grains::cover(&refined)
    };
    for s in &mut cover.slots {
        s.bucket = bucket_of(s.bucket);
    }
    for s in &mut cover.slivers {
        s.bucket = bucket_of(s.bucket);
    }
    cover
}

/// Everything storage aggregates over one set of interactions (a bucket, a group, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub interactions: i64,
    pub unanswered: i64,
    pub unresolved: i64,
    pub first_response: DurationSummary,
    pub resolution: DurationSummary,
}

impl Summary {
    /// An empty summary whose percentiles come from a sketch, to merge sketches into.
    pub fn sketched() -> Self {
        let empty = || DurationSummary {
            percentiles: Percentiles::Sketch(Sketch::default()),
            ..DurationSummary::default()
        };
        Self {
            first_response: empty(),
            resolution: empty(),
            ..Self::default()
        }
    }

    pub fn add(&mut self, other: &Self) -> Result<(), NotMergeable> {
        self.first_response.add(&other.first_response)?;
        self.resolution.add(&other.resolution)?;
        self.interactions += other.interactions;
        self.unanswered += other.unanswered;
        self.unresolved += other.unresolved;
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurationStats {
    pub count: i64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// Whether p50..p99 are exact (`percentile_cont`) rather than from the sketch.
    pub percentiles_exact: bool,
}

/// PostgreSQL's `percentile_cont(p)` over sorted values: linear interpolation between the
/// values at ranks floor and ceil of p x (n - 1). The reference the sketch is tested against.
#[cfg(test)]
pub fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = p * last as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi.min(last)]);
    Some(a + (b - a) * (position - lo as f64))
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlaStats {
    pub met: i64,
    pub breached: i64,
    pub attainment: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseTimeStats {
    pub interactions: i64,
    pub unanswered: i64,
    pub unresolved: i64,
    pub first_response: DurationStats,
    pub resolution: DurationStats,
    pub first_response_sla: Option<SlaStats>,
    pub resolution_sla: Option<SlaStats>,
}

impl ResponseTimeStats {
    /// The stats of `s` under `targets`.
    pub fn new(s: &Summary, targets: SlaTargets) -> Self {
        Self {
            interactions: s.interactions,
            unanswered: s.unanswered,
            unresolved: s.unresolved,
            first_response: s.first_response.stats(),
            resolution: s.resolution.stats(),
            first_response_sla: s.first_response.sla(targets.first_response),
            resolution_sla: s.resolution.sla(targets.resolution),
        }
    }

    pub fn change_from(&self, previous: &Self) -> ResponseTimeChange {
        let mean_delta =
            |now: &DurationStats, before: &DurationStats| Some(now.mean? - before.mean?);
        let attainment = |now: &Option<SlaStats>, before: &Option<SlaStats>| {
            let (now, before) = (now.as_ref()?, before.as_ref()?);
            Some(two_proportion_change(
                (now.met, now.met + now.breached),
                (before.met, before.met + before.breached),
            ))
        };
        ResponseTimeChange {
            first_response_mean_delta: mean_delta(&self.first_response, &previous.first_response),
            resolution_mean_delta: mean_delta(&self.resolution, &previous.resolution),
            first_response_attainment: attainment(
                &self.first_response_sla,
                &previous.first_response_sla,
            ),
            resolution_attainment: attainment(&self.resolution_sla, &previous.resolution_sla),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseTimeChange {
    pub first_response_mean_delta: Option<f64>,
    pub resolution_mean_delta: Option<f64>,
    /// Present when the request has the target.
    pub first_response_attainment: Option<Change>,
    pub resolution_attainment: Option<Change>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_percentile_cont() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_cont(&v, 0.5), Some(2.5));
        assert!((percentile_cont(&v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(percentile_cont(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile_cont(&[], 0.5), None);
    }

    fn sketched(values: &[f64]) -> DurationSummary {
        let mut sketch = Sketch::default();
        for v in values {
            sketch.add(crate::domain::sketch::index(*v), 1);
        }
        DurationSummary {
            count: values.len() as i64,
            seconds: values.iter().sum(),
            min: values.iter().copied().reduce(f64::min),
            max: values.iter().copied().reduce(f64::max),
            percentiles: Percentiles::Sketch(sketch),
            met: 0,
            breached: 0,
        }
    }

    #[test]
    fn the_longest_duration_within_a_target_is_its_last_whole_microsecond() {
        assert_eq!(within_target(3600.0), Some(3_600_000_000));
        assert_eq!(within_target(0.0000015), Some(1));
        assert_eq!(within_target(90.5), Some(90_500_000));
        // 0.3 is a little less than 3/10 in binary, yet 300000 us is 0.3 once rounded.
        assert_eq!(within_target(0.3), Some(300_000));
        assert_eq!(within_target(1e30), None);
        assert_eq!(within_target(f64::NAN), None);
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..100_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let target = match rng % 3 {
                // Whole microseconds, as written in decimal, up to about 30 years.
                0 => (rng >> 2) as f64 % 1e15 / 1e6,
                1 => (rng >> 11) as f64 / (1u64 << 53) as f64 * 1e6,
                _ => f64::from_bits(0x3e80_0000_0000_0000 + (rng >> 20) % (1 << 44)),
            };
            let d = within_target(target).unwrap();
            assert!(d as f64 / 1e6 <= target, "{target}: {d}");
            assert!((d + 1) as f64 / 1e6 > target, "{target}: {d}");
        }
    }

    #[test]
    fn merged_sketch_summaries_equal_the_summary_of_the_union() {
        let mut a = sketched(&[1.0, 50.0]);
        a.add(&sketched(&[3.0, 7.0, 200.0])).unwrap();
        assert_eq!(a, sketched(&[1.0, 50.0, 3.0, 7.0, 200.0]));
        let stats = a.stats();
        assert_eq!(
            (stats.min, stats.max, stats.count),
            (Some(1.0), Some(200.0), 5)
        );
        assert!(!stats.percentiles_exact);
        assert!((stats.p50.unwrap() - 7.0).abs() <= 0.07);
    }

    #[test]
    fn exact_percentiles_cannot_be_merged() {
        let exact = DurationSummary {
            count: 1,
            percentiles: Percentiles::Exact([Some(1.0); 4]),
            ..DurationSummary::default()
        };
        assert_eq!(sketched(&[1.0]).add(&exact), Err(NotMergeable));
        assert!(exact.stats().percentiles_exact);
    }

    #[test]
    fn attainment_over_no_judged_interaction_is_absent() {
        let s = DurationSummary {
            met: 1,
            breached: 2,
            ..DurationSummary::default()
        };
        let sla = s.sla(Some(300.0)).unwrap();
        assert!((sla.attainment.unwrap() - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            DurationSummary::default()
                .sla(Some(1.0))
                .unwrap()
                .attainment,
            None
        );
        assert_eq!(s.sla(None), None);
    }

    #[test]
    fn a_cutoff_is_now_minus_the_target_rounded_down_to_the_microsecond() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let targets = SlaTargets {
            first_response: Some(60.0000005),
            resolution: None,
        };
        let [first, resolution] = targets.cutoffs(now);
        assert_eq!(
            first,
            Some(now - chrono::Duration::microseconds(60_000_000))
        );
        assert_eq!(resolution, None);
    }

    #[test]
    fn parts_of_a_rollup_read_never_straddle_a_cutoff() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let b = [
            at("2026-01-01T00:00:00Z"),
            at("2026-01-02T00:00:00Z"),
            at("2026-01-03T00:00:00Z"),
        ];
        let cut = at("2026-01-02T13:07:30Z");
        let cover = rollup_cover(&b, &[cut, at("2030-01-01T00:00:00Z")], false);
        for s in &cover.slots {
            assert!(s.to <= cut || s.from >= cut, "{s:?}");
            assert!(b[s.bucket] <= s.from && s.to <= b[s.bucket + 1], "{s:?}");
        }
        let sliver = cover.slivers.iter().find(|s| s.to == cut).unwrap();
        assert_eq!(
            (sliver.from, sliver.bucket),
            (at("2026-01-02T13:00:00Z"), 1)
        );
        assert_eq!(rollup_cover(&b, &[], false), grains::cover(&b));

        // Berlin months: the months the cutoff is not in are read as UTC months, the one it
        // is in never straddles it.
        let b = [
            at("2025-12-31T23:00:00Z"),
            at("2026-01-31T23:00:00Z"),
            at("2026-02-28T23:00:00Z"),
        ];
        let cut = at("2026-02-10T08:00:00Z");
        let cover = rollup_cover(&b, &[cut], true);
        for s in &cover.slots {
            assert!(s.to <= cut || s.from >= cut, "{s:?}");
        }
        let months: Vec<_> = cover
            .slots
            .iter()
            .filter(|s| s.grain == Grain::Month)
            .map(|s| (s.from, s.to, s.bucket))
            .collect();
        assert_eq!(
            months,
            [(at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z"), 0)]
        );
    }

    #[test]
    fn parts_add_up_to_the_summary_of_their_interactions() {
        let mut s = Summary::sketched();
        let target = Some(crate::domain::sketch::index(60.0));
        for part in [
            Summary::sketch_part(
                Measure::FirstResponse,
                [(crate::domain::sketch::index(10.0), 2)],
                20.0,
                target,
            ),
            Summary::sketch_part(
                Measure::FirstResponse,
                [(crate::domain::sketch::index(600.0), 1)],
                600.0,
                target,
            ),
            Summary::target_part(Measure::FirstResponse, 1, 1),
            Summary::waiting_part(Measure::FirstResponse, 3, 2),
            Summary::extremes_part(Measure::FirstResponse, Some(9.5), Some(600.0)),
        ] {
            s.add(&part).unwrap();
        }
        assert_eq!((s.interactions, s.unanswered), (6, 3));
        let d = &s.first_response;
        assert_eq!((d.count, d.met, d.breached), (3, 3, 4));
        assert_eq!((d.min, d.max, d.seconds), (Some(9.5), Some(600.0), 620.0));
    }
}

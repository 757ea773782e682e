//! Response-time arithmetic: durations of each interaction (wall-clock or business time),
//! then count, mean, extremes, percentiles (as PostgreSQL's `percentile_cont`) and SLA
//! attainment over a set of interactions.

use chrono::{DateTime, Utc};

use super::stats::{Change, two_proportion_change};

/// What storage returns for one interaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InteractionTimes {
    pub open: DateTime<Utc>,
    pub first_response: Option<DateTime<Utc>>,
    pub resolve: Option<DateTime<Utc>>,
}

/// SLA targets in seconds (of the same clock the durations are measured in).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SlaTargets {
    pub first_response: Option<f64>,
    pub resolution: Option<f64>,
}

/// One interaction's durations in seconds. For a missing response, the time it has waited
/// until the query instead, to decide whether it already breaches a target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub first_response: Result<f64, f64>,
    pub resolution: Result<f64, f64>,
}

impl Measured {
    /// Measures with `elapsed(from, to)`: wall-clock or business seconds.
    pub fn new(
        times: &InteractionTimes,
        now: DateTime<Utc>,
        elapsed: impl Fn(DateTime<Utc>, DateTime<Utc>) -> f64,
    ) -> Self {
        let measure = |end: Option<DateTime<Utc>>| match end {
            Some(end) => Ok(elapsed(times.open, end)),
            None => Err(elapsed(times.open, now.max(times.open))),
        };
        Self {
            first_response: measure(times.first_response),
            resolution: measure(times.resolve),
        }
    }
}

/// Wall-clock seconds from `a` to `b`, exact to the nanosecond.
pub fn wall_seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    let d = b - a;
    d.num_seconds() as f64 + f64::from(d.subsec_nanos()) / 1e9
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
}

impl DurationStats {
    pub fn from_values(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        Self {
            count: n as i64,
            mean: Some(values.iter().sum::<f64>() / n as f64),
            min: values.first().copied(),
            max: values.last().copied(),
            p50: percentile_cont(&values, 0.50),
            p90: percentile_cont(&values, 0.90),
            p95: percentile_cont(&values, 0.95),
            p99: percentile_cont(&values, 0.99),
        }
    }
}

/// PostgreSQL's `percentile_cont(p)` over sorted values: linear interpolation between the
/// values at ranks floor and ceil of p x (n - 1).
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

impl SlaStats {
    /// Met: answered within the target; breached: answered later, or still waiting longer
    /// than the target.
    fn new<'a>(durations: impl Iterator<Item = &'a Result<f64, f64>>, target: f64) -> Self {
        let mut s = Self::default();
        for d in durations {
            match *d {
                Ok(took) if took <= target => s.met += 1,
                Ok(_) => s.breached += 1,
                Err(waiting) if waiting > target => s.breached += 1,
                Err(_) => {}
            }
        }
        let judged = s.met + s.breached;
        s.attainment = (judged > 0).then(|| 100.0 * s.met as f64 / judged as f64);
        s
    }
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
    pub fn new(measured: &[Measured], targets: SlaTargets) -> Self {
        let answered = |d: &Result<f64, f64>| d.ok();
        Self {
            interactions: measured.len() as i64,
            unanswered: measured
                .iter()
                .filter(|m| m.first_response.is_err())
                .count() as i64,
            unresolved: measured.iter().filter(|m| m.resolution.is_err()).count() as i64,
            first_response: DurationStats::from_values(
                measured
                    .iter()
                    .filter_map(|m| answered(&m.first_response))
                    .collect(),
            ),
            resolution: DurationStats::from_values(
                measured
                    .iter()
                    .filter_map(|m| answered(&m.resolution))
                    .collect(),
            ),
            first_response_sla: targets
                .first_response
                .map(|t| SlaStats::new(measured.iter().map(|m| &m.first_response), t)),
            resolution_sla: targets
                .resolution
                .map(|t| SlaStats::new(measured.iter().map(|m| &m.resolution), t)),
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

    #[test]
    fn an_unanswered_interaction_breaches_only_once_older_than_the_target() {
        let durations = [Ok(60.0), Ok(600.0), Err(1000.0), Err(10.0)];
        let sla = SlaStats::new(durations.iter(), 300.0);
        assert_eq!((sla.met, sla.breached), (1, 2));
        assert!((sla.attainment.unwrap() - 100.0 / 3.0).abs() < 1e-9);
        let none = SlaStats::new([Err(1.0)].iter(), 300.0);
        assert_eq!(none.attainment, None);
    }

    #[test]
    fn a_response_exactly_at_the_target_meets_it() {
        let sla = SlaStats::new([Ok(300.0)].iter(), 300.0);
        assert_eq!((sla.met, sla.breached), (1, 0));
    }
}

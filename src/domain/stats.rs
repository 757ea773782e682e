//! The metric arithmetic of design section 2: counts of scores in, NPS, CSAT and CES with
//! their intervals and the significance of a change out. Pure functions, no I/O.

use std::collections::BTreeMap;

use super::ScoreScale;

/// How often one score was given on one scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreCount {
    pub score: i16,
    pub scale: ScoreScale,
    pub count: i64,
}

/// The two-sided 95% normal quantile.
const Z95: f64 = 1.959_963_984_540_054;
/// The design's rounded quantile for the NPS margin of error.
const NPS_Z: f64 = 1.96;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NpsStats {
    pub responses: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    pub nps: Option<f64>,
    pub margin_of_error: Option<f64>,
}

impl NpsStats {
    /// Promoters score 9-10, passives 7-8, detractors 0-6.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = &'a ScoreCount>) -> Self {
        let mut s = Self::default();
        for c in counts {
            s.responses += c.count;
            match c.score {
                9.. => s.promoters += c.count,
                7..=8 => s.passives += c.count,
                _ => s.detractors += c.count,
            }
        }
        if s.responses > 0 {
            let n = s.responses as f64;
            let (p, d) = (s.promoters as f64 / n, s.detractors as f64 / n);
            s.nps = Some(100.0 * (p - d));
            s.margin_of_error = Some(NPS_Z * 100.0 * nps_variance(p, d).sqrt() / n.sqrt());
        }
        s
    }

    /// The standard error of the NPS, in points.
    fn standard_error(&self) -> Option<f64> {
        let n = self.responses as f64;
        (self.responses > 0).then(|| {
            let (p, d) = (self.promoters as f64 / n, self.detractors as f64 / n);
            100.0 * (nps_variance(p, d) / n).sqrt()
        })
    }

    /// The change from `previous`: NPS difference over sqrt(se1^2 + se2^2).
    pub fn change_from(&self, previous: &NpsStats) -> Change {
        let (Some(now), Some(before)) = (self.nps, previous.nps) else {
            return Change::default();
        };
        let delta = now - before;
        let se = self
            .standard_error()
            .unwrap_or(0.0)
            .hypot(previous.standard_error().unwrap_or(0.0));
        Change::from_z(delta, (se > 0.0).then(|| delta / se), delta == 0.0)
    }
}

/// Variance of one answer's NPS contribution (+1, 0, -1): p + d - (p - d)^2.
fn nps_variance(p: f64, d: f64) -> f64 {
    (p + d - (p - d).powi(2)).max(0.0)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsatStats {
    pub responses: i64,
    pub satisfied: i64,
    pub csat: Option<f64>,
    pub mean_score: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub score_counts: BTreeMap<i16, i64>,
}

impl CsatStats {
    /// Satisfied = the top two points of each answer's own scale.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = &'a ScoreCount>) -> Self {
        let mut s = Self::default();
        let mut sum = 0i64;
        for c in counts {
            s.responses += c.count;
            sum += i64::from(c.score) * c.count;
            if c.score >= c.scale.max - 1 {
                s.satisfied += c.count;
            }
            *s.score_counts.entry(c.score).or_default() += c.count;
        }
        if s.responses > 0 {
            let n = s.responses as f64;
            s.csat = Some(100.0 * s.satisfied as f64 / n);
            s.mean_score = Some(sum as f64 / n);
            let (low, high) = wilson(s.satisfied, s.responses);
            s.ci_low = Some(100.0 * low);
            s.ci_high = Some(100.0 * high);
        }
        s
    }

    /// Two-proportion z-test on the satisfied shares.
    pub fn change_from(&self, previous: &CsatStats) -> Change {
        two_proportion_change(
            (self.satisfied, self.responses),
            (previous.satisfied, previous.responses),
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CesStats {
    pub responses: i64,
    pub easy: i64,
    pub easy_share: Option<f64>,
    pub mean_score: Option<f64>,
}

impl CesStats {
    /// Easy = the top three points of each answer's own scale (5-7 on 1..7).
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = &'a ScoreCount>) -> Self {
        let mut s = Self::default();
        let mut sum = 0i64;
        for c in counts {
            s.responses += c.count;
            sum += i64::from(c.score) * c.count;
            if c.score >= c.scale.max - 2 {
                s.easy += c.count;
            }
        }
        if s.responses > 0 {
            let n = s.responses as f64;
            s.easy_share = Some(100.0 * s.easy as f64 / n);
            s.mean_score = Some(sum as f64 / n);
        }
        s
    }

    /// Two-proportion z-test on the easy shares.
    pub fn change_from(&self, previous: &CesStats) -> Change {
        two_proportion_change(
            (self.easy, self.responses),
            (previous.easy, previous.responses),
        )
    }
}

/// The 95% Wilson score interval of `hits` out of `n` (n > 0), as shares 0..1.
pub fn wilson(hits: i64, n: i64) -> (f64, f64) {
    let n = n as f64;
    let p = hits as f64 / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// The difference between two periods with its two-sided p-value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Change {
    /// Absent when either period has no records.
    pub delta: Option<f64>,
    /// Absent when the difference has no spread to test against.
    pub p_value: Option<f64>,
    pub significant: bool,
}

impl Change {
    /// `z` is the test statistic; without one (zero standard error) an unchanged value has
    /// p = 1 and a changed one has no p-value.
    fn from_z(delta: f64, z: Option<f64>, unchanged: bool) -> Self {
        let p_value = match z {
            Some(z) => Some(two_sided_p(z)),
            None if unchanged => Some(1.0),
            None => None,
        };
        Self {
            delta: Some(delta),
            p_value,
            significant: p_value.is_some_and(|p| p < 0.05),
        }
    }
}

/// Two-sided p-value of a standard normal statistic: erfc(|z| / sqrt 2).
pub fn two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Pooled two-proportion z-test of `now` = (hits, n) against `before`; delta in points.
pub fn two_proportion_change(now: (i64, i64), before: (i64, i64)) -> Change {
    let ((x1, n1), (x2, n2)) = (now, before);
    if n1 == 0 || n2 == 0 {
        return Change::default();
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    let delta = 100.0 * (p1 - p2);
    Change::from_z(delta, (se > 0.0).then(|| (p1 - p2) / se), p1 == p2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NPS: ScoreScale = ScoreScale { min: 0, max: 10 };
    const FIVE: ScoreScale = ScoreScale { min: 1, max: 5 };

    fn counts(scale: ScoreScale, scores: &[(i16, i64)]) -> Vec<ScoreCount> {
        scores
            .iter()
            .map(|&(score, count)| ScoreCount {
                score,
                scale,
                count,
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn scores_six_to_nine_fall_into_the_right_nps_categories() {
        let s = NpsStats::from_counts(&counts(NPS, &[(6, 1), (7, 1), (8, 1), (9, 1)]));
        assert_eq!((s.detractors, s.passives, s.promoters), (1, 2, 1));
        assert_eq!(s.nps, Some(0.0));
    }

    #[test]
    fn nps_and_its_margin_follow_the_design_formula() {
        // 50 promoters, 30 passives, 20 detractors: NPS 30.
        let s = NpsStats::from_counts(&counts(NPS, &[(10, 50), (8, 30), (0, 20)]));
        assert!(close(s.nps.unwrap(), 30.0));
        let expected = 1.96 * 100.0 * ((0.5 + 0.2 - 0.09) / 100.0f64).sqrt();
        assert!(close(s.margin_of_error.unwrap(), expected));
    }

    #[test]
    fn rates_over_no_records_are_absent() {
        let s = NpsStats::from_counts(&[]);
        assert_eq!((s.responses, s.nps, s.margin_of_error), (0, None, None));
        let c = CsatStats::from_counts(&[]);
        assert_eq!((c.csat, c.mean_score, c.ci_low), (None, None, None));
        assert_eq!(CesStats::from_counts(&[]).easy_share, None);
        assert_eq!(
            s.change_from(&NpsStats::from_counts(&counts(NPS, &[(9, 3)]))),
            Change::default()
        );
    }

    #[test]
    fn csat_counts_the_top_two_points_of_each_scale() {
        let three = ScoreScale { min: 1, max: 3 };
        let ten = ScoreScale { min: 1, max: 10 };
        let mut all = counts(three, &[(1, 1), (2, 1), (3, 1)]);
        all.extend(counts(ten, &[(8, 1), (9, 1), (10, 1)]));
        let s = CsatStats::from_counts(&all);
        assert_eq!((s.responses, s.satisfied), (6, 4));
        assert_eq!(s.score_counts.get(&3), Some(&1));
    }

    #[test]
    fn the_wilson_interval_matches_a_known_value() {
        // 8 of 10: Wilson 95% interval (0.4902, 0.9433).
        let (low, high) = wilson(8, 10);
        assert!(
            (low - 0.4902).abs() < 1e-4 && (high - 0.9433).abs() < 1e-4,
            "{low} {high}"
        );
        let (low, high) = wilson(0, 5);
        assert_eq!(low, 0.0);
        assert!(high > 0.0);
    }

    #[test]
    fn ces_easy_is_the_top_three_points() {
        let seven = ScoreScale { min: 1, max: 7 };
        let s = CesStats::from_counts(&counts(seven, &[(4, 1), (5, 1), (7, 2)]));
        assert_eq!(s.easy, 3);
        assert!(close(s.mean_score.unwrap(), 23.0 / 4.0));
    }

    #[test]
    fn a_two_proportion_test_matches_a_hand_computation() {
        // 60/100 vs 45/100: pooled 0.525, se = sqrt(.525*.475*.02) = 0.07062, z = 2.124.
        let now = CsatStats::from_counts(&counts(FIVE, &[(5, 60), (1, 40)]));
        let before = CsatStats::from_counts(&counts(FIVE, &[(5, 45), (1, 55)]));
        let change = now.change_from(&before);
        assert!(close(change.delta.unwrap(), 15.0));
        assert!(
            (change.p_value.unwrap() - 0.03367).abs() < 1e-4,
            "{change:?}"
        );
        assert!(change.significant);
    }

    #[test]
    fn two_sided_p_of_1_96_is_five_percent() {
        assert!((two_sided_p(Z95) - 0.05).abs() < 1e-9);
        assert!(close(two_sided_p(0.0), 1.0));
    }

    #[test]
    fn identical_unanimous_periods_have_p_one() {
        let a = NpsStats::from_counts(&counts(NPS, &[(10, 5)]));
        let change = a.change_from(&a.clone());
        assert_eq!(
            change,
            Change {
                delta: Some(0.0),
                p_value: Some(1.0),
                significant: false
            }
        );
    }
}

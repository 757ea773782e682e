//! Comment themes (design section 2, "What customers say"): the arithmetic that ranks the
//! terms PostgreSQL counted. A term's z-score is the log-odds ratio of the negative side
//! against the positive one with an informative Dirichlet prior, over its standard
//! deviation (Monroe, Colaresi and Quinn 2008, "Fightin' Words", eq. 16-22); the ranking
//! keeps a fixed number of candidates whatever the number of terms streamed through it.

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, Days, Months, TimeZone, Utc};

use super::{MetricQuery, SurveyKind, stats::Change};

/// `max_themes` when the request leaves it 0.
pub const DEFAULT_MAX_THEMES: usize = 20;
/// The largest `max_themes`.
pub const MAX_THEMES: usize = 100;
/// `min_mentions` when the request leaves it out.
pub const DEFAULT_MIN_MENTIONS: i64 = 5;
/// Example responses per theme.
pub const EXAMPLES: usize = 3;
/// The longest `comment_query`, in characters.
pub const MAX_COMMENT_QUERY_CHARS: usize = 256;

/// alpha_0, the weight of the prior in term mentions: each term's prior alpha_w is alpha_0
/// times its share of all term mentions of both sides (the background corpus is the
/// request's own comments), as if alpha_0 mentions had been seen before the data.
pub const PRIOR_WEIGHT: f64 = 1000.0;

/// A parsed `CommentThemesRequest`.
#[derive(Debug, Clone)]
pub struct ThemeQuery {
    pub query: MetricQuery,
    pub kind: SurveyKind,
    pub max_themes: usize,
    /// At least 1: a term with no mention is no theme.
    pub min_mentions: i64,
}

/// The side a comment's answer puts it on; the codes are the migration's
/// `comment_side` (0 for neither, NPS passives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Negative,
    Positive,
}

impl Side {
    pub fn code(self) -> i16 {
        match self {
            Side::Negative => 1,
            Side::Positive => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Negative => "negative",
            Side::Positive => "positive",
        }
    }
}

/// How many comments of each side contain one term; `form` is how it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermCount {
    /// The stems, as PostgreSQL's `to_tsvector` gives them, a pair joined by a space.
    pub term: String,
    pub form: String,
    pub negative: i64,
    pub positive: i64,
}

/// The sum of every term's mentions on each side (n^i of the paper).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub negative: i64,
    pub positive: i64,
}

/// The z-score of a term mentioned `y_neg` and `y_pos` times when all terms are mentioned
/// `n.negative` and `n.positive` times:
///
/// ```text
/// a_w   = PRIOR_WEIGHT * (y_neg + y_pos) / (n_neg + n_pos)
/// delta = ln((y_neg + a_w) / (n_neg + a_0 - y_neg - a_w))
///       - ln((y_pos + a_w) / (n_pos + a_0 - y_pos - a_w))
/// var   = 1 / (y_neg + a_w) + 1 / (y_pos + a_w)
/// z     = delta / sqrt(var)
/// ```
///
/// None when either side has no mentions at all (nothing to compare against), and when the
/// term is every mention of both sides (the odds are infinite).
pub fn log_odds_z(y_neg: i64, y_pos: i64, n: Totals) -> Option<f64> {
    if n.negative <= 0 || n.positive <= 0 || y_neg < 0 || y_pos < 0 {
        return None;
    }
    let (yi, yj) = (y_neg as f64, y_pos as f64);
    let (ni, nj) = (n.negative as f64, n.positive as f64);
    let a0 = PRIOR_WEIGHT;
    let aw = a0 * (yi + yj) / (ni + nj);
    let (rest_i, rest_j) = (ni + a0 - yi - aw, nj + a0 - yj - aw);
    if aw <= 0.0 || rest_i <= 0.0 || rest_j <= 0.0 {
        return None;
    }
    let delta = ((yi + aw) / rest_i).ln() - ((yj + aw) / rest_j).ln();
    let variance = 1.0 / (yi + aw) + 1.0 / (yj + aw);
    Some(delta / variance.sqrt())
}

/// One ranked term.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub count: TermCount,
    pub z_score: Option<f64>,
}

impl Candidate {
    /// How strongly the term belongs to `side`: its z-score towards that side, or, when
    /// there is no z-score, its mentions on that side. Positive to be listed at all.
    fn strength(&self, side: Side) -> f64 {
        match (self.z_score, side) {
            (Some(z), Side::Negative) => z,
            (Some(z), Side::Positive) => -z,
            (None, Side::Negative) => self.count.negative as f64,
            (None, Side::Positive) => self.count.positive as f64,
        }
    }

    fn mentions_on(&self, side: Side) -> i64 {
        match side {
            Side::Negative => self.count.negative,
            Side::Positive => self.count.positive,
        }
    }

    /// Stronger first, then more mentions on the side, then by term: a total order.
    fn rank(&self, other: &Self, side: Side) -> Ordering {
        other
            .strength(side)
            .total_cmp(&self.strength(side))
            .then_with(|| other.mentions_on(side).cmp(&self.mentions_on(side)))
            .then_with(|| self.count.term.cmp(&other.count.term))
    }
}

/// The best `limit` candidates of each side among all terms pushed, in at most `2 * limit`
/// entries per side whatever the number of terms.
#[derive(Debug)]
pub struct Ranking {
    limit: usize,
    totals: Totals,
    negative: Vec<Candidate>,
    positive: Vec<Candidate>,
}

impl Ranking {
    pub fn new(limit: usize, totals: Totals) -> Self {
        Self {
            limit,
            totals,
            negative: Vec::new(),
            positive: Vec::new(),
        }
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Ranks one term; each term must be pushed once.
    pub fn push(&mut self, count: TermCount) {
        let candidate = Candidate {
            z_score: log_odds_z(count.negative, count.positive, self.totals),
            count,
        };
        let limit = self.limit;
        for side in [Side::Negative, Side::Positive] {
            if candidate.strength(side) > 0.0 && limit > 0 {
                let list = self.list(side);
                list.push(candidate.clone());
                if list.len() >= 2 * limit {
                    keep_best(list, side, limit);
                }
            }
        }
    }

    fn list(&mut self, side: Side) -> &mut Vec<Candidate> {
        match side {
            Side::Negative => &mut self.negative,
            Side::Positive => &mut self.positive,
        }
    }

    /// The negative and the positive themes, strongest first.
    pub fn finish(mut self) -> (Vec<Candidate>, Vec<Candidate>) {
        let limit = self.limit;
        keep_best(&mut self.negative, Side::Negative, limit);
        keep_best(&mut self.positive, Side::Positive, limit);
        (self.negative, self.positive)
    }
}

fn keep_best(list: &mut Vec<Candidate>, side: Side, limit: usize) {
    list.sort_by(|a, b| a.rank(b, side));
    list.truncate(limit);
}

/// One theme of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub term: String,
    pub phrase: String,
    pub negative_mentions: i64,
    pub positive_mentions: i64,
    pub z_score: Option<f64>,
    pub example_response_ids: Vec<String>,
    /// With compare_previous.
    pub change: Option<Change>,
}

impl Theme {
    pub fn mentions(&self) -> i64 {
        self.negative_mentions + self.positive_mentions
    }

    pub fn from_candidate(c: Candidate) -> Self {
        Self {
            term: c.count.term,
            phrase: c.count.form,
            negative_mentions: c.count.negative,
            positive_mentions: c.count.positive,
            z_score: c.z_score,
            example_response_ids: Vec::new(),
            change: None,
        }
    }
}

/// Comments of each side; `other` counts the answers on neither side (NPS passives).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommentCounts {
    pub negative: i64,
    pub positive: i64,
    pub other: i64,
}

impl CommentCounts {
    pub fn total(&self) -> i64 {
        self.negative + self.positive + self.other
    }

    pub fn on(&self, side: Side) -> i64 {
        match side {
            Side::Negative => self.negative,
            Side::Positive => self.positive,
        }
    }
}

/// A comment-themes report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThemesReport {
    pub comments: CommentCounts,
    pub negative_themes: Vec<Theme>,
    pub positive_themes: Vec<Theme>,
}

/// Where a part of a range is counted: the stored counts of whole UTC days (grain 1) or
/// months (grain 2), or the comments' own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Days,
    Months,
    Raw,
}

impl Source {
    /// The `grain` of migrations/20261201000010_comment_terms.sql; None for raw rows.
    pub fn grain(self) -> Option<i16> {
        match self {
            Source::Days => Some(1),
            Source::Months => Some(2),
            Source::Raw => None,
        }
    }
}

/// One part `[from, to)` of a range, where it is counted, and whether its counts are added
/// (`sign` 1) or subtracted (-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub source: Source,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub sign: i16,
}

/// What reading a month of stored counts costs, in days of them: a month holds each term
/// once, a day only the terms of that day, about a third as many on a busy tenant.
const MONTH_COST_DAYS: i64 = 3;

/// `[start, end)` as signed parts whose counts sum to the range's: whole UTC months and
/// days of stored counts, and raw rows at the edges. At each edge the shorter way wins:
/// days up to the next month, or the whole month less the days outside the range; raw
/// rows up to the next midnight, or the whole day less the raw rows outside the range.
pub fn cover(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Part> {
    let mut parts = Vec::new();
    let edges = (
        day_floor(start),
        day_ceil(start),
        day_floor(end),
        day_ceil(end),
    );
    let (Some(start_floor), Some(start_ceil), Some(end_floor), Some(end_ceil)) = edges else {
        push(&mut parts, Source::Raw, start, end);
        return parts;
    };
    // The nearer midnight; on a tie the one inside the range, so that nothing is subtracted.
    let d0 = if start_ceil - start <= start - start_floor {
        start_ceil
    } else {
        start_floor
    };
    let d1 = if end - end_floor <= end_ceil - end {
        end_floor
    } else {
        end_ceil
    };
    let raw_cost = (d0 - start).abs() + (end - d1).abs();
    if d0 >= d1 || raw_cost >= end - start {
        push(&mut parts, Source::Raw, start, end);
        return parts;
    }
    push(&mut parts, Source::Raw, start, d0);
    push_stored(&mut parts, d0, d1);
    push(&mut parts, Source::Raw, d1, end);
    parts
}

/// `[from, to)` with sign 1 when from < to, the reverse with sign -1 when to < from.
fn push(parts: &mut Vec<Part>, source: Source, from: DateTime<Utc>, to: DateTime<Utc>) {
    if from < to {
        parts.push(Part {
            source,
            from,
            to,
            sign: 1,
        });
    } else if to < from {
        parts.push(Part {
            source,
            from: to,
            to: from,
            sign: -1,
        });
    }
}

/// Whole days `[d0, d1)` as days and months: of the month spans from either month
/// boundary around `d0` to either around `d1`, and no months at all, the one that reads
/// the fewest stored counts (on a tie the first, inner boundaries first).
fn push_stored(parts: &mut Vec<Part>, d0: DateTime<Utc>, d1: DateTime<Utc>) {
    let days = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_days().abs();
    let mut best = (days(d0, d1), None);
    let starts = [month_ceil(d0), month_floor(d0)];
    let ends = [month_floor(d1), month_ceil(d1)];
    for a in starts.into_iter().flatten() {
        for b in ends.into_iter().flatten() {
            if a < b {
                let months = i64::from(months_between(a, b));
                let cost = days(a, d0) + days(d1, b) + MONTH_COST_DAYS * months;
                if cost < best.0 {
                    best = (cost, Some((a, b)));
                }
            }
        }
    }
    match best.1 {
        Some((a, b)) => {
            push(parts, Source::Days, d0, a);
            push(parts, Source::Months, a, b);
            push(parts, Source::Days, b, d1);
        }
        None => push(parts, Source::Days, d0, d1),
    }
}

fn months_between(a: DateTime<Utc>, b: DateTime<Utc>) -> i32 {
    (b.year() - a.year()) * 12 + b.month() as i32 - a.month() as i32
}

fn day_floor(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    t.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc())
}

fn day_ceil(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let floor = day_floor(t)?;
    if floor == t {
        Some(t)
    } else {
        floor.checked_add_days(Days::new(1))
    }
}

fn month_floor(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
}

fn month_ceil(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let floor = month_floor(t)?;
    if floor == t {
        Some(t)
    } else {
        floor.checked_add_months(Months::new(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn count(term: &str, negative: i64, positive: i64) -> TermCount {
        TermCount {
            term: term.into(),
            form: term.into(),
            negative,
            positive,
        }
    }

    #[test]
    fn the_z_score_follows_the_papers_formula() {
        let n = Totals {
            negative: 400,
            positive: 600,
        };
        let (yi, yj, a0) = (30.0, 10.0, PRIOR_WEIGHT);
        let aw = a0 * 40.0 / 1000.0;
        let delta =
            ((yi + aw) / (400.0 + a0 - yi - aw)).ln() - ((yj + aw) / (600.0 + a0 - yj - aw)).ln();
        let expected = delta / (1.0 / (yi + aw) + 1.0 / (yj + aw)).sqrt();
        let z = log_odds_z(30, 10, n).unwrap();
        assert!((z - expected).abs() < 1e-12, "{z} vs {expected}");
        assert!(z > 0.0);
        // Symmetric: swapping the sides negates it.
        let swapped = log_odds_z(
            10,
            30,
            Totals {
                negative: 600,
                positive: 400,
            },
        );
        assert!((swapped.unwrap() + z).abs() < 1e-12);
    }

    #[test]
    fn a_term_used_alike_on_both_sides_scores_zero() {
        let n = Totals {
            negative: 500,
            positive: 500,
        };
        assert!(log_odds_z(20, 20, n).unwrap().abs() < 1e-12);
    }

    #[test]
    fn an_empty_side_or_a_lone_term_has_no_z_score() {
        let one_sided = Totals {
            negative: 10,
            positive: 0,
        };
        assert_eq!(log_odds_z(10, 0, one_sided), None);
        assert_eq!(log_odds_z(0, 0, Totals::default()), None);
        let lone = Totals {
            negative: 5,
            positive: 7,
        };
        assert_eq!(log_odds_z(5, 7, lone), None);
    }

    #[test]
    fn the_ranking_keeps_the_strongest_terms_of_each_side_in_bounded_space() {
        let totals = Totals {
            negative: 100_000,
            positive: 100_000,
        };
        let counts: Vec<TermCount> = (0..1_000)
            .map(|i| {
                count(
                    &format!("t{i:04}"),
                    (i * 7919) % 1_000 + 1,
                    (i * 104_729) % 997 + 1,
                )
            })
            .collect();
        let mut ranking = Ranking::new(3, totals);
        for c in &counts {
            ranking.push(c.clone());
            assert!(ranking.negative.len() < 6 && ranking.positive.len() < 6);
        }
        let (negative, positive) = ranking.finish();
        // The same as sorting every term by its z-score.
        let mut all: Vec<(f64, String)> = counts
            .iter()
            .map(|c| {
                (
                    log_odds_z(c.negative, c.positive, totals).unwrap(),
                    c.term.clone(),
                )
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        let terms = |c: &[Candidate]| c.iter().map(|c| c.count.term.clone()).collect::<Vec<_>>();
        let top: Vec<String> = all.iter().take(3).map(|(_, t)| t.clone()).collect();
        let bottom: Vec<String> = all.iter().rev().take(3).map(|(_, t)| t.clone()).collect();
        assert_eq!(terms(&negative), top);
        assert_eq!(terms(&positive), bottom);
        assert!(negative.iter().all(|c| c.z_score.unwrap() > 0.0));
        assert!(positive.iter().all(|c| c.z_score.unwrap() < 0.0));
    }

    #[test]
    fn without_a_z_score_each_side_lists_its_terms_by_mentions() {
        let mut ranking = Ranking::new(
            5,
            Totals {
                negative: 30,
                positive: 0,
            },
        );
        ranking.push(count("late", 10, 0));
        ranking.push(count("rude", 20, 0));
        let (negative, positive) = ranking.finish();
        assert_eq!(negative[0].count.term, "rude");
        assert_eq!(negative[0].z_score, None);
        assert!(positive.is_empty());
    }

    /// Each part as (source, from, to, sign).
    fn parts(start: &str, end: &str) -> Vec<(Source, DateTime<Utc>, DateTime<Utc>, i16)> {
        cover(utc(start), utc(end))
            .iter()
            .map(|p| (p.source, p.from, p.to, p.sign))
            .collect()
    }

    /// Whether the signed parts add up to exactly `[start, end)`, hour by hour.
    fn covers_exactly(start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let parts = cover(start, end);
        let mut t = start - chrono::Duration::days(70);
        while t < end + chrono::Duration::days(70) {
            let sum: i16 = parts
                .iter()
                .filter(|p| p.from <= t && t < p.to)
                .map(|p| p.sign)
                .sum();
            if sum != i16::from(start <= t && t < end) {
                return false;
            }
            t += chrono::Duration::minutes(30);
        }
        true
    }

    #[test]
    fn a_range_is_covered_by_months_days_and_raw_edges() {
        use Source::*;
        assert_eq!(
            parts("2026-01-15T06:00:00Z", "2026-04-03T12:00:00Z"),
            [
                (
                    Raw,
                    utc("2026-01-15T00:00:00Z"),
                    utc("2026-01-15T06:00:00Z"),
                    -1
                ),
                (
                    Days,
                    utc("2026-01-15T00:00:00Z"),
                    utc("2026-02-01T00:00:00Z"),
                    1
                ),
                (
                    Months,
                    utc("2026-02-01T00:00:00Z"),
                    utc("2026-04-01T00:00:00Z"),
                    1
                ),
                (
                    Days,
                    utc("2026-04-01T00:00:00Z"),
                    utc("2026-04-03T00:00:00Z"),
                    1
                ),
                (
                    Raw,
                    utc("2026-04-03T00:00:00Z"),
                    utc("2026-04-03T12:00:00Z"),
                    1
                ),
            ]
        );
        // A year in Berlin: the whole months, less one hour at each end.
        assert_eq!(
            parts("2024-12-31T23:00:00Z", "2025-12-31T23:00:00Z"),
            [
                (
                    Raw,
                    utc("2024-12-31T23:00:00Z"),
                    utc("2025-01-01T00:00:00Z"),
                    1
                ),
                (
                    Months,
                    utc("2025-01-01T00:00:00Z"),
                    utc("2026-01-01T00:00:00Z"),
                    1
                ),
                (
                    Raw,
                    utc("2025-12-31T23:00:00Z"),
                    utc("2026-01-01T00:00:00Z"),
                    -1
                ),
            ]
        );
        // Late in a month: the month less the days before the range.
        assert_eq!(
            parts("2026-01-03T00:00:00Z", "2026-03-01T00:00:00Z"),
            [
                (
                    Days,
                    utc("2026-01-01T00:00:00Z"),
                    utc("2026-01-03T00:00:00Z"),
                    -1
                ),
                (
                    Months,
                    utc("2026-01-01T00:00:00Z"),
                    utc("2026-03-01T00:00:00Z"),
                    1
                ),
            ]
        );
    }

    #[test]
    fn short_or_aligned_ranges_need_no_raw_rows_or_no_stored_counts() {
        let within = cover(utc("2026-01-15T06:00:00Z"), utc("2026-01-15T09:00:00Z"));
        assert_eq!(within.len(), 1);
        assert_eq!(within[0].source, Source::Raw);
        let year = cover(utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"));
        assert_eq!(year.len(), 1);
        assert_eq!(year[0].source, Source::Months);
        let days = cover(utc("2026-01-03T00:00:00Z"), utc("2026-01-09T00:00:00Z"));
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].source, Source::Days);
    }

    #[test]
    fn the_signed_parts_of_any_range_add_up_to_it_exactly() {
        let base = utc("2026-01-01T00:00:00Z");
        let half_hours = [
            0, 1, 13, 47, 48, 49, 95, 600, 1_420, 1_488, 2_900, 4_400, 17_500,
        ];
        for &a in &half_hours {
            for &b in &half_hours {
                let start = base + chrono::Duration::minutes(30 * a);
                let end = base + chrono::Duration::minutes(30 * (a + b + 1));
                assert!(
                    covers_exactly(start, end),
                    "{start} .. {end}: {:?}",
                    cover(start, end)
                );
            }
        }
    }
}

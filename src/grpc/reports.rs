//! Domain reports to proto reports: the stats messages of every metric and the parts all
//! reports share (total, series, groups, previous, change).

use super::convert::to_timestamp;
use crate::{
    domain::{
        cohorts::Cohort,
        report::{GroupReport, Point, Report},
        response_times::{DurationStats, ResponseTimeChange, ResponseTimeStats, SlaStats},
        retention::RetentionStats,
        stats::{CesStats, Change, CsatStats, NpsStats},
        themes::{Theme, ThemesReport},
    },
    proto as pb,
};

/// Builds a proto report message (`NpsReport`, `CsatReport`, ...) from its `Parts`, with the
/// message's point and group types.
macro_rules! report_message {
    ($parts:expr, $report:ident, $point:ident, $group:ident) => {{
        let p = $parts;
        let points = |series: Vec<(prost_types::Timestamp, _)>| -> Vec<pb::$point> {
            series
                .into_iter()
                .map(|(t, s)| pb::$point {
                    start_time: Some(t),
                    stats: Some(s),
                })
                .collect()
        };
        pb::$report {
            total: p.total,
            series: points(p.series),
            groups: p
                .groups
                .into_iter()
                .map(|g| pb::$group {
                    key: g.key,
                    stats: Some(g.stats),
                    series: points(g.series),
                })
                .collect(),
            previous: p.previous,
            change: p.change,
        }
    }};
}
pub(crate) use report_message;

/// The parts every proto report shares, converted to proto stats and timestamps.
pub struct Parts<P, C = pb::MetricChange> {
    pub total: Option<P>,
    pub series: Vec<(prost_types::Timestamp, P)>,
    pub groups: Vec<GroupParts<P>>,
    pub previous: Option<P>,
    pub change: Option<C>,
}

/// One group's parts: its key, its stats and its own series (empty without a granularity).
pub struct GroupParts<P> {
    pub key: String,
    pub stats: P,
    pub series: Vec<(prost_types::Timestamp, P)>,
}

fn points<S, P>(
    series: Vec<Point<S>>,
    stats: &impl Fn(S) -> P,
) -> Vec<(prost_types::Timestamp, P)> {
    series
        .into_iter()
        .map(|p| (to_timestamp(p.start), stats(p.stats)))
        .collect()
}

pub fn parts<S, P, DC, C>(
    report: Report<S, DC>,
    stats: impl Fn(S) -> P,
    change: impl Fn(DC) -> C,
) -> Parts<P, C> {
    Parts {
        total: Some(stats(report.total)),
        series: points(report.series, &stats),
        groups: report
            .groups
            .into_iter()
            .map(|g: GroupReport<S>| GroupParts {
                key: g.key,
                stats: stats(g.stats),
                series: points(g.series, &stats),
            })
            .collect(),
        previous: report.previous.map(&stats),
        change: report.change.map(change),
    }
}

pub fn nps(s: NpsStats) -> pb::NpsStats {
    pb::NpsStats {
        responses: s.responses,
        promoters: s.promoters,
        passives: s.passives,
        detractors: s.detractors,
        nps: s.nps,
        margin_of_error: s.margin_of_error,
    }
}

pub fn csat(s: CsatStats) -> pb::CsatStats {
    pb::CsatStats {
        responses: s.responses,
        satisfied: s.satisfied,
        csat: s.csat,
        mean_score: s.mean_score,
        ci_low: s.ci_low,
        ci_high: s.ci_high,
        score_counts: s
            .score_counts
            .into_iter()
            .map(|(score, n)| (i32::from(score), n))
            .collect(),
    }
}

pub fn ces(s: CesStats) -> pb::CesStats {
    pb::CesStats {
        responses: s.responses,
        easy: s.easy,
        easy_share: s.easy_share,
        mean_score: s.mean_score,
    }
}

pub fn change(c: Change) -> pb::MetricChange {
    pb::MetricChange {
        delta: c.delta,
        p_value: c.p_value,
        significant: c.significant,
    }
}

fn durations(s: DurationStats) -> pb::DurationStats {
    pb::DurationStats {
        count: s.count,
        mean_seconds: s.mean,
        min_seconds: s.min,
        max_seconds: s.max,
        p50_seconds: s.p50,
        p90_seconds: s.p90,
        p95_seconds: s.p95,
        p99_seconds: s.p99,
        percentiles_exact: s.percentiles_exact,
    }
}

fn sla(s: SlaStats) -> pb::SlaStats {
    pb::SlaStats {
        met: s.met,
        breached: s.breached,
        attainment: s.attainment,
    }
}

pub fn response_times(s: ResponseTimeStats) -> pb::ResponseTimeStats {
    pb::ResponseTimeStats {
        interactions: s.interactions,
        unanswered: s.unanswered,
        unresolved: s.unresolved,
        first_response: Some(durations(s.first_response)),
        resolution: Some(durations(s.resolution)),
        first_response_sla: s.first_response_sla.map(sla),
        resolution_sla: s.resolution_sla.map(sla),
    }
}

pub fn response_time_change(c: ResponseTimeChange) -> pb::ResponseTimeChange {
    pb::ResponseTimeChange {
        first_response_mean_delta_seconds: c.first_response_mean_delta,
        resolution_mean_delta_seconds: c.resolution_mean_delta,
        first_response_attainment: c.first_response_attainment.map(change),
        resolution_attainment: c.resolution_attainment.map(change),
    }
}

pub fn retention(s: RetentionStats) -> pb::RetentionStats {
    pb::RetentionStats {
        start_customers: s.start_customers,
        end_customers: s.end_customers,
        new_customers: s.new_customers,
        retained: s.retained,
        churned: s.churned,
        retention_rate: s.retention_rate,
        churn_rate: s.churn_rate,
    }
}

pub fn cohort(c: Cohort) -> pb::Cohort {
    pb::Cohort {
        start_time: Some(to_timestamp(c.start)),
        size: c.size,
        active: c.active,
        rates: c.rates,
    }
}

pub fn comment_themes(r: ThemesReport) -> pb::CommentThemesReport {
    pb::CommentThemesReport {
        comments: r.comments.total(),
        negative_comments: r.comments.negative,
        positive_comments: r.comments.positive,
        negative_themes: r.negative_themes.into_iter().map(theme).collect(),
        positive_themes: r.positive_themes.into_iter().map(theme).collect(),
    }
}

fn theme(t: Theme) -> pb::CommentTheme {
    pb::CommentTheme {
        mentions: t.mentions(),
        phrase: t.phrase,
        negative_mentions: t.negative_mentions,
        positive_mentions: t.positive_mentions,
        z_score: t.z_score,
        example_response_ids: t.example_response_ids,
        change: t.change.map(change),
    }
}

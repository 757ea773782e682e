//! The metric use cases: admit the read, plan the buckets, run one aggregation query (for the
//! bucketed metrics the previous period rides along as an extra bucket) and build the
//! report. Shared by every transport.

use std::collections::BTreeMap;

use chrono::Utc;

use super::{admission::Admission, auth::Caller, calendars::find_calendar};
use crate::{
    domain::{
        MetricQuery, SurveyKind, buckets,
        cohorts::{ActivitySource, Cohort, CohortPlan},
        query::{CohortQuery, MAX_CELLS, MAX_GROUPS, ResponseTimeQuery, RetentionQuery},
        report::{self, GroupReport, Point, Report, ReportPlan, exceeds_groups},
        response_times::{ResponseTimeChange, ResponseTimeStats, Summary, clock_span, to_micros},
        retention::{
            RetentionCounts, RetentionReport, RetentionStats, bucket_counts, nps_category,
        },
        stats::{CesStats, Change, CsatStats, NpsStats, ScoreCount, two_proportion_change},
        themes::{CommentCounts, Ranking, Side, Theme, ThemeQuery, ThemesReport},
    },
    error::Error,
    storage::{ResponseTimeRead, Store, ThemeScope},
};

/// The groups of a retention report by NPS category, in the order they are reported.
const NPS_CATEGORIES: [&str; 4] = ["promoter", "passive", "detractor", "unknown"];

#[derive(Debug, Clone)]
pub struct Metrics {
    store: Store,
    admission: Admission,
}

impl Metrics {
    pub fn new(store: Store, admission: Admission) -> Self {
        Self { store, admission }
    }

    pub async fn nps(
        &self,
        caller: &Caller,
        query: &MetricQuery,
    ) -> Result<Report<NpsStats>, Error> {
        self.survey(
            caller,
            SurveyKind::Nps,
            query,
            |c| NpsStats::from_counts(c),
            NpsStats::change_from,
        )
        .await
    }

    pub async fn csat(
        &self,
        caller: &Caller,
        query: &MetricQuery,
    ) -> Result<Report<CsatStats>, Error> {
        self.survey(
            caller,
            SurveyKind::Csat,
            query,
            |c| CsatStats::from_counts(c),
            CsatStats::change_from,
        )
        .await
    }

    pub async fn ces(
        &self,
        caller: &Caller,
        query: &MetricQuery,
    ) -> Result<Report<CesStats>, Error> {
        self.survey(
            caller,
            SurveyKind::Ces,
            query,
            |c| CesStats::from_counts(c),
            CesStats::change_from,
        )
        .await
    }

    /// The report of one survey kind.
    async fn survey<S>(
        &self,
        caller: &Caller,
        kind: SurveyKind,
        query: &MetricQuery,
        stats: impl Fn(&[ScoreCount]) -> S,
        change: impl Fn(&S, &S) -> Change,
    ) -> Result<Report<S>, Error> {
        let _permit = self.admission.admit(&caller.tenant).await?;
        let plan = ReportPlan::new(query);
        let rows = self
            .store
            .score_counts(
                &caller.tenant,
                kind,
                query,
                &plan.boundaries,
                plan.group_limit(),
                caller.deadline,
            )
            .await?;
        check_groups(&rows, &plan, "group_by")?;
        Ok(report::build(query, &plan, &rows, stats, change))
    }

    pub async fn response_times(
        &self,
        caller: &Caller,
        parsed: ResponseTimeQuery,
    ) -> Result<Report<ResponseTimeStats, ResponseTimeChange>, Error> {
        let _permit = self.admission.admit(&caller.tenant).await?;
        let calendar = match &parsed.calendar_id {
            Some(id) => Some(
                find_calendar(&self.store, &caller.tenant, "calendar_id", id)
                    .await?
                    .calendar,
            ),
            None => None,
        };
        let plan = ReportPlan::new(&parsed.query);
        let now = to_micros(Utc::now());
        let clock = calendar.map(|calendar| {
            let (from, to) = clock_span(plan.boundaries[0], now);
            calendar.clock(from, to).columns()
        });
        let read = ResponseTimeRead {
            tenant: &caller.tenant,
            query: &parsed.query,
            plan: &plan,
            targets: parsed.targets,
            now,
            clock: clock.as_ref(),
        };
        // A scope without interactions reports the percentiles of its path as well.
        let empty = if parsed.reads_rollups() {
            Summary::sketched()
        } else {
            Summary::default()
        };
        let scoped = if parsed.reads_rollups() {
            let cells = self
                .store
                .response_times_from_rollups(&read, caller.deadline)
                .await?;
            check_groups(&cells, &plan, "query.group_by")?;
            report::roll_up(
                &parsed.query,
                &plan,
                &cells,
                Summary::sketched,
                Summary::add,
            )
            .map_err(|e| Error::Internal(e.into()))?
        } else {
            let scoped = self
                .store
                .response_times_exact(&read, caller.deadline)
                .await?;
            check_scoped_groups(&scoped, &plan, "query.group_by")?;
            scoped
        };
        let targets = parsed.targets;
        Ok(report::build_scoped(
            &parsed.query,
            &plan,
            &scoped,
            |s| ResponseTimeStats::new(s.unwrap_or(&empty), targets),
            ResponseTimeStats::change_from,
        ))
    }

    pub async fn retention(
        &self,
        caller: &Caller,
        q: &RetentionQuery,
    ) -> Result<RetentionReport, Error> {
        let _permit = self.admission.admit(&caller.tenant).await?;
        let bounds =
            buckets::boundaries(q.range.start(), q.range.end(), q.time_zone, q.granularity);
        let category_at = q.by_nps_category.then(|| q.range.start());
        let spans = self
            .store
            .customer_spans(&caller.tenant, &bounds, category_at, caller.deadline)
            .await?;
        let last = bounds.len() as i64 - 1;
        let mut total = RetentionCounts::default();
        let mut groups: BTreeMap<&str, RetentionCounts> = BTreeMap::new();
        for span in &spans {
            let counts = span.counts(0, last);
            total.add(&counts);
            if q.by_nps_category {
                groups
                    .entry(nps_category(span.latest))
                    .or_default()
                    .add(&counts);
            }
        }
        let series = if q.granularity.is_some() {
            bounds
                .iter()
                .zip(bucket_counts(&spans, bounds.len() - 1))
                .map(|(t, c)| Point {
                    start: *t,
                    stats: RetentionStats::from(c),
                })
                .collect()
        } else {
            Vec::new()
        };
        let groups = if q.by_nps_category {
            NPS_CATEGORIES
                .into_iter()
                .map(|key| {
                    let counts = groups.get(key).copied().unwrap_or_default();
                    GroupReport {
                        key: key.to_owned(),
                        stats: RetentionStats::from(counts),
                        series: Vec::new(),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(RetentionReport {
            total: RetentionStats::from(total),
            series,
            groups,
        })
    }

    pub async fn cohorts(&self, caller: &Caller, q: &CohortQuery) -> Result<Vec<Cohort>, Error> {
        let plan = CohortPlan::new(q.range, q.time_zone, q.granularity, q.periods);
        if plan.cohorts().saturating_mul(q.periods) > MAX_CELLS {
            return Err(Error::invalid(
                "periods",
                format!(
                    "{} cohorts x {} periods is more than the {MAX_CELLS} cells a report \
                     holds (use a coarser granularity, a shorter range or fewer periods)",
                    plan.cohorts(),
                    q.periods
                ),
            ));
        }
        let _permit = self.admission.admit(&caller.tenant).await?;
        let rows = self
            .store
            .cohort_activity(
                &caller.tenant,
                plan.grid(),
                plan.cohorts_end(),
                q.periods,
                ActivitySource::for_grid(plan.grid()),
                caller.deadline,
            )
            .await?;
        plan.build(&rows)
            .map_err(|e| Error::Internal(anyhow::anyhow!(e)))
    }
}

impl Metrics {
    /// The comment themes of `q`: PostgreSQL counts the terms and streams them through a
    /// ranking of bounded size; then one read finds the winners' examples and, with
    /// compare_previous, one more their counts in the previous period.
    pub async fn comment_themes(
        &self,
        caller: &Caller,
        q: &ThemeQuery,
    ) -> Result<ThemesReport, Error> {
        let _permit = self.admission.admit(&caller.tenant).await?;
        let scope = ThemeScope {
            tenant: &caller.tenant,
            kind: q.kind,
            range: q.query.range,
            filter: &q.query.filter,
        };
        let mut comments = CommentCounts::default();
        let mut ranking: Option<Ranking> = None;
        self.store
            .comment_term_counts(scope, q.min_mentions, None, caller.deadline, |row| {
                if row.is_comments() {
                    comments = row.comments();
                } else {
                    ranking
                        .get_or_insert_with(|| Ranking::new(q.max_themes, row.totals))
                        .push(row.count);
                }
            })
            .await?;
        let (negative, positive) = ranking.map(Ranking::finish).unwrap_or_default();
        let mut report = ThemesReport {
            comments,
            negative_themes: negative.into_iter().map(Theme::from_candidate).collect(),
            positive_themes: positive.into_iter().map(Theme::from_candidate).collect(),
        };
        self.add_examples(scope, &mut report, caller).await?;
        if q.query.compare_previous {
            let previous = ThemeScope {
                range: q.query.range.previous(),
                ..scope
            };
            self.add_changes(previous, &mut report, caller).await?;
        }
        Ok(report)
    }

    async fn add_examples(
        &self,
        scope: ThemeScope<'_>,
        report: &mut ThemesReport,
        caller: &Caller,
    ) -> Result<(), Error> {
        let wanted: Vec<(String, Side)> = sided(report)
            .map(|(side, theme)| (theme.term.clone(), side))
            .collect();
        let examples = self
            .store
            .comment_term_examples(scope, &wanted, caller.deadline)
            .await?;
        for (term, side, id) in examples {
            let list = match side {
                Side::Negative => &mut report.negative_themes,
                Side::Positive => &mut report.positive_themes,
            };
            if let Some(theme) = list.iter_mut().find(|t| t.term == term) {
                theme.example_response_ids.push(id);
            }
        }
        Ok(())
    }

    /// Each theme's change: the share of its side's comments that mention it, against the
    /// same share in `previous`.
    async fn add_changes(
        &self,
        previous: ThemeScope<'_>,
        report: &mut ThemesReport,
        caller: &Caller,
    ) -> Result<(), Error> {
        let terms: Vec<String> = sided(report).map(|(_, t)| t.term.clone()).collect();
        let mut before_comments = CommentCounts::default();
        let mut before = BTreeMap::new();
        self.store
            .comment_term_counts(previous, 0, Some(&terms), caller.deadline, |row| {
                if row.is_comments() {
                    before_comments = row.comments();
                } else {
                    before.insert(row.count.term.clone(), row.count);
                }
            })
            .await?;
        let now_comments = report.comments;
        let change = |theme: &Theme, side: Side| -> Change {
            let (now, then) = match side {
                Side::Negative => (
                    theme.negative_mentions,
                    before.get(&theme.term).map_or(0, |c| c.negative),
                ),
                Side::Positive => (
                    theme.positive_mentions,
                    before.get(&theme.term).map_or(0, |c| c.positive),
                ),
            };
            two_proportion_change(
                (now, now_comments.on(side)),
                (then, before_comments.on(side)),
            )
        };
        for theme in &mut report.negative_themes {
            theme.change = Some(change(theme, Side::Negative));
        }
        for theme in &mut report.positive_themes {
            theme.change = Some(change(theme, Side::Positive));
        }
        Ok(())
    }
}

/// Every theme of a report with its side.
fn sided(report: &ThemesReport) -> impl Iterator<Item = (Side, &Theme)> {
    let negative = report.negative_themes.iter().map(|t| (Side::Negative, t));
    let positive = report.positive_themes.iter().map(|t| (Side::Positive, t));
    negative.chain(positive)
}

/// INVALID_ARGUMENT naming `field` when the rows hold more groups than the plan allows.
fn check_groups<T>(
    rows: &[report::Bucketed<T>],
    plan: &ReportPlan,
    field: &str,
) -> Result<(), Error> {
    too_many_groups(exceeds_groups(rows, plan.group_limit()), plan, field)
}

/// `check_groups` for scoped items.
fn check_scoped_groups<T>(
    scoped: &[report::Scoped<T>],
    plan: &ReportPlan,
    field: &str,
) -> Result<(), Error> {
    too_many_groups(
        report::exceeds_scoped_groups(scoped, plan.group_limit()),
        plan,
        field,
    )
}

fn too_many_groups(exceeds: bool, plan: &ReportPlan, field: &str) -> Result<(), Error> {
    let limit = plan.group_limit();
    if exceeds {
        return Err(Error::invalid(
            field,
            format!(
                "gives more than {limit} groups over {} buckets; a report holds at most \
                 {MAX_GROUPS} groups and {MAX_CELLS} buckets x groups (use a coarser \
                 granularity, a shorter range or a filter)",
                plan.buckets()
            ),
        ));
    }
    Ok(())
}

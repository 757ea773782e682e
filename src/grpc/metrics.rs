//! `cxmetrics.v1.MetricsService`: NPS, CSAT, CES, response-time, retention and cohort
//! reports. Each call parses the request, runs one aggregation query (for the bucketed
//! metrics the previous period rides along as an extra bucket) and turns the rows into a
//! report.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use super::{
    admission::Admission,
    auth::Authenticator,
    calendars::find_calendar,
    convert::to_timestamp,
    query::{cohort_query, metric_query, response_time_query, retention_query},
    reports::{self, ces, change, csat, nps, parts, report_message},
};
use crate::{
    domain::{
        MetricQuery, Scope, SurveyKind, TenantId, buckets,
        calendar::{BusinessClock, Calendar},
        cohorts::CohortPlan,
        query::{MAX_CELLS, MAX_GROUPS},
        report::{self, Report, ReportPlan, exceeds_groups},
        response_times::{InteractionTimes, Measured, ResponseTimeStats, wall_seconds},
        retention::{RetentionCounts, RetentionStats, bucket_counts, nps_category},
        stats::{CesStats, Change, CsatStats, NpsStats, ScoreCount},
    },
    error::Error,
    proto::{self as pb, metrics_service_server::MetricsService},
    storage::Store,
};

pub struct MetricsApi {
    store: Store,
    auth: Authenticator,
    admission: Admission,
}

impl MetricsApi {
    pub fn new(store: Store, auth: Authenticator, admission: Admission) -> Self {
        Self {
            store,
            auth,
            admission,
        }
    }

    /// Authorises, parses and computes the report of one survey kind.
    async fn report<S>(
        &self,
        request: Request<pb::MetricRequest>,
        kind: SurveyKind,
        stats: impl Fn(&[ScoreCount]) -> S,
        change: impl Fn(&S, &S) -> Change,
    ) -> Result<Report<S>, Error> {
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let query = metric_query(request.into_inner())?;
        let _permit = self.admission.admit(&caller.tenant).await?;
        self.compute(&caller.tenant, kind, &query, stats, change)
            .await
    }

    async fn compute<S>(
        &self,
        tenant: &TenantId,
        kind: SurveyKind,
        query: &MetricQuery,
        stats: impl Fn(&[ScoreCount]) -> S,
        change: impl Fn(&S, &S) -> Change,
    ) -> Result<Report<S>, Error> {
        let plan = ReportPlan::new(query);
        let rows = self
            .store
            .score_counts(tenant, kind, query, &plan.boundaries, plan.group_limit())
            .await?;
        check_groups(&rows, &plan, "group_by")?;
        Ok(report::build(query, &plan, &rows, stats, change))
    }
}

/// INVALID_ARGUMENT naming `field` when the rows hold more groups than the plan allows.
fn check_groups<T>(
    rows: &[report::Bucketed<T>],
    plan: &ReportPlan,
    field: &str,
) -> Result<(), Error> {
    let limit = plan.group_limit();
    if exceeds_groups(rows, limit) {
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

/// Each interaction's durations, in the calendar's business seconds or wall-clock seconds.
#[tracing::instrument(name = "measure", skip_all, fields(rows = rows.len() as i64, business_hours = calendar.is_some()))]
fn measure(
    rows: &[report::Bucketed<InteractionTimes>],
    calendar: Option<&Calendar>,
    now: DateTime<Utc>,
) -> Vec<report::Bucketed<Measured>> {
    let clock = calendar.map(|calendar| business_clock(calendar, rows, now));
    rows.iter()
        .map(|r| report::Bucketed {
            bucket: r.bucket,
            group: r.group.clone(),
            item: match &clock {
                Some(clock) => Measured::new(&r.item, now, |a, b| clock.seconds_between(a, b)),
                None => Measured::new(&r.item, now, wall_seconds),
            },
        })
        .collect()
}

/// The calendar's open time over everything the rows are measured across: from the first
/// opening to the latest response, or now for the ones still waiting.
fn business_clock(
    calendar: &Calendar,
    rows: &[report::Bucketed<InteractionTimes>],
    now: DateTime<Utc>,
) -> BusinessClock {
    let times = rows.iter().map(|r| &r.item);
    let from = times.clone().map(|t| t.open).min().unwrap_or(now);
    let to = times
        .flat_map(|t| [t.first_response, t.resolve])
        .flatten()
        .fold(now, DateTime::max);
    calendar.clock(from, to)
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn get_nps(
        &self,
        request: Request<pb::MetricRequest>,
    ) -> Result<Response<pb::NpsReport>, Status> {
        let report = self
            .report(
                request,
                SurveyKind::Nps,
                |c| NpsStats::from_counts(c),
                NpsStats::change_from,
            )
            .await?;
        Ok(Response::new(report_message!(
            parts(report, nps, change),
            NpsReport,
            NpsPoint,
            NpsGroup
        )))
    }

    async fn get_csat(
        &self,
        request: Request<pb::MetricRequest>,
    ) -> Result<Response<pb::CsatReport>, Status> {
        let report = self
            .report(
                request,
                SurveyKind::Csat,
                |c| CsatStats::from_counts(c),
                CsatStats::change_from,
            )
            .await?;
        Ok(Response::new(report_message!(
            parts(report, csat, change),
            CsatReport,
            CsatPoint,
            CsatGroup
        )))
    }

    async fn get_ces(
        &self,
        request: Request<pb::MetricRequest>,
    ) -> Result<Response<pb::CesReport>, Status> {
        let report = self
            .report(
                request,
                SurveyKind::Ces,
                |c| CesStats::from_counts(c),
                CesStats::change_from,
            )
            .await?;
        Ok(Response::new(report_message!(
            parts(report, ces, change),
            CesReport,
            CesPoint,
            CesGroup
        )))
    }

    async fn get_response_times(
        &self,
        request: Request<pb::ResponseTimeRequest>,
    ) -> Result<Response<pb::ResponseTimeReport>, Status> {
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let parsed = response_time_query(request.into_inner())?;
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
        let rows = self
            .store
            .interaction_times(
                &caller.tenant,
                &parsed.query,
                &plan.boundaries,
                plan.group_limit(),
            )
            .await?;
        check_groups(&rows, &plan, "query.group_by")?;
        let targets = parsed.targets;
        let query = parsed.query;
        // Measuring and sorting every interaction's durations is CPU work that grows with
        // the rows: it runs on the blocking pool, never on an async worker thread.
        let compute = tracing::Span::current();
        let report = tokio::task::spawn_blocking(move || {
            let _entered = compute.enter();
            let measured = measure(&rows, calendar.as_ref(), Utc::now());
            report::build(
                &query,
                &plan,
                &measured,
                |m| ResponseTimeStats::new(m, targets),
                ResponseTimeStats::change_from,
            )
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        Ok(Response::new(report_message!(
            parts(
                report,
                reports::response_times,
                reports::response_time_change,
            ),
            ResponseTimeReport,
            ResponseTimePoint,
            ResponseTimeGroup
        )))
    }

    async fn get_retention(
        &self,
        request: Request<pb::RetentionRequest>,
    ) -> Result<Response<pb::RetentionReport>, Status> {
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let q = retention_query(request.into_inner())?;
        let _permit = self.admission.admit(&caller.tenant).await?;
        let bounds =
            buckets::boundaries(q.range.start(), q.range.end(), q.time_zone, q.granularity);
        let category_at = q.by_nps_category.then(|| q.range.start());
        let spans = self
            .store
            .customer_spans(&caller.tenant, &bounds, category_at)
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
        let periods = if q.granularity.is_some() {
            bucket_counts(&spans, bounds.len() - 1)
        } else {
            Vec::new()
        };
        let stats = |c: RetentionCounts| reports::retention(RetentionStats::from(c));
        Ok(Response::new(pb::RetentionReport {
            total: Some(stats(total)),
            series: bounds
                .iter()
                .zip(&periods)
                .map(|(t, c)| pb::RetentionPoint {
                    start_time: Some(to_timestamp(*t)),
                    stats: Some(stats(*c)),
                })
                .collect(),
            groups: if q.by_nps_category {
                ["promoter", "passive", "detractor", "unknown"]
                    .into_iter()
                    .map(|key| pb::RetentionGroup {
                        key: key.into(),
                        stats: Some(stats(groups.get(key).copied().unwrap_or_default())),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }))
    }

    async fn get_cohort_retention(
        &self,
        request: Request<pb::CohortRetentionRequest>,
    ) -> Result<Response<pb::CohortRetentionReport>, Status> {
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let q = cohort_query(request.into_inner())?;
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
            )
            .into());
        }
        let _permit = self.admission.admit(&caller.tenant).await?;
        let rows = self
            .store
            .cohort_activity(&caller.tenant, plan.grid(), plan.cohorts_end(), q.periods)
            .await?;
        let cohorts = plan
            .build(&rows)
            .map_err(|e| Error::Internal(anyhow::anyhow!(e)))?;
        Ok(Response::new(pb::CohortRetentionReport {
            cohorts: cohorts.into_iter().map(reports::cohort).collect(),
        }))
    }
}

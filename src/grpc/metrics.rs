//! `cxmetrics.v1.MetricsService`: NPS, CSAT and CES reports. Each call parses the request,
//! runs one aggregation query (the previous period rides along as an extra bucket) and
//! turns the counts into a report.

use tonic::{Request, Response, Status};

use super::{auth::Authenticator, convert::to_timestamp, query::metric_query};
use crate::{
    domain::{
        MetricQuery, Scope, SurveyKind, TenantId,
        report::{self, Report, ReportPlan},
        stats::{CesStats, Change, CsatStats, NpsStats, ScoreCount},
    },
    error::Error,
    proto::{self as pb, metrics_service_server::MetricsService},
    storage::Store,
};

pub struct MetricsApi {
    store: Store,
    auth: Authenticator,
}

impl MetricsApi {
    pub fn new(store: Store, auth: Authenticator) -> Self {
        Self { store, auth }
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
            .score_counts(tenant, kind, query, &plan.boundaries)
            .await?;
        Ok(report::build(query, &plan, &rows, stats, change))
    }
}

/// The parts every proto report shares, converted with `stats`.
struct Parts<P> {
    total: Option<P>,
    series: Vec<(prost_types::Timestamp, P)>,
    groups: Vec<(String, P)>,
    previous: Option<P>,
    change: Option<pb::MetricChange>,
}

fn parts<S, P>(report: Report<S>, stats: impl Fn(S) -> P) -> Parts<P> {
    Parts {
        total: Some(stats(report.total)),
        series: report
            .series
            .into_iter()
            .map(|(t, s)| (to_timestamp(t), stats(s)))
            .collect(),
        groups: report
            .groups
            .into_iter()
            .map(|(k, s)| (k, stats(s)))
            .collect(),
        previous: report.previous.map(&stats),
        change: report.change.map(|c| pb::MetricChange {
            delta: c.delta,
            p_value: c.p_value,
            significant: c.significant,
        }),
    }
}

fn nps(s: NpsStats) -> pb::NpsStats {
    pb::NpsStats {
        responses: s.responses,
        promoters: s.promoters,
        passives: s.passives,
        detractors: s.detractors,
        nps: s.nps,
        margin_of_error: s.margin_of_error,
    }
}

fn csat(s: CsatStats) -> pb::CsatStats {
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

fn ces(s: CesStats) -> pb::CesStats {
    pb::CesStats {
        responses: s.responses,
        easy: s.easy,
        easy_share: s.easy_share,
        mean_score: s.mean_score,
    }
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    #[tracing::instrument(skip_all, fields(tenant))]
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
        let p = parts(report, nps);
        Ok(Response::new(pb::NpsReport {
            total: p.total,
            series: p
                .series
                .into_iter()
                .map(|(t, s)| pb::NpsPoint {
                    start_time: Some(t),
                    stats: Some(s),
                })
                .collect(),
            groups: p
                .groups
                .into_iter()
                .map(|(key, s)| pb::NpsGroup {
                    key,
                    stats: Some(s),
                })
                .collect(),
            previous: p.previous,
            change: p.change,
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant))]
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
        let p = parts(report, csat);
        Ok(Response::new(pb::CsatReport {
            total: p.total,
            series: p
                .series
                .into_iter()
                .map(|(t, s)| pb::CsatPoint {
                    start_time: Some(t),
                    stats: Some(s),
                })
                .collect(),
            groups: p
                .groups
                .into_iter()
                .map(|(key, s)| pb::CsatGroup {
                    key,
                    stats: Some(s),
                })
                .collect(),
            previous: p.previous,
            change: p.change,
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant))]
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
        let p = parts(report, ces);
        Ok(Response::new(pb::CesReport {
            total: p.total,
            series: p
                .series
                .into_iter()
                .map(|(t, s)| pb::CesPoint {
                    start_time: Some(t),
                    stats: Some(s),
                })
                .collect(),
            groups: p
                .groups
                .into_iter()
                .map(|(key, s)| pb::CesGroup {
                    key,
                    stats: Some(s),
                })
                .collect(),
            previous: p.previous,
            change: p.change,
        }))
    }
}

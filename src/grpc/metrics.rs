//! `cxmetrics.v1.MetricsService`: NPS, CSAT, CES, response-time, retention and cohort
//! reports. Each method authorises, parses the request, asks `app::Metrics` for the report
//! and renders it.

use tonic::{Request, Response, Status};

use super::{
    authorize,
    convert::to_timestamp,
    query::{cohort_query, metric_query, response_time_query, retention_query, theme_query},
    reports::{self, ces, change, csat, nps, parts, report_message},
};
use crate::{
    app::{Authenticator, Metrics},
    domain::Scope,
    proto::{self as pb, metrics_service_server::MetricsService},
};

pub struct MetricsApi {
    auth: Authenticator,
    metrics: Metrics,
}

impl MetricsApi {
    pub fn new(auth: Authenticator, metrics: Metrics) -> Self {
        Self { auth, metrics }
    }
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn get_nps(
        &self,
        request: Request<pb::MetricRequest>,
    ) -> Result<Response<pb::NpsReport>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let query = metric_query(request.into_inner())?;
        let report = self.metrics.nps(&caller, &query).await?;
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
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let query = metric_query(request.into_inner())?;
        let report = self.metrics.csat(&caller, &query).await?;
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
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let query = metric_query(request.into_inner())?;
        let report = self.metrics.ces(&caller, &query).await?;
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
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let query = response_time_query(request.into_inner())?;
        let report = self.metrics.response_times(&caller, query).await?;
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
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let query = retention_query(request.into_inner())?;
        let report = self.metrics.retention(&caller, &query).await?;
        Ok(Response::new(pb::RetentionReport {
            total: Some(reports::retention(report.total)),
            series: report
                .series
                .into_iter()
                .map(|p| pb::RetentionPoint {
                    start_time: Some(to_timestamp(p.start)),
                    stats: Some(reports::retention(p.stats)),
                })
                .collect(),
            groups: report
                .groups
                .into_iter()
                .map(|g| pb::RetentionGroup {
                    key: g.key,
                    stats: Some(reports::retention(g.stats)),
                })
                .collect(),
        }))
    }

    async fn get_cohort_retention(
        &self,
        request: Request<pb::CohortRetentionRequest>,
    ) -> Result<Response<pb::CohortRetentionReport>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let query = cohort_query(request.into_inner())?;
        let cohorts = self.metrics.cohorts(&caller, &query).await?;
        Ok(Response::new(pb::CohortRetentionReport {
            cohorts: cohorts.into_iter().map(reports::cohort).collect(),
        }))
    }

    async fn get_comment_themes(
        &self,
        request: Request<pb::CommentThemesRequest>,
    ) -> Result<Response<pb::CommentThemesReport>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let query = theme_query(request.into_inner())?;
        let report = self.metrics.comment_themes(&caller, &query).await?;
        Ok(Response::new(reports::comment_themes(report)))
    }
}

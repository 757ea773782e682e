//! The HTTP surface for BI tools and browsers, on the gRPC port: every metric and listing
//! as a tidy table in JSON or CSV, computed by the same application layer as the gRPC
//! answer. A thin adapter: authorise, parse the query string, call `app`, render.
//!
//! Files: `params` reads the query string, `query` builds domain queries from it,
//! `reports` and `table` render, `problem` renders errors, `metrics` and `listing` hold
//! the handlers, `probes` the health endpoints.

mod listing;
mod metrics;
mod params;
mod probes;
mod problem;
mod query;
mod reports;
mod span;
mod table;

use std::{net::IpAddr, sync::Arc};

use axum::{
    Router,
    http::{HeaderMap, header, request::Parts},
    routing::get,
};
use tonic_health::server::HealthService;

use crate::{
    app::{Authenticator, Caller, Credentials, Metrics, Records},
    domain::Scope,
    error::Error,
};

pub use table::Format;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpApi {
    auth: Authenticator,
    metrics: Metrics,
    records: Records,
    health: Arc<HealthService>,
}

impl HttpApi {
    pub fn new(
        auth: Authenticator,
        metrics: Metrics,
        records: Records,
        health: HealthService,
    ) -> Self {
        Self {
            auth,
            metrics,
            records,
            health: Arc::new(health),
        }
    }

    /// The caller of a request: `Authorization: Bearer KEY`, or else `api_key=KEY` in the
    /// query string; every HTTP endpoint reads, so the key needs the read scope.
    async fn authorize(&self, parts: &Parts) -> Result<Caller, Error> {
        let from_query = api_key(parts.uri.query()).map(|key| format!("Bearer {key}"));
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let credentials = Credentials {
            authorization: header.or(from_query.as_deref()),
            peer: peer(parts),
        };
        let caller = self.auth.authenticate(credentials).await?;
        tracing::Span::current().record("cxmetrics.tenant", caller.tenant.as_str());
        caller.require(Scope::Read)?;
        Ok(caller)
    }
}

/// The routes, under the paths of design section 6.
pub fn router(api: HttpApi) -> Router {
    let probes = Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz));
    Router::new()
        .route("/v1/metrics/nps", get(metrics::nps))
        .route("/v1/metrics/csat", get(metrics::csat))
        .route("/v1/metrics/ces", get(metrics::ces))
        .route("/v1/metrics/response-times", get(metrics::response_times))
        .route("/v1/metrics/retention", get(metrics::retention))
        .route(
            "/v1/metrics/cohort-retention",
            get(metrics::cohort_retention),
        )
        .route("/v1/survey-responses", get(listing::survey_responses))
        .route("/v1/interactions", get(listing::interactions))
        .layer(axum::middleware::from_fn(span::traced))
        .merge(probes)
        .with_state(api)
}

/// The answer to a request no route serves: gRPC's UNIMPLEMENTED to gRPC clients, a 404
/// problem to everyone else.
pub async fn fallback(headers: HeaderMap) -> axum::response::Response {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented("")
            .into_http::<()>()
            .into_parts();
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    }
    problem::no_route()
}

/// The `api_key` query parameter, if any (the first, when given twice).
fn api_key(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "api_key")
        .map(|(_, value)| value.into_owned())
}

/// The peer's address, which tonic records on each connection (with or without TLS).
fn peer(parts: &Parts) -> Option<IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let tcp = parts.extensions.get::<TcpConnectInfo>().or_else(|| {
        parts
            .extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .map(TlsConnectInfo::get_ref)
    });
    tcp.and_then(TcpConnectInfo::remote_addr).map(|a| a.ip())
}

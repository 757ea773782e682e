//! The HTTP surface for BI tools and browsers, on the gRPC port: every metric and listing
//! as a tidy table in JSON or CSV, computed by the same application layer as the gRPC
//! answer. A thin adapter: authorise, parse the query string, call `app`, render.
//!
//! Files: `params` reads the query string, `query` builds domain queries from it (with
//! `domain::parse`, the rules gRPC applies), `reports` and `table` render, `problem` renders
//! errors, `metrics` and `listing` hold the handlers, `probes` the health endpoints, `span`
//! each request's SERVER span and deadline, `openapi` the generated description, `portal`
//! the dashboard's files at `/`.

mod listing;
mod metrics;
mod openapi;
mod params;
mod portal;
mod probes;
mod problem;
mod query;
mod reports;
mod span;
mod table;

use std::{future::Future, net::IpAddr, sync::Arc};

use axum::{
    Router,
    http::{HeaderMap, header, request::Parts},
    response::Response,
    routing::{MethodRouter, get},
};
use tonic_health::server::HealthService;

use self::{problem::problem, query::Request};
use crate::{
    app::{Authenticator, Caller, Credentials, Deadline, Metrics, Records},
    domain::Scope,
    error::Error,
};

pub use openapi::ApiDoc;

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
        let caller = self
            .auth
            .authenticate(credentials)
            .await?
            .with_deadline(parts.extensions.get::<Deadline>());
        tracing::Span::current().record("cxmetrics.tenant", caller.tenant.as_str());
        caller.require(Scope::Read)?;
        Ok(caller)
    }
}

/// Authorises, then runs `handle` with the parsed request; errors become problems.
async fn serve<F, Fut>(api: &HttpApi, parts: &Parts, handle: F) -> Response
where
    F: FnOnce(Caller, Request) -> Fut,
    Fut: Future<Output = Result<Response, Error>>,
{
    let answer = async {
        let caller = api.authorize(parts).await?;
        handle(caller, Request::new(parts)).await
    };
    answer.await.unwrap_or_else(problem)
}

/// The traced routes of the API, under the paths of design section 6.
fn api_routes() -> Vec<(&'static str, MethodRouter<HttpApi>)> {
    vec![
        ("/v1/metrics/nps", get(metrics::nps)),
        ("/v1/metrics/csat", get(metrics::csat)),
        ("/v1/metrics/ces", get(metrics::ces)),
        ("/v1/metrics/response-times", get(metrics::response_times)),
        ("/v1/metrics/retention", get(metrics::retention)),
        (
            "/v1/metrics/cohort-retention",
            get(metrics::cohort_retention),
        ),
        ("/v1/metrics/comment-themes", get(metrics::comment_themes)),
        ("/v1/survey-responses", get(listing::survey_responses)),
        ("/v1/interactions", get(listing::interactions)),
    ]
}

/// The untraced routes: probes (as gRPC health is not traced) and the API's description.
fn plain_routes() -> Vec<(&'static str, MethodRouter<HttpApi>)> {
    vec![
        ("/healthz", get(probes::healthz)),
        ("/readyz", get(probes::readyz)),
        ("/openapi.json", get(openapi::document)),
    ]
}

/// Every path the router serves.
pub fn paths() -> Vec<&'static str> {
    api_routes()
        .into_iter()
        .chain(plain_routes())
        .map(|(path, _)| path)
        .collect()
}

fn with_routes(
    router: Router<HttpApi>,
    routes: Vec<(&'static str, MethodRouter<HttpApi>)>,
) -> Router<HttpApi> {
    routes
        .into_iter()
        .fold(router, |router, (path, route)| router.route(path, route))
}

/// The routes of the HTTP API and the portal. Browser pages of `cors_origins` may call the `/v1` routes
/// (GET, with the `Authorization` header); no other origin gets CORS headers.
pub fn router(api: HttpApi, cors_origins: &[http::HeaderValue]) -> Router {
    let mut routes =
        with_routes(Router::new(), api_routes()).layer(axum::middleware::from_fn(span::traced));
    if !cors_origins.is_empty() {
        routes = routes.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::AllowOrigin::list(
                    cors_origins.iter().cloned(),
                ))
                .allow_methods([http::Method::GET])
                .allow_headers([header::AUTHORIZATION, header::ACCEPT])
                .max_age(std::time::Duration::from_secs(3600)),
        );
    }
    routes
        .merge(with_routes(Router::new(), plain_routes()))
        .merge(portal::router())
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::OpenApi;

    use super::*;

    #[test]
    fn every_route_is_documented_and_every_documented_path_is_a_route() {
        let doc = ApiDoc::openapi();
        let documented: BTreeSet<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        let served: BTreeSet<&str> = paths().into_iter().collect();
        assert_eq!(documented, served);
    }
}

//! The SERVER span of every HTTP API request, following the OpenTelemetry HTTP semantic
//! conventions (`http.request.method`, `http.route`, `url.path`,
//! `http.response.status_code`), continuing the caller's W3C trace context; and the
//! request's deadline, down to the database as for gRPC.
//!
//! Only the path is recorded, never the query string, which may carry `api_key`. The
//! probes are not traced, as gRPC health checks are not.

use std::time::{Duration, Instant};

use axum::{
    extract::{MatchedPath, Request},
    http::HeaderMap,
    middleware::Next,
    response::Response,
};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::problem::problem;
use crate::{app::Deadline, error::Error, grpc::Headers};

/// The header that bounds a request, in seconds (`Request-Timeout: 2.5`); without it, a
/// read is bounded by the service's read timeout alone. (`grpc-timeout` works too.)
pub const TIMEOUT_HEADER: &str = "request-timeout";

/// The longest deadline a caller may set: a day, so that the arithmetic cannot overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Runs the request in its SERVER span, under its deadline when it has one.
pub async fn traced(mut request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let route_name = route.as_deref().unwrap_or("unmatched");
    let span = tracing::info_span!(
        "http",
        otel.name = format!("{method} {route_name}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = Empty,
        cxmetrics.tenant = Empty,
    );
    if !span.is_disabled() {
        let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
        // Fails only when no OpenTelemetry layer is installed: then there is no trace to join.
        let _ = span.set_parent(parent);
    }
    let timeout = request_timeout(request.headers());
    if let Some(Ok(timeout)) = &timeout {
        // Handed to the application with the caller, and down to every read.
        request
            .extensions_mut()
            .insert(Deadline(Instant::now() + *timeout));
    }
    let call = next.run(request);
    let response = match timeout {
        Some(Ok(timeout)) => tokio::time::timeout(timeout, call)
            .instrument(span.clone())
            .await
            .unwrap_or_else(|_| problem(Error::DeadlineExceeded)),
        Some(Err(error)) => problem(error),
        None => call.instrument(span.clone()).await,
    };
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    response
}

/// The request's own timeout, if it sets one; a bad value is named.
fn request_timeout(headers: &HeaderMap) -> Option<Result<Duration, Error>> {
    let value = headers.get(TIMEOUT_HEADER)?;
    let seconds = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok());
    Some(
        seconds
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(s).min(MAX_TIMEOUT))
            .ok_or_else(|| {
                Error::invalid("Request-Timeout", "must be a positive number of seconds")
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<Result<Duration, Error>> {
        let mut headers = HeaderMap::new();
        headers.insert(TIMEOUT_HEADER, value.parse().unwrap());
        request_timeout(&headers)
    }

    #[test]
    fn a_timeout_is_a_positive_number_of_seconds_capped_at_a_day() {
        assert_eq!(parse("2.5").unwrap().unwrap(), Duration::from_millis(2_500));
        assert_eq!(parse("1e9").unwrap().unwrap(), MAX_TIMEOUT);
        for bad in ["0", "-1", "soon", "NaN", "inf"] {
            assert!(parse(bad).unwrap().is_err(), "{bad}");
        }
        assert!(request_timeout(&HeaderMap::new()).is_none());
    }
}

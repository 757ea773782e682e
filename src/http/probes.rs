//! Probes for orchestrators that cannot speak gRPC: `/healthz` answers while the process
//! serves at all; `/readyz` reports the status the gRPC health service reports for the
//! whole server (""), so both transports agree on readiness.

use axum::{extract::State, http::StatusCode};
use tonic::Request;
use tonic_health::pb::{HealthCheckRequest, health_check_response, health_server::Health};

use super::HttpApi;

/// Liveness: the process is up and serving requests.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: 200 while SERVING, 503 otherwise (database unreachable, not yet migrated,
/// shutting down).
pub async fn readyz(State(api): State<HttpApi>) -> (StatusCode, &'static str) {
    let request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    let serving = Health::check(api.health.as_ref(), request)
        .await
        .is_ok_and(|reply| {
            reply.into_inner().status == health_check_response::ServingStatus::Serving as i32
        });
    if serving {
        (StatusCode::OK, "serving\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
    }
}

//! The gRPC surface: one file per proto service, each a thin adapter that authorises the
//! call, parses the proto request into domain types, calls the application layer (`app`)
//! and renders the answer. Record parsing lives in `convert`, query parsing in `query`, the
//! SERVER span of every call in `rpc_span`, its deadline in `deadline`.

mod calendars;
pub mod convert;
mod deadline;
mod feedback;
mod import;
mod metrics;
pub mod query;
mod reports;
pub mod rpc_span;

use tonic::Request;

pub use calendars::CalendarApi;
pub use deadline::DeadlineLayer;
pub use feedback::FeedbackApi;
pub use metrics::MetricsApi;
pub(crate) use rpc_span::Headers;
pub use rpc_span::{RpcSpan, RpcSpanLayer};

use crate::{
    app::{Authenticator, Caller, Credentials, Deadline},
    domain::Scope,
    error::Error,
};

/// Authorises a gRPC call by its `authorization` metadata and peer address, and records the
/// caller's tenant on the call's span (also when the scope is then refused).
async fn authorize<T>(
    auth: &Authenticator,
    request: &Request<T>,
    scope: Scope,
) -> Result<Caller, Error> {
    let credentials = Credentials {
        authorization: request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok()),
        peer: request.remote_addr().map(|addr| addr.ip()),
    };
    let caller = auth
        .authenticate(credentials)
        .await?
        .with_deadline(request.extensions().get::<Deadline>());
    if let Some(RpcSpan(span)) = request.extensions().get() {
        span.record("cxmetrics.tenant", caller.tenant.as_str());
    }
    caller.require(scope)?;
    Ok(caller)
}

//! The gRPC surface: one file per proto service, translating proto messages to domain types
//! and back. Authentication lives in `auth`, record parsing in `convert`, the SERVER span of
//! every call in `rpc_span`, its deadline in `deadline`.

pub mod admission;
pub mod auth;
mod calendars;
pub mod convert;
mod deadline;
mod feedback;
mod import;
mod metrics;
mod paging;
pub mod query;
mod reports;
pub mod rpc_span;

pub use admission::{Admission, ReadLimits};
pub use auth::{Authenticator, Caller};
pub use calendars::CalendarApi;
pub use deadline::DeadlineLayer;
pub use feedback::FeedbackApi;
pub use metrics::MetricsApi;
pub use rpc_span::{RpcSpan, RpcSpanLayer};

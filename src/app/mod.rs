//! The application layer: the use cases every transport shares (authorise, admit, plan,
//! read or write through storage, build the report). It knows no transport: `grpc` and any
//! other adapter parse their requests into domain types, call in here and render the answer.

pub mod admission;
pub mod auth;
mod calendars;
pub mod import;
mod metrics;
pub mod paging;
mod records;

pub use admission::{Admission, ReadLimits};
pub use auth::{Authenticator, Caller, Credentials, Deadline};
pub use calendars::Calendars;
pub use metrics::Metrics;
pub use records::{ListQuery, Listed, Records};

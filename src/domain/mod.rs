//! Validated domain types and the rules every record obeys. No I/O here: the gRPC layer
//! parses requests into these types once, and everything past that boundary can trust them.

mod api_key;
pub mod buckets;
pub mod calendar;
pub mod cohorts;
pub mod grains;
pub mod parse;
pub mod query;
mod records;
pub mod report;
pub mod response_times;
pub mod retention;
mod scope;
pub mod sketch;
pub mod stats;
mod tenant;
pub mod themes;
mod validate;

pub use api_key::{KEY_PREFIX, NewApiKey, PresentedKey};
pub use buckets::Granularity;
pub use query::{Filter, GroupBy, MetricQuery, TimeRange};
pub use records::{
    Attributes, Customer, Interaction, RecordId, Score, ScoreScale, SurveyKind, SurveyResponse,
    WriteOutcome,
};
pub use scope::{Scope, Scopes};
pub use tenant::TenantId;
pub use validate::{Checker, Limits, MAX_VIOLATIONS, excerpt};

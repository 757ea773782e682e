//! The one error type of the service and its mapping to gRPC status codes.
//!
//! Internal causes (database errors, bugs) are logged here, once, and never sent to the
//! caller: the caller sees a code and a generic message.

use tonic::{Code, Status};

use crate::domain::MAX_VIOLATIONS;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// A bad field: its path in the request (e.g. `survey_responses[3].score`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }

    /// The same violation under a parent path: `score` becomes `survey_response.score`.
    pub fn under(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {}", join(.0))]
    InvalidArgument(Vec<Violation>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    ResourceExhausted(String),
    /// Shed load: the caller should retry after `retry_after` (RESOURCE_EXHAUSTED with a
    /// google.rpc.RetryInfo).
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The database cannot be reached: the call is safe to retry.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The service has not yet reached the database since it started (its migrations are
    /// not applied yet): safe to retry.
    #[error("database not ready")]
    NotReady,
    #[error("deadline exceeded")]
    DeadlineExceeded,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `error` and its causes on one line, each cause once: sqlx and other errors often repeat
/// their source in their own message, which `{:#}` would then print twice.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if line.contains(&message) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&message);
    }
    line
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![Violation::new(field, description)])
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => Self::Unavailable(error),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections,
                // serialization failure and deadlock: all safe to retry. So is
                // query_canceled outside a read (a write over the write timeout, e.g. behind
                // a lock): its transaction rolled back. Reads map it to DEADLINE_EXCEEDED
                // themselves, since their timeout is the caller's deadline.
                Some("57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" | "57014") => {
                    Self::Unavailable(error)
                }
                _ => Self::Internal(error.into()),
            },
            _ => Self::Internal(error.into()),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(mut violations) => {
                // Every parser caps its own list; this bounds a reply whatever built it.
                violations.truncate(MAX_VIOLATIONS + 1);
                let message = format!("invalid argument: {}", join(&violations));
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound(message) => Status::not_found(message),
            Error::Unauthenticated(message) => Status::unauthenticated(message),
            Error::PermissionDenied(message) => Status::permission_denied(message),
            Error::ResourceExhausted(message) => Status::resource_exhausted(message),
            Error::Overloaded {
                message,
                retry_after,
            } => Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            Error::DeadlineExceeded => Status::deadline_exceeded("deadline exceeded"),
            Error::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Status::unavailable("the database is unavailable; retry later")
            }
            Error::NotReady => {
                Status::unavailable("the service is not connected to its database yet; retry later")
            }
            Error::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_one_field_violation_per_bad_field() {
        let status: Status = Error::InvalidArgument(vec![
            Violation::new("score", "out of range").under("survey_response"),
            Violation::new("customer_id", "must not be empty"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status
            .get_details_bad_request()
            .expect("bad request details");
        let fields: Vec<_> = details
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["survey_response.score", "customer_id"]);
    }

    #[test]
    fn a_cause_that_its_parent_already_shows_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = anyhow::Error::from(sqlx::Error::Io(io)).context("connecting");
        assert_eq!(
            format!("{error:#}"),
            "connecting: error communicating with database: refused: refused"
        );
        assert_eq!(
            error_chain(&error),
            "connecting: error communicating with database: refused"
        );
    }

    #[test]
    fn a_service_not_yet_connected_is_unavailable() {
        let status: Status = Error::NotReady.into();
        assert_eq!(status.code(), Code::Unavailable);
    }

    #[test]
    fn an_internal_database_error_never_reaches_the_caller() {
        let status: Status = Error::from(sqlx::Error::Protocol("secret sql text".into())).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }
}

//! The one error type of the service, its transport-neutral code and what a caller is told
//! of it (`Reply`), mapped once to a gRPC status here (and by the HTTP adapter to a problem
//! response). SQLSTATE codes are mapped to these errors in `storage`.
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

/// The kind of an error, whatever the transport: each has one gRPC code and one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    Unauthenticated,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    DeadlineExceeded,
    Internal,
}

impl ErrorCode {
    pub fn grpc(self) -> Code {
        match self {
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::PermissionDenied => Code::PermissionDenied,
            ErrorCode::ResourceExhausted => Code::ResourceExhausted,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorCode::Internal => Code::Internal,
        }
    }

    pub fn http_status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ErrorCode::InvalidArgument => S::BAD_REQUEST,
            ErrorCode::NotFound => S::NOT_FOUND,
            ErrorCode::Unauthenticated => S::UNAUTHORIZED,
            ErrorCode::PermissionDenied => S::FORBIDDEN,
            ErrorCode::ResourceExhausted => S::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => S::SERVICE_UNAVAILABLE,
            ErrorCode::DeadlineExceeded => S::GATEWAY_TIMEOUT,
            ErrorCode::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Error::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Error::ResourceExhausted(_) | Error::Overloaded { .. } => ErrorCode::ResourceExhausted,
            Error::Unavailable(_) | Error::NotReady => ErrorCode::Unavailable,
            Error::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// What a caller is told of an error, for any transport to render: the code, a message,
/// the bad fields and a retry delay. Internal causes are logged when the reply is made,
/// once, and never put in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub code: ErrorCode,
    pub message: String,
    pub violations: Vec<Violation>,
    pub retry_after: Option<std::time::Duration>,
}

impl From<Error> for Reply {
    fn from(error: Error) -> Self {
        let code = error.code();
        let reply = |message: String| Reply {
            code,
            message,
            violations: Vec::new(),
            retry_after: None,
        };
        match error {
            Error::InvalidArgument(mut violations) => {
                // Every parser caps its own list; this bounds a reply whatever built it.
                violations.truncate(MAX_VIOLATIONS + 1);
                Reply {
                    message: format!("invalid argument: {}", join(&violations)),
                    violations,
                    ..reply(String::new())
                }
            }
            Error::NotFound(message)
            | Error::PermissionDenied(message)
            | Error::ResourceExhausted(message) => reply(message),
            Error::Unauthenticated(message) => reply(message.to_owned()),
            Error::Overloaded {
                message,
                retry_after,
            } => Reply {
                retry_after: Some(retry_after),
                ..reply(message)
            },
            Error::DeadlineExceeded => reply("deadline exceeded".into()),
            Error::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                reply("the database is unavailable; retry later".into())
            }
            Error::NotReady => {
                reply("the service is not connected to its database yet; retry later".into())
            }
            Error::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                reply("internal error".into())
            }
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let reply = Reply::from(error);
        let code = reply.code.grpc();
        if !reply.violations.is_empty() {
            let details = ErrorDetails::with_bad_request(
                reply
                    .violations
                    .into_iter()
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect::<Vec<_>>(),
            );
            return Status::with_error_details(code, reply.message, details);
        }
        match reply.retry_after {
            Some(delay) => Status::with_error_details(
                code,
                reply.message,
                ErrorDetails::with_retry_info(Some(delay)),
            ),
            None => Status::new(code, reply.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_has_its_grpc_code_and_http_status() {
        let cases = [
            (Error::invalid("f", "bad"), Code::InvalidArgument, 400),
            (Error::Unauthenticated("no key"), Code::Unauthenticated, 401),
            (
                Error::PermissionDenied("scope".into()),
                Code::PermissionDenied,
                403,
            ),
            (Error::NotFound("calendar".into()), Code::NotFound, 404),
            (
                Error::Overloaded {
                    message: "busy".into(),
                    retry_after: std::time::Duration::from_secs(1),
                },
                Code::ResourceExhausted,
                429,
            ),
            (Error::NotReady, Code::Unavailable, 503),
            (Error::DeadlineExceeded, Code::DeadlineExceeded, 504),
            (Error::Internal(anyhow::anyhow!("x")), Code::Internal, 500),
        ];
        for (error, grpc, http) in cases {
            let code = error.code();
            assert_eq!((code.grpc(), code.http_status().as_u16()), (grpc, http));
        }
    }

    #[test]
    fn a_shed_call_carries_its_retry_delay() {
        let status: Status = Error::Overloaded {
            message: "busy".into(),
            retry_after: std::time::Duration::from_secs(2),
        }
        .into();
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(2)));
    }

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

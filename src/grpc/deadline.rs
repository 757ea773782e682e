//! The caller's deadline, taken from the `grpc-timeout` header and kept in the request's
//! extensions as an `app::Deadline`; the adapter hands it to the application with the
//! caller, and every read passes it down to PostgreSQL, so that the database stops a query
//! the caller no longer waits for. (tonic itself drops the handler when the deadline
//! passes; this carries it one level further.)

use std::{
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::HeaderMap;
use tower::{Layer, Service};

use crate::app::Deadline;

/// Records every call's deadline (`Server::builder().layer(DeadlineLayer)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for DeadlineService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(timeout) = grpc_timeout(request.headers()) {
            request
                .extensions_mut()
                .insert(Deadline(Instant::now() + timeout));
        }
        self.inner.call(request)
    }
}

/// The `grpc-timeout` header: up to eight digits and a unit (H, M, S, m, u, n). None when
/// absent or malformed (the call then has no deadline of its own).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        grpc_timeout(&headers)
    }

    #[test]
    fn every_unit_of_grpc_timeout_is_understood() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
    }

    #[test]
    fn a_malformed_or_missing_grpc_timeout_is_no_deadline() {
        for bad in ["", "S", "5", "5s", "123456789m", "-5S", "1.5S", "5 S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }
}

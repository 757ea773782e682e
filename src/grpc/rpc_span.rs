//! The SERVER span of every call to a `cxmetrics.v1` service, as a tower layer around the
//! tonic router, following the OpenTelemetry RPC semantic conventions.
//!
//! The span is named `cxmetrics.v1.Service/Method` and continues the caller's trace when the
//! request carries W3C trace context (`traceparent`, `tracestate`). It covers the handler
//! and the sending of the reply, records the gRPC status code from the response headers (an
//! error sent without a body) or from the trailers, and is an error only for the codes that
//! mean the server failed. Health checks and reflection are not traced.
//!
//! Authentication records the caller's tenant on the span it finds in the request's
//! extensions ([`RpcSpan`]); nothing else about the caller or the request is recorded.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::{Code, body::Body};
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The package whose services are traced.
const TRACED_PACKAGE: &str = "cxmetrics.";

/// Codes that mean the server failed, as opposed to the caller sending a bad request.
const SERVER_ERRORS: &[Code] = &[
    Code::Unknown,
    Code::DeadlineExceeded,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
];

/// The SERVER span of the current call, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RpcSpan(pub Span);

/// Wraps every call in its SERVER span (`Server::builder().layer(RpcSpanLayer)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcSpanLayer;

impl<S> Layer<S> for RpcSpanLayer {
    type Service = RpcSpanService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcSpanService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcSpanService<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for RpcSpanService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let Some(span) = server_span(&request) else {
            return Box::pin(self.inner.call(request));
        };
        request.extensions_mut().insert(RpcSpan(span.clone()));
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(async move {
            let response = response.instrument(span.clone()).await;
            let Ok(response) = response else {
                span.record("otel.status_code", "error");
                return response;
            };
            // An error reply without a body carries its status in the headers.
            let done = tonic::Status::from_header_map(response.headers())
                .map(|status| record_status(&span, &status))
                .is_some();
            Ok(response.map(|inner| {
                Body::new(TracedBody {
                    inner,
                    span,
                    recorded: done,
                })
            }))
        })
    }
}

/// The span of a traced call, or `None` for an untraced path (health, reflection).
fn server_span<B>(request: &http::Request<B>) -> Option<Span> {
    let name = request.uri().path().strip_prefix('/')?;
    let (service, method) = name.split_once('/')?;
    if !service.starts_with(TRACED_PACKAGE) {
        return None;
    }
    let span = tracing::info_span!(
        "rpc",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        cxmetrics.tenant = Empty,
    );
    if !span.is_disabled() {
        let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
        // Fails only when no OpenTelemetry layer is installed: then there is no trace to join.
        let _ = span.set_parent(parent);
    }
    Some(span)
}

fn record_status(span: &Span, status: &tonic::Status) {
    span.record("rpc.grpc.status_code", status.code() as i32);
    if SERVER_ERRORS.contains(&status.code()) {
        span.record("otel.status_code", "error");
    }
}

/// W3C trace context read from the request headers (gRPC metadata).
pub(crate) struct Headers<'a>(pub(crate) &'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}

/// The reply body, sent inside the call's span; records the status from the trailers. The
/// span ends when the body is dropped, that is once the reply is sent.
struct TracedBody {
    inner: Body,
    span: Span,
    /// Whether the status is already recorded.
    recorded: bool,
}

impl http_body::Body for TracedBody {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = this
            .span
            .in_scope(|| Pin::new(&mut this.inner).poll_frame(cx));
        if let (false, Poll::Ready(Some(Ok(frame)))) = (this.recorded, &polled)
            && let Some(status) = frame
                .trailers_ref()
                .and_then(tonic::Status::from_header_map)
        {
            record_status(&this.span, &status);
            this.recorded = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

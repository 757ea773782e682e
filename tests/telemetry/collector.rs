//! A minimal OTLP/gRPC trace receiver, plaintext or TLS: it keeps every span it is sent,
//! with its resource.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::Span,
};
use tokio::net::TcpListener;
use tonic::{
    Request, Response, Status,
    transport::{Server, ServerTlsConfig, server::TcpIncoming},
};

/// One received span and the `service.name` of its resource.
#[derive(Debug, Clone)]
pub struct Received {
    pub service_name: Option<String>,
    pub service_version: Option<String>,
    pub span: Span,
}

#[derive(Clone, Default)]
pub struct Collector {
    received: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut received = self.received.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.unwrap_or_default().attributes;
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.push(Received {
                        service_name: string_attribute(&resource, "service.name"),
                        service_version: string_attribute(&resource, "service.version"),
                        span,
                    });
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves on an ephemeral port until the process ends; returns the collector and its
    /// endpoint URL.
    pub async fn start() -> (Self, String) {
        let (collector, addr) = Self::serve(Server::builder()).await;
        (collector, format!("http://{addr}"))
    }

    /// Serves over TLS with `tls`, on an ephemeral port of 127.0.0.1; returns the collector
    /// and its endpoint URL, `https://localhost:PORT`.
    pub async fn start_tls(tls: ServerTlsConfig) -> (Self, String) {
        let builder = Server::builder().tls_config(tls).expect("TLS settings");
        let (collector, addr) = Self::serve(builder).await;
        (collector, format!("https://localhost:{}", addr.port()))
    }

    async fn serve(mut builder: Server) -> (Self, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let collector = Self::default();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            builder
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        (collector, addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The spans received so far of the trace `trace_id` (16 bytes).
    pub fn trace(&self, trace_id: &[u8]) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.span.trace_id == trace_id)
            .collect()
    }
}

pub fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value {
            Some(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => Some(s.clone()),
            _ => None,
        })
}

/// An endpoint where nothing listens: a port that was just free.
pub async fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

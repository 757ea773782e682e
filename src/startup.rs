//! Wires storage, services, health, reflection and the HTTP API into one server on one
//! listener (gRPC and HTTP/1.1 or HTTP/2 side by side). `build` binds the
//! listener (port 0 works in tests); `run_until_stopped` serves at once, whether or not the
//! database answers, until the shutdown future resolves, then drains in-flight calls for at
//! most the grace period. Health reports NOT_SERVING until the database has been reached
//! and migrated, and whenever it stops answering.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc, oneshot},
    task::JoinHandle,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{
    codec::CompressionEncoding, service::Routes, transport::Server, transport::server::TcpIncoming,
};
use tonic_health::{
    ServingStatus,
    server::{HealthReporter, HealthService},
};

use crate::{
    app::{Admission, Authenticator, Calendars, Metrics, Records},
    config::Settings,
    config::TLS_HANDSHAKE_TIMEOUT,
    grpc::{CalendarApi, DeadlineLayer, FeedbackApi, MetricsApi, RpcSpanLayer},
    http::{self, HttpApi},
    proto::{
        self, calendar_service_server::CalendarServiceServer,
        feedback_service_server::FeedbackServiceServer,
        metrics_service_server::MetricsServiceServer,
    },
    storage::Store,
};

/// Bytes a client may send on one stream (call) before the service has read them.
///
/// h2 (0.4.16 on) charges each DATA frame under 256 bytes that sits unread in its buffers
/// `256 - payload` bytes against a budget per connection, half the connection window (at
/// least 25,600 bytes); reading the frame pays it back, and a connection that overdraws it
/// is closed with GOAWAY ENHANCE_YOUR_CALM `too_many_data_frames`. hyper does not let a
/// server change the budget, so the windows must keep what a client can leave unread below
/// it. grpcio, Go and Java clients send each message as its own DATA frame, and an import
/// record is a 20-100 byte message. With hyper's defaults (1 MiB windows, so a 512 KiB
/// budget) a stream that pauses for one chunk commit may hold 24,000 unread 43-byte frames,
/// while 2,460 exhaust the budget. A 64 KiB stream window holds at most 3,640 frames even of
/// the smallest valid record (18 bytes: 866,320 budget bytes), 1,524 of 43 bytes (324,612).
pub const STREAM_WINDOW_BYTES: u32 = 64 * 1024;

/// Bytes a client may send on all its streams of one connection before the service has read
/// them. Its half, 4 MiB, is h2's small-frame budget (see [`STREAM_WINDOW_BYTES`]): enough
/// for 4 streams of the smallest records, or 12 of 43-byte ones, to wait on the database at
/// once. With at most 100 streams of 64 KiB, 6.4 MiB of data is the most a connection
/// buffers unread.
pub const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;

pub struct Application {
    listener: TcpListener,
    store: Store,
    settings: Settings,
}

impl Application {
    /// Builds lazily connecting pools and binds: nothing waits for the database, which
    /// `run_until_stopped` reaches (and migrates) in the background.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect_lazy(&settings.db)?;
        Self::build_with_store(settings, store).await
    }

    /// Binds the listener for `store`; its pending migrations are applied once the server
    /// runs and the database answers (nothing to do when they already are).
    pub async fn build_with_store(settings: Settings, store: Store) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        Ok(Self {
            listener,
            store,
            settings,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has a local address.
        self.listener.local_addr().unwrap_or(self.settings.listen)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` resolves, then lets in-flight calls finish (bounded).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        // NOT_SERVING until the migrations are applied and the database answers a ping.
        set_all(&reporter, ServingStatus::NotServing).await;
        let health_task = spawn_readiness(
            reporter.clone(),
            self.store.clone(),
            self.settings.health_interval,
        );
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building reflection v1")?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .context("building reflection v1alpha")?;
        let auth = Authenticator::new(self.store.clone(), self.settings.key_cache_ttl);
        let admission = Admission::new(self.settings.read_limits);
        let records = Records::new(self.store.clone(), admission.clone());
        let metrics = Metrics::new(self.store.clone(), admission);
        let http = http::router(
            HttpApi::new(
                auth.clone(),
                metrics.clone(),
                records.clone(),
                HealthService::from_health_reporter(reporter.clone()),
            ),
            &self.settings.cors_origins,
        );
        let feedback = FeedbackServiceServer::new(FeedbackApi::new(auth.clone(), records))
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(self.settings.max_message_bytes);
        let metrics = MetricsServiceServer::new(MetricsApi::new(auth.clone(), metrics))
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(self.settings.max_message_bytes);
        let calendars =
            CalendarServiceServer::new(CalendarApi::new(auth, Calendars::new(self.store.clone())))
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(self.settings.max_message_bytes);

        let addr = self.local_addr();
        let (draining_tx, draining_rx) = oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested; draining in-flight calls");
            health_task.abort();
            set_all(&reporter, ServingStatus::NotServing).await;
            let _ = draining_tx.send(());
        };
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let builder = Server::builder()
            // HTTP/1.1 for the HTTP API's clients; gRPC and HTTP/2 clients negotiate h2.
            .accept_http1(true)
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            // An adaptive window would grow past the bounds above.
            .http2_adaptive_window(Some(false))
            .max_concurrent_streams(self.settings.max_streams_per_connection);
        let tls = match &self.settings.tls {
            Some(tls) if tls.is_mutual() => "mutual",
            Some(_) => "on",
            None => "off",
        };
        tracing::info!(%addr, tls, "cxmetrics listening");
        let mut grpc = Routes::builder();
        grpc.add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(feedback)
            .add_service(metrics)
            .add_service(calendars);
        // One router for both: gRPC under /cxmetrics.v1.*/ and /grpc.*/, HTTP under /v1/ and
        // the probes; anything else is UNIMPLEMENTED to gRPC clients, 404 to HTTP ones.
        let routes = grpc
            .routes()
            .into_axum_router()
            .merge(http)
            .fallback(http::fallback);
        let router = builder
            .layer(RpcSpanLayer)
            .layer(DeadlineLayer)
            .add_routes(Routes::from(routes));
        let server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
            match &self.settings.tls {
                Some(tls) => {
                    Box::pin(router.serve_with_incoming_shutdown(
                        tls_incoming(incoming, tls.acceptor()),
                        signal,
                    ))
                }
                None => Box::pin(router.serve_with_incoming_shutdown(incoming, signal)),
            };
        tokio::pin!(server);
        let grace = self.settings.shutdown_grace;
        tokio::select! {
            result = &mut server => result.context("serving gRPC")?,
            () = drain_deadline(draining_rx, grace) => {
                tracing::warn!(?grace, "in-flight calls did not finish in time; exiting anyway");
            }
        }
        // Bounded: connections still held by calls cut off after the grace period are dropped.
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// TLS handshakes that may run at once; further connections wait to be accepted.
const MAX_TLS_HANDSHAKES: usize = 256;

/// The TLS connections of `incoming`: each handshake runs in its own task, under a timeout
/// and at most `MAX_TLS_HANDSHAKES` at once, so that a slow or silent client holds up
/// nobody else; a failed handshake drops only its own connection. The acceptor offers both
/// h2 and http/1.1, so HTTP/1.1 clients of the HTTP API are served over TLS too.
fn tls_incoming(
    incoming: TcpIncoming,
    acceptor: TlsAcceptor,
) -> impl tokio_stream::Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(MAX_TLS_HANDSHAKES);
    tokio::spawn(async move {
        tokio::pin!(incoming);
        let handshakes = Arc::new(Semaphore::new(MAX_TLS_HANDSHAKES));
        loop {
            let tcp = tokio::select! {
                next = incoming.next() => match next {
                    Some(Ok(tcp)) => tcp,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "accepting a connection failed");
                        continue;
                    }
                    None => break,
                },
                // The server stopped: stop accepting.
                () = tx.closed() => break,
            };
            // The semaphore is never closed.
            let Ok(permit) = handshakes.clone().acquire_owned().await else {
                break;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Resolves `grace` after draining began; never if it did not.
async fn drain_deadline(draining: oneshot::Receiver<()>, grace: Duration) {
    if draining.await.is_ok() {
        tokio::time::sleep(grace).await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// The services whose status health reports: each API, then the whole server (""), last so
/// that a client watching "" sees every service already updated.
const HEALTH_SERVICES: &[&str] = &[
    "cxmetrics.v1.FeedbackService",
    "cxmetrics.v1.MetricsService",
    "cxmetrics.v1.CalendarService",
    "",
];

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    for service in HEALTH_SERVICES {
        reporter.set_service_status(*service, status).await;
    }
}

/// The first delay between attempts to reach the database at start, doubled after each
/// failure up to `MAX_RETRY_DELAY`.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Exponential backoff: `FIRST_RETRY_DELAY`, doubling, capped at `MAX_RETRY_DELAY`.
fn retry_delays() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(FIRST_RETRY_DELAY), |delay| {
        Some((*delay * 2).min(MAX_RETRY_DELAY))
    })
}

/// Applies the migrations once the database answers, retrying with backoff meanwhile; then
/// reports SERVING while the database answers a ping, NOT_SERVING otherwise. Until the
/// migrations are applied the store is not ready and every call gets UNAVAILABLE.
fn spawn_readiness(reporter: HealthReporter, store: Store, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        migrate_with_backoff(&store).await;
        // Both run until the task is aborted at shutdown.
        tokio::join!(
            health_check(&reporter, &store, every),
            compact_rollups(&store)
        );
    })
}

/// Folds the rollups' deltas as they arrive: at once while there are more, otherwise every
/// second. Any number of processes may do this at the same time (the folding is exact under
/// concurrency), so every process does it and none needs electing.
async fn compact_rollups(store: &Store) {
    loop {
        let pause = match store.compact_rollups(crate::storage::COMPACT_ROWS).await {
            Ok(0) => Duration::from_secs(1),
            Ok(_) => Duration::ZERO,
            Err(error) => {
                tracing::warn!(%error, "cannot compact the rollups; retrying");
                Duration::from_secs(5)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

async fn migrate_with_backoff(store: &Store) {
    if store.is_migrated() {
        return;
    }
    for (attempt, delay) in (1_u32..).zip(retry_delays()) {
        match store.migrate().await {
            Ok(()) => {
                tracing::info!(attempt, "migrations applied");
                return;
            }
            Err(error) => {
                let error = crate::error::error_chain(&error);
                let retry_in_ms = delay.as_millis() as u64;
                tracing::warn!(attempt, retry_in_ms, %error, "cannot apply the migrations yet; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Reports SERVING while the database answers a ping, NOT_SERVING otherwise.
async fn health_check(reporter: &HealthReporter, store: &Store, every: Duration) {
    let mut last = None;
    loop {
        let healthy = tokio::time::timeout(every.max(Duration::from_secs(1)), store.ping())
            .await
            .unwrap_or(false);
        if last != Some(healthy) {
            if healthy {
                tracing::info!("database reachable; serving");
            } else {
                tracing::warn!("database unreachable; not serving");
            }
            let status = if healthy {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_all(reporter, status).await;
            last = Some(healthy);
        }
        tokio::time::sleep(every).await;
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_at_a_tenth_of_a_second_and_double_up_to_five_seconds() {
        let delays: Vec<_> = retry_delays().take(9).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }
}

//! Wires storage, services, health and reflection into a tonic server. `build` binds the
//! listener (port 0 works in tests); `run_until_stopped` serves until the shutdown future
//! resolves, then drains in-flight calls for at most the grace period.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{codec::CompressionEncoding, transport::Server, transport::server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    config::Settings,
    grpc::{
        Admission, Authenticator, CalendarApi, DeadlineLayer, FeedbackApi, MetricsApi, RpcSpanLayer,
    },
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
    /// Connects the pool (lazily), applies migrations when the database answers, and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect_lazy(&settings.db)?;
        store.migrate().await?;
        Self::build_with_store(settings, store).await
    }

    /// Binds the listener for an already migrated store.
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
        // NOT_SERVING until the first database ping answers.
        set_all(&reporter, ServingStatus::NotServing).await;
        let health_task = spawn_health_check(
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
        let feedback = FeedbackServiceServer::new(FeedbackApi::new(
            self.store.clone(),
            auth.clone(),
            admission.clone(),
        ))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(self.settings.max_message_bytes);
        let metrics =
            MetricsServiceServer::new(MetricsApi::new(self.store.clone(), auth.clone(), admission))
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(self.settings.max_message_bytes);
        let calendars = CalendarServiceServer::new(CalendarApi::new(self.store.clone(), auth))
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
        let mut builder = Server::builder()
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            // An adaptive window would grow past the bounds above.
            .http2_adaptive_window(Some(false))
            .max_concurrent_streams(self.settings.max_streams_per_connection);
        let tls = match &self.settings.tls {
            Some(tls) => {
                builder = builder
                    .tls_config(tls.server_config())
                    .context("configuring TLS")?;
                if tls.is_mutual() { "mutual" } else { "on" }
            }
            None => "off",
        };
        tracing::info!(%addr, tls, "cxmetrics listening");
        let server = builder
            .layer(RpcSpanLayer)
            .layer(DeadlineLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(feedback)
            .add_service(metrics)
            .add_service(calendars)
            .serve_with_incoming_shutdown(incoming, signal);
        tokio::pin!(server);
        let grace = self.settings.shutdown_grace;
        tokio::select! {
            result = &mut server => result.context("serving gRPC")?,
            () = drain_deadline(draining_rx, grace) => {
                tracing::warn!(?grace, "in-flight calls did not finish in time; exiting anyway");
            }
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
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

/// Reports SERVING while the database answers a ping, NOT_SERVING otherwise.
fn spawn_health_check(reporter: HealthReporter, store: Store, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
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
                set_all(&reporter, status).await;
                last = Some(healthy);
            }
            tokio::time::sleep(every).await;
        }
    })
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

//! Test harness: every test gets a fresh database, a server on port 0 and connected clients.

use std::{net::SocketAddr, process::Stdio, str::FromStr, time::Duration};

use cxmetrics::{
    app::ReadLimits,
    commands,
    config::{Settings, TlsSettings},
    proto::{
        self as pb, calendar_service_client::CalendarServiceClient,
        feedback_service_client::FeedbackServiceClient,
        metrics_service_client::MetricsServiceClient,
    },
    startup::Application,
    storage::{DEFAULT_READ_TIMEOUT, DEFAULT_WRITE_TIMEOUT, DbSettings, Store},
};
use sqlx::{
    Connection, Executor, PgConnection,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    sync::oneshot,
};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, ClientTlsConfig},
};

pub const TENANT: &str = "tenant-a";

/// The server under test's PostgreSQL: `DATABASE_URL`, which scripts/test sets.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run the tests with scripts/test (it starts a throwaway \
         PostgreSQL), or set DATABASE_URL to a server whose user may create databases",
    )
}

/// Adds `authorization: Bearer <key>` to every call (or nothing, for `None`).
#[derive(Clone)]
pub struct Bearer(pub Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Feedback = FeedbackServiceClient<InterceptedService<Channel, Bearer>>;
pub type Metrics = MetricsServiceClient<InterceptedService<Channel, Bearer>>;
pub type Calendars = CalendarServiceClient<InterceptedService<Channel, Bearer>>;

/// Presents `key` as `authorization: Bearer <key>`.
pub fn bearer(key: &str) -> Bearer {
    Bearer(Some(format!("Bearer {key}").parse().expect("an ASCII key")))
}

/// A FeedbackService client over `channel` that presents `key`.
pub fn feedback_client(channel: &Channel, key: &str) -> Feedback {
    FeedbackServiceClient::with_interceptor(channel.clone(), bearer(key))
}

/// A MetricsService client over `channel` that presents `key`.
pub fn metrics_client(channel: &Channel, key: &str) -> Metrics {
    MetricsServiceClient::with_interceptor(channel.clone(), bearer(key))
}

/// A CalendarService client over `channel` that presents `key`.
pub fn calendars_client(channel: &Channel, key: &str) -> Calendars {
    CalendarServiceClient::with_interceptor(channel.clone(), bearer(key))
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub database_url: String,
    /// A read+write key of `TENANT`.
    pub key: String,
    pub channel: Channel,
    /// Dropping the app drops this sender, which stops the server.
    _shutdown: oneshot::Sender<()>,
}

/// What a test may change about the server it spawns.
pub struct Options {
    /// Connect the server to this URL instead of the test database (e.g. through a proxy).
    pub server_database_url: Option<String>,
    pub health_interval: Duration,
    pub key_cache_ttl: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// Connections of the server's write pool and of its read pool.
    pub pool_size: u32,
    pub read_pool_size: u32,
    /// Serve metric and listing reads from this database instead.
    pub read_database_url: Option<String>,
    /// Serve TLS with this material (plaintext when `None`).
    pub tls: Option<TlsSettings>,
    /// How the app's own channel connects: TLS with this config, or plaintext when `None`.
    pub client_tls: Option<ClientTlsConfig>,
    pub read_limits: ReadLimits,
    /// Origins allowed to call the HTTP API from a browser.
    pub cors_origins: Vec<http::HeaderValue>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            server_database_url: None,
            health_interval: Duration::from_millis(100),
            key_cache_ttl: Duration::from_millis(500),
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            pool_size: 8,
            read_pool_size: 8,
            read_database_url: None,
            tls: None,
            client_tls: None,
            read_limits: ReadLimits::default(),
            cors_origins: Vec::new(),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// Creates a fresh, migrated database and serves it on an ephemeral port.
pub async fn spawn_app_with(options: Options) -> TestApp {
    let database_url = create_database().await;
    let store = Store::from_pool(
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&database_url)
            .await
            .expect("connect to the test database"),
    );
    store.migrate().await.expect("migrate");
    let key = commands::create_key(&store, TENANT, "read,write")
        .await
        .expect("create key");

    let server_url = options
        .server_database_url
        .clone()
        .map(|url| with_database(&url, &database_name(&database_url)))
        .unwrap_or_else(|| database_url.clone());
    let db = DbSettings {
        url: server_url,
        max_connections: options.pool_size,
        read_max_connections: options.read_pool_size,
        acquire_timeout: Duration::from_secs(1),
        read_timeout: options.read_timeout,
        write_timeout: options.write_timeout,
        read_url: options.read_database_url.clone(),
    };
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: db.clone(),
        shutdown_grace: Duration::from_secs(10),
        max_message_bytes: 16 * 1024 * 1024,
        max_streams_per_connection: 100,
        key_cache_ttl: options.key_cache_ttl,
        read_limits: options.read_limits,
        health_interval: options.health_interval,
        tls: options.tls,
        cors_origins: options.cors_origins,
    };
    // Migrated already (through the test's own store), so the server is ready at once.
    let server_store = Store::connect_lazy(&db).unwrap();
    server_store
        .migrate()
        .await
        .expect("migrate through the server's store");
    let app = Application::build_with_store(settings, server_store)
        .await
        .expect("build the application");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let channel = connect(&addr.to_string(), options.client_tls)
        .await
        .expect("connect to the server");
    TestApp {
        addr,
        store,
        database_url,
        key,
        channel,
        _shutdown: tx,
    }
}

/// A channel to `addr` (host:port): over TLS with `tls`, plaintext without.
pub async fn connect(
    addr: &str,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{addr}")).expect("valid URI");
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    endpoint.connect().await
}

impl TestApp {
    /// A FeedbackService client with this app's read+write key.
    pub fn feedback(&self) -> Feedback {
        self.feedback_with(Some(&self.key))
    }

    /// A FeedbackService client that presents `key` (or no credentials).
    pub fn feedback_with(&self, key: Option<&str>) -> Feedback {
        match key {
            Some(key) => feedback_client(&self.channel, key),
            None => FeedbackServiceClient::with_interceptor(self.channel.clone(), Bearer(None)),
        }
    }

    /// A MetricsService client that presents `key`.
    pub fn metrics_with(&self, key: &str) -> Metrics {
        metrics_client(&self.channel, key)
    }

    /// A CalendarService client that presents `key`.
    pub fn calendars_with(&self, key: &str) -> Calendars {
        calendars_client(&self.channel, key)
    }

    /// The HTTP URL of `path_and_query` on this app's port.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Creates another key, for `tenant`, with `scopes`.
    pub async fn create_key(&self, tenant: &str, scopes: &str) -> String {
        commands::create_key(&self.store, tenant, scopes)
            .await
            .expect("create key")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .expect("count query")
    }
}

/// Creates an empty database (no migrations) on `DATABASE_URL`'s server; returns its URL.
pub async fn create_database() -> String {
    let admin = database_url();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect to DATABASE_URL (is PostgreSQL running? scripts/test starts one)");
    conn.execute(format!(r#"create database "{name}""#).as_str())
        .await
        .expect("create the test database");
    with_database(&admin, &name)
}

fn database_name(url: &str) -> String {
    PgConnectOptions::from_str(url)
        .expect("valid url")
        .get_database()
        .unwrap_or("postgres")
        .to_owned()
}

/// `url` with its database path replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], name);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

pub fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    cxmetrics::grpc::convert::to_timestamp(t)
}

/// A time that is safely in the past and inside the accepted range.
pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .to_utc()
}

pub fn nps(id: &str, customer: &str, score: i32) -> pb::SurveyResponse {
    pb::SurveyResponse {
        response_id: id.into(),
        survey_id: "survey-1".into(),
        kind: pb::SurveyKind::Nps as i32,
        score,
        customer_id: customer.into(),
        respond_time: Some(ts(t0())),
        ..Default::default()
    }
}

pub fn interaction(id: &str, customer: &str) -> pb::Interaction {
    pb::Interaction {
        interaction_id: id.into(),
        customer_id: customer.into(),
        channel: "email".into(),
        agent_id: "agent-1".into(),
        open_time: Some(ts(t0())),
        first_response_time: Some(ts(t0() + chrono::Duration::minutes(5))),
        ..Default::default()
    }
}

pub fn customer(id: &str) -> pb::Customer {
    pb::Customer {
        customer_id: id.into(),
        acquire_time: Some(ts(t0() - chrono::Duration::days(30))),
        ..Default::default()
    }
}

pub fn versioned<T>(
    mut record: T,
    set: impl FnOnce(&mut T, prost_types::Timestamp),
    hours: i64,
) -> T {
    set(&mut record, ts(t0() + chrono::Duration::hours(hours)));
    record
}

/// The field paths of an INVALID_ARGUMENT's BadRequest details.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Starts the real binary on an ephemeral port with extra environment `env` and waits until
/// it has applied its migrations (so that calls are served); returns the child and its
/// address.
pub async fn spawn_binary(
    database_url: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let (child, addr, _) = spawn_binary_logged(database_url, env).await;
    (child, addr)
}

/// As `spawn_binary`, and the log of everything the binary writes to stderr.
pub async fn spawn_binary_logged(
    database_url: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String, BinaryLog) {
    let (child, addr, log) = spawn_binary_unready(database_url, env).await;
    log.wait_for("migrations applied", Duration::from_secs(30))
        .await;
    (child, addr, log)
}

/// The messages the binary logged so far, collected while it runs, and its whole lines.
#[derive(Clone, Default)]
pub struct BinaryLog(
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
);

impl BinaryLog {
    /// Every line the binary wrote to stderr so far, as written.
    pub fn lines(&self) -> Vec<String> {
        self.1.lock().unwrap().clone()
    }

    pub fn messages(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// How many times `message` was logged.
    pub fn count(&self, message: &str) -> usize {
        self.messages().iter().filter(|m| *m == message).count()
    }

    /// Waits until `message` has been logged, for at most `limit`.
    pub async fn wait_for(&self, message: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.count(message) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the binary never logged {message:?}; it logged {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts the real binary and returns as soon as it listens, whether or not it has reached
/// its database; the log collects its messages from then on.
pub async fn spawn_binary_unready(
    database_url: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String, BinaryLog) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cxmetrics"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("CXMETRICS_LISTEN", "127.0.0.1:0")
        .env("CXMETRICS_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the binary");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = BinaryLog::default();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the server exited before listening");
        log.1.lock().unwrap().push(line.clone());
        let line: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if let Some(message) = line["fields"]["message"].as_str() {
            log.0.lock().unwrap().push(message.to_owned());
        }
        if line["fields"]["message"] == "cxmetrics listening" {
            break line["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    let collected = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            collected.1.lock().unwrap().push(line.clone());
            if let Ok(line) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(message) = line["fields"]["message"].as_str()
            {
                collected.0.lock().unwrap().push(message.to_owned());
            }
        }
    });
    (child, addr, log)
}

/// One server, and the runtime it runs on, shared by the property tests of this binary:
/// each case works in a tenant of its own, so cases never see each other's data.
pub struct World {
    pub runtime: tokio::runtime::Runtime,
    pub app: TestApp,
}

pub fn world() -> &'static World {
    static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let app = runtime.block_on(spawn_app());
        World { runtime, app }
    })
}

//! Command line and environment configuration, checked once at start: clap reports a
//! missing or malformed setting in one line and exits non-zero.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    app::ReadLimits,
    storage::{DEFAULT_READ_TIMEOUT, DEFAULT_WRITE_TIMEOUT, DbSettings},
};

mod otlp;
mod tls;

pub use otlp::{OtlpArgs, OtlpSettings};
pub use tls::{TLS_HANDSHAKE_TIMEOUT, TlsArgs, TlsSettings};

#[derive(Debug, Parser)]
#[command(
    name = "cxmetrics",
    version,
    about = "Customer-experience metrics over gRPC"
)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(
        long,
        env = "CXMETRICS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub otlp: OtlpArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC until SIGTERM or Ctrl-C, applying pending migrations once the database
    /// answers.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Maintain the metric rollups.
    Rollups {
        #[command(subcommand)]
        command: RollupsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RollupsCommand {
    /// Recompute the rollups from the raw records, online: writes go on meanwhile.
    Rebuild {
        #[command(flatten)]
        db: DbArgs,
        /// Only this tenant's rollups; every tenant's without it.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Compare the rollups with the raw records; exits non-zero on any difference.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        /// Only this tenant's rollups; every tenant's without it.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key (and its tenant if new); prints the key alone on the last line.
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// Comma-separated scopes: read, write, admin.
        #[arg(long, default_value = "read,write")]
        scopes: String,
    },
    /// List keys (never the keys themselves).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a key by its id.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        /// The key id shown by `keys list`.
        id: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL, e.g. postgres://user:pass@localhost:5432/cxmetrics
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Connections of the write pool (writes, keys, calendars).
    #[arg(long, env = "CXMETRICS_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
    /// Seconds a call waits for a database connection before failing with UNAVAILABLE.
    #[arg(long, env = "CXMETRICS_DB_ACQUIRE_TIMEOUT_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub acquire_timeout_secs: u64,
}

impl DbArgs {
    pub fn settings(&self) -> DbSettings {
        DbSettings {
            url: self.database_url.clone(),
            max_connections: self.pool_size,
            read_max_connections: self.pool_size,
            acquire_timeout: Duration::from_secs(self.acquire_timeout_secs),
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            read_url: None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// A read replica of DATABASE_URL for metric and listing queries (writes, keys and
    /// calendars stay on DATABASE_URL). Reads then lag writes by the replication delay.
    #[arg(long, env = "CXMETRICS_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
    /// Seconds a metric or listing query may run at most; a caller's shorter deadline
    /// (grpc-timeout) bounds it further. PostgreSQL cancels the query when it runs out.
    #[arg(long, env = "CXMETRICS_READ_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub read_timeout_secs: u64,
    /// Connections of the read pool, which metric and listing queries use and writes never
    /// do (default: the write pool's size).
    #[arg(long, env = "CXMETRICS_READ_POOL_SIZE",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub read_pool_size: Option<u32>,
    /// Seconds one statement of a write may run (PostgreSQL's statement_timeout on the
    /// write pool); a write over it fails with UNAVAILABLE and is rolled back.
    #[arg(long, env = "CXMETRICS_WRITE_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_timeout_secs: u64,
    /// Address to listen on.
    #[arg(long, env = "CXMETRICS_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Seconds in-flight calls get to finish after SIGTERM before the process exits.
    #[arg(long, env = "CXMETRICS_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Largest accepted request message, in bytes.
    #[arg(long, env = "CXMETRICS_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Seconds a cached API key is trusted before it is looked up again (revocation delay).
    #[arg(long, env = "CXMETRICS_KEY_CACHE_SECS", default_value_t = 5)]
    pub key_cache_secs: u64,
    /// Metric reports and listings that may run at once, over all tenants; more wait
    /// briefly, then get RESOURCE_EXHAUSTED with a retry delay.
    #[arg(long, env = "CXMETRICS_MAX_CONCURRENT_READS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_concurrent_reads: u32,
    /// Metric reports and listings of one tenant that may run at once (as many more may
    /// wait their turn).
    #[arg(long, env = "CXMETRICS_MAX_CONCURRENT_READS_PER_TENANT", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_concurrent_reads_per_tenant: u32,
    /// Concurrent calls (HTTP/2 streams) one client connection may have open; further
    /// calls wait in the client until one finishes.
    #[arg(long, env = "CXMETRICS_MAX_STREAMS_PER_CONNECTION", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_streams_per_connection: u32,
    /// Comma-separated origins (e.g. https://bi.example.com) whose browser pages may call
    /// the HTTP API (CORS); none when unset.
    #[arg(long, env = "CXMETRICS_CORS_ORIGINS", value_delimiter = ',', value_parser = cors_origin)]
    pub cors_origins: Vec<http::HeaderValue>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn cors_origin(value: &str) -> Result<http::HeaderValue, String> {
    let uri: http::Uri = value
        .parse()
        .map_err(|e| format!("not an origin ({e}); expected e.g. https://bi.example.com"))?;
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !value.ends_with('/');
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) if bare => {
            http::HeaderValue::from_str(value).map_err(|_| "not a valid header value".into())
        }
        _ => Err("expected an origin such as https://bi.example.com (no path)".into()),
    }
}

/// Everything `startup::Application` needs, independent of how it was configured.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub db: DbSettings,
    pub shutdown_grace: Duration,
    pub max_message_bytes: usize,
    pub key_cache_ttl: Duration,
    /// Limits of concurrent metric reports and listings.
    pub read_limits: ReadLimits,
    /// Concurrent HTTP/2 streams (calls) per client connection.
    pub max_streams_per_connection: u32,
    /// How often the health check pings the database.
    pub health_interval: Duration,
    /// Serve TLS (and mutual TLS) with this material; plaintext when `None`.
    pub tls: Option<TlsSettings>,
    /// Origins whose browser pages may call the HTTP API; none when empty.
    pub cors_origins: Vec<http::HeaderValue>,
}

impl Settings {
    /// The settings of `serve`, with the TLS files read and checked.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        Ok(Self {
            listen: args.listen,
            db: DbSettings {
                read_url: args.read_database_url.clone(),
                read_max_connections: args.read_pool_size.unwrap_or(args.db.pool_size),
                read_timeout: Duration::from_secs(args.read_timeout_secs),
                write_timeout: Duration::from_secs(args.write_timeout_secs),
                ..args.db.settings()
            },
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            max_message_bytes: args.max_message_bytes,
            key_cache_ttl: Duration::from_secs(args.key_cache_secs),
            read_limits: ReadLimits {
                global: args.max_concurrent_reads as usize,
                per_tenant: args.max_concurrent_reads_per_tenant as usize,
            },
            max_streams_per_connection: args.max_streams_per_connection,
            health_interval: Duration::from_secs(2),
            tls: args.tls.load()?,
            cors_origins: args.cors_origins.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cors_origin_is_a_scheme_and_host_without_a_path() {
        assert!(cors_origin("https://bi.example.com").is_ok());
        assert!(cors_origin("http://localhost:3000").is_ok());
        assert!(cors_origin("https://bi.example.com/").is_err());
        assert!(cors_origin("https://bi.example.com/x").is_err());
        assert!(cors_origin("bi.example.com").is_err());
        assert!(cors_origin("*").is_err());
    }
}

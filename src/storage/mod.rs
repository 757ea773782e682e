//! PostgreSQL access. All SQL of the service lives below this module, one statement per
//! function; callers get domain types and `crate::Error`, never SQL errors. Every statement
//! of a call runs in its CLIENT span (`trace`).

mod calendars;
mod deadline;
mod filters;
mod interaction_metrics;
mod keys;
mod listing;
mod metrics;
mod records;
mod trace;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub use calendars::StoredCalendar;
pub use deadline::with_deadline;
pub use keys::{KeyRow, StoredKey};
pub use listing::{Cursor, Page};
pub use records::{BatchOutcomes, RecordBatch};

/// The embedded migrations of `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The read timeout when none is configured.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Connection settings for the pool.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub url: String,
    pub max_connections: u32,
    /// How long a call waits for a free connection before it fails with UNAVAILABLE.
    pub acquire_timeout: Duration,
    /// The longest a metric or listing query may run, even for a caller without a deadline.
    pub read_timeout: Duration,
    /// A read replica for metric and listing queries; None reads from `url`.
    pub read_url: Option<String>,
}

/// A pool of `url` that connects on first use, so that the service starts even while the
/// database is down.
fn lazy_pool(settings: &DbSettings, url: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?
        .application_name("cxmetrics")
        // Metric queries are short and parameterised: JIT compilation only adds latency.
        // The planner cannot estimate the groups of a bucketed aggregate and falls back to
        // sorting on disk with the default work_mem; hashing the few real groups in memory
        // is about twice as fast.
        .options([("jit", "off"), ("work_mem", "64MB")]);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options))
}

/// The 0-based bucket of a `width_bucket` result (1-based) over `buckets` buckets. The
/// queries only select rows inside the boundaries, so anything else is a bug, not a
/// bucket to put the row in.
pub(crate) fn bucket_index(width_bucket: i64, buckets: usize) -> Result<usize, crate::Error> {
    usize::try_from(width_bucket)
        .ok()
        .filter(|b| (1..=buckets).contains(b))
        .map(|b| b - 1)
        .ok_or_else(|| {
            crate::Error::Internal(anyhow::anyhow!(
                "width_bucket gave {width_bucket} for {buckets} buckets"
            ))
        })
}

/// The handle every layer above uses to reach PostgreSQL.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// Metric and listing queries: a replica's pool, or the same pool.
    read_pool: PgPool,
    read_timeout: Duration,
}

impl Store {
    /// Builds a lazily connecting pool: the service starts even while the database is down
    /// and connects once it answers.
    pub fn connect_lazy(settings: &DbSettings) -> anyhow::Result<Self> {
        let pool = lazy_pool(settings, &settings.url)
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        let read_pool = match &settings.read_url {
            Some(url) => lazy_pool(settings, url)
                .context("the read database URL is not a valid PostgreSQL URL")?,
            None => pool.clone(),
        };
        Ok(Self {
            pool,
            read_pool,
            read_timeout: settings.read_timeout,
        })
    }

    /// A store over an existing pool, with the default read timeout.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            read_pool: pool.clone(),
            pool,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        self.read_pool.close().await;
    }

    /// Applies pending migrations (sqlx takes an advisory lock, so concurrent starts are safe).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("applying database migrations")
    }

    /// Whether the database answers a trivial query. Not traced: the health check asks
    /// every few seconds, outside any call.
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.pool).await.is_ok()
    }
}

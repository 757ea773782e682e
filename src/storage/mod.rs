//! PostgreSQL access. All SQL of the service lives below this module, one statement per
//! function; callers get domain types and `crate::Error`, never SQL errors. Every statement
//! of a call runs in its CLIENT span (`trace`).

mod calendars;
mod comment_themes;
mod deadline;
mod filters;
mod interaction_metrics;
mod keys;
mod listing;
mod metrics;
mod pools;
mod records;
mod response_times;
mod rollups;
mod trace;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};

pub use calendars::{StoredCalendar, UpsertedCalendar};
pub use comment_themes::{CountRow, ThemeScope};
pub use keys::{KeyRow, StoredKey};
pub use listing::{Cursor, Page, PageRequest, ResponseSelection};
pub use records::{BatchOutcomes, Erased, RecordBatch};
pub use response_times::ResponseTimeRead;
pub use rollups::{COMPACT_ROWS, RollupCheck};

/// The embedded migrations of `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The read timeout when none is configured.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The write statement timeout when none is configured.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `close` waits for connections still in use before it drops them.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Connection settings for the pools.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub url: String,
    /// Connections of the write pool (writes, keys, calendars).
    pub max_connections: u32,
    /// Connections of the read pool (metric and listing queries), always its own pool.
    pub read_max_connections: u32,
    /// How long a call waits for a free connection before it fails with UNAVAILABLE.
    pub acquire_timeout: Duration,
    /// The longest a metric or listing query may run, even for a caller without a deadline.
    pub read_timeout: Duration,
    /// The longest one statement of a write may run (`statement_timeout` of the write pool).
    pub write_timeout: Duration,
    /// A read replica for metric and listing queries; None reads from `url`.
    pub read_url: Option<String>,
}

/// Database errors as the service's errors: what is safe to retry is UNAVAILABLE, a
/// cancelled statement of a read is mapped by the read itself, everything else is internal.
impl From<sqlx::Error> for crate::Error {
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
    /// Writes, keys and calendars, on the primary.
    pool: PgPool,
    /// Metric and listing queries: the replica's, or a second pool of the primary.
    read_pool: PgPool,
    /// One connection for the health check's ping.
    health_pool: PgPool,
    /// How migrations connect: the primary, without the write timeout.
    migrate_options: Arc<PgConnectOptions>,
    acquire_timeout: Duration,
    /// Set once this store has applied (or found) every migration.
    migrated: Arc<AtomicBool>,
    read_timeout: Duration,
}

impl Store {
    /// Builds lazily connecting pools: the service starts even while the database is down
    /// and connects once it answers.
    pub fn connect_lazy(settings: &DbSettings) -> anyhow::Result<Self> {
        let pools = pools::Pools::connect_lazy(settings)?;
        Ok(Self {
            pool: pools.write,
            read_pool: pools.read,
            health_pool: pools.health,
            migrate_options: Arc::new(pools.primary),
            acquire_timeout: settings.acquire_timeout,
            migrated: Arc::default(),
            read_timeout: settings.read_timeout,
        })
    }

    /// A store whose every use shares an existing pool, with the default read timeout.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            read_pool: pool.clone(),
            health_pool: pool.clone(),
            migrate_options: pool.connect_options(),
            acquire_timeout: pool.options().get_acquire_timeout(),
            migrated: Arc::default(),
            pool,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection. Connections still in use get `CLOSE_TIMEOUT` to come back;
    /// then they are dropped with the pools, so that shutdown never waits on the database.
    pub async fn close(&self) {
        let close = async {
            tokio::join!(
                self.pool.close(),
                self.read_pool.close(),
                self.health_pool.close()
            )
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
            tracing::warn!("database connections still in use at exit; dropping them");
        }
    }

    /// Applies pending migrations on a connection of their own, under no statement timeout
    /// (sqlx takes an advisory lock, so concurrent starts are safe). Fails at once when the
    /// database cannot be reached.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let connect = PgConnection::connect_with(&self.migrate_options);
        let mut conn = tokio::time::timeout(self.acquire_timeout, connect)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {:?}", self.acquire_timeout))
            .and_then(|connected| connected.map_err(anyhow::Error::from))
            .context("connecting to the database")?;
        MIGRATOR
            .run_direct(&mut conn)
            .await
            .context("applying database migrations")?;
        // Closing politely is best effort: the migrations are committed either way.
        let _ = conn.close().await;
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether `migrate` has succeeded, so that the schema is the one this binary expects.
    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    /// Whether the database answers a trivial query, on the health check's own connection.
    /// Not traced: the health check asks every few seconds, outside any call.
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1")
            .execute(&self.health_pool)
            .await
            .is_ok()
    }
}

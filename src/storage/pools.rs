//! The connection pools of a `Store`, kept apart so that one kind of work can never take
//! another's connections: writes (and keys, calendars) on the primary under a statement
//! timeout; metric and listing reads on their own pool (of the replica, when there is one);
//! and one connection for the health check, which therefore answers however busy the others
//! are. Migrations run on a connection of their own, under no timeout.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use super::DbSettings;

/// How long the health check waits for its connection: a ping that waits longer is a
/// database that does not answer.
const HEALTH_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// The pools of one process, all connecting lazily so that the service starts while the
/// database is down.
pub(super) struct Pools {
    pub write: PgPool,
    pub read: PgPool,
    pub health: PgPool,
    /// The primary's options without the write timeout, for migrations.
    pub primary: PgConnectOptions,
}

impl Pools {
    pub fn connect_lazy(settings: &DbSettings) -> anyhow::Result<Self> {
        let primary =
            connect_options(&settings.url).context("DATABASE_URL is not a valid PostgreSQL URL")?;
        let read_options = match &settings.read_url {
            Some(url) => connect_options(url)
                .context("the read database URL is not a valid PostgreSQL URL")?,
            None => primary.clone(),
        };
        let write_timeout = settings.write_timeout.as_millis().max(1).to_string();
        let write_options = primary
            .clone()
            .options([("statement_timeout", write_timeout.as_str())]);
        Ok(Self {
            write: pool(settings.max_connections, settings.acquire_timeout)
                .connect_lazy_with(write_options),
            read: pool(settings.read_max_connections, settings.acquire_timeout)
                .connect_lazy_with(read_options),
            health: pool(1, HEALTH_ACQUIRE_TIMEOUT).connect_lazy_with(primary.clone()),
            primary,
        })
    }
}

fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(url)?
        .application_name("cxmetrics")
        // Metric queries are short and parameterised: JIT compilation only adds latency.
        // The planner cannot estimate the groups of a bucketed aggregate and falls back to
        // sorting on disk with the default work_mem; hashing the few real groups in memory
        // is about twice as fast.
        .options([("jit", "off"), ("work_mem", "64MB")]))
}

fn pool(max_connections: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
}

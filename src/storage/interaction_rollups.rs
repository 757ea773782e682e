//! Upkeep of `interaction_rollups` (migrations/20261201000002_interaction_rollups.sql):
//! folding the deltas the triggers append. Writers never wait on it: triggers only append,
//! and compaction removes only rows in its snapshot.

use super::{Store, trace::traced};
use crate::error::Error;

impl Store {
    /// Folds the deltas of up to `max_keys` rollup keys that have fresh rows into one row per
    /// key; returns how many rows it removed (0 when nothing is fresh). Exact alongside
    /// concurrent writers and other compactions, so any number of schedulers may call it.
    #[tracing::instrument(skip_all, fields(max_keys))]
    pub async fn compact_interaction_rollups(&self, max_keys: i32) -> Result<u64, Error> {
        let sql = "select compact_interaction_rollups($1)";
        let query = sqlx::query_scalar::<_, i64>(sql).bind(max_keys);
        let removed = traced(sql, query.fetch_one(&self.pool)).await?;
        u64::try_from(removed).map_err(|e| Error::Internal(e.into()))
    }
}

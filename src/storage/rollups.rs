//! Upkeep of the rollups the triggers of migrations/ maintain: folding their deltas
//! (`compact`), recomputing them from the raw rows (`rebuild`) and comparing the two
//! (`verify`). Writes never wait on any of these: triggers only append.

use sqlx::{Connection, Row};

use super::{Store, trace::traced};
use crate::{domain::TenantId, error::Error};

/// How many fresh delta rows one compaction statement folds at most, so that it stays a
/// short statement however far behind it is.
pub const COMPACT_ROWS: i32 = 20_000;

/// A rollup table and the SQL functions of its migration.
struct Rollup {
    table: &'static str,
    /// `f(max_rows integer) returns bigint`: folds deltas, returns the rows it removed.
    compact: &'static str,
    /// `f(tenant text) returns table (<key columns>, n bigint)`: the counts computed from
    /// the raw rows, for one tenant or, given null, every tenant.
    counts: &'static str,
    /// The key columns, in the order `counts` returns them.
    key: &'static str,
}

const ROLLUPS: &[Rollup] = &[Rollup {
    table: "survey_rollups",
    compact: "compact_survey_rollups",
    counts: "survey_rollup_counts",
    key: "tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score",
}];

/// How a rollup table compares with the counts of its raw rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupCheck {
    pub table: &'static str,
    /// Keys whose count differs from the raw rows' (missing, extra or wrong).
    pub differing_keys: i64,
    /// A few of them, for the report.
    pub examples: Vec<String>,
}

impl Store {
    /// Folds up to `COMPACT_ROWS` fresh deltas of every rollup table; returns how many rows
    /// were folded (0 when there is nothing to do).
    pub async fn compact_rollups(&self) -> Result<u64, Error> {
        let mut folded = 0;
        for rollup in ROLLUPS {
            let sql = format!("select {}($1)", rollup.compact);
            let query = sqlx::query_scalar::<_, i64>(&sql).bind(COMPACT_ROWS);
            let n = traced(&sql, query.fetch_one(&self.pool)).await?;
            folded += u64::try_from(n).unwrap_or(0);
        }
        Ok(folded)
    }

    /// Recomputes every rollup of `tenant` (every tenant when None) from the raw rows, in
    /// one transaction per table that writers never wait on: it deletes only rows in its
    /// snapshot and counts exactly the raw rows of that snapshot, so a write committed
    /// meanwhile counts once, through the delta its trigger appended. A compaction
    /// committed meanwhile makes the transaction fail to serialize; it is then retried.
    pub async fn rebuild_rollups(&self, tenant: Option<&TenantId>) -> Result<u64, Error> {
        let tenant = tenant.map(|t| t.as_str().to_owned());
        let mut rows = 0;
        for rollup in ROLLUPS {
            let delete = format!(
                "delete from {} where $1::text is null or tenant_id = $1",
                rollup.table
            );
            let insert = format!(
                "insert into {table} ({key}, n, fresh) select c.*, false from {counts}($1) c",
                table = rollup.table,
                key = rollup.key,
                counts = rollup.counts
            );
            let mut attempt = 0;
            rows += loop {
                attempt += 1;
                let once = async {
                    let mut conn = self.pool.acquire().await?;
                    let mut tx = conn
                        .begin_with("begin isolation level repeatable read; set local statement_timeout = 0")
                        .await?;
                    sqlx::query(&delete).bind(&tenant).execute(&mut *tx).await?;
                    let done = sqlx::query(&insert).bind(&tenant).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(done.rows_affected())
                };
                match once.await {
                    Ok(n) => break n,
                    Err(sqlx::Error::Database(db))
                        if db.code().as_deref() == Some("40001") && attempt < 10 =>
                    {
                        tracing::info!(
                            table = rollup.table,
                            attempt,
                            "rebuild raced a compaction; retrying"
                        );
                    }
                    Err(error) => return Err(error.into()),
                }
            };
        }
        Ok(rows)
    }

    /// Compares every rollup of `tenant` (every tenant when None) with the counts of the
    /// raw rows, in one snapshot.
    pub async fn verify_rollups(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<RollupCheck>, Error> {
        let tenant = tenant.map(|t| t.as_str().to_owned());
        let mut checks = Vec::new();
        for rollup in ROLLUPS {
            let sql = format!(
                "with rolled as (
                     select {key}, sum(n)::int8 as n from {table}
                     where $1::text is null or tenant_id = $1
                     group by {key} having sum(n) <> 0
                 ), raw as (select * from {counts}($1))
                 select count(*) over () as total,
                        format('(%s): stored %s, raw %s', concat_ws(', ', {key}),
                               coalesce(rolled.n, 0), coalesce(raw.n, 0)) as example
                 from rolled full join raw using ({key})
                 where rolled.n is distinct from raw.n
                 limit 5",
                key = rollup.key,
                table = rollup.table,
                counts = rollup.counts
            );
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn
                .begin_with(
                    "begin isolation level repeatable read read only; set local statement_timeout = 0",
                )
                .await?;
            let rows = sqlx::query(&sql).bind(&tenant).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            let differing_keys = match rows.first() {
                Some(row) => row.try_get::<i64, _>("total")?,
                None => 0,
            };
            let examples = rows
                .iter()
                .map(|row| row.try_get::<String, _>("example"))
                .collect::<Result<_, _>>()?;
            checks.push(RollupCheck {
                table: rollup.table,
                differing_keys,
                examples,
            });
        }
        Ok(checks)
    }
}

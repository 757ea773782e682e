//! Upkeep of the rollups the triggers of migrations/ maintain: folding their deltas
//! (`compact`), recomputing them from the raw rows (`rebuild`) and comparing the two
//! (`verify`). Writes never wait on any of these: triggers only append.

use sqlx::{Connection, Row};

use super::{Store, trace::traced};
use crate::{domain::TenantId, error::Error};

/// How many fresh delta rows the compactor of a serving process folds per statement, so
/// that each stays a short statement however far behind it is.
pub const COMPACT_ROWS: i32 = 20_000;

/// How long a compaction waits for a lock before it gives up until its next round.
const COMPACT_LOCK_WAIT: &str = "1s";

/// A rollup table and the SQL functions of its migration.
struct Rollup {
    table: &'static str,
    /// `f(max_rows integer) returns bigint`: folds deltas, returns the rows it removed.
    compact: &'static str,
    /// `f(tenant text) returns table (<key columns>, <values>)`: the figures computed from
    /// the raw rows, for one tenant or, given null, every tenant.
    counts: &'static str,
    /// The key columns, in the order `counts` returns them.
    key: &'static str,
    /// The value columns after the key, each with the aggregate that folds a key's rows.
    values: &'static [(&'static str, Fold)],
    /// True, over a key's rows, when only its sums can be compared with the raw rows: its
    /// extremes wait for a compaction that recomputes them (readers take the raw rows).
    pending: Option<&'static str>,
    /// The table of one row per entity that compaction keeps from this one's folded rows.
    summary: Option<Summary>,
}

/// A table that compaction recomputes, per entity it folds rows of, from a view over the
/// folded rows: rebuilt from that view after its rollup, and verified against it (which
/// the rollup is verified against the raw rows) for every entity with no fresh rows.
struct Summary {
    table: &'static str,
    /// The view of what the table must hold; same columns, same order.
    folded: &'static str,
    /// The entity's key columns, and the other columns.
    key: &'static [&'static str],
    values: &'static [&'static str],
}

/// How a key's rows combine into its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fold {
    Sum,
    Min,
    Max,
}

const ROLLUPS: &[Rollup] = &[
    Rollup {
        table: "survey_rollups",
        compact: "compact_survey_rollups",
        counts: "survey_rollup_counts",
        key: "tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score",
        values: &[("n", Fold::Sum)],
        pending: None,
        summary: None,
    },
    Rollup {
        table: "interaction_rollups",
        compact: "compact_interaction_rollups",
        counts: "interaction_rollup_counts",
        key: "tenant_id, grain, slot, channel, agent_id, team_id, measure, bucket",
        values: &[("n", Fold::Sum), ("seconds", Fold::Sum)],
        pending: None,
        summary: None,
    },
    Rollup {
        table: "customer_months",
        compact: "compact_customer_months",
        counts: "customer_month_counts",
        key: "tenant_id, customer_id, month",
        values: &[
            ("n", Fold::Sum),
            ("first_at", Fold::Min),
            ("last_at", Fold::Max),
        ],
        pending: Some("bool_or(fresh and retracts)"),
        summary: Some(Summary {
            table: "customer_activity",
            folded: "customer_activity_folded",
            key: &["tenant_id", "customer_id"],
            values: &["first_at", "months", "inside", "edges"],
        }),
    },
    Rollup {
        table: "comment_term_counts",
        compact: "compact_comment_term_counts",
        counts: "comment_term_count_rows",
        key: "tenant_id, kind, grain, slot, side, term, form",
        values: &[("n", Fold::Sum)],
        pending: None,
        summary: None,
    },
];

/// Tables derived row by row from the raw rows (no counts to fold), rebuilt before the
/// rollups and compared row for row: the table and `f(tenant text)`, the rows it must hold.
const DERIVED: &[(&str, &str)] = &[("comment_terms", "comment_terms_rows")];

impl Rollup {
    fn values(&self) -> String {
        let names: Vec<&str> = self.values.iter().map(|(v, _)| *v).collect();
        names.join(", ")
    }

    /// `sum(v) as v, min(w) as w, ...`, and whether the key is pending.
    fn folds(&self) -> String {
        let mut folds: Vec<String> = self
            .values
            .iter()
            .map(|(v, fold)| {
                let f = match fold {
                    Fold::Sum => "sum",
                    Fold::Min => "min",
                    Fold::Max => "max",
                };
                format!("{f}({v}) as {v}")
            })
            .collect();
        folds.push(format!("{} as pending", self.pending.unwrap_or("false")));
        folds.join(", ")
    }

    /// True when any sum is not zero: a key whose sums are all zero counts nothing.
    fn any_sum(&self) -> String {
        let sums: Vec<String> = self
            .values
            .iter()
            .filter(|(_, fold)| *fold == Fold::Sum)
            .map(|(v, _)| format!("sum({v}) <> 0"))
            .collect();
        sums.join(" or ")
    }

    /// `alias.v, ...` with absent sums as 0; only the sums when `sums_only`.
    fn qualified(&self, alias: &str, sums_only: bool) -> String {
        let columns: Vec<String> = self
            .values
            .iter()
            .filter(|(_, fold)| !sums_only || *fold == Fold::Sum)
            .map(|(v, fold)| match fold {
                Fold::Sum => format!("coalesce({alias}.{v}, 0)"),
                Fold::Min | Fold::Max => format!("{alias}.{v}"),
            })
            .collect();
        columns.join(", ")
    }

    /// Its keys of tenant $1 (every tenant when null) whose figures differ from the raw
    /// rows', with a few examples. A pending key is compared by its sums only: its extremes
    /// are recomputed by the next compaction, and readers take its raw rows meanwhile.
    fn verify(&self) -> String {
        format!(
            "with rolled as (
                 select {key}, {folds} from {table}
                 where $1::text is null or tenant_id = $1
                 group by {key} having {any_sum}
             ), raw as (select * from {counts}($1))
             select count(*) over () as total,
                    format('(%s): stored (%s), raw (%s)', concat_ws(', ', {key}),
                           concat_ws(', ', {rolled_values}),
                           concat_ws(', ', {raw_values})) as example
             from rolled full join raw using ({key})
             where case when rolled.pending
                        then ({rolled_sums}) is distinct from ({raw_sums})
                        else ({rolled_values}) is distinct from ({raw_values}) end
             limit 5",
            key = self.key,
            folds = self.folds(),
            any_sum = self.any_sum(),
            table = self.table,
            counts = self.counts,
            rolled_values = self.qualified("rolled", false),
            raw_values = self.qualified("raw", false),
            rolled_sums = self.qualified("rolled", true),
            raw_sums = self.qualified("raw", true),
        )
    }
}

impl Summary {
    /// Its rows of tenant $1 (every tenant when null) deleted and recomputed.
    fn rebuild(&self) -> [String; 2] {
        [
            format!(
                "delete from {} where $1::text is null or tenant_id = $1",
                self.table
            ),
            format!(
                "insert into {table} select * from {folded} where $1::text is null or tenant_id = $1",
                table = self.table,
                folded = self.folded
            ),
        ]
    }

    /// Its rows of tenant $1 that differ from the view, with a few examples, leaving out
    /// the entities that `rollup` has fresh rows of.
    fn verify(&self, rollup: &Rollup) -> String {
        let list = |alias: &str, columns: &[&str]| {
            let qualified: Vec<String> = columns.iter().map(|c| format!("{alias}.{c}")).collect();
            qualified.join(", ")
        };
        let key: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("coalesce(s.{k}, f.{k})"))
            .collect();
        let same_entity: Vec<String> = self
            .key
            .iter()
            .zip(&key)
            .map(|(k, entity)| format!("r.{k} = {entity}"))
            .collect();
        format!(
            "select count(*) over () as total,
                    format('(%s): stored (%s), folded (%s)', concat_ws(', ', {key}),
                           concat_ws(', ', {stored}), concat_ws(', ', {folded_values})) as example
             from (select * from {table} where $1::text is null or tenant_id = $1) s
             full join (select * from {folded} where $1::text is null or tenant_id = $1) f
               on ({s_key}) = ({f_key})
             where ({stored}) is distinct from ({folded_values})
               and not exists (select from {rollup} r where r.fresh and {same_entity})
             limit 5",
            key = key.join(", "),
            stored = list("s", self.values),
            folded_values = list("f", self.values),
            table = self.table,
            folded = self.folded,
            s_key = list("s", self.key),
            f_key = list("f", self.key),
            rollup = rollup.table,
            same_entity = same_entity.join(" and "),
        )
    }
}

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
    /// Folds the deltas of the keys of up to `max_rows` fresh rows of every rollup table into
    /// one row per key; returns how many rows were folded (0 when there is nothing to do).
    /// Exact alongside writers and other compactions, so any number of callers may run it.
    pub async fn compact_rollups(&self, max_rows: i32) -> Result<u64, Error> {
        let mut folded = 0;
        for rollup in ROLLUPS {
            let sql = format!("select {}($1)", rollup.compact);
            // Background upkeep yields to whoever holds a table lock (a migration, an
            // operator's maintenance) instead of queueing, and making others queue, behind it.
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn
                .begin_with(format!(
                    "begin; set local lock_timeout = '{COMPACT_LOCK_WAIT}'"
                ))
                .await?;
            let query = sqlx::query_scalar::<_, i64>(&sql).bind(max_rows);
            let n = traced(&sql, query.fetch_one(&mut *tx)).await?;
            tx.commit().await?;
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
        for (table, rows_of) in DERIVED {
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn
                .begin_with(
                    "begin isolation level repeatable read; set local statement_timeout = 0",
                )
                .await?;
            let delete = format!("delete from {table} where $1::text is null or tenant_id = $1");
            sqlx::query(&delete).bind(&tenant).execute(&mut *tx).await?;
            let insert = format!("insert into {table} select * from {rows_of}($1)");
            let done = sqlx::query(&insert).bind(&tenant).execute(&mut *tx).await?;
            tx.commit().await?;
            rows += done.rows_affected();
        }
        for rollup in ROLLUPS {
            let delete = format!(
                "delete from {} where $1::text is null or tenant_id = $1",
                rollup.table
            );
            let insert = format!(
                "insert into {table} ({key}, {values}, fresh) select c.*, false from {counts}($1) c",
                table = rollup.table,
                key = rollup.key,
                values = rollup.values(),
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
                    if let Some(summary) = &rollup.summary {
                        for sql in summary.rebuild() {
                            sqlx::query(&sql).bind(&tenant).execute(&mut *tx).await?;
                        }
                    }
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
        let mut queries = Vec::new();
        for (table, rows_of) in DERIVED {
            let sql = format!(
                "with stored as (select * from {table} where $1::text is null or tenant_id = $1),
                      raw as (select * from {rows_of}($1)),
                      differing as ((select * from stored except all select * from raw)
                                    union all (select * from raw except all select * from stored))
                 select count(*) over () as total, format('%s', d) as example
                 from differing d limit 5"
            );
            queries.push((*table, sql));
        }
        for rollup in ROLLUPS {
            queries.push((rollup.table, rollup.verify()));
            if let Some(summary) = &rollup.summary {
                queries.push((summary.table, summary.verify(rollup)));
            }
        }
        for (table, sql) in queries {
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
                table,
                differing_keys,
                examples,
            });
        }
        Ok(checks)
    }
}

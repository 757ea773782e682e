//! Idempotent, set-based upserts of the three record types, and erasure.
//!
//! Each upsert is one statement: `insert ... select from unnest(...) on conflict do update
//! ... where stored.update_time < excluded.update_time returning id, (xmax = 0)`. Rows that
//! come back were created (xmax = 0) or updated; ids that do not come back were unchanged.
//! PostgreSQL refuses to touch one row twice in a statement, so a batch that repeats an id
//! is written as consecutive runs without repeats, in order, in the same transaction: the
//! outcome is the same as writing the records one by one.

use std::{collections::HashMap, collections::HashSet, ops::Range};

use sqlx::{PgConnection, Row, postgres::PgRow};

use super::{Store, trace::traced};
use crate::{
    domain::{Customer, Interaction, SurveyResponse, TenantId, WriteOutcome},
    error::Error,
};

/// Records of the three types to write in one transaction.
#[derive(Debug, Default)]
pub struct RecordBatch {
    pub survey_responses: Vec<SurveyResponse>,
    pub interactions: Vec<Interaction>,
    pub customers: Vec<Customer>,
}

impl RecordBatch {
    pub fn len(&self) -> usize {
        self.survey_responses.len() + self.interactions.len() + self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The outcomes of a `RecordBatch`, one per record, in the batch's order per type.
#[derive(Debug, Default)]
pub struct BatchOutcomes {
    pub survey_responses: Vec<WriteOutcome>,
    pub interactions: Vec<WriteOutcome>,
    pub customers: Vec<WriteOutcome>,
}

impl Store {
    /// Writes every record of the batch atomically.
    #[tracing::instrument(skip_all, fields(records = batch.len() as i64))]
    pub async fn write_batch(
        &self,
        tenant: &TenantId,
        batch: &RecordBatch,
    ) -> Result<BatchOutcomes, Error> {
        let mut tx = traced("begin", self.pool.begin()).await?;
        let mut outcomes = BatchOutcomes::default();
        for run in unique_runs(&batch.survey_responses, |r| &r.response_id) {
            let rows = &batch.survey_responses[run];
            let returned =
                upsert_survey_responses(&mut tx, tenant, &by_id(rows, |r| &r.response_id)).await?;
            outcomes.survey_responses.extend(outcomes_of(
                rows.iter().map(|r| r.response_id.as_str()),
                returned,
            ));
        }
        for run in unique_runs(&batch.interactions, |r| &r.interaction_id) {
            let rows = &batch.interactions[run];
            let returned =
                upsert_interactions(&mut tx, tenant, &by_id(rows, |r| &r.interaction_id)).await?;
            outcomes.interactions.extend(outcomes_of(
                rows.iter().map(|r| r.interaction_id.as_str()),
                returned,
            ));
        }
        for run in unique_runs(&batch.customers, |r| &r.customer_id) {
            let rows = &batch.customers[run];
            let returned =
                upsert_customers(&mut tx, tenant, &by_id(rows, |r| &r.customer_id)).await?;
            outcomes.customers.extend(outcomes_of(
                rows.iter().map(|r| r.customer_id.as_str()),
                returned,
            ));
        }
        traced("commit", tx.commit()).await?;
        Ok(outcomes)
    }

    /// Erases one customer's responses, interactions and customer record in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn delete_customer_data(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> Result<Erased, Error> {
        let mut tx = traced("begin", self.pool.begin()).await?;
        let mut erased = [0; 3];
        for (sql, count) in [
            "delete from survey_responses where tenant_id = $1 and customer_id = $2",
            "delete from interactions where tenant_id = $1 and customer_id = $2",
            "delete from customers where tenant_id = $1 and customer_id = $2",
        ]
        .into_iter()
        .zip(&mut erased)
        {
            let query = sqlx::query(sql).bind(tenant.as_str()).bind(customer_id);
            *count = traced(sql, query.execute(&mut *tx)).await?.rows_affected();
        }
        traced("commit", tx.commit()).await?;
        let [survey_responses, interactions, customers] = erased;
        Ok(Erased {
            survey_responses,
            interactions,
            customers,
        })
    }
}

/// How many records of each type an erasure deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub survey_responses: u64,
    pub interactions: u64,
    pub customers: u64,
}

/// Splits `records` into consecutive ranges in which no id repeats.
fn unique_runs<T>(records: &[T], id: impl Fn(&T) -> &String) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut seen = HashSet::new();
    let mut start = 0;
    for (i, record) in records.iter().enumerate() {
        if !seen.insert(id(record).as_str()) {
            runs.push(start..i);
            seen.clear();
            seen.insert(id(record).as_str());
            start = i;
        }
    }
    if start < records.len() {
        runs.push(start..records.len());
    }
    runs
}

/// `records` in the order of their ids. Every statement writes its rows in this one order,
/// so two batches that share ids lock them in the same order and never deadlock.
fn by_id<T>(records: &[T], id: impl Fn(&T) -> &String) -> Vec<&T> {
    let mut sorted: Vec<&T> = records.iter().collect();
    sorted.sort_by(|a, b| id(a).cmp(id(b)));
    sorted
}

/// Maps the returned `(id, created)` rows back onto the input ids; ids not returned were
/// unchanged.
fn outcomes_of<'a>(
    ids: impl Iterator<Item = &'a str>,
    returned: HashMap<String, bool>,
) -> Vec<WriteOutcome> {
    ids.map(|id| match returned.get(id) {
        Some(true) => WriteOutcome::Created,
        Some(false) => WriteOutcome::Updated,
        None => WriteOutcome::Unchanged,
    })
    .collect()
}

fn returned_rows(rows: Vec<PgRow>) -> Result<HashMap<String, bool>, Error> {
    rows.iter()
        .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<bool, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Error::from)
}

fn column<T, U>(rows: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

async fn upsert_survey_responses(
    conn: &mut PgConnection,
    tenant: &TenantId,
    rows: &[&SurveyResponse],
) -> Result<HashMap<String, bool>, Error> {
    let sql =
        "insert into survey_responses as stored (tenant_id, response_id, survey_id, kind, score,
         scale_min, scale_max, customer_id, interaction_id, channel, respond_time, comment,
         attributes, update_time)
     select $1, r.* from unnest($2::text[], $3::text[], $4::smallint[], $5::smallint[],
         $6::smallint[], $7::smallint[], $8::text[], $9::text[], $10::text[],
         $11::timestamptz[], $12::text[], $13::jsonb[], $14::timestamptz[]) as r
     on conflict (tenant_id, response_id) do update set
         survey_id = excluded.survey_id, kind = excluded.kind, score = excluded.score,
         scale_min = excluded.scale_min, scale_max = excluded.scale_max,
         customer_id = excluded.customer_id, interaction_id = excluded.interaction_id,
         channel = excluded.channel, respond_time = excluded.respond_time,
         comment = excluded.comment, attributes = excluded.attributes,
         update_time = excluded.update_time
     where stored.update_time < excluded.update_time
     returning response_id, (xmax = 0) as created";
    let query = sqlx::query(sql)
        .bind(tenant.as_str())
        .bind(column(rows, |r| r.response_id.clone()))
        .bind(column(rows, |r| r.survey_id.clone()))
        .bind(column(rows, |r| r.kind.code()))
        .bind(column(rows, |r| r.score.value()))
        .bind(column(rows, |r| r.score.scale().min))
        .bind(column(rows, |r| r.score.scale().max))
        .bind(column(rows, |r| r.customer_id.clone()))
        .bind(column(rows, |r| r.interaction_id.clone()))
        .bind(column(rows, |r| r.channel.clone()))
        .bind(column(rows, |r| r.respond_time))
        .bind(column(rows, |r| r.comment.clone()))
        .bind(column(rows, |r| r.attributes.to_json()))
        .bind(column(rows, |r| r.update_time));
    returned_rows(traced(sql, query.fetch_all(conn)).await?)
}

async fn upsert_interactions(
    conn: &mut PgConnection,
    tenant: &TenantId,
    rows: &[&Interaction],
) -> Result<HashMap<String, bool>, Error> {
    let sql = "insert into interactions as stored (tenant_id, interaction_id, customer_id, channel,
         agent_id, team_id, open_time, first_response_time, resolve_time, attributes,
         update_time)
     select $1, r.* from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::jsonb[],
         $11::timestamptz[]) as r
     on conflict (tenant_id, interaction_id) do update set
         customer_id = excluded.customer_id, channel = excluded.channel,
         agent_id = excluded.agent_id, team_id = excluded.team_id,
         open_time = excluded.open_time, first_response_time = excluded.first_response_time,
         resolve_time = excluded.resolve_time, attributes = excluded.attributes,
         update_time = excluded.update_time
     where stored.update_time < excluded.update_time
     returning interaction_id, (xmax = 0) as created";
    let query = sqlx::query(sql)
        .bind(tenant.as_str())
        .bind(column(rows, |r| r.interaction_id.clone()))
        .bind(column(rows, |r| r.customer_id.clone()))
        .bind(column(rows, |r| r.channel.clone()))
        .bind(column(rows, |r| r.agent_id.clone()))
        .bind(column(rows, |r| r.team_id.clone()))
        .bind(column(rows, |r| r.open_time))
        .bind(column(rows, |r| r.first_response_time))
        .bind(column(rows, |r| r.resolve_time))
        .bind(column(rows, |r| r.attributes.to_json()))
        .bind(column(rows, |r| r.update_time));
    returned_rows(traced(sql, query.fetch_all(conn)).await?)
}

async fn upsert_customers(
    conn: &mut PgConnection,
    tenant: &TenantId,
    rows: &[&Customer],
) -> Result<HashMap<String, bool>, Error> {
    let sql = "insert into customers as stored (tenant_id, customer_id, acquire_time, churn_time,
         attributes, update_time)
     select $1, r.* from unnest($2::text[], $3::timestamptz[], $4::timestamptz[],
         $5::jsonb[], $6::timestamptz[]) as r
     on conflict (tenant_id, customer_id) do update set
         acquire_time = excluded.acquire_time, churn_time = excluded.churn_time,
         attributes = excluded.attributes, update_time = excluded.update_time
     where stored.update_time < excluded.update_time
     returning customer_id, (xmax = 0) as created";
    let query = sqlx::query(sql)
        .bind(tenant.as_str())
        .bind(column(rows, |r| r.customer_id.clone()))
        .bind(column(rows, |r| r.acquire_time))
        .bind(column(rows, |r| r.churn_time))
        .bind(column(rows, |r| r.attributes.to_json()))
        .bind(column(rows, |r| r.update_time));
    returned_rows(traced(sql, query.fetch_all(conn)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_starts_a_new_run() {
        let ids: Vec<String> = ["a", "b", "a", "c", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(unique_runs(&ids, |s| s), vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn ids_without_repeats_form_one_run() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(unique_runs(&ids, |s| s), vec![0..3]);
        assert!(unique_runs::<String>(&[], |s| s).is_empty());
    }

    #[test]
    fn ids_that_are_not_returned_are_unchanged() {
        let returned = HashMap::from([("a".to_string(), true), ("b".to_string(), false)]);
        assert_eq!(
            outcomes_of(["a", "b", "c"].into_iter(), returned),
            [
                WriteOutcome::Created,
                WriteOutcome::Updated,
                WriteOutcome::Unchanged
            ]
        );
    }
}

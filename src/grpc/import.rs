//! The ImportRecords stream: validates each message, rejects the bad ones with their
//! position, and writes the good ones in chunks, each chunk its own transaction, so memory
//! stays bounded however long the stream is. A chunk is acknowledged (counted) only after
//! it commits; if the database fails mid-stream the call fails with UNAVAILABLE and the
//! committed chunks stay, which a retry of the whole stream then reports as unchanged.

use chrono::{DateTime, Utc};

use super::convert;
use crate::{
    domain::{TenantId, WriteOutcome},
    error::{Error, Violation},
    proto::{self as pb, import_records_request::Record},
    storage::{RecordBatch, Store},
};

/// Records written per transaction.
pub const CHUNK_RECORDS: usize = 1_000;
/// Rejected records listed in the reply (all of them are counted).
pub const MAX_LISTED_REJECTIONS: usize = 1_000;

pub struct Importer<'a> {
    store: &'a Store,
    tenant: &'a TenantId,
    now: DateTime<Utc>,
    position: i64,
    pending: RecordBatch,
    reply: pb::ImportRecordsResponse,
}

impl<'a> Importer<'a> {
    pub fn new(store: &'a Store, tenant: &'a TenantId) -> Self {
        Self {
            store,
            tenant,
            now: Utc::now(),
            position: 0,
            pending: RecordBatch::default(),
            reply: pb::ImportRecordsResponse::default(),
        }
    }

    /// Takes the next message of the stream.
    pub async fn push(&mut self, message: pb::ImportRecordsRequest) -> Result<(), Error> {
        let position = self.position;
        self.position += 1;
        if let Err((id, violations)) = self.parse(message.record) {
            self.reject(position, id, &violations);
            return Ok(());
        }
        if self.pending.len() >= CHUNK_RECORDS {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is left and returns the reply.
    pub async fn finish(mut self) -> Result<pb::ImportRecordsResponse, Error> {
        self.flush().await?;
        tracing::info!(
            created = self.reply.created,
            updated = self.reply.updated,
            unchanged = self.reply.unchanged,
            rejected = self.reply.rejected,
            "import finished"
        );
        Ok(self.reply)
    }

    fn parse(&mut self, record: Option<Record>) -> Result<(), (String, Vec<Violation>)> {
        let now = self.now;
        match record {
            None => Err((String::new(), vec![Violation::new("record", "is required")])),
            Some(Record::SurveyResponse(r)) => {
                let id = r.response_id.clone();
                let parsed = convert::survey_response(r, now).map_err(|v| (id, v))?;
                self.pending.survey_responses.push(parsed);
                Ok(())
            }
            Some(Record::Interaction(r)) => {
                let id = r.interaction_id.clone();
                let parsed = convert::interaction(r, now).map_err(|v| (id, v))?;
                self.pending.interactions.push(parsed);
                Ok(())
            }
            Some(Record::Customer(r)) => {
                let id = r.customer_id.clone();
                let parsed = convert::customer(r, now).map_err(|v| (id, v))?;
                self.pending.customers.push(parsed);
                Ok(())
            }
        }
    }

    fn reject(&mut self, position: i64, id: String, violations: &[Violation]) {
        self.reply.rejected += 1;
        if self.reply.rejected_records.len() < MAX_LISTED_REJECTIONS {
            let reason = violations
                .iter()
                .map(Violation::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            self.reply.rejected_records.push(pb::RejectedRecord {
                position,
                id,
                reason,
            });
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.write_chunk(batch).await
    }

    /// Writes one chunk in its own transaction and counts its outcomes.
    #[tracing::instrument(name = "import_chunk", skip_all, fields(records = batch.len() as i64))]
    async fn write_chunk(&mut self, batch: RecordBatch) -> Result<(), Error> {
        let written = self.store.write_batch(self.tenant, &batch).await?;
        for outcome in written
            .survey_responses
            .into_iter()
            .chain(written.interactions)
            .chain(written.customers)
        {
            match outcome {
                WriteOutcome::Created => self.reply.created += 1,
                WriteOutcome::Updated => self.reply.updated += 1,
                WriteOutcome::Unchanged => self.reply.unchanged += 1,
            }
        }
        Ok(())
    }
}

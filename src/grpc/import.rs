//! The ImportRecords stream: validates each message, rejects the bad ones with their
//! position, and writes the good ones in chunks, each chunk its own transaction, so memory
//! stays bounded however long the stream is. A chunk is acknowledged (counted) only after
//! it commits; if the database fails mid-stream the call fails with UNAVAILABLE and the
//! committed chunks stay, which a retry of the whole stream then reports as unchanged.
//!
//! Reading and writing run side by side: while one chunk commits, the stream keeps being
//! read and parsed into the next, so the client's DATA frames wait unread in h2's buffers
//! only when the database is slower than the client. At most [`QUEUED_CHUNKS`] full chunks
//! wait behind the one being written; beyond that reading pauses, and the stream's HTTP/2
//! flow-control window holds the client back. That window is what keeps the unread frames
//! under h2's small-frame budget (see [`crate::startup::STREAM_WINDOW_BYTES`]).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::convert;
use crate::{
    domain::{Limits, TenantId, WriteOutcome},
    error::{Error, Violation},
    proto::{self as pb, import_records_request::Record},
    storage::{BatchOutcomes, RecordBatch, Store},
};

/// Records written per transaction.
pub const CHUNK_RECORDS: usize = 1_000;
/// Full chunks parsed ahead while another one commits. With the chunk being filled and the
/// one being written, a call holds at most `(QUEUED_CHUNKS + 2) * CHUNK_RECORDS` records.
pub const QUEUED_CHUNKS: usize = 1;
/// Rejected records listed in the reply (all of them are counted).
pub const MAX_LISTED_REJECTIONS: usize = 1_000;
/// Longest id echoed in a rejection: longer ids are cut and end in [`CUT_MARKER`].
pub const MAX_ECHOED_ID_CHARS: usize = Limits::ID_MAX_CHARS;
/// Longest reason of a rejection, cut the same way.
pub const MAX_REASON_CHARS: usize = 1_024;
/// Ends a cut id or reason.
pub const CUT_MARKER: char = '…';

/// Reads the whole stream and writes its good records; the reply once every chunk has
/// committed.
pub async fn import(
    store: &Store,
    tenant: &TenantId,
    mut stream: Streaming<pb::ImportRecordsRequest>,
) -> Result<pb::ImportRecordsResponse, Status> {
    let (chunks, mut queue) = mpsc::channel::<RecordBatch>(QUEUED_CHUNKS);
    let read = async move {
        let mut parser = Parser::new(Utc::now());
        while let Some(message) = stream.message().await? {
            if let Some(chunk) = parser.push(message) {
                chunks.send(chunk).await.map_err(writer_gone)?;
            }
        }
        if let Some(chunk) = parser.rest() {
            chunks.send(chunk).await.map_err(writer_gone)?;
        }
        Ok::<_, Status>(parser.reply)
    };
    let write = async {
        let mut written = Written::default();
        while let Some(chunk) = queue.recv().await {
            written.add(write_chunk(store, tenant, chunk).await?);
        }
        Ok::<_, Status>(written)
    };
    // The first error of either side ends the call; dropping an unfinished chunk write
    // rolls its transaction back, so nothing unacknowledged is counted.
    let (mut reply, written) = tokio::try_join!(read, write)?;
    reply.created = written.created;
    reply.updated = written.updated;
    reply.unchanged = written.unchanged;
    tracing::info!(
        created = reply.created,
        updated = reply.updated,
        unchanged = reply.unchanged,
        rejected = reply.rejected,
        "import finished"
    );
    Ok(reply)
}

/// The writer stops receiving only after an error, which ends the call before the reader
/// can see a closed queue; this maps the impossible case to a plain internal error.
fn writer_gone<T>(_: mpsc::error::SendError<T>) -> Status {
    Error::Internal(anyhow::anyhow!("import writer stopped early")).into()
}

/// Writes one chunk in its own transaction.
#[tracing::instrument(name = "import_chunk", skip_all, fields(records = batch.len() as i64))]
async fn write_chunk(
    store: &Store,
    tenant: &TenantId,
    batch: RecordBatch,
) -> Result<BatchOutcomes, Error> {
    store.write_batch(tenant, &batch).await
}

/// The outcomes of the committed chunks.
#[derive(Debug, Default)]
struct Written {
    created: i64,
    updated: i64,
    unchanged: i64,
}

impl Written {
    fn add(&mut self, outcomes: BatchOutcomes) {
        for outcome in outcomes
            .survey_responses
            .into_iter()
            .chain(outcomes.interactions)
            .chain(outcomes.customers)
        {
            match outcome {
                WriteOutcome::Created => self.created += 1,
                WriteOutcome::Updated => self.updated += 1,
                WriteOutcome::Unchanged => self.unchanged += 1,
            }
        }
    }
}

/// Turns messages into chunks of valid records and keeps the rejections of the reply.
struct Parser {
    now: DateTime<Utc>,
    position: i64,
    pending: RecordBatch,
    reply: pb::ImportRecordsResponse,
}

impl Parser {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            position: 0,
            pending: RecordBatch::default(),
            reply: pb::ImportRecordsResponse::default(),
        }
    }

    /// Takes the next message of the stream; a full chunk once one is ready.
    fn push(&mut self, message: pb::ImportRecordsRequest) -> Option<RecordBatch> {
        let position = self.position;
        self.position += 1;
        if let Err((id, violations)) = self.parse(message.record) {
            self.reject(position, id, &violations);
            return None;
        }
        (self.pending.len() >= CHUNK_RECORDS).then(|| std::mem::take(&mut self.pending))
    }

    /// The records left after the last message.
    fn rest(&mut self) -> Option<RecordBatch> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// Parses one record into the pending chunk. On failure, returns the id to echo
    /// (already cut, and empty once the rejection list is full) and the violations.
    fn parse(&mut self, record: Option<Record>) -> Result<(), (String, Vec<Violation>)> {
        let now = self.now;
        let listing = self.reply.rejected_records.len() < MAX_LISTED_REJECTIONS;
        let echo = |id: &str| {
            if listing {
                cut(id, MAX_ECHOED_ID_CHARS)
            } else {
                String::new()
            }
        };
        match record {
            None => Err((String::new(), vec![Violation::new("record", "is required")])),
            Some(Record::SurveyResponse(r)) => {
                let id = echo(&r.response_id);
                let parsed = convert::survey_response(r, now).map_err(|v| (id, v))?;
                self.pending.survey_responses.push(parsed);
                Ok(())
            }
            Some(Record::Interaction(r)) => {
                let id = echo(&r.interaction_id);
                let parsed = convert::interaction(r, now).map_err(|v| (id, v))?;
                self.pending.interactions.push(parsed);
                Ok(())
            }
            Some(Record::Customer(r)) => {
                let id = echo(&r.customer_id);
                let parsed = convert::customer(r, now).map_err(|v| (id, v))?;
                self.pending.customers.push(parsed);
                Ok(())
            }
        }
    }

    /// Counts a rejection, and lists it while the list has room.
    fn reject(&mut self, position: i64, id: String, violations: &[Violation]) {
        self.reply.rejected += 1;
        if self.reply.rejected_records.len() < MAX_LISTED_REJECTIONS {
            self.reply.rejected_records.push(pb::RejectedRecord {
                position,
                id,
                reason: reason(violations),
            });
        }
    }
}

/// The violations joined with "; ", at most [`MAX_REASON_CHARS`] characters.
fn reason(violations: &[Violation]) -> String {
    let mut out = Capped::new(MAX_REASON_CHARS);
    for (i, violation) in violations.iter().enumerate() {
        let separator = if i == 0 { "" } else { "; " };
        if write!(out, "{separator}{violation}").is_err() {
            break;
        }
    }
    out.finish()
}

/// `text` as it is when it has at most `max_chars` characters; otherwise its first
/// `max_chars` characters and [`CUT_MARKER`]. Never copies more than that.
fn cut(text: &str, max_chars: usize) -> String {
    let mut out = Capped::new(max_chars);
    // A cut text is an error of `Capped`, which `finish` marks.
    let _ = out.write_str(text);
    out.finish()
}

/// A string writer that keeps the first `left` characters and refuses the rest.
struct Capped {
    out: String,
    left: usize,
    cut: bool,
}

impl Capped {
    fn new(max_chars: usize) -> Self {
        Self {
            out: String::new(),
            left: max_chars,
            cut: false,
        }
    }

    fn finish(mut self) -> String {
        if self.cut {
            self.out.push(CUT_MARKER);
        }
        self.out
    }
}

impl std::fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        // Looks at no more than `left + 1` characters of `s`, however long it is.
        match s.char_indices().nth(self.left) {
            None => {
                self.left -= s.chars().count();
                self.out.push_str(s);
                Ok(())
            }
            Some((end, _)) => {
                self.out.push_str(&s[..end]);
                self.left = 0;
                self.cut = true;
                Err(std::fmt::Error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// A survey response that fails validation (no survey, no score, no time) with `id`.
    fn bad_response(id: String) -> pb::ImportRecordsRequest {
        pb::ImportRecordsRequest {
            record: Some(Record::SurveyResponse(pb::SurveyResponse {
                response_id: id,
                ..Default::default()
            })),
        }
    }

    #[test]
    fn text_within_the_limit_is_echoed_whole() {
        assert_eq!(cut("", 128), "");
        assert_eq!(cut(&"a".repeat(128), 128), "a".repeat(128));
    }

    #[test]
    fn text_over_the_limit_is_cut_at_a_character_and_marked() {
        assert_eq!(cut(&"a".repeat(129), 128), format!("{}…", "a".repeat(128)));
        let cyrillic = "ж".repeat(1_000);
        assert_eq!(cut(&cyrillic, 128), format!("{}…", "ж".repeat(128)));
        assert_eq!(cut("abc", 0), "…");
    }

    #[test]
    fn a_rejected_record_with_a_huge_id_echoes_a_cut_id() {
        let mut parser = Parser::new(now());
        let huge = "x".repeat(4 * 1024 * 1024);
        assert!(parser.push(bad_response(huge)).is_none());
        assert_eq!(parser.reply.rejected, 1);
        let listed = &parser.reply.rejected_records[0];
        assert_eq!(listed.position, 0);
        assert_eq!(listed.id, format!("{}…", "x".repeat(MAX_ECHOED_ID_CHARS)));
        assert!(listed.reason.contains("response_id"), "{}", listed.reason);
        assert!(listed.reason.contains("survey_id"), "{}", listed.reason);
    }

    #[test]
    fn a_reason_is_cut_to_its_limit() {
        let violations: Vec<_> = (0..100)
            .map(|i| Violation::new(format!("attributes.k{i}"), "d".repeat(100)))
            .collect();
        let reason = reason(&violations);
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS + 1);
        assert!(reason.starts_with(&format!(
            "attributes.k0: {}; attributes.k1: ",
            "d".repeat(100)
        )));
        assert!(reason.ends_with(CUT_MARKER));
        let short = super::reason(&violations[..2]);
        assert!(!short.ends_with(CUT_MARKER), "{short}");
    }

    #[test]
    fn rejections_past_the_listed_limit_are_counted_but_nothing_is_copied_for_them() {
        let mut parser = Parser::new(now());
        let long_id = "y".repeat(1_000);
        for _ in 0..MAX_LISTED_REJECTIONS + 5 {
            assert!(parser.push(bad_response(long_id.clone())).is_none());
        }
        assert_eq!(parser.reply.rejected, (MAX_LISTED_REJECTIONS + 5) as i64);
        assert_eq!(parser.reply.rejected_records.len(), MAX_LISTED_REJECTIONS);
        let last = parser.reply.rejected_records.last().unwrap();
        assert_eq!(last.position, (MAX_LISTED_REJECTIONS - 1) as i64);
        assert_eq!(last.id.chars().count(), MAX_ECHOED_ID_CHARS + 1);
        // With the list full, a failed parse no longer copies the id at all.
        let (id, violations) = parser
            .parse(bad_response(long_id).record)
            .expect_err("an invalid record");
        assert_eq!(id, "");
        assert!(!violations.is_empty());
    }

    #[test]
    fn a_chunk_is_handed_out_every_thousand_valid_records() {
        let mut parser = Parser::new(now());
        let customer = |i: usize| pb::ImportRecordsRequest {
            record: Some(Record::Customer(pb::Customer {
                customer_id: format!("c{i}"),
                acquire_time: Some(prost_types::Timestamp {
                    seconds: 1_767_225_600,
                    nanos: 0,
                }),
                ..Default::default()
            })),
        };
        let chunks: Vec<usize> = (0..2_500)
            .filter_map(|i| parser.push(customer(i)))
            .map(|chunk| chunk.len())
            .collect();
        assert_eq!(chunks, [CHUNK_RECORDS, CHUNK_RECORDS]);
        assert_eq!(parser.rest().map(|chunk| chunk.len()), Some(500));
        assert!(parser.rest().is_none());
    }
}

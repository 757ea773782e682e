//! The ImportRecords policy, for any transport: each message is parsed (by the adapter)
//! into a record or a rejection; the good records are written in chunks, each chunk its own
//! transaction, so memory stays bounded however long the stream is. A chunk is
//! acknowledged (counted) only after it commits; if the database fails mid-stream the call
//! fails with UNAVAILABLE and the committed chunks stay, which a retry of the whole stream
//! then reports as unchanged.
//!
//! Reading and writing run side by side: while one chunk commits, the stream keeps being
//! read and parsed into the next, so the client's DATA frames wait unread in h2's buffers
//! only when the database is slower than the client. At most [`QUEUED_CHUNKS`] full chunks
//! wait behind the one being written; beyond that reading pauses, and the stream's HTTP/2
//! flow-control window holds the client back. That window is what keeps the unread frames
//! under h2's small-frame budget (see [`crate::startup::STREAM_WINDOW_BYTES`]).

use std::fmt::Write as _;

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};

use super::{Records, auth::Caller};
use crate::{
    domain::{Customer, Interaction, Limits, SurveyResponse, WriteOutcome},
    error::{Error, Violation},
    storage::{BatchOutcomes, RecordBatch},
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

/// One record of an import stream, of any type.
#[derive(Debug, Clone)]
pub enum ImportRecord {
    SurveyResponse(SurveyResponse),
    Interaction(Interaction),
    Customer(Customer),
}

/// A message that did not parse: the id to echo (from [`Echo::id`]) and why.
pub type Rejected = (String, Vec<Violation>);

/// A rejected record as the reply lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 0-based position of the message in the stream.
    pub position: i64,
    pub id: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    /// The first [`MAX_LISTED_REJECTIONS`] rejections.
    pub rejected_records: Vec<Rejection>,
}

/// How much of a rejected record's id to copy: cut to [`MAX_ECHOED_ID_CHARS`], and nothing
/// once the list of rejections is full.
#[derive(Debug, Clone, Copy)]
pub struct Echo {
    listing: bool,
}

impl Echo {
    /// Copies ids (cut) while `listing`, nothing otherwise.
    pub fn new(listing: bool) -> Self {
        Self { listing }
    }

    pub fn id(self, id: &str) -> String {
        if self.listing {
            cut(id, MAX_ECHOED_ID_CHARS)
        } else {
            String::new()
        }
    }
}

impl Records {
    /// Reads the whole stream, parsing each message with `parse`, and writes its good
    /// records; the summary once every chunk has committed. The first error of the stream
    /// or of a write ends the call; dropping an unfinished chunk write rolls its
    /// transaction back, so nothing unacknowledged is counted.
    pub async fn import<M, E>(
        &self,
        caller: &Caller,
        mut messages: impl Stream<Item = Result<M, E>> + Unpin,
        mut parse: impl FnMut(M, Echo) -> Result<ImportRecord, Rejected>,
    ) -> Result<ImportSummary, E>
    where
        E: From<Error>,
    {
        let (chunks, mut queue) = mpsc::channel::<RecordBatch>(QUEUED_CHUNKS);
        let read = async move {
            let mut chunker = Chunker::default();
            while let Some(message) = messages.next().await {
                let parsed = parse(message?, chunker.echo());
                if let Some(chunk) = chunker.push(parsed) {
                    chunks.send(chunk).await.map_err(writer_gone)?;
                }
            }
            if let Some(chunk) = chunker.rest() {
                chunks.send(chunk).await.map_err(writer_gone)?;
            }
            Ok::<_, E>(chunker.summary)
        };
        let write = async {
            let mut written = Written::default();
            while let Some(chunk) = queue.recv().await {
                written.add(self.write_chunk(caller, chunk).await?);
            }
            Ok::<_, E>(written)
        };
        let (mut summary, written) = tokio::try_join!(read, write)?;
        summary.created = written.created;
        summary.updated = written.updated;
        summary.unchanged = written.unchanged;
        tracing::info!(
            created = summary.created,
            updated = summary.updated,
            unchanged = summary.unchanged,
            rejected = summary.rejected,
            "import finished"
        );
        Ok(summary)
    }

    /// Writes one chunk in its own transaction.
    #[tracing::instrument(name = "import_chunk", skip_all, fields(records = batch.len() as i64))]
    async fn write_chunk(
        &self,
        caller: &Caller,
        batch: RecordBatch,
    ) -> Result<BatchOutcomes, Error> {
        self.write(caller, &batch).await
    }
}

/// The writer stops receiving only after an error, which ends the call before the reader
/// can see a closed queue; this maps the impossible case to a plain internal error.
fn writer_gone<T, E: From<Error>>(_: mpsc::error::SendError<T>) -> E {
    Error::Internal(anyhow::anyhow!("import writer stopped early")).into()
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

/// Gathers parsed records into chunks and keeps the rejections of the summary.
#[derive(Debug, Default)]
struct Chunker {
    position: i64,
    pending: RecordBatch,
    summary: ImportSummary,
}

impl Chunker {
    fn echo(&self) -> Echo {
        Echo::new(self.summary.rejected_records.len() < MAX_LISTED_REJECTIONS)
    }

    /// Takes the next message's record or rejection; a full chunk once one is ready.
    fn push(&mut self, parsed: Result<ImportRecord, Rejected>) -> Option<RecordBatch> {
        let position = self.position;
        self.position += 1;
        match parsed {
            Ok(ImportRecord::SurveyResponse(r)) => self.pending.survey_responses.push(r),
            Ok(ImportRecord::Interaction(r)) => self.pending.interactions.push(r),
            Ok(ImportRecord::Customer(r)) => self.pending.customers.push(r),
            Err((id, violations)) => {
                self.reject(position, id, &violations);
                return None;
            }
        }
        (self.pending.len() >= CHUNK_RECORDS).then(|| std::mem::take(&mut self.pending))
    }

    /// The records left after the last message.
    fn rest(&mut self) -> Option<RecordBatch> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// Counts a rejection, and lists it while the list has room.
    fn reject(&mut self, position: i64, id: String, violations: &[Violation]) {
        self.summary.rejected += 1;
        if self.summary.rejected_records.len() < MAX_LISTED_REJECTIONS {
            self.summary.rejected_records.push(Rejection {
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
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::domain::Attributes;

    fn customer(i: usize) -> Result<ImportRecord, Rejected> {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        Ok(ImportRecord::Customer(Customer {
            customer_id: format!("c{i}"),
            acquire_time: t,
            churn_time: None,
            attributes: Attributes::default(),
            update_time: t,
        }))
    }

    fn rejected(chunker: &Chunker, id: &str) -> Result<ImportRecord, Rejected> {
        Err((
            chunker.echo().id(id),
            vec![Violation::new("score", "is required")],
        ))
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
        let mut chunker = Chunker::default();
        let long_id = "y".repeat(1_000);
        for _ in 0..MAX_LISTED_REJECTIONS + 5 {
            let parsed = rejected(&chunker, &long_id);
            assert!(chunker.push(parsed).is_none());
        }
        assert_eq!(chunker.summary.rejected, (MAX_LISTED_REJECTIONS + 5) as i64);
        assert_eq!(
            chunker.summary.rejected_records.len(),
            MAX_LISTED_REJECTIONS
        );
        let last = chunker.summary.rejected_records.last().unwrap();
        assert_eq!(last.position, (MAX_LISTED_REJECTIONS - 1) as i64);
        assert_eq!(last.id.chars().count(), MAX_ECHOED_ID_CHARS + 1);
        // With the list full, the id is no longer copied at all.
        assert_eq!(chunker.echo().id(&long_id), "");
    }

    #[test]
    fn a_chunk_is_handed_out_every_thousand_valid_records() {
        let mut chunker = Chunker::default();
        let chunks: Vec<usize> = (0..2_500)
            .filter_map(|i| chunker.push(customer(i)))
            .map(|chunk| chunk.len())
            .collect();
        assert_eq!(chunks, [CHUNK_RECORDS, CHUNK_RECORDS]);
        assert_eq!(chunker.rest().map(|chunk| chunk.len()), Some(500));
        assert!(chunker.rest().is_none());
    }
}

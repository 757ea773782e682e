//! ImportRecords over gRPC: each message is parsed into a domain record or a rejection (its
//! id cut before it is copied), and `app::Records::import` does the rest.

use chrono::{DateTime, Utc};
use tonic::{Status, Streaming};

use super::convert;
use crate::{
    app::{
        Caller, Records,
        import::{Echo, ImportRecord, ImportSummary, Rejected},
    },
    error::Violation,
    proto::{self as pb, import_records_request::Record},
};

/// Imports the whole stream; the reply once every chunk has committed.
pub async fn import(
    records: &Records,
    caller: &Caller,
    stream: Streaming<pb::ImportRecordsRequest>,
) -> Result<pb::ImportRecordsResponse, Status> {
    let now = Utc::now();
    let summary = records
        .import(caller, stream, |message, echo| {
            parse(message.record, now, echo)
        })
        .await?;
    Ok(reply(summary))
}

/// Parses one message's record. On failure, the id to echo (cut as `echo` says) and the
/// violations.
fn parse(record: Option<Record>, now: DateTime<Utc>, echo: Echo) -> Result<ImportRecord, Rejected> {
    match record {
        None => Err((String::new(), vec![Violation::new("record", "is required")])),
        Some(Record::SurveyResponse(r)) => {
            let id = echo.id(&r.response_id);
            convert::survey_response(r, now)
                .map(ImportRecord::SurveyResponse)
                .map_err(|v| (id, v))
        }
        Some(Record::Interaction(r)) => {
            let id = echo.id(&r.interaction_id);
            convert::interaction(r, now)
                .map(ImportRecord::Interaction)
                .map_err(|v| (id, v))
        }
        Some(Record::Customer(r)) => {
            let id = echo.id(&r.customer_id);
            convert::customer(r, now)
                .map(ImportRecord::Customer)
                .map_err(|v| (id, v))
        }
    }
}

fn reply(summary: ImportSummary) -> pb::ImportRecordsResponse {
    pb::ImportRecordsResponse {
        created: summary.created,
        updated: summary.updated,
        unchanged: summary.unchanged,
        rejected: summary.rejected,
        rejected_records: summary
            .rejected_records
            .into_iter()
            .map(|r| pb::RejectedRecord {
                position: r.position,
                id: r.id,
                reason: r.reason,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::import::MAX_ECHOED_ID_CHARS;

    #[test]
    fn a_rejected_record_with_a_huge_id_echoes_a_cut_id_and_names_its_fields() {
        let huge = "x".repeat(4 * 1024 * 1024);
        let record = Record::SurveyResponse(pb::SurveyResponse {
            response_id: huge,
            ..Default::default()
        });
        let echo = Echo::new(true);
        let Err((id, violations)) = parse(Some(record), Utc::now(), echo) else {
            panic!("an invalid record");
        };
        assert_eq!(id, format!("{}…", "x".repeat(MAX_ECHOED_ID_CHARS)));
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"response_id"), "{fields:?}");
        assert!(fields.contains(&"survey_id"), "{fields:?}");
        let Err((id, _)) = parse(None, Utc::now(), echo) else {
            panic!("a missing record");
        };
        assert_eq!(id, "");
    }
}

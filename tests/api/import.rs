use cxmetrics::proto::{self as pb, import_records_request::Record};

use crate::helpers::*;

fn message(record: Record) -> pb::ImportRecordsRequest {
    pb::ImportRecordsRequest {
        record: Some(record),
    }
}

async fn import(
    app: &TestApp,
    messages: Vec<pb::ImportRecordsRequest>,
) -> pb::ImportRecordsResponse {
    app.feedback()
        .import_records(tokio_stream::iter(messages))
        .await
        .expect("import")
        .into_inner()
}

/// Ten messages of every type with bad ones at positions 3 and 7.
fn mixed_stream() -> Vec<pb::ImportRecordsRequest> {
    let mut bad_score = nps("r-bad", "c1", 11);
    bad_score.survey_id = "s".into();
    let mut bad_interaction = interaction("i-bad", "c1");
    bad_interaction.open_time = None;
    vec![
        message(Record::Customer(customer("c1"))),
        message(Record::SurveyResponse(nps("r1", "c1", 9))),
        message(Record::Interaction(interaction("i1", "c1"))),
        message(Record::SurveyResponse(bad_score)),
        message(Record::SurveyResponse(nps("r2", "c1", 3))),
        message(Record::Customer(customer("c2"))),
        message(Record::Interaction(interaction("i2", "c2"))),
        message(Record::Interaction(bad_interaction)),
        message(Record::SurveyResponse(nps("r3", "c2", 7))),
        message(Record::SurveyResponse(nps("r1", "c1", 9))),
    ]
}

#[tokio::test]
async fn an_import_rejects_bad_records_by_position_and_stores_the_rest() {
    let app = spawn_app().await;
    let reply = import(&app, mixed_stream()).await;
    // r1 appears twice with the same (absent) version: the second is unchanged.
    assert_eq!(
        (
            reply.created,
            reply.updated,
            reply.unchanged,
            reply.rejected
        ),
        (7, 0, 1, 2)
    );
    let rejected: Vec<_> = reply
        .rejected_records
        .iter()
        .map(|r| (r.position, r.id.as_str()))
        .collect();
    assert_eq!(rejected, [(3, "r-bad"), (7, "i-bad")]);
    assert!(reply.rejected_records[0].reason.contains("score"));
    assert!(reply.rejected_records[1].reason.contains("open_time"));
    let stored = app
        .count(
            "select (select count(*) from survey_responses) + (select count(*) from interactions)
                  + (select count(*) from customers)",
        )
        .await;
    assert_eq!(stored, 7);

    let again = import(&app, mixed_stream()).await;
    assert_eq!(
        (
            again.created,
            again.updated,
            again.unchanged,
            again.rejected
        ),
        (0, 0, 8, 2)
    );
}

#[tokio::test]
async fn a_long_import_is_written_in_chunks_and_counts_every_outcome() {
    let app = spawn_app().await;
    let n = 2_500;
    let first: Vec<_> = (0..n)
        .map(|i| {
            message(Record::SurveyResponse(nps(
                &format!("r{i}"),
                "c1",
                (i % 11) as i32,
            )))
        })
        .collect();
    let reply = import(&app, first).await;
    assert_eq!((reply.created, reply.rejected), (n as i64, 0));
    // Half again with a newer version, half unchanged.
    let second: Vec<_> = (0..n)
        .map(|i| {
            let mut r = nps(&format!("r{i}"), "c1", 10);
            if i % 2 == 0 {
                r.update_time = Some(ts(t0()));
            }
            message(Record::SurveyResponse(r))
        })
        .collect();
    let reply = import(&app, second).await;
    assert_eq!(
        (reply.created, reply.updated, reply.unchanged),
        (0, (n / 2) as i64, (n / 2) as i64)
    );
    let tens = app
        .count("select count(*) from survey_responses where score = 10")
        .await;
    // The updated half plus the originals whose score was already 10.
    let originally_ten = (0..n).filter(|i| i % 2 == 1 && i % 11 == 10).count();
    assert_eq!(tens as usize, n / 2 + originally_ten);
}

#[tokio::test]
async fn an_empty_message_is_rejected_without_stopping_the_stream() {
    let app = spawn_app().await;
    let reply = import(
        &app,
        vec![
            pb::ImportRecordsRequest { record: None },
            message(Record::Customer(customer("c1"))),
        ],
    )
    .await;
    assert_eq!((reply.created, reply.rejected), (1, 1));
    assert_eq!(reply.rejected_records[0].position, 0);
}

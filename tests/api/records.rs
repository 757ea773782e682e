use cxmetrics::proto::{self as pb, WriteOutcome};

use crate::helpers::*;

const CREATED: i32 = WriteOutcome::Created as i32;
const UPDATED: i32 = WriteOutcome::Updated as i32;
const UNCHANGED: i32 = WriteOutcome::Unchanged as i32;

async fn record(app: &TestApp, r: pb::SurveyResponse) -> i32 {
    app.feedback()
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(r),
        })
        .await
        .expect("record")
        .into_inner()
        .outcome
}

fn at_version(r: pb::SurveyResponse, hours: i64) -> pb::SurveyResponse {
    versioned(r, |r, t| r.update_time = Some(t), hours)
}

#[tokio::test]
async fn survey_responses_follow_the_version_rule_even_out_of_order() {
    let app = spawn_app().await;
    assert_eq!(
        record(&app, at_version(nps("r1", "c1", 9), 2)).await,
        CREATED
    );
    // An older version arriving late changes nothing.
    assert_eq!(
        record(&app, at_version(nps("r1", "c1", 3), 1)).await,
        UNCHANGED
    );
    // The same version again (a retry) changes nothing.
    assert_eq!(
        record(&app, at_version(nps("r1", "c1", 4), 2)).await,
        UNCHANGED
    );
    assert_eq!(
        record(&app, at_version(nps("r1", "c1", 10), 3)).await,
        UPDATED
    );
    let score = app
        .count("select score::bigint from survey_responses where response_id = 'r1'")
        .await;
    assert_eq!(score, 10);
    assert_eq!(app.count("select count(*) from survey_responses").await, 1);
}

#[tokio::test]
async fn an_unversioned_record_is_replaced_by_any_versioned_write() {
    let app = spawn_app().await;
    assert_eq!(record(&app, nps("r1", "c1", 9)).await, CREATED);
    assert_eq!(record(&app, nps("r1", "c1", 5)).await, UNCHANGED);
    assert_eq!(
        record(&app, at_version(nps("r1", "c1", 5), 0)).await,
        UPDATED
    );
    assert_eq!(record(&app, nps("r1", "c1", 1)).await, UNCHANGED);
    let score = app
        .count("select score::bigint from survey_responses")
        .await;
    assert_eq!(score, 5);
}

#[tokio::test]
async fn interactions_follow_the_version_rule() {
    let app = spawn_app().await;
    let mut client = app.feedback();
    let mut upsert = async |i: pb::Interaction| {
        client
            .upsert_interaction(pb::UpsertInteractionRequest {
                interaction: Some(i),
            })
            .await
            .expect("upsert")
            .into_inner()
            .outcome
    };
    let v = |hours, agent: &str| {
        let mut i = versioned(
            interaction("i1", "c1"),
            |i, t| i.update_time = Some(t),
            hours,
        );
        i.agent_id = agent.into();
        i
    };
    assert_eq!(upsert(v(5, "a")).await, CREATED);
    assert_eq!(upsert(v(4, "b")).await, UNCHANGED);
    assert_eq!(upsert(v(5, "c")).await, UNCHANGED);
    assert_eq!(upsert(v(6, "d")).await, UPDATED);
    let agent: String = sqlx::query_scalar("select agent_id from interactions")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(agent, "d");
}

#[tokio::test]
async fn customers_follow_the_version_rule() {
    let app = spawn_app().await;
    let mut client = app.feedback();
    let mut upsert = async |c: pb::Customer| {
        client
            .upsert_customer(pb::UpsertCustomerRequest { customer: Some(c) })
            .await
            .expect("upsert")
            .into_inner()
            .outcome
    };
    let v = |hours, churn: bool| {
        let mut c = versioned(customer("c1"), |c, t| c.update_time = Some(t), hours);
        if churn {
            c.churn_time = Some(ts(t0()));
        }
        c
    };
    assert_eq!(upsert(v(1, false)).await, CREATED);
    assert_eq!(upsert(v(3, true)).await, UPDATED);
    assert_eq!(upsert(v(2, false)).await, UNCHANGED);
    let churned = app
        .count("select count(*) from customers where churn_time is not null")
        .await;
    assert_eq!(churned, 1, "the older version must not undo the churn");
}

#[tokio::test]
async fn a_batch_reports_one_outcome_per_record_in_order_even_with_repeated_ids() {
    let app = spawn_app().await;
    record(&app, at_version(nps("existing", "c1", 1), 1)).await;
    let batch = vec![
        at_version(nps("new", "c1", 9), 1),
        at_version(nps("existing", "c1", 2), 2),
        at_version(nps("new", "c1", 8), 2),
        at_version(nps("new", "c1", 7), 1),
        at_version(nps("existing", "c1", 3), 0),
    ];
    let outcomes = app
        .feedback()
        .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
            survey_responses: batch,
        })
        .await
        .expect("batch")
        .into_inner()
        .outcomes;
    assert_eq!(outcomes, [CREATED, UPDATED, UPDATED, UNCHANGED, UNCHANGED]);
    let total = app
        .count("select sum(score)::bigint from survey_responses")
        .await;
    assert_eq!(total, 8 + 2);
}

#[tokio::test]
async fn a_batch_with_one_bad_record_stores_nothing() {
    let app = spawn_app().await;
    let mut batch: Vec<_> = (0..5).map(|i| nps(&format!("r{i}"), "c1", 9)).collect();
    batch[2].score = 11;
    let status = app
        .feedback()
        .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
            survey_responses: batch,
        })
        .await
        .expect_err("a bad record fails the batch");
    assert_eq!(violated_fields(&status), ["survey_responses[2].score"]);
    assert_eq!(app.count("select count(*) from survey_responses").await, 0);

    let mut interactions: Vec<_> = (0..3)
        .map(|i| interaction(&format!("i{i}"), "c1"))
        .collect();
    interactions[1].customer_id.clear();
    let status = app
        .feedback()
        .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest { interactions })
        .await
        .expect_err("a bad record fails the batch");
    assert_eq!(violated_fields(&status), ["interactions[1].customer_id"]);
    assert_eq!(app.count("select count(*) from interactions").await, 0);
}

#[tokio::test]
async fn batches_of_zero_or_more_than_a_thousand_records_are_rejected() {
    let app = spawn_app().await;
    for n in [0, 1001] {
        let batch = (0..n).map(|i| nps(&format!("r{i}"), "c1", 9)).collect();
        let status = app
            .feedback()
            .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                survey_responses: batch,
            })
            .await
            .expect_err("out of bounds");
        assert_eq!(violated_fields(&status), ["survey_responses"]);
    }
    let batch = (0..1000)
        .map(|i| interaction(&format!("i{i}"), "c1"))
        .collect();
    let outcomes = app
        .feedback()
        .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest {
            interactions: batch,
        })
        .await
        .expect("a full batch")
        .into_inner()
        .outcomes;
    assert!(outcomes.iter().all(|o| *o == CREATED) && outcomes.len() == 1000);
}

#[tokio::test]
async fn delete_customer_data_erases_that_customer_only() {
    let app = spawn_app().await;
    let mut client = app.feedback();
    for (id, customer_id) in [("r1", "c1"), ("r2", "c1"), ("r3", "c2")] {
        record(&app, nps(id, customer_id, 9)).await;
    }
    for (id, customer_id) in [("i1", "c1"), ("i2", "c2")] {
        client
            .upsert_interaction(pb::UpsertInteractionRequest {
                interaction: Some(interaction(id, customer_id)),
            })
            .await
            .unwrap();
    }
    for id in ["c1", "c2"] {
        client
            .upsert_customer(pb::UpsertCustomerRequest {
                customer: Some(customer(id)),
            })
            .await
            .unwrap();
    }
    let deleted = client
        .delete_customer_data(pb::DeleteCustomerDataRequest {
            customer_id: "c1".into(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert_eq!(
        (
            deleted.deleted_survey_responses,
            deleted.deleted_interactions,
            deleted.deleted_customers
        ),
        (2, 1, 1)
    );
    let left = app
        .count(
            "select (select count(*) from survey_responses where customer_id = 'c1')
                  + (select count(*) from interactions where customer_id = 'c1')
                  + (select count(*) from customers where customer_id = 'c1')",
        )
        .await;
    assert_eq!(left, 0);
    let others = app
        .count(
            "select (select count(*) from survey_responses) + (select count(*) from interactions)
                  + (select count(*) from customers)",
        )
        .await;
    assert_eq!(others, 3, "c2's response, interaction and customer remain");
    // Erasing again is safe and reports nothing left.
    let again = client
        .delete_customer_data(pb::DeleteCustomerDataRequest {
            customer_id: "c1".into(),
        })
        .await
        .expect("delete again")
        .into_inner();
    assert_eq!(again.deleted_survey_responses + again.deleted_customers, 0);
}

#[tokio::test]
async fn two_tenants_with_the_same_ids_never_see_or_change_each_others_data() {
    let app = spawn_app().await;
    let other = app.create_key("tenant-b", "read,write").await;
    assert_eq!(
        record(&app, at_version(nps("r1", "c1", 9), 5)).await,
        CREATED
    );
    let outcome = app
        .feedback_with(Some(&other))
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(at_version(nps("r1", "c1", 0), 1)),
        })
        .await
        .unwrap()
        .into_inner()
        .outcome;
    assert_eq!(outcome, CREATED, "same id, other tenant: a new record");
    app.feedback_with(Some(&other))
        .delete_customer_data(pb::DeleteCustomerDataRequest {
            customer_id: "c1".into(),
        })
        .await
        .unwrap();
    let score_a = app
        .count("select score::bigint from survey_responses where tenant_id = 'tenant-a'")
        .await;
    assert_eq!(score_a, 9);
    assert_eq!(app.count("select count(*) from survey_responses").await, 1);
}

#[tokio::test]
async fn every_field_of_a_survey_response_is_stored() {
    let app = spawn_app().await;
    let mut r = at_version(nps("r1", "c1", 7), 1);
    r.kind = pb::SurveyKind::Csat as i32;
    r.score = 6;
    r.scale = Some(pb::ScoreScale { min: 1, max: 7 });
    r.interaction_id = "i1".into();
    r.channel = "chat".into();
    r.comment = "quick and friendly".into();
    r.attributes = [("plan".to_string(), "pro".to_string())].into();
    record(&app, r).await;
    let row: (
        String,
        i16,
        i16,
        i16,
        i16,
        String,
        String,
        String,
        serde_json::Value,
    ) = sqlx::query_as(
        "select survey_id, kind, score, scale_min, scale_max, interaction_id, channel,
                    comment, attributes from survey_responses",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "survey-1".into(),
            2,
            6,
            1,
            7,
            "i1".into(),
            "chat".into(),
            "quick and friendly".into(),
            serde_json::json!({"plan": "pro"})
        )
    );
}

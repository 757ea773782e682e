//! Every limit of design section 1, each rejected with INVALID_ARGUMENT naming its field,
//! and nothing stored.

use chrono::{Duration, Utc};
use cxmetrics::proto as pb;

use crate::helpers::*;

fn long(n: usize) -> String {
    "x".repeat(n)
}

fn attributes(n: usize) -> std::collections::HashMap<String, String> {
    (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect()
}

#[tokio::test]
async fn each_bad_survey_response_field_is_named() {
    let app = spawn_app().await;
    type Edit = Box<dyn Fn(&mut pb::SurveyResponse)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "survey_response.response_id",
            Box::new(|r| r.response_id.clear()),
        ),
        (
            "survey_response.response_id",
            Box::new(|r| r.response_id = long(129)),
        ),
        (
            "survey_response.survey_id",
            Box::new(|r| r.survey_id.clear()),
        ),
        (
            "survey_response.customer_id",
            Box::new(|r| r.customer_id = long(129)),
        ),
        (
            "survey_response.interaction_id",
            Box::new(|r| r.interaction_id = long(129)),
        ),
        (
            "survey_response.channel",
            Box::new(|r| r.channel = long(129)),
        ),
        ("survey_response.kind", Box::new(|r| r.kind = 0)),
        ("survey_response.kind", Box::new(|r| r.kind = 42)),
        ("survey_response.score", Box::new(|r| r.score = 11)),
        ("survey_response.score", Box::new(|r| r.score = -1)),
        (
            "survey_response.scale",
            Box::new(|r| r.scale = Some(pb::ScoreScale { min: 1, max: 10 })),
        ),
        (
            "survey_response.score",
            Box::new(|r| {
                r.kind = pb::SurveyKind::Csat as i32;
                r.score = 6;
            }),
        ),
        (
            "survey_response.score",
            Box::new(|r| {
                r.kind = pb::SurveyKind::Ces as i32;
                r.score = 0;
            }),
        ),
        (
            "survey_response.respond_time",
            Box::new(|r| r.respond_time = None),
        ),
        (
            "survey_response.respond_time",
            Box::new(|r| r.respond_time = Some(ts("1999-12-31T23:59:59Z".parse().unwrap()))),
        ),
        (
            "survey_response.respond_time",
            Box::new(|r| r.respond_time = Some(ts(Utc::now() + Duration::hours(25)))),
        ),
        (
            "survey_response.respond_time",
            Box::new(|r| {
                r.respond_time = Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: -5,
                })
            }),
        ),
        (
            "survey_response.update_time",
            Box::new(|r| r.update_time = Some(ts(Utc::now() + Duration::days(2)))),
        ),
        (
            "survey_response.comment",
            Box::new(|r| r.comment = long(10_001)),
        ),
        (
            "survey_response.attributes",
            Box::new(|r| r.attributes = attributes(33)),
        ),
        (
            "survey_response.attributes",
            Box::new(|r| r.attributes = [(long(65), "v".to_string())].into()),
        ),
        (
            "survey_response.attributes.k",
            Box::new(|r| r.attributes = [("k".to_string(), long(257))].into()),
        ),
        (
            "survey_response.survey_id",
            Box::new(|r| r.survey_id = "a\0b".into()),
        ),
    ];
    for (field, edit) in cases {
        let mut r = nps("r1", "c1", 9);
        edit(&mut r);
        let status = app
            .feedback()
            .record_survey_response(pb::RecordSurveyResponseRequest {
                survey_response: Some(r),
            })
            .await
            .expect_err(field);
        assert_eq!(violated_fields(&status), [field], "{status:?}");
    }
    // The limits themselves are accepted.
    let mut r = nps("r1", "c1", 10);
    r.response_id = long(128);
    r.comment = long(10_000);
    r.attributes = attributes(32);
    r.attributes.insert(long(64), long(256));
    r.attributes.remove("k0");
    r.respond_time = Some(ts(Utc::now() + Duration::hours(23)));
    app.feedback()
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(r),
        })
        .await
        .expect("values at the limits are valid");
    assert_eq!(app.count("select count(*) from survey_responses").await, 1);
}

#[tokio::test]
async fn each_bad_interaction_and_customer_field_is_named() {
    let app = spawn_app().await;
    type Edit = Box<dyn Fn(&mut pb::Interaction)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "interaction.interaction_id",
            Box::new(|i| i.interaction_id.clear()),
        ),
        (
            "interaction.customer_id",
            Box::new(|i| i.customer_id.clear()),
        ),
        ("interaction.agent_id", Box::new(|i| i.agent_id = long(129))),
        ("interaction.team_id", Box::new(|i| i.team_id = long(129))),
        ("interaction.open_time", Box::new(|i| i.open_time = None)),
        (
            "interaction.first_response_time",
            Box::new(|i| i.first_response_time = Some(ts(t0() - Duration::seconds(1)))),
        ),
        (
            "interaction.resolve_time",
            Box::new(|i| i.resolve_time = Some(ts(t0() - Duration::seconds(1)))),
        ),
        (
            "interaction.attributes",
            Box::new(|i| i.attributes = attributes(33)),
        ),
    ];
    for (field, edit) in cases {
        let mut i = interaction("i1", "c1");
        edit(&mut i);
        let status = app
            .feedback()
            .upsert_interaction(pb::UpsertInteractionRequest {
                interaction: Some(i),
            })
            .await
            .expect_err(field);
        assert_eq!(violated_fields(&status), [field]);
    }
    let status = app
        .feedback()
        .upsert_interaction(pb::UpsertInteractionRequest { interaction: None })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["interaction"]);

    let mut c = customer("c1");
    c.churn_time = Some(ts(t0() - Duration::days(60)));
    let status = app
        .feedback()
        .upsert_customer(pb::UpsertCustomerRequest { customer: Some(c) })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["customer.churn_time"]);
    let mut c = customer("");
    c.acquire_time = None;
    let status = app
        .feedback()
        .upsert_customer(pb::UpsertCustomerRequest { customer: Some(c) })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["customer.customer_id", "customer.acquire_time"]
    );
    let status = app
        .feedback()
        .delete_customer_data(pb::DeleteCustomerDataRequest {
            customer_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["customer_id"]);
    let stored = app
        .count("select (select count(*) from interactions) + (select count(*) from customers)")
        .await;
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_bad_update_leaves_the_stored_record_intact() {
    let app = spawn_app().await;
    let good = nps("r1", "c1", 9);
    app.feedback()
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(good),
        })
        .await
        .unwrap();
    let mut bad = versioned(nps("r1", "c1", 12), |r, t| r.update_time = Some(t), 1);
    bad.channel = long(200);
    let status = app
        .feedback()
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(bad),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["survey_response.score", "survey_response.channel"]
    );
    let score = app
        .count("select score::bigint from survey_responses")
        .await;
    assert_eq!(score, 9);
}

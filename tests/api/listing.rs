//! Drill-down listings: order, filters, stable keyset pages, and tokens bound to the query.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use cxmetrics::proto as pb;
use tonic::Code;

use crate::helpers::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn whole_range() -> Option<pb::TimeRange> {
    Some(pb::TimeRange {
        start_time: Some(ts(utc("2026-01-01T00:00:00Z"))),
        end_time: Some(ts(utc("2026-02-01T00:00:00Z"))),
    })
}

fn at(i: usize) -> DateTime<Utc> {
    // Several responses share each second, so ties are broken by id.
    utc("2026-01-10T00:00:00Z") + Duration::seconds((i / 3) as i64 * 60)
}

fn numbered(prefix: &str, i: usize, t: DateTime<Utc>) -> pb::SurveyResponse {
    let mut r = nps(&format!("{prefix}{i:05}"), "c1", (i % 11) as i32);
    r.respond_time = Some(ts(t));
    r
}

async fn record_all(app: &TestApp, responses: Vec<pb::SurveyResponse>) {
    for chunk in responses.chunks(1000) {
        app.feedback()
            .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                survey_responses: chunk.to_vec(),
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn paging_while_records_are_inserted_returns_each_old_record_exactly_once() {
    let app = spawn_app().await;
    let old: Vec<_> = (0..2500).map(|i| numbered("old", i, at(i))).collect();
    record_all(&app, old).await;

    // A writer keeps inserting records whose times interleave with the old ones.
    let writer = {
        let mut feedback = app.feedback();
        tokio::spawn(async move {
            for batch in 0..25 {
                let records = (0..100)
                    .map(|j| {
                        let i = batch * 100 + j;
                        numbered("new", i, at((i * 7) % 2500))
                    })
                    .collect();
                feedback
                    .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                        survey_responses: records,
                    })
                    .await
                    .unwrap();
            }
        })
    };

    let mut seen = Vec::new();
    let mut last: Option<(DateTime<Utc>, String)> = None;
    let mut token = String::new();
    loop {
        let page = app
            .feedback()
            .list_survey_responses(pb::ListSurveyResponsesRequest {
                time_range: whole_range(),
                page_size: 100,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        for r in &page.survey_responses {
            let key = (
                cxmetrics::grpc::convert::from_timestamp(r.respond_time.as_ref().unwrap()).unwrap(),
                r.response_id.clone(),
            );
            assert!(
                last.as_ref().is_none_or(|l| *l < key),
                "ordered by time then id"
            );
            last = Some(key);
            seen.push(r.response_id.clone());
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    writer.await.unwrap();
    let old_seen: Vec<_> = seen.iter().filter(|id| id.starts_with("old")).collect();
    let unique: HashSet<_> = old_seen.iter().collect();
    assert_eq!(old_seen.len(), 2500, "every old record once");
    assert_eq!(unique.len(), 2500);
    let all: HashSet<_> = seen.iter().collect();
    assert_eq!(all.len(), seen.len(), "no record twice");
}

#[tokio::test]
async fn a_page_token_is_bound_to_its_query_and_tenant() {
    let app = spawn_app().await;
    record_all(&app, (0..5).map(|i| numbered("r", i, at(i))).collect()).await;
    let request = pb::ListSurveyResponsesRequest {
        time_range: whole_range(),
        page_size: 2,
        ..Default::default()
    };
    let first = app
        .feedback()
        .list_survey_responses(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.survey_responses.len(), 2);
    assert!(!first.next_page_token.is_empty());

    let other_query = pb::ListSurveyResponsesRequest {
        kind: pb::SurveyKind::Nps as i32,
        page_token: first.next_page_token.clone(),
        ..request.clone()
    };
    let status = app
        .feedback()
        .list_survey_responses(other_query)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    let other_tenant = app.create_key("tenant-b", "read").await;
    let status = app
        .feedback_with(Some(&other_tenant))
        .list_survey_responses(pb::ListSurveyResponsesRequest {
            page_token: first.next_page_token.clone(),
            ..request.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    // Same query, larger page: the token still applies.
    let rest = app
        .feedback()
        .list_survey_responses(pb::ListSurveyResponsesRequest {
            page_token: first.next_page_token,
            page_size: 10,
            ..request
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.survey_responses.len(), 3);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn listings_filter_like_the_metrics_and_need_the_read_scope() {
    let app = spawn_app().await;
    let mut a = numbered("r", 1, at(1));
    a.channel = "chat".into();
    a.comment = "slow".into();
    let b = numbered("r", 2, at(2));
    record_all(&app, vec![a, b]).await;
    let listed = app
        .feedback()
        .list_survey_responses(pb::ListSurveyResponsesRequest {
            time_range: whole_range(),
            filter: Some(pb::MetricFilter {
                channels: vec!["chat".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .survey_responses;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].response_id.as_str(), listed[0].comment.as_str()),
        ("r00001", "slow")
    );
    assert_eq!(listed[0].scale, Some(pb::ScoreScale { min: 0, max: 10 }));

    let write_only = app.create_key(TENANT, "write").await;
    let status = app
        .feedback_with(Some(&write_only))
        .list_interactions(pb::ListInteractionsRequest {
            time_range: whole_range(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let status = app
        .feedback()
        .list_interactions(pb::ListInteractionsRequest {
            time_range: whole_range(),
            filter: Some(pb::MetricFilter {
                survey_ids: vec!["s".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["filter.survey_ids"]);
    let status = app
        .feedback()
        .list_interactions(pb::ListInteractionsRequest {
            page_size: 5000,
            time_range: whole_range(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
}

#[tokio::test]
async fn interactions_are_listed_in_open_time_order_with_their_fields() {
    let app = spawn_app().await;
    let mut feedback = app.feedback();
    for (id, minutes, agent) in [("i2", 5, "ann"), ("i1", 5, "bob"), ("i0", 9, "ann")] {
        let mut i = interaction(id, "c1");
        i.open_time = Some(ts(utc("2026-01-10T00:00:00Z") + Duration::minutes(minutes)));
        i.first_response_time = None;
        i.agent_id = agent.into();
        feedback
            .upsert_interaction(pb::UpsertInteractionRequest {
                interaction: Some(i),
            })
            .await
            .unwrap();
    }
    let listed = feedback
        .list_interactions(pb::ListInteractionsRequest {
            time_range: whole_range(),
            filter: Some(pb::MetricFilter {
                agent_ids: vec!["ann".into(), "bob".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .interactions;
    let ids: Vec<_> = listed.iter().map(|i| i.interaction_id.as_str()).collect();
    assert_eq!(ids, ["i1", "i2", "i0"]);
    assert_eq!(listed[0].first_response_time, None);
    assert_eq!(listed[0].agent_id, "bob");
}

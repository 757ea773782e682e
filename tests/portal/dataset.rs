//! The known dataset the portal tests read: NPS, CSAT and CES responses over the second half
//! of 2024 and the first half of 2025 on two channels and two surveys (some with comments),
//! interactions with first-response and resolution times by three agents in two teams, and
//! customers who arrive and leave over that time.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cxmetrics::proto as pb;

use crate::helpers::{TestApp, ts};

/// When record `i` of `n` happens: spread over September 2024 to June 2025 (two fifths
/// in the months before the range the tests show, so there is a previous period).
fn moment(i: usize, n: usize) -> DateTime<Utc> {
    let start = Utc.with_ymd_and_hms(2024, 9, 2, 8, 0, 0).unwrap();
    let span = Utc.with_ymd_and_hms(2025, 6, 28, 8, 0, 0).unwrap() - start;
    let step = span.num_minutes() / n as i64;
    start + Duration::minutes(step * i as i64 + (i as i64 * 37) % 600)
}

/// Who answers or writes in record `i` of `n`: about five new customers a month, and every
/// third record from a customer first seen about a season earlier (so cohorts come back).
fn active_customer(i: usize, n: usize) -> String {
    let newest = i * 50 / n;
    let who = if i.is_multiple_of(3) {
        newest.saturating_sub(8)
    } else {
        newest
    };
    format!("customer-{who:02}")
}

const NEGATIVE: [&str; 3] = [
    "delivery was slow and the refund came late",
    "slow delivery, nobody answered my email",
    "the refund took weeks, slow delivery again",
];
const POSITIVE: [&str; 3] = [
    "friendly support and a quick answer",
    "quick answer from friendly staff",
    "great product, friendly support",
];

fn survey_response(kind: pb::SurveyKind, i: usize, n: usize, score: i32) -> pb::SurveyResponse {
    let prefix = match kind {
        pb::SurveyKind::Nps => "nps",
        pb::SurveyKind::Csat => "csat",
        _ => "ces",
    };
    let negative = match kind {
        pb::SurveyKind::Nps => score <= 6,
        pb::SurveyKind::Csat => score <= 3,
        _ => score <= 4,
    };
    let comment = if i.is_multiple_of(2) {
        let texts = if negative { NEGATIVE } else { POSITIVE };
        texts[i % 3].to_owned()
    } else {
        String::new()
    };
    pb::SurveyResponse {
        response_id: format!("{prefix}-{i:03}"),
        survey_id: if i.is_multiple_of(2) {
            "survey-a"
        } else {
            "survey-b"
        }
        .into(),
        kind: kind as i32,
        score,
        customer_id: active_customer(i, n),
        channel: if i.is_multiple_of(3) { "chat" } else { "email" }.into(),
        respond_time: Some(ts(moment(i, n))),
        comment,
        ..Default::default()
    }
}

/// Scores with a drift so that the first half of 2025 differs from the months before.
fn responses() -> Vec<pb::SurveyResponse> {
    let mut all = Vec::new();
    let n = 150;
    for i in 0..n {
        let score = ((i * 7 + 3) % 11 + i / 60).min(10) as i32;
        all.push(survey_response(pb::SurveyKind::Nps, i, n, score));
    }
    let n = 90;
    for i in 0..n {
        let score = ((i * 3) % 5 + 1 + i / 60).min(5) as i32;
        all.push(survey_response(pb::SurveyKind::Csat, i, n, score));
    }
    let n = 90;
    for i in 0..n {
        let score = ((i * 5) % 7 + 1) as i32;
        all.push(survey_response(pb::SurveyKind::Ces, i, n, score));
    }
    all
}

fn interactions() -> Vec<pb::Interaction> {
    let n = 120;
    (0..n)
        .map(|i| {
            let open = moment(i, n);
            let answered = i % 10 != 9;
            let first = Duration::minutes(((i * 13) % 150 + 2) as i64);
            let resolve = first + Duration::minutes(((i * 29) % 600 + 30) as i64);
            pb::Interaction {
                interaction_id: format!("interaction-{i:03}"),
                customer_id: active_customer(i, n),
                channel: if i.is_multiple_of(3) { "chat" } else { "email" }.into(),
                agent_id: format!("agent-{}", i % 3 + 1),
                team_id: if i.is_multiple_of(2) {
                    "team-x"
                } else {
                    "team-y"
                }
                .into(),
                open_time: Some(ts(open)),
                first_response_time: answered.then(|| ts(open + first)),
                resolve_time: answered.then(|| ts(open + resolve)),
                ..Default::default()
            }
        })
        .collect()
}

fn customers() -> Vec<pb::Customer> {
    let start = Utc.with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap();
    (0..40)
        .map(|i| {
            let acquire = start + Duration::days(i as i64 * 8);
            let churn = (i % 4 == 1).then(|| acquire + Duration::days(60 + i as i64 * 3));
            pb::Customer {
                customer_id: format!("customer-{i:02}"),
                acquire_time: Some(ts(acquire)),
                churn_time: churn.map(ts),
                ..Default::default()
            }
        })
        .collect()
}

/// Writes the dataset for the app's tenant over gRPC.
pub async fn load(app: &TestApp) {
    let mut feedback = app.feedback();
    feedback
        .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
            survey_responses: responses(),
        })
        .await
        .expect("record survey responses");
    feedback
        .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest {
            interactions: interactions(),
        })
        .await
        .expect("record interactions");
    for customer in customers() {
        feedback
            .upsert_customer(pb::UpsertCustomerRequest {
                customer: Some(customer),
            })
            .await
            .expect("record a customer");
    }
}

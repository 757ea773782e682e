//! `cxmetrics.v1.FeedbackService`: the write side and the drill-down listings. Each method
//! authorises the caller, parses the request into domain records or a listing query and
//! hands them to `app::Records`.

use chrono::Utc;
use tonic::{Request, Response, Status, Streaming};

use super::{
    authorize,
    convert::{self, required, under},
    import, query,
};
use crate::{
    app::{Authenticator, ListQuery, Records, paging},
    domain::{Checker, Limits, Scope},
    error::{Error, Violation},
    proto::{self as pb, feedback_service_server::FeedbackService},
    storage::RecordBatch,
};

pub struct FeedbackApi {
    auth: Authenticator,
    records: Records,
}

impl FeedbackApi {
    pub fn new(auth: Authenticator, records: Records) -> Self {
        Self { auth, records }
    }
}

/// Parses a batch of 1..=1000 records, collecting the violations of every bad one.
fn parse_batch<P, D>(
    items: Vec<P>,
    field: &str,
    parse: impl Fn(P) -> Result<D, Vec<Violation>>,
) -> Result<Vec<D>, Error> {
    if items.is_empty() || items.len() > Limits::MAX_BATCH {
        return Err(Error::invalid(
            field,
            format!("must hold 1 to {} records", Limits::MAX_BATCH),
        ));
    }
    let mut records = Vec::with_capacity(items.len());
    let mut violations = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match parse(item) {
            Ok(record) => records.push(record),
            Err(bad) => {
                let path = format!("{field}[{i}]");
                violations.extend(bad.into_iter().map(|v| v.under(&path)));
            }
        }
    }
    if violations.is_empty() {
        Ok(records)
    } else {
        Err(Error::InvalidArgument(violations))
    }
}

fn outcomes(outcomes: Vec<crate::domain::WriteOutcome>) -> Vec<i32> {
    outcomes
        .into_iter()
        .map(|o| convert::outcome(o) as i32)
        .collect()
}

#[tonic::async_trait]
impl FeedbackService for FeedbackApi {
    async fn record_survey_response(
        &self,
        request: Request<pb::RecordSurveyResponseRequest>,
    ) -> Result<Response<pb::RecordSurveyResponseResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let record = required(request.into_inner().survey_response, "survey_response")?;
        let record = convert::survey_response(record, Utc::now())
            .map_err(|v| under(v, "survey_response"))?;
        let batch = RecordBatch {
            survey_responses: vec![record],
            ..Default::default()
        };
        let written = self.records.write(&caller, &batch).await?;
        Ok(Response::new(pb::RecordSurveyResponseResponse {
            outcome: outcomes(written.survey_responses)[0],
        }))
    }

    async fn batch_record_survey_responses(
        &self,
        request: Request<pb::BatchRecordSurveyResponsesRequest>,
    ) -> Result<Response<pb::BatchRecordSurveyResponsesResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let now = Utc::now();
        let records = parse_batch(
            request.into_inner().survey_responses,
            "survey_responses",
            |r| convert::survey_response(r, now),
        )?;
        let batch = RecordBatch {
            survey_responses: records,
            ..Default::default()
        };
        let written = self.records.write(&caller, &batch).await?;
        Ok(Response::new(pb::BatchRecordSurveyResponsesResponse {
            outcomes: outcomes(written.survey_responses),
        }))
    }

    async fn upsert_interaction(
        &self,
        request: Request<pb::UpsertInteractionRequest>,
    ) -> Result<Response<pb::UpsertInteractionResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let record = required(request.into_inner().interaction, "interaction")?;
        let record =
            convert::interaction(record, Utc::now()).map_err(|v| under(v, "interaction"))?;
        let batch = RecordBatch {
            interactions: vec![record],
            ..Default::default()
        };
        let written = self.records.write(&caller, &batch).await?;
        Ok(Response::new(pb::UpsertInteractionResponse {
            outcome: outcomes(written.interactions)[0],
        }))
    }

    async fn batch_upsert_interactions(
        &self,
        request: Request<pb::BatchUpsertInteractionsRequest>,
    ) -> Result<Response<pb::BatchUpsertInteractionsResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let now = Utc::now();
        let records = parse_batch(request.into_inner().interactions, "interactions", |r| {
            convert::interaction(r, now)
        })?;
        let batch = RecordBatch {
            interactions: records,
            ..Default::default()
        };
        let written = self.records.write(&caller, &batch).await?;
        Ok(Response::new(pb::BatchUpsertInteractionsResponse {
            outcomes: outcomes(written.interactions),
        }))
    }

    async fn upsert_customer(
        &self,
        request: Request<pb::UpsertCustomerRequest>,
    ) -> Result<Response<pb::UpsertCustomerResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let record = required(request.into_inner().customer, "customer")?;
        let record = convert::customer(record, Utc::now()).map_err(|v| under(v, "customer"))?;
        let batch = RecordBatch {
            customers: vec![record],
            ..Default::default()
        };
        let written = self.records.write(&caller, &batch).await?;
        Ok(Response::new(pb::UpsertCustomerResponse {
            outcome: outcomes(written.customers)[0],
        }))
    }

    async fn import_records(
        &self,
        request: Request<Streaming<pb::ImportRecordsRequest>>,
    ) -> Result<Response<pb::ImportRecordsResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let reply = import::import(&self.records, &caller, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    async fn delete_customer_data(
        &self,
        request: Request<pb::DeleteCustomerDataRequest>,
    ) -> Result<Response<pb::DeleteCustomerDataResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let customer_id = request.into_inner().customer_id;
        let mut checker = Checker::new(Utc::now());
        checker.id("customer_id", &customer_id);
        checker
            .finish(|| Some(()))
            .map_err(Error::InvalidArgument)?;
        let erased = self.records.erase_customer(&caller, &customer_id).await?;
        Ok(Response::new(pb::DeleteCustomerDataResponse {
            deleted_survey_responses: erased.survey_responses as i64,
            deleted_interactions: erased.interactions as i64,
            deleted_customers: erased.customers as i64,
        }))
    }

    async fn list_survey_responses(
        &self,
        request: Request<pb::ListSurveyResponsesRequest>,
    ) -> Result<Response<pb::ListSurveyResponsesResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let request = request.into_inner();
        let mut query = listing_query(request.time_range.as_ref(), request.filter)?;
        query.kind = convert::kind_filter(request.kind)?;
        query.comment_query = comment_query(&request.comment_query)?;
        let page_size = paging::page_size(request.page_size)?;
        let page = self
            .records
            .list_survey_responses(&caller, &query, page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListSurveyResponsesResponse {
            survey_responses: page
                .items
                .into_iter()
                .map(convert::survey_response_to_pb)
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn list_interactions(
        &self,
        request: Request<pb::ListInteractionsRequest>,
    ) -> Result<Response<pb::ListInteractionsResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let request = request.into_inner();
        let query = listing_query(request.time_range.as_ref(), request.filter)?;
        let page_size = paging::page_size(request.page_size)?;
        let page = self
            .records
            .list_interactions(&caller, &query, page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListInteractionsResponse {
            interactions: page
                .items
                .into_iter()
                .map(convert::interaction_to_pb)
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

/// The time range and filter of a listing request.
fn listing_query(
    range: Option<&pb::TimeRange>,
    filter: Option<pb::MetricFilter>,
) -> Result<ListQuery, Error> {
    let mut c = Checker::new(Utc::now());
    let range = query::time_range(&mut c, range);
    let filter = query::filter(&mut c, filter);
    c.finish(|| {
        Some(ListQuery {
            range: range?,
            filter: filter?,
            kind: None,
            comment_query: None,
        })
    })
    .map_err(Error::InvalidArgument)
}

/// The optional `comment_query` of a survey-response listing.
fn comment_query(raw: &str) -> Result<Option<String>, Error> {
    let mut c = Checker::new(Utc::now());
    let parsed = crate::domain::parse::comment_query(&mut c, "comment_query", raw);
    c.finish(|| parsed).map_err(Error::InvalidArgument)
}

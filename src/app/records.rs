//! The record use cases: writes (each an idempotent upsert, see `storage::records`), the
//! right to erasure, and the drill-down listings with their page tokens.

use super::{
    admission::{Admission, Permit},
    auth::Caller,
    paging::{self, Fingerprint},
};
use crate::{
    domain::{Filter, Interaction, SurveyKind, SurveyResponse, TimeRange},
    error::Error,
    storage::{
        BatchOutcomes, Cursor, Erased, Page, PageRequest, RecordBatch, ResponseSelection, Store,
    },
};

/// The rows of a drill-down listing, filtered like the metrics.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub range: TimeRange,
    pub filter: Filter,
    /// Survey responses of this kind only (survey responses only).
    pub kind: Option<SurveyKind>,
    /// Survey responses whose comment matches this text search only.
    pub comment_query: Option<String>,
}

impl ListQuery {
    /// Every field a page token is bound to.
    fn fingerprint(&self, caller: &Caller, listing: &str) -> [u8; 16] {
        let f = &self.filter;
        let bound = Fingerprint::new(&caller.tenant, listing)
            .time(self.range.start())
            .time(self.range.end())
            .texts(&f.survey_ids)
            .texts(&f.channels)
            .texts(&f.agent_ids)
            .texts(&f.team_ids)
            .pairs(&f.attributes)
            .text(&self.kind.map_or(0, SurveyKind::code).to_string());
        // Only with a search, so that tokens of listings without one stay as they were.
        match &self.comment_query {
            Some(text) => bound.text("comment_query").text(text).finish(),
            None => bound.finish(),
        }
    }
}

/// One page of a listing and the token of the next, empty on the last.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

#[derive(Debug, Clone)]
pub struct Records {
    store: Store,
    admission: Admission,
}

impl Records {
    pub fn new(store: Store, admission: Admission) -> Self {
        Self { store, admission }
    }

    /// Writes a batch of validated records in one transaction.
    pub async fn write(
        &self,
        caller: &Caller,
        batch: &RecordBatch,
    ) -> Result<BatchOutcomes, Error> {
        self.store.write_batch(&caller.tenant, batch).await
    }

    /// Erases one customer's records; how many survey responses, interactions and customers.
    pub async fn erase_customer(
        &self,
        caller: &Caller,
        customer_id: &str,
    ) -> Result<Erased, Error> {
        let erased = self
            .store
            .delete_customer_data(&caller.tenant, customer_id)
            .await?;
        tracing::info!(
            responses = erased.survey_responses,
            interactions = erased.interactions,
            customers = erased.customers,
            "erased customer data"
        );
        Ok(erased)
    }

    pub async fn list_survey_responses(
        &self,
        caller: &Caller,
        query: &ListQuery,
        page_size: usize,
        page_token: &str,
    ) -> Result<Listed<SurveyResponse>, Error> {
        let turn = self
            .turn(caller, query, "survey_responses", page_token)
            .await?;
        let page = self
            .store
            .list_survey_responses(
                &caller.tenant,
                ResponseSelection {
                    range: query.range,
                    filter: &query.filter,
                    kind: query.kind,
                    comment_query: query.comment_query.as_deref(),
                },
                turn.request(page_size),
                caller.deadline,
            )
            .await?;
        Ok(turn.listed(page))
    }

    pub async fn list_interactions(
        &self,
        caller: &Caller,
        query: &ListQuery,
        page_size: usize,
        page_token: &str,
    ) -> Result<Listed<Interaction>, Error> {
        if !query.filter.survey_ids.is_empty() {
            return Err(Error::invalid(
                "filter.survey_ids",
                "does not apply to interactions",
            ));
        }
        let turn = self.turn(caller, query, "interactions", page_token).await?;
        let page = self
            .store
            .list_interactions(
                &caller.tenant,
                query.range,
                &query.filter,
                turn.request(page_size),
                caller.deadline,
            )
            .await?;
        Ok(turn.listed(page))
    }
}

impl Records {
    /// Checks the page token against the query and admits the read.
    async fn turn(
        &self,
        caller: &Caller,
        query: &ListQuery,
        listing: &str,
        page_token: &str,
    ) -> Result<PageTurn, Error> {
        let fingerprint = query.fingerprint(caller, listing);
        let after = paging::decode(page_token, fingerprint)?;
        let permit = self.admission.admit(&caller.tenant).await?;
        Ok(PageTurn {
            fingerprint,
            after,
            _permit: permit,
        })
    }
}

/// One admitted page read: where it starts, and the fingerprint its next token carries.
struct PageTurn {
    fingerprint: [u8; 16],
    after: Option<Cursor>,
    _permit: Permit,
}

impl PageTurn {
    fn request(&self, limit: usize) -> PageRequest<'_> {
        PageRequest {
            after: self.after.as_ref(),
            limit,
        }
    }

    fn listed<T>(self, page: Page<T>) -> Listed<T> {
        Listed {
            items: page.items,
            next_page_token: page
                .next
                .map(|c| paging::encode(&c, self.fingerprint))
                .unwrap_or_default(),
        }
    }
}

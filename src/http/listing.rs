//! `GET /v1/survey-responses` and `GET /v1/interactions`: the drill-down rows. JSON pages
//! like gRPC (`page_size`, `page_token`, `next_page_token`); CSV streams every matching row,
//! reading the listing page by page, so memory stays constant however many rows match.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderValue, header, request::Parts},
    response::{IntoResponse, Response},
};
use chrono_tz::Tz;
use futures_util::TryStreamExt;
use serde_json::Value;
use std::sync::Arc;
use tracing::Instrument;

use super::{
    HttpApi,
    query::Listing,
    serve,
    table::{CSV_TYPE, Cell, Column, Format, Kind, Table, csv_writer, write_header, write_row},
};
use crate::{
    app::{Caller, Listed, paging},
    domain::{Attributes, Interaction, SurveyKind, SurveyResponse},
    error::Error,
};

pub async fn survey_responses(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let listing = request.listing(true, format == Format::Json)?;
        answer(api.clone(), caller, listing, format, SurveyResponses).await
    })
    .await
}

pub async fn interactions(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let listing = request.listing(false, format == Format::Json)?;
        answer(api.clone(), caller, listing, format, Interactions).await
    })
    .await
}

/// A listing as rows: its columns, one page, and each record's cells.
trait Source: Send + Sync + 'static {
    type Item: Send;
    fn columns(&self) -> Vec<Column>;
    fn page(
        &self,
        api: &HttpApi,
        caller: &Caller,
        listing: &Listing,
        page_size: usize,
        token: &str,
    ) -> impl std::future::Future<Output = Result<Listed<Self::Item>, Error>> + Send;
    fn cells(&self, item: Self::Item, zone: Tz) -> Vec<Cell>;
}

async fn answer<S: Source>(
    api: HttpApi,
    caller: Caller,
    listing: Listing,
    format: Format,
    source: S,
) -> Result<Response, Error> {
    match format {
        Format::Json => {
            let page_size = paging::page_size(listing.page_size)?;
            let page = source
                .page(&api, &caller, &listing, page_size, &listing.page_token)
                .await?;
            let mut table = Table::new(source.columns());
            table.rows = page
                .items
                .into_iter()
                .map(|item| source.cells(item, listing.zone))
                .collect();
            table.extra.insert(
                "next_page_token".into(),
                Value::String(page.next_page_token),
            );
            table.into_response(Format::Json)
        }
        Format::Csv => {
            // The first page is read before answering, so that an error still gets its
            // status; the rest stream.
            let first = source
                .page(&api, &caller, &listing, paging::MAX_PAGE_SIZE, "")
                .await?;
            let stream = csv_stream(api, caller, listing, source, first);
            let body = Body::from_stream(stream);
            Ok((
                [(header::CONTENT_TYPE, HeaderValue::from_static(CSV_TYPE))],
                body,
            )
                .into_response())
        }
    }
}

/// Where a CSV export stands: the header and the first page to write, a page to write, a
/// page to fetch, or done.
enum Step<T> {
    Header(Listed<T>),
    Page(Listed<T>),
    Fetch(String),
    Done,
}

/// The CSV text of every page, the header first, one chunk per page.
fn csv_stream<S: Source>(
    api: HttpApi,
    caller: Caller,
    listing: Listing,
    source: S,
    first: Listed<S::Item>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, Error>> + Send {
    let source = Arc::new(source);
    // Each page is read in the request's span, though after the handler returned.
    let span = tracing::Span::current();
    futures_util::stream::try_unfold(Step::Header(first), move |step| {
        let (api, caller, listing, source) =
            (api.clone(), caller.clone(), listing.clone(), source.clone());
        let next = async move {
            let page = match step {
                Step::Header(first) => {
                    let mut out = csv_writer(Vec::new());
                    write_header(&mut out, &source.columns())?;
                    return Ok(Some((finish(out)?, Step::Page(first))));
                }
                Step::Page(page) => page,
                Step::Fetch(token) => {
                    source
                        .page(&api, &caller, &listing, paging::MAX_PAGE_SIZE, &token)
                        .await?
                }
                Step::Done => return Ok(None),
            };
            let mut out = csv_writer(Vec::new());
            for item in page.items {
                write_row(&mut out, &source.cells(item, listing.zone))?;
            }
            let next = match page.next_page_token.as_str() {
                "" => Step::Done,
                _ => Step::Fetch(page.next_page_token),
            };
            Ok(Some((finish(out)?, next)))
        };
        next.instrument(span.clone())
    })
    .inspect_err(|error| tracing::warn!(%error, "CSV export cut short"))
}

fn finish(out: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, Error> {
    out.into_inner()
        .map_err(|e| Error::Internal(anyhow::Error::new(e.into_error()).context("writing CSV")))
}

fn text(name: &str) -> Column {
    Column::new(name, Kind::Text, None)
}

fn time(name: &str) -> Column {
    Column::new(name, Kind::Time, None)
}

fn int(name: &str) -> Column {
    Column::new(name, Kind::Integer, None)
}

/// Attributes as one JSON object, in a text column.
fn attributes(a: &Attributes) -> Cell {
    let object: serde_json::Map<String, Value> = a
        .as_map()
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Cell::Text(Value::Object(object).to_string())
}

fn kind_name(kind: SurveyKind) -> &'static str {
    match kind {
        SurveyKind::Nps => "nps",
        SurveyKind::Csat => "csat",
        SurveyKind::Ces => "ces",
    }
}

struct SurveyResponses;

impl Source for SurveyResponses {
    type Item = SurveyResponse;

    fn columns(&self) -> Vec<Column> {
        vec![
            text("response_id"),
            text("survey_id"),
            text("kind"),
            int("score"),
            int("scale_min"),
            int("scale_max"),
            text("customer_id"),
            text("interaction_id"),
            text("channel"),
            time("respond_time"),
            text("comment"),
            text("attributes"),
            time("update_time"),
        ]
    }

    async fn page(
        &self,
        api: &HttpApi,
        caller: &Caller,
        listing: &Listing,
        page_size: usize,
        token: &str,
    ) -> Result<Listed<SurveyResponse>, Error> {
        api.records
            .list_survey_responses(caller, &listing.query, page_size, token)
            .await
    }

    fn cells(&self, r: SurveyResponse, zone: Tz) -> Vec<Cell> {
        vec![
            Cell::Text(r.response_id),
            Cell::Text(r.survey_id),
            Cell::Text(kind_name(r.kind).into()),
            Cell::Integer(i64::from(r.score.value())),
            Cell::Integer(i64::from(r.score.scale().min)),
            Cell::Integer(i64::from(r.score.scale().max)),
            Cell::Text(r.customer_id),
            Cell::text(r.interaction_id.as_deref()),
            Cell::text(r.channel.as_deref()),
            Cell::time(r.respond_time, zone),
            Cell::text(r.comment.as_deref()),
            attributes(&r.attributes),
            Cell::time(r.update_time, zone),
        ]
    }
}

struct Interactions;

impl Source for Interactions {
    type Item = Interaction;

    fn columns(&self) -> Vec<Column> {
        vec![
            text("interaction_id"),
            text("customer_id"),
            text("channel"),
            text("agent_id"),
            text("team_id"),
            time("open_time"),
            time("first_response_time"),
            time("resolve_time"),
            text("attributes"),
            time("update_time"),
        ]
    }

    async fn page(
        &self,
        api: &HttpApi,
        caller: &Caller,
        listing: &Listing,
        page_size: usize,
        token: &str,
    ) -> Result<Listed<Interaction>, Error> {
        api.records
            .list_interactions(caller, &listing.query, page_size, token)
            .await
    }

    fn cells(&self, i: Interaction, zone: Tz) -> Vec<Cell> {
        let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or(Cell::Null, |t| Cell::time(t, zone))
        };
        vec![
            Cell::Text(i.interaction_id),
            Cell::Text(i.customer_id),
            Cell::text(i.channel.as_deref()),
            Cell::text(i.agent_id.as_deref()),
            Cell::text(i.team_id.as_deref()),
            Cell::time(i.open_time, zone),
            at(i.first_response_time),
            at(i.resolve_time),
            attributes(&i.attributes),
            Cell::time(i.update_time, zone),
        ]
    }
}

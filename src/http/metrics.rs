//! `GET /v1/metrics/...`: each handler authorises, parses the query string, asks
//! `app::Metrics` for the report and renders it as a tidy table.

use axum::{extract::State, http::request::Parts, response::Response};

use super::{
    HttpApi,
    reports::{self, report},
    serve,
};

pub async fn nps(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let query = request.metric()?;
        let answer = api.metrics.nps(&caller, &query).await?;
        report(&answer, &query).into_response(format)
    })
    .await
}

pub async fn csat(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let query = request.metric()?;
        let answer = api.metrics.csat(&caller, &query).await?;
        report(&answer, &query).into_response(format)
    })
    .await
}

pub async fn ces(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let query = request.metric()?;
        let answer = api.metrics.ces(&caller, &query).await?;
        report(&answer, &query).into_response(format)
    })
    .await
}

pub async fn response_times(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let parsed = request.response_times()?;
        let query = parsed.query.clone();
        let answer = api.metrics.response_times(&caller, parsed).await?;
        report(&answer, &query).into_response(format)
    })
    .await
}

pub async fn retention(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let query = request.retention()?;
        let answer = api.metrics.retention(&caller, &query).await?;
        reports::retention(&answer, query.time_zone, query.granularity.is_some())
            .into_response(format)
    })
    .await
}

pub async fn cohort_retention(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let query = request.cohorts()?;
        let answer = api.metrics.cohorts(&caller, &query).await?;
        reports::cohorts(&answer, query.time_zone).into_response(format)
    })
    .await
}

pub async fn comment_themes(State(api): State<HttpApi>, parts: Parts) -> Response {
    serve(&api, &parts, async |caller, request| {
        let format = request.format;
        let query = request.comment_themes()?;
        let answer = api.metrics.comment_themes(&caller, &query).await?;
        reports::comment_themes(&answer).into_response(format)
    })
    .await
}

//! The OpenAPI 3.1 description of the HTTP API, generated from the code (`utoipa`): each
//! route's parameters are the structs below, its paths the `#[utoipa::path]` items.
//! A test checks that every route is documented and every documented path answers.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use utoipa::{
    IntoParams, Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::problem::problem;
use crate::error::Error;

/// Parameters every endpoint takes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Common {
    /// `json` (the default) or `csv` (RFC 4180, UTF-8, header row); `Accept: text/csv`
    /// chooses CSV too.
    format: Option<String>,
    /// The API key (read scope), for tools that cannot send `Authorization: Bearer KEY`.
    api_key: Option<String>,
}

/// The time range and zone.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Range {
    /// Inclusive start: RFC 3339, or a date (YYYY-MM-DD) meaning local midnight in
    /// `time_zone`.
    start: String,
    /// Exclusive end, as `start`.
    end: String,
    /// IANA time zone name; UTC by default.
    time_zone: Option<String>,
}

/// Buckets.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Buckets {
    /// `day`, `week` (ISO, Monday), `month`, `quarter` or `year`: a row per bucket.
    granularity: Option<String>,
}

/// Which records count; every list is repeatable (any value matches).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Filter {
    survey_id: Option<Vec<String>>,
    channel: Option<Vec<String>>,
    agent_id: Option<Vec<String>>,
    team_id: Option<Vec<String>>,
    /// `attribute.KEY=VALUE`: records whose attribute KEY is VALUE (one per key).
    #[param(rename = "attribute.KEY")]
    attribute: Option<String>,
}

/// Grouping and comparison.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Grouping {
    /// `survey`, `channel`, `agent`, `team` or `attribute:KEY`: a row per group.
    group_by: Option<String>,
    /// `true` adds the previous period of the same length and the change to `summary`.
    compare_previous: Option<bool>,
}

/// Response-time parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ResponseTimes {
    /// First-response SLA target, in seconds.
    first_response_target: Option<f64>,
    /// Resolution SLA target, in seconds.
    resolution_target: Option<f64>,
    /// Measure in the business hours of this calendar.
    calendar_id: Option<String>,
    /// `true`: exact percentiles (`percentile_cont` over the raw rows). Otherwise p50..p99
    /// come from the rollups' DDSketch, within 1% (relative) of the exact values; the
    /// `*_percentiles_exact` columns say which. Counts, mean, min, max and SLA figures are
    /// exact either way.
    exact: Option<bool>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Retention {
    /// `true`: a row per NPS category (latest NPS answer before the range).
    group_by_nps_category: Option<bool>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Cohorts {
    /// Periods after each cohort's first, 1 to 60.
    periods: i32,
}

/// Comment themes: a row per theme with its `side` (`negative`, `positive`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Themes {
    /// Required: `nps` (detractors against promoters), `csat` (below the top two points
    /// against the top two) or `ces` (below the top three against the top three).
    kind: String,
    /// Themes per side, 1 to 100 (20 by default).
    max_themes: Option<i32>,
    /// The fewest comments (both sides) a theme must be mentioned in; 5 by default.
    min_mentions: Option<i32>,
    /// `true` adds each theme's change in share of its side's comments (`change_*`).
    compare_previous: Option<bool>,
}

/// A text search over comments.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CommentSearch {
    /// Only responses whose comment contains every word, with the stemming of comment
    /// themes ("slow delivery" finds "deliveries were slow"); up to 256 characters.
    comment_query: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Paging {
    /// Rows per JSON page, 1 to 1000 (100 by default); CSV returns every row.
    page_size: Option<i32>,
    /// `next_page_token` of the previous JSON page.
    page_token: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Kind {
    /// `nps`, `csat` or `ces`.
    kind: Option<String>,
}

macro_rules! metric_path {
    ($name:ident, $path:literal, $summary:literal, $($params:ident),*) => {
        #[utoipa::path(
            get,
            path = $path,
            summary = $summary,
            params(Common, Range, $($params),*),
            responses(
                (status = 200, description = "A tidy table: `{columns, rows, summary}` in \
                    JSON, or CSV rows",
                    content((Object = "application/json"), (String = "text/csv"))),
                (status = 400, description = "A bad parameter, named in `errors`",
                    content_type = "application/problem+json"),
                (status = 401, description = "No or unknown key", content_type = "application/problem+json"),
                (status = 403, description = "The key lacks the read scope", content_type = "application/problem+json"),
                (status = 404, description = "An unknown calendar", content_type = "application/problem+json"),
                (status = 429, description = "Shed under load: retry after `Retry-After` seconds", content_type = "application/problem+json"),
                (status = 503, description = "The database is unavailable", content_type = "application/problem+json"),
                (status = 504, description = "The deadline passed", content_type = "application/problem+json"),
            ),
            security(("bearer" = []), ("api_key" = [])),
        )]
        #[allow(dead_code)]
        fn $name() {}
    };
}

metric_path!(
    nps,
    "/v1/metrics/nps",
    "Net Promoter Score",
    Buckets,
    Filter,
    Grouping
);
metric_path!(
    csat,
    "/v1/metrics/csat",
    "Customer satisfaction",
    Buckets,
    Filter,
    Grouping
);
metric_path!(
    ces,
    "/v1/metrics/ces",
    "Customer effort",
    Buckets,
    Filter,
    Grouping
);
metric_path!(
    response_times,
    "/v1/metrics/response-times",
    "First response and resolution times, SLA attainment",
    Buckets,
    Filter,
    Grouping,
    ResponseTimes
);
metric_path!(
    retention,
    "/v1/metrics/retention",
    "Customer retention",
    Buckets,
    Retention
);
metric_path!(
    cohort_retention,
    "/v1/metrics/cohort-retention",
    "Cohort retention",
    Buckets,
    Cohorts
);
metric_path!(
    comment_themes,
    "/v1/metrics/comment-themes",
    "Comment themes that set unhappy customers apart from happy ones",
    Filter,
    Themes
);
metric_path!(
    survey_responses,
    "/v1/survey-responses",
    "Survey responses (drill-down rows)",
    Filter,
    Kind,
    CommentSearch,
    Paging
);
metric_path!(
    interactions,
    "/v1/interactions",
    "Interactions (drill-down rows)",
    Filter,
    Paging
);

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive")))]
#[allow(dead_code)]
fn healthz() {}

/// Readiness: 503 while the gRPC health service reports NOT_SERVING.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "Serving"),
    (status = 503, description = "Not serving"),
))]
#[allow(dead_code)]
fn readyz() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
#[allow(dead_code)]
fn openapi() {}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("api_key"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "cxmetrics HTTP API", description = "Every metric and drill-down listing \
        as tidy JSON or CSV, for BI tools and browsers; the same answers as the gRPC API."),
    paths(
        nps,
        csat,
        ces,
        response_times,
        retention,
        cohort_retention,
        comment_themes,
        survey_responses,
        interactions,
        healthz,
        readyz,
        openapi
    ),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn document() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(error) => problem(Error::Internal(anyhow::Error::new(error))),
    }
}

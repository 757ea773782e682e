//! The query parameters of each endpoint to the domain query the application layer takes,
//! with `domain::parse`'s rules (the ones gRPC applies) and every bad parameter named by
//! its HTTP name.

use chrono::Utc;
use chrono_tz::Tz;

use axum::http::{header, request::Parts};

use super::{params::Params, table::Format};
use crate::{
    app::ListQuery,
    domain::{
        Checker, Filter, MetricQuery, SurveyKind, TimeRange, excerpt, parse,
        query::{CohortQuery, ResponseTimeQuery, RetentionQuery},
        response_times::SlaTargets,
        themes::ThemeQuery,
    },
    error::{Error, Violation},
};

/// The HTTP names of the filter parameters; each is repeatable.
const FILTER_FIELDS: parse::FilterFields<'static> = parse::FilterFields {
    survey_ids: "survey_id",
    channels: "channel",
    agent_ids: "agent_id",
    team_ids: "team_id",
    attributes: "attribute",
    indexed: false,
};

/// The parameters of one request and the checker that collects its violations.
pub struct Request {
    c: Checker,
    params: Params,
    /// The output format: `format=json|csv`, else `Accept: text/csv`, else JSON.
    pub format: Format,
}

impl Request {
    pub fn new(parts: &Parts) -> Self {
        let mut c = Checker::new(Utc::now());
        let mut params = Params::new(&mut c, parts.uri.query());
        let format = match params.one(&mut c, "format").as_deref() {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some(other) => {
                c.violation("format", format!("{:?} is not json or csv", excerpt(other)));
                Format::Json
            }
            None if accepts_csv(parts) => Format::Csv,
            None => Format::Json,
        };
        Self { c, params, format }
    }

    /// Ends the request: unknown parameters are named, then `value` is built unless some
    /// parameter was bad.
    fn finish<T>(mut self, value: impl FnOnce() -> Option<T>) -> Result<T, Vec<Violation>> {
        self.params.finish(&mut self.c);
        self.c.finish(value)
    }

    /// `start` and `end` (bare dates in `zone`) as a time range, with the zone.
    fn range(&mut self) -> (Option<TimeRange>, Option<Tz>) {
        let zone = self.params.time_zone(&mut self.c);
        let start = self.params.instant(&mut self.c, "start", zone);
        let end = self.params.instant(&mut self.c, "end", zone);
        let range = match (start, end) {
            (Some(start), Some(end)) => parse::time_range(&mut self.c, "end", start, end),
            _ => None,
        };
        (range, zone)
    }

    fn filter(&mut self) -> Option<Filter> {
        let p = &mut self.params;
        let raw = parse::RawFilter {
            survey_ids: p.all("survey_id"),
            channels: p.all("channel"),
            agent_ids: p.all("agent_id"),
            team_ids: p.all("team_id"),
            attributes: p.attributes(&mut self.c),
        };
        parse::filter(&mut self.c, &FILTER_FIELDS, raw)
    }

    fn metric_parts(&mut self) -> Option<MetricQuery> {
        let (range, time_zone) = self.range();
        let granularity = self.params.granularity(&mut self.c);
        let filter = self.filter();
        let group_by = self.params.group_by(&mut self.c);
        let compare_previous = self.params.flag(&mut self.c, "compare_previous");
        Some(MetricQuery {
            range: range?,
            time_zone: time_zone?,
            granularity: granularity?,
            filter: filter?,
            group_by: group_by?,
            compare_previous: compare_previous?,
        })
    }

    /// A survey metric request (NPS, CSAT, CES).
    pub fn metric(mut self) -> Result<MetricQuery, Error> {
        let query = self.metric_parts();
        self.finish(|| query).map_err(Error::InvalidArgument)
    }

    pub fn response_times(mut self) -> Result<ResponseTimeQuery, Error> {
        let query = self.metric_parts();
        let mut target = |name: &str| match self.params.number::<f64>(&mut self.c, name) {
            Some(Some(seconds)) => parse::sla_target(&mut self.c, name, seconds).map(Some),
            parsed => parsed.map(|_| None),
        };
        let first_response = target("first_response_target");
        let resolution = target("resolution_target");
        let exact = self.params.flag(&mut self.c, "exact");
        let calendar_id = self.params.one(&mut self.c, "calendar_id");
        let calendar_id = self
            .c
            .optional_id("calendar_id", calendar_id.as_deref().unwrap_or_default());
        let violations = match &query {
            Some(q) => parse::interaction_violations(q, "group_by", "survey_id"),
            None => Vec::new(),
        };
        let parsed = self.finish(|| {
            Some(ResponseTimeQuery {
                query: query?,
                targets: SlaTargets {
                    first_response: first_response?,
                    resolution: resolution?,
                },
                calendar_id,
                exact: exact?,
            })
        });
        joined(parsed, violations)
    }

    /// Comment themes: the metric parameters (no granularity or group_by), the required
    /// `kind`, `max_themes` and `min_mentions`.
    pub fn comment_themes(mut self) -> Result<ThemeQuery, Error> {
        let query = self.metric_parts();
        let kind = match self.kind() {
            Some(None) => {
                self.c.violation("kind", "is required (nps, csat or ces)");
                None
            }
            kind => kind.flatten(),
        };
        let max_themes = match self.params.number::<i64>(&mut self.c, "max_themes") {
            Some(n) => parse::max_themes(&mut self.c, "max_themes", n.unwrap_or(0)),
            None => None,
        };
        let min_mentions = match self.params.number::<i64>(&mut self.c, "min_mentions") {
            Some(n) => parse::min_mentions(&mut self.c, "min_mentions", n),
            None => None,
        };
        let violations = match &query {
            Some(q) => parse::theme_violations(q, "granularity", "group_by"),
            None => Vec::new(),
        };
        let parsed = self.finish(|| {
            Some(ThemeQuery {
                query: query?,
                kind: kind?,
                max_themes: max_themes?,
                min_mentions: min_mentions?,
            })
        });
        joined(parsed, violations)
    }

    pub fn retention(mut self) -> Result<RetentionQuery, Error> {
        let (range, time_zone) = self.range();
        let granularity = self.params.granularity(&mut self.c);
        let by_nps_category = self.params.flag(&mut self.c, "group_by_nps_category");
        self.finish(|| {
            Some(RetentionQuery {
                range: range?,
                time_zone: time_zone?,
                granularity: granularity?,
                by_nps_category: by_nps_category?,
            })
        })
        .map_err(Error::InvalidArgument)
    }

    pub fn cohorts(mut self) -> Result<CohortQuery, Error> {
        let (range, time_zone) = self.range();
        let granularity = self.params.granularity(&mut self.c);
        let granularity = parse::cohort_granularity(&mut self.c, "granularity", granularity);
        let periods = match self.params.number::<i64>(&mut self.c, "periods") {
            Some(Some(n)) => parse::periods(&mut self.c, "periods", n),
            Some(None) => parse::periods(&mut self.c, "periods", 0),
            None => None,
        };
        self.finish(|| {
            Some(CohortQuery {
                range: range?,
                time_zone: time_zone?,
                granularity: granularity?,
                periods: periods?,
            })
        })
        .map_err(Error::InvalidArgument)
    }

    /// A listing: the range and filter, `kind` for survey responses, and the paging
    /// parameters (`page_size` and `page_token`, JSON only).
    pub fn listing(mut self, survey_responses: bool, paged: bool) -> Result<Listing, Error> {
        let (range, zone) = self.range();
        let filter = self.filter();
        let kind = if survey_responses {
            self.kind()
        } else {
            Some(None)
        };
        let comment_query = if survey_responses {
            let raw = self.params.one(&mut self.c, "comment_query");
            parse::comment_query(&mut self.c, "comment_query", raw.as_deref().unwrap_or(""))
        } else {
            Some(None)
        };
        let (page_size, page_token) = if paged {
            let size = self.params.number::<i32>(&mut self.c, "page_size");
            let token = self.params.one(&mut self.c, "page_token");
            (size, token.unwrap_or_default())
        } else {
            (Some(None), String::new())
        };
        self.finish(|| {
            Some(Listing {
                query: ListQuery {
                    range: range?,
                    filter: filter?,
                    kind: kind?,
                    comment_query: comment_query?,
                },
                page_size: page_size?.unwrap_or(0),
                page_token,
                zone: zone?,
            })
        })
        .map_err(Error::InvalidArgument)
    }

    fn kind(&mut self) -> Option<Option<SurveyKind>> {
        match self.params.one(&mut self.c, "kind").as_deref() {
            None => Some(None),
            Some("nps") => Some(Some(SurveyKind::Nps)),
            Some("csat") => Some(Some(SurveyKind::Csat)),
            Some("ces") => Some(Some(SurveyKind::Ces)),
            Some(other) => {
                self.c.violation(
                    "kind",
                    format!("{:?} is not one of nps, csat, ces", excerpt(other)),
                );
                None
            }
        }
    }
}

/// Whether the `Accept` header names CSV (`text/csv`).
fn accepts_csv(parts: &Parts) -> bool {
    parts
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().starts_with("text/csv"))
}

/// A parsed listing request.
#[derive(Debug, Clone)]
pub struct Listing {
    pub query: ListQuery,
    /// As gRPC takes it: 0 for the default.
    pub page_size: i32,
    pub page_token: String,
    /// The zone times are written in (and bare dates read in).
    pub zone: Tz,
}

/// `parsed`, unless it or the `later` checks found violations: then all of them, its own
/// first.
fn joined<T>(parsed: Result<T, Vec<Violation>>, later: Vec<Violation>) -> Result<T, Error> {
    match parsed {
        Ok(parsed) if later.is_empty() => Ok(parsed),
        Ok(_) => Err(Error::InvalidArgument(later)),
        Err(mut bad) => {
            bad.extend(later);
            Err(Error::InvalidArgument(bad))
        }
    }
}

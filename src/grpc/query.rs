//! Parses the metric request (and the time range and filter the listings share) into a
//! validated `MetricQuery`, naming every bad field.

use chrono::Utc;

use super::convert::from_timestamp;
use crate::domain::{
    parse,
    query::{CohortQuery, ResponseTimeQuery, RetentionQuery},
    response_times::SlaTargets,
    themes::ThemeQuery,
};
use crate::{
    domain::{Checker, Filter, Granularity, GroupBy, MetricQuery, TimeRange},
    error::{Error, Violation},
    proto as pb,
};

/// Parses `time_range` (required, start < end, at most ten years).
pub fn time_range(c: &mut Checker, range: Option<&pb::TimeRange>) -> Option<TimeRange> {
    let Some(range) = range else {
        c.violation("time_range", "is required");
        return None;
    };
    let mut instant = |field: &str, ts: Option<&prost_types::Timestamp>| match ts {
        None => {
            c.violation(field, "is required");
            None
        }
        Some(ts) => from_timestamp(ts).or_else(|| {
            c.unrepresentable_time(field);
            None
        }),
    };
    let start = instant("time_range.start_time", range.start_time.as_ref());
    let end = instant("time_range.end_time", range.end_time.as_ref());
    let (start, end) = (start?, end?);
    parse::time_range(c, "time_range", start, end)
}

/// What the proto request calls each filter field.
const FILTER_FIELDS: parse::FilterFields<'static> = parse::FilterFields {
    survey_ids: "filter.survey_ids",
    channels: "filter.channels",
    agent_ids: "filter.agent_ids",
    team_ids: "filter.team_ids",
    attributes: "filter.attributes",
    indexed: true,
};

/// Parses a filter; every id must be a valid id and attribute keys valid keys.
pub fn filter(c: &mut Checker, pb: Option<pb::MetricFilter>) -> Option<Filter> {
    let pb = pb.unwrap_or_default();
    let raw = parse::RawFilter {
        survey_ids: pb.survey_ids,
        channels: pb.channels,
        agent_ids: pb.agent_ids,
        team_ids: pb.team_ids,
        attributes: pb.attributes.into_iter().collect(),
    };
    parse::filter(c, &FILTER_FIELDS, raw)
}

fn granularity(c: &mut Checker, raw: i32) -> Option<Option<Granularity>> {
    match pb::Granularity::try_from(raw) {
        Ok(pb::Granularity::Unspecified) => Some(None),
        Ok(pb::Granularity::Day) => Some(Some(Granularity::Day)),
        Ok(pb::Granularity::Week) => Some(Some(Granularity::Week)),
        Ok(pb::Granularity::Month) => Some(Some(Granularity::Month)),
        Ok(pb::Granularity::Quarter) => Some(Some(Granularity::Quarter)),
        Ok(pb::Granularity::Year) => Some(Some(Granularity::Year)),
        Err(_) => {
            c.violation("granularity", format!("unknown granularity {raw}"));
            None
        }
    }
}

fn group_by(c: &mut Checker, raw: i32, attribute: &str) -> Option<Option<GroupBy>> {
    let dimension = pb::Dimension::try_from(raw);
    if dimension != Ok(pb::Dimension::Attribute) && !attribute.is_empty() {
        c.violation(
            "group_by_attribute",
            "is only allowed with DIMENSION_ATTRIBUTE",
        );
        return None;
    }
    match dimension {
        Ok(pb::Dimension::Unspecified) => Some(None),
        Ok(pb::Dimension::Survey) => Some(Some(GroupBy::Survey)),
        Ok(pb::Dimension::Channel) => Some(Some(GroupBy::Channel)),
        Ok(pb::Dimension::Agent) => Some(Some(GroupBy::Agent)),
        Ok(pb::Dimension::Team) => Some(Some(GroupBy::Team)),
        Ok(pb::Dimension::Attribute) => {
            parse::attribute_group(c, "group_by_attribute", attribute).map(Some)
        }
        Err(_) => {
            c.violation("group_by", format!("unknown dimension {raw}"));
            None
        }
    }
}

/// Parses a whole metric request.
#[tracing::instrument(name = "validate", skip_all)]
pub fn metric_query(request: pb::MetricRequest) -> Result<MetricQuery, Error> {
    metric_query_violations(request).map_err(Error::InvalidArgument)
}

fn metric_query_violations(request: pb::MetricRequest) -> Result<MetricQuery, Vec<Violation>> {
    let mut c = Checker::new(Utc::now());
    let range = time_range(&mut c, request.time_range.as_ref());
    let time_zone = parse::time_zone(&mut c, "time_zone", &request.time_zone);
    let granularity = granularity(&mut c, request.granularity);
    let filter = filter(&mut c, request.filter);
    let group_by = group_by(&mut c, request.group_by, &request.group_by_attribute);
    c.finish(|| {
        Some(MetricQuery {
            range: range?,
            time_zone: time_zone?,
            granularity: granularity?,
            filter: filter?,
            group_by: group_by?,
            compare_previous: request.compare_previous,
        })
    })
}

/// The metric request inside a request, or its violations added to `violations`, named
/// under `query.`.
fn nested_query(
    request: Option<pb::MetricRequest>,
    violations: &mut Vec<Violation>,
) -> Option<MetricQuery> {
    match metric_query_violations(request.unwrap_or_default()) {
        Ok(query) => Some(query),
        Err(bad) => {
            violations.extend(bad.into_iter().map(|v| v.under("query")));
            None
        }
    }
}

/// Parses a response-time request; the metric request's fields are named under `query.`.
#[tracing::instrument(name = "validate", skip_all)]
pub fn response_time_query(request: pb::ResponseTimeRequest) -> Result<ResponseTimeQuery, Error> {
    let mut violations = Vec::new();
    let query = nested_query(request.query, &mut violations);
    if let Some(q) = &query {
        violations.extend(parse::interaction_violations(
            q,
            "query.group_by",
            "query.filter.survey_ids",
        ));
    }
    let mut c = Checker::new(Utc::now());
    let first_response = target(
        &mut c,
        "first_response_target",
        request.first_response_target,
    );
    let resolution = target(&mut c, "resolution_target", request.resolution_target);
    let calendar_id = c.optional_id("calendar_id", &request.calendar_id);
    if let Err(bad) = c.finish(|| Some(())) {
        violations.extend(bad);
    }
    match query {
        Some(query) if violations.is_empty() => Ok(ResponseTimeQuery {
            query,
            targets: SlaTargets {
                first_response,
                resolution,
            },
            calendar_id,
            exact: request.exact,
        }),
        _ => Err(Error::InvalidArgument(violations)),
    }
}

/// An optional positive duration, in seconds.
fn target(c: &mut Checker, field: &str, raw: Option<prost_types::Duration>) -> Option<f64> {
    let d = raw?;
    let seconds = d.seconds as f64 + f64::from(d.nanos) / 1e9;
    if !(d.nanos.abs() < 1_000_000_000 && d.seconds >= 0 && d.nanos >= 0) {
        c.violation(field, "must be a positive duration");
        return None;
    }
    parse::sla_target(c, field, seconds)
}

/// Parses a comment-themes request; the metric request's fields are named under `query.`.
#[tracing::instrument(name = "validate", skip_all)]
pub fn theme_query(request: pb::CommentThemesRequest) -> Result<ThemeQuery, Error> {
    let mut violations = Vec::new();
    let query = nested_query(request.query, &mut violations);
    if let Some(q) = &query {
        violations.extend(parse::theme_violations(
            q,
            "query.granularity",
            "query.group_by",
        ));
    }
    let mut c = Checker::new(Utc::now());
    let kind = super::convert::kind(&mut c, request.kind);
    let max_themes = parse::max_themes(&mut c, "max_themes", i64::from(request.max_themes));
    let min_mentions =
        parse::min_mentions(&mut c, "min_mentions", request.min_mentions.map(i64::from));
    if let Err(bad) = c.finish(|| Some(())) {
        violations.extend(bad);
    }
    match (query, kind, max_themes, min_mentions) {
        (Some(query), Some(kind), Some(max_themes), Some(min_mentions))
            if violations.is_empty() =>
        {
            Ok(ThemeQuery {
                query,
                kind,
                max_themes,
                min_mentions,
            })
        }
        _ => Err(Error::InvalidArgument(violations)),
    }
}

#[tracing::instrument(name = "validate", skip_all)]
pub fn retention_query(request: pb::RetentionRequest) -> Result<RetentionQuery, Error> {
    let mut c = Checker::new(Utc::now());
    let range = time_range(&mut c, request.time_range.as_ref());
    let time_zone = parse::time_zone(&mut c, "time_zone", &request.time_zone);
    let granularity = granularity(&mut c, request.granularity);
    c.finish(|| {
        Some(RetentionQuery {
            range: range?,
            time_zone: time_zone?,
            granularity: granularity?,
            by_nps_category: request.group_by_nps_category,
        })
    })
    .map_err(Error::InvalidArgument)
}

#[tracing::instrument(name = "validate", skip_all)]
pub fn cohort_query(request: pb::CohortRetentionRequest) -> Result<CohortQuery, Error> {
    let mut c = Checker::new(Utc::now());
    let range = time_range(&mut c, request.time_range.as_ref());
    let time_zone = parse::time_zone(&mut c, "time_zone", &request.time_zone);
    let granularity = granularity(&mut c, request.granularity);
    let granularity = parse::cohort_granularity(&mut c, "granularity", granularity);
    let periods = parse::periods(&mut c, "periods", i64::from(request.periods));
    c.finish(|| {
        Some(CohortQuery {
            range: range?,
            time_zone: time_zone?,
            granularity: granularity?,
            periods: periods?,
        })
    })
    .map_err(Error::InvalidArgument)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::convert::to_timestamp;
    use chrono_tz::Tz;

    fn request() -> pb::MetricRequest {
        let start = Utc::now() - chrono::Duration::days(30);
        pb::MetricRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(to_timestamp(start)),
                end_time: Some(to_timestamp(start + chrono::Duration::days(7))),
            }),
            ..Default::default()
        }
    }

    fn fields(request: pb::MetricRequest) -> Vec<String> {
        metric_query_violations(request)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_valid_request_defaults_to_utc_without_buckets_or_groups() {
        let q = metric_query(request()).unwrap();
        assert_eq!(q.time_zone, Tz::UTC);
        assert_eq!((q.granularity, q.group_by), (None, None));
    }

    #[test]
    fn each_bad_request_field_is_named() {
        let mut r = request();
        r.time_zone = "Mars/Olympus".into();
        r.granularity = 99;
        r.group_by = pb::Dimension::Attribute as i32;
        r.filter = Some(pb::MetricFilter {
            channels: vec![String::new()],
            ..Default::default()
        });
        assert_eq!(
            fields(r),
            [
                "time_zone",
                "granularity",
                "filter.channels[0]",
                "group_by_attribute"
            ]
        );
        let mut r = request();
        r.time_range = None;
        r.group_by_attribute = "plan".into();
        assert_eq!(fields(r), ["time_range", "group_by_attribute"]);
    }

    #[test]
    fn a_range_that_ends_before_it_starts_is_rejected() {
        let mut r = request();
        let range = r.time_range.as_mut().unwrap();
        std::mem::swap(&mut range.start_time, &mut range.end_time);
        assert_eq!(fields(r), ["time_range"]);
    }

    #[test]
    fn response_time_requests_name_fields_under_query_and_reject_survey_dimensions() {
        let r = pb::ResponseTimeRequest {
            query: Some(pb::MetricRequest {
                group_by: pb::Dimension::Survey as i32,
                ..request()
            }),
            first_response_target: Some(prost_types::Duration {
                seconds: -5,
                nanos: 0,
            }),
            resolution_target: Some(prost_types::Duration {
                seconds: 0,
                nanos: 0,
            }),
            calendar_id: String::new(),
            exact: false,
        };
        let Err(Error::InvalidArgument(violations)) = response_time_query(r) else {
            panic!("expected invalid argument");
        };
        let fields: Vec<_> = violations.into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "query.group_by",
                "first_response_target",
                "resolution_target"
            ]
        );
    }

    #[test]
    fn comment_themes_need_a_kind_and_reject_group_by_and_large_limits() {
        let r = pb::CommentThemesRequest {
            query: Some(pb::MetricRequest {
                group_by: pb::Dimension::Channel as i32,
                granularity: pb::Granularity::Day as i32,
                ..request()
            }),
            kind: 0,
            max_themes: 101,
            min_mentions: Some(-1),
        };
        let Err(Error::InvalidArgument(violations)) = theme_query(r) else {
            panic!("expected invalid argument");
        };
        let fields: Vec<_> = violations.into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "query.granularity",
                "query.group_by",
                "kind",
                "max_themes",
                "min_mentions"
            ]
        );
        let ok = theme_query(pb::CommentThemesRequest {
            query: Some(request()),
            kind: pb::SurveyKind::Csat as i32,
            max_themes: 0,
            min_mentions: None,
        })
        .unwrap();
        assert_eq!((ok.max_themes, ok.min_mentions), (20, 5));
    }

    #[test]
    fn cohorts_need_a_granularity_and_one_to_sixty_periods() {
        let r = pb::CohortRetentionRequest {
            time_range: request().time_range,
            time_zone: String::new(),
            granularity: 0,
            periods: 61,
        };
        let Err(Error::InvalidArgument(violations)) = cohort_query(r) else {
            panic!("expected invalid argument");
        };
        let fields: Vec<_> = violations.into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["granularity", "periods"]);
    }
}

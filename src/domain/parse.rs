//! The rules of a metric or listing request, whatever the transport: each transport reads
//! its own syntax (proto fields, query parameters) into plain values and hands them here
//! with the names its callers know the fields by, so that both name the same bad field for
//! the same reason and no rule exists twice.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{
    Attributes, Checker, Filter, Granularity, Limits, MetricQuery, TimeRange,
    cohorts::MAX_PERIODS,
    excerpt,
    query::GroupBy,
    query::MAX_FILTER_VALUES,
    themes::{DEFAULT_MAX_THEMES, DEFAULT_MIN_MENTIONS, MAX_COMMENT_QUERY_CHARS, MAX_THEMES},
};
use crate::error::Violation;

/// A time zone name; empty means UTC.
pub fn time_zone(c: &mut Checker, field: &str, name: &str) -> Option<Tz> {
    if name.is_empty() {
        return Some(Tz::UTC);
    }
    Tz::from_str(name)
        .map_err(|_| {
            c.violation(
                field,
                format!("{:?} is not an IANA time zone name", excerpt(name)),
            )
        })
        .ok()
}

/// `[start, end)`, a valid `TimeRange`; `field` names the range as a whole.
pub fn time_range(
    c: &mut Checker,
    field: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<TimeRange> {
    TimeRange::new(start, end)
        .map_err(|e| c.violation(field, e))
        .ok()
}

/// The values of one filter list, as the caller sent them.
#[derive(Debug, Default)]
pub struct RawFilter {
    pub survey_ids: Vec<String>,
    pub channels: Vec<String>,
    pub agent_ids: Vec<String>,
    pub team_ids: Vec<String>,
    pub attributes: Vec<(String, String)>,
}

/// What a transport calls each filter field; `indexed` adds `[i]` to name one value.
pub struct FilterFields<'a> {
    pub survey_ids: &'a str,
    pub channels: &'a str,
    pub agent_ids: &'a str,
    pub team_ids: &'a str,
    pub attributes: &'a str,
    pub indexed: bool,
}

/// Parses a filter; every id must be a valid id and attribute keys valid keys.
pub fn filter(c: &mut Checker, names: &FilterFields, raw: RawFilter) -> Option<Filter> {
    let mut ids = |field: &str, values: Vec<String>| -> Option<Vec<String>> {
        if values.len() > MAX_FILTER_VALUES {
            c.violation(
                field,
                format!("must hold at most {MAX_FILTER_VALUES} values"),
            );
            return None;
        }
        let parsed: Vec<Option<String>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| match names.indexed {
                true => c.id(&format!("{field}[{i}]"), v),
                false => c.id(field, v),
            })
            .collect();
        parsed.into_iter().collect()
    };
    let survey_ids = ids(names.survey_ids, raw.survey_ids);
    let channels = ids(names.channels, raw.channels);
    let agent_ids = ids(names.agent_ids, raw.agent_ids);
    let team_ids = ids(names.team_ids, raw.team_ids);
    let attributes = Attributes::parse(c, names.attributes, raw.attributes);
    Some(Filter {
        survey_ids: survey_ids?,
        channels: channels?,
        agent_ids: agent_ids?,
        team_ids: team_ids?,
        attributes: attributes?.into_map(),
    })
}

/// Grouping by the attribute `key`: 1 to 64 characters.
pub fn attribute_group(c: &mut Checker, field: &str, key: &str) -> Option<GroupBy> {
    let chars = key.chars().count();
    if chars == 0 || chars > Limits::ATTRIBUTE_KEY_MAX_CHARS || key.contains('\0') {
        c.violation(
            field,
            format!(
                "must be an attribute key of 1 to {} characters",
                Limits::ATTRIBUTE_KEY_MAX_CHARS
            ),
        );
        return None;
    }
    Some(GroupBy::Attribute(key.to_owned()))
}

/// An SLA target: a positive number of seconds.
pub fn sla_target(c: &mut Checker, field: &str, seconds: f64) -> Option<f64> {
    if !(seconds.is_finite() && seconds > 0.0) {
        c.violation(field, "must be a positive duration");
        return None;
    }
    Some(seconds)
}

/// The periods of a cohort report: 1 to `MAX_PERIODS`.
pub fn periods(c: &mut Checker, field: &str, raw: i64) -> Option<usize> {
    let periods = usize::try_from(raw)
        .ok()
        .filter(|p| (1..=MAX_PERIODS).contains(p));
    if periods.is_none() {
        c.violation(field, format!("must be between 1 and {MAX_PERIODS}"));
    }
    periods
}

/// Cohorts need a granularity.
pub fn cohort_granularity(
    c: &mut Checker,
    field: &str,
    parsed: Option<Option<Granularity>>,
) -> Option<Granularity> {
    match parsed {
        Some(None) => {
            c.violation(field, "is required for cohorts");
            None
        }
        parsed => parsed.flatten(),
    }
}

/// What an interaction metric cannot take from a metric query: survey grouping and survey
/// filters (interactions have no survey).
pub fn interaction_violations(
    query: &MetricQuery,
    group_by_field: &str,
    survey_ids_field: &str,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    if query.group_by == Some(GroupBy::Survey) {
        violations.push(Violation::new(
            group_by_field,
            "grouping by survey does not apply to interactions",
        ));
    }
    if !query.filter.survey_ids.is_empty() {
        violations.push(Violation::new(
            survey_ids_field,
            "does not apply to interactions",
        ));
    }
    violations
}

/// The themes per side: 1 to `MAX_THEMES`, 0 for the default.
pub fn max_themes(c: &mut Checker, field: &str, raw: i64) -> Option<usize> {
    match usize::try_from(raw) {
        Ok(0) => Some(DEFAULT_MAX_THEMES),
        Ok(n) if n <= MAX_THEMES => Some(n),
        _ => {
            c.violation(
                field,
                format!("must be between 1 and {MAX_THEMES} (0 for {DEFAULT_MAX_THEMES})"),
            );
            None
        }
    }
}

/// The fewest mentions of a theme: not negative, absent for the default; a theme needs at
/// least one mention, so 0 counts as 1.
pub fn min_mentions(c: &mut Checker, field: &str, raw: Option<i64>) -> Option<i64> {
    match raw {
        None => Some(DEFAULT_MIN_MENTIONS),
        Some(n) if n >= 0 => Some(n.max(1)),
        Some(_) => {
            c.violation(field, "must not be negative");
            None
        }
    }
}

/// What comment themes cannot take from a metric query: buckets and groups.
pub fn theme_violations(
    query: &MetricQuery,
    granularity_field: &str,
    group_by_field: &str,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    if query.granularity.is_some() {
        violations.push(Violation::new(
            granularity_field,
            "does not apply to comment themes, which cover the whole range",
        ));
    }
    if query.group_by.is_some() {
        violations.push(Violation::new(
            group_by_field,
            "is not supported by comment themes (use a filter instead)",
        ));
    }
    violations
}

/// An optional comment search: up to `MAX_COMMENT_QUERY_CHARS` characters, not only white
/// space; empty means none.
pub fn comment_query(c: &mut Checker, field: &str, raw: &str) -> Option<Option<String>> {
    if raw.is_empty() {
        return Some(None);
    }
    if raw.trim().is_empty() {
        c.violation(field, "must contain a word");
        return None;
    }
    c.optional_text(field, raw, MAX_COMMENT_QUERY_CHARS)
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_zone_and_an_empty_attribute_key_are_named_by_the_given_fields() {
        let mut c = Checker::new(Utc::now());
        assert_eq!(time_zone(&mut c, "tz", ""), Some(Tz::UTC));
        assert_eq!(time_zone(&mut c, "tz", "Mars/Olympus"), None);
        assert_eq!(attribute_group(&mut c, "group", ""), None);
        assert_eq!(sla_target(&mut c, "target", f64::NAN), None);
        assert_eq!(periods(&mut c, "n", 0), None);
        let fields: Vec<_> = c
            .finish(|| Some(()))
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["tz", "group", "target", "n"]);
    }

    #[test]
    fn theme_limits_and_comment_queries_are_checked() {
        let mut c = Checker::new(Utc::now());
        assert_eq!(max_themes(&mut c, "m", 0), Some(DEFAULT_MAX_THEMES));
        assert_eq!(max_themes(&mut c, "m", 100), Some(100));
        assert_eq!(min_mentions(&mut c, "n", None), Some(DEFAULT_MIN_MENTIONS));
        assert_eq!(min_mentions(&mut c, "n", Some(0)), Some(1));
        assert_eq!(comment_query(&mut c, "q", ""), Some(None));
        assert!(c.finish(|| Some(())).is_ok());
        let mut c = Checker::new(Utc::now());
        assert_eq!(max_themes(&mut c, "m", 101), None);
        assert_eq!(max_themes(&mut c, "m", -1), None);
        assert_eq!(min_mentions(&mut c, "n", Some(-1)), None);
        assert_eq!(comment_query(&mut c, "q", "   "), None);
        assert_eq!(comment_query(&mut c, "q", &"a".repeat(257)), None);
        let fields: Vec<_> = c
            .finish(|| Some(()))
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["m", "m", "n", "q", "q"]);
    }

    #[test]
    fn filter_values_are_named_with_or_without_an_index() {
        let names = |indexed| FilterFields {
            survey_ids: "s",
            channels: "c",
            agent_ids: "a",
            team_ids: "t",
            attributes: "attr",
            indexed,
        };
        for (indexed, expected) in [(true, "c[1]"), (false, "c")] {
            let mut c = Checker::new(Utc::now());
            let raw = RawFilter {
                channels: vec!["email".into(), String::new()],
                ..Default::default()
            };
            assert!(filter(&mut c, &names(indexed), raw).is_none());
            let bad = c.finish(|| Some(())).unwrap_err();
            assert_eq!(bad[0].field, expected);
        }
    }
}

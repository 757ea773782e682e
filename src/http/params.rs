//! The query string of an HTTP request, read parameter by parameter into plain values (the
//! HTTP syntax: RFC 3339 or bare dates, names such as `month` or `attribute:plan`, numbers,
//! booleans). Every bad or unknown parameter is named in the one `Checker` of the request;
//! the rules that follow are `domain::parse`'s, shared with gRPC.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::{
    Checker, Granularity, GroupBy, buckets::start_of_day, excerpt, parse, query::MAX_FILTER_VALUES,
};

/// Parameters every endpoint accepts besides its own: the key (read by authentication).
const COMMON: &[&str] = &["api_key"];

/// The most parameters one query string may carry: every filter list at its cap, and room
/// for the rest.
const MAX_PARAMS: usize = 4 * MAX_FILTER_VALUES + 64;

/// The parameters of one request, consumed by name; what is left unconsumed is unknown.
pub struct Params {
    pairs: Vec<Option<(String, String)>>,
}

impl Params {
    /// Decodes `query` (`a=1&b=2`, percent- and plus-decoded).
    pub fn new(c: &mut Checker, query: Option<&str>) -> Self {
        let mut pairs: Vec<Option<(String, String)>> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if pairs.len() == MAX_PARAMS {
                c.violation(
                    "query",
                    format!("must hold at most {MAX_PARAMS} parameters"),
                );
                break;
            }
            pairs.push(Some((name.into_owned(), value.into_owned())));
        }
        Self { pairs }
    }

    /// Every value of `name`, in order.
    pub fn all(&mut self, name: &str) -> Vec<String> {
        self.pairs
            .iter_mut()
            .filter(|pair| pair.as_ref().is_some_and(|(n, _)| n == name))
            .filter_map(|pair| pair.take().map(|(_, value)| value))
            .collect()
    }

    /// The one value of `name`, if given; given twice is a violation.
    pub fn one(&mut self, c: &mut Checker, name: &str) -> Option<String> {
        let mut values = self.all(name);
        if values.len() > 1 {
            c.violation(name, "must be given at most once");
        }
        values.pop()
    }

    /// `prefix.KEY=VALUE` parameters as `(KEY, VALUE)` pairs.
    pub fn prefixed(&mut self, prefix: &str) -> Vec<(String, String)> {
        let prefix = format!("{prefix}.");
        self.pairs
            .iter_mut()
            .filter(|pair| pair.as_ref().is_some_and(|(n, _)| n.starts_with(&prefix)))
            .filter_map(|pair| pair.take())
            .map(|(name, value)| (name[prefix.len()..].to_owned(), value))
            .collect()
    }

    /// Names every parameter no one asked for (the common ones aside).
    pub fn finish(self, c: &mut Checker) {
        for (name, _) in self.pairs.into_iter().flatten() {
            if !COMMON.contains(&name.as_str()) {
                c.violation(&excerpt(&name), "is not a parameter of this endpoint");
            }
        }
    }

    pub fn time_zone(&mut self, c: &mut Checker) -> Option<Tz> {
        let name = self.one(c, "time_zone").unwrap_or_default();
        parse::time_zone(c, "time_zone", &name)
    }

    /// A required instant: RFC 3339, or a bare date (local midnight in `zone`). `zone` is
    /// None when the zone itself is bad: a date then cannot be placed, and is not reported
    /// again.
    pub fn instant(
        &mut self,
        c: &mut Checker,
        name: &str,
        zone: Option<Tz>,
    ) -> Option<DateTime<Utc>> {
        let Some(raw) = self.one(c, name) else {
            c.violation(name, "is required");
            return None;
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(&raw) {
            return Some(t.to_utc());
        }
        match NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
            Ok(date) => zone.map(|zone| start_of_day(zone, date)),
            Err(_) => {
                c.violation(
                    name,
                    format!(
                        "{:?} is neither an RFC 3339 time nor a date (YYYY-MM-DD)",
                        excerpt(&raw)
                    ),
                );
                None
            }
        }
    }

    /// `granularity`: day, week, month, quarter or year; absent means none.
    pub fn granularity(&mut self, c: &mut Checker) -> Option<Option<Granularity>> {
        let Some(raw) = self.one(c, "granularity") else {
            return Some(None);
        };
        let parsed = match raw.to_ascii_lowercase().as_str() {
            "day" => Granularity::Day,
            "week" => Granularity::Week,
            "month" => Granularity::Month,
            "quarter" => Granularity::Quarter,
            "year" => Granularity::Year,
            _ => {
                c.violation(
                    "granularity",
                    format!(
                        "{:?} is not one of day, week, month, quarter, year",
                        excerpt(&raw)
                    ),
                );
                return None;
            }
        };
        Some(Some(parsed))
    }

    /// `group_by`: survey, channel, agent, team or attribute:KEY; absent means none.
    pub fn group_by(&mut self, c: &mut Checker) -> Option<Option<GroupBy>> {
        let Some(raw) = self.one(c, "group_by") else {
            return Some(None);
        };
        let parsed = match raw.as_str() {
            "survey" => GroupBy::Survey,
            "channel" => GroupBy::Channel,
            "agent" => GroupBy::Agent,
            "team" => GroupBy::Team,
            _ => match raw.strip_prefix("attribute:") {
                Some(key) => parse::attribute_group(c, "group_by", key)?,
                None => {
                    c.violation(
                        "group_by",
                        format!(
                            "{:?} is not one of survey, channel, agent, team, attribute:KEY",
                            excerpt(&raw)
                        ),
                    );
                    return None;
                }
            },
        };
        Some(Some(parsed))
    }

    /// A boolean: true/false or 1/0; absent means false.
    pub fn flag(&mut self, c: &mut Checker, name: &str) -> Option<bool> {
        match self.one(c, name).as_deref() {
            None | Some("false" | "0") => Some(false),
            Some("true" | "1" | "") => Some(true),
            Some(other) => {
                c.violation(name, format!("{:?} is not true or false", excerpt(other)));
                None
            }
        }
    }

    /// A number, if given.
    pub fn number<T: std::str::FromStr>(
        &mut self,
        c: &mut Checker,
        name: &str,
    ) -> Option<Option<T>> {
        let Some(raw) = self.one(c, name) else {
            return Some(None);
        };
        match raw.trim().parse() {
            Ok(n) => Some(Some(n)),
            Err(_) => {
                c.violation(name, format!("{:?} is not a number", excerpt(&raw)));
                None
            }
        }
    }

    /// The attribute filters, `attribute.KEY=VALUE`; a key given twice must repeat its value.
    pub fn attributes(&mut self, c: &mut Checker) -> Vec<(String, String)> {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in self.prefixed("attribute") {
            if map.get(&key).is_some_and(|old| *old != value) {
                c.violation(
                    &format!("attribute.{}", excerpt(&key)),
                    "must be given at most once",
                );
            }
            map.insert(key, value);
        }
        map.into_iter().collect()
    }
}

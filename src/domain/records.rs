//! The three record types and their rules (design section 1).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::validate::{Checker, Limits, excerpt};

/// A caller-supplied id: 1..128 characters, no NUL.
pub type RecordId = String;

/// Custom attributes: at most 32, keys 1..64 characters, values up to 256.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    /// Checks every entry; bad keys are reported as `field.KEY`.
    pub fn parse(
        checker: &mut Checker,
        field: &str,
        raw: impl IntoIterator<Item = (String, String)>,
    ) -> Option<Self> {
        let map: BTreeMap<String, String> = raw.into_iter().collect();
        if map.len() > Limits::MAX_ATTRIBUTES {
            checker.violation(
                field,
                format!("must have at most {} entries", Limits::MAX_ATTRIBUTES),
            );
            return None;
        }
        let mut ok = true;
        for (key, value) in &map {
            let key_chars = key.chars().count();
            if key_chars == 0 || key_chars > Limits::ATTRIBUTE_KEY_MAX_CHARS {
                checker.violation(
                    field,
                    format!(
                        "key {:?} must be 1 to {} characters",
                        excerpt(key),
                        Limits::ATTRIBUTE_KEY_MAX_CHARS
                    ),
                );
                ok = false;
            } else if value.chars().count() > Limits::ATTRIBUTE_VALUE_MAX_CHARS {
                checker.violation(
                    &format!("{field}.{key}"),
                    format!(
                        "must be at most {} characters",
                        Limits::ATTRIBUTE_VALUE_MAX_CHARS
                    ),
                );
                ok = false;
            } else if key.contains('\0') || value.contains('\0') {
                checker.violation(&format!("{field}.{key}"), "must not contain NUL characters");
                ok = false;
            }
        }
        ok.then_some(Self(map))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// The attributes as a JSON object, the form PostgreSQL stores them in.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }

    /// Reads the stored JSON object back; anything that is not a string map is skipped.
    pub fn from_json(value: &serde_json::Value) -> Self {
        let map = value
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Self(map)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SurveyKind {
    Nps,
    Csat,
    Ces,
}

impl SurveyKind {
    /// The scale a kind uses when the record gives none.
    pub fn default_scale(self) -> ScoreScale {
        match self {
            SurveyKind::Nps => ScoreScale { min: 0, max: 10 },
            SurveyKind::Csat => ScoreScale { min: 1, max: 5 },
            SurveyKind::Ces => ScoreScale { min: 1, max: 7 },
        }
    }

    /// The code stored in the database.
    pub fn code(self) -> i16 {
        match self {
            SurveyKind::Nps => 1,
            SurveyKind::Csat => 2,
            SurveyKind::Ces => 3,
        }
    }

    pub fn from_code(code: i16) -> Option<Self> {
        match code {
            1 => Some(SurveyKind::Nps),
            2 => Some(SurveyKind::Csat),
            3 => Some(SurveyKind::Ces),
            _ => None,
        }
    }
}

/// An inclusive integer scale `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScoreScale {
    pub min: i16,
    pub max: i16,
}

impl ScoreScale {
    /// The largest scale maximum accepted.
    pub const MAX_POINT: i32 = 100;

    /// Resolves the scale of a response: the kind's default when absent; NPS is always 0..10;
    /// CSAT needs at least 2 points (top-two box), CES at least 3 (top-three share).
    pub fn resolve(
        checker: &mut Checker,
        field: &str,
        kind: SurveyKind,
        raw: Option<(i32, i32)>,
    ) -> Option<Self> {
        let Some((min, max)) = raw else {
            return Some(kind.default_scale());
        };
        let min_points = match kind {
            SurveyKind::Nps => {
                if (min, max) != (0, 10) {
                    checker.violation(field, "NPS is always 0..10");
                    return None;
                }
                return Some(kind.default_scale());
            }
            SurveyKind::Csat => 2,
            SurveyKind::Ces => 3,
        };
        if min < 0 || max > Self::MAX_POINT || max - min + 1 < min_points {
            checker.violation(
                field,
                format!(
                    "must satisfy 0 <= min, max <= {} and hold at least {min_points} points",
                    Self::MAX_POINT
                ),
            );
            return None;
        }
        // Both bounds are inside 0..=100 here, so they fit an i16.
        Some(Self {
            min: min as i16,
            max: max as i16,
        })
    }

    /// Checks that `score` lies inside the scale.
    pub fn score(self, checker: &mut Checker, field: &str, score: i32) -> Option<Score> {
        let parsed = Score::new(score, self);
        if parsed.is_none() {
            checker.violation(
                field,
                format!("must be between {} and {}", self.min, self.max),
            );
        }
        parsed
    }
}

/// A score and the scale it lies inside: it cannot hold a score outside its scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    value: i16,
    scale: ScoreScale,
}

impl Score {
    /// The score `value` on `scale`; None when it lies outside.
    pub fn new(value: i32, scale: ScoreScale) -> Option<Self> {
        let inside = value >= i32::from(scale.min) && value <= i32::from(scale.max);
        // Inside an i16 scale, the value fits an i16.
        inside.then_some(Self {
            value: value as i16,
            scale,
        })
    }

    pub fn value(self) -> i16 {
        self.value
    }

    pub fn scale(self) -> ScoreScale {
        self.scale
    }
}

/// One answer to one survey.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyResponse {
    pub response_id: RecordId,
    pub survey_id: RecordId,
    pub kind: SurveyKind,
    pub score: Score,
    pub customer_id: RecordId,
    pub interaction_id: Option<RecordId>,
    pub channel: Option<String>,
    pub respond_time: DateTime<Utc>,
    pub comment: Option<String>,
    pub attributes: Attributes,
    /// The source version; a record without one counts as the epoch.
    pub update_time: DateTime<Utc>,
}

/// A support ticket or conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub interaction_id: RecordId,
    pub customer_id: RecordId,
    pub channel: Option<String>,
    pub agent_id: Option<RecordId>,
    pub team_id: Option<RecordId>,
    pub open_time: DateTime<Utc>,
    /// Not before `open_time`.
    pub first_response_time: Option<DateTime<Utc>>,
    /// Not before `open_time`.
    pub resolve_time: Option<DateTime<Utc>>,
    pub attributes: Attributes,
    pub update_time: DateTime<Utc>,
}

/// A customer and its lifetime.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub customer_id: RecordId,
    pub acquire_time: DateTime<Utc>,
    /// Not before `acquire_time`.
    pub churn_time: Option<DateTime<Utc>>,
    pub attributes: Attributes,
    pub update_time: DateTime<Utc>,
}

/// What an idempotent upsert did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Created,
    Updated,
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> Checker {
        Checker::new(Utc::now())
    }

    #[test]
    fn a_score_of_eleven_is_rejected_for_nps() {
        let mut c = checker();
        let scale = ScoreScale::resolve(&mut c, "scale", SurveyKind::Nps, None).unwrap();
        assert_eq!(scale.score(&mut c, "score", 11), None);
        assert_eq!(scale.score(&mut c, "score", 10).map(Score::value), Some(10));
        assert_eq!(scale.score(&mut c, "score", 0).map(Score::value), Some(0));
    }

    #[test]
    fn nps_rejects_any_scale_but_zero_to_ten() {
        let mut c = checker();
        assert!(ScoreScale::resolve(&mut c, "scale", SurveyKind::Nps, Some((1, 10))).is_none());
        assert!(ScoreScale::resolve(&mut c, "scale", SurveyKind::Nps, Some((0, 10))).is_some());
    }

    #[test]
    fn csat_and_ces_default_to_one_to_five_and_one_to_seven() {
        let mut c = checker();
        let csat = ScoreScale::resolve(&mut c, "s", SurveyKind::Csat, None).unwrap();
        let ces = ScoreScale::resolve(&mut c, "s", SurveyKind::Ces, None).unwrap();
        assert_eq!((csat.min, csat.max), (1, 5));
        assert_eq!((ces.min, ces.max), (1, 7));
    }

    #[test]
    fn a_ces_scale_needs_three_points_and_csat_two() {
        let mut c = checker();
        assert!(ScoreScale::resolve(&mut c, "s", SurveyKind::Ces, Some((1, 2))).is_none());
        assert!(ScoreScale::resolve(&mut c, "s", SurveyKind::Csat, Some((1, 2))).is_some());
        assert!(ScoreScale::resolve(&mut c, "s", SurveyKind::Csat, Some((5, 1))).is_none());
        assert!(ScoreScale::resolve(&mut c, "s", SurveyKind::Csat, Some((0, 101))).is_none());
    }

    #[test]
    fn a_score_exists_only_inside_its_scale() {
        let scale = ScoreScale { min: 1, max: 5 };
        assert_eq!(Score::new(5, scale).map(Score::value), Some(5));
        assert_eq!(Score::new(1, scale).map(Score::scale), Some(scale));
        assert!(Score::new(0, scale).is_none());
        assert!(Score::new(6, scale).is_none());
        assert!(Score::new(i32::MAX, scale).is_none());
    }

    #[test]
    fn thirty_three_attributes_are_too_many() {
        let mut c = checker();
        let raw = (0..33).map(|i| (format!("k{i}"), "v".to_owned()));
        assert!(Attributes::parse(&mut c, "attributes", raw).is_none());
        let raw = (0..32).map(|i| (format!("k{i}"), "v".to_owned()));
        assert!(Attributes::parse(&mut c, "attributes", raw).is_some());
    }

    #[test]
    fn attribute_keys_and_values_are_bounded() {
        let mut c = checker();
        assert!(Attributes::parse(&mut c, "a", [(String::new(), "v".into())]).is_none());
        assert!(Attributes::parse(&mut c, "a", [("k".repeat(65), "v".into())]).is_none());
        assert!(Attributes::parse(&mut c, "a", [("k".into(), "v".repeat(257))]).is_none());
        assert!(Attributes::parse(&mut c, "a", [("k".repeat(64), "v".repeat(256))]).is_some());
    }

    #[test]
    fn attributes_survive_a_json_round_trip() {
        let mut c = checker();
        let a = Attributes::parse(&mut c, "a", [("plan".into(), "pro".into())]).unwrap();
        assert_eq!(Attributes::from_json(&a.to_json()), a);
    }
}

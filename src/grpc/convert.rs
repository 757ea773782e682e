//! Parses proto records into validated domain records, naming every bad field, and maps
//! domain values back to proto.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::{
    domain::{
        Attributes, Checker, Customer, Interaction, Limits, ScoreScale, SurveyKind, SurveyResponse,
        WriteOutcome,
    },
    error::{Error, Violation},
    proto as pb,
};

/// A proto timestamp as a UTC time; None when it is out of range or malformed.
pub fn from_timestamp(ts: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    DateTime::from_timestamp(ts.seconds, nanos)
}

pub fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        // Always within 0..1e9 for a chrono time, so it fits an i32.
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn required_time(c: &mut Checker, field: &str, ts: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    match ts {
        None => c.time(field, None),
        Some(ts) => match from_timestamp(ts) {
            Some(t) => c.time(field, Some(t)),
            None => {
                c.unrepresentable_time(field);
                None
            }
        },
    }
}

/// An optional time; invalid values are recorded as violations (and yield None).
fn optional_time(c: &mut Checker, field: &str, ts: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(|ts| required_time(c, field, Some(ts)))
}

/// The source version; absent means the epoch, so any versioned write replaces it.
fn update_time(c: &mut Checker, ts: Option<&Timestamp>) -> DateTime<Utc> {
    optional_time(c, "update_time", ts).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// A required survey kind; UNSPECIFIED and unknown values are violations of `kind`.
pub(super) fn kind(c: &mut Checker, raw: i32) -> Option<SurveyKind> {
    match pb::SurveyKind::try_from(raw) {
        Ok(pb::SurveyKind::Nps) => Some(SurveyKind::Nps),
        Ok(pb::SurveyKind::Csat) => Some(SurveyKind::Csat),
        Ok(pb::SurveyKind::Ces) => Some(SurveyKind::Ces),
        _ => {
            c.violation(
                "kind",
                "must be SURVEY_KIND_NPS, SURVEY_KIND_CSAT or SURVEY_KIND_CES",
            );
            None
        }
    }
}

/// Parses one survey response; violations name fields relative to the record.
pub fn survey_response(
    pb: pb::SurveyResponse,
    now: DateTime<Utc>,
) -> Result<SurveyResponse, Vec<Violation>> {
    let mut c = Checker::new(now);
    let response_id = c.id("response_id", &pb.response_id);
    let survey_id = c.id("survey_id", &pb.survey_id);
    let kind = kind(&mut c, pb.kind);
    let raw_scale = pb.scale.map(|s| (s.min, s.max));
    let scale = kind.and_then(|k| ScoreScale::resolve(&mut c, "scale", k, raw_scale));
    let score = scale.and_then(|s| s.score(&mut c, "score", pb.score));
    let customer_id = c.id("customer_id", &pb.customer_id);
    let interaction_id = c.optional_id("interaction_id", &pb.interaction_id);
    let channel = c.optional_id("channel", &pb.channel);
    let respond_time = required_time(&mut c, "respond_time", pb.respond_time.as_ref());
    let comment = c.optional_text("comment", &pb.comment, Limits::COMMENT_MAX_CHARS);
    let attributes = Attributes::parse(&mut c, "attributes", pb.attributes);
    let update_time = update_time(&mut c, pb.update_time.as_ref());
    c.finish(|| {
        Some(SurveyResponse {
            response_id: response_id?,
            survey_id: survey_id?,
            kind: kind?,
            score: score?,
            customer_id: customer_id?,
            interaction_id,
            channel,
            respond_time: respond_time?,
            comment,
            attributes: attributes?,
            update_time,
        })
    })
}

/// Parses one interaction.
pub fn interaction(pb: pb::Interaction, now: DateTime<Utc>) -> Result<Interaction, Vec<Violation>> {
    let mut c = Checker::new(now);
    let interaction_id = c.id("interaction_id", &pb.interaction_id);
    let customer_id = c.id("customer_id", &pb.customer_id);
    let channel = c.optional_id("channel", &pb.channel);
    let agent_id = c.optional_id("agent_id", &pb.agent_id);
    let team_id = c.optional_id("team_id", &pb.team_id);
    let open_time = required_time(&mut c, "open_time", pb.open_time.as_ref());
    let first_response_time = optional_time(
        &mut c,
        "first_response_time",
        pb.first_response_time.as_ref(),
    );
    let resolve_time = optional_time(&mut c, "resolve_time", pb.resolve_time.as_ref());
    c.not_before(
        "first_response_time",
        first_response_time,
        "open_time",
        open_time,
    );
    c.not_before("resolve_time", resolve_time, "open_time", open_time);
    let attributes = Attributes::parse(&mut c, "attributes", pb.attributes);
    let update_time = update_time(&mut c, pb.update_time.as_ref());
    c.finish(|| {
        Some(Interaction {
            interaction_id: interaction_id?,
            customer_id: customer_id?,
            channel,
            agent_id,
            team_id,
            open_time: open_time?,
            first_response_time,
            resolve_time,
            attributes: attributes?,
            update_time,
        })
    })
}

/// Parses one customer.
pub fn customer(pb: pb::Customer, now: DateTime<Utc>) -> Result<Customer, Vec<Violation>> {
    let mut c = Checker::new(now);
    let customer_id = c.id("customer_id", &pb.customer_id);
    let acquire_time = required_time(&mut c, "acquire_time", pb.acquire_time.as_ref());
    let churn_time = optional_time(&mut c, "churn_time", pb.churn_time.as_ref());
    c.not_before("churn_time", churn_time, "acquire_time", acquire_time);
    let attributes = Attributes::parse(&mut c, "attributes", pb.attributes);
    let update_time = update_time(&mut c, pb.update_time.as_ref());
    c.finish(|| {
        Some(Customer {
            customer_id: customer_id?,
            acquire_time: acquire_time?,
            churn_time,
            attributes: attributes?,
            update_time,
        })
    })
}

/// Puts a record's violations under its path in the request (`survey_responses[3]`).
pub fn under(violations: Vec<Violation>, parent: &str) -> Error {
    Error::InvalidArgument(violations.into_iter().map(|v| v.under(parent)).collect())
}

/// A required message field that the request left out.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid(field, "is required"))
}

pub fn outcome(outcome: WriteOutcome) -> pb::WriteOutcome {
    match outcome {
        WriteOutcome::Created => pb::WriteOutcome::Created,
        WriteOutcome::Updated => pb::WriteOutcome::Updated,
        WriteOutcome::Unchanged => pb::WriteOutcome::Unchanged,
    }
}

fn kind_to_pb(kind: SurveyKind) -> pb::SurveyKind {
    match kind {
        SurveyKind::Nps => pb::SurveyKind::Nps,
        SurveyKind::Csat => pb::SurveyKind::Csat,
        SurveyKind::Ces => pb::SurveyKind::Ces,
    }
}

/// Parses an optional kind filter: UNSPECIFIED means every kind.
pub fn kind_filter(raw: i32) -> Result<Option<SurveyKind>, Error> {
    match pb::SurveyKind::try_from(raw) {
        Ok(pb::SurveyKind::Unspecified) => Ok(None),
        Ok(pb::SurveyKind::Nps) => Ok(Some(SurveyKind::Nps)),
        Ok(pb::SurveyKind::Csat) => Ok(Some(SurveyKind::Csat)),
        Ok(pb::SurveyKind::Ces) => Ok(Some(SurveyKind::Ces)),
        Err(_) => Err(Error::invalid("kind", format!("unknown survey kind {raw}"))),
    }
}

pub fn survey_response_to_pb(r: SurveyResponse) -> pb::SurveyResponse {
    pb::SurveyResponse {
        response_id: r.response_id,
        survey_id: r.survey_id,
        kind: kind_to_pb(r.kind) as i32,
        score: i32::from(r.score.value()),
        scale: Some(pb::ScoreScale {
            min: i32::from(r.score.scale().min),
            max: i32::from(r.score.scale().max),
        }),
        customer_id: r.customer_id,
        interaction_id: r.interaction_id.unwrap_or_default(),
        channel: r.channel.unwrap_or_default(),
        respond_time: Some(to_timestamp(r.respond_time)),
        comment: r.comment.unwrap_or_default(),
        attributes: r.attributes.into_map().into_iter().collect(),
        update_time: Some(to_timestamp(r.update_time)),
    }
}

pub fn interaction_to_pb(i: Interaction) -> pb::Interaction {
    pb::Interaction {
        interaction_id: i.interaction_id,
        customer_id: i.customer_id,
        channel: i.channel.unwrap_or_default(),
        agent_id: i.agent_id.unwrap_or_default(),
        team_id: i.team_id.unwrap_or_default(),
        open_time: Some(to_timestamp(i.open_time)),
        first_response_time: i.first_response_time.map(to_timestamp),
        resolve_time: i.resolve_time.map(to_timestamp),
        attributes: i.attributes.into_map().into_iter().collect(),
        update_time: Some(to_timestamp(i.update_time)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_response() -> pb::SurveyResponse {
        pb::SurveyResponse {
            response_id: "r1".into(),
            survey_id: "s1".into(),
            kind: pb::SurveyKind::Csat as i32,
            score: 4,
            customer_id: "c1".into(),
            respond_time: Some(to_timestamp(Utc::now())),
            ..Default::default()
        }
    }

    fn fields(result: Result<impl std::fmt::Debug, Vec<Violation>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_valid_csat_response_gets_the_default_scale_and_epoch_version() {
        let r = survey_response(valid_response(), Utc::now()).unwrap();
        assert_eq!((r.score.scale().min, r.score.scale().max), (1, 5));
        assert_eq!(r.update_time, DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(r.channel, None);
    }

    #[test]
    fn every_bad_field_of_a_response_is_named() {
        let pb = pb::SurveyResponse {
            response_id: String::new(),
            kind: pb::SurveyKind::Unspecified as i32,
            comment: "x".repeat(10_001),
            respond_time: None,
            ..valid_response()
        };
        assert_eq!(
            fields(survey_response(pb, Utc::now())),
            ["response_id", "kind", "respond_time", "comment"]
        );
    }

    #[test]
    fn a_first_response_before_the_open_time_is_rejected() {
        let now = Utc::now();
        let pb = pb::Interaction {
            interaction_id: "i1".into(),
            customer_id: "c1".into(),
            open_time: Some(to_timestamp(now)),
            first_response_time: Some(to_timestamp(now - chrono::Duration::seconds(1))),
            resolve_time: Some(to_timestamp(now)),
            ..Default::default()
        };
        assert_eq!(fields(interaction(pb, now)), ["first_response_time"]);
    }

    #[test]
    fn a_churn_before_the_acquisition_is_rejected() {
        let now = Utc::now();
        let pb = pb::Customer {
            customer_id: "c1".into(),
            acquire_time: Some(to_timestamp(now)),
            churn_time: Some(to_timestamp(now - chrono::Duration::days(1))),
            ..Default::default()
        };
        assert_eq!(fields(customer(pb, now)), ["churn_time"]);
    }

    #[test]
    fn a_timestamp_with_negative_nanos_is_not_a_time() {
        assert!(
            from_timestamp(&Timestamp {
                seconds: 0,
                nanos: -1
            })
            .is_none()
        );
        let t = Utc::now();
        assert_eq!(from_timestamp(&to_timestamp(t)), Some(t));
    }
}

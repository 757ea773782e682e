//! Errors as RFC 9457 problem details (`application/problem+json`): the status follows the
//! error's transport-neutral code, `errors` lists the same field violations gRPC sends as
//! BadRequest details (named by their HTTP parameter), and a shed read carries
//! `Retry-After`.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    domain::KEY_PREFIX,
    error::{Error, ErrorCode, Reply},
};

pub const PROBLEM_TYPE: &str = "application/problem+json";

/// The HTTP parameter the application layer means by a request field path.
fn parameter(field: &str) -> String {
    let field = field.strip_prefix("query.").unwrap_or(field);
    match field {
        "filter.survey_ids" => "survey_id".into(),
        "filter.channels" => "channel".into(),
        "filter.agent_ids" => "agent_id".into(),
        "filter.team_ids" => "team_id".into(),
        "time_range" => "end".into(),
        other => other.to_owned(),
    }
}

fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
        ErrorCode::NotFound => "NOT_FOUND",
        ErrorCode::Unauthenticated => "UNAUTHENTICATED",
        ErrorCode::PermissionDenied => "PERMISSION_DENIED",
        ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
        ErrorCode::Unavailable => "UNAVAILABLE",
        ErrorCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
        ErrorCode::Internal => "INTERNAL",
    }
}

/// `text` with anything that looks like an API key cut to its prefix: a key sent in the
/// wrong parameter (or as a parameter name) is never repeated in a reply.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY_PREFIX) {
        out.push_str(&rest[..at + KEY_PREFIX.len()]);
        out.push('…');
        let tail = &rest[at + KEY_PREFIX.len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The problem response of `error`.
pub fn problem(error: Error) -> Response {
    let mut reply = Reply::from(error);
    reply.message = redact(&reply.message);
    for v in &mut reply.violations {
        v.field = redact(&v.field);
        v.description = redact(&v.description);
    }
    let status = reply.code.http_status();
    let named: Vec<(String, &str)> = reply
        .violations
        .iter()
        .map(|v| (parameter(&v.field), v.description.as_str()))
        .collect();
    let detail = if named.is_empty() {
        reply.message.clone()
    } else {
        let lines: Vec<String> = named.iter().map(|(f, d)| format!("{f}: {d}")).collect();
        lines.join("; ")
    };
    let errors: Vec<_> = named
        .iter()
        .map(|(field, description)| json!({"field": field, "description": description}))
        .collect();
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code_name(reply.code),
        "detail": detail,
        "errors": errors,
    });
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_TYPE))],
        body.to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Some(delay) = reply.retry_after {
        // Whole seconds, rounded up so a client never comes back too early.
        let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// 404 for a path no route serves.
pub fn no_route() -> Response {
    problem(Error::NotFound(
        "no such endpoint; see /openapi.json".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_a_reply_is_cut_to_its_prefix() {
        assert_eq!(
            redact("\"cxm_0a1b_c2d3\" is not a date; cxm_ff"),
            "\"cxm_…\" is not a date; cxm_…"
        );
        assert_eq!(redact("plain text"), "plain text");
    }

    #[test]
    fn application_field_paths_become_parameter_names() {
        assert_eq!(parameter("query.group_by"), "group_by");
        assert_eq!(parameter("filter.survey_ids"), "survey_id");
        assert_eq!(parameter("page_token"), "page_token");
    }
}

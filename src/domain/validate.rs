//! The limits every write checks, and a small collector that gathers every bad field of a
//! record so that one reply names them all.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::error::Violation;

/// The limits of design section 1.
pub struct Limits;

impl Limits {
    pub const ID_MAX_CHARS: usize = 128;
    pub const MAX_ATTRIBUTES: usize = 32;
    pub const ATTRIBUTE_KEY_MAX_CHARS: usize = 64;
    pub const ATTRIBUTE_VALUE_MAX_CHARS: usize = 256;
    pub const COMMENT_MAX_CHARS: usize = 10_000;
    /// Records in one batch RPC.
    pub const MAX_BATCH: usize = 1_000;

    /// The earliest timestamp a record may carry.
    pub fn earliest_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The latest timestamp a record may carry: one day after `now`.
    pub fn latest_time(now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::days(1)
    }
}

/// The most characters of a caller's text that an error message repeats.
const EXCERPT_CHARS: usize = 64;

/// `text` as an error message may quote it: at most 64 characters, then "…", so that a
/// 16 MiB field never comes back in the reply.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Collects the violations of one record, field by field, up to `MAX_VIOLATIONS`; the rest
/// are counted and summed up in one last violation.
pub struct Checker {
    now: DateTime<Utc>,
    violations: Vec<Violation>,
    dropped: usize,
}

/// The most violations one reply lists. They travel twice in the status trailers (the
/// message and the BadRequest details), which gRPC clients cap at 8 to 16 KiB in all.
pub const MAX_VIOLATIONS: usize = 20;

impl Checker {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            violations: Vec::new(),
            dropped: 0,
        }
    }

    pub fn violation(&mut self, field: &str, description: impl Into<String>) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation::new(field, description));
        } else {
            self.dropped += 1;
        }
    }

    /// Whether the violations listed have reached `MAX_VIOLATIONS`: checking further
    /// entries of a long list can only add to the count.
    pub fn is_full(&self) -> bool {
        self.violations.len() >= MAX_VIOLATIONS
    }

    /// A text that must be free of NUL characters (PostgreSQL text cannot hold them).
    fn text_ok(&mut self, field: &str, value: &str) -> bool {
        if value.contains('\0') {
            self.violation(field, "must not contain NUL characters");
            return false;
        }
        true
    }

    /// A required id: 1..128 characters.
    pub fn id(&mut self, field: &str, value: &str) -> Option<String> {
        let chars = value.chars().count();
        if chars == 0 {
            self.violation(field, "is required");
            None
        } else if chars > Limits::ID_MAX_CHARS {
            self.violation(
                field,
                format!("must be at most {} characters", Limits::ID_MAX_CHARS),
            );
            None
        } else if self.text_ok(field, value) {
            Some(value.to_owned())
        } else {
            None
        }
    }

    /// An optional id: empty means absent, otherwise 1..128 characters.
    pub fn optional_id(&mut self, field: &str, value: &str) -> Option<String> {
        if value.is_empty() {
            None
        } else {
            self.id(field, value)
        }
    }

    /// An optional free text of at most `max` characters; empty means absent.
    pub fn optional_text(&mut self, field: &str, value: &str, max: usize) -> Option<String> {
        if value.is_empty() {
            return None;
        }
        if value.chars().count() > max {
            self.violation(field, format!("must be at most {max} characters"));
            return None;
        }
        self.text_ok(field, value).then(|| value.to_owned())
    }

    /// A required timestamp between 2000-01-01 and now + 1 day.
    pub fn time(&mut self, field: &str, value: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match value {
            None => {
                self.violation(field, "is required");
                None
            }
            Some(t) => self.optional_time(field, Some(t)),
        }
    }

    /// An optional timestamp; when present, between 2000-01-01 and now + 1 day.
    pub fn optional_time(
        &mut self,
        field: &str,
        value: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let t = value?;
        if t < Limits::earliest_time() {
            self.violation(field, "must not be before 2000-01-01T00:00:00Z");
            None
        } else if t > Limits::latest_time(self.now) {
            self.violation(field, "must not be more than one day in the future");
            None
        } else {
            Some(t)
        }
    }

    /// A timestamp the proto could not even represent as a date (seconds or nanos out of range).
    pub fn unrepresentable_time(&mut self, field: &str) {
        self.violation(field, "is not a valid timestamp");
    }

    /// `later` must not be before `earlier`.
    pub fn not_before(
        &mut self,
        field: &str,
        later: Option<DateTime<Utc>>,
        earlier_field: &str,
        earlier: Option<DateTime<Utc>>,
    ) {
        if let (Some(later), Some(earlier)) = (later, earlier)
            && later < earlier
        {
            self.violation(field, format!("must not be before {earlier_field}"));
        }
    }

    /// Finishes the record: `Ok(value)` when no field was bad.
    pub fn finish<T>(mut self, value: impl FnOnce() -> Option<T>) -> Result<T, Vec<Violation>> {
        if self.violations.is_empty() {
            // Every checked field returned Some when no violation was recorded.
            value().ok_or_else(|| vec![Violation::new("", "is invalid")])
        } else {
            if self.is_full() {
                let more = match self.dropped {
                    0 => String::new(),
                    n => format!(" ({n} more found)"),
                };
                self.violations.push(Violation::new(
                    "",
                    format!(
                        "at most {MAX_VIOLATIONS} violations are listed{more}; fix these to \
                         see any others"
                    ),
                ));
            }
            Err(self.violations)
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_of_129_characters_is_rejected_and_128_accepted() {
        let mut c = Checker::new(Utc::now());
        assert!(c.id("a", &"x".repeat(128)).is_some());
        assert!(c.id("b", &"x".repeat(129)).is_none());
        assert_eq!(c.violations.len(), 1);
        assert_eq!(c.violations[0].field, "b");
    }

    #[test]
    fn ids_count_characters_not_bytes() {
        let mut c = Checker::new(Utc::now());
        assert!(c.id("a", &"é".repeat(128)).is_some());
    }

    #[test]
    fn timestamps_outside_2000_to_tomorrow_are_rejected() {
        let now = Utc::now();
        let mut c = Checker::new(now);
        assert!(c.time("a", Some(Limits::earliest_time())).is_some());
        assert!(
            c.time("b", Some(Limits::earliest_time() - Duration::seconds(1)))
                .is_none()
        );
        assert!(c.time("c", Some(now + Duration::hours(23))).is_some());
        assert!(c.time("d", Some(now + Duration::hours(25))).is_none());
        assert!(c.time("e", None).is_none());
        let fields: Vec<_> = c.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["b", "d", "e"]);
    }

    #[test]
    fn violations_past_the_cap_are_counted_not_listed() {
        let mut c = Checker::new(Utc::now());
        for i in 0..MAX_VIOLATIONS + 5 {
            c.violation(&format!("f{i}"), "bad");
        }
        assert!(c.is_full());
        let violations = c.finish(|| Some(())).unwrap_err();
        assert_eq!(violations.len(), MAX_VIOLATIONS + 1);
        assert!(
            violations[MAX_VIOLATIONS]
                .description
                .contains("at most 20 violations are listed (5 more found)"),
            "{:?}",
            violations[MAX_VIOLATIONS]
        );
    }

    #[test]
    fn an_excerpt_is_at_most_64_characters_and_an_ellipsis() {
        assert_eq!(excerpt("Europe/Berlin"), "Europe/Berlin");
        let long = "é".repeat(10_000);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 65);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(&"x".repeat(64)), "x".repeat(64));
    }

    #[test]
    fn a_nul_character_is_rejected() {
        let mut c = Checker::new(Utc::now());
        assert!(c.id("a", "x\0y").is_none());
    }
}

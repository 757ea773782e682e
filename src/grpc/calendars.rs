//! `cxmetrics.v1.CalendarService`: business-hours calendars that GetResponseTimes measures
//! durations in. Upsert and delete need the write scope, get and list the read scope.

use chrono::{NaiveDate, Utc};
use tonic::{Request, Response, Status};

use super::{
    authorize,
    convert::{self, required, to_timestamp, under},
};
use crate::{
    app::{Authenticator, Calendars, paging},
    domain::{
        Checker, Scope,
        calendar::{BusinessHours, Calendar, IntervalSet},
        parse,
    },
    error::{Error, Violation},
    proto::{self as pb, calendar_service_server::CalendarService},
    storage::StoredCalendar,
};

/// Open intervals one calendar may hold.
pub const MAX_WEEKLY_HOURS: usize = 200;
/// Holidays one calendar may hold (decades of public holidays).
pub const MAX_HOLIDAYS: usize = 2_000;

pub struct CalendarApi {
    auth: Authenticator,
    calendars: Calendars,
}

impl CalendarApi {
    pub fn new(auth: Authenticator, calendars: Calendars) -> Self {
        Self { auth, calendars }
    }
}

/// A required calendar id of a get or delete request.
fn calendar_id(raw: &str) -> Result<String, Error> {
    let mut c = Checker::new(Utc::now());
    let id = c.id("calendar_id", raw);
    c.finish(|| id).map_err(Error::InvalidArgument)
}

/// "HH:MM" in 00:00..23:59, or "24:00" where the end of the day is allowed, as minutes.
fn minutes(c: &mut Checker, field: &str, raw: &str, end_of_day: bool) -> Option<u16> {
    let parsed = raw
        .split_once(':')
        .filter(|(h, m)| h.len() == 2 && m.len() == 2)
        .and_then(|(h, m)| Some((h.parse::<u16>().ok()?, m.parse::<u16>().ok()?)))
        .filter(|(h, m)| *h < 24 && *m < 60 || end_of_day && *h == 24 && *m == 0)
        .map(|(h, m)| h * 60 + m);
    if parsed.is_none() {
        let range = if end_of_day {
            "00:00..24:00"
        } else {
            "00:00..23:59"
        };
        c.violation(field, format!("must be a time \"HH:MM\" in {range}"));
    }
    parsed
}

fn business_hours(c: &mut Checker, i: usize, raw: &pb::BusinessHours) -> Option<BusinessHours> {
    let field = format!("weekly_hours[{i}]");
    let day = u8::try_from(raw.day_of_week)
        .ok()
        .filter(|d| (1..=7).contains(d));
    if day.is_none() {
        c.violation(
            &format!("{field}.day_of_week"),
            "must be 1 (Monday) to 7 (Sunday)",
        );
    }
    let start = minutes(c, &format!("{field}.start"), &raw.start, false);
    let end = minutes(c, &format!("{field}.end"), &raw.end, true);
    let (start, end) = (start?, end?);
    if start >= end {
        c.violation(&format!("{field}.end"), "must be after start");
        return None;
    }
    // Day 1..=7 and start < end <= 24:00 are checked above.
    BusinessHours::new(day?, start, end)
}

/// Parses a calendar, naming every bad field.
pub fn calendar(raw: pb::Calendar) -> Result<Calendar, Vec<Violation>> {
    let mut c = Checker::new(Utc::now());
    let calendar_id = c.id("calendar_id", &raw.calendar_id);
    let time_zone = if raw.time_zone.is_empty() {
        c.violation("time_zone", "is required");
        None
    } else {
        parse::time_zone(&mut c, "time_zone", &raw.time_zone)
    };
    // Over-long lists are refused whole, before any entry is looked at; within the limits,
    // parsing stops once the checker holds as many violations as a reply lists.
    // The intervals that parse and overlap no earlier one.
    let mut intervals = IntervalSet::default();
    let mut weekly_hours = Vec::new();
    if raw.weekly_hours.is_empty() || raw.weekly_hours.len() > MAX_WEEKLY_HOURS {
        c.violation(
            "weekly_hours",
            format!("must hold 1 to {MAX_WEEKLY_HOURS} intervals"),
        );
    } else {
        for (i, raw) in raw.weekly_hours.iter().enumerate() {
            if c.is_full() {
                break;
            }
            let Some(hours) = business_hours(&mut c, i, raw) else {
                continue;
            };
            match intervals.admit(i, hours) {
                Ok(()) => weekly_hours.push(hours),
                Err(j) => c.violation(
                    &format!("weekly_hours[{i}]"),
                    format!("overlaps weekly_hours[{j}] on the same day"),
                ),
            }
        }
    }
    let mut holidays = std::collections::BTreeSet::new();
    if raw.holidays.len() > MAX_HOLIDAYS {
        c.violation(
            "holidays",
            format!("must hold at most {MAX_HOLIDAYS} dates"),
        );
    } else {
        for (i, raw) in raw.holidays.iter().enumerate() {
            if c.is_full() {
                break;
            }
            match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(date) if raw.len() == 10 => {
                    holidays.insert(date);
                }
                _ => c.violation(&format!("holidays[{i}]"), "must be a date \"YYYY-MM-DD\""),
            }
        }
    }
    // With no violation the intervals overlap nowhere, so the calendar is made.
    c.finish(|| Calendar::new(calendar_id?, time_zone?, weekly_hours, holidays).ok())
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn to_pb(stored: StoredCalendar) -> pb::Calendar {
    let StoredCalendar {
        calendar,
        update_time,
    } = stored;
    pb::Calendar {
        calendar_id: calendar.calendar_id().to_owned(),
        time_zone: calendar.time_zone().name().to_owned(),
        weekly_hours: calendar
            .weekly_hours()
            .iter()
            .map(|h| pb::BusinessHours {
                day_of_week: i32::from(h.day_of_week()),
                start: hhmm(h.start()),
                end: hhmm(h.end()),
            })
            .collect(),
        holidays: calendar
            .holidays()
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect(),
        update_time: Some(to_timestamp(update_time)),
    }
}

#[tonic::async_trait]
impl CalendarService for CalendarApi {
    async fn upsert_calendar(
        &self,
        request: Request<pb::UpsertCalendarRequest>,
    ) -> Result<Response<pb::UpsertCalendarResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let raw = required(request.into_inner().calendar, "calendar")?;
        let parsed = calendar(raw).map_err(|v| under(v, "calendar"))?;
        let upserted = self.calendars.upsert(&caller, &parsed).await?;
        Ok(Response::new(pb::UpsertCalendarResponse {
            outcome: convert::outcome(upserted.outcome) as i32,
            calendar: Some(to_pb(upserted.stored)),
        }))
    }

    async fn get_calendar(
        &self,
        request: Request<pb::GetCalendarRequest>,
    ) -> Result<Response<pb::Calendar>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let id = calendar_id(&request.get_ref().calendar_id)?;
        let stored = self.calendars.get(&caller, &id).await?;
        Ok(Response::new(to_pb(stored)))
    }

    async fn list_calendars(
        &self,
        request: Request<pb::ListCalendarsRequest>,
    ) -> Result<Response<pb::ListCalendarsResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Read).await?;
        let request = request.into_inner();
        let page_size = paging::page_size(request.page_size)?;
        let page = self
            .calendars
            .list(&caller, page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListCalendarsResponse {
            calendars: page.items.into_iter().map(to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_calendar(
        &self,
        request: Request<pb::DeleteCalendarRequest>,
    ) -> Result<Response<pb::DeleteCalendarResponse>, Status> {
        let caller = authorize(&self.auth, &request, Scope::Write).await?;
        let id = calendar_id(&request.get_ref().calendar_id)?;
        let deleted = self.calendars.delete(&caller, &id).await?;
        Ok(Response::new(pb::DeleteCalendarResponse { deleted }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(day: i32, start: &str, end: &str) -> pb::BusinessHours {
        pb::BusinessHours {
            day_of_week: day,
            start: start.into(),
            end: end.into(),
        }
    }

    fn raw(weekly_hours: Vec<pb::BusinessHours>, holidays: &[&str]) -> pb::Calendar {
        pb::Calendar {
            calendar_id: "support".into(),
            time_zone: "Europe/Berlin".into(),
            weekly_hours,
            holidays: holidays.iter().map(|h| h.to_string()).collect(),
            update_time: None,
        }
    }

    fn fields(result: Result<Calendar, Vec<Violation>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn an_over_long_calendar_is_refused_whole_with_one_violation_per_list() {
        let many = vec![hours(1, "09:00", "10:00"); 400_000];
        let dates: Vec<String> = (0..400_000).map(|_| "not a date".to_owned()).collect();
        let mut huge = raw(many, &[]);
        huge.holidays = dates;
        let started = std::time::Instant::now();
        assert_eq!(fields(calendar(huge)), ["weekly_hours", "holidays"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn bad_entries_within_the_limits_stop_at_the_violation_cap() {
        let bad = vec![hours(9, "25:00", "26:00"); MAX_WEEKLY_HOURS];
        let violations = calendar(raw(bad, &[])).unwrap_err();
        assert_eq!(violations.len(), crate::domain::MAX_VIOLATIONS + 1);
        assert!(
            violations
                .last()
                .unwrap()
                .description
                .starts_with("at most")
        );
    }

    #[test]
    fn a_valid_calendar_is_sorted_and_holidays_deduplicated() {
        let parsed = calendar(raw(
            vec![
                hours(2, "13:00", "18:00"),
                hours(2, "09:00", "13:00"),
                hours(1, "00:00", "24:00"),
            ],
            &["2026-12-25", "2026-01-01", "2026-12-25"],
        ))
        .unwrap();
        let starts: Vec<_> = parsed
            .weekly_hours()
            .iter()
            .map(|h| (h.day_of_week(), h.start(), h.end()))
            .collect();
        assert_eq!(starts, [(1, 0, 1440), (2, 540, 780), (2, 780, 1080)]);
        assert_eq!(parsed.holidays().len(), 2);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = raw(
            vec![
                hours(0, "09:00", "17:00"),
                hours(1, "9:00", "17:00"),
                hours(1, "10:00", "24:01"),
                hours(1, "18:00", "08:00"),
                hours(1, "24:00", "24:00"),
                hours(3, "09:00", "12:00"),
                hours(3, "11:59", "13:00"),
            ],
            &["2026-02-30", "2026-1-5"],
        );
        bad.calendar_id = String::new();
        bad.time_zone = "Mars/Olympus".into();
        assert_eq!(
            fields(calendar(bad)),
            [
                "calendar_id",
                "time_zone",
                "weekly_hours[0].day_of_week",
                "weekly_hours[1].start",
                "weekly_hours[2].end",
                "weekly_hours[3].end",
                "weekly_hours[4].start",
                "weekly_hours[6]",
                "holidays[0]",
                "holidays[1]",
            ]
        );
    }

    #[test]
    fn a_calendar_needs_hours_and_a_zone() {
        let mut bad = raw(vec![], &[]);
        bad.time_zone = String::new();
        assert_eq!(fields(calendar(bad)), ["time_zone", "weekly_hours"]);
    }

    #[test]
    fn times_print_back_as_they_were_given() {
        assert_eq!(hhmm(0), "00:00");
        assert_eq!(hhmm(9 * 60 + 5), "09:05");
        assert_eq!(hhmm(1440), "24:00");
    }
}

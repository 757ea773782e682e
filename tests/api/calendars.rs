//! Business-hours calendars: CRUD, validation, scopes and tenants, and response times in
//! business seconds checked against a minute-by-minute walk written here.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use cxmetrics::proto as pb;
use proptest::prelude::*;
use tonic::Code;

use crate::{helpers::*, interaction_reference::check_durations};

fn calendars(app: &TestApp, key: &str) -> Calendars {
    app.calendars_with(key)
}

fn metrics(app: &TestApp, key: &str) -> Metrics {
    app.metrics_with(key)
}

fn hours(day: i32, start: &str, end: &str) -> pb::BusinessHours {
    pb::BusinessHours {
        day_of_week: day,
        start: start.into(),
        end: end.into(),
    }
}

fn weekdays(id: &str, zone: &str, start: &str, end: &str) -> pb::Calendar {
    pb::Calendar {
        calendar_id: id.into(),
        time_zone: zone.into(),
        weekly_hours: (1..=5).map(|d| hours(d, start, end)).collect(),
        ..Default::default()
    }
}

async fn upsert(client: &mut Calendars, calendar: pb::Calendar) -> pb::UpsertCalendarResponse {
    client
        .upsert_calendar(pb::UpsertCalendarRequest {
            calendar: Some(calendar),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn get(client: &mut Calendars, id: &str) -> Result<pb::Calendar, tonic::Status> {
    client
        .get_calendar(pb::GetCalendarRequest {
            calendar_id: id.into(),
        })
        .await
        .map(|r| r.into_inner())
}

fn local(zone: Tz, s: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    zone.from_local_datetime(&naive)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn response_times_request(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    calendar_id: &str,
) -> pb::ResponseTimeRequest {
    pb::ResponseTimeRequest {
        query: Some(pb::MetricRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(ts(from)),
                end_time: Some(ts(to)),
            }),
            ..Default::default()
        }),
        calendar_id: calendar_id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn calendars_are_created_read_listed_replaced_and_deleted() {
    let app = spawn_app().await;
    let mut client = calendars(&app, &app.key);
    let mut support = weekdays("support", "Europe/Berlin", "09:00", "18:00");
    support.weekly_hours.push(hours(6, "10:00", "14:00"));
    support.holidays = vec![
        "2026-12-25".into(),
        "2026-01-01".into(),
        "2026-12-25".into(),
    ];
    let created = upsert(&mut client, support.clone()).await;
    assert_eq!(created.outcome, pb::WriteOutcome::Created as i32);
    let stored = created.calendar.unwrap();
    assert_eq!(stored.holidays, ["2026-01-01", "2026-12-25"]);
    assert_eq!(stored.weekly_hours.len(), 6);
    assert!(stored.update_time.is_some());
    assert_eq!(get(&mut client, "support").await.unwrap(), stored);

    // A retried upsert changes nothing, not even the update time.
    let again = upsert(&mut client, support.clone()).await;
    assert_eq!(again.outcome, pb::WriteOutcome::Unchanged as i32);
    assert_eq!(again.calendar.unwrap(), stored);

    support.weekly_hours.pop();
    let updated = upsert(&mut client, support).await;
    assert_eq!(updated.outcome, pb::WriteOutcome::Updated as i32);
    assert_eq!(
        get(&mut client, "support")
            .await
            .unwrap()
            .weekly_hours
            .len(),
        5
    );

    for id in ["billing", "alpha"] {
        upsert(&mut client, weekdays(id, "UTC", "08:00", "16:00")).await;
    }
    let first = client
        .list_calendars(pb::ListCalendarsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids = |page: &pb::ListCalendarsResponse| -> Vec<String> {
        page.calendars
            .iter()
            .map(|c| c.calendar_id.clone())
            .collect()
    };
    assert_eq!(ids(&first), ["alpha", "billing"]);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_calendars(pb::ListCalendarsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&second), ["support"]);
    assert!(second.next_page_token.is_empty());

    let delete = |id: &str| pb::DeleteCalendarRequest {
        calendar_id: id.into(),
    };
    assert!(
        client
            .delete_calendar(delete("billing"))
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
    assert!(
        !client
            .delete_calendar(delete("billing"))
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
    let status = get(&mut client, "billing").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("calendar_id"), "{status:?}");
}

#[tokio::test]
async fn an_invalid_calendar_names_its_fields_and_leaves_the_stored_one_alone() {
    let app = spawn_app().await;
    let mut client = calendars(&app, &app.key);
    let good = weekdays("support", "Europe/Berlin", "09:00", "18:00");
    let stored = upsert(&mut client, good.clone()).await.calendar.unwrap();
    let mut bad = good;
    bad.time_zone = "Europe/Atlantis".into();
    bad.weekly_hours = vec![
        hours(8, "09:00", "12:00"),
        hours(1, "12:00", "09:00"),
        hours(2, "09:00", "13:00"),
        hours(2, "12:30", "17:00"),
        hours(3, "9am", "25:00"),
    ];
    bad.holidays = vec!["25.12.2026".into()];
    let status = client
        .upsert_calendar(pb::UpsertCalendarRequest {
            calendar: Some(bad),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "calendar.time_zone",
            "calendar.weekly_hours[0].day_of_week",
            "calendar.weekly_hours[1].end",
            "calendar.weekly_hours[3]",
            "calendar.weekly_hours[4].start",
            "calendar.weekly_hours[4].end",
            "calendar.holidays[0]",
        ]
    );
    assert_eq!(get(&mut client, "support").await.unwrap(), stored);
    let status = client
        .upsert_calendar(pb::UpsertCalendarRequest { calendar: None })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["calendar"]);
    let status = get(&mut client, "").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["calendar_id"]);
}

#[tokio::test]
async fn calendars_need_scopes_and_stay_inside_their_tenant() {
    let app = spawn_app().await;
    upsert(
        &mut calendars(&app, &app.key),
        weekdays("support", "UTC", "09:00", "17:00"),
    )
    .await;
    let read_only = app.create_key(TENANT, "read").await;
    let status = calendars(&app, &read_only)
        .upsert_calendar(pb::UpsertCalendarRequest {
            calendar: Some(weekdays("x", "UTC", "09:00", "17:00")),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = calendars(&app, &read_only)
        .delete_calendar(pb::DeleteCalendarRequest {
            calendar_id: "support".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    get(&mut calendars(&app, &read_only), "support")
        .await
        .expect("read scope may read");
    let write_only = app.create_key(TENANT, "write").await;
    let status = get(&mut calendars(&app, &write_only), "support")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let other = app.create_key("other-tenant", "read,write").await;
    let status = get(&mut calendars(&app, &other), "support")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let listed = calendars(&app, &other)
        .list_calendars(pb::ListCalendarsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.calendars.is_empty());
    let now = Utc::now();
    let status = metrics(&app, &other)
        .get_response_times(response_times_request(
            now - Duration::days(1),
            now,
            "support",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("calendar_id"), "{status:?}");
}

#[tokio::test]
async fn friday_evening_to_monday_morning_is_ten_business_minutes_until_the_calendar_changes() {
    let app = spawn_app().await;
    let zone = Tz::Europe__Berlin;
    let mut client = calendars(&app, &app.key);
    upsert(
        &mut client,
        weekdays("office", "Europe/Berlin", "09:00", "18:00"),
    )
    .await;
    let opened = local(zone, "2026-03-06 17:55");
    let mut i = interaction("i1", "c1");
    i.open_time = Some(ts(opened));
    i.first_response_time = Some(ts(local(zone, "2026-03-09 09:05")));
    i.resolve_time = Some(ts(local(zone, "2026-03-09 12:00")));
    app.feedback()
        .upsert_interaction(pb::UpsertInteractionRequest {
            interaction: Some(i),
        })
        .await
        .unwrap();
    let request = || {
        let mut r = response_times_request(
            opened - Duration::hours(1),
            opened + Duration::hours(1),
            "office",
        );
        r.first_response_target = Some(prost_types::Duration {
            seconds: 15 * 60,
            nanos: 0,
        });
        r
    };
    let total = |report: pb::ResponseTimeReport| report.total.unwrap();
    let business = total(
        metrics(&app, &app.key)
            .get_response_times(request())
            .await
            .unwrap()
            .into_inner(),
    );
    let first = business.first_response.unwrap();
    assert_eq!(first.p50_seconds, Some(600.0));
    assert_eq!(
        business.resolution.unwrap().max_seconds,
        Some(3.0 * 3600.0 + 300.0)
    );
    assert_eq!(business.first_response_sla.unwrap().met, 1);

    // Open round the clock from now on: the same query now measures wall-clock time.
    let mut always = weekdays("office", "Europe/Berlin", "00:00", "24:00");
    always
        .weekly_hours
        .extend([hours(6, "00:00", "24:00"), hours(7, "00:00", "24:00")]);
    upsert(&mut client, always).await;
    let wall = total(
        metrics(&app, &app.key)
            .get_response_times(request())
            .await
            .unwrap()
            .into_inner(),
    );
    let wall_first = (local(zone, "2026-03-09 09:05") - opened).num_seconds() as f64;
    assert_eq!(wall.first_response.unwrap().p50_seconds, Some(wall_first));
    assert_eq!(wall.first_response_sla.unwrap().breached, 1);

    client
        .delete_calendar(pb::DeleteCalendarRequest {
            calendar_id: "office".into(),
        })
        .await
        .unwrap();
    let status = metrics(&app, &app.key)
        .get_response_times(request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn an_unanswered_interaction_waits_only_in_business_time() {
    let app = spawn_app().await;
    let mut client = calendars(&app, &app.key);
    let all_week = |id: &str, holidays: Vec<String>| pb::Calendar {
        calendar_id: id.into(),
        time_zone: "UTC".into(),
        weekly_hours: (1..=7).map(|d| hours(d, "00:00", "24:00")).collect(),
        holidays,
        ..Default::default()
    };
    upsert(&mut client, all_week("open", vec![])).await;
    // Closed from yesterday to tomorrow: nothing of the wait counts.
    let today = Utc::now().date_naive();
    let closed: Vec<String> = [today.pred_opt(), Some(today), today.succ_opt()]
        .into_iter()
        .flatten()
        .map(|d| d.to_string())
        .collect();
    upsert(&mut client, all_week("closed", closed)).await;
    let now = Utc::now();
    let mut i = interaction("waiting", "c1");
    i.open_time = Some(ts(now - Duration::hours(2)));
    i.first_response_time = None;
    app.feedback()
        .upsert_interaction(pb::UpsertInteractionRequest {
            interaction: Some(i),
        })
        .await
        .unwrap();
    for (calendar, breached) in [("open", 1), ("closed", 0)] {
        let mut request = response_times_request(
            now - Duration::days(1),
            now + Duration::minutes(1),
            calendar,
        );
        request.first_response_target = Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        });
        let total = metrics(&app, &app.key)
            .get_response_times(request)
            .await
            .unwrap()
            .into_inner()
            .total
            .unwrap();
        assert_eq!(total.unanswered, 1);
        let sla = total.first_response_sla.unwrap();
        assert_eq!((sla.met, sla.breached), (0, breached), "{calendar}");
    }
}

// ------------------------------------------------ business seconds against a minute walk

#[derive(Debug, Clone)]
struct Cal {
    zone: &'static str,
    /// (day 1..=7, start minute, end minute)
    hours: Vec<(u32, u32, u32)>,
    holidays: BTreeSet<NaiveDate>,
}

/// Whether the instant is open, straight from the definition.
fn is_open(cal: &Cal, t: DateTime<Utc>) -> bool {
    let zone: Tz = cal.zone.parse().unwrap();
    let local = t.with_timezone(&zone);
    let minute = local.hour() * 60 + local.minute();
    let day = local.weekday().number_from_monday();
    !cal.holidays.contains(&local.date_naive())
        && cal
            .hours
            .iter()
            .any(|&(d, s, e)| d == day && s <= minute && minute < e)
}

fn walk(cal: &Cal, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let mut t = from;
    let mut open = 0.0;
    while t < to {
        if is_open(cal, t) {
            open += 60.0;
        }
        t += Duration::minutes(1);
    }
    open
}

fn cal_strategy() -> impl Strategy<Value = Cal> {
    (
        prop::sample::select(vec![
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Kolkata",
        ]),
        prop::collection::vec((1u32..=7, 0u32..=48, 0u32..=48), 1..10),
        prop::collection::btree_set(0u64..10, 0..3),
    )
        .prop_map(|(zone, raw, holiday_days)| {
            let mut hours: Vec<(u32, u32, u32)> = Vec::new();
            for (d, a, b) in raw {
                let (s, e) = (a.min(b) * 30, a.max(b) * 30);
                if s < e
                    && !hours
                        .iter()
                        .any(|&(d2, s2, e2)| d2 == d && s < e2 && s2 < e)
                {
                    hours.push((d, s, e));
                }
            }
            let holidays = holiday_days
                .into_iter()
                .map(|d| base().date_naive() + chrono::Days::new(d))
                .collect();
            Cal {
                zone,
                hours,
                holidays,
            }
        })
}

/// Just before the 2026 spring DST change of Europe and North America.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap()
}

/// (open minute after base, minutes to first response, further minutes to resolution)
type Times = (i64, i64, i64);

async fn check_business_seconds(cal: Cal, times: Vec<Times>) {
    let app = &world().app;
    let tenant = format!("cal-{}", uuid::Uuid::new_v4().simple());
    let key = app.create_key(&tenant, "read,write").await;
    upsert(
        &mut calendars(app, &key),
        pb::Calendar {
            calendar_id: "cal".into(),
            time_zone: cal.zone.into(),
            weekly_hours: cal
                .hours
                .iter()
                .map(|&(d, s, e)| pb::BusinessHours {
                    day_of_week: d as i32,
                    start: format!("{:02}:{:02}", s / 60, s % 60),
                    end: format!("{:02}:{:02}", e / 60, e % 60),
                })
                .collect(),
            holidays: cal.holidays.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        },
    )
    .await;
    let at = |minute: i64| base() + Duration::minutes(minute);
    let interactions = times
        .iter()
        .enumerate()
        .map(|(n, &(open, first, resolve))| pb::Interaction {
            interaction_id: format!("i{n}"),
            customer_id: "c".into(),
            open_time: Some(ts(at(open))),
            first_response_time: Some(ts(at(open + first))),
            resolve_time: Some(ts(at(open + first + resolve))),
            ..Default::default()
        })
        .collect();
    app.feedback_with(Some(&key))
        .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest { interactions })
        .await
        .unwrap();
    let mut request = response_times_request(base(), base() + Duration::days(7), "cal");
    request.first_response_target = Some(prost_types::Duration {
        seconds: 3600,
        nanos: 0,
    });
    let total = metrics(app, &key)
        .get_response_times(request)
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    let first: Vec<f64> = times
        .iter()
        .map(|&(o, f, _)| walk(&cal, at(o), at(o + f)))
        .collect();
    let resolution: Vec<f64> = times
        .iter()
        .map(|&(o, f, r)| walk(&cal, at(o), at(o + f + r)))
        .collect();
    check_durations(total.first_response.as_ref().unwrap(), first.clone());
    check_durations(total.resolution.as_ref().unwrap(), resolution);
    let met = first.iter().filter(|s| **s <= 3600.0).count() as i64;
    let sla = total.first_response_sla.unwrap();
    assert_eq!((sla.met, sla.breached), (met, first.len() as i64 - met));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn business_second_response_times_equal_a_minute_walk(
        cal in cal_strategy(),
        times in prop::collection::vec((0..7 * 1440i64, 0..2 * 1440i64, 0..1440i64), 1..25),
    ) {
        world().runtime.block_on(check_business_seconds(cal, times));
    }
}

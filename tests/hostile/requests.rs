//! Hostile and extreme requests against the real binary: timestamps at the edges of what
//! protobuf and chrono hold, ten-year DAY ranges, a group key with 100,000 values, 100,000
//! element filter lists, 16 MiB strings and 400,000-interval calendars, fixed and random.
//! Every call must answer within its deadline with OK or a clear client error, health must
//! answer throughout, and the server's peak resident memory stays under `MAX_RSS_MB`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use cxmetrics::proto::{
    self as pb, calendar_service_client::CalendarServiceClient,
    feedback_service_client::FeedbackServiceClient, metrics_service_client::MetricsServiceClient,
};
use proptest::{prelude::*, test_runner::TestRunner};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::*;

/// The server's peak resident memory may not exceed this (it idles at about 20 MB).
const MAX_RSS_MB: u64 = 512;
/// Every hostile call must answer within this.
const CALL_DEADLINE: Duration = Duration::from_secs(20);
/// Distinct values of the `plan` attribute in the seeded data.
const DISTINCT: i64 = 100_000;
/// Strings just under the 16 MiB message limit.
const HUGE: usize = 16 * 1024 * 1024 - 4096;

struct Target {
    metrics: MetricsServiceClient<InterceptedService<Channel, Bearer>>,
    feedback: FeedbackServiceClient<InterceptedService<Channel, Bearer>>,
    calendars: CalendarServiceClient<InterceptedService<Channel, Bearer>>,
    pid: u32,
}

fn bearer(key: &str) -> Bearer {
    Bearer(Some(format!("Bearer {key}").parse().unwrap()))
}

impl Target {
    fn new(channel: Channel, key: &str, pid: u32) -> Self {
        Self {
            metrics: MetricsServiceClient::with_interceptor(channel.clone(), bearer(key))
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
            feedback: FeedbackServiceClient::with_interceptor(channel.clone(), bearer(key))
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
            calendars: CalendarServiceClient::with_interceptor(channel, bearer(key))
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
            pid,
        }
    }

    /// The server's peak resident memory so far, in MB (VmHWM).
    fn peak_rss_mb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM in /proc/PID/status");
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb / 1024
    }
}

/// A request for one of the RPCs.
#[derive(Debug, Clone)]
enum Call {
    Nps(pb::MetricRequest),
    Csat(pb::MetricRequest),
    ResponseTimes(pb::ResponseTimeRequest),
    Retention(pb::RetentionRequest),
    Cohorts(pb::CohortRetentionRequest),
    Themes(pb::CommentThemesRequest),
    ListResponses(pb::ListSurveyResponsesRequest),
    ListInteractions(pb::ListInteractionsRequest),
    Record(pb::SurveyResponse),
    Batch(Vec<pb::SurveyResponse>),
    Import(Vec<pb::ImportRecordsRequest>),
    Calendar(pb::Calendar),
    GetCalendar(String),
    Delete(String),
}

impl Call {
    async fn send(&self, t: &mut Target) -> Result<(), Status> {
        fn timed<T>(message: T) -> tonic::Request<T> {
            let mut request = tonic::Request::new(message);
            request.set_timeout(CALL_DEADLINE);
            request
        }
        match self.clone() {
            Call::Nps(r) => t.metrics.get_nps(timed(r)).await.map(drop),
            Call::Csat(r) => t.metrics.get_csat(timed(r)).await.map(drop),
            Call::ResponseTimes(r) => t.metrics.get_response_times(timed(r)).await.map(drop),
            Call::Retention(r) => t.metrics.get_retention(timed(r)).await.map(drop),
            Call::Cohorts(r) => t.metrics.get_cohort_retention(timed(r)).await.map(drop),
            Call::Themes(r) => t.metrics.get_comment_themes(timed(r)).await.map(drop),
            Call::ListResponses(r) => t.feedback.list_survey_responses(timed(r)).await.map(drop),
            Call::ListInteractions(r) => t.feedback.list_interactions(timed(r)).await.map(drop),
            Call::Record(r) => t
                .feedback
                .record_survey_response(timed(pb::RecordSurveyResponseRequest {
                    survey_response: Some(r),
                }))
                .await
                .map(drop),
            Call::Batch(records) => t
                .feedback
                .batch_record_survey_responses(timed(pb::BatchRecordSurveyResponsesRequest {
                    survey_responses: records,
                }))
                .await
                .map(drop),
            Call::Import(records) => t
                .feedback
                .import_records(timed(tokio_stream::iter(records)))
                .await
                .map(|reply| {
                    let reply = reply.into_inner();
                    assert!(reply.rejected_records.len() <= 1_000);
                    assert!(
                        reply
                            .rejected_records
                            .iter()
                            .all(|r| r.id.len() <= 1_024 && r.reason.len() <= 64 * 1024),
                        "a rejected record echoes a huge field"
                    );
                }),
            Call::Calendar(c) => t
                .calendars
                .upsert_calendar(timed(pb::UpsertCalendarRequest { calendar: Some(c) }))
                .await
                .map(drop),
            Call::GetCalendar(id) => t
                .calendars
                .get_calendar(timed(pb::GetCalendarRequest { calendar_id: id }))
                .await
                .map(drop),
            Call::Delete(id) => t
                .feedback
                .delete_customer_data(timed(pb::DeleteCustomerDataRequest { customer_id: id }))
                .await
                .map(drop),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Call::Nps(_) => "GetNps",
            Call::Csat(_) => "GetCsat",
            Call::ResponseTimes(_) => "GetResponseTimes",
            Call::Retention(_) => "GetRetention",
            Call::Cohorts(_) => "GetCohortRetention",
            Call::Themes(_) => "GetCommentThemes",
            Call::ListResponses(_) => "ListSurveyResponses",
            Call::ListInteractions(_) => "ListInteractions",
            Call::Record(_) => "RecordSurveyResponse",
            Call::Batch(_) => "BatchRecordSurveyResponses",
            Call::Import(_) => "ImportRecords",
            Call::Calendar(_) => "UpsertCalendar",
            Call::GetCalendar(_) => "GetCalendar",
            Call::Delete(_) => "DeleteCustomerData",
        }
    }
}

/// Sends `call` and checks the answer: in time, OK or a client error with a short message.
async fn check(t: &mut Target, call: &Call) -> Result<(), String> {
    let started = Instant::now();
    let answer = tokio::time::timeout(CALL_DEADLINE + Duration::from_secs(5), call.send(t))
        .await
        .map_err(|_| format!("{} did not answer within its deadline", call.name()))?;
    let elapsed = started.elapsed();
    match answer {
        Ok(()) => Ok(()),
        Err(status) => {
            // OUT_OF_RANGE is tonic's answer to a message over the size limit.
            let clear = matches!(
                status.code(),
                Code::InvalidArgument | Code::NotFound | Code::ResourceExhausted | Code::OutOfRange
            );
            if !clear {
                return Err(format!(
                    "{} answered {:?} after {elapsed:?}: {}",
                    call.name(),
                    status.code(),
                    status.message()
                ));
            }
            if status.message().len() > 64 * 1024 {
                return Err(format!(
                    "{} echoed {} bytes in its error message",
                    call.name(),
                    status.message().len()
                ));
            }
            Ok(())
        }
    }
}

fn at(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos })
}

fn range(
    start: Option<prost_types::Timestamp>,
    end: Option<prost_types::Timestamp>,
) -> Option<pb::TimeRange> {
    Some(pb::TimeRange {
        start_time: start,
        end_time: end,
    })
}

/// 2016-01-01 .. 2026-01-01: the longest range there is.
fn ten_years() -> Option<pb::TimeRange> {
    range(at(1_451_606_400, 0), at(1_767_225_600, 0))
}

fn by_plan(granularity: pb::Granularity) -> pb::MetricRequest {
    pb::MetricRequest {
        time_range: ten_years(),
        granularity: granularity as i32,
        group_by: pb::Dimension::Attribute as i32,
        group_by_attribute: "plan".into(),
        ..Default::default()
    }
}

/// The fixed extreme cases the issue names.
fn extreme_calls() -> Vec<Call> {
    let huge = "x".repeat(HUGE);
    // +262132-12-31T12:00:00Z .. +262142-12-31T12:00:00Z, the last ten years chrono holds.
    let noon = |year| {
        chrono::NaiveDate::from_ymd_opt(year, 12, 31)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    };
    let far = range(at(noon(262_132), 0), at(noon(262_142), 0));
    let day = |r: Option<pb::TimeRange>| pb::MetricRequest {
        time_range: r,
        granularity: pb::Granularity::Day as i32,
        ..Default::default()
    };
    let many: Vec<String> = (0..100_000).map(|i| format!("s{i}")).collect();
    vec![
        Call::Nps(day(far)),
        Call::Nps(day(range(at(i64::MIN, 0), at(i64::MAX, 999_999_999)))),
        Call::Nps(day(range(
            at(-62_135_596_800, 0),
            at(253_402_300_799, 999_999_999),
        ))),
        Call::Nps(day(range(at(0, -1), at(1, 1_000_000_000)))),
        Call::Nps(pb::MetricRequest {
            compare_previous: true,
            ..day(range(at(-2_208_988_800, 0), at(-1_893_456_000, 0)))
        }),
        Call::Nps(pb::MetricRequest {
            compare_previous: true,
            ..day(ten_years())
        }),
        Call::Nps(by_plan(pb::Granularity::Unspecified)),
        Call::Nps(by_plan(pb::Granularity::Day)),
        Call::Csat(by_plan(pb::Granularity::Month)),
        Call::ResponseTimes(pb::ResponseTimeRequest {
            query: Some(by_plan(pb::Granularity::Unspecified)),
            ..Default::default()
        }),
        Call::ResponseTimes(pb::ResponseTimeRequest {
            query: Some(pb::MetricRequest {
                compare_previous: true,
                ..day(ten_years())
            }),
            ..Default::default()
        }),
        Call::Retention(pb::RetentionRequest {
            time_range: ten_years(),
            granularity: pb::Granularity::Day as i32,
            group_by_nps_category: true,
            ..Default::default()
        }),
        Call::Cohorts(pb::CohortRetentionRequest {
            time_range: ten_years(),
            granularity: pb::Granularity::Day as i32,
            periods: 60,
            ..Default::default()
        }),
        Call::Cohorts(pb::CohortRetentionRequest {
            time_range: far,
            granularity: pb::Granularity::Day as i32,
            periods: 1,
            ..Default::default()
        }),
        Call::Nps(pb::MetricRequest {
            filter: Some(pb::MetricFilter {
                survey_ids: many.clone(),
                channels: many.clone(),
                ..Default::default()
            }),
            ..day(ten_years())
        }),
        Call::ListInteractions(pb::ListInteractionsRequest {
            time_range: ten_years(),
            filter: Some(pb::MetricFilter {
                agent_ids: many,
                ..Default::default()
            }),
            ..Default::default()
        }),
        Call::Nps(pb::MetricRequest {
            time_zone: huge.clone(),
            ..day(ten_years())
        }),
        Call::Nps(pb::MetricRequest {
            group_by: pb::Dimension::Attribute as i32,
            group_by_attribute: huge.clone(),
            ..day(ten_years())
        }),
        Call::Nps(pb::MetricRequest {
            filter: Some(pb::MetricFilter {
                attributes: [(huge.clone(), "v".to_owned())].into(),
                ..Default::default()
            }),
            ..day(ten_years())
        }),
        Call::ListResponses(pb::ListSurveyResponsesRequest {
            time_range: ten_years(),
            page_token: huge.clone(),
            ..Default::default()
        }),
        Call::Record(pb::SurveyResponse {
            response_id: huge[..HUGE - (1 << 20)].to_owned(),
            comment: "c".repeat(1 << 20),
            ..nps("r", "c", 5)
        }),
        // A thousand records, each with several bad fields.
        Call::Batch(vec![
            pb::SurveyResponse {
                survey_id: String::new(),
                customer_id: "z".repeat(500),
                respond_time: None,
                ..nps("r", "c", 99)
            };
            1_000
        ]),
        Call::Import(
            (0..12)
                .map(|i| pb::ImportRecordsRequest {
                    record: Some(pb::import_records_request::Record::SurveyResponse(
                        pb::SurveyResponse {
                            response_id: format!("{i}{}", "y".repeat(1 << 20)),
                            ..nps("r", "c", 99)
                        },
                    )),
                })
                .collect(),
        ),
        Call::Calendar(pb::Calendar {
            calendar_id: "big".into(),
            time_zone: "Europe/Berlin".into(),
            weekly_hours: vec![
                pb::BusinessHours {
                    day_of_week: 1,
                    start: "09:00".into(),
                    end: "10:00".into(),
                };
                400_000
            ],
            holidays: vec!["2026-01-01".into(); 400_000],
            update_time: None,
        }),
        Call::Calendar(pb::Calendar {
            calendar_id: huge[..HUGE - (1 << 20)].to_owned(),
            time_zone: huge[..1 << 20].to_owned(),
            ..Default::default()
        }),
        Call::GetCalendar(huge.clone()),
        Call::Themes(pb::CommentThemesRequest {
            query: Some(pb::MetricRequest {
                time_range: ten_years(),
                ..Default::default()
            }),
            kind: pb::SurveyKind::Nps as i32,
            max_themes: 100,
            min_mentions: Some(0),
        }),
        Call::Themes(pb::CommentThemesRequest {
            query: Some(by_plan(pb::Granularity::Unspecified)),
            kind: pb::SurveyKind::Csat as i32,
            max_themes: i32::MAX,
            min_mentions: Some(i32::MIN),
        }),
        Call::ListResponses(pb::ListSurveyResponsesRequest {
            time_range: ten_years(),
            comment_query: huge[..1 << 20].to_owned(),
            ..Default::default()
        }),
        Call::ListResponses(pb::ListSurveyResponsesRequest {
            time_range: ten_years(),
            comment_query: "the of and a".to_owned(),
            ..Default::default()
        }),
        Call::Delete(huge),
    ]
}

/// Random requests built from extreme and ordinary parts.
fn random_call() -> impl Strategy<Value = Call> {
    let seconds = prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(-62_135_596_800i64),
        Just(253_402_300_799i64),
        Just(-2_208_988_800i64),
        Just(7_258_118_400i64),
        1_451_606_400i64..1_767_225_600,
        any::<i64>(),
    ];
    let nanos = prop_oneof![
        Just(0i32),
        Just(-1),
        Just(999_999_999),
        Just(1_000_000_000),
        any::<i32>()
    ];
    let timestamp = (seconds, nanos).prop_map(|(s, n)| at(s, n));
    let zone = prop_oneof![
        Just(String::new()),
        Just("Europe/Berlin".to_owned()),
        Just("Asia/Kathmandu".to_owned()),
        Just("Australia/Lord_Howe".to_owned()),
        Just("Mars/Olympus".to_owned()),
        "\\PC{0,40}",
    ];
    let list = prop_oneof![
        Just(Vec::<String>::new()),
        Just(vec!["email".to_owned()]),
        Just(vec![String::new()]),
        (0usize..3).prop_map(|n| vec!["z".repeat(129); 1_000 + n]),
    ];
    let request = (
        (timestamp.clone(), timestamp),
        zone,
        -1i32..7,
        -1i32..7,
        prop_oneof![Just(String::new()), Just("plan".to_owned()), "\\PC{0,80}"],
        list,
        any::<bool>(),
    )
        .prop_map(
            |((s, e), time_zone, granularity, group_by, attribute, channels, previous)| {
                pb::MetricRequest {
                    time_range: range(s, e),
                    time_zone,
                    granularity,
                    filter: Some(pb::MetricFilter {
                        channels,
                        ..Default::default()
                    }),
                    group_by,
                    group_by_attribute: attribute,
                    compare_previous: previous,
                }
            },
        );
    (request, 0u8..7, -5i32..70).prop_map(|(r, which, periods)| match which {
        0 => Call::Nps(r),
        1 => Call::Csat(r),
        2 => Call::ResponseTimes(pb::ResponseTimeRequest {
            query: Some(r),
            first_response_target: Some(prost_types::Duration {
                seconds: i64::from(periods) * 60,
                nanos: 0,
            }),
            ..Default::default()
        }),
        3 => Call::Retention(pb::RetentionRequest {
            time_range: r.time_range,
            time_zone: r.time_zone,
            granularity: r.granularity,
            group_by_nps_category: r.compare_previous,
        }),
        4 => Call::Cohorts(pb::CohortRetentionRequest {
            time_range: r.time_range,
            time_zone: r.time_zone,
            granularity: r.granularity,
            periods,
        }),
        5 => Call::Themes(pb::CommentThemesRequest {
            query: Some(r),
            kind: periods % 5,
            max_themes: periods * 2 - 10,
            min_mentions: Some(periods - 3),
        }),
        _ => Call::ListResponses(pb::ListSurveyResponsesRequest {
            time_range: r.time_range,
            filter: r.filter,
            page_size: periods * 20,
            comment_query: if periods % 2 == 0 {
                "comment 7".into()
            } else {
                String::new()
            },
            ..Default::default()
        }),
    })
}

/// 100,000 responses and interactions in 2025, each with its own `plan` value; every
/// tenth response has a comment.
async fn seed(app: &TestApp) {
    let responses = "insert into survey_responses (tenant_id, response_id, survey_id, kind,
            score, scale_min, scale_max, customer_id, respond_time, comment, attributes,
            update_time)
        select $1, 'r' || g, 's' || (g % 7), 1 + g % 3, g % 6, 0, 10, 'c' || (g % 5000),
            timestamptz '2025-01-01' + g * interval '5 minutes',
            case when g % 10 = 0 then 'comment ' || (g % 97) || ' about delivery' end,
            jsonb_build_object('plan', 'p' || g), now()
        from generate_series(1, $2) g";
    let interactions = "insert into interactions (tenant_id, interaction_id, customer_id, channel,
            open_time, first_response_time, attributes, update_time)
        select $1, 'i' || g, 'c' || (g % 5000), 'email',
            timestamptz '2025-01-01' + g * interval '5 minutes',
            timestamptz '2025-01-01' + g * interval '5 minutes' + (g % 600) * interval '1 second',
            jsonb_build_object('plan', 'p' || g), now()
        from generate_series(1, $2) g";
    let customers = "insert into customers (tenant_id, customer_id, acquire_time, attributes,
            update_time)
        select $1, 'c' || g, timestamptz '2024-06-01' + g * interval '1 hour', '{}', now()
        from generate_series(0, 4999) g";
    for sql in [responses, interactions] {
        sqlx::query(sql)
            .bind(TENANT)
            .bind(DISTINCT)
            .execute(app.store.pool())
            .await
            .expect("seed");
    }
    sqlx::query(customers)
        .bind(TENANT)
        .execute(app.store.pool())
        .await
        .expect("seed customers");
}

/// Checks health every 100 ms until stopped; counts the checks that failed or took > 2 s.
fn watch_health(
    channel: Channel,
    stop: Arc<AtomicBool>,
    bad: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut health = HealthClient::new(channel);
        let mut checks = 0;
        while !stop.load(Ordering::Relaxed) {
            let answered = tokio::time::timeout(
                Duration::from_secs(2),
                health.check(HealthCheckRequest {
                    service: String::new(),
                }),
            )
            .await;
            if !matches!(answered, Ok(Ok(_))) {
                bad.fetch_add(1, Ordering::Relaxed);
            }
            checks += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        checks
    })
}

#[test]
fn hostile_requests_get_a_clear_answer_in_time_and_memory_stays_bounded() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (app, mut target, channel, child) = runtime.block_on(async {
        let app = spawn_app().await;
        seed(&app).await;
        let (child, addr) = spawn_binary(&app.database_url, &[]).await;
        let pid = child.id().expect("a running server");
        let channel = connect(&addr, None).await.unwrap();
        let target = Target::new(channel.clone(), &app.key, pid);
        (app, target, channel, child)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let bad_health = Arc::new(AtomicU64::new(0));
    let watcher = {
        let _runtime = runtime.enter();
        watch_health(channel.clone(), stop.clone(), bad_health.clone())
    };

    let mut failures = Vec::new();
    for call in extreme_calls() {
        if let Err(failure) = runtime.block_on(check(&mut target, &call)) {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let target = std::cell::RefCell::new(target);
    let result = runner.run(&random_call(), |call| {
        runtime
            .block_on(check(&mut target.borrow_mut(), &call))
            .map_err(TestCaseError::fail)
    });
    let target = target.into_inner();
    stop.store(true, Ordering::Relaxed);
    let checks = runtime.block_on(watcher).unwrap();
    let peak = target.peak_rss_mb();
    drop(child);
    drop(app);
    result.unwrap();
    assert!(checks > 0);
    assert_eq!(
        bad_health.load(Ordering::Relaxed),
        0,
        "health missed or was slow"
    );
    assert!(peak < MAX_RSS_MB, "peak resident memory {peak} MB");
    eprintln!("hostile requests: peak server RSS {peak} MB, {checks} health checks all answered");
}

//! The HTTP API on the gRPC port, over real sockets: probes, errors as problem details,
//! authentication by header or query string, and listings. The agreement of every metric
//! with its gRPC answer is in `http_agreement`.

use std::time::Duration;

use chrono::Duration as Span;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use cxmetrics::proto as pb;
use tonic_health::pb::health_check_response::ServingStatus;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// GET `path` with `key` as a bearer token; the status and the body as text.
pub async fn get(app: &TestApp, path: &str, key: Option<&str>) -> (StatusCode, String) {
    let mut request = client().get(app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The fields an error's problem details name.
fn problem_fields(body: &str) -> Vec<String> {
    let problem: Value = serde_json::from_str(body).expect("problem JSON");
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

const RANGE: &str = "start=2026-02-01&end=2026-03-01";

#[tokio::test]
async fn probes_report_liveness_and_the_readiness_grpc_health_reports() {
    let app = spawn_app().await;
    // The app is migrated before it starts: readiness follows its first successful ping,
    // which on a loaded machine can take a few health intervals.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut ready = get(&app, "/readyz", None).await.0;
    while ready != StatusCode::OK && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = get(&app, "/readyz", None).await.0;
    }
    assert_eq!(ready, StatusCode::OK);
    assert_eq!(get(&app, "/healthz", None).await.0, StatusCode::OK);

    // A server whose database is down is alive but not ready.
    let (_child, addr, _) = spawn_binary_unready("postgres://postgres@127.0.0.1:1/none", &[]).await;
    let url = |path: &str| format!("http://{addr}{path}");
    let live = client().get(url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let readiness = client().get(url("/readyz")).send().await.unwrap();
    assert_eq!(readiness.status(), StatusCode::SERVICE_UNAVAILABLE);
    // And a read there is 503, safe to retry.
    let read = client()
        .get(url(&format!("/v1/metrics/nps?{RANGE}")))
        .bearer_auth(format!("cxm_{}_{}", "0".repeat(16), "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(read.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn request_timeout_bounds_a_request_and_a_bad_one_is_named() {
    let app = spawn_app().await;
    let path = format!("/v1/metrics/nps?{RANGE}&granularity=day&group_by=channel");
    let send = |timeout: &'static str| {
        client()
            .get(app.url(&path))
            .bearer_auth(&app.key)
            .header("request-timeout", timeout)
            .send()
    };
    let passed = send("0.000001").await.unwrap();
    assert_eq!(passed.status(), StatusCode::GATEWAY_TIMEOUT);
    let problem: Value = passed.json_value().await;
    assert_eq!(problem["code"], "DEADLINE_EXCEEDED");
    assert_eq!(send("30").await.unwrap().status(), StatusCode::OK);
    let bad = send("soon").await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        problem_fields(&bad.text().await.unwrap()),
        ["Request-Timeout"]
    );
}

#[tokio::test]
async fn http2_with_prior_knowledge_and_http1_are_both_served_beside_grpc() {
    let app = spawn_app().await;
    for flag in ["--http1.1", "--http2-prior-knowledge"] {
        let out = tokio::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
                flag,
            ])
            .arg(app.url("/healthz"))
            .output()
            .await
            .expect("curl");
        let text = String::from_utf8(out.stdout).unwrap();
        let version = if flag == "--http1.1" { "1.1" } else { "2" };
        assert_eq!(text, format!("200 {version}"), "{flag}");
    }
    // gRPC on the same connection pool still answers.
    let status = app
        .metrics_with(&app.key)
        .get_nps(pb::MetricRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_problem_naming_it() {
    let app = spawn_app().await;
    let key = Some(app.key.as_str());
    let cases: &[(&str, &str, &[&str])] = &[
        ("/v1/metrics/nps", "", &["start", "end"]),
        (
            "/v1/metrics/nps",
            "start=yesterday&end=2026-03-01",
            &["start"],
        ),
        (
            "/v1/metrics/nps",
            "start=2026-03-01&end=2026-02-01",
            &["end"],
        ),
        (
            "/v1/metrics/nps",
            &format!("{RANGE}&time_zone=Mars/Olympus"),
            &["time_zone"],
        ),
        (
            "/v1/metrics/csat",
            &format!("{RANGE}&granularity=fortnight"),
            &["granularity"],
        ),
        (
            "/v1/metrics/ces",
            &format!("{RANGE}&group_by=planet"),
            &["group_by"],
        ),
        (
            "/v1/metrics/ces",
            &format!("{RANGE}&group_by=attribute:"),
            &["group_by"],
        ),
        (
            "/v1/metrics/nps",
            &format!("{RANGE}&channel="),
            &["channel"],
        ),
        (
            "/v1/metrics/nps",
            &format!("{RANGE}&compare_previous=maybe"),
            &["compare_previous"],
        ),
        (
            "/v1/metrics/nps",
            &format!("{RANGE}&colour=red"),
            &["colour"],
        ),
        (
            "/v1/metrics/nps",
            &format!("{RANGE}&format=xml"),
            &["format"],
        ),
        (
            "/v1/metrics/nps",
            &format!("{RANGE}&time_zone=UTC&time_zone=UTC"),
            &["time_zone"],
        ),
        (
            "/v1/metrics/response-times",
            &format!("{RANGE}&first_response_target=-5"),
            &["first_response_target"],
        ),
        (
            "/v1/metrics/response-times",
            &format!("{RANGE}&resolution_target=soon"),
            &["resolution_target"],
        ),
        (
            "/v1/metrics/response-times",
            &format!("{RANGE}&group_by=survey"),
            &["group_by"],
        ),
        (
            "/v1/metrics/response-times",
            &format!("{RANGE}&survey_id=s1"),
            &["survey_id"],
        ),
        (
            "/v1/metrics/cohort-retention",
            &format!("{RANGE}&periods=3"),
            &["granularity"],
        ),
        (
            "/v1/metrics/cohort-retention",
            &format!("{RANGE}&granularity=month&periods=0"),
            &["periods"],
        ),
        (
            "/v1/metrics/retention",
            &format!("{RANGE}&group_by_nps_category=perhaps"),
            &["group_by_nps_category"],
        ),
        (
            "/v1/metrics/retention",
            &format!("{RANGE}&channel=email"),
            &["channel"],
        ),
        (
            "/v1/survey-responses",
            &format!("{RANGE}&kind=stars"),
            &["kind"],
        ),
        (
            "/v1/survey-responses",
            &format!("{RANGE}&page_size=5000"),
            &["page_size"],
        ),
        (
            "/v1/survey-responses",
            &format!("{RANGE}&page_token=nonsense"),
            &["page_token"],
        ),
        (
            "/v1/interactions",
            &format!("{RANGE}&survey_id=s1"),
            &["survey_id"],
        ),
        (
            "/v1/metrics/nps",
            &format!("{RANGE}&granularity=day&group_by=channel&end=2026-02-01"),
            &["end", "end"],
        ),
    ];
    for (path, query, fields) in cases {
        let (status, body) = get(&app, &format!("{path}?{query}"), key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?{query}: {body}");
        assert_eq!(problem_fields(&body), *fields, "{path}?{query}: {body}");
    }
    let response = client()
        .get(app.url("/v1/metrics/nps?start=x&end=y"))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json_value().await;
    assert_eq!(problem["status"], 400);
    assert_eq!(problem["code"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_missing_key_is_401_a_key_without_read_scope_403_an_unknown_calendar_404() {
    let app = spawn_app().await;
    let path = format!("/v1/metrics/nps?{RANGE}");
    let (status, body) = get(&app, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = get(&app, &path, Some("cxk_wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let writer = app.create_key(TENANT, "write").await;
    let (status, body) = get(&app, &path, Some(&writer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = get(&app, &format!("{path}&api_key={writer}"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = get(
        &app,
        &format!("/v1/metrics/response-times?{RANGE}&calendar_id=nowhere"),
        Some(&app.key),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = get(&app, "/v1/nothing-here", Some(&app.key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_in_the_query_string_works_and_never_reaches_the_logs() {
    let database_url = create_database().await;
    let store = cxmetrics::storage::Store::from_pool(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&database_url)
            .await
            .unwrap(),
    );
    store.migrate().await.unwrap();
    let key = cxmetrics::commands::create_key(&store, TENANT, "read")
        .await
        .unwrap();
    let (_child, addr, log) = spawn_binary_logged(&database_url, &[("RUST_LOG", "trace")]).await;
    let url = |query: &str| format!("http://{addr}/v1/metrics/nps?{query}&api_key={key}");
    let ok = client().get(url(RANGE)).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let secret = key.rsplit('_').next().unwrap().to_owned();
    // A bad request, a key in the wrong parameter, a key as a parameter name: the reply
    // names the parameter but never repeats the key.
    for query in [
        "start=x".to_string(),
        format!("start={key}&end=2026-03-01"),
        format!("{RANGE}&{key}"),
    ] {
        let bad = client().get(url(&query)).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let body = bad.text().await.unwrap();
        assert!(!body.contains(&secret), "{body}");
    }
    let listed = client()
        .get(format!(
            "http://{addr}/v1/interactions?{RANGE}&format=csv&api_key={key}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    listed.text().await.unwrap();
    // The request span is logged when it closes; give the logger a moment to write it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = log.lines();
    // The request's span reaches the log (so the check below could see a leak).
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"url.path\":\"/v1/metrics/nps\"")),
        "{lines:?}"
    );
    for line in &lines {
        assert!(
            !line.contains(&key) && !line.contains(&secret),
            "the key was logged: {line}"
        );
    }
}

trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        serde_json::from_str(&self.text().await.unwrap()).expect("JSON body")
    }
}

/// Interactions one minute apart from `t0()` on, half of them answered.
fn interactions(n: usize) -> Vec<pb::Interaction> {
    (0..n)
        .map(|i| pb::Interaction {
            interaction_id: format!("i{i:05}"),
            customer_id: format!("c{}", i % 7),
            channel: ["email", "chat"][i % 2].into(),
            agent_id: "a1".into(),
            open_time: Some(ts(t0() - Span::days(3) + Span::minutes(i as i64))),
            first_response_time: (i % 2 == 0)
                .then(|| ts(t0() - Span::days(3) + Span::minutes(i as i64 + 5))),
            attributes: [("plan".to_string(), "pro, \"gold\"".to_string())].into(),
            ..Default::default()
        })
        .collect()
}

#[tokio::test]
async fn listings_page_like_grpc_in_json_and_stream_every_row_in_csv() {
    let app = spawn_app().await;
    let mut feedback = app.feedback();
    let all = interactions(2_345);
    for chunk in all.chunks(1_000) {
        feedback
            .batch_upsert_interactions(pb::BatchUpsertInteractionsRequest {
                interactions: chunk.to_vec(),
            })
            .await
            .unwrap();
    }
    let range = "start=2026-02-20&end=2026-03-01";
    // JSON pages, following next_page_token, give what gRPC pages give.
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let (status, body) = get(
            &app,
            &format!("/v1/interactions?{range}&channel=email&page_size=500&page_token={token}"),
            Some(&app.key),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        for row in page["rows"].as_array().unwrap() {
            ids.push(row["interaction_id"].as_str().unwrap().to_owned());
        }
        token = page["next_page_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    let mut grpc_ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = feedback
            .list_interactions(pb::ListInteractionsRequest {
                time_range: Some(pb::TimeRange {
                    start_time: Some(ts(t0() - Span::days(9) - Span::hours(12))),
                    end_time: Some(ts(t0() - Span::hours(12))),
                }),
                filter: Some(pb::MetricFilter {
                    channels: vec!["email".into()],
                    ..Default::default()
                }),
                page_size: 500,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        grpc_ids.extend(page.interactions.into_iter().map(|i| i.interaction_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(ids.len(), 1_173);
    assert_eq!(ids, grpc_ids);

    // CSV: every row, streamed in chunks, parsed back with quoting intact.
    let response = client()
        .get(app.url(&format!("/v1/interactions?{range}")))
        .header("accept", "text/csv")
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "interaction_id");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), all.len());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (row, want) in rows.iter().zip(&all) {
        assert_eq!(&row[column("interaction_id")], want.interaction_id);
        assert_eq!(&row[column("channel")], want.channel);
        assert_eq!(
            row[column("first_response_time")].is_empty(),
            want.first_response_time.is_none()
        );
        let attributes: Value = serde_json::from_str(&row[column("attributes")]).unwrap();
        assert_eq!(attributes["plan"], "pro, \"gold\"");
    }
}

/// The JSON rows of `path` with every value as text, in column order.
async fn json_table(app: &TestApp, path: &str) -> Vec<Vec<String>> {
    let (status, body) = get(app, path, Some(&app.key)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let columns: Vec<&str> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| columns.iter().map(|c| row[*c].to_string()).collect())
        .collect()
}

fn opt(v: Option<f64>) -> String {
    v.map_or("null".into(), |v| serde_json::json!(v).to_string())
}

fn berlin(t: &prost_types::Timestamp) -> String {
    let t = chrono::DateTime::from_timestamp(t.seconds, 0).unwrap();
    format!(
        "\"{}\"",
        t.with_timezone(&chrono_tz::Europe::Berlin)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    )
}

#[tokio::test]
async fn retention_and_cohorts_over_http_are_the_grpc_reports_row_for_row() {
    let app = spawn_app().await;
    let mut feedback = app.feedback();
    for i in 0..12i64 {
        let mut c = customer(&format!("c{i}"));
        c.acquire_time = Some(ts(t0() - Span::days(200 - 9 * i)));
        if i % 3 == 0 {
            c.churn_time = Some(ts(t0() - Span::days(100 - 5 * i)));
        }
        feedback
            .upsert_customer(pb::UpsertCustomerRequest { customer: Some(c) })
            .await
            .unwrap();
        let mut r = nps(&format!("r{i}"), &format!("c{i}"), (i % 11) as i32);
        r.respond_time = Some(ts(t0() - Span::days(150 - 11 * i)));
        feedback
            .record_survey_response(pb::RecordSurveyResponseRequest {
                survey_response: Some(r),
            })
            .await
            .unwrap();
    }
    let mut metrics = app.metrics_with(&app.key);
    let range = pb::TimeRange {
        start_time: Some(ts(chrono::DateTime::parse_from_rfc3339(
            "2025-09-01T00:00:00+02:00",
        )
        .unwrap()
        .to_utc())),
        end_time: Some(ts(chrono::DateTime::parse_from_rfc3339(
            "2026-03-01T00:00:00+01:00",
        )
        .unwrap()
        .to_utc())),
    };
    let query = "start=2025-09-01&end=2026-03-01&time_zone=Europe/Berlin";
    let stats = |s: &pb::RetentionStats| {
        vec![
            s.start_customers.to_string(),
            s.end_customers.to_string(),
            s.new_customers.to_string(),
            s.retained.to_string(),
            s.churned.to_string(),
            opt(s.retention_rate),
            opt(s.churn_rate),
        ]
    };
    for (granularity, by_category) in [(0, false), (3, false), (0, true), (3, true)] {
        let report = metrics
            .get_retention(pb::RetentionRequest {
                time_range: Some(range),
                time_zone: "Europe/Berlin".into(),
                granularity,
                group_by_nps_category: by_category,
            })
            .await
            .unwrap()
            .into_inner();
        let mut want: Vec<Vec<String>> = Vec::new();
        if granularity == 0 && !by_category {
            want.push(stats(report.total.as_ref().unwrap()));
        }
        for p in &report.series {
            let mut row = vec![berlin(p.start_time.as_ref().unwrap())];
            if by_category {
                row.push("null".into());
            }
            row.extend(stats(p.stats.as_ref().unwrap()));
            want.push(row);
        }
        for g in &report.groups {
            let mut row = if granularity > 0 {
                vec!["null".to_string()]
            } else {
                vec![]
            };
            row.push(format!("\"{}\"", g.key));
            row.extend(stats(g.stats.as_ref().unwrap()));
            want.push(row);
        }
        let mut path = format!("/v1/metrics/retention?{query}");
        if granularity > 0 {
            path.push_str("&granularity=month");
        }
        if by_category {
            path.push_str("&group_by_nps_category=true");
        }
        assert_eq!(json_table(&app, &path).await, want, "{path}");
    }

    let report = metrics
        .get_cohort_retention(pb::CohortRetentionRequest {
            time_range: Some(range),
            time_zone: "Europe/Berlin".into(),
            granularity: pb::Granularity::Month as i32,
            periods: 3,
        })
        .await
        .unwrap()
        .into_inner();
    let mut want: Vec<Vec<String>> = Vec::new();
    for c in &report.cohorts {
        for (k, active) in c.active.iter().enumerate() {
            want.push(vec![
                berlin(c.start_time.as_ref().unwrap()),
                c.size.to_string(),
                k.to_string(),
                active.to_string(),
                opt(c.rates.get(k).copied()),
            ]);
        }
    }
    assert!(want.len() >= 6, "{want:?}");
    let path = format!("/v1/metrics/cohort-retention?{query}&granularity=month&periods=3");
    assert_eq!(json_table(&app, &path).await, want);
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_every_documented_path_answers() {
    let app = spawn_app().await;
    // `/readyz` is among the documented paths: it answers 200 once the first ping succeeds.
    crate::server::wait_for_health(&app, ServingStatus::Serving).await;
    let (status, body) = get(&app, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 11, "{paths:?}");
    for (path, item) in paths {
        assert!(item.get("get").is_some(), "{path}");
        let (status, body) = get(&app, path, Some(&app.key)).await;
        // A documented path is served: it answers, or names what it is missing.
        let problem: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let answered = status == StatusCode::OK
            || (status == StatusCode::BAD_REQUEST && problem["code"] == "INVALID_ARGUMENT");
        assert!(answered, "{path}: {status} {body}");
        let documented_parameters: Vec<&str> = item["get"]["parameters"]
            .as_array()
            .map(|ps| ps.iter().map(|p| p["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        if path.starts_with("/v1/") {
            assert!(documented_parameters.contains(&"start"), "{path}");
            assert!(documented_parameters.contains(&"api_key"), "{path}");
        }
    }
}

#[tokio::test]
async fn a_read_shed_under_load_is_429_with_retry_after() {
    let app = spawn_app_with(Options {
        read_limits: cxmetrics::app::ReadLimits {
            global: 4,
            per_tenant: 1,
        },
        ..Options::default()
    })
    .await;
    let path = format!("/v1/metrics/nps?{RANGE}");
    // Warm the key cache, so that the lock below holds only the reads.
    assert_eq!(get(&app, &path, Some(&app.key)).await.0, StatusCode::OK);
    let mut lock = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::Executor::execute(&mut lock, "begin").await.unwrap();
    sqlx::Executor::execute(
        &mut lock,
        "lock table survey_responses, survey_rollups in access exclusive mode",
    )
    .await
    .unwrap();
    let request = || client().get(app.url(&path)).bearer_auth(&app.key).send();
    // One read runs (held by the lock), one queues, the third is shed.
    let running = tokio::spawn(request());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let queued = tokio::spawn(request());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shed = request().await.unwrap();
    assert_eq!(shed.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(shed.headers()["retry-after"], "1");
    let problem: Value = shed.json_value().await;
    assert_eq!(problem["code"], "RESOURCE_EXHAUSTED");
    sqlx::Executor::execute(&mut lock, "rollback")
        .await
        .unwrap();
    assert_eq!(running.await.unwrap().unwrap().status(), StatusCode::OK);
    queued.await.unwrap().unwrap();
}

#[tokio::test]
async fn only_the_configured_origins_get_cors_headers() {
    let allowed = "https://bi.example.com";
    let app = spawn_app_with(Options {
        cors_origins: vec![allowed.parse().unwrap()],
        ..Options::default()
    })
    .await;
    let path = "/v1/metrics/nps?start=2026-01-01&end=2026-02-01";
    let from = |origin: &str| {
        client()
            .get(app.url(path))
            .bearer_auth(&app.key)
            .header("origin", origin)
            .send()
    };
    let ok = from(allowed).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["access-control-allow-origin"], allowed);
    let other = from("https://elsewhere.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // A browser asks first whether it may send the key.
    let preflight = client()
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("origin", allowed)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], allowed);
    let headers = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(headers.contains("authorization"), "{headers}");

    // Without the setting, no origin gets CORS headers.
    let plain = spawn_app().await;
    let answer = client()
        .get(plain.url(path))
        .bearer_auth(&plain.key)
        .header("origin", allowed)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

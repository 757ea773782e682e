//! A fast bulk client on one ImportRecords call, with one HTTP/2 DATA frame per message.
//!
//! tonic coalesces queued messages into large DATA frames, so a tonic client never shows
//! how the server copes with a stream of small frames. grpcio (as Go and Java) writes one
//! small frame per message: tests/py/bulk_import.py streams pre-serialised records as fast
//! as grpcio can send them, while another process keeps one of the machine's cores busy,
//! as on a loaded server. scripts/test installs grpcio and sets CXMETRICS_TEST_PYTHON.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use cxmetrics::proto::{self as pb, import_records_request::Record};
use prost::Message;
use tokio::process::{Child, Command};

use crate::helpers::*;

const RECORDS: i64 = 100_000;
/// The script makes every 10,000th record invalid (an NPS score of 11).
const BAD_EVERY: i64 = 10_000;

/// The Python interpreter that has grpcio, as scripts/test sets it up.
fn test_python() -> String {
    std::env::var("CXMETRICS_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CXMETRICS_TEST_PYTHON is not set: run the tests with scripts/test, which installs \
             grpcio into target/pyenv and points CXMETRICS_TEST_PYTHON at its python"
        )
    })
}

/// A process that keeps one core busy until it is dropped.
fn busy_core(python: &str) -> Child {
    Command::new(python)
        .args(["-c", "while True: pass"])
        .kill_on_drop(true)
        .spawn()
        .expect("start the busy loop")
}

/// Runs tests/py/bulk_import.py against `addr`; the reply, or the script's error output.
async fn python_import(
    python: &str,
    addr: &str,
    key: &str,
) -> Result<pb::ImportRecordsResponse, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/bulk_import.py");
    let output = Command::new(python)
        .arg(script)
        .args([addr, key, &RECORDS.to_string()])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the Python client");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(stderr);
    }
    eprintln!("python client: {}", stderr.trim());
    let bytes = hex::decode(output.stdout.trim_ascii()).expect("hex reply");
    Ok(pb::ImportRecordsResponse::decode(bytes.as_slice()).expect("an ImportRecordsResponse"))
}

/// The reply and the stored rows for RECORDS messages of which every BAD_EVERY-th is bad.
async fn assert_all_stored(app: &TestApp, reply: &pb::ImportRecordsResponse) {
    let bad = RECORDS / BAD_EVERY;
    assert_eq!(
        (
            reply.created,
            reply.updated,
            reply.unchanged,
            reply.rejected
        ),
        (RECORDS - bad, 0, 0, bad)
    );
    let positions: Vec<i64> = reply.rejected_records.iter().map(|r| r.position).collect();
    let expected: Vec<i64> = (1..=bad).map(|k| k * BAD_EVERY - 1).collect();
    assert_eq!(positions, expected);
    assert!(
        reply
            .rejected_records
            .iter()
            .all(|r| r.reason.contains("score"))
    );
    let stored = app
        .count("select count(*) from survey_responses where survey_id = 'bulk'")
        .await;
    assert_eq!(stored, RECORDS - bad);
}

#[tokio::test]
async fn a_grpcio_client_streaming_small_frames_as_fast_as_it_can_is_never_cut_off() {
    let python = test_python();
    let app = spawn_app().await;
    let (_server, addr) = spawn_binary(&app.database_url, &[]).await;
    let _busy = busy_core(&python);

    let started = Instant::now();
    let reply = python_import(&python, &addr, &app.key)
        .await
        .unwrap_or_else(|error| panic!("the bulk import failed: {error}"));
    eprintln!(
        "{RECORDS} records through grpcio in {:?}",
        started.elapsed()
    );
    assert_all_stored(&app, &reply).await;
}

#[tokio::test]
async fn a_tonic_client_streaming_the_same_records_stores_them_all() {
    let app = spawn_app().await;
    let (_server, addr) = spawn_binary(&app.database_url, &[]).await;
    let channel = connect(&addr, None).await.expect("connect to the binary");
    let mut client = feedback_client(&channel, &app.key);
    let respond_time = ts(t0());
    let messages = (0..RECORDS).map(move |i| {
        let mut record = nps(
            &format!("r-{i:07}"),
            &format!("c-{}", i % 1000),
            (i % 11) as i32,
        );
        record.survey_id = "bulk".into();
        record.respond_time = Some(respond_time);
        if i % BAD_EVERY == BAD_EVERY - 1 {
            record.score = 11;
        }
        pb::ImportRecordsRequest {
            record: Some(Record::SurveyResponse(record)),
        }
    });

    let started = Instant::now();
    let reply = tokio::time::timeout(
        Duration::from_secs(120),
        client.import_records(tokio_stream::iter(messages)),
    )
    .await
    .expect("the import finishes")
    .expect("import")
    .into_inner();
    eprintln!("{RECORDS} records through tonic in {:?}", started.elapsed());
    assert_all_stored(&app, &reply).await;
}

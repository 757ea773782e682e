//! Health, reflection, compression, database outages, shutdown and the binary's own
//! configuration checks and key commands.

use std::time::{Duration, Instant};

use cxmetrics::proto as pb;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tonic::{Code, codec::CompressionEncoding};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::*;

async fn health(app: &TestApp, service: &str) -> i32 {
    HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(ServingStatus::ServiceUnknown as i32)
}

pub(crate) async fn wait_for_health(app: &TestApp, want: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(app, "").await != want as i32 {
        assert!(Instant::now() < deadline, "health never became {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        health(app, "cxmetrics.v1.FeedbackService").await,
        want as i32
    );
}

#[tokio::test]
async fn health_reports_serving_and_reflection_lists_the_service() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = spawn_app().await;
    wait_for_health(&app, ServingStatus::Serving).await;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(app.channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"cxmetrics.v1.FeedbackService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn gzip_requests_are_accepted() {
    let app = spawn_app().await;
    let outcome = app
        .feedback()
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip)
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(nps("r1", "c1", 9)),
        })
        .await
        .expect("gzip call")
        .into_inner()
        .outcome;
    assert_eq!(outcome, pb::WriteOutcome::Created as i32);
}

/// A TCP proxy in front of PostgreSQL that can cut the database off and bring it back.
pub(crate) struct Proxy {
    pub(crate) addr: std::net::SocketAddr,
    up: watch::Sender<bool>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to `target`. While down, the port refuses connections and
    /// every forwarded connection is cut, as when the database process dies.
    pub(crate) async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, up_rx) = watch::channel(true);
        let mut listener = Some(listener);
        let mut state = up_rx.clone();
        tokio::spawn(async move {
            loop {
                let current = match listener.take() {
                    Some(l) => l,
                    None => {
                        if state.wait_for(|up| *up).await.is_err() {
                            return;
                        }
                        TcpListener::bind(addr)
                            .await
                            .expect("rebind the proxy port")
                    }
                };
                loop {
                    tokio::select! {
                        accepted = current.accept() => {
                            let Ok((client, _)) = accepted else { return };
                            tokio::spawn(forward(client, target.clone(), up_rx.clone()));
                        }
                        _ = state.wait_for(|up| !*up) => break,
                    }
                }
                drop(current);
            }
        });
        Self { addr, up }
    }

    pub(crate) fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

async fn forward(mut client: TcpStream, target: String, mut up: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(&target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

pub(crate) fn host_port(url: &str) -> String {
    let after = url.split_once("://").unwrap().1;
    let authority = after.split(['/', '?']).next().unwrap();
    authority.rsplit('@').next().unwrap().to_owned()
}

/// An app whose server reaches the test database through a `Proxy` that can cut it off.
pub(crate) async fn spawn_app_behind_proxy(options: Options) -> (TestApp, Proxy) {
    let db = database_url();
    let proxy = Proxy::start(host_port(&db)).await;
    let proxied = db.replacen(&host_port(&db), &proxy.addr.to_string(), 1);
    let app = spawn_app_with(Options {
        server_database_url: Some(proxied),
        ..options
    })
    .await;
    (app, proxy)
}

#[tokio::test]
async fn a_database_outage_gives_unavailable_and_not_serving_then_recovers_by_itself() {
    let (app, proxy) = spawn_app_behind_proxy(Options::default()).await;
    wait_for_health(&app, ServingStatus::Serving).await;
    let write = |id: &'static str| {
        let mut client = app.feedback();
        async move {
            client
                .upsert_customer(pb::UpsertCustomerRequest {
                    customer: Some(customer(id)),
                })
                .await
        }
    };
    write("c1").await.expect("database up");

    proxy.set_up(false);
    wait_for_health(&app, ServingStatus::NotServing).await;
    let status = write("c2").await.expect_err("database down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!status.message().to_lowercase().contains("sql"));

    proxy.set_up(true);
    wait_for_health(&app, ServingStatus::Serving).await;
    write("c2").await.expect("recovered");
    assert_eq!(app.count("select count(*) from customers").await, 2);
}

#[tokio::test]
async fn a_database_outage_mid_import_fails_the_call_with_unavailable_and_keeps_committed_chunks() {
    let (app, proxy) = spawn_app_behind_proxy(Options::default()).await;
    wait_for_health(&app, ServingStatus::Serving).await;
    // Room for every message, so sending never waits on the call.
    let (tx, rx) = tokio::sync::mpsc::channel(2_000);
    let mut client = app.feedback();
    let call = tokio::spawn(async move {
        client
            .import_records(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let message = |i: usize| pb::ImportRecordsRequest {
        record: Some(pb::import_records_request::Record::Customer(customer(
            &format!("c{i}"),
        ))),
    };
    for i in 0..1_000 {
        tx.send(message(i)).await.unwrap();
    }
    // The first chunk commits while the stream is still open.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.count("select count(*) from customers").await < 1_000 {
        assert!(Instant::now() < deadline, "the first chunk never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.set_up(false);
    for i in 1_000..2_000 {
        // The call may already have failed and dropped the stream.
        let _ = tx.send(message(i)).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call ends")
        .unwrap()
        .expect_err("the second chunk cannot be written");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(app.count("select count(*) from customers").await, 1_000);
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_import_finish_then_exits_cleanly() {
    let app = spawn_app().await;
    let (mut child, addr) = spawn_binary(&app.database_url, &[]).await;
    let channel = connect(&addr, None).await.unwrap();
    let mut client = feedback_client(&channel, &app.key);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let call = tokio::spawn(async move {
        client
            .import_records(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let send = |i: usize| {
        let tx = tx.clone();
        async move {
            let record = pb::import_records_request::Record::Customer(customer(&format!("c{i}")));
            tx.send(pb::ImportRecordsRequest {
                record: Some(record),
            })
            .await
            .unwrap();
        }
    };
    send(0).await;
    // Let the call reach the server before the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // The server stops accepting new connections while it drains.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 1..5 {
        send(i).await;
    }
    drop(tx);
    let reply = call
        .await
        .unwrap()
        .expect("the in-flight call completes")
        .into_inner();
    assert_eq!(reply.created, 5);
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the server exits")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(app.count("select count(*) from customers").await, 5);
}

#[tokio::test]
async fn the_binary_refuses_to_start_without_a_database_url_or_with_a_bad_listen_address() {
    let bin = env!("CARGO_BIN_EXE_cxmetrics");
    let out = std::process::Command::new(bin)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");

    let out = std::process::Command::new(bin)
        .arg("serve")
        .env("DATABASE_URL", "postgres://localhost/x")
        .env("CXMETRICS_LISTEN", "nowhere")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen"), "{stderr}");
}

#[tokio::test]
async fn the_keys_commands_create_list_and_revoke() {
    let app = spawn_app().await;
    let bin = env!("CARGO_BIN_EXE_cxmetrics");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env("DATABASE_URL", &app.database_url)
            .output()
            .unwrap()
    };
    let out = run(&[
        "keys",
        "create",
        "--tenant",
        "acme",
        "--scopes",
        "read,write",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap().trim().to_owned();
    write_ok(&app, &key).await;

    let out = run(&["keys", "list"]);
    let listing = String::from_utf8(out.stdout).unwrap();
    let key_id = key.split('_').nth(1).unwrap();
    assert!(
        listing.contains(key_id) && listing.contains("acme"),
        "{listing}"
    );
    assert!(!listing.contains(&key), "the list must never show a key");

    assert!(run(&["keys", "revoke", key_id]).status.success());
    assert!(!run(&["keys", "revoke", "nosuchkey"]).status.success());
    assert!(
        !run(&["keys", "create", "--tenant", "acme", "--scopes", "root"])
            .status
            .success()
    );
}

async fn write_ok(app: &TestApp, key: &str) {
    app.feedback_with(Some(key))
        .upsert_customer(pb::UpsertCustomerRequest {
            customer: Some(customer("c1")),
        })
        .await
        .expect("the new key works");
}

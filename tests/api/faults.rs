//! Faults around the database: starting while it is down, writes stuck behind a lock,
//! a shutdown while a call holds a connection, and health while every read connection is
//! busy.

use std::time::{Duration, Instant};

use cxmetrics::{commands, domain::NewApiKey, proto as pb, storage::Store};
use sqlx::{Connection, Executor, PgConnection, postgres::PgPoolOptions};
use tokio::net::TcpStream;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    helpers::*,
    server::{Proxy, host_port},
};

/// The server-wide health status, or SERVICE_UNKNOWN when the check itself fails.
pub(crate) async fn health_at(channel: &Channel) -> i32 {
    let mut client = HealthClient::new(channel.clone());
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(Duration::from_secs(2));
    client
        .check(request)
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(ServingStatus::ServiceUnknown as i32)
}

/// Waits until health reads `want`, for at most `limit`.
pub(crate) async fn wait_for_status(channel: &Channel, want: ServingStatus, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let status = health_at(channel).await;
        if status == want as i32 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health never became {want:?} (last {status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A FeedbackService client of the server at `channel` that presents `key`.
pub(crate) fn feedback_at(channel: &Channel, key: &str) -> Feedback {
    feedback_client(channel, key)
}

/// One customer write, with a deadline so that a write that hangs fails the test.
async fn upsert_customer(client: &mut Feedback, id: &str) -> Result<i32, tonic::Status> {
    let mut request = tonic::Request::new(pb::UpsertCustomerRequest {
        customer: Some(customer(id)),
    });
    request.set_timeout(Duration::from_secs(10));
    client
        .upsert_customer(request)
        .await
        .map(|reply| reply.into_inner().outcome)
}

/// Backends of the server (application_name cxmetrics) in `conn`'s database that wait for
/// a lock. `conn` must not be in a transaction, which would see one snapshot of the
/// activity throughout.
async fn backends_waiting_for_a_lock(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and application_name = 'cxmetrics'
           and wait_event_type = 'Lock'",
    )
    .fetch_one(conn)
    .await
    .expect("read pg_stat_activity")
}

async fn wait_for_waiting_backends(database_url: &str, want: i64) {
    let conn = &mut PgConnection::connect(database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while backends_waiting_for_a_lock(conn).await < want {
        assert!(
            Instant::now() < deadline,
            "fewer than {want} server backends ever waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A connection of the test's own that holds `lock` (a `lock table ...` statement) until it
/// is dropped or rolled back.
async fn hold_lock(database_url: &str, lock: &str) -> PgConnection {
    let mut conn = PgConnection::connect(database_url)
        .await
        .expect("connect to take the lock");
    conn.execute("begin").await.expect("begin");
    conn.execute(lock).await.expect("take the lock");
    conn
}

#[tokio::test]
async fn serve_starts_while_the_database_is_down_and_serves_once_it_comes_up() {
    let database_url = create_database().await;
    let proxy = Proxy::start(host_port(&database_url)).await;
    proxy.set_up(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(proxy.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the proxy still accepts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let proxied = database_url.replacen(&host_port(&database_url), &proxy.addr.to_string(), 1);

    let (mut child, addr, log) = spawn_binary_unready(&proxied, &[]).await;
    let pid = child.id();
    let channel = connect(&addr, None).await.expect("the server listens");
    // Down for a while: the server keeps serving, unhealthy, and refuses calls as retryable.
    let unknown = NewApiKey::generate().secret;
    for _ in 0..5 {
        assert_eq!(health_at(&channel).await, ServingStatus::NotServing as i32);
        let status = upsert_customer(&mut feedback_at(&channel, &unknown), "c0")
            .await
            .expect_err("no database yet");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(log.count("migrations applied"), 0);
    assert!(child.try_wait().unwrap().is_none(), "the server exited");

    proxy.set_up(true);
    log.wait_for("migrations applied", Duration::from_secs(20))
        .await;
    wait_for_status(&channel, ServingStatus::Serving, Duration::from_secs(20)).await;

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url)
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&pool)
        .await
        .expect("the server created the migrations table");
    assert_eq!(
        applied as usize,
        cxmetrics::storage::MIGRATOR.iter().count()
    );
    let key = commands::create_key(&Store::from_pool(pool.clone()), TENANT, "read,write")
        .await
        .expect("create a key in the migrated database");
    let outcome = upsert_customer(&mut feedback_at(&channel, &key), "c1")
        .await
        .expect("writes succeed once migrated");
    assert_eq!(outcome, pb::WriteOutcome::Created as i32);

    assert_eq!(log.count("migrations applied"), 1, "{:?}", log.messages());
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    assert_eq!(child.id(), pid);
}

#[tokio::test]
async fn migrate_fails_at_once_with_one_line_when_the_database_is_down() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxmetrics"))
        .arg("migrate")
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{port}/x"),
        )
        .env("CXMETRICS_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: connecting to the database: "),
        "{stderr}"
    );
    // The refusal appears once, not repeated by each layer of the error.
    assert_eq!(
        lines[0].to_lowercase().matches("refused").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_fatal_start_up_error_is_printed_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxmetrics"))
        .arg("serve")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")
        .env("CXMETRICS_LISTEN", taken.local_addr().unwrap().to_string())
        .env("CXMETRICS_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: binding 127.0.0.1:"),
        "{stderr}"
    );
    assert_eq!(lines[0].matches("in use").count(), 1, "{stderr}");
}

#[tokio::test]
async fn shutdown_ends_within_the_grace_period_while_a_call_holds_a_connection() {
    let app = spawn_app().await;
    let (mut child, addr) =
        spawn_binary(&app.database_url, &[("CXMETRICS_SHUTDOWN_GRACE_SECS", "1")]).await;
    let channel = connect(&addr, None).await.unwrap();
    // The binary has not seen the key yet, so the call looks it up and waits for the lock.
    let mut lock = hold_lock(
        &app.database_url,
        "lock table api_keys in access exclusive mode",
    )
    .await;
    let mut client = feedback_at(&channel, &app.key);
    let call = tokio::spawn(async move { upsert_customer(&mut client, "c1").await });
    wait_for_waiting_backends(&app.database_url, 1).await;

    let started = Instant::now();
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server exits")
        .unwrap();
    let took = started.elapsed();
    assert!(exit.success(), "{exit:?}");
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
    assert!(
        took >= Duration::from_secs(1),
        "the call should have had its grace period: {took:?}"
    );
    assert!(
        call.await.unwrap().is_err(),
        "the blocked call cannot have succeeded"
    );
    lock.execute("rollback").await.unwrap();
}

#[tokio::test]
async fn a_write_behind_a_lock_fails_within_the_write_timeout_as_unavailable() {
    let app = spawn_app().await;
    let (_child, addr) =
        spawn_binary(&app.database_url, &[("CXMETRICS_WRITE_TIMEOUT_SECS", "1")]).await;
    let channel = connect(&addr, None).await.unwrap();
    let mut client = feedback_at(&channel, &app.key);
    upsert_customer(&mut client, "c1")
        .await
        .expect("a write without a lock");

    let mut lock = hold_lock(&app.database_url, "lock table customers in exclusive mode").await;
    let started = Instant::now();
    let status = upsert_customer(&mut client, "c2")
        .await
        .expect_err("the write waits for the lock");
    let took = started.elapsed();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "the write failed after {took:?}, not at its 1 s timeout"
    );
    lock.execute("rollback").await.unwrap();

    let outcome = upsert_customer(&mut client, "c2")
        .await
        .expect("the retry succeeds");
    assert_eq!(outcome, pb::WriteOutcome::Created as i32);
    assert_eq!(app.count("select count(*) from customers").await, 2);
}

#[tokio::test]
async fn migrations_do_not_run_under_the_write_timeout() {
    let app = spawn_app().await;
    let store = Store::connect_lazy(&cxmetrics::storage::DbSettings {
        url: app.database_url.clone(),
        max_connections: 2,
        read_max_connections: 2,
        acquire_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_millis(300),
        read_url: None,
    })
    .unwrap();
    let mut lock = hold_lock(
        &app.database_url,
        "lock table _sqlx_migrations in access exclusive mode",
    )
    .await;
    // The write pool's statements give up after 300 ms behind the lock ...
    let started = Instant::now();
    let error = sqlx::query("select count(*) from _sqlx_migrations")
        .execute(store.pool())
        .await
        .expect_err("the write timeout cancels the statement");
    assert_eq!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("57014"),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // ... but migrations wait as long as the lock is held.
    let migrating = {
        let store = store.clone();
        tokio::spawn(async move { store.migrate().await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !migrating.is_finished(),
        "migrations did not wait for the lock"
    );
    lock.execute("rollback").await.unwrap();
    migrating
        .await
        .unwrap()
        .expect("migrations finish once the lock is gone");
    assert!(store.is_migrated());
}

#[tokio::test]
async fn health_and_writes_are_served_while_every_read_connection_is_busy() {
    let app = spawn_app_with(Options {
        pool_size: 2,
        read_pool_size: 2,
        ..Options::default()
    })
    .await;
    wait_for_status(
        &app.channel,
        ServingStatus::Serving,
        Duration::from_secs(10),
    )
    .await;
    let mut lock = hold_lock(
        &app.database_url,
        "lock table interactions in access exclusive mode",
    )
    .await;
    let list = |app: &TestApp| {
        let mut client = app.feedback();
        async move {
            let request = pb::ListInteractionsRequest {
                time_range: Some(pb::TimeRange {
                    start_time: Some(ts(t0() - chrono::Duration::days(1))),
                    end_time: Some(ts(t0() + chrono::Duration::days(1))),
                }),
                ..Default::default()
            };
            client.list_interactions(request).await
        }
    };
    // Two reads take both read connections and wait behind the lock.
    let blocked: Vec<_> = (0..2).map(|_| tokio::spawn(list(&app))).collect();
    wait_for_waiting_backends(&app.database_url, 2).await;
    // A third finds no read connection (the acquire timeout is 1 s) ...
    let third = tokio::spawn(list(&app));
    // ... while health and writes keep answering.
    let started = Instant::now();
    let mut writes = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        assert_eq!(
            health_at(&app.channel).await,
            ServingStatus::Serving as i32,
            "health flapped while the read pool was busy"
        );
        let outcome = upsert_customer(&mut app.feedback(), &format!("c{writes}"))
            .await
            .expect("writes have their own pool");
        assert_eq!(outcome, pb::WriteOutcome::Created as i32);
        writes += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = third
        .await
        .unwrap()
        .expect_err("the read pool was exhausted");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let mut observer = PgConnection::connect(&app.database_url).await.unwrap();
    assert_eq!(backends_waiting_for_a_lock(&mut observer).await, 2);
    lock.execute("rollback").await.unwrap();
    for read in blocked {
        read.await.unwrap().expect("the blocked reads finish");
    }
    assert_eq!(app.count("select count(*) from customers").await, writes);
}

//! TLS and mutual TLS: certificates are made here, in a temporary directory, for each test.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use cxmetrics::{config::TlsArgs, proto as pb};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{helpers::*, server::wait_for_health};

/// A certificate and its private key, both PEM.
struct Pair {
    cert: String,
    key: String,
}

/// A CA, a server certificate it signed for localhost and 127.0.0.1, a client certificate it
/// signed, and a client certificate from another CA; all written to a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    other_ca: String,
    client: Pair,
    stranger: Pair,
}

impl Pki {
    fn new() -> Self {
        let ca = authority("cxmetrics test CA");
        let other = authority("some other CA");
        let server = signed(&ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
        let pki = Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            ca: ca.pem(),
            other_ca: other.pem(),
            client: signed(&ca, "client-1", ExtendedKeyUsagePurpose::ClientAuth),
            stranger: signed(&other, "client-2", ExtendedKeyUsagePurpose::ClientAuth),
        };
        pki.write("ca.pem", &pki.ca);
        pki.write("server.pem", &server.cert);
        pki.write("server.key", &server.key);
        pki.write("other.key", &pki.stranger.key);
        pki.write("not-pem.txt", "this is not a certificate\n");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.path(name), contents).expect("write a test file");
    }

    /// The server's settings: TLS, and mutual TLS with this PKI's CA when `mutual`.
    fn args(&self, mutual: bool) -> TlsArgs {
        TlsArgs {
            tls_cert: Some(self.path("server.pem")),
            tls_key: Some(self.path("server.key")),
            tls_client_ca: mutual.then(|| self.path("ca.pem")),
        }
    }

    /// A client that trusts this PKI's CA and presents `identity`, if any.
    fn client_tls(&self, identity: Option<&Pair>) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name("localhost");
        match identity {
            Some(pair) => config.identity(Identity::from_pem(&pair.cert, &pair.key)),
            None => config,
        }
    }
}

fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn signed(issuer: &Issuer<'_, KeyPair>, name: &str, usage: ExtendedKeyUsagePurpose) -> Pair {
    let mut params = CertificateParams::new(vec![name.to_owned(), "127.0.0.1".into()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

async fn spawn_tls_app(pki: &Pki, mutual: bool) -> TestApp {
    let tls = pki.args(mutual).load().expect("valid settings");
    let identity = mutual.then_some(&pki.client);
    spawn_app_with(Options {
        tls,
        client_tls: Some(pki.client_tls(identity)),
        ..Options::default()
    })
    .await
}

/// Writes one survey response through a new connection to `addr` made with `tls`.
async fn write_through(app: &TestApp, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let attempt = async {
        let channel = connect(&app.addr.to_string(), tls)
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        feedback_client(&channel, &app.key)
            .record_survey_response(pb::RecordSurveyResponseRequest {
                survey_response: Some(nps("r-other", "c1", 9)),
            })
            .await
            .map(drop)
            .map_err(|status| format!("call: {status:?}"))
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

#[tokio::test]
async fn a_client_trusting_the_ca_is_served_over_tls_and_a_plaintext_client_is_not() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki, false).await;
    wait_for_health(&app, ServingStatus::Serving).await;

    let outcome = app
        .feedback()
        .record_survey_response(pb::RecordSurveyResponseRequest {
            survey_response: Some(nps("r1", "c1", 10)),
        })
        .await
        .expect("write over TLS")
        .into_inner()
        .outcome;
    assert_eq!(outcome, pb::WriteOutcome::Created as i32);
    let listed = app
        .feedback()
        .list_survey_responses(pb::ListSurveyResponsesRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(ts(t0() - chrono::Duration::days(1))),
                end_time: Some(ts(t0() + chrono::Duration::days(1))),
            }),
            ..Default::default()
        })
        .await
        .expect("read over TLS")
        .into_inner();
    let ids: Vec<_> = listed
        .survey_responses
        .iter()
        .map(|r| &r.response_id)
        .collect();
    assert_eq!(ids, ["r1"]);
    assert!(reflection_lists_feedback(app.channel.clone()).await);

    let plaintext = write_through(&app, None).await;
    assert!(plaintext.is_err(), "a plaintext client got through");
    let untrusting = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.other_ca))
        .domain_name("localhost");
    let untrusted = write_through(&app, Some(untrusting)).await;
    assert!(
        untrusted.is_err(),
        "a client trusting another CA got through"
    );
    // Failed handshakes leave the server serving others.
    write_through(&app, Some(pki.client_tls(None)))
        .await
        .expect("a new TLS connection");
}

async fn reflection_lists_feedback(channel: Channel) -> bool {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    list.service
        .iter()
        .any(|s| s.name == "cxmetrics.v1.FeedbackService")
}

#[tokio::test]
async fn with_a_client_ca_only_clients_presenting_a_certificate_it_signed_get_through() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki, true).await;
    wait_for_health(&app, ServingStatus::Serving).await;
    assert!(reflection_lists_feedback(app.channel.clone()).await);
    write_through(&app, Some(pki.client_tls(Some(&pki.client))))
        .await
        .expect("a client with a certificate from the client CA");

    let anonymous = write_through(&app, Some(pki.client_tls(None))).await;
    assert!(anonymous.is_err(), "a client without a certificate got in");
    let stranger = write_through(&app, Some(pki.client_tls(Some(&pki.stranger)))).await;
    assert!(
        stranger.is_err(),
        "a client with another CA's certificate got in"
    );
    let plaintext = write_through(&app, None).await;
    assert!(plaintext.is_err(), "a plaintext client got in");
    assert_eq!(app.count("select count(*) from survey_responses").await, 1);
}

fn load_error(args: TlsArgs) -> String {
    format!("{:#}", args.load().expect_err("settings must be refused"))
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn tls_is_off_without_files_and_on_with_a_certificate_and_its_key() {
    let pki = Pki::new();
    assert!(TlsArgs::default().load().unwrap().is_none());
    let tls = pki.args(false).load().unwrap().expect("TLS on");
    assert!(!tls.is_mutual());
    let tls = pki.args(true).load().unwrap().expect("TLS on");
    assert!(tls.is_mutual());
    assert!(!format!("{tls:?}").contains("PRIVATE KEY"));
}

#[test]
fn a_certificate_and_a_key_must_be_given_together_and_a_client_ca_needs_both() {
    let pki = Pki::new();
    let without_key = load_error(TlsArgs {
        tls_key: None,
        ..pki.args(false)
    });
    assert!(
        without_key.contains("--tls-key (CXMETRICS_TLS_KEY)"),
        "{without_key}"
    );
    let without_cert = load_error(TlsArgs {
        tls_cert: None,
        ..pki.args(false)
    });
    assert!(
        without_cert.contains("--tls-cert (CXMETRICS_TLS_CERT)"),
        "{without_cert}"
    );
    let ca_alone = load_error(TlsArgs {
        tls_client_ca: Some(pki.path("ca.pem")),
        ..TlsArgs::default()
    });
    assert!(ca_alone.contains("CXMETRICS_TLS_CLIENT_CA"), "{ca_alone}");
    assert!(ca_alone.contains("CXMETRICS_TLS_CERT"), "{ca_alone}");
}

#[test]
fn a_missing_file_is_refused_naming_the_setting_and_the_path() {
    let pki = Pki::new();
    let missing = pki.path("no-such.pem");
    let cases = [
        (
            "--tls-cert (CXMETRICS_TLS_CERT)",
            TlsArgs {
                tls_cert: Some(missing.clone()),
                ..pki.args(false)
            },
        ),
        (
            "--tls-key (CXMETRICS_TLS_KEY)",
            TlsArgs {
                tls_key: Some(missing.clone()),
                ..pki.args(false)
            },
        ),
        (
            "--tls-client-ca (CXMETRICS_TLS_CLIENT_CA)",
            TlsArgs {
                tls_client_ca: Some(missing.clone()),
                ..pki.args(true)
            },
        ),
    ];
    for (setting, args) in cases {
        let error = load_error(args);
        assert!(error.contains(setting), "{error}");
        assert!(error.contains(&shown(&missing)), "{error}");
        assert!(error.contains("cannot read"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
}

#[test]
fn a_file_that_is_not_pem_is_refused_naming_the_setting_and_the_path() {
    let pki = Pki::new();
    let not_pem = pki.path("not-pem.txt");
    let error = load_error(TlsArgs {
        tls_cert: Some(not_pem.clone()),
        ..pki.args(false)
    });
    assert!(error.contains("--tls-cert (CXMETRICS_TLS_CERT)"), "{error}");
    assert!(error.contains(&shown(&not_pem)), "{error}");
    // A certificate given as the key is no key either.
    let error = load_error(TlsArgs {
        tls_key: Some(pki.path("server.pem")),
        ..pki.args(false)
    });
    assert!(error.contains("--tls-key (CXMETRICS_TLS_KEY)"), "{error}");
    assert!(error.contains(&shown(&pki.path("server.pem"))), "{error}");
    let error = load_error(TlsArgs {
        tls_client_ca: Some(not_pem.clone()),
        ..pki.args(true)
    });
    assert!(
        error.contains("--tls-client-ca (CXMETRICS_TLS_CLIENT_CA)"),
        "{error}"
    );
    assert!(error.contains(&shown(&not_pem)), "{error}");
}

#[test]
fn a_key_that_does_not_belong_to_the_certificate_is_refused() {
    let pki = Pki::new();
    let error = load_error(TlsArgs {
        tls_key: Some(pki.path("other.key")),
        ..pki.args(false)
    });
    assert!(error.contains("CXMETRICS_TLS_KEY"), "{error}");
    assert!(error.contains(&shown(&pki.path("other.key"))), "{error}");
}

/// The binary's last stderr line and exit code for `serve` with extra environment `env`.
fn serve_refused(env: &[(&str, &Path)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxmetrics"))
        .arg("serve")
        // Nothing listens there: the TLS files must be refused before any connection.
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env("CXMETRICS_LISTEN", "127.0.0.1:0")
        .env_remove("CXMETRICS_TLS_CERT")
        .env_remove("CXMETRICS_TLS_KEY")
        .env_remove("CXMETRICS_TLS_CLIENT_CA")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    (out.status.code(), last)
}

#[test]
fn the_binary_refuses_bad_tls_settings_with_one_line_naming_the_setting() {
    let pki = Pki::new();
    let (code, line) = serve_refused(&[("CXMETRICS_TLS_CERT", &pki.path("server.pem"))]);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("error: "), "{line}");
    assert!(line.contains("CXMETRICS_TLS_KEY"), "{line}");

    let not_pem = pki.path("not-pem.txt");
    let (code, line) = serve_refused(&[
        ("CXMETRICS_TLS_CERT", &pki.path("server.pem")),
        ("CXMETRICS_TLS_KEY", &not_pem),
    ]);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("error: "), "{line}");
    assert!(line.contains("CXMETRICS_TLS_KEY"), "{line}");
    assert!(line.contains(&shown(&not_pem)), "{line}");
}

#[tokio::test]
async fn the_binary_serves_mutual_tls_from_its_environment() {
    let pki = Pki::new();
    let app = spawn_app().await;
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    let (_child, addr) = spawn_binary(
        &app.database_url,
        &[
            ("CXMETRICS_TLS_CERT", cert.to_str().unwrap()),
            ("CXMETRICS_TLS_KEY", key.to_str().unwrap()),
            ("CXMETRICS_TLS_CLIENT_CA", ca.to_str().unwrap()),
        ],
    )
    .await;
    let channel = connect(&addr, Some(pki.client_tls(Some(&pki.client))))
        .await
        .expect("connect with a client certificate");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner().status);
        if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
            break;
        }
        assert!(Instant::now() < deadline, "never SERVING: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let anonymous = connect(&addr, Some(pki.client_tls(None))).await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate got an answer");
}

#[tokio::test]
async fn the_http_api_is_served_over_the_same_tls_as_grpc() {
    let pki = Pki::new();
    let app = spawn_tls_app(&pki, false).await;
    let curl = |extra: &[&str]| {
        let mut command = tokio::process::Command::new("curl");
        command
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
            ])
            .args(extra)
            .arg(format!("https://localhost:{}/healthz", app.addr.port()));
        command.output()
    };
    let ca = pki.path("ca.pem");
    // Clients that connect and never finish a handshake hold up nobody else.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    let trusted = curl(&["--cacert", ca.to_str().unwrap()]).await.unwrap();
    assert_eq!(String::from_utf8(trusted.stdout).unwrap(), "200 2");
    // A client that speaks only HTTP/1.1 (as some BI tools do) is served over TLS too.
    let http1 = curl(&["--cacert", ca.to_str().unwrap(), "--http1.1"])
        .await
        .unwrap();
    assert_eq!(String::from_utf8(http1.stdout).unwrap(), "200 1.1");
    // Without the CA the handshake fails: no answer at all.
    let untrusted = curl(&[]).await.unwrap();
    assert_eq!(String::from_utf8(untrusted.stdout).unwrap(), "000 0");
    drop(silent);
}

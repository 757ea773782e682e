//! The real binary exporting to an `https` collector whose certificate a test CA signed, made
//! here for each test: trusted through `OTEL_EXPORTER_OTLP_CERTIFICATE`, and with a client
//! certificate when the collector asks for one.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::{
    collector::{Collector, Received},
    export::{assert_write_trace, terminate, traced_write},
    helpers::*,
};

/// A certificate and its private key, both PEM.
struct Pair {
    cert: String,
    key: String,
}

/// A CA, the collector's certificate for localhost it signed and a client certificate it
/// signed, written to a temporary directory as `ca.pem`, `client.pem` and `client.key`.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    collector: Pair,
}

impl Pki {
    fn new() -> Self {
        let ca = authority("cxmetrics test CA");
        let client = signed(&ca, "cxmetrics", ExtendedKeyUsagePurpose::ClientAuth);
        let pki = Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            ca: ca.pem(),
            collector: signed(&ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth),
        };
        for (name, contents) in [
            ("ca.pem", &pki.ca),
            ("client.pem", &client.cert),
            ("client.key", &client.key),
        ] {
            std::fs::write(pki.path(name), contents).expect("write a test file");
        }
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The collector's TLS; with `mutual`, it also requires a client certificate of this CA.
    fn collector_tls(&self, mutual: bool) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(
            &self.collector.cert,
            &self.collector.key,
        ));
        match mutual {
            true => config.client_ca_root(Certificate::from_pem(&self.ca)),
            false => config,
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
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// Runs the binary with `env`, makes one traced write and stops it (which flushes its
/// spans); returns what `collector` received of that write's trace.
async fn export_one_write(
    app: &TestApp,
    collector: &Collector,
    env: &[(&str, &str)],
) -> (Vec<Received>, [u8; 8]) {
    let (mut child, addr) = spawn_binary(&app.database_url, env).await;
    let (trace_id, caller_span) = traced_write(&addr, &app.key).await;
    terminate(&mut child).await;
    (collector.trace(&trace_id), caller_span)
}

#[tokio::test]
async fn spans_reach_an_https_collector_signed_by_the_configured_ca_and_no_other() {
    let app = spawn_app().await;
    let pki = Pki::new();
    let (collector, endpoint) = Collector::start_tls(pki.collector_tls(false)).await;
    let ca = pki.path("ca.pem");

    let (received, caller_span) = export_one_write(
        &app,
        &collector,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&ca)),
        ],
    )
    .await;
    assert_write_trace(&received, caller_span);

    // The public roots do not know the test CA: the collector's certificate is refused.
    let (received, _) = export_one_write(
        &app,
        &collector,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    )
    .await;
    assert!(received.is_empty(), "{received:?}");
}

#[tokio::test]
async fn a_collector_that_asks_for_a_client_certificate_gets_the_configured_one() {
    let app = spawn_app().await;
    let pki = Pki::new();
    let (collector, endpoint) = Collector::start_tls(pki.collector_tls(true)).await;
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let trusted = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&ca)),
    ];

    let identified = [
        trusted.as_slice(),
        &[
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", path(&cert)),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&key)),
        ],
    ]
    .concat();
    let (received, caller_span) = export_one_write(&app, &collector, &identified).await;
    assert_write_trace(&received, caller_span);

    let (received, _) = export_one_write(&app, &collector, &trusted).await;
    assert!(received.is_empty(), "{received:?}");
}

#[tokio::test]
async fn an_unreadable_ca_file_stops_the_start_with_one_line_naming_the_setting() {
    let app = spawn_app().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cxmetrics"))
        .arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("CXMETRICS_LISTEN", "127.0.0.1:0")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://localhost:4317")
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")
        .output()
        .await
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );
}

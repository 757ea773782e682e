//! Where traces go: the OTLP/gRPC endpoint and, for an `https` one, the TLS settings of the
//! standard `OTEL_EXPORTER_OTLP_*` variables, read and checked at start so that a bad file
//! stops the process with one line naming the setting and the path.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Args;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::tls::{Setting, read_certificates, read_private_key};

/// The trace exporter's settings; no export without an endpoint.
#[derive(Debug, Clone, Default, Args)]
pub struct OtlpArgs {
    /// OTLP/gRPC endpoint to export traces to, e.g. http://localhost:4317; no export when
    /// unset. An https:// endpoint is reached over TLS.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = otlp_endpoint, global = true)]
    pub otlp_endpoint: Option<String>,
    /// PEM CA bundle that signs the collector's certificate, trusted instead of the public
    /// roots built in; https endpoints only.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_CERTIFICATE",
        value_name = "PATH",
        global = true
    )]
    pub otlp_certificate: Option<PathBuf>,
    /// PEM certificate chain presented to a collector that asks for one (mutual TLS); needs
    /// --otlp-client-key.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        value_name = "PATH",
        global = true
    )]
    pub otlp_client_certificate: Option<PathBuf>,
    /// PEM private key of --otlp-client-certificate.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        value_name = "PATH",
        global = true
    )]
    pub otlp_client_key: Option<PathBuf>,
}

const ENDPOINT: Setting = Setting("--otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT");
const CERTIFICATE: Setting = Setting("--otlp-certificate", "OTEL_EXPORTER_OTLP_CERTIFICATE");
const CLIENT_CERTIFICATE: Setting = Setting(
    "--otlp-client-certificate",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
);
const CLIENT_KEY: Setting = Setting("--otlp-client-key", "OTEL_EXPORTER_OTLP_CLIENT_KEY");

/// A checked trace export destination.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    pub endpoint: String,
    /// The TLS client configuration of an `https` endpoint; `None` for `http`.
    pub tls: Option<ClientTlsConfig>,
}

impl OtlpArgs {
    /// Reads and checks the settings: `None` without an endpoint, an error naming the setting
    /// when a file is missing or unusable, or TLS files are given for a plaintext endpoint.
    pub fn load(&self) -> anyhow::Result<Option<OtlpSettings>> {
        let tls_files = [
            (CERTIFICATE, &self.otlp_certificate),
            (CLIENT_CERTIFICATE, &self.otlp_client_certificate),
            (CLIENT_KEY, &self.otlp_client_key),
        ];
        let Some(endpoint) = &self.otlp_endpoint else {
            if let Some((setting, _)) = tls_files.iter().find(|(_, path)| path.is_some()) {
                bail!("{setting} is set but {ENDPOINT} is not: there is nothing to export to");
            }
            return Ok(None);
        };
        let secure = endpoint
            .parse::<http::Uri>()
            .is_ok_and(|uri| uri.scheme() == Some(&http::uri::Scheme::HTTPS));
        if !secure {
            if let Some((setting, _)) = tls_files.iter().find(|(_, path)| path.is_some()) {
                bail!(
                    "{setting} is set but {ENDPOINT} {endpoint} is plaintext: use an https:// \
                     endpoint"
                );
            }
            return Ok(Some(OtlpSettings {
                endpoint: endpoint.clone(),
                tls: None,
            }));
        }
        let tls = self.client_tls()?;
        Endpoint::from_shared(endpoint.clone())
            .and_then(|channel| channel.tls_config(tls.clone()))
            .map_err(|e| {
                let cause = anyhow::Error::from(e).root_cause().to_string();
                anyhow!("{ENDPOINT} {endpoint}: unusable TLS settings: {cause}")
            })?;
        Ok(Some(OtlpSettings {
            endpoint: endpoint.clone(),
            tls: Some(tls),
        }))
    }

    /// Trust: the given CA bundle, or else the public (Mozilla) roots built into the binary;
    /// identity: the client certificate and key, when both are given.
    fn client_tls(&self) -> anyhow::Result<ClientTlsConfig> {
        let config = match &self.otlp_certificate {
            Some(path) => ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read_certificates(CERTIFICATE, path)?)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        match (&self.otlp_client_certificate, &self.otlp_client_key) {
            (Some(cert), Some(key)) => Ok(config.identity(Identity::from_pem(
                read_certificates(CLIENT_CERTIFICATE, cert)?,
                read_private_key(CLIENT_KEY, key)?,
            ))),
            (Some(_), None) => {
                bail!("{CLIENT_CERTIFICATE} is set but {CLIENT_KEY} is not: give both")
            }
            (None, Some(_)) => {
                bail!("{CLIENT_KEY} is set but {CLIENT_CERTIFICATE} is not: give both")
            }
            (None, None) => Ok(config),
        }
    }
}

/// Accepts an absolute `http` or `https` URL.
fn otlp_endpoint(value: &str) -> Result<String, String> {
    let uri: http::Uri = value
        .parse()
        .map_err(|e| format!("not a URL ({e}); expected e.g. http://localhost:4317"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(value.to_owned()),
        _ => Err("expected an http:// or https:// URL, e.g. http://localhost:4317".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otlp_endpoint_must_be_an_http_url() {
        assert_eq!(
            otlp_endpoint("http://localhost:4317").as_deref(),
            Ok("http://localhost:4317")
        );
        assert!(otlp_endpoint("https://collector.example:4317").is_ok());
        assert!(otlp_endpoint("localhost:4317").is_err());
        assert!(otlp_endpoint("ftp://localhost:4317").is_err());
        assert!(otlp_endpoint("not a url").is_err());
    }

    fn args(endpoint: &str) -> OtlpArgs {
        OtlpArgs {
            otlp_endpoint: Some(endpoint.into()),
            ..OtlpArgs::default()
        }
    }

    #[test]
    fn an_http_endpoint_is_plaintext_and_an_https_one_uses_tls() {
        let plain = args("http://localhost:4317").load().unwrap().unwrap();
        assert!(plain.tls.is_none());
        let secure = args("https://collector.example:4317")
            .load()
            .unwrap()
            .unwrap();
        assert!(secure.tls.is_some());
        assert!(OtlpArgs::default().load().unwrap().is_none());
    }

    #[test]
    fn tls_files_for_a_plaintext_or_missing_endpoint_are_refused_by_name() {
        let mut plain = args("http://localhost:4317");
        plain.otlp_certificate = Some("ca.pem".into());
        let error = plain.load().unwrap_err().to_string();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && error.contains("https://"),
            "{error}"
        );
        let none = OtlpArgs {
            otlp_client_key: Some("client.key".into()),
            ..OtlpArgs::default()
        };
        let error = none.load().unwrap_err().to_string();
        assert!(error.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"), "{error}");
    }

    #[test]
    fn a_missing_ca_file_or_half_a_client_identity_is_refused_by_name() {
        let mut missing = args("https://localhost:4317");
        missing.otlp_certificate = Some("/nonexistent/ca.pem".into());
        let error = missing.load().unwrap_err().to_string();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && error.contains("/nonexistent"),
            "{error}"
        );
        let mut half = args("https://localhost:4317");
        half.otlp_client_certificate = Some("client.pem".into());
        let error = half.load().unwrap_err().to_string();
        assert!(error.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"), "{error}");
    }
}

//! The HTTP/2 settings the server announces: the bound on concurrent streams per connection
//! and the flow-control windows that keep unread small DATA frames under h2's budget.
//! Read straight off the wire, as a client sees them.

use std::time::Duration;

use cxmetrics::startup::{CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const WINDOW_UPDATE: u8 = 0x8;
const ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
/// Every HTTP/2 connection and stream starts with this window (RFC 9113, 6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;

/// What the server told a new connection.
#[derive(Debug, Default)]
struct Announced {
    max_concurrent_streams: Option<u32>,
    initial_window_size: Option<u32>,
    /// The first WINDOW_UPDATE on the connection (stream 0).
    connection_window_increment: Option<u32>,
}

/// Opens an HTTP/2 connection to `addr` and reads frames until the server has sent its
/// SETTINGS and grown the connection window.
async fn announced(addr: &str) -> Announced {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    // The preface, then an empty SETTINGS frame.
    tcp.write_all(PREFACE).await.unwrap();
    tcp.write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut seen = Announced::default();
    let mut settings_seen = false;
    let read = async {
        while !settings_seen || seen.connection_window_increment.is_none() {
            let mut header = [0u8; 9];
            tcp.read_exact(&mut header).await.expect("a frame header");
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let (kind, flags) = (header[3], header[4]);
            let stream = u32::from_be_bytes(header[5..9].try_into().unwrap()) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            tcp.read_exact(&mut payload).await.expect("a frame payload");
            match kind {
                SETTINGS if flags & ACK == 0 => {
                    settings_seen = true;
                    for entry in payload.chunks_exact(6) {
                        let id = u16::from_be_bytes([entry[0], entry[1]]);
                        let value = u32::from_be_bytes(entry[2..6].try_into().unwrap());
                        match id {
                            SETTINGS_MAX_CONCURRENT_STREAMS => {
                                seen.max_concurrent_streams = Some(value)
                            }
                            SETTINGS_INITIAL_WINDOW_SIZE => seen.initial_window_size = Some(value),
                            _ => {}
                        }
                    }
                }
                WINDOW_UPDATE if stream == 0 => {
                    let increment = u32::from_be_bytes(payload[..4].try_into().unwrap());
                    seen.connection_window_increment = Some(increment & 0x7fff_ffff);
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server announces its settings");
    seen
}

#[tokio::test]
async fn a_connection_may_open_100_streams_by_default_and_small_flow_control_windows() {
    let app = spawn_app().await;
    let (_server, addr) = spawn_binary(&app.database_url, &[]).await;
    let seen = announced(&addr).await;
    assert_eq!(seen.max_concurrent_streams, Some(100));
    assert_eq!(seen.initial_window_size, Some(STREAM_WINDOW_BYTES));
    assert_eq!(
        seen.connection_window_increment,
        Some(CONNECTION_WINDOW_BYTES - DEFAULT_WINDOW)
    );
}

#[tokio::test]
async fn the_stream_bound_per_connection_is_configurable() {
    let app = spawn_app().await;
    let (_server, addr) = spawn_binary(
        &app.database_url,
        &[("CXMETRICS_MAX_STREAMS_PER_CONNECTION", "7")],
    )
    .await;
    assert_eq!(announced(&addr).await.max_concurrent_streams, Some(7));
}

#[tokio::test]
async fn a_stream_bound_of_zero_is_refused_at_start() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cxmetrics"))
        .args(["serve", "--max-streams-per-connection", "0"])
        .env("DATABASE_URL", database_url())
        .output()
        .await
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-streams-per-connection"), "{stderr}");
}

//! Floods of unknown API keys: they cost one database lookup each at most, and a real key's
//! writes keep succeeding quickly while many connections send random well-formed keys.

use std::time::{Duration, Instant};

use cxmetrics::proto as pb;
use rand::RngCore;
use tonic::Code;

use crate::{helpers::*, server::spawn_app_behind_proxy};

/// A well-formed key that no tenant has: `cxm_<16 hex>_<64 hex>`.
fn random_key() -> String {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    format!("cxm_{}_{}", hex(&id), hex(&secret))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn upsert(id: &str) -> pb::UpsertCustomerRequest {
    pb::UpsertCustomerRequest {
        customer: Some(customer(id)),
    }
}

#[tokio::test]
async fn an_unknown_key_costs_one_lookup_however_often_it_is_sent() {
    let (app, proxy) = spawn_app_behind_proxy(Options {
        key_cache_ttl: Duration::from_secs(60),
        ..Options::default()
    })
    .await;
    let key = random_key();
    let call = || async {
        app.feedback_with(Some(&key))
            .upsert_customer(upsert("c1"))
            .await
            .unwrap_err()
            .code()
    };
    assert_eq!(call().await, Code::Unauthenticated);
    // With the database out of reach, a lookup would fail with UNAVAILABLE: the same
    // unknown key is refused from the cache, again and again.
    proxy.set_up(false);
    // (40 failures: within this address's budget of failed authentications.)
    for _ in 0..40 {
        assert_eq!(call().await, Code::Unauthenticated);
    }
    // A key never seen needs the database, which is down.
    let other = random_key();
    let status = app
        .feedback_with(Some(&other))
        .upsert_customer(upsert("c1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn a_flood_of_unknown_keys_does_not_slow_a_real_keys_writes() {
    let app = spawn_app().await;
    let (_child, addr) = spawn_binary(&app.database_url, &[]).await;
    // The real key is known (cached) before the flood starts, as a working client's is.
    let channel = connect(&addr, None).await.unwrap();
    let mut real = feedback_client(&channel, &app.key);
    real.upsert_customer(upsert("warm-up")).await.unwrap();

    let flood_for = Duration::from_secs(5);
    let mut flooders = Vec::new();
    for _ in 0..40 {
        let addr = addr.clone();
        flooders.push(tokio::spawn(async move {
            // Each flooder is its own connection.
            let channel = connect(&addr, None).await.unwrap();
            let started = Instant::now();
            let (mut refused, mut shed) = (0u64, 0u64);
            while started.elapsed() < flood_for {
                let mut client = feedback_client(&channel, &random_key());
                match client.upsert_customer(upsert("x")).await {
                    Err(s) if s.code() == Code::Unauthenticated => refused += 1,
                    Err(s) if s.code() == Code::ResourceExhausted => shed += 1,
                    other => panic!("an unknown key got {other:?}"),
                }
            }
            (refused, shed)
        }));
    }

    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < flood_for {
        let call = Instant::now();
        real.upsert_customer(upsert(&format!("real-{i}")))
            .await
            .expect("a real key's write succeeds during the flood");
        latencies.push(call.elapsed());
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut refused, mut shed) = (0, 0);
    for flooder in flooders {
        let (r, s) = flooder.await.unwrap();
        refused += r;
        shed += s;
    }
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "flood: {refused} refused, {shed} shed; real writes: {} , p50 {:?}, p99 {p99:?}",
        latencies.len(),
        latencies[latencies.len() / 2]
    );
    assert!(
        refused + shed > 1_000,
        "the flood was too thin to prove anything"
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    assert_eq!(
        app.count("select count(*) from customers where customer_id like 'real-%'")
            .await,
        latencies.len() as i64
    );
}

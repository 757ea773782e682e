use std::time::{Duration, Instant};

use cxmetrics::proto as pb;
use tonic::Code;

use crate::helpers::*;

async fn write_with(app: &TestApp, key: Option<&str>) -> Result<i32, tonic::Status> {
    app.feedback_with(key)
        .upsert_customer(pb::UpsertCustomerRequest {
            customer: Some(customer("c1")),
        })
        .await
        .map(|r| r.into_inner().outcome)
}

#[tokio::test]
async fn a_call_without_a_key_is_unauthenticated() {
    let app = spawn_app().await;
    let status = write_with(&app, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("Bearer"));
}

#[tokio::test]
async fn unknown_and_malformed_keys_are_unauthenticated() {
    let app = spawn_app().await;
    let mut forged = app.key.clone();
    let last = if forged.ends_with('a') { "b" } else { "a" };
    forged.replace_range(forged.len() - 1.., last);
    for key in [forged.as_str(), "not-a-key", "cxm_0000000000000000_00"] {
        let status = write_with(&app, Some(key)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{key}");
    }
    assert_eq!(app.count("select count(*) from customers").await, 0);
}

#[tokio::test]
async fn a_read_only_key_may_not_write() {
    let app = spawn_app().await;
    let read_only = app.create_key(TENANT, "read").await;
    let status = write_with(&app, Some(&read_only)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(app.count("select count(*) from customers").await, 0);
    let admin = app.create_key(TENANT, "admin").await;
    write_with(&app, Some(&admin))
        .await
        .expect("admin may write");
}

#[tokio::test]
async fn a_revoked_key_stops_working_within_the_cache_period() {
    let app = spawn_app().await;
    write_with(&app, Some(&app.key)).await.expect("valid key");
    let key_id = app.key.split('_').nth(1).unwrap().to_owned();
    assert!(app.store.revoke_key(&key_id).await.unwrap());
    // The test server trusts a cached key for 500 ms.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match write_with(&app, Some(&app.key)).await {
            Err(status) if status.code() == Code::Unauthenticated => break,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("the revoked key still works: {other:?}"),
        }
    }
}

#[tokio::test]
async fn key_use_is_recorded_without_storing_the_key() {
    let app = spawn_app().await;
    write_with(&app, Some(&app.key)).await.unwrap();
    let keys = app.store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    // last_used_time is written in the background right after the lookup.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app
        .count("select count(*) from api_keys where last_used_time is not null")
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "last_used_time never set");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored_hash: Vec<u8> = sqlx::query_scalar("select key_hash from api_keys")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored_hash.len(), 32);
    let everything: String = sqlx::query_scalar("select api_keys::text from api_keys")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let secret = app.key.rsplit('_').next().unwrap();
    assert!(
        !everything.contains(secret),
        "the key itself must not be stored"
    );
}

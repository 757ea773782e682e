//! The portal in a real browser: headless Chromium through chromedriver against the real
//! server and PostgreSQL. One server with a known dataset serves every test; each test has a
//! browser of its own.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod browser;
mod compare;
mod dataset;
mod flows;
mod pages;

use std::sync::OnceLock;

use serde_json::Value;

use browser::Browser;
use helpers::{TestApp, spawn_app};

/// The range, zone and granularity every page is opened with.
pub const START: &str = "2025-01-01";
pub const END: &str = "2025-07-01";
pub const TZ: &str = "Europe/Berlin";

/// The tenant of the dataset and its read key; an empty tenant and its read key.
pub struct World {
    pub runtime: tokio::runtime::Runtime,
    pub app: TestApp,
    pub read_key: String,
    pub empty_key: String,
}

/// The shared server, started and loaded once.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let (app, read_key, empty_key) = runtime.block_on(async {
            let app = spawn_app().await;
            dataset::load(&app).await;
            let read_key = app.create_key(helpers::TENANT, "read").await;
            let empty_key = app.create_key("tenant-empty", "read").await;
            (app, read_key, empty_key)
        });
        World {
            runtime,
            app,
            read_key,
            empty_key,
        }
    })
}

/// Runs `test` on the shared runtime with a fresh browser.
pub fn with_browser<F>(test: impl FnOnce(&'static World, Browser) -> F)
where
    F: Future<Output = ()>,
{
    let world = world();
    world.runtime.block_on(async {
        let browser = Browser::start().await.expect("start Chromium");
        test(world, browser).await;
    });
}

/// `?name=value&...`, URL-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        out.append_pair(name, value);
    }
    format!("?{}", out.finish())
}

/// The portal's URL of `page` with the fixed range and `extra` parameters (which replace
/// the default of the same name).
pub fn page_url(app: &TestApp, page: &str, extra: &[(&str, &str)]) -> String {
    let defaults = [
        ("page", page),
        ("start", START),
        ("end", END),
        ("tz", TZ),
        ("granularity", "month"),
    ];
    let mut pairs: Vec<(&str, &str)> = defaults
        .into_iter()
        .filter(|(name, _)| !extra.iter().any(|(e, _)| e == name))
        .collect();
    pairs.extend_from_slice(extra);
    app.url(&format!("/{}", query(&pairs)))
}

/// The query's pairs, sorted, so two URLs compare whatever their order.
pub fn pairs_of(url_or_query: &str) -> Vec<(String, String)> {
    let query = url_or_query
        .split_once('?')
        .map_or(url_or_query, |(_, q)| q);
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    pairs.sort();
    pairs
}

/// GETs `path_and_query` with `key`; panics unless it answers 200. Returns the body bytes.
pub async fn api_bytes(app: &TestApp, path_and_query: &str, key: &str) -> Vec<u8> {
    let response = reqwest::Client::new()
        .get(app.url(path_and_query))
        .bearer_auth(key)
        .send()
        .await
        .expect("HTTP request");
    let status = response.status();
    let body = response.bytes().await.expect("HTTP body").to_vec();
    assert_eq!(
        status,
        200,
        "{path_and_query}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// The API's JSON answer to `path` with the fixed range and `params`.
pub async fn api_json(app: &TestApp, key: &str, path: &str, params: &[(&str, &str)]) -> Value {
    let mut pairs = vec![("start", START), ("end", END), ("time_zone", TZ)];
    pairs.extend_from_slice(params);
    let body = api_bytes(app, &format!("{path}{}", query(&pairs)), key).await;
    serde_json::from_slice(&body).expect("JSON answer")
}

/// Asserts the browser logged no console errors since the last read. A request the service
/// shed (429, the tests' browsers share one tenant's read limit) is logged by Chromium
/// itself and retried by the page, which fails its own state check if the retry fails too.
pub async fn assert_no_console_errors(browser: &Browser, what: &str) {
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .expect("read the console")
        .into_iter()
        .filter(|e| !e.contains("the server responded with a status of 429"))
        .collect();
    assert!(errors.is_empty(), "console errors on {what}: {errors:#?}");
}

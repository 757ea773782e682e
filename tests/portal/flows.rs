//! What a person does: filter and group (URL, reload, back), download CSV, sign in with a
//! wrong or write-only key and sign out, look at an empty tenant; and the page's policy.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::{
    api_bytes, assert_no_console_errors, browser::Browser, compare::table, helpers::TENANT,
    page_url, pages::assert_page_matches_api, pairs_of, with_browser,
};

/// The NPS page's total responses as shown in its summary.
fn shown_responses(page: &Value) -> String {
    page["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s[0] == "responses")
        .map(|s| s[1].as_str().unwrap().to_owned())
        .expect("a responses number")
}

async fn settle(browser: &Browser, expect: &str) {
    let (state, _) = browser.wait_settled().await.unwrap();
    assert_eq!(state, expect);
}

#[test]
fn a_filter_and_a_grouping_change_numbers_and_url_and_survive_reload_and_back() {
    with_browser(|world, browser| async move {
        let (app, key) = (&world.app, world.read_key.as_str());
        let url = page_url(app, "nps", &[]);
        assert_eq!(browser.sign_in(&url, key).await.unwrap(), "ready");
        let all = assert_page_matches_api(app, key, &browser, "nps", &[]).await;
        let plain = browser.search().await.unwrap();

        let channel = browser
            .client
            .find(Locator::Id("ctl-channel"))
            .await
            .unwrap();
        channel.send_keys("chat").await.unwrap();
        browser
            .client
            .find(Locator::Id("apply"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pairs_of(&browser.search().await.unwrap())
            .contains(&("channel".into(), "chat".into()))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the URL never got channel=chat"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        settle(&browser, "ready").await;
        let filtered_search = browser.search().await.unwrap();
        let chat = assert_page_matches_api(app, key, &browser, "nps", &[("channel", "chat")]).await;
        assert_ne!(
            shown_responses(&chat),
            shown_responses(&all),
            "the filter changes the numbers"
        );

        browser
            .client
            .find(Locator::Id("ctl-group-by"))
            .await
            .unwrap()
            .select_by_value("survey")
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pairs_of(&browser.search().await.unwrap())
            .contains(&("group_by".into(), "survey".into()))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the URL never got group_by=survey"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        settle(&browser, "ready").await;
        let grouped_search = browser.search().await.unwrap();
        let both = [("channel", "chat"), ("group_by", "survey")];
        let grouped = assert_page_matches_api(app, key, &browser, "nps", &both).await;
        let groups: Vec<&str> = table(&grouped, "nps", None)["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["group"].as_str().unwrap_or_default())
            .collect();
        assert!(
            groups.contains(&"survey-a") && groups.contains(&"survey-b"),
            "{groups:?}"
        );

        // A reload of the shared link shows the same view.
        let link = app.url(&format!("/{grouped_search}"));
        browser.open(&link).await.unwrap();
        assert_eq!(browser.search().await.unwrap(), grouped_search);
        let reloaded = crate::compare::shown(&browser).await;
        assert_eq!(
            reloaded, grouped,
            "the reloaded link shows the same numbers"
        );
        let group_by = browser
            .eval("return [document.getElementById('ctl-group-by').value, document.getElementById('ctl-channel').value];")
            .await
            .unwrap();
        assert_eq!(
            group_by,
            json!(["survey", "chat"]),
            "the controls are restored"
        );

        // Back: opening the URL on screen again is a reload (no new history entry).
        browser.client.back().await.unwrap();
        browser.wait_for_search(&filtered_search).await.unwrap();
        settle(&browser, "ready").await;
        assert_eq!(
            crate::compare::shown(&browser).await,
            chat,
            "back shows the filtered view"
        );
        browser.client.back().await.unwrap();
        browser.wait_for_search(&plain).await.unwrap();
        settle(&browser, "ready").await;
        assert_eq!(
            crate::compare::shown(&browser).await,
            all,
            "back shows the first view"
        );
        assert_no_console_errors(&browser, "filters").await;
    });
}

/// Clicks `#csv-download` and returns the downloaded bytes and the button's API URL.
async fn download(browser: &Browser) -> (Vec<u8>, String, String) {
    let button = browser
        .client
        .find(Locator::Id("csv-download"))
        .await
        .unwrap();
    let api_url = button
        .attr("data-api-url")
        .await
        .unwrap()
        .expect("data-api-url");
    let filename = button
        .attr("data-filename")
        .await
        .unwrap()
        .expect("data-filename");
    button.click().await.unwrap();
    let file = browser
        .wait_for_download(Duration::from_secs(20))
        .await
        .unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(file.file_name().unwrap().to_str().unwrap(), filename);
    std::fs::remove_file(&file).unwrap();
    (bytes, api_url, filename)
}

#[test]
fn the_csv_download_is_the_apis_csv_for_the_view_on_screen() {
    with_browser(|world, browser| async move {
        let (app, key) = (&world.app, world.read_key.as_str());
        let extra = [("channel", "email"), ("group_by", "survey")];
        let url = page_url(app, "nps", &extra);
        assert_eq!(browser.sign_in(&url, key).await.unwrap(), "ready");
        let (bytes, api_url, _) = download(&browser).await;
        assert!(api_url.starts_with("/v1/metrics/nps?"), "{api_url}");
        let expected: Vec<(String, String)> = [
            ("channel", "email"),
            ("end", crate::END),
            ("format", "csv"),
            ("granularity", "month"),
            ("group_by", "survey"),
            ("start", crate::START),
            ("time_zone", crate::TZ),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(
            pairs_of(&api_url),
            expected,
            "the CSV is of the view's parameters"
        );
        let api = api_bytes(app, &api_url, key).await;
        assert!(
            api.starts_with(b"period_start,group,"),
            "{}",
            String::from_utf8_lossy(&api)
        );
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&api)
        );

        // A listing's CSV has every matching row, not only the 50 on screen.
        browser
            .open(&page_url(app, "responses", &[]))
            .await
            .unwrap();
        let (bytes, api_url, filename) = download(&browser).await;
        assert_eq!(
            filename,
            format!(
                "cxmetrics-survey-responses-{}-to-{}.csv",
                crate::START,
                crate::END
            )
        );
        let api = api_bytes(app, &api_url, key).await;
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&api)
        );
        let json =
            crate::api_json(app, key, "/v1/survey-responses", &[("page_size", "1000")]).await;
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        let rows = json["rows"].as_array().unwrap().len();
        assert!(rows > 50, "more rows than one page: {rows}");
        assert_eq!(lines, rows + 1, "a header and every row");
        assert_no_console_errors(&browser, "CSV downloads").await;
    });
}

async fn sign_in_error(browser: &Browser) -> (String, String) {
    let error = browser
        .client
        .find(Locator::Id("sign-in-error"))
        .await
        .unwrap();
    assert!(
        error.is_displayed().await.unwrap(),
        "the sign-in error is shown"
    );
    let status = error.attr("data-status").await.unwrap().unwrap_or_default();
    (status, error.text().await.unwrap())
}

#[test]
fn wrong_and_write_only_keys_are_refused_and_sign_out_forgets_the_key() {
    with_browser(|world, browser| async move {
        let app = &world.app;
        let url = page_url(app, "overview", &[]);
        browser.client.goto(&url).await.unwrap();
        browser.wait_for_state(&["signed-out"]).await.unwrap();
        browser.screenshot("sign-in-desktop").await.unwrap();
        browser.set_width(390).await.unwrap();
        browser.screenshot("sign-in-phone").await.unwrap();
        let violations = browser.axe_violations().await.unwrap();
        assert!(
            violations.is_empty(),
            "axe-core on sign-in: {violations:#?}"
        );
        browser.set_width(1280).await.unwrap();
        assert_no_console_errors(&browser, "the sign-in form").await;

        let state = browser.sign_in(&url, "cxk_not_a_key_at_all").await.unwrap();
        assert_eq!(state, "signed-out");
        let (status, wrong) = sign_in_error(&browser).await;
        assert_eq!(status, "401");
        assert!(wrong.contains("not valid"), "{wrong}");
        browser.screenshot("sign-in-wrong-key").await.unwrap();

        let write_only = app.create_key(TENANT, "write").await;
        assert_eq!(
            browser.sign_in(&url, &write_only).await.unwrap(),
            "signed-out"
        );
        let (status, no_read) = sign_in_error(&browser).await;
        assert_eq!(status, "403");
        assert!(no_read.contains("no read access"), "{no_read}");
        assert_ne!(wrong, no_read, "the two refusals read differently");
        let stored = browser.eval("return sessionStorage.length;").await.unwrap();
        assert_eq!(stored, json!(0), "a refused key is not kept");
        // The refused requests log "Failed to load resource" (401, 403): nothing else.
        let refused = browser.console_errors().await.unwrap();
        assert!(
            !refused.is_empty(),
            "the console log shows the refused requests"
        );
        for error in refused {
            assert!(error.contains("Failed to load resource"), "{error}");
        }

        assert_eq!(
            browser.sign_in(&url, &world.read_key).await.unwrap(),
            "ready"
        );
        let stored = browser.eval("return sessionStorage.length;").await.unwrap();
        assert_eq!(stored, json!(1), "the key is kept for the tab");
        browser
            .client
            .find(Locator::Id("sign-out"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser.wait_for_state(&["signed-out"]).await.unwrap();
        let stored = browser.eval("return sessionStorage.length;").await.unwrap();
        assert_eq!(stored, json!(0), "sign-out clears sessionStorage");
        let form = browser.client.find(Locator::Id("api-key")).await.unwrap();
        assert!(
            form.is_displayed().await.unwrap(),
            "the sign-in form is back"
        );
        let app_hidden = browser
            .eval("return document.getElementById('app').hidden;")
            .await
            .unwrap();
        assert_eq!(app_hidden, json!(true), "the dashboard is hidden");
        // A reload after sign-out stays signed out.
        browser.client.goto(&url).await.unwrap();
        browser.wait_for_state(&["signed-out"]).await.unwrap();
        assert_no_console_errors(&browser, "the good sign-in and sign-out").await;
    });
}

#[test]
fn a_tenant_without_data_sees_a_friendly_empty_state() {
    with_browser(|world, browser| async move {
        let app = &world.app;
        let url = page_url(app, "overview", &[]);
        assert_eq!(
            browser.sign_in(&url, &world.empty_key).await.unwrap(),
            "empty"
        );
        // Every kind of page empty at desktop width; the overview and NPS also on a phone.
        let views = [
            ("overview", 1280, "desktop"),
            ("nps", 1280, "desktop"),
            ("response-times", 1280, "desktop"),
            ("retention", 1280, "desktop"),
            ("comment-themes", 1280, "desktop"),
            ("responses", 1280, "desktop"),
            ("overview", 390, "phone"),
            ("nps", 390, "phone"),
        ];
        for (page, width, device) in views {
            browser.set_width(width).await.unwrap();
            browser.open(&page_url(app, page, &[])).await.unwrap();
            assert_eq!(browser.state().await.unwrap(), "empty", "{page}");
            let empty = browser
                .client
                .find(Locator::Css("[data-empty]"))
                .await
                .unwrap();
            assert!(
                empty.is_displayed().await.unwrap(),
                "{page}: the empty state shows"
            );
            let text = empty.text().await.unwrap();
            assert!(text.contains("No data in this range yet"), "{page}: {text}");
            let broken = browser
                .eval(
                    "return document.querySelectorAll('#content canvas, #content table, \
                     #error:not([hidden])').length;",
                )
                .await
                .unwrap();
            assert_eq!(broken, json!(0), "{page}: no charts or tables without data");
            if matches!(page, "overview" | "nps") {
                let violations = browser.axe_violations().await.unwrap();
                assert!(
                    violations.is_empty(),
                    "axe-core on empty {page} at {width} px: {violations:#?}"
                );
                browser
                    .screenshot(&format!("empty-{page}-{device}"))
                    .await
                    .unwrap();
            }
            assert_no_console_errors(&browser, &format!("empty {page}")).await;
        }
    });
}

#[test]
fn the_page_is_served_under_a_strict_content_security_policy() {
    let world = crate::world();
    world.runtime.block_on(async {
        let response = reqwest::get(world.app.url("/")).await.unwrap();
        assert_eq!(response.status(), 200);
        let csp = response
            .headers()
            .get("content-security-policy")
            .expect("a Content-Security-Policy header")
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        let html = response.text().await.unwrap();
        let lower = html.to_ascii_lowercase();
        let scripts: Vec<&str> = lower.split("<script").skip(1).collect();
        assert_eq!(scripts.len(), 2, "Chart.js and the app");
        for script in scripts {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains(" src="), "an inline script: <script{tag}>");
            let after = &script[script.find('>').unwrap() + 1..];
            assert!(
                after.trim_start().starts_with("</script>"),
                "a script with a body"
            );
        }
        assert!(
            !lower.contains(" style="),
            "a style attribute in index.html"
        );
        assert!(!lower.contains("<style"), "a style element in index.html");
        assert!(!has_handler(&lower), "an inline event handler");

        // Every file revalidates (no-cache) and a browser that holds it gets a 304.
        let client = reqwest::Client::new();
        for path in ["/", "/assets/app.js", "/assets/vendor/chart.umd.min.js"] {
            let first = client.get(world.app.url(path)).send().await.unwrap();
            assert_eq!(first.status(), 200, "{path}");
            assert_eq!(first.headers()["cache-control"], "no-cache", "{path}");
            let etag = first.headers()["etag"].clone();
            let again = client
                .get(world.app.url(path))
                .header("if-none-match", etag.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{path}");
            assert_eq!(again.headers()["etag"], etag, "{path}");
            assert!(again.bytes().await.unwrap().is_empty(), "{path}");
            let stale = client
                .get(world.app.url(path))
                .header("if-none-match", "\"other\"")
                .send()
                .await
                .unwrap();
            assert_eq!(stale.status(), 200, "{path}");
        }
        let missing = client
            .get(world.app.url("/assets/missing.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
    });
}

/// By keyboard alone: the first Tab reaches the skip link, Tab moves on to the navigation,
/// and Enter on a page's link opens that page.
#[test]
fn the_portal_is_usable_by_keyboard() {
    use fantoccini::key::Key;
    with_browser(|world, browser| async move {
        let app = &world.app;
        let url = page_url(app, "nps", &[]);
        assert_eq!(
            browser.sign_in(&url, &world.read_key).await.unwrap(),
            "ready"
        );
        browser.open(&url).await.unwrap();
        let focused = "const a = document.activeElement; \
                       return [a.tagName, a.textContent.trim(), a.getAttribute('href')];";
        let body = browser.client.find(Locator::Css("body")).await.unwrap();
        body.send_keys(&Key::Tab.to_string()).await.unwrap();
        let first = browser.eval(focused).await.unwrap();
        assert_eq!(first[0], "A", "the first Tab reaches a link: {first}");
        assert!(
            first[1].as_str().unwrap().to_lowercase().contains("skip"),
            "the first Tab reaches the skip link: {first}"
        );
        let mut tabs = 0;
        while browser.eval(focused).await.unwrap()[1] != "CSAT" {
            tabs += 1;
            assert!(tabs <= 40, "Tab reaches the CSAT link");
            let active = browser.client.active_element().await.unwrap();
            active.send_keys(&Key::Tab.to_string()).await.unwrap();
        }
        let link = browser.client.active_element().await.unwrap();
        link.send_keys(&Key::Enter.to_string()).await.unwrap();
        let mut waited = 0;
        while !browser.search().await.unwrap().contains("page=csat") {
            waited += 1;
            assert!(waited <= 250, "Enter on the CSAT link opens the CSAT page");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(browser.wait_settled().await.unwrap().0, "ready");
        let heading = browser
            .eval("return document.getElementById('page-title').textContent.trim();")
            .await
            .unwrap();
        assert_eq!(heading, "CSAT", "the CSAT page is shown");
        assert_no_console_errors(&browser, "keyboard navigation").await;
        browser.close().await.unwrap();
    });
}

/// Whether an HTML text has an inline event handler attribute (` onclick=` and the like).
fn has_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    })
}

/// Polls until the URL's query has `name` (with any value); returns that value.
async fn wait_for_param(browser: &Browser, name: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let search = browser.search().await.unwrap();
        if let Some((_, value)) = pairs_of(&search).into_iter().find(|(n, _)| n == name) {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the URL never got {name}: {search}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn listings_page_through_the_api_and_themes_link_to_their_comments() {
    with_browser(|world, browser| async move {
        let (app, key) = (&world.app, world.read_key.as_str());
        let url = page_url(app, "responses", &[]);
        assert_eq!(browser.sign_in(&url, key).await.unwrap(), "ready");
        let first = crate::api_json(app, key, "/v1/survey-responses", &[("page_size", "50")]).await;
        let token = first["next_page_token"].as_str().expect("a second page");
        let second = crate::api_json(
            app,
            key,
            "/v1/survey-responses",
            &[("page_size", "50"), ("page_token", token)],
        )
        .await;

        let next = browser.client.find(Locator::Id("page-next")).await.unwrap();
        next.click().await.unwrap();
        assert_eq!(wait_for_param(&browser, "page_token").await, token);
        settle(&browser, "ready").await;
        let shown = crate::compare::shown(&browser).await;
        let rows = second["rows"].as_array().unwrap();
        crate::compare::assert_table(&shown, "responses", None, rows);
        let label = browser
            .client
            .find(Locator::Id("page-label"))
            .await
            .unwrap();
        assert!(label.text().await.unwrap().starts_with("Page 2"));

        let previous = browser
            .client
            .find(Locator::Id("page-previous"))
            .await
            .unwrap();
        previous.click().await.unwrap();
        browser
            .wait_for_search(&crate::query(&[
                ("page", "responses"),
                ("start", crate::START),
                ("end", crate::END),
                ("tz", crate::TZ),
                ("granularity", "month"),
                ("frt", "60"),
            ]))
            .await
            .unwrap();
        settle(&browser, "ready").await;
        let shown = crate::compare::shown(&browser).await;
        let rows = first["rows"].as_array().unwrap();
        crate::compare::assert_table(&shown, "responses", None, rows);

        // A theme's link opens the responses whose comment has it.
        browser
            .open(&page_url(app, "comment-themes", &[]))
            .await
            .unwrap();
        let link = browser
            .client
            .find(Locator::Css(
                "table[data-side=negative] tbody tr:first-child a",
            ))
            .await
            .unwrap();
        let phrase = link.text().await.unwrap();
        link.click().await.unwrap();
        assert_eq!(wait_for_param(&browser, "comment_query").await, phrase);
        settle(&browser, "ready").await;
        let search = browser.search().await.unwrap();
        assert!(pairs_of(&search).contains(&("page".into(), "responses".into())));
        assert!(pairs_of(&search).contains(&("kind".into(), "nps".into())));
        let json = crate::api_json(
            app,
            key,
            "/v1/survey-responses",
            &[
                ("kind", "nps"),
                ("comment_query", &phrase),
                ("page_size", "50"),
            ],
        )
        .await;
        let rows = json["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "responses mention {phrase:?}");
        let shown = crate::compare::shown(&browser).await;
        crate::compare::assert_table(&shown, "responses", None, rows);
        assert_no_console_errors(&browser, "paging and theme links").await;
    });
}

/// A service that admits one read of a tenant at a time sheds most of the overview's
/// queries (429 with Retry-After): the page waits as told, asks again, and draws the same
/// numbers as the API's.
#[test]
fn shed_queries_are_asked_again_until_the_overview_is_drawn() {
    let world = crate::world();
    world.runtime.block_on(async {
        let app = crate::helpers::spawn_app_with(crate::helpers::Options {
            read_limits: cxmetrics::app::ReadLimits {
                global: 1,
                per_tenant: 1,
            },
            ..Default::default()
        })
        .await;
        crate::dataset::load(&app).await;
        let key = app.create_key(TENANT, "read").await;
        let browser = Browser::start().await.expect("start Chromium");
        let url = page_url(&app, "overview", &[]);
        assert_eq!(browser.sign_in(&url, &key).await.unwrap(), "ready");
        let shed = browser
            .console_errors()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.contains("status of 429"))
            .count();
        assert!(shed > 0, "the service shed none of the overview's queries");
        assert_page_matches_api(&app, &key, &browser, "overview", &[]).await;
        browser.close().await.unwrap();
    });
}

/// On a slow network (every request 1.5 s late) the page shows its progress line and is
/// busy until the numbers arrive; a query the API refuses shows the API's own message.
#[test]
fn a_slow_query_shows_progress_and_a_refused_one_the_apis_message() {
    with_browser(|world, browser| async move {
        let app = &world.app;
        let url = page_url(app, "nps", &[]);
        assert_eq!(
            browser.sign_in(&url, &world.read_key).await.unwrap(),
            "ready"
        );
        browser.cdp("Network.enable", json!({})).await.unwrap();
        browser
            .cdp(
                "Network.emulateNetworkConditions",
                json!({"offline": false, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1}),
            )
            .await
            .unwrap();
        browser
            .client
            .goto(&page_url(app, "csat", &[]))
            .await
            .unwrap();
        browser.wait_for_state(&["loading"]).await.unwrap();
        let progress = browser
            .eval(
                "return [document.querySelector('main').getAttribute('aria-busy'), \
                 document.getElementById('loading').classList.contains('active'), \
                 document.getElementById('loading').textContent.trim()];",
            )
            .await
            .unwrap();
        assert_eq!(progress[0], "true", "main is busy: {progress}");
        assert_eq!(progress[1], true, "the progress line is shown: {progress}");
        assert!(
            !progress[2].as_str().unwrap().is_empty(),
            "the progress line says what it waits for: {progress}"
        );
        assert_eq!(browser.wait_settled().await.unwrap().0, "ready");
        let busy = browser
            .eval("return document.querySelector('main').getAttribute('aria-busy');")
            .await
            .unwrap();
        assert_eq!(busy, Value::Null, "no longer busy once drawn");
        browser
            .cdp(
                "Network.emulateNetworkConditions",
                json!({"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
            )
            .await
            .unwrap();

        // A zone the API does not know: the page shows the problem the API answers.
        let bad = page_url(app, "nps", &[("tz", "Mars/Olympus_Mons")]);
        browser.client.goto(&bad).await.unwrap();
        assert_eq!(browser.wait_settled().await.unwrap().0, "error");
        let api: Value = serde_json::from_slice(
            &api_bytes_status(
                app,
                "/v1/metrics/nps?start=2025-01-01&end=2025-07-01&time_zone=Mars/Olympus_Mons\
                 &granularity=month",
                &world.read_key,
            )
            .await,
        )
        .unwrap();
        let detail = api["detail"]
            .as_str()
            .expect("the API's problem has a detail");
        let shown = browser
            .eval("return document.getElementById('error').textContent;")
            .await
            .unwrap();
        assert!(
            shown.as_str().unwrap().contains(detail),
            "the page shows {shown} for the API's {detail:?}"
        );
        browser.console_errors().await.unwrap();
        browser.close().await.unwrap();
    });
}

/// The body of a GET the API answers with an error status.
async fn api_bytes_status(app: &crate::helpers::TestApp, path: &str, key: &str) -> Vec<u8> {
    let response = reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    response.bytes().await.unwrap().to_vec()
}

//! Every page with the known dataset: its numbers equal the API's, it passes axe-core at
//! desktop and phone width, it does not scroll sideways on a phone, and it is photographed.

use serde_json::Value;

use crate::{
    END, START, TZ, api_json, assert_no_console_errors,
    browser::Browser,
    compare::{assert_card, assert_card_change, assert_cohorts, assert_stats, assert_table, shown},
    helpers::TestApp,
    page_url, with_browser,
};

pub const PAGES: [&str; 9] = [
    "overview",
    "nps",
    "csat",
    "ces",
    "response-times",
    "retention",
    "comment-themes",
    "responses",
    "interactions",
];

fn rows(json: &Value) -> Vec<Value> {
    json["rows"].as_array().cloned().unwrap_or_default()
}

/// Asserts the page on screen shows the API's answers for `page` with the fixed range and
/// `filters` (API parameter names, replacing the page's defaults of the same name); the page
/// must have been opened with the same.
pub async fn assert_page_matches_api(
    app: &TestApp,
    key: &str,
    browser: &Browser,
    page: &str,
    filters: &[(&str, &str)],
) -> Value {
    let shown = shown(browser).await;
    // The page's own parameters, unless `filters` names them (an empty value: left out).
    let with = |own: &[(&'static str, &'static str)]| {
        let mut params: Vec<(&str, &str)> = own
            .iter()
            .filter(|(name, _)| !filters.iter().any(|(f, _)| f == name))
            .copied()
            .collect();
        params.extend(filters.iter().filter(|(_, value)| !value.is_empty()));
        params
    };
    match page {
        "overview" => {
            let survey = with(&[("compare_previous", "true")]);
            let nps = api_json(app, key, "/v1/metrics/nps", &survey).await;
            let csat = api_json(app, key, "/v1/metrics/csat", &survey).await;
            let ces = api_json(app, key, "/v1/metrics/ces", &survey).await;
            // Interactions belong to no survey.
            let mut times = with(&[
                ("compare_previous", "true"),
                ("first_response_target", "3600"),
            ]);
            times.retain(|(name, _)| *name != "survey_id");
            let rt = api_json(app, key, "/v1/metrics/response-times", &times).await;
            let ret = api_json(app, key, "/v1/metrics/retention", &[]).await;
            let (n, c, e, t, r) = (
                &nps["summary"]["total"],
                &csat["summary"]["total"],
                &ces["summary"]["total"],
                &rt["summary"]["total"],
                &ret["summary"]["total"],
            );
            assert_card(&shown, "nps", &n["nps"], &n["responses"]);
            assert_card(&shown, "csat", &c["csat"], &c["responses"]);
            assert_card(&shown, "ces", &e["easy_share"], &e["responses"]);
            let p50 = &t["first_response_p50_seconds"];
            assert_card(&shown, "frt-p50", p50, &t["interactions"]);
            let p90 = &t["first_response_p90_seconds"];
            assert_card(&shown, "frt-p90", p90, &t["interactions"]);
            let sla = &t["first_response_sla_attainment"];
            assert_card(&shown, "sla", sla, &t["interactions"]);
            assert_card(
                &shown,
                "retention",
                &r["retention_rate"],
                &r["start_customers"],
            );
            assert_card_change(&shown, "nps", &nps["summary"]["change"]);
            assert_card_change(&shown, "csat", &csat["summary"]["change"]);
            assert_card_change(&shown, "ces", &ces["summary"]["change"]);
            let sla_change = &rt["summary"]["change"]["first_response_attainment"];
            assert_card_change(&shown, "sla", sla_change);
            assert!(
                n["responses"].as_i64().unwrap() > 0,
                "the dataset has NPS answers"
            );
        }
        "nps" | "csat" | "ces" => {
            let params = with(&[("granularity", "month")]);
            let json = api_json(app, key, &format!("/v1/metrics/{page}"), &params).await;
            assert_table(&shown, page, None, &rows(&json));
            assert!(
                assert_stats(&shown, &json["summary"]["total"]) >= 4,
                "{page} summary"
            );
            if page == "csat" {
                assert_csat_distribution(&shown, &json);
            }
        }
        "response-times" => {
            let params = with(&[("granularity", "month"), ("first_response_target", "3600")]);
            let json = api_json(app, key, "/v1/metrics/response-times", &params).await;
            assert_table(&shown, page, None, &rows(&json));
            assert!(assert_stats(&shown, &json["summary"]["total"]) >= 6);
        }
        "retention" => {
            let params = with(&[("granularity", "month")]);
            let json = api_json(app, key, "/v1/metrics/retention", &params).await;
            assert_table(&shown, "retention", None, &rows(&json));
            assert_eq!(assert_stats(&shown, &json["summary"]["total"]), 6);
            let cohort_params = [("granularity", "month"), ("periods", "12")];
            let cohorts = api_json(app, key, "/v1/metrics/cohort-retention", &cohort_params).await;
            let later = rows(&cohorts)
                .iter()
                .filter(|r| r["offset"].as_i64() > Some(0) && r["active"].as_i64() > Some(0))
                .count();
            assert!(
                later > 0,
                "the dataset has cohorts that come back: {cohorts}"
            );
            assert_cohorts(&shown, &rows(&cohorts));
        }
        "comment-themes" => {
            let params = with(&[("kind", "nps"), ("max_themes", "20")]);
            let json = api_json(app, key, "/v1/metrics/comment-themes", &params).await;
            assert_eq!(assert_stats(&shown, &json["comments"]), 3);
            for side in ["negative", "positive"] {
                let side_rows: Vec<Value> = rows(&json)
                    .into_iter()
                    .filter(|r| r["side"] == side)
                    .collect();
                assert!(!side_rows.is_empty(), "the dataset has {side} themes");
                assert_table(&shown, "comment-themes", Some(side), &side_rows);
            }
        }
        "responses" | "interactions" => {
            let path = if page == "responses" {
                "/v1/survey-responses"
            } else {
                "/v1/interactions"
            };
            let json = api_json(app, key, path, &with(&[("page_size", "50")])).await;
            let shown_rows = rows(&json).len();
            assert!(shown_rows > 0, "{page} with {filters:?} has rows");
            if filters.is_empty() {
                assert_eq!(shown_rows, 50, "a full first page of {page}");
            }
            assert_table(&shown, page, None, &rows(&json));
        }
        other => panic!("unknown page {other}"),
    }
    shown
}

/// The CSAT distribution table: one row per score with the API's `score_counts_<k>`.
fn assert_csat_distribution(shown: &Value, json: &Value) {
    let table = crate::compare::table(shown, "csat-distribution", None);
    let total = &json["summary"]["total"];
    let shown_rows = table["rows"].as_array().unwrap();
    assert_eq!(shown_rows.len(), 5, "one row per CSAT score 1..5");
    for row in shown_rows {
        let cells = row["cells"].as_array().unwrap();
        let score = cells[0][1].as_str().unwrap();
        let count = &total[format!("score_counts_{score}")];
        let count = if count.is_null() {
            &Value::from(0)
        } else {
            count
        };
        assert!(
            crate::compare::same(cells[1][1].as_str().unwrap(), count),
            "CSAT score {score}: page {:?}, API {count}",
            cells[1][1]
        );
    }
}

#[test]
fn every_page_reaches_ready_and_shows_the_apis_numbers() {
    with_browser(|world, browser| async move {
        let app = &world.app;
        let base = page_url(app, "overview", &[]);
        assert_eq!(
            browser.sign_in(&base, &world.read_key).await.unwrap(),
            "ready"
        );
        for page in PAGES {
            let url = page_url(app, page, &[]);
            let took = browser.open(&url).await.unwrap();
            assert_eq!(browser.state().await.unwrap(), "ready", "{page}");
            eprintln!("{page}: drawn {took:?} after navigation start");
            let search = browser.search().await.unwrap();
            for (name, value) in [("page", page), ("start", START), ("end", END), ("tz", TZ)] {
                assert!(
                    crate::pairs_of(&search).contains(&(name.into(), value.into())),
                    "{page}: the URL keeps {name}={value}: {search}"
                );
            }
            assert_page_matches_api(app, &world.read_key, &browser, page, &[]).await;
            assert_no_console_errors(&browser, page).await;
        }
    });
}

#[test]
fn every_page_passes_axe_fits_a_phone_and_is_photographed() {
    with_browser(|world, browser| async move {
        let app = &world.app;
        browser
            .sign_in(&page_url(app, "overview", &[]), &world.read_key)
            .await
            .unwrap();
        for (width, device) in [(1280, "desktop"), (390, "phone")] {
            browser.set_width(width).await.unwrap();
            for page in PAGES {
                browser.open(&page_url(app, page, &[])).await.unwrap();
                assert_eq!(browser.state().await.unwrap(), "ready", "{page}");
                let violations = browser.axe_violations().await.unwrap();
                assert!(
                    violations.is_empty(),
                    "axe-core on {page} at {width} px: {violations:#?}"
                );
                let fits = browser
                    .eval("return [document.documentElement.scrollWidth, window.innerWidth];")
                    .await
                    .unwrap();
                let (scroll, inner) = (fits[0].as_i64().unwrap(), fits[1].as_i64().unwrap());
                assert_eq!(inner, width as i64, "the viewport is {width} px wide");
                assert!(
                    scroll <= inner,
                    "{page} at {width} px scrolls sideways: {scroll} > {inner}"
                );
                browser
                    .screenshot(&format!("{page}-{device}"))
                    .await
                    .unwrap();
                assert_no_console_errors(&browser, &format!("{page} at {width} px")).await;
            }
        }
    });
}

/// Views beyond the defaults: each opened by its URL, its numbers equal to the API's for the
/// same parameters (portal names, then API names).
type Params = &'static [(&'static str, &'static str)];

const VIEWS: [(&str, Params, Params); 11] = [
    // A survey filter or grouping does not apply to interactions (the API refuses both).
    (
        "interactions",
        &[("survey", "survey-a"), ("agent", "agent-2")],
        &[("agent_id", "agent-2")],
    ),
    (
        "response-times",
        &[("survey", "survey-a"), ("group_by", "survey")],
        &[],
    ),
    (
        "overview",
        &[("survey", "survey-b")],
        &[("survey_id", "survey-b")],
    ),
    ("ces", &[("channel", "chat")], &[("channel", "chat")]),
    (
        "response-times",
        &[("group_by", "agent"), ("rt", "240")],
        &[("group_by", "agent"), ("resolution_target", "14400")],
    ),
    (
        "csat",
        &[("granularity", "none"), ("group_by", "channel")],
        &[("granularity", ""), ("group_by", "channel")],
    ),
    (
        "nps",
        &[("granularity", "quarter"), ("survey", "survey-a")],
        &[("granularity", "quarter"), ("survey_id", "survey-a")],
    ),
    (
        "retention",
        &[("nps_category", "true")],
        &[("group_by_nps_category", "true")],
    ),
    (
        "comment-themes",
        &[("channel", "email")],
        &[("channel", "email")],
    ),
    ("responses", &[("kind", "ces")], &[("kind", "ces")]),
    (
        "interactions",
        &[("agent", "agent-2")],
        &[("agent_id", "agent-2")],
    ),
];

#[test]
fn grouped_filtered_and_split_views_show_the_apis_numbers() {
    with_browser(|world, browser| async move {
        let (app, key) = (&world.app, world.read_key.as_str());
        let url = page_url(app, "overview", &[]);
        assert_eq!(browser.sign_in(&url, key).await.unwrap(), "ready");
        for (page, portal, api) in VIEWS {
            browser.open(&page_url(app, page, portal)).await.unwrap();
            assert_eq!(browser.state().await.unwrap(), "ready", "{page} {portal:?}");
            assert_page_matches_api(app, key, &browser, page, api).await;
            let offered = browser
                .eval(
                    "return [!document.getElementById('ctl-survey').closest('[hidden]'), \
                     !document.querySelector('#ctl-group-by option[value=survey]').disabled];",
                )
                .await
                .unwrap();
            let interactions = matches!(page, "interactions" | "response-times");
            let filtered = !interactions && page != "retention";
            assert_eq!(
                offered,
                serde_json::json!([filtered, !interactions]),
                "{page}: the survey filter and grouping are offered where they apply"
            );
            assert_no_console_errors(&browser, &format!("{page} {portal:?}")).await;
        }
    });
}

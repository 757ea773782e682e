//! Reading the numbers a page shows (its test hooks: `data-value` of tables, summary lists
//! and overview cards) and comparing them with the API's JSON answer, exactly.

use serde_json::{Value, json};

use crate::browser::Browser;

/// Everything with a raw value on the current page.
pub async fn shown(browser: &Browser) -> Value {
    const SCRIPT: &str = r#"
        const tables = [...document.querySelectorAll('table[data-table]')].map((t) => ({
            name: t.dataset.table,
            side: t.dataset.side ?? null,
            rows: [...t.querySelectorAll('tbody tr')].map((tr) => ({
                period_start: tr.dataset.periodStart ?? null,
                group: tr.dataset.group ?? null,
                cells: [...tr.querySelectorAll('[data-column]')].map((c) => [
                    c.dataset.column, c.dataset.value ?? null, c.dataset.active ?? null,
                    c.textContent.trim(),
                ]),
            })),
        }));
        const stats = [...document.querySelectorAll('dl.stats dd[data-column]')]
            .map((d) => [d.dataset.column, d.dataset.value ?? null, d.textContent.trim()]);
        const cards = [...document.querySelectorAll('article[data-metric]')].map((a) => ({
            metric: a.dataset.metric,
            significant: a.dataset.significant,
            count: a.dataset.count,
            value: a.querySelector('.card-value').dataset.value,
            value_text: a.querySelector('.card-value').textContent.trim(),
            delta: a.querySelector('.card-change').dataset.delta,
            change_significant: a.querySelector('.card-change').dataset.significant,
        }));
        return { tables, stats, cards };
    "#;
    browser.eval(SCRIPT).await.expect("read the page's values")
}

/// Whether a `data-value` text stands for the API's `value` (numbers compared as numbers).
pub fn same(shown: &str, value: &Value) -> bool {
    match value {
        Value::Null => shown.is_empty(),
        Value::Number(n) => shown.parse::<f64>().ok() == n.as_f64(),
        Value::String(s) => shown == s,
        Value::Bool(b) => shown == b.to_string(),
        other => serde_json::from_str::<Value>(shown).ok().as_ref() == Some(other),
    }
}

/// Asserts that what a reader sees (`shown`, formatted in the browser's en-US locale) is the
/// raw number `raw` at the precision shown: a plain number or percentage (thousands
/// separators, a sign, a "± margin" after it) to its last digit, a duration ("1 h 16 min",
/// "11 min 39 s") to its smallest unit, a dash for none. Text that is neither (dates, ids)
/// and raw values that are not numbers are not checked here.
pub fn assert_displayed(shown: &str, raw: &str, what: &str) {
    let Ok(value) = raw.parse::<f64>() else {
        return;
    };
    let shown = shown.split(" ±").next().unwrap_or_default().trim();
    let number = shown
        .trim_start_matches('+')
        .replace(['\u{2212}', '\u{2013}'], "-")
        .replace(',', "");
    if let Some(seconds) = duration_seconds(&number) {
        let (total, unit) = seconds;
        let rounded = value.abs().round();
        assert!(
            total <= rounded && rounded < total + unit,
            "{what}: shows {shown:?} for {value} s"
        );
        return;
    }
    let digits = number.trim_end_matches('%');
    let Ok(parsed) = digits.parse::<f64>() else {
        return;
    };
    let decimals = digits.split_once('.').map_or(0, |(_, d)| d.len());
    let half = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9;
    // A rate in [0, 1] may be shown as a percentage.
    let fits = |v: f64| (parsed - v).abs() <= half;
    assert!(
        fits(value) || (number.ends_with('%') && fits(value * 100.0)),
        "{what}: shows {shown:?} for {value}"
    );
}

/// "1 h 16 min" as (4560 s, 60 s: the smallest unit shown), or None for other text.
fn duration_seconds(text: &str) -> Option<(f64, f64)> {
    let tokens: Vec<&str> = text.trim_start_matches('-').split(' ').collect();
    if tokens.len() < 2 || !tokens.len().is_multiple_of(2) {
        return None;
    }
    let mut total = 0.0;
    let mut smallest = f64::MAX;
    for pair in tokens.chunks(2) {
        let n: f64 = pair[0].parse().ok()?;
        let unit = match pair[1] {
            "d" => 86_400.0,
            "h" => 3_600.0,
            "min" => 60.0,
            "s" => 1.0,
            _ => return None,
        };
        total += n * unit;
        smallest = f64::min(smallest, unit);
    }
    Some((total, smallest))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The page's table named `name` (and `side`), or a panic naming what is there.
pub fn table<'a>(page: &'a Value, name: &str, side: Option<&str>) -> &'a Value {
    page["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name && side.is_none_or(|s| t["side"] == s))
        .unwrap_or_else(|| panic!("no table {name:?} {side:?} on the page: {page}"))
}

/// Asserts a data table shows `rows` of the API in order: every cell's column is the API
/// row's field of that name and its raw value equals the API's.
pub fn assert_table(page: &Value, name: &str, side: Option<&str>, rows: &[Value]) {
    let table = table(page, name, side);
    let shown_rows = table["rows"].as_array().unwrap();
    assert_eq!(
        shown_rows.len(),
        rows.len(),
        "table {name} {side:?}: rows on the page vs the API's"
    );
    for (i, (row, api)) in shown_rows.iter().zip(rows).enumerate() {
        let cells = row["cells"].as_array().unwrap();
        assert!(!cells.is_empty(), "table {name} row {i} has no values");
        for cell in cells {
            let column = text(&cell[0]);
            let expected = if column == "examples" {
                json!(examples(api))
            } else {
                api.get(column).cloned().unwrap_or_else(|| {
                    panic!("table {name} row {i}: column {column:?} is not in the API's row {api}")
                })
            };
            assert!(
                same(text(&cell[1]), &expected),
                "table {name} {side:?} row {i} column {column}: page {:?}, API {expected}",
                cell[1]
            );
            assert_displayed(
                text(&cell[3]),
                text(&cell[1]),
                &format!("{name} row {i} {column}"),
            );
        }
        for (hook, field) in [("period_start", "period_start"), ("group", "group")] {
            if let Some(value) = api.get(field).filter(|_| !row[hook].is_null()) {
                assert!(
                    same(text(&row[hook]), value),
                    "table {name} row {i}: data-{hook} {:?}, API {value}",
                    row[hook]
                );
            }
        }
    }
}

/// A comment theme's example response ids as the page lists them.
fn examples(row: &Value) -> String {
    (1..=3)
        .filter_map(|k| row[format!("example_response_id_{k}")].as_str())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts each summary number (`dl.stats dd`) equals the field of that name in `summary`;
/// returns how many there were.
pub fn assert_stats(page: &Value, summary: &Value) -> usize {
    let stats = page["stats"].as_array().unwrap();
    for stat in stats {
        let column = text(&stat[0]);
        let expected = summary
            .get(column)
            .unwrap_or_else(|| panic!("summary {column:?} is not in the API's {summary}"));
        assert!(
            same(text(&stat[1]), expected),
            "summary {column}: page {:?}, API {expected}",
            stat[1]
        );
        assert_displayed(text(&stat[2]), text(&stat[1]), &format!("summary {column}"));
    }
    stats.len()
}

/// Asserts the cohort heat map shows the API's cohorts: size, rate and active count of
/// every cohort and offset, and no cell the API does not have.
pub fn assert_cohorts(page: &Value, api_rows: &[Value]) {
    let table = table(page, "cohort-retention", None);
    let mut filled = 0;
    for row in table["rows"].as_array().unwrap() {
        let start = text(&row["period_start"]);
        for cell in row["cells"].as_array().unwrap() {
            let column = text(&cell[0]);
            if column == "period_start" {
                assert_eq!(text(&cell[1]), start);
                continue;
            }
            let of_cohort = api_rows.iter().filter(|r| r["period_start"] == start);
            if column == "size" {
                let api = of_cohort.clone().next().expect("a cohort the API has");
                assert!(same(text(&cell[1]), &api["size"]), "cohort {start} size");
                continue;
            }
            let offset: i64 = column
                .strip_prefix("rate_")
                .and_then(|k| k.parse().ok())
                .unwrap_or_else(|| panic!("unknown heat-map column {column}"));
            match of_cohort.clone().find(|r| r["offset"] == offset) {
                Some(api) => {
                    filled += 1;
                    assert!(
                        same(text(&cell[1]), &api["rate"]),
                        "cohort {start} offset {offset}: page {:?}, API {}",
                        cell[1],
                        api["rate"]
                    );
                    assert!(
                        same(text(&cell[2]), &api["active"]),
                        "cohort {start} offset {offset} active"
                    );
                }
                None => assert!(
                    text(&cell[1]).is_empty(),
                    "cohort {start} offset {offset}: the page shows {:?}, the API nothing",
                    cell[1]
                ),
            }
        }
    }
    assert_eq!(
        filled,
        api_rows.len(),
        "every cohort cell of the API is shown"
    );
}

/// The overview card of `metric`.
pub fn card<'a>(page: &'a Value, metric: &str) -> &'a Value {
    page["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == metric)
        .unwrap_or_else(|| panic!("no card {metric} on the overview: {page}"))
}

/// Asserts a card's value and count equal the API's.
pub fn assert_card(page: &Value, metric: &str, value: &Value, count: &Value) {
    let card = card(page, metric);
    assert!(
        same(text(&card["value"]), value),
        "card {metric}: page {:?}, API {value}",
        card["value"]
    );
    assert_displayed(
        text(&card["value_text"]),
        text(&card["value"]),
        &format!("card {metric}"),
    );
    assert!(
        same(text(&card["count"]), count),
        "card {metric} count: page {:?}, API {count}",
        card["count"]
    );
}

/// Asserts a card's change and its significance equal the API's `change` (delta,
/// significant).
pub fn assert_card_change(page: &Value, metric: &str, change: &Value) {
    let card = card(page, metric);
    assert!(
        same(text(&card["delta"]), &change["delta"]),
        "card {metric} change: page {:?}, API {}",
        card["delta"],
        change["delta"]
    );
    let significant = change["significant"].as_bool().unwrap_or(false).to_string();
    assert_eq!(text(&card["significant"]), significant, "card {metric}");
    assert_eq!(
        text(&card["change_significant"]),
        significant,
        "card {metric}"
    );
}

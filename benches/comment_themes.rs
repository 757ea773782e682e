//! GetCommentThemes over a year of comments (issue 12; needs DATABASE_URL), through the
//! built binary running as its own process, in a fresh database:
//! - loads 1M NPS responses over 2025, each with a comment of 5 to 14 words drawn from an
//!   English and a Russian vocabulary (Zipf-like, a third in Russian), with themes planted
//!   on each side, in statements of `CHUNK` rows with the triggers on, as any write;
//!   then folds the deltas the triggers appended;
//! - times GetCommentThemes with default settings (20 themes, 5 mentions) over 2025 in UTC
//!   (whole months of stored counts) and in Europe/Berlin (raw hours at the edges), and the
//!   naive SQL a data analyst would write: `ts_stat` over the range, once per side, joined;
//! - checks that every single-stem theme's mentions equal `ts_stat`'s document counts, and
//!   prints both times, their ratio and the server's peak resident memory before and after.
//!
//! `cargo bench --bench comment_themes` loads 1M comments; `CXMETRICS_THEMES_SIZE` picks
//! another number. Under `cargo test` it loads 2,000 as a smoke test.
//! `CXMETRICS_THEMES_DATABASE=URL` measures a database a previous run's load left (the
//! same size), without loading or dropping it.

#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use cxmetrics::{commands, grpc::convert::to_timestamp, proto as pb, storage::Store};
use helpers::{connect, metrics_client, with_database};
use sqlx::{Connection, Executor, PgConnection, Row, postgres::PgPoolOptions};

const TENANT: &str = "bench";
/// Rows per load statement.
const CHUNK: i64 = 20_000;

const ENGLISH: &[&str] = &[
    "the",
    "order",
    "arrived",
    "was",
    "good",
    "bad",
    "app",
    "website",
    "price",
    "prices",
    "courier",
    "package",
    "box",
    "phone",
    "call",
    "agent",
    "manager",
    "refund",
    "return",
    "payment",
    "card",
    "store",
    "shop",
    "product",
    "products",
    "quality",
    "size",
    "colour",
    "jacket",
    "shoes",
    "shirt",
    "dress",
    "gift",
    "brother",
    "sister",
    "week",
    "month",
    "day",
    "today",
    "yesterday",
    "again",
    "never",
    "always",
    "really",
    "very",
    "quite",
    "nice",
    "easy",
    "hard",
    "checkout",
    "cart",
    "discount",
    "coupon",
    "account",
    "password",
    "login",
    "email",
    "message",
    "chat",
    "answer",
    "question",
    "problem",
    "issue",
    "help",
    "team",
    "service",
    "experience",
    "time",
    "wait",
    "waiting",
    "hours",
    "minutes",
    "tracking",
    "number",
    "address",
    "door",
    "neighbour",
    "weekend",
    "morning",
    "evening",
    "fresh",
    "broken",
    "damaged",
    "missing",
    "item",
    "items",
    "bag",
    "receipt",
    "invoice",
    "bill",
    "menu",
    "search",
    "filter",
    "page",
    "button",
    "screen",
    "update",
    "version",
    "feature",
    "recommend",
    "friends",
    "family",
    "buy",
    "bought",
    "ordered",
    "received",
    "sent",
];
const RUSSIAN: &[&str] = &[
    "заказ",
    "пришёл",
    "был",
    "хороший",
    "плохой",
    "приложение",
    "сайт",
    "цена",
    "цены",
    "курьер",
    "посылка",
    "коробка",
    "телефон",
    "звонок",
    "оператор",
    "менеджер",
    "возврат",
    "оплата",
    "карта",
    "магазин",
    "товар",
    "качество",
    "размер",
    "цвет",
    "куртка",
    "обувь",
    "подарок",
    "брат",
    "сестра",
    "неделя",
    "месяц",
    "сегодня",
    "вчера",
    "снова",
    "никогда",
    "всегда",
    "очень",
    "удобно",
    "сложно",
    "корзина",
    "скидка",
    "промокод",
    "аккаунт",
    "пароль",
    "письмо",
    "сообщение",
    "чат",
    "ответ",
    "вопрос",
    "проблема",
    "помощь",
    "команда",
    "сервис",
    "время",
    "ожидание",
    "часы",
    "минуты",
    "трекинг",
    "адрес",
    "дверь",
    "выходные",
    "утро",
    "вечер",
    "сломан",
    "повреждён",
    "пропал",
    "пакет",
    "чек",
    "меню",
    "поиск",
    "страница",
    "кнопка",
    "экран",
    "обновление",
    "рекомендую",
    "друзьям",
    "семье",
];

/// 1 + g..: the comments of `[from, to)`: NPS scores cycling 0..10, times spread evenly over
/// 2025, a phrase planted in 30% of one side's comments, and 5 to 14 vocabulary words.
const LOAD: &str = "
insert into survey_responses (tenant_id, response_id, survey_id, kind, score, scale_min,
                              scale_max, customer_id, respond_time, comment, attributes,
                              update_time)
select $3, 'r' || g, 'survey', 1, (g * 7) % 11, 0, 10, 'c' || (g % 100000),
       timestamptz '2025-01-01 00:00:00+00' + (g::float8 / $4) * interval '365 days',
       concat_ws(' ',
           case when (g * 7) % 11 <= 6 and g % 10 < 3 then
               case when g % 3 = 0 then 'Долгая доставка,' else 'Slow delivery,' end
                when (g * 7) % 11 >= 9 and g % 10 < 3 then
               case when g % 3 = 0 then 'Вежливая поддержка!' else 'Friendly support!' end
           end,
           -- `w` in the argument makes the aggregate the subquery's, not the outer query's.
           (select string_agg(
                case when g % 3 = 0 and w > 0
                     then $6[1 + floor(power(random(), 2.5) * array_length($6, 1))::int]
                     else $5[1 + floor(power(random(), 2.5) * array_length($5, 1))::int] end,
                ' ')
            from generate_series(1, 5 + g % 10) w)),
       '{}', now()
from generate_series($1, $2 - 1) g";

/// The naive answer: `ts_stat` over each side's tsvectors, joined by word.
const NAIVE: &str = "
with negative as (
    select word, ndoc from ts_stat($q$select comment_tsv from survey_responses
        where tenant_id = 'bench' and kind = 1 and score <= 6
          and respond_time >= '2025-01-01T00:00:00Z' and respond_time < '2026-01-01T00:00:00Z'$q$)
), positive as (
    select word, ndoc from ts_stat($q$select comment_tsv from survey_responses
        where tenant_id = 'bench' and kind = 1 and score >= 9
          and respond_time >= '2025-01-01T00:00:00Z' and respond_time < '2026-01-01T00:00:00Z'$q$)
)
select word, coalesce(n.ndoc, 0)::int8 as negative, coalesce(p.ndoc, 0)::int8 as positive
from negative n full join positive p using (word)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let size: i64 = match std::env::var("CXMETRICS_THEMES_SIZE") {
        Ok(s) => s
            .parse()
            .context("CXMETRICS_THEMES_SIZE: a number of comments")?,
        Err(_) if full => 1_000_000,
        Err(_) => 2_000,
    };
    let repeat = if full { 5 } else { 2 };
    if let Ok(url) = std::env::var("CXMETRICS_THEMES_DATABASE") {
        return measure(size, repeat, &url).await;
    }
    let admin = std::env::var("DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("set DATABASE_URL (scripts/test does) to run the benchmark")
    })?;
    let name = format!("bench_themes_{}", uuid::Uuid::new_v4().simple());
    PgConnection::connect(&admin)
        .await
        .context("connecting to DATABASE_URL")?
        .execute(format!(r#"create database "{name}""#).as_str())
        .await?;
    let outcome = run(
        size,
        if full { 5 } else { 2 },
        &with_database(&admin, &name),
    )
    .await;
    PgConnection::connect(&admin)
        .await?
        .execute(format!(r#"drop database "{name}" with (force)"#).as_str())
        .await
        .context("dropping the bench database")?;
    outcome
}

async fn run(size: i64, repeat: usize, url: &str) -> anyhow::Result<()> {
    let store = Store::from_pool(PgPoolOptions::new().max_connections(2).connect(url).await?);
    store.migrate().await?;
    load(&store, size).await?;
    measure(size, repeat, url).await
}

async fn measure(size: i64, repeat: usize, url: &str) -> anyhow::Result<()> {
    let store = Store::from_pool(PgPoolOptions::new().max_connections(2).connect(url).await?);
    let key = commands::create_key(&store, TENANT, "read").await?;

    let env = [("CXMETRICS_READ_TIMEOUT_SECS", "3600")];
    let (child, addr) = helpers::spawn_binary(url, &env).await;
    let pid = child.id().context("the server's pid")?;
    let channel = connect(&addr, None).await?;
    let mut metrics = metrics_client(&channel, &key);
    let before = status_kib(pid, "VmHWM")?;

    let mut report = None;
    let mut utc = Duration::ZERO;
    for (label, zone) in [("UTC", ""), ("Europe/Berlin", "Europe/Berlin")] {
        let mut times = Vec::new();
        for _ in 0..repeat {
            let started = Instant::now();
            let reply = metrics
                .get_comment_themes(year(zone))
                .await
                .context("GetCommentThemes")?
                .into_inner();
            times.push(started.elapsed());
            report.get_or_insert(reply);
        }
        if zone.is_empty() {
            utc = min(&times);
        }
        println!(
            "GetCommentThemes, 2025 {label}, {} comments: min {:.3} s, median {:.3} s",
            human(size),
            min(&times).as_secs_f64(),
            median(&mut times).as_secs_f64()
        );
    }
    let after = status_kib(pid, "VmHWM")?;
    let report = report.context("no report")?;

    let mut naive_times = Vec::new();
    let mut naive = Vec::new();
    for _ in 0..repeat.min(2) {
        let started = Instant::now();
        naive = sqlx::query(NAIVE).fetch_all(store.pool()).await?;
        naive_times.push(started.elapsed());
    }
    let naive_time = min(&naive_times);
    println!(
        "naive ts_stat per side, 2025: min {:.3} s ({} stems, no pairs)",
        naive_time.as_secs_f64(),
        naive.len()
    );
    println!(
        "ratio naive / GetCommentThemes (UTC, min): {:.2}",
        naive_time.as_secs_f64() / utc.as_secs_f64()
    );
    println!(
        "server peak resident memory: {} MiB before the calls, {} MiB after",
        before / 1024,
        after / 1024
    );
    println!(
        "comments {}, negative {}, positive {}; top negative: {:?}; top positive: {:?}",
        report.comments,
        report.negative_comments,
        report.positive_comments,
        report
            .negative_themes
            .iter()
            .take(5)
            .map(|t| &t.phrase)
            .collect::<Vec<_>>(),
        report
            .positive_themes
            .iter()
            .take(5)
            .map(|t| &t.phrase)
            .collect::<Vec<_>>()
    );
    check(&store, &report, &naive).await?;
    drop(child);
    Ok(())
}

/// Loads `size` comments in statements of `CHUNK` rows, triggers on, then folds the deltas.
async fn load(store: &Store, size: i64) -> anyhow::Result<()> {
    let started = Instant::now();
    let english: Vec<String> = ENGLISH.iter().map(|w| (*w).to_owned()).collect();
    let russian: Vec<String> = RUSSIAN.iter().map(|w| (*w).to_owned()).collect();
    let mut conn = store.pool().acquire().await?;
    conn.execute("select setseed(0.12)").await?;
    for from in (0..size).step_by(CHUNK as usize) {
        let to = (from + CHUNK).min(size);
        sqlx::query(LOAD)
            .bind(from)
            .bind(to)
            .bind(TENANT)
            .bind(size as f64)
            .bind(&english)
            .bind(&russian)
            .execute(&mut *conn)
            .await
            .context("loading comments")?;
        if to % 200_000 == 0 || to == size {
            println!(
                "loaded {} of {} comments ({:.0} s)",
                human(to),
                human(size),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let folding = Instant::now();
    loop {
        let folded: i64 = sqlx::query_scalar("select compact_comment_term_counts(200000)")
            .fetch_one(&mut *conn)
            .await?;
        if folded == 0 {
            break;
        }
    }
    conn.execute("vacuum analyze comment_term_counts").await?;
    conn.execute("vacuum analyze comment_terms").await?;
    conn.execute("vacuum analyze survey_responses").await?;
    let rows: i64 = sqlx::query_scalar("select count(*) from comment_term_counts")
        .fetch_one(&mut *conn)
        .await?;
    let terms: i64 = sqlx::query_scalar("select count(*) from comment_terms")
        .fetch_one(&mut *conn)
        .await?;
    println!(
        "load {:.0} s, folding {:.0} s: {} comment_terms rows, {} comment_term_counts rows",
        folding.duration_since(started).as_secs_f64(),
        folding.elapsed().as_secs_f64(),
        human(terms),
        human(rows)
    );
    Ok(())
}

fn year(zone: &str) -> pb::CommentThemesRequest {
    let at = |s: &str| -> prost_types::Timestamp {
        to_timestamp(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc())
    };
    let (start, end) = if zone.is_empty() {
        ("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    } else {
        ("2025-01-01T00:00:00+01:00", "2026-01-01T00:00:00+01:00")
    };
    pb::CommentThemesRequest {
        query: Some(pb::MetricRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(at(start)),
                end_time: Some(at(end)),
            }),
            time_zone: zone.to_owned(),
            ..Default::default()
        }),
        kind: pb::SurveyKind::Nps as i32,
        max_themes: 0,
        min_mentions: None,
    }
}

/// Every single-stem theme's mentions equal the document counts `ts_stat` gives its stem.
async fn check(
    store: &Store,
    report: &pb::CommentThemesReport,
    naive: &[sqlx::postgres::PgRow],
) -> anyhow::Result<()> {
    let mut checked = 0;
    for theme in report.negative_themes.iter().chain(&report.positive_themes) {
        if theme.phrase.contains(' ') {
            continue;
        }
        let stem: String = sqlx::query_scalar(
            "select (select u.lexeme from unnest(to_tsvector(comment_config($1, null), $1)) u limit 1)",
        )
        .bind(&theme.phrase)
        .fetch_one(store.pool())
        .await?;
        let row = naive
            .iter()
            .find(|r| r.get::<String, _>("word") == stem)
            .with_context(|| format!("{stem} is not in ts_stat's answer"))?;
        let counts: (i64, i64) = (row.get("negative"), row.get("positive"));
        ensure!(
            counts == (theme.negative_mentions, theme.positive_mentions),
            "{}: ts_stat counts {counts:?}, the service {} and {}",
            theme.phrase,
            theme.negative_mentions,
            theme.positive_mentions
        );
        checked += 1;
    }
    println!("{checked} single-stem themes agree with ts_stat");
    Ok(())
}

fn min(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn human(n: i64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// A figure of /proc/<pid>/status, such as VmHWM, in KiB.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

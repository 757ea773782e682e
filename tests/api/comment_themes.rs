//! GetCommentThemes and `comment_query` over real sockets and PostgreSQL: planted themes in
//! English and Russian rank first on their side against an independent reference of the
//! log-odds z-scores (terms from PostgreSQL's `to_tsvector`, counted and scored here), edge
//! cases of comment text, erasure, the previous period, updates, validation, HTTP and a
//! grpcio client.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use cxmetrics::proto as pb;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use sqlx::Row;

use crate::{helpers::*, http::get};

/// One comment as the test writes it.
#[derive(Debug, Clone)]
struct Comment {
    id: String,
    customer: String,
    score: i32,
    at: DateTime<Utc>,
    text: String,
}

fn response(c: &Comment, kind: pb::SurveyKind) -> pb::SurveyResponse {
    pb::SurveyResponse {
        response_id: c.id.clone(),
        survey_id: "survey-1".into(),
        kind: kind as i32,
        score: c.score,
        customer_id: c.customer.clone(),
        channel: "web".into(),
        respond_time: Some(ts(c.at)),
        comment: c.text.clone(),
        ..Default::default()
    }
}

async fn record(app: &TestApp, comments: &[Comment], kind: pb::SurveyKind) {
    let mut feedback = app.feedback();
    for chunk in comments.chunks(1_000) {
        feedback
            .batch_record_survey_responses(pb::BatchRecordSurveyResponsesRequest {
                survey_responses: chunk.iter().map(|c| response(c, kind)).collect(),
            })
            .await
            .expect("record comments");
    }
}

fn request(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    kind: pb::SurveyKind,
) -> pb::CommentThemesRequest {
    pb::CommentThemesRequest {
        query: Some(pb::MetricRequest {
            time_range: Some(pb::TimeRange {
                start_time: Some(ts(start)),
                end_time: Some(ts(end)),
            }),
            ..Default::default()
        }),
        kind: kind as i32,
        max_themes: 100,
        min_mentions: Some(5),
    }
}

async fn themes(app: &TestApp, r: pb::CommentThemesRequest) -> pb::CommentThemesReport {
    app.metrics_with(&app.key)
        .get_comment_themes(r)
        .await
        .expect("GetCommentThemes")
        .into_inner()
}

const FILLER_EN: [&str; 8] = [
    "the app works on my phone",
    "I ordered a blue jacket last week",
    "prices look normal to me",
    "my account page shows the order history",
    "the website menu has many options",
    "we bought a gift for my brother",
    "the package box was brown",
    "I paid with a card online",
];
const FILLER_RU: [&str; 8] = [
    "приложение работает на телефоне",
    "заказал синюю куртку на прошлой неделе",
    "цены обычные",
    "в личном кабинете видна история заказов",
    "на сайте много разделов меню",
    "купили подарок брату",
    "коробка была коричневой",
    "оплатил картой на сайте",
];

/// `n` comments of each side (detractors 0-6, promoters 9-10) and some passives: every
/// comment one filler sentence, in English or Russian, the same draws on both sides; the
/// negative theme planted in 70% of detractors' comments and 10% of promoters', the
/// positive one the other way round.
fn planted(n: usize, at: DateTime<Utc>) -> Vec<Comment> {
    let mut rng = StdRng::seed_from_u64(12);
    let mut out = Vec::new();
    for i in 0..n {
        let russian = rng.random_bool(0.5);
        let filler = rng.random_range(0..FILLER_EN.len());
        let (filler, bad, good) = if russian {
            (FILLER_RU[filler], "Долгая доставка.", "Вежливая поддержка!")
        } else {
            (FILLER_EN[filler], "Slow delivery.", "Friendly support!")
        };
        for (side, score, theme_rate, other_rate) in [
            ("neg", rng.random_range(0..=6), 0.7, 0.1),
            ("pos", rng.random_range(9..=10), 0.1, 0.7),
        ] {
            let mut text = String::new();
            if rng.random_bool(theme_rate) {
                text.push_str(bad);
                text.push(' ');
            }
            if rng.random_bool(other_rate) {
                text.push_str(good);
                text.push(' ');
            }
            text.push_str(filler);
            out.push(Comment {
                id: format!("{side}-{i:04}"),
                customer: format!("c-{}", i % 50),
                score,
                at: at + Duration::minutes(37 * i as i64),
                text,
            });
        }
        if i % 4 == 0 {
            out.push(Comment {
                id: format!("passive-{i:04}"),
                customer: format!("c-{}", i % 50),
                score: 8,
                at: at + Duration::minutes(37 * i as i64 + 5),
                text: "Slow delivery, friendly support".into(),
            });
        }
    }
    out
}

/// The reference: each comment's terms from PostgreSQL's `to_tsvector` (its stems, and the
/// pairs of stems at consecutive positions once stop words are gone), the configuration
/// chosen by script as the README says, counted once per comment, per side, here.
struct Reference {
    negative: BTreeMap<String, i64>,
    positive: BTreeMap<String, i64>,
    comments: (i64, i64, i64),
}

async fn terms_of(app: &TestApp, text: &str) -> BTreeSet<String> {
    let config = if text.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)) {
        "russian"
    } else {
        "english"
    };
    let rows = sqlx::query(
        "select u.lexeme, p.pos from unnest(to_tsvector($1::regconfig, $2)) u,
         unnest(u.positions) p (pos)",
    )
    .bind(config)
    .bind(text)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let mut at: Vec<(i16, String)> = rows
        .iter()
        .map(|r| (r.get::<i16, _>("pos"), r.get::<String, _>("lexeme")))
        .collect();
    at.sort();
    let mut terms: BTreeSet<String> = at.iter().map(|(_, l)| l.clone()).collect();
    for pair in at.windows(2) {
        terms.insert(format!("{} {}", pair[0].1, pair[1].1));
    }
    terms
}

/// NPS sides: 1 detractor, 2 promoter, 0 passive.
fn nps_side(score: i32) -> u8 {
    match score {
        0..=6 => 1,
        9..=10 => 2,
        _ => 0,
    }
}

async fn reference(app: &TestApp, comments: &[Comment]) -> Reference {
    let mut r = Reference {
        negative: BTreeMap::new(),
        positive: BTreeMap::new(),
        comments: (0, 0, 0),
    };
    for c in comments {
        if c.text.trim().is_empty() {
            continue;
        }
        let side = nps_side(c.score);
        match side {
            1 => r.comments.1 += 1,
            2 => r.comments.2 += 1,
            _ => {}
        }
        r.comments.0 += 1;
        if side == 0 {
            continue;
        }
        let counts = if side == 1 {
            &mut r.negative
        } else {
            &mut r.positive
        };
        for term in terms_of(app, &c.text).await {
            *counts.entry(term).or_default() += 1;
        }
    }
    r
}

impl Reference {
    /// Monroe, Colaresi and Quinn (2008), eq. 22, with the informative prior of the README:
    /// alpha_0 = 1000, alpha_w = alpha_0 x the term's share of all mentions of both sides.
    fn z(&self, term: &str) -> Option<f64> {
        let n_i: i64 = self.negative.values().sum();
        let n_j: i64 = self.positive.values().sum();
        if n_i == 0 || n_j == 0 {
            return None;
        }
        let y_i = *self.negative.get(term).unwrap_or(&0) as f64;
        let y_j = *self.positive.get(term).unwrap_or(&0) as f64;
        let alpha_0 = 1000.0;
        let alpha_w = alpha_0 * (y_i + y_j) / (n_i + n_j) as f64;
        let odds_i = (y_i + alpha_w) / (n_i as f64 + alpha_0 - y_i - alpha_w);
        let odds_j = (y_j + alpha_w) / (n_j as f64 + alpha_0 - y_j - alpha_w);
        let sigma2 = 1.0 / (y_i + alpha_w) + 1.0 / (y_j + alpha_w);
        Some((odds_i.ln() - odds_j.ln()) / sigma2.sqrt())
    }

    fn mentions(&self, term: &str) -> (i64, i64) {
        (
            *self.negative.get(term).unwrap_or(&0),
            *self.positive.get(term).unwrap_or(&0),
        )
    }
}

/// The stems of a theme's phrase, as the reference keys its terms.
async fn key_of(app: &TestApp, phrase: &str) -> String {
    let terms = terms_of(app, phrase).await;
    terms
        .into_iter()
        .max_by_key(|t| t.len())
        .expect("a phrase has a term")
}

fn all_themes(report: &pb::CommentThemesReport) -> impl Iterator<Item = &pb::CommentTheme> {
    report
        .negative_themes
        .iter()
        .chain(report.positive_themes.iter())
}

/// Every figure of `report` against the reference.
async fn assert_matches_reference(app: &TestApp, report: &pb::CommentThemesReport, r: &Reference) {
    assert_eq!(
        (
            report.comments,
            report.negative_comments,
            report.positive_comments
        ),
        r.comments
    );
    assert!(!report.negative_themes.is_empty() && !report.positive_themes.is_empty());
    for theme in all_themes(report) {
        let key = key_of(app, &theme.phrase).await;
        let (neg, pos) = r.mentions(&key);
        assert_eq!(
            (
                theme.negative_mentions,
                theme.positive_mentions,
                theme.mentions
            ),
            (neg, pos, neg + pos),
            "{theme:?} ({key})"
        );
        assert!(theme.mentions >= 5);
        let expected = r.z(&key).expect("both sides have terms");
        let z = theme.z_score.expect("a z-score");
        assert!((z - expected).abs() < 1e-9, "{key}: {z} vs {expected}");
    }
    // Every term of the reference with 5 mentions or more is listed on the side its z-score
    // leans to, unless that side lists 100 stronger ones.
    let listed: BTreeSet<String> = {
        let mut keys = BTreeSet::new();
        for theme in all_themes(report) {
            keys.insert(key_of(app, &theme.phrase).await);
        }
        keys
    };
    let terms: BTreeSet<&String> = r.negative.keys().chain(r.positive.keys()).collect();
    for term in terms {
        let (neg, pos) = r.mentions(term);
        let z = r.z(term).unwrap();
        let room = match z {
            z if z > 0.0 => report.negative_themes.len() < 100,
            z if z < 0.0 => report.positive_themes.len() < 100,
            _ => false,
        };
        if neg + pos >= 5 && room {
            assert!(
                listed.contains(term),
                "{term} ({neg}, {pos}, z {z}) is missing"
            );
        }
    }
}

const PLANTED_NEGATIVE: [&str; 2] = ["slow delivery", "долгая доставка"];
const PLANTED_POSITIVE: [&str; 2] = ["friendly support", "вежливая поддержка"];

fn phrases(themes: &[pb::CommentTheme]) -> Vec<&str> {
    themes.iter().map(|t| t.phrase.as_str()).collect()
}

/// Words of the planted phrases: a theme without any of them is filler.
const PLANTED_WORDS: [&str; 8] = [
    "slow",
    "delivery",
    "friendly",
    "support",
    "долгая",
    "доставка",
    "вежливая",
    "поддержка",
];

#[tokio::test]
async fn planted_themes_rank_first_on_their_side_and_match_an_independent_reference() {
    let app = spawn_app().await;
    let start = t0() - Duration::days(3);
    let comments = planted(300, start + Duration::hours(5));
    record(&app, &comments, pb::SurveyKind::Nps).await;
    let r = reference(&app, &comments).await;
    // From mid-morning to mid-morning: raw edges, stored days and rows of both.
    let end = start + Duration::days(20);
    let report = themes(&app, request(start, end, pb::SurveyKind::Nps)).await;
    assert_matches_reference(&app, &report, &r).await;

    let negative = phrases(&report.negative_themes);
    let positive = phrases(&report.positive_themes);
    for planted in PLANTED_NEGATIVE {
        assert!(
            negative[..6].contains(&planted),
            "{planted} in {negative:?}"
        );
    }
    for planted in PLANTED_POSITIVE {
        assert!(
            positive[..6].contains(&planted),
            "{planted} in {positive:?}"
        );
    }
    let top = &report.negative_themes[0];
    assert!(top.z_score.unwrap() > 5.0, "{top:?}");
    assert!(
        PLANTED_WORDS.iter().any(|w| top.phrase.contains(w)),
        "{top:?}"
    );
    let mut filler = 0;
    for theme in all_themes(&report) {
        if !PLANTED_WORDS.iter().any(|w| theme.phrase.contains(w)) {
            filler += 1;
            let z = theme.z_score.unwrap();
            assert!(z.abs() < 1.96, "filler {:?} has z {z}", theme.phrase);
        }
    }
    assert!(filler > 10, "the filler is ranked too ({filler} themes)");

    // Examples: up to three of the theme's side, newest first.
    let slow = report
        .negative_themes
        .iter()
        .find(|t| t.phrase == "slow delivery")
        .unwrap();
    assert_eq!(slow.example_response_ids.len(), 3);
    let by_id: BTreeMap<&str, &Comment> = comments.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut expected: Vec<&Comment> = comments
        .iter()
        .filter(|c| nps_side(c.score) == 1 && c.text.starts_with("Slow delivery."))
        .collect();
    expected.sort_by_key(|c| std::cmp::Reverse((c.at, c.id.clone())));
    let expected: Vec<&str> = expected.iter().take(3).map(|c| c.id.as_str()).collect();
    assert_eq!(slow.example_response_ids, expected);
    assert!(by_id[expected[0]].at > by_id[expected[2]].at);

    // A range whose edges are nearer the midnights outside it: whole days less the raw
    // rows outside the range.
    let (inner_start, inner_end) = (
        "2026-02-28T03:00:00Z".parse().unwrap(),
        "2026-03-04T21:00:00Z".parse().unwrap(),
    );
    let inner: Vec<Comment> = comments
        .iter()
        .filter(|c| inner_start <= c.at && c.at < inner_end)
        .cloned()
        .collect();
    assert!(inner.len() > 100 && inner.len() < comments.len() - 100);
    let subset = themes(&app, request(inner_start, inner_end, pb::SurveyKind::Nps)).await;
    assert_matches_reference(&app, &subset, &reference(&app, &inner).await).await;
    // From March 3rd to April: the month of March less its first two days.
    let (late_start, late_end) = (
        "2026-03-03T00:00:00Z".parse().unwrap(),
        "2026-04-01T00:00:00Z".parse().unwrap(),
    );
    let late: Vec<Comment> = comments
        .iter()
        .filter(|c| late_start <= c.at && c.at < late_end)
        .cloned()
        .collect();
    assert!(
        comments
            .iter()
            .any(|c| c.at < late_start && c.at >= t0() - Duration::hours(12))
    );
    let subset = themes(&app, request(late_start, late_end, pb::SurveyKind::Nps)).await;
    assert_matches_reference(&app, &subset, &reference(&app, &late).await).await;

    // A filter reads each comment's terms instead of the stored counts: the same answer.
    let mut filtered = request(start, end, pb::SurveyKind::Nps);
    filtered.query.as_mut().unwrap().filter = Some(pb::MetricFilter {
        channels: vec!["web".into()],
        ..Default::default()
    });
    assert_eq!(themes(&app, filtered).await, report);
    // And a range of whole UTC months reads the month counts.
    let months = request(
        "2026-01-01T00:00:00Z".parse().unwrap(),
        "2026-05-01T00:00:00Z".parse().unwrap(),
        pb::SurveyKind::Nps,
    );
    assert_eq!(themes(&app, months).await, report);
}

#[tokio::test]
async fn odd_comments_count_safely_and_empty_sides_have_no_z_score() {
    let app = spawn_app().await;
    let at = t0();
    let long = "slow delivery again and again. ".repeat(322);
    assert!(long.chars().count() <= 10_000);
    let texts = [
        ("empty", 2, String::new()),
        ("blank", 2, "   \n\t ".into()),
        ("emoji", 1, "😡😡😡 🚚".into()),
        ("chinese", 1, "送货太慢了".into()),
        ("arabic", 1, "التوصيل بطيء".into()),
        (
            "html",
            1,
            "<p>The <b>slow</b> delivery &amp; <a href=\"x\">rude</a> courier</p>".into(),
        ),
        ("long", 0, long),
        ("plain", 3, "Slow delivery".into()),
    ];
    let comments: Vec<Comment> = texts
        .iter()
        .enumerate()
        .map(|(i, (id, score, text))| Comment {
            id: (*id).into(),
            customer: "c-1".into(),
            score: *score,
            at: at + Duration::minutes(i as i64),
            text: text.clone(),
        })
        .collect();
    record(&app, &comments, pb::SurveyKind::Nps).await;
    let mut r = request(
        at - Duration::hours(1),
        at + Duration::hours(1),
        pb::SurveyKind::Nps,
    );
    r.min_mentions = Some(1);
    let report = themes(&app, r.clone()).await;
    // Every non-blank comment counts; only detractors answered, so nothing to compare.
    assert_eq!(
        (
            report.comments,
            report.negative_comments,
            report.positive_comments
        ),
        (6, 6, 0)
    );
    assert!(report.positive_themes.is_empty());
    assert!(report.negative_themes.iter().all(|t| t.z_score.is_none()));
    let phrases = phrases(&report.negative_themes);
    assert_eq!(
        phrases[..3],
        ["delivery", "slow", "slow delivery"],
        "{phrases:?}"
    );
    let slow = &report.negative_themes[0];
    assert_eq!(slow.negative_mentions, 3);
    // No markup is a theme; the courier of the HTML comment is.
    assert!(phrases.contains(&"courier"));
    assert!(
        !phrases
            .iter()
            .any(|p| p.contains("href") || p.contains('<'))
    );

    // A range with no comments.
    let mut empty = request(
        at + Duration::days(1),
        at + Duration::days(2),
        pb::SurveyKind::Nps,
    );
    empty.min_mentions = Some(1);
    let nothing = themes(&app, empty).await;
    assert_eq!(nothing, pb::CommentThemesReport::default());
    // Another kind has no comments in the range.
    r.kind = pb::SurveyKind::Csat as i32;
    assert_eq!(themes(&app, r).await, pb::CommentThemesReport::default());
}

#[tokio::test]
async fn an_erased_customers_comments_no_longer_count_nor_appear_as_examples() {
    let app = spawn_app().await;
    let at = t0();
    let mut comments = Vec::new();
    for i in 0..12 {
        comments.push(Comment {
            id: format!("r-{i:02}"),
            // The newest five are the erased customer's.
            customer: if i >= 7 {
                "erased".into()
            } else {
                format!("kept-{i}")
            },
            score: 2,
            at: at + Duration::minutes(i),
            text: "The courier lost my parcel".into(),
        });
        comments.push(Comment {
            id: format!("p-{i:02}"),
            customer: format!("kept-{i}"),
            score: 10,
            at: at + Duration::minutes(i),
            text: "Great prices".into(),
        });
    }
    record(&app, &comments, pb::SurveyKind::Nps).await;
    let r = request(
        at - Duration::days(1),
        at + Duration::days(1),
        pb::SurveyKind::Nps,
    );
    let before = themes(&app, r.clone()).await;
    let parcel = |report: &pb::CommentThemesReport| {
        report
            .negative_themes
            .iter()
            .find(|t| t.phrase == "parcel")
            .cloned()
    };
    let theme = parcel(&before).unwrap();
    assert_eq!(theme.negative_mentions, 12);
    assert_eq!(theme.example_response_ids, ["r-11", "r-10", "r-09"]);

    app.feedback()
        .delete_customer_data(pb::DeleteCustomerDataRequest {
            customer_id: "erased".into(),
        })
        .await
        .unwrap();
    let after = themes(&app, r).await;
    assert_eq!(after.negative_comments, 7);
    let theme = parcel(&after).unwrap();
    assert_eq!(theme.negative_mentions, 7);
    assert_eq!(theme.example_response_ids, ["r-06", "r-05", "r-04"]);
    let left = app
        .count("select count(*) from comment_terms where response_id like 'r-%' and response_id >= 'r-07'")
        .await;
    assert_eq!(left, 0);
    let checks = app.store.verify_rollups(None).await.unwrap();
    assert!(checks.iter().all(|c| c.differing_keys == 0), "{checks:?}");
}

#[tokio::test]
async fn updates_move_a_comment_between_sides_and_the_stored_counts_stay_exact() {
    let app = spawn_app().await;
    let at = t0();
    let mut comments: Vec<Comment> = (0..10)
        .map(|i| Comment {
            id: format!("r-{i}"),
            customer: "c".into(),
            score: if i < 5 { 1 } else { 10 },
            at: at + Duration::hours(i),
            text: if i < 5 { "rude agent" } else { "quick refund" }.into(),
        })
        .collect();
    record(&app, &comments, pb::SurveyKind::Nps).await;
    // r-0 becomes a promoter with another comment, r-1 moves to another day.
    for (i, c) in comments.iter_mut().enumerate().take(2) {
        if i == 0 {
            c.score = 9;
            c.text = "quick refund indeed".into();
        } else {
            c.at += Duration::days(2);
        }
    }
    let mut feedback = app.feedback();
    for c in &comments[..2] {
        let mut r = response(c, pb::SurveyKind::Nps);
        r.update_time = Some(ts(at + Duration::days(1)));
        feedback
            .record_survey_response(pb::RecordSurveyResponseRequest {
                survey_response: Some(r),
            })
            .await
            .unwrap();
    }
    let mut r = request(
        at - Duration::days(1),
        at + Duration::days(1),
        pb::SurveyKind::Nps,
    );
    r.min_mentions = Some(1);
    let report = themes(&app, r).await;
    let find = |phrase: &str| {
        all_themes(&report)
            .find(|t| t.phrase == phrase)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            find("rude").negative_mentions,
            find("rude").positive_mentions
        ),
        (3, 0)
    );
    assert_eq!(find("refund").positive_mentions, 6);
    assert_eq!((report.negative_comments, report.positive_comments), (3, 6));
    let checks = app.store.verify_rollups(None).await.unwrap();
    assert!(checks.iter().all(|c| c.differing_keys == 0), "{checks:?}");
    assert!(checks.iter().any(|c| c.table == "comment_terms"));
    assert!(checks.iter().any(|c| c.table == "comment_term_counts"));
    // A rebuild from the raw rows gives the same themes, and a tampered table is caught.
    app.store.rebuild_rollups(None).await.unwrap();
    let mut again = request(
        at - Duration::days(1),
        at + Duration::days(1),
        pb::SurveyKind::Nps,
    );
    again.min_mentions = Some(1);
    assert_eq!(themes(&app, again).await, report);
    sqlx::query("update comment_terms set form = 'tampered' where term = 'rude'")
        .execute(app.store.pool())
        .await
        .unwrap();
    sqlx::query("delete from comment_term_counts where term = 'refund'")
        .execute(app.store.pool())
        .await
        .unwrap();
    let checks = app.store.verify_rollups(None).await.unwrap();
    let differing = |table: &str| {
        checks
            .iter()
            .find(|c| c.table == table)
            .map(|c| c.differing_keys)
    };
    // Four responses say "rude": four stored rows and four raw ones differ.
    assert_eq!(differing("comment_terms"), Some(8));
    assert!(differing("comment_term_counts").unwrap() > 0);
}

#[tokio::test]
async fn compare_previous_gives_each_themes_change_in_share_of_its_side() {
    let app = spawn_app().await;
    let at = t0();
    let week = Duration::days(7);
    let mut comments = Vec::new();
    // Previous week: 4 of 20 detractors complain about the delivery; this week 15 of 20.
    for (offset, complaints) in [(-week, 4), (Duration::zero(), 15)] {
        for i in 0..20 {
            comments.push(Comment {
                id: format!("{}-{i}", offset.num_days()),
                customer: format!("c-{i}"),
                score: 3,
                at: at + offset + Duration::hours(i),
                text: if i < complaints {
                    "late delivery"
                } else {
                    "bad app"
                }
                .into(),
            });
            comments.push(Comment {
                id: format!("{}-p{i}", offset.num_days()),
                customer: format!("c-{i}"),
                score: 10,
                at: at + offset + Duration::hours(i),
                text: "nice app".into(),
            });
        }
    }
    record(&app, &comments, pb::SurveyKind::Nps).await;
    let mut r = request(at, at + week, pb::SurveyKind::Nps);
    r.query.as_mut().unwrap().compare_previous = true;
    let report = themes(&app, r).await;
    let late = report
        .negative_themes
        .iter()
        .find(|t| t.phrase == "late delivery")
        .unwrap();
    let change = late.change.unwrap();
    assert!((change.delta.unwrap() - 100.0 * (15.0 / 20.0 - 4.0 / 20.0)).abs() < 1e-9);
    // Pooled two-proportion z-test.
    let pooled: f64 = 19.0 / 40.0;
    let z = (0.75 - 0.2) / (pooled * (1.0 - pooled) * (2.0 / 20.0)).sqrt();
    let p = libm::erfc(z / std::f64::consts::SQRT_2);
    assert!((change.p_value.unwrap() - p).abs() < 1e-12);
    assert!(change.significant);
    // Without compare_previous there is no change.
    let plain = themes(&app, request(at, at + week, pb::SurveyKind::Nps)).await;
    assert!(all_themes(&plain).all(|t| t.change.is_none()));
}

#[tokio::test]
async fn csat_and_ces_split_at_the_top_points_of_each_scale() {
    let app = spawn_app().await;
    let at = t0();
    let scored = |kind: &str, scores: &[i32]| -> Vec<Comment> {
        scores
            .iter()
            .enumerate()
            .map(|(i, s)| Comment {
                id: format!("{kind}-{i}"),
                customer: "c".into(),
                score: *s,
                at: at + Duration::minutes(i as i64),
                text: format!("score{s} words"),
            })
            .collect()
    };
    record(
        &app,
        &scored("csat", &[1, 2, 3, 4, 5]),
        pb::SurveyKind::Csat,
    )
    .await;
    record(
        &app,
        &scored("ces", &[1, 2, 3, 4, 5, 6, 7]),
        pb::SurveyKind::Ces,
    )
    .await;
    for (kind, negative, positive) in [(pb::SurveyKind::Csat, 3, 2), (pb::SurveyKind::Ces, 4, 3)] {
        let mut r = request(at - Duration::hours(1), at + Duration::hours(1), kind);
        r.min_mentions = Some(1);
        let report = themes(&app, r).await;
        assert_eq!(
            (report.negative_comments, report.positive_comments),
            (negative, positive),
            "{kind:?}"
        );
        // Each score's own word lands on the side of its score.
        let top = i32::try_from(negative + positive).unwrap();
        for score in 1..=top {
            let word = format!("score{score}");
            let theme = all_themes(&report).find(|t| t.phrase == word).unwrap();
            let on_negative = score <= top - i32::try_from(positive).unwrap();
            let expected = if on_negative { (1, 0) } else { (0, 1) };
            assert_eq!(
                (theme.negative_mentions, theme.positive_mentions),
                expected,
                "{kind:?} {word}"
            );
            let listed = if on_negative {
                &report.negative_themes
            } else {
                &report.positive_themes
            };
            assert!(listed.contains(theme));
        }
    }
}

#[tokio::test]
async fn bad_theme_requests_name_their_fields() {
    let app = spawn_app().await;
    let mut metrics = app.metrics_with(&app.key);
    let mut r = request(t0(), t0() + Duration::days(1), pb::SurveyKind::Unspecified);
    r.max_themes = 101;
    r.min_mentions = Some(-1);
    let query = r.query.as_mut().unwrap();
    query.group_by = pb::Dimension::Channel as i32;
    let status = metrics.get_comment_themes(r).await.unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["query.group_by", "kind", "max_themes", "min_mentions"]
    );
    assert!(status.message().contains("not supported by comment themes"));

    let mut feedback = app.feedback();
    let listing = |q: &str| pb::ListSurveyResponsesRequest {
        time_range: Some(pb::TimeRange {
            start_time: Some(ts(t0())),
            end_time: Some(ts(t0() + Duration::days(1))),
        }),
        comment_query: q.into(),
        ..Default::default()
    };
    let status = feedback
        .list_survey_responses(listing(&"x".repeat(257)))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["comment_query"]);
    let status = feedback
        .list_survey_responses(listing("  "))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["comment_query"]);
}

#[tokio::test]
async fn comment_query_finds_comments_with_the_same_stems_in_any_order() {
    let app = spawn_app().await;
    let at = t0();
    let texts = [
        ("en-1", "The deliveries were slow"),
        ("en-2", "slow delivery, again"),
        ("en-3", "Fast delivery"),
        ("ru-1", "Доставка была очень долгой"),
        ("ru-2", "долгая доставка"),
        ("ru-3", "быстрая доставка"),
    ];
    let comments: Vec<Comment> = texts
        .iter()
        .enumerate()
        .map(|(i, (id, text))| Comment {
            id: (*id).into(),
            customer: "c".into(),
            score: 3,
            at: at + Duration::minutes(i as i64),
            text: (*text).into(),
        })
        .collect();
    record(&app, &comments, pb::SurveyKind::Nps).await;
    let mut feedback = app.feedback();
    for (query, expected) in [
        ("slow delivery", vec!["en-1", "en-2"]),
        ("Долгая доставка", vec!["ru-1", "ru-2"]),
        ("courier", vec![]),
    ] {
        let page = feedback
            .list_survey_responses(pb::ListSurveyResponsesRequest {
                time_range: Some(pb::TimeRange {
                    start_time: Some(ts(at - Duration::hours(1))),
                    end_time: Some(ts(at + Duration::hours(1))),
                }),
                comment_query: query.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = page
            .survey_responses
            .iter()
            .map(|r| r.response_id.as_str())
            .collect();
        assert_eq!(ids, expected, "{query}");
    }
    let path = format!(
        "/v1/survey-responses?start={}&end={}&comment_query=slow%20delivery&format=csv",
        (at - Duration::hours(1)).to_rfc3339(),
        (at + Duration::hours(1)).to_rfc3339()
    )
    .replace('+', "%2B");
    let (status, body) = get(&app, &path, Some(&app.key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.lines().count(), 3, "{body}");
    assert!(body.contains("en-1") && body.contains("en-2"));
}

#[tokio::test]
async fn the_http_rows_are_the_grpc_themes_one_per_theme_with_a_side() {
    let app = spawn_app().await;
    let start = t0() - Duration::days(3);
    let comments = planted(60, start + Duration::hours(5));
    record(&app, &comments, pb::SurveyKind::Nps).await;
    let end = start + Duration::days(10);
    let mut r = request(start, end, pb::SurveyKind::Nps);
    r.max_themes = 10;
    r.query.as_mut().unwrap().compare_previous = true;
    let grpc = themes(&app, r).await;
    let query = format!(
        "start={}&end={}&kind=nps&max_themes=10&compare_previous=true",
        start.to_rfc3339(),
        end.to_rfc3339()
    )
    .replace('+', "%2B");
    let (status, body) = get(
        &app,
        &format!("/v1/metrics/comment-themes?{query}"),
        Some(&app.key),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        grpc.negative_themes.len() + grpc.positive_themes.len()
    );
    let sides = [
        ("negative", &grpc.negative_themes),
        ("positive", &grpc.positive_themes),
    ];
    let mut i = 0;
    for (side, list) in sides {
        for (rank, theme) in list.iter().enumerate() {
            let row = &rows[i];
            i += 1;
            assert_eq!(row["side"], side);
            assert_eq!(row["rank"], rank as i64 + 1);
            assert_eq!(row["phrase"], theme.phrase.as_str());
            assert_eq!(row["mentions"], theme.mentions);
            assert_eq!(row["negative_mentions"], theme.negative_mentions);
            assert_eq!(row["z_score"].as_f64(), theme.z_score);
            assert_eq!(
                row["example_response_id_1"].as_str(),
                theme.example_response_ids.first().map(String::as_str)
            );
            let change = theme.change.unwrap();
            assert_eq!(row["change_delta"].as_f64(), change.delta);
            assert_eq!(row["change_significant"], change.significant);
        }
    }
    assert_eq!(json["comments"]["comments"], grpc.comments);
    let (status, csv) = get(
        &app,
        &format!("/v1/metrics/comment-themes?{query}&format=csv"),
        Some(&app.key),
    )
    .await;
    assert_eq!(status, 200);
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("side,rank,phrase,mentions"), "{header}");
    assert_eq!(csv.lines().count(), rows.len() + 1);

    let (status, body) = get(
        &app,
        &format!("/v1/metrics/comment-themes?{query}&group_by=channel"),
        Some(&app.key),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("group_by"), "{body}");
}

/// A grpcio client (tests/py/comment_themes.py) gets the same report as tonic.
#[tokio::test]
async fn a_grpcio_client_gets_the_same_themes() {
    use prost::Message;
    let Ok(python) = std::env::var("CXMETRICS_TEST_PYTHON") else {
        panic!(
            "CXMETRICS_TEST_PYTHON is not set: run the tests with scripts/test, which installs \
             grpcio into target/pyenv and points CXMETRICS_TEST_PYTHON at its python"
        );
    };
    let app = spawn_app().await;
    let start = t0() - Duration::days(3);
    record(
        &app,
        &planted(40, start + Duration::hours(5)),
        pb::SurveyKind::Nps,
    )
    .await;
    let r = request(start, start + Duration::days(10), pb::SurveyKind::Nps);
    let expected = themes(&app, r.clone()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/comment_themes.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args([
            app.addr.to_string(),
            app.key.clone(),
            hex::encode(r.encode_to_vec()),
        ])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the Python client");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = hex::decode(output.stdout.trim_ascii()).expect("hex reply");
    let got = pb::CommentThemesReport::decode(bytes.as_slice()).unwrap();
    assert_eq!(got, expected);
    assert!(!got.negative_themes.is_empty());
}

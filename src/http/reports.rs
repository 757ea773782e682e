//! Domain reports to tidy tables: one row per bucket x group, `period_start` (with a
//! granularity) and `group` (with a group_by) first, then the stats flattened under their
//! proto field names (nested ones joined with `_`: `first_response_p50_seconds`).
//!
//! With both a granularity and a group_by, a report has one row per group and bucket, from
//! each group's own series. A retention report grouped by NPS category has no series per
//! category: its rows are the series over all customers (`group` null), then each
//! category's total over the range (`period_start` null).

use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::table::{Cell, Column, Kind, Table, row_json};
use crate::domain::{
    MetricQuery,
    cohorts::Cohort,
    report::{GroupReport, Point, Report},
    response_times::{DurationStats, ResponseTimeChange, ResponseTimeStats, SlaStats},
    retention::{RetentionReport, RetentionStats},
    stats::{CesStats, Change, CsatStats, NpsStats},
    themes::{Side, ThemesReport},
};

/// Stats that flatten into columns.
pub trait Stats {
    /// The columns of a report whose total is `self` (CSAT adds one per score seen).
    fn columns(&self) -> Vec<Column>;
    /// The cells under `columns`.
    fn cells(&self, columns: &[Column]) -> Vec<Cell>;
}

/// A comparison with the previous period, as JSON.
pub trait ChangeJson {
    fn json(&self) -> Value;
}

fn int(name: &str) -> Column {
    Column::new(name, Kind::Integer, None)
}

fn num(name: &str, unit: &'static str) -> Column {
    Column::new(name, Kind::Number, Some(unit))
}

fn boolean(name: &str) -> Column {
    Column::new(name, Kind::Boolean, None)
}

impl Stats for NpsStats {
    fn columns(&self) -> Vec<Column> {
        vec![
            int("responses"),
            int("promoters"),
            int("passives"),
            int("detractors"),
            num("nps", "points"),
            num("margin_of_error", "points"),
        ]
    }

    fn cells(&self, _: &[Column]) -> Vec<Cell> {
        vec![
            Cell::Integer(self.responses),
            Cell::Integer(self.promoters),
            Cell::Integer(self.passives),
            Cell::Integer(self.detractors),
            Cell::number(self.nps),
            Cell::number(self.margin_of_error),
        ]
    }
}

/// The prefix of CSAT's count-per-score columns (`score_counts_5`).
const SCORE_COUNTS: &str = "score_counts_";

impl Stats for CsatStats {
    fn columns(&self) -> Vec<Column> {
        let mut columns = vec![
            int("responses"),
            int("satisfied"),
            num("csat", "percent"),
            num("mean_score", "score"),
            num("ci_low", "percent"),
            num("ci_high", "percent"),
        ];
        columns.extend(
            self.score_counts
                .keys()
                .map(|score| int(&format!("{SCORE_COUNTS}{score}"))),
        );
        columns
    }

    fn cells(&self, columns: &[Column]) -> Vec<Cell> {
        let mut cells = vec![
            Cell::Integer(self.responses),
            Cell::Integer(self.satisfied),
            Cell::number(self.csat),
            Cell::number(self.mean_score),
            Cell::number(self.ci_low),
            Cell::number(self.ci_high),
        ];
        for column in &columns[cells.len()..] {
            let score = column.name[SCORE_COUNTS.len()..].parse::<i16>().ok();
            let count = score.and_then(|s| self.score_counts.get(&s)).copied();
            // A score the row has no count for was given by none of its responses.
            cells.push(Cell::Integer(count.unwrap_or(0)));
        }
        cells
    }
}

impl Stats for CesStats {
    fn columns(&self) -> Vec<Column> {
        vec![
            int("responses"),
            int("easy"),
            num("easy_share", "percent"),
            num("mean_score", "score"),
        ]
    }

    fn cells(&self, _: &[Column]) -> Vec<Cell> {
        vec![
            Cell::Integer(self.responses),
            Cell::Integer(self.easy),
            Cell::number(self.easy_share),
            Cell::number(self.mean_score),
        ]
    }
}

fn duration_columns(prefix: &str) -> Vec<Column> {
    let mut columns = vec![int(&format!("{prefix}_count"))];
    for stat in ["mean", "min", "max", "p50", "p90", "p95", "p99"] {
        columns.push(num(&format!("{prefix}_{stat}_seconds"), "seconds"));
    }
    columns.push(boolean(&format!("{prefix}_percentiles_exact")));
    columns
}

fn duration_cells(d: &DurationStats) -> Vec<Cell> {
    let mut cells = vec![Cell::Integer(d.count)];
    for value in [d.mean, d.min, d.max, d.p50, d.p90, d.p95, d.p99] {
        cells.push(Cell::number(value));
    }
    cells.push(Cell::Boolean(d.percentiles_exact));
    cells
}

fn sla_columns(prefix: &str) -> Vec<Column> {
    vec![
        int(&format!("{prefix}_met")),
        int(&format!("{prefix}_breached")),
        num(&format!("{prefix}_attainment"), "percent"),
    ]
}

fn sla_cells(s: Option<&SlaStats>) -> Vec<Cell> {
    match s {
        Some(s) => vec![
            Cell::Integer(s.met),
            Cell::Integer(s.breached),
            Cell::number(s.attainment),
        ],
        None => vec![Cell::Null, Cell::Null, Cell::Null],
    }
}

impl Stats for ResponseTimeStats {
    fn columns(&self) -> Vec<Column> {
        let mut columns = vec![int("interactions"), int("unanswered"), int("unresolved")];
        columns.extend(duration_columns("first_response"));
        columns.extend(duration_columns("resolution"));
        columns.extend(sla_columns("first_response_sla"));
        columns.extend(sla_columns("resolution_sla"));
        columns
    }

    fn cells(&self, _: &[Column]) -> Vec<Cell> {
        let mut cells = vec![
            Cell::Integer(self.interactions),
            Cell::Integer(self.unanswered),
            Cell::Integer(self.unresolved),
        ];
        cells.extend(duration_cells(&self.first_response));
        cells.extend(duration_cells(&self.resolution));
        cells.extend(sla_cells(self.first_response_sla.as_ref()));
        cells.extend(sla_cells(self.resolution_sla.as_ref()));
        cells
    }
}

impl Stats for RetentionStats {
    fn columns(&self) -> Vec<Column> {
        vec![
            int("start_customers"),
            int("end_customers"),
            int("new_customers"),
            int("retained"),
            int("churned"),
            num("retention_rate", "percent"),
            num("churn_rate", "percent"),
        ]
    }

    fn cells(&self, _: &[Column]) -> Vec<Cell> {
        vec![
            Cell::Integer(self.start_customers),
            Cell::Integer(self.end_customers),
            Cell::Integer(self.new_customers),
            Cell::Integer(self.retained),
            Cell::Integer(self.churned),
            Cell::number(self.retention_rate),
            Cell::number(self.churn_rate),
        ]
    }
}

impl ChangeJson for Change {
    fn json(&self) -> Value {
        json!({
            "delta": Cell::number(self.delta).to_json(),
            "p_value": Cell::number(self.p_value).to_json(),
            "significant": self.significant,
        })
    }
}

impl ChangeJson for ResponseTimeChange {
    fn json(&self) -> Value {
        json!({
            "first_response_mean_delta_seconds":
                Cell::number(self.first_response_mean_delta).to_json(),
            "resolution_mean_delta_seconds": Cell::number(self.resolution_mean_delta).to_json(),
            "first_response_attainment": self.first_response_attainment.as_ref().map(Change::json),
            "resolution_attainment": self.resolution_attainment.as_ref().map(Change::json),
        })
    }
}

/// The shape of a report's rows: which of `period_start` and `group` it has.
struct Shape {
    zone: Tz,
    bucketed: bool,
    grouped: bool,
}

impl Shape {
    fn columns(&self, stats: Vec<Column>) -> Vec<Column> {
        let mut columns = Vec::new();
        if self.bucketed {
            columns.push(Column::new("period_start", Kind::Time, None));
        }
        if self.grouped {
            columns.push(Column::new("group", Kind::Text, None));
        }
        columns.extend(stats);
        columns
    }

    fn row(&self, start: Option<Cell>, group: Option<Cell>, stats: Vec<Cell>) -> Vec<Cell> {
        let mut row = Vec::new();
        if self.bucketed {
            row.push(start.unwrap_or(Cell::Null));
        }
        if self.grouped {
            row.push(group.unwrap_or(Cell::Null));
        }
        row.extend(stats);
        row
    }
}

/// A group of a report: its key, its stats over the range and its series (empty when the
/// report has no series per group).
struct Group<'a, S> {
    key: &'a str,
    stats: &'a S,
    series: &'a [Point<S>],
}

impl<'a, S> From<&'a GroupReport<S>> for Group<'a, S> {
    fn from(g: &'a GroupReport<S>) -> Self {
        Self {
            key: &g.key,
            stats: &g.stats,
            series: &g.series,
        }
    }
}

/// The parts every report has, as rows.
fn rows<S: Stats>(
    shape: &Shape,
    stats: &[Column],
    total: &S,
    series: &[Point<S>],
    groups: &[Group<'_, S>],
) -> Vec<Vec<Cell>> {
    let at = |t: &chrono::DateTime<chrono::Utc>| Some(Cell::time(*t, shape.zone));
    let key = |g: &Group<'_, S>| Some(Cell::Text(g.key.to_owned()));
    match (shape.bucketed, shape.grouped) {
        (false, false) => vec![shape.row(None, None, total.cells(stats))],
        (true, false) => series
            .iter()
            .map(|p| shape.row(at(&p.start), None, p.stats.cells(stats)))
            .collect(),
        (false, true) => groups
            .iter()
            .map(|g| shape.row(None, key(g), g.stats.cells(stats)))
            .collect(),
        (true, true) if groups.iter().all(|g| g.series.len() == series.len()) => groups
            .iter()
            .flat_map(|g| {
                g.series
                    .iter()
                    .map(move |p| shape.row(at(&p.start), key(g), p.stats.cells(stats)))
            })
            .collect(),
        (true, true) => series
            .iter()
            .map(|p| shape.row(at(&p.start), None, p.stats.cells(stats)))
            .chain(
                groups
                    .iter()
                    .map(|g| shape.row(None, key(g), g.stats.cells(stats))),
            )
            .collect(),
    }
}

/// A survey or response-time report.
pub fn report<S: Stats, C: ChangeJson>(report: &Report<S, C>, query: &MetricQuery) -> Table {
    let shape = Shape {
        zone: query.time_zone,
        bucketed: query.granularity.is_some(),
        grouped: query.group_by.is_some(),
    };
    let stats = report.total.columns();
    let mut table = Table::new(shape.columns(stats.clone()));
    let groups: Vec<Group<'_, S>> = report.groups.iter().map(Group::from).collect();
    table.rows = rows(&shape, &stats, &report.total, &report.series, &groups);
    let flat = |s: &S| row_json(&stats, &s.cells(&stats));
    let mut summary = Map::new();
    summary.insert("total".into(), flat(&report.total));
    summary.insert(
        "previous".into(),
        report.previous.as_ref().map_or(Value::Null, flat),
    );
    summary.insert(
        "change".into(),
        report.change.as_ref().map_or(Value::Null, ChangeJson::json),
    );
    table.extra.insert("summary".into(), Value::Object(summary));
    table
}

/// A retention report; grouped by NPS category when asked.
pub fn retention(report: &RetentionReport, zone: Tz, bucketed: bool) -> Table {
    let shape = Shape {
        zone,
        bucketed,
        grouped: !report.groups.is_empty(),
    };
    let stats = report.total.columns();
    let mut table = Table::new(shape.columns(stats.clone()));
    let groups: Vec<Group<'_, RetentionStats>> = report.groups.iter().map(Group::from).collect();
    table.rows = rows(&shape, &stats, &report.total, &report.series, &groups);
    let mut summary = Map::new();
    summary.insert(
        "total".into(),
        row_json(&stats, &report.total.cells(&stats)),
    );
    table.extra.insert("summary".into(), Value::Object(summary));
    table
}

/// Cohorts: one row per cohort x period offset.
pub fn cohorts(cohorts: &[Cohort], zone: Tz) -> Table {
    let mut table = Table::new(vec![
        Column::new("period_start", Kind::Time, None),
        int("size"),
        int("offset"),
        int("active"),
        num("rate", "percent"),
    ]);
    for cohort in cohorts {
        for (offset, active) in cohort.active.iter().enumerate() {
            table.rows.push(vec![
                Cell::time(cohort.start, zone),
                Cell::Integer(cohort.size),
                Cell::Integer(offset as i64),
                Cell::Integer(*active),
                Cell::number(cohort.rates.get(offset).copied()),
            ]);
        }
    }
    table
}

/// Comment themes: one row per theme, the negative side's first, each side strongest
/// first (`rank` from 1), the examples in a column each (ids may hold any character, so
/// no separator could join them); JSON adds the comment counts as `comments`.
pub fn comment_themes(report: &ThemesReport) -> Table {
    let mut table = Table::new(vec![
        Column::new("side", Kind::Text, None),
        int("rank"),
        Column::new("phrase", Kind::Text, None),
        int("mentions"),
        int("negative_mentions"),
        int("positive_mentions"),
        num("z_score", "z"),
        Column::new("example_response_id_1", Kind::Text, None),
        Column::new("example_response_id_2", Kind::Text, None),
        Column::new("example_response_id_3", Kind::Text, None),
        num("change_delta", "points"),
        num("change_p_value", "p"),
        boolean("change_significant"),
    ]);
    let sides = [
        (Side::Negative, &report.negative_themes),
        (Side::Positive, &report.positive_themes),
    ];
    for (side, themes) in sides {
        for (i, theme) in themes.iter().enumerate() {
            let change = theme.change.unwrap_or_default();
            table.rows.push(vec![
                Cell::Text(side.name().to_owned()),
                Cell::Integer(i as i64 + 1),
                Cell::Text(theme.phrase.clone()),
                Cell::Integer(theme.mentions()),
                Cell::Integer(theme.negative_mentions),
                Cell::Integer(theme.positive_mentions),
                Cell::number(theme.z_score),
                Cell::text(theme.example_response_ids.first().map(String::as_str)),
                Cell::text(theme.example_response_ids.get(1).map(String::as_str)),
                Cell::text(theme.example_response_ids.get(2).map(String::as_str)),
                Cell::number(change.delta),
                Cell::number(change.p_value),
                match theme.change {
                    Some(c) => Cell::Boolean(c.significant),
                    None => Cell::Null,
                },
            ]);
        }
    }
    let c = report.comments;
    table.extra.insert(
        "comments".into(),
        json!({"comments": c.total(), "negative_comments": c.negative, "positive_comments": c.positive}),
    );
    table
}

//! Tidy tables, the one shape every HTTP answer takes: typed columns and flat rows, written
//! as JSON (`{"columns": [...], "rows": [{...}], ...}`) or as CSV (RFC 4180, a header row,
//! numbers as numbers, absent values empty).

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use crate::error::Error;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RFC 3339 with the offset of the report's time zone.
    Time,
    Text,
    Integer,
    Number,
    Boolean,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Time => "time",
            Kind::Text => "string",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    /// `percent`, `seconds`, `points`, `score`, or none.
    pub unit: Option<&'static str>,
}

impl Column {
    pub fn new(name: impl Into<String>, kind: Kind, unit: Option<&'static str>) -> Self {
        Self {
            name: name.into(),
            kind,
            unit,
        }
    }

    fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.kind.as_str(), "unit": self.unit})
    }
}

/// One value of a row; `Null` is absent.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Number(f64),
    Text(String),
    Boolean(bool),
}

impl Cell {
    pub fn number(value: Option<f64>) -> Self {
        value
            .filter(|v| v.is_finite())
            .map_or(Cell::Null, Cell::Number)
    }

    pub fn text(value: Option<&str>) -> Self {
        value.map_or(Cell::Null, |v| Cell::Text(v.to_owned()))
    }

    /// An instant in `zone`'s offset.
    pub fn time(t: DateTime<Utc>, zone: Tz) -> Self {
        Cell::Text(
            t.with_timezone(&zone)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
    }

    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Integer(n) => json!(n),
            Cell::Number(x) => json!(x),
            Cell::Text(s) => json!(s),
            Cell::Boolean(b) => json!(b),
        }
    }

    pub fn to_csv(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Integer(n) => n.to_string(),
            // Display prints the shortest text that reads back as the same number.
            Cell::Number(x) => x.to_string(),
            Cell::Text(s) => s.clone(),
            Cell::Boolean(b) => b.to_string(),
        }
    }
}

/// A whole answer: columns, rows, and what JSON adds around them (`summary`, paging).
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Extra top-level JSON members (not in CSV).
    pub extra: Map<String, Value>,
}

/// JSON or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

pub const CSV_TYPE: &str = "text/csv; charset=utf-8; header=present";

impl Table {
    pub fn new(columns: Vec<Column>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
            extra: Map::new(),
        }
    }

    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| row_json(&self.columns, row))
            .collect();
        let mut body = Map::new();
        body.insert(
            "columns".into(),
            self.columns.iter().map(Column::to_json).collect(),
        );
        body.insert("rows".into(), Value::Array(rows));
        body.extend(self.extra.clone());
        Value::Object(body)
    }

    pub fn into_response(self, format: Format) -> Result<Response, Error> {
        match format {
            Format::Json => Ok(json_response(&self.json())),
            Format::Csv => {
                let mut out = csv_writer(Vec::new());
                write_header(&mut out, &self.columns)?;
                for row in &self.rows {
                    write_row(&mut out, row)?;
                }
                let body = out.into_inner().map_err(|e| internal(e.into_error()))?;
                Ok((
                    [(header::CONTENT_TYPE, HeaderValue::from_static(CSV_TYPE))],
                    body,
                )
                    .into_response())
            }
        }
    }
}

/// One row as a JSON object keyed by column name.
pub fn row_json(columns: &[Column], row: &[Cell]) -> Value {
    Value::Object(
        columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.name.clone(), v.to_json()))
            .collect(),
    )
}

pub fn json_response(body: &Value) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// A CSV writer with RFC 4180 line ends.
pub fn csv_writer<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out)
}

pub fn write_header<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    columns: &[Column],
) -> Result<(), Error> {
    out.write_record(columns.iter().map(|c| c.name.as_str()))
        .map_err(internal)
}

pub fn write_row<W: std::io::Write>(out: &mut csv::Writer<W>, row: &[Cell]) -> Result<(), Error> {
    out.write_record(row.iter().map(Cell::to_csv))
        .map_err(internal)
}

fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Internal(anyhow::Error::new(error).context("writing CSV"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_reads_back_as_itself_and_an_absent_one_is_empty_or_null() {
        let x = 100.0 / 3.0;
        assert_eq!(Cell::number(Some(x)).to_csv().parse::<f64>().unwrap(), x);
        assert_eq!(Cell::number(None).to_csv(), "");
        assert_eq!(Cell::number(Some(f64::NAN)).to_json(), Value::Null);
    }

    #[test]
    fn a_time_carries_the_zone_offset() {
        let t = DateTime::parse_from_rfc3339("2026-07-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            Cell::time(t, chrono_tz::Europe::Berlin),
            Cell::Text("2026-07-01T02:00:00+02:00".into())
        );
        assert_eq!(
            Cell::time(t, Tz::UTC),
            Cell::Text("2026-07-01T00:00:00Z".into())
        );
    }

    #[test]
    fn csv_quotes_what_needs_it_and_ends_lines_with_crlf() {
        let mut table = Table::new(vec![Column::new("a", Kind::Text, None)]);
        table.rows.push(vec![Cell::Text("x, \"y\"".into())]);
        let mut out = csv_writer(Vec::new());
        write_header(&mut out, &table.columns).unwrap();
        write_row(&mut out, &table.rows[0]).unwrap();
        let text = String::from_utf8(out.into_inner().unwrap()).unwrap();
        assert_eq!(text, "a\r\n\"x, \"\"y\"\"\"\r\n");
    }
}

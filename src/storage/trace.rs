//! The CLIENT span of each database statement, following the OpenTelemetry database
//! semantic conventions: named `<OPERATION> <table>`, with the parameterised statement as
//! `db.query.text`. Bound values never appear: only the SQL text, which holds `$n`
//! placeholders, is recorded.

use std::future::Future;

use tracing::{Instrument, field::Empty};

/// Runs `statement` (the execution of `sql`) inside its CLIENT span; a failure marks the
/// span as an error with the SQLSTATE (or the kind of failure) as `error.type`.
pub(crate) async fn traced<T>(
    sql: &str,
    statement: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    let span = tracing::info_span!(
        "db",
        otel.name = Empty,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system = "postgresql",
        db.system.name = "postgresql",
        db.operation.name = Empty,
        db.collection.name = Empty,
        db.query.text = sql,
        error.type = Empty,
    );
    if !span.is_disabled() {
        let summary = Summary::of(sql);
        span.record("otel.name", summary.to_string());
        span.record("db.operation.name", summary.operation.as_str());
        span.record("db.collection.name", summary.table);
    }
    let result = statement.instrument(span.clone()).await;
    if let Err(error) = &result {
        span.record("otel.status_code", "error");
        span.record("error.type", error_type(error).as_ref());
    }
    result
}

/// The SQLSTATE of a database error, else the kind of failure.
fn error_type(error: &sqlx::Error) -> std::borrow::Cow<'static, str> {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .map(|code| code.into_owned().into())
            .unwrap_or("database".into()),
        sqlx::Error::Io(_) => "io".into(),
        sqlx::Error::PoolTimedOut => "pool_timed_out".into(),
        sqlx::Error::PoolClosed => "pool_closed".into(),
        sqlx::Error::Tls(_) => "tls".into(),
        sqlx::Error::Protocol(_) => "protocol".into(),
        sqlx::Error::RowNotFound => "row_not_found".into(),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode".into(),
        _ => "other".into(),
    }
}

/// What a statement does and to which table: its first keyword (the main statement's, after
/// a `with` list) and the least nested table it names that is not a CTE of its own.
#[derive(Debug, PartialEq, Eq)]
struct Summary<'a> {
    operation: String,
    table: Option<&'a str>,
}

impl std::fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.table {
            Some(table) => write!(f, "{} {table}", self.operation),
            None => f.write_str(&self.operation),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Open,
    Close,
    Other,
}

/// Words (identifiers, keywords, qualified names), parentheses and other symbols, each with
/// its parenthesis depth; string literals and comments are skipped.
fn tokens(sql: &str) -> Vec<(usize, Token<'_>)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut depth) = (0, 0usize);
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        i += 1;
        match c {
            b'\'' => {
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                out.push((depth, Token::Open));
                depth += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                out.push((depth, Token::Close));
            }
            c if is_word(c) => {
                while i < bytes.len() && is_word(bytes[i]) {
                    i += 1;
                }
                out.push((depth, Token::Word(&sql[start..i])));
            }
            c if c.is_ascii_whitespace() => {}
            _ => out.push((depth, Token::Other)),
        }
    }
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'"' | b'$')
}

/// Words after which a table name follows.
const TABLE_BEFORE: &[&str] = &["from", "into", "update", "join"];
/// Words that follow those without being a table (`do update set`, `from lateral`).
const NOT_TABLES: &[&str] = &["set", "lateral", "only", "select"];
const STATEMENTS: &[&str] = &["select", "insert", "update", "delete", "merge"];

impl<'a> Summary<'a> {
    fn of(sql: &'a str) -> Self {
        let tokens = tokens(sql);
        let words = || {
            tokens.iter().filter_map(|(depth, token)| match token {
                Token::Word(word) => Some((*depth, *word)),
                _ => None,
            })
        };
        let first = words().next().map(|(_, word)| word).unwrap_or_default();
        let mut ctes = Vec::new();
        let operation = if first.eq_ignore_ascii_case("with") {
            // The CTE names precede `as` at depth 0; the main statement is the first
            // statement keyword at depth 0.
            let top: Vec<&str> = words().filter(|(d, _)| *d == 0).map(|(_, w)| w).collect();
            for pair in top.windows(2) {
                if pair[1].eq_ignore_ascii_case("as") {
                    ctes.push(pair[0]);
                }
            }
            top.iter()
                .find(|w| STATEMENTS.iter().any(|s| w.eq_ignore_ascii_case(s)))
                .copied()
                .unwrap_or(first)
        } else {
            first
        };
        let table = tokens
            .windows(3)
            .filter_map(|window| match window {
                [
                    (depth, Token::Word(before)),
                    (_, Token::Word(name)),
                    (_, next),
                ] if TABLE_BEFORE.iter().any(|b| before.eq_ignore_ascii_case(b))
                    && !NOT_TABLES.iter().any(|n| name.eq_ignore_ascii_case(n))
                    && !ctes.iter().any(|c| name.eq_ignore_ascii_case(c))
                    && *next != Token::Open =>
                {
                    Some((*depth, *name))
                }
                _ => None,
            })
            .min_by_key(|(depth, _)| *depth)
            .map(|(_, name)| name.trim_matches('"'));
        Summary {
            operation: operation.to_ascii_uppercase(),
            table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(sql: &str) -> String {
        Summary::of(sql).to_string()
    }

    #[test]
    fn an_upsert_is_an_insert_into_its_table() {
        assert_eq!(
            summary(
                "insert into survey_responses as stored (tenant_id, response_id)
                 select $1, r.* from unnest($2::text[]) as r
                 on conflict (tenant_id, response_id) do update set response_id = 'x'
                 returning response_id"
            ),
            "INSERT survey_responses"
        );
    }

    #[test]
    fn a_select_names_its_least_nested_table_not_a_join_or_function() {
        assert_eq!(
            summary(
                "select width_bucket(r.respond_time, $1::timestamptz[]) - 1 as bucket
                 from survey_responses r left join interactions i on i.id = r.id
                 where r.tenant_id = $2"
            ),
            "SELECT survey_responses"
        );
        assert_eq!(
            summary("select p.idx from unnest($1::int[]) as p(idx)"),
            "SELECT"
        );
    }

    #[test]
    fn a_cte_query_names_the_table_its_ctes_read_not_the_ctes() {
        assert_eq!(
            summary(
                "with c as (
                     select c.acquire_time,
                        (select r.score from survey_responses r where r.kind = 1) as latest
                     from customers c where c.tenant_id = $1
                 )
                 select p.idx, count(*) from c
                 cross join unnest($2::timestamptz[]) with ordinality as p(s, idx)"
            ),
            "SELECT customers"
        );
        assert_eq!(
            summary(
                "with activity as (select customer_id from interactions where tenant_id = $1),
                 firsts as (select customer_id from activity)
                 select * from firsts f join activity a on a.customer_id = f.customer_id"
            ),
            "SELECT interactions"
        );
    }

    #[test]
    fn updates_deletes_and_transaction_statements() {
        assert_eq!(
            summary("update api_keys set revoke_time = now() where key_id = $1"),
            "UPDATE api_keys"
        );
        assert_eq!(
            summary("delete from customers where tenant_id = $1"),
            "DELETE customers"
        );
        assert_eq!(summary("begin"), "BEGIN");
        assert_eq!(summary("commit"), "COMMIT");
        assert_eq!(summary("select 1"), "SELECT");
    }

    #[test]
    fn string_literals_and_comments_are_not_read_as_sql() {
        assert_eq!(
            summary("-- from secrets\nselect 'from passwords' as x from \"Tenants\" t"),
            "SELECT Tenants"
        );
    }
}

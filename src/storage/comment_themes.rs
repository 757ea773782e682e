//! The counting of comment themes, inside PostgreSQL: how many comments of each side
//! contain each term over a range, from the per-day and per-month counts the triggers of
//! migrations/20261201000010_comment_terms.sql keep where they serve (no filter, whole UTC
//! days) and from each comment's terms elsewhere; and the newest example responses of the
//! winning themes.

use sqlx::{Postgres, QueryBuilder, Row};

use super::{Store, filters};
use crate::{
    domain::{
        Filter, SurveyKind, TenantId, TimeRange,
        themes::{self, CommentCounts, EXAMPLES, Part, Side, Source, TermCount, Totals},
    },
    error::Error,
};

/// What to count: a kind's comments in a range, with a filter.
#[derive(Debug, Clone, Copy)]
pub struct ThemeScope<'a> {
    pub tenant: &'a TenantId,
    pub kind: SurveyKind,
    pub range: TimeRange,
    pub filter: &'a Filter,
}

/// One row of the counts: a term (or, with `term` "", the comments themselves) and the
/// sums of every term's mentions on each side.
#[derive(Debug, Clone)]
pub struct CountRow {
    pub count: TermCount,
    /// On neither side (only for the comments row).
    pub other: i64,
    pub totals: Totals,
}

impl CountRow {
    pub fn is_comments(&self) -> bool {
        self.count.term.is_empty()
    }

    pub fn comments(&self) -> CommentCounts {
        CommentCounts {
            negative: self.count.negative,
            positive: self.count.positive,
            other: self.other,
        }
    }
}

impl Store {
    /// Streams the counts of every term with at least `min_mentions` mentions (and, when
    /// `only` is given, only those terms) plus the comments row to `each`; PostgreSQL does
    /// the counting, the service holds one row at a time.
    #[tracing::instrument(skip_all, fields(kind = ?scope.kind))]
    pub async fn comment_term_counts(
        &self,
        scope: ThemeScope<'_>,
        min_mentions: i64,
        only: Option<&[String]>,
        deadline: Option<std::time::Instant>,
        mut each: impl FnMut(CountRow),
    ) -> Result<(), Error> {
        let mut qb = QueryBuilder::new("with counted (side, term, form, n) as (");
        push_parts(&mut qb, scope, only);
        qb.push(
            "), forms as (
                 select term, form, sum(n) filter (where side = 1) as neg,
                        sum(n) filter (where side = 2) as pos,
                        sum(n) filter (where side = 0) as other
                 from counted group by term, form having sum(n) <> 0
             ), terms as (
                 select term,
                        (array_agg(form order by coalesce(neg, 0) + coalesce(pos, 0)
                                   + coalesce(other, 0) desc, form))[1] as form,
                        coalesce(sum(neg), 0)::int8 as neg, coalesce(sum(pos), 0)::int8 as pos,
                        coalesce(sum(other), 0)::int8 as other
                 from forms group by term
             ), totalled as (
                 select *, sum(neg) filter (where term <> '') over () as neg_total,
                        sum(pos) filter (where term <> '') over () as pos_total
                 from terms
             )
             select term, form, neg, pos, other, coalesce(neg_total, 0)::int8 as neg_total,
                    coalesce(pos_total, 0)::int8 as pos_total
             from totalled where term = '' or neg + pos >= ",
        );
        qb.push_bind(min_mentions);
        self.read_each(qb.build(), deadline, |row| {
            each(CountRow {
                count: TermCount {
                    term: row.try_get("term")?,
                    form: row.try_get("form")?,
                    negative: row.try_get("neg")?,
                    positive: row.try_get("pos")?,
                },
                other: row.try_get("other")?,
                totals: Totals {
                    negative: row.try_get("neg_total")?,
                    positive: row.try_get("pos_total")?,
                },
            });
            Ok(())
        })
        .await
    }

    /// The newest `EXAMPLES` responses of each (term, side), newest first.
    #[tracing::instrument(skip_all, fields(terms = wanted.len() as i64))]
    pub async fn comment_term_examples(
        &self,
        scope: ThemeScope<'_>,
        wanted: &[(String, Side)],
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<(String, Side, String)>, Error> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let terms: Vec<String> = wanted.iter().map(|(t, _)| t.clone()).collect();
        let sides: Vec<i16> = wanted.iter().map(|(_, s)| s.code()).collect();
        let mut qb = QueryBuilder::new("select w.term, w.side, e.response_id from unnest(");
        qb.push_bind(terms)
            .push("::text[], ")
            .push_bind(sides)
            .push(
                "::int2[]) as w (term, side) cross join lateral (
                     select t.response_id from comment_terms t
                     join survey_responses r
                       on r.tenant_id = t.tenant_id and r.response_id = t.response_id",
            );
        if scope.filter.uses_interaction() {
            qb.push(filters::LINKED_INTERACTION);
        }
        qb.push(" where t.tenant_id = ")
            .push_bind(scope.tenant.as_str().to_owned())
            .push(" and t.kind = ")
            .push_bind(scope.kind.code())
            .push(" and t.side = w.side and t.term = w.term and t.respond_time >= ")
            .push_bind(scope.range.start())
            .push(" and t.respond_time < ")
            .push_bind(scope.range.end());
        filters::push_response_filter(&mut qb, scope.filter);
        qb.push(" order by t.respond_time desc, t.response_id desc limit ")
            .push_bind(EXAMPLES as i64)
            .push(") e");
        let rows = self.read_rows(qb.build(), deadline).await?;
        rows.iter()
            .map(|row| {
                let side = match row.try_get::<i16, _>("side")? {
                    1 => Side::Negative,
                    _ => Side::Positive,
                };
                Ok((row.try_get("term")?, side, row.try_get("response_id")?))
            })
            .collect()
    }
}

/// The rows (side, term, form, n) of the range: stored counts for the parts they cover when
/// there is no filter, each comment's terms (n = 1) elsewhere.
fn push_parts(
    qb: &mut QueryBuilder<'static, Postgres>,
    scope: ThemeScope<'_>,
    only: Option<&[String]>,
) {
    let parts = if *scope.filter == Filter::default() {
        themes::cover(scope.range.start(), scope.range.end())
    } else {
        vec![themes::Part {
            source: Source::Raw,
            from: scope.range.start(),
            to: scope.range.end(),
            sign: 1,
        }]
    };
    let mut first = true;
    let mut union = |qb: &mut QueryBuilder<'static, Postgres>| {
        if !std::mem::take(&mut first) {
            qb.push(" union all ");
        }
    };
    // One plain range scan per stored part (at most five), each estimated from the
    // table's statistics: a join against the parts would hide their sizes from the planner.
    for part in &parts {
        let Some(grain) = part.source.grain() else {
            continue;
        };
        union(qb);
        qb.push("select c.side, c.term, c.form, c.n * ")
            .push_bind(i64::from(part.sign))
            .push(" from comment_term_counts c where c.tenant_id = ")
            .push_bind(scope.tenant.as_str().to_owned())
            .push(" and c.kind = ")
            .push_bind(scope.kind.code())
            .push(" and c.grain = ")
            .push_bind(grain)
            .push(" and c.slot >= ")
            .push_bind(part.from)
            .push(" and c.slot < ")
            .push_bind(part.to);
        push_only(qb, "c.term", only);
    }
    for part in parts.iter().filter(|p| p.source == Source::Raw) {
        union(qb);
        push_raw_terms(qb, scope, part, only);
        qb.push(" union all ");
        push_raw_comments(qb, scope, part);
    }
    if first {
        qb.push("select 0::int2, ''::text, ''::text, 0::int8 where false");
    }
}

/// ` and <column> = any(...)` (the comments row '' always) when `only` is given.
fn push_only(qb: &mut QueryBuilder<'static, Postgres>, column: &str, only: Option<&[String]>) {
    if let Some(only) = only {
        qb.push(format_args!(" and ({column} = '' or {column} = any("))
            .push_bind(only.to_vec())
            .push("::text[]))");
    }
}

fn push_raw_scope(qb: &mut QueryBuilder<'static, Postgres>, scope: ThemeScope<'_>, part: &Part) {
    if scope.filter.uses_interaction() {
        qb.push(filters::LINKED_INTERACTION);
    }
    qb.push(" where r.tenant_id = ")
        .push_bind(scope.tenant.as_str().to_owned())
        .push(" and r.kind = ")
        .push_bind(scope.kind.code())
        .push(" and r.respond_time >= ")
        .push_bind(part.from)
        .push(" and r.respond_time < ")
        .push_bind(part.to);
    filters::push_response_filter(qb, scope.filter);
}

/// The terms of each comment of the part, counted with its sign.
fn push_raw_terms(
    qb: &mut QueryBuilder<'static, Postgres>,
    scope: ThemeScope<'_>,
    part: &Part,
    only: Option<&[String]>,
) {
    qb.push("select t.side, t.term, t.form, ")
        .push_bind(i64::from(part.sign))
        .push(
            " from survey_responses r
             join comment_terms t on t.tenant_id = r.tenant_id and t.response_id = r.response_id",
        );
    push_raw_scope(qb, scope, part);
    push_only(qb, "t.term", only);
}

/// The comments of the part, as the rows of the term '', counted with its sign.
fn push_raw_comments(qb: &mut QueryBuilder<'static, Postgres>, scope: ThemeScope<'_>, part: &Part) {
    qb.push("select comment_side(r.kind, r.score, r.scale_max), '', '', ")
        .push_bind(i64::from(part.sign))
        .push(" from survey_responses r");
    push_raw_scope(qb, scope, part);
    qb.push(" and comment_present(r.comment)");
}

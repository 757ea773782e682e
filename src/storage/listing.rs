//! Drill-down rows, ordered by time then id and paged by keyset: a page starts strictly
//! after the last row of the one before, so rows inserted meanwhile never shift a page and
//! every row that existed when paging began is returned exactly once.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, postgres::PgRow};

use super::{Store, filters};
use crate::{
    domain::{
        Attributes, Filter, Interaction, Score, ScoreScale, SurveyKind, SurveyResponse, TenantId,
        TimeRange,
    },
    error::Error,
};

/// The position after which the next page starts: the last row's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub time: DateTime<Utc>,
    pub id: String,
}

/// One page of rows and, when more follow, where the next page starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Which survey responses a listing selects: respond_time in `range`, the filter, and
/// optionally one kind and a text search of the comment.
#[derive(Debug, Clone, Copy)]
pub struct ResponseSelection<'a> {
    pub range: TimeRange,
    pub filter: &'a Filter,
    pub kind: Option<SurveyKind>,
    pub comment_query: Option<&'a str>,
}

/// Which page to read: the rows after `after` (from the first without), at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub after: Option<&'a Cursor>,
    pub limit: usize,
}

impl Store {
    #[tracing::instrument(skip_all, fields(limit = page.limit as i64))]
    pub async fn list_survey_responses(
        &self,
        tenant: &TenantId,
        selection: ResponseSelection<'_>,
        page: PageRequest<'_>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Page<SurveyResponse>, Error> {
        let PageRequest { after, limit } = page;
        let ResponseSelection {
            range,
            filter,
            kind,
            comment_query,
        } = selection;
        let mut qb = QueryBuilder::new(
            "select r.response_id, r.survey_id, r.kind, r.score, r.scale_min, r.scale_max,
                    r.customer_id, r.interaction_id, r.channel, r.respond_time, r.comment,
                    r.attributes, r.update_time
             from survey_responses r",
        );
        if filter.uses_interaction() {
            qb.push(filters::LINKED_INTERACTION);
        }
        qb.push(" where r.tenant_id = ")
            .push_bind(tenant.as_str().to_owned())
            .push(" and r.respond_time >= ")
            .push_bind(range.start())
            .push(" and r.respond_time < ")
            .push_bind(range.end());
        if let Some(kind) = kind {
            qb.push(" and r.kind = ").push_bind(kind.code());
        }
        filters::push_response_filter(&mut qb, filter);
        if let Some(text) = comment_query {
            // Every word of the text, stemmed as a comment in the text's own script would
            // be (`comment_config`), against the comments' tsvectors (GIN-indexed).
            qb.push(" and r.comment_tsv @@ plainto_tsquery(comment_config(")
                .push_bind(text.to_owned())
                .push(", null), ")
                .push_bind(text.to_owned())
                .push(")");
        }
        push_after(&mut qb, "r.respond_time", "r.response_id", after);
        qb.push(" order by r.respond_time, r.response_id limit ")
            .push_bind(limit as i64 + 1);
        let query = qb.build();
        let rows = self.read_rows(query, deadline).await?;
        let items = rows
            .iter()
            .map(survey_response)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(paged(items, limit, |r| Cursor {
            time: r.respond_time,
            id: r.response_id.clone(),
        }))
    }

    #[tracing::instrument(skip_all, fields(limit = page.limit as i64))]
    pub async fn list_interactions(
        &self,
        tenant: &TenantId,
        range: TimeRange,
        filter: &Filter,
        page: PageRequest<'_>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Page<Interaction>, Error> {
        let PageRequest { after, limit } = page;
        let mut qb = QueryBuilder::new(
            "select i.interaction_id, i.customer_id, i.channel, i.agent_id, i.team_id,
                    i.open_time, i.first_response_time, i.resolve_time, i.attributes,
                    i.update_time
             from interactions i where i.tenant_id = ",
        );
        qb.push_bind(tenant.as_str().to_owned())
            .push(" and i.open_time >= ")
            .push_bind(range.start())
            .push(" and i.open_time < ")
            .push_bind(range.end());
        filters::push_interaction_filter(&mut qb, filter);
        push_after(&mut qb, "i.open_time", "i.interaction_id", after);
        qb.push(" order by i.open_time, i.interaction_id limit ")
            .push_bind(limit as i64 + 1);
        let query = qb.build();
        let rows = self.read_rows(query, deadline).await?;
        let items = rows
            .iter()
            .map(interaction)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(paged(items, limit, |i| Cursor {
            time: i.open_time,
            id: i.interaction_id.clone(),
        }))
    }
}

fn push_after(
    qb: &mut QueryBuilder<'_, sqlx::Postgres>,
    time_column: &str,
    id_column: &str,
    after: Option<&Cursor>,
) {
    if let Some(cursor) = after {
        qb.push(format_args!(" and ({time_column}, {id_column}) > ("))
            .push_bind(cursor.time)
            .push(", ")
            .push_bind(cursor.id.clone())
            .push(")");
    }
}

/// Keeps `limit` items; the extra row fetched tells whether another page follows.
fn paged<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> Cursor) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(cursor) } else { None };
    Page { items, next }
}

/// The stored score; the table's check constraint keeps it inside its scale.
fn stored_score(row: &PgRow) -> Result<Score, sqlx::Error> {
    let score: i16 = row.try_get("score")?;
    let scale = ScoreScale {
        min: row.try_get("scale_min")?,
        max: row.try_get("scale_max")?,
    };
    Score::new(score.into(), scale)
        .ok_or_else(|| sqlx::Error::Decode(format!("score {score} outside {scale:?}").into()))
}

fn survey_response(row: &PgRow) -> Result<SurveyResponse, sqlx::Error> {
    let kind: i16 = row.try_get("kind")?;
    Ok(SurveyResponse {
        response_id: row.try_get("response_id")?,
        survey_id: row.try_get("survey_id")?,
        kind: SurveyKind::from_code(kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown survey kind {kind}").into()))?,
        score: stored_score(row)?,
        customer_id: row.try_get("customer_id")?,
        interaction_id: row.try_get("interaction_id")?,
        channel: row.try_get("channel")?,
        respond_time: row.try_get("respond_time")?,
        comment: row.try_get("comment")?,
        attributes: Attributes::from_json(&row.try_get("attributes")?),
        update_time: row.try_get("update_time")?,
    })
}

fn interaction(row: &PgRow) -> Result<Interaction, sqlx::Error> {
    Ok(Interaction {
        interaction_id: row.try_get("interaction_id")?,
        customer_id: row.try_get("customer_id")?,
        channel: row.try_get("channel")?,
        agent_id: row.try_get("agent_id")?,
        team_id: row.try_get("team_id")?,
        open_time: row.try_get("open_time")?,
        first_response_time: row.try_get("first_response_time")?,
        resolve_time: row.try_get("resolve_time")?,
        attributes: Attributes::from_json(&row.try_get("attributes")?),
        update_time: row.try_get("update_time")?,
    })
}

//! Business-hours calendars, one row each. Queries read the current row every time, so a
//! changed calendar changes the next answer.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sqlx::{Row, postgres::PgRow};

use super::{Store, trace::traced};
use crate::{
    domain::{
        TenantId, WriteOutcome,
        calendar::{BusinessHours, Calendar},
    },
    error::Error,
};

/// A calendar with the time it was last created or changed.
/// What an upsert did, and the calendar as it is now stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertedCalendar {
    pub outcome: WriteOutcome,
    pub stored: StoredCalendar,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredCalendar {
    pub calendar: Calendar,
    pub update_time: DateTime<Utc>,
}

const COLUMNS: &str =
    "calendar_id, time_zone, open_days, open_starts, open_ends, holidays, update_time";

/// A stored calendar the service could not have written.
fn corrupt(what: String) -> Error {
    Error::Internal(anyhow::anyhow!("stored calendar has {what}"))
}

fn from_row(row: &PgRow) -> Result<StoredCalendar, Error> {
    let zone: String = row.try_get("time_zone")?;
    let time_zone =
        Tz::from_str(&zone).map_err(|_| corrupt(format!("unknown time zone {zone:?}")))?;
    let days: Vec<i16> = row.try_get("open_days")?;
    let starts: Vec<i16> = row.try_get("open_starts")?;
    let ends: Vec<i16> = row.try_get("open_ends")?;
    let weekly_hours = days
        .iter()
        .zip(&starts)
        .zip(&ends)
        .map(|((day, start), end)| {
            let hours = u8::try_from(*day)
                .ok()
                .zip(u16::try_from(*start).ok())
                .zip(u16::try_from(*end).ok());
            hours
                .and_then(|((day, start), end)| BusinessHours::new(day, start, end))
                .ok_or_else(|| corrupt(format!("interval {day} {start}..{end}")))
        })
        .collect::<Result<_, _>>()?;
    let holidays: Vec<NaiveDate> = row.try_get("holidays")?;
    let calendar = Calendar::new(
        row.try_get("calendar_id")?,
        time_zone,
        weekly_hours,
        holidays.into_iter().collect(),
    )
    .map_err(|overlaps| corrupt(format!("overlapping intervals {overlaps:?}")))?;
    Ok(StoredCalendar {
        calendar,
        update_time: row.try_get("update_time")?,
    })
}

impl Store {
    /// Creates or replaces a calendar in one statement. An identical calendar keeps its
    /// update time, which is how the reply tells UNCHANGED from UPDATED.
    pub async fn upsert_calendar(
        &self,
        tenant: &TenantId,
        calendar: &Calendar,
    ) -> Result<UpsertedCalendar, Error> {
        let hours = calendar.weekly_hours();
        let sql = "insert into calendars as c (tenant_id, calendar_id, time_zone, open_days,
                                         open_starts, open_ends, holidays, update_time)
             values ($1, $2, $3, $4, $5, $6, $7, now())
             on conflict (tenant_id, calendar_id) do update
             set time_zone = excluded.time_zone, open_days = excluded.open_days,
                 open_starts = excluded.open_starts, open_ends = excluded.open_ends,
                 holidays = excluded.holidays,
                 update_time = case
                     when (c.time_zone, c.open_days, c.open_starts, c.open_ends, c.holidays)
                          is distinct from (excluded.time_zone, excluded.open_days,
                                            excluded.open_starts, excluded.open_ends,
                                            excluded.holidays)
                     then excluded.update_time else c.update_time end
             returning (xmax = 0) as created, update_time = now() as changed, update_time";
        let query = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(calendar.calendar_id())
            .bind(calendar.time_zone().name())
            .bind(
                hours
                    .iter()
                    .map(|h| i16::from(h.day_of_week()))
                    .collect::<Vec<_>>(),
            )
            .bind(hours.iter().map(|h| h.start() as i16).collect::<Vec<_>>())
            .bind(hours.iter().map(|h| h.end() as i16).collect::<Vec<_>>())
            .bind(calendar.holidays().iter().copied().collect::<Vec<_>>());
        let row = traced(sql, query.fetch_one(&self.pool)).await?;
        let outcome = match (row.try_get("created")?, row.try_get("changed")?) {
            (true, _) => WriteOutcome::Created,
            (false, true) => WriteOutcome::Updated,
            (false, false) => WriteOutcome::Unchanged,
        };
        let stored = StoredCalendar {
            calendar: calendar.clone(),
            update_time: row.try_get("update_time")?,
        };
        Ok(UpsertedCalendar { outcome, stored })
    }

    pub async fn get_calendar(
        &self,
        tenant: &TenantId,
        calendar_id: &str,
    ) -> Result<Option<StoredCalendar>, Error> {
        let sql =
            format!("select {COLUMNS} from calendars where tenant_id = $1 and calendar_id = $2");
        let query = sqlx::query(&sql).bind(tenant.as_str()).bind(calendar_id);
        traced(&sql, query.fetch_optional(&self.pool))
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Up to `limit` calendars after `after` (by id), in id order.
    pub async fn list_calendars(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredCalendar>, Error> {
        let sql = format!(
            "select {COLUMNS} from calendars where tenant_id = $1 and calendar_id > $2
             order by calendar_id limit $3"
        );
        let query = sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(after.unwrap_or(""))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        traced(&sql, query.fetch_all(&self.pool))
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Whether a calendar was deleted.
    pub async fn delete_calendar(
        &self,
        tenant: &TenantId,
        calendar_id: &str,
    ) -> Result<bool, Error> {
        let sql = "delete from calendars where tenant_id = $1 and calendar_id = $2";
        let query = sqlx::query(sql).bind(tenant.as_str()).bind(calendar_id);
        let deleted = traced(sql, query.execute(&self.pool)).await?;
        Ok(deleted.rows_affected() > 0)
    }
}

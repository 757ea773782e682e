//! The business-hours calendar use cases: upsert, get, list (paged) and delete, each in the
//! caller's tenant.

use chrono::{DateTime, Utc};

use super::{
    Listed,
    auth::Caller,
    paging::{self, Fingerprint},
};
use crate::{
    domain::{TenantId, calendar::Calendar},
    error::Error,
    storage::{Cursor, Store, StoredCalendar, UpsertedCalendar},
};

/// Loads a calendar a request names, NOT_FOUND naming `field` when the tenant has none.
pub async fn find_calendar(
    store: &Store,
    tenant: &TenantId,
    field: &str,
    calendar_id: &str,
) -> Result<StoredCalendar, Error> {
    store
        .get_calendar(tenant, calendar_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{field}: no calendar {calendar_id:?}")))
}

#[derive(Debug, Clone)]
pub struct Calendars {
    store: Store,
}

impl Calendars {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn upsert(
        &self,
        caller: &Caller,
        calendar: &Calendar,
    ) -> Result<UpsertedCalendar, Error> {
        self.store.upsert_calendar(&caller.tenant, calendar).await
    }

    pub async fn get(&self, caller: &Caller, calendar_id: &str) -> Result<StoredCalendar, Error> {
        find_calendar(&self.store, &caller.tenant, "calendar_id", calendar_id).await
    }

    /// One page of the tenant's calendars in id order, and the next page's token.
    pub async fn list(
        &self,
        caller: &Caller,
        page_size: usize,
        page_token: &str,
    ) -> Result<Listed<StoredCalendar>, Error> {
        let fingerprint = Fingerprint::new(&caller.tenant, "calendars").finish();
        let after = paging::decode(page_token, fingerprint)?;
        let mut calendars = self
            .store
            .list_calendars(
                &caller.tenant,
                after.as_ref().map(|c| c.id.as_str()),
                page_size + 1,
            )
            .await?;
        let more = calendars.len() > page_size;
        calendars.truncate(page_size);
        let next_page_token = match calendars.last() {
            // Calendars page by id alone; the cursor's time is unused.
            Some(last) if more => paging::encode(
                &Cursor {
                    time: DateTime::<Utc>::UNIX_EPOCH,
                    id: last.calendar.calendar_id().to_owned(),
                },
                fingerprint,
            ),
            _ => String::new(),
        };
        Ok(Listed {
            items: calendars,
            next_page_token,
        })
    }

    pub async fn delete(&self, caller: &Caller, calendar_id: &str) -> Result<bool, Error> {
        self.store
            .delete_calendar(&caller.tenant, calendar_id)
            .await
    }
}

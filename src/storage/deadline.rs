//! Deadlines down to the database. A read runs in a transaction whose `statement_timeout` is
//! the caller's remaining deadline (capped by the service's own read timeout), so that
//! PostgreSQL stops working on a query as soon as nobody waits for its answer any more.
//!
//! The deadline travels with the call as a task-local value, set once per call by the gRPC
//! layer (`with_deadline`), the way the tracing span does, so that every read below it is
//! bounded without threading a parameter through each function.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use sqlx::{
    Execute, Postgres,
    postgres::{PgArguments, PgRow},
    query::Query,
};

use super::{Store, trace::traced};
use crate::error::Error;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `call` with `deadline` as the deadline of every read it makes.
pub async fn with_deadline<F: Future>(deadline: Instant, call: F) -> F::Output {
    DEADLINE.scope(deadline, call).await
}

/// The time left until the current call's deadline, if it has one.
fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// `statement_timeout` for a read: the remaining deadline or the cap, whichever is shorter,
/// in whole milliseconds (at least one: zero would mean no limit). None once it has passed.
fn statement_timeout(remaining: Option<Duration>, cap: Duration) -> Option<u128> {
    let budget = remaining.map_or(cap, |left| left.min(cap));
    (!budget.is_zero()).then(|| budget.as_millis().max(1))
}

impl Store {
    /// Runs one read statement (on the read replica, when there is one) in a transaction
    /// bounded by the caller's deadline.
    pub(crate) async fn read_rows(
        &self,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, Error> {
        let timeout =
            statement_timeout(remaining(), self.read_timeout).ok_or(Error::DeadlineExceeded)?;
        // One round trip opens the transaction and bounds it (a number, not caller input).
        let begin = format!("begin read only; set local statement_timeout = {timeout}");
        let read = async {
            let mut tx = traced(&begin, self.read_pool.begin_with(begin.clone())).await?;
            let rows = traced(query.sql(), query.fetch_all(&mut *tx)).await?;
            traced("commit", tx.commit()).await?;
            Ok::<_, sqlx::Error>(rows)
        };
        read.await.map_err(read_error)
    }
}

/// A read cancelled by its `statement_timeout` ran out of the caller's deadline (or the
/// read timeout); every other failure maps as for any statement.
fn read_error(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
            Error::DeadlineExceeded
        }
        _ => Error::from(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shorter_of_deadline_and_cap_bounds_a_read() {
        let cap = Duration::from_secs(60);
        assert_eq!(statement_timeout(None, cap), Some(60_000));
        assert_eq!(
            statement_timeout(Some(Duration::from_millis(250)), cap),
            Some(250)
        );
        assert_eq!(
            statement_timeout(Some(Duration::from_secs(600)), cap),
            Some(60_000)
        );
    }

    #[test]
    fn a_passed_deadline_allows_no_read_and_a_nearly_passed_one_a_millisecond() {
        let cap = Duration::from_secs(60);
        assert_eq!(statement_timeout(Some(Duration::ZERO), cap), None);
        assert_eq!(
            statement_timeout(Some(Duration::from_micros(10)), cap),
            Some(1)
        );
    }

    #[tokio::test]
    async fn the_deadline_is_seen_inside_its_call_only() {
        assert_eq!(remaining(), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let inside = with_deadline(deadline, async { remaining() }).await;
        assert!(inside.is_some_and(|left| left <= Duration::from_secs(5)));
        assert_eq!(remaining(), None);
    }
}

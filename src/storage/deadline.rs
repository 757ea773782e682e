//! Deadlines down to the database. A read runs in a transaction whose `statement_timeout` is
//! the caller's remaining deadline (capped by the service's own read timeout), so that
//! PostgreSQL stops working on a query as soon as nobody waits for its answer any more.
//!
//! The deadline is an explicit value of each read: the transports take it from the request
//! (`grpc-timeout`, `Request-Timeout`), hand it to the application layer with the caller,
//! and the application passes it down to every read it makes.

use std::time::{Duration, Instant};

use sqlx::{
    Execute, Postgres,
    postgres::{PgArguments, PgRow},
    query::Query,
};

use super::{Store, trace::traced};
use crate::error::Error;

/// The time left until `deadline`, if there is one.
fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()))
}

/// `statement_timeout` for a read: the remaining deadline or the cap, whichever is shorter,
/// in whole milliseconds (at least one: zero would mean no limit). None once it has passed.
fn statement_timeout(remaining: Option<Duration>, cap: Duration) -> Option<u128> {
    let budget = remaining.map_or(cap, |left| left.min(cap));
    (!budget.is_zero()).then(|| budget.as_millis().max(1))
}

/// `work_mem` of the aggregations `read_each` streams (comment themes hash ~15 MB of terms
/// over a year of 1M comments).
const STREAM_WORK_MEM: &str = "64MB";

impl Store {
    /// Runs one read statement (on the read replica, when there is one) in a transaction
    /// bounded by the caller's `deadline`.
    pub(crate) async fn read_rows(
        &self,
        query: Query<'_, Postgres, PgArguments>,
        deadline: Option<Instant>,
    ) -> Result<Vec<PgRow>, Error> {
        let timeout = statement_timeout(remaining(deadline), self.read_timeout)
            .ok_or(Error::DeadlineExceeded)?;
        // One round trip opens the transaction and bounds it (a number, not caller input).
        // JIT compilation costs about 100 ms a statement, more than it saves on reads that
        // are index range scans over rollups: their high cost estimates would trigger it.
        let begin = format!(
            "begin read only; set local statement_timeout = {timeout}; set local jit = off"
        );
        let read = async {
            let mut tx = traced(&begin, self.read_pool.begin_with(begin.clone())).await?;
            let rows = traced(query.sql(), query.fetch_all(&mut *tx)).await?;
            traced("commit", tx.commit()).await?;
            Ok::<_, sqlx::Error>(rows)
        };
        read.await.map_err(read_error)
    }

    /// `read_rows`, handing each row to `each` as it arrives instead of collecting them, so
    /// that the caller's memory does not grow with the number of rows. The statement may
    /// use `work_mem` for each of its sorts and hashes: aggregates that spill to disk at the
    /// default 4 MB take twice as long.
    pub(crate) async fn read_each(
        &self,
        query: Query<'_, Postgres, PgArguments>,
        deadline: Option<Instant>,
        mut each: impl FnMut(&PgRow) -> Result<(), sqlx::Error>,
    ) -> Result<(), Error> {
        use futures_util::TryStreamExt;
        let timeout = statement_timeout(remaining(deadline), self.read_timeout)
            .ok_or(Error::DeadlineExceeded)?;
        let begin = format!(
            "begin read only; set local statement_timeout = {timeout}; set local jit = off; \
             set local work_mem = '{STREAM_WORK_MEM}'"
        );
        let sql = query.sql().to_owned();
        let read = async {
            let mut tx = traced(&begin, self.read_pool.begin_with(begin.clone())).await?;
            let stream = async {
                let mut rows = query.fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    each(&row)?;
                }
                Ok::<_, sqlx::Error>(())
            };
            traced(&sql, stream).await?;
            traced("commit", tx.commit()).await?;
            Ok::<_, sqlx::Error>(())
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

    #[test]
    fn the_time_left_counts_down_to_the_deadline() {
        assert_eq!(remaining(None), None);
        let left = remaining(Some(Instant::now() + Duration::from_secs(5))).unwrap();
        assert!(left <= Duration::from_secs(5) && left > Duration::from_secs(4));
        let passed = Instant::now().checked_sub(Duration::from_secs(1));
        assert_eq!(remaining(passed), passed.map(|_| Duration::ZERO));
    }
}

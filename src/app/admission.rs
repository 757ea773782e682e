//! Admission control of expensive reads (metric reports and listings), so that one
//! tenant's heavy dashboards cannot starve everyone else (design section 3, "Fair under
//! load").
//!
//! A read runs under two limits: at most `per_tenant` of one tenant's reads run at once,
//! and at most `global` of everyone's. A read that finds its limits taken waits in a short
//! queue, at most `per_tenant` deep per tenant and for at most `QUEUE_WAIT`; past either,
//! it is shed at once with RESOURCE_EXHAUSTED and a `RetryInfo` delay. Writes, health and
//! calendar calls are never held here (writes have their own connection pool).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{domain::TenantId, error::Error};

/// The longest a read waits in the queue for its turn.
pub const QUEUE_WAIT: Duration = Duration::from_secs(1);
/// The delay a shed caller is told to wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The limits of concurrent expensive reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Reads running at once, over all tenants.
    pub global: usize,
    /// Reads of one tenant running at once (its queue is as deep).
    pub per_tenant: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            global: 8,
            per_tenant: 4,
        }
    }
}

/// One tenant's semaphores: places in the system (running or queued) and running slots.
#[derive(Debug)]
struct TenantSlots {
    places: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

#[derive(Debug, Clone)]
pub struct Admission {
    limits: ReadLimits,
    global: Arc<Semaphore>,
    tenants: Arc<Mutex<HashMap<TenantId, Arc<TenantSlots>>>>,
}

/// Held while an admitted read runs; dropping it lets the next one in.
#[derive(Debug)]
pub struct Permit {
    _global: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
    _place: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(limits: ReadLimits) -> Self {
        let limits = ReadLimits {
            global: limits.global.max(1),
            per_tenant: limits.per_tenant.max(1),
        };
        Self {
            limits,
            global: Arc::new(Semaphore::new(limits.global)),
            tenants: Arc::default(),
        }
    }

    /// Waits (briefly) for the tenant's turn, or sheds the read.
    pub async fn admit(&self, tenant: &TenantId) -> Result<Permit, Error> {
        let slots = self.slots(tenant);
        let place = slots
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| shed("this tenant has too many reports running; retry later"))?;
        let turn = async {
            // Neither semaphore is ever closed, so acquiring can only succeed.
            let running = slots.running.clone().acquire_owned().await.ok()?;
            let global = self.global.clone().acquire_owned().await.ok()?;
            Some((running, global))
        };
        match tokio::time::timeout(QUEUE_WAIT, turn).await {
            Ok(Some((running, global))) => Ok(Permit {
                _global: global,
                _running: running,
                _place: place,
            }),
            Ok(None) => Err(Error::Internal(anyhow::anyhow!(
                "admission semaphore closed"
            ))),
            Err(_) => Err(shed("the service is busy with other reports; retry later")),
        }
    }

    fn slots(&self, tenant: &TenantId) -> Arc<TenantSlots> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        // Tenants come from authenticated keys, so the map holds at most one entry per
        // tenant of the database.
        tenants
            .entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(TenantSlots {
                    places: Arc::new(Semaphore::new(2 * self.limits.per_tenant)),
                    running: Arc::new(Semaphore::new(self.limits.per_tenant)),
                })
            })
            .clone()
    }
}

fn shed(message: &str) -> Error {
    Error::Overloaded {
        message: message.into(),
        retry_after: RETRY_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[tokio::test]
    async fn a_tenant_over_its_running_and_queued_share_is_shed_at_once() {
        let admission = Admission::new(ReadLimits {
            global: 8,
            per_tenant: 2,
        });
        let a = tenant("a");
        let _running = [
            admission.admit(&a).await.unwrap(),
            admission.admit(&a).await.unwrap(),
        ];
        // Two more may queue; the fifth is refused without waiting.
        let queued = [admission.clone(), admission.clone()].map(|adm| {
            let a = a.clone();
            tokio::spawn(async move { adm.admit(&a).await.map(drop) })
        });
        tokio::task::yield_now().await;
        let started = std::time::Instant::now();
        let Err(Error::Overloaded { retry_after, .. }) = admission.admit(&a).await else {
            panic!("expected the read to be shed");
        };
        assert!(started.elapsed() < QUEUE_WAIT / 2);
        assert_eq!(retry_after, RETRY_AFTER);
        // Another tenant still gets in.
        admission.admit(&tenant("b")).await.unwrap();
        // The queued ones time out while the first two hold their turn.
        for q in queued {
            assert!(matches!(q.await.unwrap(), Err(Error::Overloaded { .. })));
        }
    }

    #[tokio::test]
    async fn the_global_limit_holds_over_all_tenants_and_frees_on_drop() {
        let admission = Admission::new(ReadLimits {
            global: 2,
            per_tenant: 2,
        });
        let first = admission.admit(&tenant("a")).await.unwrap();
        let _second = admission.admit(&tenant("b")).await.unwrap();
        let waiting = {
            let adm = admission.clone();
            tokio::spawn(async move { adm.admit(&tenant("c")).await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(first);
        assert!(waiting.await.unwrap().is_ok());
    }
}

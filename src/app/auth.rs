//! Authentication and authorisation of every call: `authorization: Bearer <key>` names one
//! key, the key names the tenant and its scopes. Keys are looked up through a short-lived
//! in-memory cache, so steady-state calls cost no database round trip; a revocation takes
//! effect once the cached entry expires (the TTL, a few seconds).
//!
//! Unknown keys cannot hurt anyone else:
//! - real keys and unknown key ids live in separate caches, so no number of unknown ids
//!   can evict a real key; the negative cache is bounded and evicts its oldest entries;
//! - an unknown id costs one database lookup, then none until its entry expires, and at
//!   most `MAX_CONCURRENT_LOOKUPS` such lookups run at once, so a flood of random ids never
//!   holds more than that many connections;
//! - each peer address may fail authentication `FAILURE_BURST` times, refilled at
//!   `FAILURES_PER_SECOND`; past that, keys the cache does not know are refused without a
//!   lookup (RESOURCE_EXHAUSTED) until the peer's budget refills. Keys already known keep
//!   working from every address.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::{
    domain::{PresentedKey, Scope, Scopes, TenantId},
    error::Error,
    storage::{Store, StoredKey},
};

/// Unknown key ids remembered (each costs no lookup until it expires).
const MAX_UNKNOWN_KEYS: usize = 10_000;
/// Cached real keys past which expired entries are swept.
const KNOWN_SWEEP_AT: usize = 10_000;
/// Peers whose failed authentications are counted.
const MAX_TRACKED_PEERS: usize = 10_000;
/// Lookups of uncached key ids that may run at once.
const MAX_CONCURRENT_LOOKUPS: usize = 2;
/// Failed authentications a peer may make in a burst, and the rate its budget refills at.
const FAILURE_BURST: f64 = 50.0;
const FAILURES_PER_SECOND: f64 = 10.0;
/// How long a peer over its budget is told to wait.
const FAILURE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a call presents, whatever its transport: the `authorization` header's value and
/// the peer's address.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub authorization: Option<&'a str>,
    pub peer: Option<IpAddr>,
}

/// Who is calling: the tenant and what the key allows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub scopes: Scopes,
    /// When the caller stops waiting: every read of the call is bounded by it.
    pub deadline: Option<Instant>,
}

/// The deadline a transport found on a request (`grpc-timeout`, `Request-Timeout`), kept in
/// the request's extensions until the adapter hands it to the application with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Instant);

impl Caller {
    /// The same caller, bounded by `deadline` when there is one.
    pub fn with_deadline(self, deadline: Option<&Deadline>) -> Self {
        Self {
            deadline: deadline.map(|d| d.0),
            ..self
        }
    }

    /// PERMISSION_DENIED unless the key carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), Error> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "this API key lacks the {} scope",
                scope.as_str()
            )))
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Store,
    ttl: Duration,
    known: Arc<Mutex<HashMap<String, (Instant, StoredKey)>>>,
    unknown: Arc<Mutex<UnknownKeys>>,
    failures: Arc<Mutex<Failures>>,
    lookups: Arc<Semaphore>,
}

impl Authenticator {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            known: Arc::default(),
            unknown: Arc::default(),
            failures: Arc::default(),
            lookups: Arc::new(Semaphore::new(MAX_CONCURRENT_LOOKUPS)),
        }
    }

    /// Checks the call's key and that it carries `scope`.
    pub async fn authorize(
        &self,
        credentials: Credentials<'_>,
        scope: Scope,
    ) -> Result<Caller, Error> {
        let caller = self.authenticate(credentials).await?;
        caller.require(scope)?;
        Ok(caller)
    }

    /// Checks the call's key: who is calling, whatever it may do.
    pub async fn authenticate(&self, credentials: Credentials<'_>) -> Result<Caller, Error> {
        let peer = credentials.peer;
        match self.find(credentials.authorization, peer).await {
            Ok(key) => Ok(Caller {
                tenant: key.tenant,
                scopes: key.scopes,
                deadline: None,
            }),
            Err(error) => {
                if matches!(error, Error::Unauthenticated(_))
                    && let Some(peer) = peer
                {
                    lock(&self.failures).spend(peer);
                }
                Err(error)
            }
        }
    }

    async fn find(
        &self,
        authorization: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<StoredKey, Error> {
        let text = bearer_token(authorization)?;
        let presented = PresentedKey::parse(text).ok_or(Error::Unauthenticated(UNKNOWN_KEY))?;
        // Every call needs the database, whose schema is unknown until the migrations ran.
        if !self.store.is_migrated() {
            return Err(Error::NotReady);
        }
        let stored = self.lookup(presented.key_id, peer).await?;
        match stored {
            Some(key) if !key.revoked && presented.matches(&key.hash) => Ok(key),
            _ => Err(Error::Unauthenticated(UNKNOWN_KEY)),
        }
    }

    async fn lookup(&self, key_id: &str, peer: Option<IpAddr>) -> Result<Option<StoredKey>, Error> {
        let now = Instant::now();
        let known = lock(&self.known).get(key_id).cloned();
        match known {
            Some((at, key)) if now.duration_since(at) < self.ttl => return Ok(Some(key)),
            // A real key due for a refresh: looked up again at once, without queueing
            // behind lookups of unknown ids.
            Some(_) => return self.fetch(key_id).await,
            None => {}
        }
        if lock(&self.unknown).contains(key_id, now, self.ttl) {
            return Ok(None);
        }
        if let Some(peer) = peer
            && !lock(&self.failures).allows(peer)
        {
            return Err(Error::Overloaded {
                message: "too many failed authentications from this address; retry later".into(),
                retry_after: FAILURE_RETRY_AFTER,
            });
        }
        // The semaphore is never closed, so acquiring fails only if it were.
        let _permit = self
            .lookups
            .acquire()
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        self.fetch(key_id).await
    }

    /// Reads the key from the database and caches the answer on the matching side.
    async fn fetch(&self, key_id: &str) -> Result<Option<StoredKey>, Error> {
        let stored = self.store.find_key(key_id).await?;
        let now = Instant::now();
        match &stored {
            Some(key) => {
                if !key.revoked {
                    self.record_use(key_id);
                }
                let mut known = lock(&self.known);
                if known.len() >= KNOWN_SWEEP_AT {
                    // Only as many entries as the database has keys can get here; sweep
                    // the expired ones now and then all the same.
                    known.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
                }
                known.insert(key_id.to_owned(), (now, key.clone()));
            }
            None => {
                lock(&self.known).remove(key_id);
                lock(&self.unknown).insert(key_id, now);
            }
        }
        Ok(stored)
    }

    /// Records that a key was used. last_used_time is informational: a failure to record
    /// it must not fail the call. It is its own trace, linked to the call's, so that it
    /// cannot hold the call's span open.
    fn record_use(&self, key_id: &str) {
        let store = self.store.clone();
        let key_id = key_id.to_owned();
        let span = tracing::info_span!(parent: None, "record_key_use");
        span.follows_from(tracing::Span::current());
        tokio::spawn(
            async move {
                if let Err(error) = store.touch_key(&key_id).await {
                    tracing::debug!(%error, "could not record key use");
                }
            }
            .instrument(span),
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Key ids the database does not have, oldest first, at most `MAX_UNKNOWN_KEYS`.
#[derive(Debug, Default)]
struct UnknownKeys {
    /// When each id was looked up, and the number of that insertion.
    seen: HashMap<String, (Instant, u64)>,
    /// Insertions in order; an id inserted again leaves an outdated entry behind.
    order: VecDeque<(String, u64)>,
    inserted: u64,
}

impl UnknownKeys {
    fn contains(&self, key_id: &str, now: Instant, ttl: Duration) -> bool {
        self.seen
            .get(key_id)
            .is_some_and(|(at, _)| now.duration_since(*at) < ttl)
    }

    fn is_current(&self, key_id: &str, number: u64) -> bool {
        self.seen.get(key_id).is_some_and(|(_, n)| *n == number)
    }

    fn insert(&mut self, key_id: &str, now: Instant) {
        while self.seen.len() >= MAX_UNKNOWN_KEYS {
            let Some((oldest, number)) = self.order.pop_front() else {
                break;
            };
            if self.is_current(&oldest, number) {
                self.seen.remove(&oldest);
            }
        }
        self.inserted += 1;
        self.seen.insert(key_id.to_owned(), (now, self.inserted));
        self.order.push_back((key_id.to_owned(), self.inserted));
        // Drop outdated entries once they are as many as the live ones, so the queue
        // stays within twice the map (amortised O(1) per insertion).
        if self.order.len() > 2 * MAX_UNKNOWN_KEYS {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|(id, number)| self.is_current(id, *number));
            self.order = order;
        }
    }
}

/// A token bucket of failed authentications per peer address.
#[derive(Debug, Default)]
struct Failures {
    peers: HashMap<IpAddr, (f64, Instant)>,
}

impl Failures {
    /// The peer's budget now: refilled for the time since it was last touched.
    fn budget(&self, peer: IpAddr, now: Instant) -> f64 {
        self.peers.get(&peer).map_or(FAILURE_BURST, |(tokens, at)| {
            (tokens + now.duration_since(*at).as_secs_f64() * FAILURES_PER_SECOND)
                .min(FAILURE_BURST)
        })
    }

    fn allows(&self, peer: IpAddr) -> bool {
        self.budget(peer, Instant::now()) >= 1.0
    }

    fn spend(&mut self, peer: IpAddr) {
        let now = Instant::now();
        let tokens = (self.budget(peer, now) - 1.0).max(0.0);
        if self.peers.len() >= MAX_TRACKED_PEERS && !self.peers.contains_key(&peer) {
            // Forget the peers whose budget has refilled; if every one is still spent, the
            // whole table goes (those peers get a fresh burst, nobody gets more).
            self.peers.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * FAILURES_PER_SECOND
                    < FAILURE_BURST
            });
            if self.peers.len() >= MAX_TRACKED_PEERS {
                self.peers.clear();
            }
        }
        self.peers.insert(peer, (tokens, now));
    }
}

const UNKNOWN_KEY: &str = "unknown or revoked API key";

fn bearer_token(authorization: Option<&str>) -> Result<&str, Error> {
    const MISSING: &str = "missing credentials: send `authorization: Bearer <API key>`";
    let value = authorization.ok_or(Error::Unauthenticated(MISSING))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(Error::Unauthenticated(MISSING))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::Unauthenticated(MISSING));
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unknown_key_cache_is_bounded_and_evicts_the_oldest() {
        let mut unknown = UnknownKeys::default();
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        for i in 0..MAX_UNKNOWN_KEYS + 10 {
            unknown.insert(&format!("id{i}"), now);
        }
        assert_eq!(unknown.seen.len(), MAX_UNKNOWN_KEYS);
        assert!(!unknown.contains("id0", now, ttl));
        assert!(unknown.contains(&format!("id{}", MAX_UNKNOWN_KEYS + 9), now, ttl));
        // The same id over and over keeps the order queue bounded too.
        for _ in 0..3 * MAX_UNKNOWN_KEYS {
            unknown.insert("again", now);
        }
        assert!(unknown.order.len() <= 2 * MAX_UNKNOWN_KEYS);
        assert!(unknown.seen.len() <= MAX_UNKNOWN_KEYS);
    }

    #[test]
    fn a_peer_over_its_failure_budget_is_refused_and_others_are_not() {
        let mut failures = Failures::default();
        let bad: IpAddr = "10.0.0.1".parse().unwrap();
        let good: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..FAILURE_BURST as usize {
            assert!(failures.allows(bad));
            failures.spend(bad);
        }
        assert!(!failures.allows(bad));
        assert!(failures.allows(good));
        // The budget refills with time.
        let (tokens, at) = failures.peers[&bad];
        failures
            .peers
            .insert(bad, (tokens, at - Duration::from_millis(200)));
        assert!(failures.allows(bad));
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let mut failures = Failures::default();
        for i in 0..MAX_TRACKED_PEERS as u32 + 5 {
            failures.spend(IpAddr::from(i.to_be_bytes()));
        }
        assert!(failures.peers.len() <= MAX_TRACKED_PEERS);
    }
}

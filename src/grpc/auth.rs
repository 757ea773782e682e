//! Authentication and authorisation of every call: `authorization: Bearer <key>` names one
//! key, the key names the tenant and its scopes. Keys are looked up through a short-lived
//! in-memory cache, so steady-state calls cost no database round trip; a revocation takes
//! effect once the cached entry expires (the TTL, a few seconds).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tonic::Request;
use tracing::Instrument;

use super::RpcSpan;
use crate::{
    domain::{PresentedKey, Scope, Scopes, TenantId},
    error::Error,
    storage::{Store, StoredKey},
};

/// Entries kept before expired ones are swept, bounding memory under random bad keys.
const MAX_CACHED_KEYS: usize = 10_000;

/// Who is calling: the tenant and what the key allows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub scopes: Scopes,
}

/// A looked-up key (or its absence) and when it was looked up.
type CachedKey = (Instant, Option<StoredKey>);

#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Store,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<String, CachedKey>>>,
}

impl Authenticator {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            cache: Arc::default(),
        }
    }

    /// Checks the call's key and that it carries `scope`.
    pub async fn authorize<T>(&self, request: &Request<T>, scope: Scope) -> Result<Caller, Error> {
        let text = bearer_token(request)?;
        let presented = PresentedKey::parse(text).ok_or(Error::Unauthenticated(UNKNOWN_KEY))?;
        // Every call needs the database, whose schema is unknown until the migrations ran.
        if !self.store.is_migrated() {
            return Err(Error::NotReady);
        }
        let stored = self.lookup(presented.key_id).await?;
        let key = match stored {
            Some(key) if !key.revoked && presented.matches(&key.hash) => key,
            _ => return Err(Error::Unauthenticated(UNKNOWN_KEY)),
        };
        if let Some(RpcSpan(span)) = request.extensions().get() {
            span.record("cxmetrics.tenant", key.tenant.as_str());
        }
        if !key.scopes.allows(scope) {
            return Err(Error::PermissionDenied(format!(
                "this API key lacks the {} scope",
                scope.as_str()
            )));
        }
        Ok(Caller {
            tenant: key.tenant,
            scopes: key.scopes,
        })
    }

    async fn lookup(&self, key_id: &str) -> Result<Option<StoredKey>, Error> {
        if let Some(hit) = self.cached(key_id) {
            return Ok(hit);
        }
        let stored = self.store.find_key(key_id).await?;
        if stored.as_ref().is_some_and(|k| !k.revoked) {
            let store = self.store.clone();
            let key_id = key_id.to_owned();
            // last_used_time is informational: a failure to record it must not fail the call.
            // It is its own trace, linked to the call's, so that it cannot hold the call's
            // span open.
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
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_KEYS {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
        }
        cache.insert(key_id.to_owned(), (Instant::now(), stored.clone()));
        Ok(stored)
    }

    fn cached(&self, key_id: &str) -> Option<Option<StoredKey>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (at, key) = cache.get(key_id)?;
        (at.elapsed() < self.ttl).then(|| key.clone())
    }
}

const UNKNOWN_KEY: &str = "unknown or revoked API key";

fn bearer_token<T>(request: &Request<T>) -> Result<&str, Error> {
    const MISSING: &str = "missing credentials: send `authorization: Bearer <API key>`";
    let value = request
        .metadata()
        .get("authorization")
        .ok_or(Error::Unauthenticated(MISSING))?;
    let value = value
        .to_str()
        .map_err(|_| Error::Unauthenticated(MISSING))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(Error::Unauthenticated(MISSING))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::Unauthenticated(MISSING));
    }
    Ok(token.trim())
}

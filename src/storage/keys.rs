//! Tenants and API keys.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, trace::traced};
use crate::{
    domain::{Scopes, TenantId},
    error::Error,
};

/// What authentication needs to know about a key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub tenant: TenantId,
    pub hash: Vec<u8>,
    pub scopes: Scopes,
    pub revoked: bool,
}

/// One line of `keys list`.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub key_id: String,
    pub tenant: String,
    pub scopes: Scopes,
    pub create_time: DateTime<Utc>,
    pub last_used_time: Option<DateTime<Utc>>,
    pub revoke_time: Option<DateTime<Utc>>,
}

impl Store {
    /// Creates the tenant (if new) and a key for it, in one transaction.
    pub async fn create_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
        hash: &[u8],
        scopes: Scopes,
    ) -> Result<(), Error> {
        let mut tx = traced("begin", self.pool.begin()).await?;
        let sql = "insert into tenants (tenant_id) values ($1) on conflict do nothing";
        let query = sqlx::query(sql).bind(tenant.as_str());
        traced(sql, query.execute(&mut *tx)).await?;
        let sql =
            "insert into api_keys (tenant_id, key_id, key_hash, scopes) values ($1, $2, $3, $4)";
        let query = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(key_id)
            .bind(hash)
            .bind(scopes.names());
        traced(sql, query.execute(&mut *tx)).await?;
        traced("commit", tx.commit()).await?;
        Ok(())
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRow>, Error> {
        let sql = "select key_id, tenant_id, scopes, create_time, last_used_time, revoke_time
                   from api_keys order by tenant_id, create_time";
        let rows = traced(sql, sqlx::query(sql).fetch_all(&self.pool)).await?;
        rows.iter()
            .map(|row| {
                let scopes: Vec<String> = row.try_get("scopes")?;
                Ok(KeyRow {
                    key_id: row.try_get("key_id")?,
                    tenant: row.try_get("tenant_id")?,
                    scopes: Scopes::from_names(scopes.iter().map(String::as_str)),
                    create_time: row.try_get("create_time")?,
                    last_used_time: row.try_get("last_used_time")?,
                    revoke_time: row.try_get("revoke_time")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }

    /// Revokes a key; false when no such key exists (revoking twice is fine).
    pub async fn revoke_key(&self, key_id: &str) -> Result<bool, Error> {
        let sql =
            "update api_keys set revoke_time = coalesce(revoke_time, now()) where key_id = $1";
        let result = traced(sql, sqlx::query(sql).bind(key_id).execute(&self.pool)).await?;
        Ok(result.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    pub async fn find_key(&self, key_id: &str) -> Result<Option<StoredKey>, Error> {
        let sql = "select tenant_id, key_hash, scopes, revoke_time is not null as revoked
                   from api_keys where key_id = $1";
        let query = sqlx::query(sql).bind(key_id);
        let row = traced(sql, query.fetch_optional(&self.pool)).await?;
        let Some(row) = row else { return Ok(None) };
        let tenant: String = row.try_get("tenant_id")?;
        let scopes: Vec<String> = row.try_get("scopes")?;
        Ok(Some(StoredKey {
            tenant: TenantId::parse(&tenant).map_err(|e| Error::Internal(anyhow::anyhow!(e)))?,
            hash: row.try_get("key_hash")?,
            scopes: Scopes::from_names(scopes.iter().map(String::as_str)),
            revoked: row.try_get("revoked")?,
        }))
    }

    /// Records that a key was used (called at most once per cache period).
    #[tracing::instrument(skip_all)]
    pub async fn touch_key(&self, key_id: &str) -> Result<(), Error> {
        let sql = "update api_keys set last_used_time = now() where key_id = $1";
        traced(sql, sqlx::query(sql).bind(key_id).execute(&self.pool)).await?;
        Ok(())
    }
}

//! The non-serving subcommands: `migrate`, `keys create | list | revoke` and
//! `rollups rebuild | verify`.

use anyhow::{Context, bail};

use crate::{
    config::{DbArgs, KeysCommand, RollupsCommand},
    domain::{NewApiKey, Scopes, TenantId},
    storage::Store,
};

async fn connect(db: &DbArgs) -> anyhow::Result<Store> {
    let store = Store::connect_lazy(&db.settings())?;
    store.migrate().await?;
    Ok(store)
}

pub async fn migrate(db: &DbArgs) -> anyhow::Result<()> {
    connect(db).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Creates a key for `tenant` and returns its text (shown once, never stored).
pub async fn create_key(store: &Store, tenant: &str, scopes: &str) -> anyhow::Result<String> {
    let tenant = TenantId::parse(tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let scopes = Scopes::parse_list(scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
    let key = NewApiKey::generate();
    store
        .create_key(&tenant, &key.key_id, &key.hash, scopes)
        .await
        .context("storing the new key")?;
    Ok(key.secret)
}

pub async fn keys(command: &KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { db, tenant, scopes } => {
            let store = connect(db).await?;
            let key = create_key(&store, tenant, scopes).await?;
            println!(
                "created a key for tenant {tenant} with scopes {scopes}; it is shown only once:"
            );
            println!("{key}");
        }
        KeysCommand::List { db } => {
            let store = connect(db).await?;
            println!(
                "{:<18} {:<24} {:<18} {:<26} {:<26} revoked",
                "id", "tenant", "scopes", "created", "last used"
            );
            for key in store.list_keys().await.context("listing keys")? {
                let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into())
                };
                println!(
                    "{:<18} {:<24} {:<18} {:<26} {:<26} {}",
                    key.key_id,
                    key.tenant,
                    key.scopes.to_string(),
                    key.create_time.to_rfc3339(),
                    when(key.last_used_time),
                    when(key.revoke_time),
                );
            }
        }
        KeysCommand::Revoke { db, id } => {
            let store = connect(db).await?;
            if !store.revoke_key(id).await.context("revoking the key")? {
                bail!("no key with id {id}");
            }
            println!("revoked key {id}");
        }
    }
    Ok(())
}

fn tenant_arg(tenant: Option<&String>) -> anyhow::Result<Option<TenantId>> {
    tenant
        .map(|t| TenantId::parse(t).map_err(|e| anyhow::anyhow!("--tenant: {e}")))
        .transpose()
}

pub async fn rollups(command: &RollupsCommand) -> anyhow::Result<()> {
    match command {
        RollupsCommand::Rebuild { db, tenant } => {
            let tenant = tenant_arg(tenant.as_ref())?;
            let store = connect(db).await?;
            let rows = store
                .rebuild_rollups(tenant.as_ref())
                .await
                .context("rebuilding the rollups")?;
            println!("rebuilt the rollups: {rows} rows");
        }
        RollupsCommand::Verify { db, tenant } => {
            let tenant = tenant_arg(tenant.as_ref())?;
            let store = connect(db).await?;
            let checks = store
                .verify_rollups(tenant.as_ref())
                .await
                .context("verifying the rollups")?;
            let mut differing = 0;
            for check in &checks {
                println!("{}: {} differing keys", check.table, check.differing_keys);
                for example in &check.examples {
                    println!("  {example}");
                }
                differing += check.differing_keys;
            }
            if differing > 0 {
                bail!(
                    "{differing} rollup keys differ from the raw records; `cxmetrics rollups rebuild` recomputes them"
                );
            }
        }
    }
    Ok(())
}

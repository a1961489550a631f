//! Registered targets live in etcd under the project's own prefix, so they survive restarts and
//! any replica can answer for them; the prober watches the same prefix.

use super::target::{Target, TargetSpec};
use crate::store::{Store, StoreError, Txn};

/// One key per target: `<TARGETS_PREFIX><id>`, the full record (secrets included) as JSON.
pub const TARGETS_PREFIX: &str = "/heat-reconciler/monitoring/targets/";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("target {id}: stored record does not decode: {error}")]
    Corrupt { id: String, error: serde_json::Error },
    #[error("target {id}: record does not encode: {error}")]
    Unencodable { id: String, error: serde_json::Error },
    #[error("target {0} changed meanwhile; try again")]
    Conflict(String),
}

#[derive(Clone)]
pub struct Registry {
    store: Store,
    /// Our own URL as clients reach it: the base of each target's `link` and the `monitorer`.
    public_url: String,
}

pub fn target_key(id: &str) -> String {
    format!("{TARGETS_PREFIX}{id}")
}

impl Registry {
    pub fn new(store: Store, public_url: &str) -> Registry {
        Registry { store, public_url: public_url.trim_end_matches('/').to_owned() }
    }

    /// What a failed etcd call, met while trying to `what`, means in the operator's terms
    /// ([`Store::describe`]).
    pub fn describe(&self, error: &StoreError, what: &str) -> String {
        self.store.describe(error, what)
    }

    pub async fn create(&self, spec: TargetSpec) -> Result<Target, RegistryError> {
        let id = uuid::Uuid::new_v4().to_string();
        let target = Target {
            link: format!("{}/targets/{id}", self.public_url),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            monitorer: self.public_url.clone(),
            id,
            spec,
        };
        let key = target_key(&target.id);
        let txn = Txn::new().if_absent(&key).put(&key, encode(&target)?);
        match self.store.commit(txn).await? {
            Some(_) => Ok(target),
            None => Err(RegistryError::Conflict(target.id)),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Target>, RegistryError> {
        Ok(self.get_versioned(id).await?.map(|(target, _)| target))
    }

    async fn get_versioned(&self, id: &str) -> Result<Option<(Target, i64)>, RegistryError> {
        let Some(kv) = self.store.get(&target_key(id)).await? else { return Ok(None) };
        let target = decode(&kv.value).map_err(|error| RegistryError::Corrupt { id: id.to_owned(), error })?;
        Ok(Some((target, kv.mod_revision)))
    }

    /// Every target that decodes; the others are logged and skipped.
    pub async fn list(&self) -> Result<Vec<Target>, RegistryError> {
        let (items, _) = self.store.list(TARGETS_PREFIX).await?;
        Ok(items
            .iter()
            .filter_map(|kv| match decode(&kv.value) {
                Ok(target) => Some(target),
                Err(reason) => {
                    tracing::warn!(key = %kv.key, %reason, "skipping a stored target that does not decode");
                    None
                }
            })
            .collect())
    }

    /// Changes a target in place (same id, link and creation time); `None` when there is none.
    /// A status written under a `/monitoring` key the target no longer names goes with it.
    pub async fn update(&self, id: &str, spec: TargetSpec) -> Result<Option<Target>, RegistryError> {
        let Some((mut target, revision)) = self.get_versioned(id).await? else { return Ok(None) };
        let old_key = target.spec.writes_status().then(|| target.spec.monitoring_key());
        target.spec = spec;
        let key = target_key(id);
        let mut txn = Txn::new().if_mod_revision(&key, revision).put(&key, encode(&target)?);
        if let Some(old_key) = old_key
            && old_key != target.spec.monitoring_key()
        {
            txn = txn.delete(&old_key);
        }
        match self.store.commit(txn).await? {
            Some(_) => Ok(Some(target)),
            None => Err(RegistryError::Conflict(id.to_owned())),
        }
    }

    /// Unregisters a target and, in the same transaction, deletes the status written for it, as
    /// the Collector Agent did; whether there was such a target. Another target of the same
    /// resource (the replacement a stack update registered) writes its status again.
    pub async fn delete(&self, id: &str) -> Result<bool, RegistryError> {
        let key = target_key(id);
        let Some(kv) = self.store.get(&key).await? else { return Ok(false) };
        let mut txn = Txn::new().if_mod_revision(&key, kv.mod_revision).delete(&key);
        // Metrics-only targets write no status (another target of the resource may); a record
        // that does not decode names none either, and still goes.
        if let Ok(target) = decode(&kv.value)
            && target.spec.writes_status()
        {
            txn = txn.delete(&target.spec.monitoring_key());
        }
        match self.store.commit(txn).await? {
            Some(_) => Ok(true),
            None => Err(RegistryError::Conflict(id.to_owned())),
        }
    }
}

pub fn encode(target: &Target) -> Result<Vec<u8>, RegistryError> {
    serde_json::to_vec(target).map_err(|error| RegistryError::Unencodable { id: target.id.clone(), error })
}

pub fn decode(raw: &[u8]) -> Result<Target, serde_json::Error> {
    serde_json::from_slice(raw)
}

//! Leases kept alive in the background, and leader election on one key bound to a lease.

use super::watcher::Backoff;
use super::{ErrorLog, Store, StoreError, Txn, retried};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A granted lease, refreshed every third of its TTL until dropped. `lost()` turns true when a
/// refresh fails for longer than the TTL, after which keys bound to it are gone.
pub struct Lease {
    id: i64,
    lost: watch::Receiver<bool>,
    keeper: JoinHandle<()>,
    store: Store,
}

impl Lease {
    pub async fn grant(store: &Store, ttl: Duration) -> Result<Lease, StoreError> {
        let ttl_secs = ttl.as_secs().max(1) as i64;
        let id = store.client().lease_grant(ttl_secs, None).await?.id();
        let (lost_tx, lost) = watch::channel(false);
        let client_store = store.clone();
        let keeper = tokio::spawn(async move {
            let period = Duration::from_secs(ttl_secs as u64) / 3;
            let deadline = Duration::from_secs(ttl_secs as u64);
            let mut last_ok = tokio::time::Instant::now();
            let mut errors = ErrorLog::default();
            loop {
                tokio::time::sleep(period).await;
                // A hung etcd must not hold the refresh past the TTL: bound each round trip.
                let refresh = tokio::time::timeout(period, keep_alive_once(&client_store, id)).await;
                match refresh.unwrap_or_else(|_| Err(StoreError::KeepAliveTimedOut)) {
                    Ok(true) => {
                        last_ok = tokio::time::Instant::now();
                        errors.succeeded("keep a lease alive");
                    }
                    Ok(false) => {
                        let _ = lost_tx.send(true);
                        return;
                    }
                    Err(e) => {
                        retried!(errors, &client_store, &e, "keep a lease alive", lease = id, "lease refresh failed");
                        if last_ok.elapsed() >= deadline {
                            let _ = lost_tx.send(true);
                            return;
                        }
                    }
                }
            }
        });
        Ok(Lease { id, lost, keeper, store: store.clone() })
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    /// Resolves when the lease is known to be lost.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        let _ = lost.wait_for(|l| *l).await;
    }

    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Gives the lease back now, deleting every key bound to it.
    pub async fn revoke(self) {
        self.keeper.abort();
        let _ = self.store.client().lease_revoke(self.id).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// One keep-alive round trip; `Ok(false)` when etcd says the lease has expired.
async fn keep_alive_once(store: &Store, id: i64) -> Result<bool, StoreError> {
    let (mut keeper, mut responses) = store.client().lease_keep_alive(id).await?;
    keeper.keep_alive().await?;
    match responses.message().await? {
        Some(response) => Ok(response.ttl() > 0),
        None => Err(StoreError::KeepAliveClosed),
    }
}

/// Being the leader: `key` holds our id, bound to our lease.
pub struct Leadership {
    pub lease: Lease,
    pub key: String,
    pub id: String,
}

impl Leadership {
    /// A transaction guard: writes made with it happen only while we still lead.
    pub fn guard(&self, txn: Txn) -> Txn {
        txn.if_value(&self.key, self.id.as_bytes().to_vec())
    }

    /// Steps down now, so a standby can take over without waiting for the TTL.
    pub async fn resign(self) {
        self.lease.revoke().await;
    }
}

/// Waits until this process holds `key`: creates it bound to a fresh lease when it is absent,
/// else waits for it to go (its holder resigned or its lease expired) and tries again. Errors
/// talking to etcd (it restarting, say) are logged and retried with backoff, so a standby keeps
/// standing by through an etcd outage.
pub async fn campaign(store: &Store, key: &str, id: &str, ttl: Duration) -> Result<Leadership, StoreError> {
    let mut backoff = Backoff::default();
    let mut errors = ErrorLog::default();
    let claiming = format!("read and write {key}");
    loop {
        match claim_or_wait(store, key, id, ttl).await {
            Ok(Some(leadership)) => {
                errors.succeeded(key);
                return Ok(leadership);
            }
            Ok(None) => {
                errors.succeeded(key);
                backoff.reset();
            }
            Err(e) => {
                retried!(errors, store, &e, &claiming, key, "campaign interrupted; retrying");
                backoff.wait().await;
            }
        }
    }
}

/// One round of [`campaign`]: claims `key`, or waits for it to go and returns `None`. On an
/// error a lease granted here is dropped (no longer refreshed), so a claim whose reply was lost
/// expires with it.
async fn claim_or_wait(store: &Store, key: &str, id: &str, ttl: Duration) -> Result<Option<Leadership>, StoreError> {
    let lease = Lease::grant(store, ttl).await?;
    let claim = Txn::new().if_absent(key).put_leased(key, id.as_bytes().to_vec(), lease.id());
    if store.commit(claim).await?.is_some() {
        tracing::info!(key, id, "elected leader");
        return Ok(Some(Leadership { lease, key: key.to_owned(), id: id.to_owned() }));
    }
    lease.revoke().await;
    wait_for_deletion(store, key).await?;
    Ok(None)
}

async fn wait_for_deletion(store: &Store, key: &str) -> Result<(), StoreError> {
    let Some(current) = store.get(key).await? else { return Ok(()) };
    tracing::info!(key, leader = %String::from_utf8_lossy(&current.value), "standing by");
    let options = etcd_client::WatchOptions::new().with_start_revision(current.mod_revision + 1);
    let mut stream = store.client().watch(key, Some(options)).await?;
    while let Some(response) = stream.message().await? {
        if response.compact_revision() > 0 || response.canceled() {
            return Ok(());
        }
        if response.events().iter().any(|e| e.event_type() == etcd_client::EventType::Delete) {
            return Ok(());
        }
    }
    Ok(())
}

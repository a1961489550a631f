//! Committing a batch of status writes ([`super::batch`]) in one etcd transaction, each write
//! guarded exactly as a lone write was: only while we lead, and only while its target is still
//! registered (a target deleted meanwhile took its status with it and must not get it back).
//!
//! Why nested transactions: with every guard at the top of one flat transaction, one target
//! deleted between its probe and the commit would fail the whole transaction, and the other
//! statuses of the batch would have to be found out and sent again (another round trip, which
//! can meet another deletion). Instead each write is a transaction of its own nested in the
//! batch: etcd checks each target's guard separately within the one round trip, skips the write
//! whose target went, and applies the others. The leadership guard stays on the outer
//! transaction, so a deposed leader writes nothing at all; its writes are not recorded as
//! written, and whoever leads next reads `/monitoring` and probes everything again.

use super::batch::StatusWrite;
use super::registry::target_key;
use crate::store::{Leadership, Store, StoreError, Txn};

/// Commits `writes` in one transaction; returns, in order, whether each was written (all
/// `false` when we no longer lead). At most [`super::batch::MAX_WRITES`] writes, each to a
/// different key (as a [`super::batch::Batch`] holds them).
pub async fn commit(store: &Store, leadership: &Leadership, writes: &[StatusWrite]) -> Result<Vec<bool>, StoreError> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let txn = writes.iter().fold(leadership.guard(Txn::new()), |txn, write| {
        txn.nested(Txn::new().if_present(&target_key(&write.target)).put(&write.key, write.value.clone()))
    });
    Ok(store.commit_nested(txn).await?.unwrap_or_else(|| vec![false; writes.len()]))
}

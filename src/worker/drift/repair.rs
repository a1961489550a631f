//! The repair: delete the drifted resources' snapshots, so the planner applies their config
//! again. Several deletes go in one transaction; each is nested behind its own guard (the
//! snapshot is still the one read: a job planned since then rewrote it, and the resource is
//! left alone), and the transaction as a whole behind the drift leadership (a deposed leader
//! deletes nothing). This is the monitor's batching (`monitor/write.rs`), for the same reasons.

use super::judge::Drifted;
use crate::store::{Leadership, Store, StoreError, Txn};

/// Deletes per transaction: like the monitor's status writes, well inside etcd's default of 128
/// operations a level (one nested transaction each at the outer level, a compare and a delete
/// inside each).
pub const DELETES_PER_TXN: usize = 64;

// etcd counts per level: the outer one holds a nested transaction per delete, and each nested
// one (a compare, a delete) must fit in what the outer leaves (see `monitor/batch.rs`).
const _: () = assert!(DELETES_PER_TXN < crate::monitor::batch::ETCD_MAX_TXN_OPS);

/// What committing the repairs came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The repairs that applied, in order (the others were overtaken by a job planned since the
    /// read).
    Applied(Vec<Drifted>),
    /// The drift leadership is lost: nothing more was written.
    NotLeading { applied: Vec<Drifted> },
}

/// Commits the repairs in transactions of [`DELETES_PER_TXN`]; calls `on_txn` after each.
pub async fn commit(
    store: &Store,
    leadership: &Leadership,
    repairs: Vec<Drifted>,
    mut on_txn: impl FnMut(),
) -> Result<Outcome, StoreError> {
    let mut applied = Vec::new();
    for batch in repairs.chunks(DELETES_PER_TXN) {
        let txn = batch.iter().fold(leadership.guard(Txn::new()), |txn, repair| {
            let c = &repair.candidate;
            txn.nested(Txn::new().if_mod_revision(&c.snapshot_key, c.snapshot_revision).delete(&c.snapshot_key))
        });
        let Some(results) = store.commit_nested(txn).await? else {
            return Ok(Outcome::NotLeading { applied });
        };
        on_txn();
        applied.extend(batch.iter().zip(results).filter(|(_, done)| *done).map(|(repair, _)| repair.clone()));
    }
    Ok(Outcome::Applied(applied))
}

//! A planner decision as data: the keys it writes or deletes and the conditions it needs, before
//! anything is sent. The loop turns it into one guarded etcd transaction and, once committed,
//! replays the changes on its view; tests read it directly.

use crate::protocol::{Job, JobRecord, WorkerSnapshot};
use crate::store::Txn;

/// A condition the transaction needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Guard {
    /// The key was last written at this revision (0: it does not exist).
    Revision(String, i64),
    Present(String),
    Absent(String),
}

/// A record a decision puts, as it was before it was encoded: the view assumes the write from it
/// instead of decoding the bytes just made (decoding them was a fifth of the planner's time).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decided {
    Job(Box<Job>),
    Snapshot(WorkerSnapshot),
}

/// What one decision writes, in order: `Some(value)` puts, `None` deletes.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Writes {
    pub guards: Vec<Guard>,
    pub changes: Vec<(String, Option<Vec<u8>>)>,
    /// The job records and snapshots among `changes`, by key, before encoding.
    pub records: Vec<(String, Decided)>,
    /// The keys among `changes` put bound to a lease: a claim made for this process's worker
    /// (`crate::handoff`).
    pub leases: Vec<(String, i64)>,
    /// Keys read after the changes, at the transaction's revision (what a job claimed in its
    /// plan needs).
    pub reads: Vec<String>,
}

impl Writes {
    pub fn put(&mut self, key: String, value: Vec<u8>) {
        self.changes.push((key, Some(value)));
    }

    /// Puts a record encoded as JSON; nothing is added when it does not encode.
    pub fn put_json<T: serde::Serialize>(&mut self, key: String, value: &T) -> Result<(), serde_json::Error> {
        let bytes = serde_json::to_vec(value)?;
        self.put(key, bytes);
        Ok(())
    }

    /// Puts `job`'s record (`/jobs/all`), keeping the job for the view.
    pub fn put_job(&mut self, key: String, job: Job) -> Result<(), serde_json::Error> {
        let record = JobRecord { job, n: 0 };
        self.put_json(key.clone(), &record)?;
        self.records.push((key, Decided::Job(Box::new(record.job))));
        Ok(())
    }

    /// Puts a snapshot, keeping it for the view.
    pub fn put_snapshot(&mut self, key: String, snapshot: WorkerSnapshot) -> Result<(), serde_json::Error> {
        self.put_json(key.clone(), &snapshot)?;
        self.records.push((key, Decided::Snapshot(snapshot)));
        Ok(())
    }

    pub fn delete(&mut self, key: String) {
        self.changes.push((key, None));
    }

    /// Puts `value` bound to `lease`.
    pub fn put_leased(&mut self, key: String, value: Vec<u8>, lease: i64) {
        self.leases.push((key.clone(), lease));
        self.put(key, value);
    }

    /// Drops the change of `key`; whether there was one.
    pub fn unchange(&mut self, key: &str) -> bool {
        let before = self.changes.len();
        self.changes.retain(|(k, _)| k != key);
        self.leases.retain(|(k, _)| k != key);
        self.changes.len() != before
    }

    pub fn require_revision(&mut self, key: &str, revision: i64) {
        self.guards.push(Guard::Revision(key.to_owned(), revision));
    }

    pub fn require_present(&mut self, key: &str) {
        self.guards.push(Guard::Present(key.to_owned()));
    }

    pub fn require_absent(&mut self, key: &str) {
        self.guards.push(Guard::Absent(key.to_owned()));
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The value put at `key`, if any.
    #[cfg(test)]
    pub fn put_at(&self, key: &str) -> Option<&[u8]> {
        self.changes.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_deref())
    }

    /// Whether `key` is deleted.
    #[cfg(test)]
    pub fn deletes(&self, key: &str) -> bool {
        self.changes.iter().any(|(k, v)| k == key && v.is_none())
    }

    /// Every key it guards on or reads: what another decision of its transaction must not
    /// write (its guards are checked, and its reads made, apart from the others' writes).
    pub fn guarded_keys(&self) -> impl Iterator<Item = &str> {
        let guards = self.guards.iter().map(|guard| match guard {
            Guard::Revision(key, _) | Guard::Present(key) | Guard::Absent(key) => key.as_str(),
        });
        guards.chain(self.reads.iter().map(String::as_str))
    }

    /// Every key it writes or deletes.
    pub fn changed_keys(&self) -> impl Iterator<Item = &str> {
        self.changes.iter().map(|(key, _)| key.as_str())
    }

    /// The bytes it puts.
    pub fn value_bytes(&self) -> usize {
        self.changes.iter().map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len)).sum()
    }

    /// How many operations the transaction holds besides its guards.
    pub fn operations(&self) -> usize {
        self.changes.len() + self.reads.len()
    }

    /// The transaction: every guard, then every change in order, then the reads.
    pub fn txn(&self) -> Txn {
        Writes::txn_of(&[self])
    }

    /// One transaction of several decisions: all their guards, then all their changes in order,
    /// then all their reads in order.
    /// Sound only when no decision writes a key another guards or writes (a guard is checked
    /// before any write of the transaction, not after the decisions before it).
    pub fn txn_of(all: &[&Writes]) -> Txn {
        let mut txn = Txn::new();
        for guard in all.iter().flat_map(|writes| &writes.guards) {
            txn = match guard {
                Guard::Revision(key, revision) => txn.if_mod_revision(key, *revision),
                Guard::Present(key) => txn.if_present(key),
                Guard::Absent(key) => txn.if_absent(key),
            };
        }
        for writes in all {
            for (key, value) in &writes.changes {
                let lease = writes.leases.iter().find(|(k, _)| k == key).map(|(_, lease)| *lease);
                txn = match (value, lease) {
                    (Some(value), Some(lease)) => txn.put_leased(key, value.clone(), lease),
                    (Some(value), None) => txn.put(key, value.clone()),
                    (None, _) => txn.delete(key),
                };
            }
        }
        for key in all.iter().flat_map(|writes| &writes.reads) {
            txn = txn.get(key);
        }
        txn
    }
}

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

    /// Every key it guards on.
    pub fn guarded_keys(&self) -> impl Iterator<Item = &str> {
        self.guards.iter().map(|guard| match guard {
            Guard::Revision(key, _) | Guard::Present(key) | Guard::Absent(key) => key.as_str(),
        })
    }

    /// Every key it writes or deletes.
    pub fn changed_keys(&self) -> impl Iterator<Item = &str> {
        self.changes.iter().map(|(key, _)| key.as_str())
    }

    /// The bytes it puts.
    pub fn value_bytes(&self) -> usize {
        self.changes.iter().map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len)).sum()
    }

    /// The transaction: every guard, then every change in order.
    pub fn txn(&self) -> Txn {
        Writes::txn_of(&[self])
    }

    /// One transaction of several decisions: all their guards, then all their changes in order.
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
        for (key, value) in all.iter().flat_map(|writes| &writes.changes) {
            txn = match value {
                Some(value) => txn.put(key, value.clone()),
                None => txn.delete(key),
            };
        }
        txn
    }
}

//! What the worker knows of `/jobs`, from one watch of the whole directory: the ready jobs of its
//! handler, and the records of live jobs planned since it started watching (up to a bound), so
//! that the transaction claiming a job can also read what the job needs (its template, its
//! dependencies' outputs) instead of reading them one round trip after another.

use crate::protocol::JobQueue;
use crate::store::WatchEvent;
use std::collections::{BTreeSet, HashMap};

/// How many job records are kept. Beyond it (a start-up planning thousands of jobs at once),
/// a job's claim reads its record, and its needs after it, as without the cache; the bound keeps
/// a worker's memory small whatever the size of the queue.
const RECORDS: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// The ready jobs whose handler is ours, in the order they are claimed.
    pub ready: BTreeSet<String>,
    /// `/jobs/all/<id>` values by job id. Records are written once and never changed, only
    /// deleted, so a kept one is the current one.
    records: HashMap<String, Vec<u8>>,
}

impl Queue {
    /// Takes in one event of the watch on `/jobs/`.
    pub fn apply(&mut self, event: WatchEvent, handler: &str) {
        match event {
            WatchEvent::Listed { items, .. } => {
                self.ready.clear();
                self.records.clear();
                for kv in items {
                    self.put(&kv.key, kv.value, handler);
                }
            }
            WatchEvent::Put(kv) => self.put(&kv.key, kv.value, handler),
            WatchEvent::Deleted { key, .. } => match JobQueue::parse(&key) {
                Some((JobQueue::Ready, id)) => {
                    self.ready.remove(id);
                }
                Some((JobQueue::All, id)) => {
                    self.records.remove(id);
                }
                _ => {}
            },
            WatchEvent::Synced { .. } => {}
        }
    }

    fn put(&mut self, key: &str, value: Vec<u8>, handler: &str) {
        match JobQueue::parse(key) {
            Some((JobQueue::Ready, id)) if value == handler.as_bytes() => {
                self.ready.insert(id.to_owned());
            }
            Some((JobQueue::All, id)) if self.records.len() < RECORDS => {
                self.records.insert(id.to_owned(), value);
            }
            _ => {}
        }
    }

    /// The record of job `id`, if kept.
    pub fn record(&self, id: &str) -> Option<&[u8]> {
        self.records.get(id).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyValue;

    fn put(key: &str, value: &str) -> WatchEvent {
        WatchEvent::Put(KeyValue {
            key: key.into(),
            value: value.into(),
            mod_revision: 1,
            create_revision: 1,
            lease: 0,
        })
    }

    #[test]
    fn keeps_our_ready_jobs_and_the_records() {
        let mut queue = Queue::default();
        queue.apply(put("/jobs/all/a", "[record a]"), "heat_worker");
        queue.apply(put("/jobs/ready/a", "heat_worker"), "heat_worker");
        queue.apply(put("/jobs/ready/b", "other_worker"), "heat_worker");
        queue.apply(put("/jobs/working/a", "reservation"), "heat_worker");
        assert_eq!(queue.ready.iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(queue.record("a"), Some(&b"[record a]"[..]));
        queue.apply(WatchEvent::Deleted { key: "/jobs/ready/a".into(), revision: 2 }, "heat_worker");
        assert!(queue.ready.is_empty());
        assert!(queue.record("a").is_some(), "the record lives until /jobs/all is deleted");
        queue.apply(WatchEvent::Deleted { key: "/jobs/all/a".into(), revision: 3 }, "heat_worker");
        assert_eq!(queue.record("a"), None);
    }

    #[test]
    fn keeps_a_bounded_number_of_records() {
        let mut queue = Queue::default();
        for n in 0..RECORDS + 10 {
            queue.apply(put(&format!("/jobs/all/{n}"), "[]"), "heat_worker");
        }
        assert_eq!(queue.records.len(), RECORDS);
        assert_eq!(queue.record(&(RECORDS + 5).to_string()), None);
    }
}

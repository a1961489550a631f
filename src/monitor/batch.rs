//! Which status writes go into one etcd transaction (pure). A first sweep changes every status
//! at once; one round trip per status made 10,000 of them take 12–14 s. Committed several per
//! transaction they take tens of round trips, while a lone change still goes at once: the prober
//! takes the probe results that are already there, up to a full batch, and commits; it never
//! waits for more (that would hold a lone change back by up to a probe timeout).

use crate::protocol::json_style::go_json;
use crate::protocol::monitoring::MonitoringRecord;

/// etcd's default `--max-txn-ops`. etcd counts a transaction's operations per level: the
/// largest of its compares, its success ops and its failure ops; and a nested transaction must
/// fit in what its parent leaves of the limit.
pub const ETCD_MAX_TXN_OPS: usize = 128;

/// Writes per transaction. Well inside [`ETCD_MAX_TXN_OPS`] (see [`fits_in_one_txn`]): 127
/// would fit, and measured no faster (BENCHMARKS.md, "Monitor probe loop"), while a smaller
/// transaction holds etcd's apply loop for less time.
pub const MAX_WRITES: usize = 64;

/// One status to write: the key, its record and bytes, and the target whose registration
/// guards it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusWrite {
    /// The target id: the write happens only while `<targets>/<id>` exists.
    pub target: String,
    pub key: String,
    pub record: MonitoringRecord,
    /// The record as written: compact, sorted keys, like the Collector Agent's Go encoder.
    pub value: String,
}

impl StatusWrite {
    pub fn new(target: &str, key: &str, record: MonitoringRecord) -> Result<StatusWrite, serde_json::Error> {
        let value = go_json(&serde_json::to_value(&record)?);
        Ok(StatusWrite { target: target.to_owned(), key: key.to_owned(), record, value })
    }
}

/// The writes gathered for the next transaction.
#[derive(Debug, Default)]
pub struct Batch {
    writes: Vec<StatusWrite>,
}

impl Batch {
    /// Whether a write of `key` may join this batch; if not, the batch is committed first. Not
    /// when it is full, nor when it already writes that key: etcd refuses a transaction that
    /// puts one key twice, and the later write must land after the earlier one (two targets
    /// can report on one resource: a replaced target and its successor).
    pub fn has_room_for(&self, key: &str) -> bool {
        !self.is_full() && self.writes.iter().all(|w| w.key != key)
    }

    /// Adds `write`, which [`Batch::has_room_for`] must have allowed.
    pub fn push(&mut self, write: StatusWrite) {
        debug_assert!(self.has_room_for(&write.key), "{} does not fit this batch", write.key);
        self.writes.push(write);
    }

    pub fn is_full(&self) -> bool {
        self.writes.len() >= MAX_WRITES
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// The writes to commit now; the batch is empty afterwards.
    pub fn take(&mut self) -> Vec<StatusWrite> {
        std::mem::take(&mut self.writes)
    }
}

/// Whether `writes` guarded writes fit in one transaction by etcd's counting: the outer level
/// has one compare (leadership) and one nested transaction per write; each nested one has one
/// compare (its target) and one put, within what the outer level leaves.
pub fn fits_in_one_txn(writes: usize) -> bool {
    let outer = writes.max(1);
    let nested = 1;
    outer <= ETCD_MAX_TXN_OPS && nested <= ETCD_MAX_TXN_OPS - outer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::monitoring::MonitoringStatus;

    fn write(i: usize) -> StatusWrite {
        let record = MonitoringRecord {
            status_key: "load_balancer".into(),
            status: MonitoringStatus::Single("UP".into()),
            version: 1,
        };
        StatusWrite::new(&format!("target-{i}"), &format!("/monitoring/v2.0/load_balancers/lb-{i}"), record).unwrap()
    }

    #[test]
    fn a_write_carries_the_record_as_the_collector_agent_wrote_it() {
        assert_eq!(write(7).value, r#"{"load_balancer":"UP","version":1}"#);
    }

    #[test]
    fn a_batch_takes_writes_until_full_then_hands_them_back() {
        let mut batch = Batch::default();
        for i in 0..MAX_WRITES {
            assert!(batch.has_room_for(&write(i).key));
            batch.push(write(i));
        }
        assert!(batch.is_full());
        assert!(!batch.has_room_for(&write(MAX_WRITES).key));
        let taken = batch.take();
        assert_eq!(taken.len(), MAX_WRITES);
        assert_eq!(taken[0], write(0), "in the order they came");
        assert!(batch.is_empty());
        assert!(batch.has_room_for(&write(MAX_WRITES).key));
    }

    #[test]
    fn a_second_write_of_one_key_waits_for_the_next_transaction() {
        let mut batch = Batch::default();
        batch.push(write(1));
        let successor = write(1);
        assert!(!batch.has_room_for(&successor.key));
        assert!(batch.has_room_for(&write(2).key));
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn a_full_batch_fits_etcds_operation_limit() {
        assert!(fits_in_one_txn(1));
        assert!(fits_in_one_txn(MAX_WRITES));
        assert!(fits_in_one_txn(ETCD_MAX_TXN_OPS - 1));
        // 128 nested transactions leave none of the limit to their own compare and put.
        assert!(!fits_in_one_txn(ETCD_MAX_TXN_OPS));
    }
}

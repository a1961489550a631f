//! The one way to write several keys atomically.

use etcd_client::{Compare, CompareOp, PutOptions, TxnOp};

/// Conditions, then the writes that happen only if all of them hold.
#[derive(Debug, Default, Clone)]
pub struct Txn {
    compares: Vec<Compare>,
    ops: Vec<TxnOp>,
    /// Human-readable list of the writes, for logs.
    summary: Vec<String>,
}

impl Txn {
    pub fn new() -> Self {
        Txn::default()
    }

    /// Only if `key` does not exist.
    pub fn if_absent(mut self, key: &str) -> Self {
        self.compares.push(Compare::create_revision(key, CompareOp::Equal, 0));
        self
    }

    /// Only if `key` exists.
    pub fn if_present(mut self, key: &str) -> Self {
        self.compares.push(Compare::create_revision(key, CompareOp::Greater, 0));
        self
    }

    /// Only if `key` was last written at `revision` (0: it does not exist).
    pub fn if_mod_revision(mut self, key: &str, revision: i64) -> Self {
        self.compares.push(Compare::mod_revision(key, CompareOp::Equal, revision));
        self
    }

    /// Only if `key` holds exactly `value`.
    pub fn if_value(mut self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.compares.push(Compare::value(key, CompareOp::Equal, value));
        self
    }

    pub fn put(mut self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.summary.push(format!("put {key}"));
        self.ops.push(TxnOp::put(key, value, None));
        self
    }

    /// A put bound to a lease: the key disappears when the lease expires.
    pub fn put_leased(mut self, key: &str, value: impl Into<Vec<u8>>, lease: i64) -> Self {
        self.summary.push(format!("put {key} (lease)"));
        self.ops.push(TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease))));
        self
    }

    /// A transaction inside this one: its own conditions decide its own writes, and this one's
    /// conditions still decide whether any of it runs (etcd 3.3 and later). Commit it with
    /// `Store::commit_nested` to learn which nested ones applied.
    pub fn nested(mut self, inner: Txn) -> Self {
        self.summary.push(format!("txn({})", inner.summary()));
        self.ops.push(TxnOp::txn(inner.into_etcd()));
        self
    }

    /// A read of `key` at the transaction's revision, if its conditions hold: `Store::
    /// commit_reading` returns what the reads found, in order. Reading what a step needs in the
    /// transaction that starts it saves a round trip.
    pub fn get(mut self, key: &str) -> Self {
        self.summary.push(format!("get {key}"));
        self.ops.push(TxnOp::get(key, None));
        self
    }

    pub fn delete(mut self, key: &str) -> Self {
        self.summary.push(format!("delete {key}"));
        self.ops.push(TxnOp::delete(key, None));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// What the transaction writes, for logs.
    pub fn summary(&self) -> String {
        self.summary.join(", ")
    }

    pub(crate) fn into_etcd(self) -> etcd_client::Txn {
        etcd_client::Txn::new().when(self.compares).and_then(self.ops)
    }
}

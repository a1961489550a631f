//! Claiming a ready job: one transaction that takes it (`/jobs/working/<id>` bound to the
//! worker's lease, `/jobs/ready/<id>` deleted), marks it started (`/esi-worker/job_state` `{}`,
//! PROTOCOL.md §3.4 steps 4 and 6, at one revision) and reads its record and what it needs. A
//! job is then one claim, the Heat calls, and the two writes of its results: the fewest round
//! trips the protocol's observable steps allow.

use super::prepare::needed_keys;
use crate::protocol::{Job, JobId, JobQueue, JobState, Record, ResourceRoot};
use crate::schema::Schema;
use crate::store::{KeyValue, Store, StoreError, Txn};
use std::collections::HashMap;

/// A job this worker holds.
pub(crate) struct Claim {
    /// The value of our `/jobs/working/<id>` key.
    pub reservation: String,
    /// What the claiming transaction read and wrote, for the job's first run; `None` when the
    /// claim's answer was lost and only the key showed it was ours.
    pub first: Option<Claimed>,
}

/// What the claiming transaction read and wrote.
pub(crate) struct Claimed {
    pub revision: i64,
    /// The `/esi-worker/job_state` key it marked started, if the job id named a known type.
    pub started: Option<String>,
    /// The job's record as it read it.
    pub record: Option<KeyValue>,
    /// The values of what the job needs, when its record was known before the claim (see
    /// `queue`), by key; a key absent from it does not exist.
    pub needs: Option<HashMap<String, KeyValue>>,
}

/// Claims `job_id` for the worker holding `lease`; `None` when another worker was first.
/// `known`: the job's record as the worker's watch has it.
pub(crate) async fn claim(
    store: &Store,
    schema: &Schema,
    job_id: &str,
    lease: i64,
    known: Option<&[u8]>,
) -> Result<Option<Claim>, StoreError> {
    let reservation = crate::ids::reservation_id();
    let ready = JobQueue::Ready.key(job_id);
    let working = JobQueue::Working.key(job_id);
    let all = JobQueue::All.key(job_id);
    let mut txn = Txn::new().if_present(&ready).if_absent(&working).put_leased(&working, reservation.clone(), lease);
    txn = txn.delete(&ready);
    let started = job_state_key(schema, job_id);
    if let Some(key) = &started {
        txn = txn.put(key, serde_json::to_vec(&JobState::Started)?);
    }
    txn = txn.get(&all);
    let known = known.and_then(|value| decode(&all, value).map(|job| (value, job)));
    let wanted = known.as_ref().map(|(_, job)| needed_keys(schema, job)).unwrap_or_default();
    for key in &wanted {
        txn = txn.get(key);
    }
    let committed = match store.commit_reading(txn).await {
        Ok(committed) => committed,
        // The answer was lost, not necessarily the write: the claim is ours if it holds our id.
        Err(e) => {
            return match store.get(&working).await {
                Ok(Some(kv)) if kv.value == reservation.as_bytes() => Ok(Some(Claim { reservation, first: None })),
                _ => Err(e),
            };
        }
    };
    let Some((revision, mut found)) = committed else { return Ok(None) };
    let record = found.remove(0);
    // The needs were chosen from the kept record; they are the job's if the record read is it.
    let needs = known.filter(|(value, _)| record.as_ref().is_some_and(|kv| kv.value == *value)).map(|_| {
        wanted.into_iter().zip(found).filter_map(|(key, kv)| kv.map(|kv| (key, kv))).collect::<HashMap<_, _>>()
    });
    Ok(Some(Claim { reservation, first: Some(Claimed { revision, started, record, needs }) }))
}

/// The resource's `/esi-worker/job_state` key, from the job id alone.
fn job_state_key(schema: &Schema, job_id: &str) -> Option<String> {
    let id: JobId = job_id.parse().ok()?;
    schema.resource_types.key(ResourceRoot::JobState, &id.resource_type, &id.resource_id).ok()
}

fn decode(key: &str, value: &[u8]) -> Option<Job> {
    match Record::from_etcd(key, value) {
        Ok(Record::Job(record)) => Some(record.job),
        _ => None,
    }
}

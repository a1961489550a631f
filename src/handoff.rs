//! The hand-off between the planner and the worker of one process.
//!
//! When both roles run in one process, the transaction that plans a job ready to run can also
//! claim it for that worker, as the worker's own claim would (`worker::claim`): it writes
//! `/jobs/working/<id>` bound to the worker's lease instead of `/jobs/ready/<id>`, marks the job
//! started, and reads what the job needs. The job then reaches Heat one commit and one watch hop
//! sooner, and costs one etcd round trip less.
//!
//! The worker opens a [`Handoff`] with what such a claim needs: its handler, its lease, its slots
//! and which keys a job needs read. The planner takes a [`Reservation`] (a free slot) while it
//! decides, and gives it back with its transaction's outcome: the worker receives the job
//! ([`Handed::Claimed`]), learns that the answer was lost ([`Handed::Unknown`]: the job is its
//! own if the claim holds its reservation), or has its slot back ([`Handed::Returned`], when the
//! transaction did not happen). Neither role sees anything else of the other.
//!
//! A crash between the plan and the job's end is a crash after a claim: the claim vanishes with
//! the worker's lease, and the planner queues the job again (`planner::reactions::requeue`).

use crate::protocol::Job;
use crate::store::KeyValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// The keys a job needs read before its Heat call (the worker's `needed_keys`).
pub type NeededKeys = Arc<dyn Fn(&Job) -> Vec<String> + Send + Sync>;

/// The desk the two roles of one process share; cloning it shares it. Closed until the worker
/// opens it.
#[derive(Clone, Default)]
pub struct Handoff {
    desk: Arc<Mutex<Option<Desk>>>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.with_desk(|desk| desk.as_ref().map(|desk| (desk.handler.clone(), desk.lease)));
        f.debug_struct("Handoff").field("open", &open).finish()
    }
}

/// What the worker offers while it is open.
struct Desk {
    handler: String,
    lease: i64,
    slots: Arc<Semaphore>,
    needs: NeededKeys,
    to: mpsc::UnboundedSender<Handed>,
}

/// What the worker receives.
pub enum Handed {
    /// The plan committed with the claim at `revision`: the job is the worker's.
    Claimed(Box<Claimed>),
    /// The transaction's answer was lost, not necessarily its writes: the job `job_id` is the
    /// worker's if `/jobs/working/<job_id>` holds `reservation`.
    Unknown { job_id: String, reservation: String, permit: OwnedSemaphorePermit },
    /// A reservation given back unused: its slot is free again.
    Returned,
}

/// A job claimed in the transaction that planned it.
pub struct Claimed {
    pub job_id: String,
    pub reservation: String,
    pub permit: OwnedSemaphorePermit,
    pub revision: i64,
    /// The job's record as written.
    pub record: KeyValue,
    /// The `/esi-worker/job_state` key marked started.
    pub started: String,
    /// What the reads found, by key (a key absent from it does not exist); `None` when they did
    /// not come back whole, and the worker reads them itself.
    pub needs: Option<HashMap<String, KeyValue>>,
}

impl Handoff {
    fn with_desk<T>(&self, f: impl FnOnce(&mut Option<Desk>) -> T) -> T {
        // The lock guards plain data and nothing panics while holding it.
        f(&mut self.desk.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The worker offers claims for `handler` under `lease`, out of `slots`; claimed jobs arrive
    /// on the receiver. Replaces what it offered before.
    pub fn open(
        &self,
        handler: &str,
        lease: i64,
        slots: Arc<Semaphore>,
        needs: NeededKeys,
    ) -> mpsc::UnboundedReceiver<Handed> {
        let (to, received) = mpsc::unbounded_channel();
        self.with_desk(|desk| *desk = Some(Desk { handler: handler.to_owned(), lease, slots, needs, to }));
        received
    }

    /// The worker offers nothing more (its lease is lost, or it stops). Reservations already
    /// taken still come back on the receiver it had.
    pub fn close(&self) {
        self.with_desk(|desk| *desk = None);
    }

    /// A free slot of the worker for `job`, if the worker runs its handler and has one.
    pub fn reserve(&self, job: &Job) -> Option<Reservation> {
        self.with_desk(|desk| {
            let desk = desk.as_ref().filter(|desk| desk.handler == job.spec.handler && !desk.to.is_closed())?;
            let permit = desk.slots.clone().try_acquire_owned().ok()?;
            Some(Reservation {
                lease: desk.lease,
                id: crate::ids::reservation_id(),
                reads: (desk.needs)(job),
                held: Some((permit, desk.to.clone())),
            })
        })
    }
}

/// A worker slot the planner holds for one job while its plan is in flight. Dropped unused, it
/// gives the slot back.
pub struct Reservation {
    /// The worker's lease, which the claim is bound to.
    pub lease: i64,
    /// The value of the claim (`/jobs/working/<id>`).
    pub id: String,
    /// What the plan's transaction reads for the job, in this order.
    pub reads: Vec<String>,
    held: Option<(OwnedSemaphorePermit, mpsc::UnboundedSender<Handed>)>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation").field("lease", &self.lease).field("reads", &self.reads).finish_non_exhaustive()
    }
}

impl Reservation {
    /// The plan committed at `revision`: the job goes to the worker with what the reads found
    /// (`found`, in the order of [`Reservation::reads`]).
    pub fn claimed(mut self, record: KeyValue, started: String, revision: i64, found: Option<Vec<Option<KeyValue>>>) {
        let Some((permit, to)) = self.held.take() else { return };
        let reads = std::mem::take(&mut self.reads);
        let needs = found
            .filter(|found| found.len() == reads.len())
            .map(|found| reads.into_iter().zip(found).filter_map(|(key, kv)| kv.map(|kv| (key, kv))).collect());
        let job_id = crate::protocol::JobQueue::parse(&record.key).map(|(_, id)| id.to_owned()).unwrap_or_default();
        let claimed =
            Claimed { job_id, reservation: std::mem::take(&mut self.id), permit, revision, record, started, needs };
        // A worker gone meanwhile: its lease, and the claim with it, end with the process.
        let _ = to.send(Handed::Claimed(Box::new(claimed)));
    }

    /// The plan's answer was lost.
    pub fn unknown(mut self, job_id: &str) {
        let Some((permit, to)) = self.held.take() else { return };
        let _ =
            to.send(Handed::Unknown { job_id: job_id.to_owned(), reservation: std::mem::take(&mut self.id), permit });
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some((permit, to)) = self.held.take() {
            drop(permit);
            let _ = to.send(Handed::Returned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::JobQueue;

    fn job(handler: &str) -> Job {
        Job {
            id: "create:heat_worker:network:n1:1:abcde".into(),
            dependency: Vec::new(),
            spec: crate::protocol::JobSpec {
                action: crate::protocol::Action::Create,
                handler: handler.into(),
                resource_type: "network".into(),
                resource_id: "n1".into(),
                version: 1,
                job_name: "abcde".into(),
                is_first: true,
                is_last: true,
                on_failure: "fail".into(),
                params: Vec::new(),
                resource_input: serde_json::Map::new(),
            },
        }
    }

    fn open(handoff: &Handoff, slots: usize) -> (Arc<Semaphore>, mpsc::UnboundedReceiver<Handed>) {
        let slots = Arc::new(Semaphore::new(slots));
        let needs: NeededKeys = Arc::new(|job: &Job| vec![format!("/needs/{}", job.spec.resource_id)]);
        let received = handoff.open("heat_worker", 7, slots.clone(), needs);
        (slots, received)
    }

    #[test]
    fn reserves_only_for_the_open_workers_handler_and_free_slots() {
        let handoff = Handoff::default();
        assert!(handoff.reserve(&job("heat_worker")).is_none(), "closed until the worker opens it");
        let (slots, _received) = open(&handoff, 1);
        assert!(handoff.reserve(&job("other_worker")).is_none());
        let reservation = handoff.reserve(&job("heat_worker")).unwrap();
        assert_eq!((reservation.lease, reservation.reads.clone()), (7, vec!["/needs/n1".to_owned()]));
        assert_eq!(slots.available_permits(), 0);
        assert!(handoff.reserve(&job("heat_worker")).is_none(), "no free slot");
        drop(reservation);
        assert_eq!(slots.available_permits(), 1);
        handoff.close();
        assert!(handoff.reserve(&job("heat_worker")).is_none());
    }

    #[test]
    fn hands_over_the_job_or_the_slot() {
        let handoff = Handoff::default();
        let (slots, mut received) = open(&handoff, 2);
        let record = KeyValue {
            key: JobQueue::All.key("j1"),
            value: b"[record]".to_vec(),
            mod_revision: 9,
            create_revision: 9,
            lease: 0,
        };
        let found = KeyValue { key: "/needs/n1".into(), ..record.clone() };
        handoff.reserve(&job("heat_worker")).unwrap().claimed(record, "/started".into(), 9, Some(vec![Some(found)]));
        let Ok(Handed::Claimed(claimed)) = received.try_recv() else { panic!("expected the claimed job") };
        assert_eq!((claimed.job_id.as_str(), claimed.revision, claimed.started.as_str()), ("j1", 9, "/started"));
        assert!(claimed.needs.as_ref().is_some_and(|needs| needs.contains_key("/needs/n1")));
        assert_eq!(slots.available_permits(), 1, "the claimed job holds its slot");

        handoff.reserve(&job("heat_worker")).unwrap().unknown("j2");
        assert!(matches!(received.try_recv(), Ok(Handed::Unknown { job_id, .. }) if job_id == "j2"));

        drop(handoff.reserve(&job("heat_worker")));
        assert!(matches!(received.try_recv(), Ok(Handed::Returned)));
        drop(claimed);
        assert_eq!(slots.available_permits(), 2, "every slot is back once the worker lets go of it");
    }
}

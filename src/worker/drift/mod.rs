//! Drift repair: a resource that converged (its `/state` completed) but whose Heat stack has
//! since vanished or failed outside our control is applied again. The repair is to delete its
//! `/esi-worker/config` snapshot: the planner then plans its current config afresh.
//!
//! One replica does it (elected on [`LEADER_KEY`], like the planner), at most once an interval,
//! and a pass costs the same whatever the number of resources: one list of etcd ([`read`]:
//! `/state`, heat_stacks, snapshots and job records at one revision, a page per 1,000 keys) and
//! one paged stack list per tenant that has converged resources (a page per 500 stacks), where it
//! used to cost a `get` and one or two Heat calls per resource in every worker. At most
//! `max_repairs` resources are repaired a pass ([`judge::cap`]); the rest are logged and wait for
//! the next pass, so a Heat that lost all its stacks is re-planned a slice at a time instead of
//! in one burst.
//!
//! Why a stack being created or changed right now is never "repaired": etcd is read first, at one
//! revision R, and Heat is listed afterwards.
//! * A resource with a job in `/jobs/all` at R is no candidate; the worker writes heat_stacks
//!   and `/state` before its job record goes, and only once Heat has finished the operation. So
//!   a candidate's stack existed, settled, before R, and the list (taken after R) shows it
//!   unless something removed or broke it after R.
//! * If that something is a job of ours planned after R (a delete, or an update that fails), its
//!   planning rewrote the snapshot in the same transaction, and the repair's delete, guarded by
//!   the snapshot's revision at R, does nothing.
//! * A stack created after R belongs to a resource that was no candidate at R (its job was live,
//!   or it had no heat_stacks record yet), so its absence from a list taken before it was
//!   created is never read as "gone". Listing Heat first and reading etcd afterwards would be
//!   unsafe: a job could create the stack and finish between the two.

pub mod judge;
pub mod read;
pub mod repair;

use crate::election::{Election, lead_while_elected};
use crate::heat::HeatClient;
use crate::schema::Schema;
use crate::store::{Leadership, Store};
use crate::telemetry::Heartbeat;
use judge::Listing;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The key the drift repairer is elected on (next to the monitor's and the mirror's; no ESI
/// component uses `/heat-reconciler/`).
pub const LEADER_KEY: &str = "/heat-reconciler/drift_leader";

/// Repairs per pass by default: two controller replicas run 16 jobs at once, so 100 re-plans a
/// minute (the default interval) already keep them busy; a Heat that lost 10,000 stacks is
/// re-planned over 100 passes instead of in one burst.
pub const DEFAULT_MAX_REPAIRS: usize = 100;

#[derive(Debug, Clone)]
pub struct DriftOptions {
    /// This process's id, written into the leader key.
    pub id: String,
    pub lease_ttl: Duration,
    /// The time from the end of one pass to the start of the next (a new leader waits it too).
    pub interval: Duration,
    /// At most this many repairs a pass.
    pub max_repairs: usize,
}

impl DriftOptions {
    pub fn new(id: impl Into<String>) -> Self {
        DriftOptions {
            id: id.into(),
            lease_ttl: Duration::from_secs(15),
            interval: Duration::from_secs(60),
            max_repairs: DEFAULT_MAX_REPAIRS,
        }
    }
}

/// What one pass found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Converged resources with no live job: the ones checked.
    pub checked: usize,
    /// Tenants whose stacks were listed.
    pub tenants: usize,
    /// Tenants whose list failed: their resources wait for the next pass.
    pub unlisted_tenants: usize,
    /// Resources whose stack is gone or failed.
    pub drifted: usize,
    /// Snapshots deleted: re-applies queued.
    pub repaired: usize,
    /// Drifted resources left for a later pass by the cap.
    pub deferred: usize,
    /// The leadership was lost mid-pass: nothing more was written.
    pub lost_leadership: bool,
}

/// Runs drift repair until `shutdown` turns true: campaign, repair while leading, campaign again.
pub async fn run(
    store: Store,
    schema: Schema,
    heat: HeatClient,
    options: DriftOptions,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let election =
        Election { role: "drift".into(), key: LEADER_KEY.into(), id: options.id.clone(), ttl: options.lease_ttl };
    lead_while_elected(&store, &election, shutdown, |leadership, heartbeat| {
        let (store, schema, heat, options) = (store.clone(), schema.clone(), heat.clone(), options.clone());
        Box::pin(async move { lead(&store, &schema, &heat, leadership, heartbeat, &options).await })
    })
    .await
}

/// One pass every interval while leading; returns only when the leadership is found lost. A
/// failed pass (etcd or Heat unreachable) is logged and tried again an interval later.
async fn lead(
    store: &Store,
    schema: &Schema,
    heat: &HeatClient,
    leadership: &Leadership,
    heartbeat: &mut Heartbeat,
    options: &DriftOptions,
) -> anyhow::Result<()> {
    heartbeat.ready();
    loop {
        let due = Instant::now() + options.interval;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => break,
                _ = heartbeat.tick() => {}
            }
        }
        let pulse = heartbeat.pulse();
        match check_beating(store, schema, heat, leadership, options.max_repairs, || pulse.beat()).await {
            Ok(pass) if pass.lost_leadership => anyhow::bail!("the drift leadership was lost mid-pass"),
            Ok(pass) if pass.drifted > 0 || pass.unlisted_tenants > 0 => tracing::info!(?pass, "drift pass"),
            Ok(pass) => tracing::debug!(?pass, "drift pass"),
            Err(e) => tracing::warn!(error = %e, "drift check failed; trying again next interval"),
        }
    }
}

/// One pass: read etcd, list each tenant's stacks, repair at most `max_repairs` drifted
/// resources under `leadership`.
pub async fn check(
    store: &Store,
    schema: &Schema,
    heat: &HeatClient,
    leadership: &Leadership,
    max_repairs: usize,
) -> anyhow::Result<Pass> {
    check_beating(store, schema, heat, leadership, max_repairs, || {}).await
}

/// [`check`], calling `beat` as it makes progress (after the read, each page of a stack list,
/// each repair transaction): a pass over many stacks is not a stuck loop.
async fn check_beating(
    store: &Store,
    schema: &Schema,
    heat: &HeatClient,
    leadership: &Leadership,
    max_repairs: usize,
    beat: impl Fn(),
) -> anyhow::Result<Pass> {
    // etcd first, Heat second: see the module's comment.
    let candidates = read::read(store, schema).await?;
    beat();
    let mut pass = Pass { checked: candidates.len(), ..Pass::default() };
    let tenants: BTreeSet<&str> = candidates.iter().map(|c| c.tenant.as_str()).collect();
    let mut listings: HashMap<String, Listing> = HashMap::new();
    for tenant in tenants {
        match heat.list_paged(tenant, &beat).await {
            Ok(stacks) => {
                listings.insert(tenant.to_owned(), judge::listing(stacks));
                pass.tenants += 1;
            }
            Err(e) => {
                tracing::warn!(tenant, error = %e, "drift: cannot list the tenant's stacks; its resources wait for the next pass");
                pass.unlisted_tenants += 1;
            }
        }
    }
    let drifted = judge::drifted(candidates, &listings);
    pass.drifted = drifted.len();
    let (repairs, deferred) = judge::cap(drifted, max_repairs);
    pass.deferred = deferred.len();
    if !deferred.is_empty() {
        let first: Vec<&str> = deferred.iter().take(5).map(|d| d.candidate.state_key.as_str()).collect();
        tracing::warn!(
            deferred = deferred.len(),
            max_repairs,
            ?first,
            "drift: more drifted resources than one pass repairs; the rest wait for the next passes"
        );
    }
    let (applied, lost) = match repair::commit(store, leadership, repairs, &beat).await? {
        repair::Outcome::Applied(applied) => (applied, false),
        repair::Outcome::NotLeading { applied } => (applied, true),
    };
    for repaired in &applied {
        let c = &repaired.candidate;
        tracing::warn!(resource = %c.state_key, drift = %repaired.drift, version = c.version, "drift: applying the config again");
    }
    pass.repaired = applied.len();
    pass.lost_leadership = lost;
    Ok(pass)
}

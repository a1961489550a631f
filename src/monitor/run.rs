//! The prober: one leader (elected like the planner) probes every registered target each
//! interval and writes `/monitoring` when a status changes. Registrations arrive through the
//! etcd watch of the target prefix, so whichever replica took the API call, the leader sees it.

use super::batch::{Batch, StatusWrite};
use super::plan::{Plan, ProbeConfig, Reading};
use super::read::{read, remember};
use super::registry::{TARGETS_PREFIX, decode};
use super::status::{Pending, Verdict, decide};
use super::target::{HoldOptions, Target};
use super::write;
use crate::election::{Election, lead_while_elected};
use crate::protocol::monitoring::MonitoringRecord;
use crate::store::{Leadership, Store, WatchEvent, watch_prefix};
use crate::telemetry::Heartbeat;
use crate::telemetry::metrics::ProbeLabels;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub const LEADER_KEY: &str = "/heat-reconciler/monitor_leader";

#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// This process's id, written into the leader key.
    pub id: String,
    pub lease_ttl: Duration,
    /// How often each target is probed (the original agents: 60 s).
    pub interval: Duration,
    /// How long one probe may take.
    pub timeout: Duration,
    /// How many probes run at once.
    pub concurrency: usize,
    pub probes: ProbeConfig,
    /// Counts finished probes, for benchmarks and health.
    pub probes_done: Arc<AtomicU64>,
    /// Counts the transactions that wrote statuses (several each), for benchmarks.
    pub status_txns: Arc<AtomicU64>,
}

impl MonitorOptions {
    pub fn new(id: impl Into<String>) -> Self {
        MonitorOptions {
            id: id.into(),
            lease_ttl: Duration::from_secs(15),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            concurrency: 256,
            probes: ProbeConfig::default(),
            probes_done: Arc::default(),
            status_txns: Arc::default(),
        }
    }
}

/// Runs the prober until `shutdown` turns true: campaign, probe while leading, campaign again.
pub async fn run(store: Store, options: MonitorOptions, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let election =
        Election { role: "monitor".into(), key: LEADER_KEY.into(), id: options.id.clone(), ttl: options.lease_ttl };
    lead_while_elected(&store, &election, shutdown, |leadership, heartbeat| {
        let (store, options) = (store.clone(), options.clone());
        Box::pin(async move { Prober::new(store, leadership, &options).lead(heartbeat).await })
    })
    .await
}

/// What the prober keeps per target.
struct Tracked {
    target: Target,
    /// Bumped whenever the target changes, so a probe of its old form is ignored.
    generation: u64,
    /// `None`: nothing to write (metrics only) or nothing to probe with (logged).
    plan: Option<Plan>,
    /// Where its status goes (`/monitoring/v2.0/<plural>/<id>`), and under which name.
    key: String,
    status_key: String,
    hold: Option<HoldOptions>,
    pending: Pending,
    probing: bool,
}

struct Probe {
    id: String,
    generation: u64,
    reading: Reading,
    /// Where an interface's name was found.
    if_index: Option<u64>,
}

struct Prober<'a> {
    store: Store,
    leadership: &'a Leadership,
    options: &'a MonitorOptions,
    http: reqwest::Client,
    targets: HashMap<String, Tracked>,
    /// When each target is probed next: (due, id, generation).
    due: BTreeSet<(Instant, String, u64)>,
    /// What `/monitoring` holds, as far as this leader knows (read at start, then its writes).
    written: HashMap<String, MonitoringRecord>,
    /// Statuses decided and not yet committed; always committed before the loop waits again.
    batch: Batch,
    generations: u64,
}

impl<'a> Prober<'a> {
    fn new(store: Store, leadership: &'a Leadership, options: &'a MonitorOptions) -> Self {
        Prober {
            store,
            leadership,
            options,
            http: reqwest::Client::new(),
            targets: HashMap::new(),
            due: BTreeSet::new(),
            written: HashMap::new(),
            batch: Batch::default(),
            generations: 0,
        }
    }

    async fn lead(&mut self, heartbeat: &mut Heartbeat) -> anyhow::Result<()> {
        self.read_written().await?;
        let mut events = watch_prefix(self.store.clone(), TARGETS_PREFIX.to_owned());
        let mut probes: JoinSet<Probe> = JoinSet::new();
        loop {
            self.launch_due(&mut probes);
            let next_due = match self.due.first() {
                Some((due, ..)) if probes.len() < self.options.concurrency => *due,
                _ => Instant::now() + self.options.interval,
            };
            tokio::select! {
                event = events.recv() => {
                    let event = event.ok_or_else(|| anyhow::anyhow!("target watch ended"))?;
                    if matches!(event, WatchEvent::Listed { .. }) {
                        heartbeat.ready();
                    }
                    self.apply(event);
                }
                _ = heartbeat.tick() => {}
                Some(done) = probes.join_next(), if !probes.is_empty() => {
                    // Take the results that are already there, up to a full batch, then commit:
                    // a sweep fills whole transactions, and a lone change is written at once.
                    // At most one batch per turn, so the heartbeat and the watch keep theirs.
                    let mut next = Some(done);
                    while let Some(result) = next {
                        self.options.probes_done.fetch_add(1, Ordering::Relaxed);
                        match result {
                            Ok(probe) => self.record(probe).await?,
                            Err(e) => tracing::error!(error = %e, "a probe task failed"),
                        }
                        next = if self.batch.is_full() { None } else { probes.try_join_next() };
                    }
                    if !self.batch.is_empty() {
                        // Probing goes on while the transaction is out; else a sweep alternates
                        // between probing and committing, and runs about 40% slower
                        // (BENCHMARKS.md, "Monitor probe loop").
                        self.launch_due(&mut probes);
                        self.commit().await?;
                    }
                }
                _ = tokio::time::sleep_until(next_due) => {}
            }
        }
    }

    /// What `/monitoring` holds now: the prober writes only what differs from it.
    async fn read_written(&mut self) -> anyhow::Result<()> {
        let (items, _) = self.store.list("/monitoring/").await?;
        self.written =
            items.into_iter().filter_map(|kv| Some((kv.key, serde_json::from_slice(&kv.value).ok()?))).collect();
        Ok(())
    }

    fn apply(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Listed { items, .. } => {
                let listed: HashMap<String, Vec<u8>> = items
                    .into_iter()
                    .filter_map(|kv| Some((kv.key.strip_prefix(TARGETS_PREFIX)?.to_owned(), kv.value)))
                    .collect();
                let gone: Vec<String> = self.targets.keys().filter(|id| !listed.contains_key(*id)).cloned().collect();
                for id in gone {
                    self.forget(&id);
                }
                for (id, raw) in listed {
                    self.track(&id, &raw);
                }
            }
            WatchEvent::Put(kv) => {
                if let Some(id) = kv.key.strip_prefix(TARGETS_PREFIX) {
                    self.track(id, &kv.value);
                }
            }
            WatchEvent::Deleted { key, .. } => {
                if let Some(id) = key.strip_prefix(TARGETS_PREFIX) {
                    self.forget(id);
                }
            }
            WatchEvent::Synced { .. } => {}
        }
    }

    /// A new or changed target: probe it now.
    fn track(&mut self, id: &str, raw: &[u8]) {
        let target = match decode(raw) {
            Ok(target) => target,
            Err(reason) => {
                tracing::warn!(%id, %reason, "ignoring a stored target that does not decode");
                self.forget(id);
                return;
            }
        };
        if self.targets.get(id).is_some_and(|tracked| tracked.target == target) {
            return;
        }
        self.generations += 1;
        let generation = self.generations;
        let status_key = target.spec.status_key().ok().flatten().map(str::to_owned);
        let key = target.spec.monitoring_key();
        let plan = match &status_key {
            None => None,
            Some(_) => match self.options.probes.plan(&target) {
                Ok(plan) => Some(plan),
                Err(reason) => {
                    tracing::warn!(%id, %key, %reason, "target not probed");
                    None
                }
            },
        };
        let hold = target.spec.hold_options().ok().flatten();
        tracing::debug!(%id, %key, ?plan, "tracking target");
        if plan.is_some() {
            self.due.insert((Instant::now(), id.to_owned(), generation));
        }
        self.targets.insert(
            id.to_owned(),
            Tracked {
                target,
                generation,
                plan,
                key,
                status_key: status_key.unwrap_or_default(),
                hold,
                pending: Pending::default(),
                probing: false,
            },
        );
    }

    /// A target went: its registration's removal deleted its status in the same transaction
    /// (see `Registry::delete`), so whatever else reports on that resource writes again.
    fn forget(&mut self, id: &str) {
        let Some(gone) = self.targets.remove(id) else { return };
        if !gone.target.spec.writes_status() {
            return;
        }
        let key = gone.key;
        self.written.remove(&key);
        let now = Instant::now();
        let others: Vec<(String, u64)> = self
            .targets
            .iter()
            .filter(|(_, t)| t.plan.is_some() && t.key == key)
            .map(|(id, t)| (id.clone(), t.generation))
            .collect();
        for (id, generation) in others {
            self.due.insert((now, id, generation));
        }
    }

    fn launch_due(&mut self, probes: &mut JoinSet<Probe>) {
        let now = Instant::now();
        while probes.len() < self.options.concurrency {
            let Some((due, ..)) = self.due.first() else { break };
            if *due > now {
                break;
            }
            let Some((_, id, generation)) = self.due.pop_first() else { break };
            let Some(tracked) = self.targets.get_mut(&id).filter(|t| t.generation == generation && !t.probing) else {
                continue;
            };
            let Some(plan) = tracked.plan.clone() else { continue };
            tracked.probing = true;
            let (timeout, http) = (self.options.timeout, self.http.clone());
            probes.spawn(async move {
                // A probe never outlives its timeout by much, whatever the probe does.
                let (reading, if_index) =
                    tokio::time::timeout(timeout + Duration::from_secs(1), read(&plan, timeout, &http))
                        .await
                        .unwrap_or_else(|_| (Reading::Fail("probe timed out".into()), None));
                Probe { id, generation, reading, if_index }
            });
        }
    }

    /// Decides about a probe's reading; a status that changed joins the batch.
    async fn record(&mut self, probe: Probe) -> anyhow::Result<()> {
        let Some(tracked) = self.targets.get_mut(&probe.id).filter(|t| t.generation == probe.generation) else {
            return Ok(());
        };
        tracked.probing = false;
        if let Some(plan) = tracked.plan.as_mut() {
            remember(plan, probe.if_index);
        }
        let next = Instant::now() + self.options.interval;
        self.due.insert((next, probe.id.clone(), probe.generation));
        let key = &tracked.key;
        if let Some(plan) = &tracked.plan {
            let labels = ProbeLabels { probe: plan.kind().to_owned(), result: probe.reading.summary().to_owned() };
            crate::telemetry::metrics().probes.get_or_create(&labels).inc();
        }
        let observed = probe.reading.record(&tracked.status_key, tracked.target.spec.version);
        if let Reading::Fail(reason) = &probe.reading {
            tracing::debug!(id = %probe.id, %key, %reason, "probe failed");
        }
        let record = match decide(
            self.written.get(key),
            observed,
            tracked.hold.as_ref(),
            &mut tracked.pending,
            Instant::now().into_std(),
        ) {
            Verdict::Unchanged => return Ok(()),
            Verdict::Hold(left) => {
                tracing::debug!(%key, left_s = left.as_secs(), "hold time not passed");
                return Ok(());
            }
            Verdict::Write(record) => record,
        };
        let write = StatusWrite::new(&probe.id, key, record)?;
        if !self.batch.has_room_for(&write.key) {
            self.commit().await?;
        }
        self.batch.push(write);
        Ok(())
    }

    /// Commits the batch (see `write` for the guards and what a failed guard costs) and notes
    /// what was written.
    async fn commit(&mut self) -> anyhow::Result<()> {
        let writes = self.batch.take();
        if writes.is_empty() {
            return Ok(());
        }
        let applied = write::commit(&self.store, self.leadership, &writes).await?;
        self.options.status_txns.fetch_add(1, Ordering::Relaxed);
        for (write, applied) in writes.into_iter().zip(applied) {
            if applied {
                tracing::info!(key = %write.key, value = %write.value, "status written");
                self.written.insert(write.key, write.record);
            } else {
                tracing::debug!(key = %write.key, target = %write.target, "status not written: target gone or not leading");
            }
        }
        Ok(())
    }
}

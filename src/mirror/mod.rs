//! The mirror role: shows every resource of a kind (the load balancers) as a custom resource in
//! Kubernetes, so `kubectl get loadbalancers` tells where each stands. etcd is the source of
//! truth; the custom resources are a view the mirror keeps true.
//!
//! Level-triggered like the planner: one leader (elected on etcd) watches the type's `/config`,
//! `/state`, `/esi-worker/heat_stacks` and `/monitoring` records ([`view`]) and the custom
//! resources of its namespace (kube's watcher). Any event marks the resource dirty; a dirty
//! resource is compared with what its records say it should be ([`project`], pure) and only the
//! difference is written ([`writer`]: server-side apply under one field manager, paced). A
//! start-up, a relist after an outage and a periodic resync mark everything dirty: the same path.

pub mod crd;
pub(crate) mod kind;
pub mod project;
pub mod view;
pub mod writer;

pub use crd::{LoadBalancer, LoadBalancerSpec, MirrorStatus, crds_yaml};
pub use kind::MirroredKind;

use crate::election::{Election, lead_while_elected};
use crate::schema::Schema;
use crate::shutdown::shut_down;
use crate::store::{Store, WatchEvent, watch_prefix};
use crate::telemetry::Heartbeat;
use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use view::{MirrorView, ROOTS};
use writer::{Writer, describe};

#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// This process's id, written into the leader key.
    pub id: String,
    pub lease_ttl: Duration,
    /// Where the custom resources live.
    pub namespace: String,
    /// At most this many write requests a second to the apiserver.
    pub writes_per_second: f64,
    /// How often everything is compared again, whatever the watches said.
    pub resync_interval: Duration,
    /// Counts the write requests sent, for benchmarks and metrics.
    pub requests: Arc<AtomicU64>,
}

impl MirrorOptions {
    pub fn new(id: impl Into<String>, namespace: impl Into<String>) -> Self {
        MirrorOptions {
            id: id.into(),
            lease_ttl: Duration::from_secs(15),
            namespace: namespace.into(),
            writes_per_second: 50.0,
            resync_interval: Duration::from_secs(300),
            requests: Arc::default(),
        }
    }
}

/// The etcd key the mirror of kind `K` is elected on.
pub fn leader_key<K: MirroredKind>() -> String {
    format!("/heat-reconciler/mirror_leader/{}", K::plural(&()))
}

/// Runs the mirror of kind `K` until `shutdown` turns true: campaign, mirror while leading,
/// campaign again. Fails at once when the kind's CRD is not installed.
pub async fn run<K: MirroredKind>(
    store: Store,
    schema: &Schema,
    client: kube::Client,
    options: MirrorOptions,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let prefix = schema
        .resource_types
        .prefix(K::RESOURCE_TYPE)
        .with_context(|| format!("the schema has no resource type `{}` to mirror", K::RESOURCE_TYPE))?
        .to_owned();
    let api: Api<K> = Api::namespaced(client, &options.namespace);
    tokio::select! {
        installed = check_installed(&api) => installed?,
        _ = shut_down(&mut shutdown) => return Ok(()),
    }
    let election = Election {
        role: format!("mirror/{}", K::plural(&())),
        key: leader_key::<K>(),
        id: options.id.clone(),
        ttl: options.lease_ttl,
    };
    lead_while_elected(&store, &election, shutdown, |_, heartbeat| {
        let mut mirror = Mirror::<K>::new(api.clone(), &prefix, &options);
        let store = store.clone();
        Box::pin(async move { mirror.lead(&store, heartbeat).await })
    })
    .await
}

/// Lists one object: a missing CRD is an error for the operator (install it), an unreachable
/// apiserver is waited for.
async fn check_installed<K: MirroredKind>(api: &Api<K>) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(200);
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => anyhow::bail!(
                "the {} CRD is not installed (kubectl apply -f crds/{}.yaml, or `heat-reconciler crdgen`)",
                K::kind(&()),
                K::plural(&())
            ),
            Err(e) => {
                tracing::warn!(error = %describe(&e), "cannot list {} yet; retrying", K::plural(&()));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

struct Mirror<K: MirroredKind> {
    api: Api<K>,
    options: MirrorOptions,
    view: MirrorView,
    /// The custom resources as last seen (watch events and our own writes' answers).
    objects: HashMap<String, K>,
    /// `Some` while a relist of the custom resources is arriving.
    relisting: Option<HashMap<String, K>>,
    objects_listed: bool,
    dirty: BTreeSet<String>,
    /// Failed writes in a row, by id, and when each is tried again.
    failures: HashMap<String, u32>,
    retry_at: BTreeSet<(Instant, String)>,
    /// Ids that cannot name an object, reported once.
    unnameable: HashSet<String>,
    writer: Writer<K>,
}

impl<K: MirroredKind> Mirror<K> {
    fn new(api: Api<K>, prefix: &str, options: &MirrorOptions) -> Self {
        Mirror {
            writer: Writer::new(api.clone(), options.writes_per_second, options.requests.clone()),
            api,
            options: options.clone(),
            view: MirrorView::new(prefix),
            objects: HashMap::new(),
            relisting: None,
            objects_listed: false,
            dirty: BTreeSet::new(),
            failures: HashMap::new(),
            retry_at: BTreeSet::new(),
            unnameable: HashSet::new(),
        }
    }

    async fn lead(&mut self, store: &Store, heartbeat: &mut Heartbeat) -> anyhow::Result<()> {
        // One watch per root, merged into one channel; the forwarders end with this function.
        let (sender, mut etcd) = mpsc::channel(1024);
        let mut forwarders = JoinSet::new();
        for root in ROOTS {
            let mut events = watch_prefix(store.clone(), root.key(self.view.prefix(), ""));
            let sender = sender.clone();
            forwarders.spawn(async move {
                while let Some(event) = events.recv().await {
                    if sender.send((root, event)).await.is_err() {
                        return;
                    }
                }
            });
        }
        let mut objects = watcher(self.api.clone(), watcher::Config::default()).default_backoff().boxed();
        let mut resync = tokio::time::interval(self.options.resync_interval);
        resync.tick().await;
        tracing::info!(kind = K::kind(&()).as_ref(), namespace = %self.options.namespace, "mirroring");
        loop {
            let ready = self.view.complete() && self.objects_listed;
            if ready {
                heartbeat.ready();
            }
            let next_retry = self.retry_at.first().map(|(due, _)| *due);
            tokio::select! {
                biased;
                event = etcd.recv() => {
                    let (root, event) = event.context("etcd watches ended")?;
                    if let WatchEvent::Listed { items, .. } = &event {
                        tracing::debug!(root = root.as_str(), records = items.len(), "listed");
                    }
                    self.dirty.extend(self.view.apply(root, event));
                }
                event = objects.next() => match event.context("custom resource watch ended")? {
                    Ok(event) => self.on_object_event(event),
                    // The watcher backs off and watches again by itself; a relist follows.
                    Err(e) => tracing::warn!(error = %e, "custom resource watch interrupted"),
                },
                _ = resync.tick() => self.mark_all_dirty(),
                _ = heartbeat.tick() => {}
                _ = tokio::time::sleep_until(next_retry.unwrap_or_else(Instant::now)), if next_retry.is_some() => {
                    let now = Instant::now();
                    while let Some(entry) = self.retry_at.first().filter(|(due, _)| *due <= now).cloned() {
                        self.retry_at.remove(&entry);
                        self.dirty.insert(entry.1);
                    }
                }
                _ = std::future::ready(()), if ready && !self.dirty.is_empty() => {
                    if let Some(id) = self.dirty.pop_first() {
                        self.reconcile(&id).await;
                    }
                }
            }
        }
    }

    fn on_object_event(&mut self, event: watcher::Event<K>) {
        match event {
            watcher::Event::Init => self.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                if let (Some(relisting), Some(name)) = (self.relisting.as_mut(), object.meta().name.clone()) {
                    relisting.insert(name, object);
                }
            }
            watcher::Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                self.dirty.extend(self.objects.keys().cloned());
                self.objects = listed;
                self.objects_listed = true;
                self.mark_all_dirty();
            }
            watcher::Event::Apply(object) => {
                let Some(name) = object.meta().name.clone() else { return };
                if self.objects.get(&name).is_none_or(|known| !is_older(&object, known)) {
                    self.objects.insert(name.clone(), object);
                }
                self.dirty.insert(name);
            }
            watcher::Event::Delete(object) => {
                let Some(name) = object.meta().name.clone() else { return };
                // A delete event older than what we wrote since (a re-create) changes nothing.
                if self.objects.get(&name).is_some_and(|known| !is_older(&object, known)) {
                    self.objects.remove(&name);
                }
                self.dirty.insert(name);
            }
        }
    }

    fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.view.ids().cloned());
        self.dirty.extend(self.objects.keys().cloned());
    }

    /// Makes the custom resource of `id` what its records say, writing only what differs.
    async fn reconcile(&mut self, id: &str) {
        let observed = self.view.get(id).cloned().unwrap_or_default();
        let result = match project::desired_object::<K>(&observed, &self.view.config_key(id)) {
            None if self.objects.contains_key(id) => {
                let deleted = self.writer.delete(id).await;
                if deleted.is_ok() {
                    tracing::debug!(name = id, "custom resource deleted: its /config is gone");
                    self.objects.remove(id);
                }
                deleted
            }
            None => Ok(()),
            Some(_) if !project::is_object_name(id) => {
                if self.unnameable.insert(id.to_owned()) {
                    tracing::warn!(id, "not mirrored: the id cannot name a Kubernetes object");
                }
                Ok(())
            }
            Some(desired) => {
                let current = self.objects.get(id);
                let created = current.is_none();
                match self.writer.converge_object(id, &desired, current).await {
                    Ok(object) => {
                        let now = now();
                        let status = project::status::<K>(&observed, object.status(), object.meta().generation, &now);
                        let written = self.writer.converge_status(id, &object, &status).await;
                        if created {
                            tracing::debug!(name = id, "custom resource created");
                        }
                        self.objects.insert(id.to_owned(), written.as_ref().unwrap_or(&object).clone());
                        written.map(|_| ())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => {
                self.failures.remove(id);
            }
            Err(e) => {
                let failures = self.failures.entry(id.to_owned()).or_default();
                // One line per resource when its writes start failing, not one per attempt.
                if *failures == 0 {
                    tracing::warn!(name = id, error = %describe(&e), "mirror write failed; retrying");
                } else {
                    tracing::debug!(name = id, error = %describe(&e), failures = *failures, "mirror write failed again");
                }
                let delay = Duration::from_secs(1 << (*failures).min(6));
                *failures += 1;
                self.retry_at.insert((Instant::now() + delay, id.to_owned()));
            }
        }
    }
}

/// Whether `a` is an older version of the object than `b`. Resource versions are opaque to
/// clients; the apiserver's are etcd revisions, so a numeric comparison holds when both parse,
/// and anything else counts as newer (the watch is then trusted).
fn is_older<K: kube::Resource>(a: &K, b: &K) -> bool {
    let version = |o: &K| o.meta().resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
    matches!((version(a), version(b)), (Some(a), Some(b)) if a < b)
}

/// Now, to the second: the apiserver keeps condition times in whole seconds, and a finer time
/// would make every status we wrote differ from what it stored.
fn now() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

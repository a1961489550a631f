//! etcd v3 access: the one place that talks to etcd. Paginated lists, a watch that resumes and
//! relists (`watcher`), transactions ([`Txn`]), leases and leader election (`lease`).

pub(crate) mod access;
pub(crate) mod error_log;
pub(crate) mod lease;
pub(crate) mod txn;
pub(crate) mod watcher;

pub use access::{AccessError, EtcdAccess};
pub(crate) use error_log::{ErrorLog, retried};
pub use lease::{Leadership, Lease, campaign};
pub use txn::Txn;
pub use watcher::{Listing, WatchEvent, watch_listing, watch_prefix};

use etcd_client::{Client, GetOptions, KvClient, WatchClient};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many keys one list request fetches.
const PAGE_SIZE: i64 = 1000;

/// A key and its value as etcd holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub create_revision: i64,
    pub lease: i64,
}

impl KeyValue {
    fn from_etcd(kv: &etcd_client::KeyValue) -> Result<Self, StoreError> {
        Ok(KeyValue {
            key: kv.key_str().map_err(|_| StoreError::NonUtf8Key)?.to_owned(),
            value: kv.value().to_vec(),
            mod_revision: kv.mod_revision(),
            create_revision: kv.create_revision(),
            lease: kv.lease(),
        })
    }

    /// Takes etcd's key and value rather than copying them: a list is large.
    fn from_etcd_owned(kv: etcd_client::KeyValue) -> Result<Self, StoreError> {
        let (mod_revision, create_revision, lease) = (kv.mod_revision(), kv.create_revision(), kv.lease());
        let (key, value) = kv.into_key_value();
        let key = String::from_utf8(key).map_err(|_| StoreError::NonUtf8Key)?;
        Ok(KeyValue { key, value, mod_revision, create_revision, lease })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd returned a key that is not UTF-8")]
    NonUtf8Key,
    #[error("etcd canceled the watch: {0}")]
    WatchCanceled(String),
    #[error("lease keep-alive got no answer in time")]
    KeepAliveTimedOut,
    #[error("lease keep-alive stream closed")]
    KeepAliveClosed,
    /// A record that could not be turned into bytes to write (nothing is written).
    #[error("encoding a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The largest answer from etcd this client decodes (gRPC's default is 4 MiB). etcd refuses
/// requests above its `--max-request-bytes` (1.5 MiB by default, up to the 10 MiB its docs
/// advise), so one record is never larger than that; a page of a list or a watch answer holds
/// many. A value of several megabytes on an etcd configured to take it must not make every list
/// of its prefix fail for everyone: the readers refuse it on its own ([`crate::protocol`]).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// A handle on an etcd cluster; cheap to clone.
#[derive(Clone)]
pub struct Store {
    client: Client,
    /// The client's key-value and watch services, accepting answers up to [`MAX_ANSWER_BYTES`].
    kv: KvClient,
    watch: WatchClient,
    /// Requests sent through the calls below, this handle's and its clones' (see
    /// [`Store::round_trips`]).
    round_trips: Arc<AtomicU64>,
    /// How it reaches etcd, to tell what an error means ([`Store::describe`]).
    reach: Arc<access::Reach>,
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // An all-0xff prefix: everything to the end of the keyspace.
    vec![0]
}

/// Runs an etcd call again while it fails before reaching any member (a stopped member of a
/// cluster refuses the connection; the client then picks another). A call that may have reached
/// etcd is never repeated here: its caller decides.
async fn unsent_retried<T, F, Fut>(mut call: F) -> Result<T, etcd_client::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let mut delay = std::time::Duration::from_millis(20);
    for _ in 0..8 {
        match call().await {
            Err(e) if never_sent(&e) => {
                tracing::debug!(error = %e, "etcd member unreachable; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_millis(500));
            }
            other => return other,
        }
    }
    call().await
}

/// A connection that could not be made: the request never left.
fn never_sent(error: &etcd_client::Error) -> bool {
    let text = format!("{error:?}");
    text.contains("ConnectError") || text.contains("tcp connect error")
}

impl Store {
    pub async fn connect(endpoints: &[String]) -> Result<Store, StoreError> {
        Store::connect_with(endpoints, &EtcdAccess::default()).await
    }

    pub async fn connect_with(endpoints: &[String], access: &EtcdAccess) -> Result<Store, StoreError> {
        let client = Client::connect(endpoints, Some(access.connect_options())).await?;
        Ok(Store {
            kv: client.kv_client().max_decoding_message_size(MAX_ANSWER_BYTES),
            watch: client.watch_client().max_decoding_message_size(MAX_ANSWER_BYTES),
            client,
            round_trips: Arc::default(),
            reach: Arc::new(access::Reach::new(endpoints, access)),
        })
    }

    /// What `error`, met while trying to `what` (`read /jobs/`, `write /leaders/planner`),
    /// means in the operator's terms: the same causes as the start-up check names (a right the
    /// user lacks, a password etcd no longer takes, a certificate), else the error with its
    /// chain of causes. Not prefixed with the endpoints: a log line has its own fields.
    pub fn describe(&self, error: &(dyn std::error::Error + 'static), what: &str) -> String {
        let mut next = Some(error);
        while let Some(current) = next {
            if let Some(error) = current.downcast_ref::<etcd_client::Error>() {
                return access::cause(error, &self.reach, what);
            }
            if let Some(StoreError::WatchCanceled(reason)) = current.downcast_ref::<StoreError>()
                && let Some(refusal) = access::refusal(reason, &self.reach, what)
            {
                return refusal;
            }
            next = current.source();
        }
        error_log::with_sources(error)
    }

    /// Connects and reads `prefix` once (count only), as the user of `access`, within
    /// [`access::CHECK_TIMEOUT`]: the start-up check of every command that uses etcd. A failure
    /// names its cause in the operator's terms (a certificate the client does not trust, a
    /// client certificate missing, a password etcd rejects, a user without the right to read
    /// `prefix`, ...).
    pub async fn connect_checked(
        endpoints: &[String],
        access: &EtcdAccess,
        prefix: &str,
    ) -> Result<Store, AccessError> {
        access.check_files().map_err(|cause| AccessError::new(endpoints, cause))?;
        let attempt = async {
            let store = Store::connect_with(endpoints, access).await?;
            let options = GetOptions::new().with_prefix().with_count_only();
            store.count_round_trip("range");
            unsent_retried(|| async { store.kv.clone().get(prefix, Some(options.clone())).await }).await?;
            Ok::<_, StoreError>(store)
        };
        match tokio::time::timeout(access::CHECK_TIMEOUT, attempt).await {
            Ok(Ok(store)) => Ok(store),
            Ok(Err(StoreError::Etcd(error))) => {
                let reach = access::Reach::new(endpoints, access);
                Err(AccessError::new(endpoints, access::cause(&error, &reach, &format!("read {prefix}"))))
            }
            Ok(Err(other)) => Err(AccessError::new(endpoints, other.to_string())),
            Err(_) => Err(AccessError::new(
                endpoints,
                format!("no answer to a read of {prefix} within {} s", access::CHECK_TIMEOUT.as_secs()),
            )),
        }
    }

    /// How many requests this handle and its clones have sent through [`Store`]'s own calls:
    /// each get, page of a list, put, delete and transaction is one (watches, leases and
    /// elections are not counted). Benchmarks and tests count what a piece of work costs by it.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Counts a request of `kind` (`range`: a get or a list page, `put`, `delete`, `txn`) on this
    /// handle and in the process's `etcd_requests` metric (an operator's view of the load).
    fn count_round_trip(&self, kind: &'static str) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let labels = crate::telemetry::metrics::EtcdRequestLabels { kind: kind.to_owned() };
        crate::telemetry::metrics().etcd_requests.get_or_create(&labels).inc();
    }

    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// The watch service, accepting answers up to [`MAX_ANSWER_BYTES`].
    pub(crate) fn watch_client(&self) -> WatchClient {
        self.watch.clone()
    }

    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.count_round_trip("range");
        let response = unsent_retried(|| async { self.kv.clone().get(key, None).await }).await?;
        response.kvs().first().map(KeyValue::from_etcd).transpose()
    }

    /// Every key under `prefix` at one revision, fetched in pages; returns that revision.
    pub async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64), StoreError> {
        self.list_many(&[prefix.to_owned()]).await
    }

    /// Every key under each of `prefixes`, all at one revision; returns that revision. Listing
    /// only what a reader needs is much cheaper than listing a common parent: etcd 3.4 walks its
    /// index from each page's start to the range's end, so a page costs what remains of its range.
    pub async fn list_many(&self, prefixes: &[String]) -> Result<(Vec<KeyValue>, i64), StoreError> {
        let mut items = Vec::new();
        let revision = self.list_pages(prefixes, |page| items.extend(page)).await?;
        Ok((items, revision))
    }

    /// Like [`Store::list_many`], but hands each page to `page` as it arrives, for a reader that
    /// keeps less than the raw records: the whole list's bytes are never held at once.
    pub async fn list_pages(
        &self,
        prefixes: &[String],
        mut page: impl FnMut(Vec<KeyValue>),
    ) -> Result<i64, StoreError> {
        let mut revision = 0;
        for prefix in prefixes {
            revision = self.list_prefix(prefix, revision, &mut page).await?;
        }
        Ok(revision)
    }

    /// Hands the keys under `prefix` at `revision` (0: the current one) to `page`, a page at a
    /// time; returns the revision read. The next page is asked for before `page` gets this one,
    /// so that etcd reads it while the reader decodes: a list is as long as the slower of the two,
    /// not their sum.
    async fn list_prefix(
        &self,
        prefix: &str,
        mut revision: i64,
        page: &mut impl FnMut(Vec<KeyValue>),
    ) -> Result<i64, StoreError> {
        let end = prefix_end(prefix);
        let mut pending = self.get_page(prefix.as_bytes().to_vec(), end.clone(), revision);
        loop {
            let mut response = match pending.await {
                Ok(response) => response?,
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            };
            if revision == 0 {
                revision = response.header().map(|h| h.revision()).unwrap_or_default();
            }
            let next = match (response.more(), response.kvs().last()) {
                (true, Some(last)) => {
                    let mut start = last.key().to_vec();
                    start.push(0);
                    // Later pages read the revision of the first, so the list is one consistent cut.
                    Some(self.get_page(start, end.clone(), revision))
                }
                _ => None,
            };
            let items = response.take_kvs().into_iter().map(KeyValue::from_etcd_owned).collect::<Result<_, _>>()?;
            page(items);
            match next {
                Some(next) => pending = next,
                None => return Ok(revision),
            }
        }
    }

    /// Asks for one page of `start..end` at `revision` (0: the current one), as a task of its own.
    fn get_page(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        revision: i64,
    ) -> tokio::task::JoinHandle<Result<etcd_client::GetResponse, StoreError>> {
        self.count_round_trip("range");
        let client = self.kv.clone();
        let mut options = GetOptions::new().with_range(end).with_limit(PAGE_SIZE);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        tokio::spawn(async move {
            let response =
                unsent_retried(|| async { client.clone().get(start.clone(), Some(options.clone())).await }).await?;
            Ok(response)
        })
    }

    /// Puts one key; returns the revision it was written at.
    pub async fn put(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<i64, StoreError> {
        let value = value.into();
        self.count_round_trip("put");
        let response = unsent_retried(|| async { self.kv.clone().put(key, value.clone(), None).await }).await?;
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Deletes one key; returns the revision after the delete.
    pub async fn delete(&self, key: &str) -> Result<i64, StoreError> {
        self.count_round_trip("delete");
        let response = unsent_retried(|| async { self.kv.clone().delete(key, None).await }).await?;
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Runs a transaction; `Ok(None)` when its conditions did not hold, else the revision.
    pub async fn commit(&self, txn: Txn) -> Result<Option<i64>, StoreError> {
        let response = self.run(txn).await?;
        let revision = response.header().map(|h| h.revision()).unwrap_or_default();
        Ok(response.succeeded().then_some(revision))
    }

    /// Runs a transaction whose writes are nested transactions ([`Txn::nested`]): `Ok(None)`
    /// when its own conditions did not hold, else whether each write applied, in order (a
    /// nested transaction applies when its conditions held; any other write always does).
    pub async fn commit_nested(&self, txn: Txn) -> Result<Option<Vec<bool>>, StoreError> {
        let response = self.run(txn).await?;
        if !response.succeeded() {
            return Ok(None);
        }
        let applied = response
            .op_responses()
            .iter()
            .map(|op| match op {
                etcd_client::TxnOpResponse::Txn(nested) => nested.succeeded(),
                _ => true,
            })
            .collect();
        Ok(Some(applied))
    }

    /// Runs a transaction with reads ([`Txn::get`]): `Ok(None)` when its conditions did not
    /// hold, else the revision and what each read found, in the order of the reads.
    pub async fn commit_reading(&self, txn: Txn) -> Result<Option<(i64, Vec<Option<KeyValue>>)>, StoreError> {
        let response = self.run(txn).await?;
        if !response.succeeded() {
            return Ok(None);
        }
        let revision = response.header().map(|h| h.revision()).unwrap_or_default();
        let mut found = Vec::new();
        for op in response.op_responses() {
            if let etcd_client::TxnOpResponse::Get(read) = op {
                found.push(read.kvs().first().map(KeyValue::from_etcd).transpose()?);
            }
        }
        Ok(Some((revision, found)))
    }

    async fn run(&self, txn: Txn) -> Result<etcd_client::TxnResponse, StoreError> {
        let txn = txn.into_etcd();
        self.count_round_trip("txn");
        let began = std::time::Instant::now();
        let response = unsent_retried(|| async { self.kv.clone().txn(txn.clone()).await }).await?;
        crate::telemetry::metrics().etcd_txn_duration.observe(began.elapsed().as_secs_f64());
        Ok(response)
    }

    /// The current revision of the store. It reads the one key `/` (count only): any user the
    /// controller runs as may read it, since every key it uses is under `/`.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        self.count_round_trip("range");
        let response =
            unsent_retried(|| async { self.kv.clone().get("/", Some(GetOptions::new().with_count_only())).await })
                .await?;
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Compacts the history up to `revision` (tests use it to force a relist).
    pub async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        self.client.clone().compact(revision, Some(etcd_client::CompactionOptions::new().with_physical())).await?;
        Ok(())
    }
}

//! A watch that never misses a change: list, then watch from the next revision; after a dropped
//! connection resume from the last revision seen; when that revision was compacted away, list
//! again. Consumers see a full list ([`WatchEvent::Listed`]) at start and after every relist, so
//! start-up and recovery take the same path as any other event. What a list is delivered as is
//! the consumer's choice ([`Listing`]): the raw records, or what it makes of them page by page.

use super::{ErrorLog, KeyValue, Store, StoreError, retried};
use etcd_client::{EventType, WatchOptions};
use std::time::Duration;
use tokio::sync::mpsc;

/// A watch event; `L` is what a full list is delivered as ([`Listing::Listed`]).
#[derive(Debug, Clone)]
pub enum WatchEvent<L = Vec<KeyValue>> {
    /// Everything under the prefix at `revision`; replaces whatever the consumer knew.
    Listed {
        items: L,
        revision: i64,
    },
    Put(KeyValue),
    Deleted {
        key: String,
        revision: i64,
    },
    /// Every change up to `revision` has been delivered. One etcd transaction's changes all come
    /// before the same `Synced`, so a consumer that acts on `Synced` never sees half of one.
    Synced {
        revision: i64,
    },
}

impl<L> WatchEvent<L> {
    /// The revision this event brings the consumer to.
    pub fn revision(&self) -> i64 {
        match self {
            WatchEvent::Listed { revision, .. }
            | WatchEvent::Deleted { revision, .. }
            | WatchEvent::Synced { revision } => *revision,
            WatchEvent::Put(kv) => kv.mod_revision,
        }
    }
}

/// What a watch makes of a full list, fed page by page as etcd returns them (a fresh one for each
/// list). A consumer that keeps less than the raw records (the planner decodes them into its
/// view) thus never holds the whole list's bytes at once: 100,000 resources list 300,000 keys.
pub trait Listing: Send + 'static {
    /// What [`WatchEvent::Listed`] brings.
    type Listed: Send + 'static;
    fn page(&mut self, items: Vec<KeyValue>);
    fn finish(self) -> Self::Listed;
}

/// The raw records, whole.
impl Listing for Vec<KeyValue> {
    type Listed = Vec<KeyValue>;

    fn page(&mut self, items: Vec<KeyValue>) {
        self.extend(items);
    }

    fn finish(self) -> Vec<KeyValue> {
        self
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Watches every key under `prefix`; the task ends when the receiver is dropped.
pub fn watch_prefix(store: Store, prefix: String) -> mpsc::Receiver<WatchEvent> {
    watch_listing(store, prefix.clone(), vec![prefix], Vec::new)
}

/// Watches every key under `prefix`, but lists only the keys under `listed` (parts of it): for a
/// reader that ignores the rest, which then arrives only as it changes. Each list is fed to a
/// fresh `listing()`.
pub fn watch_listing<F: Listing>(
    store: Store,
    prefix: String,
    listed: Vec<String>,
    listing: impl Fn() -> F + Send + 'static,
) -> mpsc::Receiver<WatchEvent<F::Listed>> {
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        let mut errors = ErrorLog::default();
        let reading = format!("read {prefix}");
        // `None`: the next step is a full list.
        let mut revision: Option<i64> = None;
        loop {
            if sender.is_closed() {
                return;
            }
            let from = match revision {
                Some(r) => r,
                None => match list(&store, &listed, listing()).await {
                    Ok((items, listed_at)) => {
                        errors.succeeded(&prefix);
                        if sender.send(WatchEvent::Listed { items, revision: listed_at }).await.is_err() {
                            return;
                        }
                        listed_at
                    }
                    Err(e) => {
                        retried!(errors, &store, &e, &reading, %prefix, "list failed; retrying");
                        backoff.wait().await;
                        continue;
                    }
                },
            };
            match follow(&store, &prefix, from, &sender, &mut backoff, &mut errors).await {
                Ok(Followed::ReceiverGone) => return,
                Ok(Followed::Compacted) => {
                    tracing::warn!(%prefix, revision = from, "watch revision compacted; listing again");
                    revision = None;
                }
                Ok(Followed::Ended(last)) => {
                    // A server that keeps closing streams must not make us spin.
                    revision = Some(last);
                    backoff.wait().await;
                }
                Err((last, e)) => {
                    retried!(errors, &store, &e, &reading, %prefix, "watch interrupted; resuming");
                    revision = Some(last);
                    backoff.wait().await;
                }
            }
        }
    });
    receiver
}

/// One full list, fed to `listing`.
async fn list<F: Listing>(store: &Store, prefixes: &[String], mut listing: F) -> Result<(F::Listed, i64), StoreError> {
    let revision = store.list_pages(prefixes, |page| listing.page(page)).await?;
    Ok((listing.finish(), revision))
}

enum Followed {
    ReceiverGone,
    Compacted,
    /// The stream ended cleanly after this revision.
    Ended(i64),
}

/// Streams events after revision `from` until the stream breaks.
async fn follow<L>(
    store: &Store,
    prefix: &str,
    from: i64,
    sender: &mpsc::Sender<WatchEvent<L>>,
    backoff: &mut Backoff,
    errors: &mut ErrorLog,
) -> Result<Followed, (i64, StoreError)> {
    let mut last = from;
    let options = WatchOptions::new().with_prefix().with_start_revision(from + 1).with_progress_notify();
    let mut stream = store.watch_client().watch(prefix, Some(options)).await.map_err(|e| (last, e.into()))?;
    loop {
        // A consumer that went away ends the watch now, not at the next message (or at the
        // error an etcd stopping after it would bring).
        let message = tokio::select! {
            biased;
            _ = sender.closed() => return Ok(Followed::ReceiverGone),
            message = stream.message() => message,
        };
        let Some(response) = message.map_err(|e| (last, e.into()))? else {
            return Ok(Followed::Ended(last));
        };
        if response.compact_revision() > 0 {
            return Ok(Followed::Compacted);
        }
        if response.canceled() {
            return Err((last, StoreError::WatchCanceled(response.cancel_reason().to_owned())));
        }
        backoff.reset();
        errors.succeeded(prefix);
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let kv = KeyValue::from_etcd(kv).map_err(|e| (last, e))?;
            last = kv.mod_revision;
            let event = match event.event_type() {
                EventType::Put => WatchEvent::Put(kv),
                EventType::Delete => WatchEvent::Deleted { key: kv.key, revision: kv.mod_revision },
            };
            if sender.send(event).await.is_err() {
                return Ok(Followed::ReceiverGone);
            }
        }
        if !response.events().is_empty() && sender.send(WatchEvent::Synced { revision: last }).await.is_err() {
            return Ok(Followed::ReceiverGone);
        }
    }
}

/// Exponential backoff between retries, capped.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let delay = Duration::from_millis(100u64.saturating_mul(1 << self.attempt.min(10)));
        self.attempt = self.attempt.saturating_add(1);
        delay.min(MAX_BACKOFF)
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

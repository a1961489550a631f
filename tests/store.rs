//! The etcd access layer against a real `etcd` process: each test starts its own [`LocalEtcd`]
//! on free loopback ports and uses its own key prefix.

use futures::future::join_all;
use heat_reconciler::local::LocalEtcd;
use heat_reconciler::store::{KeyValue, Lease, Store, Txn, WatchEvent, campaign, watch_prefix};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Awaits `future`, failing the test if it takes longer than `limit`.
async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no result within {limit:?}"),
    }
}

async fn start() -> (LocalEtcd, Store) {
    let etcd = within(Duration::from_secs(30), "starting etcd", LocalEtcd::start()).await.expect("etcd starts");
    let store = etcd.connect().await.expect("connects to etcd");
    (etcd, store)
}

async fn value_of(store: &Store, key: &str) -> Option<String> {
    store.get(key).await.expect("get").map(|kv| String::from_utf8(kv.value).expect("UTF-8 value"))
}

async fn next_event(events: &mut mpsc::Receiver<WatchEvent>, limit: Duration) -> WatchEvent {
    within(limit, "waiting for a watch event", events.recv()).await.expect("watcher still running")
}

#[tokio::test]
async fn list_is_paginated_and_consistent() {
    const KEYS: usize = 2_500;
    let (_etcd, store) = start().await;
    let key = |i: usize| format!("/t/{i:05}");

    // Neighbours of the prefix that must not be listed: the prefix without its slash, a key just
    // before it ('.' < '/'), the first key after it ("/t0" is where "/t/" ends), and another tree.
    for outside in ["/t", "/t.x", "/t0", "/u/x", "/"] {
        store.put(outside, "outside").await.expect("put outside");
    }

    // 2,000 keys in transactions of 100 puts (etcd allows 128 operations per transaction), all
    // committed concurrently; the other 500 as single puts, 100 at a time.
    let txns = (0..KEYS - 500).step_by(100).map(|first| {
        let txn = (first..first + 100).fold(Txn::new(), |txn, i| txn.put(&key(i), format!("v{i}")));
        store.commit(txn)
    });
    let mut last_put = 0;
    for revision in join_all(txns).await {
        last_put = last_put.max(revision.expect("txn commits").expect("unconditional txn succeeds"));
    }
    for chunk in (KEYS - 500..KEYS).collect::<Vec<_>>().chunks(100) {
        let puts = chunk.iter().map(|&i| {
            let store = store.clone();
            async move { store.put(&key(i), format!("v{i}")).await }
        });
        for revision in join_all(puts).await {
            last_put = last_put.max(revision.expect("put"));
        }
    }

    let (items, revision) = store.list("/t/").await.expect("list");
    assert!(revision >= last_put, "listed at {revision}, before the last put at {last_put}");
    assert_eq!(items.len(), KEYS, "list returns every key under the prefix and nothing else");
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item.key, key(i), "keys come back once each, in key order");
        assert_eq!(item.value, format!("v{i}").into_bytes(), "value of {}", item.key);
        assert!(item.mod_revision <= revision, "{} written after the listed revision", item.key);
    }

    // A list racing writes is still one cut: later pages read the revision of the first, so it
    // holds exactly the keys written at or before the revision it returns. The racing keys sort
    // last ('~' > '0'), i.e. into the last page, which is fetched after the first.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut written = Vec::new();
            for n in 0..200 {
                let key = format!("/t/~{n:03}");
                written.push((key.clone(), store.put(&key, "late").await.expect("racing put")));
            }
            written
        })
    };
    let mut cuts = Vec::new();
    while !writer.is_finished() {
        cuts.push(store.list("/t/").await.expect("list while writing"));
    }
    let written = writer.await.expect("writer task");
    cuts.push(store.list("/t/").await.expect("list after writing"));
    assert!(cuts.len() >= 2, "at least one list ran while writing");
    for (items, revision) in &cuts {
        let late: Vec<&str> = items.iter().filter(|kv| kv.key.starts_with("/t/~")).map(|kv| kv.key.as_str()).collect();
        let expected: Vec<&str> = written.iter().filter(|(_, r)| r <= revision).map(|(k, _)| k.as_str()).collect();
        assert_eq!(late, expected, "the list at revision {revision} is not one consistent cut");
        assert_eq!(items.len(), KEYS + expected.len());
        assert!(items.windows(2).all(|w| w[0].key < w[1].key), "keys in order without repeats");
        assert!(items.iter().all(|kv| kv.mod_revision <= *revision));
    }
    let (items, _) = cuts.last().expect("a final list");
    assert_eq!(items.len(), KEYS + 200);
}

#[tokio::test]
async fn txn_conditions() {
    let (_etcd, store) = start().await;

    // if_absent: the first claim wins, the second finds the key and writes nothing.
    let claim = |value: &str| Txn::new().if_absent("/x/claim").put("/x/claim", value.to_owned());
    let first = store.commit(claim("one")).await.expect("commit").expect("if_absent holds for a new key");
    assert_eq!(store.commit(claim("two")).await.expect("commit"), None, "if_absent fails for an existing key");
    assert_eq!(value_of(&store, "/x/claim").await.as_deref(), Some("one"));
    let kv = store.get("/x/claim").await.expect("get").expect("claimed");
    assert_eq!(kv.mod_revision, first, "commit returns the revision it wrote at");

    // if_present
    assert_eq!(store.commit(Txn::new().if_present("/x/none").put("/x/p", "p")).await.expect("commit"), None);
    assert!(store.commit(Txn::new().if_present("/x/claim").put("/x/p", "p")).await.expect("commit").is_some());

    // if_value
    let wrong = Txn::new().if_value("/x/claim", "two").put("/x/claim", "three");
    assert_eq!(store.commit(wrong).await.expect("commit"), None, "if_value fails on another value");
    let right = Txn::new().if_value("/x/claim", "one").put("/x/claim", "three");
    assert!(store.commit(right).await.expect("commit").is_some(), "if_value holds on the value");
    assert_eq!(value_of(&store, "/x/claim").await.as_deref(), Some("three"));
    let absent = Txn::new().if_value("/x/none", "").put("/x/q", "q");
    assert_eq!(store.commit(absent).await.expect("commit"), None, "if_value fails on an absent key");

    // if_mod_revision: compare-and-swap on the revision last read; 0 means absent.
    let seen = store.get("/x/claim").await.expect("get").expect("present").mod_revision;
    let stale = Txn::new().if_mod_revision("/x/claim", seen - 1).put("/x/claim", "stale");
    assert_eq!(store.commit(stale).await.expect("commit"), None, "an older mod revision fails");
    let cas = Txn::new().if_mod_revision("/x/claim", seen).put("/x/claim", "four");
    let written = store.commit(cas).await.expect("commit").expect("the current mod revision holds");
    let again = Txn::new().if_mod_revision("/x/claim", seen).put("/x/claim", "five");
    assert_eq!(store.commit(again).await.expect("commit"), None, "the same compare-and-swap cannot win twice");
    assert_eq!(store.get("/x/claim").await.expect("get").expect("present").mod_revision, written);
    assert!(store.commit(Txn::new().if_mod_revision("/x/new", 0).put("/x/new", "n")).await.expect("commit").is_some());
    assert_eq!(store.commit(Txn::new().if_mod_revision("/x/new", 0).put("/x/new", "m")).await.expect("commit"), None);

    // All or nothing: several puts and deletes behind two conditions, one of which fails.
    for key in ["/x/a", "/x/b", "/x/c"] {
        store.put(key, "old").await.expect("put");
    }
    let before = store.list("/x/").await.expect("list").0;
    let batch = |guard: &str| {
        Txn::new()
            .if_present("/x/a")
            .if_value("/x/claim", guard.to_owned())
            .put("/x/a", "new")
            .put("/x/d", "new")
            .delete("/x/b")
            .delete("/x/c")
            .put("/x/e", "new")
    };
    assert_eq!(batch("not-four").summary(), "put /x/a, put /x/d, delete /x/b, delete /x/c, put /x/e");
    assert_eq!(store.commit(batch("not-four")).await.expect("commit"), None);
    assert_eq!(store.list("/x/").await.expect("list").0, before, "a failed transaction writes nothing");

    let revision = store.commit(batch("four")).await.expect("commit").expect("both conditions hold");
    let after: BTreeMap<String, KeyValue> =
        store.list("/x/").await.expect("list").0.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
    for key in ["/x/a", "/x/d", "/x/e"] {
        let kv = &after[key];
        assert_eq!(kv.value, b"new", "{key} written");
        assert_eq!(kv.mod_revision, revision, "{key} written at the transaction's one revision");
    }
    let keys: Vec<&str> = after.keys().map(String::as_str).collect();
    assert_eq!(keys, ["/x/a", "/x/claim", "/x/d", "/x/e", "/x/new", "/x/p"], "/x/b and /x/c deleted");
    assert_eq!(store.revision().await.expect("revision"), revision, "the whole transaction is one revision");
}

#[tokio::test]
async fn nested_transactions_apply_by_their_own_conditions() {
    let (_etcd, store) = start().await;
    store.put("/n/leader", "me").await.expect("put");
    store.put("/n/present", "x").await.expect("put");
    let nested = |leader: &str| {
        Txn::new()
            .if_value("/n/leader", leader.to_owned())
            .nested(Txn::new().if_present("/n/present").put("/n/a", "a"))
            .nested(Txn::new().if_present("/n/absent").put("/n/b", "b"))
            .put("/n/c", "c")
    };
    assert_eq!(nested("other").summary(), "txn(put /n/a), txn(put /n/b), put /n/c");
    assert_eq!(store.commit_nested(nested("other")).await.expect("commit"), None, "the outer condition fails");
    assert_eq!(value_of(&store, "/n/a").await, None);

    let applied = store.commit_nested(nested("me")).await.expect("commit").expect("the outer condition holds");
    assert_eq!(applied, [true, false, true], "each nested one by its own condition; a plain put always");
    assert_eq!(value_of(&store, "/n/a").await.as_deref(), Some("a"));
    assert_eq!(value_of(&store, "/n/b").await, None);
    assert_eq!(value_of(&store, "/n/c").await.as_deref(), Some("c"));
}

#[tokio::test]
async fn watch_sees_list_then_events() {
    let (_etcd, store) = start().await;
    store.put("/v/a", "1").await.expect("put");
    store.put("/v/b", "2").await.expect("put");
    store.put("/vv", "outside").await.expect("put");
    let before = store.revision().await.expect("revision");

    let mut events = watch_prefix(store.clone(), "/v/".into());
    let WatchEvent::Listed { items, revision } = next_event(&mut events, Duration::from_secs(10)).await else {
        panic!("the first event is a list");
    };
    assert!(revision >= before);
    let listed: Vec<(&str, &[u8])> = items.iter().map(|kv| (kv.key.as_str(), kv.value.as_slice())).collect();
    assert_eq!(listed, [("/v/a", &b"1"[..]), ("/v/b", &b"2"[..])]);

    let put_c = store.put("/v/c", "3").await.expect("put");
    store.put("/vv", "still outside").await.expect("put");
    let put_a = store.put("/v/a", "1b").await.expect("put");
    let del_b = store.delete("/v/b").await.expect("delete");
    let txn = store.commit(Txn::new().put("/v/d", "4").delete("/v/c")).await.expect("commit").expect("applies");

    // Changes in order at increasing revisions; `Synced` marks the revision delivered so far and
    // never falls between the changes of one transaction.
    let mut seen = Vec::new();
    let (mut last, mut following, mut synced) = (revision, false, revision);
    while synced < txn {
        let event = next_event(&mut events, Duration::from_secs(10)).await;
        let at = event.revision();
        match event {
            WatchEvent::Synced { revision } => {
                assert!(following && revision == last, "synced at {revision}, the last change was at {last}");
                synced = revision;
                following = false;
                continue;
            }
            WatchEvent::Put(kv) => {
                seen.push(format!("put {} {} @{}", kv.key, String::from_utf8_lossy(&kv.value), kv.mod_revision))
            }
            WatchEvent::Deleted { key, revision } => seen.push(format!("delete {key} @{revision}")),
            WatchEvent::Listed { .. } => panic!("no relist without a reason"),
        }
        assert!(at > last || following && at == last, "change at {at} after {last}");
        (last, following) = (at, true);
    }
    assert_eq!(
        seen,
        [
            format!("put /v/c 3 @{put_c}"),
            format!("put /v/a 1b @{put_a}"),
            format!("delete /v/b @{del_b}"),
            format!("put /v/d 4 @{txn}"),
            format!("delete /v/c @{txn}"),
        ]
    );
    assert!(tokio::time::timeout(Duration::from_millis(300), events.recv()).await.is_err(), "nothing else arrives");
}

/// What a consumer knows, rebuilt from watch events.
#[derive(Default)]
struct Mirror {
    state: BTreeMap<String, KeyValue>,
    revision: i64,
    lists: usize,
    events: usize,
    /// Whether the last thing applied was an event (the next may share its transaction's revision).
    following: bool,
}

impl Mirror {
    fn apply(&mut self, event: WatchEvent) {
        let revision = event.revision();
        let in_order = revision > self.revision || self.following && revision == self.revision;
        self.following = matches!(event, WatchEvent::Put(_) | WatchEvent::Deleted { .. });
        match event {
            WatchEvent::Listed { items, revision } => {
                assert!(revision >= self.revision, "a relist at {revision} goes back from {}", self.revision);
                self.state = items.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
                self.lists += 1;
            }
            WatchEvent::Put(kv) => {
                assert!(in_order, "put at {revision} after {}", self.revision);
                self.state.insert(kv.key.clone(), kv);
                self.events += 1;
            }
            WatchEvent::Deleted { key, .. } => {
                assert!(in_order, "delete at {revision} after {}", self.revision);
                assert!(self.state.remove(&key).is_some(), "deleted {key}, which the consumer never saw");
                self.events += 1;
            }
            WatchEvent::Synced { revision } => {
                // Everything up to `revision` is delivered: later changes come strictly after it.
                assert!(revision >= self.revision, "synced at {revision} after a change at {}", self.revision);
            }
        }
        self.revision = revision;
    }

    /// Applies events until the mirror equals `expected`, or panics after `limit`.
    async fn catch_up(&mut self, events: &mut mpsc::Receiver<WatchEvent>, expected: &[KeyValue], limit: Duration) {
        let expected: BTreeMap<String, KeyValue> = expected.iter().map(|kv| (kv.key.clone(), kv.clone())).collect();
        let deadline = tokio::time::Instant::now() + limit;
        while self.state != expected {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(event)) => self.apply(event),
                Ok(None) => panic!("the watcher stopped"),
                Err(_) => panic!(
                    "the consumer's map did not converge within {limit:?}: missing {:?}, extra or stale {:?}",
                    expected.iter().filter(|(k, v)| self.state.get(*k) != Some(v)).map(|(k, _)| k).collect::<Vec<_>>(),
                    self.state.iter().filter(|(k, v)| expected.get(*k) != Some(v)).map(|(k, _)| k).collect::<Vec<_>>(),
                ),
            }
        }
    }
}

#[tokio::test]
async fn watch_relists_after_compaction() {
    let (mut etcd, store) = start().await;
    for i in 0..20 {
        store.put(&format!("/w/k{i:02}"), format!("v{i}")).await.expect("put");
    }
    let mut events = watch_prefix(store.clone(), "/w/".into());
    let mut mirror = Mirror::default();
    mirror.apply(next_event(&mut events, Duration::from_secs(10)).await);
    assert_eq!((mirror.lists, mirror.state.len()), (1, 20), "the first event lists the 20 keys");

    // Connected: a compaction does not disturb a watch that is already past it.
    for i in 0..10 {
        store.put(&format!("/w/k{i:02}"), format!("live{i}")).await.expect("put");
    }
    store.delete("/w/k19").await.expect("delete");
    // Seeing these changes shows the watch is established (past the revision compacted next).
    let (expected, _) = store.list("/w/").await.expect("list");
    mirror.catch_up(&mut events, &expected, Duration::from_secs(30)).await;
    store.compact(store.revision().await.expect("revision")).await.expect("compact");
    store.put("/w/after-compaction", "x").await.expect("put");
    let (expected, _) = store.list("/w/").await.expect("list");
    mirror.catch_up(&mut events, &expected, Duration::from_secs(30)).await;
    assert_eq!(mirror.lists, 1, "a connected watch follows a compaction without relisting");

    // Across an etcd crash: kill it, restart it on the same ports and data dir, and at once write
    // and compact, usually before the watcher (backing off) is back. Round 0 has a consumer that
    // keeps up: the watcher either resumes in time to see every change as an event, or finds its
    // revision compacted and lists again; either way the consumer's map must end up right. In
    // round 1 the consumer has stalled with the channel full, so the watcher is stuck holding
    // events from before the crash and can only resume after the compaction: it must list again.
    for round in 0..2 {
        let stalled = round == 1;
        if stalled {
            let mut txns = 0;
            while events.len() < events.max_capacity() {
                assert!(txns < 30, "the watcher never filled its channel");
                let txn = (0..100).fold(Txn::new(), |txn, i| txn.put(&format!("/w/bulk{txns:02}-{i:02}"), "b"));
                store.commit(txn).await.expect("commit").expect("applies");
                txns += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        etcd.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let down = Instant::now();
        within(Duration::from_secs(30), "restarting etcd", etcd.restart()).await.expect("etcd restarts");
        let restart = down.elapsed();

        let writes = Instant::now();
        let survived = store.list("/w/").await.expect("list through the old client after a restart").0;
        if !stalled {
            let known: Vec<KeyValue> = mirror.state.values().cloned().collect();
            assert_eq!(survived, known, "the data survives a restart");
        }
        for i in 0..50 {
            store.put(&format!("/w/r{round}-{i:02}"), "new").await.expect("put after restart");
        }
        for i in 10..15 {
            store.put(&format!("/w/k{i:02}"), format!("round{round}")).await.expect("put after restart");
        }
        for key in [format!("/w/k{:02}", 15 + round * 2), format!("/w/k{:02}", 16 + round * 2)] {
            assert!(survived.iter().any(|kv| kv.key == key));
            store.delete(&key).await.expect("delete after restart");
        }
        store.compact(store.revision().await.expect("revision")).await.expect("compact after restart");
        let writes = writes.elapsed();

        let (expected, _) = store.list("/w/").await.expect("list");
        let lists_before = mirror.lists;
        let converge = Instant::now();
        mirror.catch_up(&mut events, &expected, Duration::from_secs(30)).await;
        let relisted = mirror.lists > lists_before;
        eprintln!(
            "round {round} ({}): restart took {restart:?}, writes and compaction {writes:?}, converged in {:?} {}",
            if stalled { "stalled consumer" } else { "live consumer" },
            converge.elapsed(),
            if relisted { "by listing again" } else { "from events" }
        );
        if stalled {
            assert!(relisted, "a watcher resuming from a compacted revision lists again");
        }
    }

    // The watch is live again afterwards.
    let revision = store.put("/w/final", "f").await.expect("put");
    let (expected, _) = store.list("/w/").await.expect("list");
    let lists = mirror.lists;
    mirror.catch_up(&mut events, &expected, Duration::from_secs(10)).await;
    assert_eq!((mirror.revision, mirror.lists), (revision, lists), "the last put arrives as an event");
}

#[tokio::test]
async fn a_restart_waits_for_a_port_held_for_a_moment() {
    let (mut etcd, store) = start().await;
    store.put("/r/kept", "x").await.expect("put");
    etcd.stop();
    // What a free-port search elsewhere does: binds the stopped etcd's client port, then lets go.
    let address = etcd.client_url.trim_start_matches("http://").to_owned();
    let held = std::net::TcpListener::bind(&address).expect("the stopped etcd's port is free");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(held);
    });
    within(Duration::from_secs(30), "restarting etcd", etcd.restart())
        .await
        .expect("etcd restarts once the port is free");
    release.join().unwrap();
    assert_eq!(value_of(&store, "/r/kept").await.as_deref(), Some("x"), "the same etcd, on the same port");
}

#[tokio::test]
async fn lease_keys_vanish_when_revoked() {
    let (_etcd, store) = start().await;
    let lease = Lease::grant(&store, Duration::from_secs(2)).await.expect("grant");
    let written = store.commit(Txn::new().put_leased("/l/held", "x", lease.id())).await.expect("commit");
    assert!(written.is_some());
    store.put("/l/plain", "y").await.expect("put");
    assert_eq!(store.get("/l/held").await.expect("get").expect("present").lease, lease.id());

    // Kept alive past its TTL.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!lease.is_lost());
    assert_eq!(value_of(&store, "/l/held").await.as_deref(), Some("x"), "a kept-alive lease outlives its TTL");

    within(Duration::from_secs(10), "revoking", lease.revoke()).await;
    assert_eq!(store.get("/l/held").await.expect("get"), None, "revoking deletes the leased key at once");
    assert_eq!(value_of(&store, "/l/plain").await.as_deref(), Some("y"), "keys without the lease stay");
}

#[tokio::test]
async fn election_fails_over() {
    let (etcd, store_a) = start().await;
    let store_b = etcd.connect().await.expect("second client");
    let key = "/e1/leader";
    let ttl = Duration::from_secs(10);

    let a = within(Duration::from_secs(10), "A campaigns", campaign(&store_a, key, "A-id", ttl)).await.expect("A wins");
    assert_eq!(value_of(&store_a, key).await.as_deref(), Some("A-id"));
    assert_eq!(store_a.get(key).await.expect("get").expect("present").lease, a.lease.id());

    let b = tokio::spawn(async move { campaign(&store_b, key, "B-id", ttl).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!b.is_finished(), "B stands by while A leads");
    assert!(store_a.commit(a.guard(Txn::new().put("/e1/data", "from-A"))).await.expect("commit").is_some());

    let resigned = Instant::now();
    within(Duration::from_secs(5), "A resigns", a.resign()).await;
    let b = within(Duration::from_secs(5), "B takes over", b).await.expect("B's task").expect("B wins");
    eprintln!("B led {:?} after A resigned", resigned.elapsed());
    assert_eq!((b.key.as_str(), b.id.as_str()), (key, "B-id"));
    assert_eq!(value_of(&store_a, key).await.as_deref(), Some("B-id"));
    assert_eq!(store_a.get(key).await.expect("get").expect("present").lease, b.lease.id());

    let by_b = store_a.commit(b.guard(Txn::new().put("/e1/data", "from-B"))).await.expect("commit");
    assert!(by_b.is_some(), "the leader's guarded write commits");
    let stale = Txn::new().if_value(key, "A-id").put("/e1/data", "from-A-again");
    assert_eq!(store_a.commit(stale).await.expect("commit"), None, "a write guarded by the old leader does not");
    assert_eq!(value_of(&store_a, "/e1/data").await.as_deref(), Some("from-B"));
}

#[tokio::test]
async fn election_fails_over_on_lease_expiry() {
    let (etcd, store_a) = start().await;
    let store_b = etcd.connect().await.expect("second client");
    let key = "/e2/leader";
    let ttl = Duration::from_secs(2);

    let a = within(Duration::from_secs(10), "A campaigns", campaign(&store_a, key, "A-id", ttl)).await.expect("A wins");
    let b = tokio::spawn(async move { campaign(&store_b, key, "B-id", ttl).await });

    // A's keep-alive holds the key well past the TTL.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!b.is_finished(), "B stands by while A's lease is kept alive");
    assert!(!a.lease.is_lost());
    assert_eq!(value_of(&store_a, key).await.as_deref(), Some("A-id"));

    // A stops refreshing without resigning (a hung or partitioned leader): its lease expires.
    let dropped = Instant::now();
    drop(a);
    let b = within(2 * ttl + Duration::from_millis(1500), "B takes over after A's lease expires", b)
        .await
        .expect("B's task")
        .expect("B wins");
    let took = dropped.elapsed();
    eprintln!("B led {took:?} after A stopped refreshing");
    assert!(took >= Duration::from_secs(1), "B took over after {took:?}, before A's lease could expire");
    assert_eq!(value_of(&store_a, key).await.as_deref(), Some("B-id"));
    assert!(store_a.commit(b.guard(Txn::new().put("/e2/data", "from-B"))).await.expect("commit").is_some());
    assert_eq!(store_a.commit(Txn::new().if_value(key, "A-id").put("/e2/data", "A")).await.expect("commit"), None);
}

#[tokio::test]
async fn election_standby_survives_etcd_restart() {
    let (mut etcd, store_a) = start().await;
    let store_b = etcd.connect().await.expect("second client");
    let key = "/e3/leader";
    let ttl = Duration::from_secs(5);

    let a = within(Duration::from_secs(10), "A campaigns", campaign(&store_a, key, "A-id", ttl)).await.expect("A wins");
    let b = tokio::spawn(async move { campaign(&store_b, key, "B-id", ttl).await });
    tokio::time::sleep(Duration::from_secs(1)).await;

    // etcd crashes under the standby's watch and comes back; the standby keeps standing by.
    etcd.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!b.is_finished(), "B's campaign does not give up while etcd is down");
    within(Duration::from_secs(30), "restarting etcd", etcd.restart()).await.expect("etcd restarts");
    assert_eq!(value_of(&store_a, key).await.as_deref(), Some("A-id"), "A's claim survives the restart");
    assert!(!b.is_finished(), "B stands by while A leads");

    within(Duration::from_secs(10), "A resigns", a.resign()).await;
    let b = within(Duration::from_secs(10), "B takes over", b).await.expect("B's task").expect("B wins");
    assert_eq!(value_of(&store_a, key).await.as_deref(), Some("B-id"));
    assert!(store_a.commit(b.guard(Txn::new().put("/e3/data", "from-B"))).await.expect("commit").is_some());
}

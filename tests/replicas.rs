//! Three `heat-reconciler run` processes against one etcd and one Heat: every job runs exactly
//! once, and when the leading planner is killed another leads as soon as etcd expires its lease.

mod support;

use heat_reconciler::store::{WatchEvent, watch_prefix};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

struct Replica {
    id: String,
    child: Spawned,
    log: PathBuf,
}

fn start_replica(id: &str, etcd: &str, heat: &str, dir: &std::path::Path) -> Replica {
    let log = dir.join(format!("{id}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
        .args(["run", "--etcd-endpoints", etcd, "--heat-url", heat, "--leader-ttl", "3", "--id", id])
        .env("RUST_LOG", "heat_reconciler=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("replica starts");
    Replica { id: id.to_owned(), child: Spawned(child), log }
}

/// How many times any replica started a Heat call for each stack, by action word.
fn heat_calls(replicas: &[Replica]) -> HashMap<(String, String), usize> {
    let mut calls = HashMap::new();
    for replica in replicas {
        let text = std::fs::read_to_string(&replica.log).unwrap_or_default();
        for line in text.lines() {
            for word in ["CREATE STARTED", "MODIFY STARTED", "DELETE STARTED"] {
                if let Some(rest) = line.split(word).nth(1)
                    && let Some(stack) = rest.split("stack=").nth(1)
                {
                    *calls.entry((word.to_owned(), stack.trim().to_owned())).or_default() += 1;
                }
            }
        }
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_every_job_once_and_survive_the_leader() {
    let mut h = Harness::without_planner().await;
    put_template(&h.store, "network", network_mappings(), NETWORK).await;
    let dir = std::env::temp_dir().join(unique("replicas"));
    std::fs::create_dir_all(&dir).unwrap();
    let heat = heat_url();
    let mut replicas: Vec<Replica> =
        ["r1", "r2", "r3"].iter().map(|id| start_replica(id, &h.etcd.client_url, &heat, &dir)).collect();

    let ids: Vec<String> = (0..24).map(|_| unique("net")).collect();
    for id in &ids {
        h.config("networks", json!({"id": id, "name": format!("{id}-v1"), "tenant_id": TENANT}), 1, false).await;
    }
    for id in &ids {
        eventually(120, || async {
            h.state("networks", id).await.filter(|s| s.version == 1 && s.state.worker_state == "CREATE_COMPLETED")
        })
        .await;
    }

    let leader = String::from_utf8(h.store.get("/job_manager_id").await.unwrap().expect("a leader").value).unwrap();
    let position = replicas.iter().position(|r| r.id == leader).expect("the leader is one of ours");
    let mut dead = replicas.remove(position);
    // Watched from before the kill, so the two steps of the failover are timed apart: etcd
    // expiring the dead leader's lease (etcd's doing), then a standby claiming the key (ours).
    let mut events = watch_prefix(h.store.clone(), "/job_manager_id".into());
    while !matches!(events.recv().await.expect("the watch goes on"), WatchEvent::Listed { .. }) {}
    dead.child.kill().unwrap();
    let _ = dead.child.wait();
    let killed = Instant::now();
    let (expired, successor, claimed) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut expired = None;
        loop {
            match events.recv().await.expect("the watch goes on") {
                WatchEvent::Deleted { .. } => expired = Some(Instant::now()),
                WatchEvent::Put(kv) => {
                    if let Some(at) = expired {
                        break (at, String::from_utf8(kv.value).unwrap(), Instant::now());
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a standby leads within 30 s of the kill");
    let (expiry, handover) = (expired - killed, claimed - expired);
    println!("leader {leader} killed; its lease expired after {expiry:?}; {successor} led {handover:?} later");
    assert_ne!(successor, leader);
    // etcd expires the lease at most the TTL (3 s) after the leader's last refresh and revokes it
    // on its next 500 ms tick; the slack is for a loaded machine, where etcd's tick runs late.
    assert!(expiry < Duration::from_secs(3 + 5), "the lease expired {expiry:?} after the kill");
    // A standby watches the key and claims it as soon as it goes (DESIGN.md, Recovery): two etcd
    // round trips, a lease and a transaction.
    assert!(handover < Duration::from_secs(2), "a standby claimed the key {handover:?} after it went");

    for id in &ids[..12] {
        h.config("networks", json!({"id": id, "name": format!("{id}-v2"), "tenant_id": TENANT}), 2, false).await;
    }
    for id in &ids[..12] {
        eventually(120, || async {
            h.state("networks", id).await.filter(|s| s.version == 2 && s.state.worker_state == "MODIFY_COMPLETED")
        })
        .await;
    }
    replicas.push(dead);
    let calls = heat_calls(&replicas);
    for id in &ids {
        let stack = format!("network_{id}");
        assert_eq!(calls.get(&("CREATE STARTED".to_owned(), stack.clone())), Some(&1), "{stack}: {calls:?}");
    }
    for id in &ids[..12] {
        let stack = format!("network_{id}");
        assert_eq!(calls.get(&("MODIFY STARTED".to_owned(), stack.clone())), Some(&1), "{stack}");
    }
    let total: usize = calls.values().sum();
    println!("{} Heat calls for {} jobs across 3 replicas", total, ids.len() + 12);
    assert_eq!(total, ids.len() + 12, "no job ran twice, no stray Heat call");
    replicas.clear();
    assert!(h.store.list("/jobs/").await.unwrap().0.is_empty(), "no leftovers in /jobs");
    std::fs::remove_dir_all(dir).ok();
}

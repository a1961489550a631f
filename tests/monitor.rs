//! The monitor role on a real etcd, a real SNMP agent (net-snmp's snmpd on loopback) and, for
//! the whole flow, a real Heat whose `MonitoringTarget`s register over HTTP: targets kept in etcd,
//! `/monitoring` written only on change, held per `hold_options`, removed with the target.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::local::{LocalHeat, LocalSnmpd};
use heat_reconciler::monitor::batch::{ETCD_MAX_TXN_OPS, MAX_WRITES, StatusWrite, fits_in_one_txn};
use heat_reconciler::monitor::{self, MonitorOptions};
use heat_reconciler::protocol::monitoring::{MonitoringRecord, MonitoringStatus};
use heat_reconciler::store::{Store, campaign};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::watch;

const COMMUNITY: &str = "LOAD_BALANCER_COMMUNITY";
const TOKEN: &str = "test-token-5b1d";

/// The monitor's API and prober, in-process, as `run --roles monitor` starts them.
struct Monitor {
    url: String,
    stop: watch::Sender<bool>,
}

impl Monitor {
    async fn start(store: &Store, device: &LocalSnmpd) -> Monitor {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Monitor::start_on(store, device, listener, "{}").await
    }

    /// `probes`: the `--probe-config` YAML.
    async fn start_on(store: &Store, device: &LocalSnmpd, listener: tokio::net::TcpListener, probes: &str) -> Monitor {
        heat_reconciler::tls::install_crypto_provider();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, shutdown) = watch::channel(false);
        let mut options = MonitorOptions::new(unique("monitor"));
        options.interval = Duration::from_millis(500);
        options.timeout = Duration::from_millis(400);
        options.lease_ttl = Duration::from_secs(3);
        options.probes.address_map.insert("lb.example".into(), device.addr().to_string());
        options.probes.loopback_only = true;
        options.probes.extend_from_yaml(probes).unwrap();
        let (store, served_url) = (store.clone(), url.clone());
        tokio::spawn(
            async move { monitor::serve(store, listener, &served_url, TOKEN.into(), options, shutdown).await },
        );
        Monitor { url, stop }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", self.url)).header("X-Auth-Token", TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn target_body(kind: &str, resource_type: &str, id: &str, version: u64, properties: Value, etcd: Value) -> Value {
    json!({"type": kind, "resource_type": resource_type, "resource_id": id, "field_name": "f",
           "tenant_id": TENANT, "version": version, "properties": properties,
           "syncer_properties": {"etcd": etcd, "tsdb": {"cpu.usage": {"metric": "cpu.percents"}}}})
}

async fn monitoring(store: &Store, key: &str) -> Option<String> {
    store.get(key).await.unwrap().map(|kv| String::from_utf8(kv.value).unwrap())
}

async fn becomes(store: &Store, key: &str, expected: &str, secs: u64) {
    eventually(secs, || async { (monitoring(store, key).await.as_deref() == Some(expected)).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_are_probed_written_on_change_held_and_removed() {
    let h = Harness::without_planner().await;
    let mut device = LocalSnmpd::start(&[COMMUNITY], &[("0/1", true), ("1/2", false)]).await.unwrap();
    let monitor = Monitor::start(&h.store, &device).await;
    let snmp = json!({"device_ip": "lb.example", "community_name": COMMUNITY});

    // Access needs the token; a broken body is refused with what is wrong.
    let anonymous = reqwest::Client::new().get(format!("{}/targets", monitor.url)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let (status, answer) = monitor.call(reqwest::Method::POST, "/targets", Some(json!({"type": "snmp_device"}))).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("missing field"), "{answer}");

    // A load balancer: registered, answered like the Collector Agent, probed UP.
    let lb = unique("lb");
    let lb_body = target_body(
        "snmp_device_lb",
        "load_balancers",
        &lb,
        1,
        snmp.clone(),
        json!({"status": {"key": "load_balancer"}}),
    );
    let (status, target) = monitor.call(reqwest::Method::POST, "/targets", Some(lb_body.clone())).await;
    assert_eq!(status, 201, "{target}");
    let id = target["id"].as_str().unwrap().to_owned();
    assert_eq!(target["link"], json!(format!("{}/targets/{id}", monitor.url)));
    assert_eq!(target["monitorer"], json!(monitor.url));
    assert_eq!(target["properties"]["community_name"], "***");
    assert!(target["created_at"].as_str().unwrap().ends_with('Z'));
    let (status, shown) = monitor.call(reqwest::Method::GET, &format!("/targets/{id}"), None).await;
    assert_eq!((status, &shown), (200, &target));
    let lb_key = format!("/monitoring/v2.0/load_balancers/{lb}");
    becomes(&h.store, &lb_key, r#"{"load_balancer":"UP","version":1}"#, 20).await;
    let metrics = heat_reconciler::telemetry::metrics().encode();
    assert!(metrics.contains(r#"heat_reconciler_probes_total{probe="snmp_device",result="UP"}"#), "{metrics}");

    // Interfaces: up, down, and a name the device does not have; the logical port holds a FAIL
    // for 3 s (its positive statuses are UP and DOWN).
    let mut port_keys = Vec::new();
    for (if_name, hold) in [("0/1", false), ("1/2", false), ("9/9", false), ("0/1", true)] {
        let port = unique("port");
        let etcd = if hold {
            json!({"status": {"key": "logical_port"}, "hold_options": {"positive_status": ["UP", "DOWN"], "time_seconds": 3}})
        } else {
            json!({"status": {"key": "interface"}})
        };
        let mut properties = snmp.clone();
        properties["if_name"] = json!(if_name);
        let (status, _) = monitor
            .call(
                reqwest::Method::POST,
                "/targets",
                Some(target_body("snmp_ports", "ports", &port, 2, properties, etcd)),
            )
            .await;
        assert_eq!(status, 201);
        port_keys.push(format!("/monitoring/v2.0/ports/{port}"));
    }
    becomes(&h.store, &port_keys[0], r#"{"interface":"UP","version":2}"#, 20).await;
    becomes(&h.store, &port_keys[1], r#"{"interface":"DOWN","version":2}"#, 20).await;
    becomes(&h.store, &port_keys[2], r#"{"interface":"FAIL","version":2}"#, 20).await;
    becomes(&h.store, &port_keys[3], r#"{"logical_port":"UP","version":2}"#, 20).await;

    // A metrics-only target writes nothing.
    let metrics = unique("metrics");
    let (status, _) = monitor
        .call(
            reqwest::Method::POST,
            "/targets",
            Some(target_body("snmp_ports_metric", "ports", &metrics, 1, snmp.clone(), Value::Null)),
        )
        .await;
    assert_eq!(status, 201);

    // Written only on change: with nothing changing, the key keeps its revision over many probes.
    let revision = h.store.get(&lb_key).await.unwrap().unwrap().mod_revision;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.store.get(&lb_key).await.unwrap().unwrap().mod_revision, revision);
    assert_eq!(monitoring(&h.store, &format!("/monitoring/v2.0/ports/{metrics}")).await, None);

    // The agent stops: FAIL at once where nothing holds it, after the hold time where it does.
    device.stop();
    let stopped = Instant::now();
    becomes(&h.store, &lb_key, r#"{"load_balancer":"FAIL","version":1}"#, 20).await;
    if stopped.elapsed() < Duration::from_secs(2) {
        assert_eq!(monitoring(&h.store, &port_keys[3]).await.as_deref(), Some(r#"{"logical_port":"UP","version":2}"#));
    }
    becomes(&h.store, &port_keys[3], r#"{"logical_port":"FAIL","version":2}"#, 20).await;
    assert!(stopped.elapsed() >= Duration::from_secs(3), "held for its hold time");
    device.start_again().await.unwrap();
    becomes(&h.store, &lb_key, r#"{"load_balancer":"UP","version":1}"#, 20).await;

    // Targets live in etcd: a new monitor process serves and probes them.
    let _ = monitor.stop.send(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let monitor = Monitor::start(&h.store, &device).await;
    let (status, shown) = monitor.call(reqwest::Method::GET, &format!("/targets/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(shown, target);
    let (_, listed) = monitor.call(reqwest::Method::GET, "/targets", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 6);

    // Updating in place keeps the id; deleting takes the status with it.
    let mut v2 = lb_body.clone();
    v2["version"] = json!(2);
    let (status, updated) = monitor.call(reqwest::Method::PUT, &format!("/targets/{id}"), Some(v2)).await;
    assert_eq!((status, updated["id"].as_str()), (200, Some(id.as_str())));
    becomes(&h.store, &lb_key, r#"{"load_balancer":"UP","version":2}"#, 20).await;
    let (status, _) = monitor.call(reqwest::Method::DELETE, &format!("/targets/{id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(monitoring(&h.store, &lb_key).await, None);
    let (status, _) = monitor.call(reqwest::Method::GET, &format!("/targets/{id}"), None).await;
    assert_eq!(status, 404);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(monitoring(&h.store, &lb_key).await, None, "a deleted target's status never comes back");
    let _ = monitor.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_replica_serves_the_api_and_a_standby_takes_over_probing() {
    let h = Harness::without_planner().await;
    let mut device = LocalSnmpd::start(&[COMMUNITY], &[]).await.unwrap();
    let leader = || async {
        let kv = h.store.get(monitor::LEADER_KEY).await.unwrap()?;
        Some(String::from_utf8(kv.value).unwrap())
    };
    let first = Monitor::start(&h.store, &device).await;
    let first_id = eventually(10, leader).await;
    let second = Monitor::start(&h.store, &device).await;

    // Registered through the standby, probed by the leader.
    let lb = unique("lb");
    let body = target_body(
        "snmp_device_lb",
        "load_balancers",
        &lb,
        1,
        json!({"device_ip": "lb.example", "community_name": COMMUNITY}),
        json!({"status": {"key": "load_balancer"}}),
    );
    let (status, target) = second.call(reqwest::Method::POST, "/targets", Some(body)).await;
    assert_eq!(status, 201);
    let key = format!("/monitoring/v2.0/load_balancers/{lb}");
    becomes(&h.store, &key, r#"{"load_balancer":"UP","version":1}"#, 20).await;
    let path = format!("/targets/{}", target["id"].as_str().unwrap());
    assert_eq!(first.call(reqwest::Method::GET, &path, None).await, (200, target));

    // The leader goes; the standby leads and reports the change.
    let _ = first.stop.send(true);
    eventually(10, || async { leader().await.filter(|id| *id != first_id) }).await;
    device.stop();
    becomes(&h.store, &key, r#"{"load_balancer":"FAIL","version":1}"#, 20).await;
    let _ = second.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_writes_every_status_whose_target_is_still_registered() {
    let h = Harness::without_planner().await;
    let leadership = campaign(&h.store, monitor::LEADER_KEY, "batch-test", Duration::from_secs(15)).await.unwrap();
    // A full batch; one of its targets is deleted between its probe and the commit.
    let gone = 3;
    let mut writes = Vec::new();
    for i in 0..MAX_WRITES {
        let target = unique("target");
        h.store.put(&monitor::target_key(&target), "{}").await.unwrap();
        let status = if i % 2 == 0 { "UP" } else { "FAIL" };
        let record = MonitoringRecord {
            status_key: "load_balancer".into(),
            status: MonitoringStatus::Single(status.into()),
            version: 2,
        };
        let key = format!("/monitoring/v2.0/load_balancers/{}", unique("lb"));
        writes.push(StatusWrite::new(&target, &key, record).unwrap());
    }
    h.store.delete(&monitor::target_key(&writes[gone].target)).await.unwrap();

    let applied = monitor::write::commit(&h.store, &leadership, &writes).await.unwrap();
    let expected: Vec<bool> = (0..MAX_WRITES).map(|i| i != gone).collect();
    assert_eq!(applied, expected);
    let mut revisions = BTreeSet::new();
    for (i, write) in writes.iter().enumerate() {
        let stored = h.store.get(&write.key).await.unwrap();
        if i == gone {
            assert_eq!(stored, None, "a deleted target's status is not written");
            continue;
        }
        let stored = stored.expect("written");
        let status = if i % 2 == 0 { "UP" } else { "FAIL" };
        assert_eq!(String::from_utf8(stored.value).unwrap(), format!(r#"{{"load_balancer":"{status}","version":2}}"#));
        revisions.insert(stored.mod_revision);
    }
    assert_eq!(revisions.len(), 1, "one transaction");

    // No longer leading: nothing of the batch is written.
    h.store.delete(monitor::LEADER_KEY).await.unwrap();
    let record = MonitoringRecord {
        status_key: "load_balancer".into(),
        status: MonitoringStatus::Single("DOWN".into()),
        version: 3,
    };
    let late: Vec<StatusWrite> =
        writes.iter().map(|w| StatusWrite::new(&w.target, &w.key, record.clone()).unwrap()).collect();
    assert_eq!(monitor::write::commit(&h.store, &leadership, &late).await.unwrap(), vec![false; MAX_WRITES]);
    let first = h.store.get(&writes[0].key).await.unwrap().unwrap();
    assert_eq!(String::from_utf8(first.value).unwrap(), r#"{"load_balancer":"UP","version":2}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_counts_a_batchs_operations_as_the_batch_rule_does() {
    let h = Harness::without_planner().await;
    let leadership = campaign(&h.store, monitor::LEADER_KEY, "limit-test", Duration::from_secs(15)).await.unwrap();
    let target = unique("target");
    h.store.put(&monitor::target_key(&target), "{}").await.unwrap();
    let record =
        MonitoringRecord { status_key: "interface".into(), status: MonitoringStatus::Single("UP".into()), version: 1 };
    let writes = |n: usize| -> Vec<StatusWrite> {
        (0..n)
            .map(|i| StatusWrite::new(&target, &format!("/monitoring/v2.0/ports/{n}-{i}"), record.clone()).unwrap())
            .collect()
    };
    let largest = (1..=ETCD_MAX_TXN_OPS).rev().find(|n| fits_in_one_txn(*n)).unwrap();
    assert!(largest >= MAX_WRITES);
    assert_eq!(monitor::write::commit(&h.store, &leadership, &writes(largest)).await.unwrap(), vec![true; largest]);
    let refused = monitor::write::commit(&h.store, &leadership, &writes(largest + 1)).await;
    assert!(format!("{:?}", refused.unwrap_err()).contains("too many operations"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_is_written_in_batches_and_a_lone_change_at_once() {
    let h = Harness::without_planner().await;
    let device = LocalSnmpd::start(&[COMMUNITY], &[("0/1", true), ("1/2", false)]).await.unwrap();
    let monitor = Monitor::start(&h.store, &device).await;
    let snmp = json!({"device_ip": "lb.example", "community_name": COMMUNITY});
    const TARGETS: usize = 40;
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..TARGETS {
        let resource = unique("res");
        let (body, key, expected) = if i % 2 == 0 {
            let body = target_body(
                "snmp_device_lb",
                "load_balancers",
                &resource,
                1,
                snmp.clone(),
                json!({"status": {"key": "load_balancer"}}),
            );
            (body, format!("/monitoring/v2.0/load_balancers/{resource}"), r#"{"load_balancer":"UP","version":1}"#)
        } else {
            let mut properties = snmp.clone();
            let (if_name, expected) = if i % 4 == 1 {
                ("0/1", r#"{"interface":"UP","version":1}"#)
            } else {
                ("1/2", r#"{"interface":"DOWN","version":1}"#)
            };
            properties["if_name"] = json!(if_name);
            let etcd = json!({"status": {"key": "interface"}});
            let body = target_body("snmp_ports", "load_balancer_interfaces", &resource, 1, properties, etcd);
            (body, format!("/monitoring/v2.0/load_balancer_interfaces/{resource}"), expected)
        };
        let (status, target) = monitor.call(reqwest::Method::POST, "/targets", Some(body.clone())).await;
        assert_eq!(status, 201);
        ids.push(target["id"].as_str().unwrap().to_owned());
        keys.push((key, expected));
        bodies.push(body);
    }
    for (key, expected) in &keys {
        becomes(&h.store, key, expected, 20).await;
    }

    // A new leader with every status to write at once (as after a loss of `/monitoring`): they
    // go in a few transactions, byte for byte as one by one.
    let _ = monitor.stop.send(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (key, _) in &keys {
        h.store.delete(key).await.unwrap();
    }
    let monitor = Monitor::start(&h.store, &device).await;
    for (key, expected) in &keys {
        becomes(&h.store, key, expected, 20).await;
    }
    let mut revisions = BTreeSet::new();
    for (key, _) in &keys {
        revisions.insert(h.store.get(key).await.unwrap().unwrap().mod_revision);
    }
    assert!(revisions.len() < TARGETS / 2, "{TARGETS} statuses in {} transactions", revisions.len());

    // One status changes (its stack went to version 2): written at once, alone.
    let before: Vec<i64> = {
        let mut revisions = Vec::new();
        for (key, _) in &keys {
            revisions.push(h.store.get(key).await.unwrap().unwrap().mod_revision);
        }
        revisions
    };
    let mut v2 = bodies[0].clone();
    v2["version"] = json!(2);
    let (status, _) = monitor.call(reqwest::Method::PUT, &format!("/targets/{}", ids[0]), Some(v2)).await;
    assert_eq!(status, 200);
    let changed = Instant::now();
    becomes(&h.store, &keys[0].0, r#"{"load_balancer":"UP","version":2}"#, 5).await;
    let lone = changed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, (key, _)) in keys.iter().enumerate().skip(1) {
        assert_eq!(h.store.get(key).await.unwrap().unwrap().mod_revision, before[i], "{key} unchanged");
    }
    assert!(lone < Duration::from_secs(2), "a lone change took {lone:?}");
    let _ = monitor.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_http_probes_serve_the_types_without_snmp() {
    let h = Harness::without_planner().await;
    let device = LocalSnmpd::start(&[COMMUNITY], &[]).await.unwrap();
    // A Nova-like API that knows one server, and a NETCONF-like pool member that listens.
    let nova = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nova_port = nova.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/servers/{id}",
        axum::routing::get(|axum::extract::Path(id): axum::extract::Path<String>| async move {
            if id == "known" { axum::http::StatusCode::OK } else { axum::http::StatusCode::NOT_FOUND }
        }),
    );
    tokio::spawn(async move { axum::serve(nova, app).await });
    let member = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let member_port = member.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = member.accept().await {
            drop(socket);
        }
    });
    let closed_port = {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        closed.local_addr().unwrap().port()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probes = format!("compute: {{http: {{url: 'http://127.0.0.1:{nova_port}/servers/{{server_id}}'}}}}");
    let monitor = Monitor::start_on(&h.store, &device, listener, &probes).await;

    let mut keys = Vec::new();
    for server in ["known", "unknown"] {
        let id = unique("vnf");
        let body = target_body(
            "compute",
            "vnf_instances",
            &id,
            2,
            json!({"server_id": server}),
            json!({"status": {"key": "server"}}),
        );
        assert_eq!(monitor.call(reqwest::Method::POST, "/targets", Some(body)).await.0, 201);
        keys.push(format!("/monitoring/v2.0/vnf_instances/{id}"));
    }
    becomes(&h.store, &keys[0], r#"{"server":"UP","version":2}"#, 20).await;
    becomes(&h.store, &keys[1], r#"{"server":"FAIL","version":2}"#, 20).await;

    // A VRRP pool: one member listening, one not; not its positive status, so held for 1 s.
    let gw = unique("gw");
    let members = json!({"vrid": [1],
        "primary": {"host": "127.0.0.1", "port": member_port, "login": "admin", "password": "pw"},
        "secondary": {"host": "127.0.0.1", "port": closed_port, "login": "admin", "password": "pw"}});
    let etcd = json!({"status": {"key": "status"},
        "hold_options": {"positive_status": [{"primary": "MASTER", "secondary": "BACKUP"}], "time_seconds": 1}});
    let (status, answer) = monitor
        .call(reqwest::Method::POST, "/targets", Some(target_body("vrrp_pool", "gw_interfaces", &gw, 1, members, etcd)))
        .await;
    assert_eq!(status, 201);
    assert_eq!(answer["properties"]["primary"]["password"], "***");
    becomes(
        &h.store,
        &format!("/monitoring/v2.0/gw_interfaces/{gw}"),
        r#"{"status":{"primary":"UP","secondary":"FAIL"},"version":1}"#,
        20,
    )
    .await;
    let _ = monitor.stop.send(true);
}

/// A load balancer whose stack registers an `ESI::Monitoring::MonitoringTarget`, as the corpus
/// `load_balancer` template does (its device address comes straight from the config here).
const LOAD_BALANCER: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/heat/templates/load-balancer-monitored.yaml"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heat_registers_targets_and_the_load_balancer_gets_its_monitoring_record() {
    let mut h = Harness::start().await;
    let mut device = LocalSnmpd::start(&[COMMUNITY], &[]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_url = format!("http://{}", listener.local_addr().unwrap());
    // A Heat of this test's own, with the collector configured (the shared test Heat registers
    // with none).
    let mut own_heat = LocalHeat::own("monitor").unwrap().with_collector(&collector_url, TOKEN);
    let heat_url = own_heat.start(true).await.expect("a Heat with the collector configured");
    let monitor = Monitor::start_on(&h.store, &device, listener, "{}").await;
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url }).unwrap();
    let worker = RunningWorker::fast(&h.store, heat);
    h.template(
        "load_balancer",
        json!({"management_ip": {"field": "management_ip"}, "gohan_id": {"field": "id"},
               "tenant_id": {"field": "tenant_id"}, "version": {"version": "auto_filled"}, "heat_timeout": {"constant": 3}}),
    )
    .await;
    set_template(&h, "load_balancer", LOAD_BALANCER).await;

    // (1)–(6): created, registered, probed.
    let lb = unique("lb");
    let config = |name: &str| json!({"id": lb, "tenant_id": TENANT, "name": name, "management_ip": "lb.example"});
    h.config("load_balancers", config("one"), 1, false).await;
    let key = format!("/monitoring/v2.0/load_balancers/{lb}");
    becomes(&h.store, &key, r#"{"load_balancer":"UP","version":1}"#, 120).await;
    let outputs = |record: Value| -> (String, String) {
        let output = |name: &str| {
            record["output"].as_array().unwrap().iter().find(|o| o["output_key"] == name).unwrap()["output_value"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        (output("monitoring_target_id"), output("monitoring_link"))
    };
    // The stack record of `version`, once its job has completed.
    let stack = |h: &Harness, version: u64| {
        let (store, lb) = (h.store.clone(), lb.clone());
        async move {
            eventually(120, || async {
                let state = store.get(&format!("/state/v2.0/load_balancers/{lb}")).await.unwrap()?;
                let state: Value = serde_json::from_slice(&state.value).unwrap();
                (state["version"] == version && state["state"]["worker_state"].as_str()?.ends_with("_COMPLETED"))
                    .then_some(())
            })
            .await;
            let key = format!("/esi-worker/heat_stacks/v2.0/load_balancers/{lb}");
            serde_json::from_slice::<Value>(&store.get(&key).await.unwrap().unwrap().value).unwrap()
        }
    };
    let (first_id, link) = outputs(stack(&h, 1).await);
    assert_eq!(link, format!("{}/targets/{first_id}", monitor.url));
    assert_eq!(monitor.call(reqwest::Method::GET, &format!("/targets/{first_id}"), None).await.0, 200);

    // Version 2: the stack update replaces the target (a new id), and the record follows.
    h.config("load_balancers", config("two"), 2, false).await;
    becomes(&h.store, &key, r#"{"load_balancer":"UP","version":2}"#, 120).await;
    let (second_id, _) = outputs(stack(&h, 2).await);
    assert_ne!(second_id, first_id);
    eventually(30, || async {
        (monitor.call(reqwest::Method::GET, &format!("/targets/{first_id}"), None).await.0 == 404).then_some(())
    })
    .await;

    // The device stops answering: FAIL (no hold time for load balancers).
    device.stop();
    becomes(&h.store, &key, r#"{"load_balancer":"FAIL","version":2}"#, 30).await;
    device.start_again().await.unwrap();
    becomes(&h.store, &key, r#"{"load_balancer":"UP","version":2}"#, 30).await;

    // Logical deletion deletes the stack, the target with it, and so the record.
    h.config("load_balancers", config("two"), 3, true).await;
    eventually(120, || async { monitoring(&h.store, &key).await.is_none().then_some(()) }).await;
    assert_eq!(monitor.call(reqwest::Method::GET, &format!("/targets/{second_id}"), None).await.0, 404);

    worker.stop().await;
    let _ = monitor.stop.send(true);
    let _ = own_heat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_503_naming_etcd_while_etcd_is_down() {
    let mut etcd = heat_reconciler::local::LocalEtcd::start().await.unwrap();
    let store = etcd.connect().await.unwrap();
    let device = LocalSnmpd::start(&[COMMUNITY], &[]).await.unwrap();
    let monitor = Monitor::start(&store, &device).await;
    let body = target_body(
        "snmp_device_lb",
        "load_balancers",
        &unique("lb"),
        1,
        json!({"device_ip": "lb.example", "community_name": COMMUNITY}),
        json!({"status": {"key": "load_balancer"}}),
    );
    let (status, target) = monitor.call(reqwest::Method::POST, "/targets", Some(body)).await;
    assert_eq!(status, 201);
    let id = target["id"].as_str().unwrap();
    let path = format!("/targets/{id}");

    etcd.stop();
    let answer = reqwest::Client::new()
        .get(format!("{}{path}", monitor.url))
        .header("X-Auth-Token", TOKEN)
        .send()
        .await
        .expect("the API answers while etcd is down");
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    let error: Value = answer.json().await.unwrap();
    let key = monitor::target_key(id);
    assert_eq!(
        error,
        json!({"error": format!(
            "etcd, which keeps the targets, could not read {key}: connection refused (is etcd running there?); try again"
        )})
    );

    // Back, and the same call is answered.
    etcd.restart().await.unwrap();
    eventually(30, || async { (monitor.call(reqwest::Method::GET, &path, None).await.0 == 200).then_some(()) }).await;
    let _ = monitor.stop.send(true);
}

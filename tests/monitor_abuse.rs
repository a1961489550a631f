//! The monitor's target API under abuse, on the real binary (`run --roles monitor` as a child
//! process, a real etcd, a real snmpd): calls without the token or with a wrong one, bodies too
//! large, not JSON, not a target or of an unknown type are refused with the right status and a
//! JSON message naming the cause; a storm of at least 10,000 of them leaves the prober writing
//! and the process's memory bounded; and no secret the test used appears in any answer or in the
//! process's log (`RUST_LOG=debug`, every crate).

mod support;

use heat_reconciler::local::LocalSnmpd;
use heat_reconciler::monitor::MAX_BODY;
use reqwest::Method;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::*;

// Distinctive values, so that finding none of them in a log cannot happen by accident.
const COMMUNITY: &str = "community-s3cr3t-7f2a";
const PASSWORD: &str = "password-s3cr3t-c91e";
const TOKEN: &str = "token-s3cr3t-4b8d";
const WRONG_TOKEN: &str = "wrong-token-s3cr3t-e03f";
/// Every secret value the test sends.
const SECRETS: [&str; 4] = [COMMUNITY, PASSWORD, TOKEN, WRONG_TOKEN];

/// `heat-reconciler run --roles monitor`, probing every second, logging everything.
struct MonitorProcess {
    child: Child,
    api: String,
    metrics: String,
    dir: PathBuf,
}

impl MonitorProcess {
    fn start(etcd: &str, device: SocketAddr) -> MonitorProcess {
        let dir = std::env::temp_dir().join(unique("monitor-abuse"));
        std::fs::create_dir_all(&dir).unwrap();
        // The token comes from a file, as in production: never an argument.
        std::fs::write(dir.join("token"), TOKEN).unwrap();
        let free = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let (api, metrics) = (free(), free());
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
            .args(["run", "--roles", "monitor", "--etcd-endpoints", etcd, "--leader-ttl", "3"])
            .args(["--monitor-listen", &api.to_string(), "--metrics-listen", &metrics.to_string()])
            .arg("--monitor-token-file")
            .arg(dir.join("token"))
            .args(["--probe-interval", "1", "--probe-timeout", "1"])
            .args(["--device-address", &format!("lb.example={device}")])
            .env("RUST_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("heat-reconciler run --roles monitor");
        MonitorProcess { child, api: format!("http://{api}"), metrics: format!("http://{metrics}"), dir }
    }

    async fn ready(&self) {
        heat_reconciler::tls::install_crypto_provider();
        eventually(30, || async {
            let answer = reqwest::get(format!("{}/healthz", self.api)).await.ok()?;
            (answer.status() == 200).then_some(())
        })
        .await;
    }

    /// A call with the right token.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", self.api)).header("X-Auth-Token", TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = request.send().await.expect("the API answers");
        (answer.status().as_u16(), answer.json().await.unwrap_or(Value::Null))
    }

    /// Probes finished so far, of any type and result.
    async fn probes(&self) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.metrics)).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|line| line.starts_with("heat_reconciler_probes_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// A field of `/proc/<pid>/status` in KiB: `VmRSS` (resident now), `VmHWM` (its peak).
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap()
    }
}

impl Drop for MonitorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A load balancer's registration, its device reached through the local snmpd.
fn lb_body(resource_id: &str) -> Value {
    json!({"type": "snmp_device_lb", "resource_type": "load_balancers", "resource_id": resource_id,
           "field_name": "load_balancer", "tenant_id": TENANT, "version": 1,
           "properties": {"device_ip": "lb.example", "community_name": COMMUNITY},
           "syncer_properties": {"etcd": {"status": {"key": "load_balancer"}}}})
}

/// One bad call and how it must be refused.
#[derive(Clone)]
struct Bad {
    what: &'static str,
    method: Method,
    path: String,
    /// The `X-Auth-Token` or `Authorization` header sent, if any.
    header: Option<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    /// What the answer's `error` says.
    says: &'static str,
}

/// Every kind of bad call, each carrying secrets; `id` is a registered target's.
fn bad_calls(id: &str) -> Vec<Bad> {
    let target = format!("/targets/{id}");
    let token = Some(("X-Auth-Token", TOKEN.to_owned()));
    let with = |patch: Value| {
        let mut body = lb_body("abuse");
        body.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        body.to_string().into_bytes()
    };
    let mut oversized = lb_body("abuse");
    oversized["properties"]["padding"] = json!(COMMUNITY.repeat(4 * MAX_BODY / COMMUNITY.len()));
    let mut missing = lb_body("abuse");
    missing.as_object_mut().unwrap().remove("resource_id");
    let bad = |what, method, path: &str, header, body, status, says| Bad {
        what,
        method,
        path: path.to_owned(),
        header,
        body,
        status,
        says,
    };
    vec![
        bad("no token", Method::POST, "/targets", None, with(json!({})), 401, "a valid X-Auth-Token is required"),
        bad("no token, GET", Method::GET, &target, None, Vec::new(), 401, "a valid X-Auth-Token is required"),
        bad(
            "wrong token",
            Method::POST,
            "/targets",
            Some(("X-Auth-Token", WRONG_TOKEN.to_owned())),
            with(json!({})),
            401,
            "a valid X-Auth-Token is required",
        ),
        bad(
            "wrong bearer token, DELETE",
            Method::DELETE,
            &target,
            Some(("Authorization", format!("Bearer {WRONG_TOKEN}"))),
            Vec::new(),
            401,
            "a valid X-Auth-Token is required",
        ),
        bad(
            "the token's prefix, PUT",
            Method::PUT,
            &target,
            Some(("X-Auth-Token", TOKEN[..TOKEN.len() - 1].to_owned())),
            with(json!({"version": 9})),
            401,
            "a valid X-Auth-Token is required",
        ),
        bad(
            "the token with something after",
            Method::GET,
            "/targets",
            Some(("X-Auth-Token", format!("{TOKEN}x"))),
            Vec::new(),
            401,
            "a valid X-Auth-Token is required",
        ),
        bad(
            "oversized",
            Method::POST,
            "/targets",
            token.clone(),
            oversized.to_string().into_bytes(),
            413,
            "the body is larger than 64 KiB",
        ),
        bad(
            "oversized, PUT",
            Method::PUT,
            &target,
            token.clone(),
            oversized.to_string().into_bytes(),
            413,
            "the body is larger than 64 KiB",
        ),
        bad(
            "not JSON",
            Method::POST,
            "/targets",
            token.clone(),
            format!(r#"{{"type": "snmp_device", "properties": {{"community_name": "{COMMUNITY}""#).into_bytes(),
            400,
            "the body is not JSON: EOF while parsing",
        ),
        bad(
            "not JSON, PUT",
            Method::PUT,
            &target,
            token.clone(),
            format!(r#"{{"properties": {{"password": {PASSWORD}}}}}"#).into_bytes(),
            400,
            "the body is not JSON: expected value",
        ),
        bad(
            "a string body",
            Method::POST,
            "/targets",
            token.clone(),
            json!(COMMUNITY).to_string().into_bytes(),
            400,
            "a target body must be a JSON object, not a string",
        ),
        bad(
            "an array body",
            Method::POST,
            "/targets",
            token.clone(),
            json!([{"password": PASSWORD}]).to_string().into_bytes(),
            400,
            "a target body must be a JSON object, not an array",
        ),
        bad(
            "properties of the wrong type",
            Method::POST,
            "/targets",
            token.clone(),
            with(json!({"properties": COMMUNITY})),
            400,
            "`properties` must be an object, not a string",
        ),
        bad(
            "a version of the wrong type",
            Method::PUT,
            &target,
            token.clone(),
            with(json!({"version": {"password": PASSWORD}})),
            400,
            "`version` must be a whole number, not an object",
        ),
        bad(
            "a version that is no number",
            Method::POST,
            "/targets",
            token.clone(),
            with(json!({"version": PASSWORD})),
            400,
            "`version` must be a whole number",
        ),
        bad(
            "a missing field",
            Method::POST,
            "/targets",
            token.clone(),
            missing.to_string().into_bytes(),
            400,
            "missing field `resource_id`",
        ),
        bad(
            "an unknown type",
            Method::POST,
            "/targets",
            token.clone(),
            with(json!({"type": "snmp_devcie"})),
            400,
            "unknown target type `snmp_devcie`: the types taken are bgp_pool, compute,",
        ),
        bad(
            "an unknown type, PUT",
            Method::PUT,
            &target,
            token.clone(),
            with(json!({"type": "snmp_devcie"})),
            400,
            "unknown target type `snmp_devcie`",
        ),
        // The type is shown back, but not the secret it happens to be.
        bad(
            "the community as the type",
            Method::POST,
            "/targets",
            token,
            with(json!({"type": COMMUNITY})),
            400,
            "unknown target type `***`",
        ),
    ]
}

/// Sends `bad`; its status and answer, or why there was none.
async fn send(client: &reqwest::Client, api: &str, bad: &Bad) -> Result<(u16, String), String> {
    let mut request = client.request(bad.method.clone(), format!("{api}{}", bad.path));
    if let Some((name, value)) = &bad.header {
        request = request.header(*name, value);
    }
    if !bad.body.is_empty() {
        request = request.header("Content-Type", "application/json").body(bad.body.clone());
    }
    let answer = request.send().await.map_err(|e| format!("{}: {e:?}", bad.what))?;
    let status = answer.status().as_u16();
    Ok((status, answer.text().await.map_err(|e| format!("{}: {e:?}", bad.what))?))
}

/// Why `answer` is not the refusal `bad` asks for, if it is not.
fn wrong_answer(bad: &Bad, status: u16, answer: &str) -> Option<String> {
    let says = serde_json::from_str::<Value>(answer)
        .ok()
        .and_then(|v| Some(v.as_object()?.get("error")?.as_str()?.to_owned()));
    if status != bad.status || !says.as_deref().is_some_and(|says| says.contains(bad.says)) {
        return Some(format!("{}: {status} {answer}, expected {} with `{}`", bad.what, bad.status, bad.says));
    }
    SECRETS
        .iter()
        .find(|secret| answer.contains(*secret))
        .map(|secret| format!("{}: the answer shows {secret}: {answer}", bad.what))
}

/// A monitor process on a fresh etcd and snmpd, with a load balancer registered.
struct Scene {
    h: Harness,
    device: LocalSnmpd,
    monitor: MonitorProcess,
    /// The load balancer's id, its registration as answered, and the registration's id.
    lb: String,
    target: Value,
    id: String,
}

impl Scene {
    async fn start() -> Scene {
        let h = Harness::without_planner().await;
        let device = LocalSnmpd::start(&[COMMUNITY], &[]).await.unwrap();
        let monitor = MonitorProcess::start(&h.etcd.client_url, device.addr());
        monitor.ready().await;
        let lb = unique("lb");
        let (status, target) = monitor.call(Method::POST, "/targets", Some(&lb_body(&lb))).await;
        assert_eq!(status, 201, "{target}");
        let id = target["id"].as_str().unwrap().to_owned();
        Scene { h, device, monitor, lb, target, id }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_call_is_refused_with_its_cause_and_no_secret() {
    // (etcd and the device are bound, so that they live to the end.)
    let Scene { h: _etcd, device: _device, monitor, target, id, .. } = Scene::start().await;

    let client = reqwest::Client::new();
    for bad in bad_calls(&id) {
        let (status, answer) = send(&client, &monitor.api, &bad).await.unwrap();
        if let Some(wrong) = wrong_answer(&bad, status, &answer) {
            panic!("{wrong}");
        }
    }
    // A refusal sent before the body was read says the connection closes: a pooling client
    // would otherwise send its next call on a connection the server closes (the storm below
    // would fail with `IncompleteMessage`).
    for bad in bad_calls(&id).iter().filter(|bad| [401, 413].contains(&bad.status)) {
        let mut request = client.request(bad.method.clone(), format!("{}{}", monitor.api, bad.path));
        if let Some((name, value)) = &bad.header {
            request = request.header(*name, value);
        }
        let answer = request.body(bad.body.clone()).send().await.unwrap();
        assert_eq!(answer.headers().get("connection").map(|v| v.as_bytes()), Some(&b"close"[..]), "{}", bad.what);
    }
    // Other paths and methods answer in the same shape.
    let (status, answer) = monitor.call(Method::GET, "/nowhere", None).await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("no such path")));
    let (status, answer) = monitor.call(Method::PATCH, "/targets", None).await;
    assert_eq!((status, answer["error"].as_str()), (405, Some("method not allowed here")));

    // None of them changed the target.
    assert_eq!(monitor.call(Method::GET, &format!("/targets/{id}"), None).await, (200, target));
    // A body just under the limit is taken.
    let mut large = lb_body(&unique("large"));
    large["type"] = json!("snmp_ports_metric");
    large["syncer_properties"] = json!({"tsdb": {}});
    large["properties"]["padding"] = json!("x".repeat(MAX_BODY - 1024));
    assert!(large.to_string().len() < MAX_BODY);
    let (status, answer) = monitor.call(Method::POST, "/targets", Some(&large)).await;
    assert_eq!(status, 201, "{answer}");
    let (status, _) = monitor.call(Method::DELETE, &format!("/targets/{}", answer["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 204);
    assert_no_secret_in_log(&monitor, &id);
}

/// The process's log is not empty, shows the target and the refusals (so the grep had what to
/// look at), and holds none of the secrets.
fn assert_no_secret_in_log(monitor: &MonitorProcess, target_id: &str) {
    let log = monitor.log();
    assert!(log.contains(target_id), "the log names the target: {log}");
    assert!(log.contains("target API call refused"), "the refusals are logged at debug");
    assert!(log.contains("unknown target type `snmp_devcie`"), "with their reasons");
    for secret in SECRETS {
        let lines: Vec<&str> = log.lines().filter(|line| line.contains(secret)).take(3).collect();
        assert!(lines.is_empty(), "the log shows {secret}:\n{}", lines.join("\n"));
    }
}

/// At least this many bad calls, and as long as the prober is being watched.
const STORM: usize = 10_000;
/// Bad calls in flight at once: below the listener's backlog (1024, tokio's), so every connect
/// is accepted at once rather than waiting on a SYN retry, and well below the open-file limit.
const IN_FLIGHT: usize = 512;
/// How much the monitor's resident memory may grow, at its peak, during the storm. What the storm
/// can make it hold at once is bounded by the calls in flight: 512, each with at most 64 KiB of
/// body read (and only after the token check) and a connection's buffers, some 40 MiB at worst;
/// measured, the peak is 16 to 21 MiB above the start. 100 MiB leaves room for the allocator's
/// slack and still fails on what grows with the number of calls rather than with those in
/// flight: 10 KiB kept per call would be 100 MiB.
const MAX_GROWTH_KIB: u64 = 100 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_bad_calls_leaves_the_prober_writing_and_memory_bounded() {
    let Scene { h, mut device, monitor, lb, target, id } = Scene::start().await;
    // A pool whose members' password is a secret too (its members do not listen: FAIL).
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let member = json!({"host": "127.0.0.1", "port": closed, "login": "admin", "password": PASSWORD});
    let pool = json!({"type": "vrrp_pool", "resource_type": "gw_interfaces", "resource_id": unique("gw"),
                      "field_name": "status", "tenant_id": TENANT, "version": 1,
                      "properties": {"primary": member, "secondary": member},
                      "syncer_properties": {"etcd": {"status": {"key": "status"}}}});
    assert_eq!(monitor.call(Method::POST, "/targets", Some(&pool)).await.0, 201);
    let key = format!("/monitoring/v2.0/load_balancers/{lb}");
    let record = |status: &str| format!(r#"{{"load_balancer":"{status}","version":1}}"#);
    eventually(30, || async {
        let kv = h.store.get(&key).await.unwrap()?;
        (kv.value == record("UP").as_bytes()).then_some(())
    })
    .await;
    let probes_before = monitor.probes().await;
    let rss_before = monitor.memory_kib("VmRSS");

    // The storm: bad calls of every kind in turn, IN_FLIGHT at a time, until STORM have gone
    // and the prober has been seen to write.
    let watched = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let storm = {
        let (api, watched, answered, calls) = (monitor.api.clone(), watched.clone(), answered.clone(), bad_calls(&id));
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut tasks = tokio::task::JoinSet::new();
            let mut sent = 0;
            while sent < STORM || !watched.load(Ordering::Relaxed) {
                let permit = permits.clone().acquire_owned().await.unwrap();
                let (client, api, answered) = (client.clone(), api.clone(), answered.clone());
                let bad = calls[sent % calls.len()].clone();
                tasks.spawn(async move {
                    let answer = send(&client, &api, &bad).await;
                    drop(permit);
                    answered.fetch_add(1, Ordering::Relaxed);
                    match answer {
                        Ok((status, answer)) => wrong_answer(&bad, status, &answer),
                        Err(e) => Some(e),
                    }
                });
                sent += 1;
                // Reap what is done as we go: a storm that runs long must not pile up results.
                while let Some(done) = tasks.try_join_next() {
                    if let Some(wrong) = done.unwrap() {
                        return Err(wrong);
                    }
                }
            }
            while let Some(done) = tasks.join_next().await {
                if let Some(wrong) = done.unwrap() {
                    return Err(wrong);
                }
            }
            Ok(sent)
        })
    };

    // Meanwhile the device goes and comes back: the prober reports both.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    device.stop();
    let becomes = |status: &'static str| {
        let (store, key, expected) = (h.store.clone(), key.clone(), record(status));
        async move {
            eventually(30, || async {
                let kv = store.get(&key).await.unwrap()?;
                (kv.value == expected.as_bytes()).then_some(())
            })
            .await
        }
    };
    becomes("FAIL").await;
    let (failed_after, answered_at_fail) = (started.elapsed(), answered.load(Ordering::Relaxed));
    device.start_again().await.unwrap();
    becomes("UP").await;
    let (recovered_after, answered_at_up) = (started.elapsed(), answered.load(Ordering::Relaxed));
    watched.store(true, Ordering::Relaxed);
    let sent = storm.await.unwrap().unwrap_or_else(|wrong| panic!("{wrong}"));
    // The API was answering the storm before the prober wrote FAIL, and between FAIL and UP.
    assert!(answered_at_fail > 0 && answered_at_up > answered_at_fail, "{answered_at_fail}, {answered_at_up}");
    let storm_took = started.elapsed();
    let peak = monitor.memory_kib("VmHWM");
    let rss_after = monitor.memory_kib("VmRSS");
    let probes = monitor.probes().await - probes_before;
    println!(
        "{sent} bad calls in {storm_took:.1?}, {IN_FLIGHT} in flight; FAIL written after {failed_after:.1?} \
         ({answered_at_fail} answered), UP again after {recovered_after:.1?} ({answered_at_up} answered); {probes} probes; RSS {rss_before} KiB before, peak {peak} KiB, \
         {rss_after} KiB after"
    );
    assert!(sent >= STORM);
    assert!(probes >= 2.0, "the prober went on probing: {probes} probes");
    assert!(peak.saturating_sub(rss_before) < MAX_GROWTH_KIB, "grew from {rss_before} KiB to a peak of {peak} KiB");

    // The target is as registered, and still probed: the storm changed nothing.
    assert_eq!(monitor.call(Method::GET, &format!("/targets/{id}"), None).await, (200, target));
    assert_no_secret_in_log(&monitor, &id);
}

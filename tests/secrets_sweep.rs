//! The secrets sweep: the real binary (planner, worker and mirror, every log at `debug`) runs the
//! flagship flow on a real etcd, the shared standalone Heat and a real kube-apiserver, then
//! resources that fail while holding secrets (Heat refusing a password parameter, a mapping
//! error on a password, a template that does not render around one, an unreadable config). No
//! password, token or community string of the bodies, nor the apiserver's admin token, may
//! appear in a log line, the metrics, a `/state` error, the output of `why` or `status`, or a
//! custom resource.

mod support;

use heat_reconciler::conformance::TimelineEvent;
use heat_reconciler::local::{LocalEtcd, LocalKubeApiserver};
use heat_reconciler::protocol::{ConfigRecord, Record, ResourceKey};
use heat_reconciler::schema::Schema;
use heat_reconciler::secrets::is_secret_key;
use heat_reconciler::store::Store;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use support::{TENANT, eventually, put_template, unique};

const BIN: &str = env!("CARGO_BIN_EXE_heat-reconciler");

/// The string values held under secret keys (`admin_password`, `credentials`, `community_name`,
/// ...) of a body, at any depth.
fn secret_values(value: &Value, under_secret: bool, found: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if under_secret => {
            found.insert(s.clone());
        }
        Value::Object(map) => map.iter().for_each(|(k, v)| secret_values(v, under_secret || is_secret_key(k), found)),
        Value::Array(items) => items.iter().for_each(|v| secret_values(v, under_secret, found)),
        _ => {}
    }
}

/// The secrets of the flagship example's resource bodies (its heat templates hold mappings, not
/// secrets).
fn flagship_secrets() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (_, event) in support::flagship().timeline().expect("the example's timeline") {
        let TimelineEvent::Config { key, value: Some(value), .. } = event else { continue };
        if key.contains("/heat_templates/") {
            continue;
        }
        if let Some(body) = value["body"].as_str().and_then(|b| serde_json::from_str::<Value>(b).ok()) {
            secret_values(&body, false, &mut found);
        }
    }
    found
}

/// The admin token of the apiserver's kubeconfig: a credential the mirror holds.
fn kube_token(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    let line = text.lines().find_map(|l| l.trim().strip_prefix("token:")).expect("a token in the kubeconfig");
    line.trim().trim_matches('"').to_owned()
}

async fn config(store: &Store, plural: &str, body: Value) {
    let id = body["id"].as_str().unwrap().to_owned();
    let record = ConfigRecord::new(support::body(body), 1, false);
    store.put(&format!("/config/v2.0/{plural}/{id}"), serde_json::to_vec(&record).unwrap()).await.unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_metrics_state_why_status_or_custom_resources() {
    heat_reconciler::tls::install_crypto_provider();
    let etcd = LocalEtcd::start().await.expect("etcd starts");
    let store = etcd.connect().await.unwrap();
    let schema = Schema::shipped().unwrap();
    let heat_url = support::heat_url();
    let kube = LocalKubeApiserver::start().await.expect("kube-apiserver (bash scripts/prepare-kube.sh)");
    kube.install_crds().await.expect("the CRD is established");
    let namespace = unique("sweep");
    kube.kubectl_ok(&["create", "namespace", &namespace]).unwrap();

    let scratch = std::env::temp_dir().join(unique("heat-reconciler-secrets-sweep"));
    std::fs::create_dir_all(&scratch).unwrap();
    let log = scratch.join("controller.log");
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoints = etcd.endpoints().join(",");
    let mut controller = Command::new(BIN)
        .args(["run", "--roles", "planner,worker,mirror", "--etcd-endpoints", &endpoints, "--heat-url", &heat_url])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}"), "--mirror-namespace", &namespace])
        .arg("--kubeconfig")
        .arg(&kube.kubeconfig)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .map(support::Spawned)
        .expect("the controller starts");

    support::write_flagship_as_gohan(&store, &schema, &mut controller, &log).await;

    // Failures holding secrets, each of a type the flagship does not use.
    let mut secrets = flagship_secrets();
    let suffix = unique("s3cr3t");
    let (heat_pw, mapping_pw, render_pw, unread_pw) = (
        format!("heat-pw-{suffix}"),
        format!("mapping-pw-{suffix}"),
        format!("render-pw-{suffix}"),
        format!("unread-pw-{suffix}"),
    );
    secrets.extend([heat_pw.clone(), mapping_pw.clone(), render_pw.clone(), unread_pw.clone()]);
    secrets.insert(kube_token(&kube.kubeconfig));
    // Heat refuses the password for the parameter type, quoting the value it got.
    put_template(
        &store,
        "aws_gateway",
        json!({"admin_password": "Padmin_password"}),
        "heat_template_version: 2013-05-23\nparameters:\n  admin_password: {type: number}\nresources: {}\n",
    )
    .await;
    // A `for_field` over a password, which is no list.
    put_template(
        &store,
        "azure_gateway",
        json!({"jinja_names": {"for_field": "admin_password", "for_mapping": {"field": "name"}}}),
        "heat_template_version: 2013-05-23\nresources: {}\n",
    )
    .await;
    // A template that puts the password where YAML breaks.
    put_template(
        &store,
        "gcp_gateway",
        json!({"jinja_pw": "Padmin_password"}),
        "heat_template_version: 2013-05-23\nresources: {}\nx: [{{ jinja_pw }}: {\n",
    )
    .await;
    let (aws, azure, gcp, firewall) = (unique("aws"), unique("azure"), unique("gcp"), unique("fw"));
    config(&store, "aws_gateways", json!({"id": aws, "tenant_id": TENANT, "admin_password": heat_pw})).await;
    config(&store, "azure_gateways", json!({"id": azure, "tenant_id": TENANT, "admin_password": mapping_pw})).await;
    config(&store, "gcp_gateways", json!({"id": gcp, "tenant_id": TENANT, "admin_password": render_pw})).await;
    // A body that is not JSON (cut short), with its version readable.
    let cut = format!("{{\"id\": \"{firewall}\", \"admin_password\": \"{unread_pw}\", \"name\": ");
    let record = json!({"body": cut, "version": 1, "marked_for_deletion": false});
    store.put(&format!("/config/v2.0/firewalls/{firewall}"), record.to_string()).await.unwrap();

    let failed = [("aws_gateways", &aws), ("azure_gateways", &azure), ("gcp_gateways", &gcp), ("firewalls", &firewall)];
    for (plural, id) in failed {
        let key = format!("/state/v2.0/{plural}/{id}");
        let state = eventually(120, || async {
            support::state_at(&store, &key).await.filter(|s| s.state.worker_state == "CREATE_FAILED")
        })
        .await;
        assert!(!state.error.is_empty(), "{key}: a failure says why");
        println!("{key}: {}", state.error);
        if plural == "aws_gateways" {
            // Heat quoted the value it could not convert; the worker masked it.
            assert!(state.error.contains("admin_password") && state.error.contains("***"), "{}", state.error);
        }
    }

    // What the sweep reads: every place an operator or a log collector sees.
    let mut seen: Vec<(String, String)> = Vec::new();
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("heat_reconciler_"), "{metrics}");
    seen.push(("the metrics".into(), metrics));
    let (states, _) = store.list("/state/").await.unwrap();
    assert!(states.len() > 10, "{} states", states.len());
    for kv in &states {
        if let Ok(Record::State(state)) = Record::from_etcd(&kv.key, &kv.value) {
            seen.push((format!("the error of {}", kv.key), state.error));
        }
    }
    let (configs, _) = store.list("/config/").await.unwrap();
    let mut resources: Vec<String> = configs
        .iter()
        .filter(|kv| !kv.key.contains("/heat_templates/"))
        .filter_map(|kv| {
            let parsed = ResourceKey::parse(&kv.key)?;
            Some(format!("{}/{}", schema.resource_types.resource_type(parsed.prefix)?, parsed.id))
        })
        .collect();
    resources.sort();
    assert!(resources.len() > 10, "{resources:?}");
    let operator = |args: &[&str]| {
        let output = Command::new(BIN).args(args).args(["--etcd-endpoints", &endpoints]).output().expect("runs");
        format!("{}{}", text(&output.stdout), text(&output.stderr))
    };
    for resource in &resources {
        seen.push((format!("why {resource}"), operator(&["why", resource])));
    }
    seen.push(("status".into(), operator(&["status", "-o", "json"])));
    let custom_resources = kube.kubectl_ok(&["get", "loadbalancers", "-n", &namespace, "-o", "json"]).unwrap();
    assert!(custom_resources.contains(support::FLAGSHIP_LB), "{custom_resources}");
    seen.push(("the custom resources".into(), custom_resources));

    controller.kill().ok();
    controller.wait().ok();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("DEBUG") && logs.contains(&aws), "the logs are at debug and name the resources");
    seen.push(("the controller's log".into(), logs));

    // A value that is also a key (`"password": "password"`) cannot be told from the key's name.
    let words: BTreeSet<&str> = ["password", "secret", "token", "credential", "credentials", "community"].into();
    let secrets: Vec<&String> = secrets.iter().filter(|s| s.len() >= 3 && !words.contains(s.as_str())).collect();
    assert!(secrets.len() >= 6, "{secrets:?}");
    let mut leaks = Vec::new();
    for (place, content) in &seen {
        for secret in &secrets {
            if let Some(at) = content.find(secret.as_str()) {
                let line_start = content[..at].rfind('\n').map_or(0, |n| n + 1);
                let line_end = content[at..].find('\n').map_or(content.len(), |n| at + n);
                leaks.push(format!("{place}: {}", &content[line_start..line_end]));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}

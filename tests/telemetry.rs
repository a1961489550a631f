//! `/healthz`, `/readyz` and `/metrics` scraped from a running `heat-reconciler run` process (real
//! etcd, real Heat), and its logs as JSON lines with `RUST_LOG` honoured.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

struct Process {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Process {
    fn start(etcd: &str, heat: &str, rust_log: &str) -> Process {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("{}.log", unique("telemetry")));
        let child = Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
            .args(["--log-format", "json", "run", "--etcd-endpoints", etcd, "--heat-url", heat, "--leader-ttl", "3"])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("heat-reconciler run");
        Process { child, url: format!("http://127.0.0.1:{port}"), log }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        heat_reconciler::tls::install_crypto_provider();
        let answer = reqwest::get(format!("{}{path}", self.url)).await.ok()?;
        Some((answer.status().as_u16(), answer.text().await.ok()?))
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The value of the first sample line starting with `prefix` (name and labels).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_process_reports_health_readiness_and_metrics() {
    let mut h = Harness::without_planner().await;
    put_template(&h.store, "network", network_mappings(), NETWORK).await;
    let process = Process::start(&h.etcd.client_url, &heat_url(), "info");

    let (status, body) = eventually(30, || async { process.get("/readyz").await.filter(|(s, _)| *s == 200) }).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(process.get("/healthz").await, Some((200, "ok\n".to_owned())));

    let id = unique("net");
    h.config("networks", network(&id), 1, false).await;
    let metrics = eventually(120, || async {
        let (_, text) = process.get("/metrics").await?;
        let finished = r#"heat_reconciler_jobs_finished_total{type="network",action="create",result="success"}"#;
        (sample(&text, finished) == Some(1.0)).then_some(text)
    })
    .await;
    for (prefix, at_least) in [
        (r#"heat_reconciler_jobs_planned_total{type="network",action="create"}"#, 1.0),
        (r#"heat_reconciler_job_duration_seconds_count{type="network",action="create"}"#, 1.0),
        (r#"heat_reconciler_heat_call_duration_seconds_count{method="POST"}"#, 1.0),
        (r#"heat_reconciler_heat_call_duration_seconds_count{method="GET"}"#, 1.0),
        ("heat_reconciler_etcd_txn_duration_seconds_count", 3.0),
        (r#"heat_reconciler_leader{role="planner"}"#, 1.0),
        (r#"heat_reconciler_live_jobs{queue="ready"}"#, 0.0),
    ] {
        let value = sample(&metrics, prefix).unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"));
        assert!(value >= at_least, "{prefix} = {value}");
    }
    // Probes and mirror writes: tests/monitor.rs and tests/mirror.rs read them in-process.
    assert!(metrics.trim_end().ends_with("# EOF"), "OpenMetrics text ends with # EOF");

    // Every log line is one JSON object with a level and a message.
    let lines = process.log_lines();
    assert!(lines.iter().any(|l| l.contains("planned job")), "{lines:?}");
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["level"].is_string() && value["message"].is_string(), "{line}");
    }

    // etcd gone: not ready, and it says why; still alive (restarting would not bring etcd back).
    h.etcd.stop();
    let (_, why) = eventually(30, || async { process.get("/readyz").await.filter(|(s, _)| *s == 503) }).await;
    assert!(why.contains("etcd"), "{why}");
    assert_eq!(process.get("/healthz").await.map(|(s, _)| s), Some(200));
    h.etcd.restart().await.unwrap();
    eventually(60, || async { process.get("/readyz").await.filter(|(s, _)| *s == 200) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_heat_makes_the_worker_not_ready_and_rust_log_is_honoured() {
    let h = Harness::without_planner().await;
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let process = Process::start(&h.etcd.client_url, &format!("http://127.0.0.1:{closed}"), "warn");
    // Until the planner has read etcd it is not ready either ("planner: leading: reading etcd"),
    // so the first 503 may name etcd too; once it has, Heat alone keeps the process not ready.
    let (status, why) =
        eventually(30, || async { process.get("/readyz").await.filter(|(s, why)| *s == 503 && !why.contains("etcd")) })
            .await;
    assert_eq!(status, 503);
    assert!(why.contains("heat:"), "{why}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    // RUST_LOG=warn: the info lines of a start (elected leader, serving ...) are not there.
    let lines = process.log_lines();
    assert!(lines.iter().all(|l| !l.contains(r#""level":"INFO""#)), "{lines:?}");
}

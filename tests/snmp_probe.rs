//! The probes against real servers on loopback: a real net-snmp `snmpd` (LocalSnmpd), a TCP
//! listener and a tiny HTTP server.

use heat_reconciler::local::LocalSnmpd;
use heat_reconciler::monitor::probe::{self, PortReading, PortState, ProbeError, SnmpTarget};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Short, so that the silent cases (wrong community) keep the test quick; a loopback agent answers
/// in well under a millisecond.
const TIMEOUT: Duration = Duration::from_millis(500);
const COMMUNITY: &str = "s3cret-community";

async fn agent() -> LocalSnmpd {
    LocalSnmpd::start(&[COMMUNITY, "other"], &[("0/1", true), ("1/2", false), ("Gi 0/3", true)])
        .await
        .expect("snmpd starts (install the snmpd package)")
}

#[tokio::test]
async fn snmp_device_answers_under_each_community() {
    let snmpd = agent().await;
    probe::snmp_device(&snmpd.target(COMMUNITY), TIMEOUT).await.expect("reachable");
    probe::snmp_device(&snmpd.target("other"), TIMEOUT).await.expect("reachable with the second community");
}

#[tokio::test]
async fn snmp_wrong_community_times_out_without_naming_it() {
    let snmpd = agent().await;
    let target = SnmpTarget::new(snmpd.addr(), "not-the-community");
    let started = std::time::Instant::now();
    let error = probe::snmp_device(&target, TIMEOUT).await.expect_err("an agent ignores an unknown community");
    assert_eq!(error, ProbeError::Timeout(TIMEOUT));
    // Bounded: the probe gave up at its timeout.
    assert!(started.elapsed() < TIMEOUT + Duration::from_millis(250), "took {:?}", started.elapsed());
    assert!(!error.to_string().contains("not-the-community"));
    let error = probe::snmp_port(&target, "0/1", TIMEOUT).await.expect_err("silent for ports too");
    assert_eq!(error, ProbeError::Timeout(TIMEOUT));
}

#[tokio::test]
async fn snmp_port_reads_oper_status_by_name() {
    let snmpd = agent().await;
    let target = snmpd.target(COMMUNITY);
    assert_eq!(probe::snmp_port(&target, "0/1", TIMEOUT).await, Ok(PortState::Up));
    assert_eq!(probe::snmp_port(&target, "1/2", TIMEOUT).await, Ok(PortState::Down));
    assert_eq!(probe::snmp_port(&target, "Gi 0/3", TIMEOUT).await, Ok(PortState::Up));
    // A name is matched whole, not as a prefix.
    assert_eq!(probe::snmp_port(&target, "0/", TIMEOUT).await, Err(ProbeError::NoSuchInterface("0/".into())));
    assert_eq!(probe::snmp_port(&target, "9/9", TIMEOUT).await, Err(ProbeError::NoSuchInterface("9/9".into())));
}

#[tokio::test]
async fn snmp_port_at_uses_a_right_hint_and_recovers_from_a_wrong_one() {
    let snmpd = agent().await;
    let target = snmpd.target(COMMUNITY);
    let down = PortReading { state: PortState::Down, if_index: 2 };
    assert_eq!(probe::snmp_port_at(&target, "1/2", None, TIMEOUT).await, Ok(down));
    assert_eq!(probe::snmp_port_at(&target, "1/2", Some(2), TIMEOUT).await, Ok(down));
    // A row with another name, or no row at all: the column is walked again.
    assert_eq!(probe::snmp_port_at(&target, "1/2", Some(1), TIMEOUT).await, Ok(down));
    assert_eq!(probe::snmp_port_at(&target, "1/2", Some(99), TIMEOUT).await, Ok(down));
    assert_eq!(
        probe::snmp_port_at(&target, "9/9", Some(1), TIMEOUT).await,
        Err(ProbeError::NoSuchInterface("9/9".into()))
    );
}

#[tokio::test]
async fn snmp_port_walks_past_one_bulk_answer() {
    // More rows than one GETBULK asks for, so the walk has to continue from where it stopped.
    let names: Vec<String> = (0..80).map(|n| format!("xe-0/0/{n}")).collect();
    let interfaces: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), n.ends_with('7'))).collect();
    let snmpd = LocalSnmpd::start(&[COMMUNITY], &interfaces).await.expect("snmpd starts");
    let target = snmpd.target(COMMUNITY);
    assert_eq!(probe::snmp_port(&target, "xe-0/0/77", TIMEOUT).await, Ok(PortState::Up));
    assert_eq!(probe::snmp_port(&target, "xe-0/0/79", TIMEOUT).await, Ok(PortState::Down));
    assert_eq!(
        probe::snmp_port(&target, "xe-0/0/80", TIMEOUT).await,
        Err(ProbeError::NoSuchInterface("xe-0/0/80".into()))
    );
}

#[tokio::test]
async fn snmp_agent_stopped_then_started_again() {
    let mut snmpd = agent().await;
    let target = snmpd.target(COMMUNITY);
    let addr = snmpd.addr();
    probe::snmp_device(&target, TIMEOUT).await.expect("reachable");

    snmpd.stop();
    // On loopback the kernel answers a closed port at once (refused), elsewhere silence times out:
    // either way it is an error.
    let error = probe::snmp_device(&target, TIMEOUT).await.expect_err("agent stopped");
    assert!(matches!(error, ProbeError::Unreachable(_) | ProbeError::Timeout(_)), "{error:?}");
    assert!(probe::snmp_port(&target, "0/1", TIMEOUT).await.is_err());

    // A free-port search elsewhere (bind port 0, let go) may hold the stopped agent's port for a
    // moment; starting again waits for it.
    let held = std::net::UdpSocket::bind(addr).expect("the stopped agent's port is free");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(held);
    });
    snmpd.start_again().await.expect("starts again");
    release.join().unwrap();
    assert_eq!(snmpd.addr(), addr, "same port");
    probe::snmp_device(&target, TIMEOUT).await.expect("reachable again");
    assert_eq!(probe::snmp_port(&target, "1/2", TIMEOUT).await, Ok(PortState::Down), "same config");
}

#[test]
fn snmp_target_debug_hides_the_community() {
    let target = SnmpTarget::new("127.0.0.1:161".parse().unwrap(), COMMUNITY);
    let printed = format!("{target:?}");
    assert!(printed.contains("***") && printed.contains("127.0.0.1:161"), "{printed}");
    assert!(!printed.contains(COMMUNITY), "{printed}");
}

#[tokio::test]
async fn tcp_open_and_closed_ports() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    probe::tcp("127.0.0.1", port, TIMEOUT).await.expect("listening port is reachable");
    probe::tcp("localhost", port, TIMEOUT).await.expect("a name is resolved");
    drop(listener);
    let error = probe::tcp("127.0.0.1", port, TIMEOUT).await.expect_err("closed port");
    assert!(matches!(error, ProbeError::Unreachable(_)), "{error:?}");
}

/// A one-route HTTP server: `/status/<code>` answers with that status. Returns its base URL.
async fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let code = path.strip_prefix("/status/").unwrap_or("404");
                let response = format!("HTTP/1.1 {code} Status\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    base
}

#[tokio::test]
async fn http_2xx_is_reachable_and_other_statuses_are_not() {
    heat_reconciler::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let base = http_server().await;
    probe::http(&client, &format!("{base}/status/200"), TIMEOUT).await.expect("200");
    probe::http(&client, &format!("{base}/status/204"), TIMEOUT).await.expect("204");
    assert_eq!(probe::http(&client, &format!("{base}/status/500"), TIMEOUT).await, Err(ProbeError::HttpStatus(500)));

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://user:pw@{}/", closed.local_addr().unwrap());
    drop(closed);
    let error = probe::http(&client, &url, TIMEOUT).await.expect_err("nothing listens");
    assert!(matches!(error, ProbeError::Unreachable(_)), "{error:?}");
    assert!(!error.to_string().contains("pw"), "{error}");
}

#[tokio::test]
async fn http_server_that_never_answers_times_out() {
    heat_reconciler::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    // Accepts connections (the kernel does, into the backlog) but never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let error = probe::http(&client, &url, TIMEOUT).await.expect_err("no answer");
    assert_eq!(error, ProbeError::Timeout(TIMEOUT));
}

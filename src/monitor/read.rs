//! Carrying out one target's [`Plan`]: the probe calls and what they found.

use super::plan::{Endpoint, Plan, Reading, SnmpEndpoint};
use super::probe::{self, PortReading, PortState, ProbeError, SnmpTarget};
use std::net::SocketAddr;
use std::time::Duration;

/// Reads a target's status once; never takes longer than about `timeout` per member. An
/// interface's reading also says where its name was found, for [`remember`].
pub async fn read(plan: &Plan, timeout: Duration, http: &reqwest::Client) -> (Reading, Option<u64>) {
    let reading = match plan {
        Plan::SnmpPort { device, if_name, if_index } => return port(device, if_name, *if_index, timeout).await,
        Plan::SnmpDevice(device) => match snmp_target(device).await {
            Ok(target) => reading(probe::snmp_device(&target, timeout).await),
            Err(e) => fail(e),
        },
        Plan::Pool(members) => {
            let readings = futures::future::join_all(members.iter().map(|member| tcp(&member.endpoint, timeout))).await;
            Reading::Pool(members.iter().map(|m| m.name.clone()).zip(readings).collect())
        }
        Plan::Tcp(endpoint) => tcp(endpoint, timeout).await,
        Plan::Http(url) => reading(probe::http(http, url, timeout).await),
    };
    (reading, None)
}

/// Keeps where an interface's name was found in its plan, so its next probe is one GET.
pub fn remember(plan: &mut Plan, found: Option<u64>) {
    if let (Plan::SnmpPort { if_index, .. }, Some(found)) = (plan, found) {
        *if_index = Some(found);
    }
}

async fn port(device: &SnmpEndpoint, if_name: &str, hint: Option<u64>, timeout: Duration) -> (Reading, Option<u64>) {
    let target = match snmp_target(device).await {
        Ok(target) => target,
        Err(e) => return (fail(e), None),
    };
    match probe::snmp_port_at(&target, if_name, hint, timeout).await {
        Ok(PortReading { state: PortState::Up, if_index }) => (Reading::Up, Some(if_index)),
        Ok(PortReading { state: PortState::Down, if_index }) => (Reading::Down, Some(if_index)),
        Err(e) => (fail(e), None),
    }
}

async fn tcp(endpoint: &Endpoint, timeout: Duration) -> Reading {
    reading(probe::tcp(&endpoint.host, endpoint.port, timeout).await)
}

fn reading(result: Result<(), ProbeError>) -> Reading {
    match result {
        Ok(()) => Reading::Up,
        Err(e) => fail(e),
    }
}

fn fail(e: ProbeError) -> Reading {
    Reading::Fail(e.to_string())
}

/// SNMP needs an address: an IP literal as it is, a name looked up (first answer).
async fn snmp_target(device: &SnmpEndpoint) -> Result<SnmpTarget, ProbeError> {
    let addr = match device.host.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, device.port),
        Err(_) => tokio::net::lookup_host((device.host.as_str(), device.port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ProbeError::Unreachable(format!("cannot resolve {}", device.host)))?,
    };
    Ok(SnmpTarget { addr, community: device.community.clone() })
}

//! Carrying out one target's [`Plan`]: the probe calls and what they found.

use super::plan::{Endpoint, Plan, Reading, SnmpEndpoint};
use super::probe::{self, PortState, ProbeError, SnmpTarget};
use std::net::SocketAddr;
use std::time::Duration;

/// Reads a target's status once; never takes longer than about `timeout` per member.
pub async fn read(plan: &Plan, timeout: Duration, http: &reqwest::Client) -> Reading {
    match plan {
        Plan::SnmpDevice(device) => match snmp_target(device).await {
            Ok(target) => reading(probe::snmp_device(&target, timeout).await),
            Err(e) => fail(e),
        },
        Plan::SnmpPort { device, if_name } => match snmp_target(device).await {
            Ok(target) => match probe::snmp_port(&target, if_name, timeout).await {
                Ok(PortState::Up) => Reading::Up,
                Ok(PortState::Down) => Reading::Down,
                Err(e) => fail(e),
            },
            Err(e) => fail(e),
        },
        Plan::Pool(members) => {
            let readings = futures::future::join_all(members.iter().map(|member| tcp(&member.endpoint, timeout))).await;
            Reading::Pool(members.iter().map(|m| m.name.clone()).zip(readings).collect())
        }
        Plan::Tcp(endpoint) => tcp(endpoint, timeout).await,
        Plan::Http(url) => reading(probe::http(http, url, timeout).await),
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

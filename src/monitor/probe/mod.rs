//! Probes: one reachability or status reading of one device.
//!
//! Every probe sends its request once and gives up at its timeout, whatever happens on the wire:
//! retries and holding a status (`hold_options`) belong to the monitor loop, which can only keep
//! its schedule if no reading takes longer than it was given. Addresses are taken as they are
//! given (a `SocketAddr` for SNMP, an address literal or a host name for TCP), so a probe of an
//! address does no DNS lookup.

mod net;
mod snmp;

pub use net::{http, tcp};
pub use snmp::{PortReading, PortState, SnmpTarget, snmp_device, snmp_port, snmp_port_at};

use std::future::Future;
use std::time::Duration;

/// Why a probe did not see the device (or the port) as reachable. The messages are short and never
/// carry an SNMP community, so they can go into a log line or a status record as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Nothing (or nothing acceptable) came back in time. An SNMP agent that does not know the
    /// community stays silent, so a wrong community ends here too.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be sent or was refused (e.g. nothing listens on that port).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The agent answered, but none of its interfaces has this `ifName`.
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
    /// The HTTP server answered with a status outside 2xx.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The device answered something a probe cannot use.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Runs one probe with `timeout` as a hard bound: when it elapses the probe's future is dropped,
/// which closes its socket, so nothing of it is left running.
async fn bounded<T>(timeout: Duration, probe: impl Future<Output = Result<T, ProbeError>>) -> Result<T, ProbeError> {
    tokio::time::timeout(timeout, probe).await.unwrap_or(Err(ProbeError::Timeout(timeout)))
}

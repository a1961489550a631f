//! SNMPv2c probes: device reachability (sysUpTime) and the operational status of one interface.

use super::{ProbeError, bounded};
use snmp2::{AsyncSession, Oid, Pdu, Value};
use std::fmt;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// sysUpTime.0: every agent has it, and the original Collector Agent polled it (`oid_sysuptime`).
const SYS_UPTIME_0: &[u64] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
/// IF-MIB ifName column (ifXTable): the names devices and operators use, e.g. `0/1`.
const IF_NAME: &[u64] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1];
/// IF-MIB ifOperStatus column (ifTable); 1 is `up`.
const IF_OPER_STATUS: &[u64] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 8];
/// Rows asked for per GETBULK while looking for a name: a small switch fits in one answer, and
/// 32 short names stay far below any UDP size limit.
const BULK_ROWS: u32 = 32;

static SYS_UPTIME_0_OID: LazyLock<Result<Oid<'static>, ProbeError>> = LazyLock::new(|| oid(SYS_UPTIME_0));

/// An SNMPv2c agent: where it listens and the community that reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct SnmpTarget {
    pub addr: SocketAddr,
    /// A secret: never printed (see the `Debug` impl) nor put into an error.
    pub community: String,
}

impl SnmpTarget {
    pub fn new(addr: SocketAddr, community: impl Into<String>) -> SnmpTarget {
        SnmpTarget { addr, community: community.into() }
    }
}

impl fmt::Debug for SnmpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnmpTarget").field("addr", &self.addr).field("community", &"***").finish()
    }
}

/// The operational status of an interface: `Up` is ifOperStatus `up(1)`; every other value
/// (down, testing, dormant, lowerLayerDown, ...) cannot carry traffic and is `Down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    Up,
    Down,
}

/// Whether the agent at `target` answers a GET of sysUpTime.0 under its community.
pub async fn snmp_device(target: &SnmpTarget, timeout: Duration) -> Result<(), ProbeError> {
    bounded(timeout, async {
        let oid = SYS_UPTIME_0_OID.as_ref().map_err(Clone::clone)?;
        let mut session = session(target).await?;
        // Any answer under our community proves the agent is there: what it says about sysUpTime
        // (even noSuchObject) does not change that.
        session.get(oid).await.map_err(snmp_error)?;
        Ok(())
    })
    .await
}

/// The operational status of the interface whose ifName is `if_name`, found by walking the ifName
/// column and then reading that row's ifOperStatus. The walk and the read share the one timeout.
pub async fn snmp_port(target: &SnmpTarget, if_name: &str, timeout: Duration) -> Result<PortState, ProbeError> {
    snmp_port_at(target, if_name, None, timeout).await.map(|reading| reading.state)
}

/// What [`snmp_port_at`] read: the state, and the ifIndex where the name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortReading {
    pub state: PortState,
    pub if_index: u64,
}

/// [`snmp_port`] for a caller that remembers where the name was last found: with `if_index_hint`
/// one GET reads that row's ifName and ifOperStatus together, and only when the row no longer has
/// that name (the device renumbered its interfaces) is the column walked. Against a real switch
/// this saves the walk's round trips (several for a few hundred ports) on every probe but the
/// first.
pub async fn snmp_port_at(
    target: &SnmpTarget,
    if_name: &str,
    if_index_hint: Option<u64>,
    timeout: Duration,
) -> Result<PortReading, ProbeError> {
    bounded(timeout, async {
        let mut session = session(target).await?;
        if let Some(index) = if_index_hint
            && let Some(state) = read_row(&mut session, if_name, index).await?
        {
            return Ok(PortReading { state, if_index: index });
        }
        let index = find_interface(&mut session, if_name).await?;
        match read_row(&mut session, if_name, index).await? {
            Some(state) => Ok(PortReading { state, if_index: index }),
            // Renamed between the walk and the read.
            None => Err(ProbeError::NoSuchInterface(if_name.to_owned())),
        }
    })
    .await
}

/// The state of row `index` if its ifName is still `if_name`, else `None`.
async fn read_row(session: &mut AsyncSession, if_name: &str, index: u64) -> Result<Option<PortState>, ProbeError> {
    let name = oid(&[IF_NAME, &[index]].concat())?;
    let oper_status = oid(&[IF_OPER_STATUS, &[index]].concat())?;
    let mut pdu = session.get_many(&[&name, &oper_status]).await.map_err(snmp_error)?;
    check_error_status(&pdu)?;
    match pdu.varbinds.next() {
        Some((_, Value::OctetString(found))) if found == if_name.as_bytes() => {}
        Some(_) => return Ok(None),
        None => return Err(ProbeError::Protocol("empty response to a GET".into())),
    }
    match pdu.varbinds.next() {
        Some((_, Value::Integer(1))) => Ok(Some(PortState::Up)),
        Some((_, Value::Integer(_))) => Ok(Some(PortState::Down)),
        Some((_, Value::NoSuchObject | Value::NoSuchInstance)) => {
            Err(ProbeError::Protocol(format!("interface {if_name:?} (ifIndex {index}) has no ifOperStatus")))
        }
        Some(_) => Err(ProbeError::Protocol(format!("ifOperStatus of {if_name:?} is not an integer"))),
        None => Err(ProbeError::Protocol("short response to a GET".into())),
    }
}

/// A fresh UDP socket for one probe: nothing is shared between probes, so a late answer to an
/// abandoned probe can only reach a socket that is already closed.
async fn session(target: &SnmpTarget) -> Result<AsyncSession, ProbeError> {
    // Distinct request ids across probes cost nothing and make a misrouted answer fail the
    // crate's id check instead of being taken for ours. Kept positive: some agents mishandle
    // negative ids.
    static NEXT_REQUEST_ID: AtomicI32 = AtomicI32::new(1);
    let request_id = NEXT_REQUEST_ID.fetch_add(16, Ordering::Relaxed) & 0x3fff_ffff;
    // A `SocketAddr` resolves without DNS.
    AsyncSession::new_v2c(target.addr, target.community.as_bytes(), request_id)
        .await
        .map_err(|e| ProbeError::Unreachable(e.to_string()))
}

/// The ifIndex of the row whose ifName equals `if_name`.
async fn find_interface(session: &mut AsyncSession, if_name: &str) -> Result<u64, ProbeError> {
    let mut cursor = IF_NAME.to_vec();
    loop {
        let start = oid(&cursor)?;
        let pdu = session.getbulk(&[&start], 0, BULK_ROWS).await.map_err(snmp_error)?;
        check_error_status(&pdu)?;
        let mut advanced = false;
        for (name, value) in pdu.varbinds {
            let arcs: Vec<u64> = match name.iter() {
                Some(arcs) => arcs.collect(),
                None => return Err(ProbeError::Protocol("an OID arc does not fit 64 bits".into())),
            };
            if !arcs.starts_with(IF_NAME) || matches!(value, Value::EndOfMibView) {
                return Err(ProbeError::NoSuchInterface(if_name.to_owned()));
            }
            // A walk must move forward; an agent that repeats itself would keep us busy until
            // the timeout and then be reported as silent.
            if arcs <= cursor {
                return Err(ProbeError::Protocol("the agent returned ifName rows out of order".into()));
            }
            if let Value::OctetString(found) = value
                && found == if_name.as_bytes()
            {
                return match arcs[IF_NAME.len()..] {
                    [index] => Ok(index),
                    _ => Err(ProbeError::Protocol(format!("ifName of {if_name:?} has a malformed index"))),
                };
            }
            cursor = arcs;
            advanced = true;
        }
        if !advanced {
            return Err(ProbeError::Protocol("empty response to a GETBULK".into()));
        }
    }
}

fn oid(arcs: &[u64]) -> Result<Oid<'static>, ProbeError> {
    Oid::from(arcs).map_err(|e| ProbeError::Protocol(format!("cannot encode an OID: {e:?}")))
}

fn check_error_status(pdu: &Pdu<'_>) -> Result<(), ProbeError> {
    match pdu.error_status {
        0 => Ok(()),
        status => Err(ProbeError::Protocol(format!("agent error-status {status} (index {})", pdu.error_index))),
    }
}

fn snmp_error(error: snmp2::Error) -> ProbeError {
    match error {
        // The crate drops the io::Error; on a connected UDP socket the usual cause is an ICMP port
        // unreachable from a host where no agent listens.
        snmp2::Error::Send | snmp2::Error::Receive => {
            ProbeError::Unreachable("request refused (no SNMP agent listening?)".into())
        }
        // The community is not part of the crate's messages (CommunityMismatch names none).
        other => ProbeError::Protocol(other.to_string()),
    }
}

//! How an elected role runs, the same for each of them (planner, monitor prober, mirror, drift
//! repair): campaign on its etcd key, lead until the lease is lost or leading fails, give the
//! lead up, campaign again — until shutdown. The leader gauge and the role's health follow along.

use crate::shutdown::shut_down;
use crate::store::{ErrorLog, Leadership, Store, campaign, retried};
use crate::telemetry::{Heartbeat, health, leading};
use futures::future::BoxFuture;
use std::time::Duration;
use tokio::sync::watch;

/// One role's election.
#[derive(Debug, Clone)]
pub struct Election {
    /// The role's name in logs, metrics and health (`planner`).
    pub role: String,
    /// The etcd key the leader holds.
    pub key: String,
    /// This process's id, the key's value while it leads.
    pub id: String,
    pub ttl: Duration,
}

/// Runs `lead` whenever this process leads, until `shutdown` turns true. `lead` gets the
/// leadership (to guard its writes) and the role's heartbeat (to beat from its loop and say when
/// it is ready); it returns only when it fails.
pub async fn lead_while_elected(
    store: &Store,
    election: &Election,
    mut shutdown: watch::Receiver<bool>,
    mut lead: impl for<'a> FnMut(&'a Leadership, &'a mut Heartbeat) -> BoxFuture<'a, anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let role = election.role.as_str();
    let mut heartbeat = health().register(role);
    // A leader that keeps failing for one cause (a right etcd refuses) says so once.
    let mut errors = ErrorLog::default();
    let leading_writes = format!("read and write the {role}'s keys");
    loop {
        heartbeat.standby();
        let leadership = tokio::select! {
            leadership = campaign(store, &election.key, &election.id, election.ttl) => leadership?,
            _ = shut_down(&mut shutdown) => return Ok(()),
        };
        heartbeat.active("leading: reading etcd");
        let gauge = leading(role);
        let began = tokio::time::Instant::now();
        tokio::select! {
            result = lead(&leadership, &mut heartbeat) => {
                // A failure after a good while is news again, whatever the last one was.
                if began.elapsed() > Duration::from_secs(60) {
                    errors = ErrorLog::default();
                }
                match result {
                    Err(e) => {
                        retried!(errors, store, e.as_ref(), &leading_writes, role, "stopped leading; standing down")
                    }
                    Ok(()) => tracing::warn!(role, "stopped leading; standing down"),
                }
                // Give the lead up at once (a standby need not wait for the TTL); whoever leads
                // next starts from a fresh list, as after any restart.
                leadership.resign().await;
            }
            _ = leadership.lease.lost() => tracing::warn!(role, "leader lease lost; standing down"),
            _ = shut_down(&mut shutdown) => {
                leadership.resign().await;
                return Ok(());
            }
        }
        drop(gauge);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

//! Local services for tests, benchmarks and the demo: real programs (etcd, snmpd, Heat,
//! Keystone, kube-apiserver) started on loopback. The processes this code starts itself run under
//! one guard (`process::ChildProcess`); Heat and Keystone are daemons of the project's own
//! scripts, known by port and state dir. No product module starts anything.

pub mod certs;
pub(crate) mod etcd;
pub mod heat;
pub mod keystone;
pub mod kube_apiserver;
pub mod ports;
pub(crate) mod process;
pub(crate) mod snmpd;

pub use etcd::{CLIENT_CERT_NAME, EtcdSecurity, LocalEtcd};
pub use heat::LocalHeat;
pub use kube_apiserver::LocalKubeApiserver;
pub use snmpd::LocalSnmpd;

use std::path::PathBuf;

/// `${HEAT_RECONCILER_HOME:-~/.cache/heat-reconciler}`: where installs and caches of the local
/// services live (Heat's venv, Keystone's, the Kubernetes binaries).
pub fn cache_home() -> PathBuf {
    std::env::var_os("HEAT_RECONCILER_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/heat-reconciler")
    })
}

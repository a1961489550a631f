//! The fixed loopback ports of the local services that are shared rather than owned: every other
//! local service (etcd, snmpd, a kube-apiserver, a test's own Heat) takes free ports, which are
//! picked from 20000 up, clear of these.

/// The standalone Heat the tests share (started by the first test that needs it, left running
/// for the next test binary; `scripts/test.sh` stops it at the end).
pub const TEST_HEAT: u16 = 18004;
/// The Keystone of `tests/keystone.rs`, whose catalog points at [`TEST_HEAT`].
pub const TEST_KEYSTONE: u16 = 18005;
/// The TLS proxy `tests/heat_tls.rs` puts in front of [`TEST_HEAT`] while it runs: the admin
/// orchestration endpoint of [`TEST_KEYSTONE`]'s catalog is `https://127.0.0.1:18006`.
pub const TEST_HEAT_TLS: u16 = 18006;
/// The Heat `demo` and `replay --worker heat` start afresh (no stacks) on every run.
pub const DEMO_HEAT: u16 = 18104;

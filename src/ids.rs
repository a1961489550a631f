//! Ids this process makes up: its name in leader elections and the reservation ids of its claims.

/// A fresh process id, e.g. `heat-reconciler-1f3a9c0e5b7d2a64`.
pub fn random_id() -> String {
    format!("heat-reconciler-{:016x}", rand::random::<u64>())
}

/// A fresh reservation id, the value of a `/jobs/working` claim, e.g. `1f3a9c0e5b7d2a64`.
pub fn reservation_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

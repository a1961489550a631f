//! Probes: one reachability or status reading of one device.

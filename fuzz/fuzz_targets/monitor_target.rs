//! The monitor API's request bodies (`POST /targets`, `PUT /targets/<id>`).
#![no_main]

use heat_reconciler::monitor::target::{Target, TargetSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(spec) = TargetSpec::from_json(body) else { return };
    // What the API and the probes then read from an accepted spec.
    let _ = spec.status_key();
    let _ = spec.hold_options();
    let _ = spec.writes_status();
    let _ = spec.monitoring_key();
    let _ = spec.property("host");
    // The API answers the registered target, masked.
    let target =
        Target { id: "t".into(), link: String::new(), created_at: String::new(), monitorer: String::new(), spec };
    let _ = target.masked();
});

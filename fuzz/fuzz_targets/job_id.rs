//! Job ids as found in `/jobs/...` keys and job records.
#![no_main]

use heat_reconciler::protocol::JobId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(id) = text.parse::<JobId>() {
        // What parses must print back to an id that parses to the same parts: the planner
        // writes ids it generated and the worker parses them again.
        let again: JobId = id.to_string().parse().expect("a printed job id parses");
        assert_eq!(again, id);
        let _ = id.identity();
    }
});

//! Every etcd record kind, as the watches and lists decode them: the input is the key, a
//! newline, then the raw value (so one corpus covers `/config` bodies, templates, jobs, …).
#![no_main]

use heat_reconciler::protocol::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else { return };
    let Ok(key) = std::str::from_utf8(&data[..newline]) else { return };
    let Ok(record) = Record::from_etcd(key, &data[newline + 1..]) else { return };
    // The roles write records they decoded (or built alike) back: what was accepted must
    // encode, and decode to the same record.
    let bytes = record.to_etcd().expect("a decoded record encodes");
    let again = Record::from_etcd(key, &bytes).expect("an encoded record decodes");
    assert_eq!(again, record);
});

//! Heat's and Keystone's answers as the client reads them (`heat::answer`,
//! `heat::keystone::session_from_answer`): status, headers and body in, what the client makes of
//! it out. A refusal goes on as a worker writes it: its text masked of the job's secrets, into a
//! `/state` record that must encode and decode to the same text.
//!
//! Input, shaped like an HTTP answer: `<call> <status>`, then `Name: value` header lines, an empty
//! line and the body. `<call>` is the client call answered: `find`, `show`, `create`, `update`,
//! `delete`, `outputs`, `output`, `template`, `preview`, `events`, `stacks`, `token`.
#![no_main]

use heat_reconciler::heat::HeatError;
use heat_reconciler::heat::answer::{self, Answer};
use heat_reconciler::heat::keystone::session_from_answer;
use heat_reconciler::protocol::{Action, Record, StateRecord};
use heat_reconciler::secrets::Secrets;
use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::sync::LazyLock;

/// A job's secret, as a corpus job carries it: it must never reach `/state`.
const SECRET: &str = "RBvaP4je2j5Q";
static SECRETS: LazyLock<Secrets> =
    LazyLock::new(|| Secrets::collect([("resource_input", &json!({"admin_password": SECRET}))]));

fuzz_target!(|data: &[u8]| {
    let Some((call, answer)) = parse(data) else { return };
    let failed = match call.as_str() {
        "find" => answer::found(&answer).err(),
        "show" => answer::shown(&answer).err(),
        "create" => answer::created(&answer, "lb").err(),
        "update" => answer::updated(&answer).err(),
        "delete" => answer::deleted(&answer).err(),
        "outputs" => answer::json::<Value>(&answer).map(|listed| answer::output_keys(&listed)).err(),
        "output" => answer::json::<Value>(&answer).and_then(|shown| answer::output("k", &shown)).err(),
        "template" => answer::json::<Value>(&answer).err(),
        "preview" => answer::json::<Value>(&answer).and_then(|changes| answer::preview(&changes)).err(),
        "events" => answer::json::<Value>(&answer).and_then(|listed| answer::failed_events(&listed, 3)).err(),
        "stacks" => answer::json::<Value>(&answer).and_then(|listed| answer::stack_page(&listed)).err(),
        "token" => {
            let _ = session_from_answer(&answer, "internal", Some("RegionOne"));
            session_from_answer(&answer, "public", None).err()
        }
        _ => return,
    };
    if let Some(error) = failed {
        to_state(&error);
    }
});

/// `<call> <status>\nName: value\n…\n\nbody` → the call and the answer. Header lines that HTTP
/// would not carry are left out (no client ever sees them).
fn parse(data: &[u8]) -> Option<(String, Answer)> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (call, status) = lines.next()?.split_once(' ')?;
    let status = status.trim().parse::<u16>().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes())
            && let Ok(value) = HeaderValue::from_str(value.trim())
        {
            headers.append(name, value);
        }
    }
    Some((call.to_owned(), Answer { status, headers, body: body.to_vec() }))
}

/// What the worker writes of a failed call (`worker::execute`): the error's text, masked, as
/// `/state`'s `error`.
fn to_state(error: &HeatError) {
    let text = SECRETS.mask(&error.to_string());
    assert!(!text.contains(SECRET), "a secret in the error text: {text}");
    if let HeatError::Status { status, .. } = error {
        // heatclient's exception names: `HTTPNotFound: …`, `HTTPException 418: …`.
        assert!(text.starts_with("HTTP"), "{status}: {text}");
    }
    let state = Record::State(StateRecord::failed(Action::Create, text.clone(), 1));
    let bytes = state.to_etcd().expect("a state record encodes");
    let again = Record::from_etcd("/state/v2.0/networks/n1", &bytes).expect("a state record decodes");
    assert_eq!(again, state);
    let _ = error.is_transient();
}

//! Heat's JSON answers, as the client reads them: a stack (`GET /stacks/<name>/<id>`), the
//! failed events list and an update preview. One input is tried as each.
#![no_main]

use heat_reconciler::heat::{Event, PreviewChanges, Stack, StackRef};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = serde_json::from_slice::<Value>(data) else { return };
    if let Some(stack) = answer.get("stack")
        && let Ok(stack) = serde_json::from_value::<Stack>(stack.clone())
    {
        let stack_ref = StackRef { name: stack.stack_name.clone(), id: stack.id.clone() };
        if let Some(events) = answer.get("events")
            && let Ok(events) = serde_json::from_value::<Vec<Event>>(events.clone())
        {
            for event in &events {
                let _ = event.is_stack_event(&stack_ref);
            }
        }
    }
    if let Some(events) = answer.get("events") {
        let _ = serde_json::from_value::<Vec<Event>>(events.clone());
    }
    if let Some(changes) = answer.get("resource_changes") {
        let _ = serde_json::from_value::<PreviewChanges>(changes.clone());
    }
});

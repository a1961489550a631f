//! What the client makes of Heat's answers: status, headers and body in, a stack, a list, an
//! event or a [`HeatError`] out. No I/O: [`super::HeatClient`] sends the request and reads the
//! answer whole; each of its calls hands the answer to one function here. (The fuzz target
//! `heat_answer` feeds them the same way.)

use super::{Event, HeatError, PreviewChanges, Stack, StackRef};
use reqwest::header::{HeaderMap, LOCATION};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One HTTP answer, read whole.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Any 2xx.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A refused call, as heatclient raised it and as `/state`'s error text shows it
/// (`HTTPInternalServerError: {"explanation": …}`): the status and Heat's body, whatever it is.
pub fn refused(answer: &Answer) -> HeatError {
    HeatError::Status { status: answer.status, body: String::from_utf8_lossy(&answer.body).into_owned() }
}

/// A body that should be JSON of `T`. One that is not reads as reqwest reported it (a
/// [`HeatError::Transport`], as a body broken off on the way).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, HeatError> {
    serde_json::from_slice(body).map_err(|e| HeatError::Transport(format!("error decoding response body: {e}")))
}

/// A call whose success (any 2xx) answers JSON: that answer, or the refusal.
pub fn json<T: DeserializeOwned>(answer: &Answer) -> Result<T, HeatError> {
    if !is_success(answer.status) {
        return Err(refused(answer));
    }
    decode(&answer.body)
}

/// `GET /stacks/<name>`: Heat redirects to `/stacks/<name>/<id>` (some deployments answer the
/// stack itself); 404 is no such stack.
pub fn found(answer: &Answer) -> Result<Option<StackRef>, HeatError> {
    match answer.status {
        404 => Ok(None),
        301..=303 => {
            let location = answer.headers.get(LOCATION).and_then(|l| l.to_str().ok()).unwrap_or_default();
            stack_location(location)
                .map(Some)
                .ok_or_else(|| HeatError::Protocol(format!("redirect to `{location}` names no stack")))
        }
        200 => {
            let shown: StackEnvelope = decode(&answer.body)?;
            Ok(Some(StackRef { name: shown.stack.stack_name, id: shown.stack.id }))
        }
        _ => Err(refused(answer)),
    }
}

/// `GET /stacks/<name>/<id>`: the stack.
pub fn shown(answer: &Answer) -> Result<Stack, HeatError> {
    json::<StackEnvelope>(answer).map(|shown| shown.stack)
}

/// `POST /stacks` (201): the new stack's id, under the name it was created with.
pub fn created(answer: &Answer, name: &str) -> Result<StackRef, HeatError> {
    if answer.status != 201 {
        return Err(refused(answer));
    }
    let created: Value = decode(&answer.body)?;
    let id = created.pointer("/stack/id").and_then(Value::as_str).unwrap_or_default().to_owned();
    if id.is_empty() {
        return Err(HeatError::Protocol(format!("create answered without a stack id: {created}")));
    }
    Ok(StackRef { name: name.to_owned(), id })
}

/// `PUT /stacks/<name>/<id>`: accepted (202) or refused.
pub fn updated(answer: &Answer) -> Result<(), HeatError> {
    match answer.status {
        202 => Ok(()),
        _ => Err(refused(answer)),
    }
}

/// `DELETE /stacks/<name>/<id>`: accepted, done, or already gone.
pub fn deleted(answer: &Answer) -> Result<(), HeatError> {
    match answer.status {
        204 | 202 | 404 => Ok(()),
        _ => Err(refused(answer)),
    }
}

/// `GET /stacks/<name>/<id>/outputs`: the output keys listed.
pub fn output_keys(listed: &Value) -> Vec<String> {
    listed["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("output_key").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// `GET /stacks/<name>/<id>/outputs/<key>`: the output with its value.
pub fn output(key: &str, shown: &Value) -> Result<Map<String, Value>, HeatError> {
    match shown.get("output") {
        Some(Value::Object(output)) => Ok(output.clone()),
        _ => Err(HeatError::Protocol(format!("output `{key}` came back as {shown}"))),
    }
}

/// `PUT /stacks/<name>/<id>/preview`: what the update would do.
pub fn preview(answer: &Value) -> Result<PreviewChanges, HeatError> {
    let changes = answer
        .get("resource_changes")
        .ok_or_else(|| HeatError::Protocol(format!("preview answered without `resource_changes`: {answer}")))?;
    serde_json::from_value(changes.clone())
        .map_err(|e| HeatError::Protocol(format!("preview answered an unexpected `resource_changes`: {e}")))
}

/// `GET /stacks/<name>/<id>/events?resource_status=FAILED…`: the failed events, newest first, at
/// most `limit`.
pub fn failed_events(listed: &Value, limit: usize) -> Result<Vec<Event>, HeatError> {
    let events =
        listed.get("events").ok_or_else(|| HeatError::Protocol(format!("event list without `events`: {listed}")))?;
    let mut events: Vec<Event> = serde_json::from_value(events.clone())
        .map_err(|e| HeatError::Protocol(format!("event list with an unexpected event: {e}")))?;
    // Heat filters and sorts already; a deployment that ignored the query would not.
    events.retain(|e| e.resource_status.ends_with("_FAILED"));
    events.sort_by(|a, b| b.event_time.cmp(&a.event_time));
    events.truncate(limit);
    Ok(events)
}

/// One page of `GET /stacks?limit=…`: each stack's name, id and status (a field Heat left out
/// reads empty).
pub fn stack_page(listed: &Value) -> Result<Vec<(StackRef, String)>, HeatError> {
    let page = listed["stacks"]
        .as_array()
        .ok_or_else(|| HeatError::Protocol(format!("stack list without `stacks`: {listed}")))?;
    Ok(page
        .iter()
        .map(|stack| {
            let field = |name: &str| stack.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
            (StackRef { name: field("stack_name"), id: field("id") }, field("stack_status"))
        })
        .collect())
}

#[derive(Deserialize)]
struct StackEnvelope {
    stack: Stack,
}

/// `…/stacks/<name>/<id>` → the stack's name and id.
fn stack_location(location: &str) -> Option<StackRef> {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let id = segments.next()?;
    let name = segments.next()?;
    (segments.next() == Some("stacks") && !id.is_empty()).then(|| StackRef { name: name.to_owned(), id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, headers: HeaderMap::new(), body: body.as_bytes().to_vec() }
    }

    #[test]
    fn stack_location_names_the_stack() {
        let found = stack_location("http://127.0.0.1:8004/v1/admin/stacks/load_balancer_b311/7e4f-11").unwrap();
        assert_eq!(found, StackRef { name: "load_balancer_b311".into(), id: "7e4f-11".into() });
        assert_eq!(stack_location("http://h/v1/admin/other/a/b"), None);
    }

    #[test]
    fn a_stack_is_found_by_its_redirect_or_its_body() {
        let mut redirect = answer(302, "");
        redirect.headers.insert(LOCATION, HeaderValue::from_static("http://h/v1/t/stacks/lb/7e4f?x=1"));
        assert_eq!(found(&redirect).unwrap(), Some(StackRef { name: "lb".into(), id: "7e4f".into() }));
        let direct = answer(200, r#"{"stack": {"id": "7e4f", "stack_name": "lb", "stack_status": "CREATE_COMPLETE"}}"#);
        assert_eq!(found(&direct).unwrap(), Some(StackRef { name: "lb".into(), id: "7e4f".into() }));
        assert_eq!(found(&answer(404, "")).unwrap(), None);
        let nowhere = found(&answer(302, "")).unwrap_err().to_string();
        assert_eq!(nowhere, "unexpected Heat response: redirect to `` names no stack");
    }

    #[test]
    fn a_refusal_keeps_heats_explanation_and_a_bad_body_reads_as_reqwest_said() {
        let body = r#"{"explanation": "The server has either erred", "code": 500, "title": "Internal Server Error"}"#;
        let error = json::<Value>(&answer(500, body)).unwrap_err();
        assert_eq!(error.to_string(), format!("HTTPInternalServerError: {body}"));
        let error = created(&answer(201, "<html>"), "lb").unwrap_err();
        assert!(matches!(&error, HeatError::Transport(text) if text.starts_with("error decoding response body: ")));
        assert!(error.is_transient());
        let error = created(&answer(201, r#"{"stack": {}}"#), "lb").unwrap_err();
        assert!(matches!(error, HeatError::Protocol(_)), "{error}");
    }

    /// An answer a real Heat gave (`fuzz/heat_answers/`, recorded by `fuzz/heat_answers.py` from
    /// Heat 27.0.1): `<call> <status>`, headers, an empty line, the body.
    fn recorded(name: &str) -> Answer {
        let path = format!("{}/fuzz/heat_answers/{name}.http", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (head, body) = text.split_once("\n\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split_once(' ').unwrap().1.parse().unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in lines.filter_map(|l| l.split_once(": ")) {
            headers.append(reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        Answer { status, headers, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn a_real_heats_answers_read_as_the_client_expects() {
        let lb = created(&recorded("create_201"), "lb_1").unwrap();
        assert_eq!(found(&recorded("find_302")).unwrap(), Some(lb.clone()));
        assert_eq!(found(&recorded("find_404")).unwrap(), None);
        let stack = shown(&recorded("show_200")).unwrap();
        assert_eq!((stack.id.as_str(), stack.stack_status.as_str()), (lb.id.as_str(), "CREATE_COMPLETE"));
        let exists = created(&recorded("create_409_exists"), "lb_1").unwrap_err();
        assert!(matches!(exists, HeatError::Status { status: 409, .. }));
        assert!(exists.to_string().starts_with("HTTPConflict: {"), "{exists}");
        assert!(exists.to_string().contains("The Stack (lb_1) already exists."), "{exists}");
        let invalid = updated(&recorded("update_400_invalid")).unwrap_err().to_string();
        assert!(invalid.starts_with("HTTPBadRequest: ") && invalid.contains("StackValidationFailed"), "{invalid}");
        assert_eq!(output_keys(&json(&recorded("outputs_200")).unwrap()), ["colour"]);
        assert_eq!(output("colour", &json(&recorded("output_200")).unwrap()).unwrap()["output_value"], "blue");
        assert_eq!(preview(&json(&recorded("preview_200")).unwrap()).unwrap().updated[0].resource_name, "probe");
        let events = failed_events(&json(&recorded("events_200")).unwrap(), 3).unwrap();
        assert!(
            events.iter().any(|e| e.resource_name == "probe" && e.resource_status == "CREATE_FAILED"),
            "{events:?}"
        );
        let page = stack_page(&json(&recorded("stacks_200")).unwrap()).unwrap();
        assert_eq!(page.len(), 2, "{page:?}");
        assert!(deleted(&recorded("delete_204")).is_ok() && deleted(&recorded("delete_404")).is_ok());
    }

    #[test]
    fn a_stack_page_reads_missing_fields_as_empty() {
        let page = stack_page(&serde_json::json!({"stacks": [{"id": "1", "stack_name": "a"}, {}]})).unwrap();
        assert_eq!(page[0], (StackRef { name: "a".into(), id: "1".into() }, String::new()));
        assert_eq!(page[1].0.id, "");
        assert!(stack_page(&serde_json::json!({"error": "x"})).is_err());
    }
}

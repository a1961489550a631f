//! The OpenStack Heat v1 REST client: find, create, update (PUT, never PATCH), delete and show
//! stacks, with errors that carry Heat's own explanation text; and the read-only calls the
//! operator's commands use (a stack's template, an update preview, its failed events).
//! Authentication is either none (a standalone Heat) or Keystone v3 ([`keystone`]); which CAs
//! both trust over TLS is [`trust`]'s.

pub mod answer;
pub mod keystone;
pub mod trust;

use crate::telemetry::metrics::{HeatCallLabels, HeatErrorLabels};
use answer::Answer;
use keystone::Keystone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use trust::{Refusal, Service, Trust};

/// How requests are authenticated and where Heat is.
#[derive(Clone)]
pub enum Endpoint {
    /// A standalone Heat without Keystone: `http://127.0.0.1:8004` (the `/v1/<tenant>` part is
    /// added per request).
    NoAuth { base: String },
    /// Keystone v3: the orchestration endpoint comes from the catalog.
    Keystone(Keystone),
}

/// A stack found by name: Heat's name and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRef {
    pub name: String,
    pub id: String,
}

/// One stack as `GET /stacks/<name>/<id>` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Stack {
    pub id: String,
    pub stack_name: String,
    pub stack_status: String,
    #[serde(default)]
    pub stack_status_reason: String,
    /// When the last update or delete began (`None` for a stack never updated): a newer value
    /// means a newer operation.
    #[serde(default)]
    pub updated_time: Option<String>,
    /// Heat's outputs as returned (`output_key`, `output_value`, `description`, …).
    #[serde(default)]
    pub outputs: Vec<Map<String, Value>>,
    /// The parameters as Heat holds them: every value a string in Python's `str()` form (`"3"`,
    /// `"True"`, JSON as `json.dumps`, lists comma-joined), defaults filled in, `hidden` ones as
    /// `******`, and Heat's own `OS::stack_id`, `OS::stack_name`, `OS::project_id`.
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default)]
    pub timeout_mins: Option<u64>,
}

/// What `PUT /stacks/<name>/<id>/preview` says an update would do, resource by resource (Heat 27:
/// `{"resource_changes": {"added": […], "deleted": […], "replaced": […], "updated": […],
/// "unchanged": […]}}`). Heat cannot promise it: resource plugins may still decide to replace at
/// run time. A resource Heat holds `*_FAILED` is always `replaced`, even by an identical template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewChanges {
    #[serde(default)]
    pub added: Vec<PreviewResource>,
    #[serde(default)]
    pub deleted: Vec<PreviewResource>,
    #[serde(default)]
    pub replaced: Vec<PreviewResource>,
    #[serde(default)]
    pub updated: Vec<PreviewResource>,
    #[serde(default)]
    pub unchanged: Vec<PreviewResource>,
}

/// One resource of a [`PreviewChanges`]. Heat's entry carries much more (the resource's current
/// `attributes` among it, which may hold secrets); only what names the resource is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewResource {
    pub resource_name: String,
    #[serde(default)]
    pub resource_type: String,
    /// Empty for a resource to be added.
    #[serde(default)]
    pub physical_resource_id: String,
}

/// One event of a stack as `GET /stacks/<name>/<id>/events` lists it (see
/// [`HeatClient::failed_events`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// The template's name of the resource; for an event of the stack itself, the stack's name.
    pub resource_name: String,
    /// The resource's id in its service; for an event of the stack itself, the stack's id.
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    /// Action and status joined, as Heat's API shows them: `CREATE_FAILED`, `UPDATE_FAILED`, …
    pub resource_status: String,
    /// Heat's reason: `ValueError: resources.probe: Test Resource failed probe`; on the stack's
    /// own event: `Resource CREATE failed: …`.
    #[serde(default)]
    pub resource_status_reason: String,
    /// ISO 8601, whole seconds (`2026-12-01T06:37:50Z`): several events often share one.
    pub event_time: String,
}

impl Event {
    /// Whether the event is the stack's own (the stack's rollup of a resource's failure, or a
    /// failure of the stack as a whole such as a timeout) rather than a resource's.
    pub fn is_stack_event(&self, stack: &StackRef) -> bool {
        self.physical_resource_id.as_deref() == Some(stack.id.as_str())
    }
}

/// What a create or update sends.
#[derive(Debug, Clone, Serialize)]
pub struct StackRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_name: Option<String>,
    /// The rendered template, sent exactly as rendered (YAML text).
    pub template: String,
    pub parameters: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_mins: Option<u64>,
    pub disable_rollback: bool,
}

/// A failed Heat call. `Display` reads like the original worker's heatclient exceptions:
/// `HTTPInternalServerError: {"explanation": …}`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HeatError {
    #[error("{}: {body}", status_name(*.status))]
    Status { status: u16, body: String },
    #[error("cannot reach Heat: {0}")]
    Transport(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("unexpected Heat response: {0}")]
    Protocol(String),
    /// The server's TLS certificate was refused (see [`trust`]); `trusted` names the CAs the
    /// client trusts, when known.
    #[error("TLS: {service} at {origin}: {}", .refusal.describe(.trusted.as_deref()))]
    Untrusted { service: Service, origin: String, refusal: Refusal, trusted: Option<String> },
}

impl HeatError {
    /// Worth retrying later: Heat or the network is down, not the request wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            HeatError::Transport(_) => true,
            HeatError::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

/// The heatclient exception name of an HTTP status.
fn status_name(status: u16) -> String {
    let name = match status {
        400 => "HTTPBadRequest",
        401 => "HTTPUnauthorized",
        403 => "HTTPForbidden",
        404 => "HTTPNotFound",
        405 => "HTTPMethodNotAllowed",
        409 => "HTTPConflict",
        413 => "HTTPOverLimit",
        415 => "HTTPUnsupported",
        500 => "HTTPInternalServerError",
        501 => "HTTPNotImplemented",
        502 => "HTTPBadGateway",
        503 => "HTTPServiceUnavailable",
        other => return format!("HTTPException {other}"),
    };
    name.to_owned()
}

/// The root of a standalone Heat from what an operator may give: `http://host:port`, or the
/// orchestration endpoint `http://host:port/v1/<tenant>` (what `heat/start-heat.sh` prints; the
/// tenant is dropped: every call uses the resource's own). Anything else is refused, saying which
/// form is expected.
pub fn standalone_base(url: &str) -> Result<String, HeatError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        HeatError::Protocol(format!("--heat-url `{url}` is not a URL ({e}); expected http://HOST:PORT"))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(HeatError::Protocol(format!("--heat-url `{url}`: expected http://HOST:PORT or https://HOST:PORT")));
    }
    let segments: Vec<&str> = parsed.path().split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] | ["v1"] | ["v1", _] => {}
        _ => {
            return Err(HeatError::Protocol(format!(
                "--heat-url `{url}`: expected the Heat root http://HOST:PORT (or its endpoint http://HOST:PORT/v1/TENANT)"
            )));
        }
    }
    let mut base = parsed.clone();
    base.set_path("");
    base.set_query(None);
    Ok(base.as_str().trim_end_matches('/').to_owned())
}

/// Stacks per page of a stack list: Heat answers as many as asked, and 500 keeps one answer
/// (about 650 bytes a stack) well under a megabyte.
pub const LIST_PAGE: usize = 500;

#[derive(Clone)]
pub struct HeatClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    trust: Trust,
    calls: Arc<CallCounter>,
}

/// How many requests a client and its clones have sent to Heat, for tests and benchmarks that
/// count what a piece of work costs. (The `heat_call_duration_seconds` metric is process-wide
/// and knows only the HTTP method, which does not tell a stack list from a stack show.)
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeatCalls {
    /// Every request sent, a list page included.
    pub total: u64,
    /// Pages of a stack list (`GET /stacks`, [`HeatClient::list`]).
    pub stack_lists: u64,
}

#[derive(Debug, Default)]
struct CallCounter {
    total: AtomicU64,
    stack_lists: AtomicU64,
}

impl HeatClient {
    /// A client trusting the system's CAs.
    pub fn new(endpoint: Endpoint) -> Result<Self, HeatError> {
        HeatClient::with_trust(endpoint, Trust::System)
    }

    /// A client trusting `trust`'s CAs, for Heat and Keystone alike.
    pub fn with_trust(endpoint: Endpoint, trust: Trust) -> Result<Self, HeatError> {
        // Library users (tests, benchmarks) may not have gone through `main`.
        crate::tls::install_crypto_provider();
        let builder = reqwest::Client::builder()
            // A redirect from `/stacks/<name>` is how Heat says where the stack is.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60));
        let http = trust
            .configure(builder)
            .and_then(reqwest::ClientBuilder::build)
            .map_err(|e| trust::request_error(e, Service::Heat, None))?;
        Ok(HeatClient { http, endpoint, trust, calls: Arc::default() })
    }

    /// A failed request to Heat, as a [`HeatError`].
    fn transport(&self, error: reqwest::Error) -> HeatError {
        trust::request_error(error, Service::Heat, Some(&self.trust))
    }

    /// The requests this client and its clones have sent so far.
    pub fn calls(&self) -> HeatCalls {
        HeatCalls {
            total: self.calls.total.load(Ordering::Relaxed),
            stack_lists: self.calls.stack_lists.load(Ordering::Relaxed),
        }
    }

    /// `<endpoint>/v1/<tenant>` and the token to send, if any.
    async fn base(&self, tenant: &str) -> Result<(String, Option<String>), HeatError> {
        match &self.endpoint {
            Endpoint::NoAuth { base } => Ok((format!("{}/v1/{tenant}", base.trim_end_matches('/')), None)),
            Endpoint::Keystone(keystone) => {
                let session = keystone.session(&self.http, tenant).await.map_err(|e| self.trust.explain(e))?;
                Ok((session.orchestration_url, Some(session.token)))
            }
        }
    }

    async fn send(
        &self,
        tenant: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<reqwest::Response, HeatError> {
        let response = self.send_once(tenant, method.clone(), path, body).await?;
        // A cached token Heat no longer accepts (revoked, or Keystone restarted): drop it and
        // try once more with a fresh one.
        if response.status().as_u16() == 401
            && let Endpoint::Keystone(keystone) = &self.endpoint
        {
            keystone.forget(tenant);
            return self.send_once(tenant, method, path, body).await;
        }
        Ok(response)
    }

    async fn send_once(
        &self,
        tenant: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<reqwest::Response, HeatError> {
        let (base, token) = self.base(tenant).await?;
        let method_name = method.as_str().to_owned();
        let mut request = self.http.request(method, format!("{base}{path}")).header("Accept", "application/json");
        match token {
            Some(token) => request = request.header("X-Auth-Token", token),
            // A standalone Heat's noauth filter takes the project from these headers; scoping
            // every call to the resource's tenant makes it behave like a Keystone-backed Heat
            // (the URL tenant is checked, lists and names are per project).
            None => request = request.header("X-Auth-Project", tenant).header("X-Is-Admin-Project", "False"),
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.calls.total.fetch_add(1, Ordering::Relaxed);
        if method_name == "GET" && path.split('?').next() == Some("/stacks") {
            self.calls.stack_lists.fetch_add(1, Ordering::Relaxed);
        }
        let began = std::time::Instant::now();
        let answer = request.send().await;
        let metrics = crate::telemetry::metrics();
        let labels = HeatCallLabels { method: method_name };
        metrics.heat_call_duration.get_or_create(&labels).observe(began.elapsed().as_secs_f64());
        let answer = answer.map_err(|e| self.transport(e));
        let failed = match &answer {
            Ok(response) if response.status().is_client_error() || response.status().is_server_error() => {
                // 404 of a stack looked for is an answer, not an error.
                (response.status().as_u16() != 404).then(|| response.status().as_u16().to_string())
            }
            Ok(_) => None,
            // A refused certificate is the operator's CA bundle to fix, not the network.
            Err(HeatError::Untrusted { .. }) => Some("untrusted".to_owned()),
            Err(_) => Some("unreachable".to_owned()),
        };
        if let Some(status) = failed {
            metrics.heat_errors.get_or_create(&HeatErrorLabels { status }).inc();
        }
        answer
    }

    /// Sends a request whose success (any 2xx) answers JSON: that answer, or why it failed.
    async fn answer<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, HeatError> {
        let response = self.send(tenant, method, path, body).await?;
        answer::json(&self.read(response, answer::is_success).await?)
    }

    /// Reads an answer whole. A body that breaks off is a transport error when `wanted(status)`
    /// (the body is what was asked for); otherwise the answer keeps its status with an empty body.
    async fn read(&self, response: reqwest::Response, wanted: impl Fn(u16) -> bool) -> Result<Answer, HeatError> {
        read(response, wanted).await.map_err(|e| self.transport(e))
    }

    /// Whether Heat (or, with Keystone, Keystone, which leads to it) answers at all: any HTTP
    /// answer will do, so no credentials are spent on it.
    pub async fn reachable(&self) -> Result<(), HeatError> {
        let url = match &self.endpoint {
            Endpoint::NoAuth { base } => base.clone(),
            Endpoint::Keystone(keystone) => keystone.auth_url().to_owned(),
        };
        match self.http.get(url).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(match &self.endpoint {
                Endpoint::NoAuth { .. } => self.transport(e),
                Endpoint::Keystone(_) => self.trust.explain(trust::request_error(e, Service::Keystone, None)),
            }),
        }
    }

    /// Finds a stack by name: `None` when Heat answers 404.
    pub async fn find(&self, tenant: &str, name: &str) -> Result<Option<StackRef>, HeatError> {
        let response = self.send(tenant, reqwest::Method::GET, &format!("/stacks/{name}"), None::<&()>).await?;
        answer::found(&self.read(response, |status| status == 200).await?)
    }

    /// Shows a stack; polls should not `resolve_outputs` (see [`HeatClient::outputs`]).
    pub async fn show(&self, tenant: &str, stack: &StackRef, resolve_outputs: bool) -> Result<Stack, HeatError> {
        let query = if resolve_outputs { "" } else { "?resolve_outputs=False" };
        let path = format!("/stacks/{}/{}{query}", stack.name, stack.id);
        let response = self.send(tenant, reqwest::Method::GET, &path, None::<&()>).await?;
        answer::shown(&self.read(response, answer::is_success).await?)
    }

    /// A settled stack's outputs with their values, through the outputs API: one call lists the
    /// keys, one per key reads a value. (Showing the stack with its outputs resolved, then
    /// updating it, left the update in progress for good on the standalone Heat, 24.x and 27.x
    /// alike; the outputs API does not.)
    pub async fn outputs(&self, tenant: &str, stack: &StackRef) -> Result<Vec<Map<String, Value>>, HeatError> {
        let base = format!("/stacks/{}/{}/outputs", stack.name, stack.id);
        let listed: Value = self.answer(tenant, reqwest::Method::GET, &base, None::<&()>).await?;
        let keys = answer::output_keys(&listed);
        let mut outputs = Vec::with_capacity(keys.len());
        for key in keys {
            let shown: Value = self.answer(tenant, reqwest::Method::GET, &format!("{base}/{key}"), None::<&()>).await?;
            outputs.push(answer::output(&key, &shown)?);
        }
        Ok(outputs)
    }

    /// The stack's current template as Heat keeps it (`GET /stacks/<name>/<id>/template`): the
    /// parsed document, as JSON, whatever format it was sent in (the worker sends YAML).
    pub async fn template(&self, tenant: &str, stack: &StackRef) -> Result<Value, HeatError> {
        let path = format!("/stacks/{}/{}/template", stack.name, stack.id);
        self.answer(tenant, reqwest::Method::GET, &path, None::<&()>).await
    }

    /// What updating the stack with `request` would do, without doing it (`PUT
    /// /stacks/<name>/<id>/preview`; nothing changes in Heat). Heat validates the request as it
    /// would an update: a template or parameters it refuses answer 400 (`StackValidationFailed`),
    /// as the update would.
    pub async fn preview_update(
        &self,
        tenant: &str,
        stack: &StackRef,
        request: &StackRequest,
    ) -> Result<PreviewChanges, HeatError> {
        let path = format!("/stacks/{}/{}/preview", stack.name, stack.id);
        let previewed: Value = self.answer(tenant, reqwest::Method::PUT, &path, Some(request)).await?;
        answer::preview(&previewed)
    }

    /// The stack's most recent failed events, newest first, at most `limit` (`GET
    /// /stacks/<name>/<id>/events?resource_status=FAILED&sort_keys=event_time&sort_dir=desc`):
    /// each with the resource's name, `resource_status` (`CREATE_FAILED`, `UPDATE_FAILED`, …),
    /// Heat's reason and the time.
    ///
    /// What Heat 27 answers, for a resource failing its create: two events of one second, the
    /// resource's (`probe`, `ValueError: resources.probe: Test Resource failed probe`) and the
    /// stack's own rollup (`resource_name` the stack's name, `physical_resource_id` its id,
    /// `Resource CREATE failed: ValueError: …`), the stack's first ([`Event::is_stack_event`]
    /// tells them apart; a stack timeout has only the stack's). Events are the stack's history:
    /// a failure of an earlier operation stays listed after later ones succeeded, so compare
    /// `event_time` with the stack's `updated_time` to know whether a failure is current.
    /// Events within one second keep Heat's order (newest first); only the stack's own level is
    /// listed, not nested stacks'.
    pub async fn failed_events(&self, tenant: &str, stack: &StackRef, limit: usize) -> Result<Vec<Event>, HeatError> {
        let path = format!(
            "/stacks/{}/{}/events?resource_status=FAILED&sort_keys=event_time&sort_dir=desc&limit={limit}",
            stack.name, stack.id
        );
        let listed: Value = self.answer(tenant, reqwest::Method::GET, &path, None::<&()>).await?;
        answer::failed_events(&listed, limit)
    }

    /// Every stack of a tenant that Heat lists (deleted ones are not), as name, id and status;
    /// fetched in pages of [`LIST_PAGE`]. Drift repair lists each tenant once a pass; `chaos`
    /// uses it to count stacks per resource.
    pub async fn list(&self, tenant: &str) -> Result<Vec<(StackRef, String)>, HeatError> {
        self.list_paged(tenant, || {}).await
    }

    /// [`HeatClient::list`], calling `on_page` after each page arrives (a long list is progress,
    /// not a stuck loop).
    pub async fn list_paged(
        &self,
        tenant: &str,
        mut on_page: impl FnMut(),
    ) -> Result<Vec<(StackRef, String)>, HeatError> {
        let mut stacks = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let path = match &marker {
                Some(marker) => format!("/stacks?limit={LIST_PAGE}&marker={marker}"),
                None => format!("/stacks?limit={LIST_PAGE}"),
            };
            let listed: Value = self.answer(tenant, reqwest::Method::GET, &path, None::<&()>).await?;
            on_page();
            let page = answer::stack_page(&listed)?;
            let full = page.len() == LIST_PAGE;
            stacks.extend(page);
            match stacks.last() {
                Some((last, _)) if full => marker = Some(last.id.clone()),
                _ => return Ok(stacks),
            }
        }
    }

    pub async fn create(&self, tenant: &str, request: &StackRequest) -> Result<StackRef, HeatError> {
        let response = self.send(tenant, reqwest::Method::POST, "/stacks", Some(request)).await?;
        let created = self.read(response, |status| status == 201).await?;
        answer::created(&created, request.stack_name.as_deref().unwrap_or_default())
    }

    /// A full replace of template and parameters (`PUT`; the original never used `PATCH`).
    pub async fn update(&self, tenant: &str, stack: &StackRef, request: &StackRequest) -> Result<(), HeatError> {
        let path = format!("/stacks/{}/{}", stack.name, stack.id);
        let response = self.send(tenant, reqwest::Method::PUT, &path, Some(request)).await?;
        answer::updated(&self.read(response, |_| false).await?)
    }

    pub async fn delete(&self, tenant: &str, stack: &StackRef) -> Result<(), HeatError> {
        let path = format!("/stacks/{}/{}", stack.name, stack.id);
        let response = self.send(tenant, reqwest::Method::DELETE, &path, None::<&()>).await?;
        answer::deleted(&self.read(response, |_| false).await?)
    }
}

/// Reads `response` whole (see [`HeatClient::read`]); Keystone's answers too.
async fn read(response: reqwest::Response, wanted: impl Fn(u16) -> bool) -> Result<Answer, reqwest::Error> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.bytes().await {
        Ok(body) => body.to_vec(),
        Err(e) if wanted(status) => return Err(e),
        Err(_) => Vec::new(),
    };
    Ok(Answer { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standalone_heat_is_given_by_its_root_or_its_endpoint() {
        for given in ["http://127.0.0.1:8004", "http://127.0.0.1:8004/", "http://127.0.0.1:8004/v1/admin"] {
            assert_eq!(standalone_base(given).unwrap(), "http://127.0.0.1:8004", "{given}");
        }
        for bad in ["127.0.0.1:8004", "ftp://h:1", "http://h:1/v2/x/y", "http://h:1/other"] {
            let error = standalone_base(bad).unwrap_err().to_string();
            assert!(error.contains("expected"), "{bad}: {error}");
        }
    }

    #[test]
    fn errors_read_like_heatclient_exceptions() {
        let e = HeatError::Status { status: 500, body: "{\"code\": 500}".into() };
        assert_eq!(e.to_string(), "HTTPInternalServerError: {\"code\": 500}");
        assert!(HeatError::Status { status: 503, body: String::new() }.is_transient());
        assert!(!HeatError::Status { status: 400, body: String::new() }.is_transient());
    }
}

//! Keystone v3 authentication for Heat: password or application credential, one token per
//! project, cached and renewed five minutes before it expires; the orchestration endpoint comes
//! from the token's catalog. Credentials come from the environment (`OS_*`, as the OpenStack
//! clients read them) or from a file of the same `KEY=VALUE` lines — never from arguments.

use super::HeatError;
use super::answer::Answer;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone)]
pub enum Credentials {
    Password {
        username: String,
        password: String,
        user_domain: String,
        project_domain: String,
    },
    /// Bound to one project: every stack goes to that project whatever the resource's tenant.
    ApplicationCredential {
        id: String,
        secret: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { username, .. } => write!(f, "Password {{ username: {username:?}, password: *** }}"),
            Credentials::ApplicationCredential { id, .. } => {
                write!(f, "ApplicationCredential {{ id: {id:?}, secret: *** }}")
            }
        }
    }
}

/// A token and where Heat is for one project.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub orchestration_url: String,
    pub expires_at: SystemTime,
}

const RENEW_BEFORE: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct Keystone {
    /// `http://keystone:5000/v3`.
    pub auth_url: String,
    pub credentials: Credentials,
    /// Catalog interface: `public` (default), `internal` or `admin`.
    pub interface: String,
    pub region: Option<String>,
    cache: Arc<Mutex<HashMap<String, Session>>>,
}

impl Keystone {
    pub fn new(auth_url: String, credentials: Credentials, interface: String, region: Option<String>) -> Self {
        Keystone { auth_url, credentials, interface, region, cache: Arc::default() }
    }

    /// Keystone's v3 URL.
    pub fn auth_url(&self) -> &str {
        &self.auth_url
    }

    /// Reads `OS_AUTH_URL`, `OS_USERNAME`/`OS_PASSWORD` (+ `OS_USER_DOMAIN_NAME`,
    /// `OS_PROJECT_DOMAIN_NAME`) or `OS_APPLICATION_CREDENTIAL_ID`/`_SECRET`, `OS_INTERFACE` and
    /// `OS_REGION_NAME` from `vars`. `None` when no `OS_AUTH_URL` is set. (`OS_CACERT`, the CAs
    /// to trust, belongs to the HTTP client Keystone shares with Heat: [`super::trust::Trust::given`].)
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Option<Self>, String> {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let Some(auth_url) = get("OS_AUTH_URL") else { return Ok(None) };
        let credentials = match (get("OS_APPLICATION_CREDENTIAL_ID"), get("OS_APPLICATION_CREDENTIAL_SECRET")) {
            (Some(id), Some(secret)) => Credentials::ApplicationCredential { id, secret },
            _ => Credentials::Password {
                username: get("OS_USERNAME").ok_or("OS_USERNAME is not set")?,
                password: get("OS_PASSWORD").ok_or("OS_PASSWORD is not set")?,
                user_domain: get("OS_USER_DOMAIN_NAME").unwrap_or_else(|| "Default".into()),
                project_domain: get("OS_PROJECT_DOMAIN_NAME").unwrap_or_else(|| "Default".into()),
            },
        };
        let auth_url = auth_url.trim_end_matches('/').to_owned();
        let auth_url = if auth_url.ends_with("/v3") { auth_url } else { format!("{auth_url}/v3") };
        Ok(Some(Keystone::new(
            auth_url,
            credentials,
            get("OS_INTERFACE").unwrap_or_else(|| "public".into()),
            get("OS_REGION_NAME"),
        )))
    }

    /// `KEY=VALUE` lines (`export ` prefixes, quotes and `#` comments allowed).
    pub fn parse_env_file(text: &str) -> HashMap<String, String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches(['"', '\'']).to_owned()))
            .collect()
    }

    /// A valid session for `project`, from the cache or a fresh token.
    pub async fn session(&self, http: &reqwest::Client, project: &str) -> Result<Session, HeatError> {
        let scope = self.scope(project).to_owned();
        if let Ok(cache) = self.cache.lock()
            && let Some(session) = cache.get(&scope)
            && session.expires_at > SystemTime::now() + RENEW_BEFORE
        {
            return Ok(session.clone());
        }
        let session = self.authenticate(http, &scope).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(scope, session.clone());
        }
        Ok(session)
    }

    /// Drops the cached token of `project`, so the next call authenticates again.
    pub fn forget(&self, project: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(self.scope(project));
        }
    }

    /// The token cache key: the project, or nothing for an application credential (bound to
    /// its own project whatever the resource's tenant).
    fn scope<'p>(&self, project: &'p str) -> &'p str {
        match self.credentials {
            Credentials::ApplicationCredential { .. } => "",
            Credentials::Password { .. } => project,
        }
    }

    fn request_body(&self, project: &str) -> Value {
        match &self.credentials {
            Credentials::Password { username, password, user_domain, project_domain } => json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": username, "domain": {"name": user_domain}, "password": password}}},
                "scope": {"project": {"id": project, "domain": {"name": project_domain}}}}}),
            Credentials::ApplicationCredential { id, secret } => json!({"auth": {
                "identity": {"methods": ["application_credential"],
                             "application_credential": {"id": id, "secret": secret}}}}),
        }
    }

    async fn authenticate(&self, http: &reqwest::Client, project: &str) -> Result<Session, HeatError> {
        let response = http
            .post(format!("{}/auth/tokens", self.auth_url))
            .json(&self.request_body(project))
            .send()
            .await
            .map_err(|e| super::trust::request_error(e, super::trust::Service::Keystone, None))?;
        // A body that breaks off reads as none: the status and the token header still say enough.
        let answer = super::read(response, |_| false)
            .await
            .map_err(|e| super::trust::request_error(e, super::trust::Service::Keystone, None))?;
        session_from_answer(&answer, &self.interface, self.region.as_deref())
    }
}

/// Keystone's answer to `POST /auth/tokens`: 201 with the token in `X-Subject-Token`, its expiry
/// and catalog in the body; any other status is refused with Keystone's `error.message`.
pub fn session_from_answer(answer: &Answer, interface: &str, region: Option<&str>) -> Result<Session, HeatError> {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status != 201 {
        let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message");
        return Err(HeatError::Auth(format!("keystone answered {}: {message}", answer.status)));
    }
    let token = answer
        .headers
        .get("x-subject-token")
        .and_then(|t| t.to_str().ok())
        .ok_or_else(|| HeatError::Auth("keystone gave no X-Subject-Token".into()))?;
    session_from_token(token.to_owned(), &body, interface, region)
}

/// Reads expiry and the orchestration endpoint out of a token response body.
pub fn session_from_token(
    token: String,
    body: &Value,
    interface: &str,
    region: Option<&str>,
) -> Result<Session, HeatError> {
    let expires = body.pointer("/token/expires_at").and_then(Value::as_str).unwrap_or_default();
    let expires_at = parse_rfc3339(expires).ok_or_else(|| HeatError::Auth(format!("bad token expiry `{expires}`")))?;
    let catalog = body.pointer("/token/catalog").and_then(Value::as_array).cloned().unwrap_or_default();
    let url = catalog
        .iter()
        .filter(|service| service.get("type").and_then(Value::as_str) == Some("orchestration"))
        .flat_map(|service| service.get("endpoints").and_then(Value::as_array).cloned().unwrap_or_default())
        .find(|e| {
            e.get("interface").and_then(Value::as_str) == Some(interface)
                && region
                    .is_none_or(|r| e.get("region_id").or_else(|| e.get("region")).and_then(Value::as_str) == Some(r))
        })
        .and_then(|e| e.get("url").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| HeatError::Auth(format!("no `{interface}` orchestration endpoint in the catalog")))?;
    Ok(Session { token, orchestration_url: url.trim_end_matches('/').to_owned(), expires_at })
}

/// `2026-11-27T11:00:00.000000Z` (Keystone's format) → a time.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let (time, offset) = match time.rfind(['+', '-']) {
        Some(at) if at > 0 => (&time[..at], Some(&time[at..])),
        _ => (time, None),
    };
    let mut t = time.split(':');
    let (hour, minute) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let second = t.next().and_then(|s| s.split('.').next()?.parse::<i64>().ok()).unwrap_or(0);
    let offset_secs = match offset {
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (h, m) = o[1..].split_once(':').unwrap_or((&o[1..], "0"));
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
        None => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs).ok().map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keystone_times() {
        let t = parse_rfc3339("2026-11-27T11:00:00.000000Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_795_777_200);
        let shifted = parse_rfc3339("2026-11-27T12:00:00+01:00").unwrap();
        assert_eq!(shifted, t);
        assert!(parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn finds_the_orchestration_endpoint() {
        let body = json!({"token": {"expires_at": "2030-01-01T00:00:00Z", "catalog": [
            {"type": "identity", "endpoints": [{"interface": "public", "url": "http://k:5000"}]},
            {"type": "orchestration", "endpoints": [
                {"interface": "internal", "region_id": "r1", "url": "http://heat-int:8004/v1/p1"},
                {"interface": "public", "region_id": "r2", "url": "http://heat-r2:8004/v1/p1/"},
                {"interface": "public", "region_id": "r1", "url": "http://heat:8004/v1/p1/"}]}]}});
        let session = session_from_token("t".into(), &body, "public", Some("r1")).unwrap();
        assert_eq!(session.orchestration_url, "http://heat:8004/v1/p1");
        assert!(session_from_token("t".into(), &body, "admin", None).is_err());
    }

    #[test]
    fn credentials_come_from_env_lines_and_never_print() {
        let vars = Keystone::parse_env_file(
            "# cloud\nexport OS_AUTH_URL=http://k:5000\nOS_USERNAME=admin\nOS_PASSWORD='s3cret'\n",
        );
        let keystone = Keystone::from_vars(&vars).unwrap().unwrap();
        assert_eq!(keystone.auth_url, "http://k:5000/v3");
        assert!(!format!("{keystone:?}").contains("s3cret"));
        assert!(Keystone::from_vars(&HashMap::new()).unwrap().is_none());
    }
}

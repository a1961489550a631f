//! The Heat client through a real Keystone v3 (`keystone/start-keystone.sh`: Keystone from PyPI on
//! loopback, provisioned with an orchestration endpoint pointing at the tests' standalone Heat, a
//! test project, a user with the member role and an application credential): password and
//! application-credential auth, the orchestration endpoint taken from the token's catalog, Keystone's
//! refusal as `HeatError::Auth` without the secret, and one token per project, renewed five minutes
//! before it expires. The standalone Heat runs without auth and ignores the token; what is tested is
//! that the client really authenticates and finds Heat only through the catalog.

mod support;

use heat_reconciler::heat::keystone::{Credentials, Keystone};
use heat_reconciler::heat::{Endpoint, HeatClient, HeatError, StackRef, StackRequest};
use heat_reconciler::local;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};
use support::test_keystone::*;
use support::*;

const RENEW_BEFORE: Duration = Duration::from_secs(300);

const VALUE_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/heat/templates/value.yaml"));

fn http() -> reqwest::Client {
    heat_reconciler::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// Asks Keystone itself about a token (`GET /v3/auth/tokens`, the token validating itself).
async fn validate(ks: &TestKeystone, token: &str) -> Value {
    let response = http()
        .get(format!("{}/auth/tokens", ks.auth_url))
        .header("X-Auth-Token", token)
        .header("X-Subject-Token", token)
        .send()
        .await
        .expect("keystone answers");
    assert_eq!(response.status().as_u16(), 200, "Keystone does not know the token");
    response.json().await.expect("token body")
}

/// Polls the stack until it is no longer in progress.
async fn settled(heat: &HeatClient, tenant: &str, stack: &StackRef) -> String {
    eventually(60, || async {
        let shown = heat.show(tenant, stack, false).await.expect("show through Keystone");
        (!shown.stack_status.ends_with("_IN_PROGRESS")).then_some(shown.stack_status)
    })
    .await
}

/// Create, find, show, update, delete one stack through `heat`.
async fn stack_lifecycle(heat: &HeatClient, tenant: &str) {
    let name = unique("keystone");
    let request = |value: &str| StackRequest {
        stack_name: Some(name.clone()),
        template: VALUE_TEMPLATE.into(),
        parameters: body(json!({ "value": value })),
        timeout_mins: Some(1),
        disable_rollback: true,
    };
    let created = heat.create(tenant, &request("blue")).await.expect("create through Keystone");
    let found = heat.find(tenant, &name).await.expect("find through Keystone").expect("the stack is found");
    assert_eq!(found, created);
    assert_eq!(settled(heat, tenant, &found).await, "CREATE_COMPLETE");
    let shown = heat.show(tenant, &found, false).await.unwrap();
    assert_eq!((shown.stack_name.as_str(), shown.id.as_str()), (name.as_str(), created.id.as_str()));

    // Outputs are resolved only after the update: on the standalone Heat, an update that follows
    // a show with resolved outputs stays UPDATE_IN_PROGRESS for good.
    let update = StackRequest { stack_name: None, ..request("green") };
    heat.update(tenant, &found, &update).await.expect("update through Keystone");
    assert_eq!(settled(heat, tenant, &found).await, "UPDATE_COMPLETE");
    assert_eq!(heat.show(tenant, &found, true).await.unwrap().outputs[0]["output_value"], json!("green"));

    heat.delete(tenant, &found).await.expect("delete through Keystone");
    eventually(60, || async { heat.find(tenant, &name).await.expect("find after delete").is_none().then_some(()) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_drives_heat_found_in_the_catalog() {
    let ks = keystone();
    let project = ks.project_id();
    let keystone = ks.client(ks.password());
    let heat = HeatClient::new(Endpoint::Keystone(keystone.clone())).unwrap();
    stack_lifecycle(&heat, &project).await;

    // The client's session (shared with the Heat client's clone): Heat's URL is the catalog's
    // endpoint with the project filled in by Keystone, and the token is a real, project-scoped one.
    let session = keystone.session(&http(), &project).await.unwrap();
    let registered = ks.str("/orchestration_endpoint");
    assert_eq!(registered, format!("{}/v1/%(tenant_id)s", heat_url().trim_end_matches('/')));
    assert_eq!(session.orchestration_url, registered.replace("%(tenant_id)s", &project));
    assert_eq!(session.orchestration_url, ks.orchestration_url());
    let token = validate(ks, &session.token).await;
    assert_eq!(token["token"]["project"]["id"], json!(project));
    assert_eq!(token["token"]["user"]["name"], json!(ks.str("/user/name")));
    assert_eq!(token["token"]["methods"], json!(["password"]));

    // Nothing but the catalog says where Heat is: no `internal` endpoint and no other region.
    let internal = Keystone::new(ks.auth_url.clone(), ks.password(), "internal".into(), None);
    let heat_internal = HeatClient::new(Endpoint::Keystone(internal)).unwrap();
    match heat_internal.find(&project, "anything").await {
        Err(HeatError::Auth(message)) => {
            assert_eq!(message, "no `internal` orchestration endpoint in the catalog")
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    let elsewhere = Keystone::new(ks.auth_url.clone(), ks.password(), "public".into(), Some("Elsewhere".into()));
    assert!(matches!(
        HeatClient::new(Endpoint::Keystone(elsewhere)).unwrap().find(&project, "anything").await,
        Err(HeatError::Auth(_))
    ));
    let region_one = Keystone::new(ks.auth_url.clone(), ks.password(), "public".into(), Some("RegionOne".into()));
    assert_eq!(
        HeatClient::new(Endpoint::Keystone(region_one)).unwrap().find(&project, "no-such-stack").await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_credential_auth_drives_heat_in_its_own_project() {
    let ks = keystone();
    let keystone = ks.client(ks.application_credential());
    let heat = HeatClient::new(Endpoint::Keystone(keystone.clone())).unwrap();
    // The resource's tenant does not matter: an application credential is bound to its project.
    stack_lifecycle(&heat, TENANT).await;

    let http = http();
    let session = keystone.session(&http, TENANT).await.unwrap();
    assert_eq!(session.orchestration_url, ks.orchestration_url());
    let other = keystone.session(&http, "another-tenant").await.unwrap();
    assert_eq!(other.token, session.token, "one token serves every tenant");
    let token = validate(ks, &session.token).await;
    assert_eq!(token["token"]["project"]["id"], json!(ks.project_id()));
    assert_eq!(token["token"]["methods"], json!(["application_credential"]));
    assert_eq!(token["token"]["application_credential"]["id"], json!(ks.str("/application_credential/id")));
}

/// Asserts `result` is Keystone's refusal, with its message and without `secret`.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, HeatError>, secret: &str) {
    let error = match result {
        Err(e @ HeatError::Auth(_)) => e,
        other => panic!("expected HeatError::Auth, got {other:?}"),
    };
    let text = error.to_string();
    assert_eq!(
        text,
        "authentication failed: keystone answered 401: The request you have made requires authentication."
    );
    assert!(!text.contains(secret) && !format!("{error:?}").contains(secret), "{error:?}");
    assert!(!error.is_transient(), "a refusal is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_refusals_are_auth_errors_without_the_secret() {
    let ks = keystone();
    let project = ks.project_id();
    let wrong = "correct-horse-battery-staple-7f3a";
    let Credentials::Password { username, user_domain, project_domain, .. } = ks.password() else { unreachable!() };
    let bad_password = Credentials::Password { username, password: wrong.into(), user_domain, project_domain };
    let heat = HeatClient::new(Endpoint::Keystone(ks.client(bad_password.clone()))).unwrap();
    assert_refused(heat.find(&project, "anything").await, wrong);
    assert_refused(
        heat.create(
            &project,
            &StackRequest {
                stack_name: Some(unique("never")),
                template: VALUE_TEMPLATE.into(),
                parameters: body(json!({"value": wrong})),
                timeout_mins: None,
                disable_rollback: true,
            },
        )
        .await,
        wrong,
    );
    assert!(!format!("{bad_password:?}").contains(wrong));

    let bad_secret =
        Credentials::ApplicationCredential { id: ks.str("/application_credential/id"), secret: wrong.into() };
    let heat = HeatClient::new(Endpoint::Keystone(ks.client(bad_secret))).unwrap();
    assert_refused(heat.find(&project, "anything").await, wrong);

    // The right user in a project it has no role on.
    let heat = HeatClient::new(Endpoint::Keystone(ks.client(ks.password()))).unwrap();
    assert_refused(heat.find(TENANT, "anything").await, &ks.str("/user/password"));

    // Keystone down is not a refusal: the worker retries it like an unreachable Heat.
    let down = Keystone::new("http://127.0.0.1:9/v3".into(), ks.password(), "public".into(), None);
    let error = HeatClient::new(Endpoint::Keystone(down)).unwrap().find(&project, "anything").await.unwrap_err();
    assert!(matches!(error, HeatError::Transport(_)) && error.is_transient(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_per_project_renewed_five_minutes_before_expiry() {
    let ks = keystone();
    let project = ks.project_id();
    let keystone = ks.client(ks.password());
    let heat = HeatClient::new(Endpoint::Keystone(keystone.clone())).unwrap();
    let http = http();

    let first = keystone.session(&http, &project).await.unwrap();
    let lifetime = first.expires_at.duration_since(SystemTime::now()).expect("a valid token");
    assert!(
        lifetime > RENEW_BEFORE && lifetime <= Duration::from_secs(TOKEN_EXPIRATION_SECS),
        "Keystone's short token expiration is in force: {lifetime:?}"
    );
    // Heat calls reuse the cached token.
    for _ in 0..3 {
        assert_eq!(heat.find(&project, "no-such-stack").await.unwrap(), None);
    }
    let again = keystone.session(&http, &project).await.unwrap();
    assert_eq!(again.token, first.token, "the token is reused while it has more than five minutes left");
    assert_eq!(again.expires_at, first.expires_at);

    // Once fewer than five minutes are left the next call fetches a new token, before the old
    // one expires.
    let renew_at = first.expires_at - RENEW_BEFORE + Duration::from_millis(500);
    if let Ok(wait) = renew_at.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    assert_eq!(heat.find(&project, "no-such-stack").await.unwrap(), None);
    let renewed = keystone.session(&http, &project).await.unwrap();
    assert_ne!(renewed.token, first.token, "the token was renewed");
    assert!(renewed.expires_at > first.expires_at);
    assert!(first.expires_at > SystemTime::now(), "renewed before the old token expired");
    assert_eq!(renewed.orchestration_url, ks.orchestration_url());
    validate(ks, &renewed.token).await;
    let after = keystone.session(&http, &project).await.unwrap();
    assert_eq!(after.token, renewed.token, "the renewed token is cached in turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripts_env_files_configure_the_client() {
    // What `heat-reconciler run --keystone-env-file FILE` reads: the `OS_*` lines the script wrote.
    let ks = keystone();
    let dir = local::keystone::keystone_home().join(format!("state/{KEYSTONE_PORT}"));
    let http = http();
    for (file, method) in [("openrc-password", "password"), ("openrc-appcred", "application_credential")] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let keystone = Keystone::from_vars(&Keystone::parse_env_file(&text)).expect(file).expect("OS_AUTH_URL is set");
        assert_eq!(keystone.auth_url, ks.auth_url);
        let session = keystone.session(&http, &ks.project_id()).await.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(session.orchestration_url, ks.orchestration_url());
        assert_eq!(validate(ks, &session.token).await["token"]["methods"], json!([method]));
        let heat = HeatClient::new(Endpoint::Keystone(keystone)).unwrap();
        assert_eq!(heat.find(&ks.project_id(), "no-such-stack").await.unwrap(), None);
    }
}

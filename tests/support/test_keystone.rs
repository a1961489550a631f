//! The shared test Keystone (`keystone/start-keystone.sh`: Keystone from PyPI on loopback,
//! provisioned with a test project, a user with the member role and an application credential).
//! Its catalog's public orchestration endpoint is the shared test Heat; its admin one is
//! `https://127.0.0.1:TEST_HEAT_TLS`, where `tests/heat_tls.rs` puts a TLS proxy in front of the
//! same Heat. Every test binary provisions it alike, so none undoes another's catalog.

use super::heat_url;
use heat_reconciler::heat::keystone::{Credentials, Keystone};
use heat_reconciler::local;
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The shared test Keystone's port.
pub const KEYSTONE_PORT: u16 = local::ports::TEST_KEYSTONE;
/// Keystone's token lifetime for the tests: the client renews a token five minutes before it
/// expires, so a token of 320 s is reused for its first 20 s and then renewed. (Another value
/// restarts the shared Keystone: every test binary must ask for this one.)
pub const TOKEN_EXPIRATION_SECS: u64 = 320;

/// The running test Keystone: its auth URL and what `credentials.json` says.
pub struct TestKeystone {
    pub auth_url: String,
    pub credentials: Value,
}

impl TestKeystone {
    pub fn project_id(&self) -> String {
        self.str("/project/id")
    }

    pub fn str(&self, pointer: &str) -> String {
        self.credentials
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("credentials{pointer}"))
            .into()
    }

    pub fn password(&self) -> Credentials {
        Credentials::Password {
            username: self.str("/user/name"),
            password: self.str("/user/password"),
            user_domain: "Default".into(),
            project_domain: "Default".into(),
        }
    }

    pub fn application_credential(&self) -> Credentials {
        Credentials::ApplicationCredential {
            id: self.str("/application_credential/id"),
            secret: self.str("/application_credential/secret"),
        }
    }

    pub fn client(&self, credentials: Credentials) -> Keystone {
        Keystone::new(self.auth_url.clone(), credentials, "public".into(), None)
    }

    /// What the catalog must give for the test project: the registered Heat, tenant filled in.
    pub fn orchestration_url(&self) -> String {
        format!("{}/v1/{}", heat_url().trim_end_matches('/'), self.project_id())
    }

    /// The `OS_*` lines the script wrote for `kind` (`password`, `appcred`), as
    /// `--keystone-env-file` reads them.
    pub fn openrc(&self, kind: &str) -> String {
        let path = local::keystone::keystone_home().join(format!("state/{KEYSTONE_PORT}/openrc-{kind}"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// The admin orchestration endpoint of the catalog: the TLS proxy's.
pub fn heat_tls_url() -> String {
    format!("https://127.0.0.1:{}", local::ports::TEST_HEAT_TLS)
}

/// Starts (or reuses) the test Keystone with the project's script, serialised across test
/// processes like the shared Heat of `heat_url`. A Keystone that cannot start fails the test.
pub fn keystone() -> &'static TestKeystone {
    static KEYSTONE: OnceLock<TestKeystone> = OnceLock::new();
    KEYSTONE.get_or_init(|| {
        let auth_url =
            local::keystone::ensure_shared(KEYSTONE_PORT, &heat_url(), &heat_tls_url(), TOKEN_EXPIRATION_SECS)
                .expect("the test Keystone starts");
        assert_eq!(auth_url, format!("http://127.0.0.1:{KEYSTONE_PORT}/v3"));
        let path = local::keystone::keystone_home().join(format!("state/{KEYSTONE_PORT}/credentials.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let credentials: Value = serde_json::from_str(&text).expect("credentials.json parses");
        assert_eq!(credentials["token_expiration"], json!(TOKEN_EXPIRATION_SECS));
        TestKeystone { auth_url, credentials }
    })
}

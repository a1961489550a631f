//! Which certificate authorities the Heat and Keystone clients trust, and what a refused server
//! certificate means in the operator's terms.
//!
//! By default the system's store. With a CA bundle (`OS_CACERT` / `--os-cacert`), only the CAs of
//! that bundle, as the OpenStack clients use it (requests' `verify=`): a private cloud's CA, and
//! nothing a public CA signed for anyone else. To trust both, put both in the bundle.
//!
//! A certificate that is not trusted is a configuration mistake no retry heals, so it is its own
//! error, [`HeatError::Untrusted`], not a transport error retried until the job's deadline.

use super::HeatError;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A PEM bundle of CA certificates, read and checked when the client is made.
#[derive(Debug)]
pub struct CaBundle {
    /// The file and where it was given: `/etc/ssl/cloud-ca.pem (--os-cacert)`.
    name: String,
    certificates: Vec<CertificateDer<'static>>,
}

impl CaBundle {
    /// Reads `path`, given as `source` (`--os-cacert`, `OS_CACERT`, …): one PEM certificate or
    /// more, each usable as a trust anchor. The error names the file and its source: a bundle
    /// that is only found wanting at the first handshake would show as the server's fault.
    pub fn read(path: &Path, source: &str) -> Result<CaBundle, String> {
        let name = format!("{} ({source})", path.display());
        let pem = std::fs::read(path).map_err(|e| format!("the CA bundle {name} cannot be read: {e}"))?;
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the CA bundle {name} is not valid PEM: {e}"))?;
        if certificates.is_empty() {
            return Err(format!("the CA bundle {name} holds no PEM certificate"));
        }
        let mut anchors = rustls::RootCertStore::empty();
        for (at, certificate) in certificates.iter().enumerate() {
            anchors.add(certificate.clone()).map_err(|e| {
                format!("the CA bundle {name}: certificate {} of {} cannot be used: {e}", at + 1, certificates.len())
            })?;
        }
        Ok(CaBundle { name, certificates })
    }

    /// The file and where it was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many certificates it holds.
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }
}

/// The CAs a client trusts.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// The system's store.
    #[default]
    System,
    /// Only the CAs of this bundle.
    Only(Arc<CaBundle>),
}

impl Trust {
    /// What the settings ask for: the bundle of `--os-cacert` (`flag`), else of `OS_CACERT` in
    /// `vars` (the `OS_*` values the Keystone settings come from too: `env_file`'s lines when
    /// one is given, else the environment), else the system's store.
    pub fn given(
        flag: Option<&Path>,
        vars: &HashMap<String, String>,
        env_file: Option<&Path>,
    ) -> Result<Trust, String> {
        let from_vars = vars.get("OS_CACERT").filter(|path| !path.is_empty()).map(|path| {
            let source = match env_file {
                Some(file) => format!("OS_CACERT in {}", file.display()),
                None => "OS_CACERT".to_owned(),
            };
            (PathBuf::from(path), source)
        });
        let given = flag.map(|path| (path.to_owned(), "--os-cacert".to_owned())).or(from_vars);
        match given {
            Some((path, source)) => Ok(Trust::Only(Arc::new(CaBundle::read(&path, &source)?))),
            None => Ok(Trust::System),
        }
    }

    pub(super) fn configure(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, reqwest::Error> {
        Ok(match self {
            Trust::System => builder,
            Trust::Only(bundle) => builder.tls_certs_only(
                bundle
                    .certificates
                    .iter()
                    .map(|der| reqwest::Certificate::from_der(der))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        })
    }

    /// Which CAs a refused certificate was not signed by, and what to do about it.
    fn trusted(&self) -> String {
        match self {
            Trust::System => {
                "a CA of the system's store (give the cloud's CA bundle with --os-cacert or OS_CACERT)".into()
            }
            Trust::Only(bundle) => format!("a CA of the bundle {}", bundle.name),
        }
    }

    /// `error`, with what this client trusts filled in when it is a refused certificate whose
    /// maker did not know it (Keystone's, which shares the Heat client's HTTP client).
    pub(super) fn explain(&self, error: HeatError) -> HeatError {
        match error {
            HeatError::Untrusted { service, origin, refusal, trusted: None } => {
                HeatError::Untrusted { service, origin, refusal, trusted: Some(self.trusted()) }
            }
            other => other,
        }
    }
}

/// The service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Heat,
    Keystone,
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Service::Heat => "Heat",
            Service::Keystone => "Keystone",
        })
    }
}

/// Why rustls refused a server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not signed by a trusted CA (a self-signed certificate too).
    UnknownIssuer,
    NotValidForName,
    Expired,
    Other(String),
}

impl Refusal {
    fn of(error: &rustls::Error) -> Option<Refusal> {
        use rustls::CertificateError as E;
        let rustls::Error::InvalidCertificate(certificate) = error else { return None };
        Some(match certificate {
            E::UnknownIssuer => Refusal::UnknownIssuer,
            E::NotValidForName | E::NotValidForNameContext { .. } => Refusal::NotValidForName,
            E::Expired | E::ExpiredContext { .. } => Refusal::Expired,
            other => Refusal::Other(format!("{other:?}")),
        })
    }

    /// The text of [`HeatError::Untrusted`]: `trusted` names the CAs the client trusts.
    pub(super) fn describe(&self, trusted: Option<&str>) -> String {
        match self {
            Refusal::UnknownIssuer => format!(
                "the server certificate is not trusted: it is not signed by {}",
                trusted.unwrap_or("a CA this process trusts")
            ),
            Refusal::NotValidForName => "the server certificate is not valid for this host name".into(),
            Refusal::Expired => "the server certificate has expired".into(),
            Refusal::Other(why) => format!("the server certificate is not trusted: {why}"),
        }
    }
}

/// A failed request to `service`: a server certificate rustls refused is
/// [`HeatError::Untrusted`] (with what `trust` trusts, when known); anything else a transport
/// error that says why (reqwest's own text is only "error sending request"). Never the URL's
/// path or query: only the server's origin is named.
pub(super) fn request_error(error: reqwest::Error, service: Service, trust: Option<&Trust>) -> HeatError {
    if let Some(refusal) = crate::tls::find_in_sources::<rustls::Error>(&error).and_then(Refusal::of) {
        let origin = error.url().map(|url| url.origin().ascii_serialization()).unwrap_or_default();
        return HeatError::Untrusted { service, origin, refusal, trusted: trust.map(Trust::trusted) };
    }
    let error = error.without_url();
    let mut cause: &dyn std::error::Error = &error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = match cause.to_string() {
        innermost if innermost == error.to_string() => innermost,
        innermost => format!("{error}: {innermost}"),
    };
    HeatError::Transport(match service {
        Service::Heat => text,
        Service::Keystone => format!("keystone: {text}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::certs::TestCa;

    fn scratch(name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("heat-trust-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn a_bundle_holds_usable_ca_certificates_or_says_why_not() {
        let (one, two) = (TestCa::new("one").unwrap(), TestCa::new("two").unwrap());
        let path = scratch("two.pem", format!("{}{}", one.pem(), two.pem()).as_bytes());
        let bundle = CaBundle::read(&path, "OS_CACERT").unwrap();
        assert_eq!(bundle.len(), 2);
        assert_eq!(bundle.name(), format!("{} (OS_CACERT)", path.display()));

        let missing = std::env::temp_dir().join("heat-trust-no-such-file.pem");
        let error = CaBundle::read(&missing, "--os-cacert").unwrap_err();
        assert!(error.starts_with(&format!("the CA bundle {} (--os-cacert) cannot be read: ", missing.display())));

        let key = scratch("key.pem", one.loopback_server().unwrap().key_pem.as_bytes());
        let error = CaBundle::read(&key, "--os-cacert").unwrap_err();
        assert_eq!(error, format!("the CA bundle {} (--os-cacert) holds no PEM certificate", key.display()));

        let garbage = scratch(
            "garbage.pem",
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        );
        let error = CaBundle::read(&garbage, "--os-cacert").unwrap_err();
        assert!(error.contains("certificate 1 of 1 cannot be used"), "{error}");
        for path in [path, key, garbage] {
            let _ = std::fs::remove_file(path);
        }
    }

    #[test]
    fn the_flag_wins_over_os_cacert_of_the_env_file_or_the_environment() {
        let (flagged, listed) = (TestCa::new("flag").unwrap(), TestCa::new("vars").unwrap());
        let flag = scratch("flag.pem", flagged.pem().as_bytes());
        let listed = scratch("vars.pem", format!("{}{}", listed.pem(), flagged.pem()).as_bytes());
        let vars = HashMap::from([("OS_CACERT".to_owned(), listed.display().to_string())]);
        let name = |trust: Trust| match trust {
            Trust::Only(bundle) => (bundle.name().to_owned(), bundle.len()),
            Trust::System => ("system".to_owned(), 0),
        };
        assert_eq!(
            name(Trust::given(Some(&flag), &vars, None).unwrap()),
            (format!("{} (--os-cacert)", flag.display()), 1)
        );
        assert_eq!(name(Trust::given(None, &vars, None).unwrap()), (format!("{} (OS_CACERT)", listed.display()), 2));
        let env_file = Path::new("/etc/heat-reconciler/keystone.env");
        assert_eq!(
            name(Trust::given(None, &vars, Some(env_file)).unwrap()).0,
            format!("{} (OS_CACERT in /etc/heat-reconciler/keystone.env)", listed.display())
        );
        let empty = HashMap::from([("OS_CACERT".to_owned(), String::new())]);
        assert_eq!(name(Trust::given(None, &empty, None).unwrap()).0, "system");
        for path in [flag, listed] {
            let _ = std::fs::remove_file(path);
        }
    }

    #[test]
    fn a_refusal_names_the_service_and_what_was_trusted() {
        let refused = HeatError::Untrusted {
            service: Service::Keystone,
            origin: "https://keystone:5000".into(),
            refusal: Refusal::UnknownIssuer,
            trusted: None,
        };
        assert!(!refused.is_transient());
        assert_eq!(
            refused.to_string(),
            "TLS: Keystone at https://keystone:5000: the server certificate is not trusted: it is not signed by a CA \
             this process trusts"
        );
        assert_eq!(
            Trust::System.explain(refused).to_string(),
            "TLS: Keystone at https://keystone:5000: the server certificate is not trusted: it is not signed by a CA \
             of the system's store (give the cloud's CA bundle with --os-cacert or OS_CACERT)"
        );
    }
}

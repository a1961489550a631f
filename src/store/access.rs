//! How to reach a secured etcd (TLS, a client certificate, etcd's own users) and what its refusals
//! mean. A process checks its access once at start-up ([`Store::connect_checked`]): a wrong CA, a
//! missing client certificate, a wrong password or a user without rights is a configuration
//! mistake that no retry heals, so it ends the process with one line naming the cause instead of
//! a loop of transport errors. An error met later is told in the same terms
//! ([`Store::describe`], through the loops' `ErrorLog`).
//!
//! [`Store::connect_checked`]: super::Store::connect_checked
//! [`Store::describe`]: super::Store::describe

use std::error::Error as _;
use std::time::Duration;

/// How long the start-up check may take in all: connecting (5 s at most), logging in and one
/// read. An etcd that accepts connections but never answers (no quorum, say) ends here too.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach a secured etcd: TLS (a CA to trust, and a client certificate for mutual TLS) and
/// etcd's own user authentication. The default is plain HTTP without credentials.
#[derive(Clone, Default)]
pub struct EtcdAccess {
    /// PEM CA bundle that signed the etcd servers' certificates.
    pub ca: Option<Vec<u8>>,
    /// PEM client certificate and key, for etcd's `--client-cert-auth`.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// User and password for etcd's `auth enable`.
    pub user: Option<(String, String)>,
}

/// Never the password (nor the key): a `{:?}` of the access may end up in a log.
impl std::fmt::Debug for EtcdAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdAccess")
            .field("ca", &self.ca.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("user", &self.user.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl EtcdAccess {
    pub(crate) fn connect_options(&self) -> etcd_client::ConnectOptions {
        let mut options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if self.ca.is_some() || self.identity.is_some() {
            let mut tls = etcd_client::TlsOptions::new();
            if let Some(ca) = &self.ca {
                tls = tls.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &self.identity {
                tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
            }
            options = options.with_tls(tls);
        }
        if let Some((user, password)) = &self.user {
            // etcd's tokens expire (5 minutes without use by default): a quiet standby, or a
            // watch reconnecting after a while, logs in again instead of failing.
            options = options.with_user(user, password).with_auto_token_refresh(true);
        }
        options
    }

    /// Checks the PEM contents before any connection: a file that holds no certificate, or a
    /// key that is not the certificate's, would otherwise show as a misleading TLS error (the
    /// server "not signed by the CA", "peer sent no certificates", a bare "transport error").
    pub(crate) fn check_files(&self) -> Result<(), String> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let certificates = |pem: &[u8]| -> Option<Vec<CertificateDer<'static>>> {
            let found: Vec<_> = CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().ok()?;
            (!found.is_empty()).then_some(found)
        };
        if let Some(ca) = &self.ca
            && certificates(ca).is_none()
        {
            return Err("--etcd-ca-file holds no PEM certificate".into());
        }
        if let Some((cert, key)) = &self.identity {
            let chain = certificates(cert).ok_or("--etcd-cert-file holds no PEM certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| "--etcd-key-file holds no PEM private key")?;
            let provider = rustls::crypto::ring::default_provider();
            rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|error| match error {
                rustls::Error::InconsistentKeys(_) => "--etcd-key-file is not the key of --etcd-cert-file".to_owned(),
                other => format!("--etcd-key-file: {other}"),
            })?;
        }
        Ok(())
    }
}

/// How this process reaches etcd, as far as a message about a refusal names it: the endpoints,
/// the user and which TLS parts were given, never the password or the key. Every [`Store`]
/// keeps one, so that an error met at any time can be told as at start-up.
///
/// [`Store`]: super::Store
#[derive(Debug, Clone, Default)]
pub(crate) struct Reach {
    endpoints: Vec<String>,
    user: Option<String>,
    ca: bool,
    client_certificate: bool,
}

impl Reach {
    pub(crate) fn new(endpoints: &[String], access: &EtcdAccess) -> Reach {
        Reach {
            endpoints: endpoints.to_vec(),
            user: access.user.as_ref().map(|(user, _)| user.clone()),
            ca: access.ca.is_some(),
            client_certificate: access.identity.is_some(),
        }
    }

    fn user_name(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

/// etcd could not be used as configured: one line, naming the endpoints and the cause.
#[derive(Debug, thiserror::Error)]
#[error("etcd at {endpoints}: {cause}")]
pub struct AccessError {
    pub endpoints: String,
    pub cause: String,
}

impl AccessError {
    pub(crate) fn new(endpoints: &[String], cause: String) -> AccessError {
        AccessError { endpoints: endpoints.join(","), cause }
    }
}

/// What went wrong, in the operator's terms, for an error met reaching etcd as `reach` says
/// while trying to `what` (`read /config/`, `write /jobs/...`: what a refused right is named
/// by). The texts matched are those etcd (3.4 to 3.6) and the client's TLS stack give; anything
/// else is passed on with its chain of causes.
pub(crate) fn cause(error: &etcd_client::Error, reach: &Reach, what: &str) -> String {
    let tls = reach.endpoints.iter().all(|e| e.starts_with("https://"));
    if let Some(tls_error) = find_in_chain::<rustls::Error>(error) {
        return tls_cause(tls_error, reach);
    }
    let refused =
        find_in_chain::<std::io::Error>(error).is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    if refused {
        return "connection refused (is etcd running there?)".into();
    }
    let etcd_client::Error::GRpcStatus(status) = error else {
        return error.to_string();
    };
    if let Some(refusal) = refusal(status.message(), reach, what) {
        return refusal;
    }
    if status.message().contains("tls handshake eof") {
        return HANDSHAKE_CUT.into();
    }
    // etcd (Go) refuses a client certificate after the handshake: with a TLS alert, which the
    // client's transport passes on as text, or by closing the connection (the request is then
    // cancelled). Speaking plain HTTP/2 to a TLS port ends the same way.
    let detail = format!("{error:?}");
    let closed = detail.contains("connection closed") || detail.contains("broken pipe");
    if detail.contains("received fatal alert") || (closed && tls) {
        return client_certificate_refused(reach);
    }
    // A reset (ECONNRESET) comes of either when the client writes before reading: etcd refusing
    // the certificate we sent, or a plain etcd answering our TLS hello; with no certificate sent,
    // only the second.
    let reset = detail.contains("ConnectionReset");
    if reset && tls {
        return if reach.client_certificate { client_certificate_refused(reach) } else { HANDSHAKE_CUT.into() };
    }
    if closed || reset {
        return "etcd closed the connection: does it serve TLS? then use https:// endpoints and --etcd-ca-file".into();
    }
    with_sources(error)
}

/// What etcd's own refusal `message` (of a gRPC status, or of a cancelled watch) means, if it
/// is one: a password it rejects, a user it does not know, a right the user lacks.
pub(crate) fn refusal(message: &str, reach: &Reach, what: &str) -> Option<String> {
    let user = reach.user_name().unwrap_or_default();
    if message.contains("authentication failed") {
        return Some(format!(
            "etcd rejected the user `{user}`: authentication failed (wrong password, or no such user?)"
        ));
    }
    if message.contains("authentication is not enabled") {
        return Some("--etcd-user was given, but this etcd has no authentication enabled".into());
    }
    if message.contains("user name is empty") || message.contains("user name not found") {
        return Some("etcd has authentication enabled: give --etcd-user (and its password)".into());
    }
    if message.contains("permission denied") {
        return Some(match reach.user_name() {
            Some(user) => format!("etcd user `{user}` may not {what}: permission denied"),
            None => format!(
                "etcd refused to let this client {what}: permission denied (it has authentication enabled: give \
                 --etcd-user, or a client certificate named after a user with the rights)"
            ),
        });
    }
    None
}

/// An error and what it says it was caused by, each told once: the client's "transport
/// error" alone says nothing.
fn with_sources(error: &etcd_client::Error) -> String {
    let source = match error {
        etcd_client::Error::GRpcStatus(status) => status.source(),
        etcd_client::Error::TransportError(transport) => transport.source(),
        _ => None,
    };
    super::error_log::told_with(error.to_string(), source)
}

fn tls_cause(error: &rustls::Error, reach: &Reach) -> String {
    use rustls::{AlertDescription, CertificateError};
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => match reach.ca {
            true => "TLS: the server certificate is not signed by the CA in --etcd-ca-file".into(),
            false => "TLS: the server certificate is not signed by a CA this process trusts (give etcd's CA with \
                     --etcd-ca-file)"
                .into(),
        },
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "TLS: the server certificate does not name the endpoint's host".into(),
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "TLS: the server certificate has expired".into()
        }
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateExpired,
        ) => client_certificate_refused(reach),
        other => format!("TLS: {other}"),
    }
}

/// A TLS handshake that etcd's port did not complete.
const HANDSHAKE_CUT: &str =
    "the TLS handshake was cut off: does etcd serve TLS on this port? (a plain etcd needs http://)";

fn client_certificate_refused(reach: &Reach) -> String {
    match reach.client_certificate {
        false => "TLS: etcd requires a client certificate: give --etcd-cert-file and --etcd-key-file".into(),
        true => "TLS: etcd did not accept the client certificate of --etcd-cert-file (not signed by a CA it \
                    trusts?)"
            .into(),
    }
}

/// The first error of type `E` behind an etcd client error: in the chain of sources of its gRPC
/// status or transport error (the client's own error names no source).
fn find_in_chain<E: std::error::Error + 'static>(error: &etcd_client::Error) -> Option<&E> {
    let inner: &(dyn std::error::Error + 'static) = match error {
        etcd_client::Error::GRpcStatus(status) => status,
        etcd_client::Error::TransportError(transport) => transport,
        etcd_client::Error::IoError(io) => io,
        _ => return None,
    };
    crate::tls::find_in_sources(inner)
}

//! TLS for every client the process makes (Heat, Keystone, the monitor's HTTP probes, the
//! Kubernetes API): one crypto provider, ring. kube and reqwest could each bring their own; with
//! two providers built in, the first TLS handshake panics, so the build carries only ring and
//! `main` installs it before any client exists.

/// Installs ring as the process's crypto provider; harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

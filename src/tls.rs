//! TLS for every client the process makes (Heat, Keystone, the monitor's HTTP probes, the
//! Kubernetes API): one crypto provider, ring. kube and reqwest could each bring their own; with
//! two providers built in, the first TLS handshake panics, so the build carries only ring and
//! `main` installs it before any client exists. Also how a client finds the TLS error behind
//! the error its library returns, to say what went wrong in the operator's terms.

/// Installs ring as the process's crypto provider; harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The first error of type `E` in a chain of sources, looking inside I/O errors too (an
/// `io::Error`'s own `source` skips the error it wraps, which is where the HTTP and gRPC
/// clients put rustls' error).
pub fn find_in_sources<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(inner) = current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && let Some(found) = find_in_sources::<E>(inner)
        {
            return Some(found);
        }
        next = current.source();
    }
    None
}

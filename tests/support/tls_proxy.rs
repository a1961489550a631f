//! A TLS-terminating proxy on loopback, as the load balancer or web server in front of a cloud's
//! Heat and Keystone: it accepts TLS with a serving certificate for 127.0.0.1 signed by a test CA
//! (`local::certs`) and forwards the bytes to a plain-HTTP service (the shared test Heat or
//! Keystone). It runs on the test's runtime and stops accepting when dropped.

use heat_reconciler::local::certs::TestCa;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TlsProxy {
    pub port: u16,
    accepting: JoinHandle<()>,
}

impl TlsProxy {
    /// Listens on 127.0.0.1:`port` (0: a free port) with a certificate of `ca`, forwarding
    /// every connection to `backend` (`http://127.0.0.1:PORT…`; only its port is used).
    pub async fn start(ca: &TestCa, port: u16, backend: &str) -> TlsProxy {
        heat_reconciler::tls::install_crypto_provider();
        let backend_port = reqwest::Url::parse(backend).ok().and_then(|u| u.port()).expect("backend URL with a port");
        let serving = ca.loopback_server().expect("a serving certificate");
        let chain = CertificateDer::pem_slice_iter(serving.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap_or_else(|e| panic!("port {port}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to forward.
                    let Ok(mut tls) = acceptor.accept(client).await else { return };
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", backend_port)).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        TlsProxy { port, accepting }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

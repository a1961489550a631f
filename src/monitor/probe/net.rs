//! Probes for targets without SNMP: a TCP connect and an HTTP GET.

use super::{ProbeError, bounded};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

/// Whether a TCP connection to `host:port` can be opened. `host` is an IP address (IPv6 with or
/// without brackets) or a name; only a name is looked up, and that lookup counts against the
/// timeout (the resolver thread itself cannot be cancelled and may finish later).
pub async fn tcp(host: &str, port: u16, timeout: Duration) -> Result<(), ProbeError> {
    bounded(timeout, async {
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let stream = match literal.parse::<IpAddr>() {
            Ok(ip) => TcpStream::connect(SocketAddr::new(ip, port)).await,
            Err(_) => TcpStream::connect((host, port)).await,
        }
        .map_err(|e| ProbeError::Unreachable(e.to_string()))?;
        // Closing with a reset leaves no TIME_WAIT behind: thousands of probes a second to one
        // port would otherwise run out of ephemeral ports. The peer sees a reset instead of a FIN,
        // as with the health checks of common load balancers.
        let _ = stream.set_zero_linger();
        Ok(())
    })
    .await
}

/// Whether `GET url` answers with a 2xx status. The body is not read.
pub async fn http(client: &reqwest::Client, url: &str, timeout: Duration) -> Result<(), ProbeError> {
    bounded(timeout, async {
        let response = client.get(url).send().await.map_err(request_error)?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(ProbeError::HttpStatus(status.as_u16())) }
    })
    .await
}

fn request_error(error: reqwest::Error) -> ProbeError {
    // Without the URL: it may carry credentials.
    let error = error.without_url();
    if error.is_builder() {
        return ProbeError::Protocol(error.to_string());
    }
    // reqwest's own message is "error sending request"; the innermost cause says why (connection
    // refused, a certificate problem, ...).
    let mut cause: &dyn std::error::Error = &error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    ProbeError::Unreachable(cause.to_string())
}

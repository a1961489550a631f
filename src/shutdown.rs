//! Graceful shutdown: one signal, a `watch` channel that turns true, which every role's loop
//! selects on (as mini-redis does with its broadcast). `run` owns the sender and flips it on
//! Ctrl-C or SIGTERM; tests and the demo flip it to stop roles before their etcd.

use tokio::sync::watch;

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn shut_down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await.map(|_| ());
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (Kubernetes, or any process manager, stopping the
/// process), naming it.
pub async fn signalled() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

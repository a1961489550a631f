//! What the process tells about itself: logs (text or JSON, `RUST_LOG` honoured), Prometheus
//! metrics ([`metrics`](mod@metrics)), liveness and readiness ([`health`]), served on one HTTP listener
//! ([`server`]).

pub(crate) mod health;
pub mod metrics;
pub mod server;

pub use health::{Heartbeat, Pulse, health};
pub use metrics::{leading, metrics};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event, colours on a terminal.
    Text,
    /// For log pipelines: one JSON object per line.
    Json,
}

/// Sends log events to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}

/// Sends log events to `file` instead (the demo, whose output is its story).
pub fn init_logs_to(format: LogFormat, file: std::fs::File) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::sync::Mutex::new(file)).with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}

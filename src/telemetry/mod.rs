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

/// Keeps the thread that writes the log lines; dropping it writes out what is still queued.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Sends log events to stderr, filtered by `RUST_LOG` (default `info`). Hold the guard until
/// the process ends.
pub fn init_logs(format: LogFormat) -> LogGuard {
    install(format, std::io::stderr(), std::io::IsTerminal::is_terminal(&std::io::stderr()))
}

/// Sends log events to `file` instead (the demo, whose output is its story).
pub fn init_logs_to(format: LogFormat, file: std::fs::File) -> LogGuard {
    install(format, file, false)
}

/// Log lines are written by a thread of their own, not by the thread that logs: a slow sink (a
/// file on a disk busy with etcd's fsyncs, a pipe the container runtime drains late) must not
/// stall the runtime's threads, which run every job's claim, rendering and results at once.
/// No line is dropped: when the queue is full, logging waits for the writer as it did before.
fn install<W: std::io::Write + Send + 'static>(format: LogFormat, sink: W, ansi: bool) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(sink);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
    guard
}

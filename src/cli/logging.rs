//! Log lines on stderr (stdout carries only the output): JSON lines for machines (Lambda, FC, a CLI without a
//! terminal), or pretty lines for a person at a terminal. `RUST_LOG` overrides the level either way.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::fmt::MakeWriter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human line per event (the default on a terminal).
    Pretty,
    /// One JSON object per line (the default when stderr is not a terminal; always in Lambda and FC).
    Json,
}

/// Set once pretty logging is on: a person, not a log pipeline, reads stderr.
static PRETTY: AtomicBool = AtomicBool::new(false);

/// True when stderr carries pretty (human) log lines.
pub fn is_pretty() -> bool {
    PRETTY.load(Ordering::Relaxed)
}

/// The serverless runtimes' logging: JSON lines, `RUST_LOG` or `info`.
pub fn init_serverless() {
    init(LogFormat::Json, 0, false);
}

/// The CLI's logging: `verbosity` is the count of `-v` minus that of `-q`. JSON starts at `info` (what the log
/// pipelines of the serverless modes see), pretty at `warn` (the table says what happened; `-v` adds the
/// run's steps).
pub fn init(format: LogFormat, verbosity: i8, color: bool) {
    const LEVELS: [&str; 5] = ["off", "error", "warn", "info", "debug"];
    let base: i8 = match format {
        LogFormat::Json => 3,
        LogFormat::Pretty => 2,
    };
    let level = match base.saturating_add(verbosity) {
        i8::MIN..=0 => "off",
        l @ 1..=4 => LEVELS[l as usize],
        _ => "trace",
    };
    // The HTTP stack's own debug lines (connection pooling) say nothing about the run: they stay at warn.
    let directives = match level {
        "debug" | "trace" => format!("{level},hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn,h2=warn"),
        _ => level.to_string(),
    };
    // An empty or unreadable RUST_LOG is no setting (an empty filter would silence everything but errors).
    let asked = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let filter = asked
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(directives));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init`: a second subscriber (a test calling this twice) is not worth a panic.
    let _ = match format {
        LogFormat::Json => builder.json().with_writer(AboveProgress).with_current_span(false).try_init(),
        LogFormat::Pretty => {
            PRETTY.store(true, Ordering::Relaxed);
            builder.compact().with_ansi(color).with_target(false).without_time().with_writer(AboveProgress).try_init()
        }
    };
}

/// Writes each log line to stderr above the progress lines (which are redrawn below it).
struct AboveProgress;

impl<'a> MakeWriter<'a> for AboveProgress {
    type Writer = AboveProgress;

    fn make_writer(&'a self) -> Self::Writer {
        AboveProgress
    }
}

impl Write for AboveProgress {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        super::terminal::above_progress(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

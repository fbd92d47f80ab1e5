//! Wiring only: logging, then either a serverless runtime (when started by one) or the CLI.

use std::process::ExitCode;

use aliyun_janitor::cli::{Cli, Command};
use aliyun_janitor::runtime::{self, Mode};
use clap::Parser;

fn init_logging() {
    // JSON lines on stderr; stdout carries only the summary.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .init();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    init_logging();
    match runtime::detect(|k| std::env::var(k).ok(), std::env::args_os().len() > 1) {
        Mode::Lambda => return runtime::run_lambda().await,
        Mode::FunctionCompute => return runtime::run_fc().await,
        Mode::Cli => {}
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => args.run().await,
        Command::Validate(args) => args.run(),
        Command::Org(args) => args.run().await,
    }
}

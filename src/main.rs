//! Wiring only: either a serverless runtime (when started by one, logging JSON) or the CLI (which sets up its
//! own logging from its flags).

use std::process::ExitCode;

use aliyun_janitor::cli::{logging, Cli};
use aliyun_janitor::runtime::{self, Mode};
use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match runtime::detect(|k| std::env::var(k).ok(), std::env::args_os().len() > 1) {
        Mode::Lambda => {
            logging::init_serverless();
            return runtime::run_lambda().await;
        }
        Mode::FunctionCompute => {
            logging::init_serverless();
            return runtime::run_fc().await;
        }
        Mode::Cli => {}
    }
    // A usage error exits 2 (clap's default); --help and --version exit 0.
    Cli::parse().run().await
}

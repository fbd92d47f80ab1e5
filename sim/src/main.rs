//! `aliyun-sim`: serves the emulator on a loopback address until stopped (for the demo, the benchmark and
//! trying a client by hand). Prints `aliyun-sim listening on http://ADDR` on stderr once it accepts requests.

use std::path::PathBuf;
use std::process::ExitCode;

use aliyun_sim::{serve, Sim, SimOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "aliyun-sim", version, about = "Local emulator of the Alibaba Cloud RPC API (for the demo and tests)")]
struct Args {
    /// Inventory JSON file (credentials, instances per product, faults).
    #[arg(long)]
    inventory: PathBuf,
    /// Address to listen on (port 0: any free port, printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8931")]
    listen: String,
    /// Response time per request, in milliseconds: each answer leaves this long after its request arrived.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of requests answered `Throttling.User` (0..1).
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Fraction of requests answered 503 `ServiceUnavailable` (0..1).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction of requests whose connection closes without an answer (0..1).
    #[arg(long, default_value_t = 0.0)]
    reset_rate: f64,
    /// Fraction of the 503s and resets that strike after the request acted (0..1).
    #[arg(long, default_value_t = 0.0)]
    acted_share: f64,
    /// Seed of the throttle/error draws, so a run can be replayed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let opts = SimOptions {
        latency_ms: args.latency_ms,
        throttle_rate: args.throttle_rate,
        error_rate: args.error_rate,
        reset_rate: args.reset_rate,
        acted_share: args.acted_share,
        seed: args.seed,
    };
    let sim = match Sim::from_inventory_file(&args.inventory, opts) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {}: {e}", args.listen)),
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("aliyun-sim listening on http://{addr}"),
        Err(e) => return fail(e),
    }
    match serve(listener, sim).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

//! The organisation benchmark (`make bench`, after `scale`; not part of `make test`): a Resource Directory of 200
//! member accounts × 20 regions in the emulator, 5 ECS instances per account and region (one expired: 4,000 of
//! 20,000 eligible), every call answered 50 ms late. Reports in `target/bench/org.md` (and on stdout):
//!
//! - the planner's shard count and estimates;
//! - every shard run as Step Functions / CloudFlow would run it: `aliyun-janitor org` with a `run_shard` document,
//!   one process per shard, one after another (so each shard's wall time is its own), then `merge`; the longest
//!   shard's time against the target of 5 minutes at the default concurrency;
//! - the local runner (`aliyun-janitor run --policy` with `accounts:`) under GNU `time`: wall time, peak RSS, CPU;
//! - the API calls of each, counted by the emulator, against the floor (the fewest calls the work needs).
//!
//! Both runs apply, each on a freshly loaded emulator. `JANITOR_BENCH_ORG_CONCURRENCY` sets the policy's
//! `accounts.concurrency` (default 8, the policy's default); the report says what ran.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn bin() -> String {
    std::env::var("JANITOR_BENCH_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_aliyun-janitor").to_string())
}

const MEMBERS: usize = 200;
const FIRST: u64 = 3_000_000_000_000_001;
const MASTER: &str = "1234567890123456";
const REGIONS: [&str; 20] = [
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-qingdao",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-chengdu",
    "cn-hongkong",
    "cn-guangzhou",
    "cn-heyuan",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-northeast-1",
    "ap-northeast-2",
    "eu-central-1",
    "eu-west-1",
    "us-west-1",
];
const PER_REGION: usize = 5;
/// Instance `n` is expired when `n` is a multiple of this (sim `generate.rs`): one of the five per region.
const EXPIRED_EVERY: usize = 5;
const LATENCY_MS: u64 = 50;
/// The policy's `concurrency.regions` (its default): regions an account lists at once.
const REGIONS_AT_ONCE: usize = 4;
/// Step Functions' and the bound on one shard.
const SHARD_TARGET: Duration = Duration::from_secs(300);
const NOW: &str = "2026-11-25T12:00:00Z";
const KEY_ID: &str = "bench-org-key";
const SECRET: &str = "bench-org-secret";

fn out_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench")
}

fn concurrency() -> usize {
    std::env::var("JANITOR_BENCH_ORG_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or(8)
}

fn inventory() -> Value {
    json!({
        "credentials": [{"access_key_id": KEY_ID, "access_key_secret": SECRET, "account_id": MASTER}],
        "now": NOW,
        "sts": {"account_id": MASTER, "member_role": {"name": "ResourceDirectoryAccountAccessRole", "trusted": [KEY_ID]}},
        "resource_directory": {"id": "rd-bench01", "master_account_id": MASTER,
                               "generate": {"count": MEMBERS, "first_id": FIRST}},
        "generate": {"accounts": "all-members", "regions": REGIONS, "ecs_per_region": PER_REGION,
                     "expired_every": EXPIRED_EVERY},
    })
}

fn policy(concurrency: usize) -> String {
    format!(
        "regions: [{}]\nproducts: [ecs]\naccounts:\n  discovery: resource-directory\n  concurrency: {concurrency}\n\
         limits: {{ max_releases_per_run: 100, max_release_percent: 25 }}\n\
         rules:\n  - name: expired-by-tag\n    filters: {{ expire_at_tag: expire-at }}\n    grace: 0\n",
        REGIONS.join(", ")
    )
}

/// The fewest calls an apply run needs:
/// - the plan: `GetCallerIdentity` (who plans) and `ListAccounts` pages of 100 (the API's largest page);
/// - per account: `AssumeRole` into its member role and `GetCallerIdentity` (the run checks the account);
/// - per account and region: `DescribeInstances` pages of 100, the pre-flight re-read of the eligible ids (a
///   `DescribeInstances` per 100), `DeleteInstances` per 100 with `DryRun`, then the real one.
fn floor_calls() -> (u64, Vec<(&'static str, u64)>) {
    let eligible = PER_REGION / EXPIRED_EVERY;
    let batches = eligible.div_ceil(100) as u64;
    let pairs = (MEMBERS * REGIONS.len()) as u64;
    let pages = PER_REGION.div_ceil(100).max(1) as u64;
    let rows = vec![
        ("sts:GetCallerIdentity", 1 + MEMBERS as u64),
        ("resourcemanager:ListAccounts", MEMBERS.div_ceil(100) as u64),
        ("sts:AssumeRole", MEMBERS as u64),
        ("ecs:DescribeInstances", pairs * (pages + batches)),
        ("ecs:DeleteInstances", pairs * 2 * batches),
    ];
    (rows.iter().map(|(_, n)| n).sum(), rows)
}

/// The least time of one account: its two STS calls in sequence, its listing (regions `REGIONS_AT_ONCE` at a
/// time, each its pages in sequence), then the pre-flight, dry-run and release rounds, every region at once (each
/// region is its own ECS endpoint host, with its own calls in flight).
fn account_floor() -> Duration {
    let rounds = 2 + REGIONS.len().div_ceil(REGIONS_AT_ONCE) * PER_REGION.div_ceil(100).max(1) + 3;
    Duration::from_millis(LATENCY_MS * rounds as u64)
}

/// The emulator, on its own thread with the benchmark's latency; the `Sim` handle reads its call log.
fn start_sim(dir: &Path) -> (aliyun_sim::Sim, aliyun_sim::ThreadServer) {
    let path = dir.join("org-inventory.json");
    std::fs::write(&path, inventory().to_string()).expect("inventory");
    let opts = aliyun_sim::SimOptions { latency_ms: LATENCY_MS, ..aliyun_sim::SimOptions::default() };
    let sim = aliyun_sim::Sim::from_inventory_file(&path, opts).expect("the benchmark inventory loads");
    let server = aliyun_sim::ThreadServer::start(sim.clone()).expect("the emulator starts");
    (sim, server)
}

/// The environment of every janitor process: a clean one, the emulator, the pinned clock, the management key.
fn with_env<'a>(cmd: &'a mut Command, url: &str) -> &'a mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JANITOR_ENDPOINT", url)
        .env("JANITOR_NOW", NOW)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
        .env("JANITOR_ECS_METADATA_ENDPOINT", "http://127.0.0.1:9")
        .env("RUST_LOG", "warn")
}

/// One step through `aliyun-janitor org`: its answer and wall time.
fn step(url: &str, policy: &Path, dir: &Path, name: &str, doc: &Value) -> (Value, Duration) {
    let path = dir.join(format!("org-{name}.json"));
    std::fs::write(&path, doc.to_string()).expect("step document");
    let started = Instant::now();
    let out = with_env(&mut Command::new(bin()), url)
        .arg("org")
        .arg(&path)
        .arg("--policy")
        .arg(policy)
        .arg("--apply")
        .stderr(Stdio::null())
        .output()
        .expect("the janitor runs");
    let wall = started.elapsed();
    assert!(out.status.success(), "step {name}: {}", String::from_utf8_lossy(&out.stdout));
    (serde_json::from_slice(&out.stdout).expect("a JSON answer"), wall)
}

struct Measured {
    wall: Duration,
    cpu: Duration,
    peak_rss_kb: u64,
    exit: i32,
    summary: Value,
}

fn local_runner(url: &str, policy: &Path, dir: &Path) -> Measured {
    let stats = dir.join("org-local.time");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f").arg("%e %U %S %M").arg("-o").arg(&stats).arg(bin()).args(["run", "--policy"]).arg(policy);
    with_env(cmd.arg("--apply"), url).stderr(Stdio::null());
    let started = Instant::now();
    let out = cmd.output().expect("GNU time at /usr/bin/time (apt-get install time)");
    let wall = started.elapsed();
    let f: Vec<f64> =
        std::fs::read_to_string(&stats).unwrap_or_default().split_whitespace().filter_map(|x| x.parse().ok()).collect();
    std::fs::write(dir.join("org-local.summary.json"), &out.stdout).expect("summary");
    Measured {
        wall,
        cpu: Duration::from_secs_f64(f.get(1).copied().unwrap_or(0.0) + f.get(2).copied().unwrap_or(0.0)),
        peak_rss_kb: f.get(3).copied().unwrap_or(0.0) as u64,
        exit: out.status.code().unwrap_or(-1),
        summary: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
    }
}

fn calls_by_kind(sim: &aliyun_sim::Sim) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for c in sim.calls() {
        let product = match c.version.as_str() {
            "2015-04-01" => "sts",
            "2020-03-31" => "resourcemanager",
            "2014-05-26" => "ecs",
            other => other,
        };
        *m.entry(format!("{product}:{}", c.action)).or_default() += 1;
    }
    m
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("organisation benchmark: skipped (run `make bench`)");
        return;
    }
    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("target/bench");
    let concurrency = concurrency();
    let policy_path = dir.join("org-policy.yaml");
    std::fs::write(&policy_path, policy(concurrency)).expect("policy");
    let eligible = MEMBERS * REGIONS.len() * (PER_REGION / EXPIRED_EVERY);
    let (floor_total, floor_rows) = floor_calls();

    // 1. The shard entry points, as the workflow engines run them (one invocation each).
    let (sim, server) = start_sim(&dir);
    let started = Instant::now();
    let (plan, plan_wall) = step(&server.url, &policy_path, &dir, "plan", &json!({"janitor_step": "plan"}));
    let shards = plan["shards"].as_array().cloned().unwrap_or_default();
    let mut results = Vec::new();
    let mut longest = (String::new(), Duration::ZERO, 0u64);
    for shard in &shards {
        let id = shard["id"].as_str().unwrap_or("?").to_string();
        let doc =
            json!({"janitor_step": "run_shard", "org_run_id": plan["org_run_id"], "now": plan["now"], "shard": shard});
        let (result, wall) = step(&server.url, &policy_path, &dir, &id, &doc);
        if wall > longest.1 {
            longest = (id, wall, result["elapsed_ms"].as_u64().unwrap_or(0));
        }
        results.push(result);
    }
    let merge = json!({"janitor_step": "merge", "org_run_id": plan["org_run_id"], "now": plan["now"],
                       "plan": plan["summary"], "results": results});
    let (merged, _) = step(&server.url, &policy_path, &dir, "merge", &merge);
    let steps_wall = started.elapsed();
    let step_calls = calls_by_kind(&sim);
    drop(server);

    // 2. The local runner, on a fresh emulator.
    let (sim, server) = start_sim(&dir);
    let local = local_runner(&server.url, &policy_path, &dir);
    let local_calls = calls_by_kind(&sim);
    drop(server);

    let estimated: Vec<u64> = shards.iter().filter_map(|s| s["estimated_secs"].as_u64()).collect();
    let per_shard = shards.iter().map(|s| s["accounts"].as_array().map_or(0, Vec::len)).max().unwrap_or(0);
    let shard_floor = account_floor() * per_shard.div_ceil(concurrency) as u32;
    let released = |s: &Value| s["totals"]["released"].as_u64().unwrap_or(0);
    let total = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();

    let mut out = String::new();
    out.push_str(&format!(
        "Organisation: {MEMBERS} member accounts × {} regions × {PER_REGION} ECS instances ({} in all, {eligible} eligible); \
         emulator latency {LATENCY_MS} ms per call; `accounts.concurrency: {concurrency}`{}; both runs apply.\n\n",
        REGIONS.len(),
        MEMBERS * REGIONS.len() * PER_REGION,
        if concurrency == 8 { " (the default)" } else { " (JANITOR_BENCH_ORG_CONCURRENCY; the default is 8)" }
    ));
    out.push_str("| figure | measured | floor / target |\n|---|---:|---|\n");
    let (lo, hi) = (estimated.iter().min().copied().unwrap_or(0), estimated.iter().max().copied().unwrap_or(0));
    let range = if lo == hi { format!("{hi} s") } else { format!("{lo}–{hi} s") };
    out.push_str(&format!(
        "| shards planned | {} (≤ {per_shard} accounts each; the planner's estimate {range} a shard, at 0.1 s a call) | |\n",
        shards.len()
    ));
    out.push_str(&format!(
        "| longest shard (`org` run_shard process, wall) | {} ({}; {} ms inside the run) | floor {}; target ≤ {} |\n",
        secs(longest.1),
        longest.0,
        longest.2,
        secs(shard_floor),
        secs(SHARD_TARGET)
    ));
    out.push_str(&format!("| plan step / all steps in sequence | {} / {} | |\n", secs(plan_wall), secs(steps_wall)));
    out.push_str(&format!(
        "| API calls, shard steps (plan + shards) | {} | floor {floor_total} |\n",
        total(&step_calls)
    ));
    out.push_str(&format!("| released, shard steps (merged summary) | {} | {eligible} |\n", released(&merged)));
    out.push_str(&format!(
        "| local runner wall time | {} (longest shard inside: {} ms) | |\n",
        secs(local.wall),
        local.summary["longest_shard_ms"].as_u64().unwrap_or(0)
    ));
    out.push_str(&format!("| local runner peak RSS | {:.1} MiB | |\n", local.peak_rss_kb as f64 / 1024.0));
    out.push_str(&format!("| local runner CPU (user + sys) | {} | |\n", secs(local.cpu)));
    out.push_str(&format!("| API calls, local runner | {} | floor {floor_total} |\n", total(&local_calls)));
    out.push_str(&format!("| released, local runner | {} | {eligible} |\n", released(&local.summary)));
    out.push_str(&format!("| local runner exit code | {} | 0 |\n", local.exit));
    out.push_str("\n**API calls by kind**\n\n| call | shard steps | local runner | floor |\n|---|---:|---:|---:|\n");
    let mut keys: Vec<String> = step_calls.keys().chain(local_calls.keys()).cloned().collect();
    keys.extend(floor_rows.iter().map(|(k, _)| k.to_string()));
    keys.sort();
    keys.dedup();
    for k in keys {
        let floor = floor_rows.iter().find(|(f, _)| *f == k).map_or(0, |(_, n)| *n);
        out.push_str(&format!(
            "| `{k}` | {} | {} | {floor} |\n",
            step_calls.get(&k).copied().unwrap_or(0),
            local_calls.get(&k).copied().unwrap_or(0)
        ));
    }
    println!("{out}");
    std::fs::write(dir.join("org.md"), &out).expect("report");
    println!("report: {}", dir.join("org.md").display());
}

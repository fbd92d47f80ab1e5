//! Crash safety: an `--apply` run killed with SIGKILL at any point, then run again to completion, ends in the
//! same state as one clean run, and no instance is released twice.
//!
//! Kill points: the emulator acts on a call when it arrives and answers 15 ms later; a point is "after the
//! emulator has handled N calls, plus D ms", for every N from 0 to the clean run's call count and two delays
//! (0 ms: the service has just acted on call N and its answer is not yet back; 8 ms: halfway through the wait).
//! The inventory needs 11 calls (5 listing pages, 3 dry-run batches, 3 release batches), so that is 24 points.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use aliyun_sim::SimOptions;
use serde_json::Value;

const POLICY: &str = r#"
regions: [cn-hangzhou, cn-shanghai]
products: [ecs]
protect:
  tags: { "janitor:keep": "true" }
limits: { max_releases_per_run: 1000, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
"#;

const LATENCY_MS: u64 = 15;

/// Hangzhou: 250 instances (150 eligible: two batches), Shanghai: 120 (60 eligible), a few protected in each.
fn inventory_json() -> Value {
    let mut items = Vec::new();
    for (region, n, eligible) in [("cn-hangzhou", 250, 150), ("cn-shanghai", 120, 60)] {
        for i in 0..n {
            let id = format!("i-{}-{i:03}", &region[3..5]);
            let tags: Vec<(&str, &str)> = match i {
                i if i < eligible => vec![("expire-at", "2026-01-01")],
                i if i % 3 == 0 => vec![("expire-at", "2026-01-01"), ("janitor:keep", "true")],
                _ => vec![("expire-at", "2027-01-01")],
            };
            items.push(ecs(&id, region, "Stopped", "PostPaid", &tags));
        }
    }
    inventory(items)
}

fn ineligible() -> BTreeSet<String> {
    let inv = inventory_json();
    inv["ecs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|i| {
                    i["Tags"]["Tag"]
                        .as_array()
                        .is_some_and(|t| !t.iter().any(|t| t["TagValue"] == "2026-01-01") || t.len() > 1)
                })
                .filter_map(|i| i["InstanceId"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

struct Crash {
    calls: usize,
    delay_ms: u64,
    /// The process died of the kill (not of its own accord before it).
    killed: bool,
    calls_before_kill: usize,
}

async fn crash_then_rerun(calls: usize, delay_ms: u64, reference: Arc<Vec<String>>) -> Crash {
    let env = Env::start_with(&inventory_json(), SimOptions { latency_ms: LATENCY_MS, ..SimOptions::default() }).await;
    let policy = env.write("policy.yaml", POLICY);
    let mut child = Command::new(BIN)
        .arg("run")
        .arg("--policy")
        .arg(&policy)
        .arg("--apply")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JANITOR_ENDPOINT", &env.url)
        .env("JANITOR_NOW", NOW)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
        .env("JANITOR_MARK_KEY", MARK_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    // Bounded wait: the clean run takes well under a second.
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.sim.calls().len() < calls && Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let calls_before_kill = env.sim.calls().len();
    let _ = child.kill();
    let status = child.wait().expect("reaped");
    let killed = status.signal() == Some(9);

    let run = env.run(POLICY, &["--apply"]).await;
    let at = format!("kill after {calls} calls + {delay_ms} ms ({calls_before_kill} seen, killed: {killed})");
    assert_eq!(run.code, 0, "{at}: rerun stderr {}", run.stderr);
    assert_eq!(env.sim.instance_ids("ecs"), *reference, "{at}: end state differs from one clean run");

    // Nothing protected or ineligible was ever sent; nothing was released by two different calls.
    let never = ineligible();
    let mut released_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in env.sim.calls().iter().filter(|c| c.action == "DeleteInstances") {
        for (k, id) in c.params.iter().filter(|(k, _)| k.starts_with("InstanceId.")) {
            assert!(!never.contains(id), "{at}: {id} sent in {k} of {c:?}");
            if !c.dry_run && c.code.is_none() {
                released_by
                    .entry(id.clone())
                    .or_default()
                    .insert(c.params.get("ClientToken").cloned().unwrap_or_default());
            }
        }
    }
    for (id, tokens) in released_by {
        assert_eq!(tokens.len(), 1, "{at}: {id} released by {tokens:?}");
    }
    let _ = std::fs::remove_dir_all(&env.dir);
    Crash { calls, delay_ms, killed, calls_before_kill }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_at_any_point_then_rerun_ends_as_one_clean_run() {
    // The reference: one clean run on a fresh emulator.
    let env = Env::start_with(&inventory_json(), SimOptions { latency_ms: LATENCY_MS, ..SimOptions::default() }).await;
    let clean = env.run(POLICY, &["--apply"]).await;
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let total_calls = env.sim.calls().len();
    assert_eq!(total_calls, 15, "the identity + 5 pages + 3 pre-flight re-reads + 3 dry runs + 3 releases");
    assert_eq!(clean.ids("released").len(), 210);
    let reference = Arc::new(env.sim.instance_ids("ecs"));
    assert_eq!(reference.len(), 370 - 210);

    let points: Vec<(usize, u64)> = (0..=total_calls).flat_map(|n| [(n, 0), (n, LATENCY_MS / 2 + 1)]).collect();
    assert!(points.len() >= 20);
    let slots = Arc::new(tokio::sync::Semaphore::new(3));
    let mut tasks = tokio::task::JoinSet::new();
    for (calls, delay_ms) in points {
        let (slots, reference) = (slots.clone(), reference.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire().await;
            crash_then_rerun(calls, delay_ms, reference).await
        });
    }
    let mut crashes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(c) => crashes.push(c),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    crashes.sort_by_key(|c| (c.calls, c.delay_ms));
    // A kill "lands" when the process was still running; the calls it had made by then spread over the run.
    let landed: Vec<String> = crashes
        .iter()
        .filter(|c| c.killed)
        .map(|c| format!("{}+{}ms:{}", c.calls, c.delay_ms, c.calls_before_kill))
        .collect();
    assert!(landed.len() >= 20, "only {} kills landed while the run was going: {landed:?}", landed.len());
    let distinct: BTreeSet<usize> = crashes.iter().filter(|c| c.killed).map(|c| c.calls_before_kill).collect();
    assert!(distinct.len() >= 6, "kills landed after only these call counts: {distinct:?}");
}

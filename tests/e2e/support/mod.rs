//! Helpers for end-to-end tests: an in-process emulator on loopback, and the real binary run against it.
//! `runtime` has those of the serverless runtimes' tests (child processes, sample events).
#![allow(dead_code)]

pub mod runtime;

use std::path::PathBuf;
use std::process::Command;

use aliyun_sim::{self as sim, Sim, SimOptions};
use serde_json::{json, Value};

pub const KEY_ID: &str = "test-access-key";
pub const SECRET: &str = "test-secret-Zq8v1bW";
pub const BIN: &str = env!("CARGO_BIN_EXE_aliyun-janitor");
/// The clock every test evaluates policies at.
pub const NOW: &str = "2026-11-25T12:00:00Z";
/// A metadata service that is not there (the discard port on loopback): the credential chain ends here in tests.
pub const NO_METADATA: &str = "http://127.0.0.1:9";
/// The mark key of every test run (an emulator-only value).
pub const MARK_KEY: &str = "test-mark-key-emulator-only-7f3a";

/// The tags of a mark the janitor wrote itself (its MAC made with `MARK_KEY`).
pub fn mark(product: &str, region: &str, id: &str, rule: &str, release_after: &str) -> Vec<(String, String)> {
    use aliyun_janitor::lifecycle::{mark_tags, MarkKey, MarkOf};
    let key = MarkKey::new(MARK_KEY).expect("test key");
    let at = chrono::DateTime::parse_from_rfc3339(release_after).expect("RFC 3339").with_timezone(&chrono::Utc);
    mark_tags(at, rule, Some(&key), &MarkOf { product, region, id }).into_iter().collect()
}

/// An ECS instance as DescribeInstances returns it.
pub fn ecs(id: &str, region: &str, status: &str, charge: &str, tags: &[(&str, &str)]) -> Value {
    json!({
        "InstanceId": id, "InstanceName": format!("name-{id}"), "RegionId": region, "ZoneId": format!("{region}-a"),
        "Status": status, "InstanceChargeType": charge, "CreationTime": "2026-10-01T00:00Z",
        "ExpiredTime": "2099-12-31T15:59Z", "DeletionProtection": false,
        "OperationLocks": {"LockReason": []},
        "Tags": {"Tag": tags.iter().map(|(k, v)| json!({"TagKey": k, "TagValue": v})).collect::<Vec<_>>()},
    })
}

pub fn inventory(ecs: Vec<Value>) -> Value {
    // The emulator's expiry clock is pinned to the same "now" the janitor evaluates at.
    json!({"credentials": [{"access_key_id": KEY_ID, "access_key_secret": SECRET}], "now": NOW, "ecs": ecs})
}

/// An inventory with the given product sections (`{"r-kvstore": [...], "bss": {...}}`), the test credentials
/// and the pinned clock.
pub fn inventory_with(sections: Value) -> Value {
    let mut inv = json!({"credentials": [{"access_key_id": KEY_ID, "access_key_secret": SECRET}], "now": NOW});
    if let (Some(inv), Value::Object(sections)) = (inv.as_object_mut(), sections) {
        inv.extend(sections);
    }
    inv
}

pub struct Env {
    pub sim: Sim,
    pub url: String,
    pub dir: PathBuf,
}

impl Env {
    pub async fn start(inventory: &Value) -> Env {
        Env::start_with(inventory, SimOptions::default()).await
    }

    pub async fn start_with(inventory: &Value, opts: SimOptions) -> Env {
        let sim = Sim::from_inventory_json(&inventory.to_string(), opts).expect("inventory");
        let url = sim::spawn(sim.clone()).await.expect("emulator starts");
        let dir = std::env::temp_dir().join(format!("janitor-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Env { sim, url, dir }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write fixture");
        p
    }

    /// Runs `aliyun-janitor run` with the policy text and extra args; returns the outcome.
    pub async fn run(&self, policy: &str, args: &[&str]) -> Run {
        self.run_with_env(policy, args, &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)]).await
    }

    pub async fn run_with_env(&self, policy: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let policy_path = self.write("policy.yaml", policy);
        let mut cmd = Command::new(BIN);
        cmd.arg("run").arg("--policy").arg(&policy_path).args(args);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("JANITOR_ENDPOINT", &self.url)
            .env("JANITOR_NOW", NOW)
            .env("JANITOR_MARK_KEY", MARK_KEY)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
            // The chain's last sources stay on loopback: no test may reach 100.100.100.200.
            .env("JANITOR_ECS_METADATA_ENDPOINT", NO_METADATA)
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let summary = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        Run { code: out.status.code().unwrap_or(-1), stdout, stderr, summary }
    }

    /// Ids passed to real (non-dry-run) DeleteInstances calls that succeeded.
    pub fn released_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sim
            .release_calls()
            .iter()
            .filter(|c| c.code.is_none())
            .flat_map(|c| {
                c.params
                    .iter()
                    .filter(|(k, _)| k.starts_with("InstanceId."))
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        ids.sort();
        // A ClientToken replay is logged as a second successful call for the same ids.
        ids.dedup();
        ids
    }

    /// Calls of `action` in API `version` (products share action names: `DeleteInstance`, `ReleaseInstance`).
    pub fn calls_to(&self, version: &str, action: &str) -> Vec<sim::CallRecord> {
        self.sim.calls().into_iter().filter(|c| c.version == version && c.action == action).collect()
    }

    /// Values of `param` in real calls of `action` (API `version`) that succeeded, sorted and deduplicated.
    pub fn succeeded(&self, version: &str, action: &str, param: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .calls_to(version, action)
            .into_iter()
            .filter(|c| c.code.is_none() && !c.dry_run)
            .filter_map(|c| c.params.get(param).cloned())
            .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    pub fn calls_of(&self, action: &str) -> usize {
        self.sim.calls().iter().filter(|c| c.action == action).count()
    }

    /// Runs with the janitor and the emulator both at `now` (RFC 3339): days pass between runs this way.
    pub async fn run_at(&self, now: &str, policy: &str, args: &[&str]) -> Run {
        let t = chrono::DateTime::parse_from_rfc3339(now).expect("RFC 3339").with_timezone(&chrono::Utc);
        self.sim.set_clock(Some(t));
        self.run_with_env(policy, args, &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), ("JANITOR_NOW", now)]).await
    }

    /// A signed API client for the emulator, to act as an instance's owner (or to read tags) from a test.
    pub fn client(&self) -> aliyun_janitor::aliyun::Client {
        use aliyun_janitor::aliyun::{Client, Credentials, Endpoints, RetryPolicy};
        let endpoints = Endpoints::new(Some(&self.url), &std::collections::BTreeMap::new()).expect("endpoint");
        Client::new(
            Credentials::new(KEY_ID, SECRET, None),
            endpoints,
            RetryPolicy::default(),
            aliyun_janitor::aliyun::CallLimits::per_endpoint(4),
        )
        .expect("client")
    }

    /// An ECS instance as it is now, read by id (`None` once released).
    pub async fn instance(&self, region: &str, id: &str) -> Option<aliyun_janitor::inventory::Instance> {
        use aliyun_janitor::products::{Ecs, Product};
        Ecs.get(&self.client(), region, &[id.to_string()]).await.expect("read").into_iter().next()
    }

    /// Sets tags on an ECS instance, as its owner would.
    pub async fn owner_tags(&self, region: &str, id: &str, tags: &[(&str, &str)]) {
        use aliyun_janitor::products::{Ecs, Tagging};
        let tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let report = Ecs.tag(&self.client(), region, &[id.to_string()], &tags).await.expect("tag");
        assert!(report.failed.is_empty(), "{report:?}");
    }

    /// Calls of `action` whose parameters hold `key` = `value`.
    pub fn calls_with(&self, action: &str, key: &str, value: &str) -> Vec<sim::CallRecord> {
        self.sim
            .calls()
            .into_iter()
            .filter(|c| c.action == action && c.params.get(key).map(String::as_str) == Some(value))
            .collect()
    }

    /// `DescribeInstances` calls that list a region (no `InstanceIds` filter).
    pub fn listings(&self) -> usize {
        self.sim
            .calls()
            .iter()
            .filter(|c| c.action == "DescribeInstances" && !c.params.contains_key("InstanceIds"))
            .count()
    }
}

/// `NOW` plus `days` days (may be fractional), RFC 3339.
pub fn day(days: f64) -> String {
    let now = chrono::DateTime::parse_from_rfc3339(NOW).expect("NOW").with_timezone(&chrono::Utc);
    let t = now + chrono::Duration::seconds((days * 86_400.0) as i64);
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub summary: Value,
}

impl Run {
    /// The outcome the summary gives for an instance id.
    pub fn outcome(&self, id: &str) -> String {
        self.entry(id)["outcome"].as_str().unwrap_or("<missing>").to_string()
    }

    pub fn entry(&self, id: &str) -> Value {
        self.summary["entries"]
            .as_array()
            .and_then(|es| es.iter().find(|e| e["id"] == id).cloned())
            .unwrap_or(Value::Null)
    }

    pub fn ids(&self, list: &str) -> Vec<String> {
        let mut v: Vec<String> = self.summary[list]
            .as_array()
            .map(|a| {
                a.iter().filter_map(|x| x.as_str()).map(|s| s.rsplit('/').next().unwrap_or(s).to_string()).collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

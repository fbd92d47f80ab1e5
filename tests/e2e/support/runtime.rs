//! Shared helpers of the serverless end-to-end tests: the real binary, the emulator (in-process, on its own
//! thread), a test policy and inventory, and child processes that are always killed. Everything listens on and talks
//! to 127.0.0.1 only.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_aliyun-janitor");

/// The only credentials the emulator accepts.
pub const SIM_KEY_ID: &str = "sim-key-id";
pub const SIM_SECRET: &str = "sim-secret-5d1c0a9e77";
/// Credentials the emulator does not know (used in the environment to prove per-request headers win).
pub const WRONG_KEY_ID: &str = "env-key-id";
pub const WRONG_SECRET: &str = "env-secret-0b8e41f2c3";

/// `i-1` matches the test policy's rule; `i-2` does not (so one of two is eligible: 50%, under the limit).
pub const INVENTORY: &str = r#"{
  "credentials": [{"access_key_id": "sim-key-id", "access_key_secret": "sim-secret-5d1c0a9e77"}],
  "ecs": [
    {"InstanceId": "i-1", "InstanceName": "dev-box", "RegionId": "cn-hangzhou", "Status": "Stopped",
     "InstanceChargeType": "PostPaid", "CreationTime": "2026-01-01T00:00Z", "ExpiredTime": "2099-12-31T15:59Z",
     "DeletionProtection": false, "Tags": {"Tag": [{"TagKey": "env", "TagValue": "dev"}]}},
    {"InstanceId": "i-2", "InstanceName": "prod-box", "RegionId": "cn-hangzhou", "Status": "Stopped",
     "InstanceChargeType": "PostPaid", "CreationTime": "2026-01-01T00:00Z", "ExpiredTime": "2099-12-31T15:59Z",
     "DeletionProtection": false, "Tags": {"Tag": [{"TagKey": "env", "TagValue": "prod"}]}}
  ]
}"#;

/// Covers every region and product the sample events in `events/` may narrow to, so none of them widens it.
pub const POLICY: &str = "\
apply: false
regions: [cn-hangzhou, ap-southeast-1]
products: [ecs, r-kvstore]
limits:
  max_releases_per_run: 10
  max_release_percent: 100
rules:
  - name: dev
    filters:
      tag: {env: dev}
    grace: 0
";

/// The id the summary lists for the one eligible instance.
pub const ELIGIBLE: &str = "ecs:cn-hangzhou/i-1";

/// A fresh directory under cargo's per-test-target temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// Sample events from `events/`, sorted by file name. Files named `invalid*` must be rejected.
pub fn sample_events() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    for needed in ["aws-scheduled.json", "fc-timer.json", "manual-dry-run.json"] {
        assert!(out.iter().any(|(n, _)| n == needed), "events/{needed} is missing");
    }
    out
}

/// A child process whose stdout and stderr are collected; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub started: Instant,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    drains: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts the binary with a clean environment plus `env`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.env("JANITOR_MARK_KEY", super::MARK_KEY);
        cmd.env("JANITOR_ECS_METADATA_ENDPOINT", super::NO_METADATA);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn aliyun-janitor");
        let (stdout, out_thread) = drain(child.stdout.take().expect("stdout"));
        let (stderr, err_thread) = drain(child.stderr.take().expect("stderr"));
        Proc { child, started, stdout, stderr, drains: vec![out_thread, err_thread] }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the collected stdout contains `needle` (the drain thread reads the pipe asynchronously).
    pub fn wait_stdout(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.join_drains();
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the process and waits until all of its output has been collected.
    pub fn kill_and_collect(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_drains();
    }

    fn join_drains(&mut self) {
        for t in self.drains.drain(..) {
            let _ = t.join();
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(mut r: impl Read + Send + 'static) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(String::new()));
    let out = buf.clone();
    let thread = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            out.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    (buf, thread)
}

/// Starts the emulator on a free loopback port with [`INVENTORY`], on its own thread and runtime (the
/// serverless tests are synchronous); returns it (it stops when dropped) and its base URL.
pub fn start_sim(dir: &Path) -> (aliyun_sim::ThreadServer, String) {
    let inventory = write(dir, "inventory.json", INVENTORY);
    let sim = aliyun_sim::Sim::from_inventory_file(&inventory, aliyun_sim::SimOptions::default()).expect("inventory");
    let server = aliyun_sim::ThreadServer::start(sim).expect("the emulator starts");
    let url = server.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "emulator must listen on loopback: {url}");
    (server, url)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn http_client() -> reqwest::Client {
    // reqwest is built with `rustls-no-provider`: a provider must be installed even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).no_proxy().build().expect("http client")
}

/// Neither secret may ever reach the output.
pub fn assert_no_secrets(what: &str, text: &str) {
    for s in [SIM_SECRET, WRONG_SECRET] {
        assert!(!text.contains(s), "{what} contains a secret:\n{text}");
    }
}

pub fn str_list(v: &serde_json::Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Checks a summary that every sample event should produce against [`INVENTORY`] and [`POLICY`] (a dry run).
pub fn check_dry_run_summary(event: &str, s: &serde_json::Value) {
    assert_eq!(s["mode"], "dry-run", "{event}: {s:#}");
    assert!(str_list(&s["released"]).is_empty(), "{event}: nothing may be released in a dry run: {s:#}");
    assert!(s["failures"].as_array().is_some_and(|f| f.is_empty()), "{event}: {s:#}");
    let ecs_skipped = s["skipped_scopes"].as_array().map(|a| a.iter().any(|x| x["product"] == "ecs")).unwrap_or(true);
    assert!(!ecs_skipped, "{event}: the ecs scope was not scanned: {s:#}");
}

/// What the three core samples must produce: exactly `i-1` would be released, `i-2` kept.
pub fn check_core_summary(event: &str, s: &serde_json::Value) {
    check_dry_run_summary(event, s);
    assert_eq!(str_list(&s["would_release"]), [ELIGIBLE], "{event}: {s:#}");
    assert_eq!(s["scanned"], 2, "{event}: {s:#}");
}

pub fn is_core(event: &str) -> bool {
    ["aws-scheduled.json", "fc-timer.json", "manual-dry-run.json"].contains(&event)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

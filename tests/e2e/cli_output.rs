//! Issue 17: the CLI without a terminal. Golden files of the demo summary rendered by `report` (table, markdown,
//! csv: `UPDATE_GOLDEN=1 cargo test --test e2e cli_output` rewrites them after a deliberate change), JSON-only
//! output when nothing is a terminal, `--region`/`--product` narrowing exactly as a manual event does (fleet
//! limits included), usage errors exiting 2, completions, the man page, and a closed stdout ending cleanly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::support::{ecs, inventory, Env, BIN};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/demo-summary.json");
const EXPIRED: (&str, &str) = ("expire-at", "2026-01-01");

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden").join(name)
}

/// The binary with a clean environment (a fixed width, no colour settings), nothing a terminal.
fn janitor(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("COLUMNS", "100")
        .stdin(Stdio::null())
        .output()
        .expect("binary runs")
}

fn policy(limits: &str) -> String {
    format!(
        r#"
regions: [cn-hangzhou, cn-shanghai]
products: [ecs]
limits: {{ {limits} }}
rules:
  - name: expired-by-tag
    filters: {{ expire_at_tag: expire-at }}
    grace: 0
"#
    )
}

#[test]
fn the_demo_summary_renders_as_its_golden_files() {
    for (format, file) in [("table", "demo.table.txt"), ("markdown", "demo.md"), ("csv", "demo.csv")] {
        let out = janitor(&["report", DEMO, "--output", format]);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        let got = String::from_utf8(out.stdout).expect("UTF-8");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden(file), &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(golden(file)).unwrap_or_default();
        assert_eq!(got, want, "{format} differs from tests/fixtures/golden/{file} (UPDATE_GOLDEN=1 rewrites it)");
        assert!(!got.contains('\u{1b}'), "{format}: no ANSI codes when stdout is not a terminal");
    }
    // JSON (the default off a terminal) is the summary as stored.
    let out = janitor(&["report", DEMO]);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(DEMO).unwrap()).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).ok(), Some(stored));
    // -v adds the facts.
    let out = janitor(&["report", DEMO, "-o", "table", "-v"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("charge_type=pay-as-you-go"));
}

#[test]
fn a_summary_that_is_not_one_is_refused_by_field() {
    let dir = crate::support::runtime::temp_dir("cli-report");
    let bad = crate::support::runtime::write(&dir, "bad.json", r#"{"entries": [{"outcome": "gone"}]}"#);
    let out = janitor(&["report", bad.to_str().unwrap(), "-o", "table"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entries[0].outcome"), "{err}");
    let out = janitor(&["report", DEMO, "-o", "text"]);
    assert_eq!(out.status.code(), Some(2), "text is for live runs");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for args in [
        &["run"][..],
        &["run", "--policy", "p.yaml", "--output", "yaml"],
        &["run", "--policy", "p.yaml", "--bogus"],
        &["run", "--policy", "p.yaml", "--region", "cn-hangzhou", "--event", "e.json"],
        &["run", "--policy", "p.yaml", "--region", "not a region"],
        &["run", "--policy", "p.yaml", "--product", "ECS!"],
        &["completions", "tcsh"],
        &["nonsense"],
    ] {
        let out = janitor(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}: usage errors go to stderr");
    }
    let out = janitor(&["run", "--policy", "p.yaml", "--region", "not a region"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--region"), "the error names the flag");
    assert_eq!(janitor(&["--help"]).status.code(), Some(0));
    assert_eq!(janitor(&["--version"]).status.code(), Some(0));
}

#[test]
fn completions_and_the_man_page_come_from_the_clap_definitions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = janitor(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("aliyun-janitor") && script.contains("--region"), "{shell}: {script}");
    }
    let out = janitor(&["man"]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH aliyun-janitor"), "{page}");
    assert!(page.contains("report") && page.contains("completions"), "{page}");
}

/// The demo once ended with `error: cannot write the summary: Broken pipe` (its output cut with `head`).
#[test]
fn a_closed_stdout_ends_cleanly() {
    for format in ["table", "json", "csv"] {
        let mut child = Command::new(BIN)
            .args(["report", DEMO, "-v", "--output", format])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{format}");
        assert!(out.stderr.is_empty(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Without a terminal: stdout is the JSON summary, stderr JSON lines, no ANSI code, no progress and no prompt
/// (an apply run goes on, as scripts and schedulers expect).
#[tokio::test]
async fn without_a_terminal_the_output_is_json_only() {
    let env = Env::start(&inventory(vec![ecs("i-old", "cn-hangzhou", "Stopped", "PostPaid", &[EXPIRED])])).await;
    let run = env.run(&policy("max_release_percent: 100"), &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["released"], json!(["ecs:cn-hangzhou/i-old"]), "{}", run.stdout);
    assert!(!run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'));
    assert!(!run.stderr.contains("About to change") && !run.stderr.contains("listing"), "{}", run.stderr);
    for line in run.stderr.lines() {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "a stderr line that is not JSON: {line}");
    }
}

/// `--region`/`--product` are a manual event's `regions`/`products`: the same scope, the same trigger, the
/// same refusal to widen, and the same fleet-wide limits before a narrowed run releases.
#[tokio::test]
async fn region_and_product_narrow_exactly_as_a_manual_event() {
    // cn-hangzhou: 1 due of 5 (20 %); cn-shanghai: 5 due of 5; the fleet: 6 of 10 (60 %).
    let mut fleet = vec![ecs("i-hz-0", "cn-hangzhou", "Stopped", "PostPaid", &[EXPIRED])];
    fleet.extend((1..5).map(|i| ecs(&format!("i-hz-{i}"), "cn-hangzhou", "Stopped", "PostPaid", &[])));
    fleet.extend((0..5).map(|i| ecs(&format!("i-sh-{i}"), "cn-shanghai", "Stopped", "PostPaid", &[EXPIRED])));
    let env = Env::start(&inventory(fleet)).await;
    let open = policy("max_releases_per_run: 100, max_release_percent: 100");
    let flags = env.run(&open, &["--region", "cn-hangzhou", "--product", "ecs"]).await;
    let manual = env.write("manual.json", r#"{"regions": ["cn-hangzhou"], "products": ["ecs"]}"#);
    let event = env.run(&open, &["--event", manual.to_str().unwrap()]).await;
    assert_eq!(flags.code, 0, "{}", flags.stderr);
    for key in ["trigger", "scanned", "counts", "would_release"] {
        assert_eq!(flags.summary[key], event.summary[key], "{key}: {}", flags.stdout);
    }
    assert_eq!(flags.summary["scanned"], 5, "only cn-hangzhou was listed");

    let wide = env.run(&open, &["--region", "eu-central-1"]).await;
    assert_eq!(wide.code, 1, "{}", wide.stderr);
    assert!(wide.stderr.contains("eu-central-1") && wide.stderr.contains("narrow"), "{}", wide.stderr);

    // 20 % of the slice is under a 25 % limit, but 60 % of the fleet is not: the narrowed run releases nothing.
    let tight = policy("max_releases_per_run: 10, max_release_percent: 25");
    let run = env.run(&tight, &["--apply", "--region", "cn-hangzhou"]).await;
    assert_eq!(run.outcome("i-hz-0"), "held", "{}", run.stdout);
    assert!(run.summary["limit_breach"]["reason"].as_str().unwrap_or_default().contains("fleet-wide"));
    assert!(env.released_ids().is_empty());
}

/// `--log-format pretty` (a terminal's default) writes human lines; `-q` quietens them; JSON is the default here.
#[tokio::test]
async fn log_format_and_verbosity() {
    let env = Env::start(&inventory(vec![ecs("i-old", "cn-hangzhou", "Stopped", "PostPaid", &[EXPIRED])])).await;
    let open = policy("max_release_percent: 100");
    let no_rust_log = [("RUST_LOG", ""), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", crate::support::SECRET)];
    let pretty = env.run_with_env(&open, &["--log-format", "pretty", "-v"], &no_rust_log).await;
    assert_eq!(pretty.code, 0, "{}", pretty.stderr);
    assert!(pretty.stderr.contains("INFO") && pretty.stderr.contains("run starting"), "{}", pretty.stderr);
    assert!(pretty.stderr.lines().all(|l| !l.starts_with('{')), "{}", pretty.stderr);
    assert!(!pretty.stderr.contains('\u{1b}'), "no colour off a terminal: {}", pretty.stderr);
    let quiet = env.run_with_env(&open, &["-q"], &no_rust_log).await;
    assert!(!quiet.stderr.contains("run starting"), "-q drops info lines: {}", quiet.stderr);
    let json = env.run_with_env(&open, &[], &no_rust_log).await;
    assert!(json.stderr.lines().any(|l| l.contains("\"run starting\"")), "{}", json.stderr);
    assert!(json.stderr.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{}", json.stderr);
}

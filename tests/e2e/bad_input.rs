//! Malformed and hostile input: the corpus in `tests/fixtures/bad/` (policies and trigger events) run through
//! the real binary against the emulator. Each must fail with a clear error naming the field, a non-zero exit,
//! and no API call at all. Every corpus file must be listed here with what its error names, and every entry
//! here must have its file, so the corpus cannot grow without an expectation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use serde_json::json;

/// Policy file → what the error must name (the field path, or the offending key).
const POLICIES: &[(&str, &str)] = &[
    // syntax and document shape
    ("not-yaml.yaml", "regions: did not find expected ','"),
    ("empty.yaml", "regions: missing"),
    ("top-level-list.yaml", "(document)"),
    ("top-level-string.yaml", "(document)"),
    ("binary-garbage.yaml", "(file): cannot read: stream did not contain valid UTF-8"),
    ("deep-nesting.yaml", "regions[0]"),
    ("yaml-alias-bomb.yaml", "protect.tags.k1"),
    ("duplicate-keys.yaml", "duplicate field `apply`"),
    // missing fields
    ("missing-regions.yaml", "regions: missing"),
    ("missing-rules.yaml", "rules: missing"),
    ("missing-rule-name.yaml", "rules[0].name"),
    ("rule-without-selecting-filter.yaml", "rules[0].filters: no filters"),
    ("empty-regions.yaml", "regions: empty list"),
    // wrong types
    ("apply-string.yaml", "apply: invalid type"),
    ("apply-number.yaml", "apply: invalid type"),
    ("regions-number.yaml", "regions[0]"),
    ("regions-map.yaml", "regions: invalid type"),
    ("rules-map.yaml", "rules: invalid type"),
    ("filters-list.yaml", "rules[0].filters: invalid type"),
    ("tag-value-list.yaml", "rules[0].filters.tag.env"),
    ("force-string.yaml", "rules[0].force"),
    ("limit-string.yaml", "limits.max_releases_per_run"),
    ("concurrency-float.yaml", "concurrency.per_endpoint"),
    ("duration-list.yaml", "rules[0].filters.created_older_than"),
    // unknown names
    ("unknown-top-level-key.yaml", "apply_everything"),
    ("unknown-filter.yaml", "rules[0].filters.expire_at_tga"),
    ("unknown-product.yaml", "products[0]: unknown product code `rds`"),
    ("unknown-product-in-rule.yaml", "rules[0].filters.products: unknown product code `s3`"),
    ("unknown-charge-type.yaml", "rules[0].filters.charge_type"),
    ("unknown-endpoint-product.yaml", "endpoints.rds"),
    // huge and out-of-range values
    ("huge-limit.yaml", "limits.max_releases_per_run"),
    ("negative-limit.yaml", "limits.max_releases_per_run: -1 is negative"),
    ("huge-percent.yaml", "limits.max_release_percent"),
    ("nan-percent.yaml", "limits.max_release_percent: NaN"),
    ("zero-percent.yaml", "limits.max_release_percent: 0 is out of range"),
    ("huge-concurrency.yaml", "concurrency.regions: 100000"),
    ("zero-concurrency.yaml", "concurrency.per_endpoint: 0"),
    ("huge-region-name.yaml", "regions[0]"),
    ("too-many-regions.yaml", "regions: 2000 entries"),
    // negative and absurd durations
    ("negative-duration.yaml", "rules[0].filters.created_older_than: `-7d`"),
    ("absurd-duration.yaml", "rules[0].filters.created_older_than: `500y`"),
    ("overflowing-duration.yaml", "rules[0].filters.expired_for"),
    ("unitless-duration.yaml", "rules[0].filters.created_older_than: `30`"),
    ("fractional-duration.yaml", "rules[0].filters.created_older_than: `1.5d`"),
    ("zero-duration.yaml", "rules[0].filters.expired_for: `0d`"),
    // injection attempts
    ("region-shell-injection.yaml", "regions[0]"),
    ("region-newline.yaml", "regions[0]"),
    ("region-url.yaml", "regions[0]"),
    ("endpoint-not-http.yaml", "endpoints.ecs"),
    ("endpoint-with-newline.yaml", "endpoints.ecs"),
    ("protect-empty-tag-key.yaml", "protect.tags[0]"),
    ("tag-key-injection.yaml", "rules[0].filters.ttl_tag"),
    ("name-glob-unclosed.yaml", "rules[0].filters.name"),
    ("duplicate-rule-names.yaml", "rules[1].name"),
    // protect entries that would protect nothing (issue 12, item 2)
    ("protect-tag-key-trailing-space.yaml", "protect.tags[0]: tag key \"janitor:keep \" has surrounding whitespace"),
    ("protect-id-trailing-space.yaml", "protect.instance_ids: instance id \"i-plain \" has surrounding whitespace"),
    // windows that can never open (issue 12, item 19)
    ("window-feb-30.yaml", "window.cron: `0 0 0 30 Feb *` names no future time"),
    ("rule-window-apr-31.yaml", "rules[0].window.cron: `0 0 0 31 Apr *` names no future time"),
];

/// Event file → what the error must name.
const EVENTS: &[(&str, &str)] = &[
    // not an event at all
    ("not-json.json", "not valid JSON"),
    ("not-utf8.json", "not valid JSON"),
    ("empty.json", "event body is empty"),
    ("array.json", "a batch may hold only tag-change and state-change events"),
    ("number.json", "expected a JSON object, got a number"),
    ("deep-nesting.json", "recursion limit exceeded"),
    // wrong types and missing fields
    ("dry-run-string.json", "`dry_run`: expected a boolean"),
    ("dry-run-number.json", "`dry_run`: expected a boolean"),
    ("regions-string.json", "`regions`: expected an array"),
    ("regions-numbers.json", "`regions[0]`: expected a string"),
    ("regions-empty.json", "`regions`: must not be empty"),
    ("aws-scheduled-no-id.json", "`id`: missing"),
    ("aws-scheduled-time-wrong-type.json", "`time`: invalid type"),
    ("fc-timer-name-missing.json", "`triggerName`: missing"),
    ("fc-timer-payload-object.json", "`payload`: expected a string"),
    ("fc-timer-payload-broken.json", "`payload`: starts with `{` but is not valid JSON"),
    // huge values
    ("regions-too-many.json", "`regions`: has 101 entries"),
    ("region-huge.json", "`regions[0]`: is 10003 bytes long"),
    ("id-huge.json", "`id`: is 5000 bytes long"),
    // unknown products, keys and event types; scopes the policy does not cover
    ("product-unknown.json", "product `rds`"),
    ("product-uppercase.json", "`products[0]`"),
    ("region-not-in-policy.json", "region `eu-central-1`"),
    ("unknown-key-apply.json", "`apply`: unknown key"),
    ("unknown-key-policy.json", "`policy`: unknown key"),
    ("fc-timer-payload-apply.json", "`payload.apply`: unknown key"),
    ("aws-ec2-state-change.json", "`EC2 Instance State-change Notification`"),
    ("cloudevent-unknown.json", "`oss:ObjectCreated:PutObject`"),
    // dates far in the past or future
    ("aws-scheduled-time-year-99999.json", "`time`: +99999-01-01"),
    ("fc-timer-time-far-past.json", "`triggerTime`: 0000-01-01"),
    ("fc-timer-time-far-future.json", "`triggerTime`: 9999-12-31"),
    ("fc-timer-time-garbage.json", "`triggerTime`: `yesterday`"),
    // injection attempts
    ("region-shell-injection.json", "`regions[0]`"),
    ("region-log-injection.json", "`regions[0]`"),
    ("product-path-injection.json", "`products[0]`"),
    ("id-injection.json", "`id`"),
];

const GOOD_POLICY: &str = "regions: [cn-hangzhou]\nproducts: [ecs]\nlimits: { max_releases_per_run: 100, max_release_percent: 100 }\nrules:\n  - name: r\n    filters: { expire_at_tag: expire-at }\n    grace: 0\n";

fn corpus(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad").join(kind)
}

fn files(kind: &str) -> BTreeSet<String> {
    std::fs::read_dir(corpus(kind))
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn listed(table: &[(&str, &str)]) -> BTreeSet<String> {
    table.iter().map(|(f, _)| f.to_string()).collect()
}

/// An inventory with instances that every policy above would find eligible, so a run that got past its
/// input checks would release something.
fn eligible_inventory() -> serde_json::Value {
    inventory(vec![ecs("i-expired", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01")])])
}

fn run_binary(args: &[&std::ffi::OsStr], url: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JANITOR_ENDPOINT", url)
        .env("JANITOR_NOW", NOW)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
        .env("RUST_LOG", "off")
        .output()
        .expect("binary runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_corpus_and_its_expectations_match() {
    assert_eq!(
        files("policies"),
        listed(POLICIES),
        "every bad policy needs an expectation, and every expectation its file"
    );
    assert_eq!(files("events"), listed(EVENTS), "every bad event needs an expectation, and every expectation its file");
    assert!(POLICIES.len() + EVENTS.len() >= 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_policy_is_refused_naming_the_field_and_calls_nothing() {
    let env = Env::start(&eligible_inventory()).await;
    for (file, names) in POLICIES {
        let path = corpus("policies").join(file);
        for args in [vec!["run", "--apply", "--policy"], vec!["validate", "--policy"]] {
            let mut argv: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
            argv.push(path.as_os_str());
            let (code, stderr) = run_binary(&argv, &env.url);
            assert_eq!(code, 1, "{file} ({}): exit {code}, stderr {stderr}", args[0]);
            assert!(stderr.contains(names), "{file} ({}): the error should name `{names}`: {stderr}", args[0]);
            assert!(stderr.contains(file), "{file}: the error should name the file: {stderr}");
            assert!(stderr.len() < 4096, "{file}: an error is a line, not a dump ({} bytes)", stderr.len());
        }
        assert!(env.sim.calls().is_empty(), "{file}: made API calls {:?}", env.sim.calls());
    }
    assert_eq!(env.sim.instance_ids("ecs"), ["i-expired"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_event_is_refused_naming_the_field_and_calls_nothing() {
    let env = Env::start(&eligible_inventory()).await;
    let policy = env.write("policy.yaml", GOOD_POLICY);
    for (file, names) in EVENTS {
        let path = corpus("events").join(file);
        let argv: Vec<&std::ffi::OsStr> = vec![
            "run".as_ref(),
            "--apply".as_ref(),
            "--policy".as_ref(),
            policy.as_os_str(),
            "--event".as_ref(),
            path.as_os_str(),
        ];
        let (code, stderr) = run_binary(&argv, &env.url);
        assert_eq!(code, 1, "{file}: exit {code}, stderr {stderr}");
        assert!(stderr.contains(names), "{file}: the error should name `{names}`: {stderr}");
        assert!(stderr.len() < 4096, "{file}: an error is a line, not a dump ({} bytes)", stderr.len());
        assert!(env.sim.calls().is_empty(), "{file}: made API calls {:?}", env.sim.calls());
    }
    // The same policy with a good event does release: the refusals above were the input's doing.
    let good = env.write("good.json", "{}");
    let argv: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        "--apply".as_ref(),
        "--policy".as_ref(),
        policy.as_os_str(),
        "--event".as_ref(),
        good.as_os_str(),
    ];
    let (code, stderr) = run_binary(&argv, &env.url);
    assert_eq!(code, 0, "{stderr}");
    assert!(env.sim.instance_ids("ecs").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_in_the_environment_are_refused_before_any_call() {
    let env = Env::start(&eligible_inventory()).await;
    for (var, value, names) in [
        ("JANITOR_NOW", "next tuesday", "--now"),
        ("JANITOR_NOW", "+275760-09-13T00:00:00Z", "--now"),
        ("JANITOR_REQUEST_TIMEOUT_MS", "-5", "--request-timeout-ms"),
        ("JANITOR_REQUEST_TIMEOUT_MS", "99999999999999999999", "--request-timeout-ms"),
        ("JANITOR_RETRY_BUDGET_MS", "soon", "--retry-budget-ms"),
        ("JANITOR_ENDPOINT", "file:///etc/passwd", "file:///etc/passwd"),
    ] {
        let run = env
            .run_with_env(GOOD_POLICY, &["--apply"], &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), (var, value)])
            .await;
        assert_ne!(run.code, 0, "{var}={value}: {}", run.stderr);
        assert!(run.stderr.contains(names), "{var}={value}: should name {names}: {}", run.stderr);
        assert!(env.sim.calls().is_empty(), "{var}={value}: made calls");
    }
}

/// Hostile tag values on instances (injection attempts, dates and TTLs far out of range): never released on a
/// guess, reported as invalid, and the JSON log stays one object per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tag_values_are_never_released_and_never_break_the_log() {
    let hostile_dates = [
        "2026-01-01; rm -rf /",
        "2026-01-01\n{\"level\":\"ERROR\",\"fields\":{\"message\":\"forged\"}}",
        "$(date)",
        "0000-00-00",
        "+275760-09-13",
        "99999-01-01",
        "2026-13-45",
        "2026-01-01T00:00:00+99:00",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
    ];
    let hostile_ttls = ["-1d", "99999999999999999999d", "1d; reboot", "0s", "3650000d", "7d\u{0}"];
    let mut items = Vec::new();
    for (i, v) in hostile_dates.iter().enumerate() {
        items.push(ecs(&format!("i-date-{i:02}"), "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", v)]));
    }
    for (i, v) in hostile_ttls.iter().enumerate() {
        items.push(ecs(&format!("i-ttl-{i:02}"), "cn-hangzhou", "Stopped", "PostPaid", &[("ttl", v)]));
    }
    // A name and a tag key trying to forge log lines or summary entries.
    items.push(ecs("i-name", "cn-hangzhou", "Stopped", "PostPaid", &[("x\n{\"id\":\"i-forged\"}", "1")]));
    items[0]["InstanceName"] =
        json!("n\r\n{\"target\":\"decision\",\"fields\":{\"id\":\"i-forged\",\"decision\":\"released\"}}");
    let env = Env::start(&inventory(items)).await;
    let policy = format!("{GOOD_POLICY}  - name: ttl\n    filters: {{ ttl_tag: ttl }}\n");
    let run = env.run(&policy, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(env.sim.release_calls().is_empty(), "released on a hostile tag: {:?}", env.sim.release_calls());
    assert_eq!(env.calls_of("DeleteInstances"), 0);
    for (i, v) in hostile_dates.iter().enumerate() {
        assert_eq!(run.outcome(&format!("i-date-{i:02}")), "invalid", "{v}");
    }
    for (i, v) in hostile_ttls.iter().enumerate() {
        assert_eq!(run.outcome(&format!("i-ttl-{i:02}")), "invalid", "{v}");
    }
    for line in run.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert_ne!(v["fields"]["id"], "i-forged", "{line}");
    }
    assert!(!run.summary["entries"].as_array().is_some_and(|a| a.iter().any(|e| e["id"] == "i-forged")));
}

#[test]
fn a_huge_policy_file_is_refused_quickly() {
    // 8 MiB of rules: parsed and refused (unknown key at the end) without hanging or panicking.
    let dir = std::env::temp_dir().join(format!("janitor-bad-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("huge.yaml");
    let mut text = String::from("regions: [cn-hangzhou]\nrules:\n");
    let mut i = 0;
    while text.len() < 8 << 20 {
        text.push_str(&format!("  - name: rule-{i}\n    filters: {{ tag: {{ env: \"{}\" }} }}\n", "v".repeat(100)));
        i += 1;
    }
    text.push_str("unexpected_key: 1\n");
    std::fs::write(&path, &text).expect("write");
    let started = std::time::Instant::now();
    let (code, stderr) =
        run_binary(&["validate".as_ref(), "--policy".as_ref(), path.as_os_str()], "http://127.0.0.1:9");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("unexpected_key"), "{}", &stderr[..stderr.len().min(500)]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&dir);
}

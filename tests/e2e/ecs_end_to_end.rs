//! The janitor end to end for ECS: the real binary against the emulator over loopback HTTP.

use crate::support::*;
use serde_json::{json, Value};

const POLICY: &str = r#"
regions: [cn-hangzhou, cn-shanghai]
products: [ecs]
protect:
  tags: { "janitor:keep": "true" }
limits: { max_releases_per_run: 10, max_release_percent: 60 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0                  # these tests are about the release itself: no mark first
  - name: ttl-elapsed
    filters: { ttl_tag: ttl }
    grace: 0
  - name: expired-subscription
    filters: { charge_type: subscription, expired_for: 1d }
    grace: 0
"#;

fn mixed() -> serde_json::Value {
    let mut protected = ecs("i-protected", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01")]);
    protected["DeletionProtection"] = json!(true);
    let mut sub_active = ecs("i-sub-active", "cn-shanghai", "Stopped", "PrePaid", &[("expire-at", "2026-01-01")]);
    sub_active["ExpiredTime"] = json!("2027-06-01T16:00Z");
    let mut sub_expired = ecs("i-sub-expired", "cn-shanghai", "Stopped", "PrePaid", &[]);
    sub_expired["ExpiredTime"] = json!("2026-11-01T16:00Z");
    inventory(vec![
        ecs("i-expired-tag", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]),
        ecs("i-future-tag", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2027-01-01")]),
        ecs("i-ttl", "cn-hangzhou", "Stopped", "PostPaid", &[("ttl", "7d")]),
        protected,
        ecs("i-keep", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01"), ("janitor:keep", "true")]),
        ecs("i-running", "cn-hangzhou", "Running", "PostPaid", &[("expire-at", "2026-01-01")]),
        ecs("i-bad-tag", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "soon-ish")]),
        ecs("i-untagged", "cn-hangzhou", "Stopped", "PostPaid", &[]),
        sub_active,
        sub_expired,
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_inventory_releases_exactly_the_eligible_instances() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(env.released_ids(), vec!["i-expired-tag", "i-sub-expired", "i-ttl"]);
    assert_eq!(run.ids("released"), vec!["i-expired-tag", "i-sub-expired", "i-ttl"]);
    assert_eq!(run.outcome("i-protected"), "protected");
    assert_eq!(run.outcome("i-keep"), "protected");
    assert_eq!(run.outcome("i-running"), "skipped");
    assert_eq!(run.outcome("i-bad-tag"), "invalid");
    assert_eq!(run.outcome("i-sub-active"), "skipped");
    assert_eq!(run.outcome("i-future-tag"), "kept");
    assert_eq!(run.outcome("i-untagged"), "kept");
    // Every decision carries its rule and facts.
    assert_eq!(run.entry("i-ttl")["rule"], "ttl-elapsed");
    assert_eq!(run.entry("i-expired-tag")["facts"]["tag:expire-at"], "2026-11-01");
    assert_eq!(run.entry("i-sub-expired")["facts"]["charge_type"], "subscription");
    // Still in the emulator: everything not eligible.
    let mut left = env.sim.instance_ids("ecs");
    left.sort();
    assert_eq!(
        left,
        vec!["i-bad-tag", "i-future-tag", "i-keep", "i-protected", "i-running", "i-sub-active", "i-untagged"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_real_release_is_preceded_by_a_passing_dry_run_of_the_same_batch() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let calls = env.sim.calls();
    let deletes: Vec<_> = calls.iter().filter(|c| c.action == "DeleteInstances").collect();
    assert!(!deletes.is_empty());
    for (i, real) in deletes.iter().enumerate().filter(|(_, c)| !c.dry_run) {
        let ids: Vec<_> = real.params.iter().filter(|(k, _)| k.starts_with("InstanceId.")).map(|(_, v)| v).collect();
        let dry = deletes[..i].iter().find(|d| {
            d.dry_run
                && d.code.as_deref() == Some("DryRunOperation")
                && ids.iter().all(|id| d.params.values().any(|v| &v == id))
        });
        assert!(dry.is_some(), "real call without a prior dry run: {real:?}");
        assert!(real.params.contains_key("ClientToken"));
    }
    // Subscriptions are released with TerminateSubscription, pay-as-you-go ones without; nothing is forced.
    for real in deletes.iter().filter(|c| !c.dry_run) {
        let is_sub = real.params.values().any(|v| v == "i-sub-expired");
        assert_eq!(real.params.get("TerminateSubscription").map(String::as_str), is_sub.then_some("true"));
        assert_eq!(real.params.get("Force"), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_apply_only_dry_runs_are_made() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &[]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.summary["mode"], "dry-run");
    assert_eq!(run.ids("would_release"), vec!["i-expired-tag", "i-sub-expired", "i-ttl"]);
    assert!(env.sim.release_calls().is_empty());
    assert!(env.calls_of("DeleteInstances") > 0, "dry runs prove permissions");
    assert_eq!(env.sim.instance_ids("ecs").len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_breach_releases_nothing() {
    let env = Env::start(&mixed()).await;
    let strict = POLICY.replace("max_releases_per_run: 10", "max_releases_per_run: 2");
    let run = env.run(&strict, &["--apply"]).await;
    assert_eq!(run.code, 3, "degraded run exits 3; stderr: {}", run.stderr);
    assert_eq!(env.calls_of("DeleteInstances"), 0);
    assert!(run.summary["limit_breach"]["reason"].as_str().unwrap().contains("max_releases_per_run"), "{}", run.stdout);
    assert_eq!(run.outcome("i-ttl"), "held");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_percentage_breach_releases_nothing() {
    let env = Env::start(&mixed()).await;
    let strict = POLICY.replace("max_release_percent: 60", "max_release_percent: 20");
    let run = env.run(&strict, &["--apply"]).await;
    assert_eq!(run.code, 3);
    assert_eq!(env.calls_of("DeleteInstances"), 0);
    assert!(run.summary["limit_breach"]["reason"].as_str().unwrap().contains("max_release_percent"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_whose_listing_fails_releases_nothing_there() {
    let mut inv = mixed();
    inv["faults"] =
        json!([{"action": "DescribeInstances", "region": "cn-shanghai", "code": "InternalError", "status": 500}]);
    let env = Env::start(&inv).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);
    assert_eq!(env.released_ids(), vec!["i-expired-tag", "i-ttl"]);
    let skipped = &run.summary["skipped_scopes"][0];
    assert_eq!(skipped["region"], "cn-shanghai");
    assert_eq!(skipped["code"], "InternalError");
    assert!(env.sim.instance_ids("ecs").contains(&"i-sub-expired".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_fails_cleanly_and_releases_nothing() {
    let env = Env::start(&mixed()).await;
    let run = env.run_with_env(POLICY, &["--apply"], &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret")]).await;
    assert_eq!(run.code, 1, "refused when the run asks STS who it is, before any listing");
    assert_eq!(env.calls_of("DeleteInstances"), 0);
    assert_eq!(env.calls_of("DescribeInstances"), 0);
    assert!(run.stderr.contains("SignatureDoesNotMatch"), "{}", run.stderr);
    assert!(!run.stdout.contains("not-the-secret") && !run.stderr.contains("not-the-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_credential_is_a_clear_startup_error() {
    let env = Env::start(&mixed()).await;
    let run = env.run_with_env(POLICY, &["--apply"], &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), "{}", run.stderr);
    assert!(env.sim.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_policy_names_the_field_and_calls_nothing() {
    let env = Env::start(&mixed()).await;
    let typo = POLICY.replace("expire_at_tag: expire-at", "expire_at_tga: expire-at");
    let run = env.run(&typo, &["--apply"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("expire_at_tga") && run.stderr.contains("policy.yaml"), "{}", run.stderr);
    assert!(env.sim.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_appear_in_any_output() {
    let token = "STS-token-CAISxq9F8yPzv3Rk";
    let mut inv = mixed();
    inv["credentials"] =
        json!([{"access_key_id": "STS.test-key", "access_key_secret": SECRET, "security_token": token}]);
    let env = Env::start(&inv).await;
    let run = env
        .run_with_env(
            POLICY,
            &["--apply"],
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.test-key"),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
                ("ALIBABA_CLOUD_SECURITY_TOKEN", token),
            ],
        )
        .await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(env.released_ids().len(), 3, "the STS token was accepted");
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains(SECRET), "secret leaked");
        assert!(!out.contains(token), "token leaked");
        assert!(!out.contains("Signature="), "signed URL leaked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_apply_run_has_nothing_left_to_release() {
    let env = Env::start(&mixed()).await;
    assert_eq!(env.run(POLICY, &["--apply"]).await.code, 0);
    let before = env.sim.release_calls().len();
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0);
    assert_eq!(env.sim.release_calls().len(), before);
    assert!(run.ids("released").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_failing_instance_does_not_block_its_batch() {
    // `Stopping` passes the policy (not running) but the service refuses it: the batch is split around it.
    let mut inv = mixed();
    inv["ecs"].as_array_mut().unwrap().push(ecs(
        "i-stopping",
        "cn-hangzhou",
        "Stopping",
        "PostPaid",
        &[("expire-at", "2026-01-01")],
    ));
    let env = Env::start(&inv).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 3, "a failure makes the run degraded; stderr: {}", run.stderr);
    assert_eq!(env.released_ids(), vec!["i-expired-tag", "i-sub-expired", "i-ttl"]);
    assert_eq!(run.outcome("i-stopping"), "failed");
    assert_eq!(run.entry("i-stopping")["code"], "IncorrectInstanceStatus");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_event_cannot_turn_apply_on_or_widen_the_scope() {
    let env = Env::start(&mixed()).await;
    let dry = env.write("dry.json", r#"{"dry_run": false}"#);
    let run = env.run(POLICY, &["--event", dry.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.summary["mode"], "dry-run");
    assert!(env.sim.release_calls().is_empty());

    let forced = env.write("forced.json", r#"{"dry_run": true}"#);
    let run = env.run(POLICY, &["--apply", "--event", forced.to_str().unwrap()]).await;
    assert_eq!(run.summary["mode"], "dry-run");
    assert!(env.sim.release_calls().is_empty());

    let wide = env.write("wide.json", r#"{"regions": ["eu-central-1"]}"#);
    let calls = env.sim.calls().len();
    let run = env.run(POLICY, &["--apply", "--event", wide.to_str().unwrap()]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("eu-central-1"), "{}", run.stderr);
    assert_eq!(env.sim.calls().len(), calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_event_narrows_regions() {
    let env = Env::start(&mixed()).await;
    let narrow = env.write("narrow.json", r#"{"regions": ["cn-shanghai"]}"#);
    let run = env.run(POLICY, &["--apply", "--event", narrow.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(env.released_ids(), vec!["i-sub-expired"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_json_decision_line_per_instance_on_stderr() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &[]).await;
    let decisions: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 10, "{}", run.stderr);
    let ttl = decisions.iter().find(|d| d["fields"]["id"] == "i-ttl").unwrap();
    assert_eq!(ttl["fields"]["decision"], "would_release");
    assert_eq!(ttl["fields"]["rule"], "ttl-elapsed");
    assert!(ttl["fields"]["request_ids"].as_str().is_some_and(|r| !r.is_empty()), "dry-run request id is logged");
}

/// Issue 13 item 7: an expired subscription carries the `financial` lock, so vetoing every lock meant no expired
/// subscription was ever released on a real account. `financial` is accepted there only; `security` and a
/// pay-as-you-go `financial` (an overdue payment) are never sent, and the emulator does not refuse them: the
/// janitor's veto is the only guard.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_subscription_is_released_despite_its_financial_lock_and_other_locks_veto() {
    let mut sub = ecs("i-sub-expired", "cn-hangzhou", "Stopped", "PrePaid", &[]);
    sub["ExpiredTime"] = json!("2026-11-01T16:00Z");
    let lock = |mut v: Value, reason: &str| {
        v["OperationLocks"] = json!({"LockReason": [{"LockReason": reason}]});
        v
    };
    let env = Env::start(&inventory(vec![
        sub,
        lock(ecs("i-security", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01")]), "security"),
        lock(ecs("i-overdue", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01")]), "financial"),
        ecs("i-plain", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01")]),
    ]))
    .await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.entry("i-sub-expired")["facts"]["locks"], "financial", "{}", run.stdout);
    assert_eq!(env.released_ids(), ["i-plain", "i-sub-expired"]);
    for id in ["i-security", "i-overdue"] {
        assert_eq!(run.outcome(id), "protected", "{}", run.stdout);
        let sent = env.sim.calls().iter().any(|c| c.action == "DeleteInstances" && c.params.values().any(|v| v == id));
        assert!(!sent, "{id} was sent for release");
    }
}

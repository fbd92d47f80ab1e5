//! Redis/Tair end to end: the real binary against the emulator. No native dry run, so every release is
//! preceded by a fresh `DescribeInstanceAttribute` of the instance (the pre-flight).

use crate::support::*;
use serde_json::{json, Value};

const V: &str = "2015-01-01";

const POLICY: &str = r#"
regions: [cn-hangzhou, cn-shenzhen]
products: [r-kvstore]
protect:
  tags: { "janitor:keep": "true" }
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
  - name: expired-subscription
    filters: { charge_type: subscription, expired_for: 1d }
    grace: 0
"#;

/// A Redis instance as DescribeInstanceAttribute returns it.
fn redis(id: &str, region: &str, charge: &str, tags: &[(&str, &str)], extra: Value) -> Value {
    let mut v = json!({
        "InstanceId": id, "InstanceName": format!("name-{id}"), "RegionId": region, "InstanceStatus": "Normal",
        "ChargeType": charge, "CreateTime": "2026-10-01T00:00:00Z", "InstanceType": "Redis", "EditionType": "Community",
        "InstanceReleaseProtection": false,
        "Tags": {"Tag": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()},
    });
    if let (Value::Object(v), Value::Object(x)) = (&mut v, extra) {
        v.extend(x);
    }
    v
}

const OLD: &[(&str, &str)] = &[("expire-at", "2026-11-01")];

fn mixed() -> Value {
    inventory_with(json!({"r-kvstore": [
        redis("r-eligible", "cn-hangzhou", "PostPaid", OLD, json!({})),
        redis("r-regional", "cn-shenzhen", "PostPaid", OLD, json!({})),
        redis("r-child", "cn-hangzhou", "PostPaid", OLD, json!({"GlobalInstanceId": "gr-parent"})),
        redis("r-protected", "cn-hangzhou", "PostPaid", OLD, json!({"InstanceReleaseProtection": true})),
        redis("r-keep", "cn-hangzhou", "PostPaid", &[("expire-at", "2026-11-01"), ("janitor:keep", "true")], json!({})),
        redis("r-changing", "cn-hangzhou", "PostPaid", OLD, json!({"InstanceStatus": "Changing"})),
        redis("r-sub-active", "cn-hangzhou", "PrePaid", OLD, json!({"EndTime": "2027-06-01T00:00:00Z"})),
        redis("r-sub-expired", "cn-hangzhou", "PrePaid", &[], json!({"EndTime": "2026-11-01T00:00:00Z"})),
        redis("r-future", "cn-hangzhou", "PostPaid", &[("expire-at", "2027-01-01")], json!({})),
    ]}))
}

fn released(env: &Env) -> Vec<String> {
    env.succeeded(V, "DeleteInstance", "InstanceId")
}

#[tokio::test(flavor = "multi_thread")]
async fn eligible_instances_are_released_and_the_rest_untouched() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(released(&env), ["r-child", "r-eligible", "r-regional"]);
    assert_eq!(run.ids("released"), ["r-child", "r-eligible", "r-regional"]);
    assert_eq!(run.outcome("r-protected"), "protected");
    assert_eq!(run.entry("r-protected")["facts"]["deletion_protection"], "true");
    assert_eq!(run.outcome("r-keep"), "protected");
    assert_eq!(run.outcome("r-changing"), "skipped");
    assert!(entry_text(&run, "r-changing").contains("Normal"), "{}", run.stdout);
    assert_eq!(run.outcome("r-sub-active"), "skipped");
    assert!(entry_text(&run, "r-sub-active").contains("subscription not expired"));
    // A subscription cannot be released through the API: reported, never called.
    assert_eq!(run.outcome("r-sub-expired"), "manual");
    assert_eq!(run.outcome("r-future"), "kept");
    let mut left = env.sim.instance_ids("r-kvstore");
    left.sort();
    assert_eq!(left, ["r-changing", "r-future", "r-keep", "r-protected", "r-sub-active", "r-sub-expired"]);
    // The child of a distributed instance is released through its GlobalInstanceId.
    let child = env
        .calls_to(V, "DeleteInstance")
        .into_iter()
        .find(|c| c.params.get("InstanceId").map(String::as_str) == Some("r-child"))
        .unwrap();
    assert_eq!(child.params.get("GlobalInstanceId").map(String::as_str), Some("gr-parent"));
    // Only eligible instances ever reach DeleteInstance.
    assert_eq!(env.calls_to(V, "DeleteInstance").len(), 3);
}

/// The entry as JSON text: verdict, reason, message and facts, for `contains` checks.
fn entry_text(run: &Run, id: &str) -> String {
    run.entry(id).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_release_is_preceded_by_a_fresh_attribute_read() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let calls = env.sim.calls();
    for (i, del) in calls.iter().enumerate().filter(|(_, c)| c.version == V && c.action == "DeleteInstance") {
        let id = &del.params["InstanceId"];
        let reads = calls[..i]
            .iter()
            .filter(|c| c.action == "DescribeInstanceAttribute" && c.params.get("InstanceId") == Some(id))
            .count();
        assert_eq!(reads, 2, "{id}: one read while listing, one pre-flight");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_apply_nothing_is_released() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &[]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.ids("would_release"), ["r-child", "r-eligible", "r-regional"]);
    assert!(env.sim.release_calls().is_empty());
    assert_eq!(env.sim.instance_ids("r-kvstore").len(), 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preflight_catches_protection_turned_on_after_listing() {
    // Listing reads it twice (DescribeInstances, DescribeInstanceAttribute); the third read is the pre-flight.
    let flip = redis(
        "r-flip",
        "cn-hangzhou",
        "PostPaid",
        OLD,
        json!({"_sim": {"mutate_after_reads": {"after": 2, "set": {"InstanceReleaseProtection": true}}}}),
    );
    let status = redis(
        "r-busy",
        "cn-hangzhou",
        "PostPaid",
        OLD,
        json!({"_sim": {"mutate_after_reads": {"after": 2, "set": {"InstanceStatus": "Changing"}}}}),
    );
    let env = Env::start(&inventory_with(
        json!({"r-kvstore": [flip, status, redis("r-eligible", "cn-hangzhou", "PostPaid", OLD, json!({}))]}),
    ))
    .await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(released(&env), ["r-eligible"]);
    for id in ["r-flip", "r-busy"] {
        assert_eq!(run.outcome(id), "skipped", "{}", run.stdout);
        assert!(entry_text(&run, id).contains("pre-flight"), "{}", run.stdout);
    }
    assert!(entry_text(&run, "r-flip").contains("protected by native deletion protection"));
    assert!(env.calls_to(V, "DeleteInstance").iter().all(|c| c.params["InstanceId"] == "r-eligible"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protection_refusal_at_release_is_a_veto_not_a_failure() {
    let mut inv = mixed();
    inv["faults"] = json!([{"version": V, "action": "DeleteInstance", "instance_id": "r-eligible", "code": "InstanceReleaseProtection", "status": 403}]);
    let env = Env::start(&inv).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "a veto does not degrade the run; stdout: {}", run.stdout);
    assert_eq!(run.outcome("r-eligible"), "protected");
    assert_eq!(run.entry("r-eligible")["code"], "InstanceReleaseProtection");
    assert!(env.sim.instance_ids("r-kvstore").contains(&"r-eligible".to_string()));
    assert_eq!(released(&env), ["r-child", "r-regional"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_shaped_answer_releases_nothing_in_that_scope() {
    let mut inv = mixed();
    inv["faults"] = json!([{"version": V, "action": "DescribeInstanceAttribute", "kind": "malformed"}]);
    let env = Env::start(&inv).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 3, "stdout: {}", run.stdout);
    assert!(env.calls_to(V, "DeleteInstance").is_empty());
    let skipped = run.summary["skipped_scopes"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{}", run.stdout);
    assert!(skipped.iter().all(|s| s["product"] == "r-kvstore" && s["code"] == "MalformedResponse"));
}

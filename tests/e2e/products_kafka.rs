//! Kafka end to end: the real binary against the emulator. Business errors arrive as HTTP 200 with
//! `Success: false`; a release is two calls (`ReleaseInstance`, then `DeleteInstance` once released).

use crate::support::*;
use serde_json::{json, Value};

const V: &str = "2019-09-16";

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [alikafka]
protect:
  tags: { "janitor:keep": "true" }
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: purge-now
    filters: { tag: { purge: now } }
    grace: 0
    force: true
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
  - name: expired-subscription
    filters: { charge_type: subscription, expired_for: 1d }
    grace: 0
"#;

/// Epoch milliseconds (Kafka's time format): 2026-10-01, 2027-06-01 and 2026-11-01, midnight UTC.
const CREATED: i64 = 1_790_812_800_000;
const NEXT_YEAR: i64 = 1_811_808_000_000;
const LAST_MONTH: i64 = 1_793_491_200_000;

/// A Kafka instance as GetInstanceList returns it.
fn kafka(id: &str, paid_type: i64, tags: &[(&str, &str)], extra: Value) -> Value {
    let mut v = json!({
        "InstanceId": id, "Name": format!("name-{id}"), "RegionId": "cn-hangzhou", "ServiceStatus": 5,
        "ViewInstanceStatusCode": 2, "PaidType": paid_type, "CreateTime": CREATED, "ExpiredTime": 4_102_444_800_000i64,
        "SpecType": "normal", "Series": "v3",
        "Tags": {"TagVO": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()},
    });
    if let (Value::Object(v), Value::Object(x)) = (&mut v, extra) {
        v.extend(x);
    }
    v
}

const OLD: &[(&str, &str)] = &[("expire-at", "2026-11-01")];

fn mixed() -> Value {
    inventory_with(json!({"alikafka": [
        kafka("k-eligible", 1, OLD, json!({})),
        kafka("k-serverless", 3, OLD, json!({"ViewInstanceStatusCode": 3})),
        kafka("k-force", 1, &[("purge", "now")], json!({})),
        kafka("k-keep", 1, &[("expire-at", "2026-11-01"), ("janitor:keep", "true")], json!({})),
        kafka("k-deploying", 1, OLD, json!({"ViewInstanceStatusCode": 1})),
        kafka("k-sub-active", 0, OLD, json!({"ExpiredTime": NEXT_YEAR})),
        kafka("k-sub-expired", 0, &[], json!({"ExpiredTime": LAST_MONTH})),
        kafka("k-future", 1, &[("expire-at", "2027-01-01")], json!({})),
    ]}))
}

fn released(env: &Env) -> Vec<String> {
    env.succeeded(V, "ReleaseInstance", "InstanceId")
}

#[tokio::test(flavor = "multi_thread")]
async fn eligible_instances_are_released_then_their_records_removed() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(released(&env), ["k-eligible", "k-force", "k-serverless"]);
    assert_eq!(env.succeeded(V, "DeleteInstance", "InstanceId"), ["k-eligible", "k-force", "k-serverless"]);
    assert_eq!(run.ids("released"), ["k-eligible", "k-force", "k-serverless"]);
    // ForceDeleteInstance only where the rule says force.
    for call in env.calls_to(V, "ReleaseInstance") {
        let forced = call.params.get("ForceDeleteInstance").map(String::as_str);
        assert_eq!(forced, (call.params["InstanceId"] == "k-force").then_some("true"), "{call:?}");
    }
    assert_eq!(run.outcome("k-keep"), "protected");
    assert_eq!(run.outcome("k-deploying"), "skipped");
    assert!(run.entry("k-deploying").to_string().contains("deploying (1)"), "{}", run.stdout);
    assert_eq!(run.outcome("k-sub-active"), "skipped");
    assert!(run.entry("k-sub-active").to_string().contains("subscription not expired"));
    assert_eq!(run.outcome("k-sub-expired"), "manual");
    assert_eq!(run.outcome("k-future"), "kept");
    assert_eq!(run.entry("k-eligible")["status"], json!(null), "status lives in the facts");
    assert_eq!(run.entry("k-eligible")["facts"]["status"], "running (2)");
    let mut left = env.sim.instance_ids("alikafka");
    left.sort();
    assert_eq!(left, ["k-deploying", "k-future", "k-keep", "k-sub-active", "k-sub-expired"]);
    // Two request ids: the release and the record removal.
    assert_eq!(run.entry("k-eligible")["request_ids"].as_array().map(Vec::len), Some(2), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_apply_nothing_is_released() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &[]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.ids("would_release"), ["k-eligible", "k-force", "k-serverless"]);
    assert!(env.sim.release_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_success_false_answer_is_an_error_not_a_release() {
    let failing = kafka(
        "k-fail",
        1,
        OLD,
        json!({"_sim": {"release_error": {"Code": "ONS_SYSTEM_ERROR", "Message": "system error"}}}),
    );
    let env = Env::start(&inventory_with(json!({"alikafka": [failing, kafka("k-eligible", 1, OLD, json!({}))]}))).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 3, "a failure degrades the run; stdout: {}", run.stdout);
    assert_eq!(run.outcome("k-fail"), "failed");
    assert_eq!(run.entry("k-fail")["code"], "ONS_SYSTEM_ERROR");
    let call = env.calls_to(V, "ReleaseInstance").into_iter().find(|c| c.params["InstanceId"] == "k-fail").unwrap();
    assert_eq!(
        (call.http_status, call.code.as_deref()),
        (200, Some("ONS_SYSTEM_ERROR")),
        "HTTP 200 with Success: false"
    );
    assert_eq!(
        env.calls_to(V, "ReleaseInstance").iter().filter(|c| c.params["InstanceId"] == "k-fail").count(),
        1,
        "not retried"
    );
    assert!(env.calls_to(V, "DeleteInstance").iter().all(|c| c.params["InstanceId"] != "k-fail"));
    assert!(env.sim.instance_ids("alikafka").contains(&"k-fail".to_string()));
    assert_eq!(released(&env), ["k-eligible"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preflight_catches_an_instance_that_started_upgrading() {
    // The listing is the first read; the pre-flight (second read) sees it upgrading.
    let flip = kafka(
        "k-flip",
        1,
        OLD,
        json!({"_sim": {"mutate_after_reads": {"after": 1, "set": {"ViewInstanceStatusCode": 7}}}}),
    );
    let keep = kafka(
        "k-tagged",
        1,
        OLD,
        json!({"_sim": {"mutate_after_reads": {"after": 1, "set": {"Tags": {"TagVO": [{"Key": "janitor:keep", "Value": "true"}]}}}}}),
    );
    let env =
        Env::start(&inventory_with(json!({"alikafka": [flip, keep, kafka("k-eligible", 1, OLD, json!({}))]}))).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}", run.stdout);
    assert_eq!(released(&env), ["k-eligible"]);
    for id in ["k-flip", "k-tagged"] {
        assert_eq!(run.outcome(id), "skipped", "{}", run.stdout);
        assert!(run.entry(id).to_string().contains("pre-flight"), "{}", run.stdout);
    }
    assert!(run.entry("k-flip").to_string().contains("upgrading (7)"));
    assert!(env.calls_to(V, "ReleaseInstance").iter().all(|c| c.params["InstanceId"] == "k-eligible"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_release_is_reported_released_with_the_record_removal_pending() {
    let slow = kafka("k-slow", 1, OLD, json!({"_sim": {"released_after_reads": 10}}));
    let env = Env::start(&inventory_with(json!({"alikafka": [slow]}))).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "pending removal is not a failure; stdout: {}", run.stdout);
    assert_eq!(run.outcome("k-slow"), "released");
    assert!(run.entry("k-slow")["message"].as_str().unwrap_or("").contains("record removal pending"), "{}", run.stdout);
    assert!(env.calls_to(V, "DeleteInstance").is_empty());
    // Re-read a bounded number of times, then given up on.
    let reads = env.calls_to(V, "GetInstanceList").len();
    assert!(reads <= 2 + 3, "listing + pre-flight + at most 3 polls, got {reads}");
    assert_eq!(env.sim.instance_ids("alikafka"), ["k-slow"]);
}

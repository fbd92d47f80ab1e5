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

/// Status reads 50 ms apart, so the bounded wait of a two-step release takes a test a third of a second.
const FAST_POLL: &[(&str, &str)] = &[("JANITOR_RELEASE_POLL_MS", "50"), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)];

#[tokio::test(flavor = "multi_thread")]
async fn the_record_is_removed_only_once_the_instance_reads_service_status_15() {
    // Issue 13, item 1: the Terraform provider waits for ServiceStatus 15 after ReleaseInstance, then sends
    // DeleteInstance. The emulator refuses DeleteInstance before 15, which it reaches 150 ms after the release.
    let slow = kafka("k-slow", 1, OLD, json!({"_sim": {"released_after_ms": 150}}));
    let env = Env::start(&inventory_with(json!({"alikafka": [slow]}))).await;
    let run = env.run_with_env(POLICY, &["--apply"], FAST_POLL).await;
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(run.outcome("k-slow"), "released");
    assert_eq!(env.succeeded(V, "DeleteInstance", "InstanceId"), ["k-slow"]);
    assert!(env.calls_to(V, "DeleteInstance").iter().all(|c| c.code.is_none()), "never sent before 15");
    assert!(env.sim.instance_ids("alikafka").is_empty());
    // The release record is written before the release, on the instance alone.
    let tag = env.calls_to(V, "TagResources");
    assert_eq!(tag.len(), 1, "{tag:?}");
    assert_eq!(tag[0].params["Tag.1.Key"], "janitor:released");
    assert_eq!(tag[0].params["ResourceId.1"], "k-slow");
    let order: Vec<String> = env.sim.calls().into_iter().map(|c| c.action).collect();
    let at = |a: &str| order.iter().position(|x| x == a);
    assert!(at("TagResources") < at("ReleaseInstance"), "record first: {order:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_still_under_way_is_left_for_a_later_run_which_finishes_it() {
    let slow = kafka("k-slow", 1, OLD, json!({"_sim": {"released_after_ms": 1500}}));
    let env = Env::start(&inventory_with(json!({"alikafka": [slow]}))).await;
    let run = env.run_with_env(POLICY, &["--apply"], FAST_POLL).await;
    assert_eq!(run.code, 0, "pending removal is not a failure; stdout: {}", run.stdout);
    assert_eq!(run.outcome("k-slow"), "released");
    let message = run.entry("k-slow")["message"].as_str().unwrap_or("").to_string();
    assert!(message.contains("record removal pending") && message.contains("later run"), "{message}");
    assert!(env.calls_to(V, "DeleteInstance").is_empty());
    // Re-read a bounded number of times (six), then given up on.
    let reads = env.calls_to(V, "GetInstanceList").len();
    assert!(reads <= 2 + 6, "listing + pre-flight + at most 6 polls, got {reads}");
    assert_eq!(env.sim.instance_ids("alikafka"), ["k-slow"]);

    // Still releasing: the next run neither releases it again nor deletes it.
    let again = env.run_with_env(POLICY, &["--apply"], FAST_POLL).await;
    assert_eq!(again.outcome("k-slow"), "skipped", "{}", again.stdout);
    assert_eq!(env.calls_to(V, "ReleaseInstance").len(), 1);
    assert!(env.calls_to(V, "DeleteInstance").is_empty());

    // Released by now (ServiceStatus 15): a dry run reports what it would finish, and sends nothing.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let dry = env.run_with_env(POLICY, &[], FAST_POLL).await;
    assert_eq!(dry.outcome("k-slow"), "would_finish", "{}", dry.stdout);
    assert_eq!(dry.summary["finished"], json!(["alikafka:cn-hangzhou/k-slow"]));
    assert!(env.calls_to(V, "DeleteInstance").is_empty());
    // An apply run finishes it, and says so.
    let last = env.run_with_env(POLICY, &["--apply"], FAST_POLL).await;
    assert_eq!(last.code, 0, "{}", last.stdout);
    assert_eq!(last.outcome("k-slow"), "finished", "{}", last.stdout);
    assert!(last.entry("k-slow")["message"].as_str().unwrap_or("").contains("released by the janitor at"));
    assert_eq!(env.succeeded(V, "DeleteInstance", "InstanceId"), ["k-slow"]);
    assert_eq!(env.calls_to(V, "ReleaseInstance").len(), 1, "released once");
    assert!(env.sim.instance_ids("alikafka").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_janitors_own_releases_are_finished() {
    // Released-but-not-deleted records (ServiceStatus 15): one the janitor released, one a person released in
    // the console (no record), and an expired subscription with a copied record (15 also means "expired").
    let released = |id: &str, paid: i64, tags: &[(&str, &str)]| {
        kafka(id, paid, tags, json!({"ServiceStatus": 15, "ViewInstanceStatusCode": 6, "ExpiredTime": LAST_MONTH}))
    };
    let record: &[(&str, &str)] = &[("expire-at", "2026-11-01"), ("janitor:released", "2026-11-30T03:00:00Z")];
    let env = Env::start(&inventory_with(json!({"alikafka": [
        released("k-ours", 1, record),
        released("k-console", 1, OLD),
        released("k-sub-expired", 0, record),
    ]})))
    .await;
    let run = env.run_with_env(POLICY, &["--apply"], FAST_POLL).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.outcome("k-ours"), "finished");
    assert_eq!(env.succeeded(V, "DeleteInstance", "InstanceId"), ["k-ours"]);
    assert_ne!(run.outcome("k-console"), "finished");
    assert_ne!(run.outcome("k-sub-expired"), "finished");
    assert!(env.calls_to(V, "ReleaseInstance").is_empty());
    assert_eq!(env.sim.instance_ids("alikafka"), ["k-console", "k-sub-expired"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_release_without_its_record() {
    // The record cannot be written (TagResources denied): ReleaseInstance is never sent.
    let mut inv = inventory_with(json!({"alikafka": [kafka("k-eligible", 1, OLD, json!({}))]}));
    inv["faults"] = json!([{"version": V, "action": "TagResources", "code": "Forbidden.RAM", "status": 403}]);
    let env = Env::start(&inv).await;
    let run = env.run_with_env(POLICY, &["--apply"], FAST_POLL).await;
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.outcome("k-eligible"), "failed");
    assert_eq!(run.entry("k-eligible")["code"], "Forbidden.RAM");
    assert!(env.calls_to(V, "ReleaseInstance").is_empty());
}

//! KMS end to end: the real binary against the emulator. Releasing destroys every key in the instance, so
//! `ForceDeleteWithoutBackup` is only ever sent when the rule says `force`.

use crate::support::*;
use serde_json::{json, Value};

const V: &str = "2016-01-20";

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [kms]
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: scratch
    filters: { name: "scratch-*" }
    grace: 0
    force: true
  - name: temporary
    filters: { name: "tmp-*", created_older_than: 7d }
    grace: 0
  - name: expired-subscription
    filters: { charge_type: subscription, expired_for: 1d }
    grace: 0
"#;

/// A KMS instance as GetKmsInstance returns it, plus the emulator's `RegionId`.
fn kms(id: &str, name: &str, charge: &str, extra: Value) -> Value {
    let mut v = json!({
        "InstanceId": id, "InstanceName": name, "RegionId": "cn-hangzhou", "Status": "Connected", "ChargeType": charge,
        "CreateTime": "2026-10-01T00:00:00Z", "StartDate": "2026-10-01T00:00:00Z", "EndDate": "", "DeletionProtection": false,
        "ProductType": "kms_ppi_public_cn", "Spec": 1000, "KeyNum": 10, "SecretNum": 2,
    });
    if let (Value::Object(v), Value::Object(x)) = (&mut v, extra) {
        v.extend(x);
    }
    v
}

fn mixed() -> Value {
    inventory_with(json!({"kms": [
        kms("kst-eligible", "tmp-a", "POSTPAY", json!({})),
        kms("kst-protected", "tmp-b", "POSTPAY", json!({"DeletionProtection": true})),
        kms("kst-protected-text", "tmp-c", "POSTPAY", json!({"DeletionProtection": "Enabled"})),
        kms("kst-sub-active", "tmp-d", "PREPAY", json!({"EndDate": "2027-06-01T00:00:00Z", "ProductType": "kms_ddi_public_cn"})),
        kms("kst-sub-expired", "old", "PREPAY", json!({"EndDate": "2026-11-01T00:00:00Z", "ProductType": "kms_ddi_public_cn"})),
        kms("kst-young", "tmp-e", "POSTPAY", json!({"CreateTime": "2026-11-24T00:00:00Z"})),
        kms("kst-beijing", "tmp-f", "POSTPAY", json!({"RegionId": "cn-beijing"})),
    ]}))
}

fn released(env: &Env) -> Vec<String> {
    env.succeeded(V, "ReleaseKmsInstance", "KmsInstanceId")
}

#[tokio::test(flavor = "multi_thread")]
async fn eligible_instances_are_released_and_the_rest_untouched() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(released(&env), ["kst-eligible"]);
    let call = &env.calls_to(V, "ReleaseKmsInstance")[0];
    assert_eq!(call.params.get("ForceDeleteWithoutBackup"), None, "never forced without the rule saying so");
    assert_eq!(run.outcome("kst-protected"), "protected");
    assert_eq!(run.outcome("kst-protected-text"), "protected");
    assert_eq!(run.outcome("kst-sub-active"), "skipped");
    assert!(run.entry("kst-sub-active").to_string().contains("subscription not expired"));
    assert_eq!(run.outcome("kst-sub-expired"), "manual");
    assert_eq!(run.outcome("kst-young"), "kept");
    assert_eq!(run.entry("kst-beijing"), Value::Null, "another region is not scanned");
    let mut left = env.sim.instance_ids("kms");
    left.sort();
    assert_eq!(
        left,
        ["kst-beijing", "kst-protected", "kst-protected-text", "kst-sub-active", "kst-sub-expired", "kst-young"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_backup_is_reported_as_back_up_first_and_not_retried() {
    let no_backup = kms("kst-nobackup", "tmp-g", "POSTPAY", json!({"_sim": {"backup": false}}));
    let forced = kms("kst-scratch", "scratch-1", "POSTPAY", json!({"_sim": {"backup": false}}));
    let env = Env::start(&inventory_with(json!({"kms": [no_backup, forced]}))).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 3, "stdout: {}", run.stdout);
    assert_eq!(run.outcome("kst-nobackup"), "failed");
    assert_eq!(run.entry("kst-nobackup")["code"], "Forbidden.NoBackup");
    let message = run.entry("kst-nobackup")["message"].as_str().unwrap_or("").to_string();
    assert!(message.contains("back up first (or set force on the rule)"), "{message}");
    assert_eq!(
        env.calls_to(V, "ReleaseKmsInstance").iter().filter(|c| c.params["KmsInstanceId"] == "kst-nobackup").count(),
        1
    );
    // The rule with force: true releases without a backup, and says so explicitly.
    assert_eq!(released(&env), ["kst-scratch"]);
    let call =
        env.calls_to(V, "ReleaseKmsInstance").into_iter().find(|c| c.params["KmsInstanceId"] == "kst-scratch").unwrap();
    assert_eq!(call.params.get("ForceDeleteWithoutBackup").map(String::as_str), Some("true"));
    assert_eq!(env.sim.instance_ids("kms"), ["kst-nobackup"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preflight_catches_protection_turned_on_after_listing() {
    // GetKmsInstance while listing is the first read; the pre-flight is the second.
    let flip = kms(
        "kst-flip",
        "tmp-h",
        "POSTPAY",
        json!({"_sim": {"mutate_after_reads": {"after": 1, "set": {"DeletionProtection": "Enabled"}}}}),
    );
    let env =
        Env::start(&inventory_with(json!({"kms": [flip, kms("kst-eligible", "tmp-a", "POSTPAY", json!({}))]}))).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}", run.stdout);
    assert_eq!(released(&env), ["kst-eligible"]);
    assert_eq!(run.outcome("kst-flip"), "skipped");
    assert!(run.entry("kst-flip").to_string().contains("pre-flight"), "{}", run.stdout);
    assert!(env.calls_to(V, "ReleaseKmsInstance").iter().all(|c| c.params["KmsInstanceId"] == "kst-eligible"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_apply_only_reads_are_made() {
    let env = Env::start(&mixed()).await;
    let run = env.run(POLICY, &[]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.ids("would_release"), ["kst-eligible"]);
    assert!(env.sim.release_calls().is_empty());
}

/// Issue 13 item 3: `GetKmsInstance` answers "not found" as HTTP 200 with an empty `InstanceId`; read as a wrong
/// answer, it failed the whole scope. An event naming an instance that is gone is now a no-op, reported.
#[tokio::test(flavor = "multi_thread")]
async fn an_instance_that_is_gone_is_not_a_failed_scope() {
    let env = Env::start(&inventory_with(json!({"kms": [kms("kst-here", "scratch-1", "POSTPAY", json!({}))]}))).await;
    // A Tag service call (ActionTrail, reference 4.3) naming both instances by ARN.
    let event = json!({
        "id": "evt-kms", "source": "acs.actiontrail", "specversion": "1.0", "type": "tag:ActionTrail:ApiCall",
        "time": "2026-11-25T11:58:05Z", "aliyunregionid": "cn-hangzhou",
        "data": {"eventName": "TagResources", "acsRegion": "cn-hangzhou", "requestParameters": {
            "ResourceARN.1": "acs:kms:cn-hangzhou:1234567890123456:instance/kst-gone",
            "ResourceARN.2": "acs:kms:cn-hangzhou:1234567890123456:instance/kst-here",
            "Tags": "{\"x\":\"1\"}",
        }},
    });
    let path = env.write("event.json", &event.to_string());
    let run = env.run(POLICY, &["--event", path.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.summary["skipped_scopes"], json!([]), "{}", run.stdout);
    assert!(run.summary["ignored"].to_string().contains("kms:cn-hangzhou/kst-gone (not found)"), "{}", run.stdout);
    assert_eq!(run.outcome("kst-here"), "would_release", "{}", run.stdout);
}

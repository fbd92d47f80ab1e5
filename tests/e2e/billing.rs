//! Billing discovery end to end (`bss:` in the policy): expired subscriptions from `QueryAvailableInstances`,
//! cross-checked with the product APIs, products without an adapter reported for release by hand, and
//! billing's `ReleaseInstance` only on a reseller account (`bss.vno: true`) with apply.

use crate::support::*;
use serde_json::{json, Value};

const BSS: &str = "2017-12-14";

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [ecs, r-kvstore]
bss: { discovery: true }
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
  - name: expired-subscription
    filters: { charge_type: subscription, expired_for: 1d }
    grace: 0
"#;

fn sub(id: &str, expired: &str) -> Value {
    let mut v = ecs(id, "cn-hangzhou", "Stopped", "PrePaid", &[]);
    v["ExpiredTime"] = json!(expired);
    v
}

fn tagged(mut v: Value, key: &str, value: &str) -> Value {
    v["Tags"] = json!({"Tag": [{"TagKey": key, "TagValue": value}]});
    v
}

fn bill(id: &str, product: &str, region: &str, end: &str, renew: &str) -> Value {
    json!({
        "InstanceID": id, "ProductCode": product, "ProductType": product, "Region": region, "SubscriptionType": "Subscription",
        "Status": "Expired", "SubStatus": "Normal", "RenewStatus": renew, "RenewalDuration": 1, "RenewalDurationUnit": "M",
        "CreateTime": "2025-11-01T16:00:00Z", "EndTime": end, "OwnerId": 1234567890, "SellerId": 26842,
    })
}

fn inventory(vno: bool) -> Value {
    inventory_with(json!({
        "ecs": [
            sub("i-sub-expired", "2026-11-01T16:00Z"),
            sub("i-sub-disagree", "2026-11-01T16:00Z"),
            sub("i-sub-unbilled", "2026-11-01T16:00Z"),
            sub("i-sub-autorenew", "2026-11-01T16:00Z"),
            tagged(sub("i-sub-active", "2027-06-01T16:00Z"), "expire-at", "2026-11-01"),
            ecs("i-payg-billed", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]),
            ecs("i-payg", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]),
        ],
        "r-kvstore": [{
            "InstanceId": "r-sub-expired", "RegionId": "cn-hangzhou", "InstanceStatus": "Normal", "ChargeType": "PrePaid",
            "EndTime": "2026-11-01T16:00:00Z", "InstanceReleaseProtection": false
        }],
        "bss": {"vno": vno, "instances": [
            bill("i-sub-expired", "ecs", "cn-hangzhou", "2026-11-01T16:00:00Z", "ManualRenewal"),
            bill("i-sub-disagree", "ecs", "cn-hangzhou", "2026-10-01T16:00:00Z", "ManualRenewal"),
            bill("i-sub-autorenew", "ecs", "cn-hangzhou", "2026-11-01T16:00:00Z", "AutoRenewal"),
            bill("i-payg-billed", "ecs", "cn-hangzhou", "2026-11-01T16:00:00Z", "ManualRenewal"),
            bill("i-ghost", "ecs", "cn-hangzhou", "2026-11-01T16:00:00Z", "ManualRenewal"),
            bill("r-sub-expired", "redisa", "cn-hangzhou", "2026-11-01T16:00:00Z", "ManualRenewal"),
            bill("rm-expired", "rds", "cn-hangzhou", "2026-11-01T16:00:00Z", "ManualRenewal"),
            bill("rm-beijing", "rds", "cn-beijing", "2026-11-01T16:00:00Z", "ManualRenewal"),
            bill("rm-future", "rds", "cn-hangzhou", "2027-01-01T16:00:00Z", "ManualRenewal"),
        ]},
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_cross_checks_and_reports_products_without_an_adapter() {
    let env = Env::start(&inventory(false)).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    // Released: the subscription both sides call expired, and a pay-as-you-go instance billing does not list.
    assert_eq!(env.released_ids(), ["i-payg", "i-sub-expired"]);
    assert_eq!(run.entry("i-sub-expired")["facts"]["billing_end_time"], "2026-11-01T16:00:00Z");
    // Disagreements are skipped, with both readings.
    let disagree = run.entry("i-sub-disagree");
    assert_eq!(disagree["outcome"], "skipped");
    let text = disagree.to_string();
    assert!(
        text.contains("billing says it expires at 2026-10-01T16:00:00Z")
            && text.contains("ecs says 2026-11-01T16:00:00Z"),
        "{text}"
    );
    assert_eq!(run.outcome("i-payg-billed"), "skipped");
    assert!(run.entry("i-payg-billed").to_string().contains("billing says subscription, ecs says pay-as-you-go"));
    assert_eq!(run.outcome("i-sub-unbilled"), "skipped");
    assert!(run.entry("i-sub-unbilled").to_string().contains("billing does not list it"));
    assert_eq!(run.outcome("i-sub-autorenew"), "skipped");
    assert!(run.entry("i-sub-autorenew").to_string().contains("auto-renewal"));
    // Not yet expired: billing does not list it, and a matching rule still cannot release it.
    assert_eq!(run.outcome("i-sub-active"), "skipped");
    assert!(run.entry("i-sub-active").to_string().contains("subscription not expired"));
    assert_eq!(run.entry("rm-future"), Value::Null);
    // Billing lists it, the product API does not return it.
    assert_eq!(run.outcome("i-ghost"), "skipped");
    assert!(run.entry("i-ghost").to_string().contains("does not return"));
    // An adapter product whose API cannot release subscriptions: billing agrees, so "by hand".
    assert_eq!(run.outcome("r-sub-expired"), "manual");
    // A product without an adapter: reported with id, product, region and end time; never released.
    let rds = run.entry("rm-expired");
    assert_eq!(rds["outcome"], "manual");
    assert_eq!((rds["product"].clone(), rds["region"].clone()), (json!("rds"), json!("cn-hangzhou")));
    let message = rds["message"].as_str().unwrap_or("");
    assert!(
        message.contains("release it by hand")
            && message.contains("rm-expired")
            && message.contains("2026-11-01T16:00:00Z"),
        "{message}"
    );
    assert_eq!(run.entry("rm-beijing"), Value::Null, "outside the policy's regions");
    assert!(env.calls_to(BSS, "ReleaseInstance").is_empty(), "billing's ReleaseInstance only with bss.vno");
    // Billing released nothing itself; it stops listing what ECS released, and keeps its other records.
    let billed = env.sim.instance_ids("bss");
    assert_eq!(billed.len(), 8, "{billed:?}");
    assert!(!billed.contains(&"i-sub-expired".to_string()) && billed.contains(&"i-ghost".to_string()));
    assert!(env.calls_to(BSS, "QueryAvailableInstances").iter().all(|c| c
        .params
        .get("SubscriptionType")
        .map(String::as_str)
        == Some("Subscription")));
}

#[tokio::test(flavor = "multi_thread")]
async fn billing_stops_listing_a_subscription_released_through_its_product() {
    let env = Env::start(&inventory(false)).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}", run.stdout);
    assert_eq!(run.outcome("i-sub-expired"), "released");
    let query = |env: &Env| env.calls_to(BSS, "QueryAvailableInstances").len();
    let before = query(&env);
    // The next run: billing no longer lists it, so it is not reported as "billing lists it, ECS does not".
    let again = env.run(POLICY, &["--apply"]).await;
    assert_eq!(again.code, 0, "stdout: {}", again.stdout);
    assert!(query(&env) > before, "billing was asked again");
    assert_eq!(again.entry("i-sub-expired"), Value::Null, "{}", again.stdout);
    assert_eq!(again.outcome("i-ghost"), "skipped", "a record ECS never had is still billing's word against ECS's");
    assert_eq!(env.released_ids(), ["i-payg", "i-sub-expired"], "nothing released twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reseller_account_releases_through_billing_only_with_apply() {
    let env = Env::start(&inventory(true)).await;
    let policy =
        POLICY.replace("bss: { discovery: true }", "bss: { discovery: true, vno: true, release_products: [rds] }");

    let dry = env.run(&policy, &[]).await;
    assert_eq!(dry.code, 0, "stdout: {}", dry.stdout);
    assert_eq!(dry.outcome("rm-expired"), "would_release");
    assert!(env.calls_to(BSS, "ReleaseInstance").is_empty(), "no DryRun in billing: a dry run makes no release call");

    let run = env.run(&policy, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}", run.stdout);
    assert_eq!(run.outcome("rm-expired"), "released");
    assert_eq!(env.succeeded(BSS, "ReleaseInstance", "InstanceIds"), ["rm-expired"]);
    let call = &env.calls_to(BSS, "ReleaseInstance")[0];
    assert_eq!(call.params.get("ProductCode").map(String::as_str), Some("rds"));
    assert_eq!(call.params.get("SubscriptionType").map(String::as_str), Some("Subscription"));
    assert!(!env.sim.instance_ids("bss").contains(&"rm-expired".to_string()));
    // Adapter products still go through their own APIs, never billing's.
    assert_eq!(run.outcome("r-sub-expired"), "manual");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vno_switch_needs_a_reseller_account_on_the_other_side_too() {
    // vno: true in the policy, but the account is not a reseller: billing answers Success: false.
    let env = Env::start(&inventory(false)).await;
    let policy =
        POLICY.replace("bss: { discovery: true }", "bss: { discovery: true, vno: true, release_products: [rds] }");
    let run = env.run(&policy, &["--apply"]).await;
    assert_eq!(run.code, 3, "stdout: {}", run.stdout);
    assert_eq!(run.outcome("rm-expired"), "failed");
    assert_eq!(run.entry("rm-expired")["code"], "NotApplicable");
    assert!(env.sim.instance_ids("bss").contains(&"rm-expired".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn when_billing_cannot_be_read_no_expired_subscription_is_released() {
    let mut inv = inventory(false);
    inv["faults"] =
        json!([{"version": BSS, "action": "QueryAvailableInstances", "code": "InternalError", "status": 500}]);
    let env = Env::start(&inv).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 3, "stdout: {}", run.stdout);
    assert_eq!(env.released_ids(), ["i-payg", "i-payg-billed"], "pay-as-you-go releases do not depend on billing");
    assert_eq!(run.outcome("i-sub-expired"), "skipped");
    assert!(run.entry("i-sub-expired").to_string().contains("billing cross-check unavailable"));
    let skipped = &run.summary["skipped_scopes"][0];
    assert_eq!((skipped["product"].clone(), skipped["code"].clone()), (json!("bss"), json!("InternalError")));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_discovery_billing_is_never_called() {
    let env = Env::start(&inventory(true)).await;
    let run = env.run(&POLICY.replace("bss: { discovery: true }\n", ""), &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}", run.stdout);
    assert!(env.sim.calls().iter().all(|c| c.version != BSS));
    assert_eq!(run.entry("rm-expired"), Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preflight_catches_a_subscription_renewed_after_discovery() {
    let mut inv = inventory(true);
    let mut renewed = bill("rm-renewed", "rds", "cn-hangzhou", "2026-11-01T16:00:00Z", "ManualRenewal");
    renewed["_sim"] =
        json!({"mutate_after_reads": {"after": 1, "set": {"EndTime": "2027-11-01T16:00:00Z", "Status": "Normal"}}});
    inv["bss"]["instances"].as_array_mut().unwrap().push(renewed);
    let env = Env::start(&inv).await;
    let policy =
        POLICY.replace("bss: { discovery: true }", "bss: { discovery: true, vno: true, release_products: [rds] }");
    let run = env.run(&policy, &["--apply"]).await;
    assert_eq!(run.code, 0, "stdout: {}", run.stdout);
    assert_eq!(run.outcome("rm-renewed"), "skipped");
    assert!(run.entry("rm-renewed").to_string().contains("pre-flight"), "{}", run.stdout);
    assert_eq!(env.succeeded(BSS, "ReleaseInstance", "InstanceIds"), ["rm-expired"]);
    assert!(env.sim.instance_ids("bss").contains(&"rm-renewed".to_string()));
}

/// Billing is read before any listing, so its pages are not a chain: after the first page, the pages its
/// `TotalCount` announces are read together, and checked in page order. 700 expired rows: three pages of 300.
#[tokio::test]
async fn billing_pages_after_the_first_are_read_together_and_all_rows_count() {
    let rows: Vec<Value> = (0..700)
        .map(|i| bill(&format!("rm-{i:04}"), "rds", "cn-hangzhou", "2026-11-01T16:00:00Z", "ManualRenewal"))
        .collect();
    let env = Env::start(&inventory_with(json!({"ecs": [], "bss": {"vno": false, "instances": rows}}))).await;
    let run = env.run(POLICY, &["--all-entries"]).await;
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(env.calls_of("QueryAvailableInstances"), 3);
    let manual = run.summary["entries"].as_array().unwrap().iter().filter(|e| e["outcome"] == "manual").count();
    assert_eq!(manual, 700, "every row of every page is reported for release by hand");
}

//! Issue 16 item 1: a release whose answer leaves open whether it acted (a 503, a reset) is reconciled by a
//! re-read, for every product whose release call has no idempotency token (Redis `DeleteInstance`, Kafka
//! `ReleaseInstance`, KMS `ReleaseKmsInstance`). Against the emulator:
//! - the release acted and its answer was lost (`lost_response`, 503 or a closed connection): `released`,
//!   "confirmed by re-read" in the facts, one release call only;
//! - the 503 came before the release acted: the re-read shows the instance unchanged, the release is sent again
//!   and succeeds; exactly one of the calls acted;
//! - the release acted but the re-read fails: `failed`, and the release is not sent a second time.

use crate::support::*;
use serde_json::{json, Value};

/// One product under test: its inventory section, policy, release action and the read the re-read uses.
struct Case {
    section: &'static str,
    version: &'static str,
    release: &'static str,
    reread: &'static str,
    id: &'static str,
    inventory: fn() -> Value,
}

const POLICY_TAIL: &str = r#"
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
  - name: by-name
    filters: { name: "tmp-*" }
    grace: 0
"#;

fn policy(section: &str) -> String {
    format!("regions: [cn-hangzhou]\nproducts: [{section}]\n{POLICY_TAIL}")
}

fn redis() -> Value {
    json!([{
        "InstanceId": "r-old", "InstanceName": "cache", "RegionId": "cn-hangzhou", "InstanceStatus": "Normal",
        "ChargeType": "PostPaid", "CreateTime": "2026-10-01T00:00:00Z", "InstanceType": "Redis",
        "InstanceReleaseProtection": false, "Tags": {"Tag": [{"Key": "expire-at", "Value": "2026-11-01"}]},
    }])
}

fn kafka() -> Value {
    json!([{
        "InstanceId": "k-old", "Name": "events", "RegionId": "cn-hangzhou", "ServiceStatus": 5,
        "ViewInstanceStatusCode": 2, "PaidType": 1, "CreateTime": 1_790_000_000_000i64,
        "ExpiredTime": 4_102_444_800_000i64, "SpecType": "normal",
        "Tags": {"TagVO": [{"Key": "expire-at", "Value": "2026-11-01"}]},
    }])
}

fn kms() -> Value {
    json!([{
        "InstanceId": "kst-old", "InstanceName": "tmp-a", "RegionId": "cn-hangzhou", "Status": "Connected",
        "ChargeType": "POSTPAY", "CreateTime": "2026-10-01T00:00:00Z", "StartDate": "2026-10-01T00:00:00Z",
        "EndDate": "", "DeletionProtection": false, "ProductType": "kms_ppi_public_cn", "Spec": 1000,
    }])
}

const CASES: [Case; 3] = [
    Case {
        section: "r-kvstore",
        version: "2015-01-01",
        release: "DeleteInstance",
        reread: "DescribeInstanceAttribute",
        id: "r-old",
        inventory: redis,
    },
    Case {
        section: "alikafka",
        version: "2019-09-16",
        release: "ReleaseInstance",
        reread: "GetInstanceList",
        id: "k-old",
        inventory: kafka,
    },
    Case {
        section: "kms",
        version: "2016-01-20",
        release: "ReleaseKmsInstance",
        reread: "GetKmsInstance",
        id: "kst-old",
        inventory: kms,
    },
];

struct Outcome {
    run: Run,
    /// Release calls of the case's action that reached the service.
    sent: usize,
    /// Of those, the ones the service carried out (its own answer was a success, whatever the client saw).
    acted: usize,
    left: Vec<String>,
}

async fn run(case: &Case, faults: Value) -> Outcome {
    let mut inv = inventory_with(json!({ case.section: (case.inventory)() }));
    inv["faults"] = faults;
    let env = Env::start(&inv).await;
    let knobs = [
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
        ("JANITOR_REQUEST_TIMEOUT_MS", "400"),
        ("JANITOR_RETRY_BUDGET_MS", "1500"),
        ("JANITOR_RETRY_BASE_MS", "10"),
        ("RUST_LOG", "warn"),
    ];
    let run = env.run_with_env(&policy(case.section), &["--apply"], &knobs).await;
    let calls = env.calls_to(case.version, case.release);
    let acted = env
        .sim
        .release_calls()
        .iter()
        .filter(|c| c.version == case.version && c.action == case.release && c.code.is_none())
        .count();
    Outcome { run, sent: calls.len(), acted, left: env.sim.instance_ids(case.section) }
}

fn context(case: &Case, o: &Outcome) -> String {
    format!("{} exit {}\nstdout {}\nstderr {}", case.section, o.run.code, o.run.stdout, o.run.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_that_acted_but_lost_its_answer_is_confirmed_by_a_re_read() {
    for case in &CASES {
        for lost in [json!({"kind": "lost_response", "status": 503}), json!({"kind": "lost_response"})] {
            let mut rule = lost.clone();
            rule["action"] = json!(case.release);
            rule["version"] = json!(case.version);
            rule["times"] = json!(1);
            let o = run(case, json!([rule])).await;
            let ctx = format!("{lost}: {}", context(case, &o));
            assert_eq!(o.run.code, 0, "{ctx}");
            assert_eq!(o.run.outcome(case.id), "released", "{ctx}");
            let facts = &o.run.entry(case.id)["facts"];
            assert!(facts["reconciled"].as_str().is_some_and(|r| r.contains("confirmed by re-read")), "{ctx}");
            // One call, and it acted: never a second release after an answer that may have acted.
            assert_eq!((o.sent, o.acted), (1, 1), "{ctx}");
            assert!(o.left.is_empty(), "{ctx}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_before_the_release_acted_is_retried_once_the_re_read_shows_it_unchanged() {
    for case in &CASES {
        let rule = json!({"action": case.release, "version": case.version, "status": 503,
                          "code": "ServiceUnavailable", "times": 1});
        let o = run(case, json!([rule])).await;
        let ctx = context(case, &o);
        assert_eq!(o.run.code, 0, "{ctx}");
        assert_eq!(o.run.outcome(case.id), "released", "{ctx}");
        assert_eq!((o.sent, o.acted), (2, 1), "{ctx}");
        assert!(o.left.is_empty(), "{ctx}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_that_may_have_acted_is_not_sent_again_when_the_re_read_fails() {
    for case in &CASES {
        // The listing (or its detail read) and the pre-flight pass; every read after the release fails.
        let faults = json!([
            {"action": case.release, "version": case.version, "kind": "lost_response", "status": 503, "times": 1},
            {"action": case.reread, "version": case.version, "after": 2, "status": 500, "code": "InternalError"},
        ]);
        let o = run(case, faults).await;
        let ctx = context(case, &o);
        assert_eq!(o.run.code, 3, "{ctx}");
        assert_eq!(o.run.outcome(case.id), "failed", "{ctx}");
        let message = o.run.entry(case.id)["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains("not sent again"), "{ctx}");
        assert_eq!(o.sent, 1, "{ctx}");
    }
}

/// Billing's own `ReleaseInstance` (reseller accounts, `bss.vno`) has no ClientToken either.
#[tokio::test(flavor = "multi_thread")]
async fn a_billing_release_that_lost_its_answer_is_confirmed_and_one_that_did_not_act_is_sent_again() {
    const BSS: &str = "2017-12-14";
    let policy = r#"
regions: [cn-hangzhou]
products: [ecs]
bss: { discovery: true, vno: true, release_products: [rds] }
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: expired-subscription
    filters: { charge_type: subscription, expired_for: 1d }
    grace: 0
"#;
    let record = json!({
        "InstanceID": "rm-expired", "ProductCode": "rds", "ProductType": "rds", "Region": "cn-hangzhou",
        "SubscriptionType": "Subscription", "Status": "Expired", "SubStatus": "Normal", "RenewStatus": "ManualRenewal",
        "CreateTime": "2025-11-01T16:00:00Z", "EndTime": "2026-11-01T16:00:00Z",
    });
    let lost = json!({"action": "ReleaseInstance", "version": BSS, "kind": "lost_response", "status": 503, "times": 1});
    let before =
        json!({"action": "ReleaseInstance", "version": BSS, "status": 503, "code": "ServiceUnavailable", "times": 1});
    for (rule, sent) in [(lost, 1), (before, 2)] {
        let kept = ecs("i-kept", "cn-hangzhou", "Stopped", "PostPaid", &[]);
        let mut inv = inventory_with(json!({"ecs": [kept], "bss": {"vno": true, "instances": [record.clone()]}}));
        inv["faults"] = json!([rule]);
        let env = Env::start(&inv).await;
        let knobs = [("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), ("JANITOR_RETRY_BASE_MS", "10")];
        let run = env.run_with_env(policy, &["--apply"], &knobs).await;
        let ctx = format!("{rule}: exit {}\n{}\n{}", run.code, run.stdout, run.stderr);
        assert_eq!(run.code, 0, "{ctx}");
        assert_eq!(run.outcome("rm-expired"), "released", "{ctx}");
        assert_eq!(env.calls_to(BSS, "ReleaseInstance").len(), sent, "{ctx}");
        let acted =
            env.sim.release_calls().iter().filter(|c| c.action == "ReleaseInstance" && c.code.is_none()).count();
        assert_eq!(acted, 1, "{ctx}");
        if sent == 1 {
            assert!(run.entry("rm-expired")["facts"]["reconciled"].as_str().is_some_and(|r| r.contains("re-read")));
        }
    }
}

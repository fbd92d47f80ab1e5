//! The adversary suite (issue 12): each case is a way a hostile user or a confused operator made the janitor
//! release what it must not, run end to end with the real binary against the emulator, and named after it.
//! Every case must fail on the code before its fix.

use crate::support::*;
use serde_json::{json, Value};

const EXPIRED: (&str, &str) = ("expire-at", "2026-01-01");

fn ecs_policy(protect: &str) -> String {
    format!(
        r#"
regions: [cn-hangzhou]
products: [ecs]
{protect}
limits: {{ max_releases_per_run: 100, max_release_percent: 100 }}
rules:
  - name: expired-by-tag
    filters: {{ expire_at_tag: expire-at }}
    grace: 0
"#
    )
}

fn stopped(id: &str, tags: &[(&str, &str)]) -> Value {
    ecs(id, "cn-hangzhou", "Stopped", "PostPaid", tags)
}

/// Item 1: `JANITOR:KEEP=no` beside `janitor:keep=true` once defeated the protect tag (the first key in byte
/// order was read, and only its value compared).
#[tokio::test]
async fn protect_tag_defeated_by_same_key_in_another_case() {
    let env = Env::start(&inventory(vec![
        stopped("i-two-keeps", &[EXPIRED, ("JANITOR:KEEP", "no"), ("janitor:keep", "true")]),
        stopped("i-plain", &[EXPIRED]),
    ]))
    .await;
    let run = env.run(&ecs_policy(r#"protect: { tags: { "janitor:keep": "true" } }"#), &["--apply"]).await;
    assert_eq!(run.outcome("i-two-keeps"), "protected", "{}", run.stdout);
    assert_eq!(run.entry("i-two-keeps")["facts"]["tag:janitor:keep"], "JANITOR:KEEP=no, janitor:keep=true");
    assert_eq!(env.released_ids(), ["i-plain"]);
}

/// Item 2: protect entries with stray whitespace protected nothing; an instance key with a trailing space did not
/// protect; an id in another case did not protect.
#[tokio::test]
async fn protect_entries_with_whitespace_or_another_case_protect_nothing() {
    let env = Env::start(&inventory(vec![stopped("i-plain", &[EXPIRED])])).await;
    for protect in [r#"protect: { tags: { "janitor:keep ": "true" } }"#, r#"protect: { instance_ids: ["i-plain "] }"#] {
        let run = env.run(&ecs_policy(protect), &["--apply"]).await;
        assert_eq!(run.code, 1, "{protect}: {}", run.stderr);
        assert!(run.stderr.contains("surrounding whitespace"), "{protect}: {}", run.stderr);
    }
    assert!(env.released_ids().is_empty());

    let env = Env::start(&inventory(vec![
        stopped("i-control", &[EXPIRED]),
        stopped("i-spacey-key", &[EXPIRED, ("janitor:keep ", "true")]),
        stopped("i-plain", &[EXPIRED]),
    ]))
    .await;
    let policy = ecs_policy(r#"protect: { tags: { "janitor:keep": "true" }, instance_ids: ["I-CONTROL"] }"#);
    let run = env.run(&policy, &["--apply"]).await;
    assert_eq!(run.outcome("i-control"), "protected", "{}", run.stdout);
    assert_eq!(run.outcome("i-spacey-key"), "protected", "{}", run.stdout);
    assert_eq!(env.released_ids(), ["i-plain"]);
}

/// Item 10: a `DeleteInstances` dry run answered HTTP 500 with code `DryRunOperation`, retries exhausted, was
/// counted as a pass and the instance released.
#[tokio::test]
async fn a_5xx_dry_run_is_not_a_pass() {
    let mut inv = inventory(vec![stopped("i-expired", &[EXPIRED])]);
    inv["faults"] = json!([{
        "action": "DeleteInstances", "dry_run": true, "kind": "error", "code": "DryRunOperation", "status": 500,
        "message": "Request validation has been passed with DryRun flag set."
    }]);
    let env = Env::start(&inv).await;
    let knobs = [
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
        ("JANITOR_REQUEST_TIMEOUT_MS", "400"),
        ("JANITOR_RETRY_BUDGET_MS", "300"),
        ("JANITOR_RETRY_BASE_MS", "10"),
    ];
    let run = env.run_with_env(&ecs_policy(""), &["--apply"], &knobs).await;
    assert_eq!(run.outcome("i-expired"), "failed", "{}", run.stdout);
    assert_eq!(run.code, 3);
    assert!(env.released_ids().is_empty(), "released after a 5xx dry run");
    assert!(env
        .calls_to("2014-05-26", "DeleteInstances")
        .iter()
        .all(|c| c.params.get("DryRun").map(String::as_str) == Some("true")));
}

/// Item 11: Kafka `PaidType` 4 is a Confluent *subscription*; an unexpired one was read as pay-as-you-go, and so
/// released by a pay-as-you-go rule.
#[tokio::test]
async fn kafka_confluent_subscription_is_not_pay_as_you_go() {
    let confluent = json!({
        "InstanceId": "k-confluent", "Name": "confluent", "RegionId": "cn-hangzhou", "ServiceStatus": 5,
        "ViewInstanceStatusCode": 2, "PaidType": 4, "CreateTime": 1_790_812_800_000i64,
        "ExpiredTime": 4_102_444_800_000i64, "SpecType": "normal", "Series": "confluent",
        "Tags": {"TagVO": [{"Key": "expire-at", "Value": "2026-01-01"}]},
    });
    let env = Env::start(&inventory_with(json!({"alikafka": [confluent]}))).await;
    let policy = r#"
regions: [cn-hangzhou]
products: [alikafka]
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at, charge_type: pay-as-you-go }
    grace: 0
"#;
    let run = env.run(policy, &["--apply"]).await;
    assert_eq!(run.outcome("k-confluent"), "kept", "{}", run.stdout);
    assert_eq!(run.entry("k-confluent")["facts"]["charge_type"], "subscription");
    assert!(env.calls_to("2019-09-16", "ReleaseInstance").is_empty());
}

/// Item 19: windows that can never open (`30 Feb`, `31 Apr`) passed `validate`.
#[tokio::test]
async fn windows_that_can_never_open_are_refused() {
    let env = Env::start(&inventory(vec![stopped("i-expired", &[EXPIRED])])).await;
    for cron in ["0 0 0 30 Feb *", "0 0 0 31 Apr *"] {
        let policy = format!("{}window: {{ cron: \"{cron}\", duration: 2h }}\n", ecs_policy(""));
        let run = env.run(&policy, &["--apply"]).await;
        assert_eq!(run.code, 1, "{cron}: {}", run.stderr);
        assert!(run.stderr.contains("window.cron") && run.stderr.contains("never open"), "{}", run.stderr);
    }
    assert_eq!(env.listings(), 0, "nothing listed for a refused policy");
}

/// Item 9 (ECS): a keep tag written after the listing and before the dry run did not stop the release (the dry
/// run does not look at tags, and ECS had no re-read). Now every product re-reads and re-decides first.
#[tokio::test]
async fn a_keep_tag_written_after_the_ecs_listing_stops_the_release() {
    let mut late = stopped("i-late-keep", &[EXPIRED]);
    late["_sim"] = json!({"mutate_after_reads": {"after": 1, "set": {"Tags": {"Tag": [
        {"TagKey": "expire-at", "TagValue": "2026-01-01"}, {"TagKey": "janitor:keep", "TagValue": "true"}
    ]}}}});
    let env = Env::start(&inventory(vec![late, stopped("i-plain", &[EXPIRED])])).await;
    let run = env.run(&ecs_policy(r#"protect: { tags: { "janitor:keep": "true" } }"#), &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.released_ids(), ["i-plain"]);
    assert_eq!(run.outcome("i-late-keep"), "skipped", "{}", run.stdout);
    assert!(run.entry("i-late-keep").to_string().contains("pre-flight"), "{}", run.stdout);
    for c in env.sim.calls().iter().filter(|c| c.action == "DeleteInstances") {
        assert!(!c.params.values().any(|v| v == "i-late-keep"), "sent for release: {c:?}");
    }
}

/// Item 9 (marks): a Redis instance whose mark was removed, or whose deadline moved to 2027, between the listing
/// and the release was released: the pre-flight compared only verdict and rule. Now it compares the change.
#[tokio::test]
async fn a_mark_removed_or_moved_after_the_listing_stops_the_release() {
    let due = "2026-11-20T00:00:00Z";
    let genuine = |id: &str| -> Vec<Value> {
        let mut tags = vec![json!({"Key": "expire-at", "Value": "2026-01-01"})];
        tags.extend(
            mark("r-kvstore", "cn-hangzhou", id, "expired-by-tag", due)
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v})),
        );
        tags
    };
    let redis = |id: &str, later: Value| {
        json!({
            "InstanceId": id, "InstanceName": format!("name-{id}"), "RegionId": "cn-hangzhou", "InstanceStatus": "Normal",
            "ChargeType": "PostPaid", "CreateTime": "2026-10-01T00:00:00Z", "InstanceType": "Redis",
            "EditionType": "Community", "InstanceReleaseProtection": false,
            "Tags": {"Tag": genuine(id)},
            // Listing reads it twice (DescribeInstances, DescribeInstanceAttribute); the pre-flight is the third.
            "_sim": {"mutate_after_reads": {"after": 2, "set": {"Tags": {"Tag": later}}}}
        })
    };
    let expired = json!({"Key": "expire-at", "Value": "2026-01-01"});
    let mut moved = genuine("r-moved");
    for t in moved.iter_mut().filter(|t| t["Key"] == "janitor:release-after") {
        t["Value"] = json!("2027-06-01T00:00:00Z");
    }
    let env = Env::start(&inventory_with(json!({"r-kvstore": [
        redis("r-unmarked", json!([expired])),
        redis("r-moved", json!(moved)),
        redis("r-same", json!(genuine("r-same"))),
    ]})))
    .await;
    let policy = r#"
regions: [cn-hangzhou]
products: [r-kvstore]
limits: { max_releases_per_run: 100, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 3d
"#;
    let run = env.run(policy, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.sim.instance_ids("r-kvstore"), ["r-moved", "r-unmarked"], "{}", run.stdout);
    for id in ["r-unmarked", "r-moved"] {
        assert_eq!(run.outcome(id), "skipped", "{}", run.stdout);
        assert!(run.entry(id).to_string().contains("changed since listing (pre-flight)"), "{}", run.stdout);
    }
    assert_eq!(run.outcome("r-same"), "released", "{}", run.stdout);
}

fn bill(id: &str, product: &str, end: &str) -> Value {
    json!({
        "InstanceID": id, "ProductCode": product, "ProductType": product, "Region": "cn-hangzhou",
        "SubscriptionType": "Subscription", "Status": "Expired", "SubStatus": "Normal", "RenewStatus": "ManualRenewal",
        "RenewalDuration": 1, "RenewalDurationUnit": "M", "CreateTime": "2025-11-01T16:00:00Z", "EndTime": end,
        "OwnerId": 1234567890, "SellerId": 26842,
    })
}

/// Item 7: 4 ECS instances with 2 due is 50 %, held by a 25 % limit; 40 long-released RDS rows in billing once
/// made it 2 of 44 and released both. The percentage is of the instances the product APIs returned.
#[tokio::test]
async fn billing_discovery_does_not_dilute_the_percent_limit() {
    let rds: Vec<Value> = (0..40).map(|i| bill(&format!("rm-old-{i:02}"), "rds", "2025-01-01T00:00:00Z")).collect();
    let env = Env::start(&inventory_with(json!({
        "ecs": [stopped("i-due-1", &[EXPIRED]), stopped("i-due-2", &[EXPIRED]), stopped("i-a", &[]), stopped("i-b", &[])],
        "bss": {"vno": false, "instances": rds},
    })))
    .await;
    let policy = r#"
regions: [cn-hangzhou]
products: [ecs]
bss: { discovery: true }
limits: { max_releases_per_run: 100, max_release_percent: 25 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
"#;
    let run = env.run(policy, &["--apply"]).await;
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.outcome("i-due-1"), "held", "{}", run.stdout);
    assert!(run.summary["limit_breach"]["reason"].as_str().unwrap_or_default().contains("2 of 4"), "{}", run.stdout);
    assert!(env.released_ids().is_empty());
}

/// Item 8: with `products: [ecs]`, `vno: true` and `protect.names: ["prod-*"]`, the RDS record `rm-prod-db-001` was
/// released through billing. Billing releases only the ProductCodes the policy names, and never what a name or tag
/// protection cannot be checked on.
#[tokio::test]
async fn bss_vno_releases_only_named_products_and_never_past_unreadable_protections() {
    let inv = inventory_with(json!({
        "ecs": [stopped("i-a", &[])],
        "bss": {"vno": true, "instances": [bill("rm-prod-db-001", "rds", "2026-11-01T16:00:00Z"), bill("pc-1", "polardb", "2026-11-01T16:00:00Z")]},
    }));
    let env = Env::start(&inv).await;
    let policy = |bss: &str, protect: &str| {
        format!(
            r#"
regions: [cn-hangzhou]
products: [ecs]
bss: {bss}
{protect}
limits: {{ max_releases_per_run: 100, max_release_percent: 100 }}
rules:
  - name: expired-subscription
    filters: {{ charge_type: subscription, expired_for: 1d }}
    grace: 0
"#
        )
    };
    // vno without naming what billing may release is refused at validation.
    let run = env.run(&policy("{ discovery: true, vno: true }", ""), &["--apply"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("bss.release_products"), "{}", run.stderr);

    let run = env
        .run(
            &policy("{ discovery: true, vno: true, release_products: [rds] }", r#"protect: { names: ["prod-*"] }"#),
            &["--apply"],
        )
        .await;
    assert_eq!(run.outcome("rm-prod-db-001"), "skipped", "{}", run.stdout);
    assert!(run.entry("rm-prod-db-001").to_string().contains("cannot be checked"), "{}", run.stdout);
    assert_eq!(run.outcome("pc-1"), "skipped", "{}", run.stdout);
    assert!(run.entry("pc-1").to_string().contains("not in bss.release_products"), "{}", run.stdout);
    assert!(env.calls_to("2017-12-14", "ReleaseInstance").is_empty());
}

/// Item 18: a billing outage unmarked every marked subscription and told owners so; the next run re-marked with a
/// fresh grace. "Cannot cross-check now" is not "no longer eligible": the mark stays.
#[tokio::test]
async fn a_billing_outage_keeps_the_marks_of_expired_subscriptions() {
    let marked = mark("ecs", "cn-hangzhou", "i-sub", "expired-subscription", "2026-11-20T00:00:00Z");
    let tags: Vec<(&str, &str)> = marked.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut sub = ecs("i-sub", "cn-hangzhou", "Stopped", "PrePaid", &tags);
    sub["ExpiredTime"] = json!("2026-11-01T16:00Z");
    let mut inv = inventory_with(json!({
        "ecs": [sub],
        "bss": {"vno": false, "instances": [bill("i-sub", "ecs", "2026-11-01T16:00:00Z")]},
    }));
    inv["faults"] =
        json!([{"version": "2017-12-14", "action": "QueryAvailableInstances", "code": "InternalError", "status": 500}]);
    let env = Env::start(&inv).await;
    let policy = r#"
regions: [cn-hangzhou]
products: [ecs]
bss: { discovery: true }
notify: { owner_tag: owner }
limits: { max_releases_per_run: 100, max_release_percent: 100 }
rules:
  - name: expired-subscription
    filters: { charge_type: subscription, expired_for: 1d }
    grace: 3d
"#;
    let run = env.run(policy, &["--apply"]).await;
    assert_eq!(run.outcome("i-sub"), "skipped", "{}", run.stdout);
    assert!(run.entry("i-sub").to_string().contains("its mark is kept"), "{}", run.stdout);
    assert_eq!(env.calls_of("UntagResources"), 0, "the mark is not removed");
    assert!(run.summary.get("owners").is_none_or(|o| o.as_object().is_none_or(|o| o.is_empty())), "{}", run.stdout);
    assert!(env.released_ids().is_empty());
}

/// Item 5: the clock guard trusted `JANITOR_ENDPOINT` alone. (a) a blank one passed it; (b) a per-product policy
/// endpoint wins over it; (c) a past clock with `--apply` wrote marks whose deadline had already passed. A clock
/// other than the real one is accepted only when every endpoint the run calls is a loopback IP, and a past clock
/// anywhere else is a dry-run replay. `http://localhost:<port>` stands for a real host here: it is not an IP
/// literal (so it does not count as loopback), yet it reaches only the emulator.
#[tokio::test]
async fn the_clock_rule_holds_whatever_the_endpoints_say() {
    let env = Env::start(&inventory(vec![stopped("i-plain", &[EXPIRED])])).await;
    let port = env.url.rsplit(':').next().unwrap_or_default().to_string();
    let policy = ecs_policy("")
        .replace("products: [ecs]", &format!("products: [ecs]\nendpoints: {{ ecs: \"http://localhost:{port}\" }}"));
    let marking = policy.replace("grace: 0", "grace: 3d");
    let future = "2035-01-01T00:00:00Z";
    let secret = ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET);
    for env_endpoint in ["", "  ", env.url.as_str()] {
        let run = env
            .run_with_env(&policy, &["--apply"], &[secret, ("JANITOR_NOW", future), ("JANITOR_ENDPOINT", env_endpoint)])
            .await;
        assert_eq!(run.code, 1, "JANITOR_ENDPOINT={env_endpoint:?}: {}", run.stdout);
        assert!(run.stderr.contains("ahead of the real clock"), "{}", run.stderr);
    }
    assert!(env.sim.calls().is_empty(), "a refused clock makes no call");

    // A past clock against a non-loopback endpoint: a replay.
    let run = env.run_with_env(&marking, &["--apply"], &[secret, ("JANITOR_NOW", "2026-03-01T00:00:00Z")]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["mode"], "dry-run", "{}", run.stdout);
    assert!(run.summary["mode_reason"].as_str().unwrap_or_default().contains("replay"), "{}", run.stdout);
    assert_eq!(run.outcome("i-plain"), "would_mark");
    assert_eq!(env.calls_of("TagResources"), 0, "no mark written by a replay");
}

/// Item 4: 15 waiting instances (future marks, no auto-release time yet), limits 10 / 25 %, window closed: one run
/// set `ModifyInstanceAutoReleaseTime` on all 15. Setting one is a release decision: limits, window and notice.
#[tokio::test]
async fn waiting_marks_get_an_auto_release_time_only_within_limits_window_and_notice() {
    let marked = |id: &str| {
        let mut tags: Vec<(String, String)> = mark("ecs", "cn-hangzhou", id, "expired-by-tag", "2026-11-27T12:00:00Z");
        tags.extend([(EXPIRED.0.to_string(), EXPIRED.1.to_string()), ("owner".into(), "alice".into())]);
        let refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        stopped(id, &refs)
    };
    let policy = |limits: &str, window: &str| {
        format!(
            r#"
regions: [cn-hangzhou]
products: [ecs]
notify: {{ owner_tag: owner }}
limits: {limits}
{window}
rules:
  - name: expired-by-tag
    filters: {{ expire_at_tag: expire-at }}
    grace: 3d
    auto_release: true
"#
        )
    };
    let fifteen: Vec<Value> = (0..15).map(|i| marked(&format!("i-wait-{i:02}"))).collect();
    let env = Env::start(&inventory(fifteen)).await;
    let run = env.run(&policy("{ max_releases_per_run: 10, max_release_percent: 25 }", ""), &["--apply"]).await;
    assert_eq!(run.outcome("i-wait-00"), "held", "{}", run.stdout);
    assert_eq!(env.calls_of("ModifyInstanceAutoReleaseTime"), 0, "15 auto-release times are above the limits");

    // Within the limits, but the deadline (2026-11-27T12:00Z, a Friday) falls outside a Monday-only window.
    let env = Env::start(&inventory(vec![marked("i-wait")])).await;
    let monday = r#"window: { cron: "0 0 0 * * Mon", duration: 4h, tz: UTC }"#;
    let run = env.run(&policy("{ max_releases_per_run: 10, max_release_percent: 100 }", monday), &["--apply"]).await;
    assert_eq!(run.outcome("i-wait"), "waiting", "{}", run.stdout);
    assert_eq!(env.calls_of("ModifyInstanceAutoReleaseTime"), 0, "the platform would release outside the window");

    // Within limits and window: set, and the owner is told.
    let run = env.run(&policy("{ max_releases_per_run: 10, max_release_percent: 100 }", ""), &["--apply"]).await;
    assert_eq!(env.calls_of("ModifyInstanceAutoReleaseTime"), 1, "{}", run.stdout);
    assert_eq!(run.summary["owners"]["alice"][0]["id"], "ecs:cn-hangzhou/i-wait", "{}", run.stdout);
}

/// Item 15: Alibaba's `SignatureDoesNotMatch` message quotes the server's string to sign, which holds the
/// `SecurityToken` and `AccessKeyId` (percent-encoded, and encoded again inside the string to sign). With STS
/// credentials and a wrong secret the token reached `skipped_scopes[].error`, stderr and the JSON webhook.
#[tokio::test(flavor = "multi_thread")]
async fn the_sts_token_never_leaves_through_a_service_message() {
    use std::sync::{Arc, Mutex};
    let token = "CAISxq9F8yPzv3Rk+Lm2/Tz8qW==";
    let key_id = "STS.NUx9adversary";
    let mut inv = inventory(vec![stopped("i-plain", &[EXPIRED])]);
    inv["credentials"] = json!([{"access_key_id": key_id, "access_key_secret": SECRET, "security_token": token}]);
    let env = Env::start(&inv).await;

    let seen: Arc<Mutex<Vec<axum::body::Bytes>>> = Arc::default();
    let record = {
        let seen = seen.clone();
        move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(record)).await });
    let hooks = format!(r#"[{{"format":"json","url":"{hook}"}}]"#);

    let run = env
        .run_with_env(
            &ecs_policy(""),
            &["--apply"],
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "a-wrong-secret-value"),
                ("ALIBABA_CLOUD_SECURITY_TOKEN", token),
                ("JANITOR_WEBHOOKS", &hooks),
                ("RUST_LOG", "debug"),
            ],
        )
        .await;
    // STS refuses the signature when the run asks who it is: the run stops there (exit 1), nothing is listed.
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("SignatureDoesNotMatch"), "{}", run.stderr);
    let calls = env.sim.calls();
    assert!(calls.iter().any(|c| c.code.as_deref() == Some("SignatureDoesNotMatch")), "the emulator refused");
    let once = token.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let twice = once.replace('%', "%25");
    let bodies: Vec<String> = seen.lock().unwrap().iter().map(|b| String::from_utf8_lossy(b).to_string()).collect();
    assert!(bodies.is_empty(), "a run that never started sends no summary");
    for (name, out) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        for form in [token, once.as_str(), twice.as_str(), "CAISxq9F8yPzv3Rk"] {
            assert!(!out.contains(form), "{name} holds the token ({form}): {out}");
        }
        assert!(!out.contains("a-wrong-secret-value"), "{name} holds the secret");
    }
    assert!(run.stderr.contains("string to sign is withheld"), "{}", run.stderr);
}

/// Item 16 (size): an answer body that never ends took the process past 4 GB in seconds. Bodies are capped.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_answer_body_fails_its_scope_instead_of_the_memory() {
    // Not the emulator: a server that answers every call with a body that never ends.
    let endless = || async {
        let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
        let stream = futures_util::stream::repeat(Ok::<_, std::convert::Infallible>(chunk));
        axum::response::Response::new(axum::body::Body::from_stream(stream))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(endless)).await });
    let env = Env::start(&inventory(vec![])).await;
    // Only ECS goes there (STS, asked first who the run is, is the emulator).
    let run = env
        .run_with_env(
            &ecs_policy(&format!("endpoints: {{ ecs: \"{url}\" }}")),
            &["--apply"],
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
                ("JANITOR_MAX_BODY_BYTES", "1048576"),
                ("JANITOR_RETRY_BUDGET_MS", "200"),
            ],
        )
        .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let error = run.summary["skipped_scopes"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("answer larger than 1048576 bytes"), "{}", run.stdout);
}

/// Item 16 (pages): paging that never ends ran for hours. A listing past its page budget fails its scope.
#[tokio::test]
async fn a_listing_past_its_page_budget_fails_its_scope() {
    let many: Vec<Value> = (0..250).map(|i| stopped(&format!("i-{i:03}"), &[EXPIRED])).collect();
    let env = Env::start(&inventory(many)).await;
    let run = env
        .run_with_env(
            &ecs_policy(""),
            &["--apply"],
            &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), ("JANITOR_MAX_PAGES", "2")],
        )
        .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let error = run.summary["skipped_scopes"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("page budget"), "{}", run.stdout);
    assert!(env.released_ids().is_empty());
}

/// Item 16 (time): a run had no deadline. Past it, no release starts and the summary names what was left.
#[tokio::test]
async fn past_the_run_deadline_no_release_starts() {
    let mut inv = inventory(vec![stopped("i-a", &[EXPIRED]), stopped("i-b", &[EXPIRED])]);
    inv["faults"] = json!([{"action": "DescribeInstances", "kind": "latency", "delay_ms": 1500, "times": 1}]);
    let env = Env::start(&inv).await;
    let run = env
        .run_with_env(
            &ecs_policy(""),
            &["--apply"],
            &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), ("JANITOR_RUN_TIMEOUT_SECS", "1")],
        )
        .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(env.released_ids().is_empty());
    assert_eq!(run.summary["failures"][0]["code"], "RunDeadline", "{}", run.stdout);
    assert_eq!(run.summary["failures"].as_array().map(Vec::len), Some(2), "{}", run.stdout);
}

/// Item 3: `janitor:release-after=2000-01-01T00:00:00Z`, written by anyone who may tag (with no, an empty or a
/// matching `janitor:rule`), was released on first match with no notice. A mark the janitor cannot verify as its
/// own is a first match: a fresh grace, the owner told, the mark replaced.
#[tokio::test]
async fn a_hand_written_mark_never_skips_the_grace() {
    let forged = |id: &str, rule: Option<&str>| {
        let mut tags = vec![EXPIRED, ("owner", "mallory"), ("janitor:release-after", "2000-01-01T00:00:00Z")];
        tags.extend(rule.map(|r| ("janitor:rule", r)));
        stopped(id, &tags)
    };
    // A genuine mark copied from another instance does not verify either: the MAC binds it to its instance.
    let copied: Vec<(String, String)> =
        mark("ecs", "cn-hangzhou", "i-elsewhere", "expired-by-tag", "2000-01-01T00:00:00Z");
    let mut copied_tags: Vec<(&str, &str)> = copied.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    copied_tags.extend([EXPIRED, ("owner", "mallory")]);
    let env = Env::start(&inventory(vec![
        forged("i-no-rule", None),
        forged("i-empty-rule", Some("")),
        forged("i-same-rule", Some("expired-by-tag")),
        stopped("i-copied", &copied_tags),
    ]))
    .await;
    let policy = ecs_policy("")
        .replace("grace: 0", "grace: 3d")
        .replace("products: [ecs]", "products: [ecs]\nnotify: { owner_tag: owner }");
    let run = env.run(&policy, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(env.released_ids().is_empty(), "{}", run.stdout);
    for id in ["i-no-rule", "i-empty-rule", "i-same-rule", "i-copied"] {
        assert_eq!(run.outcome(id), "marked", "{id}: {}", run.stdout);
        assert!(run.entry(id).to_string().contains("mark not written by the janitor: replaced"), "{}", run.stdout);
        assert_eq!(run.entry(id)["release_after"], "2026-11-28T12:00:00Z", "a fresh grace from now");
    }
    assert_eq!(run.summary["owners"]["mallory"].as_array().map(Vec::len), Some(4), "the owner is told");

    // Without the key, an apply run that would write marks does not start.
    let run = env
        .run_with_env(&policy, &["--apply"], &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), ("JANITOR_MARK_KEY", "")])
        .await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("JANITOR_MARK_KEY"), "{}", run.stderr);
}

/// Item 6: limits 10 / 25 %: the scheduled run held 8 due of 10 (80 %), then one tag event naming the same 8
/// released them all, and so did a manual run narrowed to the region. The fleet's limits hold for every run.
#[tokio::test]
async fn what_a_fleet_run_holds_no_event_or_narrowed_run_releases() {
    let mut fleet: Vec<Value> = (0..8).map(|i| stopped(&format!("i-due-{i}"), &[EXPIRED])).collect();
    fleet.extend([stopped("i-a", &[]), stopped("i-b", &[])]);
    let env = Env::start(&inventory(fleet)).await;
    let policy = ecs_policy("").replace(
        "max_releases_per_run: 100, max_release_percent: 100",
        "max_releases_per_run: 10, max_release_percent: 25",
    );
    let run = env.run(&policy, &["--apply"]).await;
    assert_eq!(run.outcome("i-due-0"), "held", "{}", run.stdout);

    let ids: Vec<String> = (0..8).map(|i| format!("i-due-{i}")).collect();
    let params: serde_json::Map<String, Value> =
        ids.iter().enumerate().map(|(i, id)| (format!("ResourceId.{}", i + 1), json!(id))).collect();
    let event = json!({
        "id": "evt-mass", "source": "acs.actiontrail", "specversion": "1.0", "type": "ecs:ActionTrail:ApiCall",
        "time": "2026-11-25T11:58:02Z", "aliyunregionid": "cn-hangzhou",
        "data": {"eventName": "TagResources", "acsRegion": "cn-hangzhou", "eventRW": "Write",
                 "requestParameters": params, "referencedResources": {"ACS::ECS::Instance": ids}},
    });
    let path = env.write("event.json", &event.to_string());
    let run = env.run(&policy, &["--apply", "--event", path.to_str().unwrap()]).await;
    assert_eq!(run.outcome("i-due-0"), "held", "{}", run.stdout);
    assert!(
        run.summary["limit_breach"]["reason"].as_str().unwrap_or_default().contains("fleet-wide"),
        "{}",
        run.stdout
    );

    let manual = env.write("manual.json", r#"{"regions": ["cn-hangzhou"]}"#);
    let run = env.run(&policy, &["--apply", "--event", manual.to_str().unwrap()]).await;
    assert_eq!(run.outcome("i-due-0"), "held", "{}", run.stdout);
    assert!(env.released_ids().is_empty(), "nothing released by any of the three runs");
}

/// Item 12: release protection does not stop ECS auto-release, and a failed `UntagResources` left the janitor's
/// auto-release time in place (the cancel ran only for entries that ended `unmarked`): the platform released an
/// instance its owner had opted out. The cancel now comes first, independently of the untag.
#[tokio::test]
async fn the_janitors_auto_release_time_is_cancelled_even_when_the_untag_fails() {
    let mut inv = inventory(vec![stopped("i-exp", &[EXPIRED])]);
    inv["faults"] = json!([{"action": "UntagResources", "code": "InternalError", "status": 500}]);
    let env = Env::start(&inv).await;
    let policy = r#"
regions: [cn-hangzhou]
products: [ecs]
limits: { max_release_percent: 100 }
protect:
  tags: { "janitor:keep": "true" }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 3d
    auto_release: true
"#;
    let run = env.run_at(&day(0.0), policy, &["--apply"]).await;
    assert_eq!(run.outcome("i-exp"), "marked", "{}", run.stdout);
    assert_eq!(env.calls_of("ModifyInstanceAutoReleaseTime"), 1);

    env.owner_tags("cn-hangzhou", "i-exp", &[("janitor:keep", "true")]).await;
    let day2 = day(2.0);
    let t = chrono::DateTime::parse_from_rfc3339(&day2).unwrap().with_timezone(&chrono::Utc);
    env.sim.set_clock(Some(t));
    let knobs = [
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
        ("JANITOR_NOW", day2.as_str()),
        ("JANITOR_RETRY_BUDGET_MS", "200"),
        ("JANITOR_RETRY_BASE_MS", "5"),
    ];
    let run = env.run_with_env(policy, &["--apply"], &knobs).await;
    assert_eq!(run.outcome("i-exp"), "failed", "the untag failed: {}", run.stdout);
    let calls = env.calls_with("ModifyInstanceAutoReleaseTime", "InstanceId", "i-exp");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(!calls[1].params.contains_key("AutoReleaseTime"), "the second call cancels");

    // Past the old deadline the platform does not release it.
    let later = chrono::DateTime::parse_from_rfc3339(&day(5.0)).unwrap().with_timezone(&chrono::Utc);
    env.sim.set_clock(Some(later));
    assert!(env.instance("cn-hangzhou", "i-exp").await.is_some(), "still there");
}

/// Item 6 (accounts): an event's ARNs may name another account's instances (a forwarded or forged event). With the
/// caller's account known (STS GetCallerIdentity), such a resource is ignored and reported, never re-read or acted on.
#[tokio::test]
async fn an_arn_of_another_account_is_ignored() {
    let mut inv = inventory(vec![stopped("i-mine", &[EXPIRED]), stopped("i-theirs", &[EXPIRED])]);
    inv["credentials"][0]["account_id"] = json!("1111222233334444");
    // The emulator serves each account its own instances: these belong to the caller's account.
    let ecs = inv.as_object_mut().and_then(|o| o.remove("ecs")).unwrap_or_default();
    inv["accounts"] = json!({"1111222233334444": {"ecs": ecs}});
    let env = Env::start(&inv).await;
    let event = json!({
        "id": "evt-arn", "source": "acs.actiontrail", "specversion": "1.0", "type": "tag:ActionTrail:ApiCall",
        "time": "2026-11-25T11:58:05Z", "aliyunregionid": "cn-hangzhou",
        "data": {"eventName": "TagResources", "acsRegion": "cn-hangzhou", "requestParameters": {
            "ResourceARN.1": "acs:ecs:cn-hangzhou:1111222233334444:instance/i-mine",
            "ResourceARN.2": "acs:ecs:cn-hangzhou:9999888877776666:instance/i-theirs",
            "Tags": "{\"expire-at\":\"2026-11-24\"}",
        }},
    });
    let path = env.write("event.json", &event.to_string());
    let run = env
        .run_with_env(
            &ecs_policy(""),
            &["--apply", "--event", path.to_str().unwrap()],
            &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["account_id"], "1111222233334444");
    assert_eq!(env.released_ids(), ["i-mine"], "{}", run.stdout);
    assert_eq!(run.outcome("i-theirs"), "<missing>");
    let ignored = run.summary["ignored"].to_string();
    assert!(ignored.contains("i-theirs") && ignored.contains("9999888877776666"), "{ignored}");
}

/// Item 17: `--output text` printed names and tag values raw: an instance name forged a `released …` line and
/// injected an ANSI escape.
#[tokio::test]
async fn a_name_cannot_forge_a_line_of_the_text_output() {
    let mut forged = stopped("i-forger", &[EXPIRED, ("owner", "eve\nreleased ecs:cn-hangzhou/i-prod-db")]);
    forged["InstanceName"] = json!("tmp\nreleased ecs:cn-hangzhou/i-prod-db (rule x)\u{1b}[2J");
    let env = Env::start(&inventory(vec![forged])).await;
    let run = env.run(&ecs_policy("notify: { owner_tag: owner }"), &["--output", "text"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains('\u{1b}'), "an ANSI escape reached the terminal: {}", run.stdout);
    assert!(run.stdout.contains("i-forger"), "{}", run.stdout);
    for line in run.stdout.lines() {
        assert!(!line.trim_start().starts_with("released ecs:cn-hangzhou/i-prod-db"), "forged line: {line}");
    }
}

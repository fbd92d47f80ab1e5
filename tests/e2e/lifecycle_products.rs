//! The release lifecycle for Redis/Tair and Kafka end to end: with `grace: 3d` the first run marks through the
//! product's own `TagResources`, the mark shows in the next listing, a run before the deadline waits and one
//! after it releases; a keep tag added meanwhile unmarks through `UntagResources`. Real binary, emulator, days
//! passing through `JANITOR_NOW` and the emulator clock.

use crate::support::*;
use aliyun_janitor::products::{Kafka, Product, Redis};
use serde_json::{json, Value};

const REDIS_V: &str = "2015-01-01";
const KAFKA_V: &str = "2019-09-16";

fn policy(product: &str) -> String {
    format!(
        r#"
regions: [cn-hangzhou]
products: [{product}]
protect:
  tags: {{ "janitor:keep": "true" }}
notify: {{ owner_tag: owner }}
limits: {{ max_releases_per_run: 10, max_release_percent: 100 }}
rules:
  - name: expired-by-tag
    filters: {{ expire_at_tag: expire-at }}
    grace: 3d
"#
    )
}

fn redis(id: &str, tags: &[(&str, &str)]) -> Value {
    json!({
        "InstanceId": id, "InstanceName": format!("name-{id}"), "RegionId": "cn-hangzhou", "InstanceStatus": "Normal",
        "ChargeType": "PostPaid", "CreateTime": "2026-10-01T00:00:00Z", "InstanceReleaseProtection": false,
        "Tags": {"Tag": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()},
    })
}

fn kafka(id: &str, tags: &[(&str, &str)]) -> Value {
    json!({
        "InstanceId": id, "Name": format!("name-{id}"), "RegionId": "cn-hangzhou", "ServiceStatus": 5, "ViewInstanceStatusCode": 2,
        "PaidType": 1, "CreateTime": 1_790_812_800_000i64, "ExpiredTime": 4_102_444_800_000i64,
        "Tags": {"TagVO": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()},
    })
}

const EXPIRED: &[(&str, &str)] = &[("expire-at", "2026-11-01"), ("owner", "alice")];
const FUTURE: &[(&str, &str)] = &[("expire-at", "2027-06-01"), ("owner", "bob")];

/// The product's adapter, as the janitor uses it: to read tags the way the next run will, and to tag as an owner.
fn adapter(code: &str) -> Box<dyn Product> {
    match code {
        "r-kvstore" => Box::new(Redis),
        _ => Box::new(Kafka),
    }
}

async fn tags_of(env: &Env, product: &str, id: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let found = adapter(product).get(&env.client(), "cn-hangzhou", &[id.to_string()]).await.expect("read");
    found.into_iter().next().map(|i| i.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

async fn owner_tags(env: &Env, product: &str, id: &str, tags: &[(&str, &str)]) {
    let tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let report = adapter(product)
        .tagging()
        .expect("tagging")
        .tag(&env.client(), "cn-hangzhou", &[id.to_string()], &tags)
        .await
        .expect("tag");
    assert!(report.failed.is_empty(), "{report:?}");
}

/// Day 0 marks both expired instances; the owner of one adds the keep tag; day 2 waits on one and unmarks the
/// other; day 4 releases the first and leaves the kept one alone. `released` names the successful release calls.
async fn mark_wait_release_and_unmark(
    product: &str,
    version: &str,
    ids: [&str; 3],
    released: impl Fn(&Env) -> Vec<String>,
) {
    let [exp, keep, future] = ids;
    let sections = match product {
        "r-kvstore" => json!({"r-kvstore": [redis(exp, EXPIRED), redis(keep, EXPIRED), redis(future, FUTURE)]}),
        _ => json!({"alikafka": [kafka(exp, EXPIRED), kafka(keep, EXPIRED), kafka(future, FUTURE)]}),
    };
    let env = Env::start(&inventory_with(sections)).await;
    let policy = policy(product);

    // Day 0, dry run: what would be marked, and no tag written.
    let dry = env.run_at(&day(0.0), &policy, &[]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.outcome(exp), "would_mark", "{}", dry.stdout);
    assert!(env.calls_to(version, "TagResources").is_empty());

    // Day 0, apply: both marked in one call, the tags show on a fresh read, nothing released.
    let run = env.run_at(&day(0.0), &policy, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        (run.outcome(exp), run.outcome(keep), run.outcome(future)),
        ("marked".into(), "marked".into(), "kept".into())
    );
    assert_eq!(run.entry(exp)["facts"]["release_after"], "2026-11-28T12:00:00Z");
    assert_eq!(run.summary["owners"]["alice"][0]["outcome"], "marked");
    let calls = env.calls_to(version, "TagResources");
    // One call per instance: every mark carries a MAC bound to its own instance (`janitor:mark`).
    assert_eq!(calls.len(), 2, "{calls:?}");
    let p = &calls[0].params;
    assert_eq!(
        (p["RegionId"].as_str(), p["ResourceType"].as_str(), calls[0].http_status),
        ("cn-hangzhou", "INSTANCE", 200)
    );
    let mut tagged: Vec<String> = calls.iter().map(|c| c.params["ResourceId.1"].clone()).collect();
    tagged.sort();
    assert_eq!(tagged, [exp, keep]);
    let tags = tags_of(&env, product, exp).await.expect("still there");
    assert_eq!(tags["janitor:release-after"], "2026-11-28T12:00:00Z");
    assert_eq!(tags["janitor:rule"], "expired-by-tag");
    assert_eq!(tags["owner"], "alice", "the owner's tags are kept");
    assert!(env.sim.release_calls().is_empty());

    // The owner of one opts out.
    owner_tags(&env, product, keep, &[("janitor:keep", "true")]).await;
    let tag_calls = env.calls_to(version, "TagResources").len();

    // Day 2: the deadline is ahead for one; the kept one loses its mark.
    let run = env.run_at(&day(2.0), &policy, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.outcome(exp), "waiting", "{}", run.stdout);
    assert!(run.entry(exp)["message"]
        .as_str()
        .unwrap_or("")
        .contains("released after 2026-11-28T12:00:00Z (1d from now)"));
    assert_eq!(run.outcome(keep), "unmarked", "{}", run.stdout);
    assert!(run.entry(keep)["message"].as_str().unwrap_or("").contains("now protected by tag janitor:keep=true"));
    assert_eq!(env.calls_to(version, "TagResources").len(), tag_calls, "a waiting mark is not written again");
    let untag = env.calls_to(version, "UntagResources");
    assert_eq!(untag.len(), 1);
    assert_eq!(untag[0].params["ResourceId.1"], keep);
    let keys: Vec<&str> =
        untag[0].params.iter().filter(|(k, _)| k.starts_with("TagKey.")).map(|(_, v)| v.as_str()).collect();
    assert_eq!(keys, ["janitor:release-after", "janitor:rule", "janitor:mark"]);
    let tags = tags_of(&env, product, keep).await.expect("still there");
    assert!(!tags.contains_key("janitor:release-after") && !tags.contains_key("janitor:rule"), "{tags:?}");
    assert!(env.sim.release_calls().is_empty());

    // Day 4: the deadline has passed and it still matches: released. The kept one stays.
    let run = env.run_at(&day(4.0), &policy, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.outcome(exp), "released", "{}", run.stdout);
    assert_eq!(run.outcome(keep), "protected");
    assert_eq!(released(&env), [exp]);
    assert!(tags_of(&env, product, exp).await.is_none());
    let mut left = env.sim.instance_ids(product);
    left.sort();
    let mut want = vec![keep.to_string(), future.to_string()];
    want.sort();
    assert_eq!(left, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_marks_waits_releases_and_unmarks() {
    mark_wait_release_and_unmark("r-kvstore", REDIS_V, ["r-exp", "r-keep", "r-future"], |env| {
        env.succeeded(REDIS_V, "DeleteInstance", "InstanceId")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_marks_waits_releases_and_unmarks() {
    mark_wait_release_and_unmark(
        "alikafka",
        KAFKA_V,
        ["alikafka_post-exp", "alikafka_post-keep", "alikafka_post-future"],
        |env| {
            let released = env.succeeded(KAFKA_V, "ReleaseInstance", "InstanceId");
            assert_eq!(
                env.succeeded(KAFKA_V, "DeleteInstance", "InstanceId"),
                released,
                "the released record is removed too"
            );
            released
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_gone_since_the_listing_fails_alone() {
    // Both products fail a tag call as a whole for an unknown id (Redis: HTTP 400 InvalidParameter.ResourceId;
    // Kafka: HTTP 200 with Success: false): the adapter then tags id by id.
    let env = Env::start(&inventory_with(json!({
        "r-kvstore": [redis("r-1", &[]), redis("r-2", &[])],
        "alikafka": [kafka("k-1", &[]), kafka("k-2", &[])],
    })))
    .await;
    let tags = std::collections::BTreeMap::from([("janitor:rule".to_string(), "x".to_string())]);
    for (product, version, ids, code, status) in [
        ("r-kvstore", REDIS_V, ["r-1", "r-gone", "r-2"], "InvalidDbInstanceId.NotFound", 404),
        ("alikafka", KAFKA_V, ["k-1", "k-gone", "k-2"], "BIZ_INSTANCE_NOT_FOUND", 200),
    ] {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let report = adapter(product)
            .tagging()
            .expect("tagging")
            .tag(&env.client(), "cn-hangzhou", &ids, &tags)
            .await
            .expect("tag");
        assert_eq!(report.failed.keys().collect::<Vec<_>>(), [&ids[1]], "{product}");
        assert_eq!(report.failed[&ids[1]].0, code);
        assert_eq!(report.request_ids.len(), 2, "{product}: one per id that was tagged");
        let calls = env.calls_to(version, "TagResources");
        assert_eq!(calls.len(), 4, "{product}: the batch, then each id alone");
        assert_eq!((calls[0].http_status, calls[0].code.as_deref()), (status, Some(code)));
        for id in [&ids[0], &ids[2]] {
            assert_eq!(tags_of(&env, product, id).await.expect("there")["janitor:rule"], "x", "{id}");
        }
        let report = adapter(product)
            .tagging()
            .expect("tagging")
            .untag(&env.client(), "cn-hangzhou", &ids, &["janitor:rule".to_string()])
            .await
            .expect("untag");
        assert_eq!(report.failed.keys().collect::<Vec<_>>(), [&ids[1]], "{product}");
        assert!(tags_of(&env, product, &ids[0]).await.expect("there").is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_kafka_mark_is_a_failure_and_nothing_is_released() {
    let mut inv = inventory_with(json!({"alikafka": [kafka("alikafka_post-exp", EXPIRED)]}));
    inv["faults"] = json!([{"version": KAFKA_V, "action": "TagResources", "code": "Forbidden.RAM", "status": 403}]);
    let env = Env::start(&inv).await;
    let policy = policy("alikafka");
    let run = env.run_at(&day(0.0), &policy, &["--apply"]).await;
    assert_eq!(run.code, 3, "a failed mark degrades the run: {}", run.stdout);
    assert_eq!(run.outcome("alikafka_post-exp"), "failed");
    assert_eq!(run.entry("alikafka_post-exp")["code"], "Forbidden.RAM");
    assert!(run.summary["owners"].get("alice").is_none(), "an owner is never told of a mark that was not written");
    let run = env.run_at(&day(4.0), &policy, &["--apply"]).await;
    assert_eq!(run.outcome("alikafka_post-exp"), "failed");
    assert!(env.sim.release_calls().is_empty());
}

//! Tag-change and state-change events end to end: the real binary, `--event`, the emulator. An event is a hint:
//! the janitor re-reads only the named resources by id (never lists a region) and applies the same policy.

use crate::support::*;
use serde_json::{json, Value};

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [ecs]
protect:
  tags: { "janitor:keep": "true" }
notify: { owner_tag: owner }
limits: { max_releases_per_run: 10, max_release_percent: 25 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 3d
"#;

/// An ActionTrail `TagResources` CloudEvent naming `ids` in cn-hangzhou.
fn tag_event(event_id: &str, ids: &[&str]) -> Value {
    let params: serde_json::Map<String, Value> =
        ids.iter().enumerate().map(|(i, id)| (format!("ResourceId.{}", i + 1), json!(id))).collect();
    json!({
        "id": event_id, "source": "acs.actiontrail", "specversion": "1.0", "type": "ecs:ActionTrail:ApiCall",
        "time": "2026-11-25T11:58:02Z", "aliyunregionid": "cn-hangzhou",
        "data": {
            "eventName": "TagResources", "acsRegion": "cn-hangzhou", "eventRW": "Write",
            "requestParameters": Value::Object(params.into_iter().chain([("ResourceType".to_string(), json!("instance"))]).collect()),
            "referencedResources": {"ACS::ECS::Instance": ids},
        }
    })
}

/// A fleet where a scheduled run would mark several instances; the events name one at a time.
fn fleet() -> Value {
    let mut instances: Vec<Value> = (0..8)
        .map(|i| ecs(&format!("i-other{i}"), "cn-hangzhou", "Stopped", "PostPaid", &[("owner", "ops")]))
        .collect();
    instances.push(ecs(
        "i-tagged",
        "cn-hangzhou",
        "Stopped",
        "PostPaid",
        &[("expire-at", "2026-11-24"), ("owner", "alice")],
    ));
    instances.push(ecs(
        "i-also-expired",
        "cn-hangzhou",
        "Stopped",
        "PostPaid",
        &[("expire-at", "2026-11-01"), ("owner", "bob")],
    ));
    instances.push(ecs("i-sh", "cn-shanghai", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]));
    inventory(instances)
}

impl Env {
    async fn event_run(&self, name: &str, event: &Value, now: &str, args: &[&str]) -> Run {
        let path = self.write(name, &event.to_string());
        let mut all = vec!["--event", path.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run_at(now, POLICY, &all).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_for_a_just_tagged_instance_marks_without_listing_and_releases_only_that_instance_after_its_grace() {
    let env = Env::start(&fleet()).await;

    // Day 0: the owner tags i-tagged; the event marks it, and only it.
    let run = env.event_run("e1.json", &tag_event("evt-1", &["i-tagged"]), &day(0.0), &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["scanned"], 1, "only the named instance is read");
    assert_eq!(run.summary["run_id"], "evt-1");
    assert_eq!(run.outcome("i-tagged"), "marked");
    assert_eq!(run.outcome("i-also-expired"), "<missing>", "not named, not looked at");
    assert_eq!(run.summary["owners"]["alice"][0]["outcome"], "marked");
    let tags = env.instance("cn-hangzhou", "i-tagged").await.unwrap().tags;
    assert_eq!(tags.get("janitor:release-after"), Some("2026-11-28T12:00:00Z"));
    assert_eq!(tags.get("janitor:last-event"), Some("evt-1"));
    // One instance of one is 100%: the percentage limit does not apply to event runs, the count limit does.
    assert!(run.summary.get("limit_breach").is_none(), "{}", run.stdout);
    assert_eq!(env.listings(), 0, "a run that only marks lists nothing: no DescribeInstances without InstanceIds");

    // Day 4: another event for it (the owner touched a tag again): the deadline has passed, it is released.
    let run = env.event_run("e2.json", &tag_event("evt-2", &["i-tagged"]), &day(4.0), &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.outcome("i-tagged"), "released");
    assert_eq!(env.released_ids(), ["i-tagged"]);
    let deletes: Vec<_> = env.sim.calls().into_iter().filter(|c| c.action == "DeleteInstances").collect();
    assert!(deletes.iter().all(|c| c.params.get("InstanceId.1").map(String::as_str) == Some("i-tagged")
        && !c.params.contains_key("InstanceId.2")));

    // Before an event run releases, the fleet is listed once to apply the fleet-wide limits (1 due of 11).
    assert_eq!(env.listings(), 1, "the fleet listing of the release run");
    assert!(!env.instance("cn-hangzhou", "i-also-expired").await.unwrap().tags.contains_key("janitor:release-after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_event_is_ignored() {
    let env = Env::start(&fleet()).await;
    let event = tag_event("evt-dup", &["i-tagged"]);
    let first = env.event_run("e.json", &event, &day(0.0), &["--apply"]).await;
    assert_eq!(first.outcome("i-tagged"), "marked");
    let writes = env.calls_of("TagResources");

    // Redelivered the same day: nothing is done twice.
    let again = env.event_run("e.json", &event, &day(0.0), &["--apply"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.outcome("i-tagged"), "duplicate");
    assert!(again.entry("i-tagged")["message"].as_str().unwrap().contains("event evt-dup was already processed"));
    assert_eq!(env.calls_of("TagResources"), writes);

    // Redelivered after the deadline: still the same event, still ignored; the schedule releases it.
    let late = env.event_run("e.json", &event, &day(4.0), &["--apply"]).await;
    assert_eq!(late.outcome("i-tagged"), "duplicate");
    assert!(env.sim.release_calls().is_empty());
    assert_eq!(env.calls_of("DeleteInstances"), 0);
    let scheduled = env
        .run_at(&day(4.0), &POLICY.replace("max_release_percent: 25", "max_release_percent: 100"), &["--apply"])
        .await;
    assert_eq!(scheduled.outcome("i-tagged"), "released");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_naming_nothing_the_janitor_manages_is_a_no_op() {
    let env = Env::start(&fleet()).await;
    let cases = [
        (
            "aws-arn.json",
            json!({"id": "evt-aws", "specversion": "1.0", "type": "tag:ActionTrail:ApiCall", "data": {"eventName": "TagResources", "acsRegion": "cn-hangzhou", "requestParameters": {"ResourceARN.1": "arn:aws:ec2:us-east-1:123456789012:instance/i-0000000aaaaaaaaaa"}}}),
            "arn:aws:ec2",
        ),
        ("other-region.json", tag_event("evt-x", &[]).tap(|e| e["data"]["acsRegion"] = json!("cn-beijing")), ""),
        (
            "disk.json",
            json!({"id": "evt-d", "specversion": "1.0", "type": "ecs:ActionTrail:ApiCall", "data": {"eventName": "DeleteDisk", "acsRegion": "cn-hangzhou"}}),
            "not a tag change",
        ),
    ];
    for (name, event, note) in cases {
        let run = env.event_run(name, &event, &day(0.0), &["--apply"]).await;
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.summary["scanned"], 0, "{name}");
        assert!(run.summary["ignored"].to_string().contains(note), "{name}: {}", run.stdout);
        assert!(
            run.stderr.contains("names nothing the janitor manages"),
            "{name}: a log line says why nothing happened"
        );
    }
    // Outside the policy's regions: named, logged, not read.
    let mut sh = tag_event("evt-sh", &["i-sh"]);
    sh["data"]["acsRegion"] = json!("cn-shanghai");
    let run = env.event_run("sh.json", &sh, &day(0.0), &["--apply"]).await;
    assert_eq!(run.code, 0);
    assert!(run.summary["ignored"][0]
        .as_str()
        .unwrap()
        .contains("ecs:cn-shanghai/i-sh (outside the policy's products or regions)"));
    // Every run names its account first (STS); nothing else was called.
    let product_calls = || env.sim.calls().into_iter().filter(|c| c.version != "2015-04-01").count();
    assert_eq!(product_calls(), 0, "no API call but naming the account");

    // A resource that no longer exists: one read by id, nothing else.
    let run = env.event_run("gone.json", &tag_event("evt-gone", &["i-gone"]), &day(0.0), &["--apply"]).await;
    assert_eq!(run.code, 0);
    assert!(run.summary["ignored"][0].as_str().unwrap().contains("ecs:cn-hangzhou/i-gone (not found)"));
    assert_eq!(product_calls(), 1);
    assert_eq!(env.listings(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_event_is_an_error_and_calls_nothing() {
    let env = Env::start(&fleet()).await;
    for (name, body) in [
        (
            "no-id.json",
            json!({"specversion": "1.0", "type": "ecs:Instance:StateChange", "aliyunregionid": "cn-hangzhou", "data": {"resourceId": "i-tagged"}}),
        ),
        ("bad-id.json", tag_event("evt-bad", &["i-tagged\"; DROP"])),
        ("bad-batch.json", json!([tag_event("evt-a", &["i-tagged"]), {"dry_run": true}])),
        // Issue 13 item 12: `aws.` sources are AWS's own; an `aws.tag` event is refused by name, even one naming an
        // Alibaba ARN.
        ("aws-tag.json", serde_json::from_str(include_str!("../fixtures/events/aws-tag-change.json")).unwrap()),
        (
            "aws-tag-alibaba-arn.json",
            json!({"version": "0", "id": "evt-t", "detail-type": "Tag Change on Resource", "source": "aws.tag", "resources": ["acs:ecs:cn-hangzhou:1234567890123456:instance/i-tagged"]}),
        ),
    ] {
        let run = env.event_run(name, &body, &day(0.0), &["--apply"]).await;
        assert_eq!(run.code, 1, "{name}: {}", run.stdout);
        assert!(run.stderr.contains("event"), "{name}: {}", run.stderr);
        if name.starts_with("aws-tag") {
            assert!(run.stderr.contains("reserved to AWS"), "{name}: {}", run.stderr);
        }
    }
    assert!(env.sim.calls().is_empty());
    assert!(env.sim.release_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_one_run_over_the_union() {
    let env = Env::start(&fleet()).await;
    let batch = json!([
        tag_event("evt-a", &["i-tagged"]),
        tag_event("evt-b", &["i-also-expired", "i-tagged"]),
        tag_event("evt-a", &["i-tagged"])
    ]);
    let run = env.event_run("batch.json", &batch, &day(0.0), &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.summary["run_id"].as_str().unwrap().starts_with("batch-"));
    assert_eq!(run.summary["trigger"], "event (batch, 2 events) naming 2 resources");
    assert_eq!(run.ids("marked"), ["i-also-expired", "i-tagged"]);
    assert_eq!(env.calls_of("DescribeInstances"), 1, "one read by id for the region");
    assert_eq!(env.instance("cn-hangzhou", "i-tagged").await.unwrap().tags.get("janitor:last-event"), Some("evt-b"));

    // Redelivered as a whole: every instance recognises one of its events.
    let again = env.event_run("batch.json", &batch, &day(0.0), &["--apply"]).await;
    assert_eq!(again.outcome("i-tagged"), "duplicate");
    assert_eq!(again.outcome("i-also-expired"), "duplicate");
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_apply_to_event_runs_too() {
    let env = Env::start(&fleet()).await;
    let strict = POLICY.replace("max_releases_per_run: 10", "max_releases_per_run: 1").replace("grace: 3d", "grace: 0");
    let event = env.write(
        "e.json",
        &json!([tag_event("evt-a", &["i-tagged"]), tag_event("evt-b", &["i-also-expired"])]).to_string(),
    );
    let run = env.run_at(&day(0.0), &strict, &["--apply", "--event", event.to_str().unwrap()]).await;
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.outcome("i-tagged"), "held");
    assert!(run.summary["limit_breach"]["reason"].as_str().unwrap().contains("above max_releases_per_run 1"));
    assert_eq!(env.calls_of("DeleteInstances"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keep_tag_event_unmarks_at_once() {
    let env = Env::start(&fleet()).await;
    env.event_run("e1.json", &tag_event("evt-1", &["i-tagged"]), &day(0.0), &["--apply"]).await;
    env.owner_tags("cn-hangzhou", "i-tagged", &[("janitor:keep", "true")]).await;
    let run = env.event_run("e2.json", &tag_event("evt-2", &["i-tagged"]), &day(0.1), &["--apply"]).await;
    assert_eq!(run.outcome("i-tagged"), "unmarked");
    let tags = env.instance("cn-hangzhou", "i-tagged").await.unwrap().tags;
    assert!(!tags.contains_key("janitor:release-after"));
    assert_eq!(tags.get("janitor:last-event"), Some("evt-2"));
    assert_eq!(env.listings(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_runs_as_a_dry_run() {
    // The samples in events/ name instances by the ids used below; Lambda/FC runtime tests feed them all too.
    let env = Env::start(&inventory(vec![
        ecs("i-bp1tagged0000000001", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-24")]),
        ecs("i-bp1stopped000000001", "cn-hangzhou", "Stopped", "PostPaid", &[]),
        ecs(
            "i-bp1keep00000000001",
            "cn-hangzhou",
            "Stopped",
            "PostPaid",
            &[("janitor:release-after", "2026-11-26T00:00:00Z")],
        ),
    ]))
    .await;
    // The manual samples narrow to ap-southeast-1 and r-kvstore, which the policy must cover.
    let policy = POLICY
        .replace("max_release_percent: 25", "max_release_percent: 100")
        .replace("regions: [cn-hangzhou]", "regions: [cn-hangzhou, ap-southeast-1]")
        .replace("products: [ecs]", "products: [ecs, r-kvstore]");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let run = env.run_at(&day(0.0), &policy, &["--event", path.to_str().unwrap()]).await;
        assert_eq!(run.code, 0, "{}: {}", path.display(), run.stderr);
        assert_eq!(run.summary["mode"], "dry-run", "{}", path.display());
        assert!(run.ids("released").is_empty());
        seen += 1;
    }
    assert!(seen >= 8, "{seen}");
    assert!(env.sim.release_calls().is_empty());
    assert_eq!(env.calls_of("TagResources"), 0, "a dry run writes no tag");
    // The tag sample asks for a mark; a replayed batch of two tag calls unmarks the stray mark.
    let t = env.write("t.json", include_str!("../../events/alibaba-actiontrail-tag.json"));
    assert_eq!(
        env.run_at(&day(0.0), &policy, &["--event", t.to_str().unwrap()]).await.outcome("i-bp1tagged0000000001"),
        "would_mark"
    );
    let b = env.write("b.json", include_str!("../fixtures/events/actiontrail-batch.json"));
    assert_eq!(
        env.run_at(&day(0.0), &policy, &["--event", b.to_str().unwrap()]).await.outcome("i-bp1keep00000000001"),
        "would_unmark"
    );
}

trait Tap {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

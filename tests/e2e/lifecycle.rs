//! The release lifecycle end to end: mark → notify → grace → release, unmarks, auto-release times and release
//! windows, with the real binary against the emulator and days passing through `JANITOR_NOW` and the emulator clock.

use crate::support::*;
use serde_json::json;

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [ecs]
protect:
  tags: { "janitor:keep": "true" }
notify: { owner_tag: owner }
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 3d
"#;

fn inv() -> serde_json::Value {
    inventory(vec![
        ecs("i-exp", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01"), ("owner", "alice")]),
        ecs("i-future", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2027-06-01"), ("owner", "bob")]),
        ecs("i-plain", "cn-hangzhou", "Stopped", "PostPaid", &[]),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn mark_on_day_0_nothing_on_day_2_release_on_day_4() {
    let env = Env::start(&inv()).await;

    // Day 0, dry run: what would be marked, and no tag written.
    let dry = env.run_at(&day(0.0), POLICY, &[]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.outcome("i-exp"), "would_mark");
    assert_eq!(env.calls_of("TagResources"), 0);

    // Day 0, apply: marked with a deadline three days out, owner told, nothing released.
    let run = env.run_at(&day(0.0), POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.outcome("i-exp"), "marked");
    assert_eq!(run.outcome("i-future"), "kept");
    assert_eq!(run.ids("marked"), ["i-exp"]);
    assert_eq!(run.entry("i-exp")["facts"]["release_after"], "2026-11-28T12:00:00Z");
    assert!(run.entry("i-exp")["message"]
        .as_str()
        .unwrap()
        .contains("marked for release after 2026-11-28T12:00:00Z (rule expired-by-tag, grace 3d)"));
    assert_eq!(env.calls_of("DeleteInstances"), 0, "not even a dry run: nothing is due");
    let tag_calls = env.calls_with("TagResources", "ResourceId.1", "i-exp");
    assert_eq!(tag_calls.len(), 1);
    let p = &tag_calls[0].params;
    assert_eq!((p["ResourceType"].as_str(), p["RegionId"].as_str()), ("instance", "cn-hangzhou"));
    let tags = env.instance("cn-hangzhou", "i-exp").await.unwrap().tags;
    assert_eq!(tags.get("janitor:release-after"), Some("2026-11-28T12:00:00Z"));
    assert_eq!(tags.get("janitor:rule"), Some("expired-by-tag"));
    assert_eq!(run.summary["owners"]["alice"][0]["outcome"], "marked");
    assert_eq!(run.summary["owners"]["alice"][0]["release_after"], "2026-11-28T12:00:00Z");
    assert!(run.summary["owners"].get("bob").is_none(), "bob has nothing to hear about");

    // Day 2: still marked, deadline ahead: nothing changes, nothing is called.
    let tags_before = env.calls_of("TagResources");
    let run = env.run_at(&day(2.0), POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.outcome("i-exp"), "waiting");
    assert!(run.entry("i-exp")["message"]
        .as_str()
        .unwrap()
        .contains("released after 2026-11-28T12:00:00Z (1d from now)"));
    assert_eq!(env.calls_of("TagResources"), tags_before);
    assert_eq!(env.calls_of("DeleteInstances"), 0);

    // Day 4: the deadline has passed and it still matches: dry run, then release.
    let run = env.run_at(&day(4.0), POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.outcome("i-exp"), "released");
    assert_eq!(env.released_ids(), ["i-exp"]);
    assert_eq!(run.summary["owners"]["alice"][0]["outcome"], "released");
    assert!(env.instance("cn-hangzhou", "i-exp").await.is_none());
    assert_eq!(env.sim.instance_ids("ecs"), ["i-future", "i-plain"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keep_tag_unmarks_and_the_owner_is_told() {
    let env = Env::start(&inv()).await;
    assert_eq!(env.run_at(&day(0.0), POLICY, &["--apply"]).await.outcome("i-exp"), "marked");

    env.owner_tags("cn-hangzhou", "i-exp", &[("janitor:keep", "true")]).await;
    let dry = env.run_at(&day(1.0), POLICY, &[]).await;
    assert_eq!(dry.outcome("i-exp"), "would_unmark");
    assert_eq!(env.calls_of("UntagResources"), 0);

    let run = env.run_at(&day(1.0), POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.outcome("i-exp"), "unmarked");
    assert_eq!(run.ids("unmarked"), ["i-exp"]);
    let message = run.entry("i-exp")["message"].as_str().unwrap().to_string();
    assert!(
        message
            .contains("mark removed (was: release after 2026-11-28T12:00:00Z): now protected by tag janitor:keep=true"),
        "{message}"
    );
    assert_eq!(run.summary["owners"]["alice"][0]["outcome"], "unmarked");
    let untag = env.calls_with("UntagResources", "ResourceId.1", "i-exp");
    assert_eq!(untag.len(), 1);
    let keys: Vec<&str> =
        untag[0].params.iter().filter(|(k, _)| k.starts_with("TagKey.")).map(|(_, v)| v.as_str()).collect();
    assert_eq!(keys, ["janitor:release-after", "janitor:rule", "janitor:mark"]);
    let tags = env.instance("cn-hangzhou", "i-exp").await.unwrap().tags;
    assert!(!tags.contains_key("janitor:release-after") && !tags.contains_key("janitor:rule"), "{tags:?}");

    // Long after the old deadline: protected, never released.
    let run = env.run_at(&day(10.0), POLICY, &["--apply"]).await;
    assert_eq!(run.outcome("i-exp"), "protected");
    assert!(env.sim.release_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn moving_the_expiry_date_later_unmarks_and_a_new_match_starts_a_new_grace() {
    let env = Env::start(&inv()).await;
    env.run_at(&day(0.0), POLICY, &["--apply"]).await;
    env.owner_tags("cn-hangzhou", "i-exp", &[("expire-at", "2026-12-31")]).await;
    let run = env.run_at(&day(1.0), POLICY, &["--apply"]).await;
    assert_eq!(run.outcome("i-exp"), "unmarked");
    assert!(run.entry("i-exp")["message"].as_str().unwrap().contains("no rule matches any more"));

    // The new date passes: a fresh mark with a fresh grace, not an immediate release.
    let run = env.run_at("2027-01-01T00:00:00Z", POLICY, &["--apply"]).await;
    assert_eq!(run.outcome("i-exp"), "marked");
    assert_eq!(run.entry("i-exp")["facts"]["release_after"], "2027-01-04T00:00:00Z");
    assert!(env.sim.release_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_mark_is_never_released() {
    let env = Env::start(&inventory(vec![ecs(
        "i-garbled",
        "cn-hangzhou",
        "Stopped",
        "PostPaid",
        &[("expire-at", "2026-11-01"), ("janitor:release-after", "next tuesday")],
    )]))
    .await;
    let run = env.run_at(&day(30.0), POLICY, &["--apply"]).await;
    assert_eq!(run.outcome("i-garbled"), "invalid");
    assert!(run.entry("i-garbled")["message"]
        .as_str()
        .unwrap()
        .contains("janitor:release-after=next tuesday cannot be trusted"));
    assert_eq!(env.calls_of("DeleteInstances"), 0);
    assert_eq!(env.calls_of("TagResources"), 0, "a garbled mark is reported, not rewritten");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mark_alone_never_makes_an_instance_eligible() {
    // Marked long ago, but no rule matches it (no expiry tag): the mark goes, nothing is released.
    let env = Env::start(&inventory(vec![ecs(
        "i-stray",
        "cn-hangzhou",
        "Stopped",
        "PostPaid",
        &[("janitor:release-after", "2026-01-01T00:00:00Z"), ("janitor:rule", "expired-by-tag")],
    )]))
    .await;
    let run = env.run_at(&day(0.0), POLICY, &["--apply"]).await;
    assert_eq!(run.outcome("i-stray"), "unmarked");
    assert!(env.sim.release_calls().is_empty());
    // And a policy cannot make the mark a filter.
    let sneaky =
        POLICY.replace("filters: { expire_at_tag: expire-at }", "filters: { tag_exists: [\"janitor:release-after\"] }");
    let run = env.run_at(&day(0.0), &sneaky, &["--apply"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("rules[0].filters.tag_exists") && run.stderr.contains("janitor's own tags"),
        "{}",
        run.stderr
    );
}

const AUTO: &str = r#"
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

#[tokio::test(flavor = "multi_thread")]
async fn auto_release_time_is_set_with_the_mark_and_cancelled_with_it() {
    let mut sub = ecs("i-sub", "cn-hangzhou", "Stopped", "PrePaid", &[("expire-at", "2026-11-01")]);
    sub["ExpiredTime"] = json!("2026-11-20T00:00Z");
    let env = Env::start(&inventory(vec![
        ecs("i-exp", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]),
        sub,
    ]))
    .await;

    let run = env.run_at(&day(0.0), AUTO, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.outcome("i-exp"), "marked");
    assert_eq!(run.outcome("i-sub"), "marked", "a subscription is marked too...");
    let set = env.calls_with("ModifyInstanceAutoReleaseTime", "InstanceId", "i-exp");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].params["AutoReleaseTime"], "2026-11-28T12:00:00Z");
    assert!(
        env.calls_with("ModifyInstanceAutoReleaseTime", "InstanceId", "i-sub").is_empty(),
        "...but only pay-as-you-go gets an auto-release time"
    );
    let inst = env.instance("cn-hangzhou", "i-exp").await.unwrap();
    assert_eq!(inst.extra.get("auto_release_time"), Some("2026-11-28T12:00:00Z"));
    assert!(run.entry("i-exp")["message"]
        .as_str()
        .unwrap()
        .contains("the platform's auto-release time is set to 2026-11-28T12:00:00Z"));

    // Waiting runs do not set it again.
    env.run_at(&day(1.0), AUTO, &["--apply"]).await;
    assert_eq!(env.calls_of("ModifyInstanceAutoReleaseTime"), 1);

    // The owner opts out: the mark and the janitor's auto-release time both go.
    env.owner_tags("cn-hangzhou", "i-exp", &[("janitor:keep", "true")]).await;
    let run = env.run_at(&day(2.0), AUTO, &["--apply"]).await;
    assert_eq!(run.outcome("i-exp"), "unmarked");
    let calls = env.calls_with("ModifyInstanceAutoReleaseTime", "InstanceId", "i-exp");
    assert_eq!(calls.len(), 2);
    assert!(!calls[1].params.contains_key("AutoReleaseTime"), "cancelled by omitting the time: {:?}", calls[1].params);
    assert!(!env.instance("cn-hangzhou", "i-exp").await.unwrap().extra.contains_key("auto_release_time"));

    // Past the old deadline nothing releases it: neither the platform nor the janitor.
    env.run_at(&day(5.0), AUTO, &["--apply"]).await;
    assert!(env.instance("cn-hangzhou", "i-exp").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_auto_release_the_deadline_holds_even_if_the_janitor_never_runs_again() {
    let env = Env::start(&inventory(vec![ecs(
        "i-exp",
        "cn-hangzhou",
        "Stopped",
        "PostPaid",
        &[("expire-at", "2026-11-01")],
    )]))
    .await;
    assert_eq!(env.run_at(&day(0.0), AUTO, &["--apply"]).await.outcome("i-exp"), "marked");
    let t = chrono::DateTime::parse_from_rfc3339(&day(3.5)).unwrap().with_timezone(&chrono::Utc);
    env.sim.set_clock(Some(t));
    assert!(env.instance("cn-hangzhou", "i-exp").await.is_none(), "the platform released it at the deadline");
    assert!(env.sim.instance_ids("ecs").is_empty());
    assert!(env.sim.release_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_release_time_set_by_the_owner_is_left_alone() {
    let mut own =
        ecs("i-own", "cn-hangzhou", "Stopped", "PostPaid", &[("janitor:release-after", "2026-11-20T00:00:00Z")]);
    own["AutoReleaseTime"] = json!("2027-01-01T00:00Z");
    let env = Env::start(&inventory(vec![own])).await;
    let run = env.run_at(&day(0.0), AUTO, &["--apply"]).await;
    assert_eq!(run.outcome("i-own"), "unmarked");
    assert!(run.entry("i-own")["message"]
        .as_str()
        .unwrap()
        .contains("auto-release time 2027-01-01T00:00:00Z was not set by the janitor"));
    assert_eq!(env.calls_of("ModifyInstanceAutoReleaseTime"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_mark_is_a_failure_and_nothing_is_released() {
    let mut inv = inv();
    inv["faults"] = json!([{"action": "TagResources", "code": "Forbidden.RAM", "status": 403}]);
    let env = Env::start(&inv).await;
    let run = env.run_at(&day(0.0), POLICY, &["--apply"]).await;
    assert_eq!(run.code, 3, "a failed mark makes the run degraded: {}", run.stdout);
    assert_eq!(run.outcome("i-exp"), "failed");
    assert_eq!(run.entry("i-exp")["code"], "Forbidden.RAM");
    assert!(run.entry("i-exp")["message"].as_str().unwrap().starts_with("marking failed"));
    assert!(run.summary["owners"].get("alice").is_none(), "an owner is never told of a mark that was not written");
    // The next day the mark is attempted again; still nothing is released without it.
    let run = env.run_at(&day(4.0), POLICY, &["--apply"]).await;
    assert_eq!(run.outcome("i-exp"), "failed");
    assert_eq!(env.calls_of("DeleteInstances"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_new_marks_mark_nothing() {
    let many: Vec<_> = (0..5)
        .map(|i| ecs(&format!("i-{i}"), "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]))
        .collect();
    let env = Env::start(&inventory(many)).await;
    let strict = POLICY.replace("max_releases_per_run: 10", "max_releases_per_run: 3");
    let run = env.run_at(&day(0.0), &strict, &["--apply"]).await;
    assert_eq!(run.code, 3);
    assert_eq!(run.outcome("i-0"), "held");
    assert!(run.summary["limit_breach"]["reason"]
        .as_str()
        .unwrap()
        .contains("5 instances to mark, above max_releases_per_run 3: nothing marked"));
    assert_eq!(env.calls_of("TagResources"), 0);
}

const WINDOWED: &str = r#"
regions: [cn-hangzhou]
products: [ecs]
limits: { max_release_percent: 100 }
window: { cron: "0 0 2 * * Mon-Fri", duration: 4h, tz: Asia/Shanghai }
rules:
  - name: expired-now
    filters: { expire_at_tag: expire-at }
    grace: 0
  - name: ttl
    filters: { ttl_tag: ttl }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_window_releases_nothing_but_marks_happen() {
    let env = Env::start(&inventory(vec![
        ecs("i-due", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]),
        ecs("i-ttl", "cn-hangzhou", "Stopped", "PostPaid", &[("ttl", "7d")]),
    ]))
    .await;
    // NOW is Wednesday 20:00 in Shanghai: the 02:00–06:00 window is closed.
    let run = env.run_at(&day(0.0), WINDOWED, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.outcome("i-due"), "outside_window");
    let message = run.entry("i-due")["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(
            "outside the release window 0 0 2 * * Mon-Fri (Asia/Shanghai) for 4h; next opening 2026-11-25T18:00:00Z"
        ),
        "{message}"
    );
    assert_eq!(run.outcome("i-ttl"), "marked", "marks happen outside the window");
    assert_eq!(env.calls_of("DeleteInstances"), 0, "no release call, not even a dry run");
    assert!(!run.stdout.contains("\"limit_breach\""));

    // Thursday 03:00 in Shanghai (2026-11-25T19:00Z): the window is open.
    let run = env.run_at("2026-11-25T19:00:00Z", WINDOWED, &["--apply"]).await;
    assert_eq!(run.outcome("i-due"), "released");
    assert_eq!(run.outcome("i-ttl"), "waiting");
    assert_eq!(env.released_ids(), ["i-due"]);

    // Sunday 03:00 in Shanghai, the ttl mark is due (since Saturday 20:00): closed on weekends.
    let run = env.run_at("2026-11-28T19:00:00Z", WINDOWED, &["--apply"]).await;
    assert_eq!(run.outcome("i-ttl"), "outside_window");
    assert!(run.entry("i-ttl")["message"].as_str().unwrap().contains("next opening 2026-11-29T18:00:00Z"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_windows_and_graces_name_the_field_and_call_nothing() {
    let env = Env::start(&inv()).await;
    for (policy, path) in [
        (WINDOWED.replace("Mon-Fri", "1-5"), "window.cron"),
        (WINDOWED.replace("Asia/Shanghai", "Asia/Atlantis"), "window.tz"),
        (WINDOWED.replace("duration: 4h", "duration: 0s"), "window.duration"),
        (WINDOWED.replace("grace: 0", "grace: soon"), "rules[0].grace"),
        (WINDOWED.replace("grace: 0", "grace: 0\n    auto_release: true"), "rules[0].auto_release"),
    ] {
        let run = env.run(&policy, &["--apply"]).await;
        assert_eq!(run.code, 1, "{policy}");
        assert!(run.stderr.contains(path), "{path}: {}", run.stderr);
    }
    assert!(env.sim.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mark_that_fails_for_one_instance_fails_only_that_one() {
    // i-full already carries 20 tags: the tag call answers HTTP 200 with a FailedResources entry for it alone.
    let mut full_tags: Vec<(String, String)> = (0..19).map(|i| (format!("k{i}"), "v".to_string())).collect();
    full_tags.push(("expire-at".into(), "2026-11-01".into()));
    let full_refs: Vec<(&str, &str)> = full_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = Env::start(&inventory(vec![
        ecs("i-full", "cn-hangzhou", "Stopped", "PostPaid", &full_refs),
        ecs("i-ok", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]),
    ]))
    .await;
    let run = env.run_at(&day(0.0), POLICY, &["--apply"]).await;
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(env.calls_of("TagResources"), 2, "one call each: every mark is signed for its own instance");
    assert_eq!(run.outcome("i-ok"), "marked");
    assert_eq!(run.outcome("i-full"), "failed");
    assert_eq!(run.entry("i-full")["code"], "InvalidTagCount");
    assert_eq!(run.summary["failures"][0]["id"], "i-full");
}

#[tokio::test(flavor = "multi_thread")]
/// Issue 12 item 13: ECS tag calls fail as a whole (one vanished instance failed the marks of up to 49 others);
/// a failed batch is repeated id by id, so only the vanished one fails.
async fn the_ecs_adapter_batches_by_fifty_and_splits_a_batch_that_fails_as_a_whole() {
    use aliyun_janitor::products::{Ecs, Tagging};
    let many: Vec<_> = (0..120).map(|i| ecs(&format!("i-{i:03}"), "cn-hangzhou", "Stopped", "PostPaid", &[])).collect();
    let env = Env::start(&inventory(many)).await;
    let tags = std::collections::BTreeMap::from([("k".to_string(), "v".to_string())]);
    let mut ids: Vec<String> = (0..120).map(|i| format!("i-{i:03}")).collect();
    ids.push("i-gone".into());
    let report = Ecs.tag(&env.client(), "cn-hangzhou", &ids, &tags).await.unwrap();
    assert_eq!(report.failed.keys().collect::<Vec<_>>(), ["i-gone"]);
    assert_eq!(report.failed["i-gone"].0, "InvalidResourceId.NotFound");
    assert_eq!(env.calls_of("TagResources"), 3 + 21, "50 + 50 + 21, then the failed 21 one by one");
    assert_eq!(report.request_ids.len(), 2 + 20);
    assert_eq!(
        env.instance("cn-hangzhou", "i-119").await.unwrap().tags.get("k"),
        Some("v"),
        "its batch-mates are tagged"
    );
    let report = Ecs.untag(&env.client(), "cn-hangzhou", &ids[..2], &["k".to_string()]).await.unwrap();
    assert!(report.failed.is_empty());
    assert!(env.instance("cn-hangzhou", "i-000").await.unwrap().tags.is_empty());
    assert_eq!(env.instance("cn-hangzhou", "i-002").await.unwrap().tags.get("k"), Some("v"));
}

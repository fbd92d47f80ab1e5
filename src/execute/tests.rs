//! The executor on a fake product (no HTTP): it carries out the plan's changes, and only those.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::discovery::Billing;
use crate::inventory::Instance;
use crate::lifecycle::RELEASE_AFTER_TAG;
use crate::limits::{self, LimitScope};
use crate::plan::{Planner, RunMode};
use crate::policy::Policy;
use crate::products::fake::{self, Fake};

const POLICY: &str = r#"
regions: [cn-hangzhou]
limits: { max_releases_per_run: 1, max_release_percent: 100 }
rules:
  - name: expired
    filters: { expire_at_tag: expire-at }
    grace: 3d
    auto_release: true
"#;

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25 + d, 12, 0, 0).unwrap()
}

fn marked(id: &str) -> Instance {
    fake::marked(id, &[("expire-at", "2026-11-01")], "expired", "2026-11-28T12:00:00Z")
}

/// Plans `listed` at `now`, lets the fake answer `fresh` from then on, runs the limits and the executor.
async fn run(mode: RunMode, now: DateTime<Utc>, listed: Vec<Instance>, fresh: Vec<Instance>) -> (Plan, Vec<String>) {
    let policy = Policy::from_yaml(POLICY, "execute-unit.yaml").unwrap_or_else(|e| panic!("{e}"));
    let fake = Arc::new(Fake::with(fresh));
    let products: Vec<Arc<dyn Product>> = vec![fake.clone()];
    let key = fake::mark_key();
    let mut planner = Planner::new(&policy, now, mode, None, &Billing::Off);
    planner.mark_key = Some(&key);
    let mut plan = Plan {
        run_id: "run-1".into(),
        account_id: "1234567890123456".into(),
        mode,
        mode_reason: String::new(),
        trigger: "test".into(),
        now,
        scanned: listed.len(),
        population: listed.len(),
        entries: listed.iter().map(|i| planner.decide(fake.as_ref(), i)).collect(),
        skipped_scopes: Vec::new(),
        ignored: Vec::new(),
        limit_breach: None,
        settled: Default::default(),
    };
    limits::hold(&mut plan, &policy.limits, LimitScope::Fleet);
    execute(&mut plan, &fake::client(), &products, &planner, crate::products::Poll::default()).await;
    (plan, fake.calls())
}

/// Like [`run`] in apply mode at day 4, with a fake the test has set up (scripted release answers).
async fn run_fake(fake: Fake) -> (Plan, Vec<String>) {
    let policy = Policy::from_yaml(POLICY, "execute-unit.yaml").unwrap_or_else(|e| panic!("{e}"));
    let listed = fake.now.lock().map(|n| n.clone()).unwrap_or_default();
    let fake = Arc::new(fake);
    let products: Vec<Arc<dyn Product>> = vec![fake.clone()];
    let key = fake::mark_key();
    let mut planner = Planner::new(&policy, day(4), RunMode::Apply, None, &Billing::Off);
    planner.mark_key = Some(&key);
    let mut plan = Plan {
        run_id: "run-1".into(),
        account_id: "1234567890123456".into(),
        mode: RunMode::Apply,
        mode_reason: String::new(),
        trigger: "test".into(),
        now: day(4),
        scanned: listed.len(),
        population: listed.len(),
        entries: listed.iter().map(|i| planner.decide(fake.as_ref(), i)).collect(),
        skipped_scopes: Vec::new(),
        ignored: Vec::new(),
        limit_breach: None,
        settled: Default::default(),
    };
    limits::hold(&mut plan, &policy.limits, LimitScope::Fleet);
    execute(&mut plan, &fake::client(), &products, &planner, crate::products::Poll::default()).await;
    (plan, fake.calls())
}

fn scripted(lost: Vec<fake::LostRelease>) -> Fake {
    let f = Fake::with(vec![marked("f-1")]);
    *f.lost_releases.lock().unwrap() = lost;
    f
}

#[tokio::test(start_paused = true)]
async fn a_lost_release_answer_is_settled_by_a_re_read() {
    // The release acted, its answer was lost: the re-read finds it gone. One release call.
    let (plan, calls) = run_fake(scripted(vec![fake::LostRelease { acts: true, then: None }])).await;
    let e = &plan.entries[0];
    assert_eq!(e.outcome, Outcome::Released, "{e:?}");
    assert!(e.decision.facts.get(RECONCILED_FACT).is_some_and(|r| r.contains("confirmed by re-read: gone")));
    assert_eq!(calls, ["Get f-1", "Release f-1", "Get f-1"]);

    // It did not act, and the re-read shows the same instance, decided the same: sent again.
    let (plan, calls) = run_fake(scripted(vec![fake::LostRelease::default()])).await;
    assert_eq!(plan.entries[0].outcome, Outcome::Released, "{:?}", plan.entries[0]);
    assert_eq!(calls, ["Get f-1", "Release f-1", "Get f-1", "Release f-1"]);

    // It did not act, and the instance changed meanwhile (the owner moved the mark's deadline): not released, not sent again,
    // and both readings named.
    let mut kept = marked("f-1");
    kept.tags.insert(RELEASE_AFTER_TAG, "2026-12-05T12:00:00Z");
    let (plan, calls) = run_fake(scripted(vec![fake::LostRelease { acts: false, then: Some(vec![kept]) }])).await;
    let e = &plan.entries[0];
    assert_eq!(e.outcome, Outcome::Skipped, "{e:?}");
    let message = e.message.as_deref().unwrap_or_default();
    assert!(message.contains("listed as") && message.contains("now"), "{message}");
    assert_eq!(calls, ["Get f-1", "Release f-1", "Get f-1"]);

    // The re-read fails: never a second call.
    let mut f = scripted(vec![fake::LostRelease { acts: true, then: None }]);
    f.get_fails_from = Some(2);
    let (plan, calls) = run_fake(f).await;
    let e = &plan.entries[0];
    assert_eq!(e.outcome, Outcome::Failed, "{e:?}");
    assert!(e.message.as_deref().unwrap_or_default().contains("not sent again"), "{e:?}");
    assert_eq!(calls, ["Get f-1", "Release f-1", "Get f-1"]);

    // Unchanged every time: sent again only within the retry schedule (the default: 4 attempts), then failed.
    let lost = (0..10).map(|_| fake::LostRelease::default()).collect();
    let (plan, calls) = run_fake(scripted(lost)).await;
    assert_eq!(plan.entries[0].outcome, Outcome::Failed);
    let releases = calls.iter().filter(|c| c.starts_with("Release")).count();
    let max = fake::client().retry_schedule().max_attempts as usize;
    assert_eq!(releases, max, "{calls:?}");
}

#[tokio::test]
async fn a_pre_flight_read_that_differs_only_in_its_mark_releases_nothing() {
    let listed = marked("f-1");
    // Since the listing, the owner moved the mark's deadline a week out: every other field is the same.
    let mut moved = listed.clone();
    moved.tags.insert(RELEASE_AFTER_TAG, "2026-12-05T12:00:00Z");
    let (plan, calls) = run(RunMode::Apply, day(4), vec![listed], vec![moved]).await;
    let e = &plan.entries[0];
    assert_eq!(e.outcome, Outcome::Skipped, "{e:?}");
    assert!(e.message.as_deref().unwrap_or_default().contains("changed since listing (pre-flight)"), "{e:?}");
    assert_eq!(calls, ["Get f-1"], "the re-read, and no release");
}

#[tokio::test]
async fn an_unchanged_instance_is_released_after_its_pre_flight_and_only_in_apply_mode() {
    let listed = marked("f-1");
    let (plan, calls) = run(RunMode::Apply, day(4), vec![listed.clone()], vec![listed.clone()]).await;
    assert_eq!(plan.entries[0].outcome, Outcome::Released);
    assert_eq!(calls, ["Get f-1", "Release f-1"]);
    let (plan, calls) = run(RunMode::DryRun, day(4), vec![listed.clone()], vec![listed]).await;
    assert_eq!(plan.entries[0].outcome, Outcome::WouldRelease);
    assert_eq!(calls, ["Get f-1"], "a product without a native dry run is proven by the re-read alone");
}

#[tokio::test]
async fn a_waiting_instance_whose_auto_release_would_be_set_counts_against_the_limits() {
    // Two waiting instances with no auto-release time: two changes against a limit of one. Both are held.
    let (a, b) = (marked("f-1"), marked("f-2"));
    let (plan, calls) = run(RunMode::Apply, day(1), vec![a.clone(), b.clone()], vec![a, b]).await;
    for e in &plan.entries {
        assert_eq!(e.outcome, Outcome::Held, "{e:?}");
        assert!(e.message.as_deref().unwrap_or_default().contains("to mark, above max_releases_per_run 1"), "{e:?}");
    }
    assert!(plan.limit_breach.is_some());
    assert!(calls.is_empty(), "a held change makes no call: {calls:?}");
}

#[tokio::test]
async fn a_mark_is_written_before_its_auto_release_time_and_a_failed_mark_sets_none() {
    let first = fake::instance("f-1", &[("expire-at", "2026-11-01")]);
    let (plan, calls) = run(RunMode::Apply, day(0), vec![first.clone()], vec![first.clone()]).await;
    assert_eq!(plan.entries[0].outcome, Outcome::Marked);
    assert_eq!(calls, ["TagResources f-1", "SetAutoRelease f-1"]);

    let policy = Policy::from_yaml(POLICY, "execute-unit.yaml").unwrap_or_else(|e| panic!("{e}"));
    let fake = Arc::new(Fake { failing: vec!["TagResources"], ..Fake::with(vec![first.clone()]) });
    let key = fake::mark_key();
    let mut planner = Planner::new(&policy, day(0), RunMode::Apply, None, &Billing::Off);
    planner.mark_key = Some(&key);
    let mut plan = Plan {
        run_id: "run-1".into(),
        account_id: "1234567890123456".into(),
        mode: RunMode::Apply,
        mode_reason: String::new(),
        trigger: "test".into(),
        now: day(0),
        scanned: 1,
        population: 1,
        entries: vec![planner.decide(fake.as_ref(), &first)],
        skipped_scopes: Vec::new(),
        ignored: Vec::new(),
        limit_breach: None,
        settled: Default::default(),
    };
    let products: Vec<Arc<dyn Product>> = vec![fake.clone()];
    execute(&mut plan, &fake::client(), &products, &planner, crate::products::Poll::default()).await;
    assert_eq!(plan.entries[0].outcome, Outcome::Failed);
    assert_eq!(fake.calls(), ["TagResources f-1"], "no auto-release time without the mark");
}

#[tokio::test]
async fn a_dry_run_writes_no_tag() {
    let first = fake::instance("f-1", &[("expire-at", "2026-11-01")]);
    let (plan, calls) = run(RunMode::DryRun, day(0), vec![first.clone()], vec![first]).await;
    assert_eq!(plan.entries[0].outcome, Outcome::WouldMark);
    assert!(calls.is_empty(), "{calls:?}");
}

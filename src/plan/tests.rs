//! The one decision, on a fake product: rules and lifecycle together, and what the plan says will be sent.

use chrono::TimeZone;

use super::*;
use crate::lifecycle::{RELEASE_AFTER_TAG, RULE_TAG};
use crate::products::fake::{self, Fake, AUTO_RELEASE_EXTRA};

const POLICY: &str = r#"
regions: [cn-hangzhou]
protect:
  tags: { "janitor:keep": "true" }
notify: { owner_tag: owner }
rules:
  - name: expired
    filters: { expire_at_tag: expire-at }
    grace: 3d
    auto_release: true
  - name: ttl-now
    filters: { ttl_tag: ttl }
    grace: 0
"#;

fn policy() -> Policy {
    Policy::from_yaml(POLICY, "plan-unit.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25 + d, 12, 0, 0).unwrap()
}

fn decide(mode: RunMode, now: DateTime<Utc>, instance: &Instance) -> Entry {
    let policy = policy();
    let key = fake::mark_key();
    let mut planner = Planner::new(&policy, now, mode, None, &Billing::Off);
    planner.mark_key = Some(&key);
    planner.decide(&Fake::default(), instance)
}

#[test]
fn a_first_match_is_marked_with_the_tags_and_the_auto_release_time_it_will_send() {
    let i = fake::instance("f-1", &[("expire-at", "2026-11-01"), ("owner", "alice")]);
    let e = decide(RunMode::Apply, day(0), &i);
    assert_eq!(e.outcome, Outcome::Marked);
    assert_eq!(e.owner.as_deref(), Some("alice"));
    assert_eq!(e.release_after, Some(day(3)));
    match &e.change {
        Some(Change::Mark { release_after, tags, auto_release }) => {
            assert_eq!(*release_after, day(3));
            assert_eq!(tags[RELEASE_AFTER_TAG], "2026-11-28T12:00:00Z");
            assert_eq!(tags[RULE_TAG], "expired");
            assert_eq!(*auto_release, Some(day(3)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(decide(RunMode::DryRun, day(0), &i).outcome, Outcome::WouldMark, "the same change, not sent");
}

#[test]
fn a_mark_whose_deadline_passed_is_released_and_one_ahead_waits() {
    let marked = fake::marked("f-1", &[("expire-at", "2026-11-01")], "expired", "2026-11-28T12:00:00Z");
    let due = decide(RunMode::Apply, day(4), &marked);
    assert_eq!(due.outcome, Outcome::WouldRelease);
    assert!(matches!(due.change, Some(Change::Release { .. })), "{:?}", due.change);

    let mut waiting = marked.clone();
    waiting.extra.insert(AUTO_RELEASE_EXTRA, "2026-11-28T12:00:00Z");
    let e = decide(RunMode::Apply, day(1), &waiting);
    assert_eq!((e.outcome, e.change), (Outcome::Waiting, None), "its auto-release time is already the deadline");
    let e = decide(RunMode::Apply, day(1), &marked);
    assert_eq!(e.outcome, Outcome::Waiting);
    assert_eq!(e.change, Some(Change::SetAutoRelease { at: day(3) }), "a missing auto-release time is repaired");
}

#[test]
fn a_mark_that_no_longer_matches_is_removed_and_only_the_janitors_auto_release_is_cancelled() {
    let mut i = fake::marked("f-1", &[("janitor:keep", "true")], "expired", "2026-11-28T12:00:00Z");
    i.extra.insert(AUTO_RELEASE_EXTRA, "2026-11-28T12:00:00Z");
    let e = decide(RunMode::Apply, day(1), &i);
    assert_eq!(e.outcome, Outcome::Unmarked);
    assert!(
        matches!(&e.change, Some(Change::Unmark { cancel_auto_release: true, remove_tags, .. }) if remove_tags.len() == 3)
    );
    i.extra.insert(AUTO_RELEASE_EXTRA, "2027-01-01T00:00:00Z");
    let e = decide(RunMode::Apply, day(1), &i);
    assert!(matches!(&e.change, Some(Change::Unmark { cancel_auto_release: false, .. })), "{:?}", e.change);
    assert!(e.message.unwrap_or_default().contains("was not set by the janitor"));
}

#[test]
fn a_charge_type_the_api_cannot_release_is_manual_and_sends_nothing() {
    let mut i = fake::instance("f-1", &[("ttl", "1h")]);
    i.created_at = Some(day(0) - chrono::Duration::days(2));
    i.charge_type = ChargeType::Subscription;
    i.expires_at = Some(day(0) - chrono::Duration::days(1));
    let e = decide(RunMode::Apply, day(0), &i);
    assert_eq!((e.outcome, e.change), (Outcome::Manual, None));
}

#[test]
fn the_plan_serialises_with_the_change_and_typed_fields() {
    let i = fake::instance("f-1", &[("expire-at", "2026-11-01"), ("owner", "alice")]);
    let e = decide(RunMode::DryRun, day(0), &i);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["outcome"], "would_mark");
    assert_eq!(json["change"]["kind"], "mark");
    assert_eq!(json["change"]["tags"][RELEASE_AFTER_TAG], "2026-11-28T12:00:00Z");
    assert_eq!(json["release_after"], "2026-11-28T12:00:00Z");
    assert_eq!(json["owner"], "alice");
    assert_eq!(json["rule"], "expired");
    assert_eq!(e.key().to_string(), "fake:cn-hangzhou/f-1");
    assert_eq!(serde_json::to_value(RunMode::DryRun).unwrap(), "dry-run");
}

/// Issue 12 item 11: a billing method the adapter does not know is never released.
#[test]
fn an_unknown_charge_type_is_skipped() {
    let mut i = fake::instance("f-1", &[("expire-at", "2026-11-01")]);
    i.charge_type = ChargeType::Unknown;
    let e = decide(RunMode::Apply, day(0), &i);
    assert_eq!((e.outcome, e.change), (Outcome::Skipped, None));
    assert!(matches!(&e.decision.verdict, Verdict::Skip { reason } if reason.contains("unknown charge type")));
}

/// Issue 12 item 3: a mark anyone with tag rights wrote (no MAC, or not the janitor's) skipped the grace.
#[test]
fn a_hand_written_mark_is_replaced_not_released() {
    let forged = fake::instance(
        "f-1",
        &[("expire-at", "2026-11-01"), (RELEASE_AFTER_TAG, "2000-01-01T00:00:00Z"), (RULE_TAG, "expired")],
    );
    let e = decide(RunMode::Apply, day(4), &forged);
    assert_eq!(e.outcome, Outcome::Marked, "{e:?}");
    assert!(e.message.as_deref().unwrap_or_default().contains("mark not written by the janitor: replaced"));
    assert!(
        matches!(&e.change, Some(Change::Mark { release_after, .. }) if *release_after == day(4) + chrono::Duration::days(3)),
        "a fresh grace"
    );
}

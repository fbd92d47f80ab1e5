//! The release lifecycle: mark → notify → grace → release, as a pure decision.
//!
//! On its first match an instance is not released but *marked*: the janitor tags it
//! `janitor:release-after=<RFC 3339 UTC>` (and `janitor:rule=<rule>`), and the summary tells its owner. A later
//! run releases it only if it still matches the same rule, the deadline has passed and the release window (if
//! any) is open. If it no longer matches (the expiry tag was removed or moved, a keep tag appeared, it became
//! protected), the mark is removed and the owner told. A rule with `grace: 0` releases at once, without a mark.
//!
//! A mark is verifiable: `janitor:mark` holds a keyed MAC (HMAC-SHA256, the deploy-time secret
//! `JANITOR_MARK_KEY`) over the instance's product, region and id, the rule and the deadline. Tag rights are often
//! broader than delete rights, so a mark the janitor cannot verify as its own (hand-written, copied from another
//! instance, or read without the key) is never a reason to release: it is treated as a first match and replaced.
//!
//! The mark is only a deadline: it never makes an instance eligible (the policy refuses rules that filter on
//! these tags), and a mark that cannot be read means "never release; report".

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};

use crate::inventory::Tags;
use crate::plan::{Decision, Verdict};
use crate::policy::WindowState;

/// The deadline after which a marked instance may be released (RFC 3339, UTC).
pub const RELEASE_AFTER_TAG: &str = "janitor:release-after";
/// The rule the instance was marked under; a different rule matching later starts a new grace.
pub const RULE_TAG: &str = "janitor:rule";
/// The id of the last event an event-triggered run acted on for this instance (duplicate deliveries).
pub const LAST_EVENT_TAG: &str = "janitor:last-event";
/// The MAC that proves a mark is the janitor's own (`v1:` + base64url of HMAC-SHA256).
pub const MARK_MAC_TAG: &str = "janitor:mark";
/// The janitor's record of a two-step release it started (Kafka: written before `ReleaseInstance`), so a later
/// run finishes (`DeleteInstance`) only what the janitor itself released. The value is the release time.
pub const RELEASED_TAG: &str = "janitor:released";
/// Tags only the janitor writes. Rules may not filter on them; the owner tag may not be one of them.
pub const RESERVED_TAGS: [&str; 5] = [RELEASE_AFTER_TAG, RULE_TAG, LAST_EVENT_TAG, MARK_MAC_TAG, RELEASED_TAG];
/// The mark tags an unmark removes.
pub const MARK_TAGS: [&str; 3] = [RELEASE_AFTER_TAG, RULE_TAG, MARK_MAC_TAG];

/// The key of the marks' MAC (`JANITOR_MARK_KEY`, a deploy-time secret of at least 16 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct MarkKey(Vec<u8>);

impl std::fmt::Debug for MarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkKey(<redacted>)")
    }
}

/// The environment variable holding the mark key.
pub const MARK_KEY_ENV: &str = "JANITOR_MARK_KEY";

impl MarkKey {
    /// A key from its configured text (used as bytes, as written).
    pub fn new(text: &str) -> Result<MarkKey, String> {
        if text.trim().len() < 16 {
            return Err(format!("{MARK_KEY_ENV} must be at least 16 characters (a generated secret)"));
        }
        Ok(MarkKey(text.trim().as_bytes().to_vec()))
    }

    /// `v1:` + base64url(HMAC-SHA256(key, "v1\n{product}\n{region}\n{id}\n{rule}\n{deadline}")).
    pub fn mac(&self, who: &MarkOf<'_>, rule: &str, release_after: DateTime<Utc>) -> String {
        use base64::Engine;
        use hmac::{KeyInit, Mac};
        let message =
            format!("v1\n{}\n{}\n{}\n{rule}\n{}", who.product, who.region, who.id, format_time(release_after));
        let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0) {
            Ok(m) => m,
            // HMAC takes keys of any length; an error here would be a bug, and yields a MAC nothing verifies.
            Err(_) => return String::new(),
        };
        mac.update(message.as_bytes());
        format!("v1:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

/// The instance a mark belongs to (its MAC binds the mark to it: a mark copied elsewhere does not verify).
#[derive(Debug, Clone, Copy)]
pub struct MarkOf<'a> {
    pub product: &'a str,
    pub region: &'a str,
    pub id: &'a str,
}

/// True for the janitor's own tag keys (compared ignoring ASCII case, so no spelling slips through).
pub fn is_reserved_tag(key: &str) -> bool {
    RESERVED_TAGS.iter().any(|r| r.eq_ignore_ascii_case(key.trim()))
}

/// What an instance's tags say about an earlier mark.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    None,
    Set {
        release_after: DateTime<Utc>,
        rule: Option<String>,
    },
    /// A `janitor:release-after` tag whose value is not an RFC 3339 time.
    Unreadable {
        value: String,
    },
    /// A well-formed mark whose MAC is missing or wrong (or that was read without the key): not the janitor's.
    Unverified {
        release_after: DateTime<Utc>,
    },
}

/// Reads the mark from an instance's tags, verifying its MAC with `key` (without a key nothing verifies).
pub fn read_mark(tags: &Tags, key: Option<&MarkKey>, who: &MarkOf<'_>) -> Mark {
    let Some(value) = tags.get(RELEASE_AFTER_TAG) else {
        return Mark::None;
    };
    let Ok(t) = DateTime::parse_from_rfc3339(value.trim()) else {
        return Mark::Unreadable { value: value.to_string() };
    };
    let release_after = t.with_timezone(&Utc);
    let rule = tags.get(RULE_TAG).unwrap_or_default();
    // The MAC covers the deadline as the janitor writes it, so a re-spelled time does not verify either.
    let genuine = key.is_some_and(|k| {
        let written = tags.get(MARK_MAC_TAG).unwrap_or_default();
        !rule.is_empty()
            && format_time(release_after) == value
            && constant_time_eq(&k.mac(who, rule, release_after), written)
    });
    if genuine {
        Mark::Set { release_after, rule: Some(rule.to_string()) }
    } else {
        Mark::Unverified { release_after }
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The tags that mark `who` for release under `rule` at `release_after`, with the MAC when there is a key.
pub fn mark_tags(
    release_after: DateTime<Utc>,
    rule: &str,
    key: Option<&MarkKey>,
    who: &MarkOf<'_>,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (RELEASE_AFTER_TAG.to_string(), format_time(release_after)),
        (RULE_TAG.to_string(), rule.to_string()),
    ]);
    if let Some(k) = key {
        tags.insert(MARK_MAC_TAG.to_string(), k.mac(who, rule, release_after));
    }
    tags
}

/// RFC 3339 in UTC with seconds: `2026-11-28T12:00:00Z`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `now + grace`, rounded up to the whole minute: the platform's auto-release time has minute precision and
/// truncates, so a deadline with seconds would let it release up to a minute before the owner was told.
pub fn deadline(now: DateTime<Utc>, grace: Duration) -> Option<DateTime<Utc>> {
    let t = now.checked_add_signed(chrono::Duration::from_std(grace).ok()?)?;
    if t.second() == 0 && t.nanosecond() == 0 {
        return Some(t);
    }
    t.with_second(0)?.with_nanosecond(0)?.checked_add_signed(chrono::Duration::minutes(1))
}

/// True when an auto-release time (minute precision) is the one set for this mark.
pub fn is_auto_release_for(auto_release: DateTime<Utc>, release_after: DateTime<Utc>) -> bool {
    (auto_release - release_after).num_seconds().abs() < 60
}

/// Everything besides the instance that the decision depends on.
#[derive(Debug, Clone)]
pub struct Context {
    pub now: DateTime<Utc>,
    /// The matched rule's grace (ignored when nothing matched).
    pub grace: Duration,
    /// The release window that applies to the matched rule, at `now`.
    pub window: WindowState,
    /// The product can write tags (without tags there are no marks, so a grace cannot be honoured).
    pub can_tag: bool,
}

/// What to do with one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing to change: the evaluated outcome stands (kept, protected, skipped...).
    Leave,
    /// Eligible, deadline passed (or no grace), window open: go on to limits, dry run and release.
    Release,
    /// First match (or a match under a different rule than the mark's, or a mark the janitor cannot verify as its
    /// own: `replaced`): mark it for `release_after`.
    Mark { release_after: DateTime<Utc>, previous_rule: Option<String>, replaced: bool },
    /// Marked and still eligible, the deadline is ahead.
    Wait { release_after: DateTime<Utc> },
    /// Marked but no longer eligible: remove the mark (and the auto-release time the janitor set) and tell the owner.
    Unmark { why: String },
    /// Due for release, but the release window is closed.
    OutsideWindow { next: Option<DateTime<Utc>> },
    /// The rule asks for a grace but the product cannot be tagged: never released without warning.
    CannotMark { reason: String },
    /// A mark tag that cannot be read: never released, reported.
    Untrusted { reason: String },
}

/// The lifecycle step for one evaluated instance and its current mark.
pub fn decide(decision: &Decision, mark: &Mark, ctx: &Context) -> Action {
    if !decision.is_release() {
        return match mark {
            Mark::None => Action::Leave,
            // A product without tagging cannot have been marked by us; nothing is released either way.
            _ if !ctx.can_tag => Action::Leave,
            _ => Action::Unmark { why: no_longer_eligible(decision) },
        };
    }
    let rule = decision.rule.as_deref().unwrap_or("");
    let release_now = || match &ctx.window {
        WindowState::Closed { next } => Action::OutsideWindow { next: *next },
        _ => Action::Release,
    };
    let mark_now = |previous_rule: Option<String>, replaced: bool| {
        if ctx.grace.is_zero() {
            return release_now();
        }
        if !ctx.can_tag {
            return Action::CannotMark {
                reason: format!(
                    "rule {rule} asks for a {} grace, but the janitor cannot tag this product to mark it; write grace: 0 to release it without warning",
                    crate::policy::format_duration(ctx.grace)
                ),
            };
        }
        match deadline(ctx.now, ctx.grace) {
            Some(release_after) => Action::Mark { release_after, previous_rule, replaced },
            None => Action::Untrusted { reason: "the grace period ends beyond representable time".into() },
        }
    };
    match mark {
        Mark::Unreadable { value } => Action::Untrusted {
            reason: format!("mark {RELEASE_AFTER_TAG}={value} cannot be trusted (expected an RFC 3339 time): never released; fix or remove the tag"),
        },
        Mark::None => mark_now(None, false),
        // Never a reason to release: a fresh grace from now, and the owner told.
        Mark::Unverified { .. } => mark_now(None, true),
        Mark::Set { rule: Some(marked_rule), .. } if marked_rule != rule => mark_now(Some(marked_rule.clone()), false),
        Mark::Set { release_after, .. } if *release_after > ctx.now => Action::Wait { release_after: *release_after },
        Mark::Set { .. } => release_now(),
    }
}

/// Why a marked instance lost its mark, from its fresh decision.
fn no_longer_eligible(d: &Decision) -> String {
    match &d.verdict {
        Verdict::Protected { by } => format!("now protected by {by}"),
        Verdict::Skip { reason } => format!("can no longer be released: {reason}"),
        Verdict::Invalid { reason } => format!("cannot be trusted: {reason}"),
        Verdict::Keep => "no rule matches any more".into(),
        Verdict::Release { .. } => "eligible".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::products::ReleaseOptions;
    use chrono::TimeZone;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn decision(verdict: Verdict, rule: Option<&str>) -> Decision {
        Decision {
            product: "ecs".into(),
            region: "cn-hangzhou".into(),
            id: "i-1".into(),
            name: Default::default(),
            verdict,
            rule: rule.map(Into::into),
            facts: crate::plan::Facts::new(),
        }
    }

    fn eligible() -> Decision {
        decision(Verdict::Release { options: ReleaseOptions::default() }, Some("expired"))
    }

    fn ctx(now: &str) -> Context {
        Context { now: t(now), grace: Duration::from_secs(3 * 86_400), window: WindowState::Always, can_tag: true }
    }

    fn marked(at: &str, rule: Option<&str>) -> Mark {
        Mark::Set { release_after: t(at), rule: rule.map(String::from) }
    }

    #[test]
    fn day_0_marks_day_2_waits_day_4_releases() {
        let day0 = ctx("2026-11-25T12:00:00Z");
        let first = decide(&eligible(), &Mark::None, &day0);
        assert_eq!(
            first,
            Action::Mark { release_after: t("2026-11-28T12:00:00Z"), previous_rule: None, replaced: false }
        );
        let mark = marked("2026-11-28T12:00:00Z", Some("expired"));
        assert_eq!(
            decide(&eligible(), &mark, &ctx("2026-11-27T12:00:00Z")),
            Action::Wait { release_after: t("2026-11-28T12:00:00Z") }
        );
        assert_eq!(
            decide(&eligible(), &mark, &ctx("2026-11-28T12:00:00Z")),
            Action::Release,
            "the deadline itself is due"
        );
        assert_eq!(decide(&eligible(), &mark, &ctx("2026-11-29T12:00:00Z")), Action::Release);
    }

    #[test]
    fn zero_grace_releases_at_once_without_a_mark() {
        let c = Context { grace: Duration::ZERO, can_tag: false, ..ctx("2026-11-25T12:00:00Z") };
        assert_eq!(decide(&eligible(), &Mark::None, &c), Action::Release);
    }

    #[test]
    fn a_mark_under_another_rule_starts_a_new_grace() {
        let mark = marked("2026-11-20T00:00:00Z", Some("old-rule"));
        assert_eq!(
            decide(&eligible(), &mark, &ctx("2026-11-25T12:00:00Z")),
            Action::Mark {
                release_after: t("2026-11-28T12:00:00Z"),
                previous_rule: Some("old-rule".into()),
                replaced: false
            }
        );
        // Without a rule tag the mark is taken as it is.
        assert_eq!(
            decide(&eligible(), &marked("2026-11-20T00:00:00Z", None), &ctx("2026-11-25T12:00:00Z")),
            Action::Release
        );
    }

    #[test]
    fn no_longer_eligible_is_unmarked_whatever_the_reason() {
        let mark = marked("2026-11-28T12:00:00Z", Some("expired"));
        let now = ctx("2026-11-29T00:00:00Z");
        let cases = [
            (
                decision(Verdict::Protected { by: "tag janitor:keep=true".into() }, Some("expired")),
                "now protected by tag janitor:keep=true",
            ),
            (decision(Verdict::Keep, None), "no rule matches any more"),
            (
                decision(Verdict::Skip { reason: "running; rule does not allow force".into() }, Some("expired")),
                "can no longer be released: running",
            ),
            (decision(Verdict::Invalid { reason: "tag expire-at=soon".into() }, Some("expired")), "cannot be trusted"),
        ];
        for (d, why) in cases {
            match decide(&d, &mark, &now) {
                Action::Unmark { why: got } => assert!(got.starts_with(why), "{got}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(decide(&d, &Mark::None, &now), Action::Leave);
            assert!(
                matches!(decide(&d, &Mark::Unreadable { value: "x".into() }, &now), Action::Unmark { .. }),
                "a garbage mark on a kept instance goes"
            );
        }
    }

    #[test]
    fn an_unreadable_mark_never_releases() {
        let a = decide(&eligible(), &Mark::Unreadable { value: "next week".into() }, &ctx("2030-01-01T00:00:00Z"));
        assert!(
            matches!(&a, Action::Untrusted { reason } if reason.contains("janitor:release-after=next week")),
            "{a:?}"
        );
    }

    #[test]
    fn a_closed_window_holds_the_release_but_not_the_mark() {
        let closed = Context {
            window: WindowState::Closed { next: Some(t("2026-11-30T18:00:00Z")) },
            ..ctx("2026-11-29T12:00:00Z")
        };
        assert_eq!(
            decide(&eligible(), &marked("2026-11-28T12:00:00Z", Some("expired")), &closed),
            Action::OutsideWindow { next: Some(t("2026-11-30T18:00:00Z")) }
        );
        assert!(matches!(decide(&eligible(), &Mark::None, &closed), Action::Mark { .. }));
        let zero = Context { grace: Duration::ZERO, ..closed };
        assert!(matches!(decide(&eligible(), &Mark::None, &zero), Action::OutsideWindow { .. }));
    }

    #[test]
    fn without_tagging_a_grace_cannot_be_honoured() {
        let c = Context { can_tag: false, ..ctx("2026-11-25T12:00:00Z") };
        assert!(
            matches!(decide(&eligible(), &Mark::None, &c), Action::CannotMark { reason } if reason.contains("grace: 0"))
        );
        let kept = decision(Verdict::Keep, None);
        assert_eq!(decide(&kept, &marked("2026-11-28T12:00:00Z", None), &c), Action::Leave);
    }

    #[test]
    fn marks_read_and_write_the_same_tags() {
        let key = MarkKey::new("a-test-mark-key-of-32-characters").unwrap();
        let who = MarkOf { product: "ecs", region: "cn-hangzhou", id: "i-1" };
        let tags = mark_tags(t("2026-11-28T12:00:00Z"), "expired", Some(&key), &who);
        assert_eq!(tags[RELEASE_AFTER_TAG], "2026-11-28T12:00:00Z");
        assert!(tags[MARK_MAC_TAG].starts_with("v1:"));
        let read = |tags: &Tags| read_mark(tags, Some(&key), &who);
        assert_eq!(read(&tags.iter().collect()), marked("2026-11-28T12:00:00Z", Some("expired")));
        let mut offset = Tags::new();
        offset.insert(RELEASE_AFTER_TAG, "2026-11-28");
        assert_eq!(read(&offset), Mark::Unreadable { value: "2026-11-28".into() });
        assert_eq!(read(&Tags::new()), Mark::None);
    }

    /// Issue 12 item 3: a hand-written mark skipped the grace and the warning.
    #[test]
    fn a_mark_the_janitor_did_not_write_does_not_verify() {
        let key = MarkKey::new("a-test-mark-key-of-32-characters").unwrap();
        let who = MarkOf { product: "ecs", region: "cn-hangzhou", id: "i-1" };
        let genuine: Tags = mark_tags(t("2026-11-28T12:00:00Z"), "expired", Some(&key), &who).iter().collect();
        let unverified = Mark::Unverified { release_after: t("2026-11-28T12:00:00Z") };
        // No MAC, an empty or another rule, a copy onto another instance, another key, no key, a re-spelled time.
        let mut no_mac = genuine.clone();
        no_mac.insert(MARK_MAC_TAG, "");
        let mut other_rule = genuine.clone();
        other_rule.insert(RULE_TAG, "other");
        let mut respelled = genuine.clone();
        respelled.insert(RELEASE_AFTER_TAG, "2026-11-28T20:00:00+08:00");
        let other = MarkOf { id: "i-2", ..who };
        let other_key = MarkKey::new("another-mark-key-of-32-characters").unwrap();
        assert_eq!(read_mark(&no_mac, Some(&key), &who), unverified);
        assert_eq!(read_mark(&other_rule, Some(&key), &who), unverified);
        assert_eq!(read_mark(&respelled, Some(&key), &who), unverified);
        assert_eq!(read_mark(&genuine, Some(&key), &other), unverified);
        assert_eq!(read_mark(&genuine, Some(&other_key), &who), unverified);
        assert_eq!(read_mark(&genuine, None, &who), unverified);
        // An unverified mark is a first match: a fresh grace from now, never a release.
        let d = decide(&eligible(), &unverified, &ctx("2030-01-01T00:00:00Z"));
        assert!(matches!(d, Action::Mark { replaced: true, .. }), "{d:?}");
        assert!(MarkKey::new("short").is_err());
        assert_eq!(format!("{key:?}"), "MarkKey(<redacted>)");
    }

    #[test]
    fn deadlines_round_up_to_the_minute() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 30).unwrap();
        assert_eq!(deadline(now, Duration::from_secs(3600)), Some(t("2026-11-25T13:01:00Z")));
        assert_eq!(deadline(t("2026-11-25T12:00:00Z"), Duration::from_secs(3600)), Some(t("2026-11-25T13:00:00Z")));
        assert!(is_auto_release_for(t("2026-11-25T13:00:00Z"), t("2026-11-25T13:00:00Z")));
        assert!(!is_auto_release_for(t("2026-11-25T14:00:00Z"), t("2026-11-25T13:00:00Z")));
    }

    #[test]
    fn reserved_tags_are_recognised_in_any_case() {
        assert!(is_reserved_tag("janitor:release-after"));
        assert!(is_reserved_tag("Janitor:Rule"));
        assert!(is_reserved_tag(" janitor:last-event "));
        assert!(!is_reserved_tag("janitor:keep"));
    }
}

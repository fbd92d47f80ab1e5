//! Decisions: a pure function of (instance, policy, now). Each decision carries the rule and the facts
//! that produced it, so a plan can be printed, tested and applied.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::inventory::{ChargeType, Instance, Text};
use crate::policy::{format_duration, parse_duration, parse_tag_date, Policy, Protection, Rule};
use crate::products::ReleaseOptions;

/// The facts a decision rests on, by name (see `strmap` for why it is not a `BTreeMap`).
pub type Facts = crate::strmap::StrMap;

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// A rule matched and nothing vetoes it.
    Release { options: ReleaseOptions },
    /// A rule matched but a protection vetoes it (`by` says which: native flag, tag, id, name, lock).
    Protected { by: String },
    /// Something about the instance cannot be trusted (unparsable expiry tag...): never released, reported.
    Invalid { reason: String },
    /// A rule matched but the release is not possible as configured (running without `force`, unexpired subscription...).
    Skip { reason: String },
    /// No rule matched.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Decision {
    pub product: Text,
    pub region: Text,
    pub id: Text,
    pub name: Text,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The rule that matched (or that the veto applies to).
    pub rule: Option<Text>,
    /// The facts the verdict rests on: `charge_type`, `status`, `created_at`, `expires_at`, `tag:<key>`, ...
    pub facts: Facts,
}

impl Decision {
    pub fn is_release(&self) -> bool {
        matches!(self.verdict, Verdict::Release { .. })
    }
}

/// Evaluates one instance against the policy at time `now`:
/// 1. a trust-critical tag (`expire_at_tag`/`ttl_tag` of any rule in scope) that cannot be parsed → `Invalid`;
/// 2. the first rule, in file order, whose filters all match; none → `Keep`;
/// 3. vetoes → `Protected`: native deletion protection, operation locks, protect tags, ids, names;
/// 4. preconditions → `Skip`: a subscription not yet expired, a running instance without `force`;
/// 5. otherwise `Release`.
pub fn evaluate(instance: &Instance, policy: &Policy, now: DateTime<Utc>) -> Decision {
    let mut facts = instance_facts(instance, now);
    let in_scope: Vec<&Rule> = policy.rules.iter().filter(|rule| in_scope(rule, instance)).collect();
    let decide = |verdict: Verdict, rule: Option<&Rule>, facts: Facts| Decision {
        product: instance.product.clone(),
        region: instance.region.clone(),
        id: instance.id.clone(),
        name: instance.name.clone(),
        verdict,
        rule: rule.map(|r| r.name.as_str().into()),
        facts,
    };

    for rule in &in_scope {
        if let Some(reason) = untrusted_tag(rule, instance, &mut facts) {
            return decide(Verdict::Invalid { reason }, Some(rule), facts);
        }
    }

    let mut matched = None;
    for rule in in_scope {
        let mut rule_facts = Facts::new();
        let matches = filters_match(rule, instance, now, &mut rule_facts);
        if matches {
            facts.extend(rule_facts.iter());
            matched = Some(rule);
            break;
        }
        // Facts of rules that did not match help explain a `Keep`; the first one recorded stays.
        for (key, value) in rule_facts.iter() {
            facts.insert_if_absent(key, value);
        }
    }
    let Some(rule) = matched else {
        return decide(Verdict::Keep, None, facts);
    };

    if let Some(by) = protected_by(instance, &policy.protect, now, &mut facts) {
        return decide(Verdict::Protected { by }, Some(rule), facts);
    }

    if instance.charge_type == ChargeType::Unknown {
        let reason = "unknown charge type: never released (the adapter cannot tell how it is billed)".to_string();
        return decide(Verdict::Skip { reason }, Some(rule), facts);
    }
    // A subscription is only ever released once expired, whatever the rule says.
    if instance.charge_type == ChargeType::Subscription {
        let expired = instance.expires_at.is_some_and(|at| at <= now);
        if !expired {
            let reason = format!("subscription not expired (expires {})", time_fact(instance.expires_at, "never"));
            return decide(Verdict::Skip { reason }, Some(rule), facts);
        }
    }
    if instance.running && !rule.force {
        return decide(Verdict::Skip { reason: "running; rule does not allow force".into() }, Some(rule), facts);
    }

    let options = ReleaseOptions {
        force: rule.force && instance.running,
        terminate_subscription: instance.charge_type == ChargeType::Subscription,
    };
    decide(Verdict::Release { options }, Some(rule), facts)
}

/// Facts every decision carries, whichever rule looked at the instance.
fn instance_facts(instance: &Instance, now: DateTime<Utc>) -> Facts {
    let mut facts = Facts::new();
    facts.insert("charge_type", &instance.charge_type.to_string());
    facts.insert("status", &instance.status);
    facts.insert("running", if instance.running { "true" } else { "false" });
    facts.insert("created_at", &time_fact(instance.created_at, "unknown"));
    facts.insert("expires_at", &time_fact(instance.expires_at, "never"));
    if let Some(created) = instance.created_at {
        facts.insert("age", &elapsed_fact(created, now));
    }
    if let Some(expired) = instance.expires_at.filter(|at| *at <= now) {
        facts.insert("expired_since", &elapsed_fact(expired, now));
    }
    facts
}

fn time_fact(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map_or_else(|| none.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Time from `since` to `now` in duration notation (`3d4h`); a `since` in the future reads `-3d4h`.
fn elapsed_fact(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let delta = now.signed_duration_since(since);
    match delta.to_std() {
        Ok(d) => format_duration(d),
        Err(_) => format!("-{}", (-delta).to_std().map(format_duration).unwrap_or_else(|_| "?".into())),
    }
}

fn tag_fact(instance: &Instance, key: &str, facts: &mut Facts) -> Option<String> {
    let value = instance.tags.get(key).map(String::from);
    facts.insert(&format!("tag:{key}"), value.as_deref().unwrap_or("absent"));
    value
}

/// The rule's product/region scope covers this instance.
fn in_scope(rule: &Rule, instance: &Instance) -> bool {
    rule.products.as_ref().is_none_or(|p| p.contains(instance.product.as_str()))
        && rule.regions.as_ref().is_none_or(|r| r.contains(instance.region.as_str()))
}

/// An expiry or TTL tag this rule relies on, present but unreadable: the reason, naming tag, value and format.
fn untrusted_tag(rule: &Rule, instance: &Instance, facts: &mut Facts) -> Option<String> {
    if let Some(key) = &rule.expire_at_tag {
        if let Some(value) = tag_fact(instance, key, facts) {
            if let Err(e) = parse_tag_date(&value) {
                return Some(format!("tag {key}={value} cannot be trusted: {e}"));
            }
        }
    }
    if let Some(key) = &rule.ttl_tag {
        if let Some(value) = tag_fact(instance, key, facts) {
            if let Err(e) = parse_duration(&value) {
                return Some(format!("tag {key}={value} cannot be trusted: {e}"));
            }
        }
    }
    None
}

/// Every set filter of `rule` (products/regions already checked by `in_scope`). All filters are evaluated, not
/// just up to the first miss, so the facts tell the whole story.
fn filters_match(rule: &Rule, instance: &Instance, now: DateTime<Utc>, facts: &mut Facts) -> bool {
    let mut all = true;
    if let Some(charge_type) = rule.charge_type {
        all &= instance.charge_type == charge_type;
    }
    if let Some(status) = &rule.status {
        all &= status.iter().any(|s| s.eq_ignore_ascii_case(&instance.status));
    }
    for (key, wanted) in &rule.tag_equals {
        all &= tag_fact(instance, key, facts).as_deref() == Some(wanted.as_str());
    }
    for key in &rule.tag_exists {
        all &= tag_fact(instance, key, facts).is_some();
    }
    for key in &rule.tag_absent {
        all &= tag_fact(instance, key, facts).is_none();
    }
    if let Some(key) = &rule.expire_at_tag {
        let at = tag_fact(instance, key, facts).and_then(|v| parse_tag_date(&v).ok());
        if let Some(at) = at {
            facts.insert("expire_at", &time_fact(Some(at), ""));
        }
        all &= at.is_some_and(|at| at <= now);
    }
    if let Some(key) = &rule.ttl_tag {
        let ttl = tag_fact(instance, key, facts).and_then(|v| parse_duration(&v).ok());
        let at = match (ttl, instance.created_at) {
            (Some(ttl), Some(created)) => {
                let at = deadline(created, ttl);
                facts.insert(
                    "ttl_deadline",
                    &at.map_or_else(|| "beyond representable time".to_string(), |t| time_fact(Some(t), "")),
                );
                at
            }
            (Some(_), None) => {
                facts.insert("ttl_deadline", "unknown (creation time unknown)");
                None
            }
            (None, _) => None,
        };
        all &= at.is_some_and(|at| at <= now);
    }
    if let Some(older_than) = rule.created_older_than {
        all &= instance.created_at.and_then(|c| deadline(c, older_than)).is_some_and(|at| at <= now);
    }
    if let Some(expired_for) = rule.expired_for {
        all &= instance.charge_type == ChargeType::Subscription
            && instance.expires_at.and_then(|e| deadline(e, expired_for)).is_some_and(|at| at <= now);
    }
    if let Some(pattern) = &rule.name_glob {
        all &= pattern.matches(&instance.name);
    }
    all
}

/// `start + d`, or `None` when it cannot be represented (then the filter never matches).
fn deadline(start: DateTime<Utc>, d: std::time::Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(d).ok().and_then(|d| start.checked_add_signed(d))
}

/// Why an operation lock rules a release out, if it does. An expired subscription carries `financial` as its
/// expected state, and `DeleteInstances` works normally on it (reference, corrections: ECS "API behavior when your
/// account has an overdue payment or your subscription resources expire"): accepted. `financial` on anything else is
/// an overdue payment the platform settles itself; `security` means a release destroys the data disks kept for the
/// investigation; any other or unknown reason (`Recycling`, `refunded`, ...) is not ours to judge: all vetoed.
fn lock_veto(lock: &str, instance: &Instance, now: DateTime<Utc>) -> Option<String> {
    let expired_subscription =
        instance.charge_type == ChargeType::Subscription && instance.expires_at.is_some_and(|at| at <= now);
    match lock.trim().to_ascii_lowercase().as_str() {
        "financial" if expired_subscription => None,
        "financial" => Some("operation lock: financial (an overdue payment: the platform reclaims it itself)".into()),
        "security" => Some("operation lock: security (a release would destroy the data disks kept for it)".into()),
        _ => Some(format!("operation lock: {lock}")),
    }
}

/// The first veto that applies, as a readable reason. Protection matches ignore ASCII case: when in doubt, keep.
fn protected_by(instance: &Instance, protect: &Protection, now: DateTime<Utc>, facts: &mut Facts) -> Option<String> {
    if let Some(field) = &instance.protection_unknown {
        facts.insert("protection_unknown", field);
        return Some(format!("an unknown protection state (`{field}` missing from the answer): cannot tell, so kept"));
    }
    if instance.deletion_protection {
        facts.insert("deletion_protection", "true");
        return Some("native deletion protection".into());
    }
    if !instance.locks.is_empty() {
        let locks = instance.locks.join(", ");
        facts.insert("locks", &locks);
        if let Some(why) = instance.locks.iter().find_map(|l| lock_veto(l, instance, now)) {
            return Some(why);
        }
    }
    let mut by_tag = None;
    for wanted in &protect.tags {
        // Every instance tag whose key is the protect key, ignoring ASCII case and surrounding whitespace: tag
        // keys are case-sensitive in Alibaba Cloud, so `JANITOR:KEEP=no` and `janitor:keep=true` are two tags,
        // and *any* of them that matches protects (reading only the first would let the other defeat it).
        let found: Vec<(&str, &str)> =
            instance.tags.iter().filter(|(key, _)| key.trim().eq_ignore_ascii_case(&wanted.key)).collect();
        let seen = match found.as_slice() {
            [] => "absent".to_string(),
            [(_, value)] => (*value).to_string(),
            many => many.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
        };
        facts.insert(&format!("tag:{}", wanted.key), &seen);
        let hit = found
            .iter()
            .find(|(_, value)| wanted.value.as_ref().is_none_or(|w| w.trim().eq_ignore_ascii_case(value.trim())));
        if let (None, Some((key, value))) = (&by_tag, hit) {
            by_tag = Some(format!("tag {key}={value}"));
        }
    }
    if by_tag.is_some() {
        return by_tag;
    }
    // Instance ids are matched ignoring case (`I-CONTROL` protects `i-control`): when in doubt, keep.
    if protect.instance_ids.iter().any(|id| id.eq_ignore_ascii_case(&instance.id)) {
        return Some(format!("protected instance id {}", instance.id));
    }
    let options = glob::MatchOptions { case_sensitive: false, ..glob::MatchOptions::new() };
    protect
        .names
        .iter()
        .find(|p| p.matches_with(&instance.name, options))
        .map(|p| format!("name {} matches protected pattern {}", instance.name, p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ChargeType::{PayAsYouGo, Subscription};
    use chrono::TimeZone;
    use proptest::prelude::*;

    const POLICY: &str = r#"
regions: [cn-hangzhou, cn-shanghai]
products: [ecs, r-kvstore]
protect:
  tags: { "janitor:keep": "true", "do-not-delete": null }
  instance_ids: [i-pinned]
  names: ["prod-*"]
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
  - name: ttl
    filters: { ttl_tag: ttl }
  - name: ci-runners
    filters: { name: "ci-*", created_older_than: 12h }
    force: true
  - name: stale-stopped
    filters: { status: [Stopped], created_older_than: 30d, charge_type: pay-as-you-go }
  - name: expired-subscription
    filters: { charge_type: subscription, expired_for: 1d }
  - name: shanghai-redis
    filters: { products: [r-kvstore], regions: [cn-shanghai], expire_at_tag: redis-expire-at }
"#;

    fn policy() -> Policy {
        Policy::from_yaml(POLICY, "plan-test.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
    }

    fn at(rfc3339: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc))
    }

    /// A stopped pay-as-you-go ECS instance in cn-hangzhou created a week before `now`; tests change what matters.
    fn ecs(id: &str) -> Instance {
        let mut i = Instance::new("ecs", "cn-hangzhou", id, PayAsYouGo);
        i.name = id.into();
        i.status = "Stopped".into();
        i.created_at = at("2026-03-03T12:00:00Z");
        i
    }

    fn tagged(mut i: Instance, key: &str, value: &str) -> Instance {
        i.tags.insert(key, value);
        i
    }

    fn with(mut i: Instance, change: impl FnOnce(&mut Instance)) -> Instance {
        change(&mut i);
        i
    }

    fn running(i: Instance) -> Instance {
        with(i, |i| {
            i.status = "Running".into();
            i.running = true;
        })
    }

    fn subscription(i: Instance, expires_at: Option<DateTime<Utc>>) -> Instance {
        with(i, |i| {
            i.charge_type = Subscription;
            i.expires_at = expires_at;
        })
    }

    #[derive(Debug)]
    enum Expect {
        Release {
            force: bool,
            terminate_subscription: bool,
        },
        Protected(&'static str),
        Skip(&'static str),
        /// An `Invalid` whose reason mentions every one of these.
        Invalid(&'static [&'static str]),
        Keep,
    }

    struct Case {
        what: &'static str,
        instance: Instance,
        expect: Expect,
        rule: Option<&'static str>,
        fact: (&'static str, &'static str),
    }

    fn case(
        what: &'static str,
        instance: Instance,
        expect: Expect,
        rule: Option<&'static str>,
        fact: (&'static str, &'static str),
    ) -> Case {
        Case { what, instance, expect, rule, fact }
    }

    const RELEASE: Expect = Expect::Release { force: false, terminate_subscription: false };

    #[test]
    fn the_decision_table() {
        let expired = |id| tagged(ecs(id), "expire-at", "2026-03-01");
        let cases = [
            case(
                "expiry tag in the past",
                expired("i-expired"),
                RELEASE,
                Some("expired-by-tag"),
                ("expire_at", "2026-03-01T00:00:00Z"),
            ),
            case(
                "expiry tag in the future",
                tagged(ecs("i-later"), "expire-at", "2026-04-01T08:00:00+08:00"),
                Expect::Keep,
                None,
                ("expire_at", "2026-04-01T00:00:00Z"),
            ),
            case(
                "expiry tag at minute precision",
                tagged(ecs("i-minute"), "expire-at", "2026-03-10T11:59Z"),
                RELEASE,
                Some("expired-by-tag"),
                ("tag:expire-at", "2026-03-10T11:59Z"),
            ),
            case(
                "ttl elapsed",
                tagged(ecs("i-ttl"), "ttl", "72h"),
                RELEASE,
                Some("ttl"),
                ("ttl_deadline", "2026-03-06T12:00:00Z"),
            ),
            case(
                "ttl not elapsed",
                tagged(ecs("i-ttl-later"), "ttl", "30d"),
                Expect::Keep,
                None,
                ("ttl_deadline", "2026-04-02T12:00:00Z"),
            ),
            case(
                "ttl without a creation time",
                with(tagged(ecs("i-no-created"), "ttl", "1h"), |i| i.created_at = None),
                Expect::Keep,
                None,
                ("ttl_deadline", "unknown (creation time unknown)"),
            ),
            case(
                "native deletion protection",
                with(expired("i-native"), |i| i.deletion_protection = true),
                Expect::Protected("native deletion protection"),
                Some("expired-by-tag"),
                ("deletion_protection", "true"),
            ),
            case(
                "an unknown protection state",
                with(expired("i-unknown"), |i| i.protection_unknown = Some("DeletionProtection".into())),
                Expect::Protected(
                    "an unknown protection state (`DeletionProtection` missing from the answer): cannot tell, so kept",
                ),
                Some("expired-by-tag"),
                ("protection_unknown", "DeletionProtection"),
            ),
            case(
                "operation lock",
                with(expired("i-locked"), |i| i.locks = vec!["security".into()]),
                Expect::Protected("operation lock: security (a release would destroy the data disks kept for it)"),
                Some("expired-by-tag"),
                ("locks", "security"),
            ),
            case(
                "keep tag",
                tagged(expired("i-keep"), "janitor:keep", "true"),
                Expect::Protected("tag janitor:keep=true"),
                Some("expired-by-tag"),
                ("tag:janitor:keep", "true"),
            ),
            case(
                "keep tag in other case: when in doubt, keep",
                tagged(expired("i-keep-case"), "Janitor:Keep", "TRUE"),
                Expect::Protected("tag Janitor:Keep=TRUE"),
                Some("expired-by-tag"),
                ("tag:janitor:keep", "TRUE"),
            ),
            case(
                "keep tag with another value",
                tagged(expired("i-keep-false"), "janitor:keep", "false"),
                RELEASE,
                Some("expired-by-tag"),
                ("tag:janitor:keep", "false"),
            ),
            case(
                "any-value protect tag",
                tagged(expired("i-dnd"), "do-not-delete", ""),
                Expect::Protected("tag do-not-delete="),
                Some("expired-by-tag"),
                ("tag:do-not-delete", ""),
            ),
            case(
                "protected id",
                expired("i-pinned"),
                Expect::Protected("protected instance id i-pinned"),
                Some("expired-by-tag"),
                ("status", "Stopped"),
            ),
            case(
                "protected name",
                with(expired("i-prod"), |i| i.name = "PROD-web".into()),
                Expect::Protected("name PROD-web matches protected pattern prod-*"),
                Some("expired-by-tag"),
                ("tag:janitor:keep", "absent"),
            ),
            case(
                "running without force",
                running(expired("i-running")),
                Expect::Skip("running; rule does not allow force"),
                Some("expired-by-tag"),
                ("running", "true"),
            ),
            case(
                "running with force",
                running(with(ecs("i-ci"), |i| i.name = "ci-runner-7".into())),
                Expect::Release { force: true, terminate_subscription: false },
                Some("ci-runners"),
                ("age", "7d"),
            ),
            case(
                "force is only asked for when running",
                with(ecs("i-ci-stopped"), |i| i.name = "ci-runner-8".into()),
                RELEASE,
                Some("ci-runners"),
                ("running", "false"),
            ),
            case(
                "subscription not expired, whatever the rule says",
                subscription(expired("i-sub-live"), at("2026-06-01T00:00:00Z")),
                Expect::Skip("subscription not expired (expires 2026-06-01T00:00:00Z)"),
                Some("expired-by-tag"),
                ("expires_at", "2026-06-01T00:00:00Z"),
            ),
            case(
                "subscription without a known expiry",
                subscription(expired("i-sub-never"), None),
                Expect::Skip("subscription not expired (expires never)"),
                Some("expired-by-tag"),
                ("expires_at", "never"),
            ),
            case(
                "subscription expired long enough",
                subscription(ecs("i-sub-expired"), at("2026-03-01T00:00:00Z")),
                Expect::Release { force: false, terminate_subscription: true },
                Some("expired-subscription"),
                ("expired_since", "9d12h"),
            ),
            case(
                "subscription expired too recently",
                subscription(ecs("i-sub-recent"), at("2026-03-10T06:00:00Z")),
                Expect::Keep,
                None,
                ("expired_since", "6h"),
            ),
            case(
                "unparsable expiry tag",
                tagged(ecs("i-bad-date"), "expire-at", "next friday"),
                Expect::Invalid(&["expire-at", "next friday", "expected YYYY-MM-DD"]),
                Some("expired-by-tag"),
                ("tag:expire-at", "next friday"),
            ),
            case(
                "ambiguous expiry tag",
                tagged(ecs("i-us-date"), "expire-at", "03/01/2026"),
                Expect::Invalid(&["expire-at", "03/01/2026"]),
                Some("expired-by-tag"),
                ("tag:expire-at", "03/01/2026"),
            ),
            case(
                "unparsable ttl beats a later matching rule",
                tagged(with(ecs("i-bad-ttl"), |i| i.name = "ci-runner-9".into()), "ttl", "forever"),
                Expect::Invalid(&["ttl", "forever", "expected a positive duration"]),
                Some("ttl"),
                ("tag:ttl", "forever"),
            ),
            case(
                "unparsable tag of an out-of-scope rule is ignored",
                tagged(ecs("i-ecs-redis-tag"), "redis-expire-at", "soon"),
                Expect::Keep,
                None,
                ("tag:expire-at", "absent"),
            ),
            case(
                "unparsable tag of an in-scope rule",
                tagged(Instance::new("r-kvstore", "cn-shanghai", "r-bad", PayAsYouGo), "redis-expire-at", "soon"),
                Expect::Invalid(&["redis-expire-at", "soon"]),
                Some("shanghai-redis"),
                ("tag:redis-expire-at", "soon"),
            ),
            case(
                "stale stopped, status compared case-insensitively",
                with(ecs("i-stale"), |i| {
                    i.status = "stopped".into();
                    i.created_at = at("2026-01-01T00:00:00Z");
                }),
                RELEASE,
                Some("stale-stopped"),
                ("age", "68d12h"),
            ),
            case("no rule matches", running(ecs("i-fresh")), Expect::Keep, None, ("tag:ttl", "absent")),
        ];

        let policy = policy();
        for c in cases {
            let d = evaluate(&c.instance, &policy, now());
            let what = format!("{}: {d:#?}", c.what);
            assert_eq!(d.id, c.instance.id, "{what}");
            assert_eq!(d.rule.as_deref(), c.rule, "{what}");
            match (&c.expect, &d.verdict) {
                (Expect::Release { force, terminate_subscription }, Verdict::Release { options }) => {
                    assert_eq!(
                        options,
                        &ReleaseOptions { force: *force, terminate_subscription: *terminate_subscription },
                        "{what}"
                    )
                }
                (Expect::Protected(want), Verdict::Protected { by }) => assert_eq!(by, want, "{what}"),
                (Expect::Skip(want), Verdict::Skip { reason }) => assert_eq!(reason, want, "{what}"),
                (Expect::Invalid(words), Verdict::Invalid { reason }) => {
                    for word in *words {
                        assert!(reason.contains(word), "`{word}` missing; {what}");
                    }
                }
                (Expect::Keep, Verdict::Keep) => {}
                (expect, _) => panic!("expected {expect:?}; {what}"),
            }
            let (key, value) = c.fact;
            assert_eq!(d.facts.get(key), Some(value), "fact {key}; {what}");
            for always in ["charge_type", "status", "created_at", "expires_at"] {
                assert!(d.facts.contains_key(always), "fact {always} missing; {what}");
            }
        }
    }

    #[test]
    fn a_protect_tag_is_not_defeated_by_the_same_key_in_another_case() {
        // Issue 12, item 1: `JANITOR:KEEP=no` sorts first; `janitor:keep=true` must still protect.
        let i = tagged(
            tagged(tagged(ecs("i-two-keeps"), "expire-at", "2026-03-01"), "JANITOR:KEEP", "no"),
            "janitor:keep",
            "true",
        );
        let d = evaluate(&i, &policy(), now());
        assert_eq!(d.verdict, Verdict::Protected { by: "tag janitor:keep=true".into() });
        assert_eq!(
            d.facts.get("tag:janitor:keep"),
            Some("JANITOR:KEEP=no, janitor:keep=true"),
            "every matching key shown"
        );
    }

    #[test]
    fn a_protect_tag_key_with_stray_whitespace_on_the_instance_still_protects() {
        // Issue 12, item 2: instance tag keys are normalised like protect keys (values already were).
        let i = tagged(tagged(ecs("i-spacey"), "expire-at", "2026-03-01"), "janitor:keep ", "true");
        assert!(matches!(evaluate(&i, &policy(), now()).verdict, Verdict::Protected { .. }));
    }

    #[test]
    fn protected_ids_match_ignoring_case() {
        let i = tagged(ecs("I-PINNED"), "expire-at", "2026-03-01");
        let d = evaluate(&i, &policy(), now());
        assert_eq!(d.verdict, Verdict::Protected { by: "protected instance id I-PINNED".into() });
    }

    #[test]
    fn protect_entries_with_surrounding_whitespace_are_refused() {
        for (yaml, field) in [
            ("protect: { tags: { \"janitor:keep \": \"true\" } }", "protect.tags[0]"),
            ("protect: { instance_ids: [\"i-plain \"] }", "protect.instance_ids"),
        ] {
            let text =
                format!("regions: [cn-hangzhou]\n{yaml}\nrules:\n  - name: r\n    filters: {{ expire_at_tag: e }}\n");
            let e = Policy::from_yaml(&text, "p.yaml").expect_err(yaml).to_string();
            assert!(e.contains(field) && e.contains("whitespace"), "{e}");
        }
    }

    /// Issue 13 item 7: every expired subscription carries the `financial` lock, so vetoing every lock released none.
    #[test]
    fn a_financial_lock_is_the_expected_state_of_an_expired_subscription_only() {
        let mut sub = Instance::new("ecs", "cn-hangzhou", "i-sub", Subscription);
        sub.expires_at = Some(now() - chrono::Duration::days(5));
        sub.created_at = Some(now() - chrono::Duration::days(400));
        sub.locks = vec!["financial".into()];
        let d = evaluate(&sub, &policy(), now());
        assert!(d.is_release(), "{d:?}");
        assert_eq!(d.facts.get("locks"), Some("financial"));
        for (charge, lock, why) in [
            (PayAsYouGo, "financial", "overdue payment"),
            (Subscription, "security", "data disks"),
            (Subscription, "Recycling", "operation lock: Recycling"),
            (Subscription, "refunded", "operation lock: refunded"),
        ] {
            let mut i = sub.clone();
            i.charge_type = charge;
            i.locks = vec![lock.into()];
            i.tags.insert("expire-at", "2026-03-01");
            let d = evaluate(&i, &policy(), now());
            assert!(matches!(&d.verdict, Verdict::Protected { by } if by.contains(why)), "{lock}: {d:?}");
        }
        let mut unexpired = sub.clone();
        unexpired.expires_at = Some(now() + chrono::Duration::days(5));
        unexpired.tags.insert("expire-at", "2026-03-01");
        assert!(matches!(evaluate(&unexpired, &policy(), now()).verdict, Verdict::Protected { .. }));
    }

    #[test]
    fn a_decision_serialises_flat_for_reports() {
        let d = evaluate(&tagged(ecs("i-expired"), "expire-at", "2026-03-01"), &policy(), now());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["verdict"], "release");
        assert_eq!(json["options"]["force"], false);
        assert_eq!(json["rule"], "expired-by-tag");
        assert_eq!(json["facts"]["created_at"], "2026-03-03T12:00:00Z");
    }

    proptest! {
        #[test]
        fn evaluate_never_panics_and_never_releases_a_protected_instance(
            expire_at in ".{0,30}",
            ttl in "[0-9]{0,22}[smhdw]{0,2}",
            created in proptest::option::of(-8_000_000_000_000i64..8_000_000_000_000),
            expires in proptest::option::of(-8_000_000_000_000i64..8_000_000_000_000),
            now_secs in -8_000_000_000_000i64..8_000_000_000_000,
            running in any::<bool>(),
            subscription in any::<bool>(),
        ) {
            let policy = policy();
            let ts = |s: i64| Utc.timestamp_opt(s, 0).single();
            let Some(now) = ts(now_secs) else { return Ok(()) };
            let mut i = Instance::new("ecs", "cn-hangzhou", "i-prop", if subscription { Subscription } else { PayAsYouGo });
            i.name = "ci-runner".into();
            i.running = running;
            i.created_at = created.and_then(ts);
            i.expires_at = expires.and_then(ts);
            i.tags.insert("expire-at", &expire_at);
            i.tags.insert("ttl", &ttl);
            let d = evaluate(&i, &policy, now);
            if let Verdict::Release { options } = d.verdict {
                prop_assert!(!subscription || i.expires_at.is_some_and(|e| e <= now));
                prop_assert!(options.terminate_subscription == subscription);
            }
            i.deletion_protection = true;
            prop_assert!(!evaluate(&i, &policy, now).is_release());
        }
    }
}

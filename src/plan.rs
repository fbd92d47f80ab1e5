//! Decisions: a pure function of (instance, policy, now). Each decision carries the rule and the facts
//! that produced it, so a plan can be printed, tested and applied.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::inventory::{ChargeType, Instance};
use crate::policy::{format_duration, parse_duration, parse_tag_date, Limits, Policy, Protection, Rule};
use crate::products::ReleaseOptions;

#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub product: String,
    pub region: String,
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The rule that matched (or that the veto applies to).
    pub rule: Option<String>,
    /// The facts the verdict rests on: `charge_type`, `status`, `created_at`, `expires_at`, `tag:<key>`, ...
    pub facts: BTreeMap<String, String>,
}

impl Decision {
    pub fn is_release(&self) -> bool {
        matches!(self.verdict, Verdict::Release { .. })
    }
}

type Facts = BTreeMap<String, String>;

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
        rule: rule.map(|r| r.name.clone()),
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
            facts.extend(rule_facts);
            matched = Some(rule);
            break;
        }
        // Facts of rules that did not match explain a `Keep`, but never overwrite what the instance says.
        for (key, value) in rule_facts {
            facts.entry(key).or_insert(value);
        }
    }
    let Some(rule) = matched else {
        return decide(Verdict::Keep, None, facts);
    };

    if let Some(by) = protected_by(instance, &policy.protect, &mut facts) {
        return decide(Verdict::Protected { by }, Some(rule), facts);
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
    facts.insert("charge_type".into(), instance.charge_type.to_string());
    facts.insert("status".into(), instance.status.clone());
    facts.insert("running".into(), instance.running.to_string());
    facts.insert("created_at".into(), time_fact(instance.created_at, "unknown"));
    facts.insert("expires_at".into(), time_fact(instance.expires_at, "never"));
    if let Some(created) = instance.created_at {
        facts.insert("age".into(), elapsed_fact(created, now));
    }
    if let Some(expired) = instance.expires_at.filter(|at| *at <= now) {
        facts.insert("expired_since".into(), elapsed_fact(expired, now));
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
    let value = instance.tags.get(key).cloned();
    facts.insert(format!("tag:{key}"), value.clone().unwrap_or_else(|| "absent".into()));
    value
}

/// The rule's product/region scope covers this instance.
fn in_scope(rule: &Rule, instance: &Instance) -> bool {
    rule.products.as_ref().is_none_or(|p| p.contains(&instance.product))
        && rule.regions.as_ref().is_none_or(|r| r.contains(&instance.region))
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
            facts.insert("expire_at".into(), time_fact(Some(at), ""));
        }
        all &= at.is_some_and(|at| at <= now);
    }
    if let Some(key) = &rule.ttl_tag {
        let ttl = tag_fact(instance, key, facts).and_then(|v| parse_duration(&v).ok());
        let at = match (ttl, instance.created_at) {
            (Some(ttl), Some(created)) => {
                let at = deadline(created, ttl);
                facts.insert("ttl_deadline".into(), at.map_or_else(|| "beyond representable time".into(), |t| time_fact(Some(t), "")));
                at
            }
            (Some(_), None) => {
                facts.insert("ttl_deadline".into(), "unknown (creation time unknown)".into());
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

/// The first veto that applies, as a readable reason. Protection matches ignore ASCII case: when in doubt, keep.
fn protected_by(instance: &Instance, protect: &Protection, facts: &mut Facts) -> Option<String> {
    if instance.deletion_protection {
        facts.insert("deletion_protection".into(), "true".into());
        return Some("native deletion protection".into());
    }
    if !instance.locks.is_empty() {
        let locks = instance.locks.join(", ");
        facts.insert("locks".into(), locks.clone());
        return Some(format!("operation lock: {locks}"));
    }
    let mut by_tag = None;
    for wanted in &protect.tags {
        let found = instance.tags.iter().find(|(key, _)| key.eq_ignore_ascii_case(&wanted.key));
        facts.insert(format!("tag:{}", wanted.key), found.map_or_else(|| "absent".into(), |(_, v)| v.clone()));
        let hit = found.filter(|(_, value)| wanted.value.as_ref().is_none_or(|w| w.trim().eq_ignore_ascii_case(value.trim())));
        if let (None, Some((key, value))) = (&by_tag, hit) {
            by_tag = Some(format!("tag {key}={value}"));
        }
    }
    if by_tag.is_some() {
        return by_tag;
    }
    if protect.instance_ids.contains(&instance.id) {
        return Some(format!("protected instance id {}", instance.id));
    }
    let options = glob::MatchOptions { case_sensitive: false, ..glob::MatchOptions::new() };
    protect
        .names
        .iter()
        .find(|p| p.matches_with(&instance.name, options))
        .map(|p| format!("name {} matches protected pattern {}", instance.name, p.as_str()))
}

/// Why a run releases nothing despite eligible instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitBreach {
    pub eligible: usize,
    pub scanned: usize,
    pub reason: String,
}

/// Checks the run-wide limits against the eligible count and the scanned population. On a breach nothing is
/// released (fail closed): the caller turns every `Release` into a held decision.
pub fn check_limits(eligible: usize, scanned: usize, limits: &Limits) -> Option<LimitBreach> {
    let breach = |reason: String| Some(LimitBreach { eligible, scanned, reason });
    let instances = if eligible == 1 { "instance" } else { "instances" };
    if eligible == 0 {
        return None;
    }
    if eligible > scanned {
        // Cannot happen with a consistent caller; if it does, the numbers are not to be trusted.
        return breach(format!("{eligible} {instances} eligible but only {scanned} scanned: counts are inconsistent, nothing released"));
    }
    if eligible > limits.max_releases_per_run {
        return breach(format!(
            "{eligible} {instances} eligible, above max_releases_per_run {}: nothing released",
            limits.max_releases_per_run
        ));
    }
    let percent = eligible as f64 * 100.0 / scanned as f64;
    // `!(<=)` so that a NaN limit (never produced by `Policy::validate`) also fails closed.
    if !(percent <= limits.max_release_percent) {
        return breach(format!(
            "{eligible} of {scanned} scanned {instances} eligible ({percent:.1}%), above max_release_percent {}: nothing released",
            limits.max_release_percent
        ));
    }
    None
}

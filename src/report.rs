//! The run summary (the function's return value and the CLI's stdout) and per-instance decision logs.
//! Nothing secret is ever put in here: errors carry codes, messages and request ids, never URLs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::{Decision, LimitBreach, Verdict};

/// What happened to one instance, after planning and (dry-run or real) release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Released by a real call.
    Released,
    /// Dry run passed; would be released with `--apply` / `apply: true`.
    WouldRelease,
    /// Eligible, but a run-wide limit or a closed window held it back.
    Held,
    /// Eligible, but the dry run or the release call failed (`code` says why).
    Failed,
    /// Eligible, but its product cannot release it by API: release it by hand.
    Manual,
    Protected,
    Skipped,
    Invalid,
    Kept,
}

/// One instance's line in the summary: the decision plus what the release step did with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub outcome: Outcome,
    #[serde(flatten)]
    pub decision: Decision,
    /// Alibaba error code when `outcome` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Request ids of the API calls that acted on this instance (dry run, release).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Released => "released",
            Outcome::WouldRelease => "would_release",
            Outcome::Held => "held",
            Outcome::Failed => "failed",
            Outcome::Manual => "manual",
            Outcome::Protected => "protected",
            Outcome::Skipped => "skipped",
            Outcome::Invalid => "invalid",
            Outcome::Kept => "kept",
        }
    }
}

impl Entry {
    pub fn from_decision(decision: Decision) -> Entry {
        let outcome = match &decision.verdict {
            Verdict::Release { .. } => Outcome::WouldRelease,
            Verdict::Protected { .. } => Outcome::Protected,
            Verdict::Skip { .. } => Outcome::Skipped,
            Verdict::Invalid { .. } => Outcome::Invalid,
            Verdict::Keep => Outcome::Kept,
        };
        Entry { outcome, decision, code: None, message: None, request_ids: Vec::new() }
    }
}

/// A (product, region) pair that was not scanned, so nothing in it was released.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedScope {
    pub product: String,
    pub region: String,
    pub code: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub run_id: String,
    /// `apply` or `dry-run`.
    pub mode: String,
    /// Why the mode is what it is (policy, CLI flag, trigger).
    pub mode_reason: String,
    pub trigger: String,
    /// The clock the policy was evaluated with (RFC 3339).
    pub now: String,
    pub scanned: usize,
    /// `product/region` → outcome → count.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    pub released: Vec<String>,
    pub would_release: Vec<String>,
    pub failures: Vec<Failure>,
    pub skipped_scopes: Vec<SkippedScope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_breach: Option<LimitBreach>,
    /// API calls made, by `product:Action`.
    pub api_calls: BTreeMap<String, u64>,
    /// Summary webhook deliveries (filled after the run; a failed delivery never changes what was released).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::webhook::Delivery>,
    /// Every instance scanned, with its decision and outcome.
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub product: String,
    pub region: String,
    pub id: String,
    pub code: String,
    pub message: String,
}

impl Summary {
    /// Fills the derived fields (counts, id lists, failures) from `entries`.
    pub fn finish(&mut self) {
        self.entries.sort_by(|a, b| {
            (&a.decision.product, &a.decision.region, &a.decision.id).cmp(&(&b.decision.product, &b.decision.region, &b.decision.id))
        });
        self.counts.clear();
        self.released.clear();
        self.would_release.clear();
        self.failures.clear();
        for e in &self.entries {
            let d = &e.decision;
            let key = format!("{}/{}", d.product, d.region);
            *self.counts.entry(key).or_default().entry(e.outcome.as_str().to_string()).or_default() += 1;
            let id = format!("{}:{}/{}", d.product, d.region, d.id);
            match e.outcome {
                Outcome::Released => self.released.push(id),
                Outcome::WouldRelease => self.would_release.push(id),
                Outcome::Failed => self.failures.push(Failure {
                    product: d.product.clone(),
                    region: d.region.clone(),
                    id: d.id.clone(),
                    code: e.code.clone().unwrap_or_default(),
                    message: e.message.clone().unwrap_or_default(),
                }),
                _ => {}
            }
        }
    }

    /// True when the run did not do everything it set out to do (a scope unscanned, a failure, a limit breach).
    pub fn is_degraded(&self) -> bool {
        !self.failures.is_empty() || !self.skipped_scopes.is_empty() || self.limit_breach.is_some()
    }
}

/// Why an entry ended as it did, in a few words.
pub fn reason(e: &Entry) -> String {
    let d = &e.decision;
    match (&e.outcome, &d.verdict) {
        (Outcome::Failed, _) => format!("{}: {}", e.code.as_deref().unwrap_or("error"), e.message.as_deref().unwrap_or("")),
        (_, Verdict::Protected { by }) => format!("protected by {by}"),
        (_, Verdict::Skip { reason }) | (_, Verdict::Invalid { reason }) => reason.clone(),
        (Outcome::Held, _) | (Outcome::Manual, _) => e.message.clone().unwrap_or_default(),
        (_, Verdict::Keep) => "no rule matched".to_string(),
        (_, Verdict::Release { options }) => {
            let mut flags = Vec::new();
            if options.force {
                flags.push("force");
            }
            if options.terminate_subscription {
                flags.push("terminate-subscription");
            }
            if flags.is_empty() { "eligible".to_string() } else { format!("eligible ({})", flags.join(", ")) }
        }
    }
}

/// Human-readable explanation of one entry, used by the CLI's plan print-out and by webhooks.
pub fn explain(e: &Entry) -> String {
    let d = &e.decision;
    let rule = d.rule.as_deref().map(|r| format!(" [rule {r}]")).unwrap_or_default();
    let why = reason(e);
    let facts = d.facts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    format!("{:<14} {}:{}/{} {}{} — {} | {}", e.outcome.as_str(), d.product, d.region, d.id, d.name, rule, why, facts)
}

//! The run summary (the function's return value and the CLI's stdout) and per-instance decision logs.
//! Nothing secret is ever put in here: errors carry codes, messages and request ids, never URLs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::{Decision, LimitBreach, Verdict};

pub mod explain;

pub use explain::reason;

/// What happened to one instance, after planning and (dry-run or real) release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Released by a real call.
    Released,
    /// Dry run passed; would be released with `--apply` / `apply: true`.
    WouldRelease,
    /// Matched a rule with a grace period: tagged `janitor:release-after` (released at a later run).
    Marked,
    /// Would be marked with `--apply` / `apply: true`.
    WouldMark,
    /// Marked earlier and still eligible; its deadline is ahead.
    Waiting,
    /// Marked earlier but no longer eligible: the mark (and the janitor's auto-release time) was removed.
    Unmarked,
    /// Would be unmarked with `--apply` / `apply: true`.
    WouldUnmark,
    /// Due for release, but the release window is closed.
    OutsideWindow,
    /// Eligible, but a run-wide limit held it back.
    Held,
    /// Eligible, but the dry run or the release call failed (`code` says why).
    Failed,
    /// Eligible, but its product cannot release it by API: release it by hand.
    Manual,
    Protected,
    Skipped,
    Invalid,
    /// An event-triggered run already acted on this instance for this event (a duplicate delivery).
    Duplicate,
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
            Outcome::Marked => "marked",
            Outcome::WouldMark => "would_mark",
            Outcome::Waiting => "waiting",
            Outcome::Unmarked => "unmarked",
            Outcome::WouldUnmark => "would_unmark",
            Outcome::OutsideWindow => "outside_window",
            Outcome::Held => "held",
            Outcome::Failed => "failed",
            Outcome::Manual => "manual",
            Outcome::Protected => "protected",
            Outcome::Skipped => "skipped",
            Outcome::Invalid => "invalid",
            Outcome::Duplicate => "duplicate",
            Outcome::Kept => "kept",
        }
    }

    /// Outcomes an instance's owner is told about (the summary's `owners`).
    pub fn concerns_owner(&self) -> bool {
        matches!(
            self,
            Outcome::Released
                | Outcome::WouldRelease
                | Outcome::Marked
                | Outcome::WouldMark
                | Outcome::Unmarked
                | Outcome::WouldUnmark
        )
    }

    /// Outcomes that change (or, in a dry run, would change) something.
    pub fn is_change(&self) -> bool {
        self.concerns_owner() || matches!(self, Outcome::Failed | Outcome::Held | Outcome::OutsideWindow)
    }
}

/// The fact holding an instance's owner (the value of the policy's `notify.owner_tag`).
pub const OWNER_FACT: &str = "owner";
/// The fact holding a marked instance's deadline (RFC 3339 UTC).
pub const RELEASE_AFTER_FACT: &str = "release_after";
/// The owner named for instances without the owner tag, when the policy asks for owners.
pub const NO_OWNER: &str = "(no owner tag)";

impl Entry {
    pub fn from_decision(decision: Decision) -> Entry {
        let outcome = match &decision.verdict {
            Verdict::Release { .. } => Outcome::WouldRelease,
            Verdict::Protected { .. } => Outcome::Protected,
            Verdict::Skip { .. } => Outcome::Skipped,
            Verdict::Invalid { .. } => Outcome::Invalid,
            Verdict::Keep => Outcome::Kept,
        };
        let mut decision = decision;
        decision.facts.shrink_to_fit();
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
    /// Instances marked for a later release (or that would be, in a dry run).
    pub marked: Vec<String>,
    /// Instances whose mark was removed (or would be, in a dry run).
    pub unmarked: Vec<String>,
    pub failures: Vec<Failure>,
    pub skipped_scopes: Vec<SkippedScope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_breach: Option<LimitBreach>,
    /// API calls made, by `product:Action`.
    pub api_calls: BTreeMap<String, u64>,
    /// Summary webhook deliveries (filled after the run; a failed delivery never changes what was released).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::webhook::Delivery>,
    /// Per owner (the policy's `notify.owner_tag`), what was marked, unmarked or released for them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub owners: BTreeMap<String, Vec<OwnerNotice>>,
    /// What an event named that the janitor does not manage or the policy does not cover.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// Every instance scanned, with its decision and outcome.
    pub entries: Vec<Entry>,
}

/// One line of an owner's notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerNotice {
    /// `product:region/id`.
    pub id: String,
    pub name: String,
    pub outcome: Outcome,
    /// The deadline of a mark (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_after: Option<String>,
    pub reason: String,
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
    /// An empty summary for a run that is starting.
    pub fn new(run_id: &str, mode: &str, mode_reason: &str, trigger: &str, now: &str) -> Summary {
        Summary {
            run_id: run_id.into(),
            mode: mode.into(),
            mode_reason: mode_reason.into(),
            trigger: trigger.into(),
            now: now.into(),
            scanned: 0,
            counts: BTreeMap::new(),
            released: Vec::new(),
            would_release: Vec::new(),
            marked: Vec::new(),
            unmarked: Vec::new(),
            failures: Vec::new(),
            skipped_scopes: Vec::new(),
            limit_breach: None,
            api_calls: BTreeMap::new(),
            notifications: Vec::new(),
            owners: BTreeMap::new(),
            ignored: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Fills the derived fields (counts, id lists, failures, owners) from `entries`.
    pub fn finish(&mut self) {
        self.entries.sort_by(|a, b| {
            (&a.decision.product, &a.decision.region, &a.decision.id).cmp(&(
                &b.decision.product,
                &b.decision.region,
                &b.decision.id,
            ))
        });
        self.counts.clear();
        self.released.clear();
        self.would_release.clear();
        self.marked.clear();
        self.unmarked.clear();
        self.failures.clear();
        self.owners.clear();
        for e in &self.entries {
            let d = &e.decision;
            let key = format!("{}/{}", d.product, d.region);
            *self.counts.entry(key).or_default().entry(e.outcome.as_str().to_string()).or_default() += 1;
            let id = format!("{}:{}/{}", d.product, d.region, d.id);
            if let (Some(owner), true) = (d.facts.get(OWNER_FACT), e.outcome.concerns_owner()) {
                self.owners.entry(owner.to_string()).or_default().push(OwnerNotice {
                    id: id.clone(),
                    name: d.name.to_string(),
                    outcome: e.outcome.clone(),
                    release_after: d.facts.get(RELEASE_AFTER_FACT).map(String::from),
                    reason: reason(e),
                });
            }
            match e.outcome {
                Outcome::Released => self.released.push(id),
                Outcome::WouldRelease => self.would_release.push(id),
                Outcome::Marked | Outcome::WouldMark => self.marked.push(id),
                Outcome::Unmarked | Outcome::WouldUnmark => self.unmarked.push(id),
                Outcome::Failed => self.failures.push(Failure {
                    product: d.product.to_string(),
                    region: d.region.to_string(),
                    id: d.id.to_string(),
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

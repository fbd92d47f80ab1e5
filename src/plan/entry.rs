//! One instance's line of the plan and of the summary: its decision, outcome and the change it leads to.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Change, Decision, Verdict};

/// What happened to one instance, after planning and (dry-run or real) release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
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
    /// An earlier run's release finished: its record was removed (Kafka `DeleteInstance`).
    Finished,
    /// Would finish an earlier run's release with `--apply` / `apply: true`.
    WouldFinish,
    /// An event-triggered run already acted on this instance for this event (a duplicate delivery).
    Duplicate,
    Kept,
}

/// One instance's line in the plan and the summary: the decision, the change planned, what execution did.
// Deserialize: `aliyun-janitor report SUMMARY.json` reads a stored summary's entries back.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Entry {
    pub outcome: Outcome,
    #[serde(flatten)]
    pub decision: Decision,
    /// What the execute stage is to send for it (absent: nothing to change). Kept on a held entry, so the
    /// summary shows what the limits stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The owner (the policy's `notify.owner_tag`), when the policy asks for owners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The deadline of the instance's mark (set, or about to be set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_after: Option<DateTime<Utc>>,
    /// Alibaba error code when `outcome` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Request ids of the API calls that acted on this instance (dry run, release).
    #[serde(default, skip_serializing_if = "RequestIds::is_empty")]
    pub request_ids: RequestIds,
}

/// The request ids of the calls that acted on one instance, in order, in one string; serialised as a list. A
/// `Vec<String>` took three allocations per released instance (benchmark, 100k scenario: about 2 MB of the
/// apply peak, 24,000 released entries held for the summary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestIds(String);

impl RequestIds {
    /// Between ids; never inside one (removed from an id that carries it).
    const SEPARATOR: char = '\u{1f}';

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds an id at the end; an empty one is not an id and is skipped.
    pub fn push(&mut self, id: &str) {
        if id.chars().all(|c| c == Self::SEPARATOR) {
            return;
        }
        if !self.0.is_empty() {
            self.0.push(Self::SEPARATOR);
        }
        self.0.extend(id.chars().filter(|&c| c != Self::SEPARATOR));
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split(Self::SEPARATOR).filter(|id| !id.is_empty())
    }

    /// The ids with `sep` between them (the log line's form).
    pub fn join(&self, sep: &str) -> String {
        self.iter().collect::<Vec<_>>().join(sep)
    }
}

impl<S: AsRef<str>> Extend<S> for RequestIds {
    fn extend<I: IntoIterator<Item = S>>(&mut self, ids: I) {
        for id in ids {
            self.push(id.as_ref());
        }
        self.0.shrink_to_fit();
    }
}

impl<S: AsRef<str>> FromIterator<S> for RequestIds {
    fn from_iter<I: IntoIterator<Item = S>>(ids: I) -> Self {
        let mut out = RequestIds::default();
        out.extend(ids);
        out
    }
}

impl Serialize for RequestIds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for RequestIds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<String>::deserialize(d)?.into_iter().collect())
    }
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
            Outcome::Finished => "finished",
            Outcome::WouldFinish => "would_finish",
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
        self.concerns_owner()
            || matches!(
                self,
                Outcome::Failed | Outcome::Held | Outcome::OutsideWindow | Outcome::Finished | Outcome::WouldFinish
            )
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
        Entry {
            outcome,
            decision,
            change: None,
            owner: None,
            release_after: None,
            code: None,
            message: None,
            request_ids: RequestIds::default(),
        }
    }

    /// The owner, as a typed field and as a fact of the explanation.
    pub fn set_owner(&mut self, owner: &str) {
        self.decision.facts.insert(OWNER_FACT, owner);
        self.owner = Some(owner.to_string());
    }

    /// The mark's deadline, as a typed field and as a fact of the explanation.
    pub fn set_release_after(&mut self, at: DateTime<Utc>) {
        self.decision.facts.insert(RELEASE_AFTER_FACT, &crate::lifecycle::format_time(at));
        self.release_after = Some(at);
    }

    /// The planned change the execute stage may still carry out: none once the limits held the entry or a
    /// step failed or skipped it.
    pub fn pending_change(&self) -> Option<&Change> {
        match self.outcome {
            Outcome::Held | Outcome::Failed | Outcome::Skipped | Outcome::Protected => None,
            _ => self.change.as_ref(),
        }
    }

    /// The owner is told: a change to come (or made) to the instance's release, including an auto-release time
    /// set on a waiting instance.
    pub fn concerns_owner(&self) -> bool {
        self.outcome.concerns_owner()
            || (self.outcome == Outcome::Waiting && matches!(self.change, Some(Change::SetAutoRelease { .. })))
    }

    pub fn key(&self) -> super::ResourceKey {
        super::ResourceKey::of(&self.decision)
    }
}

#[cfg(test)]
mod tests {
    use super::RequestIds;

    #[test]
    fn request_ids_keep_their_order_and_serialise_as_a_list() {
        let mut ids: RequestIds = ["A-1", "", "B-2"].into_iter().collect();
        ids.extend(Some("C,3".to_string()));
        assert_eq!(ids.iter().collect::<Vec<_>>(), ["A-1", "B-2", "C,3"]);
        assert_eq!(ids.join(","), "A-1,B-2,C,3");
        let json = serde_json::to_string(&ids).unwrap();
        assert_eq!(json, r#"["A-1","B-2","C,3"]"#);
        assert_eq!(serde_json::from_str::<RequestIds>(&json).unwrap(), ids);
        assert!(RequestIds::default().is_empty());
        // The separator cannot split an id into two.
        let odd: RequestIds = ["x\u{1f}y"].into_iter().collect();
        assert_eq!(odd.iter().collect::<Vec<_>>(), ["xy"]);
    }
}

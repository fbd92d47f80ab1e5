//! The plan stage: one decision per instance, and the typed [`Plan`] the later stages work from.
//!
//! [`Planner::decide`] is the only decision function of the janitor. It evaluates the rules ([`rules::evaluate`]:
//! filters, vetoes, preconditions), completes them with what the product declares (state veto, charge types it
//! can release, `force`), cross-checks billing, recognises a duplicate event delivery, and applies the release
//! lifecycle ([`crate::lifecycle`]: mark state, grace, window, auto-release time). What comes out is an [`Entry`]:
//! the decision with its rule and facts, the outcome it leads to, and the [`Change`] the execute stage is to
//! carry out. The execute stage calls the same function on its pre-flight re-read and goes on only when it
//! yields the same change. No I/O here: everything is decided from the scan.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::discovery::Billing;
use crate::event::ResourceEvent;
use crate::inventory::{ChargeType, Extras, Instance, Tags, Text};
use crate::lifecycle::{self, Action, Mark, MarkKey, MarkOf, LAST_EVENT_TAG, MARK_TAGS};
use crate::limits::LimitBreach;
use crate::policy::{format_duration, Policy, Rule, WindowState, AUTO_RELEASE_MARGIN, AUTO_RELEASE_MIN};
use crate::products::{Product, ReleaseOptions};
use crate::report::SkippedScope;

mod entry;
mod rules;

pub use entry::{Entry, Outcome, RequestIds, NO_OWNER, OWNER_FACT, RELEASE_AFTER_FACT};
pub use rules::{evaluate, Decision, Facts, Verdict};

/// Whether a run changes anything. Only `Apply` writes tags or makes a real release call; both make the dry runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    DryRun,
    Apply,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::DryRun => "dry-run",
            RunMode::Apply => "apply",
        }
    }

    pub fn is_apply(self) -> bool {
        self == RunMode::Apply
    }
}

impl Serialize for RunMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One instance's identity across stages and in reports: `product:region/id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    pub product: Text,
    pub region: Text,
    pub id: Text,
}

impl ResourceKey {
    pub fn of(d: &Decision) -> ResourceKey {
        ResourceKey { product: d.product.clone(), region: d.region.clone(), id: d.id.clone() }
    }

    pub fn is(&self, d: &Decision) -> bool {
        self.product == d.product && self.region == d.region && self.id == d.id
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.product, self.region, self.id)
    }
}

impl Serialize for ResourceKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the execute stage will do to one instance: exactly what is sent, nothing decided later.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// The dry run (native, or the pre-flight re-read), then, in apply mode, the release call.
    Release {
        options: ReleaseOptions,
        /// Product values from the listing the release call needs (Redis `GlobalInstanceId`).
        #[serde(default, skip_serializing_if = "Extras::is_empty")]
        extra: Extras,
    },
    /// Write the mark (`janitor:release-after`, `janitor:rule`, for an event `janitor:last-event`); set the
    /// platform's auto-release time to the deadline when the rule asks for it.
    Mark {
        release_after: DateTime<Utc>,
        tags: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        auto_release: Option<DateTime<Utc>>,
    },
    /// A waiting instance whose platform auto-release time is not (or no longer) the mark's deadline.
    SetAutoRelease { at: DateTime<Utc> },
    /// Remove the mark tags, record the event, and cancel the auto-release time the janitor set.
    Unmark {
        remove_tags: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record_event: Option<String>,
        cancel_auto_release: bool,
    },
    /// The second step of a release an earlier run started (Kafka `DeleteInstance` once released): the
    /// instance is already released; only its record is removed.
    FinishRelease,
}

/// The kinds of change the run-wide limits count separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Release,
    /// Marks and auto-release times: each is a release a grace period later.
    Mark,
    Unmark,
    /// Finishing an earlier release: nothing more is released, so no limit counts it.
    Finish,
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::Release { .. } => ChangeKind::Release,
            Change::Mark { .. } | Change::SetAutoRelease { .. } => ChangeKind::Mark,
            Change::Unmark { .. } => ChangeKind::Unmark,
            Change::FinishRelease => ChangeKind::Finish,
        }
    }
}

/// The whole run as decided: what the later stages read and the summary is built from. Serialisable, so it is
/// printed exactly as it is executed.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub run_id: String,
    /// The account the run acts in (STS GetCallerIdentity).
    pub account_id: String,
    pub mode: RunMode,
    pub mode_reason: String,
    pub trigger: String,
    pub now: DateTime<Utc>,
    pub scanned: usize,
    /// What the run-wide percentage is of: the instances listed (or re-read) from the product APIs. Never
    /// billing-only records, which would dilute it (a thousand released RDS rows make any share look small).
    pub population: usize,
    pub entries: Vec<Entry>,
    /// Scopes that could not be read (nothing in them is planned).
    pub skipped_scopes: Vec<SkippedScope>,
    /// What an event named that the janitor does not manage or the policy does not cover.
    pub ignored: Vec<String>,
    /// Set by the limits stage when it held a kind of change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_breach: Option<LimitBreach>,
    /// Entries already final when planned and not kept in `entries` ([`EntriesMode`]): their decision lines are
    /// logged as they are decided, and only their count stays, `product/region` → outcome → count.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub settled: BTreeMap<String, BTreeMap<String, usize>>,
}

/// Which entries the plan and the summary keep (`JANITOR_SUMMARY_ENTRIES`, `--summary-entries`). Every
/// decision is logged either way; the counts always cover every instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntriesMode {
    /// `all` for runs of at most [`EntriesMode::AUTO_ALL_UP_TO`] instances, `actions` above.
    #[default]
    Auto,
    /// Every instance scanned.
    All,
    /// The entries that changed something or need a person: released, would release, marked, unmarked, finished,
    /// failed, held, manual, invalid, skipped (and their dry-run forms). Kept, protected, waiting, outside the
    /// window and duplicate deliveries are counted and logged only: memory grows with the candidates, not the
    /// population.
    Actions,
}

impl EntriesMode {
    /// Up to this many instances `auto` keeps every entry (a summary a person reads whole).
    pub const AUTO_ALL_UP_TO: usize = 1_000;

    pub fn parse(s: &str) -> Option<EntriesMode> {
        match s.trim() {
            "auto" => Some(EntriesMode::Auto),
            "all" => Some(EntriesMode::All),
            "actions" => Some(EntriesMode::Actions),
            _ => None,
        }
    }

    /// Whether a run of `population` instances keeps `e` in its entries.
    pub fn keeps(self, population: usize, e: &Entry) -> bool {
        let all = match self {
            EntriesMode::All => true,
            EntriesMode::Actions => false,
            EntriesMode::Auto => population <= Self::AUTO_ALL_UP_TO,
        };
        // An entry with a pending change is never final before the execute stage.
        all || e.pending_change().is_some()
            || e.change.is_some()
            || !matches!(
                e.outcome,
                Outcome::Kept | Outcome::Protected | Outcome::Waiting | Outcome::OutsideWindow | Outcome::Duplicate
            )
    }
}

/// Everything a decision depends on besides the instance: built once per run, shared by the plan and by the
/// execute stage's pre-flight.
pub struct Planner<'a> {
    pub policy: &'a Policy,
    pub now: DateTime<Utc>,
    pub mode: RunMode,
    /// The resources an event named (duplicate deliveries, `janitor:last-event`); `None` for a scheduled run.
    pub event: Option<&'a ResourceEvent>,
    pub billing: &'a Billing,
    /// Verifies and signs marks (`lifecycle::MarkKey`); without one no mark verifies.
    pub mark_key: Option<&'a MarkKey>,
    /// The release window of each rule (its own or the policy's) at `now`, computed once.
    windows: BTreeMap<String, WindowState>,
}

impl<'a> Planner<'a> {
    pub fn new(
        policy: &'a Policy,
        now: DateTime<Utc>,
        mode: RunMode,
        event: Option<&'a ResourceEvent>,
        billing: &'a Billing,
    ) -> Self {
        let windows = policy
            .rules
            .iter()
            .filter_map(|r| Some((r.name.clone(), r.window.as_ref().or(policy.window.as_ref())?.state_at(now))))
            .collect();
        Planner { policy, now, mode, event, billing, mark_key: None, windows }
    }

    /// The one decision for a listed (or re-read) instance of `product`.
    /// Whether the facts a product's listing lacks (`Product::listing_lacks_details`: a protection flag) could
    /// change this instance's outcome. Decided on the listing's facts: an instance that no rule matches (`kept`) or
    /// that a tag already protects, with nothing to change, ends the same whatever the details say; any other
    /// (a release, a mark, an unmark, a manual or skipped candidate) has its details read before it is decided.
    pub fn needs_details(&self, product: &dyn Product, listed: &Instance) -> bool {
        let e = self.decide(product, listed);
        !(e.change.is_none() && matches!(e.outcome, Outcome::Kept | Outcome::Protected))
    }

    pub fn decide(&self, product: &dyn Product, instance: &Instance) -> Entry {
        if let Some(seen) = product.finish_release().and_then(|f| f.awaiting(instance)) {
            return self.finish(instance, seen);
        }
        let mut d = evaluate(instance, self.policy, self.now);
        let spec = product.spec();
        let force = self.rule(&d).is_some_and(|r| r.force);
        if let Verdict::Release { options } = &mut d.verdict {
            // A charge type the API cannot release is reported "release by hand", whatever its state.
            let veto = spec.releases(instance.charge_type).then(|| product.state_veto(instance)).flatten();
            if let Some(reason) = veto {
                d.verdict = Verdict::Skip { reason };
            } else if spec.force_from_rule {
                options.force = force;
            }
        }
        let mut entry = Entry::from_decision(d);
        if let Some(owner_tag) = &self.policy.notify.owner_tag {
            let owner = instance.tags.get(owner_tag).filter(|o| !o.trim().is_empty()).unwrap_or(NO_OWNER);
            entry.set_owner(owner);
        }
        self.billing.cross_check(&mut entry, instance);
        if let Some(seen) = self.duplicate_of(&entry.decision, &instance.tags) {
            entry.outcome = Outcome::Duplicate;
            entry.message = Some(format!(
                "event {seen} was already processed for this instance ({LAST_EVENT_TAG}): nothing done twice"
            ));
            return entry;
        }
        if entry.decision.is_release() && !spec.releases(instance.charge_type) {
            entry.outcome = Outcome::Manual;
            entry.message = Some(format!(
                "eligible, but {} cannot release {} instances by API: release it by hand",
                spec.code, instance.charge_type
            ));
            return entry;
        }
        let current = product.auto_release().and_then(|a| a.scheduled(instance));
        let target = Target {
            tags: &instance.tags,
            can_tag: product.tagging().is_some(),
            auto_release: product.auto_release().is_some() && instance.charge_type == ChargeType::PayAsYouGo,
            current_auto_release: current,
            extra: &instance.extra,
        };
        self.lifecycle(&mut entry, &target);
        entry
    }

    /// An instance the janitor released earlier whose record is still listed: the release is finished, whatever
    /// the rules say now (the instance is released either way). Counted by no limit; dry runs only report it.
    fn finish(&self, instance: &Instance, seen: String) -> Entry {
        let mut d = evaluate(instance, self.policy, self.now);
        d.verdict = Verdict::Skip { reason: seen.clone() };
        let mut entry = Entry::from_decision(d);
        entry.outcome = if self.mode.is_apply() { Outcome::Finished } else { Outcome::WouldFinish };
        entry.message = Some(seen);
        entry.change = Some(Change::FinishRelease);
        entry
    }

    /// The decision for an instance only billing knows (no adapter, or not returned by its product's API): no
    /// tags, so no marks; evaluated, cross-checked and windowed like any other.
    pub fn decide_billed(&self, mut entry: Entry) -> Entry {
        if self.policy.notify.owner_tag.is_some() && entry.owner.is_none() {
            entry.set_owner(NO_OWNER);
        }
        if entry.outcome == Outcome::Manual || !entry.decision.is_release() {
            return entry;
        }
        let empty = Tags::new();
        let target = Target {
            tags: &empty,
            can_tag: false,
            auto_release: false,
            current_auto_release: None,
            extra: &Extras::new(),
        };
        self.lifecycle(&mut entry, &target);
        entry
    }

    fn rule(&self, d: &Decision) -> Option<&'a Rule> {
        d.rule.as_deref().and_then(|name| self.policy.rules.iter().find(|r| r.name == name))
    }

    /// The event id, among those that named this instance, that an earlier delivery already acted on.
    fn duplicate_of(&self, d: &Decision, tags: &Tags) -> Option<String> {
        let seen = tags.get(LAST_EVENT_TAG)?;
        let named =
            self.event?.targets.iter().find(|t| t.product == d.product && t.region == d.region && t.id == d.id)?;
        named.event_ids.iter().any(|id| id == seen).then(|| seen.to_string())
    }

    /// The latest event id that named this instance, recorded with a mark or an unmark.
    fn last_event(&self, d: &Decision) -> Option<String> {
        let named =
            self.event?.targets.iter().find(|t| t.product == d.product && t.region == d.region && t.id == d.id)?;
        named.event_ids.last().cloned()
    }

    /// The lifecycle of one evaluated entry: sets its outcome, message, deadline and change.
    fn lifecycle(&self, entry: &mut Entry, target: &Target<'_>) {
        let apply = self.mode.is_apply();
        let rule = self.rule(&entry.decision);
        let window_of = rule.and_then(|r| r.window.as_ref()).or(self.policy.window.as_ref());
        // Computed once per rule in `new`; an entry without a rule is never released, so its window is moot.
        let window = rule.and_then(|r| self.windows.get(&r.name)).cloned().unwrap_or(WindowState::Always);
        let d = &entry.decision;
        let who = MarkOf { product: &d.product, region: &d.region, id: &d.id };
        let mark = lifecycle::read_mark(target.tags, self.mark_key, &who);
        let grace = rule.map_or(Duration::ZERO, |r| r.grace);
        let ctx = lifecycle::Context { now: self.now, grace, window, can_tag: target.can_tag };
        let action = lifecycle::decide(&entry.decision, &mark, &ctx);
        if let Mark::Set { release_after, .. } = &mark {
            if entry.decision.is_release() {
                entry.set_release_after(*release_after);
            }
        }
        // The auto-release time the rule wants for a deadline, when the product and the instance support one and
        // the deadline is far enough ahead for the platform to accept it.
        // Setting one is a release decision: it is planned like a mark (limits, notice), and only for a deadline
        // inside the release window, since the platform releases at that time whatever the window says.
        let wants_auto_release = |at: DateTime<Utc>| {
            // The platform's 30 minutes, plus the margin for the time until the call is made.
            let earliest = chrono::Duration::from_std(AUTO_RELEASE_MIN + AUTO_RELEASE_MARGIN)
                .ok()
                .and_then(|d| self.now.checked_add_signed(d));
            let in_window = window_of.is_none_or(|w| w.state_at(at).is_open());
            let wanted =
                rule.is_some_and(|r| r.auto_release) && target.auto_release && earliest.is_some_and(|e| at >= e);
            (wanted && in_window).then_some(at)
        };
        let rule_name = entry.decision.rule.clone().unwrap_or_default();
        match action {
            Action::Leave => {}
            Action::Release => {
                let Verdict::Release { options } = entry.decision.verdict else { return };
                // Not "no longer eligible": the mark (if any) stays, and the next run that can read billing decides.
                if let (true, Some(why)) = (options.terminate_subscription, self.billing.holds_release()) {
                    entry.outcome = Outcome::Skipped;
                    entry.message = Some(why);
                    return;
                }
                entry.change = Some(Change::Release { options, extra: target.extra.clone() });
            }
            Action::Mark { release_after, previous_rule, replaced } => {
                let at = lifecycle::format_time(release_after);
                entry.set_release_after(release_after);
                let mut again = previous_rule
                    .map(|r| format!("; re-marked: it now matches rule {rule_name}, not {r}"))
                    .unwrap_or_default();
                if replaced {
                    again.push_str("; mark not written by the janitor: replaced");
                }
                entry.outcome = if apply { Outcome::Marked } else { Outcome::WouldMark };
                let verb = if apply { "marked" } else { "would be marked" };
                let grace = format_duration(grace);
                entry.message = Some(format!("{verb} for release after {at} (rule {rule_name}, grace {grace}){again}"));
                let d = &entry.decision;
                let who = MarkOf { product: &d.product, region: &d.region, id: &d.id };
                let mut tags = lifecycle::mark_tags(release_after, &rule_name, self.mark_key, &who);
                if let Some(ev) = self.last_event(&entry.decision) {
                    tags.insert(LAST_EVENT_TAG.into(), ev);
                }
                let auto_release = wants_auto_release(release_after)
                    .filter(|at| !target.current_auto_release.is_some_and(|c| lifecycle::is_auto_release_for(c, *at)));
                entry.change = Some(Change::Mark { release_after, tags, auto_release });
            }
            Action::Wait { release_after } => {
                entry.outcome = Outcome::Waiting;
                let left = (release_after - self.now).to_std().map(format_duration).unwrap_or_default();
                entry.message = Some(format!(
                    "marked; released after {} ({left} from now) if it still matches",
                    lifecycle::format_time(release_after)
                ));
                // Repaired when it is missing or moved: the platform releases at its own time, not the mark's.
                let repair = wants_auto_release(release_after)
                    .filter(|at| !target.current_auto_release.is_some_and(|c| lifecycle::is_auto_release_for(c, *at)));
                if let (Some(at), false) = (repair, apply) {
                    let note =
                        format!("; the platform's auto-release time would be set to {}", lifecycle::format_time(at));
                    entry.message = entry.message.take().map(|m| m + &note);
                }
                entry.change = repair.map(|at| Change::SetAutoRelease { at });
            }
            Action::Unmark { why } => {
                entry.outcome = if apply { Outcome::Unmarked } else { Outcome::WouldUnmark };
                let was = match &mark {
                    Mark::Set { release_after, .. } | Mark::Unverified { release_after } => {
                        format!(" (was: release after {})", lifecycle::format_time(*release_after))
                    }
                    _ => String::new(),
                };
                let verb = if apply { "mark removed" } else { "mark would be removed" };
                let mut message = format!("{verb}{was}: {why}");
                // Only the auto-release time matching the janitor's mark is cancelled: an owner's own is theirs.
                let cancel = match (&mark, target.current_auto_release) {
                    (Mark::Set { release_after, .. }, Some(c)) if lifecycle::is_auto_release_for(c, *release_after) => {
                        true
                    }
                    (_, Some(c)) => {
                        message.push_str(&format!(
                            "; its auto-release time {} was not set by the janitor and is left as it is",
                            lifecycle::format_time(c)
                        ));
                        false
                    }
                    _ => false,
                };
                entry.message = Some(message);
                entry.change = Some(Change::Unmark {
                    remove_tags: MARK_TAGS.iter().map(|t| t.to_string()).collect(),
                    record_event: self.last_event(&entry.decision),
                    cancel_auto_release: cancel,
                });
            }
            Action::OutsideWindow { next } => {
                entry.outcome = Outcome::OutsideWindow;
                let window = window_of.map(|w| w.describe()).unwrap_or_default();
                let next = next.map_or_else(
                    || "it names no future opening".to_string(),
                    |t| format!("next opening {}", lifecycle::format_time(t)),
                );
                entry.message = Some(format!("due for release, but outside the release window {window}; {next}"));
            }
            Action::CannotMark { reason } => {
                entry.outcome = Outcome::Skipped;
                entry.message = Some(reason);
            }
            Action::Untrusted { reason } => {
                entry.outcome = Outcome::Invalid;
                entry.message = Some(reason);
            }
        }
    }
}

/// What the lifecycle needs to know of the instance and its product.
struct Target<'t> {
    tags: &'t Tags,
    can_tag: bool,
    /// The product has a platform auto-release time and the instance is pay-as-you-go.
    auto_release: bool,
    current_auto_release: Option<DateTime<Utc>>,
    extra: &'t Extras,
}

/// Decides every scanned instance (and the instances only billing knows) into a [`Plan`], scope by scope as the
/// scan hands them on ([`Planning::add`]): an entry final when planned is logged at once and only counted
/// unless [`EntriesMode`] keeps it; every instance is dropped once decided.
pub struct Planning<'p> {
    planner: &'p Planner<'p>,
    plan: Plan,
    mode: EntriesMode,
    /// `auto` turned into `actions` (the run passed [`EntriesMode::AUTO_ALL_UP_TO`] instances).
    swept: bool,
    listed: crate::discovery::Listed,
}

impl<'p> Planning<'p> {
    pub fn new(planner: &'p Planner<'p>, header: Plan, mode: EntriesMode) -> Self {
        Planning { planner, plan: header, mode, swept: false, listed: Default::default() }
    }

    /// Decides one scope's instances.
    pub fn add(&mut self, listing: crate::scan::ScopeListing) {
        let code = listing.product.code();
        self.listed.scopes.insert((code.to_string(), listing.region.clone()));
        self.plan.scanned += listing.instances.len();
        self.plan.population += listing.instances.len();
        for instance in listing.instances {
            if self.planner.billing.lists(code, &listing.region, &instance.id) {
                self.listed.ids.insert((code.to_string(), listing.region.clone(), instance.id.to_string()));
            }
            let e = self.planner.decide(listing.product.as_ref(), &instance);
            self.keep(e);
        }
    }

    /// What the listings showed that billing's own entries need (`Billing::billed_only`).
    pub fn listed(&self) -> &crate::discovery::Listed {
        &self.listed
    }

    /// Adds the entries only billing knows, and answers the plan.
    pub fn finish(mut self, billed_only: Vec<Entry>) -> Plan {
        self.plan.scanned += billed_only.len();
        for e in billed_only {
            let e = self.planner.decide_billed(e);
            self.keep(e);
        }
        self.plan.entries.shrink_to_fit();
        self.plan
    }

    fn keep(&mut self, e: Entry) {
        if self.mode == EntriesMode::Auto && !self.swept && self.plan.scanned > EntriesMode::AUTO_ALL_UP_TO {
            // Past the size a person reads whole: what was kept so far and is final is settled now.
            self.swept = true;
            for kept in std::mem::take(&mut self.plan.entries) {
                self.settle_or_keep(kept);
            }
        }
        self.settle_or_keep(e);
    }

    fn settle_or_keep(&mut self, e: Entry) {
        let mode = if self.swept { EntriesMode::Actions } else { self.mode };
        if mode.keeps(self.plan.scanned, &e) {
            self.plan.entries.push(e);
        } else {
            // Final now: its line is written at once and only its count is held.
            crate::report::log_entry(&e, &self.plan.account_id);
            let key = format!("{}/{}", e.decision.product, e.decision.region);
            *self.plan.settled.entry(key).or_default().entry(e.outcome.as_str().to_string()).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests;

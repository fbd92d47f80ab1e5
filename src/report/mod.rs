//! The run summary (the function's return value and the CLI's stdout) and per-instance decision logs.
//! Nothing secret is ever put in here: errors carry codes, messages and request ids, never URLs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::limits::LimitBreach;
use crate::plan::{Plan, RunMode};

pub use crate::plan::{Entry, Outcome, NO_OWNER, OWNER_FACT, RELEASE_AFTER_FACT};

pub mod explain;
mod logs;

pub use logs::log_entry;

pub use explain::reason;

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
    /// The account the run acted in (STS GetCallerIdentity), on every log line and webhook message too.
    pub account_id: String,
    /// `apply` or `dry-run`.
    pub mode: RunMode,
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
    /// Releases an earlier run started and this one finished (or would, in a dry run): Kafka's record removed.
    pub finished: Vec<String>,
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
    /// The instances that changed something or need a person, with their decision and outcome; every instance
    /// scanned in small runs or with `JANITOR_SUMMARY_ENTRIES=all` (`plan::EntriesMode`). `counts` covers all.
    pub entries: Vec<Entry>,
    /// Entries left out of a function's answer to fit the platform's limit ([`Summary::fit_answer`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub entries_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a function's answer may hold, in bytes of JSON: AWS Lambda refuses a buffered response over 6 MB,
/// Function Compute a synchronous one over 32 MB (their limits pages). A 100,000-instance run's summary is
/// about 30 MB (benchmark, 100k scenario).
pub const ANSWER_BUDGET: usize = 5 * 1024 * 1024;

/// Bytes of compact JSON, counted without building the text.
fn json_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising plain data into a counter cannot fail; an error would count as "too large".
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
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
    /// The summary of an executed plan (`api_calls` and `notifications` are filled by the report stage).
    pub fn from_plan(plan: Plan) -> Summary {
        let mut summary = Summary {
            run_id: plan.run_id,
            account_id: plan.account_id,
            mode: plan.mode,
            mode_reason: plan.mode_reason,
            trigger: plan.trigger,
            now: crate::lifecycle::format_time(plan.now),
            scanned: plan.scanned,
            counts: BTreeMap::new(),
            released: Vec::new(),
            would_release: Vec::new(),
            marked: Vec::new(),
            unmarked: Vec::new(),
            finished: Vec::new(),
            failures: Vec::new(),
            skipped_scopes: plan.skipped_scopes,
            limit_breach: plan.limit_breach,
            api_calls: BTreeMap::new(),
            notifications: Vec::new(),
            owners: BTreeMap::new(),
            ignored: plan.ignored,
            entries: plan.entries,
            entries_omitted: 0,
        };
        summary.finish();
        // The entries the plan settled early are counted, never held (`plan::EntriesMode`).
        for (scope, outcomes) in plan.settled {
            let counts = summary.counts.entry(scope).or_default();
            for (outcome, n) in outcomes {
                *counts.entry(outcome).or_default() += n;
            }
        }
        summary
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
        self.finished.clear();
        self.failures.clear();
        self.owners.clear();
        for e in &self.entries {
            let d = &e.decision;
            let key = format!("{}/{}", d.product, d.region);
            *self.counts.entry(key).or_default().entry(e.outcome.as_str().to_string()).or_default() += 1;
            let id = format!("{}:{}/{}", d.product, d.region, d.id);
            if let (Some(owner), true) = (&e.owner, e.concerns_owner()) {
                self.owners.entry(owner.to_string()).or_default().push(OwnerNotice {
                    id: id.clone(),
                    name: d.name.to_string(),
                    outcome: e.outcome.clone(),
                    release_after: e.release_after.map(crate::lifecycle::format_time),
                    reason: reason(e),
                });
            }
            match e.outcome {
                Outcome::Released => self.released.push(id),
                Outcome::WouldRelease => self.would_release.push(id),
                Outcome::Marked | Outcome::WouldMark => self.marked.push(id),
                Outcome::Unmarked | Outcome::WouldUnmark => self.unmarked.push(id),
                Outcome::Finished | Outcome::WouldFinish => self.finished.push(id),
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

    /// Drops the entries (in their order) past `budget` bytes of JSON, and counts them in `entries_omitted`:
    /// a function's answer must fit its platform's limit, or the invocation fails after the run acted, and
    /// a scheduled one is retried. Nothing is lost: every decision has its log line, every id is in the id
    /// lists, every failure in `failures`.
    pub fn fit_answer(&mut self, budget: usize) {
        if json_len(self) <= budget {
            return;
        }
        let entries = std::mem::take(&mut self.entries);
        // Room for the `entries_omitted` field too.
        let mut used = json_len(self).saturating_add(40);
        let keep = entries
            .iter()
            .take_while(|e| {
                used = used.saturating_add(json_len(e) + 1);
                used <= budget
            })
            .count();
        self.entries = entries;
        self.entries_omitted += self.entries.len() - keep;
        self.entries.truncate(keep);
        if self.entries_omitted > 0 {
            tracing::warn!(
                run_id = self.run_id,
                kept = keep,
                omitted = self.entries_omitted,
                budget,
                "the answer holds only the first entries (the platform limits its size); every decision is in the logs"
            );
        }
    }

    /// True when the run did not do everything it set out to do (a scope unscanned, a failure, a limit breach).
    pub fn is_degraded(&self) -> bool {
        !self.failures.is_empty() || !self.skipped_scopes.is_empty() || self.limit_breach.is_some()
    }
}

/// The report stage: the summary of the executed plan, the run's log line, and the summary webhooks. An event
/// run that changed nothing (the usual case: a tag that does not concern the janitor) is not announced. A failed
/// delivery is recorded in `notifications` and never changes what was done.
pub async fn report(
    plan: Plan,
    api_calls: BTreeMap<String, u64>,
    http: &reqwest::Client,
    webhooks: &[crate::webhook::WebhookTarget],
    event_run: bool,
) -> Summary {
    let mut summary = Summary::from_plan(plan);
    summary.api_calls = api_calls;
    // Every decision's line is already written: by the plan stage when final there, else by the execute stage.
    logs::log_run(&summary);
    let worth_telling = !event_run || summary.is_degraded() || summary.entries.iter().any(|e| e.outcome.is_change());
    if !webhooks.is_empty() && worth_telling {
        summary.notifications = logs::log_deliveries(crate::webhook::deliver_all(http, webhooks, &summary).await);
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_answer_keeps_the_entries_that_fit_and_counts_the_rest() {
        let mut s = explain::tests::summary(200);
        let whole = json_len(&s);
        let all = s.entries.len();
        s.fit_answer(whole);
        assert_eq!((s.entries.len(), s.entries_omitted), (all, 0), "a summary within the budget is whole");
        let budget = whole / 2;
        s.fit_answer(budget);
        assert!(s.entries_omitted > 0 && !s.entries.is_empty(), "{} kept", s.entries.len());
        assert_eq!(s.entries.len() + s.entries_omitted, all);
        assert!(json_len(&s) <= budget, "{} > {budget}", json_len(&s));
        // The id lists and counts still cover every instance.
        assert_eq!(s.would_release.len(), 200);
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(&format!("\"entries_omitted\":{}", s.entries_omitted)), "{text}");
    }
}

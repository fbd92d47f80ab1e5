//! The shard contract: what the three steps of an organisation run take and give, as JSON. The same shapes go
//! through AWS Step Functions (plan → Map over `shards` → merge), Alibaba CloudFlow, and the local runner, so the
//! merge step decides nothing the shards did not: it only adds up what they report.
//!
//! Every document stays far below Step Functions' 256 KiB per state input/output: a shard is a list of ids, and a
//! shard's result holds counts and at most [`MAX_IDS`] ids per list per account (the per-instance detail is in that
//! account's decision log lines, which every shard writes as it runs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Ids kept per list (released, held, failed...) per account in a shard result.
pub const MAX_IDS: usize = 20;
/// Step Functions' limit on a state's input or output (and on the Map state's collected results).
pub const STEP_FUNCTIONS_PAYLOAD_LIMIT: usize = 256 * 1024;
/// CloudFlow's limit on a state's input and output ("Inputs and outputs": 64 KiB; "Limits": 64 KiB per event).
pub const CLOUDFLOW_PAYLOAD_LIMIT: usize = 64 * 1024;
/// Room kept under an engine's limit for what the budgets do not count: the merge document's own fields, the
/// results array's separators and a failed shard's `{"shard_id", "error"}` in place of its answer.
const WORKFLOW_MARGIN: usize = 8 * 1024;
/// Below this many bytes per account an answer cannot even hold an account's counts: the plan refuses.
pub const MIN_ACCOUNT_ANSWER_BYTES: usize = 128;

/// What starts an organisation step: `{"janitor_step": "plan" | "run_shard" | "merge", ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "janitor_step", rename_all = "snake_case")]
pub enum Step {
    /// Lists the accounts and splits the work. Optional `counts` from last run size the shards.
    Plan {
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        counts: BTreeMap<String, u64>,
        /// The workflow engine that will carry the plan (`step_functions` or `cloudflow`): the answer is then a
        /// [`WorkflowPlan`] sized to that engine's payload limit. Absent: the plain [`Plan`] (local runner, CLI).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_workflow: Option<WorkflowEngine>,
    },
    /// Runs one shard of a plan.
    RunShard { org_run_id: String, now: String, shard: Shard },
    /// Adds the shards' results up into one summary and one webhook message. A shard that failed as a whole (a
    /// Step Functions catch) is passed as `{"shard_id": ..., "error": ...}`.
    Merge {
        org_run_id: String,
        now: String,
        plan: PlanSummary,
        results: Vec<ShardOutcome>,
        /// Set by a workflow engine: the answer then leaves out the per-account sections (they are in the webhook
        /// message and the shards' logs), so it stays within the engine's limit like the results it adds up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_workflow: Option<WorkflowEngine>,
    },
}

/// One unit of work: some accounts, some regions, and its share of the organisation-wide release cap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Shard {
    pub id: String,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// Releases (and marks) this shard may make in all, when the policy caps the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<usize>,
    /// The planner's estimate of the shard's run time, in seconds.
    pub estimated_secs: u64,
    /// The most bytes the shard's answer may take (set for a workflow engine, see [`Plan::for_workflow`]): the
    /// shard cuts detail from its answer ([`ShardResult::fit`]) so that all answers together, which travel in one
    /// state to the merge step, stay under the engine's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_bytes: Option<usize>,
}

/// The plan step's answer: the shards to map over, and what the merge step needs to know of the plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub org_run_id: String,
    /// When the plan was made (RFC 3339): the organisation summary's time. Each shard judges the policy at its own
    /// clock (a past clock is a replay and forces a dry run) and refuses to run more than a day after this
    /// (`run::check_shard_age`).
    pub now: String,
    pub shards: Vec<Shard>,
    pub summary: PlanSummary,
}

/// The part of the plan the merge step reads (kept small: it travels beside the results).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PlanSummary {
    /// Accounts planned, in shards.
    pub accounts: usize,
    pub shards: usize,
    /// Accounts left out by `exclude:` or because their membership is not active, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<AccountNote>,
    /// The management identity that planned (account id).
    pub planned_by: String,
    pub mode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountNote {
    pub account_id: String,
    pub reason: String,
}

/// A shard's answer, or the error of a shard that failed as a whole.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ShardOutcome {
    Done(ShardResult),
    Failed { shard_id: String, error: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardResult {
    pub shard_id: String,
    pub accounts: Vec<AccountResult>,
    /// Wall time of the shard, in milliseconds.
    pub elapsed_ms: u64,
}

/// One account of a shard.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountResult {
    pub account_id: String,
    pub status: AccountStatus,
    /// Why the account was skipped (AssumeRole denied, account suspended...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// outcome → count, over every region of the shard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, usize>,
    /// `product/region` → instances scanned (what the next plan sizes shards by).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scanned: BTreeMap<String, u64>,
    /// At most `MAX_IDS` ids per list; `truncated` says a list was cut.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ids: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// A limit held this account's changes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_breach: Option<String>,
    /// Scopes that could not be listed, as `product/region: code`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_scopes: Vec<String>,
    pub degraded: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Ran,
    Skipped,
}

/// The organisation's summary: per-account sections and totals, from the shards' results only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrgSummary {
    pub org_run_id: String,
    pub now: String,
    pub mode: String,
    pub planned_by: String,
    /// outcome → count over every account.
    pub totals: BTreeMap<String, usize>,
    pub accounts_planned: usize,
    pub accounts_ran: usize,
    /// Accounts not run: skipped by their shard, in a shard that failed, or missing from the results.
    pub accounts_skipped: Vec<AccountNote>,
    pub accounts_held: Vec<AccountNote>,
    pub excluded: Vec<AccountNote>,
    pub shards: usize,
    pub shards_failed: Vec<AccountNote>,
    /// The longest shard's wall time, in milliseconds.
    pub longest_shard_ms: u64,
    pub accounts: Vec<AccountResult>,
    pub degraded: bool,
}

/// The workflow engine a plan is made for: it sets the payload limit the shards' answers share.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum WorkflowEngine {
    /// AWS Step Functions (template.yaml): 256 KiB per state input or output.
    #[serde(rename = "step_functions")]
    StepFunctions,
    /// Alibaba CloudFlow (deploy/cloudflow.yaml): 64 KiB per state input and output.
    #[serde(rename = "cloudflow")]
    CloudFlow,
}

impl WorkflowEngine {
    pub fn payload_limit(self) -> usize {
        match self {
            WorkflowEngine::StepFunctions => STEP_FUNCTIONS_PAYLOAD_LIMIT,
            WorkflowEngine::CloudFlow => CLOUDFLOW_PAYLOAD_LIMIT,
        }
    }

    fn name(self) -> &'static str {
        match self {
            WorkflowEngine::StepFunctions => "Step Functions",
            WorkflowEngine::CloudFlow => "CloudFlow",
        }
    }
}

/// The plan step's answer to a workflow engine: the plan with each shard's answer budget, and, for CloudFlow,
/// whose Map state hands each iteration its item only (no item selector to add the run's id and clock), each
/// shard's whole `run_shard` document in `runs` instead of `shards`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkflowPlan {
    #[serde(flatten)]
    pub plan: Plan,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Step>,
}

fn json_len(v: &impl Serialize) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

impl Plan {
    /// Sizes the plan for `engine`: the state after the Map carries the plan and every shard's answer, so the
    /// room left under the engine's limit (less the plan itself and a margin) is shared out per account, and each
    /// shard may answer with its accounts' share. An organisation too large for the engine is refused here, before
    /// anything runs, rather than failing the workflow after the shards have released.
    pub fn for_workflow(mut self, engine: WorkflowEngine) -> Result<WorkflowPlan, String> {
        let limit = engine.payload_limit();
        // Measured with the widest budget value, so the final plan is no larger than the one measured.
        for s in &mut self.shards {
            s.answer_bytes = Some(limit);
        }
        // What travels beside the results to the merge: on Step Functions the Map's output keeps its input (the
        // plan, shards included: ResultPath $.results); CloudFlow's Map output is built anew from the plan's id,
        // clock and summary (deploy/cloudflow.yaml), the runs left behind.
        let plan_bytes = match engine {
            WorkflowEngine::StepFunctions => json_len(&Self::shaped(self.clone(), engine)),
            WorkflowEngine::CloudFlow => {
                json_len(&self.summary) + json_len(&self.org_run_id) + json_len(&self.now) + 64
            }
        };
        let appearances: usize = self.shards.iter().map(|s| s.accounts.len()).sum::<usize>().max(1);
        let per_account = limit.saturating_sub(plan_bytes.saturating_add(WORKFLOW_MARGIN)) / appearances;
        if per_account < MIN_ACCOUNT_ANSWER_BYTES {
            return Err(format!(
                "the plan ({} accounts, {} shards, {plan_bytes} bytes) leaves {per_account} bytes per account under \
                 {}'s {} KiB state limit (at least {MIN_ACCOUNT_ANSWER_BYTES} needed): nothing was run; split the \
                 organisation (accounts: folder or ids) into several workflows",
                self.summary.accounts,
                self.shards.len(),
                engine.name(),
                limit / 1024
            ));
        }
        for s in &mut self.shards {
            s.answer_bytes = Some(per_account * s.accounts.len());
        }
        Ok(Self::shaped(self, engine))
    }

    fn shaped(mut plan: Plan, engine: WorkflowEngine) -> WorkflowPlan {
        match engine {
            WorkflowEngine::StepFunctions => WorkflowPlan { plan, runs: Vec::new() },
            WorkflowEngine::CloudFlow => {
                let (org_run_id, now) = (plan.org_run_id.clone(), plan.now.clone());
                let runs = plan
                    .shards
                    .drain(..)
                    .map(|shard| Step::RunShard { org_run_id: org_run_id.clone(), now: now.clone(), shard })
                    .collect();
                WorkflowPlan { plan, runs }
            }
        }
    }
}

/// Strings kept in a shard's answer when it must be cut to its budget (the full text is in the shard's logs).
const CUT_TEXT_CHARS: usize = 120;

/// A limit breach's reason when even the cut answer is over budget.
const SHORT_BREACH_CHARS: usize = 40;

fn cut_text(s: &mut String) -> bool {
    match s.char_indices().nth(CUT_TEXT_CHARS) {
        Some((at, _)) => {
            s.truncate(at);
            s.push('…');
            true
        }
        None => false,
    }
}

impl ShardResult {
    /// Cuts detail, least useful first, until the answer takes at most `max_bytes` as JSON: ids beyond a few per
    /// list, then the scanned counts, then every id, then all but one unlisted scope and long reasons. Counts,
    /// statuses and limit breaches stay; an account that lost anything says `truncated`. True when it fits.
    pub fn fit(&mut self, max_bytes: usize) -> bool {
        let fits = |r: &ShardResult| json_len(r) <= max_bytes;
        if fits(self) {
            return true;
        }
        for keep in [10, 5, 2, 1, 0] {
            for a in &mut self.accounts {
                for list in a.ids.values_mut() {
                    if list.len() > keep {
                        list.truncate(keep);
                        a.truncated = true;
                    }
                }
                a.ids.retain(|_, l| !l.is_empty());
            }
            if fits(self) {
                return true;
            }
            if keep == 5 {
                for a in &mut self.accounts {
                    if !a.scanned.is_empty() {
                        a.scanned.clear();
                        a.truncated = true;
                    }
                }
                if fits(self) {
                    return true;
                }
            }
        }
        for a in &mut self.accounts {
            if a.skipped_scopes.len() > 1 {
                a.skipped_scopes.truncate(1);
                a.truncated = true;
            }
            let mut cut = a.skipped_scopes.iter_mut().fold(false, |c, s| cut_text(s) | c);
            cut |= a.reason.as_mut().is_some_and(cut_text);
            cut |= a.limit_breach.as_mut().is_some_and(cut_text);
            a.truncated |= cut;
        }
        if fits(self) {
            return true;
        }
        // Last: the unlisted scopes go (`degraded` still says so) and a breach keeps only its first words.
        for a in &mut self.accounts {
            if !a.skipped_scopes.is_empty() {
                a.skipped_scopes.clear();
                a.truncated = true;
            }
            if let Some(b) = a.limit_breach.as_mut() {
                if let Some((at, _)) = b.char_indices().nth(SHORT_BREACH_CHARS) {
                    b.truncate(at);
                    b.push('…');
                    a.truncated = true;
                }
            }
        }
        fits(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(i: usize, ids_per_list: usize) -> AccountResult {
        let ids = ["released", "would_release", "marked", "unmarked", "finished", "held", "failed"]
            .iter()
            .map(|k| (k.to_string(), (0..ids_per_list).map(|n| format!("ecs:cn-hangzhou/i-bp1{n:019}")).collect()))
            .collect();
        AccountResult {
            account_id: format!("{}", 1_000_000_000_000_000u64 + i as u64),
            status: AccountStatus::Ran,
            reason: None,
            counts: [("kept".to_string(), 90), ("would_release".to_string(), 10)].into(),
            scanned: (0..20).map(|r| (format!("ecs/region-{r}"), 100)).collect(),
            ids,
            truncated: false,
            limit_breach: Some("x".repeat(400)),
            skipped_scopes: (0..5).map(|r| format!("redis/region-{r}: Forbidden.RAM")).collect(),
            degraded: false,
        }
    }

    fn result(accounts: usize) -> ShardResult {
        ShardResult {
            shard_id: "shard-0001".into(),
            accounts: (0..accounts).map(|i| account(i, MAX_IDS)).collect(),
            elapsed_ms: 1,
        }
    }

    #[test]
    fn fit_keeps_an_answer_that_fits_as_it_is() {
        let mut r = result(2);
        let before = r.clone();
        assert!(r.fit(1 << 20));
        assert_eq!(r, before);
    }

    #[test]
    fn fit_cuts_ids_first_and_keeps_counts_and_breaches() {
        let mut r = result(10);
        let full = json_len(&r);
        assert!(r.fit(full / 2), "{} > {}", json_len(&r), full / 2);
        assert!(json_len(&r) <= full / 2);
        for a in &r.accounts {
            assert!(a.truncated);
            assert_eq!(a.counts["would_release"], 10, "counts are never cut");
            assert!(a.limit_breach.is_some());
            assert!(a.ids.values().all(|l| !l.is_empty() && l.len() < MAX_IDS));
        }
    }

    #[test]
    fn fit_goes_down_to_counts_only_and_says_when_it_cannot() {
        let mut r = result(10);
        assert!(r.fit(10 * 400), "{}", json_len(&r));
        assert!(r.accounts.iter().all(|a| a.ids.is_empty() && a.scanned.is_empty() && a.skipped_scopes.len() == 1));
        assert!(r.accounts.iter().all(|a| a.limit_breach.as_ref().unwrap().chars().count() == CUT_TEXT_CHARS + 1));
        let mut r = result(10);
        assert!(!r.fit(10 * 50), "an answer cannot hold ten accounts in 500 bytes");
    }

    fn plan(accounts: usize, per_shard: usize) -> Plan {
        let ids: Vec<String> = (0..accounts).map(|i| format!("{}", 1_000_000_000_000_000u64 + i as u64)).collect();
        let regions: Vec<String> = (0..20).map(|r| format!("region-{r:02}")).collect();
        Plan {
            org_run_id: "5b1f8a5e-0000-4000-8000-000000000000".into(),
            now: "2026-12-01T19:00:00Z".into(),
            shards: ids
                .chunks(per_shard)
                .enumerate()
                .map(|(i, c)| Shard {
                    id: format!("shard-{:04}", i + 1),
                    accounts: c.to_vec(),
                    regions: regions.clone(),
                    budget: Some(5),
                    estimated_secs: 30,
                    answer_bytes: None,
                })
                .collect(),
            summary: PlanSummary {
                accounts,
                shards: accounts.div_ceil(per_shard),
                excluded: Vec::new(),
                planned_by: "1999999999999999".into(),
                mode: "dry-run".into(),
            },
        }
    }

    #[test]
    fn a_workflow_plan_shares_the_engine_limit_out_per_account() {
        for engine in [WorkflowEngine::StepFunctions, WorkflowEngine::CloudFlow] {
            let w = plan(200, 10).for_workflow(engine).unwrap();
            let shards: Vec<&Shard> = match engine {
                WorkflowEngine::StepFunctions => w.plan.shards.iter().collect(),
                WorkflowEngine::CloudFlow => w
                    .runs
                    .iter()
                    .map(|s| match s {
                        Step::RunShard { shard, org_run_id, .. } => {
                            assert_eq!(org_run_id, &w.plan.org_run_id);
                            shard
                        }
                        other => panic!("{other:?}"),
                    })
                    .collect(),
            };
            assert_eq!(shards.len(), 20);
            let answers: usize = shards.iter().map(|s| s.answer_bytes.unwrap()).sum();
            // What travels beside the answers to the merge: the whole plan on Step Functions, the summary on CloudFlow.
            let beside = match engine {
                WorkflowEngine::StepFunctions => json_len(&w),
                WorkflowEngine::CloudFlow => json_len(&w.plan.summary) + 100,
            };
            assert!(beside + answers + WORKFLOW_MARGIN <= engine.payload_limit(), "{engine:?}");
            assert!(shards.iter().all(|s| s.answer_bytes.unwrap() >= 10 * MIN_ACCOUNT_ANSWER_BYTES));
        }
    }

    #[test]
    fn an_organisation_too_large_for_the_engine_is_refused_before_anything_runs() {
        let e = plan(1000, 10).for_workflow(WorkflowEngine::CloudFlow).unwrap_err();
        assert!(e.contains("CloudFlow's 64 KiB") && e.contains("nothing was run"), "{e}");
        assert!(plan(1000, 10).for_workflow(WorkflowEngine::StepFunctions).is_ok());
    }

    #[test]
    fn a_plan_step_for_a_workflow_round_trips() {
        let step: Step = serde_json::from_str(r#"{"janitor_step":"plan","for_workflow":"cloudflow"}"#).unwrap();
        assert_eq!(step, Step::Plan { counts: BTreeMap::new(), for_workflow: Some(WorkflowEngine::CloudFlow) });
        let bad = serde_json::from_str::<Step>(r#"{"janitor_step":"plan","for_workflow":"airflow"}"#);
        assert!(bad.is_err());
        let plain: Step = serde_json::from_str(r#"{"janitor_step":"plan"}"#).unwrap();
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"janitor_step":"plan"}"#);
    }
}

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

/// What starts an organisation step: `{"janitor_step": "plan" | "run_shard" | "merge", ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "janitor_step", rename_all = "snake_case")]
pub enum Step {
    /// Lists the accounts and splits the work. Optional `counts` from last run size the shards.
    Plan {
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        counts: BTreeMap<String, u64>,
    },
    /// Runs one shard of a plan.
    RunShard { org_run_id: String, now: String, shard: Shard },
    /// Adds the shards' results up into one summary and one webhook message. A shard that failed as a whole (a
    /// Step Functions catch) is passed as `{"shard_id": ..., "error": ...}`.
    Merge { org_run_id: String, now: String, plan: PlanSummary, results: Vec<ShardOutcome> },
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
}

/// The plan step's answer: the shards to map over, and what the merge step needs to know of the plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub org_run_id: String,
    /// The clock every shard evaluates the policy with (RFC 3339), so the whole organisation is judged at one time.
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

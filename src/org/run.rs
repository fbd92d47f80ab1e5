//! The three steps of an organisation run, and the local runner that chains them in-process.
//!
//! - [`plan`]: names the management identity (pinned by the policy's `account_id:` if set), lists the members
//!   (or takes `ids:`), drops `exclude:` and inactive members, and splits the work ([`super::shards`]).
//! - [`run_shard`]: for each account of the shard, in turn: assume `role_name`/`role_arn` in it, check with STS
//!   that the credentials act in that very account, and run the ordinary job over the shard's regions (no
//!   webhook: the merge step posts one message). An account that cannot be entered is skipped and named; the
//!   others are untouched by its failure.
//! - [`merge`]: adds the results up. It decides nothing: what a shard did not report is reported missing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;

use super::contract::{
    AccountNote, AccountResult, AccountStatus, OrgSummary, Plan, PlanSummary, Shard, ShardOutcome, ShardResult, MAX_IDS,
};
use super::shards::{self, Sizing};
use crate::aliyun::{Client, CredentialSource};
use crate::credentials::{sts, RoleSpec};
use crate::job::{self, Deps, JobError, Settings};
use crate::policy::accounts::{AccountSource, Accounts};
use crate::report::Summary;

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("the policy has no `accounts:` section: this is not an organisation policy")]
    NotAnOrgPolicy,
    #[error("{0}")]
    Job(#[from] JobError),
    #[error("cannot list the Resource Directory's accounts (Resource Manager): {0}")]
    Discovery(crate::aliyun::ApiError),
    #[error("a shard names no account or no region")]
    EmptyShard,
}

impl From<OrgError> for JobError {
    fn from(e: OrgError) -> JobError {
        match e {
            OrgError::Job(j) => j,
            other => JobError::Org { kind: other.kind(), message: other.to_string() },
        }
    }
}

impl OrgError {
    pub fn kind(&self) -> &'static str {
        match self {
            OrgError::NotAnOrgPolicy => "NotAnOrgPolicy",
            OrgError::Job(e) => e.kind(),
            OrgError::Discovery(_) => "AccountDiscovery",
            OrgError::EmptyShard => "InvalidShard",
        }
    }
}

fn accounts_of(settings: &Settings) -> Result<&Accounts, OrgError> {
    settings.policy.accounts.as_ref().ok_or(OrgError::NotAnOrgPolicy)
}

fn mode_name(settings: &Settings) -> &'static str {
    if settings.apply_flag || settings.policy.apply {
        "apply"
    } else {
        "dry-run"
    }
}

fn client(settings: &Settings, source: Arc<dyn CredentialSource>) -> Result<Client, JobError> {
    let policy = &settings.policy;
    Ok(Client::with_source(source, settings.endpoints()?, settings.retry.clone(), policy.concurrency.per_endpoint)?)
}

/// The plan step. `counts` (`account/region` → instances, from a previous run's results) sizes the shards.
pub async fn plan(
    settings: &Settings,
    base: Arc<dyn CredentialSource>,
    counts: &BTreeMap<String, u64>,
) -> Result<Plan, OrgError> {
    let accounts = accounts_of(settings)?;
    let api = client(settings, base)?;
    let me =
        sts::caller_identity(&api, &settings.sts_region).await.map_err(|e| OrgError::Job(JobError::Identity(e)))?;
    job::check_pins(settings, &me.account_id)?;
    let (mut members, mut excluded) = match &accounts.source {
        AccountSource::Explicit(ids) => (ids.clone(), Vec::new()),
        AccountSource::ResourceDirectory { folder } => {
            super::discovery::members(&api, folder.as_deref(), settings.retry.max_pages)
                .await
                .map_err(OrgError::Discovery)?
        }
    };
    members.retain(|a| {
        let keep = !accounts.exclude.contains(a);
        if !keep {
            excluded.push(AccountNote { account_id: a.clone(), reason: "excluded by the policy".into() });
        }
        keep
    });
    let shards =
        shards::plan(&members, &settings.policy.regions, counts, &Sizing::default(), accounts.max_releases_total);
    let now = crate::lifecycle::format_time(settings.now.unwrap_or_else(chrono::Utc::now));
    tracing::info!(
        planned_by = me.account_id,
        accounts = members.len(),
        shards = shards.len(),
        excluded = excluded.len(),
        "organisation plan"
    );
    Ok(Plan {
        org_run_id: uuid::Uuid::new_v4().to_string(),
        now,
        summary: PlanSummary {
            accounts: members.len(),
            shards: shards.len(),
            excluded,
            planned_by: me.account_id,
            mode: mode_name(settings).into(),
        },
        shards,
    })
}

/// The run-shard step: each account in turn (the shard's budget is spent in order), its regions at once.
pub async fn run_shard(
    settings: &Settings,
    base: Arc<dyn CredentialSource>,
    shard: &Shard,
) -> Result<ShardResult, OrgError> {
    let accounts = accounts_of(settings)?;
    if shard.accounts.is_empty() || shard.regions.is_empty() {
        return Err(OrgError::EmptyShard);
    }
    let started = Instant::now();
    let http = crate::webhook::http_client().map_err(|e| JobError::HttpClient(e.to_string()))?;
    let mut remaining = shard.budget;
    let mut results = Vec::with_capacity(shard.accounts.len());
    for account in &shard.accounts {
        // A shard is input from outside (a workflow's state): it cannot widen the policy, name an excluded account
        // or one an explicit `ids:` list leaves out.
        let listed = match &accounts.source {
            AccountSource::Explicit(ids) => ids.contains(account),
            AccountSource::ResourceDirectory { .. } => true,
        };
        if !crate::policy::accounts::is_account_id(account)
            || !listed
            || accounts.exclude.contains(account)
            || !shard.regions.iter().all(|r| settings.policy.regions.contains(r))
        {
            results.push(skipped(account, "the shard names an account or region outside the policy".into()));
            continue;
        }
        let mut member = settings.clone();
        member.policy.accounts = None;
        member.policy.account_id = None;
        member.policy.regions = shard.regions.clone();
        member.account_id = Some(account.clone());
        if let Some(left) = remaining {
            member.policy.limits.max_releases_per_run = member.policy.limits.max_releases_per_run.min(left);
        }
        let mut role = RoleSpec::new(accounts.role.arn_for(account));
        if let Some(base_role) = settings.role() {
            role.session_name = base_role.session_name.clone();
        }
        let result = run_account(&member, base.clone(), role, &http).await;
        let r = match result {
            Ok(summary) => {
                if let Some(left) = remaining.as_mut() {
                    *left = left
                        .saturating_sub(summary.released.len() + summary.would_release.len() + summary.marked.len());
                }
                account_result(account, &summary)
            }
            Err(e) => {
                tracing::warn!(account_id = account.as_str(), error = %e, "account skipped");
                skipped(account, e.to_string())
            }
        };
        results.push(r);
    }
    Ok(ShardResult { shard_id: shard.id.clone(), accounts: results, elapsed_ms: started.elapsed().as_millis() as u64 })
}

async fn run_account(
    member: &Settings,
    base: Arc<dyn CredentialSource>,
    role: RoleSpec,
    http: &reqwest::Client,
) -> Result<Summary, JobError> {
    let source =
        sts::AssumeRole::source(base, role, member.endpoints()?, member.retry.clone(), member.sts_region.clone())?;
    let deps = Deps::connect(member, Arc::new(source), Vec::new(), http.clone())?;
    job::run(&crate::event::Trigger::cli(), member, &deps).await
}

fn skipped(account: &str, reason: String) -> AccountResult {
    AccountResult {
        account_id: account.to_string(),
        status: AccountStatus::Skipped,
        reason: Some(reason),
        counts: BTreeMap::new(),
        scanned: BTreeMap::new(),
        ids: BTreeMap::new(),
        truncated: false,
        limit_breach: None,
        skipped_scopes: Vec::new(),
        degraded: true,
    }
}

/// What one account's summary contributes: counts, and at most `MAX_IDS` ids per list.
pub fn account_result(account: &str, s: &Summary) -> AccountResult {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut scanned: BTreeMap<String, u64> = BTreeMap::new();
    for (scope, by_outcome) in &s.counts {
        for (outcome, n) in by_outcome {
            *counts.entry(outcome.clone()).or_default() += n;
            *scanned.entry(scope.clone()).or_default() += *n as u64;
        }
    }
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut truncated = false;
    let held: Vec<String> = s
        .entries
        .iter()
        .filter(|e| e.outcome == crate::plan::Outcome::Held)
        .map(|e| format!("{}:{}/{}", e.decision.product, e.decision.region, e.decision.id))
        .collect();
    let failed: Vec<String> = s.failures.iter().map(|f| format!("{}:{}/{}", f.product, f.region, f.id)).collect();
    for (name, list) in [
        ("released", &s.released),
        ("would_release", &s.would_release),
        ("marked", &s.marked),
        ("unmarked", &s.unmarked),
        ("finished", &s.finished),
        ("held", &held),
        ("failed", &failed),
    ] {
        if list.is_empty() {
            continue;
        }
        truncated |= list.len() > MAX_IDS;
        ids.insert(name.into(), list.iter().take(MAX_IDS).cloned().collect());
    }
    AccountResult {
        account_id: account.to_string(),
        status: AccountStatus::Ran,
        reason: None,
        counts,
        scanned,
        ids,
        truncated,
        limit_breach: s.limit_breach.as_ref().map(|b| b.reason.clone()),
        skipped_scopes: s.skipped_scopes.iter().map(|x| format!("{}/{}: {}", x.product, x.region, x.code)).collect(),
        degraded: s.is_degraded(),
    }
}

/// The merge step: a pure sum of what the shards reported.
pub fn merge(org_run_id: &str, now: &str, plan: &PlanSummary, results: &[ShardOutcome]) -> OrgSummary {
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    let mut accounts: Vec<AccountResult> = Vec::new();
    let mut shards_failed = Vec::new();
    let mut longest = 0;
    for r in results {
        match r {
            ShardOutcome::Done(s) => {
                longest = longest.max(s.elapsed_ms);
                accounts.extend(s.accounts.iter().cloned());
            }
            ShardOutcome::Failed { shard_id, error } => {
                shards_failed.push(AccountNote { account_id: shard_id.clone(), reason: error.clone() })
            }
        }
    }
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    accounts.dedup_by(|a, b| a.account_id == b.account_id && a == b);
    for a in &accounts {
        for (k, n) in &a.counts {
            *totals.entry(k.clone()).or_default() += n;
        }
    }
    let accounts_skipped: Vec<AccountNote> = accounts
        .iter()
        .filter(|a| a.status == AccountStatus::Skipped)
        .map(|a| AccountNote { account_id: a.account_id.clone(), reason: a.reason.clone().unwrap_or_default() })
        .collect();
    let accounts_held: Vec<AccountNote> = accounts
        .iter()
        .filter_map(|a| {
            a.limit_breach.as_ref().map(|b| AccountNote { account_id: a.account_id.clone(), reason: b.clone() })
        })
        .collect();
    let ran: std::collections::BTreeSet<&str> =
        accounts.iter().filter(|a| a.status == AccountStatus::Ran).map(|a| a.account_id.as_str()).collect();
    let reported: std::collections::BTreeSet<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    let missing = plan.accounts.saturating_sub(reported.len());
    let degraded =
        !accounts_skipped.is_empty() || !shards_failed.is_empty() || missing > 0 || accounts.iter().any(|a| a.degraded);
    OrgSummary {
        org_run_id: org_run_id.to_string(),
        now: now.to_string(),
        mode: plan.mode.clone(),
        planned_by: plan.planned_by.clone(),
        totals,
        accounts_planned: plan.accounts,
        accounts_ran: ran.len(),
        accounts_skipped,
        accounts_held,
        excluded: plan.excluded.clone(),
        shards: plan.shards,
        shards_failed,
        longest_shard_ms: longest,
        accounts,
        degraded,
    }
}

/// The local runner: plan → every shard with bounded parallelism → merge, in this process.
pub async fn run_local(
    settings: &Settings,
    base: Arc<dyn CredentialSource>,
    webhooks: &[crate::webhook::WebhookTarget],
) -> Result<OrgSummary, OrgError> {
    let plan = plan(settings, base.clone(), &BTreeMap::new()).await?;
    let concurrency = accounts_of(settings)?.concurrency;
    let results: Vec<ShardOutcome> = futures_util::stream::iter(plan.shards.clone())
        .map(|shard| {
            let base = base.clone();
            async move {
                match run_shard(settings, base, &shard).await {
                    Ok(r) => ShardOutcome::Done(r),
                    Err(e) => ShardOutcome::Failed { shard_id: shard.id.clone(), error: e.to_string() },
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let summary = merge(&plan.org_run_id, &plan.now, &plan.summary, &results);
    super::notify(&summary, webhooks).await;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shard_cannot_name_an_account_or_region_the_policy_leaves_out() {
        let text = "regions: [cn-hangzhou]\naccounts: { ids: [\"11\", \"12\"], exclude: [\"12\"] }\n\
                    rules:\n  - name: r\n    filters: { ttl_tag: ttl }\n";
        let settings = Settings::new(crate::policy::Policy::from_yaml(text, "org.yaml").unwrap());
        let base: Arc<dyn CredentialSource> = Arc::new(crate::aliyun::Credentials::new("id", "secret", None));
        let shard = |accounts: &[&str], region: &str| Shard {
            id: "shard-0001".into(),
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
            regions: vec![region.into()],
            budget: None,
            estimated_secs: 1,
            answer_bytes: None,
        };
        // Excluded, not in `ids:`, not an id: skipped without a call (no endpoint is reachable here).
        let r = run_shard(&settings, base.clone(), &shard(&["12", "99", "x"], "cn-hangzhou")).await.unwrap();
        assert!(r.accounts.iter().all(|a| a.status == AccountStatus::Skipped), "{r:?}");
        let r = run_shard(&settings, base, &shard(&["11"], "us-east-1")).await.unwrap();
        assert_eq!(r.accounts[0].status, AccountStatus::Skipped, "a region outside the policy");
    }
}

//! The three steps of an organisation run, and the local runner that chains them in-process.
//!
//! - [`plan`]: names the management identity (pinned by the policy's `account_id:` if set), lists the members
//!   (or takes `ids:`), drops `exclude:` and inactive members, and splits the work ([`super::shards`]).
//! - [`run_shard`]: for each account of the shard, `accounts.concurrency` at once: assume `role_name`/`role_arn`
//!   in it, check with STS that the credentials act in that very account, and run the ordinary job over the
//!   shard's regions (no webhook: the merge step posts one message). An account that cannot be entered is skipped and named; the
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
    /// Its runs would go at once and each release the same instances: the shard is refused whole.
    #[error("a shard names account {0} more than once")]
    DuplicateAccount(String),
    /// A shard document from a plan made long ago (a workflow execution redriven days later, a copied document):
    /// the organisation, its marks and its limits may have changed since, so it is not run.
    #[error("the shard's plan time `now` ({plan_now}) is {reason}: run a new plan")]
    StaleShard { plan_now: String, reason: String },
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
            OrgError::EmptyShard | OrgError::DuplicateAccount(_) => "InvalidShard",
            OrgError::StaleShard { .. } => "StaleShard",
        }
    }
}

/// How long after its plan a shard may still run. A nightly Map of shards of at most a few minutes each ends within
/// the hour; a Step Functions Standard execution can be redriven for up to 14 days after it failed (AWS Step
/// Functions Developer Guide, "Redriving executions"), which must not release on a week-old plan.
pub const SHARD_MAX_AGE: chrono::Duration = chrono::Duration::hours(24);

/// Checks a run_shard document's `now` (the plan's time) against the clock the shard runs with. Each shard judges
/// the policy at its own clock (the plan's time would be a past clock: a replay, forced to a dry run by
/// `mode::check_clock`); the plan's time only says whether the plan is still current.
pub fn check_shard_age(plan_now: &str, clock: chrono::DateTime<chrono::Utc>) -> Result<(), OrgError> {
    let stale = |reason: String| OrgError::StaleShard { plan_now: plan_now.chars().take(40).collect(), reason };
    let planned = chrono::DateTime::parse_from_rfc3339(plan_now)
        .map_err(|e| stale(format!("not an RFC 3339 time ({e})")))?
        .with_timezone(&chrono::Utc);
    let skew = chrono::Duration::minutes(5);
    if planned > clock + skew {
        return Err(stale(format!("after this shard's clock ({})", crate::lifecycle::format_time(clock))));
    }
    if clock - planned > SHARD_MAX_AGE {
        return Err(stale(format!("more than {} hours before this shard's clock", SHARD_MAX_AGE.num_hours())));
    }
    Ok(())
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
    Ok(Client::with_source(source, settings.endpoints()?, settings.retry.clone(), policy.concurrency.call_limits())?)
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
    let sizing = Sizing { accounts_at_once: accounts.concurrency, ..Sizing::default() };
    let shards = shards::plan(&members, &settings.policy.regions, counts, &sizing, accounts.max_releases_total);
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

/// The run-shard step: the shard's accounts `accounts.concurrency` at a time, each over the shard's regions.
///
/// The organisation-wide cap (`max_releases_total`, shared out over the shards by the planner) must not be
/// overshot however the accounts interleave, and a run must not depend on which account happened to finish
/// first. So no account draws from a shared counter while others run; instead:
///
/// 1. The shard's budget is split over its accounts deterministically, as the planner splits the organisation's
///    over the shards ([`budget_shares`]: equal shares, the remainder to the first accounts). Each account runs
///    with `max_releases_per_run` lowered to its share, so the ordinary limits stage holds an account whose
///    eligible set exceeds its share whole (fail closed), exactly as it holds one over its own limit. The shares
///    add up to the budget, so concurrent accounts cannot together exceed it.
/// 2. Then, in shard order and one at a time, an account held *only* by its share — it changed nothing, and its
///    breach's eligible count is above the share but within both its own limit and what the others left unused —
///    is run again with that leftover as its cap ([`retry_cap`]). It made no change the first time (a held kind
///    makes no call, not even a dry run), so running it again repeats only its listing.
///
/// As for `limits:` (see `crate::limits`), the cap bounds each kind of change (releases; marks) separately; the
/// leftover is counted conservatively (releases, would-be releases and marks together).
pub async fn run_shard(
    settings: &Settings,
    base: Arc<dyn CredentialSource>,
    shard: &Shard,
) -> Result<ShardResult, OrgError> {
    // One connection pool and one run-wide bound for the shard's accounts in flight (`Client::for_credentials`).
    let shared = Shared::new(settings, base.clone())?;
    run_shard_over(settings, base, shard, &shared).await
}

/// [`run_shard`] over connections that other shards share too (the local runner: one pool for every shard).
async fn run_shard_over(
    settings: &Settings,
    base: Arc<dyn CredentialSource>,
    shard: &Shard,
    shared: &Shared,
) -> Result<ShardResult, OrgError> {
    let accounts = accounts_of(settings)?;
    if shard.accounts.is_empty() || shard.regions.is_empty() {
        return Err(OrgError::EmptyShard);
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = shard.accounts.iter().find(|a| !seen.insert(a.as_str())) {
        return Err(OrgError::DuplicateAccount(twice.clone()));
    }
    let started = Instant::now();
    let limit = settings.policy.limits.max_releases_per_run;
    let shares = budget_shares(shard.budget, shard.accounts.len());
    let at_once = accounts.concurrency.clamp(1, shard.accounts.len());
    // Owned items: a stream of borrowed ones is not `Send` for every lifetime, which the FC server's handler needs.
    let items: Vec<(usize, String, Option<usize>)> =
        shard.accounts.iter().cloned().zip(shares).enumerate().map(|(i, (a, s))| (i, a, s)).collect();
    let mut attempts: Vec<(usize, Attempt)> = futures_util::stream::iter(items)
        .map(|(i, account, share)| {
            let base = base.clone();
            async move { (i, run_one(settings, accounts, base, shard, &account, share, shared).await) }
        })
        .buffer_unordered(at_once)
        .collect()
        .await;
    attempts.sort_by_key(|(i, _)| *i);
    if let Some(budget) = shard.budget {
        let mut left = budget.saturating_sub(attempts.iter().map(|(_, a)| a.used).sum());
        for (i, attempt) in attempts.iter_mut() {
            let Some(cap) = retry_cap(attempt, left, limit) else { continue };
            let account = &shard.accounts[*i];
            tracing::info!(account_id = account.as_str(), cap, "account held by its budget share: run again");
            *attempt = run_one(settings, accounts, base.clone(), shard, account, Some(cap), shared).await;
            left = left.saturating_sub(attempt.used);
        }
    }
    let results = attempts.into_iter().map(|(_, a)| a.result).collect();
    Ok(ShardResult { shard_id: shard.id.clone(), accounts: results, elapsed_ms: started.elapsed().as_millis() as u64 })
}

/// Shares of a shard's budget per account, in shard order: equal, the remainder one each to the first accounts,
/// adding up to the budget exactly. `None` (no organisation cap): no share.
pub fn budget_shares(budget: Option<usize>, accounts: usize) -> Vec<Option<usize>> {
    match budget {
        None => vec![None; accounts],
        Some(b) => {
            let n = accounts.max(1);
            (0..accounts).map(|i| Some(b / n + usize::from(i < b % n))).collect()
        }
    }
}

/// One account's run and what it means for the shard's budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub result: AccountResult,
    /// The cap the account ran with (its share, or the leftover on a second run).
    pub share: Option<usize>,
    /// Releases, would-be releases and marks it made (what it drew from the budget).
    pub used: usize,
    /// When a limit held it and it changed nothing: the breach's eligible count.
    pub held_eligible: Option<usize>,
}

/// The cap of a second run for an account held only by its share: `Some` when its eligible count is above the
/// share it ran with and within both its own `limit` and the budget `left` unused; else `None` (not held, held
/// by its own limit or the percentage, or the leftover is too small: it stays held).
pub fn retry_cap(attempt: &Attempt, left: usize, limit: usize) -> Option<usize> {
    let share = attempt.share?;
    let eligible = attempt.held_eligible?;
    (eligible > share && eligible <= limit.min(left)).then_some(left.min(limit))
}

/// What the accounts of one shard share: the HTTP client, and the API connections and run-wide bounds.
struct Shared {
    http: reqwest::Client,
    api: Client,
}

impl Shared {
    fn new(settings: &Settings, base: Arc<dyn CredentialSource>) -> Result<Shared, JobError> {
        let http = crate::webhook::http_client().map_err(|e| JobError::HttpClient(e.to_string()))?;
        Ok(Shared { http, api: client(settings, base)? })
    }
}

async fn run_one(
    settings: &Settings,
    accounts: &Accounts,
    base: Arc<dyn CredentialSource>,
    shard: &Shard,
    account: &String,
    share: Option<usize>,
    shared: &Shared,
) -> Attempt {
    let done = |result: AccountResult| Attempt { result, share, used: 0, held_eligible: None };
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
        return done(skipped(account, "the shard names an account or region outside the policy".into()));
    }
    let mut member = settings.clone();
    member.policy.accounts = None;
    member.policy.account_id = None;
    member.policy.regions = shard.regions.clone();
    member.account_id = Some(account.clone());
    if let Some(cap) = share {
        member.policy.limits.max_releases_per_run = member.policy.limits.max_releases_per_run.min(cap);
    }
    let mut role = RoleSpec::new(accounts.role.arn_for(account));
    if let Some(base_role) = settings.role() {
        role.session_name = base_role.session_name.clone();
    }
    match run_account(&member, base, role, shared).await {
        Ok(summary) => {
            let used = summary.released.len() + summary.would_release.len() + summary.marked.len();
            let changed = used + summary.unmarked.len() + summary.finished.len() > 0;
            let held_eligible = summary.limit_breach.as_ref().filter(|_| !changed).map(|b| b.eligible);
            Attempt { result: account_result(account, &summary), share, used, held_eligible }
        }
        Err(e) => {
            tracing::warn!(account_id = account.as_str(), error = %e, "account skipped");
            done(skipped(account, e.to_string()))
        }
    }
}

async fn run_account(
    member: &Settings,
    base: Arc<dyn CredentialSource>,
    role: RoleSpec,
    shared: &Shared,
) -> Result<Summary, JobError> {
    // The member's settings differ from the shard's in regions and limits only: same endpoints, retries and
    // concurrency, so its clients can use the shard's connections (`Client::for_credentials`).
    let source = sts::AssumeRole::source_over(&shared.api, base, role, member.sts_region.clone());
    let deps = Deps::connect_over(&shared.api, Arc::new(source), Vec::new(), shared.http.clone());
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
    // Every shard's accounts over one pool and one run-wide bound (up to `concurrency`² accounts in flight).
    let shared = Shared::new(settings, base.clone())?;
    let results: Vec<ShardOutcome> = futures_util::stream::iter(plan.shards.clone())
        .map(|shard| {
            let (base, shared) = (base.clone(), &shared);
            async move {
                match run_shard_over(settings, base, &shard, shared).await {
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

    #[test]
    fn a_shard_runs_only_on_a_current_plan() {
        use chrono::TimeZone;
        let clock = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 2, 0, 0).unwrap();
        assert!(check_shard_age("2026-12-03T01:55:00Z", clock).is_ok());
        assert!(check_shard_age("2026-12-02T03:00:00Z", clock).is_ok(), "23 hours: still the same night's plan");
        for (now, why) in [
            ("2026-11-25T02:00:00Z", "a week-old plan (a redriven execution)"),
            ("2026-12-03T03:00:00Z", "a plan from the future"),
            ("yesterday", "not a time"),
        ] {
            let e = check_shard_age(now, clock).expect_err(why);
            assert_eq!(e.kind(), "StaleShard", "{why}");
            assert!(e.to_string().contains("`now`"), "{why}: names the field: {e}");
        }
    }

    #[test]
    fn budget_shares_add_up_to_the_budget_in_shard_order() {
        assert_eq!(budget_shares(None, 3), vec![None, None, None]);
        assert_eq!(budget_shares(Some(7), 3), vec![Some(3), Some(2), Some(2)]);
        assert_eq!(budget_shares(Some(2), 4), vec![Some(1), Some(1), Some(0), Some(0)]);
        assert_eq!(budget_shares(Some(5), 0), Vec::<Option<usize>>::new());
        for b in 0..50 {
            for n in 1..12 {
                let s: Vec<usize> = budget_shares(Some(b), n).into_iter().flatten().collect();
                assert_eq!(s.iter().sum::<usize>(), b);
                assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
            }
        }
    }

    fn attempt(share: Option<usize>, used: usize, held_eligible: Option<usize>) -> Attempt {
        Attempt { result: skipped("1", String::new()), share, used, held_eligible }
    }

    #[test]
    fn only_an_account_held_by_its_share_runs_again_and_only_if_the_leftover_fits() {
        // Held by its share of 3 with 5 eligible; 10 left over, limit 8: runs again capped at 8.
        assert_eq!(retry_cap(&attempt(Some(3), 0, Some(5)), 10, 8), Some(8));
        assert_eq!(retry_cap(&attempt(Some(3), 0, Some(5)), 6, 8), Some(6));
        // The leftover is too small, or its own limit holds it: it stays held.
        assert_eq!(retry_cap(&attempt(Some(3), 0, Some(5)), 4, 8), None);
        assert_eq!(retry_cap(&attempt(Some(3), 0, Some(9)), 100, 8), None);
        // Held although within its share (the percentage), not held, or no organisation cap: no second run.
        assert_eq!(retry_cap(&attempt(Some(6), 0, Some(5)), 100, 8), None);
        assert_eq!(retry_cap(&attempt(Some(3), 2, None), 100, 8), None);
        assert_eq!(retry_cap(&attempt(None, 0, Some(5)), 100, 8), None);
    }

    /// The two passes of `run_shard` over accounts with the given eligible counts, as the limits stage decides
    /// them (an account over its cap is held whole): what each account releases. Pass 1's order does not matter
    /// (no account reads another's outcome); pass 2 goes in shard order.
    fn simulate(eligible: &[usize], budget: usize, limit: usize) -> Vec<usize> {
        let run = |e: usize, cap: usize| {
            let cap = cap.min(limit);
            if e > cap {
                (0, Some(e))
            } else {
                (e, None)
            }
        };
        let mut attempts: Vec<Attempt> = eligible
            .iter()
            .zip(budget_shares(Some(budget), eligible.len()))
            .map(|(&e, share)| {
                let (used, held) = run(e, share.unwrap());
                attempt(share, used, held)
            })
            .collect();
        let mut left = budget.saturating_sub(attempts.iter().map(|a| a.used).sum());
        for (a, &e) in attempts.iter_mut().zip(eligible) {
            if let Some(cap) = retry_cap(a, left, limit) {
                let (used, held) = run(e, cap);
                *a = attempt(Some(cap), used, held);
                left = left.saturating_sub(used);
            }
        }
        attempts.iter().map(|a| a.used).collect()
    }

    #[test]
    fn the_organisation_cap_is_never_overshot_and_each_account_keeps_its_own_limit() {
        // Budget 10 over 4 accounts (shares 3, 3, 2, 2): the 6-eligible one runs again with what the others left.
        assert_eq!(simulate(&[0, 6, 1, 0], 10, 8), vec![0, 6, 1, 0]);
        // Not enough left for both held accounts: the first in shard order gets it, the second stays held.
        assert_eq!(simulate(&[5, 5, 0, 0], 6, 8), vec![5, 0, 0, 0]);
        // Over its own limit: held whatever the budget.
        assert_eq!(simulate(&[9, 0], 100, 8), vec![0, 0]);
        let mut seed = 7u64;
        let mut next = |m: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) % m) as usize
        };
        for _ in 0..2000 {
            let n = 1 + next(10);
            let eligible: Vec<usize> = (0..n).map(|_| next(12)).collect();
            let (budget, limit) = (next(40), next(12));
            let used = simulate(&eligible, budget, limit);
            assert!(used.iter().sum::<usize>() <= budget, "{eligible:?} {budget} {limit}: {used:?}");
            for (u, e) in used.iter().zip(&eligible) {
                // All or nothing per account, never above its own limit.
                assert!(*u == 0 || (u == e && *u <= limit), "{eligible:?} {budget} {limit}: {used:?}");
            }
        }
    }

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
        let r = run_shard(&settings, base.clone(), &shard(&["11"], "us-east-1")).await.unwrap();
        assert_eq!(r.accounts[0].status, AccountStatus::Skipped, "a region outside the policy");
        // Named twice, its two runs would go at once: the whole shard is refused before any call.
        let e = run_shard(&settings, base, &shard(&["11", "12", "11"], "cn-hangzhou")).await.unwrap_err();
        assert_eq!((e.kind(), e.to_string().as_str()), ("InvalidShard", "a shard names account 11 more than once"));
    }
}

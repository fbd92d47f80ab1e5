//! One run, as its data path: trigger + policy → [scan](crate::scan) (listing, or a re-read by id for an event)
//! → [plan](crate::plan) (one decision per instance: rules, vetoes, lifecycle, window → a typed `Plan`) →
//! [limits](crate::limits) (holds whatever kind of change breaches them) → [execute](crate::execute) (marks,
//! then pre-flight, dry run and release) → [report](crate::report) (summary, decision logs, webhooks).
//! `docs/architecture.md` draws it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::aliyun::{ApiError, Client, CredentialError, CredentialSource, EndpointError, Endpoints, RetryPolicy};
use crate::discovery::{Billing, Reach};
use crate::event::{EventError, Trigger};
use crate::limits::{self, LimitScope};
use crate::mode;
use crate::plan::{self, Plan, Planner};
use crate::policy::Policy;
use crate::products::Product;
use crate::progress::Phase;
use crate::report::{self, Summary};
use crate::scan::{self, Scope, WideningError};
use crate::webhook::WebhookTarget;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("bad event: {0}")]
    Event(#[from] EventError),
    #[error("{0}")]
    Credentials(#[from] CredentialError),
    #[error("{0}")]
    Endpoint(#[from] EndpointError),
    #[error("{0}")]
    Widening(#[from] WideningError),
    #[error("the policy clock (JANITOR_NOW / --now) is {now}, ahead of the real clock: a future clock is only accepted when every endpoint the run calls is loopback (the emulator), never against real endpoints")]
    FutureClock { now: String },
    #[error("API client: {0}")]
    Client(#[from] ApiError),
    #[error("{0}")]
    Webhook(#[from] crate::webhook::WebhookError),
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(String),
    #[error("cannot read the account id (STS GetCallerIdentity), so nothing was listed: {0}")]
    Identity(ApiError),
    #[error("the credentials act in account {actual}, but {by} pins account {expected}: refused, nothing was listed")]
    AccountMismatch { expected: String, actual: String, by: &'static str },
    /// An organisation step that could not run (`org::OrgError`, by its kind).
    #[error("{message}")]
    Org { kind: &'static str, message: String },
    #[error("the apply run was not confirmed at the prompt: nothing was changed")]
    NotConfirmed,
    #[error("JANITOR_MARK_KEY is not set: an apply run with a grace period writes marks, and a mark the janitor cannot verify as its own is never trusted (set a generated secret of at least 16 characters; the templates create one)")]
    MissingMarkKey,
}

impl JobError {
    /// A short machine-readable class for runtimes (Lambda `errorType`, FC logs).
    pub fn kind(&self) -> &'static str {
        match self {
            JobError::Event(_) => "InvalidEvent",
            JobError::Credentials(CredentialError::Missing(_)) => "MissingCredentials",
            JobError::Credentials(_) => "CredentialSource",
            JobError::Endpoint(_) => "InvalidEndpoint",
            JobError::Widening(_) => "ScopeWidening",
            JobError::FutureClock { .. } => "FutureClock",
            JobError::Client(_) => "ClientSetup",
            JobError::Webhook(_) => "InvalidWebhookConfig",
            JobError::HttpClient(_) => "ClientSetup",
            JobError::MissingMarkKey => "MissingMarkKey",
            JobError::Identity(_) => "CallerIdentity",
            JobError::AccountMismatch { .. } => "AccountMismatch",
            JobError::Org { kind, .. } => kind,
            JobError::NotConfirmed => "NotConfirmed",
        }
    }
}

/// Everything a run needs besides the trigger and its dependencies, built once per process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    /// `JANITOR_ENDPOINT`: one base URL for every product (the emulator).
    pub endpoint_override: Option<String>,
    /// The CLI's `--apply`. The policy's `apply: true` works too; a trigger can only turn apply off.
    pub apply_flag: bool,
    /// Evaluate the policy at this time instead of the wall clock (tests, replays).
    pub now: Option<DateTime<Utc>>,
    pub retry: RetryPolicy,
    /// After this long from the start of a run, no new release starts (see `execute`).
    pub run_timeout: Option<std::time::Duration>,
    /// Signs and verifies marks (`JANITOR_MARK_KEY`); required to write marks.
    pub mark_key: Option<crate::lifecycle::MarkKey>,
    /// The account the run must act in (`JANITOR_ACCOUNT_ID`), besides the policy's `account_id:`. The account
    /// itself is always read from STS (GetCallerIdentity) before anything is listed.
    pub account_id: Option<String>,
    /// `--profile` / `ALIBABA_CLOUD_PROFILE`: the profile of the aliyun CLI config or the credentials file.
    pub profile: Option<String>,
    /// `--role-arn` / `JANITOR_ROLE_ARN`: replaces the policy's `role_arn:`.
    pub role: Option<crate::credentials::RoleSpec>,
    /// `ALIBABA_CLOUD_STS_REGION`: a regional STS endpoint instead of `sts.aliyuncs.com`.
    pub sts_region: String,
    /// How long a two-step release (Kafka) waits for its second step (`JANITOR_RELEASE_POLL_MS`).
    pub release_poll: crate::products::Poll,
    /// Which entries the summary holds (`JANITOR_SUMMARY_ENTRIES`: auto, all, actions); counts cover all.
    pub summary_entries: crate::plan::EntriesMode,
}

impl Settings {
    pub fn new(policy: Policy) -> Self {
        Settings {
            policy,
            endpoint_override: None,
            apply_flag: false,
            now: None,
            retry: RetryPolicy::default(),
            run_timeout: None,
            mark_key: None,
            account_id: None,
            profile: None,
            role: None,
            sts_region: String::new(),
            release_poll: crate::products::Poll::default(),
            summary_entries: crate::plan::EntriesMode::default(),
        }
    }
}

impl Settings {
    /// Where each product's requests go: `JANITOR_ENDPOINT`, else the policy's `endpoints:`, else Alibaba's hosts.
    pub fn endpoints(&self) -> Result<Endpoints, EndpointError> {
        Endpoints::new(self.endpoint_override.as_deref(), &self.policy.endpoints)
    }

    /// The role to act through: the CLI flag or environment first, then the policy.
    pub fn role(&self) -> Option<&crate::credentials::RoleSpec> {
        self.role.as_ref().or(self.policy.role.as_ref())
    }
}

/// What a run calls out to, built by the CLI or the runtime and passed in: `run` reads no environment.
pub struct Deps {
    /// The signed API client (credentials of this invocation, the policy's endpoints).
    pub api: Client,
    /// The product adapters (`products::catalog().adapters()`; a test passes its own).
    pub products: Vec<Arc<dyn Product>>,
    /// Summary webhooks, checked before anything is listed: a run nobody hears about is not started.
    pub webhooks: Vec<WebhookTarget>,
    /// The process's one webhook HTTP client.
    pub http: reqwest::Client,
    /// Progress for a person at a terminal (the CLI); silent otherwise.
    pub progress: crate::progress::Hook,
    /// Asked before an apply run changes anything (the CLI on a terminal); always yes otherwise.
    pub confirm: crate::confirm::Hook,
}

impl Deps {
    /// The API client for `credentials` and the settings' endpoints, with every adapter of the catalog.
    pub fn connect(
        settings: &Settings,
        credentials: Arc<dyn CredentialSource>,
        webhooks: Vec<WebhookTarget>,
        http: reqwest::Client,
    ) -> Result<Deps, JobError> {
        let policy = &settings.policy;
        let endpoints = settings.endpoints()?;
        let api =
            Client::with_source(credentials, endpoints, settings.retry.clone(), policy.concurrency.call_limits())?;
        Ok(Deps::with_api(api, webhooks, http))
    }

    /// The same over `shared`'s connections and run-wide bounds (`Client::for_credentials`): an account of an
    /// organisation run, where every account in flight shares them.
    pub fn connect_over(
        shared: &Client,
        credentials: Arc<dyn CredentialSource>,
        webhooks: Vec<WebhookTarget>,
        http: reqwest::Client,
    ) -> Deps {
        Deps::with_api(shared.for_credentials(credentials), webhooks, http)
    }

    fn with_api(api: Client, webhooks: Vec<WebhookTarget>, http: reqwest::Client) -> Deps {
        let products = crate::products::catalog().adapters().into_iter().map(Arc::from).collect();
        let (progress, confirm) = (crate::progress::silent(), Arc::new(crate::confirm::AlwaysYes) as _);
        Deps { api, products, webhooks, http, progress, confirm }
    }
}

/// Parses an event body and runs the job: the shared entry point of the CLI, Lambda and Function Compute.
pub async fn handle(body: &[u8], settings: &Settings, deps: &Deps) -> Result<Summary, JobError> {
    let trigger = crate::event::parse(body)?;
    run(&trigger, settings, deps).await
}

/// Runs the job for an already-parsed trigger.
pub async fn run(trigger: &Trigger, settings: &Settings, deps: &Deps) -> Result<Summary, JobError> {
    let deadline = settings.run_timeout.map(|t| tokio::time::Instant::now() + t);
    let policy = &settings.policy;
    let mut scope = Scope::resolve(policy, trigger, &deps.products)?;
    let replay = mode::check_clock(settings.now, Utc::now(), mode::all_loopback(&deps.api, &scope, policy))?;
    let now = settings.now.unwrap_or_else(Utc::now);
    let run_id = trigger.event_id().map(String::from).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (mode, mode_reason) = mode::mode_of(trigger, policy, settings.apply_flag, replay);
    if mode.is_apply() && settings.mark_key.is_none() && policy.rules.iter().any(|r| !r.grace.is_zero()) {
        return Err(JobError::MissingMarkKey);
    }
    // Name the account before anything destructive (the aws-nuke habit); a pinned account must match.
    let identity = identify(settings, deps).await?;
    scope.account = Some(identity.account_id.clone());
    tracing::info!(
        run_id,
        account_id = identity.account_id,
        identity = identity.arn,
        credentials = deps.api.credential_source(),
        trigger = trigger.describe(),
        mode = mode.as_str(),
        mode_reason,
        now = %now,
        "run starting"
    );
    let event = trigger.resources();

    // 1. What exists, and 2. one decision per instance as each scope is listed, then for what only billing
    // knows. Billing is read first: the decisions cross-check it.
    deps.progress.phase(Phase::Listing, scope.products.len() * scope.regions.len());
    scope.progress = deps.progress.clone();
    let mut billing_skipped = Vec::new();
    let billed = scan::billing(&deps.api, policy, trigger, now).await;
    let (billing, billed) = Billing::new(policy, event.is_some(), billed, &mut billing_skipped);
    let mut planner = Planner::new(policy, now, mode, event, &billing);
    planner.mark_key = settings.mark_key.as_ref();
    let details = scan::DetailFilter {
        policy: std::sync::Arc::new(policy.clone()),
        now,
        mode,
        mark_key: settings.mark_key.clone(),
    };
    let header = Plan {
        run_id,
        account_id: identity.account_id,
        mode,
        mode_reason,
        trigger: trigger.describe(),
        now,
        scanned: 0,
        population: 0,
        entries: Vec::new(),
        skipped_scopes: Vec::new(),
        ignored: Vec::new(),
        limit_breach: None,
        settled: Default::default(),
    };
    let mut planning = plan::Planning::new(&planner, header, settings.summary_entries);
    let scan = scan::scan(&deps.api, &scope, trigger, policy, Some(details), &mut |l| planning.add(l)).await;
    let codes: Vec<&str> = scope.products.iter().map(|p| p.code()).collect();
    let reach = Reach { regions: &scope.regions, products: &codes, other_products: trigger.products().is_none() };
    let billed_only = Billing::billed_only(billed, planning.listed(), &reach, policy, now);
    let mut plan = planning.finish(billed_only);
    plan.skipped_scopes = scan.skipped;
    plan.skipped_scopes.append(&mut billing_skipped);
    plan.ignored = scan.ignored;
    deps.progress.phase(Phase::Details, plan.scanned);

    // 3. Run-wide limits over every kind of change; an event or narrowed run that releases also checks the fleet.
    let limit_scope = if event.is_some() { LimitScope::Event } else { LimitScope::Fleet };
    limits::hold(&mut plan, &policy.limits, limit_scope);
    if crate::fleet::is_narrow(trigger) {
        crate::fleet::hold_by_fleet(&mut plan, &deps.api, &deps.products, &planner).await;
    }

    // 4. On a terminal, the person confirms what is about to change; then marks, pre-flight, dry run and release.
    if !crate::confirm::ask(&*deps.confirm, &plan, &codes, &scope.regions) {
        return Err(JobError::NotConfirmed);
    }
    let pending = plan.entries.iter().filter(|e| e.pending_change().is_some()).count();
    deps.progress.phase(if mode.is_apply() { Phase::Release } else { Phase::DryRun }, pending);
    let poll = crate::products::Poll { until: deadline, ..settings.release_poll };
    crate::execute::execute(&mut plan, &deps.api, &scope.products, &planner, poll).await;

    // 5. Summary, logs, webhooks.
    deps.progress.finish();
    Ok(report::report(plan, deps.api.call_counts(), &deps.http, &deps.webhooks, event.is_some()).await)
}

/// The run's account from STS, checked against the pins (the policy's `account_id:`, `JANITOR_ACCOUNT_ID`).
async fn identify(settings: &Settings, deps: &Deps) -> Result<crate::credentials::Identity, JobError> {
    let identity =
        crate::credentials::caller_identity(&deps.api, &settings.sts_region).await.map_err(JobError::Identity)?;
    check_pins(settings, &identity.account_id)?;
    Ok(identity)
}

/// Refuses an account other than the one the policy's `account_id:` or `JANITOR_ACCOUNT_ID` pins.
pub(crate) fn check_pins(settings: &Settings, actual: &str) -> Result<(), JobError> {
    let pins = [
        (settings.policy.account_id.as_ref(), "the policy's account_id"),
        (settings.account_id.as_ref(), "JANITOR_ACCOUNT_ID"),
    ];
    for (pin, by) in pins {
        if let Some(expected) = pin.filter(|p| p.as_str() != actual) {
            return Err(JobError::AccountMismatch { expected: expected.clone(), actual: actual.to_string(), by });
        }
    }
    Ok(())
}

//! One run, wired end to end: trigger + policy → listing → plan → limits → dry run → release → summary.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::Semaphore;

use crate::aliyun::{ApiError, Client, CredentialError, Credentials, EndpointError, Endpoints, RetryPolicy};
use crate::event::{EventError, Trigger};
use crate::inventory::Instance;
use crate::plan::{self, Decision, Verdict};
use crate::policy::Policy;
use crate::products::{self, Product};
use crate::release::{self, Eligible, IdOutcome};
use crate::report::{Entry, Outcome, SkippedScope, Summary};
use crate::webhook::WebhookTarget;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("bad event: {0}")]
    Event(#[from] EventError),
    #[error("{0}")]
    Credentials(#[from] CredentialError),
    #[error("{0}")]
    Endpoint(#[from] EndpointError),
    #[error("trigger asks for {what} `{value}`, which the policy does not cover (an event may only narrow the policy)")]
    Widening { what: &'static str, value: String },
    #[error("API client: {0}")]
    Client(#[from] ApiError),
    #[error("{0}")]
    Webhook(#[from] crate::webhook::WebhookError),
}

impl JobError {
    /// A short machine-readable class for runtimes (Lambda `errorType`, FC logs).
    pub fn kind(&self) -> &'static str {
        match self {
            JobError::Event(_) => "InvalidEvent",
            JobError::Credentials(_) => "MissingCredentials",
            JobError::Endpoint(_) => "InvalidEndpoint",
            JobError::Widening { .. } => "ScopeWidening",
            JobError::Client(_) => "ClientSetup",
            JobError::Webhook(_) => "InvalidWebhookConfig",
        }
    }
}

/// Everything a run needs besides the trigger, built once per process (or per invocation for credentials).
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
    /// Summary webhooks. `None`: read `JANITOR_WEBHOOKS` at the start of each run (it may rotate).
    pub webhooks: Option<Vec<WebhookTarget>>,
}

impl Settings {
    pub fn new(policy: Policy) -> Self {
        Settings { policy, endpoint_override: None, apply_flag: false, now: None, retry: RetryPolicy::default(), webhooks: None }
    }
}

/// Parses an event body and runs the job: the shared entry point of the CLI, Lambda and Function Compute.
pub async fn handle(body: &[u8], settings: &Settings, credentials: Credentials) -> Result<Summary, JobError> {
    let trigger = crate::event::parse(body)?;
    run(&trigger, settings, credentials).await
}

/// Runs the job for an already-parsed trigger.
pub async fn run(trigger: &Trigger, settings: &Settings, credentials: Credentials) -> Result<Summary, JobError> {
    let policy = &settings.policy;
    // Webhook configuration is checked before anything is listed: a run nobody hears about is not started.
    let webhooks = match &settings.webhooks {
        Some(w) => w.clone(),
        None => crate::webhook::targets_from_env()?,
    };
    let endpoints = Endpoints::new(settings.endpoint_override.as_deref(), &policy.endpoints)?;
    let api = Client::new(credentials, endpoints, settings.retry.clone(), policy.concurrency.per_endpoint)?;
    let scope = Scope::resolve(policy, trigger, products::registry())?;
    let now = settings.now.unwrap_or_else(Utc::now);
    let run_id = trigger.event_id().map(String::from).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let (apply, mode_reason) = if trigger.forces_dry_run() {
        (false, "the trigger asked for a dry run".to_string())
    } else if policy.apply {
        (true, "policy says apply: true".to_string())
    } else if settings.apply_flag {
        (true, "--apply was given".to_string())
    } else {
        (false, "apply is off (set apply: true in the policy or pass --apply)".to_string())
    };
    tracing::info!(run_id, trigger = trigger.describe(), mode = if apply { "apply" } else { "dry-run" }, mode_reason, now = %now, "run starting");

    let mut summary = Summary {
        run_id: run_id.clone(),
        mode: if apply { "apply" } else { "dry-run" }.into(),
        mode_reason,
        trigger: trigger.describe(),
        now: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        scanned: 0,
        counts: BTreeMap::new(),
        released: Vec::new(),
        would_release: Vec::new(),
        failures: Vec::new(),
        skipped_scopes: Vec::new(),
        limit_breach: None,
        api_calls: BTreeMap::new(),
        notifications: Vec::new(),
        entries: Vec::new(),
    };

    // 1. List every (product, region), regions in parallel under a bound. A failed listing skips its scope.
    let listings = list_all(&api, &scope, policy.concurrency.regions).await;
    let mut scopes: Vec<(Arc<dyn Product>, String, Vec<Instance>)> = Vec::new();
    for (product, region, result) in listings {
        match result {
            Ok(instances) => scopes.push((product, region, instances)),
            Err(e) => {
                tracing::warn!(product = product.code(), region, code = e.summary_code(), error = %e, "listing failed: nothing in this scope will be released");
                summary.skipped_scopes.push(SkippedScope {
                    product: product.code().into(),
                    region,
                    code: e.summary_code(),
                    error: e.to_string(),
                });
            }
        }
    }

    tracing::debug!(phase = "listed", scopes = scopes.len(), "phase done");
    // 2. Decide, per instance. Only eligible instances are kept past here (releasing needs their `extra`):
    // the others are dropped as they are decided, so a large listing is not held twice (benchmark: peak RSS).
    // Reserved once: growing a vector of 10,000 entries by doubling holds two copies at the last step.
    summary.entries.reserve_exact(scopes.iter().map(|(_, _, i)| i.len()).sum());
    for (_, _, instances) in scopes.iter_mut() {
        summary.scanned += instances.len();
        let mut eligible = Vec::new();
        for inst in std::mem::take(instances) {
            let decision = plan::evaluate(&inst, policy, now);
            if decision.is_release() {
                eligible.push(inst);
            }
            summary.entries.push(Entry::from_decision(decision));
        }
        *instances = eligible;
    }
    for entry in summary.entries.iter_mut() {
        let caps = scopes.iter().find(|(p, _, _)| p.code() == entry.decision.product).map(|(p, _, _)| p.capabilities());
        let charge = entry.decision.facts.get("charge_type").cloned().unwrap_or_default();
        if let (Some(caps), true) = (caps, entry.decision.is_release()) {
            if !caps.releasable.iter().any(|c| c.to_string() == charge) {
                entry.outcome = Outcome::Manual;
                entry.message = Some(format!("eligible, but {} cannot release {charge} instances by API: release it by hand", entry.decision.product));
            }
        }
    }

    tracing::debug!(phase = "decided", entries = summary.entries.len(), "phase done");
    // 3. Run-wide limits: above them nothing is released, not even dry-run calls are made.
    let eligible = summary.entries.iter().filter(|e| e.outcome == Outcome::WouldRelease).count();
    // Entries whose outcome can no longer change, logged while the release calls are in flight.
    let mut logged: Option<Vec<Entry>> = None;
    if let Some(breach) = plan::check_limits(eligible, summary.scanned, &policy.limits) {
        tracing::warn!(eligible = breach.eligible, scanned = breach.scanned, reason = breach.reason, "limit breached: nothing released");
        for e in summary.entries.iter_mut().filter(|e| e.outcome == Outcome::WouldRelease) {
            e.outcome = Outcome::Held;
            e.message = Some(breach.reason.clone());
        }
        summary.limit_breach = Some(breach);
    } else {
        // 4. Dry run, then release, all scopes at once: the client's per-endpoint limits bound the calls.
        // Only eligible entries take part; the decision lines of the others are written meanwhile.
        // In place, so that 10,000 entries are not copied: the settled ones keep the big buffer.
        summary.entries.sort_unstable_by_key(|e| e.outcome == Outcome::WouldRelease);
        let first_pending = summary.entries.partition_point(|e| e.outcome != Outcome::WouldRelease);
        let pending = summary.entries.split_off(first_pending);
        let settled = std::mem::replace(&mut summary.entries, pending);
        // Entries are grouped by scope (in the scopes' order) so that each scope gets its own slice.
        summary.entries.sort_by(|a, b| (&a.decision.product, &a.decision.region).cmp(&(&b.decision.product, &b.decision.region)));
        let mut rest: &mut [Entry] = &mut summary.entries;
        let mut work = Vec::with_capacity(scopes.len());
        for (product, region, instances) in &scopes {
            let n = rest.iter().take_while(|e| e.decision.product == product.code() && e.decision.region == *region).count();
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            work.push(release_scope(product.as_ref(), &api, region, instances, &run_id, apply, policy, now, mine));
        }
        debug_assert!(rest.is_empty(), "every entry belongs to a listed scope");
        // On the same task, a chunk at a time, so the release calls' answers are handled between chunks.
        let log_settled = async {
            for chunk in settled.chunks(256) {
                chunk.iter().for_each(log_entry);
                tokio::task::yield_now().await;
            }
        };
        tokio::join!(futures_util::future::join_all(work), log_settled);
        logged = Some(settled);
    }

    tracing::debug!(phase = "released", "phase done");
    for e in &summary.entries {
        log_entry(e);
    }
    if let Some(mut all) = logged {
        all.append(&mut summary.entries);
        summary.entries = all;
    }
    summary.api_calls = api.call_counts();
    summary.finish();
    tracing::info!(
        run_id,
        scanned = summary.scanned,
        released = summary.released.len(),
        would_release = summary.would_release.len(),
        failures = summary.failures.len(),
        skipped_scopes = summary.skipped_scopes.len(),
        "run finished"
    );
    if !webhooks.is_empty() {
        summary.notifications = notify(&webhooks, &summary).await;
    }
    Ok(summary)
}

async fn notify(targets: &[WebhookTarget], summary: &Summary) -> Vec<crate::webhook::Delivery> {
    crate::aliyun::install_crypto_provider();
    // No redirects: a 307/308 would resend the summary to another host.
    let http = match reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e.without_url(), "cannot build the webhook client: no summary sent");
            return Vec::new();
        }
    };
    let deliveries = crate::webhook::deliver_all(&http, targets, summary).await;
    for d in &deliveries {
        if d.ok {
            tracing::info!(index = d.index, format = d.format.as_str(), attempts = d.attempts, "summary webhook delivered");
        } else {
            tracing::error!(index = d.index, format = d.format.as_str(), attempts = d.attempts, error = d.error.as_deref().unwrap_or(""), "summary webhook failed");
        }
    }
    deliveries
}

/// Products and regions this run covers: the policy's, narrowed (never widened) by the trigger.
struct Scope {
    products: Vec<Arc<dyn Product>>,
    regions: Vec<String>,
}

impl Scope {
    fn resolve(policy: &Policy, trigger: &Trigger, registry: Vec<Box<dyn Product>>) -> Result<Scope, JobError> {
        let mut regions = policy.regions.clone();
        if let Some(asked) = trigger.regions() {
            for r in asked {
                if !policy.regions.contains(r) {
                    return Err(JobError::Widening { what: "region", value: r.clone() });
                }
            }
            regions.retain(|r| asked.contains(r));
        }
        let mut codes = policy.products.clone();
        if let Some(asked) = trigger.products() {
            for p in asked {
                if !policy.products.contains(p) {
                    return Err(JobError::Widening { what: "product", value: p.clone() });
                }
            }
            codes.retain(|p| asked.contains(p));
        }
        let products = registry
            .into_iter()
            .filter(|p| codes.iter().any(|c| c == p.code()))
            .map(Arc::from)
            .collect::<Vec<Arc<dyn Product>>>();
        Ok(Scope { products, regions })
    }
}

type Listing = (Arc<dyn Product>, String, Result<Vec<Instance>, ApiError>);

async fn list_all(api: &Client, scope: &Scope, concurrency: usize) -> Vec<Listing> {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for product in &scope.products {
        for region in &scope.regions {
            let (api, product, region, limit) = (api.clone(), product.clone(), region.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire().await;
                let result = product.list(&api, &region).await;
                (product, region, result)
            });
        }
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(listing) => out.push(listing),
            // A panicking task is a bug; its scope is simply absent from the scan and so never released.
            Err(e) => tracing::error!(error = %e, "listing task failed"),
        }
    }
    out.sort_by(|a, b| (a.0.code(), &a.1).cmp(&(b.0.code(), &b.1)));
    out
}

#[allow(clippy::too_many_arguments)]
async fn release_scope(
    product: &dyn Product,
    api: &Client,
    region: &str,
    instances: &[Instance],
    run_id: &str,
    apply: bool,
    policy: &Policy,
    now: DateTime<Utc>,
    entries: &mut [Entry],
) {
    let caps = product.capabilities();
    let in_scope = |e: &Entry| e.decision.product == product.code() && e.decision.region == region && e.outcome == Outcome::WouldRelease;
    let mut eligible: Vec<Eligible> = Vec::new();
    let extras: BTreeMap<&str, &BTreeMap<String, String>> = instances.iter().map(|i| (i.id.as_str(), &i.extra)).collect();
    for e in entries.iter().filter(|e| in_scope(e)) {
        if let Verdict::Release { options } = e.decision.verdict {
            let extra = extras.get(e.decision.id.as_str()).map(|x| (*x).clone()).unwrap_or_default();
            eligible.push(Eligible { id: e.decision.id.clone(), options, extra });
        }
    }
    if eligible.is_empty() {
        return;
    }

    // Without a native dry run, the dry-run step is a fresh read made just before the release: only what
    // still matches the same rule with the same options goes on.
    if !caps.native_dry_run {
        let ids: Vec<String> = eligible.iter().map(|e| e.id.clone()).collect();
        match product.get(api, region, &ids).await {
            Ok(fresh) => {
                let mut keep = Vec::new();
                for el in eligible {
                    let entry = entries.iter_mut().find(|e| in_scope(e) && e.decision.id == el.id);
                    let Some(entry) = entry else { continue };
                    match fresh.iter().find(|i| i.id == el.id).map(|i| plan::evaluate(i, policy, now)) {
                        Some(d) if d.verdict == entry.decision.verdict && d.rule == entry.decision.rule => keep.push(el),
                        Some(d) => {
                            entry.outcome = Outcome::Skipped;
                            entry.message = Some(format!("changed since listing (pre-flight): now {}", describe_verdict(&d)));
                            entry.decision = Decision { verdict: Verdict::Skip { reason: "changed since listing (pre-flight)".into() }, ..d };
                        }
                        None => {
                            entry.outcome = Outcome::Skipped;
                            entry.decision.verdict = Verdict::Skip { reason: "no longer exists (pre-flight)".into() };
                        }
                    }
                }
                eligible = keep;
            }
            Err(e) => {
                for entry in entries.iter_mut().filter(|e| in_scope(e)) {
                    entry.outcome = Outcome::Failed;
                    entry.code = Some(e.summary_code());
                    entry.message = Some(format!("pre-flight read failed: {e}"));
                }
                return;
            }
        }
    }

    let results = release::release_region(product, api, region, run_id, eligible, apply).await;
    for entry in entries.iter_mut().filter(|e| e.decision.product == product.code() && e.decision.region == region) {
        let Some(r) = results.get(&entry.decision.id) else { continue };
        match r {
            IdOutcome::DryRunPassed { request_ids } => {
                entry.outcome = Outcome::WouldRelease;
                entry.request_ids = request_ids.clone();
            }
            IdOutcome::Released { request_ids } => {
                entry.outcome = Outcome::Released;
                entry.request_ids = request_ids.clone();
            }
            IdOutcome::Failed { error, request_ids } => {
                entry.outcome = Outcome::Failed;
                entry.code = Some(error.summary_code());
                entry.message = Some(error.to_string());
                entry.request_ids = request_ids.clone();
            }
        }
    }
}

fn describe_verdict(d: &Decision) -> String {
    match &d.verdict {
        Verdict::Release { .. } => format!("eligible under rule {}", d.rule.as_deref().unwrap_or("?")),
        Verdict::Protected { by } => format!("protected by {by}"),
        Verdict::Skip { reason } | Verdict::Invalid { reason } => reason.clone(),
        Verdict::Keep => "no rule matches".into(),
    }
}

/// One JSON log line per instance: id, product, region, decision, rule, facts, request ids.
fn log_entry(e: &Entry) {
    let d = &e.decision;
    let facts = serde_json::to_string(&d.facts).unwrap_or_default();
    tracing::info!(
        target: "decision",
        product = d.product,
        region = d.region,
        id = d.id,
        name = d.name,
        decision = e.outcome.as_str(),
        rule = d.rule.as_deref().unwrap_or(""),
        reason = crate::report::reason(e),
        code = e.code.as_deref().unwrap_or(""),
        facts,
        request_ids = e.request_ids.join(","),
        "decision"
    );
}

//! One run, wired end to end: trigger + policy → listing (or, for an event, a re-read by id) → plan →
//! lifecycle (mark / wait / release / unmark, window) → limits → tags → dry run → release → summary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::Semaphore;

use crate::aliyun::{ApiError, Client, CredentialError, Credentials, EndpointError, Endpoints, RetryPolicy};
use crate::discovery;
use crate::event::{EventError, ResourceEvent, Trigger};
use crate::inventory::{ChargeType, Extras, Instance};
use crate::lifecycle::{self, Action, LAST_EVENT_TAG};
use crate::plan::{self, Decision, LimitScope, Verdict};
use crate::policy::{Policy, WindowState, AUTO_RELEASE_MIN};
use crate::products::{self, Product, TagReport};
use crate::release::{self, Eligible, IdOutcome};
use crate::report::{Entry, Outcome, SkippedScope, Summary, NO_OWNER, OWNER_FACT, RELEASE_AFTER_FACT};
use crate::webhook::WebhookTarget;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("bad event: {0}")]
    Event(#[from] EventError),
    #[error("{0}")]
    Credentials(#[from] CredentialError),
    #[error("{0}")]
    Endpoint(#[from] EndpointError),
    #[error(
        "trigger asks for {what} `{value}`, which the policy does not cover (an event may only narrow the policy)"
    )]
    Widening { what: &'static str, value: String },
    #[error("the policy clock (JANITOR_NOW / --now) is {now}, ahead of the real clock: a future clock is only accepted against the emulator (JANITOR_ENDPOINT), never against real endpoints")]
    FutureClock { now: String },
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
            JobError::FutureClock { .. } => "FutureClock",
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
        Settings {
            policy,
            endpoint_override: None,
            apply_flag: false,
            now: None,
            retry: RetryPolicy::default(),
            webhooks: None,
        }
    }
}

/// Parses an event body and runs the job: the shared entry point of the CLI, Lambda and Function Compute.
pub async fn handle(body: &[u8], settings: &Settings, credentials: Credentials) -> Result<Summary, JobError> {
    let trigger = crate::event::parse(body)?;
    run(&trigger, settings, credentials).await
}

/// Runs the job for an already-parsed trigger.
pub async fn run(trigger: &Trigger, settings: &Settings, credentials: Credentials) -> Result<Summary, JobError> {
    check_clock(settings.now, Utc::now(), settings.endpoint_override.is_some())?;
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
        (true, "--apply (or JANITOR_APPLY=true) was given".to_string())
    } else {
        (false, "apply is off (set apply: true in the policy or pass --apply)".to_string())
    };
    tracing::info!(run_id, trigger = trigger.describe(), mode = if apply { "apply" } else { "dry-run" }, mode_reason, now = %now, "run starting");

    let mode = if apply { "apply" } else { "dry-run" };
    let mut summary =
        Summary::new(&run_id, mode, &mode_reason, &trigger.describe(), &now.to_rfc3339_opts(SecondsFormat::Secs, true));

    // 1. What exists: every (product, region) listed, regions in parallel under a bound; or, for an event, a fresh
    //    read of exactly the resources it names. A failed listing or read skips its scope.
    let listings = match trigger.resources() {
        None => list_all(&api, &scope, policy.concurrency.regions).await,
        Some(event) => read_named(&api, &scope, event, policy.concurrency.regions, &mut summary.ignored).await,
    };
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

    // 2. Decide, per instance. An instance that can take no further part (not eligible, carrying none of the
    //    janitor's tags, not a subscription billing may cross-check) is dropped once decided, so a large listing
    //    is not held twice (benchmark: peak memory). Its owner fact is recorded first.
    summary.entries.reserve_exact(scopes.iter().map(|(_, _, i)| i.len()).sum());
    for (product, _, instances) in scopes.iter_mut() {
        summary.scanned += instances.len();
        instances.retain(|inst| {
            let mut decision = decide(product.as_ref(), inst, policy, now);
            if let Some(owner_tag) = &policy.notify.owner_tag {
                let owner = inst.tags.get(owner_tag).filter(|o| !o.trim().is_empty()).unwrap_or(NO_OWNER).to_string();
                decision.facts.insert(OWNER_FACT, &owner);
            }
            let needed = decision.is_release()
                || inst.charge_type == crate::inventory::ChargeType::Subscription
                || inst.tags.keys().any(lifecycle::is_reserved_tag);
            summary.entries.push(Entry::from_decision(decision));
            needed
        });
        instances.shrink_to_fit();
    }
    for entry in summary.entries.iter_mut() {
        let spec = scopes.iter().find(|(p, _, _)| p.code() == entry.decision.product).map(|(p, _, _)| p.spec());
        let charge = entry.decision.facts.get("charge_type").unwrap_or_default().to_string();
        if let (Some(spec), true) = (spec, entry.decision.is_release()) {
            if !spec.releasable.iter().any(|c| c.to_string() == charge) {
                entry.outcome = Outcome::Manual;
                entry.message = Some(format!(
                    "eligible, but {} cannot release {charge} instances by API: release it by hand",
                    entry.decision.product
                ));
            }
        }
    }

    // 2b. Billing discovery (`bss.discovery`): expired subscriptions across products, cross-checked with the listings.
    //     Billing is account-wide, so an event run (which reads a few ids) cannot cross-check: there, expired
    //     subscriptions are left to the scheduled run (fail closed).
    if policy.bss.discovery && trigger.resources().is_none() {
        let codes: Vec<&str> = scope.products.iter().map(|p| p.code()).collect();
        let reach = discovery::Reach {
            regions: &scope.regions,
            products: &codes,
            other_products: trigger.products().is_none(),
        };
        discovery::discover(&api, policy, now, &reach, &scopes, &mut summary).await;
    }

    // 3. The lifecycle: mark, wait, release or unmark; releases only inside the window.
    let index = InstanceIndex::new(&scopes);
    lifecycle_step(&index, policy, trigger.resources(), now, apply, &mut summary.entries);
    if policy.bss.discovery && trigger.resources().is_some() {
        for e in summary.entries.iter_mut() {
            if matches!(e.decision.verdict, Verdict::Release { options } if options.terminate_subscription)
                && e.outcome == Outcome::WouldRelease
            {
                e.outcome = Outcome::Skipped;
                e.message = Some("due, but an expired subscription is cross-checked with billing (bss.discovery), which only scheduled runs read".into());
            }
        }
    }

    // 4. Run-wide limits, on releases and on new marks: above them that whole set is held (fail closed), and
    //    not even dry-run calls are made for it. An event run checks the count only (see `plan::LimitScope`).
    let limit_scope = if trigger.resources().is_some() { LimitScope::Event } else { LimitScope::Fleet };
    let eligible = summary.entries.iter().filter(|e| e.outcome == Outcome::WouldRelease).count();
    let release_breach = plan::check_release_limits(eligible, summary.scanned, &policy.limits, limit_scope);
    let to_mark = summary.entries.iter().filter(|e| matches!(e.outcome, Outcome::Marked | Outcome::WouldMark)).count();
    let mark_breach = plan::check_mark_limits(to_mark, summary.scanned, &policy.limits, limit_scope);
    for (breach, held) in
        [(&release_breach, &[Outcome::WouldRelease][..]), (&mark_breach, &[Outcome::Marked, Outcome::WouldMark][..])]
    {
        if let Some(breach) = breach {
            tracing::warn!(count = breach.eligible, scanned = breach.scanned, reason = breach.reason, "limit breached");
            for e in summary.entries.iter_mut().filter(|e| held.contains(&e.outcome)) {
                e.outcome = Outcome::Held;
                e.message = Some(breach.reason.clone());
            }
        }
    }
    summary.limit_breach = release_breach.or(mark_breach);

    // 5. Marks and unmarks (tags, auto-release times), then 6. dry run and release: every scope at once, each
    //    with its own entries; the client's per-endpoint limits bound the calls (benchmark: wall time).
    let slot: BTreeMap<(&str, &str), usize> =
        scopes.iter().enumerate().map(|(i, (p, r, _))| ((p.code(), r.as_str()), i)).collect();
    // Entries are moved, not grown into place, and each vector is sized first: there are as many entries as
    // instances scanned, and a doubling vector beside its source was the run's last memory peak.
    let bucket_of = |e: &Entry| slot.get(&(e.decision.product.as_str(), e.decision.region.as_str())).copied();
    let mut sizes = vec![0usize; scopes.len() + 1];
    for e in &summary.entries {
        sizes[bucket_of(e).unwrap_or(scopes.len())] += 1;
    }
    let mut buckets: Vec<Vec<Entry>> = sizes[..scopes.len()].iter().map(|&n| Vec::with_capacity(n)).collect();
    let mut unscoped = Vec::with_capacity(sizes[scopes.len()]);
    for e in std::mem::take(&mut summary.entries) {
        match bucket_of(&e) {
            Some(i) => buckets[i].push(e),
            None => unscoped.push(e),
        }
    }
    let (api_ref, index_ref, run_id_ref) = (&api, &index, run_id.as_str());
    let work = scopes.iter().zip(buckets.iter_mut()).map(|((product, region, instances), mine)| async move {
        if apply {
            tag_scope(product.as_ref(), api_ref, region, index_ref, trigger.resources(), policy, now, mine).await;
        }
        release_scope(product.as_ref(), api_ref, region, instances, run_id_ref, apply, policy, now, mine).await;
    });
    futures_util::future::join_all(work).await;
    summary.entries = unscoped;
    summary.entries.reserve_exact(buckets.iter().map(Vec::len).sum());
    summary.entries.extend(buckets.into_iter().flatten());
    // Billing's own release of products without an adapter (reseller accounts only).
    discovery::release_through_billing(&api, policy, now, apply, &mut summary.entries).await;

    summary.api_calls = api.call_counts();
    summary.finish();
    for e in &summary.entries {
        log_entry(e);
    }
    tracing::info!(
        run_id,
        scanned = summary.scanned,
        released = summary.released.len(),
        would_release = summary.would_release.len(),
        marked = summary.marked.len(),
        unmarked = summary.unmarked.len(),
        failures = summary.failures.len(),
        skipped_scopes = summary.skipped_scopes.len(),
        "run finished"
    );
    // An event run that changed nothing (the usual case: a tag that does not concern the janitor) stays quiet.
    let worth_telling =
        trigger.resources().is_none() || summary.is_degraded() || summary.entries.iter().any(|e| e.outcome.is_change());
    if !webhooks.is_empty() && worth_telling {
        summary.notifications = notify(&webhooks, &summary).await;
    }
    Ok(summary)
}

/// The instances of this run by (product, region, id), for the steps after planning.
struct InstanceIndex<'a> {
    by_key: BTreeMap<(&'a str, &'a str, &'a str), (&'a dyn Product, &'a Instance)>,
}

impl<'a> InstanceIndex<'a> {
    fn new(scopes: &'a [(Arc<dyn Product>, String, Vec<Instance>)]) -> Self {
        let mut by_key = BTreeMap::new();
        for (product, region, instances) in scopes {
            for inst in instances {
                by_key.insert((product.code(), region.as_str(), inst.id.as_str()), (product.as_ref(), inst));
            }
        }
        InstanceIndex { by_key }
    }

    fn get(&self, d: &Decision) -> Option<(&'a dyn Product, &'a Instance)> {
        self.by_key.get(&(d.product.as_str(), d.region.as_str(), d.id.as_str())).copied()
    }
}

/// Applies the lifecycle to every planned entry (see `lifecycle`): sets outcomes, messages and the facts
/// `release_after` and `owner`. No API calls: the tags are written by `tag_scope`.
fn lifecycle_step(
    index: &InstanceIndex<'_>,
    policy: &Policy,
    event: Option<&ResourceEvent>,
    now: DateTime<Utc>,
    apply: bool,
    entries: &mut [Entry],
) {
    let mut windows: BTreeMap<String, WindowState> = BTreeMap::new();
    let no_tags = crate::inventory::Tags::new();
    for entry in entries.iter_mut() {
        // Entries without a listed instance (billing discovery) have no tags and cannot be marked.
        let found = index.get(&entry.decision);
        let (tags, can_tag) = match found {
            Some((product, inst)) => (&inst.tags, product.tagging().is_some()),
            None => (&no_tags, false),
        };
        // Listed instances got their owner fact when decided; billing-only entries have no tags, so no owner.
        if policy.notify.owner_tag.is_some() && !entry.decision.facts.contains_key(OWNER_FACT) {
            entry.decision.facts.insert(OWNER_FACT, NO_OWNER);
        }
        if let Some(seen) = event.zip(found).and_then(|(ev, (_, inst))| duplicate_of(ev, &entry.decision, inst)) {
            entry.outcome = Outcome::Duplicate;
            entry.message = Some(format!(
                "event {seen} was already processed for this instance ({LAST_EVENT_TAG}): nothing done twice"
            ));
            continue;
        }
        if entry.outcome == Outcome::Manual {
            continue;
        }
        let rule = entry.decision.rule.as_deref().and_then(|name| policy.rules.iter().find(|r| r.name == name));
        let window_of = rule.and_then(|r| r.window.as_ref()).or(policy.window.as_ref());
        let window = match window_of {
            None => WindowState::Always,
            Some(w) => windows.entry(w.describe()).or_insert_with(|| w.state_at(now)).clone(),
        };
        let mark = lifecycle::read_mark(tags);
        let ctx = lifecycle::Context { now, grace: rule.map_or(Duration::ZERO, |r| r.grace), window, can_tag };
        let action = lifecycle::decide(&entry.decision, &mark, &ctx);
        if let lifecycle::Mark::Set { release_after, .. } = &mark {
            if entry.decision.is_release() {
                entry.decision.facts.insert(RELEASE_AFTER_FACT, &lifecycle::format_time(*release_after));
            }
        }
        let rule_name = entry.decision.rule.clone().unwrap_or_default();
        match action {
            Action::Leave | Action::Release => {}
            Action::Mark { release_after, previous_rule } => {
                let at = lifecycle::format_time(release_after);
                entry.decision.facts.insert(RELEASE_AFTER_FACT, &at);
                let grace = crate::policy::format_duration(ctx.grace);
                let again = previous_rule
                    .map(|r| format!("; re-marked: it now matches rule {rule_name}, not {r}"))
                    .unwrap_or_default();
                entry.outcome = if apply { Outcome::Marked } else { Outcome::WouldMark };
                let verb = if apply { "marked" } else { "would be marked" };
                entry.message = Some(format!("{verb} for release after {at} (rule {rule_name}, grace {grace}){again}"));
            }
            Action::Wait { release_after } => {
                entry.outcome = Outcome::Waiting;
                let left = (release_after - now).to_std().map(crate::policy::format_duration).unwrap_or_default();
                entry.message = Some(format!(
                    "marked; released after {} ({left} from now) if it still matches",
                    lifecycle::format_time(release_after)
                ));
            }
            Action::Unmark { why } => {
                entry.outcome = if apply { Outcome::Unmarked } else { Outcome::WouldUnmark };
                let was = match &mark {
                    lifecycle::Mark::Set { release_after, .. } => {
                        format!(" (was: release after {})", lifecycle::format_time(*release_after))
                    }
                    _ => String::new(),
                };
                let verb = if apply { "mark removed" } else { "mark would be removed" };
                entry.message = Some(format!("{verb}{was}: {why}"));
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

/// The event id, among those that named this instance, that an earlier delivery already acted on.
fn duplicate_of(event: &ResourceEvent, d: &Decision, inst: &Instance) -> Option<String> {
    let seen = inst.tags.get(LAST_EVENT_TAG)?;
    let named = event.targets.iter().find(|t| t.product == d.product && t.region == d.region && t.id == d.id)?;
    named.event_ids.iter().any(|id| id == seen).then(|| seen.to_string())
}

/// The auto-release time the policy wants on this instance right now: the mark's deadline, when its rule asks
/// for `auto_release`, the instance is pay-as-you-go, the product supports it and the deadline is far enough ahead.
fn wanted_auto_release(
    entry: &Entry,
    product: &dyn Product,
    inst: &Instance,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let rule = policy.rules.iter().find(|r| Some(r.name.as_str()) == entry.decision.rule.as_deref())?;
    let at = entry
        .decision
        .facts
        .get(RELEASE_AFTER_FACT)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
        .with_timezone(&Utc);
    let min_ahead = chrono::Duration::from_std(AUTO_RELEASE_MIN).ok()?;
    let ok = rule.auto_release
        && product.auto_release().is_some()
        && inst.charge_type == ChargeType::PayAsYouGo
        && at >= now + min_ahead;
    ok.then_some(at)
}

/// The platform's current auto-release time of an instance, when the adapter reports one.
fn current_auto_release(product: &dyn Product, inst: &Instance) -> Option<DateTime<Utc>> {
    product.auto_release().and_then(|a| a.scheduled(inst))
}

/// Writes the marks and removes the unmarks of one (product, region), in apply mode. A failure leaves the entry
/// `failed` with its code: a mark that could not be written never counts as a warning given.
#[allow(clippy::too_many_arguments)]
async fn tag_scope(
    product: &dyn Product,
    api: &Client,
    region: &str,
    index: &InstanceIndex<'_>,
    event: Option<&ResourceEvent>,
    policy: &Policy,
    now: DateTime<Utc>,
    entries: &mut [Entry],
) {
    let in_scope = |e: &Entry| e.decision.product == product.code() && e.decision.region == region;
    let last_event = |e: &Entry| {
        event
            .and_then(|ev| {
                ev.targets
                    .iter()
                    .find(|t| t.product == e.decision.product && t.region == e.decision.region && t.id == e.decision.id)
            })
            .and_then(|t| t.event_ids.last().cloned())
    };

    // Marks: one TagResources call per distinct tag set (deadline, rule, event).
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<String>> = BTreeMap::new();
    for e in entries.iter().filter(|e| in_scope(e) && e.outcome == Outcome::Marked) {
        let Some(at) = e.decision.facts.get(RELEASE_AFTER_FACT).and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        let mut tags = lifecycle::mark_tags(at.with_timezone(&Utc), e.decision.rule.as_deref().unwrap_or(""));
        if let Some(ev) = last_event(e) {
            tags.insert(LAST_EVENT_TAG.into(), ev);
        }
        groups.entry(tags).or_default().push(e.decision.id.to_string());
    }
    // Only a product with tagging has marks and unmarks (`lifecycle::Context::can_tag`).
    let tagging = product.tagging();
    for (tags, ids) in groups {
        let Some(tagging) = tagging else { break };
        let report = tagging.tag(api, region, &ids, &tags).await;
        apply_tag_report(entries, product, region, &ids, report, "marking failed");
    }

    // Unmarks: remove the mark tags, record the event, cancel the auto-release time the janitor set.
    let unmark_ids: Vec<String> = entries
        .iter()
        .filter(|e| in_scope(e) && e.outcome == Outcome::Unmarked)
        .map(|e| e.decision.id.to_string())
        .collect();
    if let (false, Some(tagging)) = (unmark_ids.is_empty(), tagging) {
        let keys = vec![lifecycle::RELEASE_AFTER_TAG.to_string(), lifecycle::RULE_TAG.to_string()];
        let report = tagging.untag(api, region, &unmark_ids, &keys).await;
        apply_tag_report(entries, product, region, &unmark_ids, report, "removing the mark failed");
    }
    let mut by_event: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in entries.iter().filter(|e| in_scope(e) && e.outcome == Outcome::Unmarked) {
        if let Some(ev) = last_event(e) {
            by_event.entry(ev).or_default().push(e.decision.id.to_string());
        }
    }
    for (ev, ids) in by_event {
        let Some(tagging) = tagging else { break };
        let report = tagging.tag(api, region, &ids, &BTreeMap::from([(LAST_EVENT_TAG.to_string(), ev)])).await;
        apply_tag_report(entries, product, region, &ids, report, "recording the event failed");
    }

    // Auto-release times: set for new marks (and repaired for waiting ones) when the rule asks; cancelled on
    // unmark, but only the one matching the janitor's mark: an owner's own auto-release time is theirs.
    for e in entries.iter_mut().filter(|e| in_scope(e)) {
        let Some((_, inst)) = index.get(&e.decision) else { continue };
        let current = current_auto_release(product, inst);
        let change = match e.outcome {
            Outcome::Marked | Outcome::Waiting => match wanted_auto_release(e, product, inst, policy, now) {
                Some(at) if !current.is_some_and(|c| lifecycle::is_auto_release_for(c, at)) => Some(Some(at)),
                _ => None,
            },
            Outcome::Unmarked => match (lifecycle::read_mark(&inst.tags), current) {
                (lifecycle::Mark::Set { release_after, .. }, Some(c))
                    if lifecycle::is_auto_release_for(c, release_after) && product.auto_release().is_some() =>
                {
                    Some(None)
                }
                (_, Some(c)) => {
                    let note = format!(
                        "; its auto-release time {} was not set by the janitor and is left as it is",
                        lifecycle::format_time(c)
                    );
                    e.message = Some(format!("{}{note}", e.message.clone().unwrap_or_default()));
                    None
                }
                _ => None,
            },
            _ => None,
        };
        let (Some(at), Some(auto_release)) = (change, product.auto_release()) else { continue };
        let result = match at {
            Some(t) => auto_release.set(api, region, &e.decision.id, t).await,
            None => auto_release.cancel(api, region, &e.decision.id).await,
        };
        match result {
            Ok(rid) => {
                e.request_ids.extend(Some(rid).filter(|r| !r.is_empty()));
                let what = match at {
                    Some(t) => format!("; the platform's auto-release time is set to {}", lifecycle::format_time(t)),
                    None => "; the auto-release time the janitor set is cancelled".to_string(),
                };
                e.message = Some(format!("{}{what}", e.message.clone().unwrap_or_default()));
            }
            Err(err) => {
                let what = if at.is_some() { "setting" } else { "cancelling" };
                e.message = Some(format!(
                    "{}; but {what} the auto-release time failed: {err}",
                    e.message.clone().unwrap_or_default()
                ));
                e.code = Some(err.summary_code());
                e.request_ids.extend(err.request_id().map(String::from));
                e.outcome = Outcome::Failed;
            }
        }
    }
}

/// Records a tag call's result on the entries it concerns: failed ids become `failed` with the code.
fn apply_tag_report(
    entries: &mut [Entry],
    product: &dyn Product,
    region: &str,
    ids: &[String],
    report: Result<TagReport, ApiError>,
    what: &str,
) {
    let report = report.unwrap_or_else(|e| {
        let mut r = TagReport::default();
        r.fail_all(ids, &e);
        r
    });
    for e in entries.iter_mut().filter(|e| {
        e.decision.product == product.code()
            && e.decision.region == region
            && ids.iter().any(|id| id == e.decision.id.as_str())
    }) {
        match report.failed.get(e.decision.id.as_str()) {
            Some((code, message)) => {
                tracing::warn!(product = product.code(), region, id = e.decision.id.as_str(), code, "{what}");
                e.outcome = Outcome::Failed;
                e.code = Some(code.clone());
                e.message = Some(format!("{what}: {message}"));
            }
            None => e.request_ids.extend(report.request_ids.iter().cloned()),
        }
    }
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
            tracing::info!(
                index = d.index,
                format = d.format.as_str(),
                attempts = d.attempts,
                "summary webhook delivered"
            );
        } else {
            tracing::error!(
                index = d.index,
                format = d.format.as_str(),
                attempts = d.attempts,
                error = d.error.as_deref().unwrap_or(""),
                "summary webhook failed"
            );
        }
    }
    deliveries
}

/// An injected clock ahead of real time would make instances look expired before they are: allowed only when
/// every call goes to the emulator (`JANITOR_ENDPOINT`), where tests drive days forward. A past clock (a replay)
/// only finds fewer instances due, so it is always allowed. Five minutes of slack absorb clock skew.
fn check_clock(now: Option<DateTime<Utc>>, real: DateTime<Utc>, emulator: bool) -> Result<(), JobError> {
    match now {
        Some(now) if !emulator && now > real + chrono::Duration::minutes(5) => {
            Err(JobError::FutureClock { now: now.to_rfc3339_opts(SecondsFormat::Secs, true) })
        }
        _ => Ok(()),
    }
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

/// For an event: reads exactly the named resources, by id, grouped by (product, region); never lists. Resources
/// outside the policy's products or regions are ignored with a log line, and so are ids no longer found.
async fn read_named(
    api: &Client,
    scope: &Scope,
    event: &ResourceEvent,
    concurrency: usize,
    ignored: &mut Vec<String>,
) -> Vec<Listing> {
    for note in &event.ignored {
        tracing::info!(
            event_ids = event.event_ids.join(","),
            named = note.as_str(),
            "the event names something the janitor does not manage: ignored"
        );
        ignored.push(note.clone());
    }
    let mut wanted: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for t in &event.targets {
        let covered = scope.products.iter().any(|p| p.code() == t.product) && scope.regions.contains(&t.region);
        if covered {
            wanted.entry((t.product.clone(), t.region.clone())).or_default().push(t.id.clone());
        } else {
            let name = format!("{}:{}/{}", t.product, t.region, t.id);
            tracing::info!(
                resource = name,
                "the event names a resource outside the policy's products or regions: ignored"
            );
            ignored.push(format!("{name} (outside the policy's products or regions)"));
        }
    }
    if wanted.is_empty() {
        tracing::info!(
            event_ids = event.event_ids.join(","),
            "the event names nothing the janitor manages: nothing to do"
        );
        return Vec::new();
    }
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for ((code, region), ids) in wanted {
        let Some(product) = scope.products.iter().find(|p| p.code() == code).cloned() else { continue };
        let (api, limit) = (api.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            let result = product.get(&api, &region, &ids).await.map(|found| {
                // Only what was asked for: an answer naming other ids is not trusted to widen the run.
                let found: Vec<Instance> =
                    found.into_iter().filter(|i| ids.iter().any(|id| id == i.id.as_str())).collect();
                let missing: Vec<String> =
                    ids.iter().filter(|id| !found.iter().any(|i| i.id == **id)).cloned().collect();
                (found, missing)
            });
            (product, region, result)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((product, region, Ok((found, missing)))) => {
                for id in missing {
                    let name = format!("{}:{region}/{id}", product.code());
                    tracing::info!(
                        resource = name,
                        "the event names a resource that no longer exists (or never did): nothing to do"
                    );
                    ignored.push(format!("{name} (not found)"));
                }
                out.push((product, region, Ok(found)));
            }
            Ok((product, region, Err(e))) => out.push((product, region, Err(e))),
            Err(e) => tracing::error!(error = %e, "read task failed"),
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
    let in_scope = |e: &Entry| {
        e.decision.product == product.code() && e.decision.region == region && e.outcome == Outcome::WouldRelease
    };
    let mut eligible: Vec<Eligible> = Vec::new();
    let extras: BTreeMap<&str, &Extras> = instances.iter().map(|i| (i.id.as_str(), &i.extra)).collect();
    for e in entries.iter().filter(|e| in_scope(e)) {
        if let Verdict::Release { options } = e.decision.verdict {
            let extra = extras.get(e.decision.id.as_str()).map(|x| (*x).clone()).unwrap_or_default();
            eligible.push(Eligible { id: e.decision.id.to_string(), options, extra });
        }
    }
    if eligible.is_empty() {
        return;
    }

    // Without a native dry run, the dry-run step is a fresh read made just before the release: only what
    // still matches the same rule with the same options goes on.
    if product.native_dry_run().is_none() {
        let ids: Vec<String> = eligible.iter().map(|e| e.id.clone()).collect();
        match product.get(api, region, &ids).await {
            Ok(fresh) => {
                let mut keep = Vec::new();
                for el in eligible {
                    let entry = entries.iter_mut().find(|e| in_scope(e) && e.decision.id == el.id);
                    let Some(entry) = entry else { continue };
                    match fresh.iter().find(|i| i.id == el.id).map(|i| decide(product, i, policy, now)) {
                        Some(d) if d.verdict == entry.decision.verdict && d.rule == entry.decision.rule => {
                            keep.push(el)
                        }
                        Some(d) => {
                            entry.outcome = Outcome::Skipped;
                            entry.message =
                                Some(format!("changed since listing (pre-flight): now {}", describe_verdict(&d)));
                            entry.decision = Decision {
                                verdict: Verdict::Skip { reason: "changed since listing (pre-flight)".into() },
                                ..d
                            };
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
        let Some(r) = results.get(entry.decision.id.as_str()) else { continue };
        match r {
            IdOutcome::DryRunPassed { request_ids } => {
                entry.outcome = Outcome::WouldRelease;
                entry.request_ids = request_ids.clone();
            }
            IdOutcome::Released { request_ids } => {
                entry.outcome = Outcome::Released;
                entry.request_ids = request_ids.clone();
            }
            IdOutcome::ReleaseStarted { request_ids, pending } => {
                entry.outcome = Outcome::Released;
                entry.request_ids = request_ids.clone();
                entry.message = Some(format!("release started, record removal pending: {pending}"));
            }
            // A protection the listing did not show (or that appeared since): a veto, not a failure.
            IdOutcome::Failed { error, request_ids } if error.is_protection_veto() => {
                entry.outcome = Outcome::Protected;
                entry.decision.verdict = Verdict::Protected {
                    by: format!("release protection reported by the service ({})", error.summary_code()),
                };
                entry.code = Some(error.summary_code());
                entry.message = Some(error.to_string());
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

/// The plan's decision, completed with what the product declares: a state that rules out a release
/// (`Product::state_veto`) and a `force` that is the rule's own choice (`ProductSpec::force_from_rule`).
/// A charge type the API cannot release is left as it is: it is reported "release by hand", whatever its state.
pub fn decide(product: &dyn Product, instance: &Instance, policy: &Policy, now: DateTime<Utc>) -> Decision {
    let mut d = plan::evaluate(instance, policy, now);
    let spec = product.spec();
    if let Verdict::Release { options } = &mut d.verdict {
        let veto = spec.releases(instance.charge_type).then(|| product.state_veto(instance)).flatten();
        if let Some(reason) = veto {
            d.verdict = Verdict::Skip { reason };
        } else if spec.force_from_rule {
            options.force =
                d.rule.as_ref().and_then(|name| policy.rules.iter().find(|r| r.name == *name)).is_some_and(|r| r.force);
        }
    }
    d
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
        product = d.product.as_str(),
        region = d.region.as_str(),
        id = d.id.as_str(),
        name = d.name.as_str(),
        decision = e.outcome.as_str(),
        rule = d.rule.as_deref().unwrap_or(""),
        reason = crate::report::reason(e),
        code = e.code.as_deref().unwrap_or(""),
        facts,
        request_ids = e.request_ids.join(","),
        "decision"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_future_clock_is_refused_against_real_endpoints() {
        let real = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        let future = Some(real + chrono::Duration::days(4));
        assert!(matches!(check_clock(future, real, false), Err(JobError::FutureClock { .. })));
        assert!(check_clock(future, real, true).is_ok(), "the emulator may be driven into the future");
        assert!(
            check_clock(Some(real - chrono::Duration::days(30)), real, false).is_ok(),
            "a replay in the past is fine"
        );
        assert!(check_clock(Some(real + chrono::Duration::minutes(2)), real, false).is_ok(), "clock skew is tolerated");
        assert!(check_clock(None, real, false).is_ok());
    }
}

//! The scan stage: what exists. Every (product, region) of the run's scope is listed, a bounded number at a
//! time; an event run instead re-reads exactly the resources it names, by id, and never lists. A scope that
//! cannot be read is reported and planned as empty, so nothing in it is released. Billing discovery's
//! account-wide read of expired subscriptions (`bss.discovery`, [`billing`]) comes first (scheduled runs only).
//! Reads only; hands each scope's instances on as soon as they are listed, and returns what could not be read.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use crate::aliyun::{ApiError, Client};
use crate::discovery::{self, Billed};
use crate::event::{ResourceEvent, Trigger};
use crate::inventory::Instance;
use crate::policy::Policy;
use crate::products::Product;
use crate::report::SkippedScope;

/// An event asked for more than the policy covers: an event may only narrow a run.
#[derive(Debug, thiserror::Error)]
#[error("trigger asks for {what} `{value}`, which the policy does not cover (an event may only narrow the policy)")]
pub struct WideningError {
    pub what: &'static str,
    pub value: String,
}

/// Products and regions this run covers: the policy's, narrowed (never widened) by the trigger.
pub struct Scope {
    pub products: Vec<Arc<dyn Product>>,
    pub regions: Vec<String>,
    /// The caller's account id, when known: an event's ARN naming another account is ignored.
    pub account: Option<String>,
    /// Told of each listing as it completes (a terminal's progress line; silent otherwise).
    pub progress: crate::progress::Hook,
}

impl Scope {
    pub fn resolve(policy: &Policy, trigger: &Trigger, adapters: &[Arc<dyn Product>]) -> Result<Scope, WideningError> {
        let mut regions = policy.regions.clone();
        if let Some(asked) = trigger.regions() {
            if let Some(r) = asked.iter().find(|r| !policy.regions.contains(r)) {
                return Err(WideningError { what: "region", value: r.clone() });
            }
            regions.retain(|r| asked.contains(r));
        }
        let mut codes = policy.products.clone();
        if let Some(asked) = trigger.products() {
            if let Some(p) = asked.iter().find(|p| !policy.products.contains(p)) {
                return Err(WideningError { what: "product", value: p.clone() });
            }
            codes.retain(|p| asked.contains(p));
        }
        let products = adapters.iter().filter(|p| codes.iter().any(|c| c == p.code())).cloned().collect();
        Ok(Scope { products, regions, account: None, progress: crate::progress::silent() })
    }
}

/// The instances of one (product, region) that was read.
pub struct ScopeListing {
    pub product: Arc<dyn Product>,
    pub region: String,
    pub instances: Vec<Instance>,
}

/// What the scan found.
pub struct Scan {
    /// Scopes that could not be read, sorted by (product, region).
    pub skipped: Vec<SkippedScope>,
    /// What an event named that the janitor does not manage, or that no longer exists.
    pub ignored: Vec<String>,
}

/// Reads the run's scope (see the module docs).
/// `details`: which instances have the details their listing lacks read (all without it; see [`DetailFilter`]).
pub async fn scan(
    api: &Client,
    scope: &Scope,
    trigger: &Trigger,
    policy: &Policy,
    details: Option<DetailFilter>,
    on_listing: &mut (dyn FnMut(ScopeListing) + Send),
) -> Scan {
    let concurrency = policy.concurrency.regions;
    let mut ignored = Vec::new();
    let mut scan = Scan { skipped: Vec::new(), ignored: Vec::new() };
    let mut take = |scan: &mut Scan, (product, region, result): Listing| match result {
        Ok(instances) => on_listing(ScopeListing { product, region, instances }),
        Err(e) => {
            tracing::warn!(product = product.code(), region, code = e.summary_code(), error = %e, "listing failed: nothing in this scope will be released");
            scan.skipped.push(SkippedScope {
                product: product.code().into(),
                region,
                code: e.summary_code(),
                error: e.to_string(),
            });
        }
    };
    match trigger.resources() {
        // Each scope is handed on as soon as it is listed, so the run never holds every instance at once.
        None => list_all(api, scope, concurrency, details, &mut |l| take(&mut scan, l)).await,
        Some(event) => {
            for listing in read_named(api, scope, event, concurrency, &mut ignored).await {
                take(&mut scan, listing);
            }
        }
    }
    scan.skipped.sort_by(|a, b| (&a.product, &a.region).cmp(&(&b.product, &b.region)));
    scan.ignored = ignored;
    scan
}

/// Billing's expired subscriptions (`bss.discovery`, scheduled runs only: billing is account-wide, so an event
/// run, which reads a few ids, cannot cross-check). Read before the listing, so each scope can be decided as it
/// is listed.
pub async fn billing(
    api: &Client,
    policy: &Policy,
    trigger: &Trigger,
    now: DateTime<Utc>,
) -> Option<Result<Vec<Billed>, ApiError>> {
    match (policy.bss.discovery, trigger.resources()) {
        (true, None) => Some(discovery::fetch(api, policy.bss.site, now).await),
        _ => None,
    }
}

/// Decides, as each scope's listing arrives, which instances have their details read (products whose listing
/// lacks some: `Product::listing_lacks_details`): those a rule can still match on the listing's facts
/// (`Planner::needs_details`). It plans without billing, which can only hold a release back, never make one,
/// so it never reads fewer details than the run's own planner would need. Owned, for the listing tasks.
#[derive(Clone)]
pub struct DetailFilter {
    pub policy: Arc<Policy>,
    pub now: DateTime<Utc>,
    pub mode: crate::plan::RunMode,
    pub mark_key: Option<crate::lifecycle::MarkKey>,
}

/// Completes one scope's listing for a product whose listing lacks details: one `get` for exactly the instances
/// `filter` names (all of them without a filter), whose records it replaces; an id the read no longer finds is
/// dropped (it is gone). A failed read fails the scope, as a failed listing does: nothing in it is released.
async fn complete(
    api: &Client,
    product: &dyn Product,
    region: &str,
    mut instances: Vec<Instance>,
    filter: Option<&DetailFilter>,
) -> Result<Vec<Instance>, ApiError> {
    if !product.listing_lacks_details() {
        return Ok(instances);
    }
    let ids: Vec<String> = match filter {
        Some(f) => {
            let billing = discovery::Billing::Off;
            let mut planner = crate::plan::Planner::new(&f.policy, f.now, f.mode, None, &billing);
            planner.mark_key = f.mark_key.as_ref();
            instances.iter().filter(|i| planner.needs_details(product, i)).map(|i| i.id.to_string()).collect()
        }
        None => instances.iter().map(|i| i.id.to_string()).collect(),
    };
    if ids.is_empty() {
        return Ok(instances);
    }
    let mut fresh: BTreeMap<String, Instance> =
        product.get(api, region, &ids).await?.into_iter().map(|i| (i.id.to_string(), i)).collect();
    let asked: std::collections::BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    instances.retain_mut(|i| {
        if !asked.contains(i.id.as_str()) {
            return true;
        }
        match fresh.remove(i.id.as_str()) {
            Some(full) => {
                *i = full;
                true
            }
            None => false,
        }
    });
    Ok(instances)
}

type Listing = (Arc<dyn Product>, String, Result<Vec<Instance>, ApiError>);

async fn list_all(
    api: &Client,
    scope: &Scope,
    concurrency: usize,
    details: Option<DetailFilter>,
    on_listing: &mut (dyn FnMut(Listing) + Send),
) {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    // Scopes whose listing is followed by detail reads (`Product::listing_lacks_details`) take the first permits:
    // those reads are the long part of the listing, and start as soon as their page chains end (benchmark).
    let mut products: Vec<&Arc<dyn Product>> = scope.products.iter().collect();
    products.sort_by_key(|p| !p.listing_lacks_details());
    for product in products {
        for region in &scope.regions {
            let (api, product, region, limit) = (api.clone(), product.clone(), region.clone(), limit.clone());
            let details = details.clone();
            tasks.spawn(async move {
                let listed = {
                    let _permit = limit.acquire().await;
                    product.list(&api, &region).await
                };
                // The details are read as soon as the scope is listed, outside its permit: `regions` bounds the
                // listings, the per-endpoint limits bound these reads. Held inside the permit, the long read
                // chains (KMS: one `GetKmsInstance` per instance) kept other scopes from even starting to list
                // while their own endpoints sat idle (benchmark, 100k scenario: the listing took twice its floor).
                let result = match listed {
                    Ok(listed) => complete(&api, product.as_ref(), &region, listed, details.as_ref()).await,
                    Err(e) => Err(e),
                };
                (product, region, result)
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(listing) => {
                scope.progress.listed(listing.0.code(), &listing.1, listing.2.as_ref().ok().map(Vec::len));
                on_listing(listing)
            }
            // A panicking task is a bug; its scope is simply absent from the scan and so never released.
            Err(e) => tracing::error!(error = %e, "listing task failed"),
        }
    }
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
        let foreign = scope.account.as_ref().is_some_and(|me| !t.accounts.is_empty() && !t.accounts.contains(me));
        if foreign {
            let name = format!("{}:{}/{}", t.product, t.region, t.id);
            tracing::warn!(
                resource = name,
                accounts = t.accounts.join(","),
                "the event names another account's resource: ignored"
            );
            ignored.push(format!("{name} (its ARN names account {}, not this one)", t.accounts.join(", ")));
            continue;
        }
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

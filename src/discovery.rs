//! Billing discovery (policy `bss:`; BssOpenApi 2017-12-14, reference section 3.5). `QueryAvailableInstances`
//! finds the account's expired subscriptions across every product. Each one is then:
//! - for a product with an adapter (`ProductSpec::billing_codes`) that this run scanned: cross-checked against that
//!   product's own listing. When billing and the product API disagree about charge type or expiry, the
//!   instance is skipped and both readings are reported. An instance the product API calls an expired
//!   subscription but billing does not list is skipped too;
//! - for a product without an adapter: evaluated against the policy like any instance (no tags, no name) and,
//!   if a rule selects it, reported as "eligible, release it by hand". Only on a reseller account
//!   (`bss.vno: true`) is it released, through billing's `ReleaseInstance` (batches of at most 100 ids), after
//!   a pre-flight re-read and only with apply.
//!
//! Billing is account-wide: its host depends on the account's site, not on a region.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use crate::aliyun::{ApiError, ApiRequest, Client};
use crate::execute::release::call_with_split;
use crate::inventory::{parse_api_time, ChargeType, Instance};
use crate::plan::{self, Verdict};
use crate::plan::{Entry, Outcome};
use crate::policy::{BssSite, Policy};
use crate::products;
use crate::report::SkippedScope;

const ENDPOINT: &str = "bssopenapi";
const VERSION: &str = "2017-12-14";
const PAGE_SIZE: usize = 300;
/// `ReleaseInstance` and the `InstanceIDs` filter both take at most 100 ids.
const BATCH: usize = 100;
/// How far billing's `EndTime` and the product's expiry may differ and still count as the same reading
/// (ECS reports minutes, billing seconds).
const EXPIRY_TOLERANCE_MINUTES: i64 = 60;
/// Fact marking an entry that exists only because billing reported it (a product without an adapter).
const SOURCE_FACT: &str = "source";
const FROM_BILLING: &str = "billing";

/// What the run covers: billing records outside it are ignored.
pub struct Reach<'a> {
    pub regions: &'a [String],
    /// Adapter products this run scanned.
    pub products: &'a [&'a str],
    /// Report products without an adapter too (false when the trigger narrowed the products).
    pub other_products: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueryResponse {
    data: QueryData,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueryData {
    #[serde(deserialize_with = "crate::products::lenient_i64")]
    total_count: i64,
    /// A plain array here, unlike most list answers (reference 3.5).
    instance_list: Vec<RawRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRecord {
    #[serde(rename = "InstanceID")]
    instance_id: String,
    product_code: String,
    #[serde(default)]
    product_type: Option<String>,
    #[serde(default)]
    region: Option<String>,
    subscription_type: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    renew_status: Option<String>,
    #[serde(default)]
    create_time: Option<String>,
    end_time: String,
}

/// One billing record, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Billed {
    id: String,
    product_code: String,
    product_type: String,
    region: String,
    subscription: bool,
    status: String,
    renew_status: String,
    created_at: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReleaseResponse {
    data: ReleaseData,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReleaseData {
    #[serde(deserialize_with = "crate::products::lenient_bool")]
    release_result: bool,
}

fn shape(action: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Shape { action: action.into(), detail: detail.into() }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The (endpoint product, region) billing's calls go to for `site`.
pub fn endpoint(site: BssSite) -> (&'static str, &'static str) {
    (ENDPOINT, site_region(site))
}

/// The ApiRequest region that selects the site's host (see `aliyun::endpoint::default_host`).
fn site_region(site: BssSite) -> &'static str {
    match site {
        BssSite::China => "cn-hangzhou",
        BssSite::International => "intl",
    }
}

impl RawRecord {
    fn check(self, index: usize) -> Result<Billed, ApiError> {
        let action = "QueryAvailableInstances";
        let at = |field: &str| format!("`Data.InstanceList[{index}].{field}`");
        let subscription = match self.subscription_type.as_str() {
            "Subscription" => true,
            "PayAsYouGo" => false,
            other => {
                return Err(shape(
                    action,
                    format!(
                        "{}: unknown value `{other}` (expected Subscription or PayAsYouGo)",
                        at("SubscriptionType")
                    ),
                ))
            }
        };
        let end = parse_api_time(&self.end_time).map_err(|e| shape(action, format!("{}: {e}", at("EndTime"))))?;
        let created_at = match self.create_time.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_api_time(s).map_err(|e| shape(action, format!("{}: {e}", at("CreateTime"))))?),
            None => None,
        };
        if self.instance_id.trim().is_empty() {
            return Err(shape(action, format!("{}: empty", at("InstanceID"))));
        }
        Ok(Billed {
            id: self.instance_id,
            product_code: self.product_code,
            product_type: self.product_type.unwrap_or_default(),
            region: self.region.unwrap_or_default(),
            subscription,
            status: self.status.unwrap_or_default(),
            renew_status: self.renew_status.unwrap_or_default(),
            created_at,
            end,
        })
    }
}

/// Checks one `QueryAvailableInstances` page: `(TotalCount, records)`.
fn query_answer(value: serde_json::Value) -> Result<(i64, Vec<Billed>), ApiError> {
    let resp: QueryResponse = crate::products::decode("QueryAvailableInstances", value)?;
    let records =
        resp.data.instance_list.into_iter().enumerate().map(|(i, r)| r.check(i)).collect::<Result<Vec<_>, _>>()?;
    Ok((resp.data.total_count, records))
}

/// The query asks for `EndTimeEnd` = now, but billing's word is checked, not trusted: a record that has not ended
/// is not an expired subscription (fail closed).
fn ended(r: &Billed, now: DateTime<Utc>) -> bool {
    let ended = r.end <= now;
    if !ended {
        tracing::warn!(id = r.id, end = %r.end, "billing listed a subscription that has not ended: ignored");
    }
    ended
}

/// Expired subscriptions (`EndTime` at or before `now`), all pages; optionally only some ids of one product.
/// The first page's `TotalCount` gives the number of pages; the rest are read a few at a time (the client bounds
/// them per endpoint) and checked in page order, as one chain would: billing is read before any listing, so a
/// chain of pages would hold up the whole run (benchmark, 100k scenario: 27 pages, 1.4 s).
async fn query(
    api: &Client,
    site: BssSite,
    now: DateTime<Utc>,
    only: Option<(&str, &[String])>,
) -> Result<Vec<Billed>, ApiError> {
    use futures_util::StreamExt;
    let action = "QueryAvailableInstances";
    let page = |number: usize| {
        let mut req = ApiRequest::new(ENDPOINT, VERSION, action, site_region(site))
            .param("SubscriptionType", "Subscription")
            .param("EndTimeEnd", now.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .param("PageNum", number.to_string())
            .param("PageSize", PAGE_SIZE.to_string());
        if let Some((product_code, ids)) = only {
            req = req.param("ProductCode", product_code).param("InstanceIDs", ids.join(","));
        }
        async move { query_answer(api.call(&req).await?) }
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut listed = 0usize;
    // Checks one page; `true` once the listing is complete.
    let mut take = |total: i64, records: Vec<Billed>| -> Result<bool, ApiError> {
        if records.len() > PAGE_SIZE {
            return Err(shape(
                action,
                format!("`Data.InstanceList`: {} records on a page of {PAGE_SIZE}", records.len()),
            ));
        }
        let empty = records.is_empty();
        listed += records.len();
        for r in records {
            if !seen.insert((r.product_code.clone(), r.id.clone())) {
                return Err(shape(
                    action,
                    format!("instance {} ({}) listed twice: pagination is inconsistent", r.id, r.product_code),
                ));
            }
            if ended(&r, now) {
                out.push(r);
            }
        }
        Ok(empty || listed as i64 >= total)
    };
    let (total, first) = page(1).await?;
    if take(total, first)? {
        return Ok(out);
    }
    let pages = usize::try_from(total).unwrap_or(usize::MAX).div_ceil(PAGE_SIZE).max(2);
    if pages > api.max_pages() {
        return Err(shape(action, format!("more than {} pages (the page budget, JANITOR_MAX_PAGES)", api.max_pages())));
    }
    let mut rest = futures_util::stream::iter(2..=pages).map(page).buffered(api.per_endpoint_concurrency());
    while let Some(answer) = rest.next().await {
        let (total, records) = answer?;
        if take(total, records)? {
            return Ok(out);
        }
    }
    // Every page the first one announced was read, and still fewer records than `TotalCount`: on, one page at
    // a time, until an empty page or the budget (as before the pages were read together).
    for number in pages + 1..=api.max_pages() {
        let (total, records) = page(number).await?;
        if take(total, records)? {
            return Ok(out);
        }
    }
    Err(shape(action, format!("more than {} pages (the page budget, JANITOR_MAX_PAGES)", api.max_pages())))
}

impl Billed {
    /// The record as an instance of a product without an adapter.
    fn to_instance(&self) -> Instance {
        let charge = if self.subscription { ChargeType::Subscription } else { ChargeType::PayAsYouGo };
        let mut i = Instance::new(&self.product_code, &self.region, &self.id, charge);
        i.status = self.status.as_str().into();
        i.created_at = self.created_at;
        i.expires_at = Some(self.end);
        i
    }

    fn facts(&self) -> [(&'static str, String); 5] {
        [
            ("billing_product_code", self.product_code.clone()),
            ("billing_product_type", self.product_type.clone()),
            ("billing_status", self.status.clone()),
            ("billing_renew_status", self.renew_status.clone()),
            ("billing_end_time", time(self.end)),
        ]
    }

    /// How billing and the product API disagree about this instance, if they do.
    fn disagreement(&self, inst: &Instance) -> Option<String> {
        if !self.subscription || inst.charge_type != ChargeType::Subscription {
            let billing = if self.subscription { "subscription" } else { "pay-as-you-go" };
            return Some(format!("billing says {billing}, {} says {}", inst.product, inst.charge_type));
        }
        match inst.expires_at {
            None => {
                Some(format!("billing says it expired at {}, {} says it never expires", time(self.end), inst.product))
            }
            Some(t) if (t - self.end).num_minutes().abs() > EXPIRY_TOLERANCE_MINUTES => {
                Some(format!("billing says it expires at {}, {} says {}", time(self.end), inst.product, time(t)))
            }
            Some(_) => None,
        }
    }
}

fn skip(entry: &mut Entry, reason: String) {
    entry.outcome = Outcome::Skipped;
    entry.message = Some(reason.clone());
    entry.decision.verdict = Verdict::Skip { reason };
    entry.change = None;
}

fn is_expired_subscription_release(e: &Entry) -> bool {
    matches!(e.decision.verdict, Verdict::Release { options } if options.terminate_subscription)
}

/// Expired subscriptions across the account (the scan stage's billing read).
pub async fn fetch(api: &Client, site: BssSite, now: DateTime<Utc>) -> Result<Vec<Billed>, ApiError> {
    query(api, site, now, None).await
}

/// What billing says for this run, as the plan stage's cross-check sees it.
pub enum Billing {
    /// `bss.discovery` is off: nothing is cross-checked.
    Off,
    /// An event run: billing is account-wide and not read, so an expired subscription is left to the scheduled
    /// run (fail closed).
    EventRun,
    /// Billing could not be read: no expired subscription is released on the product API's word alone.
    Unavailable { code: String },
    /// Billing's records of adapter products, by (adapter code, region, id): all the cross-check needs.
    Read { by_key: BTreeMap<(String, String, String), Billed> },
}

/// Every record billing answered, for [`Billing::billed_only`], which consumes them: they are not held through
/// the execute stage with the cross-check (benchmark, 100k scenario: 8,000 rows, 1.4 MB of the apply peak).
#[derive(Debug, Default)]
pub struct BilledRecords(Vec<Billed>);

/// What the listings showed that [`Billing::billed_only`] needs: the scopes listed, and the listed ids billing
/// also names (only those: the instances themselves are not kept).
#[derive(Debug, Default)]
pub struct Listed {
    pub scopes: std::collections::BTreeSet<(String, String)>,
    pub ids: std::collections::BTreeSet<(String, String, String)>,
}

impl Billing {
    /// Billing names this instance (product code, region, id).
    pub fn lists(&self, product: &str, region: &str, id: &str) -> bool {
        match self {
            Billing::Read { by_key, .. } => {
                by_key.contains_key(&(product.to_string(), region.to_string(), id.to_string()))
            }
            _ => false,
        }
    }

    /// From the scan's billing read; a failed read is reported as the skipped scope `bss`. The records are
    /// handed back beside it, for [`Billing::billed_only`].
    pub fn new(
        policy: &Policy,
        event_run: bool,
        fetched: Option<Result<Vec<Billed>, ApiError>>,
        skipped: &mut Vec<SkippedScope>,
    ) -> (Billing, BilledRecords) {
        let none = BilledRecords::default();
        match fetched {
            _ if !policy.bss.discovery => (Billing::Off, none),
            None if event_run => (Billing::EventRun, none),
            None => (Billing::Off, none),
            Some(Err(e)) => {
                tracing::warn!(code = e.summary_code(), error = %e, "billing discovery failed: expired subscriptions are not released this run");
                skipped.push(SkippedScope {
                    product: "bss".into(),
                    region: policy.bss.site.as_str().into(),
                    code: e.summary_code(),
                    error: e.to_string(),
                });
                (Billing::Unavailable { code: e.summary_code() }, none)
            }
            Some(Ok(records)) => {
                let catalog = products::catalog();
                let by_key = records
                    .iter()
                    .filter_map(|r| {
                        let code = catalog.by_billing_code(&r.product_code)?.code;
                        Some(((code.to_string(), r.region.clone(), r.id.clone()), r.clone()))
                    })
                    .collect();
                (Billing::Read { by_key }, BilledRecords(records))
            }
        }
    }

    /// Why an expired subscription that is due cannot be released this run, if billing says so: an event run
    /// does not read billing, or billing could not be read. Its mark is kept (it has not stopped being eligible).
    pub fn holds_release(&self) -> Option<String> {
        match self {
            Billing::EventRun => Some("due, but an expired subscription is cross-checked with billing (bss.discovery), which only scheduled runs read".into()),
            Billing::Unavailable { code } => Some(format!("due, but billing cross-check unavailable ({code}): an expired subscription is not released on the product API's word alone; its mark is kept")),
            Billing::Off | Billing::Read { .. } => None,
        }
    }

    /// Compares billing's record with the product's own reading of a listed instance: facts for the explanation,
    /// and a skip when they disagree about an instance that would be released.
    pub fn cross_check(&self, entry: &mut Entry, inst: &Instance) {
        let acts = entry.decision.is_release();
        match self {
            // Held at release time (`holds_release`), not vetoed here: a veto would unmark it.
            Billing::Off | Billing::EventRun | Billing::Unavailable { .. } => {}
            Billing::Read { by_key, .. } => {
                let key = (inst.product.to_string(), inst.region.to_string(), inst.id.to_string());
                match by_key.get(&key) {
                    Some(rec) => {
                        entry.decision.facts.extend(rec.facts());
                        if let Some(why) = rec.disagreement(inst) {
                            entry.decision.facts.insert("billing_disagrees", &why);
                            if acts {
                                skip(entry, format!("billing and the product API disagree: {why}"));
                            }
                        } else if rec.renew_status == "AutoRenewal" && acts {
                            skip(entry, "auto-renewal is on in billing (RenewStatus AutoRenewal)".into());
                        }
                    }
                    // The other direction: the product API says "expired subscription", billing does not list it.
                    None if acts && is_expired_subscription_release(entry) => skip(
                        entry,
                        "billing and the product API disagree: the product says expired subscription, billing does not list it as expired".into(),
                    ),
                    None => {}
                }
            }
        }
    }

    /// Entries for what only billing knows, within `reach`: expired subscriptions of an adapter product its own
    /// API did not return (skipped, both readings reported), and, unless the trigger narrowed the products,
    /// expired subscriptions of products without an adapter (evaluated like any instance: no tags, no name).
    pub fn billed_only(
        BilledRecords(records): BilledRecords,
        listed: &Listed,
        reach: &Reach<'_>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Vec<Entry> {
        let catalog = products::catalog();
        let mut out = Vec::new();
        for rec in records.iter().filter(|r| reach.regions.contains(&r.region)) {
            match catalog.by_billing_code(&rec.product_code).map(|spec| spec.code) {
                Some(code) => {
                    // A listing that failed is already reported as a skipped scope; a product not scanned is not ours.
                    if !listed.scopes.contains(&(code.to_string(), rec.region.clone())) {
                        continue;
                    }
                    let key = (code.to_string(), rec.region.clone(), rec.id.clone());
                    if !reach.products.contains(&code) || listed.ids.contains(&key) {
                        continue;
                    }
                    let mut inst = rec.to_instance();
                    inst.product = code.into();
                    let mut entry = Entry::from_decision(plan::evaluate(&inst, policy, now));
                    entry.decision.facts.extend(rec.facts());
                    skip(
                        &mut entry,
                        format!("billing lists an expired subscription that the {code} API does not return"),
                    );
                    out.push(entry);
                }
                None if reach.other_products && rec.subscription => {
                    let mut entry = Entry::from_decision(plan::evaluate(&rec.to_instance(), policy, now));
                    entry.decision.facts.extend(rec.facts());
                    entry.decision.facts.insert(SOURCE_FACT, FROM_BILLING);
                    if entry.decision.is_release() {
                        if rec.renew_status == "AutoRenewal" {
                            skip(&mut entry, "auto-renewal is on in billing (RenewStatus AutoRenewal)".into());
                        } else if policy.bss.vno
                            && !policy.bss.release_products.contains(&rec.product_code.to_ascii_lowercase())
                        {
                            skip(
                                &mut entry,
                                format!(
                                    "eligible, but {} is not in bss.release_products: release it by hand",
                                    rec.product_code
                                ),
                            );
                        } else if policy.bss.vno && !(policy.protect.tags.is_empty() && policy.protect.names.is_empty())
                        {
                            // Billing knows no name or tags: protect.names and protect.tags cannot be checked (fail closed).
                            skip(&mut entry, "billing shows no name or tags, so protect.names / protect.tags cannot be checked: not released through billing; release it by hand".into());
                        } else if policy.bss.vno {
                            entry.message = Some("release through billing ReleaseInstance (bss.vno)".into());
                        } else {
                            entry.outcome = Outcome::Manual;
                            entry.message = Some(format!(
                                "eligible, release it by hand: no adapter for {}; billing lists {} in {} as expired since {}",
                                rec.product_code,
                                rec.id,
                                rec.region,
                                time(rec.end)
                            ));
                        }
                    }
                    out.push(entry);
                }
                None => {}
            }
        }
        out
    }
}

/// On a reseller account (`bss.vno`), releases what discovery selected for products without an adapter:
/// a pre-flight re-read of each batch, then (only with apply) billing's `ReleaseInstance`. Never otherwise.
pub async fn release_through_billing(
    api: &Client,
    policy: &Policy,
    now: DateTime<Utc>,
    apply: bool,
    entries: &mut [Entry],
) {
    if !(policy.bss.discovery && policy.bss.vno) {
        return;
    }
    let site = policy.bss.site;
    // (product code, product type, region) → ids.
    let mut groups: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| e.outcome == Outcome::WouldRelease && e.decision.facts.get(SOURCE_FACT) == Some(FROM_BILLING))
    {
        let fact = |k: &str| e.decision.facts.get(k).unwrap_or_default().to_string();
        groups
            .entry((fact("billing_product_code"), fact("billing_product_type"), e.decision.region.to_string()))
            .or_default()
            .push(e.decision.id.to_string());
    }
    for ((code, product_type, region), ids) in groups {
        let find = |entries: &mut [Entry], id: &str| -> Option<usize> {
            entries.iter().position(|e| {
                e.decision.product == code
                    && e.decision.region == region
                    && e.decision.id == id
                    && e.outcome == Outcome::WouldRelease
            })
        };
        for batch in ids.chunks(BATCH) {
            // Pre-flight: billing has no DryRun, so re-read the batch and re-evaluate just before acting.
            let fresh = match query(api, site, now, Some((&code, batch))).await {
                Ok(f) => f,
                Err(e) => {
                    for id in batch {
                        if let Some(i) = find(entries, id) {
                            entries[i].outcome = Outcome::Failed;
                            entries[i].code = Some(e.summary_code());
                            entries[i].message = Some(format!("pre-flight read failed: {e}"));
                        }
                    }
                    continue;
                }
            };
            let mut keep = Vec::new();
            for id in batch {
                let Some(i) = find(entries, id) else { continue };
                let again = fresh
                    .iter()
                    .find(|r| r.id == *id && r.region == region)
                    .map(|r| plan::evaluate(&r.to_instance(), policy, now));
                match again {
                    Some(d) if d.verdict == entries[i].decision.verdict && d.rule == entries[i].decision.rule => {
                        keep.push(id.clone())
                    }
                    Some(_) => skip(&mut entries[i], "changed since discovery (pre-flight)".into()),
                    None => skip(&mut entries[i], "no longer an expired subscription in billing (pre-flight)".into()),
                }
            }
            if !apply || keep.is_empty() {
                continue;
            }
            let send = |ids: Vec<String>| {
                let mut req = ApiRequest::new(ENDPOINT, VERSION, "ReleaseInstance", site_region(site))
                    .param("ProductCode", code.clone())
                    .param("SubscriptionType", "Subscription")
                    .param("InstanceIds", ids.join(","))
                    .mutating();
                if !product_type.is_empty() {
                    req = req.param("ProductType", product_type.clone());
                }
                if !region.is_empty() {
                    req = req.param("Region", region.clone());
                }
                async move {
                    let v = api.call(&req).await?;
                    let request_id = v.get("RequestId").and_then(|r| r.as_str()).unwrap_or_default().to_string();
                    let resp: ReleaseResponse = crate::products::decode("ReleaseInstance", v)?;
                    if !resp.data.release_result {
                        return Err(shape("ReleaseInstance", "`Data.ReleaseResult` is false"));
                    }
                    Ok(request_id)
                }
            };
            // ReleaseInstance has no ClientToken: an answer that may have acted (a 5xx, a reset) is reconciled by
            // a re-read of billing, as the adapters' releases are (`execute::release::reconcile`).
            let schedule = api.retry_schedule();
            let started = tokio::time::Instant::now();
            let mut pending = keep;
            let mut resends = 0u32;
            while !pending.is_empty() {
                let mut ambiguous: Vec<(String, ApiError)> = Vec::new();
                for (id, r) in call_with_split(std::mem::take(&mut pending), &send).await {
                    let Some(i) = find(entries, &id) else { continue };
                    let entry = &mut entries[i];
                    match r {
                        Ok(rid) => {
                            entry.outcome = Outcome::Released;
                            entry.message = Some("released through billing ReleaseInstance (bss.vno)".into());
                            entry.request_ids.extend(Some(rid).filter(|r| !r.is_empty()));
                        }
                        Err(e) if e.may_have_acted() => ambiguous.push((id, e)),
                        Err(e) => fail(entry, &e, e.to_string()),
                    }
                }
                if ambiguous.is_empty() {
                    break;
                }
                let ids: Vec<String> = ambiguous.iter().map(|(id, _)| id.clone()).collect();
                let fresh = match query(api, site, now, Some((&code, &ids))).await {
                    Ok(fresh) => fresh,
                    Err(re) => {
                        for (id, e) in &ambiguous {
                            let Some(i) = find(entries, id) else { continue };
                            let message = format!(
                                "the release may have acted ({e}) and the re-read failed ({re}): not sent again, \
                                 since a second call could release twice; the next run sees what happened"
                            );
                            fail(&mut entries[i], e, message);
                        }
                        break;
                    }
                };
                let delay = crate::retry::backoff(schedule.base_delay, schedule.max_delay, resends + 1);
                let may_resend =
                    resends + 1 < schedule.max_attempts.max(1) && started.elapsed() + delay <= schedule.budget;
                for (id, e) in ambiguous {
                    let Some(i) = find(entries, &id) else { continue };
                    let entry = &mut entries[i];
                    let answered = e.summary_code();
                    match fresh.iter().find(|r| r.id == id && r.region == region) {
                        None => {
                            let confirmed = format!(
                                "confirmed by re-read: billing no longer lists it (the release answered {answered})"
                            );
                            entry.outcome = Outcome::Released;
                            entry.decision.facts.insert(crate::execute::RECONCILED_FACT, &confirmed);
                            entry.message = Some(confirmed);
                            entry.request_ids.extend(e.request_id().map(String::from));
                        }
                        Some(r) => {
                            let d = plan::evaluate(&r.to_instance(), policy, now);
                            if d.verdict == entry.decision.verdict && d.rule == entry.decision.rule {
                                if may_resend {
                                    pending.push(id);
                                } else {
                                    fail(entry, &e, e.to_string());
                                }
                            } else {
                                let message = format!(
                                    "the release answered {answered} and the re-read shows the record changed: \
                                     not released and not sent again"
                                );
                                skip(entry, message);
                            }
                        }
                    }
                }
                if !pending.is_empty() {
                    resends += 1;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Records a failed billing release on its entry.
fn fail(entry: &mut Entry, e: &ApiError, message: String) {
    entry.outcome = Outcome::Failed;
    entry.code = Some(e.summary_code());
    entry.message = Some(message);
    entry.request_ids.extend(e.request_id().map(String::from));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn record(extra: Value) -> Value {
        let mut r = json!({
            "InstanceID": "rm-1", "ProductCode": "rds", "ProductType": "rds", "Region": "cn-hangzhou",
            "SubscriptionType": "Subscription", "Status": "Expired", "SubStatus": "Normal", "RenewStatus": "ManualRenewal",
            "CreateTime": "2025-09-08T16:00:00Z", "EndTime": "2026-09-08T16:00:00Z"
        });
        if let (Value::Object(r), Value::Object(x)) = (&mut r, extra) {
            r.extend(x);
        }
        json!({"Code": "Success", "Success": true, "Data": {"PageNum": 1, "PageSize": 20, "TotalCount": 1, "InstanceList": [r]}})
    }

    #[test]
    fn records_parse() {
        let (total, recs) = query_answer(record(json!({}))).unwrap();
        assert_eq!(total, 1);
        let r = &recs[0];
        assert_eq!((r.id.as_str(), r.product_code.as_str(), r.region.as_str()), ("rm-1", "rds", "cn-hangzhou"));
        assert!(r.subscription);
        let i = r.to_instance();
        assert_eq!(i.charge_type, ChargeType::Subscription);
        assert_eq!(i.expires_at.map(time).as_deref(), Some("2026-09-08T16:00:00Z"));
    }

    /// Issue 12 item 14: billing's `EndTimeEnd` filter is not trusted alone.
    #[test]
    fn a_record_that_has_not_ended_is_not_expired() {
        let (_, recs) = query_answer(record(json!({}))).unwrap();
        let end = recs[0].end;
        assert!(ended(&recs[0], end));
        assert!(!ended(&recs[0], end - chrono::Duration::seconds(1)));
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let msg = |v: Value| query_answer(v).unwrap_err().to_string();
        assert!(msg(record(json!({"EndTime": "yesterday"}))).contains("Data.InstanceList[0].EndTime"));
        assert!(msg(record(json!({"SubscriptionType": "Monthly"}))).contains("SubscriptionType"));
        assert!(msg(record(json!({"InstanceID": null}))).contains("InstanceID"));
        assert!(msg(json!({"Data": {"TotalCount": 1, "InstanceList": {"Instance": []}}})).contains("InstanceList"));
        assert!(msg(json!({"Success": true})).contains("Data"));
        let mut no_end = record(json!({}));
        no_end["Data"]["InstanceList"][0].as_object_mut().unwrap().remove("EndTime");
        assert!(msg(no_end).contains("EndTime"));
    }

    #[test]
    fn disagreements_are_named() {
        let (_, recs) = query_answer(record(json!({"ProductCode": "ecs", "InstanceID": "i-1"}))).unwrap();
        let r = &recs[0];
        let mut inst = Instance::new("ecs", "cn-hangzhou", "i-1", ChargeType::Subscription);
        inst.expires_at = Some(r.end + chrono::Duration::minutes(30));
        assert_eq!(r.disagreement(&inst), None);
        inst.expires_at = Some(r.end + chrono::Duration::days(30));
        assert!(r.disagreement(&inst).unwrap().contains("ecs says 2026-10-08"));
        inst.expires_at = None;
        assert!(r.disagreement(&inst).unwrap().contains("never expires"));
        inst.charge_type = ChargeType::PayAsYouGo;
        assert!(r.disagreement(&inst).unwrap().contains("ecs says pay-as-you-go"));
    }
}

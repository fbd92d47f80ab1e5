//! The execute stage: carries out the plan's pending changes, and nothing else. Per (product, region), all
//! scopes at once (the client's per-endpoint limits bound the calls; benchmark: wall time):
//! 1. in apply mode, the tag changes: first the janitor's auto-release times cancelled on instances no longer
//!    eligible, then marks (one `TagResources` per distinct tag set), unmarks, the event recorded, then the
//!    auto-release times set where the mark was written;
//! 2. the releases: a pre-flight re-read of every instance to release, decided again by the same
//!    [`Planner::decide`]; only an instance whose fresh decision yields the very change the plan holds goes on
//!    to the dry run (native, where the API has one) and, in apply mode, the release call.
//!
//! It changes entries' outcomes, messages, codes and request ids; it never adds a change the plan does not hold.
//! Each entry's decision line is logged here, once its scope is done (`report::log_entry`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::aliyun::{ApiError, Client};
use crate::inventory::Text;
use crate::lifecycle;
use crate::plan::{Change, Decision, Entry, Outcome, Plan, Planner, Verdict};
use crate::products::{Finish, Poll, Product, TagReport};

pub mod release;

use release::{Eligible, IdOutcome};

/// Runs the plan's pending changes (see the module docs), then billing's own releases (`bss.vno`). No release
/// starts after `poll.until` (the run's deadline); two-step releases wait within `poll`.
pub async fn execute(plan: &mut Plan, api: &Client, products: &[Arc<dyn Product>], planner: &Planner<'_>, poll: Poll) {
    let apply = plan.mode.is_apply();
    // Sorted in place so that each scope's pending entries lie side by side, and each scope works on its own
    // slice: no second vector of entries. Moving them into per-scope buckets and back once held two copies of
    // the candidates at the end of this stage (benchmark, 100k scenario: peak memory). The summary sorts the
    // entries again for its output, so this order is not visible.
    let scope_of = |e: &Entry| -> Option<(Text, Text)> {
        e.pending_change()?;
        products
            .iter()
            .any(|p| p.code() == e.decision.product)
            .then(|| (e.decision.product.clone(), e.decision.region.clone()))
    };
    plan.entries.sort_by_cached_key(scope_of);
    // Entries outside every scope sort first (`None`); billing's own releases below are theirs.
    let unscoped = plan.entries.iter().take_while(|e| scope_of(e).is_none()).count();
    let (run_id, account) = (plan.run_id.as_str(), plan.account_id.as_str());
    let work = plan.entries.chunk_by_mut(|a, b| scope_of(a) == scope_of(b)).filter_map(|mine| {
        let (code, region) = scope_of(mine.first()?)?;
        let product = products.iter().find(|p| p.code() == code.as_str())?.as_ref();
        Some(async move {
            let region = region.as_str();
            if apply {
                write_tags(product, api, region, mine).await;
            }
            release_scope(product, api, region, run_id, apply, planner, poll, mine).await;
            if apply {
                finish_scope(product, api, region, poll, mine).await;
            }
            // Final now: each decision's line is written as its scope ends, not at the end of the run.
            for e in mine.iter() {
                crate::report::log_entry(e, account);
            }
        })
    });
    futures_util::future::join_all(work).await;
    // Billing's own release of products without an adapter (reseller accounts only).
    crate::discovery::release_through_billing(api, planner.policy, planner.now, apply, &mut plan.entries).await;
    for e in &plan.entries[..unscoped] {
        crate::report::log_entry(e, &plan.account_id);
    }
}

/// Writes the marks and removes the unmarks of one (product, region), then sets or cancels the auto-release
/// times. A failure leaves the entry `failed` with its code: a mark that could not be written never counts as a
/// warning given, and an auto-release time is only set on an instance whose mark was written.
async fn write_tags(product: &dyn Product, api: &Client, region: &str, entries: &mut [Entry]) {
    // First, the auto-release times the janitor set on instances no longer eligible: release protection does not
    // stop the platform's auto-release (reference 3.1), so this cancel is made before, and independently of, the
    // untag, and even when the limits held the unmark. If it fails, the mark stays (the entry fails), so the next
    // run still knows whose time it is and tries again.
    if let Some(auto_release) = product.auto_release() {
        for e in entries.iter_mut().filter(|e| {
            matches!(e.outcome, Outcome::Unmarked | Outcome::Held)
                && matches!(e.change, Some(Change::Unmark { cancel_auto_release: true, .. }))
        }) {
            let result = auto_release.cancel(api, region, &e.decision.id).await;
            record_auto_release(e, result, "the auto-release time the janitor set is cancelled", "cancelling");
        }
    }
    let Some(tagging) = product.tagging() else { return };
    let mut marks: BTreeMap<&BTreeMap<String, String>, Vec<String>> = BTreeMap::new();
    let mut unmarks: BTreeMap<&Vec<String>, Vec<String>> = BTreeMap::new();
    let mut events: BTreeMap<&String, Vec<String>> = BTreeMap::new();
    for e in entries.iter() {
        match e.pending_change() {
            Some(Change::Mark { tags, .. }) => marks.entry(tags).or_default().push(e.decision.id.to_string()),
            Some(Change::Unmark { remove_tags, record_event, .. }) => {
                unmarks.entry(remove_tags).or_default().push(e.decision.id.to_string());
                if let Some(ev) = record_event {
                    events.entry(ev).or_default().push(e.decision.id.to_string());
                }
            }
            _ => {}
        }
    }
    let mut reports: Vec<(Vec<String>, Result<TagReport, ApiError>, &str)> = Vec::new();
    for (tags, ids) in marks {
        let report = tagging.tag(api, region, &ids, tags).await;
        reports.push((ids, report, "marking failed"));
    }
    for (keys, ids) in unmarks {
        let report = tagging.untag(api, region, &ids, keys).await;
        reports.push((ids, report, "removing the mark failed"));
    }
    for (ev, ids) in events {
        let tags = BTreeMap::from([(lifecycle::LAST_EVENT_TAG.to_string(), ev.clone())]);
        let report = tagging.tag(api, region, &ids, &tags).await;
        reports.push((ids, report, "recording the event failed"));
    }
    for (ids, report, what) in reports {
        apply_tag_report(entries, product.code(), region, &ids, report, what);
    }

    let Some(auto_release) = product.auto_release() else { return };
    for e in entries.iter_mut() {
        let at = match e.pending_change() {
            Some(Change::Mark { auto_release: Some(at), .. }) | Some(Change::SetAutoRelease { at }) => *at,
            _ => continue,
        };
        let result = auto_release.set(api, region, &e.decision.id, at).await;
        let done = format!("the platform's auto-release time is set to {}", lifecycle::format_time(at));
        record_auto_release(e, result, &done, "setting");
    }
}

/// Records an auto-release call on its entry: the request id and what was done, or the failure with its code.
fn record_auto_release(e: &mut Entry, result: crate::products::CallResult, done: &str, doing: &str) {
    let message = e.message.take().unwrap_or_default();
    match result {
        Ok(rid) => {
            e.request_ids.extend(Some(rid).filter(|r| !r.is_empty()));
            e.message = Some(format!("{message}; {done}"));
        }
        Err(err) => {
            e.message = Some(format!("{message}; but {doing} the auto-release time failed: {err}"));
            e.code = Some(err.summary_code());
            e.request_ids.extend(err.request_id().map(String::from));
            e.outcome = Outcome::Failed;
        }
    }
}

/// Records a tag call's result on the entries it concerns: failed ids become `failed` with the code.
fn apply_tag_report(
    entries: &mut [Entry],
    product: &str,
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
    for e in entries.iter_mut().filter(|e| ids.iter().any(|id| id == e.decision.id.as_str())) {
        match report.failed.get(e.decision.id.as_str()) {
            Some((code, message)) => {
                tracing::warn!(product, region, id = e.decision.id.as_str(), code, "{what}");
                e.outcome = Outcome::Failed;
                e.code = Some(code.clone());
                e.message = Some(format!("{what}: {message}"));
            }
            None => e.request_ids.extend(report.request_ids.iter().cloned()),
        }
    }
}

/// The releases of one (product, region): pre-flight, dry run, and (apply) the release.
#[allow(clippy::too_many_arguments)]
async fn release_scope(
    product: &dyn Product,
    api: &Client,
    region: &str,
    run_id: &str,
    apply: bool,
    planner: &Planner<'_>,
    poll: Poll,
    entries: &mut [Entry],
) {
    let late = || poll.until.is_some_and(|d| tokio::time::Instant::now() >= d);
    let releasing = |e: &Entry| matches!(e.pending_change(), Some(Change::Release { .. }));
    // Past the run's deadline no release starts: what is left is named (a failure with its own code, so the
    // run reports itself degraded), for the next run.
    let leave = |entries: &mut [Entry]| {
        for entry in entries.iter_mut().filter(|e| releasing(e)) {
            entry.outcome = Outcome::Failed;
            entry.code = Some("RunDeadline".into());
            entry.message = Some("the run's deadline passed before its release started: left for the next run".into());
        }
    };
    if late() {
        return leave(entries);
    }
    let ids: Vec<String> = entries.iter().filter(|e| releasing(e)).map(|e| e.decision.id.to_string()).collect();
    if ids.is_empty() {
        return;
    }
    let fresh = match product.get(api, region, &ids).await {
        Ok(fresh) => fresh,
        Err(e) => {
            for entry in entries.iter_mut().filter(|e| releasing(e)) {
                entry.outcome = Outcome::Failed;
                entry.code = Some(e.summary_code());
                entry.message = Some(format!("pre-flight read failed: {e}"));
            }
            return;
        }
    };
    let mut eligible: Vec<Eligible> = Vec::new();
    for entry in entries.iter_mut().filter(|e| releasing(e)) {
        let again = fresh.iter().find(|i| i.id == entry.decision.id).map(|i| planner.decide(product, i));
        match (again, &entry.change) {
            (Some(again), Some(Change::Release { options, extra }))
                if again.change == entry.change && again.decision.rule == entry.decision.rule =>
            {
                eligible.push(Eligible { id: entry.decision.id.to_string(), options: *options, extra: extra.clone() });
            }
            (Some(again), _) => {
                entry.outcome = Outcome::Skipped;
                entry.message =
                    Some(format!("changed since listing (pre-flight): now {}", crate::report::reason(&again)));
                entry.decision = Decision {
                    verdict: Verdict::Skip { reason: "changed since listing (pre-flight)".into() },
                    ..again.decision
                };
            }
            (None, _) => {
                entry.outcome = Outcome::Skipped;
                entry.decision.verdict = Verdict::Skip { reason: "no longer exists (pre-flight)".into() };
            }
        }
    }
    // The fresh records are not needed past this point; every scope releases at once (benchmark: peak memory).
    drop(fresh);
    if eligible.is_empty() {
        return;
    }
    if late() {
        return leave(entries);
    }
    // What the plan holds for each id, to tell whether a re-read after an ambiguous release answer still calls
    // for the very same release.
    // Borrowed from the entries, which stay untouched until the results come back (no copy per candidate).
    let planned: BTreeMap<&str, (&Option<Change>, &Option<Text>)> = entries
        .iter()
        .filter(|e| releasing(e))
        .map(|e| (e.decision.id.as_str(), (&e.change, &e.decision.rule)))
        .collect();
    let recheck = |fresh: &crate::inventory::Instance| -> Result<(), String> {
        let again = planner.decide(product, fresh);
        match planned.get(fresh.id.as_str()) {
            Some((change, rule)) if again.change == **change && again.decision.rule == **rule => Ok(()),
            _ => Err(crate::report::reason(&again)),
        }
    };
    let results = release::release_region(product, api, region, run_id, eligible, apply, poll, &recheck).await;
    for entry in entries.iter_mut() {
        let Some(r) = results.get(entry.decision.id.as_str()) else { continue };
        match r {
            IdOutcome::DryRunPassed { request_ids } => {
                entry.outcome = Outcome::WouldRelease;
                entry.request_ids = request_ids.iter().collect();
            }
            IdOutcome::Released { request_ids, confirmed } => {
                entry.outcome = Outcome::Released;
                entry.request_ids = request_ids.iter().collect();
                if let Some(confirmed) = confirmed {
                    entry.decision.facts.insert(RECONCILED_FACT, confirmed);
                    entry.message = Some(confirmed.clone());
                }
            }
            IdOutcome::ReleaseStarted { request_ids, pending, confirmed } => {
                entry.outcome = Outcome::Released;
                entry.request_ids = request_ids.iter().collect();
                entry.message = Some(format!("release started, record removal pending: {pending}"));
                if let Some(confirmed) = confirmed {
                    entry.decision.facts.insert(RECONCILED_FACT, confirmed);
                }
            }
            // A protection the listing did not show (or that appeared since): a veto, not a failure.
            IdOutcome::Failed { error, request_ids } | IdOutcome::DryRunFailed { error, request_ids }
                if error.is_protection_veto() =>
            {
                entry.outcome = Outcome::Protected;
                entry.decision.verdict = Verdict::Protected {
                    by: format!("release protection reported by the service ({})", error.summary_code()),
                };
                entry.code = Some(error.summary_code());
                entry.message = Some(error.to_string());
                entry.request_ids = request_ids.iter().collect();
            }
            IdOutcome::Failed { error, request_ids } | IdOutcome::DryRunFailed { error, request_ids } => {
                entry.outcome = Outcome::Failed;
                entry.code = Some(error.summary_code());
                entry.message = Some(error.to_string());
                entry.request_ids = request_ids.iter().collect();
            }
            // Both readings: what the plan decided from the listing, and what the re-read shows now.
            IdOutcome::Changed { error, request_ids, now } => {
                let listed = crate::report::reason(entry);
                entry.outcome = Outcome::Skipped;
                entry.code = Some(error.summary_code());
                entry.message = Some(format!(
                    "the release answered {} and the re-read shows the instance changed: listed as {listed}, now \
                     {now}; not released and not sent again",
                    error.summary_code()
                ));
                entry.decision.verdict = Verdict::Skip { reason: "changed since the release call (re-read)".into() };
                entry.request_ids = request_ids.iter().collect();
            }
            IdOutcome::Unknown { error, request_ids, reread } => {
                entry.outcome = Outcome::Failed;
                entry.code = Some(error.summary_code());
                entry.message = Some(format!(
                    "the release may have acted ({error}) and {reread}: not sent again, since a second call could \
                     release twice; the next run sees what happened"
                ));
                entry.request_ids = request_ids.iter().collect();
            }
        }
    }
}

/// The decision fact that says how an ambiguous release answer was settled.
pub const RECONCILED_FACT: &str = "reconciled";

/// The second steps of releases earlier runs started (apply mode only): the finisher re-reads the instances
/// and removes each record that still reads released. What it cannot finish yet is left for a later run.
async fn finish_scope(product: &dyn Product, api: &Client, region: &str, poll: Poll, entries: &mut [Entry]) {
    let Some(finisher) = product.finish_release() else { return };
    let finishing = |e: &Entry| matches!(e.pending_change(), Some(Change::FinishRelease));
    let ids: Vec<String> = entries.iter().filter(|e| finishing(e)).map(|e| e.decision.id.to_string()).collect();
    if ids.is_empty() {
        return;
    }
    if poll.until.is_some_and(|d| tokio::time::Instant::now() >= d) {
        for e in entries.iter_mut().filter(|e| finishing(e)) {
            e.outcome = Outcome::Skipped;
            e.message =
                Some("the run's deadline passed before the record's removal started: left for the next run".into());
        }
        return;
    }
    let results: BTreeMap<String, Result<Finish, ApiError>> =
        finisher.finish_releases(api, region, &ids, poll).await.into_iter().collect();
    for e in entries.iter_mut().filter(|e| finishing(e)) {
        match results.get(e.decision.id.as_str()) {
            Some(Ok(Finish::Done { request_id })) => {
                e.outcome = Outcome::Finished;
                e.request_ids.extend(Some(request_id.clone()).filter(|r| !r.is_empty()));
                e.message = Some(format!(
                    "{}; finished: the released record is removed",
                    e.message.as_deref().unwrap_or("released earlier")
                ));
            }
            Some(Ok(Finish::Pending { reason })) => {
                e.outcome = Outcome::Skipped;
                e.message = Some(format!("changed since listing (pre-flight): {reason}"));
            }
            Some(Err(err)) => {
                e.outcome = Outcome::Failed;
                e.code = Some(err.summary_code());
                e.message = Some(format!("removing the released record failed: {err}"));
                e.request_ids.extend(err.request_id().map(String::from));
            }
            None => {
                e.outcome = Outcome::Skipped;
                e.message = Some("not answered by the record's removal".into());
            }
        }
    }
}

#[cfg(test)]
mod tests;

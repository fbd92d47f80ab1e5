//! Dry run, then act. Takes the eligible instances of one (product, region), groups them into calls of at
//! most `batch_size` ids sharing the same options, proves each call with a dry run, and (in apply mode)
//! releases only the ids whose dry run passed. One instance's error never blocks the rest of its batch:
//! the batch is split in halves until the failing instance stands alone.
//!
//! A release answer that leaves open whether it acted (a 5xx, a timeout, a reset: [`ApiError::may_have_acted`])
//! is reconciled by a re-read ([`reconcile`]): gone or reading as released is `released`, confirmed by the
//! re-read; unchanged and still the same decision is sent again (within the client's retry schedule); anything
//! else is not released. Without a re-read that answers, nothing is sent twice.

use std::collections::BTreeMap;
use std::future::Future;

use sha2::{Digest, Sha256};

use crate::aliyun::{ApiError, Client};
use crate::inventory::{Extras, Instance};
use crate::products::{CallResult, Finish, Poll, Product, ReleaseCall, ReleaseOptions};

/// What happened to one id in the release step.
#[derive(Debug, Clone, PartialEq)]
pub enum IdOutcome {
    /// Dry run passed (or pre-flight held), and no real call was made.
    DryRunPassed { request_ids: Vec<String> },
    /// `confirmed`: the release answer was lost and a re-read showed the release (what it showed).
    Released { request_ids: Vec<String>, confirmed: Option<String> },
    /// Released, but the second step of a two-step release (`FinishRelease::finish_releases`) is still pending.
    ReleaseStarted { request_ids: Vec<String>, pending: String, confirmed: Option<String> },
    /// The release answer left open whether it acted, and the re-read shows the instance changed into something
    /// the plan did not decide (`now`): not released, not sent again.
    Changed { error: ApiError, request_ids: Vec<String>, now: String },
    /// The release answer left open whether it acted and the re-read could not tell (`reread` says why): not
    /// sent again, since a second call could release twice.
    Unknown { error: ApiError, request_ids: Vec<String>, reread: String },
    /// The native dry run, or what must be written before the release (`Product::prepare_releases`), failed
    /// for this id: no release was sent, so this is never reconciled.
    DryRunFailed { error: ApiError, request_ids: Vec<String> },
    /// The release failed for this id.
    Failed { error: ApiError, request_ids: Vec<String> },
}

/// One eligible instance handed to the release step.
#[derive(Debug, Clone)]
pub struct Eligible {
    pub id: String,
    pub options: ReleaseOptions,
    pub extra: Extras,
}

/// Whether a fresh read of an instance still calls for the very release the plan holds: `Ok(())`, or what it
/// calls for now.
pub type Recheck<'a> = &'a (dyn Fn(&Instance) -> Result<(), String> + Sync);

/// A deterministic idempotency token (≤ 64 ASCII chars): the same run, product, region, ids and options
/// always give the same token, so a retry after a lost response cannot release twice.
pub fn client_token(run_id: &str, product: &str, region: &str, ids: &[String], options: ReleaseOptions) -> String {
    let mut h = Sha256::new();
    for part in [run_id, product, region] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for id in ids {
        h.update(id.as_bytes());
        h.update([0]);
    }
    h.update([options.force as u8, options.terminate_subscription as u8]);
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("janitor-{}", &hex[..48])
}

/// Calls `f` on `ids`; on an error that concerns single instances, splits the group and tries the halves,
/// so each id ends with its own result. Account-level errors (permission, signature, throttling that
/// outlived its retries) are not split: they would fail the same way for every half.
pub async fn call_with_split<F, Fut>(ids: Vec<String>, mut f: F) -> Vec<(String, CallResult)>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = CallResult>,
{
    let mut results = Vec::with_capacity(ids.len());
    let mut stack = vec![ids];
    while let Some(group) = stack.pop() {
        if group.is_empty() {
            continue;
        }
        match f(group.clone()).await {
            Ok(request_id) => results.extend(group.into_iter().map(|id| (id, Ok(request_id.clone())))),
            Err(e) if group.len() == 1 || e.is_account_level() => {
                results.extend(group.into_iter().map(|id| (id, Err(e.clone()))))
            }
            Err(_) => {
                let mut left = group;
                let right = left.split_off(left.len() / 2);
                // Pop order: left half first, so results stay in a predictable order.
                stack.push(right);
                stack.push(left);
            }
        }
    }
    results
}

/// Runs the dry-run step and, when `apply` is set, the release step for one product and region.
/// Products without a native dry run must have been pre-flighted by the caller (a fresh re-read); their
/// dry-run step here is a no-op pass. Batches run concurrently; the client's per-endpoint limit bounds them.
#[allow(clippy::too_many_arguments)]
pub async fn release_region(
    product: &dyn Product,
    api: &Client,
    region: &str,
    run_id: &str,
    eligible: Vec<Eligible>,
    apply: bool,
    poll: Poll,
    recheck: Recheck<'_>,
) -> BTreeMap<String, IdOutcome> {
    let mut eligible = eligible;
    let mut unprepared = BTreeMap::new();
    if apply {
        let ids: Vec<String> = eligible.iter().map(|e| e.id.clone()).collect();
        unprepared = product.prepare_releases(api, region, &ids).await;
        eligible.retain(|e| !unprepared.contains_key(&e.id));
    }
    // One copy of the eligible, borrowed by the batches and by the reconciliation (benchmark: peak memory).
    eligible.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = run_batches(product, api, region, run_id, eligible.iter().collect(), apply).await;
    // Nothing was sent for these: a failure before the release, never reconciled.
    for (id, error) in unprepared {
        out.insert(id, IdOutcome::DryRunFailed { error, request_ids: Vec::new() });
    }
    if apply {
        reconcile(product, api, region, run_id, poll, recheck, &eligible, &mut out).await;
    }
    if let Some(finisher) = product.finish_release() {
        let released: Vec<String> =
            out.iter().filter(|(_, o)| matches!(o, IdOutcome::Released { .. })).map(|(id, _)| id.clone()).collect();
        if !released.is_empty() {
            for (id, result) in finisher.finish_releases(api, region, &released, poll).await {
                if let Some(IdOutcome::Released { request_ids, confirmed }) = out.get(&id) {
                    let finished = finish(result, request_ids.clone(), confirmed.clone());
                    out.insert(id, finished);
                }
            }
        }
    }
    out
}

/// The batches of one region: grouped by options, at most `batch_size` ids each, a few more in flight than the
/// endpoint admits.
async fn run_batches(
    product: &dyn Product,
    api: &Client,
    region: &str,
    run_id: &str,
    eligible: Vec<&Eligible>,
    apply: bool,
) -> BTreeMap<String, IdOutcome> {
    let spec = product.spec();
    // Batches name their instances by index into `eligible`: owned items keep the stream's futures `Send`.
    // Each group keeps the order of `eligible`, sorted by id by its callers (deterministic batches and tokens).
    let mut by_options: BTreeMap<ReleaseOptions, Vec<usize>> = BTreeMap::new();
    for (i, e) in eligible.iter().enumerate() {
        by_options.entry(e.options).or_default().push(i);
    }
    let mut batches: Vec<(ReleaseOptions, Vec<usize>)> = Vec::new();
    for (options, group) in by_options {
        for batch in group.chunks(spec.batch_size.max(1)) {
            batches.push((options, batch.to_vec()));
        }
    }
    let eligible = &eligible;
    // Batches run concurrently, but only a few more at a time than the endpoint admits: a region with hundreds
    // of single-instance calls does not hold hundreds of waiting calls in memory (benchmark: peak memory).
    use futures_util::StreamExt;
    let in_flight = api.queue_depth();
    let done: Vec<Vec<(String, IdOutcome)>> = futures_util::stream::iter(batches)
        .map(|(options, batch)| {
            let batch = batch.into_iter().map(|i| eligible[i]).collect();
            release_batch(product, api, region, run_id, options, batch, apply)
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    done.into_iter().flatten().collect()
}

/// Reconciles every release whose answer left open whether it acted: one re-read of those ids per round
/// (`Product::get`), then each is
/// - gone, or reading as released ([`Product::release_seen`]): `Released`, "confirmed by re-read";
/// - unchanged and still the same decision (`recheck`): sent again, after a back-off, at most
///   `max_attempts - 1` rounds, within the schedule's budget and the run's deadline; past that it stays failed;
/// - anything else: [`IdOutcome::Changed`], not released.
///
/// A re-read that fails leaves them [`IdOutcome::Unknown`]: nothing is sent a second time without a reading
/// that shows the first call did not act.
#[allow(clippy::too_many_arguments)]
pub async fn reconcile(
    product: &dyn Product,
    api: &Client,
    region: &str,
    run_id: &str,
    poll: Poll,
    recheck: Recheck<'_>,
    eligible: &[Eligible],
    out: &mut BTreeMap<String, IdOutcome>,
) {
    // Sorted by id (`release_region`).
    let find = |id: &str| eligible.binary_search_by(|e| e.id.as_str().cmp(id)).ok().map(|i| &eligible[i]);
    let schedule = api.retry_schedule();
    let start = tokio::time::Instant::now();
    let mut resends = 0u32;
    loop {
        let ambiguous: Vec<String> = out
            .iter()
            .filter(|(_, o)| matches!(o, IdOutcome::Failed { error, .. } if error.may_have_acted()))
            .map(|(id, _)| id.clone())
            .collect();
        if ambiguous.is_empty() {
            return;
        }
        let fresh = match product.get(api, region, &ambiguous).await {
            Ok(fresh) => fresh,
            Err(e) => {
                for id in ambiguous {
                    if let Some(IdOutcome::Failed { error, request_ids }) = out.remove(&id) {
                        let reread = format!("the re-read failed ({e})");
                        out.insert(id, IdOutcome::Unknown { error, request_ids, reread });
                    }
                }
                return;
            }
        };
        let delay = crate::retry::backoff(schedule.base_delay, schedule.max_delay, resends + 1);
        let may_resend = resends + 1 < schedule.max_attempts.max(1)
            && start.elapsed() + delay <= schedule.budget
            && poll.until.is_none_or(|until| tokio::time::Instant::now() + delay < until);
        let mut again: Vec<&Eligible> = Vec::new();
        let mut earlier: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for id in ambiguous {
            let Some(IdOutcome::Failed { error, request_ids }) = out.remove(&id) else { continue };
            let answered = error.summary_code();
            let outcome = match fresh.iter().find(|i| i.id == id) {
                None => IdOutcome::Released {
                    request_ids,
                    confirmed: Some(format!("confirmed by re-read: gone (the release answered {answered})")),
                },
                Some(i) => match (product.release_seen(i), recheck(i)) {
                    (Some(seen), _) => IdOutcome::Released {
                        request_ids,
                        confirmed: Some(format!("confirmed by re-read: {seen} (the release answered {answered})")),
                    },
                    (None, Ok(())) if may_resend => match find(&id) {
                        Some(e) => {
                            again.push(e);
                            earlier.insert(id, request_ids);
                            continue;
                        }
                        None => IdOutcome::Failed { error, request_ids },
                    },
                    (None, Ok(())) => IdOutcome::Failed { error, request_ids },
                    (None, Err(now)) => IdOutcome::Changed { error, request_ids, now },
                },
            };
            out.insert(id, outcome);
        }
        if again.is_empty() {
            return;
        }
        resends += 1;
        tracing::debug!(
            product = product.code(),
            region,
            ids = again.len(),
            resends,
            "release answers were lost and the re-read shows them unchanged: sending again"
        );
        tokio::time::sleep(delay).await;
        for (id, outcome) in run_batches(product, api, region, run_id, again, true).await {
            let before = earlier.remove(&id).unwrap_or_default();
            out.insert(id, with_earlier(outcome, before));
        }
    }
}

/// The request ids of earlier attempts go first.
fn with_earlier(outcome: IdOutcome, before: Vec<String>) -> IdOutcome {
    let join = |mut r: Vec<String>| {
        let mut all = before.clone();
        all.append(&mut r);
        all
    };
    match outcome {
        IdOutcome::DryRunPassed { request_ids } => IdOutcome::DryRunPassed { request_ids: join(request_ids) },
        IdOutcome::Released { request_ids, confirmed } => {
            IdOutcome::Released { request_ids: join(request_ids), confirmed }
        }
        IdOutcome::ReleaseStarted { request_ids, pending, confirmed } => {
            IdOutcome::ReleaseStarted { request_ids: join(request_ids), pending, confirmed }
        }
        IdOutcome::Failed { error, request_ids } => IdOutcome::Failed { error, request_ids: join(request_ids) },
        IdOutcome::DryRunFailed { error, request_ids } => {
            IdOutcome::DryRunFailed { error, request_ids: join(request_ids) }
        }
        IdOutcome::Changed { error, request_ids, now } => {
            IdOutcome::Changed { error, request_ids: join(request_ids), now }
        }
        IdOutcome::Unknown { error, request_ids, reread } => {
            IdOutcome::Unknown { error, request_ids: join(request_ids), reread }
        }
    }
}

/// One batch: the dry run, then (in apply mode) the real call on exactly the ids whose dry run passed.
async fn release_batch(
    product: &dyn Product,
    api: &Client,
    region: &str,
    run_id: &str,
    options: ReleaseOptions,
    batch: Vec<&Eligible>,
    apply: bool,
) -> Vec<(String, IdOutcome)> {
    let extra: BTreeMap<&str, &Extras> = batch.iter().map(|e| (e.id.as_str(), &e.extra)).collect();
    let make_call = |ids: Vec<String>| ReleaseCall {
        region: region.to_string(),
        client_token: client_token(run_id, product.code(), region, &ids, options),
        options,
        extra: ids.iter().filter_map(|id| extra.get(id.as_str()).map(|x| (id.clone(), (*x).clone()))).collect(),
        ids,
    };
    let ids: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
    let mut out = Vec::with_capacity(ids.len());

    // Step 1: dry run. Only ids that pass go on.
    let mut passed: Vec<String> = Vec::new();
    let mut dry_ids: BTreeMap<String, String> = BTreeMap::new();
    if let Some(native) = product.native_dry_run() {
        let results = call_with_split(ids, |ids| {
            let call = make_call(ids);
            async move { native.dry_run(api, &call).await }
        })
        .await;
        for (id, r) in results {
            match r {
                Ok(rid) => {
                    dry_ids.insert(id.clone(), rid);
                    passed.push(id);
                }
                Err(error) => out.push((id, IdOutcome::DryRunFailed { error, request_ids: Vec::new() })),
            }
        }
    } else {
        passed = ids;
    }
    passed.sort();
    let rids = |id: &str| dry_ids.get(id).filter(|r| !r.is_empty()).cloned().into_iter().collect::<Vec<_>>();
    if !apply {
        for id in passed {
            let request_ids = rids(&id);
            out.push((id, IdOutcome::DryRunPassed { request_ids }));
        }
        return out;
    }

    // Step 2: the real call, on exactly the ids whose dry run passed.
    let results = call_with_split(passed, |ids| {
        let call = make_call(ids);
        async move { product.release(api, &call).await }
    })
    .await;
    for (id, r) in results {
        let mut request_ids = rids(&id);
        match r {
            Ok(rid) => {
                request_ids.extend(Some(rid).filter(|r| !r.is_empty()));
                out.push((id, IdOutcome::Released { request_ids, confirmed: None }));
            }
            Err(error) => {
                request_ids.extend(error.request_id().map(String::from));
                out.push((id, IdOutcome::Failed { error, request_ids }));
            }
        }
    }
    out
}

/// Step 3 of a two-step release: removes the released record. A pending or failed removal never turns the
/// release into a failure: the instance is released either way.
fn finish(result: Result<Finish, ApiError>, mut request_ids: Vec<String>, confirmed: Option<String>) -> IdOutcome {
    match result {
        Ok(Finish::Done { request_id }) => {
            request_ids.extend(Some(request_id).filter(|r| !r.is_empty()));
            IdOutcome::Released { request_ids, confirmed }
        }
        Ok(Finish::Pending { reason }) => IdOutcome::ReleaseStarted { request_ids, pending: reason, confirmed },
        Err(e) => {
            request_ids.extend(e.request_id().map(String::from));
            let pending = format!("removing the released record failed: {e}");
            IdOutcome::ReleaseStarted { request_ids, pending, confirmed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str) -> ApiError {
        ApiError::Service {
            action: "DeleteInstances".into(),
            status: 403,
            code: code.into(),
            message: String::new(),
            request_id: String::new(),
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i-{i:03}")).collect()
    }

    #[tokio::test]
    async fn one_bad_instance_does_not_block_its_batch() {
        let mut calls = 0;
        let results = call_with_split(ids(8), |group| {
            calls += 1;
            async move {
                if group.iter().any(|id| id == "i-005") {
                    Err(err("IncorrectInstanceStatus"))
                } else {
                    Ok("req".to_string())
                }
            }
        })
        .await;
        assert_eq!(results.len(), 8);
        for (id, r) in &results {
            assert_eq!(r.is_err(), id == "i-005", "{id}");
        }
        assert_eq!(
            results.iter().find(|(id, _)| id == "i-005").unwrap().1.as_ref().unwrap_err().code(),
            Some("IncorrectInstanceStatus")
        );
        // 1 + 2 + 2 + 2 calls: log2(8) levels of splitting around the bad one.
        assert_eq!(calls, 7);
    }

    #[tokio::test]
    async fn account_level_errors_are_not_split() {
        let mut calls = 0;
        let results = call_with_split(ids(64), |_| {
            calls += 1;
            async { Err(err("Forbidden.RAM")) }
        })
        .await;
        assert_eq!(calls, 1);
        assert!(results.iter().all(|(_, r)| r.is_err()));
    }

    #[test]
    fn tokens_are_stable_and_distinct() {
        let o = ReleaseOptions::default();
        let a = client_token("run", "ecs", "cn-hangzhou", &ids(3), o);
        assert_eq!(a, client_token("run", "ecs", "cn-hangzhou", &ids(3), o));
        assert_ne!(a, client_token("run2", "ecs", "cn-hangzhou", &ids(3), o));
        assert_ne!(a, client_token("run", "ecs", "cn-hangzhou", &ids(2), o));
        assert_ne!(a, client_token("run", "ecs", "cn-hangzhou", &ids(3), ReleaseOptions { force: true, ..o }));
        assert!(a.len() <= 64 && a.is_ascii());
    }
}

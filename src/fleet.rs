//! The fleet check of an event or narrowed run: the limits hold for the fleet whichever way the work arrives.
//!
//! A scheduled run counts what is due over everything the policy covers. An event run (or a manual run narrowed
//! to some products or regions) sees only a slice, so a set the scheduled run holds (8 of 10 due, above 25 %) could
//! otherwise be released by one event naming those 8, or by 500 events of a mass tagging mistake, 10 at a time.
//! So before such a run releases anything, it lists the policy's whole scope (the listing a scheduled run makes),
//! decides every instance with the same function, and applies the fleet limits to that due set and population.
//! Runs that only mark or unmark stay cheap: they list nothing. If the fleet cannot be read, nothing is released.

use std::sync::Arc;

use crate::aliyun::Client;
use crate::discovery::Billing;
use crate::event::Trigger;
use crate::limits::{self, LimitBreach};
use crate::plan::{Change, Outcome, Plan, Planner};
use crate::policy::Policy;
use crate::products::Product;
use crate::scan::{self, Scope};

/// A run narrower than the fleet: it names resources (an event) or narrows the products or regions.
pub fn is_narrow(trigger: &Trigger) -> bool {
    trigger.resources().is_some() || trigger.products().is_some() || trigger.regions().is_some()
}

/// Holds every release of `plan` when the fleet's due set breaches the limits (see the module docs).
pub async fn hold_by_fleet(plan: &mut Plan, api: &Client, products: &[Arc<dyn Product>], planner: &Planner<'_>) {
    let releasing = |e: &crate::plan::Entry| matches!(e.pending_change(), Some(Change::Release { .. }));
    if !plan.entries.iter().any(releasing) {
        return;
    }
    let breach = match fleet_breach(api, products, planner).await {
        Ok(None) => return,
        Ok(Some(b)) => b,
        Err(unread) => LimitBreach {
            eligible: 0,
            scanned: 0,
            reason: format!(
                "the fleet-wide limits could not be checked ({unread} of the policy's scopes could not be listed): nothing released by this event or narrowed run"
            ),
        },
    };
    tracing::warn!(reason = breach.reason, "fleet-wide limit breached: this run's releases are held");
    for e in plan.entries.iter_mut().filter(|e| releasing(e)) {
        e.outcome = Outcome::Held;
        e.message = Some(breach.reason.clone());
    }
    plan.limit_breach.get_or_insert(breach);
}

/// The fleet's breach, if any; `Err(n)` when `n` scopes could not be listed.
async fn fleet_breach(
    api: &Client,
    products: &[Arc<dyn Product>],
    planner: &Planner<'_>,
) -> Result<Option<LimitBreach>, usize> {
    let policy: &Policy = planner.policy;
    let whole = Trigger::cli();
    let scope = Scope::resolve(policy, &whole, products).map_err(|_| 1usize)?;
    // Billing is not read for the count: every expired subscription counts as due (the conservative reading).
    let mut counting = policy.clone();
    counting.bss.discovery = false;
    let details = scan::DetailFilter {
        policy: std::sync::Arc::new(policy.clone()),
        now: planner.now,
        mode: planner.mode,
        mark_key: planner.mark_key.cloned(),
    };
    let mut listings = Vec::new();
    let scan = scan::scan(api, &scope, &whole, &counting, Some(details), &mut |l| listings.push(l)).await;
    if !scan.skipped.is_empty() {
        return Err(scan.skipped.len());
    }
    let billing = Billing::Off;
    let mut fleet = Planner::new(policy, planner.now, planner.mode, None, &billing);
    fleet.mark_key = planner.mark_key;
    let (mut due, mut population) = (0usize, 0usize);
    for listing in &listings {
        population += listing.instances.len();
        due += listing
            .instances
            .iter()
            .filter(|i| matches!(fleet.decide(listing.product.as_ref(), i).change, Some(Change::Release { .. })))
            .count();
    }
    Ok(limits::check_fleet(due, population, &policy.limits))
}

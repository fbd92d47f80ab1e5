//! The run-wide limits stage: the one place that sees every state-changing action of a run (releases, marks,
//! auto-release times, unmarks) and holds each kind whose count breaches `limits:` (fail closed: a held action
//! is not even dry-run). Pure: it reads the plan and changes outcomes, nothing else.

use serde::Serialize;

use crate::plan::{ChangeKind, Outcome, Plan};
use crate::policy::Limits;

/// The limits stage. Each kind of change (releases; marks and auto-release times; unmarks) is counted against
/// `limits` over the scanned population; a kind that breaches is held whole: its entries become `held` with the
/// reason, and the execute stage makes no call for them, not even a dry run. Returns nothing: the breach (the
/// first, in that order) is recorded on the plan.
pub fn hold(plan: &mut Plan, limits: &Limits, scope: LimitScope) {
    let count =
        |kind: ChangeKind| plan.entries.iter().filter(|e| e.pending_change().is_some_and(|c| c.kind() == kind)).count();
    let scanned = plan.population;
    let percent = scope == LimitScope::Fleet;
    let breaches = [
        (
            ChangeKind::Release,
            check(count(ChangeKind::Release), scanned, limits, percent, ("eligible", "nothing released")),
        ),
        (ChangeKind::Mark, check(count(ChangeKind::Mark), scanned, limits, percent, ("to mark", "nothing marked"))),
        (
            ChangeKind::Unmark,
            check(count(ChangeKind::Unmark), scanned, limits, percent, ("to unmark", "nothing unmarked")),
        ),
    ];
    for (kind, breach) in breaches {
        let Some(breach) = breach else { continue };
        tracing::warn!(count = breach.eligible, scanned = breach.scanned, reason = breach.reason, "limit breached");
        for e in plan.entries.iter_mut().filter(|e| e.pending_change().is_some_and(|c| c.kind() == kind)) {
            e.outcome = Outcome::Held;
            e.message = Some(breach.reason.clone());
        }
        plan.limit_breach.get_or_insert(breach);
    }
}
/// Why a run releases nothing despite eligible instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitBreach {
    pub eligible: usize,
    pub scanned: usize,
    pub reason: String,
}

/// What the limits are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// A scheduled run: the scanned population is the whole policy scope, so both limits apply.
    Fleet,
    /// An event-triggered run: the population is the few instances the event named, whose percentage means
    /// nothing (one of one is 100%), so only `max_releases_per_run` applies.
    Event,
}

/// The limits of a release over the whole fleet (see `fleet`): the count and the percentage, as a scheduled run.
pub fn check_fleet(due: usize, population: usize, limits: &Limits) -> Option<LimitBreach> {
    check(due, population, limits, true, ("due fleet-wide", "nothing released by this event or narrowed run"))
}

fn check(
    eligible: usize,
    scanned: usize,
    limits: &Limits,
    percent_applies: bool,
    (what, held): (&str, &str),
) -> Option<LimitBreach> {
    let breach = |reason: String| Some(LimitBreach { eligible, scanned, reason });
    let instances = if eligible == 1 { "instance" } else { "instances" };
    if eligible == 0 {
        return None;
    }
    if eligible > scanned {
        // Cannot happen with a consistent caller; if it does, the numbers are not to be trusted.
        return breach(format!(
            "{eligible} {instances} {what} but only {scanned} scanned: counts are inconsistent, {held}"
        ));
    }
    if eligible > limits.max_releases_per_run {
        return breach(format!(
            "{eligible} {instances} {what}, above max_releases_per_run {}: {held}",
            limits.max_releases_per_run
        ));
    }
    if !percent_applies {
        return None;
    }
    let percent = eligible as f64 * 100.0 / scanned as f64;
    // `!(<=)` so that a NaN limit (never produced by `Policy::validate`) also fails closed.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    let over = !(percent <= limits.max_release_percent);
    if over {
        return breach(format!(
            "{eligible} of {scanned} scanned {instances} {what} ({percent:.1}%), above max_release_percent {}: {held}",
            limits.max_release_percent
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the run-wide limits against the eligible count and the scanned population. On a breach nothing is
    /// released (fail closed): the caller turns every `Release` into a held decision.
    fn check_limits(eligible: usize, scanned: usize, limits: &Limits) -> Option<LimitBreach> {
        check(eligible, scanned, limits, true, ("eligible", "nothing released"))
    }

    /// The limits for instances about to be released.
    fn check_release_limits(
        eligible: usize,
        scanned: usize,
        limits: &Limits,
        scope: LimitScope,
    ) -> Option<LimitBreach> {
        check(eligible, scanned, limits, scope == LimitScope::Fleet, ("eligible", "nothing released"))
    }

    /// The same limits for instances about to be marked: every mark is a release a grace period later, so a policy
    /// mistake is stopped at the mark, before any owner is warned of a mass release.
    fn check_mark_limits(to_mark: usize, scanned: usize, limits: &Limits, scope: LimitScope) -> Option<LimitBreach> {
        check(to_mark, scanned, limits, scope == LimitScope::Fleet, ("to mark", "nothing marked"))
    }

    #[test]
    fn zero_eligible_never_breaches() {
        let strict = Limits { max_releases_per_run: 0, max_release_percent: 0.001 };
        assert_eq!(check_limits(0, 0, &strict), None);
        assert_eq!(check_limits(0, 500, &strict), None);
    }

    #[test]
    fn above_max_releases_per_run_nothing_is_released() {
        let limits = Limits { max_releases_per_run: 10, max_release_percent: 100.0 };
        assert_eq!(check_limits(10, 100, &limits), None);
        let breach = check_limits(12, 100, &limits).unwrap();
        assert_eq!((breach.eligible, breach.scanned), (12, 100));
        assert_eq!(breach.reason, "12 instances eligible, above max_releases_per_run 10: nothing released");
        let zero = Limits { max_releases_per_run: 0, ..limits };
        assert_eq!(
            check_limits(1, 100, &zero).unwrap().reason,
            "1 instance eligible, above max_releases_per_run 0: nothing released"
        );
    }

    #[test]
    fn above_max_release_percent_nothing_is_released() {
        let limits = Limits { max_releases_per_run: 1000, max_release_percent: 25.0 };
        assert_eq!(check_limits(10, 40, &limits), None);
        assert_eq!(
            check_limits(11, 40, &limits).unwrap().reason,
            "11 of 40 scanned instances eligible (27.5%), above max_release_percent 25: nothing released"
        );
        assert!(check_limits(1, 1, &limits).is_some());
        assert_eq!(check_limits(1, 1, &Limits { max_releases_per_run: 1, max_release_percent: 100.0 }), None);
    }

    #[test]
    fn event_runs_check_the_count_but_not_the_percentage() {
        let limits = Limits { max_releases_per_run: 2, max_release_percent: 25.0 };
        assert_eq!(check_release_limits(1, 1, &limits, LimitScope::Event), None);
        assert!(check_release_limits(1, 1, &limits, LimitScope::Fleet).is_some());
        assert!(check_release_limits(3, 3, &limits, LimitScope::Event)
            .unwrap()
            .reason
            .contains("above max_releases_per_run 2"));
        assert!(
            check_release_limits(2, 1, &limits, LimitScope::Event).is_some(),
            "inconsistent counts still fail closed"
        );
        let zero = Limits { max_releases_per_run: 0, ..limits };
        assert!(check_release_limits(1, 1, &zero, LimitScope::Event).is_some());
    }

    #[test]
    fn marks_are_limited_like_releases() {
        let limits = Limits { max_releases_per_run: 10, max_release_percent: 25.0 };
        assert_eq!(
            check_mark_limits(11, 100, &limits, LimitScope::Fleet).unwrap().reason,
            "11 instances to mark, above max_releases_per_run 10: nothing marked"
        );
        assert!(check_mark_limits(5, 10, &limits, LimitScope::Fleet)
            .unwrap()
            .reason
            .contains("(50.0%), above max_release_percent 25: nothing marked"));
        assert_eq!(check_mark_limits(5, 10, &limits, LimitScope::Event), None);
    }

    #[test]
    fn inconsistent_counts_fail_closed() {
        let limits = Limits { max_releases_per_run: 1000, max_release_percent: 100.0 };
        assert!(check_limits(3, 0, &limits).unwrap().reason.contains("inconsistent"));
        assert!(check_limits(3, 2, &limits).is_some());
        assert!(check_limits(1, 10, &Limits { max_releases_per_run: 10, max_release_percent: f64::NAN }).is_some());
    }
}

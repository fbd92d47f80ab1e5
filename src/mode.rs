//! The run's mode and clock: apply only when asked for and safe, and a clock other than the real one only where
//! it cannot do harm (every endpoint loopback), or as a dry-run replay.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::aliyun::Client;
use crate::event::Trigger;
use crate::job::JobError;
use crate::plan::RunMode;
use crate::policy::Policy;
use crate::scan::Scope;

/// Apply only when asked for (policy or flag), the trigger does not ask for a dry run and the clock is real (or
/// every call goes to loopback); and why.
pub(crate) fn mode_of(trigger: &Trigger, policy: &Policy, apply_flag: bool, replay: bool) -> (RunMode, String) {
    if replay {
        (RunMode::DryRun, "a past clock (JANITOR_NOW / --now) against real endpoints is a replay: dry run".to_string())
    } else if trigger.forces_dry_run() {
        (RunMode::DryRun, "the trigger asked for a dry run".to_string())
    } else if policy.apply {
        (RunMode::Apply, "policy says apply: true".to_string())
    } else if apply_flag {
        (RunMode::Apply, "--apply (or JANITOR_APPLY=true) was given".to_string())
    } else {
        (RunMode::DryRun, "apply is off (set apply: true in the policy or pass --apply)".to_string())
    }
}

/// Every endpoint this run will call is loopback (the emulator), after every override.
pub(crate) fn all_loopback(api: &Client, scope: &Scope, policy: &Policy) -> bool {
    let (bss, site) = crate::discovery::endpoint(policy.bss.site);
    scope.products.iter().all(|p| scope.regions.iter().all(|r| api.is_loopback(p.code(), r)))
        && (!policy.bss.discovery || api.is_loopback(bss, site))
}

/// A clock other than the real one is for the emulator, where tests drive days forward: against any real endpoint,
/// a future clock would make instances look expired early (refused), and a past one would write marks whose
/// deadline has passed (a replay: forced to a dry run, the `true` returned). Five minutes absorb clock skew.
pub(crate) fn check_clock(now: Option<DateTime<Utc>>, real: DateTime<Utc>, loopback: bool) -> Result<bool, JobError> {
    let skew = chrono::Duration::minutes(5);
    match now {
        Some(now) if !loopback && now > real + skew => {
            Err(JobError::FutureClock { now: now.to_rfc3339_opts(SecondsFormat::Secs, true) })
        }
        Some(now) if !loopback && now < real - skew => Ok(true),
        _ => Ok(false),
    }
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
        assert_eq!(check_clock(future, real, true).ok(), Some(false), "the emulator may be driven into the future");
        let past = Some(real - chrono::Duration::days(30));
        assert_eq!(check_clock(past, real, false).ok(), Some(true), "a replay against real endpoints is a dry run");
        assert_eq!(check_clock(past, real, true).ok(), Some(false));
        assert_eq!(check_clock(Some(real + chrono::Duration::minutes(2)), real, false).ok(), Some(false), "skew");
        assert_eq!(check_clock(None, real, false).ok(), Some(false));
    }
}

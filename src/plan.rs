//! Decisions: a pure function of (instance, policy, now). Each decision carries the rule and the facts
//! that produced it, so a plan can be printed, tested and applied.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::inventory::Instance;
use crate::policy::{Limits, Policy};
use crate::products::ReleaseOptions;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// A rule matched and nothing vetoes it.
    Release { options: ReleaseOptions },
    /// A rule matched but a protection vetoes it (`by` says which: native flag, tag, id, name, lock).
    Protected { by: String },
    /// Something about the instance cannot be trusted (unparsable expiry tag...): never released, reported.
    Invalid { reason: String },
    /// A rule matched but the release is not possible as configured (running without `force`, unexpired subscription...).
    Skip { reason: String },
    /// No rule matched.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub product: String,
    pub region: String,
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The rule that matched (or that the veto applies to).
    pub rule: Option<String>,
    /// The facts the verdict rests on: `charge_type`, `status`, `created_at`, `expires_at`, `tag:<key>`, ...
    pub facts: BTreeMap<String, String>,
}

impl Decision {
    pub fn is_release(&self) -> bool {
        matches!(self.verdict, Verdict::Release { .. })
    }
}

/// Evaluates one instance against the policy at time `now`.
pub fn evaluate(_instance: &Instance, _policy: &Policy, _now: DateTime<Utc>) -> Decision {
    todo!("evaluate")
}

/// Why a run releases nothing despite eligible instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitBreach {
    pub eligible: usize,
    pub scanned: usize,
    pub reason: String,
}

/// Checks the run-wide limits against the eligible count and the scanned population. On a breach nothing is
/// released (fail closed): the caller turns every `Release` into a held decision.
pub fn check_limits(_eligible: usize, _scanned: usize, _limits: &Limits) -> Option<LimitBreach> {
    todo!("limits")
}

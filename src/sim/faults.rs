//! Injected failures, all decided in one place before the handler runs, so no state changes.
//!
//! Global knobs ([`super::SimOptions`]): `throttle_rate` answers that fraction of authenticated requests with 400
//! `Throttling.User`, `error_rate` with 503 `ServiceUnavailable`; both are drawn from one `fastrand::Rng` seeded
//! with `seed`, so a run is reproducible for a given request order. (`latency_ms` is applied by the server.)
//!
//! Per-action rules (inventory `"faults"`), checked first, in file order; the first rule that matches fires:
//!
//! ```json
//! {"action": "DescribeInstances", "version": "2014-05-26", "region": "cn-shanghai", "instance_id": "i-…",
//!  "kind": "error", "code": "InternalError", "status": 500, "message": "…", "times": null}
//! ```
//!
//! Every selector is optional (absent = any): `action`, `version`, `region` (the request's `RegionId`),
//! `instance_id` (any `InstanceId`/`InstanceId.N` parameter equals it). `times`: `null` = every matching call,
//! N = the first N matching calls. `kind`: `error` (default; `code` default `InternalError`, `status` default 500)
//! or `malformed` (HTTP 200 with a truncated JSON body).
//!
//! Adding a kind (a lost response after the handler succeeded, a connection reset) means a [`FaultKind`]
//! variant and its [`Injected`] effect here, plus the server's handling of that effect.

use serde::Deserialize;

use super::inventory::SimError;
use super::reply::{ApiFault, Reply};
use super::{Params, SimOptions};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    #[default]
    Error,
    Malformed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub kind: FaultKind,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultSpec {
    fn matches(&self, version: &str, action: &str, params: &Params) -> bool {
        let eq = |want: &Option<String>, got: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == got);
        eq(&self.action, Some(action))
            && eq(&self.version, Some(version))
            && eq(&self.region, params.get("RegionId").map(String::as_str))
            && self.instance_id.as_deref().is_none_or(|id| {
                params.iter().any(|(k, v)| v == id && (k == "InstanceId" || k.strip_prefix("InstanceId.").is_some_and(|n| n.parse::<u32>().is_ok())))
            })
    }

    fn effect(&self) -> Injected {
        match self.kind {
            FaultKind::Error => Injected(Reply::Fault(ApiFault::new(
                self.status.unwrap_or(500),
                self.code.as_deref().unwrap_or("InternalError"),
                self.message.clone().unwrap_or_else(|| "The request processing has failed due to some unknown error, exception or failure.".into()),
            ))),
            FaultKind::Malformed => Injected(Reply::Raw { status: 200, body: r#"{"RequestId":"TRUNCATED","Instances":{"Inst"#.into() }),
        }
    }
}

/// What the server answers instead of calling the handler.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Injected(pub Reply);

struct Rule {
    spec: FaultSpec,
    fired: u32,
}

pub(crate) struct Faults {
    rules: Vec<Rule>,
    throttle_rate: f64,
    error_rate: f64,
    rng: fastrand::Rng,
}

fn rate(field: &str, v: f64) -> Result<f64, SimError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(SimError::invalid(field, format!("{v} is not a fraction between 0 and 1")))
    }
}

impl Faults {
    pub fn new(specs: Vec<FaultSpec>, opts: &SimOptions) -> Result<Self, SimError> {
        for (i, s) in specs.iter().enumerate() {
            if let Some(status) = s.status {
                if !(400..=599).contains(&status) {
                    return Err(SimError::invalid(format!("faults[{i}].status"), format!("{status} is not an HTTP error status (400-599)")));
                }
            }
            if s.kind != FaultKind::Error && (s.code.is_some() || s.status.is_some() || s.message.is_some()) {
                return Err(SimError::invalid(format!("faults[{i}].kind"), "code, status and message apply to kind `error` only"));
            }
        }
        Ok(Faults {
            rules: specs.into_iter().map(|spec| Rule { spec, fired: 0 }).collect(),
            throttle_rate: rate("throttle_rate", opts.throttle_rate)?,
            error_rate: rate("error_rate", opts.error_rate)?,
            rng: fastrand::Rng::with_seed(opts.seed),
        })
    }

    /// Decides whether this (authenticated) request fails before reaching its handler.
    pub fn before_handler(&mut self, version: &str, action: &str, params: &Params) -> Option<Injected> {
        for rule in &mut self.rules {
            if rule.spec.times.is_some_and(|n| rule.fired >= n) || !rule.spec.matches(version, action, params) {
                continue;
            }
            rule.fired = rule.fired.saturating_add(1);
            return Some(rule.spec.effect());
        }
        // Draw only for knobs that are on, so turning one on does not shift the other's sequence.
        if self.throttle_rate > 0.0 && self.rng.f64() < self.throttle_rate {
            return Some(Injected(Reply::Fault(ApiFault::new(400, "Throttling.User", "Request was denied due to user flow control."))));
        }
        if self.error_rate > 0.0 && self.rng.f64() < self.error_rate {
            return Some(Injected(Reply::Fault(ApiFault::new(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."))));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn code(i: Option<Injected>) -> Option<String> {
        match i {
            Some(Injected(Reply::Fault(f))) => Some(f.code),
            Some(Injected(other)) => Some(format!("{other:?}")),
            None => None,
        }
    }

    #[test]
    fn rule_matches_region_and_counts_times() {
        let mut f = Faults::new(vec![spec(r#"{"action":"DescribeInstances","region":"cn-shanghai","times":2}"#)], &SimOptions::default()).unwrap();
        let sh = params(&[("RegionId", "cn-shanghai")]);
        let hz = params(&[("RegionId", "cn-hangzhou")]);
        assert_eq!(code(f.before_handler("2014-05-26", "DescribeInstances", &hz)), None);
        assert_eq!(code(f.before_handler("2014-05-26", "DeleteInstances", &sh)), None);
        assert_eq!(code(f.before_handler("2014-05-26", "DescribeInstances", &sh)).as_deref(), Some("InternalError"));
        assert_eq!(code(f.before_handler("2014-05-26", "DescribeInstances", &sh)).as_deref(), Some("InternalError"));
        assert_eq!(code(f.before_handler("2014-05-26", "DescribeInstances", &sh)), None);
    }

    #[test]
    fn instance_id_selector_looks_at_repeat_lists() {
        let mut f = Faults::new(vec![spec(r#"{"instance_id":"i-bad","code":"DependencyViolation.RouteEntry","status":400}"#)], &SimOptions::default()).unwrap();
        assert_eq!(code(f.before_handler("v", "DeleteInstances", &params(&[("InstanceId.1", "i-ok")]))), None);
        assert_eq!(
            code(f.before_handler("v", "DeleteInstances", &params(&[("InstanceId.1", "i-ok"), ("InstanceId.2", "i-bad")]))).as_deref(),
            Some("DependencyViolation.RouteEntry")
        );
        assert_eq!(code(f.before_handler("v", "DescribeInstances", &params(&[("InstanceIdX", "i-bad")]))), None);
    }

    #[test]
    fn knobs_are_deterministic_for_a_seed() {
        let opts = SimOptions { throttle_rate: 0.5, ..SimOptions::default() };
        let draw = || {
            let mut f = Faults::new(Vec::new(), &opts).unwrap();
            (0..64).map(|_| f.before_handler("v", "A", &Params::new()).is_some()).collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[test]
    fn full_rates_always_fire() {
        let mut f = Faults::new(Vec::new(), &SimOptions { throttle_rate: 1.0, ..SimOptions::default() }).unwrap();
        assert_eq!(code(f.before_handler("v", "A", &Params::new())).as_deref(), Some("Throttling.User"));
        let mut f = Faults::new(Vec::new(), &SimOptions { error_rate: 1.0, ..SimOptions::default() }).unwrap();
        assert_eq!(code(f.before_handler("v", "A", &Params::new())).as_deref(), Some("ServiceUnavailable"));
    }

    #[test]
    fn bad_knobs_and_rules_are_rejected() {
        assert!(Faults::new(Vec::new(), &SimOptions { error_rate: 1.5, ..SimOptions::default() }).is_err());
        assert!(Faults::new(Vec::new(), &SimOptions { throttle_rate: f64::NAN, ..SimOptions::default() }).is_err());
        assert!(Faults::new(vec![spec(r#"{"status":200}"#)], &SimOptions::default()).is_err());
        assert!(Faults::new(vec![spec(r#"{"kind":"malformed","code":"X"}"#)], &SimOptions::default()).is_err());
    }
}

//! Injected failures, all decided in one place. Most fire before the handler runs, so no state changes;
//! `lost_response` and the page faults let the handler run and then spoil its answer.
//!
//! Global knobs ([`super::SimOptions`]): `throttle_rate` answers that fraction of authenticated requests with 400
//! `Throttling.User`, `error_rate` with 503 `ServiceUnavailable`; both are drawn from one `fastrand::Rng` seeded
//! with `seed`, so a run is reproducible for a given request order. (`latency_ms` is applied by the server.)
//! `reset_rate` closes that fraction of connections without an answer. `acted_share` makes that fraction of the
//! 503s and resets strike *after* the handler ran: the request acted (a release releases) and only its answer is
//! lost. That is the case a client cannot tell from the answer alone, and the reason non-idempotent calls are not
//! resent blindly: RFC 9110 section 9.2.2 ("a user agent SHOULD NOT automatically retry a request with a
//! non-idempotent method unless it has some means to know that the request semantics are actually idempotent
//! ... or some means to detect that the original request was never applied"), and Alibaba Cloud's "How to
//! ensure idempotence" (ECS API reference, ClientToken: "a timeout or a server error" leaves the client unsure
//! whether the request took effect, so it resends with the same ClientToken; APIs without a ClientToken, such as
//! r-kvstore `DeleteInstance`, alikafka `ReleaseInstance` and KMS `ReleaseKmsInstance`, give no such guarantee).
//! Throttling never acts: flow control refuses a request before it is processed (`Throttling.User`).
//!
//! Per-action rules (inventory `"faults"`), checked first, in file order; the first rule that matches fires:
//!
//! ```json
//! {"action": "DescribeInstances", "version": "2014-05-26", "region": "cn-shanghai", "instance_id": "i-…",
//!  "account": "1234567890123456", "dry_run": false, "kind": "error", "code": "InternalError", "status": 500, "message": "…",
//!  "delay_ms": 100, "after": 0, "times": null}
//! ```
//!
//! Selectors, each optional (absent = any): `action`, `version`, `region` (the request's `RegionId`),
//! `instance_id` (any `InstanceId`/`InstanceId.N` parameter equals it), `account` (the account the request is signed
//! for: its access key's, or the role's for a temporary credential; never matches the anonymous
//! `AssumeRoleWithOIDC`), `dry_run` (whether the request has `DryRun=true`). A rule's `after`/`times` count the
//! requests it matched, so a rule with `account` counts that account's only. `after`: let the first N matching calls through untouched; `times`: then fire on the next N
//! (`null` = on every one). `kind`:
//!
//! | kind | the handler runs? | what the client sees |
//! |---|---|---|
//! | `error` (default) | no | `status` (default 500) with `code` (default `InternalError`): throttling is `code: Throttling.User` with 400, `Throttling.Api` with 429, `Rejected.Throttling` with 403 |
//! | `malformed` | no | HTTP 200 with a truncated JSON body |
//! | `latency` | yes | the normal answer, `delay_ms` late |
//! | `timeout` | no | nothing for `delay_ms` (default 60 s, longer than any client timeout), then 504 |
//! | `reset` | no | the connection closes without an answer |
//! | `lost_response` | yes (state changes) | after `delay_ms` (default 0): the connection closes, or, with `status`, that error (`code` default `ServiceUnavailable`) |
//! | `page_repeat` | yes | a listing page whose items are the previous page's again (same region and action; on a first page, its first item twice) |
//! | `page_drop` | yes | a listing page without its last item; `TotalCount` and `NextToken` unchanged |
//! | `total_count` | yes | a listing page whose `TotalCount` is `total_count` (default: the real count + 1) |
//!
//! A listing page is the first array of objects found within three levels of the answer (`Instances.Instance`,
//! `InstanceList.InstanceVO`, `Data.InstanceList`, ...), so page faults work for every product.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::inventory::SimError;
use super::reply::{ApiFault, Reply};
use super::{Params, SimOptions};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    #[default]
    Error,
    Malformed,
    Latency,
    Timeout,
    Reset,
    LostResponse,
    PageRepeat,
    PageDrop,
    TotalCount,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Error => "error",
            FaultKind::Malformed => "malformed",
            FaultKind::Latency => "latency",
            FaultKind::Timeout => "timeout",
            FaultKind::Reset => "reset",
            FaultKind::LostResponse => "lost_response",
            FaultKind::PageRepeat => "page_repeat",
            FaultKind::PageDrop => "page_drop",
            FaultKind::TotalCount => "total_count",
        }
    }

    /// Kinds that let the handler run (the request reaches the service and may change its state).
    fn runs_handler(self) -> bool {
        matches!(
            self,
            FaultKind::Latency
                | FaultKind::LostResponse
                | FaultKind::PageRepeat
                | FaultKind::PageDrop
                | FaultKind::TotalCount
        )
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    pub account: Option<String>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default)]
    pub kind: FaultKind,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub total_count: Option<u64>,
    #[serde(default)]
    pub after: Option<u32>,
    #[serde(default)]
    pub times: Option<u32>,
}

/// Longest `delay_ms` a rule may ask for (10 minutes): a test that sleeps longer is a mistake.
const MAX_DELAY_MS: u64 = 600_000;
const DEFAULT_TIMEOUT_MS: u64 = 60_000;

impl FaultSpec {
    fn matches(&self, version: &str, action: &str, params: &Params, account: Option<&str>) -> bool {
        let eq = |want: &Option<String>, got: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == got);
        let dry_run = params.get("DryRun").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        eq(&self.action, Some(action))
            && eq(&self.account, account)
            && eq(&self.version, Some(version))
            && eq(&self.region, params.get("RegionId").map(String::as_str))
            && self.dry_run.is_none_or(|d| d == dry_run)
            && self.instance_id.as_deref().is_none_or(|id| {
                params.iter().any(|(k, v)| {
                    v == id
                        && (k == "InstanceId"
                            || k.strip_prefix("InstanceId.").is_some_and(|n| n.parse::<u32>().is_ok()))
                })
            })
    }

    fn check(&self, i: usize) -> Result<(), SimError> {
        let at = |f: &str| format!("faults[{i}].{f}");
        if self.account.as_deref().is_some_and(|a| !crate::inventory::is_account_id(a)) {
            return Err(SimError::invalid(at("account"), "expected an account id (digits)"));
        }
        if let Some(status) = self.status {
            if !(400..=599).contains(&status) {
                return Err(SimError::invalid(at("status"), format!("{status} is not an HTTP error status (400-599)")));
            }
        }
        let error_fields = self.code.is_some() || self.status.is_some() || self.message.is_some();
        if error_fields && !matches!(self.kind, FaultKind::Error | FaultKind::LostResponse) {
            return Err(SimError::invalid(
                at("kind"),
                "code, status and message apply to kinds `error` and `lost_response` only",
            ));
        }
        if self.kind == FaultKind::LostResponse
            && (self.code.is_some() || self.message.is_some())
            && self.status.is_none()
        {
            return Err(SimError::invalid(
                at("status"),
                "a lost response with a code or message needs the status to answer with",
            ));
        }
        match self.delay_ms {
            Some(_) if !matches!(self.kind, FaultKind::Latency | FaultKind::Timeout | FaultKind::LostResponse) => {
                return Err(SimError::invalid(
                    at("delay_ms"),
                    "applies to kinds `latency`, `timeout` and `lost_response` only",
                ));
            }
            Some(d) if d > MAX_DELAY_MS => {
                return Err(SimError::invalid(at("delay_ms"), format!("{d} is more than {MAX_DELAY_MS}")))
            }
            None if self.kind == FaultKind::Latency => {
                return Err(SimError::invalid(at("delay_ms"), "required for kind `latency`"))
            }
            _ => {}
        }
        if self.total_count.is_some() && self.kind != FaultKind::TotalCount {
            return Err(SimError::invalid(at("total_count"), "applies to kind `total_count` only"));
        }
        Ok(())
    }

    fn error_reply(&self) -> Reply {
        Reply::Fault(ApiFault::new(
            self.status.unwrap_or(500),
            self.code.as_deref().unwrap_or("InternalError"),
            self.message.clone().unwrap_or_else(|| {
                "The request processing has failed due to some unknown error, exception or failure.".into()
            }),
        ))
    }
}

/// What a fired rule does to one request. Built by [`Faults::before_handler`]; when `replace` is set the
/// handler must not run, otherwise the handler's answer goes through [`Faults::after_handler`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Injected {
    pub kind: FaultKind,
    /// Answer this instead of calling the handler.
    pub replace: Option<Reply>,
    /// Wait this long before answering (or closing).
    pub delay: Duration,
    /// Close the connection instead of answering.
    pub reset: bool,
    spec: Option<FaultSpec>,
}

/// The 503 `ServiceUnavailable` of the error knob and of a lost response with status 503.
fn unavailable() -> ApiFault {
    ApiFault::new(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
}

impl Injected {
    /// The handler runs, then its answer is lost: a 503 with `status`, else the connection closes.
    fn lost(status: Option<u16>) -> Self {
        let spec = FaultSpec {
            action: None,
            version: None,
            region: None,
            instance_id: None,
            account: None,
            dry_run: None,
            kind: FaultKind::LostResponse,
            code: None,
            status,
            message: None,
            delay_ms: None,
            total_count: None,
            after: None,
            times: None,
        };
        Injected { kind: FaultKind::LostResponse, replace: None, delay: Duration::ZERO, reset: false, spec: Some(spec) }
    }

    fn replace(kind: FaultKind, reply: Reply) -> Self {
        Injected { kind, replace: Some(reply), delay: Duration::ZERO, reset: false, spec: None }
    }
}

struct Rule {
    spec: FaultSpec,
    seen: u32,
    fired: u32,
}

pub(crate) struct Faults {
    rules: Vec<Rule>,
    throttle_rate: f64,
    error_rate: f64,
    reset_rate: f64,
    acted_share: f64,
    rng: fastrand::Rng,
    /// The items of the last page served, per (account, action, region): kept only when a `page_repeat` rule
    /// exists.
    last_page: Option<HashMap<(String, String, String), Vec<Value>>>,
}

fn rate(field: &str, v: f64) -> Result<f64, SimError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(SimError::invalid(field, format!("{v} is not a fraction between 0 and 1")))
    }
}

/// The first array of objects within three levels of a JSON answer: a listing page's items.
fn page_items(body: &mut Value) -> Option<&mut Vec<Value>> {
    fn depth_of(v: &Value, depth: usize) -> Option<Vec<String>> {
        if let Value::Array(a) = v {
            return a.iter().all(Value::is_object).then(Vec::new);
        }
        let Value::Object(map) = v else { return None };
        if depth == 0 {
            return None;
        }
        for (k, child) in map {
            if let Some(mut path) = depth_of(child, depth - 1) {
                path.insert(0, k.clone());
                return Some(path);
            }
        }
        None
    }
    let path = depth_of(body, 3).filter(|p| !p.is_empty())?;
    let mut at = body;
    for key in &path {
        at = at.get_mut(key)?;
    }
    at.as_array_mut()
}

impl Faults {
    pub fn new(specs: Vec<FaultSpec>, opts: &SimOptions) -> Result<Self, SimError> {
        for (i, s) in specs.iter().enumerate() {
            s.check(i)?;
        }
        let remember = specs.iter().any(|s| s.kind == FaultKind::PageRepeat);
        Ok(Faults {
            rules: specs.into_iter().map(|spec| Rule { spec, seen: 0, fired: 0 }).collect(),
            throttle_rate: rate("throttle_rate", opts.throttle_rate)?,
            error_rate: rate("error_rate", opts.error_rate)?,
            reset_rate: rate("reset_rate", opts.reset_rate)?,
            acted_share: rate("acted_share", opts.acted_share)?,
            rng: fastrand::Rng::with_seed(opts.seed),
            last_page: remember.then(HashMap::new),
        })
    }

    /// Decides whether this (authenticated) request, signed for `account` (`None`: anonymous), meets a fault,
    /// and which.
    pub fn before_handler(
        &mut self,
        version: &str,
        action: &str,
        params: &Params,
        account: Option<&str>,
    ) -> Option<Injected> {
        for rule in &mut self.rules {
            if !rule.spec.matches(version, action, params, account) {
                continue;
            }
            rule.seen = rule.seen.saturating_add(1);
            if rule.seen <= rule.spec.after.unwrap_or(0) || rule.spec.times.is_some_and(|n| rule.fired >= n) {
                continue;
            }
            rule.fired = rule.fired.saturating_add(1);
            let spec = &rule.spec;
            let delay = Duration::from_millis(spec.delay_ms.unwrap_or(0));
            return Some(match spec.kind {
                FaultKind::Error => Injected::replace(spec.kind, spec.error_reply()),
                FaultKind::Malformed => Injected::replace(
                    spec.kind,
                    Reply::Raw { status: 200, body: r#"{"RequestId":"TRUNCATED","Instances":{"Inst"#.into() },
                ),
                FaultKind::Timeout => Injected {
                    delay: Duration::from_millis(spec.delay_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
                    ..Injected::replace(
                        spec.kind,
                        Reply::Fault(ApiFault::new(504, "RequestTimeout", "The request timed out.")),
                    )
                },
                FaultKind::Reset => Injected {
                    reset: true,
                    ..Injected::replace(spec.kind, Reply::Raw { status: 502, body: String::new() })
                },
                kind => Injected { kind, replace: None, delay, reset: false, spec: Some(spec.clone()) },
            });
        }
        // Draw only for knobs that are on, so turning one on does not shift the other's sequence.
        if self.throttle_rate > 0.0 && self.rng.f64() < self.throttle_rate {
            return Some(Injected::replace(
                FaultKind::Error,
                Reply::Fault(ApiFault::new(400, "Throttling.User", "Request was denied due to user flow control.")),
            ));
        }
        if self.error_rate > 0.0 && self.rng.f64() < self.error_rate {
            if self.acted() {
                return Some(Injected::lost(Some(503)));
            }
            return Some(Injected::replace(FaultKind::Error, Reply::Fault(unavailable())));
        }
        if self.reset_rate > 0.0 && self.rng.f64() < self.reset_rate {
            if self.acted() {
                return Some(Injected::lost(None));
            }
            return Some(Injected {
                reset: true,
                ..Injected::replace(FaultKind::Reset, Reply::Raw { status: 502, body: String::new() })
            });
        }
        None
    }

    /// Whether a drawn 503 or reset strikes after the request acted (`acted_share`).
    fn acted(&mut self) -> bool {
        self.acted_share > 0.0 && self.rng.f64() < self.acted_share
    }

    /// Spoils (or just remembers) the handler's answer. `injected` is what [`Self::before_handler`] returned.
    /// Returns the reply to send when it differs from the handler's (a lost response's error).
    pub fn after_handler(
        &mut self,
        injected: Option<&Injected>,
        action: &str,
        params: &Params,
        account: Option<&str>,
        answer: &mut Result<Value, ApiFault>,
    ) -> Option<Reply> {
        let kind = injected.map(|i| i.kind);
        let key = || {
            (
                account.unwrap_or_default().to_string(),
                action.to_string(),
                params.get("RegionId").cloned().unwrap_or_default(),
            )
        };
        if let (Some(FaultKind::PageRepeat), Ok(body)) = (kind, answer.as_mut()) {
            let previous = self.last_page.as_ref().and_then(|m| m.get(&key())).cloned();
            if let Some(items) = page_items(body) {
                match previous {
                    Some(prev) if !prev.is_empty() => *items = prev,
                    _ => {
                        if let Some(first) = items.first().cloned() {
                            items.push(first);
                        }
                    }
                }
            }
        }
        if let Some(memory) = self.last_page.as_mut() {
            if let Ok(body) = answer.as_mut() {
                if let Some(items) = page_items(body) {
                    memory.insert(key(), items.clone());
                }
            }
        }
        let spec = injected.and_then(|i| i.spec.as_ref())?;
        match (spec.kind, answer.as_mut()) {
            (FaultKind::PageDrop, Ok(body)) => {
                if let Some(items) = page_items(body) {
                    items.pop();
                }
                None
            }
            (FaultKind::TotalCount, Ok(body)) => {
                let real = page_items(body).map(|i| i.len() as u64).unwrap_or(0);
                let count = body.get("TotalCount").and_then(Value::as_u64).unwrap_or(real);
                let wrong = spec.total_count.unwrap_or(count.saturating_add(1));
                if let Some(obj) = body.as_object_mut() {
                    obj.insert("TotalCount".into(), Value::from(wrong));
                }
                None
            }
            (FaultKind::LostResponse, _) if spec.status.is_some() => Some(Reply::Fault(ApiFault::new(
                spec.status.unwrap_or(503),
                spec.code.as_deref().unwrap_or("ServiceUnavailable"),
                spec.message
                    .clone()
                    .unwrap_or_else(|| "The request has failed due to a temporary failure of the server.".into()),
            ))),
            _ => None,
        }
    }
}

/// Whether an injected fault closes the connection after the handler ran (a lost response without a status).
pub(crate) fn resets_after_handler(injected: &Injected) -> bool {
    injected.kind == FaultKind::LostResponse && injected.spec.as_ref().is_some_and(|s| s.status.is_none())
}

pub(crate) fn runs_handler(injected: &Injected) -> bool {
    injected.replace.is_none() && injected.kind.runs_handler()
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
        match i.map(|i| (i.kind, i.replace)) {
            Some((_, Some(Reply::Fault(f)))) => Some(f.code),
            Some((kind, _)) => Some(kind.as_str().to_string()),
            None => None,
        }
    }

    #[test]
    fn rule_matches_region_and_counts_times() {
        let mut f = Faults::new(
            vec![spec(r#"{"action":"DescribeInstances","region":"cn-shanghai","times":2}"#)],
            &SimOptions::default(),
        )
        .unwrap();
        let sh = params(&[("RegionId", "cn-shanghai")]);
        let hz = params(&[("RegionId", "cn-hangzhou")]);
        assert_eq!(code(f.before_handler("2014-05-26", "DescribeInstances", &hz, None)), None);
        assert_eq!(code(f.before_handler("2014-05-26", "DeleteInstances", &sh, None)), None);
        assert_eq!(
            code(f.before_handler("2014-05-26", "DescribeInstances", &sh, None)).as_deref(),
            Some("InternalError")
        );
        assert_eq!(
            code(f.before_handler("2014-05-26", "DescribeInstances", &sh, None)).as_deref(),
            Some("InternalError")
        );
        assert_eq!(code(f.before_handler("2014-05-26", "DescribeInstances", &sh, None)), None);
    }

    #[test]
    fn instance_id_selector_looks_at_repeat_lists() {
        let mut f = Faults::new(
            vec![spec(r#"{"instance_id":"i-bad","code":"DependencyViolation.RouteEntry","status":400}"#)],
            &SimOptions::default(),
        )
        .unwrap();
        assert_eq!(code(f.before_handler("v", "DeleteInstances", &params(&[("InstanceId.1", "i-ok")]), None)), None);
        assert_eq!(
            code(f.before_handler(
                "v",
                "DeleteInstances",
                &params(&[("InstanceId.1", "i-ok"), ("InstanceId.2", "i-bad")]),
                None
            ))
            .as_deref(),
            Some("DependencyViolation.RouteEntry")
        );
        assert_eq!(code(f.before_handler("v", "DescribeInstances", &params(&[("InstanceIdX", "i-bad")]), None)), None);
    }

    #[test]
    fn account_selector_fires_only_in_that_account() {
        let mut f = Faults::new(
            vec![spec(
                r#"{"action":"DescribeInstances","account":"222","code":"Throttling.User","status":400,"after":1}"#,
            )],
            &SimOptions::default(),
        )
        .unwrap();
        let p = params(&[("RegionId", "r")]);
        assert_eq!(code(f.before_handler("v", "DescribeInstances", &p, Some("111"))), None);
        assert_eq!(code(f.before_handler("v", "DescribeInstances", &p, None)), None);
        // `after` counts the account's own calls only: the first in 222 passes, the second fires.
        assert_eq!(code(f.before_handler("v", "DescribeInstances", &p, Some("222"))), None);
        assert_eq!(
            code(f.before_handler("v", "DescribeInstances", &p, Some("222"))).as_deref(),
            Some("Throttling.User")
        );
        assert_eq!(code(f.before_handler("v", "DescribeInstances", &p, Some("111"))), None);
        let bad = Faults::new(vec![spec(r#"{"account":"12a"}"#)], &SimOptions::default());
        assert!(matches!(bad, Err(SimError::Invalid { field, .. }) if field == "faults[0].account"));
    }

    #[test]
    fn knobs_are_deterministic_for_a_seed() {
        let opts = SimOptions { throttle_rate: 0.5, ..SimOptions::default() };
        let draw = || {
            let mut f = Faults::new(Vec::new(), &opts).unwrap();
            (0..64).map(|_| f.before_handler("v", "A", &Params::new(), None).is_some()).collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[test]
    fn full_rates_always_fire() {
        let mut f = Faults::new(Vec::new(), &SimOptions { throttle_rate: 1.0, ..SimOptions::default() }).unwrap();
        assert_eq!(code(f.before_handler("v", "A", &Params::new(), None)).as_deref(), Some("Throttling.User"));
        let mut f = Faults::new(Vec::new(), &SimOptions { error_rate: 1.0, ..SimOptions::default() }).unwrap();
        assert_eq!(code(f.before_handler("v", "A", &Params::new(), None)).as_deref(), Some("ServiceUnavailable"));
    }

    #[test]
    fn resets_and_acted_faults_from_the_knobs() {
        let mut f = Faults::new(Vec::new(), &SimOptions { reset_rate: 1.0, ..SimOptions::default() }).unwrap();
        let i = f.before_handler("v", "A", &Params::new(), None).unwrap();
        assert!(i.reset && !runs_handler(&i), "a reset before the handler");
        let acted = SimOptions { reset_rate: 1.0, acted_share: 1.0, ..SimOptions::default() };
        let mut f = Faults::new(Vec::new(), &acted).unwrap();
        let i = f.before_handler("v", "A", &Params::new(), None).unwrap();
        assert!(runs_handler(&i) && resets_after_handler(&i), "the request acts, then the connection closes");
        let acted = SimOptions { error_rate: 1.0, acted_share: 1.0, ..SimOptions::default() };
        let mut f = Faults::new(Vec::new(), &acted).unwrap();
        let p = Params::new();
        let i = f.before_handler("v", "A", &p, None).unwrap();
        assert!(runs_handler(&i) && !resets_after_handler(&i));
        match f.after_handler(Some(&i), "A", &p, None, &mut Ok(serde_json::json!({}))) {
            Some(Reply::Fault(fault)) => assert_eq!((fault.status, fault.code.as_str()), (503, "ServiceUnavailable")),
            other => panic!("{other:?}"),
        }
        assert!(Faults::new(Vec::new(), &SimOptions { acted_share: 2.0, ..SimOptions::default() }).is_err());
    }

    #[test]
    fn bad_knobs_and_rules_are_rejected() {
        assert!(Faults::new(Vec::new(), &SimOptions { error_rate: 1.5, ..SimOptions::default() }).is_err());
        assert!(Faults::new(Vec::new(), &SimOptions { throttle_rate: f64::NAN, ..SimOptions::default() }).is_err());
        assert!(Faults::new(vec![spec(r#"{"status":200}"#)], &SimOptions::default()).is_err());
        assert!(Faults::new(vec![spec(r#"{"kind":"malformed","code":"X"}"#)], &SimOptions::default()).is_err());
        assert!(Faults::new(vec![spec(r#"{"kind":"latency"}"#)], &SimOptions::default()).is_err());
        assert!(Faults::new(vec![spec(r#"{"kind":"reset","delay_ms":5}"#)], &SimOptions::default()).is_err());
        assert!(Faults::new(vec![spec(r#"{"kind":"timeout","delay_ms":6000000}"#)], &SimOptions::default()).is_err());
        assert!(Faults::new(vec![spec(r#"{"kind":"lost_response","code":"X"}"#)], &SimOptions::default()).is_err());
        assert!(Faults::new(vec![spec(r#"{"kind":"page_drop","total_count":3}"#)], &SimOptions::default()).is_err());
        assert!(Faults::new(
            vec![spec(r#"{"kind":"lost_response","status":503,"delay_ms":5}"#)],
            &SimOptions::default()
        )
        .is_ok());
    }

    #[test]
    fn after_lets_calls_through_first_and_dry_run_selects() {
        let mut f = Faults::new(
            vec![spec(r#"{"action":"DeleteInstances","dry_run":false,"kind":"reset","after":1,"times":1}"#)],
            &SimOptions::default(),
        )
        .unwrap();
        let dry = params(&[("DryRun", "true")]);
        let real = params(&[("ClientToken", "t")]);
        assert_eq!(code(f.before_handler("v", "DeleteInstances", &dry, None)), None);
        assert_eq!(
            code(f.before_handler("v", "DeleteInstances", &real, None)),
            None,
            "the first real call passes (after: 1)"
        );
        let i = f.before_handler("v", "DeleteInstances", &real, None).unwrap();
        assert!(i.reset && !runs_handler(&i));
        assert_eq!(code(f.before_handler("v", "DeleteInstances", &real, None)), None, "times: 1");
    }

    fn page(ids: &[&str]) -> Result<Value, ApiFault> {
        let items: Vec<Value> = ids.iter().map(|id| serde_json::json!({"InstanceId": id})).collect();
        Ok(serde_json::json!({"RequestId": "r", "TotalCount": 9, "NextToken": "n", "Instances": {"Instance": items}}))
    }

    fn ids(v: &Result<Value, ApiFault>) -> Vec<String> {
        let v = v.as_ref().unwrap();
        v["Instances"]["Instance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["InstanceId"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn page_faults_rewrite_the_listing() {
        let rules = vec![spec(r#"{"kind":"page_repeat","after":1,"times":1}"#)];
        let mut f = Faults::new(rules, &SimOptions::default()).unwrap();
        let p = params(&[("RegionId", "r")]);
        let i = f.before_handler("v", "DescribeInstances", &p, None);
        let mut first = page(&["i-1", "i-2"]);
        assert_eq!(f.after_handler(i.as_ref(), "DescribeInstances", &p, None, &mut first), None);
        let i = f.before_handler("v", "DescribeInstances", &p, None).unwrap();
        assert!(runs_handler(&i));
        let mut second = page(&["i-3", "i-4"]);
        f.after_handler(Some(&i), "DescribeInstances", &p, None, &mut second);
        assert_eq!(ids(&second), ["i-1", "i-2"], "page 2 repeats page 1");

        let mut f = Faults::new(vec![spec(r#"{"kind":"page_repeat"}"#)], &SimOptions::default()).unwrap();
        let i = f.before_handler("v", "DescribeInstances", &p, None);
        let mut only = page(&["i-1", "i-2"]);
        f.after_handler(i.as_ref(), "DescribeInstances", &p, None, &mut only);
        assert_eq!(ids(&only), ["i-1", "i-2", "i-1"], "a first page repeats its first item");

        let mut f = Faults::new(
            vec![spec(r#"{"kind":"page_drop"}"#), spec(r#"{"kind":"total_count"}"#)],
            &SimOptions::default(),
        )
        .unwrap();
        let i = f.before_handler("v", "DescribeInstances", &p, None);
        let mut dropped = page(&["i-1", "i-2"]);
        f.after_handler(i.as_ref(), "DescribeInstances", &p, None, &mut dropped);
        assert_eq!(ids(&dropped), ["i-1"]);
        assert_eq!(dropped.as_ref().unwrap()["TotalCount"], 9);

        let mut f =
            Faults::new(vec![spec(r#"{"kind":"total_count","total_count":1}"#)], &SimOptions::default()).unwrap();
        let i = f.before_handler("v", "DescribeInstances", &p, None);
        let mut counted = page(&["i-1", "i-2"]);
        f.after_handler(i.as_ref(), "DescribeInstances", &p, None, &mut counted);
        assert_eq!(counted.as_ref().unwrap()["TotalCount"], 1);
    }

    #[test]
    fn lost_responses_run_the_handler_then_spoil_the_answer() {
        let mut f = Faults::new(
            vec![spec(r#"{"kind":"lost_response","times":1}"#), spec(r#"{"kind":"lost_response","status":503}"#)],
            &SimOptions::default(),
        )
        .unwrap();
        let p = params(&[]);
        let i = f.before_handler("v", "DeleteInstances", &p, None).unwrap();
        assert!(runs_handler(&i) && resets_after_handler(&i));
        let mut ok = Ok(serde_json::json!({}));
        assert_eq!(f.after_handler(Some(&i), "DeleteInstances", &p, None, &mut ok), None);
        let i = f.before_handler("v", "DeleteInstances", &p, None).unwrap();
        assert!(runs_handler(&i) && !resets_after_handler(&i));
        match f.after_handler(Some(&i), "DeleteInstances", &p, None, &mut ok) {
            Some(Reply::Fault(fault)) => assert_eq!((fault.status, fault.code.as_str()), (503, "ServiceUnavailable")),
            other => panic!("{other:?}"),
        }
    }
}

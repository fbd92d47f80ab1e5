//! A loopback emulator of the Alibaba Cloud RPC API (the `aliyun-sim` binary, or in-process through [`spawn`]):
//! verifies signatures, timestamps and nonces like the real service and serves products' list/release calls from
//! an inventory JSON file.
//!
//! It is written from the official sources (the API reference, the SDKs' metadata and their tests), never from a
//! client's code: it has its own signature verifier ([`signature`]), time formats (`time`) and product facts
//! (`service::PRODUCTS`), so a client's wrong assumption about the API shows up as a failing test.
//!
//! A request goes `server` (HTTP → parameters, query and form body together) → `auth` (common parameters,
//! signature, nonce) → `faults` (injected failures, before any state change) → the product's `service`
//! (dispatched on `Version` + `Action`, e.g. `ecs`) → `reply` (success body or the real error document).
//! Every request lands in the call log, readable with [`Sim::calls`] or `GET /_sim/calls`;
//! `GET /_sim/instances` shows what still exists. The inventory format is described in `inventory.rs`.
//!
//! Billing follows the products: a billing record of an instance that a product section served at load and that
//! is gone from it since (released through the product's API) is dropped before billing answers, as the real
//! billing stops listing released instances (see [`State::reconcile_billing`]).

mod auth;
mod bss;
mod controls;
mod ecs;
mod faults;
mod inventory;
mod kafka;
mod kms;
mod params;
mod redis;
mod reply;
mod server;
mod service;
pub mod signature;
mod tagging;
mod time;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use auth::{NonceStore, SECRET_PARAMS};
use faults::Faults;
use inventory::SimCredential;
pub use inventory::SimError;
use params::Params;
use reply::{new_request_id, ApiFault, Rendered, Reply};
pub use server::{serve, spawn, ThreadServer};
use service::{ActionKind, Env, Service, PRODUCTS};

/// Global knobs. Per-action faults live in the inventory (see `faults.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Response time of each API request: its answer leaves this long after it arrived (the request acts on arrival).
    pub latency_ms: u64,
    /// Fraction (0..=1) of authenticated requests answered 400 `Throttling.User`.
    pub throttle_rate: f64,
    /// Fraction (0..=1) of authenticated requests answered 503 `ServiceUnavailable`.
    pub error_rate: f64,
    /// Seed for the throttle/error draws, so a run can be replayed.
    pub seed: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions { latency_ms: 0, throttle_rate: 0.0, error_rate: 0.0, seed: 1 }
    }
}

/// One request as the emulator saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub action: String,
    pub version: String,
    /// All parameters; the values of `Signature`, `SecurityToken` and `AccessKeyId` are replaced by `<redacted>`.
    pub params: BTreeMap<String, String>,
    /// The error code returned, if any (`DryRunOperation` included).
    pub code: Option<String>,
    pub http_status: u16,
    pub dry_run: bool,
    /// The injected fault that met this request (`reset`, `lost_response`, `page_drop`, ...), if any. When the
    /// handler ran (`lost_response`, `latency`, page faults), `code` and `http_status` are the handler's own
    /// answer, i.e. what the service did, whatever the client was shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<String>,
}

/// The emulator: inventory, credentials, fault knobs and the call log. Cheap to clone.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Sim")
            .field("latency", &self.inner.latency)
            .field("products", &state.services.iter().map(|s| s.product()).collect::<Vec<_>>())
            .field("calls", &state.calls.len())
            .finish_non_exhaustive()
    }
}

struct Shared {
    latency: Duration,
    state: Mutex<State>,
}

/// Everything that changes, behind one lock. Handlers are synchronous, so it is never held across an await.
struct State {
    credentials: Vec<SimCredential>,
    services: Vec<Box<dyn Service>>,
    nonces: NonceStore,
    faults: Faults,
    clock: Option<DateTime<Utc>>,
    calls: Vec<LoggedCall>,
    /// Product sections billing follows: those the inventory has, with the ids they held at load.
    billing_watch: Vec<Watched>,
}

/// A product section whose releases billing reflects.
struct Watched {
    /// The section (the product code: `ecs`, `r-kvstore`, ...).
    section: &'static str,
    /// The `ProductCode`s billing uses for it (`service::PRODUCTS`).
    billing_codes: &'static [&'static str],
    /// The ids the section held at load.
    at_load: BTreeSet<String>,
}

struct LoggedCall {
    record: CallRecord,
    /// A release action whose handler ran.
    release: bool,
}

/// How far a request got, and what to answer.
struct Outcome {
    reply: Reply,
    /// What the client is shown instead of `reply` (a lost response's error), when it differs.
    shown: Option<Reply>,
    product: Option<&'static str>,
    release: bool,
    wire: Wire,
    injected: Option<&'static str>,
}

impl Outcome {
    fn refused(fault: ApiFault, product: Option<&'static str>) -> Self {
        Outcome {
            reply: Reply::Fault(fault),
            shown: None,
            product,
            release: false,
            wire: Wire::default(),
            injected: None,
        }
    }
}

/// How the server delivers an answer: after an extra wait, or not at all (the connection is closed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Wire {
    pub delay: Duration,
    pub reset: bool,
}

/// An answer for the server: the rendered reply and how to deliver it.
pub(crate) struct Answer {
    pub rendered: Rendered,
    pub wire: Wire,
}

impl Sim {
    /// Builds an emulator from inventory text; an error names the offending field.
    pub fn from_inventory_json(text: &str, opts: SimOptions) -> Result<Sim, SimError> {
        let inv = inventory::parse(text)?;
        let services = PRODUCTS.iter().map(|p| (p.load)(inv.products.get(p.section))).collect::<Result<Vec<_>, _>>()?;
        let faults = Faults::new(inv.faults, &opts)?;
        let billing_watch = PRODUCTS
            .iter()
            .zip(&services)
            .filter(|(p, _)| !p.billing_codes.is_empty())
            .filter(|(p, _)| inv.products.get(p.section).is_some_and(|v| !v.is_null()))
            .map(|(p, s)| Watched {
                section: p.section,
                billing_codes: p.billing_codes,
                at_load: s.instance_ids().into_iter().collect(),
            })
            .collect();
        let state = State {
            credentials: inv.credentials,
            services,
            nonces: NonceStore::default(),
            faults,
            clock: inv.now,
            calls: Vec::new(),
            billing_watch,
        };
        Ok(Sim {
            inner: Arc::new(Shared { latency: Duration::from_millis(opts.latency_ms), state: Mutex::new(state) }),
        })
    }

    pub fn from_inventory_file(path: &std::path::Path, opts: SimOptions) -> Result<Sim, SimError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SimError::Read { path: path.to_path_buf(), source })?;
        Self::from_inventory_json(&text, opts)
    }

    /// Every request so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.iter().map(|c| c.record.clone()).collect()
    }

    /// Real (non-dry-run) release calls that passed authentication and faults and reached the handler,
    /// whatever the handler answered.
    pub fn release_calls(&self) -> Vec<CallRecord> {
        self.lock().calls.iter().filter(|c| c.release && !c.record.dry_run).map(|c| c.record.clone()).collect()
    }

    /// Ids of `product`'s instances that still exist, sorted (empty for a product the emulator does not know).
    pub fn instance_ids(&self, product: &str) -> Vec<String> {
        let mut state = self.lock();
        state.reconcile_billing();
        state.services.iter().find(|s| s.product() == product).map(|s| s.instance_ids()).unwrap_or_default()
    }

    /// Sets the clock used for expiry checks (`None`: the real clock). Request timestamps are always
    /// checked against the real clock.
    pub fn set_clock(&self, now: Option<DateTime<Utc>>) {
        self.lock().clock = now;
    }

    pub(crate) fn latency(&self) -> Duration {
        self.inner.latency
    }

    /// The current inventory, product sections only: `{"ecs": [...]}`.
    pub(crate) fn snapshot(&self) -> Value {
        let mut state = self.lock();
        state.reconcile_billing();
        Value::Object(state.services.iter().map(|s| (s.product().to_string(), s.snapshot())).collect())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the state is still the best we have.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers one API request and logs it. `parsed` is an error when the parameters could not be decoded.
    #[cfg(test)]
    pub(crate) fn handle(&self, method: &str, parsed: Result<Params, ApiFault>) -> Rendered {
        self.answer(method, parsed).rendered
    }

    /// Like `handle`, with the delivery (delay, connection reset) injected faults ask for.
    pub(crate) fn answer(&self, method: &str, parsed: Result<Params, ApiFault>) -> Answer {
        let request_id = new_request_id();
        let mut state = self.lock();
        let (params, outcome) = match parsed {
            Ok(p) => {
                let outcome = state.process(method, &p, &request_id);
                (p, outcome)
            }
            Err(f) => (Params::new(), Outcome::refused(f, None)),
        };
        let (http_status, code) = match &outcome.reply {
            // A business envelope (alikafka, BSS) reports its errors inside a 200 body: log their code too.
            Reply::Ok(body) => (200, reply::envelope_code(body)),
            Reply::Fault(f) => (f.status, Some(f.code.clone())),
            Reply::Raw { status, .. } => (*status, None),
        };
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        let record = CallRecord {
            action: get("Action"),
            version: get("Version"),
            params: params
                .iter()
                .map(|(k, v)| {
                    (k.clone(), if SECRET_PARAMS.contains(&k.as_str()) { "<redacted>".into() } else { v.clone() })
                })
                .collect(),
            code,
            http_status,
            dry_run: params.get("DryRun").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            injected: outcome.injected.map(str::to_string),
        };
        state.calls.push(LoggedCall { record, release: outcome.release });
        // Rendering (a listing page is tens of kilobytes) needs no state: other requests go ahead meanwhile.
        drop(state);
        let host = host_id(outcome.product, &params);
        let rendered = outcome.shown.unwrap_or(outcome.reply).render(&request_id, &host);
        Answer { rendered, wire: outcome.wire }
    }
}

impl State {
    fn process(&mut self, method: &str, p: &Params, request_id: &str) -> Outcome {
        let c = match auth::common(p) {
            Ok(c) => c,
            Err(f) => return Outcome::refused(f, None),
        };
        let Some(idx) = self.services.iter().position(|s| s.version() == c.version) else {
            return Outcome::refused(ApiFault::action_not_found(), None);
        };
        let product = Some(self.services[idx].product());
        let Some(kind) = self.services[idx].action_kind(c.action) else {
            return Outcome::refused(ApiFault::action_not_found(), product);
        };
        if let Err(f) = auth::authenticate(method, p, &c, &self.credentials, &mut self.nonces, Utc::now()) {
            return Outcome::refused(f, product);
        }
        // Flow control is per user, so it comes after authentication (the real `Throttling.User`).
        let injected = self.faults.before_handler(c.version, c.action, p);
        let name = injected.as_ref().map(|i| i.kind.as_str());
        if let Some(i) = &injected {
            if let Some(reply) = i.replace.clone() {
                return Outcome {
                    reply,
                    shown: None,
                    product,
                    release: false,
                    wire: Wire { delay: i.delay, reset: i.reset },
                    injected: name,
                };
            }
        }
        if self.services[idx].follows_products() {
            self.reconcile_billing();
        }
        let env = Env { now: self.clock.unwrap_or_else(Utc::now), request_id };
        let mut answer = self.services[idx].handle(c.action, p, &env);
        let shown = self.faults.after_handler(injected.as_ref(), c.action, p, &mut answer);
        let wire = injected
            .as_ref()
            .map(|i| Wire { delay: i.delay, reset: faults::resets_after_handler(i) })
            .unwrap_or_default();
        debug_assert!(injected.as_ref().is_none_or(faults::runs_handler));
        Outcome { reply: answer.into(), shown, product, release: kind == ActionKind::Release, wire, injected: name }
    }
}

impl State {
    /// Drops the billing records of instances released through their product's API: those a watched section
    /// held at load and no longer holds. Records of ids a section never held stay (billing and products may
    /// disagree, and tests need that), as do records of products the inventory has no section for.
    fn reconcile_billing(&mut self) {
        let mut gone: BTreeSet<(&'static str, String)> = BTreeSet::new();
        for w in &self.billing_watch {
            let Some(service) = self.services.iter().find(|s| s.product() == w.section) else { continue };
            let now: BTreeSet<String> = service.instance_ids().into_iter().collect();
            for id in w.at_load.difference(&now) {
                gone.extend(w.billing_codes.iter().map(|code| (*code, id.clone())));
            }
        }
        if gone.is_empty() {
            return;
        }
        let released = |code: &str, id: &str| gone.iter().any(|(c, i)| *c == code && i == id);
        for service in self.services.iter_mut() {
            service.drop_released(&released);
        }
    }
}

/// The endpoint host the real service would name in `HostId`.
fn host_id(product: Option<&str>, p: &Params) -> String {
    match (product, p.get("RegionId").filter(|r| !r.is_empty())) {
        (Some(product), Some(region)) => format!("{product}.{region}.aliyuncs.com"),
        (Some(product), None) => format!("{product}.aliyuncs.com"),
        (None, _) => "aliyuncs.com".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature as sign;
    use proptest::prelude::*;

    const INVENTORY: &str = r#"{
        "credentials": [{"access_key_id": "id", "access_key_secret": "secret"}],
        "ecs": [
            {"InstanceId": "i-a", "RegionId": "r", "Status": "Stopped", "InstanceChargeType": "PostPaid"},
            {"InstanceId": "i-b", "RegionId": "r", "Status": "Running", "InstanceChargeType": "PrePaid", "ExpiredTime": "2020-01-01T00:00Z"}
        ]
    }"#;

    /// A correctly signed request, so arbitrary API parameters reach the handler.
    fn signed(action: &str, api: &[(String, String)]) -> Params {
        signed_for("2014-05-26", action, api)
    }

    fn signed_for(version: &str, action: &str, api: &[(String, String)]) -> Params {
        let nonce = uuid::Uuid::new_v4().to_string();
        let ts = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut pairs: Vec<(String, String)> = [
            ("Action", action),
            ("Version", version),
            ("AccessKeyId", "id"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce.as_str()),
            ("Timestamp", ts.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        pairs.extend(api.iter().filter(|(k, _)| !COMMON.contains(&k.as_str())).cloned());
        let mut params: Params = pairs.into_iter().collect();
        let sig = sign::signature("POST", &params, "secret");
        params.insert("Signature".into(), sig);
        params
    }

    const COMMON: &[&str] = &[
        "Action",
        "Version",
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "Signature",
    ];

    #[test]
    fn log_redacts_and_flags_releases() {
        let sim = Sim::from_inventory_json(INVENTORY, SimOptions::default()).unwrap();
        let p = signed("DeleteInstances", &[("RegionId".into(), "r".into()), ("InstanceId.1".into(), "i-a".into())]);
        let r = sim.handle("POST", Ok(p));
        assert_eq!((r.status, r.code), (200, None));
        let calls = sim.calls();
        assert_eq!(calls[0].params["Signature"], "<redacted>");
        assert_eq!(calls[0].params["AccessKeyId"], "<redacted>");
        assert_eq!(sim.release_calls().len(), 1);
        assert_eq!(sim.instance_ids("ecs"), ["i-b"]);
        assert!(format!("{sim:?}").contains("ecs"));
    }

    #[test]
    fn billing_stops_listing_what_a_product_api_released() {
        let bill = |id: &str, product: &str| {
            format!(
                r#"{{"InstanceID": "{id}", "ProductCode": "{product}", "SubscriptionType": "Subscription", "EndTime": "2020-01-01T00:00:00Z"}}"#
            )
        };
        let text = INVENTORY.replace(
            r#""ecs": ["#,
            &format!(
                r#""bss": [{}, {}, {}, {}], "ecs": ["#,
                bill("i-a", "ecs"),
                bill("i-b", "ecs"),
                bill("i-ghost", "ecs"),
                bill("r-1", "redisa")
            ),
        );
        let sim = Sim::from_inventory_json(&text, SimOptions::default()).unwrap();
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let billed = |sim: &Sim| {
            let r = sim.handle(
                "POST",
                Ok(signed_for(bss::VERSION, "QueryAvailableInstances", &pairs(&[("PageSize", "100")]))),
            );
            let v: Value = serde_json::from_str(&r.body).unwrap();
            v["Data"]["InstanceList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["InstanceID"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(billed(&sim), ["i-a", "i-b", "i-ghost", "r-1"]);
        let r =
            sim.handle("POST", Ok(signed("DeleteInstances", &pairs(&[("RegionId", "r"), ("InstanceId.1", "i-a")]))));
        assert_eq!((r.status, r.code), (200, None));
        // Released through ECS: gone from billing. Ids ECS never had, and products without a section, stay.
        assert_eq!(billed(&sim), ["i-b", "i-ghost", "r-1"]);
        assert_eq!(sim.instance_ids("bss"), ["i-b", "i-ghost", "r-1"]);
    }

    #[test]
    fn host_id_names_product_and_region() {
        let p: Params = [("RegionId".to_string(), "cn-shanghai".to_string())].into_iter().collect();
        assert_eq!(host_id(Some("ecs"), &p), "ecs.cn-shanghai.aliyuncs.com");
        assert_eq!(host_id(Some("ecs"), &Params::new()), "ecs.aliyuncs.com");
        assert_eq!(host_id(None, &p), "aliyuncs.com");
    }

    fn api_param() -> impl Strategy<Value = (String, String)> {
        let names = prop::sample::select(vec![
            "RegionId",
            "InstanceIds",
            "InstanceId.1",
            "InstanceId.2",
            "InstanceId.0",
            "InstanceId.100",
            "InstanceId.99999999999999999999",
            "InstanceId",
            "MaxResults",
            "NextToken",
            "PageNumber",
            "PageSize",
            "Status",
            "InstanceChargeType",
            "Tag.1.Key",
            "Tag.1.Value",
            "Tag.21.Key",
            "Tag.x.Key",
            "Force",
            "TerminateSubscription",
            "DryRun",
            "ClientToken",
            "ZoneId",
        ]);
        let values = prop_oneof![
            Just("r".to_string()),
            Just("i-a".to_string()),
            Just("true".to_string()),
            Just("18446744073709551616".to_string()),
            Just("0".to_string()),
            Just("[\"i-a\",1]".to_string()),
            ".{0,12}",
        ];
        (names.prop_map(str::to_string), values)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Whatever the API parameters, a signed request gets a JSON answer with a sensible status, never a panic.
        #[test]
        fn arbitrary_parameters_never_panic(
            action in prop::sample::select(vec!["DescribeInstances", "DeleteInstances", "DeleteInstance", "DescribeRegions"]),
            api in prop::collection::vec(api_param(), 0..8),
        ) {
            let sim = Sim::from_inventory_json(INVENTORY, SimOptions::default()).unwrap();
            let r = sim.handle("POST", Ok(signed(action, &api)));
            prop_assert!([200, 400, 403, 404].contains(&r.status), "{} {}", r.status, r.body);
            let body: Value = serde_json::from_str(&r.body).unwrap();
            prop_assert!(body["RequestId"].is_string());
            prop_assert_eq!(r.status == 200, r.code.is_none());
        }

        /// Garbage query strings are refused cleanly.
        #[test]
        fn arbitrary_query_strings_never_panic(query in ".{0,80}") {
            let sim = Sim::from_inventory_json(INVENTORY, SimOptions::default()).unwrap();
            let parsed = params::decode_pairs(&query).and_then(params::merge);
            let r = sim.handle("GET", parsed);
            prop_assert!(r.status >= 400);
        }
    }
}

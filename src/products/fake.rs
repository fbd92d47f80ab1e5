//! A product for the engine's unit tests (no HTTP): `list`/`get` answer from memory, every other call is
//! recorded and succeeds, unless its action is listed in `failing`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{ArnForm, AutoRelease, CallResult, Product, ProductSpec, ReleaseCall, TagReport, Tagging};
use crate::aliyun::{ApiError, Client, Credentials, Endpoints, RetryPolicy};
use crate::inventory::{ChargeType, Instance};

pub static SPEC: ProductSpec = ProductSpec {
    code: "fake",
    api_version: "2000-01-01",
    event_services: &[],
    arn: ArnForm { service: "fake", kind: "instance" },
    state_change_type: None,
    billing_codes: &[],
    releasable: &[ChargeType::PayAsYouGo],
    batch_size: 100,
    force_from_rule: false,
    endpoints: &[],
};

/// Where a fake instance keeps its platform auto-release time (RFC 3339).
pub const AUTO_RELEASE_EXTRA: &str = "auto_release";

#[derive(Default)]
pub struct Fake {
    /// What `list` and `get` answer: the instances as they are now.
    pub now: Mutex<Vec<Instance>>,
    /// Every call but the reads, as `Action id,id`.
    pub calls: Mutex<Vec<String>>,
    /// Actions (`TagResources`, `Release`, ...) that fail.
    pub failing: Vec<&'static str>,
    /// Scripted `Release` answers, used front first: each is a 503 (an answer that leaves open whether the call
    /// acted). `acts`: the call did release (its ids leave `now`); `then`: `now` becomes these instances.
    pub lost_releases: Mutex<Vec<LostRelease>>,
    /// `Get` fails with a 500 from this call on (counted from 1).
    pub get_fails_from: Option<usize>,
    /// `Get` calls so far.
    pub gets: Mutex<usize>,
}

/// One scripted `Release` answer of [`Fake::lost_releases`].
#[derive(Default)]
pub struct LostRelease {
    pub acts: bool,
    pub then: Option<Vec<Instance>>,
}

fn unavailable(action: &str) -> ApiError {
    ApiError::Service {
        action: action.into(),
        status: 503,
        code: "ServiceUnavailable".into(),
        message: "scripted".into(),
        request_id: String::new(),
    }
}

impl Fake {
    pub fn with(instances: Vec<Instance>) -> Fake {
        Fake { now: Mutex::new(instances), ..Fake::default() }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, action: &'static str, ids: &[String]) -> CallResult {
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("{action} {}", ids.join(",")));
        }
        if self.failing.contains(&action) {
            return Err(ApiError::Service {
                action: action.into(),
                status: 400,
                code: "Fake.Failure".into(),
                message: "failing on purpose".into(),
                request_id: String::new(),
            });
        }
        Ok(format!("req-{action}"))
    }
}

/// An API client that is never called (the fake answers first); its endpoint is a closed loopback port.
pub fn client() -> Client {
    let endpoints = Endpoints::new(Some("http://127.0.0.1:9"), &BTreeMap::new()).expect("loopback endpoint");
    Client::new(
        Credentials::new("id", "secret", None),
        endpoints,
        RetryPolicy::default(),
        crate::aliyun::CallLimits::per_endpoint(4),
    )
    .expect("client")
}

/// The mark key of the unit tests.
pub fn mark_key() -> crate::lifecycle::MarkKey {
    crate::lifecycle::MarkKey::new("unit-test-mark-key-0123456789ab").expect("key")
}

/// `instance(id, tags)` carrying a genuine mark (written with `mark_key()`) under `rule` for `release_after`.
pub fn marked(id: &str, tags: &[(&str, &str)], rule: &str, release_after: &str) -> Instance {
    let mut i = instance(id, tags);
    let at = DateTime::parse_from_rfc3339(release_after).expect("RFC 3339").with_timezone(&Utc);
    let who = crate::lifecycle::MarkOf { product: SPEC.code, region: "cn-hangzhou", id };
    for (k, v) in crate::lifecycle::mark_tags(at, rule, Some(&mark_key()), &who) {
        i.tags.insert(&k, &v);
    }
    i
}

/// A pay-as-you-go, stopped instance of the fake product in `cn-hangzhou`.
pub fn instance(id: &str, tags: &[(&str, &str)]) -> Instance {
    let mut i = Instance::new(SPEC.code, "cn-hangzhou", id, ChargeType::PayAsYouGo);
    i.status = "Stopped".into();
    i.tags = tags.iter().copied().collect();
    i
}

#[async_trait]
impl Product for Fake {
    fn spec(&self) -> &'static ProductSpec {
        &SPEC
    }

    async fn list(&self, _api: &Client, region: &str) -> Result<Vec<Instance>, ApiError> {
        Ok(self.now.lock().map(|n| n.iter().filter(|i| i.region == region).cloned().collect()).unwrap_or_default())
    }

    async fn get(&self, api: &Client, region: &str, ids: &[String]) -> Result<Vec<Instance>, ApiError> {
        self.record("Get", ids)?;
        let n = self.gets.lock().map(|mut g| {
            *g += 1;
            *g
        });
        if self.get_fails_from.is_some_and(|from| n.is_ok_and(|n| n >= from)) {
            return Err(ApiError::Service {
                action: "Get".into(),
                status: 500,
                code: "InternalError".into(),
                message: "scripted".into(),
                request_id: String::new(),
            });
        }
        Ok(self.list(api, region).await?.into_iter().filter(|i| ids.iter().any(|id| *id == i.id)).collect())
    }

    async fn release(&self, _api: &Client, call: &ReleaseCall) -> CallResult {
        let answer = self.record("Release", &call.ids);
        let scripted = self.lost_releases.lock().ok().and_then(|mut l| (!l.is_empty()).then(|| l.remove(0)));
        let Some(lost) = scripted else { return answer };
        if let Ok(mut now) = self.now.lock() {
            if lost.acts {
                now.retain(|i| !call.ids.contains(&i.id.to_string()));
            }
            if let Some(then) = lost.then {
                *now = then;
            }
        }
        Err(unavailable("Release"))
    }

    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    fn auto_release(&self) -> Option<&dyn AutoRelease> {
        Some(self)
    }
}

#[async_trait]
impl Tagging for Fake {
    async fn tag(
        &self,
        _api: &Client,
        _region: &str,
        ids: &[String],
        _tags: &BTreeMap<String, String>,
    ) -> Result<TagReport, ApiError> {
        let rid = self.record("TagResources", ids)?;
        Ok(TagReport { request_ids: vec![rid], failed: BTreeMap::new() })
    }

    async fn untag(
        &self,
        _api: &Client,
        _region: &str,
        ids: &[String],
        _keys: &[String],
    ) -> Result<TagReport, ApiError> {
        let rid = self.record("UntagResources", ids)?;
        Ok(TagReport { request_ids: vec![rid], failed: BTreeMap::new() })
    }
}

#[async_trait]
impl AutoRelease for Fake {
    fn scheduled(&self, instance: &Instance) -> Option<DateTime<Utc>> {
        let at = instance.extra.get(AUTO_RELEASE_EXTRA)?;
        DateTime::parse_from_rfc3339(at).ok().map(|t| t.with_timezone(&Utc))
    }

    async fn set(&self, _api: &Client, _region: &str, id: &str, _at: DateTime<Utc>) -> CallResult {
        self.record("SetAutoRelease", &[id.to_string()])
    }

    async fn cancel(&self, _api: &Client, _region: &str, id: &str) -> CallResult {
        self.record("CancelAutoRelease", &[id.to_string()])
    }
}

//! Signed RPC calls with retries: jittered exponential back-off inside a total time budget,
//! bounded concurrency per endpoint that adapts to throttling (see `limit.rs`), and a count of calls per
//! action for reports and benchmarks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::retry::{self, GaveUp, Retriable};

use super::limit::{AdaptiveLimit, CallLimits, LimitStats};
use super::sign;
use super::{ApiError, CredentialSource, Credentials, Endpoints};
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    /// Throttling starts from a longer delay, as the legacy SDK does (reference section 2).
    pub throttle_base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub budget: Duration,
    pub request_timeout: Duration,
    /// An answer body longer than this is an error (a body that never ends must not take the memory with it).
    pub max_body_bytes: usize,
    /// A listing of more pages than this fails its scope (a `NextToken` chain that never ends).
    pub max_pages: usize,
}

impl RetryPolicy {
    /// The defaults with overrides in milliseconds (the CLI's `JANITOR_REQUEST_TIMEOUT_MS`,
    /// `JANITOR_RETRY_BUDGET_MS` and `JANITOR_RETRY_BASE_MS`). A base delay also sets the throttling base
    /// (5x) and the cap (200x), so tests can shrink the whole schedule at once.
    pub fn with_overrides(self, request_timeout_ms: Option<u64>, budget_ms: Option<u64>, base_ms: Option<u64>) -> Self {
        let mut r = self;
        if let Some(ms) = request_timeout_ms {
            r.request_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = budget_ms {
            r.budget = Duration::from_millis(ms);
        }
        if let Some(ms) = base_ms {
            r.base_delay = Duration::from_millis(ms);
            r.throttle_base_delay = Duration::from_millis(ms.saturating_mul(5));
            r.max_delay = Duration::from_millis(ms.saturating_mul(200)).max(Duration::from_millis(1));
        }
        r
    }

    /// The answer-size and page bounds, overridden (the CLI's `JANITOR_MAX_BODY_BYTES`, `JANITOR_MAX_PAGES`).
    pub fn with_bounds(self, max_body_bytes: Option<u64>, max_pages: Option<u64>) -> Self {
        let mut r = self;
        if let Some(b) = max_body_bytes {
            r.max_body_bytes = usize::try_from(b).unwrap_or(usize::MAX).max(1);
        }
        if let Some(p) = max_pages {
            r.max_pages = usize::try_from(p).unwrap_or(usize::MAX).max(1);
        }
        r
    }

    /// The schedule of the shared retry loop.
    fn schedule(&self) -> retry::Schedule {
        retry::Schedule {
            max_attempts: self.max_attempts,
            base_delay: self.base_delay,
            throttle_base_delay: self.throttle_base_delay,
            max_delay: self.max_delay,
            budget: self.budget,
        }
    }

    /// How long an endpoint holds new requests after a throttling answer.
    fn throttle_pause(&self) -> Duration {
        self.throttle_base_delay / 2
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            throttle_base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            budget: Duration::from_secs(60),
            request_timeout: Duration::from_secs(15),
            // The largest real answers are pages of 100 instances, well under 1 MiB.
            max_body_bytes: 8 << 20,
            // 1,000 pages of 100 is 100,000 instances in one region of one product.
            max_pages: 1_000,
        }
    }
}

/// One API call. `params` are the API's own parameters; the client adds the common ones and signs.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// Endpoint product code (`ecs`, `r-kvstore`, ...), used to pick the host.
    pub product: &'static str,
    pub version: &'static str,
    pub action: &'static str,
    /// Region whose endpoint serves the call.
    pub region: String,
    pub params: Vec<(String, String)>,
    /// Reads, and writes that carry an idempotency token, may be retried after an ambiguous failure.
    pub idempotent: bool,
    /// The answer may be megabytes (a whole region's list): its connection is closed after it, not pooled.
    pub large_answer: bool,
}

impl ApiRequest {
    pub fn new(product: &'static str, version: &'static str, action: &'static str, region: &str) -> Self {
        ApiRequest {
            product,
            version,
            action,
            region: region.to_string(),
            params: Vec::new(),
            idempotent: true,
            large_answer: false,
        }
    }

    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }

    /// Marks a call that changes state and has no idempotency token.
    pub fn mutating(mut self) -> Self {
        self.idempotent = false;
        self
    }

    /// Marks a call whose answer may be megabytes: at most `LARGE_ANSWERS_IN_FLIGHT` of them at once, and the
    /// connection is closed after the answer. hyper keeps a pooled connection's read buffer at the size of the
    /// largest answer it carried (up to about 400 KB) for as long as the connection lives (benchmark, 100k
    /// scenario: Kafka's whole-region lists left that on each of their connections, most of 13 MB of
    /// connection buffers at the peak).
    pub fn large_answer(mut self) -> Self {
        self.large_answer = true;
        self
    }
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// Shared by the clients of one organisation run ([`Client::for_credentials`]).
    transport: Arc<Transport>,
    /// Asked before every request: temporary credentials are refreshed by their source during a run.
    credentials: Arc<dyn CredentialSource>,
    endpoints: Endpoints,
    retry: RetryPolicy,
    per_endpoint_concurrency: usize,
    limits: Mutex<BTreeMap<String, Arc<AdaptiveLimit>>>,
    calls: Mutex<BTreeMap<String, u64>>,
}

/// The connections and the run-wide bounds on them.
struct Transport {
    http: reqwest::Client,
    /// Calls in flight across every endpoint (`CallLimits::total`).
    in_flight: tokio::sync::Semaphore,
    /// Calls with a large answer in flight (`ApiRequest::large_answer`), whatever their endpoint.
    large_in_flight: tokio::sync::Semaphore,
}

/// Answers that may be megabytes (a whole region's list) being read at once, across every endpoint: each is
/// held whole while it is parsed (benchmark, 100k scenario: ten regions' Kafka pre-flights at once held 11 MB).
const LARGE_ANSWERS_IN_FLIGHT: usize = 2;

/// The credentials as they may appear in an answer: raw, percent-encoded, and percent-encoded twice (as in a
/// string to sign that quotes a canonical query). Every error is redacted of the forms of the credentials its
/// request was signed with before it leaves.
fn secret_forms(credentials: &Credentials) -> Vec<String> {
    let mut forms = Vec::new();
    for raw in credentials.secrets().into_iter().chain([credentials.access_key_id.as_str()]) {
        let once = super::sign::percent_encode(raw);
        let twice = super::sign::percent_encode(&once);
        forms.extend([raw.to_string(), once, twice]);
    }
    // Longest first, so a form that contains another is replaced whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("credentials", &self.inner.credentials.describe()).finish_non_exhaustive()
    }
}

/// Installs the ring crypto provider for rustls once per process (reqwest 0.13 with `rustls-no-provider`).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Client {
    /// A client that signs with fixed credentials.
    pub fn new(
        credentials: Credentials,
        endpoints: Endpoints,
        retry: RetryPolicy,
        limits: CallLimits,
    ) -> Result<Self, ApiError> {
        Self::with_source(Arc::new(credentials), endpoints, retry, limits)
    }

    /// A client that asks `credentials` before every request.
    pub fn with_source(
        credentials: Arc<dyn CredentialSource>,
        endpoints: Endpoints,
        retry: RetryPolicy,
        limits: CallLimits,
    ) -> Result<Self, ApiError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(retry.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("aliyun-janitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Transport {
                action: "client setup".into(),
                message: e.without_url().to_string(),
                timeout: false,
            })?;
        let transport = Arc::new(Transport {
            http,
            in_flight: tokio::sync::Semaphore::new(limits.total.max(1)),
            large_in_flight: tokio::sync::Semaphore::new(LARGE_ANSWERS_IN_FLIGHT),
        });
        Ok(Client::over(transport, credentials, endpoints, retry, limits.per_endpoint))
    }

    fn over(
        transport: Arc<Transport>,
        credentials: Arc<dyn CredentialSource>,
        endpoints: Endpoints,
        retry: RetryPolicy,
        per_endpoint: usize,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                transport,
                credentials,
                endpoints,
                retry,
                per_endpoint_concurrency: per_endpoint.max(1),
                limits: Mutex::new(BTreeMap::new()),
                calls: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// A client for other credentials (another account of an organisation) over this one's connections and
    /// run-wide bounds: one pool and one `concurrency.total` for every account in flight, not one each
    /// (organisation benchmark: 64 accounts at once, each with its own pool, peaked at 85 MiB). The per-endpoint
    /// limits and call counts are its own: throttling is per account.
    pub fn for_credentials(&self, credentials: Arc<dyn CredentialSource>) -> Client {
        let i = &self.inner;
        Client::over(i.transport.clone(), credentials, i.endpoints.clone(), i.retry.clone(), i.per_endpoint_concurrency)
    }

    /// How many calls of one endpoint a caller keeps going at once: a few more than the endpoint admits, so it
    /// never idles, but not hundreds of waiting calls held in memory (benchmark: peak memory).
    pub fn queue_depth(&self) -> usize {
        self.inner.per_endpoint_concurrency.saturating_mul(2).max(1)
    }

    /// Requests allowed in flight per endpoint (before any throttling back-off).
    pub fn per_endpoint_concurrency(&self) -> usize {
        self.inner.per_endpoint_concurrency
    }

    /// The retry schedule every call follows (the release reconciliation re-sends within it too).
    pub fn retry_schedule(&self) -> crate::retry::Schedule {
        self.inner.retry.schedule()
    }

    /// Pages a listing may take before its scope fails (`RetryPolicy::max_pages`).
    pub fn max_pages(&self) -> usize {
        self.inner.retry.max_pages
    }

    /// Where the credentials come from (for the run banner).
    pub fn credential_source(&self) -> String {
        self.inner.credentials.describe()
    }

    /// The endpoints this client sends to.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// Every request to `product` in `region` goes to a loopback address (after every override).
    pub fn is_loopback(&self, product: &str, region: &str) -> bool {
        self.inner.endpoints.is_loopback(product, region)
    }

    /// Calls made so far, by `product:Action` (every attempt counts).
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.inner.calls.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Calls an API and deserializes the answer, naming the offending field when the shape is wrong.
    /// The body goes straight into `T` (no intermediate JSON tree): listing pages are the bulk of a run's CPU.
    pub async fn call_json<T: DeserializeOwned>(&self, req: &ApiRequest) -> Result<T, ApiError> {
        let body = self.call_body(req).await?;
        let mut de = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| ApiError::Shape {
            action: req.action.to_string(),
            detail: format!("at `{}`: {}", e.path(), e.inner()),
        })
    }

    /// Calls an API with retries and returns the JSON body of a successful answer.
    pub async fn call(&self, req: &ApiRequest) -> Result<Value, ApiError> {
        let body = self.call_body(req).await?;
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::Shape { action: req.action.into(), detail: "body is not valid JSON".into() })
    }

    /// Calls an API with retries; the body of a successful answer, already checked to be a JSON object
    /// that is not a business-envelope failure.
    async fn call_body(&self, req: &ApiRequest) -> Result<Vec<u8>, ApiError> {
        let start = Instant::now();
        let retriable = |err: &ApiError| {
            // A mutating call without an idempotency token is sent again only when it cannot have run.
            let may_retry = if req.idempotent { err.is_retryable() } else { never_reached_the_service(err) };
            match (may_retry, err.is_throttling()) {
                (false, _) => Retriable::No,
                (true, true) => Retriable::Throttled,
                (true, false) => Retriable::Yes,
            }
        };
        let on_retry = |err: &ApiError, attempt: u32, delay: Duration| {
            tracing::debug!(action = req.action, attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
        };
        match retry::run(&self.inner.retry.schedule(), |_, _| self.redacted_attempt(req), retriable, on_retry).await {
            Ok((body, attempt)) => {
                tracing::debug!(
                    action = req.action,
                    region = req.region,
                    attempt,
                    ms = start.elapsed().as_secs_f64() * 1e3,
                    "call done"
                );
                Ok(body)
            }
            // A final answer that is not retriable is the answer, however many throttled attempts came before
            // it: a passing dry run after a throttled one is still a passing dry run (found by the fault matrix).
            Err(f) if f.gave_up == GaveUp::NotRetriable => Err(f.error),
            // A budget spent is reported as exhausted even after one attempt: the caller asked for retries.
            Err(f) if f.attempts > 1 || f.gave_up == GaveUp::Budget => Err(exhausted(req, f.attempts, f.error)),
            Err(f) => Err(f.error),
        }
    }

    /// One attempt, its error redacted of the credentials before anything (a retry log line included) sees it.
    async fn redacted_attempt(&self, req: &ApiRequest) -> Result<Vec<u8>, ApiError> {
        let credentials = self
            .inner
            .credentials
            .current()
            .await
            .map_err(|message| ApiError::Credentials { action: req.action.to_string(), message })?;
        self.attempt(req, &credentials).await.map_err(|e| e.redacted(&secret_forms(&credentials)))
    }

    /// The limiter of the endpoint that serves `req`. Keyed by the real Alibaba host even when an override
    /// (the emulator) receives everything, so the bound means the same against the emulator as in production.
    fn limit(&self, req: &ApiRequest) -> Arc<AdaptiveLimit> {
        let host = super::endpoint::default_host(req.product, &req.region);
        let mut limits = self.inner.limits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        limits
            .entry(host)
            .or_insert_with(|| {
                Arc::new(AdaptiveLimit::new(self.inner.per_endpoint_concurrency, self.inner.retry.throttle_pause()))
            })
            .clone()
    }

    /// Each endpoint's limiter so far, by host: the bound now, the lowest reached, and throttling cuts.
    pub fn limit_stats(&self) -> BTreeMap<String, LimitStats> {
        let limits = self.inner.limits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        limits.iter().map(|(host, l)| (host.clone(), l.stats())).collect()
    }

    fn count(&self, req: &ApiRequest) {
        if let Ok(mut calls) = self.inner.calls.lock() {
            *calls.entry(format!("{}:{}", req.product, req.action)).or_default() += 1;
        }
    }

    async fn attempt(&self, req: &ApiRequest, credentials: &Credentials) -> Result<Vec<u8>, ApiError> {
        let base_url = self.inner.endpoints.base_url(req.product, &req.region);
        let permit = self.limit(req).acquire().await;
        // Closed never (the semaphores live as long as the client), so the error arm cannot happen.
        let _large = match req.large_answer {
            true => self.inner.transport.large_in_flight.acquire().await.ok(),
            false => None,
        };
        let _in_flight = self.inner.transport.in_flight.acquire().await.ok();
        self.count(req);
        let query = signed_query(req, credentials, "POST");
        let url = format!("{base_url}/?{query}");
        let transport = |e: reqwest::Error| ApiError::Transport {
            action: req.action.to_string(),
            timeout: e.is_timeout(),
            // without_url: the URL holds the signature and the STS token.
            message: describe_transport(&e.without_url()),
        };
        let mut request =
            self.inner.transport.http.post(url).header("content-type", "application/x-www-form-urlencoded");
        if req.large_answer {
            request = request.header("connection", "close");
        }
        let resp = request.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let body = read_capped(resp, self.inner.retry.max_body_bytes, req.action).await?;
        let checked = check_response(req.action, status, &body);
        match &checked {
            Err(e) if e.is_throttling() => permit.throttled(),
            // A refusal about the request (a passing dry run is one) still shows the endpoint keeping up.
            Ok(()) | Err(ApiError::Service { status: 400..=499, .. }) => permit.succeeded(),
            Err(_) => {}
        }
        checked.map(|()| body)
    }
}

/// The body, read chunk by chunk and refused past `max` bytes (a `Content-Length` above it is refused at once).
async fn read_capped(mut resp: reqwest::Response, max: usize, action: &str) -> Result<Vec<u8>, ApiError> {
    let too_big = || ApiError::Shape { action: action.into(), detail: format!("answer larger than {max} bytes") };
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    // Sized once when the length is announced (already checked against `max`): no doubling on the way.
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(too_big());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                let timeout = e.is_timeout();
                return Err(ApiError::Transport {
                    action: action.into(),
                    message: describe_transport(&e.without_url()),
                    timeout,
                });
            }
        }
    }
}

fn describe_transport(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_connect() {
        msg.insert_str(0, "connect: ");
    }
    msg
}

/// A connection that was refused, or a request the service explicitly throttled, never ran:
/// even a non-idempotent call may be sent again.
fn never_reached_the_service(err: &ApiError) -> bool {
    match err {
        ApiError::Transport { message, timeout: false, .. } => message.starts_with("connect: "),
        e => e.is_throttling(),
    }
}

fn exhausted(req: &ApiRequest, attempts: u32, last: ApiError) -> ApiError {
    ApiError::Exhausted { action: req.action.to_string(), attempts, last: Box::new(last) }
}

/// Common parameters + API parameters + `Signature`, as a query string.
pub(crate) fn signed_query(req: &ApiRequest, creds: &Credentials, method: &str) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("Action".into(), req.action.into()),
        ("Version".into(), req.version.into()),
        ("Format".into(), "JSON".into()),
        ("AccessKeyId".into(), creds.access_key_id.clone()),
        ("SignatureMethod".into(), "HMAC-SHA1".into()),
        ("SignatureVersion".into(), "1.0".into()),
        ("SignatureNonce".into(), uuid::Uuid::new_v4().to_string()),
        ("Timestamp".into(), chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
    ];
    if let Some(token) = creds.security_token() {
        params.push(("SecurityToken".into(), token.into()));
    }
    params.extend(req.params.iter().cloned());
    let signature = sign::signature(method, &params, creds.secret());
    params.push(("Signature".into(), signature));
    params
        .iter()
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Turns an HTTP answer into JSON or a typed error. Business envelopes (Kafka, BSS) report
/// failures inside a 200 body with `Success: false`; those are errors too (reference section 2).
#[cfg(test)]
pub(crate) fn parse_response(action: &str, status: u16, body: &[u8]) -> Result<Value, ApiError> {
    check_response(action, status, body)?;
    serde_json::from_slice(body)
        .map_err(|_| ApiError::Shape { action: action.into(), detail: "body is not valid JSON".into() })
}

/// The fields of a successful answer that say whether it really succeeded; everything else is skipped
/// without being built, so checking a large page costs one scan.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(rename = "Success", default)]
    success: Option<Value>,
    #[serde(rename = "Code", default)]
    code: Option<Value>,
    #[serde(rename = "Message", default)]
    message: Option<Value>,
    #[serde(rename = "RequestId", default)]
    request_id: Option<Value>,
}

/// Turns an HTTP answer into `Ok` or a typed error. Business envelopes (Kafka, BSS) report
/// failures inside a 200 body with `Success: false`; those are errors too (reference section 2).
pub(crate) fn check_response(action: &str, status: u16, body: &[u8]) -> Result<(), ApiError> {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if (200..300).contains(&status) {
        if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
            let detail = if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
                "body is not a JSON object"
            } else {
                "body is not valid JSON"
            };
            return Err(ApiError::Shape { action: action.into(), detail: detail.into() });
        }
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| ApiError::Shape {
            action: action.into(),
            detail: if e.is_data() { "body is not a JSON object".into() } else { "body is not valid JSON".into() },
        })?;
        let failed = match &envelope.success {
            Some(Value::Bool(b)) => !b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("false"),
            _ => false,
        };
        if failed {
            return Err(ApiError::Service {
                action: action.into(),
                status,
                code: text(envelope.code.as_ref()),
                message: super::error::service_message(&text(envelope.message.as_ref())),
                request_id: text(envelope.request_id.as_ref()),
            });
        }
        return Ok(());
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed {
        Some(v) if v.get("Code").is_some() => Err(ApiError::Service {
            action: action.into(),
            status,
            code: text(v.get("Code")),
            message: super::error::service_message(&text(v.get("Message"))),
            request_id: text(v.get("RequestId")),
        }),
        _ => Err(ApiError::Http { action: action.into(), status }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_keeps_the_code() {
        let e = parse_response(
            "DeleteInstances",
            403,
            br#"{"Code":"IncorrectInstanceStatus","Message":"m","RequestId":"r-1"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("IncorrectInstanceStatus"));
        assert_eq!(e.request_id(), Some("r-1"));
    }

    #[test]
    fn business_envelope_failure_is_an_error() {
        let e = parse_response(
            "ReleaseInstance",
            200,
            br#"{"Code":"ONS_SYSTEM_ERROR","Success":false,"Message":"x","RequestId":"r"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("ONS_SYSTEM_ERROR"));
        let e = parse_response("ReleaseInstance", 200, br#"{"Code":500,"Success":"false"}"#).unwrap_err();
        assert_eq!(e.code(), Some("500"));
        assert!(parse_response("ReleaseInstance", 200, br#"{"Code":200,"Success":true}"#).is_ok());
    }

    #[test]
    fn non_json_errors() {
        assert_eq!(
            parse_response("A", 502, b"<html>").unwrap_err(),
            ApiError::Http { action: "A".into(), status: 502 }
        );
        assert!(matches!(parse_response("A", 200, b"{\"trunc"), Err(ApiError::Shape { .. })));
        for body in [&b"[1]"[..], b"1", b"\"s\"", b"null", b""] {
            assert!(matches!(parse_response("A", 200, body), Err(ApiError::Shape { .. })), "{body:?}");
        }
        assert!(
            parse_response("A", 200, br#"{"Instances":{"Instance":[{"Success":false}]}}"#).is_ok(),
            "only the top level counts"
        );
    }

    #[test]
    fn signed_query_carries_token_and_verifies() {
        let creds = Credentials::new("id", "secret", Some("tok".into()));
        let req =
            ApiRequest::new("ecs", "2014-05-26", "DescribeInstances", "cn-hangzhou").param("RegionId", "cn-hangzhou");
        let q = signed_query(&req, &creds, "POST");
        let pairs: Vec<(String, String)> = q
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (sign::percent_decode(k, false).unwrap(), sign::percent_decode(v, false).unwrap())
            })
            .collect();
        let sig = pairs.iter().find(|(k, _)| k == "Signature").unwrap().1.clone();
        assert_eq!(sign::signature("POST", &pairs, "secret"), sig);
        assert!(pairs.iter().any(|(k, v)| k == "SecurityToken" && v == "tok"));
    }
}

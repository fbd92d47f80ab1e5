//! The emulator itself, over loopback HTTP: requests signed as the SDKs sign them (with the emulator's own
//! signer, which its unit tests check against the official vectors) must be judged exactly as the real service
//! would judge them. No janitor code: `Client` below is the smallest signed RPC client, all parameters in the
//! query of a POST, as reference section 1.1 recommends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aliyun_sim::signature as sign;
use aliyun_sim::{self as sim, CallRecord, Sim, SimOptions};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../../tests/fixtures/inventory/ecs-mixed.json");
const KEY: &str = "LTAI5tSimJanitorKey01";
const SECRET: &str = "sim-secret-Zq8v1bW";
const STS_KEY: &str = "STS.NSimJanitorTmpKey02";
const STS_SECRET: &str = "sim-sts-secret-4Kp2";
const STS_TOKEN: &str = "CAISsimjanitortoken000000000000000000000000000000";
const ECS: &str = "2014-05-26";
/// Ids of the fixture's cn-hangzhou instances, sorted.
const HANGZHOU: usize = 14;

async fn start_with(inventory: &str, opts: SimOptions) -> (Sim, String) {
    let sim = Sim::from_inventory_json(inventory, opts).expect("inventory loads");
    // The fixture's subscription dates are far from this either way; pin it anyway.
    sim.set_clock(Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()));
    let url = sim::spawn(sim.clone()).await.expect("emulator starts");
    (sim, url)
}

async fn start() -> (Sim, String) {
    start_with(FIXTURE, SimOptions::default()).await
}

struct Credentials {
    key: String,
    secret: String,
    token: Option<String>,
}

impl Credentials {
    fn new(key: &str, secret: &str, token: Option<String>) -> Self {
        Credentials { key: key.into(), secret: secret.into(), token }
    }
}

/// One API call: the API's own parameters (`RegionId` included when the API has it).
#[derive(Clone)]
struct ApiRequest {
    version: String,
    action: String,
    params: Vec<(String, String)>,
}

impl ApiRequest {
    /// `product` and `region` name the endpoint; against the emulator every product shares one URL.
    fn new(_product: &str, version: &str, action: &str, _region: &str) -> Self {
        ApiRequest { version: version.into(), action: action.into(), params: Vec::new() }
    }

    fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }
}

/// How a call failed: the service's error document, or a success status with a body that is not a JSON object.
#[derive(Debug)]
enum ApiError {
    Service { status: u16, code: String, message: String },
    Malformed,
}

struct Client {
    url: String,
    creds: Credentials,
}

impl Client {
    /// Signs and sends `req` as a POST with every parameter in the query (reference 1.1, "GET vs POST").
    async fn call(&self, req: &ApiRequest) -> Result<Value, ApiError> {
        let mut params: BTreeMap<String, String> = req.params.iter().cloned().collect();
        let nonce = uuid::Uuid::new_v4().to_string();
        for (k, v) in [
            ("Action", req.action.as_str()),
            ("Version", req.version.as_str()),
            ("Format", "JSON"),
            ("AccessKeyId", self.creds.key.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce.as_str()),
            ("Timestamp", &now_stamp()),
        ] {
            params.insert(k.into(), v.into());
        }
        if let Some(token) = &self.creds.token {
            params.insert("SecurityToken".into(), token.clone());
        }
        let signature = sign::signature("POST", &params, &self.creds.secret);
        params.insert("Signature".into(), signature);
        let pairs: Vec<(String, String)> = params.into_iter().collect();
        let (status, body) = post(&self.url, &encode(&pairs)).await;
        match (status, body) {
            (200..=299, v @ Value::Object(_)) => Ok(v),
            (status, Value::Object(v)) if status >= 400 => Err(ApiError::Service {
                status,
                code: v.get("Code").and_then(Value::as_str).unwrap_or_default().to_string(),
                message: v.get("Message").and_then(Value::as_str).unwrap_or_default().to_string(),
            }),
            _ => Err(ApiError::Malformed),
        }
    }
}

fn client_as(url: &str, creds: Credentials) -> Client {
    Client { url: url.to_string(), creds }
}

fn client(url: &str) -> Client {
    client_as(url, Credentials::new(KEY, SECRET, None))
}

fn describe(region: &str) -> ApiRequest {
    ApiRequest::new("ecs", ECS, "DescribeInstances", region).param("RegionId", region)
}

fn delete(region: &str, ids: &[&str]) -> ApiRequest {
    let mut req = ApiRequest::new("ecs", ECS, "DeleteInstances", region).param("RegionId", region);
    for (n, id) in ids.iter().enumerate() {
        req = req.param(format!("InstanceId.{}", n + 1), *id);
    }
    req
}

fn code(r: Result<Value, ApiError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(ApiError::Service { code, .. }) => code,
        Err(ApiError::Malformed) => "MalformedResponse".into(),
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["Instances"]["Instance"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["InstanceId"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// ---- hand-signed requests, for what our client never does on purpose ----

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn now_stamp() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Common parameters for `action`, plus `extra`; unsigned.
fn params(action: &str, key: &str, timestamp: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let nonce = uuid::Uuid::new_v4().to_string();
    [
        ("Action", action),
        ("Version", ECS),
        ("Format", "JSON"),
        ("AccessKeyId", key),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce.as_str()),
        ("Timestamp", timestamp),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs `pairs` for `method` and returns the query string with `Signature`.
fn signed(method: &str, pairs: &[(String, String)], secret: &str) -> String {
    let mut all = pairs.to_vec();
    all.push(("Signature".into(), sign::signature(method, &pairs.iter().cloned().collect(), secret)));
    encode(&all)
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

async fn post(url: &str, query: &str) -> (u16, Value) {
    send(http().post(format!("{url}/?{query}")).header("content-type", "application/x-www-form-urlencoded")).await
}

// ---- authentication ----

#[tokio::test]
async fn good_signature_is_accepted_by_post_get_and_form_body() {
    let (_sim, url) = start().await;
    let v = client(&url).call(&describe("cn-hangzhou").param("MaxResults", "100")).await.expect("signed call succeeds");
    assert_eq!(ids(&v).len(), HANGZHOU);
    assert!(v["RequestId"].as_str().is_some_and(|r| !r.is_empty()));

    let get = params("DescribeInstances", KEY, &now_stamp(), &[("RegionId", "cn-shanghai")]);
    let (status, v) = send(http().get(format!("{url}/?{}", signed("GET", &get, SECRET)))).await;
    assert_eq!((status, ids(&v).len()), (200, 3), "{v}");

    // Common parameters in the query, API parameters in a form body: the signature covers the union.
    let mut all = params("DescribeInstances", KEY, &now_stamp(), &[]);
    let body = [
        ("RegionId".to_string(), "ap-southeast-1".to_string()),
        ("InstanceIds".to_string(), r#"["i-t4npayg0stopped01"]"#.to_string()),
    ];
    all.extend(body.iter().cloned());
    let sig = sign::signature("POST", &all.iter().cloned().collect(), SECRET);
    let mut query = all[..all.len() - body.len()].to_vec();
    query.push(("Signature".into(), sig));
    let form = body
        .iter()
        .map(|(k, v)| {
            format!("{k}={}", v.replace(' ', "+").replace('"', "%22").replace('[', "%5B").replace(']', "%5D"))
        })
        .collect::<Vec<_>>()
        .join("&");
    let (status, v) = send(
        http()
            .post(format!("{url}/?{}", encode(&query)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    )
    .await;
    assert_eq!((status, ids(&v)), (200, vec!["i-t4npayg0stopped01".to_string()]), "{v}");
}

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match_with_the_server_string_to_sign() {
    let (_sim, url) = start().await;
    let wrong = client_as(&url, Credentials::new(KEY, "not-the-secret", None));
    assert_eq!(code(wrong.call(&describe("cn-hangzhou")).await), "SignatureDoesNotMatch");

    let pairs = params("DescribeInstances", KEY, &now_stamp(), &[("RegionId", "cn-hangzhou")]);
    let (status, v) = post(&url, &signed("POST", &pairs, "not-the-secret")).await;
    assert_eq!((status, v["Code"].as_str()), (400, Some("SignatureDoesNotMatch")));
    let expected =
        format!("server string to sign is:{}", sign::string_to_sign("POST", &pairs.iter().cloned().collect()));
    assert!(v["Message"].as_str().is_some_and(|m| m.ends_with(&expected)), "{v}");
    for field in ["RequestId", "HostId", "Code", "Message"] {
        assert!(v[field].is_string(), "error document lacks {field}: {v}");
    }
    // Signed for GET, sent as POST: the method is part of the string to sign.
    let (_, v) =
        post(&url, &signed("GET", &params("DescribeInstances", KEY, &now_stamp(), &[("RegionId", "r")]), SECRET)).await;
    assert_eq!(v["Code"], "SignatureDoesNotMatch");
}

#[tokio::test]
async fn replayed_nonce_is_refused() {
    let (_sim, url) = start().await;
    let query = signed("POST", &params("DescribeInstances", KEY, &now_stamp(), &[("RegionId", "cn-hangzhou")]), SECRET);
    assert_eq!(post(&url, &query).await.0, 200);
    let (status, v) = post(&url, &query).await;
    assert_eq!((status, v["Code"].as_str()), (400, Some("SignatureNonceUsed")));
}

#[tokio::test]
async fn stale_or_malformed_timestamps_are_refused() {
    let (_sim, url) = start().await;
    let stale = (Utc::now() - chrono::Duration::minutes(16)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (status, v) =
        post(&url, &signed("POST", &params("DescribeInstances", KEY, &stale, &[("RegionId", "r")]), SECRET)).await;
    assert_eq!((status, v["Code"].as_str()), (400, Some("InvalidTimeStamp.Expired")));
    let future = (Utc::now() + chrono::Duration::minutes(16)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (_, v) =
        post(&url, &signed("POST", &params("DescribeInstances", KEY, &future, &[("RegionId", "r")]), SECRET)).await;
    assert_eq!(v["Code"], "InvalidTimeStamp.Expired");
    let slightly_off = (Utc::now() - chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(
        post(&url, &signed("POST", &params("DescribeInstances", KEY, &slightly_off, &[("RegionId", "r")]), SECRET))
            .await
            .0,
        200
    );
    let minutes_only = Utc::now().format("%Y-%m-%dT%H:%MZ").to_string();
    let (status, v) =
        post(&url, &signed("POST", &params("DescribeInstances", KEY, &minutes_only, &[("RegionId", "r")]), SECRET))
            .await;
    assert_eq!((status, v["Code"].as_str()), (400, Some("InvalidTimeStamp.Format")));
}

#[tokio::test]
async fn missing_parameters_unknown_keys_and_unknown_actions() {
    let (_sim, url) = start().await;
    let without_nonce: Vec<_> = params("DescribeInstances", KEY, &now_stamp(), &[("RegionId", "r")])
        .into_iter()
        .filter(|(k, _)| k != "SignatureNonce")
        .collect();
    let (status, v) = post(&url, &signed("POST", &without_nonce, SECRET)).await;
    assert_eq!((status, v["Code"].as_str()), (400, Some("MissingParameter")));
    assert!(v["Message"].as_str().is_some_and(|m| m.contains("SignatureNonce")), "{v}");

    let (status, v) = post(
        &url,
        &signed("POST", &params("DescribeInstances", "LTAI-nobody", &now_stamp(), &[("RegionId", "r")]), SECRET),
    )
    .await;
    assert_eq!((status, v["Code"].as_str()), (404, Some("InvalidAccessKeyId.NotFound")));

    let (status, v) =
        post(&url, &signed("POST", &params("RunInstances", KEY, &now_stamp(), &[("RegionId", "r")]), SECRET)).await;
    assert_eq!((status, v["Code"].as_str()), (404, Some("InvalidAction.NotFound")));
    let other_version = ApiRequest::new("ecs", "2099-01-01", "DescribeInstances", "r").param("RegionId", "r");
    assert_eq!(code(client(&url).call(&other_version).await), "InvalidAction.NotFound");

    let sha256: Vec<_> = params("DescribeInstances", KEY, &now_stamp(), &[("RegionId", "r")])
        .into_iter()
        .map(|(k, v)| if k == "SignatureMethod" { (k, "HMAC-SHA256".to_string()) } else { (k, v) })
        .collect();
    let (status, v) = post(&url, &signed("POST", &sha256, SECRET)).await;
    assert_eq!((status, v["Code"].as_str()), (400, Some("InvalidSignatureMethod")));

    let (status, v) = post(&url, "Action=DescribeInstances&Version=2014-05-26&RegionId=%zz").await;
    assert_eq!((status, v["Code"].as_str()), (400, Some("InvalidParameter")));

    // Missing RegionId is the API's own MissingParameter, after authentication.
    let no_region = ApiRequest::new("ecs", ECS, "DescribeInstances", "cn-hangzhou");
    assert_eq!(code(client(&url).call(&no_region).await), "MissingParameter");
}

#[tokio::test]
async fn sts_credentials_need_their_token_and_never_reach_the_log() {
    let (sim, url) = start().await;
    let sts = client_as(&url, Credentials::new(STS_KEY, STS_SECRET, Some(STS_TOKEN.into())));
    assert_eq!(code(sts.call(&describe("cn-hangzhou")).await), "ok");
    let wrong = client_as(&url, Credentials::new(STS_KEY, STS_SECRET, Some("CAISforged".into())));
    assert_eq!(code(wrong.call(&describe("cn-hangzhou")).await), "InvalidSecurityToken.MismatchWithAccessKey");
    let none = client_as(&url, Credentials::new(STS_KEY, STS_SECRET, None));
    assert_eq!(code(none.call(&describe("cn-hangzhou")).await), "MissingSecurityToken");

    let log = http().get(format!("{url}/_sim/calls")).send().await.expect("calls").text().await.expect("body");
    for secret in [STS_TOKEN, STS_SECRET, STS_KEY, "CAISforged"] {
        assert!(!log.contains(secret), "call log leaks {secret}");
    }
    let calls: Vec<CallRecord> = serde_json::from_str(&log).expect("call log is JSON");
    assert_eq!(calls, sim.calls());
    assert_eq!(calls[0].params.get("SecurityToken").map(String::as_str), Some("<redacted>"));
    assert!(!calls[0].params.contains_key("Signature") || calls[0].params["Signature"] == "<redacted>");
}

// ---- listing ----

#[tokio::test]
async fn both_pagination_styles_return_every_instance_exactly_once() {
    let (_sim, url) = start().await;
    let c = client(&url);

    let mut by_token = Vec::new();
    let mut token = String::new();
    loop {
        let mut req = describe("cn-hangzhou").param("MaxResults", "4");
        if !token.is_empty() {
            req = req.param("NextToken", token.clone());
        }
        let v = c.call(&req).await.expect("page");
        let page = ids(&v);
        assert!(page.len() <= 4);
        by_token.extend(page);
        token = v["NextToken"].as_str().unwrap_or_default().to_string();
        if token.is_empty() {
            break;
        }
    }

    let mut by_number = Vec::new();
    for n in 1.. {
        let v = c
            .call(&describe("cn-hangzhou").param("PageNumber", n.to_string()).param("PageSize", "4"))
            .await
            .expect("page");
        assert_eq!(v["TotalCount"], HANGZHOU);
        let page = ids(&v);
        if page.is_empty() {
            break;
        }
        by_number.extend(page);
    }

    let mut unique = by_token.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(by_token.len(), HANGZHOU);
    assert_eq!(unique, by_token, "token pages are sorted by id without repeats");
    assert_eq!(by_number, by_token);

    assert_eq!(
        code(c.call(&describe("cn-hangzhou").param("NextToken", "not-a-token")).await),
        "InvalidParameter.NextToken"
    );
    assert_eq!(code(c.call(&describe("cn-hangzhou").param("PageSize", "101")).await), "InvalidParameter");
    let served =
        c.call(&describe("cn-hangzhou").param("InstanceIds", r#"["i-bp1sub0expired006"]"#)).await.expect("by id");
    let original: Value = serde_json::from_str::<Value>(FIXTURE).expect("fixture")["ecs"][5].clone();
    assert_eq!(served["Instances"]["Instance"][0], original, "instances are served verbatim");
}

#[tokio::test]
async fn describe_regions_lists_the_inventory_regions() {
    let (_sim, url) = start().await;
    let v = client(&url).call(&ApiRequest::new("ecs", ECS, "DescribeRegions", "cn-hangzhou")).await.expect("regions");
    let regions: Vec<&str> =
        v["Regions"]["Region"].as_array().expect("list").iter().filter_map(|r| r["RegionId"].as_str()).collect();
    assert_eq!(regions, ["ap-southeast-1", "cn-hangzhou", "cn-shanghai"]);
}

// ---- release ----

#[tokio::test]
async fn dry_run_passes_as_an_error_and_deletes_nothing() {
    let (sim, url) = start().await;
    let before = sim.instance_ids("ecs");
    let r = client(&url)
        .call(&delete("cn-hangzhou", &["i-bp1payg0stopped01", "i-bp1protected00003"]).param("DryRun", "true"))
        .await;
    match r {
        Err(ApiError::Service { status, code, message, .. }) => {
            assert_eq!((status, code.as_str()), (400, "DryRunOperation"));
            assert_eq!(message, "Request validation has been passed with DryRun flag set.");
        }
        other => panic!("expected DryRunOperation, got {other:?}"),
    }
    assert_eq!(sim.instance_ids("ecs"), before);
    assert!(sim.release_calls().is_empty(), "a dry run is not a release call");
    assert!(sim.calls().last().is_some_and(|c| c.dry_run && c.code.as_deref() == Some("DryRunOperation")));
}

#[tokio::test]
async fn refusals_name_protection_status_and_charge_type_and_batches_are_atomic() {
    let (sim, url) = start().await;
    let c = client(&url);
    let hz = "cn-hangzhou";
    let status_of = |r: Result<Value, ApiError>| match r {
        Err(ApiError::Service { status, code, .. }) => format!("{status} {code}"),
        Ok(_) => "200".into(),
        Err(e) => format!("{e:?}"),
    };
    assert_eq!(status_of(c.call(&delete(hz, &["i-nope"])).await), "404 InvalidInstanceId.NotFound");
    assert_eq!(
        status_of(c.call(&delete("cn-shanghai", &["i-bp1payg0stopped01"])).await),
        "404 InvalidInstanceId.NotFound"
    );
    assert_eq!(
        status_of(c.call(&delete(hz, &["i-bp1protected00003"])).await),
        "403 InvalidOperation.DeletionProtection"
    );
    assert_eq!(status_of(c.call(&delete(hz, &["i-bp1payg0running02"])).await), "403 IncorrectInstanceStatus");
    assert_eq!(
        status_of(c.call(&delete(hz, &["i-bp1pending0000007"]).param("Force", "true")).await),
        "403 IncorrectInstanceStatus"
    );
    assert_eq!(
        status_of(c.call(&delete(hz, &["i-bp1sub0active0005"]).param("TerminateSubscription", "true")).await),
        "403 ChargeTypeViolation"
    );
    assert_eq!(status_of(c.call(&delete(hz, &["i-bp1sub0expired006"])).await), "403 ChargeTypeViolation");

    // One refused id fails the whole batch and nothing goes.
    let batch = delete(hz, &["i-bp1payg0stopped01", "i-bp1fleet00000010", "i-bp1protected00003"]);
    assert_eq!(status_of(c.call(&batch).await), "403 InvalidOperation.DeletionProtection");
    assert!(sim.instance_ids("ecs").contains(&"i-bp1payg0stopped01".to_string()));

    // No lock refuses a release, `security` included (reference, corrections): the janitor's veto is the guard.
    assert_eq!(status_of(c.call(&delete(hz, &["i-bp1seclocked00004"])).await), "200");
    let ok = delete(hz, &["i-bp1payg0stopped01", "i-bp1payg0running02", "i-bp1sub0expired006"])
        .param("Force", "true")
        .param("TerminateSubscription", "true");
    assert_eq!(status_of(c.call(&ok).await), "200");
    let left = sim.instance_ids("ecs");
    for gone in ["i-bp1payg0stopped01", "i-bp1payg0running02", "i-bp1sub0expired006"] {
        assert!(!left.contains(&gone.to_string()), "{gone} should be gone");
    }
    assert_eq!(left.len(), 18 - 4);
    // Every real release attempt that reached the handler is logged, refused ones included.
    let releases = sim.release_calls();
    assert_eq!(releases.len(), 10);
    assert!(releases.iter().all(|r| r.action == "DeleteInstances" && !r.dry_run));
    assert_eq!(releases.last().map(|r| r.code.clone()), Some(None));
}

#[tokio::test]
async fn client_token_replays_the_first_answer_and_refuses_other_parameters() {
    let (sim, url) = start().await;
    let c = client(&url);
    let req = delete("cn-hangzhou", &["i-bp1fleet00000011", "i-bp1fleet00000012"])
        .param("ClientToken", "janitor-run-1-batch-1");
    let first = c.call(&req).await.expect("release");
    let again = c.call(&req).await.expect("replay succeeds even though the instances are gone");
    assert_eq!(first["RequestId"], again["RequestId"]);
    assert_eq!(sim.instance_ids("ecs").len(), 18 - 2);

    let other = delete("cn-hangzhou", &["i-bp1fleet00000013"]).param("ClientToken", "janitor-run-1-batch-1");
    assert_eq!(code(c.call(&other).await), "IdempotentParameterMismatch");
    assert!(sim.instance_ids("ecs").contains(&"i-bp1fleet00000013".to_string()));
    let codes: Vec<Option<String>> = sim.release_calls().into_iter().map(|r| r.code).collect();
    assert_eq!(codes, [None, None, Some("IdempotentParameterMismatch".to_string())]);
}

// ---- faults ----

#[tokio::test]
async fn throttle_rate_one_throttles_before_any_change() {
    let (sim, url) = start_with(FIXTURE, SimOptions { throttle_rate: 1.0, ..SimOptions::default() }).await;
    let r = client(&url).call(&delete("cn-hangzhou", &["i-bp1payg0stopped01"])).await;
    match r {
        Err(ApiError::Service { status, code, message, .. }) => {
            assert_eq!((status, code.as_str()), (400, "Throttling.User"));
            assert_eq!(message, "Request was denied due to user flow control.");
        }
        other => panic!("expected throttling, got {other:?}"),
    }
    assert_eq!(sim.instance_ids("ecs").len(), 18);
    assert!(sim.release_calls().is_empty(), "throttled calls never reach the handler");
    // Authentication still comes first.
    let wrong = client_as(&url, Credentials::new(KEY, "bad", None));
    assert_eq!(code(wrong.call(&describe("cn-hangzhou")).await), "SignatureDoesNotMatch");
}

#[tokio::test]
async fn error_rate_one_is_service_unavailable() {
    let (sim, url) = start_with(FIXTURE, SimOptions { error_rate: 1.0, ..SimOptions::default() }).await;
    match client(&url).call(&describe("cn-hangzhou")).await {
        Err(ApiError::Service { status, code, .. }) => assert_eq!((status, code.as_str()), (503, "ServiceUnavailable")),
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(sim.calls().last().map(|c| c.http_status), Some(503));
}

#[tokio::test]
async fn per_action_faults_fail_one_region_for_the_first_calls() {
    let mut inv: Value = serde_json::from_str(FIXTURE).expect("fixture");
    inv["faults"] = json!([
        {"action": "DescribeInstances", "region": "cn-shanghai", "code": "InternalError", "status": 500, "times": 2},
        {"action": "DescribeInstances", "region": "ap-southeast-1", "kind": "malformed", "times": null}
    ]);
    let (_sim, url) = start_with(&inv.to_string(), SimOptions::default()).await;
    let c = client(&url);
    assert_eq!(code(c.call(&describe("cn-shanghai")).await), "InternalError");
    assert_eq!(code(c.call(&describe("cn-hangzhou")).await), "ok");
    assert_eq!(code(c.call(&describe("cn-shanghai")).await), "InternalError");
    assert_eq!(code(c.call(&describe("cn-shanghai")).await), "ok");
    assert_eq!(code(c.call(&describe("ap-southeast-1")).await), "MalformedResponse");
    assert_eq!(code(c.call(&describe("ap-southeast-1")).await), "MalformedResponse");
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let (_sim, url) = start_with(FIXTURE, SimOptions { latency_ms: 150, ..SimOptions::default() }).await;
    let t = Instant::now();
    client(&url).call(&describe("cn-hangzhou")).await.expect("slow but fine");
    assert!(t.elapsed() >= Duration::from_millis(150));
}

// ---- inspection ----

#[tokio::test]
async fn inspection_endpoints_show_calls_and_current_inventory() {
    let (sim, url) = start().await;
    client(&url).call(&delete("cn-shanghai", &["i-uf6payg0stopped01"])).await.expect("release");
    let inv: Value =
        http().get(format!("{url}/_sim/instances")).send().await.expect("instances").json().await.expect("json");
    let listed: Vec<&str> =
        inv["ecs"].as_array().expect("ecs").iter().filter_map(|i| i["InstanceId"].as_str()).collect();
    assert_eq!(listed.len(), 17);
    assert!(!listed.contains(&"i-uf6payg0stopped01"));
    assert_eq!(listed, sim.instance_ids("ecs"));

    let calls: Vec<CallRecord> =
        http().get(format!("{url}/_sim/calls")).send().await.expect("calls").json().await.expect("json");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].action.as_str(), calls[0].version.as_str(), calls[0].http_status),
        ("DeleteInstances", ECS, 200)
    );
    assert_eq!(calls[0].params.get("InstanceId.1").map(String::as_str), Some("i-uf6payg0stopped01"));
    assert_eq!(calls[0].params.get("AccessKeyId").map(String::as_str), Some("<redacted>"));
}

#[test]
fn fixture_and_file_loading() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/inventory/ecs-mixed.json");
    let sim = Sim::from_inventory_file(&path, SimOptions::default()).expect("fixture loads");
    assert_eq!(sim.instance_ids("ecs").len(), 18);
    assert!(sim.instance_ids("kms").is_empty());
    let missing = Sim::from_inventory_file(std::path::Path::new("/nonexistent/inventory.json"), SimOptions::default())
        .expect_err("error");
    assert!(missing.to_string().contains("/nonexistent/inventory.json"));
    let bad = Sim::from_inventory_json(&FIXTURE.replace("\"Stopping\"", "\"Halting\""), SimOptions::default())
        .expect_err("error");
    assert!(bad.to_string().contains("ecs[7].Status"), "{bad}");
}

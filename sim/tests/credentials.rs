//! The emulator's STS, ECS metadata service and credentials URI over loopback HTTP, driven the way the official
//! credentials SDK drives the real ones (credentials-go `providers/ram_role_arn.go`, `oidc.go`, `ecs_ram_role.go`,
//! `uri.go`): the requests are built here by hand from those sources, with the emulator's own signer; no janitor code.

use std::collections::BTreeMap;
use std::time::Duration;

use aliyun_sim::signature as sign;
use aliyun_sim::{self as sim, CallRecord, IssuedCredential, Sim, SimOptions};
use chrono::Utc;
use serde_json::Value;

const KEY: &str = "LTAI5tSimStsKey01";
const SECRET: &str = "sim-sts-root-secret";
const ROLE: &str = "acs:ram::1234567890123456:role/aliyun-janitor";
const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1";
const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.c2lnbmF0dXJl";
const ECS: &str = "2014-05-26";
const STS: &str = "2015-04-01";

fn inventory(sts: &str) -> String {
    format!(
        r#"{{
        "credentials": [{{"access_key_id": "{KEY}", "access_key_secret": "{SECRET}", "user_name": "janitor"}}],
        "ecs": [{{"InstanceId": "i-a", "RegionId": "cn-hangzhou", "Status": "Stopped", "InstanceChargeType": "PostPaid"}}]
        {sts}
    }}"#
    )
}

fn with_sts(lifetime: &str) -> String {
    inventory(&format!(
        r#", "sts": {{"credential_lifetime_secs": {lifetime},
            "roles": [{{"arn": "{ROLE}", "trusted": ["{KEY}"], "oidc_provider_arn": "{PROVIDER}", "oidc_token": "{OIDC_TOKEN}"}}],
            "ecs_role": {{"name": "aliyun-janitor-ecs", "require_token": true}}}}"#
    ))
}

async fn start(inventory: &str) -> (Sim, String) {
    let sim = Sim::from_inventory_json(inventory, SimOptions::default()).expect("inventory loads");
    let url = sim::spawn(sim.clone()).await.expect("emulator starts");
    (sim, url)
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn now_stamp() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn encode(pairs: &BTreeMap<String, String>) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// An access key: id, secret and, for a temporary one, its token.
#[derive(Clone, Debug)]
struct Key {
    id: String,
    secret: String,
    token: Option<String>,
}

impl Key {
    fn permanent() -> Self {
        Key { id: KEY.into(), secret: SECRET.into(), token: None }
    }

    /// From an answer's `AccessKeyId`, `AccessKeySecret`, `SecurityToken`.
    fn from(v: &Value) -> Self {
        let s = |f: &str| v[f].as_str().unwrap_or_else(|| panic!("{f} in {v}")).to_string();
        Key { id: s("AccessKeyId"), secret: s("AccessKeySecret"), token: Some(s("SecurityToken")) }
    }
}

/// A signed POST as credentials-go's `ram_role_arn.go` sends `AssumeRole`: common parameters (and `SecurityToken`)
/// in the query, the API's in a form body, the signature over both.
async fn call(url: &str, key: &Key, version: &str, action: &str, body: &[(&str, &str)]) -> (u16, Value) {
    let nonce = uuid::Uuid::new_v4().to_string();
    let stamp = now_stamp();
    let mut query = map(&[
        ("Version", version),
        ("Action", action),
        ("Format", "JSON"),
        ("Timestamp", &stamp),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", &nonce),
        ("AccessKeyId", &key.id),
    ]);
    if let Some(token) = &key.token {
        query.insert("SecurityToken".into(), token.clone());
    }
    let form = map(body);
    let mut all = query.clone();
    all.extend(form.clone());
    query.insert("Signature".into(), sign::signature("POST", &all, &key.secret));
    let req = http()
        .post(format!("{url}/?{}", encode(&query)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form));
    answer(req).await
}

async fn describe(url: &str, key: &Key) -> (u16, Value) {
    call(url, key, ECS, "DescribeInstances", &[("RegionId", "cn-hangzhou")]).await
}

fn code(v: &Value) -> &str {
    v["Code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn assume_role_signed_like_credentials_go_then_the_credential_works_and_expires() {
    let (sim, url) = start(&with_sts("2")).await;
    let (status, v) = call(
        &url,
        &Key::permanent(),
        STS,
        "AssumeRole",
        &[("RoleArn", ROLE), ("RoleSessionName", "janitor-run"), ("DurationSeconds", "3600")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["RequestId"].is_string());
    assert_eq!(v["AssumedRoleUser"]["Arn"], "acs:ram::1234567890123456:role/aliyun-janitor/janitor-run");
    let tmp = Key::from(&v["Credentials"]);
    assert!(tmp.id.starts_with("STS."));
    let expiration = v["Credentials"]["Expiration"].as_str().unwrap();
    assert!(chrono::NaiveDateTime::parse_from_str(expiration, "%Y-%m-%dT%H:%M:%SZ").is_ok(), "{expiration}");

    assert_eq!(describe(&url, &tmp).await.0, 200);
    let (_, who) = call(&url, &tmp, STS, "GetCallerIdentity", &[]).await;
    assert_eq!(who["Arn"], "acs:ram::1234567890123456:assumed-role/aliyun-janitor/janitor-run");
    assert_eq!(who["IdentityType"], "AssumedRoleUser");
    let (_, me) = call(&url, &Key::permanent(), STS, "GetCallerIdentity", &[]).await;
    assert_eq!(
        (me["Arn"].as_str(), me["IdentityType"].as_str()),
        (Some("acs:ram::1234567890123456:user/janitor"), Some("RAMUser"))
    );

    // Wrong secret, missing token, unknown role, untrusted caller: the real codes.
    let forged = Key { secret: "guess".into(), ..tmp.clone() };
    assert_eq!(code(&describe(&url, &forged).await.1), "SignatureDoesNotMatch");
    let tokenless = Key { token: None, ..tmp.clone() };
    assert_eq!(code(&describe(&url, &tokenless).await.1), "MissingSecurityToken");
    let (status, v) = call(
        &url,
        &Key::permanent(),
        STS,
        "AssumeRole",
        &[("RoleArn", "acs:ram::1234567890123456:role/nope"), ("RoleSessionName", "x1")],
    )
    .await;
    assert_eq!((status, code(&v)), (404, "EntityNotExist.Role"));

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, v) = describe(&url, &tmp).await;
    assert_eq!((status, code(&v)), (403, "InvalidSecurityToken.Expired"));
    let listed: Vec<IssuedCredential> =
        http().get(format!("{url}/_sim/issued-credentials")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, sim.issued_credentials());
    assert_eq!((listed.len(), listed[0].expired, listed[0].source.as_str()), (1, true, "AssumeRole"));

    let log = http().get(format!("{url}/_sim/calls")).send().await.unwrap().text().await.unwrap();
    for secret in [tmp.secret.as_str(), tmp.token.as_deref().unwrap(), tmp.id.as_str(), SECRET] {
        assert!(!log.contains(secret), "call log leaks {secret}");
    }
}

#[tokio::test]
async fn assume_role_with_oidc_sent_anonymously_like_credentials_go() {
    let (sim, url) = start(&with_sts("null")).await;
    let oidc = |token: &'static str| {
        let stamp = now_stamp();
        let query =
            map(&[("Version", STS), ("Action", "AssumeRoleWithOIDC"), ("Format", "JSON"), ("Timestamp", &stamp)]);
        let form = map(&[
            ("RoleArn", ROLE),
            ("OIDCProviderArn", PROVIDER),
            ("OIDCToken", token),
            ("RoleSessionName", "credentials-go-1700000000"),
            ("DurationSeconds", "3600"),
        ]);
        http()
            .post(format!("{url}/?{}", encode(&query)))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept-encoding", "identity")
            .body(encode(&form))
    };
    let (status, v) = answer(oidc(OIDC_TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["OIDCTokenInfo"]["Subject"], "sa");
    assert_eq!(v["OIDCTokenInfo"]["VerificationInfo"], "Success");
    let tmp = Key::from(&v["Credentials"]);
    assert_eq!(describe(&url, &tmp).await.0, 200);

    let (status, v) = answer(oidc("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.Zm9yZ2Vk")).await;
    assert_eq!((status, code(&v)), (401, "AuthenticationFail.OIDCToken.InvalidSignature"));
    assert_eq!(sim.issued_credentials_count(), 1);

    let log = http().get(format!("{url}/_sim/calls")).send().await.unwrap().text().await.unwrap();
    assert!(!log.contains("eyJzdWIiOiJzYSJ9") && !log.contains("Zm9yZ2Vk"), "the call log holds an OIDC token");
    let calls: Vec<CallRecord> = serde_json::from_str(&log).unwrap();
    assert!(calls.iter().filter(|c| c.action == "AssumeRoleWithOIDC").all(|c| c.params["OIDCToken"] == "<redacted>"));
}

/// credentials-go `ecs_ram_role.go`: token, role name, role credentials.
#[tokio::test]
async fn ecs_metadata_role_credentials_with_imdsv2_enforced() {
    let (sim, url) = start(&with_sts("2")).await;
    let base = format!("{url}/latest/meta-data/ram/security-credentials/");
    let text = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.expect("request");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    };
    assert_eq!(text(http().get(&base)).await, (403, "403 - Forbidden".to_string()));
    let put = |ttl: &str| {
        http().put(format!("{url}/latest/api/token")).header("X-aliyun-ecs-metadata-token-ttl-seconds", ttl)
    };
    assert_eq!(text(put("21601")).await.0, 400);
    assert_eq!(text(http().put(format!("{url}/latest/api/token"))).await.0, 400);
    let (status, token) = text(put("21600")).await;
    assert_eq!(status, 200);
    let with_token = |u: &str| http().get(u).header("X-aliyun-ecs-metadata-token", token.clone());
    assert_eq!(text(with_token(&base)).await, (200, "aliyun-janitor-ecs".to_string()));
    assert_eq!(text(http().get(&base).header("X-aliyun-ecs-metadata-token", "forged")).await.0, 401);
    assert_eq!(text(with_token(&format!("{base}someone-else"))).await.0, 404);

    let (status, body) = text(with_token(&format!("{base}aliyun-janitor-ecs"))).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Code"], "Success");
    assert!(v["LastUpdated"].is_string() && v["Expiration"].is_string());
    let role = Key::from(&v);
    assert_eq!(describe(&url, &role).await.0, 200);
    let (_, who) = call(&url, &role, STS, "GetCallerIdentity", &[]).await;
    assert_eq!(who["Arn"], "acs:ram::1234567890123456:assumed-role/aliyun-janitor-ecs/aliyun-sim-ecs-instance");

    // Past its expiry the credential is refused, and the service hands out a new one.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(code(&describe(&url, &role).await.1), "InvalidSecurityToken.Expired");
    let (_, body) = text(with_token(&format!("{base}aliyun-janitor-ecs"))).await;
    let fresh = Key::from(&serde_json::from_str::<Value>(&body).unwrap());
    assert_ne!(fresh.id, role.id);
    assert_eq!(describe(&url, &fresh).await.0, 200);
    assert_eq!(sim.issued_credentials().iter().filter(|c| c.source == "EcsMetadata").count(), 2);
}

/// credentials-go `uri.go` (`ALIBABA_CLOUD_CREDENTIALS_URI`), and what an instance without a role answers.
#[tokio::test]
async fn credentials_uri_and_no_role_without_an_sts_section() {
    let (_sim, url) = start(&with_sts("null")).await;
    let (status, v) = answer(http().get(format!("{url}/_sim/credentials-uri"))).await;
    assert_eq!((status, code(&v)), (200, "Success"));
    assert!(v["Expiration"].is_string());
    assert_eq!(describe(&url, &Key::from(&v)).await.0, 200);

    let (_sim, bare) = start(&inventory("")).await;
    for req in [
        http().get(format!("{bare}/_sim/credentials-uri")),
        http().get(format!("{bare}/latest/meta-data/ram/security-credentials/")),
        http().put(format!("{bare}/latest/api/token")).header("X-aliyun-ecs-metadata-token-ttl-seconds", "60"),
    ] {
        assert_eq!(answer(req).await.0, 404);
    }
    // STS itself still answers for the inventory's key.
    let (status, me) = call(&bare, &Key::permanent(), STS, "GetCallerIdentity", &[]).await;
    assert_eq!((status, me["AccountId"].as_str()), (200, Some("1234567890123456")));
}

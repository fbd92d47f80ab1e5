//! Credentials served over plain HTTP: the ECS instance RAM role from the metadata service and
//! `ALIBABA_CLOUD_CREDENTIALS_URI`. Both answer `{"AccessKeyId", "AccessKeySecret", "SecurityToken",
//! "Expiration"}` (plus `"Code": "Success"` from the metadata service), as credentials-go `providers/ecs_ram_role.go`
//! and `providers/uri.go` read them.

use std::time::Duration;

use serde::Deserialize;

use super::{Fetch, Session};
use crate::aliyun::Credentials;

/// The metadata service (reference "Credentials"); [`ENV_METADATA_ENDPOINT`] overrides it for tests.
pub const METADATA_ENDPOINT: &str = "http://100.100.100.200";
/// Our override of the metadata service's base URL (the emulator serves it on loopback).
pub const ENV_METADATA_ENDPOINT: &str = "JANITOR_ECS_METADATA_ENDPOINT";
/// IMDSv2 session token lifetime asked for (credentials-go: 21600 s, the maximum).
const TOKEN_TTL_SECS: &str = "21600";
/// credentials-go gives the metadata service 1 s to connect and 1 s to answer: it is on the host's own network.
const METADATA_TIMEOUT: Duration = Duration::from_secs(1);
/// A credentials URI may be a remote service (credentials-go: 5 s connect, 10 s read).
const URI_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Served {
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

fn session_of(what: &str, body: &[u8], need_code: bool) -> Result<Session, String> {
    let s: Served = serde_json::from_slice(body).map_err(|e| {
        format!("{what}: the answer is not JSON credentials (line {}, column {})", e.line(), e.column())
    })?;
    if need_code && s.code.as_deref() != Some("Success") {
        return Err(format!("{what}: Code is {:?}, not Success", s.code.unwrap_or_default()));
    }
    let need =
        |v: Option<String>, f: &str| v.filter(|x| !x.is_empty()).ok_or_else(|| format!("{what}: no {f} in the answer"));
    let id = need(s.access_key_id, "AccessKeyId")?;
    let secret = need(s.access_key_secret, "AccessKeySecret")?;
    let token = need(s.security_token, "SecurityToken")?;
    let expiration = need(s.expiration, "Expiration")?;
    Session::temporary(Credentials::new(id, secret, Some(token)), &expiration).map_err(|e| format!("{what}: {e}"))
}

fn http(timeout: Duration) -> Result<reqwest::Client, String> {
    crate::aliyun::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| format!("HTTP client: {}", e.without_url()))
}

/// The instance's RAM role, IMDSv2 first: a session token from `PUT /latest/api/token`, sent as
/// `X-aliyun-ecs-metadata-token`. Without a token (an old host) IMDSv1 is used unless `imdsv1_disabled`
/// (`ALIBABA_CLOUD_IMDSV1_DISABLED=true`).
pub(crate) struct EcsRole {
    http: reqwest::Client,
    base: String,
    /// `ALIBABA_CLOUD_ECS_METADATA`, else asked from the service.
    role_name: Option<String>,
    imdsv1_disabled: bool,
}

impl EcsRole {
    pub fn new(base: Option<String>, role_name: Option<String>, imdsv1_disabled: bool) -> Result<EcsRole, String> {
        let base = base.unwrap_or_else(|| METADATA_ENDPOINT.to_string()).trim_end_matches('/').to_string();
        Ok(EcsRole { http: http(METADATA_TIMEOUT)?, base, role_name, imdsv1_disabled })
    }

    async fn token(&self) -> Result<Option<String>, String> {
        let sent = self
            .http
            .put(format!("{}/latest/api/token", self.base))
            .header("X-aliyun-ecs-metadata-token-ttl-seconds", TOKEN_TTL_SECS)
            .send()
            .await;
        let fallback = |why: String| if self.imdsv1_disabled { Err(why) } else { Ok(None) };
        match sent {
            Ok(r) if r.status().is_success() => match r.text().await {
                Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
                _ => fallback("the metadata token answer is empty".into()),
            },
            Ok(r) => fallback(format!("the metadata service refused a token: HTTP {}", r.status().as_u16())),
            Err(e) => fallback(format!("metadata service unreachable at {} ({})", self.base, e.without_url())),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Result<(u16, Vec<u8>), String> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("X-aliyun-ecs-metadata-token", t);
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("metadata service unreachable at {} ({})", self.base, e.without_url()))?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(|e| format!("metadata service: {}", e.without_url()))?;
        Ok((status, body.to_vec()))
    }
}

#[async_trait::async_trait]
impl Fetch for EcsRole {
    async fn fetch(&self) -> Result<Session, String> {
        const PATH: &str = "/latest/meta-data/ram/security-credentials/";
        let token = self.token().await?;
        let role = match &self.role_name {
            Some(r) => r.clone(),
            None => match self.get(PATH, token.as_deref()).await? {
                (200, body) => {
                    let name = String::from_utf8_lossy(&body).trim().to_string();
                    if name.is_empty() {
                        return Err("this ECS instance has no RAM role attached".into());
                    }
                    name
                }
                (404, _) => return Err("this ECS instance has no RAM role attached (metadata: 404)".into()),
                (status, _) => return Err(format!("the metadata service answered HTTP {status} for the role name")),
            },
        };
        match self.get(&format!("{PATH}{role}"), token.as_deref()).await? {
            (200, body) => session_of("ECS instance role", &body, true),
            (status, _) => Err(format!("the metadata service answered HTTP {status} for role `{role}`")),
        }
    }

    fn describe(&self) -> String {
        match &self.role_name {
            Some(r) => format!("ECS instance role {r}"),
            None => "ECS instance role".into(),
        }
    }
}

/// `ALIBABA_CLOUD_CREDENTIALS_URI`: a GET answered with temporary credentials.
pub(crate) struct Uri {
    http: reqwest::Client,
    url: url::Url,
}

impl Uri {
    pub fn new(url: &str) -> Result<Uri, String> {
        let url = url::Url::parse(url.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        Ok(Uri { http: http(URI_TIMEOUT)?, url })
    }

    /// The URL without query or credentials (a token in its query must not reach a log).
    fn shown(&self) -> String {
        format!("{}://{}{}", self.url.scheme(), self.url.host_str().unwrap_or_default(), self.url.path())
    }
}

#[async_trait::async_trait]
impl Fetch for Uri {
    async fn fetch(&self) -> Result<Session, String> {
        let what = format!("credentials URI {}", self.shown());
        let r = self.http.get(self.url.clone()).send().await.map_err(|e| format!("{what}: {}", e.without_url()))?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(|e| format!("{what}: {}", e.without_url()))?;
        if status != 200 {
            return Err(format!("{what}: HTTP {status}"));
        }
        session_of(&what, &body, false)
    }

    fn describe(&self) -> String {
        format!("credentials URI {}", self.shown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_credentials_need_every_field_and_success() {
        let ok = br#"{"Code":"Success","AccessKeyId":"STS.a","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2026-12-03T10:00:00Z"}"#;
        assert!(session_of("x", ok, true).is_ok());
        let failed = br#"{"Code":"Failed","AccessKeyId":"STS.a","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2026-12-03T10:00:00Z"}"#;
        assert!(session_of("x", failed, true).unwrap_err().contains("not Success"));
        assert!(session_of("x", failed, false).is_ok(), "a credentials URI sends no Code");
        let e = session_of("x", br#"{"AccessKeyId":"STS.a","AccessKeySecret":"s3cr3t"}"#, false).unwrap_err();
        assert!(e.contains("SecurityToken") && !e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn a_credentials_uri_is_shown_without_its_query() {
        let u = Uri::new("https://creds.example/v1/get?token=s3cr3t").unwrap();
        assert_eq!(u.describe(), "credentials URI https://creds.example/v1/get");
        assert!(Uri::new("file:///etc/passwd").is_err());
    }
}

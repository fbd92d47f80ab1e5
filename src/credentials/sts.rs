//! STS (API version 2015-04-01, reference "Credentials" and "STS"): `AssumeRole` signed with a base identity,
//! `AssumeRoleWithOIDC` for RRSA (anonymous, as credentials-go `providers/oidc.go` sends it: the OIDC token is the
//! proof), and `GetCallerIdentity` for the account a run acts in.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{Fetch, Session};
use crate::aliyun::{ApiError, ApiRequest, Client, CredentialSource, Credentials, Endpoints, RetryPolicy};

pub const VERSION: &str = "2015-04-01";
/// `RoleSessionName` when none is configured (it shows in ActionTrail as the caller).
pub const DEFAULT_SESSION_NAME: &str = "aliyun-janitor";
/// `DurationSeconds` default and lower bound (STS: 900 to the role's maximum, default 3600).
pub const DEFAULT_DURATION_SECS: u32 = 3600;
pub const MIN_DURATION_SECS: u32 = 900;

/// A role to act through.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    /// `acs:ram::<account>:role/<name>`.
    pub arn: String,
    pub session_name: String,
    pub duration_secs: u32,
    /// An inline policy that narrows the role's rights for this session (JSON).
    pub policy: Option<String>,
    pub external_id: Option<String>,
}

impl RoleSpec {
    pub fn new(arn: impl Into<String>) -> RoleSpec {
        RoleSpec {
            arn: arn.into(),
            session_name: DEFAULT_SESSION_NAME.into(),
            duration_secs: DEFAULT_DURATION_SECS,
            policy: None,
            external_id: None,
        }
    }
}

/// Checks a role ARN as STS's `RoleArn` expects it; the message is for a field name the caller adds.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    let rest = arn.strip_prefix("acs:ram::").ok_or("must look like acs:ram::<account id>:role/<role name>")?;
    match rest.split_once(":role/") {
        Some((account, name))
            if !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() =>
        {
            Ok(())
        }
        _ => Err("must look like acs:ram::<account id>:role/<role name>".into()),
    }
}

/// `RoleSessionName`: 2 to 64 characters of letters, digits, `.`, `@`, `-` and `_` (STS AssumeRole API page).
pub fn check_session_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err("must be 2 to 64 characters of letters, digits, `.`, `@`, `-` and `_`".into())
    }
}

/// The `Credentials` object of an AssumeRole / AssumeRoleWithOIDC answer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeAnswer {
    credentials: Option<StsCredentials>,
}

/// The session in an STS answer; an error names the missing field and never quotes a value.
fn session_of(action: &str, answer: AssumeAnswer) -> Result<Session, String> {
    let c = answer.credentials.ok_or_else(|| format!("{action} answered without Credentials"))?;
    let need = |v: Option<String>, f: &str| {
        v.filter(|s| !s.is_empty()).ok_or_else(|| format!("{action} answered without Credentials.{f}"))
    };
    let id = need(c.access_key_id, "AccessKeyId")?;
    let secret = need(c.access_key_secret, "AccessKeySecret")?;
    let token = need(c.security_token, "SecurityToken")?;
    let expiration = need(c.expiration, "Expiration")?;
    Session::temporary(Credentials::new(id, secret, Some(token)), &expiration)
        .map_err(|e| format!("{action} answered Credentials.{e}"))
}

/// The STS region: `ALIBABA_CLOUD_STS_REGION` (regional endpoint `sts.<region>.aliyuncs.com`), else the global
/// `sts.aliyuncs.com` (credentials-go `ram_role_arn.go`).
pub fn sts_region(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("ALIBABA_CLOUD_STS_REGION").map(|r| r.trim().to_string()).unwrap_or_default()
}

/// `AssumeRole`, signed with the base identity's credentials.
pub(crate) struct AssumeRole {
    pub client: Client,
    pub region: String,
    pub role: RoleSpec,
    pub base: String,
}

impl AssumeRole {
    /// A source that assumes `role` with `base`'s credentials, through the same endpoints as the run.
    pub fn source(
        base: Arc<dyn CredentialSource>,
        role: RoleSpec,
        endpoints: Endpoints,
        retry: RetryPolicy,
        region: String,
    ) -> Result<super::Refreshing, ApiError> {
        let name = base.describe();
        let client = Client::with_source(base, endpoints, retry, crate::aliyun::CallLimits::per_endpoint(2))?;
        Ok(super::Refreshing::new(Box::new(AssumeRole { client, region, role, base: name }), None))
    }

    /// The same, its STS calls over `shared`'s connections and run-wide bounds (an organisation run's accounts).
    pub fn source_over(
        shared: &Client,
        base: Arc<dyn CredentialSource>,
        role: RoleSpec,
        region: String,
    ) -> super::Refreshing {
        let name = base.describe();
        let client = shared.for_credentials(base);
        super::Refreshing::new(Box::new(AssumeRole { client, region, role, base: name }), None)
    }
}

#[async_trait::async_trait]
impl Fetch for AssumeRole {
    async fn fetch(&self) -> Result<Session, String> {
        let r = &self.role;
        let mut req = ApiRequest::new("sts", VERSION, "AssumeRole", &self.region)
            .param("RoleArn", &r.arn)
            .param("RoleSessionName", &r.session_name)
            .param("DurationSeconds", r.duration_secs.to_string());
        if let Some(p) = &r.policy {
            req = req.param("Policy", p);
        }
        if let Some(x) = &r.external_id {
            req = req.param("ExternalId", x);
        }
        let answer: AssumeAnswer = self.client.call_json(&req).await.map_err(|e| e.to_string())?;
        session_of("AssumeRole", answer)
    }

    fn describe(&self) -> String {
        format!("role {} assumed with {}", self.role.arn, self.base)
    }
}

/// `AssumeRoleWithOIDC` (RRSA): the token file is re-read on every refresh, since the platform rotates it.
pub(crate) struct Oidc {
    pub http: reqwest::Client,
    /// Base URL of the STS endpoint.
    pub base_url: String,
    pub role: RoleSpec,
    pub provider_arn: String,
    pub token_file: PathBuf,
}

#[async_trait::async_trait]
impl Fetch for Oidc {
    async fn fetch(&self) -> Result<Session, String> {
        let token = std::fs::read_to_string(&self.token_file)
            .map_err(|e| format!("cannot read the OIDC token file {}: {e}", self.token_file.display()))?;
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let query = [("Action", "AssumeRoleWithOIDC"), ("Format", "JSON"), ("Version", VERSION), ("Timestamp", &now)];
        let url = url::Url::parse_with_params(&format!("{}/", self.base_url), query)
            .map_err(|e| format!("bad STS endpoint {}: {e}", self.base_url))?;
        let duration = self.role.duration_secs.to_string();
        let mut form = vec![
            ("RoleArn", self.role.arn.as_str()),
            ("OIDCProviderArn", self.provider_arn.as_str()),
            ("OIDCToken", token.trim()),
            ("RoleSessionName", self.role.session_name.as_str()),
            ("DurationSeconds", duration.as_str()),
        ];
        if let Some(p) = &self.role.policy {
            form.push(("Policy", p));
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("STS AssumeRoleWithOIDC: {}", e.without_url()))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| format!("STS AssumeRoleWithOIDC: {}", e.without_url()))?;
        if status != 200 {
            // Alibaba's error document: only its code and message, never the request it may quote.
            let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let code = doc["Code"].as_str().unwrap_or("(no error document)");
            let message = doc["Message"].as_str().unwrap_or_default();
            let message = message.replace(token.trim(), "<redacted>");
            return Err(format!("STS AssumeRoleWithOIDC: {code} (HTTP {status}): {message}"));
        }
        let answer: AssumeAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            format!("STS AssumeRoleWithOIDC: unexpected answer (line {}, column {})", e.line(), e.column())
        })?;
        session_of("AssumeRoleWithOIDC", answer)
    }

    fn describe(&self) -> String {
        format!("OIDC role {} ({})", self.role.arn, self.token_file.display())
    }
}

/// Who the credentials are.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub account_id: String,
    /// `acs:ram::<account>:user/<name>` or `acs:ram::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// `Account`, `RAMUser` or `AssumedRoleUser`.
    pub identity_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CallerIdentity {
    account_id: Option<String>,
    arn: Option<String>,
    identity_type: Option<String>,
}

/// `GetCallerIdentity`: the account the run's credentials act in. Needs no RAM permission.
pub async fn caller_identity(api: &Client, region: &str) -> Result<Identity, ApiError> {
    let req = ApiRequest::new("sts", VERSION, "GetCallerIdentity", region);
    let answer: CallerIdentity = api.call_json(&req).await?;
    let account_id =
        answer.account_id.filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())).ok_or_else(|| {
            ApiError::Shape { action: "GetCallerIdentity".into(), detail: "AccountId missing or not digits".into() }
        })?;
    Ok(Identity {
        account_id,
        arn: answer.arn.unwrap_or_default(),
        identity_type: answer.identity_type.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_and_session_names_are_checked() {
        assert!(check_role_arn("acs:ram::1234567890123456:role/aliyun-janitor").is_ok());
        for bad in ["arn:aws:iam::1:role/x", "acs:ram::abc:role/x", "acs:ram::1:user/x", "acs:ram::1:role/"] {
            assert!(check_role_arn(bad).is_err(), "{bad}");
        }
        assert!(check_session_name("aliyun-janitor").is_ok());
        assert!(check_session_name("a").is_err());
        assert!(check_session_name("has space").is_err());
        assert!(check_session_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn an_sts_answer_without_a_field_names_it() {
        let a: AssumeAnswer = serde_json::from_str(
            r#"{"Credentials": {"AccessKeyId": "STS.a", "AccessKeySecret": "s", "Expiration": "2026-12-03T10:00:00Z"}}"#,
        )
        .unwrap();
        assert_eq!(session_of("AssumeRole", a).unwrap_err(), "AssumeRole answered without Credentials.SecurityToken");
        let a: AssumeAnswer = serde_json::from_str(
            r#"{"Credentials": {"AccessKeyId": "STS.a", "AccessKeySecret": "s", "SecurityToken": "t", "Expiration": "2026-12-03T10:00:00Z"}}"#,
        )
        .unwrap();
        let s = session_of("AssumeRole", a).unwrap();
        assert_eq!(s.credentials.security_token(), Some("t"));
        assert!(s.expires.is_some());
    }
}

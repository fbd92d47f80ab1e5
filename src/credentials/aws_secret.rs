//! Alibaba credentials from an AWS Secrets Manager secret, read per invocation through the AWS Parameters and
//! Secrets Lambda Extension (a layer that serves `GET /secretsmanager/get?secretId=…` on localhost and caches each
//! secret for `SECRETS_MANAGER_TTL` seconds, 300 by default).
//!
//! Why not a `{{resolve:secretsmanager:…}}` reference in the template: CloudFormation resolves it at deploy time
//! and does not re-resolve it on a stack update unless the reference text changes, so a rotated key would never
//! reach the function, and runs fail once the old key is disabled (reference, "Corrections and additions").
//!
//! The extension's contract (AWS Secrets Manager user guide, "Use AWS Secrets Manager secrets in AWS Lambda
//! functions"): port `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` (default 2773), the header
//! `X-Aws-Parameters-Secrets-Token` carrying the function's `AWS_SESSION_TOKEN`, callable during invocations only
//! (not at init), and an answer shaped like Secrets Manager's `GetSecretValue` (`SecretString`).

use std::time::Duration;

use serde::Deserialize;

use crate::aliyun::{CredentialError, Credentials};

/// The secret's ARN (or name). Set by the SAM template; when set, it is the only credential source on Lambda.
pub const ENV_SECRET_ARN: &str = "JANITOR_CREDENTIALS_SECRET_ARN";
/// The extension's port, as the extension itself reads it.
pub const ENV_PORT: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";
const DEFAULT_PORT: u16 = 2773;
/// The extension answers from its cache in microseconds and from Secrets Manager in well under a second.
const TIMEOUT: Duration = Duration::from_secs(5);
/// An answer larger than this is not a credentials secret (Secrets Manager's own limit is 64 KiB).
const MAX_BODY: usize = 64 * 1024;

/// `GetSecretValue`'s answer, as far as it matters here.
#[derive(Deserialize)]
struct SecretValue {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

/// The secret's value: `{"AccessKeyId": "...", "AccessKeySecret": "..."}`, with an optional `SecurityToken`.
#[derive(Deserialize)]
struct AlibabaKey {
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<String>,
    #[serde(rename = "AccessKeySecret")]
    access_key_secret: Option<String>,
    #[serde(rename = "SecurityToken")]
    security_token: Option<String>,
}

/// Reads the credentials named by `ENV_SECRET_ARN`, or `None` when that variable is not set (then the caller
/// reads the environment). `env` looks a variable up.
pub async fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<Result<Credentials, CredentialError>> {
    let arn = env(ENV_SECRET_ARN).filter(|v| !v.trim().is_empty())?;
    Some(read(arn.trim(), &env).await)
}

async fn read(arn: &str, env: &impl Fn(&str) -> Option<String>) -> Result<Credentials, CredentialError> {
    let fail = |reason: String| CredentialError::Secret { secret: arn.to_string(), reason };
    let port = match env(ENV_PORT).filter(|v| !v.trim().is_empty()) {
        None => DEFAULT_PORT,
        Some(p) => p.trim().parse::<u16>().map_err(|_| fail(format!("{ENV_PORT} `{p}` is not a port number")))?,
    };
    let token = env("AWS_SESSION_TOKEN")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| fail("AWS_SESSION_TOKEN is not set (the extension only serves a Lambda function)".into()))?;
    let url = url::Url::parse_with_params(&format!("http://localhost:{port}/secretsmanager/get"), [("secretId", arn)])
        .map_err(|e| fail(format!("bad extension URL: {e}")))?;
    crate::aliyun::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| fail(format!("HTTP client: {}", e.without_url())))?;
    let unreachable = |e: reqwest::Error| {
        fail(format!(
            "the AWS Parameters and Secrets Lambda Extension on localhost:{port} did not answer ({}); is its layer \
             attached to the function?",
            e.without_url()
        ))
    };
    let response = http.get(url).header("X-Aws-Parameters-Secrets-Token", token).send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if !status.is_success() {
        // The extension's error text names the secret and Secrets Manager's error code; it never holds the value.
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_string();
        return Err(fail(format!("the extension answered HTTP {}: {text}", status.as_u16())));
    }
    if body.len() > MAX_BODY {
        return Err(fail(format!("the answer is {} bytes, more than a credentials secret can be", body.len())));
    }
    parse(&body).map_err(fail)
}

/// The credentials in a `GetSecretValue` answer; an error names the field and never quotes a value.
fn parse(body: &[u8]) -> Result<Credentials, String> {
    let value: SecretValue = serde_json::from_slice(body).map_err(|e| {
        format!("the answer is not a GetSecretValue JSON object (line {}, column {})", e.line(), e.column())
    })?;
    let string = value.secret_string.ok_or("the secret has no SecretString (a binary secret cannot hold the key)")?;
    // serde_json's message for a bad document can quote part of it: only its position is reported.
    let key: AlibabaKey = serde_json::from_str(&string).map_err(|e| {
        format!(
            "SecretString is not a JSON object {{\"AccessKeyId\": \"...\", \"AccessKeySecret\": \"...\"}} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let field = |v: Option<String>, name: &str| {
        v.filter(|s| !s.trim().is_empty()).ok_or_else(|| format!("SecretString has no {name} (or it is empty)"))
    };
    let id = field(key.access_key_id, "AccessKeyId")?;
    let secret = field(key.access_key_secret, "AccessKeySecret")?;
    Ok(Credentials::new(id.trim(), secret.trim(), key.security_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(secret_string: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"ARN": "arn:x", "Name": "n", "SecretString": secret_string})).unwrap()
    }

    #[test]
    fn the_secret_string_holds_the_key() {
        let c = parse(&answer(r#"{"AccessKeyId": "LTAI1", "AccessKeySecret": "s3cr3t"}"#)).unwrap();
        assert_eq!((c.access_key_id.as_str(), c.secret(), c.security_token()), ("LTAI1", "s3cr3t", None));
        let c = parse(&answer(r#"{"AccessKeyId": "STS.1", "AccessKeySecret": "s", "SecurityToken": "t"}"#)).unwrap();
        assert_eq!(c.security_token(), Some("t"));
    }

    #[test]
    fn a_bad_secret_names_the_field_and_never_quotes_the_value() {
        let e = parse(&answer(r#"{"AccessKeyId": "LTAI1"}"#)).unwrap_err();
        assert!(e.contains("AccessKeySecret"), "{e}");
        let e = parse(&answer(r#"{"AccessKeyId": "LTAI1", "AccessKeySecret": "s3cr3t""#)).unwrap_err();
        assert!(e.contains("SecretString is not a JSON object") && !e.contains("s3cr3t"), "{e}");
        let e = parse(br#"{"SecretBinary": "AAAA"}"#).unwrap_err();
        assert!(e.contains("no SecretString"), "{e}");
        assert!(parse(b"<html>").unwrap_err().contains("not a GetSecretValue"));
    }

    #[tokio::test]
    async fn not_configured_means_the_environment_is_read() {
        assert!(from_env(|_| None).await.is_none());
    }

    #[tokio::test]
    async fn without_a_session_token_nothing_is_asked() {
        let env = |k: &str| (k == ENV_SECRET_ARN).then(|| "arn:aws:secretsmanager:us-east-1:1:secret:x".to_string());
        let e = from_env(env).await.unwrap().unwrap_err().to_string();
        assert!(e.contains("AWS_SESSION_TOKEN") && e.contains("arn:aws:secretsmanager"), "{e}");
    }
}

//! Delivery: concurrent posts with retries, capped answer reads, and errors free of URLs and secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};

use super::sign::sign;
use super::{render, WebhookError, WebhookFormat, WebhookTarget};
use crate::report::Summary;
use crate::retry::{GaveUp, Retriable};

/// Longest answer body read back (to look for an `errcode`).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest wait for a TCP (and TLS) connection to a receiver.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The one webhook HTTP client a process uses: https through the installed rustls provider, a connect
/// timeout, and no redirects (a 307/308 would resend the summary to another host).
pub fn http_client() -> Result<reqwest::Client, WebhookError> {
    crate::aliyun::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| WebhookError::Client(e.without_url().to_string()))
}

/// What happened to one target. `error` never holds the URL, the secret or the receiver's answer body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Position of the target in `JANITOR_WEBHOOKS`, so two targets of one format can be told apart.
    pub index: usize,
    pub format: WebhookFormat,
    pub ok: bool,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Retry settings. Retries happen on timeouts, connection errors, 5xx and 429, with jittered exponential
/// back-off, while attempts and the time budget last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryPolicy {
    pub max_attempts: u32,
    /// Back-off before the second attempt; doubled for each further one, then jittered to 50–100 %.
    pub first_backoff: Duration,
    pub attempt_timeout: Duration,
    /// Wall-clock budget for one target, back-off included.
    pub budget: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(10),
            budget: Duration::from_secs(30),
        }
    }
}

/// Posts the summary to every target, concurrently, with the default [`DeliveryPolicy`]. Results come back
/// in target order. The caller's client must have a rustls crypto provider installed for https, and should
/// not follow redirects (`redirect::Policy::none()`): a 307/308 would resend the body to another host.
/// [`http_client`] builds one that does both.
pub async fn deliver_all(http: &reqwest::Client, targets: &[WebhookTarget], summary: &Summary) -> Vec<Delivery> {
    deliver_all_with(http, targets, summary, DeliveryPolicy::default()).await
}

pub async fn deliver_all_with(
    http: &reqwest::Client,
    targets: &[WebhookTarget],
    summary: &Summary,
    policy: DeliveryPolicy,
) -> Vec<Delivery> {
    deliver_rendered_with(http, targets, |format| render(format, summary), policy).await
}

/// Posts whatever `render` makes of each target's format (an organisation summary, say), like [`deliver_all`].
pub async fn deliver_rendered(
    http: &reqwest::Client,
    targets: &[WebhookTarget],
    render: impl Fn(WebhookFormat) -> Value,
) -> Vec<Delivery> {
    deliver_rendered_with(http, targets, render, DeliveryPolicy::default()).await
}

async fn deliver_rendered_with(
    http: &reqwest::Client,
    targets: &[WebhookTarget],
    render: impl Fn(WebhookFormat) -> Value,
    policy: DeliveryPolicy,
) -> Vec<Delivery> {
    let mut rendered: BTreeMap<WebhookFormat, Value> = BTreeMap::new();
    let mut tasks = Vec::with_capacity(targets.len());
    for (index, target) in targets.iter().enumerate() {
        let body = rendered.entry(target.format).or_insert_with(|| render(target.format)).clone();
        let (http, target) = (http.clone(), target.clone());
        tasks.push((
            index,
            target.format,
            tokio::spawn(async move { deliver_one(&http, &target, &body, policy, index).await }),
        ));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for (index, format, task) in tasks {
        out.push(task.await.unwrap_or_else(|_| {
            tracing::error!(webhook = index, format = %format, "webhook delivery task failed");
            Delivery { index, format, ok: false, attempts: 0, error: Some("delivery task failed".into()) }
        }));
    }
    out
}

/// A failed attempt: a text safe to log, and whether another attempt may help.
struct AttemptError {
    message: String,
    retryable: bool,
}

async fn deliver_one(
    http: &reqwest::Client,
    target: &WebhookTarget,
    body: &Value,
    policy: DeliveryPolicy,
    index: usize,
) -> Delivery {
    let schedule = crate::retry::Schedule {
        max_attempts: policy.max_attempts,
        base_delay: policy.first_backoff,
        // Receivers answer 429 like any passing failure: one schedule, no cap but the budget.
        throttle_base_delay: policy.first_backoff,
        max_delay: Duration::MAX,
        budget: policy.budget,
    };
    let send = |_, remaining: Duration| async move {
        if remaining.is_zero() {
            return Err(AttemptError { message: "time budget spent".into(), retryable: false });
        }
        attempt(http, target, body, policy.attempt_timeout.min(remaining)).await
    };
    let retriable = |e: &AttemptError| if e.retryable { Retriable::Yes } else { Retriable::No };
    let on_retry = |e: &AttemptError, attempts: u32, _| {
        tracing::info!(webhook = index, format = %target.format, attempts, error = %target.scrub(&e.message), "webhook attempt failed; retrying");
    };
    let (error, attempts) = match crate::retry::run(&schedule, send, retriable, on_retry).await {
        Ok(((), attempts)) => {
            tracing::info!(webhook = index, format = %target.format, attempts, "webhook delivered");
            return Delivery { index, format: target.format, ok: true, attempts, error: None };
        }
        Err(f) if f.gave_up == GaveUp::Budget => (format!("{} (time budget spent)", f.error.message), f.attempts),
        Err(f) => (f.error.message, f.attempts),
    };
    let error = target.scrub(&error);
    tracing::warn!(webhook = index, format = %target.format, attempts, error = %error, "webhook delivery failed");
    Delivery { index, format: target.format, ok: false, attempts, error: Some(error) }
}

async fn attempt(
    http: &reqwest::Client,
    target: &WebhookTarget,
    body: &Value,
    timeout: Duration,
) -> Result<(), AttemptError> {
    let out = sign(target, body, Utc::now());
    let mut request = http
        .post(out.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(reqwest::header::USER_AGENT, concat!("aliyun-janitor/", env!("CARGO_PKG_VERSION")))
        .body(out.body);
    for (name, value) in out.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(AttemptError { message: format!("HTTP {}", status.as_u16()), retryable: true });
    }
    if !status.is_success() {
        return Err(AttemptError { message: format!("HTTP {}", status.as_u16()), retryable: false });
    }
    match answer_error(target.format, &read_capped(response).await) {
        Some(message) => Err(AttemptError { message, retryable: false }),
        None => Ok(()),
    }
}

/// A transport error in words that carry no URL (reqwest adds it to `Display`; `without_url` drops it).
fn transport_error(e: reqwest::Error) -> AttemptError {
    let (what, retryable) = if e.is_timeout() {
        ("timed out", true)
    } else if e.is_connect() {
        ("could not connect", true)
    } else {
        ("request failed", e.is_request() || e.is_body())
    };
    let e = e.without_url();
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let detail: String = causes.join(": ").chars().take(200).collect();
    let message = if detail.is_empty() { what.to_string() } else { format!("{what}: {detail}") };
    AttemptError { message, retryable }
}

async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buf.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - buf.len())]);
        if buf.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    buf
}

/// DingTalk and WeCom answer HTTP 200 with `{"errcode": n}`, Feishu with `{"code": n}` (older hooks
/// `StatusCode`); non-zero is a rejection (bad signature, keyword, rate limit). Only the code is reported:
/// the message text may echo the request.
fn answer_error(format: WebhookFormat, body: &[u8]) -> Option<String> {
    let answer: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let (key, code) = match format {
        WebhookFormat::DingTalk | WebhookFormat::WeCom => ("errcode", answer.get("errcode")),
        WebhookFormat::Feishu => ("code", answer.get("code").or_else(|| answer.get("StatusCode"))),
        WebhookFormat::Json | WebhookFormat::Slack => return None,
    };
    match code.and_then(Value::as_i64) {
        None | Some(0) => None,
        Some(code) => Some(format!("{format} answered {key} {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_codes() {
        assert_eq!(answer_error(WebhookFormat::DingTalk, br#"{"errcode":0,"errmsg":"ok"}"#), None);
        assert_eq!(
            answer_error(WebhookFormat::DingTalk, br#"{"errcode":310000,"errmsg":"sign not match"}"#).as_deref(),
            Some("dingtalk answered errcode 310000")
        );
        assert_eq!(
            answer_error(WebhookFormat::WeCom, br#"{"errcode":93000,"errmsg":"invalid webhook url"}"#).as_deref(),
            Some("wecom answered errcode 93000")
        );
        assert_eq!(
            answer_error(WebhookFormat::Feishu, br#"{"code":19021,"msg":"sign match fail"}"#).as_deref(),
            Some("feishu answered code 19021")
        );
        assert_eq!(answer_error(WebhookFormat::Feishu, br#"{"StatusCode":0,"code":0}"#), None);
        assert_eq!(answer_error(WebhookFormat::Slack, b"ok"), None);
        assert_eq!(answer_error(WebhookFormat::DingTalk, b"<html>"), None);
    }
}

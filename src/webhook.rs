//! Summary webhooks: after every run the [`Summary`] goes to each target configured in `JANITOR_WEBHOOKS`,
//! as generic signed JSON or as a chat message (Slack, DingTalk, Feishu/Lark, WeCom).
//!
//! Delivery happens after the release step and only reads the summary: a webhook failure never changes what
//! was released. It is logged and returned as a [`Delivery`] for the function result.
//!
//! Webhook URLs and secrets are credentials (the URL alone lets anyone post): they are never logged, and
//! no error or [`Debug`](std::fmt::Debug) output carries them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::event::json_kind as kind;
use crate::report::explain::{self, Markup};
use crate::report::Summary;
use crate::retry::{GaveUp, Retriable};

/// The environment variable holding the targets: a JSON array, secret as a whole.
pub const ENV_VAR: &str = "JANITOR_WEBHOOKS";
/// Most targets one configuration may list.
pub const MAX_TARGETS: usize = 10;
/// Longest answer body read back (to look for an `errcode`).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The [`Summary`] as JSON, with `X-Janitor-Timestamp` and `X-Janitor-Signature` headers.
    Json,
    /// Slack incoming webhook (`{"text": mrkdwn}`).
    Slack,
    /// DingTalk custom robot (markdown; signed URL when a secret is set).
    #[serde(rename = "dingtalk")]
    DingTalk,
    /// Feishu/Lark custom bot (text; signed body when a secret is set).
    Feishu,
    /// WeCom (WeChat Work) group robot (markdown).
    #[serde(rename = "wecom")]
    WeCom,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::DingTalk => "dingtalk",
            WebhookFormat::Feishu => "feishu",
            WebhookFormat::WeCom => "wecom",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "json" => WebhookFormat::Json,
            "slack" => WebhookFormat::Slack,
            "dingtalk" => WebhookFormat::DingTalk,
            "feishu" | "lark" => WebhookFormat::Feishu,
            "wecom" => WebhookFormat::WeCom,
            _ => return None,
        })
    }

    /// Whether the platform has a signing scheme; a secret for one without is a configuration mistake.
    fn signs(self) -> bool {
        matches!(self, WebhookFormat::Json | WebhookFormat::DingTalk | WebhookFormat::Feishu)
    }

    /// Bytes of message text the platform accepts, with headroom: Slack truncates `text` past 40,000
    /// characters, DingTalk caps a message at 20,000 bytes, Feishu a request body at 20 KB, WeCom markdown
    /// `content` at 4,096 bytes.
    fn text_limit(self) -> Option<usize> {
        match self {
            WebhookFormat::Json => None,
            WebhookFormat::Slack => Some(39_000),
            WebhookFormat::DingTalk | WebhookFormat::Feishu => Some(18_000),
            WebhookFormat::WeCom => Some(4_000),
        }
    }
}

impl fmt::Display for WebhookFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured webhook. Built only by [`targets_from_env_value`], so the URL is always https (or http on
/// loopback) and a secret is only present for a format that signs.
#[derive(Clone)]
pub struct WebhookTarget {
    format: WebhookFormat,
    url: Url,
    secret: Option<String>,
}

impl WebhookTarget {
    pub fn format(&self) -> WebhookFormat {
        self.format
    }

    pub fn is_signed(&self) -> bool {
        self.secret.is_some()
    }

    /// Removes anything of the URL or secret from a text meant for logs (a last line of defence: error texts
    /// are built without them in the first place).
    fn scrub(&self, text: &str) -> String {
        let mut needles: Vec<&str> = vec![self.url.as_str()];
        needles.extend(self.url.query());
        needles.extend(self.url.password());
        needles.extend(self.secret.as_deref());
        needles.extend(self.url.path_segments().into_iter().flatten());
        needles.extend(self.url.query().into_iter().flat_map(|q| q.split(['&', '='])));
        let mut out = text.to_string();
        for needle in needles.into_iter().filter(|n| n.len() >= 8) {
            out = out.replace(needle, "[redacted]");
        }
        out
    }
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("format", &self.format)
            .field("url", &"[redacted]")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A configuration error. It names the target's position and the field, never a URL or secret.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WebhookError {
    #[error("`{ENV_VAR}` is not valid UTF-8")]
    NotUnicode,
    #[error("`{ENV_VAR}` is not valid JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("`{ENV_VAR}` must be a JSON array of targets, got {0}")]
    NotArray(&'static str),
    #[error("`{ENV_VAR}` lists {0} targets; the limit is {MAX_TARGETS}")]
    TooMany(usize),
    #[error("`{ENV_VAR}[{index}]` must be an object with `format`, `url` and an optional `secret`, got {kind}")]
    NotObject { index: usize, kind: &'static str },
    #[error("`{ENV_VAR}[{index}].{field}`: {message}")]
    Field { index: usize, field: String, message: String },
}

/// Reads [`ENV_VAR`]; unset or blank means no webhooks.
pub fn targets_from_env() -> Result<Vec<WebhookTarget>, WebhookError> {
    match std::env::var(ENV_VAR) {
        Ok(value) => targets_from_env_value(&value),
        Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
        Err(std::env::VarError::NotUnicode(_)) => Err(WebhookError::NotUnicode),
    }
}

/// Parses `[{"format":"json|slack|dingtalk|feishu|wecom","url":"https://…","secret":"…"}]`. A blank value
/// means no webhooks. Errors never quote the value (it is a secret as a whole).
pub fn targets_from_env_value(value: &str) -> Result<Vec<WebhookTarget>, WebhookError> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let parsed: Value =
        serde_json::from_str(value).map_err(|e| WebhookError::NotJson { line: e.line(), column: e.column() })?;
    let Value::Array(items) = parsed else {
        return Err(WebhookError::NotArray(kind(&parsed)));
    };
    if items.len() > MAX_TARGETS {
        return Err(WebhookError::TooMany(items.len()));
    }
    items.iter().enumerate().map(|(index, item)| target(index, item)).collect()
}

fn target(index: usize, item: &Value) -> Result<WebhookTarget, WebhookError> {
    let err = |field: &str, message: String| WebhookError::Field { index, field: field.to_string(), message };
    let Value::Object(obj) = item else {
        return Err(WebhookError::NotObject { index, kind: kind(item) });
    };
    if let Some(key) = obj.keys().find(|k| !matches!(k.as_str(), "format" | "url" | "secret")) {
        // A mistyped key is worth naming; a URL or secret pasted as a key is not.
        let field = if looks_like_a_name(key) { key.clone() } else { "(key hidden)".to_string() };
        return Err(WebhookError::Field {
            index,
            field,
            message: "unknown key; allowed: `format`, `url`, `secret`".into(),
        });
    }
    let format = match obj.get("format") {
        Some(Value::String(name)) => WebhookFormat::from_name(name).ok_or_else(|| {
            let shown = if looks_like_a_name(name) { format!("`{name}`") } else { "the value".to_string() };
            err("format", format!("{shown} is not one of json, slack, dingtalk, feishu (or lark), wecom"))
        })?,
        Some(other) => return Err(err("format", format!("expected a string, got {}", kind(other)))),
        None => return Err(err("format", "missing".into())),
    };
    let url = match obj.get("url") {
        Some(Value::String(s)) => Url::parse(s.trim()).map_err(|e| err("url", format!("not a valid URL ({e})")))?,
        Some(other) => return Err(err("url", format!("expected a string, got {}", kind(other)))),
        None => return Err(err("url", "missing".into())),
    };
    let loopback = crate::validate::is_loopback(&url);
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err(err(
            "url",
            "must start with https:// (http:// is allowed only for 127.0.0.1, [::1] and localhost)".into(),
        ));
    }
    let secret = match obj.get("secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => {
            return Err(err("secret", "is empty; leave it out for an unsigned webhook".into()))
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(err("secret", format!("expected a string, got {}", kind(other)))),
    };
    if secret.is_some() && !format.signs() {
        return Err(err(
            "secret",
            format!("is not used by the {format} format (its URL is the credential); remove it"),
        ));
    }
    Ok(WebhookTarget { format, url, secret })
}

fn looks_like_a_name(s: &str) -> bool {
    (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-')
}

// ---------------------------------------------------------------------------------------------------------
// Rendering: pure functions of the summary.

/// The unsigned request body for `format` (signatures are added at send time, see [`deliver_all`]).
pub fn render(format: WebhookFormat, summary: &Summary) -> Value {
    let text = |markup| explain::message(summary, markup, format.text_limit().unwrap_or(usize::MAX));
    match format {
        WebhookFormat::Json => serde_json::to_value(summary).unwrap_or_else(|_| json!({ "run_id": summary.run_id })),
        WebhookFormat::Slack => json!({ "text": text(Markup::Slack) }),
        WebhookFormat::DingTalk => json!({
            "msgtype": "markdown",
            "markdown": { "title": explain::title(summary), "text": text(Markup::Markdown) }
        }),
        WebhookFormat::Feishu => json!({ "msg_type": "text", "content": { "text": text(Markup::Plain) } }),
        WebhookFormat::WeCom => json!({ "msgtype": "markdown", "markdown": { "content": text(Markup::Markdown) } }),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Signing (reference: DingTalk and Feishu custom-bot docs, "加签" / "签名校验").

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; the fallback is unreachable but keeps this panic-free.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else { return Vec::new() };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// DingTalk: base64(HmacSHA256(key = secret, message = timestamp_ms + "\n" + secret)); URL-encoded when added.
fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    base64(&hmac_sha256(secret.as_bytes(), format!("{timestamp_ms}\n{secret}").as_bytes()))
}

/// Feishu/Lark: base64(HmacSHA256(key = timestamp_s + "\n" + secret, message = empty)).
fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    base64(&hmac_sha256(format!("{timestamp_s}\n{secret}").as_bytes(), b""))
}

/// Generic JSON: `sha256=` + hex(HmacSHA256(key = secret, message = timestamp_s + "." + body)).
fn json_signature(secret: &str, timestamp_s: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp_s}.").into_bytes();
    message.extend_from_slice(body);
    let mac = hmac_sha256(secret.as_bytes(), &message);
    let mut hex = String::with_capacity(7 + mac.len() * 2);
    hex.push_str("sha256=");
    for b in mac {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// One signed request, ready to send. Holds the URL: never logged or debug-printed.
struct Outgoing {
    url: Url,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn sign(target: &WebhookTarget, rendered: &Value, now: DateTime<Utc>) -> Outgoing {
    let mut url = target.url.clone();
    let mut headers = Vec::new();
    let mut body = rendered.clone();
    match (target.format, target.secret.as_deref()) {
        (WebhookFormat::DingTalk, Some(secret)) => {
            let ts = now.timestamp_millis();
            url.query_pairs_mut()
                .append_pair("timestamp", &ts.to_string())
                .append_pair("sign", &dingtalk_sign(secret, ts));
        }
        (WebhookFormat::Feishu, Some(secret)) => {
            let ts = now.timestamp();
            if let Value::Object(obj) = &mut body {
                obj.insert("timestamp".into(), Value::String(ts.to_string()));
                obj.insert("sign".into(), Value::String(feishu_sign(secret, ts)));
            }
        }
        _ => {}
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    if target.format == WebhookFormat::Json {
        let ts = now.timestamp();
        headers.push(("x-janitor-timestamp", ts.to_string()));
        if let Some(secret) = target.secret.as_deref() {
            headers.push(("x-janitor-signature", json_signature(secret, ts, &bytes)));
        }
    }
    Outgoing { url, headers, body: bytes }
}

// ---------------------------------------------------------------------------------------------------------
// Delivery.

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
pub async fn deliver_all(http: &reqwest::Client, targets: &[WebhookTarget], summary: &Summary) -> Vec<Delivery> {
    deliver_all_with(http, targets, summary, DeliveryPolicy::default()).await
}

pub async fn deliver_all_with(
    http: &reqwest::Client,
    targets: &[WebhookTarget],
    summary: &Summary,
    policy: DeliveryPolicy,
) -> Vec<Delivery> {
    let mut rendered: BTreeMap<WebhookFormat, Value> = BTreeMap::new();
    let mut tasks = Vec::with_capacity(targets.len());
    for (index, target) in targets.iter().enumerate() {
        let body = rendered.entry(target.format).or_insert_with(|| render(target.format, summary)).clone();
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
    use crate::report::explain::tests::summary;

    const SECRET: &str = "SEC-topsecret-0123456789";

    fn targets(format: &str, secret: Option<&str>) -> Vec<WebhookTarget> {
        let secret = secret.map(|s| format!(r#","secret":"{s}""#)).unwrap_or_default();
        targets_from_env_value(&format!(r#"[{{"format":"{format}","url":"https://hooks.example/services/T000/B000/XXXXXXXXXXXX?access_token=abcdef123456"{secret}}}]"#))
            .expect("valid")
    }

    #[test]
    fn env_value_parses_every_format() {
        let value = r#"[{"format":"json","url":"https://a.example/hook","secret":"s1-secret"},
            {"format":"slack","url":"https://hooks.slack.com/services/T/B/X"},
            {"format":"dingtalk","url":"https://oapi.dingtalk.com/robot/send?access_token=t","secret":"SECabc"},
            {"format":"lark","url":"https://open.larksuite.com/open-apis/bot/v2/hook/x","secret":null},
            {"format":"wecom","url":"http://127.0.0.1:8080/cgi-bin/webhook/send?key=k"}]"#;
        let t = targets_from_env_value(value).unwrap();
        let formats: Vec<_> = t.iter().map(WebhookTarget::format).collect();
        use WebhookFormat::*;
        assert_eq!(formats, [Json, Slack, DingTalk, Feishu, WeCom]);
        assert!(t[0].is_signed() && !t[3].is_signed());
        assert!(targets_from_env_value("").unwrap().is_empty());
        assert!(targets_from_env_value("  []  ").unwrap().is_empty());
    }

    #[test]
    fn env_errors_name_the_field_but_never_the_url_or_secret() {
        let secret = "hunter2-very-secret";
        let url = "ftp://hooks.example/services/T000/B000/XXXXXXXX";
        let cases = [
            (format!(r#"[{{"format":"slack","url":"{url}"}}]"#), "`JANITOR_WEBHOOKS[0].url`: must start with https://"),
            (
                format!(r#"[{{"format":"slack","url":"http://hooks.example/{secret}"}}]"#),
                "`JANITOR_WEBHOOKS[0].url`: must start with https://",
            ),
            (
                format!(r#"[{{"format":"slack","url":"https://x.example/","secret":"{secret}"}}]"#),
                "`JANITOR_WEBHOOKS[0].secret`: is not used by the slack format",
            ),
            (
                format!(
                    r#"[{{"format":"json","url":"https://x.example/"}},{{"format":"{secret}","url":"https://x.example/"}}]"#
                ),
                "`JANITOR_WEBHOOKS[1].format`: the value is not one of",
            ),
            (
                r#"[{"format":"slak","url":"https://x.example/"}]"#.to_string(),
                "`JANITOR_WEBHOOKS[0].format`: `slak` is not one of",
            ),
            (
                format!(r#"[{{"format":"json","url":"not a url {secret}"}}]"#),
                "`JANITOR_WEBHOOKS[0].url`: not a valid URL",
            ),
            (
                r#"[{"format":"json","url":42}]"#.to_string(),
                "`JANITOR_WEBHOOKS[0].url`: expected a string, got a number",
            ),
            (r#"[{"format":"json"}]"#.to_string(), "`JANITOR_WEBHOOKS[0].url`: missing"),
            (
                r#"[{"format":"json","url":"https://x.example/","secret":""}]"#.to_string(),
                "`JANITOR_WEBHOOKS[0].secret`: is empty",
            ),
            (
                format!(r#"[{{"format":"json","url":"https://x.example/","{secret}":"x"}}]"#),
                "`JANITOR_WEBHOOKS[0].(key hidden)`: unknown key",
            ),
            (
                r#"[{"format":"json","url":"https://x.example/","scret":"x"}]"#.to_string(),
                "`JANITOR_WEBHOOKS[0].scret`: unknown key",
            ),
            (format!(r#"{{"format":"json","url":"{url}"}}"#), "must be a JSON array of targets, got an object"),
            (format!(r#"["{url}"]"#), "`JANITOR_WEBHOOKS[0]` must be an object"),
            (format!(r#"[{{"format":"json","url":"{url}""#), "is not valid JSON (line 1, column"),
        ];
        for (value, want) in cases {
            let e = targets_from_env_value(&value).expect_err(want).to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
            assert!(!e.contains(secret) && !e.contains("hooks.example") && !e.contains("B000"), "{e:?} leaks");
        }
        let many = format!("[{}]", [r#"{"format":"json","url":"https://x.example/"}"#; 11].join(","));
        assert_eq!(targets_from_env_value(&many).unwrap_err(), WebhookError::TooMany(11));
    }

    #[test]
    fn debug_redacts_url_and_secret() {
        let t = targets("json", Some(SECRET));
        let debug = format!("{t:?}");
        assert!(
            !debug.contains(SECRET) && !debug.contains("hooks.example") && !debug.contains("abcdef123456"),
            "{debug}"
        );
        assert!(debug.contains("Json") && debug.contains("[redacted]"));
    }

    #[test]
    fn scrub_removes_url_parts_and_secret() {
        let t = &targets("json", Some(SECRET))[0];
        let text = format!("x {SECRET} y XXXXXXXXXXXX z abcdef123456 {}", t.url);
        let scrubbed = t.scrub(&text);
        assert!(
            !scrubbed.contains(SECRET) && !scrubbed.contains("XXXXXXXXXXXX") && !scrubbed.contains("abcdef123456"),
            "{scrubbed}"
        );
    }

    /// Vectors computed with Python's hmac/hashlib/base64 from the platforms' documented algorithms.
    #[test]
    fn signature_vectors() {
        assert_eq!(dingtalk_sign("this is secret", 1_700_000_000_000), "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0=");
        assert_eq!(feishu_sign("this is secret", 1_700_000_000), "OfGzRzoUICBOoc8wVra1e4A1hPfbZ9zqXozA8CWVUuY=");
        assert_eq!(
            json_signature("this is secret", 1_700_000_000, b"{}"),
            "sha256=59d4575de220830c6f357a388a3bdec6251e14af6d39d93a869bb834eb694db9"
        );
    }

    #[test]
    fn render_shapes() {
        let s = summary(2);
        let slack = render(WebhookFormat::Slack, &s);
        assert!(slack["text"].as_str().unwrap().contains("*Would release (2)*"));
        let ding = render(WebhookFormat::DingTalk, &s);
        assert_eq!(ding["msgtype"], "markdown");
        assert_eq!(ding["markdown"]["title"], "aliyun-janitor: dry run, 2 would be released (incomplete)");
        let feishu = render(WebhookFormat::Feishu, &s);
        assert_eq!(feishu["msg_type"], "text");
        assert!(feishu.get("sign").is_none(), "signing happens at send time");
        let wecom = render(WebhookFormat::WeCom, &s);
        assert_eq!(wecom["msgtype"], "markdown");
        assert_eq!(render(WebhookFormat::Json, &s), serde_json::to_value(&s).unwrap());
    }

    #[test]
    fn long_lists_are_cut_and_fit_each_platform() {
        let s = summary(5_000);
        let text = explain::message(&s, Markup::Plain, usize::MAX);
        assert!(text.contains("- … and 4980 more"), "first 20 then a count");
        for format in [WebhookFormat::Slack, WebhookFormat::DingTalk, WebhookFormat::Feishu, WebhookFormat::WeCom] {
            let body = render(format, &s);
            let text = body
                .get("text")
                .or(body["markdown"].get("text"))
                .or(body["markdown"].get("content"))
                .or(body["content"].get("text"));
            let text = text.and_then(Value::as_str).expect("has text");
            assert!(text.len() <= format.text_limit().unwrap(), "{format}: {}", text.len());
            assert!(text.contains("Would release (5000)"), "{format}: counts survive the cut");
        }
    }

    #[test]
    fn signing_per_format() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let s = summary(1);

        let t = &targets("dingtalk", Some("this is secret"))[0];
        let out = sign(t, &render(t.format, &s), now);
        let query: Vec<(String, String)> = out.url.query_pairs().into_owned().collect();
        assert_eq!(query[0], ("access_token".into(), "abcdef123456".into()));
        assert_eq!(query[1], ("timestamp".into(), "1700000000000".into()));
        assert_eq!(query[2], ("sign".into(), dingtalk_sign("this is secret", 1_700_000_000_000)));
        assert!(out.url.as_str().contains("sign=sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0%3D"), "URL-encoded sign");

        let t = &targets("feishu", Some("this is secret"))[0];
        let body: Value = serde_json::from_slice(&sign(t, &render(t.format, &s), now).body).unwrap();
        assert_eq!(body["timestamp"], "1700000000");
        assert_eq!(body["sign"], "OfGzRzoUICBOoc8wVra1e4A1hPfbZ9zqXozA8CWVUuY=");

        let t = &targets("json", Some("this is secret"))[0];
        let out = sign(t, &render(t.format, &s), now);
        assert_eq!(out.headers[0], ("x-janitor-timestamp", "1700000000".to_string()));
        assert_eq!(out.headers[1], ("x-janitor-signature", json_signature("this is secret", 1_700_000_000, &out.body)));

        let t = &targets("json", None)[0];
        assert_eq!(sign(t, &Value::Null, now).headers.len(), 1, "unsigned JSON still carries its timestamp");
    }

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

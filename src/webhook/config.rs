//! `JANITOR_WEBHOOKS`: parsed once into [`WebhookTarget`]s; errors name the field, never a URL or secret.

use std::fmt;

use reqwest::Url;
use serde::Serialize;
use serde_json::Value;

use crate::event::json_kind as kind;

/// The environment variable holding the targets: a JSON array, secret as a whole.
pub const ENV_VAR: &str = "JANITOR_WEBHOOKS";
/// Most targets one configuration may list.
pub const MAX_TARGETS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The [`Summary`](crate::report::Summary) as JSON, with `X-Janitor-Timestamp` and `X-Janitor-Signature` headers.
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
    pub(super) fn text_limit(self) -> Option<usize> {
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
    pub(super) format: WebhookFormat,
    pub(super) url: Url,
    pub(super) secret: Option<String>,
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
    pub(super) fn scrub(&self, text: &str) -> String {
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
    /// The HTTP client could not be built (a TLS setup problem); the text comes from `without_url()`.
    #[error("the webhook HTTP client could not be built: {0}")]
    Client(String),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SECRET: &str = "SEC-topsecret-0123456789";

    pub(crate) fn targets(format: &str, secret: Option<&str>) -> Vec<WebhookTarget> {
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
}

//! Signing (reference: DingTalk and Feishu custom-bot docs, "加签" / "签名校验").

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use serde_json::Value;
use sha2::Sha256;

use super::{WebhookFormat, WebhookTarget};

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
pub(super) struct Outgoing {
    pub(super) url: Url,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Vec<u8>,
}

pub(super) fn sign(target: &WebhookTarget, rendered: &Value, now: DateTime<Utc>) -> Outgoing {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::explain::tests::summary;
    use crate::webhook::config::tests::targets;
    use crate::webhook::render;

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
}

//! Summary webhooks against a loopback receiver: payload shapes and signatures per format (recomputed here,
//! independently of the crate), retries, and failures that never reveal the URL or the secret.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aliyun_janitor::plan::{Decision, Facts, RunMode, Verdict};
use aliyun_janitor::report::{Entry, Outcome, SkippedScope, Summary};
use aliyun_janitor::webhook::{
    deliver_all, deliver_all_with, render, targets_from_env_value, Delivery, DeliveryPolicy, WebhookFormat,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "SECtest-secret-5f1a9c";
/// Stands in for the credential part of a webhook URL (Slack's path, DingTalk's access_token).
const TOKEN: &str = "tok3n-in-the-url-8d2e";

#[derive(Debug, Clone)]
struct Recorded {
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Receiver {
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Answers to give in order; once used up, `fallback` is given.
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
    fallback: (u16, String),
    delay: Duration,
}

impl Receiver {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn record(State(rx): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    rx.requests.lock().unwrap().push(Recorded { uri, headers, body });
    tokio::time::sleep(rx.delay).await;
    let (status, body) = rx.script.lock().unwrap().pop_front().unwrap_or_else(|| rx.fallback.clone());
    (StatusCode::from_u16(status).unwrap(), body)
}

/// Starts a receiver on 127.0.0.1:0 and returns its base URL.
async fn receiver(script: &[(u16, &str)], fallback: (u16, &str), delay: Duration) -> (String, Receiver) {
    let rx = Receiver {
        requests: Arc::default(),
        script: Arc::new(Mutex::new(script.iter().map(|(s, b)| (*s, b.to_string())).collect())),
        fallback: (fallback.0, fallback.1.to_string()),
        delay,
    };
    let app = axum::Router::new().fallback(record).with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn fast() -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: 3,
        first_backoff: Duration::from_millis(20),
        attempt_timeout: Duration::from_millis(500),
        budget: Duration::from_secs(5),
    }
}

fn target_json(format: &str, url: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) => format!(r#"{{"format":"{format}","url":"{url}","secret":"{s}"}}"#),
        None => format!(r#"{{"format":"{format}","url":"{url}"}}"#),
    }
}

fn one_target(format: &str, url: &str, secret: Option<&str>) -> Vec<aliyun_janitor::webhook::WebhookTarget> {
    targets_from_env_value(&format!("[{}]", target_json(format, url, secret))).unwrap()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn entry(id: &str, name: &str, outcome: Outcome, verdict: Verdict) -> Entry {
    let decision = Decision {
        product: "ecs".into(),
        region: "cn-hangzhou".into(),
        id: id.into(),
        name: name.into(),
        verdict,
        rule: Some("expired-tag".into()),
        facts: Facts::from_iter([("charge_type", "pay-as-you-go")]),
    };
    Entry { outcome, ..Entry::from_decision(decision) }
}

/// A run with one of everything: released, would release, failed, protected, skipped, an unscanned scope.
fn summary(mode: &str) -> Summary {
    let release = || Verdict::Release { options: Default::default() };
    let (done, pending) = if mode == "apply" {
        (Outcome::Released, Outcome::Failed)
    } else {
        (Outcome::WouldRelease, Outcome::WouldRelease)
    };
    let mut failed = entry("i-bp1fail", "", pending, release());
    if mode == "apply" {
        failed.code = Some("IncorrectInstanceStatus".into());
        failed.message = Some("The current status of the resource does not support this operation.".into());
    }
    let mut s = Summary {
        run_id: "run-42".into(),
        account_id: "1234567890123456".into(),
        mode: if mode == "apply" { RunMode::Apply } else { RunMode::DryRun },
        mode_reason: if mode == "apply" { "policy apply: true".into() } else { "policy apply: false".into() },
        trigger: "scheduled (fc.timer)".into(),
        now: "2026-03-02T19:00:00Z".into(),
        scanned: 5,
        counts: BTreeMap::new(),
        released: Vec::new(),
        would_release: Vec::new(),
        marked: Vec::new(),
        unmarked: Vec::new(),
        finished: vec![],
        failures: Vec::new(),
        skipped_scopes: vec![SkippedScope {
            product: "ecs".into(),
            region: "cn-beijing".into(),
            code: "Forbidden.RAM".into(),
            error: "User not authorized".into(),
        }],
        limit_breach: None,
        api_calls: BTreeMap::from([("ecs:DescribeInstances".to_string(), 3)]),
        notifications: Vec::new(),
        owners: BTreeMap::new(),
        ignored: Vec::new(),
        entries: vec![
            entry("i-bp1done", "ci-runner-7", done, release()),
            failed,
            entry("i-bp1keep", "prod-db", Outcome::Protected, Verdict::Protected { by: "tag janitor:keep".into() }),
            entry(
                "i-bp1run",
                "build-box",
                Outcome::Skipped,
                Verdict::Skip { reason: "running and force is off".into() },
            ),
            entry("i-bp1none", "", Outcome::Kept, Verdict::Keep),
        ],
        entries_omitted: 0,
    };
    s.finish();
    s
}

fn assert_clean(d: &Delivery, base: &str) {
    let error = d.error.as_deref().unwrap_or_default();
    for needle in [base, TOKEN, SECRET, base.trim_start_matches("http://")] {
        assert!(!error.contains(needle), "error {error:?} leaks {needle:?}");
    }
}

#[tokio::test]
async fn json_payload_carries_a_verifiable_signature() {
    let (base, rx) = receiver(&[], (200, ""), Duration::ZERO).await;
    let s = summary("apply");
    let before = now_secs();
    let out = deliver_all(&http(), &one_target("json", &format!("{base}/hook/{TOKEN}"), Some(SECRET)), &s).await;
    assert_eq!(out, vec![Delivery { index: 0, format: WebhookFormat::Json, ok: true, attempts: 1, error: None }]);

    let req = &rx.requests()[0];
    assert_eq!(req.uri.path(), format!("/hook/{TOKEN}"));
    assert_eq!(req.headers["content-type"], "application/json; charset=utf-8");
    let ts: i64 = req.headers["x-janitor-timestamp"].to_str().unwrap().parse().unwrap();
    assert!((before..=now_secs()).contains(&ts));
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&req.body);
    let hex: String = hmac_sha256(SECRET.as_bytes(), &signed).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(req.headers["x-janitor-signature"], format!("sha256={hex}"));

    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body, serde_json::to_value(&s).unwrap(), "the body is the summary itself");
    assert_eq!(body["released"][0], "ecs:cn-hangzhou/i-bp1done");
    assert_eq!(body["failures"][0]["code"], "IncorrectInstanceStatus");
}

#[tokio::test]
async fn slack_gets_mrkdwn_text_with_every_section() {
    let (base, rx) = receiver(&[], (200, "ok"), Duration::ZERO).await;
    let out =
        deliver_all(&http(), &one_target("slack", &format!("{base}/services/{TOKEN}"), None), &summary("apply")).await;
    assert!(out[0].ok, "{out:?}");
    let body: Value = serde_json::from_slice(&rx.requests()[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    for want in [
        "*aliyun-janitor APPLY — INCOMPLETE*",
        "*Released (1)*\n• ecs:cn-hangzhou/i-bp1done ci-runner-7 — rule expired-tag",
        "*Failed (1)*\n• ecs:cn-hangzhou/i-bp1fail — IncorrectInstanceStatus: The current status",
        "*Protected & skipped (2)*\n• ecs:cn-hangzhou/i-bp1keep prod-db — protected: by tag janitor:keep\n• ecs:cn-hangzhou/i-bp1run build-box — skipped: running and force is off",
        "*Not scanned (1)*\n• ecs/cn-beijing — Forbidden.RAM: User not authorized",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(body.as_object().unwrap().len(), 1, "only `text`");
}

#[tokio::test]
async fn dingtalk_signs_the_url_and_sends_markdown() {
    let (base, rx) = receiver(&[], (200, r#"{"errcode":0,"errmsg":"ok"}"#), Duration::ZERO).await;
    let before = chrono::Utc::now().timestamp_millis();
    let url = format!("{base}/robot/send?access_token={TOKEN}");
    let out = deliver_all(&http(), &one_target("dingtalk", &url, Some(SECRET)), &summary("dry-run")).await;
    assert!(out[0].ok, "{out:?}");

    let req = &rx.requests()[0];
    assert_eq!(req.uri.path(), "/robot/send");
    let raw_query = req.uri.query().unwrap();
    let query: BTreeMap<String, String> =
        reqwest::Url::parse(&format!("http://x/?{raw_query}")).unwrap().query_pairs().into_owned().collect();
    assert_eq!(query["access_token"], TOKEN);
    let ts: i64 = query["timestamp"].parse().unwrap();
    assert!((before..=chrono::Utc::now().timestamp_millis()).contains(&ts), "timestamp in milliseconds");
    let want = b64(&hmac_sha256(SECRET.as_bytes(), format!("{ts}\n{SECRET}").as_bytes()));
    assert_eq!(query["sign"], want);
    assert!(!raw_query.contains('+') && !raw_query.contains('/'), "sign is URL-encoded: {raw_query}");

    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["markdown"]["title"], "aliyun-janitor: dry run, 2 would be released (incomplete)");
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(text.starts_with("### aliyun-janitor DRY RUN"), "{text}");
    assert!(
        text.contains("#### Would release (2)\n- ecs:cn-hangzhou/i-bp1done ci-runner-7 — rule expired-tag"),
        "{text}"
    );
}

#[tokio::test]
async fn feishu_signs_the_body_when_a_secret_is_set() {
    let (base, rx) = receiver(
        &[],
        (200, r#"{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}"#),
        Duration::ZERO,
    )
    .await;
    let url = format!("{base}/open-apis/bot/v2/hook/{TOKEN}");
    let mut targets = one_target("feishu", &url, Some(SECRET));
    targets.extend(one_target("lark", &url, None));
    let before = now_secs();
    let out = deliver_all(&http(), &targets, &summary("dry-run")).await;
    assert!(out.iter().all(|d| d.ok), "{out:?}");
    assert_eq!(out.iter().map(|d| d.index).collect::<Vec<_>>(), [0, 1]);

    let requests = rx.requests();
    let bodies: Vec<Value> = requests.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    let signed = bodies.iter().find(|b| b.get("sign").is_some()).expect("one signed body");
    let ts_text = signed["timestamp"].as_str().expect("timestamp is a string");
    let ts: i64 = ts_text.parse().unwrap();
    assert!((before..=now_secs()).contains(&ts), "timestamp in seconds");
    assert_eq!(signed["sign"], b64(&hmac_sha256(format!("{ts}\n{SECRET}").as_bytes(), b"")));
    assert_eq!(signed["msg_type"], "text");
    assert!(signed["content"]["text"].as_str().unwrap().contains("Would release (2):\n- ecs:cn-hangzhou/i-bp1done"));

    let unsigned = bodies.iter().find(|b| b.get("sign").is_none()).expect("one unsigned body");
    assert!(unsigned.get("timestamp").is_none());
    assert_eq!(unsigned["msg_type"], "text");
}

#[tokio::test]
async fn wecom_markdown_stays_under_4096_bytes() {
    let (base, rx) = receiver(&[], (200, r#"{"errcode":0,"errmsg":"ok"}"#), Duration::ZERO).await;
    let mut s = summary("dry-run");
    s.entries.extend((0..3_000).map(|i| {
        entry(
            &format!("i-bulk{i:05}"),
            "a-rather-long-instance-name-for-size",
            Outcome::WouldRelease,
            Verdict::Release { options: Default::default() },
        )
    }));
    s.finish();
    let out =
        deliver_all(&http(), &one_target("wecom", &format!("{base}/cgi-bin/webhook/send?key={TOKEN}"), None), &s).await;
    assert!(out[0].ok, "{out:?}");
    let body: Value = serde_json::from_slice(&rx.requests()[0].body).unwrap();
    assert_eq!(body["msgtype"], "markdown");
    let content = body["markdown"]["content"].as_str().unwrap();
    assert!(content.len() <= 4096, "{} bytes", content.len());
    assert!(content.contains("#### Would release (3002)") && content.contains("more"), "{content}");
    assert_eq!(render(WebhookFormat::WeCom, &s), body, "what is sent is what `render` gives");
}

#[tokio::test]
async fn retries_503_twice_then_succeeds() {
    let (base, rx) = receiver(&[(503, "busy"), (503, "busy")], (200, "ok"), Duration::ZERO).await;
    let out =
        deliver_all_with(&http(), &one_target("slack", &format!("{base}/{TOKEN}"), None), &summary("dry-run"), fast())
            .await;
    assert_eq!(out, vec![Delivery { index: 0, format: WebhookFormat::Slack, ok: true, attempts: 3, error: None }]);
    let requests = rx.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.windows(2).all(|w| w[0].body == w[1].body), "the same message each time");
}

#[tokio::test]
async fn a_permanently_failing_receiver_yields_a_clean_error() {
    let (base, rx) = receiver(&[], (500, &format!("internal error at {TOKEN} {SECRET}")), Duration::ZERO).await;
    let url = format!("{base}/hook/{TOKEN}");
    let out = deliver_all_with(&http(), &one_target("json", &url, Some(SECRET)), &summary("apply"), fast()).await;
    assert!(!out[0].ok);
    assert_eq!(out[0].attempts, 3);
    assert_eq!(out[0].error.as_deref(), Some("HTTP 500"));
    assert_clean(&out[0], &base);
    assert_eq!(rx.requests().len(), 3);
}

#[tokio::test]
async fn client_errors_and_rejections_are_not_retried() {
    let (base, rx) =
        receiver(&[(404, "no such hook")], (200, r#"{"errcode":310000,"errmsg":"sign not match"}"#), Duration::ZERO)
            .await;
    let http = http();
    let out =
        deliver_all_with(&http, &one_target("slack", &format!("{base}/{TOKEN}"), None), &summary("apply"), fast())
            .await;
    assert_eq!((out[0].ok, out[0].attempts, out[0].error.as_deref()), (false, 1, Some("HTTP 404")));
    let out = deliver_all_with(
        &http,
        &one_target("dingtalk", &format!("{base}/robot/send?access_token={TOKEN}"), Some(SECRET)),
        &summary("apply"),
        fast(),
    )
    .await;
    assert_eq!(
        (out[0].ok, out[0].attempts, out[0].error.as_deref()),
        (false, 1, Some("dingtalk answered errcode 310000"))
    );
    assert_eq!(rx.requests().len(), 2);
}

#[tokio::test]
async fn feishu_nonzero_code_is_a_failure() {
    let (base, _rx) = receiver(
        &[],
        (200, r#"{"code":19021,"data":{},"msg":"sign match fail or timestamp is not within one hour"}"#),
        Duration::ZERO,
    )
    .await;
    let out = deliver_all_with(
        &http(),
        &one_target("feishu", &format!("{base}/hook/{TOKEN}"), Some(SECRET)),
        &summary("apply"),
        fast(),
    )
    .await;
    assert_eq!((out[0].ok, out[0].attempts, out[0].error.as_deref()), (false, 1, Some("feishu answered code 19021")));
}

#[tokio::test]
async fn connection_refused_is_retried_and_reported_without_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = deliver_all_with(
        &http(),
        &one_target("json", &format!("{base}/hook/{TOKEN}"), Some(SECRET)),
        &summary("apply"),
        fast(),
    )
    .await;
    assert!(!out[0].ok);
    assert_eq!(out[0].attempts, 3);
    assert!(out[0].error.as_deref().unwrap().starts_with("could not connect"), "{out:?}");
    assert_clean(&out[0], &base);
}

#[tokio::test]
async fn timeouts_are_retried_within_the_budget() {
    let (base, rx) = receiver(&[], (200, "ok"), Duration::from_secs(3)).await;
    let policy = DeliveryPolicy { attempt_timeout: Duration::from_millis(150), ..fast() };
    let started = std::time::Instant::now();
    let out =
        deliver_all_with(&http(), &one_target("slack", &format!("{base}/{TOKEN}"), None), &summary("apply"), policy)
            .await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!((out[0].ok, out[0].attempts), (false, 3));
    assert!(out[0].error.as_deref().unwrap().starts_with("timed out"), "{out:?}");
    assert_clean(&out[0], &base);
    assert_eq!(rx.requests().len(), 3);

    let tight = DeliveryPolicy { budget: Duration::from_millis(300), ..policy };
    let out =
        deliver_all_with(&http(), &one_target("slack", &format!("{base}/{TOKEN}"), None), &summary("apply"), tight)
            .await;
    assert!(!out[0].ok && out[0].attempts < 3, "the budget stops retries: {out:?}");
}

#[tokio::test]
async fn one_failing_target_does_not_affect_the_others() {
    let (good, good_rx) = receiver(&[], (200, "ok"), Duration::ZERO).await;
    let (bad, _) = receiver(&[], (503, "down"), Duration::ZERO).await;
    let value = format!(
        "[{},{},{}]",
        target_json("slack", &format!("{good}/a"), None),
        target_json("json", &format!("{bad}/{TOKEN}"), Some(SECRET)),
        target_json("json", &format!("{good}/b"), Some(SECRET)),
    );
    let targets = targets_from_env_value(&value).unwrap();
    let out = deliver_all_with(&http(), &targets, &summary("apply"), fast()).await;
    assert_eq!(out.iter().map(|d| (d.index, d.ok)).collect::<Vec<_>>(), [(0, true), (1, false), (2, true)]);
    assert_eq!(good_rx.requests().len(), 2);
    let result = serde_json::to_value(&out).unwrap();
    assert_eq!(
        result[1],
        serde_json::json!({"index": 1, "format": "json", "ok": false, "attempts": 3, "error": "HTTP 503"})
    );
    assert!(!result.to_string().contains(TOKEN) && !result.to_string().contains(SECRET));
}

#[tokio::test]
async fn no_targets_no_requests() {
    assert!(deliver_all(&http(), &[], &summary("apply")).await.is_empty());
}

//! The summary webhook from a whole run of the real binary: delivered after the run, and a failing webhook
//! never changes what was released.

use std::sync::{Arc, Mutex};

use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [ecs]
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
"#;

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver(status: u16) -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn record(State((seen, status)): State<(Seen, u16)>, headers: HeaderMap, body: Bytes) -> StatusCode {
        seen.lock().unwrap().push((headers, body));
        StatusCode::from_u16(status).unwrap()
    }
    let app = axum::Router::new().fallback(record).with_state((seen.clone(), status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook/s3cret-path-9d1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn inv() -> serde_json::Value {
    inventory(vec![
        ecs("i-old", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01")]),
        ecs("i-new", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2027-01-01")]),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_summary_reaches_the_webhook_after_the_run() {
    let env = Env::start(&inv()).await;
    let (url, seen) = receiver(200).await;
    let hooks = format!(r#"[{{"format":"json","url":"{url}","secret":"hook-secret-77aa"}}]"#);
    let run = env
        .run_with_env(
            POLICY,
            &["--apply"],
            &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), ("JANITOR_WEBHOOKS", &hooks)],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(body["released"][0], "ecs:cn-hangzhou/i-old");
    assert!(seen[0].0.contains_key("x-janitor-signature"));
    assert_eq!(run.summary["notifications"][0]["ok"], true);
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains("hook-secret-77aa") && !out.contains("s3cret-path-9d1"), "webhook secret leaked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_webhook_changes_nothing_that_was_released() {
    let env = Env::start(&inv()).await;
    let (url, seen) = receiver(500).await;
    let hooks = format!(r#"[{{"format":"slack","url":"{url}"}}]"#);
    let run = env
        .run_with_env(
            POLICY,
            &["--apply"],
            &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), ("JANITOR_WEBHOOKS", &hooks)],
        )
        .await;
    assert_eq!(env.released_ids(), vec!["i-old"]);
    assert_eq!(run.summary["released"][0], "ecs:cn-hangzhou/i-old");
    assert_eq!(run.summary["notifications"][0]["ok"], false);
    assert!(seen.lock().unwrap().len() >= 2, "delivery was retried");
    assert!(run.stderr.contains("summary webhook failed"));
    assert!(!run.stderr.contains("s3cret-path-9d1") && !run.stdout.contains("s3cret-path-9d1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_webhook_config_stops_the_run_before_any_call() {
    let env = Env::start(&inv()).await;
    let run = env
        .run_with_env(
            POLICY,
            &["--apply"],
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
                ("JANITOR_WEBHOOKS", r#"[{"format":"pager","url":"https://x"}]"#),
            ],
        )
        .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(env.sim.calls().is_empty());
}

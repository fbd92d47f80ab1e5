//! Issue 16 (memory at 100,000 instances): every call in flight holds a connection and its buffers, so the
//! client bounds calls in flight across all endpoints (`concurrency.total`), not only per endpoint; and a call
//! whose answer may be megabytes (Kafka's whole-region list) does not leave its connection in the pool.
//! Not the emulator: a loopback server that counts the requests it holds and records their headers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aliyun_janitor::aliyun::{ApiRequest, CallLimits, Client, Credentials, Endpoints, RetryPolicy};

#[derive(Default)]
struct Seen {
    now: AtomicUsize,
    most: AtomicUsize,
    /// (action, the request's `Connection` header).
    headers: Mutex<Vec<(String, String)>>,
}

async fn server(seen: Arc<Seen>) -> String {
    let handler = move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
        let seen = seen.clone();
        async move {
            let now = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
            seen.most.fetch_max(now, Ordering::SeqCst);
            let action = uri
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or_default()
                .to_string();
            let connection = headers.get("connection").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            seen.headers.lock().unwrap().push((action, connection));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            seen.now.fetch_sub(1, Ordering::SeqCst);
            axum::Json(serde_json::json!({"RequestId": "r-1"}))
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(handler)).await });
    url
}

fn client(url: &str, limits: CallLimits) -> Client {
    let endpoints = Endpoints::new(Some(url), &BTreeMap::new()).expect("endpoint");
    Client::new(Credentials::new("id", "secret", None), endpoints, RetryPolicy::default(), limits).expect("client")
}

#[tokio::test]
async fn calls_in_flight_are_bounded_across_every_endpoint() {
    let seen = Arc::new(Seen::default());
    let url = server(seen.clone()).await;
    // Four endpoint hosts, each allowed 8 at once: without the run-wide bound, 32 would be in flight.
    let api = client(&url, CallLimits { per_endpoint: 8, total: 3 });
    let calls = ["cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen"].iter().flat_map(|region| {
        let api = api.clone();
        (0..8).map(move |_| {
            let api = api.clone();
            async move { api.call(&ApiRequest::new("ecs", "2014-05-26", "DescribeRegions", region)).await }
        })
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let most = seen.most.load(Ordering::SeqCst);
    assert!((2..=3).contains(&most), "at most 3 calls in flight, and more than one: {most}");
}

#[tokio::test]
async fn a_call_with_a_large_answer_closes_its_connection() {
    let seen = Arc::new(Seen::default());
    let url = server(seen.clone()).await;
    let api = client(&url, CallLimits::per_endpoint(4));
    let small = ApiRequest::new("alikafka", "2019-09-16", "GetInstanceList", "cn-hangzhou").param("InstanceId.1", "a");
    api.call(&small).await.expect("filtered read");
    api.call(&ApiRequest::new("alikafka", "2019-09-16", "GetInstanceList", "cn-hangzhou").large_answer())
        .await
        .expect("whole-region read");
    let headers = seen.headers.lock().unwrap().clone();
    assert_eq!(headers.len(), 2, "{headers:?}");
    assert!(!headers[0].1.eq_ignore_ascii_case("close"), "a small answer keeps its connection: {headers:?}");
    assert!(headers[1].1.eq_ignore_ascii_case("close"), "a large answer's connection is closed: {headers:?}");
}

#[tokio::test]
async fn at_most_two_large_answers_are_read_at_once() {
    let seen = Arc::new(Seen::default());
    let url = server(seen.clone()).await;
    let api = client(&url, CallLimits::per_endpoint(8));
    let regions = ["cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen", "cn-qingdao", "cn-chengdu"];
    let calls =
        regions.iter().map(|region| {
            let api = api.clone();
            async move {
                api.call(&ApiRequest::new("alikafka", "2019-09-16", "GetInstanceList", region).large_answer()).await
            }
        });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(seen.most.load(Ordering::SeqCst), 2, "six regions' whole lists, two at a time");
}

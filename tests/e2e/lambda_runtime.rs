//! End to end: the real binary runs the real `lambda_runtime` loop against a Lambda Runtime API served here
//! on loopback (the same protocol as Lambda and as `cargo lambda watch`), with the emulator as the cloud.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::runtime::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, Mutex};

#[derive(Debug)]
pub(crate) enum Outcome {
    Response { id: String, body: Value },
    Error { id: String, body: Value },
    InitError { body: Value, error_type_header: String },
}

pub(crate) struct RuntimeApi {
    queue: Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    results: mpsc::UnboundedSender<Outcome>,
    first_next: std::sync::Mutex<Option<Instant>>,
}

/// A running Runtime API: push events with `invoke`, read what the function answered with `next_outcome`.
pub(crate) struct Harness {
    addr: String,
    events: mpsc::UnboundedSender<(String, Vec<u8>)>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    api: Arc<RuntimeApi>,
    n: usize,
}

impl Harness {
    pub(crate) async fn start() -> Harness {
        let (events, queue) = mpsc::unbounded_channel();
        let (results, outcomes) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi { queue: Mutex::new(queue), results, first_next: std::sync::Mutex::new(None) });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Harness { addr, events, outcomes, api, n: 0 }
    }

    /// Queues one event and waits for the function's answer to it.
    pub(crate) async fn invoke(&mut self, body: &[u8]) -> Outcome {
        self.n += 1;
        let id = format!("req-{}", self.n);
        self.events.send((id.clone(), body.to_vec())).unwrap();
        let outcome =
            self.next_outcome(Duration::from_secs(60)).await.expect("no answer from the function within 60 s");
        match &outcome {
            Outcome::Response { id: got, .. } | Outcome::Error { id: got, .. } => {
                assert_eq!(got, &id, "answer for the wrong request")
            }
            Outcome::InitError { body, .. } => panic!("unexpected init error: {body}"),
        }
        outcome
    }

    async fn next_outcome(&mut self, timeout: Duration) -> Option<Outcome> {
        tokio::time::timeout(timeout, self.outcomes.recv()).await.ok().flatten()
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.addr.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", "aliyun-janitor".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("RUST_LOG", "info".into()),
        ]
    }
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> impl IntoResponse {
    api.first_next.lock().unwrap().get_or_insert_with(Instant::now);
    // Long poll, like Lambda: the request is answered when an event is queued.
    let Some((id, body)) = api.queue.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Vec::new());
    };
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 300_000;
    let mut h = HeaderMap::new();
    h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
    h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:aliyun-janitor".parse().unwrap(),
    );
    h.insert(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".parse().unwrap(),
    );
    h.insert("content-type", "application/json".parse().unwrap());
    (StatusCode::OK, h, body)
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = api.results.send(Outcome::Response { id, body: json(&body) });
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = api.results.send(Outcome::Error { id, body: json(&body) });
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let error_type_header =
        headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let _ = api.results.send(Outcome::InitError { body: json(&body), error_type_header });
    StatusCode::ACCEPTED
}

pub(crate) fn spawn_function(harness: &Harness, extra: &[(&str, String)]) -> Proc {
    let mut env: Vec<(&str, String)> = harness.env();
    env.extend(extra.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Proc::spawn(&[], &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_loop_answers_every_sample_event_and_survives_bad_ones() {
    let dir = temp_dir("lambda-loop");
    let (_sim, sim_url) = start_sim(&dir);
    let policy = write(&dir, "policy.yaml", POLICY);
    let mut harness = Harness::start().await;
    let mut function = spawn_function(
        &harness,
        &[
            ("JANITOR_POLICY", policy.display().to_string()),
            ("JANITOR_ENDPOINT", sim_url.clone()),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", SIM_KEY_ID.into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SIM_SECRET.into()),
        ],
    );

    let mut answered = 0;
    for (name, body) in sample_events() {
        let outcome = harness.invoke(&body).await;
        match (name.starts_with("invalid"), outcome) {
            (false, Outcome::Response { body: summary, .. }) => {
                check_dry_run_summary(&name, &summary);
                if is_core(&name) {
                    check_core_summary(&name, &summary);
                }
                answered += 1;
            }
            (true, Outcome::Error { body, .. }) => assert!(body["errorType"].is_string(), "{name}: {body}"),
            (_, other) => panic!("{name}: unexpected answer {other:?}\nstderr:\n{}", function.stderr()),
        }
    }
    assert!(answered >= 3);
    eprintln!(
        "lambda cold start (spawn → first /next): {:?}",
        harness.api.first_next.lock().unwrap().map(|t| t - function.started)
    );

    // An event of no known shape is the function's error, classified, and nothing runs.
    match harness.invoke(br#"{"unexpected": true}"#).await {
        Outcome::Error { body, .. } => {
            assert_eq!(body["errorType"], "InvalidEvent", "{body}");
            assert!(body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        }
        other => panic!("a malformed event must be an error: {other:?}"),
    }
    // Not even JSON: the runtime refuses it before the handler.
    assert!(matches!(harness.invoke(b"this is not json").await, Outcome::Error { .. }));

    // The loop goes on after errors.
    let scheduled =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events/aws-scheduled.json")).unwrap();
    match harness.invoke(&scheduled).await {
        Outcome::Response { body, .. } => check_core_summary("aws-scheduled.json (again)", &body),
        other => panic!("{other:?}"),
    }
    assert!(function.is_running(), "the function must keep polling");
    function_logs_checked(&mut function);
}

/// Kills the function and checks its output for secrets and panics.
fn function_logs_checked(function: &mut Proc) -> &mut Proc {
    function.kill_and_collect();
    let (out, err) = (function.stdout(), function.stderr());
    assert_no_secrets("stdout", &out);
    assert_no_secrets("stderr", &err);
    assert!(!err.contains("panicked"), "{err}");
    function
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policy_is_reported_as_an_init_error_and_the_process_exits() {
    let dir = temp_dir("lambda-init-error");
    let mut harness = Harness::start().await;
    let missing = dir.join("no-such-policy.yaml");
    let mut function = spawn_function(
        &harness,
        &[
            ("JANITOR_POLICY", missing.display().to_string()),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", SIM_KEY_ID.into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SIM_SECRET.into()),
        ],
    );
    match harness.next_outcome(Duration::from_secs(30)).await {
        Some(Outcome::InitError { body, error_type_header }) => {
            assert_eq!(body["errorType"], "InvalidPolicy", "{body}");
            assert!(body["errorMessage"].as_str().unwrap().contains("no-such-policy.yaml"), "{body}");
            assert_eq!(error_type_header, "Runtime.InvalidPolicy");
        }
        other => panic!("expected an init error, got {other:?}\nstderr:\n{}", function.stderr()),
    }
    let status = function.wait_exit(Duration::from_secs(10)).expect("the function must exit after an init error");
    assert!(!status.success());
    assert!(harness.api.first_next.lock().unwrap().is_none(), "no event may be fetched with a bad policy");
    function_logs_checked(&mut function);
}

#[test]
fn missing_lambda_variables_exit_with_a_clear_error_not_a_panic() {
    let mut function =
        Proc::spawn(&[], &[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"), ("AWS_LAMBDA_FUNCTION_NAME", "aliyun-janitor")]);
    let status = function.wait_exit(Duration::from_secs(10)).expect("must exit");
    assert_eq!(status.code(), Some(1));
    let err = function.stderr();
    assert!(err.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_VERSION"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The AWS Parameters and Secrets Lambda Extension's one route as the function uses it (Secrets Manager user
/// guide, "Use AWS Secrets Manager secrets in AWS Lambda functions"): `GET /secretsmanager/get?secretId=…` with
/// the function's session token in `X-Aws-Parameters-Secrets-Token`, answered like `GetSecretValue`.
struct FakeExtension {
    /// The secret's current value; `None` answers 400 as the extension does for a missing secret.
    value: std::sync::Mutex<Option<Value>>,
    reads: std::sync::atomic::AtomicUsize,
}

const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:aliyun-janitor-key-AbCdEf";
const SESSION_TOKEN: &str = "lambda-session-token-7f3a";

async fn extension_get(
    State(ext): State<Arc<FakeExtension>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> (StatusCode, String) {
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    ext.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if headers.get("x-aws-parameters-secrets-token").and_then(|v| v.to_str().ok()) != Some(SESSION_TOKEN) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong X-Aws-Parameters-Secrets-Token".into());
    }
    match (q.get("secretId").map(String::as_str), ext.value.lock().unwrap().clone()) {
        (Some(SECRET_ARN), Some(v)) => (
            StatusCode::OK,
            serde_json::json!({"ARN": SECRET_ARN, "Name": "aliyun-janitor-key", "SecretString": v.to_string(),
                               "VersionId": "v", "VersionStages": ["AWSCURRENT"]})
            .to_string(),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException: Secrets Manager can't find the specified secret.".into(),
        ),
    }
}

fn key(id: &str, secret: &str) -> Value {
    serde_json::json!({"AccessKeyId": id, "AccessKeySecret": secret})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_used_by_the_next_invocation_without_a_redeploy() {
    let dir = temp_dir("lambda-secret-rotation");
    let (_sim, sim_url) = start_sim(&dir);
    let policy = write(&dir, "policy.yaml", POLICY);
    let ext = Arc::new(FakeExtension {
        value: std::sync::Mutex::new(Some(key(SIM_KEY_ID, SIM_SECRET))),
        reads: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/secretsmanager/get", get(extension_get)).with_state(ext.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut harness = Harness::start().await;
    let mut function = spawn_function(
        &harness,
        &[
            ("JANITOR_POLICY", policy.display().to_string()),
            ("JANITOR_ENDPOINT", sim_url.clone()),
            ("JANITOR_CREDENTIALS_SECRET_ARN", SECRET_ARN.into()),
            ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.to_string()),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN.into()),
            // The secret wins over the environment: these would be refused by the emulator.
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", WRONG_KEY_ID.into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", WRONG_SECRET.into()),
        ],
    );
    let scheduled =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events/aws-scheduled.json")).unwrap();

    match harness.invoke(&scheduled).await {
        Outcome::Response { body, .. } => check_core_summary("with the secret's key", &body),
        other => panic!("{other:?}\nstderr:\n{}", function.stderr()),
    }
    assert_eq!(ext.reads.load(std::sync::atomic::Ordering::SeqCst), 1, "read at invocation time, once");

    // The key is rotated (here: replaced by one the cloud refuses): the very next invocation uses it.
    *ext.value.lock().unwrap() = Some(key(WRONG_KEY_ID, WRONG_SECRET));
    match harness.invoke(&scheduled).await {
        Outcome::Response { body, .. } => {
            let refused = body["skipped_scopes"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|x| x["code"] == "InvalidAccessKeyId.NotFound"));
            assert!(refused, "every scope must be refused with the rotated key: {body:#}");
            assert!(str_list(&body["would_release"]).is_empty(), "{body:#}");
        }
        Outcome::Error { body, .. } => assert!(body["errorMessage"].is_string(), "{body}"),
        other => panic!("{other:?}"),
    }
    // Rotated back to a good key: no restart needed.
    *ext.value.lock().unwrap() = Some(key(SIM_KEY_ID, SIM_SECRET));
    match harness.invoke(&scheduled).await {
        Outcome::Response { body, .. } => check_core_summary("after rotation", &body),
        other => panic!("{other:?}"),
    }

    // A secret without its key fields, or one the extension cannot find: the invocation fails, naming the
    // secret and the field, and nothing is listed.
    let sim_calls = || async {
        let calls: Value =
            http_client().get(format!("{sim_url}/_sim/calls")).send().await.unwrap().json().await.unwrap();
        calls.as_array().map_or(0, Vec::len)
    };
    let calls_before = sim_calls().await;
    *ext.value.lock().unwrap() = Some(serde_json::json!({"AccessKeyId": SIM_KEY_ID}));
    match harness.invoke(&scheduled).await {
        Outcome::Error { body, .. } => {
            assert_eq!(body["errorType"], "CredentialSource", "{body}");
            let m = body["errorMessage"].as_str().unwrap_or_default();
            assert!(m.contains(SECRET_ARN) && m.contains("AccessKeySecret"), "{m}");
        }
        other => panic!("a secret without AccessKeySecret must fail the invocation: {other:?}"),
    }
    *ext.value.lock().unwrap() = None;
    match harness.invoke(&scheduled).await {
        Outcome::Error { body, .. } => {
            let m = body["errorMessage"].as_str().unwrap_or_default();
            assert!(m.contains("HTTP 400") && m.contains("ResourceNotFoundException"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim_calls().await, calls_before, "no API call without credentials");
    function_logs_checked(&mut function);
}

//! Alibaba Function Compute custom runtime: an HTTP server on `0.0.0.0:$FC_CUSTOM_LISTEN_PORT` that runs
//! [`job::handle`] on every `POST /invoke` body (reference section 4.2). Success is `200` +
//! `x-fc-status: 200` with the summary; an error is `404` + `x-fc-status: 404` with
//! `{"errorType","errorMessage"}` (FC's "unhandled function error").

use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Mutex;

use super::{clean_id, env_secrets_owned, settings_from_env, InvocationError, StartupError};
use crate::aliyun::Credentials;
use crate::job::Settings;

pub const DEFAULT_PORT: u16 = 9000;
const HEADER_KEY_ID: &str = "x-fc-access-key-id";
const HEADER_KEY_SECRET: &str = "x-fc-access-key-secret";
const HEADER_TOKEN: &str = "x-fc-security-token";
const HEADER_REQUEST_ID: &str = "x-fc-request-id";
/// Largest event body accepted (FC's own limit for a synchronous invocation is 32 MB; events are small).
const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// What every request handler shares: the settings built at start (or why they could not be), and a lock
/// so that two invocations on one instance never run at the same time.
pub struct AppState {
    settings: Result<Settings, StartupError>,
    run_lock: Mutex<()>,
}

impl AppState {
    pub fn new(settings: Result<Settings, StartupError>) -> Self {
        AppState { settings, run_lock: Mutex::new(()) }
    }
}

/// Serves the FC contract until SIGTERM (or Ctrl-C). A bad policy does not stop the server: every
/// `/invoke` then answers 404 with the error, which FC shows in the invocation result and the logs.
pub async fn run_fc() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let port = match listen_port(env) {
        Ok(p) => p,
        Err(msg) => {
            tracing::error!(error = msg, "cannot start the Function Compute server");
            eprintln!("error: {msg}");
            return ExitCode::from(1);
        }
    };
    let settings = settings_from_env(env);
    if let Err(e) = &settings {
        tracing::error!(kind = e.kind, error = %e, "cannot load the settings: every invocation will fail with this error");
    }
    // FC only reaches the instance through 0.0.0.0 (reference 4.2: do not bind 127.0.0.1).
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(port, error = %e, "cannot listen");
            eprintln!("error: cannot listen on 0.0.0.0:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(port, "Function Compute custom runtime listening");
    let app = router(Arc::new(AppState::new(settings)));
    match axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::from(1)
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/invoke", post(invoke))
        .route("/initialize", post(initialize))
        .route("/pre-freeze", get(hook_ok))
        .route("/pre-stop", get(hook_ok))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_EVENT_BYTES))
        .layer(axum::middleware::map_response(fc_status_on_every_answer))
        .with_state(state)
}

/// FC reads only 200 and 404, and takes an answer without `x-fc-status` as a success. So every answer
/// that is not a 200 (including axum's own rejections: body too large, wrong method) becomes a 404 with
/// `x-fc-status: 404`.
async fn fc_status_on_every_answer(mut response: Response) -> Response {
    let ok = response.status() == StatusCode::OK;
    if !ok {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    response
        .headers_mut()
        .insert(HeaderName::from_static("x-fc-status"), HeaderValue::from_static(if ok { "200" } else { "404" }));
    response
}

/// `FC_CUSTOM_LISTEN_PORT`, else the older `FC_SERVER_PORT`, else 9000.
fn listen_port(env: impl Fn(&str) -> Option<String>) -> Result<u16, String> {
    for k in ["FC_CUSTOM_LISTEN_PORT", "FC_SERVER_PORT"] {
        if let Some(v) = env(k).filter(|v| !v.trim().is_empty()) {
            return v
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{k} must be a port number (1-65535), not `{v}`"));
        }
    }
    Ok(DEFAULT_PORT)
}

async fn invoke(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = headers
        .get(HEADER_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(clean_id)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    println!("FC Invoke Start RequestId: {request_id}");
    let response = run_invocation(&state, &headers, &body, &request_id).await;
    println!("FC Invoke End RequestId: {request_id}");
    response
}

async fn run_invocation(state: &AppState, headers: &HeaderMap, body: &[u8], request_id: &str) -> Response {
    let settings = match &state.settings {
        Ok(s) => s,
        Err(e) => return failure(InvocationError::from_startup(e)),
    };
    // `x-fc-function-timeout`: the function's timeout in seconds (reference 4.2, UNVERIFIED as a header of every
    // invocation: without it, only JANITOR_RUN_TIMEOUT_SECS bounds the run).
    let remaining = headers
        .get("x-fc-function-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    // The account is read from STS by the run itself (`x-fc-account-id` names the function's account, which a
    // role may leave).
    let settings = &super::with_platform_deadline(settings, remaining);
    let mut secrets = env_secrets_owned();
    // The function role's credentials (request headers) win; without them, the default chain.
    let platform = credentials_from_headers(headers);
    secrets.extend(platform.iter().flat_map(|c| c.secrets()).map(String::from));
    let _one_at_a_time = state.run_lock.lock().await;
    let result = super::invoke(body, settings, platform.map(|c| (c, "Function Compute role (request headers)"))).await;
    match result {
        Ok(answer) => match serde_json::to_vec(&answer) {
            Ok(json) => reply(StatusCode::OK, json),
            Err(e) => {
                failure(InvocationError { error_type: "SummaryNotSerializable".into(), error_message: e.to_string() })
            }
        },
        Err(e) => {
            let err = InvocationError::from_job(&e, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
            tracing::error!(
                request_id,
                error_type = err.error_type,
                error = err.error_message,
                "invocation failed: nothing was released"
            );
            failure(err)
        }
    }
}

/// The function role's temporary credentials, sent by FC with every request. They win over the
/// environment because they are the freshest (STS credentials rotate); without both the id and the
/// secret, the environment is used.
pub fn credentials_from_headers(headers: &HeaderMap) -> Option<Credentials> {
    let get = |k: &str| {
        headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).map(String::from)
    };
    match (get(HEADER_KEY_ID), get(HEADER_KEY_SECRET)) {
        (Some(id), Some(secret)) => Some(Credentials::new(id, secret, get(HEADER_TOKEN))),
        _ => None,
    }
}

async fn initialize(State(state): State<Arc<AppState>>) -> Response {
    match &state.settings {
        Ok(_) => reply(StatusCode::OK, b"{}".to_vec()),
        Err(e) => failure(InvocationError::from_startup(e)),
    }
}

async fn hook_ok() -> Response {
    reply(StatusCode::OK, b"{}".to_vec())
}

async fn not_found() -> Response {
    failure(InvocationError {
        error_type: "NotFound".into(),
        error_message: "no such route: use POST /invoke or POST /initialize".into(),
    })
}

fn failure(error: InvocationError) -> Response {
    let body = serde_json::to_vec(&error).unwrap_or_default();
    reply(StatusCode::NOT_FOUND, body)
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response {
    let fc_status = if status == StatusCode::OK { "200" } else { "404" };
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (HeaderName::from_static("x-fc-status"), HeaderValue::from_static(fc_status)),
    ];
    (status, headers, body).into_response()
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn port_precedence_and_errors() {
        assert_eq!(listen_port(env(&[])), Ok(9000));
        assert_eq!(listen_port(env(&[("FC_SERVER_PORT", "8080")])), Ok(8080));
        assert_eq!(listen_port(env(&[("FC_SERVER_PORT", "8080"), ("FC_CUSTOM_LISTEN_PORT", "9100")])), Ok(9100));
        assert!(listen_port(env(&[("FC_CUSTOM_LISTEN_PORT", "http")])).unwrap_err().contains("FC_CUSTOM_LISTEN_PORT"));
        assert!(listen_port(env(&[("FC_CUSTOM_LISTEN_PORT", "0")])).is_err());
    }

    #[test]
    fn header_credentials_need_id_and_secret() {
        let mut h = HeaderMap::new();
        h.insert(HEADER_KEY_ID, HeaderValue::from_static("STS.id"));
        assert!(credentials_from_headers(&h).is_none());
        h.insert(HEADER_KEY_SECRET, HeaderValue::from_static("sts-secret"));
        h.insert(HEADER_TOKEN, HeaderValue::from_static("CAIS-token"));
        let c = credentials_from_headers(&h).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.secret(), c.security_token()),
            ("STS.id", "sts-secret", Some("CAIS-token"))
        );
        h.insert(HEADER_TOKEN, HeaderValue::from_static(""));
        assert_eq!(credentials_from_headers(&h).unwrap().security_token(), None);
    }

    #[tokio::test]
    async fn axum_rejections_are_fc_failures_too() {
        use lambda_runtime::tower::ServiceExt;
        let app = router(Arc::new(AppState::new(Err(StartupError { kind: "InvalidPolicy", message: "x".into() }))));
        let get = axum::http::Request::builder().method("GET").uri("/invoke").body(axum::body::Body::empty()).unwrap();
        let resp = app.clone().oneshot(get).await.unwrap();
        assert_eq!(
            (resp.status(), resp.headers().get("x-fc-status").unwrap().to_str().unwrap()),
            (StatusCode::NOT_FOUND, "404")
        );
        let big = axum::http::Request::builder()
            .method("POST")
            .uri("/invoke")
            .body(axum::body::Body::from(vec![b' '; MAX_EVENT_BYTES + 1]))
            .unwrap();
        let resp = app.clone().oneshot(big).await.unwrap();
        assert_eq!(
            (resp.status(), resp.headers().get("x-fc-status").unwrap().to_str().unwrap()),
            (StatusCode::NOT_FOUND, "404")
        );
        let hook =
            axum::http::Request::builder().method("GET").uri("/pre-stop").body(axum::body::Body::empty()).unwrap();
        let resp = app.oneshot(hook).await.unwrap();
        assert_eq!(
            (resp.status(), resp.headers().get("x-fc-status").unwrap().to_str().unwrap()),
            (StatusCode::OK, "200")
        );
    }

    #[tokio::test]
    async fn bad_settings_answer_404_with_fc_status() {
        let state = Arc::new(AppState::new(Err(StartupError {
            kind: "InvalidPolicy",
            message: "policy.yaml: (file): cannot read".into(),
        })));
        let resp = run_invocation(&state, &HeaderMap::new(), b"{}", "r-1").await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers().get("x-fc-status").unwrap(), "404");
        let resp = initialize(State(state)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}

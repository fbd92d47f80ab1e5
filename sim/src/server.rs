//! HTTP front: `GET`/`POST /` for API calls (parameters in the query, in a form body, or both),
//! `GET /_sim/calls`, `GET /_sim/instances` and `GET /_sim/issued-credentials` for inspection, the ECS metadata
//! service under `/latest/` and the credentials URI `GET /_sim/credentials-uri` (both in `metadata.rs`).
//!
//! Transport faults are delivered here: an injected delay is slept before answering (after the handler ran,
//! so a slow answer to a release still releases), and a reset closes the connection without an answer: the
//! response body fails on its first read, and hyper drops the connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};

use super::metadata::{MetaRequest, Plain};
use super::params::{decode_pairs, merge, Params};
use super::reply::{ApiFault, Rendered};
use super::{Sim, Wire};

/// Serves until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, sim: Sim) -> std::io::Result<()> {
    axum::serve(listener, router(sim)).await
}

/// Binds `127.0.0.1:0`, serves on the current runtime and returns the base URL (`http://127.0.0.1:PORT`).
pub async fn spawn(sim: Sim) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, sim).await {
            eprintln!("aliyun-sim: emulator stopped: {e}");
        }
    });
    Ok(format!("http://{addr}"))
}

/// The emulator serving on a runtime of its own (two worker threads),
/// for callers that are not async themselves (the serverless runtime tests, the benchmark). Stops when dropped.
pub struct ThreadServer {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadServer {
    /// Binds `127.0.0.1:0` and starts serving `sim` on a new thread.
    pub fn start(sim: Sim) -> std::io::Result<ThreadServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        listener.set_nonblocking(true)?;
        // Two worker threads: with 150 requests in flight (the benchmark's 100,000 instances), one thread could not
        // parse, verify and render them within the 50 ms latency, and answers left late. The state lock still
        // makes every request act alone, in arrival order.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let served = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => tokio::select! {
                        served = serve(listener, sim) => served,
                        _ = stopped => Ok(()),
                    },
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    eprintln!("aliyun-sim: emulator stopped: {e}");
                }
            });
        });
        Ok(ThreadServer { url, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for ThreadServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(sim: Sim) -> Router {
    Router::new()
        .route("/", get(api).post(api))
        .route("/_sim/calls", get(calls))
        .route("/_sim/instances", get(instances))
        .route("/_sim/issued-credentials", get(issued_credentials))
        .route("/_sim/credentials-uri", get(credentials_uri))
        .route("/latest/{*item}", any(metadata))
        .fallback(unknown_path)
        .with_state(sim)
}

/// The global latency is the service's response time: an answer leaves `latency` after its request arrived,
/// the emulator's own work included (so with many requests at once, its single state lock does not make
/// later ones slower than the real, parallel service would be). The request acts on arrival.
async fn api(
    State(sim): State<Sim>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let arrived = tokio::time::Instant::now();
    let parsed = parameters(query.as_deref(), &headers, &body);
    let answer = sim.answer(method.as_str(), parsed);
    deliver(answer.rendered, answer.wire, arrived + sim.latency()).await
}

async fn deliver(rendered: Rendered, wire: Wire, not_before: tokio::time::Instant) -> Response {
    tokio::time::sleep_until(not_before + wire.delay).await;
    if wire.reset {
        return Response::new(Body::new(Reset));
    }
    respond(rendered)
}

/// A body whose first read fails: hyper then closes the connection, and the client sees it drop
/// without a complete answer (a reset, from its side).
struct Reset;

impl HttpBody for Reset {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected connection reset"))))
    }
}

/// RPC APIs live at `/` only (reference 1.1).
async fn unknown_path(State(sim): State<Sim>, method: Method) -> Response {
    respond(sim.answer(method.as_str(), Err(ApiFault::action_not_found())).rendered)
}

async fn calls(State(sim): State<Sim>) -> Response {
    Json(sim.calls()).into_response()
}

async fn instances(State(sim): State<Sim>) -> Response {
    Json(sim.snapshot()).into_response()
}

async fn issued_credentials(State(sim): State<Sim>) -> Response {
    Json(sim.issued_credentials()).into_response()
}

async fn credentials_uri(State(sim): State<Sim>) -> Response {
    plain(sim.credentials_uri())
}

/// The metadata service's headers (credentials-go `providers/ecs_ram_role.go`); header names are case-insensitive.
async fn metadata(State(sim): State<Sim>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let req = MetaRequest {
        method: method.as_str(),
        path: uri.path(),
        token: header("x-aliyun-ecs-metadata-token"),
        ttl: header("x-aliyun-ecs-metadata-token-ttl-seconds"),
    };
    plain(sim.metadata(&req))
}

fn plain(p: Plain) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if p.json { "application/json;charset=utf-8" } else { "text/plain;charset=utf-8" };
    (status, [(CONTENT_TYPE, content_type)], p.body).into_response()
}

/// The union of query and form-body parameters (the signature covers both, reference 1.1).
fn parameters(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Params, ApiFault> {
    let mut pairs = decode_pairs(query.unwrap_or(""))?;
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiFault::new(400, "InvalidParameter", "The form body is not valid UTF-8."))?;
        pairs.extend(decode_pairs(text)?);
    }
    merge(pairs)
}

fn respond(r: Rendered) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(CONTENT_TYPE, "application/json;charset=utf-8")], r.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_form_body_are_merged() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/x-www-form-urlencoded; charset=UTF-8".parse().unwrap());
        let p = parameters(Some("Action=A&RegionId=cn-hangzhou"), &headers, b"InstanceId.1=i-a&Name=x+y").unwrap();
        assert_eq!(p.get("Name").map(String::as_str), Some("x y"));
        assert_eq!(p.len(), 4);
        assert!(parameters(Some("A=1"), &headers, b"A=2").is_err());
    }

    #[test]
    fn other_bodies_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        let p = parameters(None, &headers, b"{\"A\":1}").unwrap();
        assert!(p.is_empty());
        assert!(parameters(None, &HeaderMap::new(), b"A=1").unwrap().is_empty());
    }
}

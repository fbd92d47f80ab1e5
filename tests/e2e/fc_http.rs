//! End to end: the real binary in Function Compute custom-runtime mode (reference section 4.2), driven over
//! HTTP on loopback, with the emulator as the cloud.

use std::time::{Duration, Instant};

use crate::support::runtime::*;
use serde_json::Value;

pub(crate) struct Fc {
    pub(crate) proc: Proc,
    pub(crate) base: String,
    ready_after: Duration,
}

/// Starts the binary as FC would (its env vars) and waits until the port accepts connections.
pub(crate) fn start_fc(extra: &[(&str, String)]) -> Fc {
    let port = free_port();
    let mut env: Vec<(&str, String)> = vec![
        ("FC_FUNCTION_NAME", "aliyun-janitor".into()),
        ("FC_CUSTOM_LISTEN_PORT", port.to_string()),
        ("RUST_LOG", "info".into()),
    ];
    env.extend(extra.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut proc = Proc::spawn(&[], &env);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let ready_after = proc.started.elapsed();
            return Fc { proc, base: format!("http://127.0.0.1:{port}"), ready_after };
        }
        if !proc.is_running() || Instant::now() > deadline {
            panic!("the FC server did not start:\n{}", proc.stderr());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    fc_status: String,
    pub(crate) body: Value,
}

pub(crate) async fn post(client: &reqwest::Client, url: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
    let mut req = client.post(url).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request to the FC server");
    let status = resp.status().as_u16();
    let fc_status = resp.headers().get("x-fc-status").and_then(|v| v.to_str().ok()).unwrap_or("(none)").to_string();
    let bytes = resp.bytes().await.unwrap_or_default();
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer { status, fc_status, body }
}

fn check_output(fc: &mut Fc) {
    fc.proc.kill_and_collect();
    let (out, err) = (fc.proc.stdout(), fc.proc.stderr());
    assert_no_secrets("stdout", &out);
    assert_no_secrets("stderr", &err);
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc_http_mode_runs_every_sample_with_per_request_credentials() {
    let dir = temp_dir("fc-http");
    let (_sim, sim_url) = start_sim(&dir);
    let policy = write(&dir, "policy.yaml", POLICY);
    // The environment holds credentials the emulator rejects: every success below used the headers.
    let mut fc = start_fc(&[
        ("JANITOR_POLICY", policy.display().to_string()),
        ("JANITOR_ENDPOINT", sim_url),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", WRONG_KEY_ID.into()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", WRONG_SECRET.into()),
    ]);
    eprintln!("fc cold start (spawn → port accepts): {:?}", fc.ready_after);
    let client = http_client();

    let init = post(&client, &format!("{}/initialize", fc.base), b"", &[("x-fc-request-id", "init-1")]).await;
    assert_eq!((init.status, init.fc_status.as_str()), (200, "200"), "{}", init.body);

    let mut n = 0;
    for (name, body) in sample_events() {
        n += 1;
        let rid = format!("fc-req-{n}");
        let headers = [
            ("x-fc-request-id", rid.as_str()),
            ("x-fc-access-key-id", SIM_KEY_ID),
            ("x-fc-access-key-secret", SIM_SECRET),
            ("content-type", "application/octet-stream"),
        ];
        let a = post(&client, &format!("{}/invoke", fc.base), &body, &headers).await;
        if name.starts_with("invalid") {
            assert_eq!((a.status, a.fc_status.as_str()), (404, "404"), "{name}: {}", a.body);
            continue;
        }
        assert_eq!((a.status, a.fc_status.as_str()), (200, "200"), "{name}: {}\nstderr:\n{}", a.body, fc.proc.stderr());
        check_dry_run_summary(&name, &a.body);
        if is_core(&name) {
            check_core_summary(&name, &a.body);
        }
    }
    assert!(
        fc.proc.wait_stdout(&format!("FC Invoke End RequestId: fc-req-{n}\n"), Duration::from_secs(5)),
        "{}",
        fc.proc.stdout()
    );
    let stdout = fc.proc.stdout();
    for i in 1..=n {
        assert!(stdout.contains(&format!("FC Invoke Start RequestId: fc-req-{i}\n")), "{stdout}");
        assert!(stdout.contains(&format!("FC Invoke End RequestId: fc-req-{i}\n")), "{stdout}");
    }

    // Without the headers the environment's (wrong) credentials are used: STS refuses them when the run asks
    // who it is, so the invocation fails before anything is listed, naming why.
    let scheduled =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events/aws-scheduled.json")).unwrap();
    let a = post(&client, &format!("{}/invoke", fc.base), &scheduled, &[("x-fc-request-id", "env-creds")]).await;
    assert_ne!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["errorType"], "CallerIdentity", "{}", a.body);
    assert!(a.body["errorMessage"].as_str().is_some_and(|m| m.contains("InvalidAccessKeyId")), "{}", a.body);

    // A malformed event is FC's "unhandled function error": 404 + x-fc-status: 404 and a JSON error.
    let headers =
        [("x-fc-request-id", "bad-1"), ("x-fc-access-key-id", SIM_KEY_ID), ("x-fc-access-key-secret", SIM_SECRET)];
    let a = post(&client, &format!("{}/invoke", fc.base), br#"{"unexpected": true}"#, &headers).await;
    assert_eq!((a.status, a.fc_status.as_str()), (404, "404"), "{}", a.body);
    assert_eq!(a.body["errorType"], "InvalidEvent", "{}", a.body);
    assert!(a.body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()), "{}", a.body);
    let a = post(&client, &format!("{}/invoke", fc.base), b"\xff\xfe not json", &headers).await;
    assert_eq!((a.status, a.fc_status.as_str()), (404, "404"), "{}", a.body);

    let a = post(&client, &format!("{}/no-such-path", fc.base), b"{}", &[]).await;
    assert_eq!((a.status, a.fc_status.as_str()), (404, "404"));

    assert!(fc.proc.is_running(), "the server must survive bad requests");
    check_output(&mut fc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc_janitor_apply_true_releases_but_a_dry_run_request_still_wins() {
    let dir = temp_dir("fc-apply");
    let (_sim, sim_url) = start_sim(&dir);
    let policy = write(&dir, "policy.yaml", POLICY);
    // Credentials from the environment this time (FC also sets them there).
    let mut fc = start_fc(&[
        ("JANITOR_POLICY", policy.display().to_string()),
        ("JANITOR_ENDPOINT", sim_url),
        ("JANITOR_APPLY", "true".into()),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", SIM_KEY_ID.into()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SIM_SECRET.into()),
    ]);
    let client = http_client();
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");

    let manual = std::fs::read(events.join("manual-dry-run.json")).unwrap();
    let a = post(&client, &format!("{}/invoke", fc.base), &manual, &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    check_core_summary("manual-dry-run.json", &a.body);

    let scheduled = std::fs::read(events.join("aws-scheduled.json")).unwrap();
    let a = post(&client, &format!("{}/invoke", fc.base), &scheduled, &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["mode"], "apply", "{}", a.body);
    assert_eq!(str_list(&a.body["released"]), [ELIGIBLE], "{}", a.body);
    check_output(&mut fc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc_bad_policy_answers_every_invoke_with_404() {
    let dir = temp_dir("fc-bad-policy");
    let missing = dir.join("no-such-policy.yaml");
    let mut fc = start_fc(&[
        ("JANITOR_POLICY", missing.display().to_string()),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", SIM_KEY_ID.into()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SIM_SECRET.into()),
    ]);
    let client = http_client();
    let init = post(&client, &format!("{}/initialize", fc.base), b"", &[]).await;
    assert_eq!((init.status, init.fc_status.as_str()), (404, "404"), "{}", init.body);
    for _ in 0..2 {
        let a =
            post(&client, &format!("{}/invoke", fc.base), br#"{"dry_run": true}"#, &[("x-fc-request-id", "r-1")]).await;
        assert_eq!((a.status, a.fc_status.as_str()), (404, "404"), "{}", a.body);
        assert_eq!(a.body["errorType"], "InvalidPolicy", "{}", a.body);
        assert!(a.body["errorMessage"].as_str().unwrap().contains("no-such-policy.yaml"), "{}", a.body);
    }
    assert!(fc.proc.wait_stdout("FC Invoke End RequestId: r-1", Duration::from_secs(5)), "{}", fc.proc.stdout());
    check_output(&mut fc);
}

#[test]
fn fc_bad_port_exits_with_a_clear_error() {
    let mut p = Proc::spawn(&[], &[("FC_FUNCTION_NAME", "aliyun-janitor"), ("FC_CUSTOM_LISTEN_PORT", "nine-thousand")]);
    let status = p.wait_exit(Duration::from_secs(10)).expect("must exit");
    assert_eq!(status.code(), Some(1));
    assert!(p.stderr().contains("FC_CUSTOM_LISTEN_PORT must be a port number"), "{}", p.stderr());
}

/// Issue 13 item 16: with `FC_FUNCTION_NAME` set (any shell inside the function), even `aliyun-janitor --help`
/// started the FC server. A command line with arguments is always the CLI.
#[test]
fn arguments_always_mean_the_cli() {
    let out = std::process::Command::new(crate::support::BIN)
        .arg("--help")
        .env_clear()
        .env("FC_FUNCTION_NAME", "janitor")
        .env("FC_CUSTOM_LISTEN_PORT", "1")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{out:?}");
}

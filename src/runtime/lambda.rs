//! AWS Lambda custom runtime (`provided.al2023`, handler `bootstrap`): the `lambda_runtime` loop around
//! [`job::handle`]. The payload is taken as plain JSON and handed to the same event parser as the CLI's
//! `--event`; the response is the run's [`Summary`].

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{env_secrets_owned, settings_from_env, InvocationError};
use crate::job::{JobError, Settings};

/// `lambda_runtime::run` panics when one of these is missing (or the memory size is not an integer).
const REQUIRED_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Diagnostic {
        Diagnostic { error_type: e.error_type, error_message: e.error_message }
    }
}

/// Runs the Lambda loop until the Runtime API goes away. A bad policy is reported as an init error.
pub async fn run_lambda() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    if let Err(msg) = check_env(env) {
        tracing::error!(error = msg, "not started as a Lambda function: nothing will run");
        eprintln!("error: {msg}");
        return ExitCode::from(1);
    }
    let api = env("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    let settings = match settings_from_env(env) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(kind = e.kind, error = %e, "cannot start: nothing will run");
            report_init_error(&api, &InvocationError::from_startup(&e)).await;
            return ExitCode::from(1);
        }
    };
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let settings = settings.clone();
        async move { handle(event, &settings).await }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "Lambda runtime loop ended");
            ExitCode::from(1)
        }
    }
}

/// One invocation: credentials are read each time, from the Secrets Manager secret `JANITOR_CREDENTIALS_SECRET_ARN`
/// names (through the Parameters and Secrets extension, which caches it for minutes) or else from the
/// environment, so a rotated key is picked up without a redeploy.
pub async fn handle(event: LambdaEvent<Value>, settings: &Settings) -> Result<Value, InvocationError> {
    let (payload, context) = event.into_parts();
    let request_id = super::clean_id(&context.request_id);
    // `Lambda-Runtime-Deadline-Ms`: when the platform stops this invocation (ms since the epoch).
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    let remaining = (context.deadline > now_ms).then(|| std::time::Duration::from_millis(context.deadline - now_ms));
    let settings = &super::with_platform_deadline(settings, remaining);
    let mut secrets = env_secrets_owned();
    let env = |k: &str| std::env::var(k).ok();
    // The Secrets Manager secret wins when configured; without it, the default chain.
    let platform = crate::credentials::aws_secret::from_env(env).await.transpose();
    let result = match platform {
        Ok(platform) => {
            secrets.extend(platform.iter().flat_map(|c| c.secrets()).map(String::from));
            // Re-serialising a `Value` cannot fail; an empty body would be rejected by the event parser anyway.
            let body = serde_json::to_vec(&payload).unwrap_or_default();
            super::invoke(
                &body,
                settings,
                platform.map(|c| (c, "Secrets Manager secret (JANITOR_CREDENTIALS_SECRET_ARN)")),
            )
            .await
        }
        Err(e) => Err(JobError::from(e)),
    };
    match result {
        Ok(answer) => Ok(answer),
        Err(e) => {
            let err = InvocationError::from_job(&e, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
            tracing::error!(
                request_id,
                error_type = err.error_type,
                error = err.error_message,
                "invocation failed: nothing was released"
            );
            Err(err)
        }
    }
}

/// Checks what `lambda_runtime` would otherwise panic on.
fn check_env(env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    let missing: Vec<&str> =
        REQUIRED_ENV.iter().copied().filter(|k| env(k).is_none_or(|v| v.trim().is_empty())).collect();
    if !missing.is_empty() {
        return Err(format!(
            "Lambda mode needs the environment variables {} (set by Lambda; set them yourself to run the loop locally)",
            missing.join(", ")
        ));
    }
    let memory = env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if memory.trim().parse::<i32>().is_err() {
        return Err(format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be an integer (MB), not `{memory}`"));
    }
    let api = env("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    match api.parse::<axum::http::Uri>() {
        Ok(uri) if uri.authority().is_some() => Ok(()),
        _ => Err(format!("AWS_LAMBDA_RUNTIME_API must be host:port, not `{api}`")),
    }
}

/// Posts the init error to the Runtime API (`/runtime/init/error`), as a custom runtime must when it cannot
/// start. `lambda_runtime` 1.5 has no public call for it, so this is one plain HTTP/1.1 request; a failure
/// to report is only logged (the process exits non-zero either way).
async fn report_init_error(api: &str, error: &InvocationError) {
    let host = api.trim().trim_start_matches("http://").trim_end_matches('/');
    let body = serde_json::to_string(error).unwrap_or_default();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {host}\r\nLambda-Runtime-Function-Error-Type: Runtime.{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        error.error_type,
        body.len()
    );
    let send = async {
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await?;
        Ok::<String, std::io::Error>(String::from_utf8_lossy(&head[..n]).lines().next().unwrap_or_default().to_string())
    };
    match tokio::time::timeout(Duration::from_secs(3), send).await {
        Ok(Ok(status)) => tracing::info!(status, "init error reported to the Runtime API"),
        Ok(Err(e)) => tracing::error!(error = %e, "could not report the init error to the Runtime API"),
        Err(_) => tracing::error!("could not report the init error to the Runtime API: timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    const OK: [(&str, &str); 4] = [
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ("AWS_LAMBDA_FUNCTION_NAME", "aliyun-janitor"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ];

    #[test]
    fn env_check_names_what_is_missing() {
        assert_eq!(check_env(env(&OK)), Ok(()));
        let e = check_env(env(&OK[..2])).unwrap_err();
        assert!(e.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_VERSION"), "{e}");
        let mut bad = OK;
        bad[2].1 = "lots";
        assert!(check_env(env(&bad)).unwrap_err().contains("integer"));
        bad = OK;
        bad[0].1 = "not a host";
        assert!(check_env(env(&bad)).unwrap_err().contains("host:port"));
    }

    #[test]
    fn diagnostic_carries_the_kind() {
        let e = JobError::Widening(crate::scan::WideningError { what: "region", value: "us-east-1".into() });
        let d: Diagnostic = InvocationError::from_job(&e, &[]).into();
        assert_eq!(d.error_type, "ScopeWidening");
        assert!(d.error_message.contains("us-east-1"));
    }
}

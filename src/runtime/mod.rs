//! Serverless runtimes. The same binary is a CLI, an AWS Lambda custom runtime ([`lambda`]) or an Alibaba
//! Function Compute custom runtime ([`fc`]); started bare, which one is decided from the environment (any
//! argument means the CLI). Both serverless modes build their [`Settings`] once at start, from the environment, and run
//! [`crate::job::handle`] per invocation.

pub mod fc;
pub mod lambda;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

pub use fc::run_fc;
pub use lambda::run_lambda;

use crate::aliyun::{CredentialSource, Credentials};
use crate::job::{Deps, JobError, Settings};
use crate::policy::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Cli,
    /// `AWS_LAMBDA_RUNTIME_API` is set: Lambda started us.
    Lambda,
    /// `FC_FUNCTION_NAME` or `FC_CUSTOM_LISTEN_PORT` is set (and not Lambda): Function Compute started us.
    FunctionCompute,
}

/// Policy file; default `policy.yaml` next to the executable (shipped in the deployment package).
pub const ENV_POLICY: &str = "JANITOR_POLICY";
/// One base URL for every API call (the emulator).
pub const ENV_ENDPOINT: &str = "JANITOR_ENDPOINT";
/// Apply mode: on only when exactly `true`. The policy's `apply: true` works too.
pub const ENV_APPLY: &str = "JANITOR_APPLY";
/// Evaluate the policy at this RFC 3339 time instead of now (replays, tests).
pub const ENV_NOW: &str = "JANITOR_NOW";
/// The account the run must act in: a run whose credentials (GetCallerIdentity) belong to another is refused.
pub const ENV_ACCOUNT_ID: &str = "JANITOR_ACCOUNT_ID";
/// A role to act through (replaces the policy's `role_arn:`).
pub const ENV_ROLE_ARN: &str = "JANITOR_ROLE_ARN";

/// `--role-arn` / `JANITOR_ROLE_ARN`, checked.
pub fn role_from(arn: Option<String>) -> Result<Option<crate::credentials::RoleSpec>, String> {
    match arn.map(|a| a.trim().to_string()).filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(a) => {
            crate::credentials::sts::check_role_arn(&a)
                .map_err(|m| format!("{ENV_ROLE_ARN} / --role-arn `{a}`: {m}"))?;
            Ok(Some(crate::credentials::RoleSpec::new(a)))
        }
    }
}

/// The dependencies of one invocation: the API client for its credentials, the catalog's adapters, the
/// webhook targets read from `JANITOR_WEBHOOKS` now (they may rotate between invocations) and the process's one
/// webhook HTTP client. `platform` is what the platform hands this invocation (FC's request headers, Lambda's
/// secret), with its name; without it the default chain is searched. A role to act through goes on top.
pub async fn deps(settings: &Settings, platform: Option<(Credentials, &str)>) -> Result<Deps, JobError> {
    let webhooks = crate::webhook::targets_from_env()?;
    let credentials = credential_source(settings, platform).await?;
    Deps::connect(settings, credentials, webhooks, webhook_client()?)
}

/// One invocation's work, whatever the platform: an organisation step (`{"janitor_step": ...}`), an organisation
/// run (a policy with `accounts:`, run by the local runner within this invocation), or an ordinary run. The
/// answer is the step's document or the run's summary, as JSON.
pub async fn invoke(
    body: &[u8],
    settings: &Settings,
    platform: Option<(Credentials, &str)>,
) -> Result<serde_json::Value, JobError> {
    let to_value = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| JobError::Org { kind: "SummaryNotSerializable", message: e.to_string() })
    };
    let is_step = crate::org::is_step(body);
    if is_step || settings.policy.accounts.is_some() {
        let base = credential_source(settings, platform).await?;
        let webhooks = crate::webhook::targets_from_env()?;
        if is_step {
            return Ok(crate::org::handle_step(body, settings, base, &webhooks).await?);
        }
        crate::event::parse(body)?;
        let summary = crate::org::run_local(settings, base, &webhooks).await?;
        return to_value(serde_json::to_value(summary));
    }
    let deps = deps(settings, platform).await?;
    let mut summary = crate::job::handle(body, settings, &deps).await?;
    summary.fit_answer(crate::report::ANSWER_BUDGET);
    if summary.is_degraded() {
        tracing::warn!(
            run_id = summary.run_id,
            "run finished degraded: see failures and skipped_scopes in the summary"
        );
    }
    to_value(serde_json::to_value(summary))
}

/// The run's credential source: the platform's, else the default chain; through `settings.role()` if set.
pub async fn credential_source(
    settings: &Settings,
    platform: Option<(Credentials, &str)>,
) -> Result<std::sync::Arc<dyn CredentialSource>, JobError> {
    use crate::credentials::chain;
    let env = |k: &str| std::env::var(k).ok();
    let lookup = chain::Lookup {
        env: &env,
        home: std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
        profile: settings.profile.clone(),
        endpoints: settings.endpoints()?,
        retry: settings.retry.clone(),
    };
    let base: std::sync::Arc<dyn CredentialSource> = match platform {
        Some((credentials, name)) => std::sync::Arc::new(crate::credentials::Named { credentials, name: name.into() }),
        None => chain::resolve(&lookup).await?,
    };
    match settings.role() {
        Some(role) => Ok(chain::with_role(base, role.clone(), &lookup)?),
        None => Ok(base),
    }
}

/// The settings of one invocation: the run's deadline is the platform's (`remaining` until it kills us) less a
/// margin for the summary and the webhooks (a tenth, at least 10 s), or the configured one if that is sooner.
pub fn with_platform_deadline(settings: &Settings, remaining: Option<std::time::Duration>) -> Settings {
    let mut s = settings.clone();
    if let Some(left) = remaining {
        let margin = (left / 10).max(std::time::Duration::from_secs(10));
        let platform = left.saturating_sub(margin).max(std::time::Duration::from_secs(1));
        s.run_timeout = Some(s.run_timeout.map_or(platform, |t| t.min(platform)));
    }
    s
}

/// Built once per process; cloning shares its connection pool.
fn webhook_client() -> Result<reqwest::Client, JobError> {
    static CLIENT: std::sync::OnceLock<Result<reqwest::Client, String>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| crate::webhook::http_client().map_err(|e| e.to_string()))
        .clone()
        .map_err(JobError::HttpClient)
}

/// Which runtime started this process. `env` looks a variable up; an empty value counts as unset. A command line
/// with arguments is always the CLI: both runtimes start the bootstrap bare, and `aliyun-janitor --help` inside a
/// function's shell must not start a server.
pub fn detect(env: impl Fn(&str) -> Option<String>, has_arguments: bool) -> Mode {
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    if has_arguments {
        Mode::Cli
    } else if set("AWS_LAMBDA_RUNTIME_API") {
        Mode::Lambda
    } else if set("FC_FUNCTION_NAME") || set("FC_CUSTOM_LISTEN_PORT") {
        Mode::FunctionCompute
    } else {
        Mode::Cli
    }
}

/// A problem found at start (bad policy, bad setting): the runtime reports it instead of running anything.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StartupError {
    /// `InvalidPolicy` or `InvalidSetting`.
    pub kind: &'static str,
    pub message: String,
}

impl StartupError {
    fn setting(message: impl Into<String>) -> Self {
        StartupError { kind: "InvalidSetting", message: message.into() }
    }
}

/// Builds the run settings of a serverless mode from the environment and loads + validates the policy.
pub fn settings_from_env(env: impl Fn(&str) -> Option<String>) -> Result<Settings, StartupError> {
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let policy_path = match get(ENV_POLICY) {
        Some(p) => PathBuf::from(p),
        None => default_policy_path()?,
    };
    let policy =
        Policy::from_file(&policy_path).map_err(|e| StartupError { kind: "InvalidPolicy", message: e.to_string() })?;
    let mut settings = Settings::new(policy);
    settings.endpoint_override = get(ENV_ENDPOINT);
    settings.apply_flag = apply_from_env(env(ENV_APPLY).as_deref());
    let number = |k: &str| -> Result<Option<u64>, StartupError> {
        get(k)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| StartupError::setting(format!("{k}: `{v}` is not a whole number")))
            })
            .transpose()
    };
    settings.retry = settings.retry.with_bounds(number("JANITOR_MAX_BODY_BYTES")?, number("JANITOR_MAX_PAGES")?);
    settings.run_timeout = number("JANITOR_RUN_TIMEOUT_SECS")?.map(std::time::Duration::from_secs);
    if let Some(ms) = number("JANITOR_RELEASE_POLL_MS")?.filter(|ms| *ms > 0) {
        settings.release_poll.every = std::time::Duration::from_millis(ms);
    }
    if let Some(v) = get("JANITOR_SUMMARY_ENTRIES") {
        settings.summary_entries = crate::plan::EntriesMode::parse(&v).ok_or_else(|| {
            StartupError::setting(format!("JANITOR_SUMMARY_ENTRIES: `{v}` is not one of auto, all, actions"))
        })?;
    }
    settings.mark_key = mark_key_from(get(crate::lifecycle::MARK_KEY_ENV))?;
    settings.account_id = get(ENV_ACCOUNT_ID).map(|a| a.trim().to_string());
    settings.profile = get("ALIBABA_CLOUD_PROFILE");
    settings.role = role_from(get(ENV_ROLE_ARN)).map_err(StartupError::setting)?;
    settings.sts_region = crate::credentials::sts::sts_region(&get);
    if let Some(now) = get(ENV_NOW) {
        let parsed = DateTime::parse_from_rfc3339(now.trim())
            .map_err(|e| StartupError::setting(format!("{ENV_NOW}: `{now}` is not an RFC 3339 time: {e}")))?;
        settings.now = Some(parsed.with_timezone(&Utc));
    }
    tracing::info!(
        policy = %policy_path.display(),
        apply_flag = settings.apply_flag,
        policy_apply = settings.policy.apply,
        endpoint_override = settings.endpoint_override.is_some(),
        "serverless settings loaded"
    );
    Ok(settings)
}

/// The mark key from its variable, if set; a key too short to be a secret is a setting error.
pub fn mark_key_from(value: Option<String>) -> Result<Option<crate::lifecycle::MarkKey>, StartupError> {
    value.map(|v| crate::lifecycle::MarkKey::new(&v).map_err(StartupError::setting)).transpose()
}

/// `JANITOR_APPLY` turns apply on only when it is exactly `true`; anything else (`1`, `TRUE`, `yes`) leaves
/// the run a dry run, with a warning so a typo is noticed rather than silently obeyed.
fn apply_from_env(value: Option<&str>) -> bool {
    match value {
        Some("true") => true,
        None | Some("") | Some("false") => false,
        Some(other) => {
            tracing::warn!(value = other, "{ENV_APPLY} is neither `true` nor `false`: apply stays off");
            false
        }
    }
}

fn default_policy_path() -> Result<PathBuf, StartupError> {
    let exe = std::env::current_exe().map_err(|e| {
        StartupError::setting(format!(
            "cannot locate the executable to find policy.yaml beside it ({e}); set {ENV_POLICY}"
        ))
    })?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    Ok(dir.join("policy.yaml"))
}

/// A runtime's answer for a failed invocation: a class and a message that never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvocationError {
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl InvocationError {
    /// `secrets` are removed from the message, whatever produced it.
    pub fn from_job(e: &JobError, secrets: &[&str]) -> Self {
        InvocationError { error_type: e.kind().to_string(), error_message: redact(&e.to_string(), secrets) }
    }

    pub fn from_startup(e: &StartupError) -> Self {
        InvocationError {
            error_type: e.kind.to_string(),
            error_message: redact(&e.message, &env_secrets_owned().iter().map(String::as_str).collect::<Vec<_>>()),
        }
    }
}

/// Replaces every occurrence of each secret (4 characters or longer) with `<redacted>`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().map(|s| s.trim()).filter(|s| s.len() >= 4) {
        out = out.replace(s, "<redacted>");
    }
    out
}

/// Secret values this process may hold in its environment: the Alibaba secret and token, and the webhook
/// configuration (`JANITOR_WEBHOOKS`, a JSON array: the whole value and every string in it).
pub fn env_secrets_owned() -> Vec<String> {
    let mut v = Vec::new();
    for k in [
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        crate::lifecycle::MARK_KEY_ENV,
        crate::webhook::ENV_VAR,
    ] {
        if let Ok(val) = std::env::var(k) {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&val) {
                collect_strings(&json, &mut v);
            }
            v.push(val);
        }
    }
    v
}

/// Strings of a webhook configuration that are secret: URLs and anything under a key naming a secret
/// (`format` and the like stay readable).
fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.starts_with("http") => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                let k = k.to_ascii_lowercase();
                match x {
                    serde_json::Value::String(s)
                        if ["url", "secret", "token", "key", "sign"].iter().any(|w| k.contains(w)) =>
                    {
                        out.push(s.clone())
                    }
                    _ => collect_strings(x, out),
                }
            }
        }
        _ => {}
    }
}

/// Removes control characters and bounds the length of an id taken from a request, so it cannot forge log lines.
pub(crate) fn clean_id(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_platform_deadline_keeps_a_margin() {
        use std::time::Duration;
        let base = Settings::new(
            crate::policy::Policy::from_yaml(
                "regions: [cn-hangzhou]\nrules: [{name: r, filters: {ttl_tag: ttl}}]\n",
                "p.yaml",
            )
            .unwrap(),
        );
        let s = with_platform_deadline(&base, Some(Duration::from_secs(900)));
        assert_eq!(s.run_timeout, Some(Duration::from_secs(810)));
        let s = with_platform_deadline(&base, Some(Duration::from_secs(30)));
        assert_eq!(s.run_timeout, Some(Duration::from_secs(20)));
        let mut configured = base.clone();
        configured.run_timeout = Some(Duration::from_secs(60));
        assert_eq!(
            with_platform_deadline(&configured, Some(Duration::from_secs(900))).run_timeout,
            Some(Duration::from_secs(60))
        );
        assert_eq!(with_platform_deadline(&base, None).run_timeout, None);
    }

    #[test]
    fn detect_modes() {
        assert_eq!(detect(env(&[]), false), Mode::Cli);
        assert_eq!(detect(env(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]), false), Mode::Lambda);
        assert_eq!(detect(env(&[("FC_FUNCTION_NAME", "janitor")]), false), Mode::FunctionCompute);
        assert_eq!(detect(env(&[("FC_CUSTOM_LISTEN_PORT", "9000")]), false), Mode::FunctionCompute);
        // Lambda wins when both are present; empty values count as unset.
        assert_eq!(detect(env(&[("FC_FUNCTION_NAME", "x"), ("AWS_LAMBDA_RUNTIME_API", "h:1")]), false), Mode::Lambda);
        assert_eq!(detect(env(&[("AWS_LAMBDA_RUNTIME_API", ""), ("FC_FUNCTION_NAME", " ")]), false), Mode::Cli);
        // Issue 13 item 16: arguments always mean the CLI, whatever the environment says.
        assert_eq!(detect(env(&[("FC_FUNCTION_NAME", "janitor")]), true), Mode::Cli);
        assert_eq!(detect(env(&[("AWS_LAMBDA_RUNTIME_API", "h:1")]), true), Mode::Cli);
    }

    #[test]
    fn apply_only_when_exactly_true() {
        assert!(apply_from_env(Some("true")));
        for v in [None, Some(""), Some("false"), Some("TRUE"), Some("1"), Some("yes"), Some("true ")] {
            assert!(!apply_from_env(v), "{v:?}");
        }
    }

    #[test]
    fn missing_policy_is_a_startup_error_naming_the_file() {
        let e = settings_from_env(env(&[(ENV_POLICY, "/nonexistent/janitor/policy.yaml")])).unwrap_err();
        assert_eq!(e.kind, "InvalidPolicy");
        assert!(e.message.contains("/nonexistent/janitor/policy.yaml"), "{}", e.message);
    }

    #[test]
    fn webhook_config_strings_are_secrets() {
        let mut v = Vec::new();
        collect_strings(
            &serde_json::json!([{"format": "slack", "url": "https://hooks.example/T0/B0/xyz"}, {"format": "json", "url": "u", "secret": "hmac-key-1"}]),
            &mut v,
        );
        assert!(
            v.iter().any(|s| s == "https://hooks.example/T0/B0/xyz") && v.iter().any(|s| s == "hmac-key-1"),
            "{v:?}"
        );
        assert!(!v.iter().any(|s| s == "slack" || s == "json"), "{v:?}");
        assert_eq!(
            redact("post to https://hooks.example/T0/B0/xyz failed", &v.iter().map(String::as_str).collect::<Vec<_>>()),
            "post to <redacted> failed"
        );
    }

    #[test]
    fn redact_removes_secrets_but_not_short_strings() {
        assert_eq!(redact("key s3cr3t-value in url", &["s3cr3t-value", "ab"]), "key <redacted> in url");
    }

    #[test]
    fn clean_id_strips_newlines() {
        assert_eq!(clean_id("abc\nFC Invoke End RequestId: x"), "abcFC Invoke End RequestId: x");
        assert_eq!(clean_id(&"x".repeat(500)).len(), 128);
    }
}

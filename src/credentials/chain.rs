//! The official default credential chain, in the credentials SDKs' order (credentials-go
//! `providers/default.go`): environment → OIDC/RRSA → the aliyun CLI's `config.json` → the INI credentials file →
//! the ECS instance role → `ALIBABA_CLOUD_CREDENTIALS_URI`. The first source that is set up wins.
//!
//! One difference, on purpose: the SDKs fall through to the next source when one fails; here a source that is set
//! up but broken (a malformed file, a profile mode we do not support, a half-set variable group) stops the chain
//! with an error naming the file or variable and the field. A janitor that silently acts as another identity
//! (the host's instance role, say) is worse than one that stops. Sources that are simply absent are skipped, and
//! when none is found the error lists each one and why.

use std::path::PathBuf;
use std::sync::Arc;

use super::files::{self, Spec};
use super::remote::{self, EcsRole, Uri};
use super::sts::{self, AssumeRole, Oidc, RoleSpec};
use super::{Fetch, Named, Refreshing};
use crate::aliyun::{
    CredentialError, CredentialSource, Credentials, Endpoints, RetryPolicy, ENV_KEY_ID, ENV_KEY_SECRET, ENV_TOKEN,
};

/// What the chain may look at: the environment, the home directory, the profile asked for, and where STS is.
pub struct Lookup<'a> {
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// `$HOME`; `None` skips both files.
    pub home: Option<PathBuf>,
    /// `--profile`; else `ALIBABA_CLOUD_PROFILE`; else the CLI config's `current` / the INI file's `default`.
    pub profile: Option<String>,
    /// The run's endpoints (STS goes where they send product `sts`).
    pub endpoints: Endpoints,
    pub retry: RetryPolicy,
}

impl Lookup<'_> {
    fn var(&self, k: &str) -> Option<String> {
        (self.env)(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn is_true(&self, k: &str) -> bool {
        self.var(k).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn profile(&self) -> Option<String> {
        self.profile.clone().filter(|p| !p.trim().is_empty()).or_else(|| self.var("ALIBABA_CLOUD_PROFILE"))
    }

    fn sts_region(&self) -> String {
        sts::sts_region(&|k| self.var(k))
    }

    fn file(&self, var: &str, under_home: &str) -> Option<PathBuf> {
        self.var(var).map(PathBuf::from).or_else(|| self.home.as_ref().map(|h| h.join(under_home)))
    }
}

fn broken(m: impl Into<String>) -> CredentialError {
    CredentialError::Broken(m.into())
}

/// Finds the run's credentials. Only the ECS metadata service is contacted while looking (and only when every
/// earlier source is absent); STS and a credentials URI are first called when the run signs its first request.
pub async fn resolve(l: &Lookup<'_>) -> Result<Arc<dyn CredentialSource>, CredentialError> {
    let mut tried: Vec<String> = Vec::new();

    // 1. Environment.
    match (l.var(ENV_KEY_ID), l.var(ENV_KEY_SECRET)) {
        (Some(id), Some(secret)) => {
            let credentials = Credentials::new(id, secret, l.var(ENV_TOKEN));
            return Ok(Arc::new(Named { credentials, name: "environment (ALIBABA_CLOUD_ACCESS_KEY_ID)".into() }));
        }
        (Some(_), None) => return Err(CredentialError::Missing(ENV_KEY_SECRET)),
        (None, Some(_)) => return Err(CredentialError::Missing(ENV_KEY_ID)),
        (None, None) => tried.push(format!("environment ({ENV_KEY_ID} not set)")),
    }

    // 2. OIDC (RRSA on ACK): all three variables, or none.
    const OIDC: [&str; 3] =
        ["ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"];
    let oidc: Vec<Option<String>> = OIDC.iter().map(|k| l.var(k)).collect();
    match oidc.as_slice() {
        [Some(role_arn), Some(provider), Some(file)] => {
            sts::check_role_arn(role_arn).map_err(|m| broken(format!("ALIBABA_CLOUD_ROLE_ARN: {m}")))?;
            let mut role = RoleSpec::new(role_arn.clone());
            if let Some(name) = l.var("ALIBABA_CLOUD_ROLE_SESSION_NAME") {
                sts::check_session_name(&name).map_err(|m| broken(format!("ALIBABA_CLOUD_ROLE_SESSION_NAME: {m}")))?;
                role.session_name = name;
            }
            let spec = Spec::Oidc {
                role,
                provider_arn: provider.clone(),
                token_file: PathBuf::from(file),
                sts_region: l.sts_region(),
            };
            return build(spec, l).await;
        }
        [None, None, None] => tried.push("OIDC/RRSA (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE not set)".into()),
        _ => {
            let missing: Vec<&str> = OIDC.iter().zip(&oidc).filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
            return Err(broken(format!("OIDC/RRSA is half set up: {} not set", missing.join(", "))));
        }
    }

    // 3. The aliyun CLI's profile.
    if l.is_true("ALIBABA_CLOUD_CLI_PROFILE_DISABLED") {
        tried.push("aliyun CLI config (ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true)".into());
    } else {
        match l.file("ALIBABA_CLOUD_CONFIG_FILE", ".aliyun/config.json") {
            None => tried.push("aliyun CLI config (HOME not set)".into()),
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(text) => {
                    return build(files::cli_profile(&path, &text, l.profile().as_deref()).map_err(broken)?, l).await
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tried.push(format!("aliyun CLI config ({}: not found)", path.display()))
                }
                Err(e) => return Err(broken(format!("{}: cannot read: {e}", path.display()))),
            },
        }
    }

    // 4. The INI credentials file.
    let section = l.profile().unwrap_or_else(|| "default".into());
    match l.file("ALIBABA_CLOUD_CREDENTIALS_FILE", ".alibabacloud/credentials") {
        None => tried.push("credentials file (HOME not set)".into()),
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => match files::ini_profile(&path, &text, &section).map_err(broken)? {
                Some(spec) => return build(spec, l).await,
                None => tried.push(format!("credentials file ({}: no [{section}] section)", path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tried.push(format!("credentials file ({}: not found)", path.display()))
            }
            Err(e) => return Err(broken(format!("{}: cannot read: {e}", path.display()))),
        },
    }

    // 5. The ECS instance role (tried by fetching: only an answer shows there is one).
    if l.is_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED") {
        tried.push("ECS instance role (ALIBABA_CLOUD_ECS_METADATA_DISABLED=true)".into());
    } else {
        let role = EcsRole::new(
            l.var(remote::ENV_METADATA_ENDPOINT),
            l.var("ALIBABA_CLOUD_ECS_METADATA"),
            l.is_true("ALIBABA_CLOUD_IMDSV1_DISABLED"),
        )
        .map_err(broken)?;
        match role.fetch().await {
            Ok(first) => return Ok(Arc::new(Refreshing::new(Box::new(role), Some(first)))),
            // A role named explicitly that the service does not serve is a broken setup, not an absent source.
            Err(e) if l.var("ALIBABA_CLOUD_ECS_METADATA").is_some() => {
                return Err(broken(format!("ALIBABA_CLOUD_ECS_METADATA: {e}")))
            }
            Err(e) => tried.push(format!("ECS instance role ({e})")),
        }
    }

    // 6. A credentials URI.
    match l.var("ALIBABA_CLOUD_CREDENTIALS_URI") {
        Some(uri) => {
            let uri = Uri::new(&uri).map_err(|m| broken(format!("ALIBABA_CLOUD_CREDENTIALS_URI: {m}")))?;
            return Ok(Arc::new(Refreshing::new(Box::new(uri), None)));
        }
        None => tried.push("credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI not set)".into()),
    }
    Err(CredentialError::NotFound { tried })
}

/// `base` acting through `role` (the `role_arn` setting).
pub fn with_role(
    base: Arc<dyn CredentialSource>,
    role: RoleSpec,
    l: &Lookup<'_>,
) -> Result<Arc<dyn CredentialSource>, CredentialError> {
    let source = AssumeRole::source(base, role, l.endpoints.clone(), l.retry.clone(), l.sts_region())
        .map_err(|e| broken(e.to_string()))?;
    Ok(Arc::new(source))
}

/// `build` is recursive (a role's base is itself a spec), so its future is boxed.
type Built<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Arc<dyn CredentialSource>, CredentialError>> + Send + 'a>,
>;

fn build<'a>(spec: Spec, l: &'a Lookup<'a>) -> Built<'a> {
    Box::pin(async move {
        match spec {
            Spec::Fixed { credentials, name } => Ok(Arc::new(Named { credentials, name }) as Arc<dyn CredentialSource>),
            Spec::AssumeRole { base, role, sts_region } => {
                let base = build(*base, l).await?;
                let region = if sts_region.is_empty() { l.sts_region() } else { sts_region };
                let source = AssumeRole::source(base, role, l.endpoints.clone(), l.retry.clone(), region)
                    .map_err(|e| broken(e.to_string()))?;
                Ok(Arc::new(source) as Arc<dyn CredentialSource>)
            }
            Spec::EcsRole { role_name } => {
                let role = EcsRole::new(
                    l.var(remote::ENV_METADATA_ENDPOINT),
                    role_name,
                    l.is_true("ALIBABA_CLOUD_IMDSV1_DISABLED"),
                )
                .map_err(broken)?;
                Ok(Arc::new(Refreshing::new(Box::new(role), None)) as Arc<dyn CredentialSource>)
            }
            Spec::Oidc { role, provider_arn, token_file, sts_region } => {
                let region = if sts_region.is_empty() { l.sts_region() } else { sts_region };
                crate::aliyun::install_crypto_provider();
                let http = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .map_err(|e| broken(format!("HTTP client: {}", e.without_url())))?;
                let base_url = l.endpoints.base_url("sts", &region);
                let oidc = Oidc { http, base_url, role, provider_arn, token_file };
                Ok(Arc::new(Refreshing::new(Box::new(oidc), None)) as Arc<dyn CredentialSource>)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn lookup<'a>(env: &'a (dyn Fn(&str) -> Option<String> + Sync), home: Option<PathBuf>) -> Lookup<'a> {
        Lookup { env, home, profile: None, endpoints: Endpoints::default(), retry: RetryPolicy::default() }
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn home_with(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("janitor-chain-{}", uuid::Uuid::new_v4()));
        for (rel, text) in files {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    const NO_METADATA: (&str, &str) = ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true");

    #[tokio::test]
    async fn the_environment_comes_first() {
        let v = vars(&[(ENV_KEY_ID, "LTAIenv"), (ENV_KEY_SECRET, "s"), NO_METADATA]);
        let env = |k: &str| v.get(k).cloned();
        let home = home_with(&[(
            ".aliyun/config.json",
            r#"{"current":"a","profiles":[{"name":"a","mode":"AK","access_key_id":"LTAIcli","access_key_secret":"s"}]}"#,
        )]);
        let src = resolve(&lookup(&env, Some(home))).await.unwrap();
        assert_eq!(src.current().await.unwrap().access_key_id, "LTAIenv");
        assert!(src.describe().starts_with("environment"));
    }

    #[tokio::test]
    async fn the_cli_profile_comes_before_the_ini_file() {
        let v = vars(&[NO_METADATA]);
        let env = |k: &str| v.get(k).cloned();
        let home = home_with(&[
            (
                ".aliyun/config.json",
                r#"{"current":"a","profiles":[{"name":"a","mode":"AK","access_key_id":"LTAIcli","access_key_secret":"s"}]}"#,
            ),
            (
                ".alibabacloud/credentials",
                "[default]\ntype = access_key\naccess_key_id = LTAIini\naccess_key_secret = s\n",
            ),
        ]);
        let src = resolve(&lookup(&env, Some(home.clone()))).await.unwrap();
        assert_eq!(src.current().await.unwrap().access_key_id, "LTAIcli");
        std::fs::remove_file(home.join(".aliyun/config.json")).unwrap();
        let src = resolve(&lookup(&env, Some(home))).await.unwrap();
        assert_eq!(src.current().await.unwrap().access_key_id, "LTAIini");
    }

    #[tokio::test]
    async fn nothing_found_lists_every_source_and_why() {
        let v = vars(&[NO_METADATA]);
        let env = |k: &str| v.get(k).cloned();
        let e = resolve(&lookup(&env, Some(home_with(&[])))).await.err().unwrap().to_string();
        for part in [
            "ALIBABA_CLOUD_ACCESS_KEY_ID not set",
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE not set",
            ".aliyun/config.json: not found",
            ".alibabacloud/credentials: not found",
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true",
            "ALIBABA_CLOUD_CREDENTIALS_URI not set",
        ] {
            assert!(e.contains(part), "{part} missing from: {e}");
        }
    }

    #[tokio::test]
    async fn a_half_set_source_stops_the_chain() {
        let v = vars(&[(ENV_KEY_ID, "LTAIenv"), NO_METADATA]);
        let env = |k: &str| v.get(k).cloned();
        assert_eq!(resolve(&lookup(&env, None)).await.err().unwrap(), CredentialError::Missing(ENV_KEY_SECRET));
        let v = vars(&[("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"), NO_METADATA]);
        let env = |k: &str| v.get(k).cloned();
        let e = resolve(&lookup(&env, None)).await.err().unwrap().to_string();
        assert!(e.contains("ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE not set"), "{e}");
        let v = vars(&[NO_METADATA]);
        let env = |k: &str| v.get(k).cloned();
        let home = home_with(&[(".aliyun/config.json", "{\"current\": 1}")]);
        let e = resolve(&lookup(&env, Some(home))).await.err().unwrap().to_string();
        assert!(e.contains(".aliyun/config.json: current:"), "{e}");
    }
}

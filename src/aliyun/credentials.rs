//! One set of credentials, and the [`CredentialSource`] the client asks before every request (so temporary
//! credentials can be refreshed during a run). The secret and the STS token are never printed: `Debug` redacts them.
//! Where they come from (the default chain, STS roles) is [`crate::credentials`].

use std::fmt;

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CredentialError {
    #[error("missing credential: environment variable {0} is not set or empty")]
    Missing(&'static str),
    /// A credential source that is configured but could not be read (the reason never quotes a secret).
    #[error("cannot read the Alibaba credentials from the secret {secret}: {reason}")]
    Secret { secret: String, reason: String },
    /// The default chain found nothing: every source tried, and why each was skipped.
    #[error("no Alibaba Cloud credentials found (nothing was called). Tried, in order: {}", .tried.join("; "))]
    NotFound { tried: Vec<String> },
    /// A source that is configured (a file that exists, a variable that is set) but unusable: it stops the chain
    /// rather than falling through to another identity. The message names the file or variable and the field.
    #[error("credentials: {0}")]
    Broken(String),
}

pub const ENV_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
pub const ENV_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
pub const ENV_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
        security_token: Option<String>,
    ) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: security_token.filter(|t| !t.is_empty()),
        }
    }

    /// Reads `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and the optional
    /// `ALIBABA_CLOUD_SECURITY_TOKEN` (set for STS credentials, e.g. by Function Compute).
    pub fn from_env() -> Result<Self, CredentialError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialError> {
        let nonempty = |k: &'static str| get(k).filter(|v| !v.trim().is_empty());
        let id = nonempty(ENV_KEY_ID).ok_or(CredentialError::Missing(ENV_KEY_ID))?;
        let secret = nonempty(ENV_KEY_SECRET).ok_or(CredentialError::Missing(ENV_KEY_SECRET))?;
        Ok(Credentials::new(id, secret, nonempty(ENV_TOKEN)))
    }

    pub fn secret(&self) -> &str {
        &self.access_key_secret
    }

    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Strings that must never appear in any output (used by redaction and by tests).
    pub fn secrets(&self) -> Vec<&str> {
        let mut v = vec![self.access_key_secret.as_str()];
        v.extend(self.security_token.as_deref());
        v
    }
}

/// What the client signs with: asked before every request, so a source of temporary credentials can refresh
/// them before they expire without the run noticing.
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync {
    /// The credentials to sign the next request with. The error names the source and never holds a secret.
    async fn current(&self) -> Result<Credentials, String>;
    /// Where the credentials come from, for the run banner (`environment`, `aliyun CLI profile default (AK)`).
    fn describe(&self) -> String;
}

/// Fixed credentials (an access key, or an STS token handed over by the platform for this invocation).
#[async_trait::async_trait]
impl CredentialSource for Credentials {
    async fn current(&self) -> Result<Credentials, String> {
        Ok(self.clone())
    }

    fn describe(&self) -> String {
        "fixed credentials".into()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("security_token", &self.security_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secret_names_the_variable() {
        let err = Credentials::from_lookup(|k| (k == ENV_KEY_ID).then(|| "id".to_string())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing credential: environment variable ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set or empty"
        );
    }

    #[test]
    fn debug_never_shows_secret_or_token() {
        let c = Credentials::new("id", "s3cr3t", Some("tok3n".into()));
        let d = format!("{c:?}");
        assert!(!d.contains("s3cr3t") && !d.contains("tok3n"), "{d}");
    }

    #[test]
    fn empty_token_means_no_token() {
        let c = Credentials::from_lookup(|k| Some(if k == ENV_TOKEN { "" } else { "x" }.to_string())).unwrap();
        assert_eq!(c.security_token(), None);
    }
}

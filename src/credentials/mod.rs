//! Where the Alibaba credentials come from: the official default chain ([`chain`]: environment → OIDC/RRSA →
//! the aliyun CLI's profile → `~/.alibabacloud/credentials` → the ECS instance role → a credentials URI), an STS
//! role on top of any of them ([`sts`]), and on AWS Lambda a Secrets Manager secret ([`aws_secret`]).
//!
//! Temporary credentials are a [`Refreshing`] source: the API client asks it before every request, and it fetches
//! new credentials shortly before the old ones expire, so a long run never signs with an expired token.

pub mod aws_secret;
pub mod chain;
mod files;
mod remote;
pub mod sts;

use chrono::{DateTime, Utc};

use crate::aliyun::{CredentialSource, Credentials};

pub use chain::{resolve, Lookup};
pub use sts::{caller_identity, Identity, RoleSpec};

/// Credentials as one fetch returned them.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub credentials: Credentials,
    /// `Expiration` of temporary credentials; `None` for a long-lived access key.
    pub expires: Option<DateTime<Utc>>,
    pub fetched: DateTime<Utc>,
}

/// The SDKs refresh 180 s before expiry (credentials-go `needUpdateCredential`); a short-lived credential (an
/// emulator's) is refreshed after two thirds of its life instead.
const REFRESH_AHEAD: chrono::Duration = chrono::Duration::seconds(180);

impl Session {
    /// Temporary credentials with their `Expiration` (`yyyy-MM-ddTHH:mm:ssZ`, as STS and the metadata service
    /// write it); a bad time is an error naming the field, never a guess.
    pub fn temporary(credentials: Credentials, expiration: &str) -> Result<Session, String> {
        let expires = DateTime::parse_from_rfc3339(expiration.trim())
            .map_err(|_| format!("Expiration `{expiration}` is not a UTC time such as 2026-12-03T10:00:00Z"))?
            .with_timezone(&Utc);
        Ok(Session { credentials, expires: Some(expires), fetched: Utc::now() })
    }

    fn due(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| {
            let ahead = REFRESH_AHEAD.min((e - self.fetched) / 3);
            e - now <= ahead
        })
    }

    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// One way to get credentials (an STS call, the metadata service, a file...).
#[async_trait::async_trait]
pub(crate) trait Fetch: Send + Sync {
    async fn fetch(&self) -> Result<Session, String>;
    fn describe(&self) -> String;
}

/// A source that keeps the last credentials and fetches new ones when they are due.
pub struct Refreshing {
    fetch: Box<dyn Fetch>,
    /// Held across the fetch: concurrent requests wait for one refresh instead of each starting one.
    cache: tokio::sync::Mutex<Option<Session>>,
}

impl Refreshing {
    pub(crate) fn new(fetch: Box<dyn Fetch>, first: Option<Session>) -> Refreshing {
        Refreshing { fetch, cache: tokio::sync::Mutex::new(first) }
    }
}

#[async_trait::async_trait]
impl CredentialSource for Refreshing {
    async fn current(&self) -> Result<Credentials, String> {
        let mut cache = self.cache.lock().await;
        let now = Utc::now();
        if let Some(s) = cache.as_ref().filter(|s| !s.due(now)) {
            return Ok(s.credentials.clone());
        }
        match self.fetch.fetch().await {
            Ok(fresh) => {
                if cache.is_some() {
                    tracing::info!(source = self.fetch.describe(), expires = ?fresh.expires, "credentials refreshed");
                }
                let c = fresh.credentials.clone();
                *cache = Some(fresh);
                Ok(c)
            }
            // A failed refresh while the old credentials still hold: keep signing with them, try again next call.
            Err(e) => match cache.as_ref().filter(|s| !s.expired(now)) {
                Some(s) => {
                    tracing::warn!(
                        source = self.fetch.describe(),
                        error = e,
                        "credential refresh failed; the current ones are still valid"
                    );
                    Ok(s.credentials.clone())
                }
                None => Err(format!("{}: {e}", self.fetch.describe())),
            },
        }
    }

    fn describe(&self) -> String {
        self.fetch.describe()
    }
}

/// Fixed credentials with a name for the banner (the environment, an `AK` profile...).
pub struct Named {
    pub credentials: Credentials,
    pub name: String,
}

#[async_trait::async_trait]
impl CredentialSource for Named {
    async fn current(&self) -> Result<Credentials, String> {
        Ok(self.credentials.clone())
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counting {
        n: Arc<AtomicUsize>,
        life: chrono::Duration,
        fail: bool,
    }

    #[async_trait::async_trait]
    impl Fetch for Counting {
        async fn fetch(&self) -> Result<Session, String> {
            let n = self.n.fetch_add(1, Ordering::SeqCst);
            if self.fail && n > 0 {
                return Err("down".into());
            }
            let c = Credentials::new(format!("STS.{n}"), "s", Some("t".into()));
            Ok(Session { credentials: c, expires: Some(Utc::now() + self.life), fetched: Utc::now() })
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    #[tokio::test]
    async fn temporary_credentials_are_kept_until_they_are_due() {
        let n = Arc::new(AtomicUsize::new(0));
        let src =
            Refreshing::new(Box::new(Counting { n: n.clone(), life: chrono::Duration::hours(1), fail: false }), None);
        assert_eq!(src.current().await.unwrap().access_key_id, "STS.0");
        assert_eq!(src.current().await.unwrap().access_key_id, "STS.0");
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_refreshed_first() {
        let n = Arc::new(AtomicUsize::new(0));
        // Three seconds of life: due after two.
        let src =
            Refreshing::new(Box::new(Counting { n: n.clone(), life: chrono::Duration::seconds(3), fail: false }), None);
        assert_eq!(src.current().await.unwrap().access_key_id, "STS.0");
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_eq!(src.current().await.unwrap().access_key_id, "STS.1");
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_valid_credentials_and_fails_expired_ones() {
        let n = Arc::new(AtomicUsize::new(0));
        let src =
            Refreshing::new(Box::new(Counting { n: n.clone(), life: chrono::Duration::seconds(3), fail: true }), None);
        src.current().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_eq!(src.current().await.unwrap().access_key_id, "STS.0", "still valid for a second");
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let e = src.current().await.unwrap_err();
        assert!(e.contains("counting") && e.contains("down"), "{e}");
    }

    #[test]
    fn expiration_must_be_a_time() {
        let c = Credentials::new("a", "b", None);
        assert!(Session::temporary(c.clone(), "2026-12-03T10:00:00Z").is_ok());
        assert!(Session::temporary(c, "tomorrow").unwrap_err().contains("Expiration"));
    }
}

//! The ECS instance metadata service's RAM role part, on the emulator's own address under the real paths (the real
//! service is `http://100.100.100.200`), and the emulator-only credentials URI. Served only when the inventory's
//! `sts` section has an `ecs_role` (the credentials URI: when it has an `sts` section); otherwise every such path is
//! 404, as on an instance without a RAM role.
//!
//! | request | answer |
//! |---|---|
//! | `PUT /latest/api/token`, header `X-aliyun-ecs-metadata-token-ttl-seconds: 1..=21600` | 200, the token as text |
//! | `GET /latest/meta-data/ram/security-credentials/` | 200, the role name as text |
//! | `GET /latest/meta-data/ram/security-credentials/<role>` | 200, `{"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration", "LastUpdated", "Code": "Success"}` |
//! | `GET /_sim/credentials-uri` (emulator-only) | 200, `{"Code": "Success", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}` |
//!
//! A metadata `GET` carries the token in header `X-aliyun-ecs-metadata-token`.
//!
//! Sources: credentials-go `providers/ecs_ram_role.go` (paths, header names, the PUT, the answer's fields and
//! `Code == "Success"`, `Expiration` as `2006-01-02T15:04:05Z`, its 21600 s token TTL) and `providers/uri.go` (the
//! credentials URI answer: `AccessKeyId`, `AccessKeySecret`, `SecurityToken`, `Expiration`, any non-200 an error);
//! the ECS "instance metadata" page (help.aliyun.com `knowledge_detail/49122`): the token TTL is 1 to 21600 seconds;
//! ModifyInstanceMetadataOptions: `HttpTokens` `optional` (default) or `required` (security hardening mode only).
//! Statuses: AliyunContainerService/terway `pkg/aliyun/metadata/metadata.go` (Alibaba's own client) treats 401 as
//! "the token expired or is not valid: get a new one and retry", so a token that is unknown or expired is 401;
//! teamssix/cf `pkg/cloud/alibaba/aliecs` reads "403 - Forbidden" from a token-less request as "the instance is in
//! security hardening mode" and "404 - Not Found" from `ram/security-credentials/` as "no RAM role", so a token-less
//! `GET` in hardening mode is 403 and a missing item or role is 404, each with that text as its body.
//!
//! Choices where the sources are silent: a PUT without a TTL header, or with a TTL that is not an integer in
//! 1..=21600, is 400 "400 - Bad Request"; a token sent in normal mode must still be valid (401 otherwise), as the
//! token is what hardening mode checks; other methods are 405. The role credential is a session
//! `aliyun-sim-ecs-instance` of `ecs_role` and lives six hours (`credential_lifetime_secs` overrides it); the
//! service keeps serving it until less than half its lifetime is left, then issues a new one (`LastUpdated` is
//! when it was issued). The credentials URI serves its own credential the same way, for `ecs_role` when there is
//! one, else for a role `aliyun-sim-credentials-uri` of `sts.account_id`. Answers are `text/plain`, JSON ones
//! `application/json`. Metadata requests are not API calls and stay out of the call log; the credentials they
//! hand out are listed by `Sim::issued_credentials`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::sts::{format_time, Principal, Source, Sts};

pub(crate) const TOKEN_PATH: &str = "/latest/api/token";
const CREDENTIALS_PREFIX: &str = "/latest/meta-data/ram/security-credentials/";
/// `X-aliyun-ecs-metadata-token-ttl-seconds` range (ECS instance metadata page).
const TOKEN_TTL: std::ops::RangeInclusive<i64> = 1..=21600;
/// How long a role credential from the metadata service or the credentials URI lives (an emulator choice).
const ROLE_CREDENTIAL_SECS: u64 = 6 * 3600;
const INSTANCE_SESSION: &str = "aliyun-sim-ecs-instance";
const URI_ROLE: &str = "aliyun-sim-credentials-uri";
const URI_SESSION: &str = "credentials-uri";

/// A metadata request as the server hands it over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetaRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// `X-aliyun-ecs-metadata-token`.
    pub token: Option<&'a str>,
    /// `X-aliyun-ecs-metadata-token-ttl-seconds`.
    pub ttl: Option<&'a str>,
}

/// A plain HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plain {
    pub status: u16,
    pub json: bool,
    pub body: String,
}

impl Plain {
    fn text(status: u16, body: impl Into<String>) -> Self {
        Plain { status, json: false, body: body.into() }
    }

    fn error(status: u16) -> Self {
        let reason = match status {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            _ => "Method Not Allowed",
        };
        Plain::text(status, format!("{status} - {reason}"))
    }

    fn json(value: serde_json::Value) -> Self {
        Plain { status: 200, json: true, body: value.to_string() }
    }
}

/// Metadata state: the session tokens handed out and the credential each endpoint currently serves.
#[derive(Debug, Default)]
pub(crate) struct Metadata {
    /// Token → first instant (real clock) it is refused.
    tokens: HashMap<String, DateTime<Utc>>,
    instance_credential: Option<String>,
    uri_credential: Option<String>,
}

/// The credential `slot` holds while more than half its lifetime is left, else a new one for `principal`.
fn current(
    slot: &mut Option<String>,
    sts: &mut Sts,
    principal: Principal,
    source: Source,
    now: DateTime<Utc>,
) -> String {
    let fresh =
        slot.as_deref().and_then(|id| sts.get(id)).is_some_and(|i| (i.expires - now) * 2 > i.expires - i.issued_at);
    if !fresh {
        let lifetime = sts.lifetime(ROLE_CREDENTIAL_SECS);
        *slot = Some(sts.issue(principal, None, source, lifetime, now).access_key_id.clone());
    }
    slot.clone().unwrap_or_default()
}

impl Metadata {
    /// Answers a request under `/latest/`; `now` is the real clock.
    pub fn answer(&mut self, sts: &mut Sts, req: &MetaRequest<'_>, now: DateTime<Utc>) -> Plain {
        let Some(role) = sts.ecs_role.clone() else { return Plain::error(404) };
        match req.method {
            "PUT" if req.path == TOKEN_PATH => self.token(req.ttl, now),
            "GET" => {
                match req.token {
                    Some(t) if self.tokens.get(t).is_some_and(|until| now < *until) => {}
                    Some(_) => return Plain::error(401),
                    None if role.require_token => return Plain::error(403),
                    None => {}
                }
                match req.path.strip_prefix(CREDENTIALS_PREFIX) {
                    Some("") => Plain::text(200, role.name.clone()),
                    Some(name) if name == role.name => {
                        let principal = Principal::role_session(&role.account_id, &role.name, INSTANCE_SESSION);
                        let id = current(&mut self.instance_credential, sts, principal, Source::EcsMetadata, now);
                        let Some(i) = sts.get(&id) else { return Plain::error(404) };
                        Plain::json(json!({
                            "AccessKeyId": i.access_key_id,
                            "AccessKeySecret": i.access_key_secret,
                            "SecurityToken": i.security_token,
                            "Expiration": i.expiration(),
                            "LastUpdated": format_time(&i.issued_at),
                            "Code": "Success",
                        }))
                    }
                    _ if req.path == CREDENTIALS_PREFIX.trim_end_matches('/') => Plain::text(200, role.name.clone()),
                    _ => Plain::error(404),
                }
            }
            "PUT" => Plain::error(404),
            _ => Plain::error(405),
        }
    }

    fn token(&mut self, ttl: Option<&str>, now: DateTime<Utc>) -> Plain {
        let Some(secs) = ttl.and_then(|t| t.trim().parse::<i64>().ok()).filter(|s| TOKEN_TTL.contains(s)) else {
            return Plain::error(400);
        };
        self.tokens.retain(|_, until| *until > now);
        let token: String = std::iter::repeat_with(fastrand::alphanumeric).take(56).collect();
        self.tokens.insert(token.clone(), now + Duration::seconds(secs));
        Plain::text(200, token)
    }

    /// `GET /_sim/credentials-uri`.
    pub fn credentials_uri(&mut self, sts: &mut Sts, now: DateTime<Utc>) -> Plain {
        if !sts.present {
            return Plain::error(404);
        }
        let principal = match &sts.ecs_role {
            Some(role) => Principal::role_session(&role.account_id, &role.name, INSTANCE_SESSION),
            None => Principal::role_session(sts.account_id(), URI_ROLE, URI_SESSION),
        };
        let id = current(&mut self.uri_credential, sts, principal, Source::CredentialsUri, now);
        let Some(i) = sts.get(&id) else { return Plain::error(404) };
        Plain::json(json!({
            "Code": "Success",
            "AccessKeyId": i.access_key_id,
            "AccessKeySecret": i.access_key_secret,
            "SecurityToken": i.security_token,
            "Expiration": i.expiration(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::SimCredential;
    use chrono::TimeZone;
    use serde_json::Value;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn sts(section: Value) -> Sts {
        let keys: Vec<SimCredential> =
            serde_json::from_value(json!([{"access_key_id": "k", "access_key_secret": "s"}])).unwrap();
        crate::sts::load(Some(&section), &keys, None).unwrap()
    }

    fn get<'a>(path: &'a str, token: Option<&'a str>) -> MetaRequest<'a> {
        MetaRequest { method: "GET", path, token, ttl: None }
    }

    fn put(ttl: Option<&str>) -> MetaRequest<'_> {
        MetaRequest { method: "PUT", path: TOKEN_PATH, token: None, ttl }
    }

    const ROLE_PATH: &str = "/latest/meta-data/ram/security-credentials/ecs-role";

    #[test]
    fn hardening_mode_needs_a_valid_unexpired_token() {
        let mut s = sts(json!({"ecs_role": {"name": "ecs-role", "account_id": "77", "require_token": true}}));
        let mut md = Metadata::default();
        assert_eq!(md.answer(&mut s, &get(CREDENTIALS_PREFIX, None), now()), Plain::text(403, "403 - Forbidden"));
        for bad in [None, Some("0"), Some("21601"), Some("soon")] {
            assert_eq!(md.answer(&mut s, &put(bad), now()).status, 400, "{bad:?}");
        }
        let token = md.answer(&mut s, &put(Some("60")), now());
        assert_eq!((token.status, token.json, token.body.len()), (200, false, 56));
        let t = token.body.clone();
        assert_eq!(md.answer(&mut s, &get(CREDENTIALS_PREFIX, Some(&t)), now()), Plain::text(200, "ecs-role"));
        assert_eq!(md.answer(&mut s, &get(CREDENTIALS_PREFIX, Some("guess")), now()).status, 401);
        let later = now() + Duration::seconds(60);
        assert_eq!(md.answer(&mut s, &get(CREDENTIALS_PREFIX, Some(&t)), later).status, 401);
        let creds = md.answer(&mut s, &get(ROLE_PATH, Some(&t)), now());
        assert!(creds.json);
        let v: Value = serde_json::from_str(&creds.body).unwrap();
        assert_eq!(v["Code"], "Success");
        assert_eq!(v["Expiration"], "2026-03-01T18:00:00Z");
        assert_eq!(v["LastUpdated"], "2026-03-01T12:00:00Z");
        let issued = s.get(v["AccessKeyId"].as_str().unwrap()).unwrap();
        assert_eq!(issued.source, Source::EcsMetadata);
        assert_eq!(issued.principal, Principal::role_session("77", "ecs-role", INSTANCE_SESSION));
        assert_eq!(issued.security_token, v["SecurityToken"].as_str().unwrap());
        assert_eq!(
            md.answer(&mut s, &get("/latest/meta-data/ram/security-credentials/other", Some(&t)), now()).status,
            404
        );
        assert_eq!(md.answer(&mut s, &get("/latest/meta-data/instance-id", Some(&t)), now()).status, 404);
        assert_eq!(md.answer(&mut s, &MetaRequest { method: "DELETE", ..get(ROLE_PATH, None) }, now()).status, 405);
    }

    #[test]
    fn normal_mode_answers_without_a_token_but_checks_one_sent() {
        let mut s = sts(json!({"ecs_role": {"name": "ecs-role"}}));
        let mut md = Metadata::default();
        assert_eq!(md.answer(&mut s, &get(CREDENTIALS_PREFIX, None), now()), Plain::text(200, "ecs-role"));
        assert_eq!(md.answer(&mut s, &get(CREDENTIALS_PREFIX, Some("bogus")), now()).status, 401);
        assert_eq!(md.answer(&mut s, &get(ROLE_PATH, None), now()).status, 200);
    }

    #[test]
    fn the_credential_is_kept_until_half_its_life_then_rotated() {
        let mut s = sts(json!({"ecs_role": {"name": "ecs-role"}, "credential_lifetime_secs": 10}));
        let mut md = Metadata::default();
        let id_at = |md: &mut Metadata, s: &mut Sts, at: DateTime<Utc>| {
            let v: Value = serde_json::from_str(&md.answer(s, &get(ROLE_PATH, None), at).body).unwrap();
            (v["AccessKeyId"].as_str().unwrap().to_string(), v["Expiration"].as_str().unwrap().to_string())
        };
        let (first, exp) = id_at(&mut md, &mut s, now());
        assert_eq!(exp, "2026-03-01T12:00:10Z");
        assert_eq!(id_at(&mut md, &mut s, now() + Duration::seconds(4)).0, first);
        let (second, _) = id_at(&mut md, &mut s, now() + Duration::seconds(5));
        assert_ne!(second, first);
        assert_eq!(s.issued().count(), 2);
        // Expired by hand: the next request gets a new one.
        s.expire_all(now() + Duration::seconds(6));
        assert_ne!(id_at(&mut md, &mut s, now() + Duration::seconds(6)).0, second);
    }

    #[test]
    fn without_an_ecs_role_everything_is_not_found() {
        let mut s = sts(json!({"account_id": "1"}));
        let mut md = Metadata::default();
        assert_eq!(md.answer(&mut s, &put(Some("60")), now()).status, 404);
        assert_eq!(md.answer(&mut s, &get(CREDENTIALS_PREFIX, None), now()).status, 404);
        // The credentials URI only needs an `sts` section.
        let uri = md.credentials_uri(&mut s, now());
        let v: Value = serde_json::from_str(&uri.body).unwrap();
        assert_eq!(v["Code"], "Success");
        let issued = s.get(v["AccessKeyId"].as_str().unwrap()).unwrap();
        assert_eq!(issued.principal, Principal::role_session("1", URI_ROLE, URI_SESSION));
        assert_eq!(issued.source, Source::CredentialsUri);
        let mut absent = crate::sts::load(None, &[], None).unwrap();
        assert_eq!(md.credentials_uri(&mut absent, now()).status, 404);
    }
}

//! Authentication like the real RPC gateway (reference sections 1.1 and 2): common parameters, signature
//! method/version, timestamp format and skew, AccessKeyId, STS token (and, for a temporary key the emulator issued,
//! its expiry), the V2 signature, then the nonce.
//! The signature is recomputed by [`crate::signature`], written from the reference and its official vectors.
//! `Format` is not enforced: the real default is XML, but the emulator answers JSON whatever is asked.
//!
//! An expired temporary key is refused with 403 `InvalidSecurityToken.Expired`, "Specified SecurityToken is
//! expired." (code: the Terraform provider's list of Alibaba's public error codes, `alicloud/common_errors.go`,
//! and the DTS API reference's error tables, which give it HTTP 403 with that message).

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};

use super::reply::ApiFault;
use super::Params;
use crate::signature as sign;

/// Parameters every RPC request carries. They are not API parameters: `ClientToken` fingerprints leave them out.
pub(crate) const COMMON_PARAMS: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "Signature",
    "SecurityToken",
];

/// Parameters whose values never reach the call log (`OIDCToken`: STS `AssumeRoleWithOIDC`'s bearer credential).
pub(crate) const SECRET_PARAMS: &[&str] = &["Signature", "SecurityToken", "AccessKeyId", "OIDCToken"];

/// The docs allow 15 minutes of clock skew.
const MAX_SKEW: Duration = Duration::minutes(15);

/// The common parameters of one request, all present and non-empty.
#[derive(Debug)]
pub(crate) struct Common<'a> {
    pub action: &'a str,
    pub version: &'a str,
    pub access_key_id: &'a str,
    signature_method: &'a str,
    signature_version: &'a str,
    nonce: &'a str,
    timestamp: &'a str,
    signature: &'a str,
    security_token: Option<&'a str>,
}

fn nonempty<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Checks that every required common parameter is there (an empty value counts as missing).
pub(crate) fn common(p: &Params) -> Result<Common<'_>, ApiFault> {
    let req = |name: &str| nonempty(p, name).ok_or_else(|| ApiFault::missing(name));
    Ok(Common {
        action: req("Action")?,
        version: req("Version")?,
        access_key_id: req("AccessKeyId")?,
        signature: req("Signature")?,
        signature_method: req("SignatureMethod")?,
        signature_version: req("SignatureVersion")?,
        nonce: req("SignatureNonce")?,
        timestamp: req("Timestamp")?,
        security_token: nonempty(p, "SecurityToken"),
    })
}

/// What authentication needs to know of an access key: one of the inventory's, or a temporary one the emulator issued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Key<'a> {
    pub secret: &'a str,
    /// The `SecurityToken` every request signed with the key must carry.
    pub security_token: Option<&'a str>,
    /// The first instant (real clock) the key is refused as expired; `None`: never.
    pub expires: Option<DateTime<Utc>>,
}

/// Verifies everything but the parameters of the API itself; `key` finds an access key by id. `now` is the real
/// clock: the emulator's overridable clock is for the inventory's expiry checks only, a client always signs with
/// real time, and temporary keys expire in real time.
pub(crate) fn authenticate<'k>(
    method: &str,
    p: &Params,
    c: &Common<'_>,
    key: impl FnOnce(&str) -> Option<Key<'k>>,
    nonces: &mut NonceStore,
    now: DateTime<Utc>,
) -> Result<(), ApiFault> {
    if c.signature_method != "HMAC-SHA1" {
        return Err(ApiFault::new(
            400,
            "InvalidSignatureMethod",
            format!("Specified signature method \"{}\" is not supported; use HMAC-SHA1.", c.signature_method),
        ));
    }
    if c.signature_version != "1.0" {
        return Err(ApiFault::new(
            400,
            "InvalidSignatureVersion",
            format!("Specified signature version \"{}\" is not supported; use 1.0.", c.signature_version),
        ));
    }
    check_timestamp(c.timestamp, now)?;
    let Some(cred) = key(c.access_key_id) else {
        return Err(ApiFault::new(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."));
    };
    match (cred.security_token, c.security_token) {
        (None, None) => {}
        (Some(_), None) => {
            return Err(ApiFault::new(
                400,
                "MissingSecurityToken",
                "The SecurityToken is mandatory for an STS access key.",
            ))
        }
        (Some(want), Some(got)) if want == got => {}
        _ => {
            return Err(ApiFault::new(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "The Security Token does not match with Access Key.",
            ))
        }
    }
    if cred.expires.is_some_and(|at| now >= at) {
        return Err(ApiFault::new(403, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."));
    }
    let string_to_sign = sign::string_to_sign(method, p);
    if sign::sign(cred.secret, &string_to_sign) != c.signature {
        return Err(ApiFault::new(
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
        ));
    }
    // The nonce is consumed only by a correctly signed request, so nobody else can burn a client's nonces.
    if !nonces.insert(c.access_key_id, c.nonce, now) {
        return Err(ApiFault::new(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    Ok(())
}

/// The `Timestamp` common parameter: well formed and within the allowed skew of `now` (the real clock).
pub(crate) fn check_timestamp(value: &str, now: DateTime<Utc>) -> Result<(), ApiFault> {
    let Some(ts) = parse_timestamp(value) else {
        return Err(ApiFault::new(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ));
    };
    if (now - ts).abs() > MAX_SKEW {
        return Err(ApiFault::new(
            400,
            "InvalidTimeStamp.Expired",
            format!(
                "Specified time stamp or date value is expired. Server time is {}.",
                now.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ));
    }
    Ok(())
}

/// Strictly `yyyy-MM-ddTHH:mm:ssZ` (reference 1.1): no fractional seconds, no offset, two-digit fields.
pub(crate) fn parse_timestamp(value: &str) -> Option<DateTime<Utc>> {
    const SHAPE: &[u8; 20] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = value.as_bytes();
    if bytes.len() != SHAPE.len() {
        return None;
    }
    let shaped = bytes.iter().zip(SHAPE).all(|(&b, &s)| if s == b'd' { b.is_ascii_digit() } else { b == s });
    if !shaped {
        return None;
    }
    NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%SZ").ok().map(|n| Utc.from_utc_datetime(&n))
}

/// Nonces seen in the last 30 minutes. Twice the skew window: a replay older than that already fails
/// the timestamp check, since changing the timestamp would change the signature.
#[derive(Debug, Default)]
pub(crate) struct NonceStore {
    seen: HashSet<String>,
    order: VecDeque<(DateTime<Utc>, String)>,
}

impl NonceStore {
    /// Returns false if this access key used this nonce before.
    pub fn insert(&mut self, access_key_id: &str, nonce: &str, now: DateTime<Utc>) -> bool {
        while let Some((at, key)) = self.order.front() {
            if now - *at <= MAX_SKEW * 2 {
                break;
            }
            self.seen.remove(key);
            self.order.pop_front();
        }
        let key = format!("{access_key_id}\n{nonce}");
        if !self.seen.insert(key.clone()) {
            return false;
        }
        self.order.push_back((now, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An access key of the test's key ring.
    struct Cred {
        id: &'static str,
        secret: &'static str,
        token: Option<&'static str>,
        expires: Option<DateTime<Utc>>,
    }

    fn cred(id: &'static str, secret: &'static str, token: Option<&'static str>) -> Cred {
        Cred { id, secret, token, expires: None }
    }

    fn signed(id: &str, secret: &str, ts: &str, nonce: &str, extra: &[(&str, &str)]) -> Params {
        let mut p: Params = [
            ("Action", "DescribeInstances"),
            ("Version", "2014-05-26"),
            ("Format", "JSON"),
            ("AccessKeyId", id),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce),
            ("Timestamp", ts),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = sign::signature("POST", &p, secret);
        p.insert("Signature".into(), signature);
        p
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn run(p: &Params, creds: &[Cred], nonces: &mut NonceStore) -> Result<(), ApiFault> {
        let c = common(p)?;
        let key = |id: &str| {
            creds.iter().find(|k| k.id == id).map(|k| Key {
                secret: k.secret,
                security_token: k.token,
                expires: k.expires,
            })
        };
        authenticate("POST", p, &c, key, nonces, now())
    }

    fn code(r: Result<(), ApiFault>) -> String {
        r.err().map(|f| f.code).unwrap_or_default()
    }

    #[test]
    fn timestamp_shape_is_strict() {
        assert!(parse_timestamp("2026-03-01T12:00:00Z").is_some());
        for bad in [
            "2026-03-01T12:00Z",
            "2026-03-01T12:00:00.123Z",
            "2026-03-01T12:00:00+08:00",
            "2026-3-01T12:00:00Z",
            "2026-13-01T12:00:00Z",
            "",
            "2026-03-01 12:00:00Z",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn good_request_passes_and_nonce_is_single_use() {
        let creds = [cred("id", "s", None)];
        let mut nonces = NonceStore::default();
        let p = signed("id", "s", "2026-03-01T12:05:00Z", "n1", &[("RegionId", "cn-hangzhou")]);
        assert_eq!(run(&p, &creds, &mut nonces), Ok(()));
        assert_eq!(code(run(&p, &creds, &mut nonces)), "SignatureNonceUsed");
    }

    #[test]
    fn each_failure_has_its_code() {
        let creds = [cred("id", "s", None), cred("STS.x", "s2", Some("tok"))];
        let mut n = NonceStore::default();
        assert_eq!(
            code(run(&signed("id", "wrong", "2026-03-01T12:00:00Z", "a", &[]), &creds, &mut n)),
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            code(run(&signed("nobody", "s", "2026-03-01T12:00:00Z", "b", &[]), &creds, &mut n)),
            "InvalidAccessKeyId.NotFound"
        );
        assert_eq!(
            code(run(&signed("id", "s", "2026-03-01T11:44:59Z", "c", &[]), &creds, &mut n)),
            "InvalidTimeStamp.Expired"
        );
        assert_eq!(
            code(run(&signed("id", "s", "2026-03-01T12:00Z", "d", &[]), &creds, &mut n)),
            "InvalidTimeStamp.Format"
        );
        assert_eq!(
            code(run(&signed("STS.x", "s2", "2026-03-01T12:00:00Z", "e", &[]), &creds, &mut n)),
            "MissingSecurityToken"
        );
        let wrong_token = signed("STS.x", "s2", "2026-03-01T12:00:00Z", "f", &[("SecurityToken", "other")]);
        assert_eq!(code(run(&wrong_token, &creds, &mut n)), "InvalidSecurityToken.MismatchWithAccessKey");
        let sts_ok = signed("STS.x", "s2", "2026-03-01T12:00:00Z", "g", &[("SecurityToken", "tok")]);
        assert_eq!(run(&sts_ok, &creds, &mut n), Ok(()));
        let sha256 = signed("id", "s", "2026-03-01T12:00:00Z", "h", &[("SignatureMethod", "HMAC-SHA256")]);
        assert_eq!(code(run(&sha256, &creds, &mut n)), "InvalidSignatureMethod");
    }

    #[test]
    fn a_temporary_key_is_refused_from_its_expiry_on() {
        let creds = [Cred { expires: Some(now() + Duration::seconds(1)), ..cred("STS.t", "s", Some("tok")) }];
        let mut n = NonceStore::default();
        let at = |ts: &str, nonce: &str| signed("STS.t", "s", ts, nonce, &[("SecurityToken", "tok")]);
        assert_eq!(run(&at("2026-03-01T12:00:00Z", "a"), &creds, &mut n), Ok(()));
        let expired = [Cred { expires: Some(now()), ..cred("STS.t", "s", Some("tok")) }];
        let f = run(&at("2026-03-01T12:00:00Z", "b"), &expired, &mut n).unwrap_err();
        assert_eq!((f.status, f.code.as_str()), (403, "InvalidSecurityToken.Expired"));
        // The token is checked before the expiry: a wrong token is still a mismatch.
        let wrong = signed("STS.t", "s", "2026-03-01T12:00:00Z", "c", &[("SecurityToken", "other")]);
        assert_eq!(code(run(&wrong, &expired, &mut n)), "InvalidSecurityToken.MismatchWithAccessKey");
    }

    #[test]
    fn mismatch_message_carries_the_string_to_sign() {
        let creds = [cred("id", "s", None)];
        let p = signed("id", "wrong", "2026-03-01T12:00:00Z", "a", &[]);
        let f = run(&p, &creds, &mut NonceStore::default()).unwrap_err();
        assert!(
            f.message.ends_with(&format!("server string to sign is:{}", sign::string_to_sign("POST", &p))),
            "{}",
            f.message
        );
    }

    #[test]
    fn missing_common_parameter_is_named() {
        let mut p = signed("id", "s", "2026-03-01T12:00:00Z", "a", &[]);
        p.insert("SignatureNonce".into(), String::new());
        let f = common(&p).unwrap_err();
        assert_eq!(f.code, "MissingParameter");
        assert!(f.message.contains("\"SignatureNonce\""));
    }

    #[test]
    fn nonces_are_forgotten_after_the_window() {
        let mut n = NonceStore::default();
        assert!(n.insert("id", "x", now()));
        assert!(!n.insert("id", "x", now() + Duration::minutes(29)));
        assert!(n.insert("other", "x", now()));
        assert!(n.insert("id", "x", now() + Duration::minutes(31)));
    }
}

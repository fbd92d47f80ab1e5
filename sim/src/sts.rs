//! STS, version `2015-04-01`: `AssumeRole`, `AssumeRoleWithOIDC` and `GetCallerIdentity`, on the same `/` endpoint as
//! every product (dispatched on `Version` + `Action`), and the store of the temporary credentials the emulator issues
//! (here, in `metadata.rs` and for the credentials URI). Every product API accepts an issued credential, signed with
//! its secret and carrying its `SecurityToken`, until its `Expiration` (real clock; `auth.rs` refuses it from then on
//! with `InvalidSecurityToken.Expired`). The inventory's `sts` section is described in `inventory.rs`.
//!
//! Sources:
//! - The official API metadata (`dew-serverless/acs-sdk-php` `data/sts/2015-04-01/api-docs.json`, a mirror of
//!   Alibaba's): the parameters and their limits (`RoleSessionName` 2 to 64 characters of letters, digits and `.@-_`;
//!   `DurationSeconds` 900 to the role's `MaxSessionDuration`, default 3600; `Policy` 1 to 2048 characters;
//!   `ExternalId` 2 to 1224 characters of `[\w+=,.@:/-]`; `OIDCToken` 4 to 20000 characters), the answer shapes and
//!   examples, `AssumeRole`'s error table (400 `InvalidParameter.DurationSeconds`, `.ExternalId`, `.RoleArn`,
//!   `.RoleSessionName`, `.PolicyGrammar`, `.PolicySize`; 403 `NoPermission`; 404 `EntityNotExist.Role`, with their
//!   messages), `GetCallerIdentity`'s `IdentityType` values (`Account`, `RAMUser`, `AssumedRoleUser`, with `UserId`
//!   only for the first two and `RoleId` only for the last), and `AssumeRoleWithOIDC` being anonymous ("no
//!   `Signature`, `SignatureMethod`, `SignatureVersion` or `AccessKeyId`").
//! - The SDK (`alibabacloud_sts20150401` 1.2.0 `client.py` and `models/`): actions, `auth_type` (`AK` for
//!   `AssumeRole`/`GetCallerIdentity`, `Anonymous` for `AssumeRoleWithOIDC`), every request parameter and answer field
//!   (`SourceIdentity` included), `OIDCTokenInfo` (`Subject`, `Issuer`, `ClientIds`, `ExpirationTime`,
//!   `IssuanceTime`, `VerificationInfo`).
//! - The STS error-code page (help.aliyun.com `ram/developer-reference/api-sts-2015-04-01-errorcodes`): 401
//!   `AuthenticationFail.NoPermission` ("There is no permission", "No such OIDC Provider registered."), 401
//!   `AuthenticationFail.OIDCToken.Invalid` ("The OIDCToken can not empty.", "The number of Jwt field should be
//!   divided into 3 parts with '.' ."), 401 `AuthenticationFail.OIDCToken.InvalidSignature` ("OIDC token validate
//!   failed: invalid signature."), 401 `AuthenticationFail.OIDCToken.Expired` ("This JsonWebToken is expired.").
//!   credentials-dotnet's OIDC provider test, run against the real `sts.aliyuncs.com`, shows a malformed
//!   `OIDCProviderArn` answered `AuthenticationFail.NoPermission`, "Parameter OIDCProviderArn is not valid"
//!   (credentials-go's `providers/oidc_test.go` sees the same code).
//! - The STS FAQ (alibabacloud.com doc 42775, "STS common errors"): `NoPermission`, "Roles may not be assumed by root
//!   accounts."
//! - credentials-go `providers/oidc.go` and `providers/ram_role_arn.go`: what the official client sends (OIDC: only
//!   `Action`, `Version`, `Format`, `Timestamp` in the query, the rest in the form body, nothing signed).
//!
//! Choices where the sources are silent (documented, so a test can rely on them):
//! - Role ARNs are matched ASCII case-insensitively (RAM names are case-insensitive); `trusted` is the emulator's
//!   stand-in for the role's trust policy (see `inventory.rs`). `member_role` is shorthand for one role per account
//!   of the Resource Directory (the role a management account assumes into its members, such as
//!   `ResourceDirectoryAccountAccessRole`); in a `deny` account its trust leaves every caller out, so `AssumeRole` is
//!   the same 403 `NoPermission` as for any untrusted caller.
//! - A missing required parameter is 400 `MissingParameter`, as elsewhere in the emulator.
//! - `AssumedRoleUser.Arn` is `acs:ram::<account>:role/<role>/<session>` (the metadata's example), `AssumedRoleId`
//!   `<RoleId>:<session>` for both assume actions; `GetCallerIdentity` names an assumed role
//!   `acs:ram::<account>:assumed-role/<role>/<session>` with `PrincipalId` `<RoleId>:<session>`, a RAM user
//!   `acs:ram::<account>:user/<name>` and the account itself `acs:ram::<account>:root`. Role and user ids are digits
//!   derived from the ARN, stable across runs.
//! - The OIDC token is "verified" by equality with the role's `oidc_token`; a token of three `.`-separated parts
//!   that differs is an invalid signature, any other an invalid JWT. When the configured token is a decodable JWT,
//!   its `exp` is enforced (real clock) and its claims fill `OIDCTokenInfo`.
//! - `Expiration` is the credential's expiry rounded down to the second (the format has no fractions); the
//!   credential is refused from its exact expiry on, so a client trusting `Expiration` never uses a refused one.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Key;
use super::inventory::{is_account_id, is_name, typed, SimCredential, SimError};
use super::params::{optional, required, Params};
use super::reply::ApiFault;

pub(crate) const VERSION: &str = "2015-04-01";
/// The account of keys and roles that name none, unless `sts.account_id` says otherwise.
pub(crate) const DEFAULT_ACCOUNT: &str = "1234567890123456";
/// `DurationSeconds` bounds and default (API metadata); a role's `MaxSessionDuration` range (RAM `CreateRole`).
const MIN_DURATION: u64 = 900;
const DEFAULT_DURATION: u64 = 3600;
const MAX_SESSION_RANGE: std::ops::RangeInclusive<u64> = 3600..=43200;
/// `OIDCToken` length (API metadata).
const OIDC_TOKEN_LEN: std::ops::RangeInclusive<usize> = 4..=20000;

/// Whether the request is one the official clients send unsigned (`AssumeRoleWithOIDC`, SDK `auth_type`
/// `Anonymous`): it skips authentication.
pub(crate) fn is_anonymous(p: &Params) -> bool {
    p.get("Version").is_some_and(|v| v == VERSION) && p.get("Action").is_some_and(|a| a == "AssumeRoleWithOIDC")
}

/// The signed STS actions the emulator implements.
pub(crate) fn is_signed_action(action: &str) -> bool {
    matches!(action, "AssumeRole" | "GetCallerIdentity")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StsSpec {
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    credential_lifetime_secs: Option<u64>,
    #[serde(default)]
    roles: Vec<RoleSpec>,
    #[serde(default)]
    ecs_role: Option<EcsRoleSpec>,
    #[serde(default)]
    member_role: Option<MemberRoleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberRoleSpec {
    name: String,
    #[serde(default)]
    trusted: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    max_session_duration: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    arn: String,
    #[serde(default)]
    trusted: Vec<String>,
    #[serde(default)]
    max_session_duration: Option<u64>,
    #[serde(default)]
    oidc_provider_arn: Option<String>,
    #[serde(default)]
    oidc_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EcsRoleSpec {
    name: String,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    require_token: bool,
}

/// Who may assume a role (the emulator's stand-in for its trust policy).
#[derive(Debug, Clone, PartialEq)]
enum Trust {
    Anyone,
    /// An inventory access key, and every temporary key issued down a chain that started with it.
    Key(String),
    /// Any session of this role (its ARN).
    Role(String),
}

#[derive(Debug, Clone)]
struct Role {
    arn: String,
    account_id: String,
    name: String,
    id: String,
    trusted: Vec<Trust>,
    max_session: u64,
    /// The identity provider ARN and the one token the role accepts for `AssumeRoleWithOIDC`.
    oidc: Option<(String, String)>,
}

/// `sts.member_role`: a role of that name in every account of the Resource Directory.
#[derive(Debug, Clone)]
struct MemberRole {
    name: String,
    trusted: Vec<Trust>,
    max_session: u64,
    /// The accounts of the directory.
    members: BTreeSet<String>,
    /// Members where the role trusts nobody (AssumeRole answers 403 `NoPermission`).
    deny: BTreeSet<String>,
}

/// The RAM role attached to the emulated ECS instance (`sts.ecs_role`).
#[derive(Debug, Clone)]
pub(crate) struct EcsRole {
    pub name: String,
    pub account_id: String,
    pub require_token: bool,
}

/// Who a credential speaks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Principal {
    /// An inventory key: a RAM user, or the account itself (`root`).
    User { account_id: String, user_name: String, root: bool },
    /// A session of a RAM role.
    Role { account_id: String, role_name: String, role_id: String, session: String },
}

impl Principal {
    /// The account the principal belongs to (for a role session: the role's).
    pub fn account_id(&self) -> &str {
        match self {
            Principal::User { account_id, .. } | Principal::Role { account_id, .. } => account_id,
        }
    }

    /// A session of `role_name` in `account_id`.
    pub fn role_session(account_id: &str, role_name: &str, session: &str) -> Self {
        let arn = format!("acs:ram::{account_id}:role/{role_name}");
        Principal::Role {
            account_id: account_id.to_string(),
            role_name: role_name.to_string(),
            role_id: role_id(&arn),
            session: session.to_string(),
        }
    }

    /// The ARN `GetCallerIdentity` answers.
    pub fn arn(&self) -> String {
        match self {
            Principal::User { account_id, root: true, .. } => format!("acs:ram::{account_id}:root"),
            Principal::User { account_id, user_name, .. } => format!("acs:ram::{account_id}:user/{user_name}"),
            Principal::Role { account_id, role_name, session, .. } => {
                format!("acs:ram::{account_id}:assumed-role/{role_name}/{session}")
            }
        }
    }
}

/// How a credential came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    AssumeRole,
    AssumeRoleWithOidc,
    EcsMetadata,
    CredentialsUri,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::AssumeRole => "AssumeRole",
            Source::AssumeRoleWithOidc => "AssumeRoleWithOIDC",
            Source::EcsMetadata => "EcsMetadata",
            Source::CredentialsUri => "CredentialsUri",
        }
    }
}

/// A temporary credential the emulator issued.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    pub issued_at: DateTime<Utc>,
    /// Exact; answers show it rounded down to the second.
    pub expires: DateTime<Utc>,
    pub principal: Principal,
    /// The inventory key the chain started with, if any (for `trusted`).
    pub origin: Option<String>,
    pub source: Source,
}

impl Issued {
    /// `Expiration` as STS writes it, `yyyy-MM-ddTHH:mm:ssZ` UTC.
    pub fn expiration(&self) -> String {
        format_time(&self.expires)
    }
}

/// The authenticated caller of a signed STS action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Caller {
    pub access_key_id: String,
    pub principal: Principal,
    pub origin: Option<String>,
}

/// STS state: the `sts` section and every credential issued so far.
pub(crate) struct Sts {
    /// Whether the inventory has an `sts` section (the metadata service and the credentials URI need one).
    pub present: bool,
    account_id: String,
    lifetime: Option<u64>,
    roles: Vec<Role>,
    member_role: Option<MemberRole>,
    pub ecs_role: Option<EcsRole>,
    /// Every credential issued, by access key id; expired ones stay, so they are refused as expired.
    issued: BTreeMap<String, Issued>,
    /// Access key ids in issue order.
    order: Vec<String>,
}

/// `acs:ram::<account>:<kind>/<name>` → (account, name).
fn parse_arn<'a>(arn: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    let rest = arn.strip_prefix("acs:ram::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource.strip_prefix(kind)?.strip_prefix('/')?;
    (is_account_id(account) && is_name(name)).then_some((account, name))
}

/// Who may assume a role: `"*"`, a role ARN or an access key id of `credentials`; `at` names the list.
fn trust_list(list: &[String], at: &str, credentials: &[SimCredential]) -> Result<Vec<Trust>, SimError> {
    list.iter()
        .enumerate()
        .map(|(j, t)| {
            if t == "*" {
                Ok(Trust::Anyone)
            } else if parse_arn(t, "role").is_some() {
                Ok(Trust::Role(t.clone()))
            } else if credentials.iter().any(|c| &c.access_key_id == t) {
                Ok(Trust::Key(t.clone()))
            } else {
                Err(SimError::invalid(
                    format!("{at}[{j}]"),
                    format!("`{t}` is neither \"*\", a role ARN, nor an access key id of `credentials`"),
                ))
            }
        })
        .collect()
}

fn max_session(asked: Option<u64>, at: String) -> Result<u64, SimError> {
    let max_session = asked.unwrap_or(DEFAULT_DURATION);
    if !MAX_SESSION_RANGE.contains(&max_session) {
        return Err(SimError::invalid(at, "expected 3600 to 43200 seconds"));
    }
    Ok(max_session)
}

/// Builds STS from the `sts` section; `credentials` are the inventory's keys (`trusted` may name them), `members`
/// the accounts of the Resource Directory (`None`: the inventory has none), for `member_role`.
pub(crate) fn load(
    section: Option<&Value>,
    credentials: &[SimCredential],
    members: Option<&BTreeSet<String>>,
) -> Result<Sts, SimError> {
    let Some(value) = section else {
        return Ok(Sts::new(false, DEFAULT_ACCOUNT.to_string(), None, Vec::new(), None));
    };
    let spec: StsSpec = typed("sts", value.clone())?;
    let account_id = match spec.account_id {
        Some(a) if is_account_id(&a) => a,
        Some(_) => return Err(SimError::invalid("sts.account_id", "expected a string of digits")),
        None => DEFAULT_ACCOUNT.to_string(),
    };
    if spec.credential_lifetime_secs == Some(0) {
        return Err(SimError::invalid("sts.credential_lifetime_secs", "must be null or at least 1"));
    }
    let mut roles: Vec<Role> = Vec::new();
    for (i, r) in spec.roles.into_iter().enumerate() {
        let at = |field: &str| format!("sts.roles[{i}].{field}");
        let Some((role_account, name)) = parse_arn(&r.arn, "role") else {
            return Err(SimError::invalid(at("arn"), "expected acs:ram::<account id>:role/<role name>"));
        };
        if roles.iter().any(|o| o.arn.eq_ignore_ascii_case(&r.arn)) {
            return Err(SimError::invalid(at("arn"), format!("duplicate role `{}`", r.arn)));
        }
        let trusted = trust_list(&r.trusted, &at("trusted"), credentials)?;
        let max_session = max_session(r.max_session_duration, at("max_session_duration"))?;
        let oidc = match (r.oidc_provider_arn, r.oidc_token) {
            (None, None) => None,
            (Some(provider), Some(token)) => {
                if parse_arn(&provider, "oidc-provider").is_none() {
                    return Err(SimError::invalid(
                        at("oidc_provider_arn"),
                        "expected acs:ram::<account id>:oidc-provider/<provider name>",
                    ));
                }
                if !OIDC_TOKEN_LEN.contains(&token.chars().count()) {
                    return Err(SimError::invalid(at("oidc_token"), "expected 4 to 20000 characters"));
                }
                Some((provider, token))
            }
            (Some(_), None) => return Err(SimError::invalid(at("oidc_token"), "required with oidc_provider_arn")),
            (None, Some(_)) => return Err(SimError::invalid(at("oidc_provider_arn"), "required with oidc_token")),
        };
        roles.push(Role {
            id: role_id(&r.arn),
            account_id: role_account.to_string(),
            name: name.to_string(),
            arn: r.arn,
            trusted,
            max_session,
            oidc,
        });
    }
    let ecs_role = match spec.ecs_role {
        None => None,
        Some(e) => {
            if !is_name(&e.name) {
                return Err(SimError::invalid("sts.ecs_role.name", "expected a role name without `/`, `:` or spaces"));
            }
            let account = match e.account_id {
                Some(a) if is_account_id(&a) => a,
                Some(_) => return Err(SimError::invalid("sts.ecs_role.account_id", "expected a string of digits")),
                None => account_id.clone(),
            };
            Some(EcsRole { name: e.name, account_id: account, require_token: e.require_token })
        }
    };
    let member_role = match spec.member_role {
        None => None,
        Some(m) => {
            let Some(members) = members else {
                return Err(SimError::invalid(
                    "sts.member_role",
                    "needs a resource_directory section: the role exists in each of its accounts",
                ));
            };
            if !is_name(&m.name) {
                return Err(SimError::invalid(
                    "sts.member_role.name",
                    "expected a role name without `/`, `:` or spaces",
                ));
            }
            let trusted = trust_list(&m.trusted, "sts.member_role.trusted", credentials)?;
            let max_session = max_session(m.max_session_duration, "sts.member_role.max_session_duration".into())?;
            let mut deny = BTreeSet::new();
            for (j, a) in m.deny.iter().enumerate() {
                if !members.contains(a) {
                    return Err(SimError::invalid(
                        format!("sts.member_role.deny[{j}]"),
                        format!("`{a}` is not an account of resource_directory"),
                    ));
                }
                deny.insert(a.clone());
            }
            Some(MemberRole { name: m.name, trusted, max_session, members: members.clone(), deny })
        }
    };
    let mut sts = Sts::new(true, account_id, spec.credential_lifetime_secs, roles, ecs_role);
    sts.member_role = member_role;
    Ok(sts)
}

/// A stable numeric id: `lead` then `len - 1` digits derived from `seed` (FNV-1a).
fn numeric_id(lead: char, len: usize, seed: &str) -> String {
    let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let digits = len.saturating_sub(1).min(19);
    let modulus = 10_u64.checked_pow(digits as u32).unwrap_or(u64::MAX);
    format!("{lead}{:0digits$}", hash % modulus)
}

/// A role's id, like the real 18-digit ones (`33537620082992****`).
fn role_id(arn: &str) -> String {
    numeric_id('3', 18, &arn.to_ascii_lowercase())
}

/// A RAM user's id, like the real 16-digit ones (`216959339000****`).
fn user_id(account_id: &str, user_name: &str) -> String {
    numeric_id('2', 16, &format!("{account_id}/{user_name}"))
}

pub(crate) fn format_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn random_alnum(n: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric).take(n).collect()
}

fn fault(status: u16, code: &str, message: impl Into<String>) -> ApiFault {
    ApiFault::new(status, code, message)
}

fn session_name(p: &Params) -> Result<&str, ApiFault> {
    let v = required(p, "RoleSessionName")?;
    let ok = (2..=64).contains(&v.chars().count())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if ok {
        Ok(v)
    } else {
        Err(fault(400, "InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed."))
    }
}

fn duration_fault(max: u64) -> ApiFault {
    let message = if max == DEFAULT_DURATION {
        "The Min/Max value of DurationSeconds is 15min/1hr.".to_string()
    } else {
        format!("The Min/Max value of DurationSeconds is {MIN_DURATION}/{max} seconds.")
    };
    fault(400, "InvalidParameter.DurationSeconds", message)
}

/// `DurationSeconds`, checked against the minimum only (the maximum is the role's).
fn duration(p: &Params) -> Result<u64, ApiFault> {
    match optional(p, "DurationSeconds") {
        None => Ok(DEFAULT_DURATION),
        Some(v) => match v.parse::<u64>() {
            Ok(d) if d >= MIN_DURATION => Ok(d),
            _ => Err(duration_fault(DEFAULT_DURATION)),
        },
    }
}

fn policy(p: &Params) -> Result<(), ApiFault> {
    let Some(v) = optional(p, "Policy") else { return Ok(()) };
    if v.len() > 2048 {
        return Err(fault(400, "InvalidParameter.PolicySize", "The size of Policy must be smaller than 2048 bytes."));
    }
    match serde_json::from_str::<Value>(v) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(fault(400, "InvalidParameter.PolicyGrammar", "The parameter Policy has not passed grammar check.")),
    }
}

fn external_id(p: &Params) -> Result<(), ApiFault> {
    let Some(v) = optional(p, "ExternalId") else { return Ok(()) };
    let ok = (2..=1224).contains(&v.chars().count())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(fault(400, "InvalidParameter.ExternalId", "The parameter ExternalId is wrongly formed."))
    }
}

fn role_arn_fault() -> ApiFault {
    fault(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.")
}

fn no_such_role() -> ApiFault {
    fault(404, "EntityNotExist.Role", "The specified Role not exists .")
}

fn oidc_no_permission(message: &str) -> ApiFault {
    fault(401, "AuthenticationFail.NoPermission", message)
}

/// The claims of a JWT (`header.payload.signature`, base64url), if `token` is one.
fn jwt_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

fn claim_time(claims: &Map<String, Value>, name: &str) -> Option<DateTime<Utc>> {
    claims.get(name).and_then(Value::as_i64).and_then(|secs| DateTime::from_timestamp(secs, 0))
}

/// `OIDCTokenInfo` from the token's claims (those it has).
fn token_info(claims: Option<&Map<String, Value>>) -> Value {
    let mut info = Map::new();
    if let Some(c) = claims {
        for (field, claim) in [("Subject", "sub"), ("Issuer", "iss")] {
            if let Some(v) = c.get(claim).and_then(Value::as_str) {
                info.insert(field.into(), v.into());
            }
        }
        let audience = match c.get("aud") {
            Some(Value::String(a)) => Some(a.clone()),
            Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
            _ => None,
        };
        if let Some(a) = audience {
            info.insert("ClientIds".into(), a.into());
        }
        for (field, claim) in [("IssuanceTime", "iat"), ("ExpirationTime", "exp")] {
            if let Some(t) = claim_time(c, claim) {
                info.insert(field.into(), format_time(&t).into());
            }
        }
    }
    info.insert("VerificationInfo".into(), "Success".into());
    Value::Object(info)
}

impl Sts {
    fn new(
        present: bool,
        account_id: String,
        lifetime: Option<u64>,
        roles: Vec<Role>,
        ecs_role: Option<EcsRole>,
    ) -> Self {
        Sts {
            present,
            account_id,
            lifetime,
            roles,
            member_role: None,
            ecs_role,
            issued: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// The account of keys that name none.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// `credential_lifetime_secs` when set, else `asked`.
    pub fn lifetime(&self, asked: u64) -> u64 {
        self.lifetime.unwrap_or(asked)
    }

    /// An access key as authentication needs it: an inventory key, else an issued one.
    pub fn key<'a>(&'a self, statics: &'a [SimCredential], id: &str) -> Option<Key<'a>> {
        if let Some(k) = statics.iter().find(|k| k.access_key_id == id) {
            return Some(Key {
                secret: &k.access_key_secret,
                security_token: k.security_token.as_deref(),
                expires: None,
            });
        }
        self.issued.get(id).map(|i| Key {
            secret: &i.access_key_secret,
            security_token: Some(&i.security_token),
            expires: Some(i.expires),
        })
    }

    /// The account an (authenticated) access key id acts in: an inventory key's `account_id` (default
    /// `sts.account_id`), or the account of the principal an issued credential speaks for.
    pub fn account_of<'a>(&'a self, statics: &'a [SimCredential], id: &str) -> Option<&'a str> {
        if let Some(k) = statics.iter().find(|k| k.access_key_id == id) {
            return Some(k.account_id.as_deref().unwrap_or(&self.account_id));
        }
        self.issued.get(id).map(|i| i.principal.account_id())
    }

    /// The accounts STS knows of besides the default: those of explicit roles and of the member role.
    pub fn role_accounts(&self) -> impl Iterator<Item = &str> {
        let members = self.member_role.iter().flat_map(|m| m.members.iter().map(String::as_str));
        self.roles.iter().map(|r| r.account_id.as_str()).chain(members)
    }

    /// The caller behind an (authenticated) access key id.
    pub fn caller(&self, statics: &[SimCredential], id: &str) -> Option<Caller> {
        if let Some(k) = statics.iter().find(|k| k.access_key_id == id) {
            return Some(Caller {
                access_key_id: id.to_string(),
                principal: Principal::User {
                    account_id: k.account_id.clone().unwrap_or_else(|| self.account_id.clone()),
                    user_name: k.user_name.clone().unwrap_or_else(|| id.to_string()),
                    root: k.root,
                },
                origin: Some(id.to_string()),
            });
        }
        self.issued.get(id).map(|i| Caller {
            access_key_id: id.to_string(),
            principal: i.principal.clone(),
            origin: i.origin.clone(),
        })
    }

    pub fn issued(&self) -> impl Iterator<Item = &Issued> {
        self.order.iter().filter_map(|id| self.issued.get(id))
    }

    pub fn get(&self, id: &str) -> Option<&Issued> {
        self.issued.get(id)
    }

    /// Makes every issued credential expire at `now` (those already expired keep their expiry).
    pub fn expire_all(&mut self, now: DateTime<Utc>) {
        for i in self.issued.values_mut() {
            i.expires = i.expires.min(now);
        }
    }

    /// Issues a credential for `principal` living `lifetime_secs` from `now`.
    pub fn issue(
        &mut self,
        principal: Principal,
        origin: Option<String>,
        source: Source,
        lifetime_secs: u64,
        now: DateTime<Utc>,
    ) -> &Issued {
        let mut id = format!("STS.N{}", random_alnum(24));
        while self.issued.contains_key(&id) {
            id = format!("STS.N{}", random_alnum(24));
        }
        let lifetime = Duration::seconds(i64::try_from(lifetime_secs).unwrap_or(i64::MAX).min(10 * 365 * 86_400));
        let issued = Issued {
            access_key_id: id.clone(),
            access_key_secret: random_alnum(40),
            // Real tokens start `CAIS` and are long; their length is not bounded (API metadata), so neither is this.
            security_token: format!("CAIS{}", random_alnum(252)),
            issued_at: now,
            expires: now + lifetime,
            principal,
            origin,
            source,
        };
        self.order.push(id.clone());
        self.issued.entry(id).or_insert(issued)
    }

    /// A role by ARN: an explicit one of `roles` first, else the member role of a directory account (trusting
    /// nobody in a `deny` account).
    fn role(&self, arn: &str) -> Option<Role> {
        if let Some(r) = self.roles.iter().find(|r| r.arn.eq_ignore_ascii_case(arn)) {
            return Some(r.clone());
        }
        let m = self.member_role.as_ref()?;
        let (account, name) = parse_arn(arn, "role")?;
        if !name.eq_ignore_ascii_case(&m.name) || !m.members.contains(account) {
            return None;
        }
        let canonical = format!("acs:ram::{account}:role/{}", m.name);
        Some(Role {
            id: role_id(&canonical),
            account_id: account.to_string(),
            name: m.name.clone(),
            arn: canonical,
            trusted: if m.deny.contains(account) { Vec::new() } else { m.trusted.clone() },
            max_session: m.max_session,
            oidc: None,
        })
    }

    /// Runs a signed STS action for `caller`, or the anonymous `AssumeRoleWithOIDC` (`caller` is then `None`).
    /// `now` is the real clock.
    pub fn handle(
        &mut self,
        action: &str,
        p: &Params,
        caller: Option<&Caller>,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiFault> {
        match (action, caller) {
            ("AssumeRoleWithOIDC", _) => self.assume_role_with_oidc(p, now),
            ("AssumeRole", Some(c)) => self.assume_role(p, c, now),
            ("GetCallerIdentity", Some(c)) => Ok(caller_identity(&c.principal)),
            _ => Err(ApiFault::action_not_found()),
        }
    }

    fn assume_role(&mut self, p: &Params, caller: &Caller, now: DateTime<Utc>) -> Result<Value, ApiFault> {
        let arn = required(p, "RoleArn")?;
        let session = session_name(p)?;
        if parse_arn(arn, "role").is_none() {
            return Err(role_arn_fault());
        }
        let asked = duration(p)?;
        policy(p)?;
        external_id(p)?;
        if matches!(caller.principal, Principal::User { root: true, .. }) {
            return Err(fault(403, "NoPermission", "Roles may not be assumed by root accounts."));
        }
        let role = self.role(arn).ok_or_else(no_such_role)?;
        let trusted = role.trusted.iter().any(|t| match t {
            Trust::Anyone => true,
            Trust::Key(id) => caller.access_key_id == *id || caller.origin.as_deref() == Some(id),
            Trust::Role(trusted_arn) => match &caller.principal {
                Principal::Role { account_id, role_name, .. } => {
                    trusted_arn.eq_ignore_ascii_case(&format!("acs:ram::{account_id}:role/{role_name}"))
                }
                Principal::User { .. } => false,
            },
        });
        if !trusted {
            return Err(fault(
                403,
                "NoPermission",
                "You are not authorized to do this action. You should be authorized by RAM.",
            ));
        }
        if asked > role.max_session {
            return Err(duration_fault(role.max_session));
        }
        let principal = Principal::role_session(&role.account_id, &role.name, session);
        let lifetime = self.lifetime(asked);
        let issued = self.issue(principal, caller.origin.clone(), Source::AssumeRole, lifetime, now);
        let mut body = assumed(&role, session, issued);
        if let Some(source_identity) = optional(p, "SourceIdentity") {
            body["SourceIdentity"] = source_identity.into();
        }
        Ok(body)
    }

    fn assume_role_with_oidc(&mut self, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiFault> {
        let provider = required(p, "OIDCProviderArn")?;
        let Some(token) = optional(p, "OIDCToken") else {
            return Err(fault(401, "AuthenticationFail.OIDCToken.Invalid", "The OIDCToken can not empty."));
        };
        let arn = required(p, "RoleArn")?;
        let session = session_name(p)?;
        if parse_arn(provider, "oidc-provider").is_none() {
            return Err(oidc_no_permission("Parameter OIDCProviderArn is not valid"));
        }
        if parse_arn(arn, "role").is_none() {
            return Err(role_arn_fault());
        }
        let asked = duration(p)?;
        policy(p)?;
        let registered =
            |r: &Role| r.oidc.as_ref().is_some_and(|(id_provider, _)| id_provider.eq_ignore_ascii_case(provider));
        if !self.roles.iter().any(registered) {
            return Err(oidc_no_permission("No such OIDC Provider registered."));
        }
        let role = self.role(arn).ok_or_else(no_such_role)?;
        let Some((_, want)) = role.oidc.as_ref().filter(|_| registered(&role)) else {
            return Err(oidc_no_permission("There is no permission"));
        };
        if token != want {
            return Err(if token.split('.').count() == 3 {
                fault(
                    401,
                    "AuthenticationFail.OIDCToken.InvalidSignature",
                    "OIDC token validate failed: invalid signature.",
                )
            } else {
                fault(
                    401,
                    "AuthenticationFail.OIDCToken.Invalid",
                    "The number of Jwt field should be divided into 3 parts with '.' .",
                )
            });
        }
        let claims = jwt_claims(token);
        if claims.as_ref().and_then(|c| claim_time(c, "exp")).is_some_and(|exp| exp <= now) {
            return Err(fault(401, "AuthenticationFail.OIDCToken.Expired", "This JsonWebToken is expired."));
        }
        if asked > role.max_session {
            return Err(duration_fault(role.max_session));
        }
        let principal = Principal::role_session(&role.account_id, &role.name, session);
        let lifetime = self.lifetime(asked);
        let issued = self.issue(principal, None, Source::AssumeRoleWithOidc, lifetime, now);
        let mut body = assumed(&role, session, issued);
        body["OIDCTokenInfo"] = token_info(claims.as_ref());
        Ok(body)
    }
}

/// `AssumedRoleUser` and `Credentials`, as both assume actions answer them.
fn assumed(role: &Role, session: &str, issued: &Issued) -> Value {
    json!({
        "AssumedRoleUser": {
            "Arn": format!("acs:ram::{}:role/{}/{session}", role.account_id, role.name),
            "AssumedRoleId": format!("{}:{session}", role.id),
        },
        "Credentials": {
            "AccessKeyId": issued.access_key_id,
            "AccessKeySecret": issued.access_key_secret,
            "SecurityToken": issued.security_token,
            "Expiration": issued.expiration(),
        },
    })
}

fn caller_identity(principal: &Principal) -> Value {
    let arn = principal.arn();
    match principal {
        Principal::User { account_id, root: true, .. } => json!({
            "AccountId": account_id, "UserId": account_id, "PrincipalId": account_id,
            "Arn": arn, "IdentityType": "Account",
        }),
        Principal::User { account_id, user_name, .. } => {
            let id = user_id(account_id, user_name);
            json!({"AccountId": account_id, "UserId": id, "PrincipalId": id, "Arn": arn, "IdentityType": "RAMUser"})
        }
        Principal::Role { account_id, role_id, session, .. } => json!({
            "AccountId": account_id, "RoleId": role_id, "PrincipalId": format!("{role_id}:{session}"),
            "Arn": arn, "IdentityType": "AssumedRoleUser",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ACCOUNT: &str = "1234567890123456";
    const ROLE: &str = "acs:ram::1234567890123456:role/aliyun-janitor";
    const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn keys() -> Vec<SimCredential> {
        serde_json::from_value(json!([
            {"access_key_id": "user-key", "access_key_secret": "s", "user_name": "janitor"},
            {"access_key_id": "other-key", "access_key_secret": "s", "account_id": "999"},
            {"access_key_id": "root-key", "access_key_secret": "s", "root": true},
        ]))
        .unwrap()
    }

    /// A JWT whose payload is `claims` (header and signature are not checked).
    fn jwt(claims: Value) -> String {
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", b64(&json!({"alg": "RS256"})), b64(&claims))
    }

    fn sts_with(section: Value) -> Sts {
        load(Some(&section), &keys(), None).unwrap()
    }

    fn sts() -> Sts {
        sts_with(json!({"roles": [
            {"arn": ROLE, "trusted": ["user-key"], "max_session_duration": 7200,
             "oidc_provider_arn": PROVIDER, "oidc_token": "eyJ...test-token"},
            {"arn": "acs:ram::1234567890123456:role/chained", "trusted": [ROLE]},
            {"arn": "acs:ram::1234567890123456:role/open", "trusted": ["*"]},
        ]}))
    }

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn caller(sts: &Sts, id: &str) -> Caller {
        sts.caller(&keys(), id).unwrap()
    }

    fn code(r: Result<Value, ApiFault>) -> String {
        r.map(|_| "ok".to_string()).unwrap_or_else(|f| format!("{} {}", f.status, f.code))
    }

    fn assume(s: &mut Sts, who: &str, extra: &[(&str, &str)]) -> Result<Value, ApiFault> {
        let c = caller(s, who);
        let mut q = p(&[("RoleArn", ROLE), ("RoleSessionName", "run-1")]);
        q.extend(p(extra));
        s.handle("AssumeRole", &q, Some(&c), now())
    }

    fn field_of(section: Value) -> String {
        match load(Some(&section), &keys(), None) {
            Err(SimError::Invalid { field, .. }) => field,
            other => panic!("expected an error, got ok={}", other.is_ok()),
        }
    }

    #[test]
    fn load_errors_name_the_field() {
        assert_eq!(field_of(json!({"account_id": "x1"})), "sts.account_id");
        assert_eq!(field_of(json!({"colour": 1})), "sts.colour");
        assert_eq!(field_of(json!({"credential_lifetime_secs": 0})), "sts.credential_lifetime_secs");
        assert_eq!(field_of(json!({"credential_lifetime_secs": -1})), "sts.credential_lifetime_secs");
        assert_eq!(field_of(json!({"roles": [{"arn": "acs:ram::1:user/x"}]})), "sts.roles[0].arn");
        assert_eq!(
            field_of(json!({"roles": [{"arn": ROLE}, {"arn": ROLE.replace("aliyun", "Aliyun")}]})),
            "sts.roles[1].arn"
        );
        assert_eq!(field_of(json!({"roles": [{"arn": ROLE, "trusted": ["*", "nobody"]}]})), "sts.roles[0].trusted[1]");
        assert_eq!(
            field_of(json!({"roles": [{"arn": ROLE, "max_session_duration": 60}]})),
            "sts.roles[0].max_session_duration"
        );
        assert_eq!(field_of(json!({"roles": [{"arn": ROLE, "oidc_token": "abcd"}]})), "sts.roles[0].oidc_provider_arn");
        assert_eq!(
            field_of(json!({"roles": [{"arn": ROLE, "oidc_provider_arn": PROVIDER}]})),
            "sts.roles[0].oidc_token"
        );
        assert_eq!(
            field_of(json!({"roles": [{"arn": ROLE, "oidc_provider_arn": "p", "oidc_token": "abcd"}]})),
            "sts.roles[0].oidc_provider_arn"
        );
        assert_eq!(
            field_of(json!({"roles": [{"arn": ROLE, "oidc_provider_arn": PROVIDER, "oidc_token": "abc"}]})),
            "sts.roles[0].oidc_token"
        );
        assert_eq!(field_of(json!({"roles": [{"arn": ROLE, "colour": 1}]})), "sts.roles[0].colour");
        assert_eq!(field_of(json!({"ecs_role": {"name": ""}})), "sts.ecs_role.name");
        assert_eq!(field_of(json!({"ecs_role": {"name": "r", "account_id": "a"}})), "sts.ecs_role.account_id");
        assert_eq!(field_of(json!({"ecs_role": {"name": "r", "require_token": "yes"}})), "sts.ecs_role.require_token");
    }

    #[test]
    fn defaults() {
        let none = load(None, &keys(), None).unwrap();
        assert!(!none.present && none.ecs_role.is_none());
        assert_eq!(none.account_id(), DEFAULT_ACCOUNT);
        let s = sts_with(json!({"account_id": "42", "ecs_role": {"name": "ecs"}}));
        assert_eq!(s.account_id(), "42");
        let e = s.ecs_role.as_ref().unwrap();
        assert_eq!((e.account_id.as_str(), e.require_token), ("42", false));
        assert_eq!(s.lifetime(900), 900);
        assert_eq!(sts_with(json!({"credential_lifetime_secs": 2})).lifetime(900), 2);
    }

    #[test]
    fn assume_role_answers_the_sdk_shape_and_the_credential_authenticates() {
        let mut s = sts();
        let v = assume(&mut s, "user-key", &[("DurationSeconds", "1800")]).unwrap();
        assert_eq!(v["AssumedRoleUser"]["Arn"], "acs:ram::1234567890123456:role/aliyun-janitor/run-1");
        let role_id = role_id(ROLE);
        assert_eq!(v["AssumedRoleUser"]["AssumedRoleId"], format!("{role_id}:run-1"));
        let c = &v["Credentials"];
        let id = c["AccessKeyId"].as_str().unwrap();
        assert!(id.starts_with("STS.") && id.len() > 20, "{id}");
        assert_eq!(c["Expiration"], "2026-03-01T12:30:00Z");
        let ring = keys();
        let key = s.key(&ring, id).unwrap();
        assert_eq!(key.secret, c["AccessKeySecret"].as_str().unwrap());
        assert_eq!(key.security_token, c["SecurityToken"].as_str());
        assert_eq!(key.expires, Some(now() + Duration::seconds(1800)));
        assert_eq!(s.issued().count(), 1);
        // The temporary key's identity is the role session.
        let who = caller_identity(&caller(&s, id).principal);
        assert_eq!(who["Arn"], "acs:ram::1234567890123456:assumed-role/aliyun-janitor/run-1");
        assert_eq!(who["IdentityType"], "AssumedRoleUser");
        assert_eq!(who["RoleId"], role_id);
        assert_eq!(who["AccountId"], ACCOUNT);
        assert!(who.get("UserId").is_none());
    }

    #[test]
    fn assume_role_refusals() {
        let mut s = sts();
        let with = |s: &mut Sts, extra: &[(&str, &str)]| code(assume(s, "user-key", extra));
        assert_eq!(with(&mut s, &[("RoleArn", "")]), "400 MissingParameter");
        assert_eq!(with(&mut s, &[("RoleSessionName", "a")]), "400 InvalidParameter.RoleSessionName");
        assert_eq!(with(&mut s, &[("RoleSessionName", "has space")]), "400 InvalidParameter.RoleSessionName");
        assert_eq!(with(&mut s, &[("RoleSessionName", &"x".repeat(65))]), "400 InvalidParameter.RoleSessionName");
        assert_eq!(with(&mut s, &[("RoleSessionName", "a.b@c-d_e")]), "ok");
        assert_eq!(with(&mut s, &[("RoleArn", "acs:ram::1:user/x")]), "400 InvalidParameter.RoleArn");
        assert_eq!(with(&mut s, &[("RoleArn", "acs:ram::1:role/nope")]), "404 EntityNotExist.Role");
        assert_eq!(with(&mut s, &[("DurationSeconds", "899")]), "400 InvalidParameter.DurationSeconds");
        assert_eq!(with(&mut s, &[("DurationSeconds", "soon")]), "400 InvalidParameter.DurationSeconds");
        assert_eq!(with(&mut s, &[("DurationSeconds", "7201")]), "400 InvalidParameter.DurationSeconds");
        assert_eq!(with(&mut s, &[("DurationSeconds", "7200")]), "ok");
        assert_eq!(with(&mut s, &[("Policy", "{not json")]), "400 InvalidParameter.PolicyGrammar");
        assert_eq!(
            with(&mut s, &[("Policy", &format!("{{\"a\":\"{}\"}}", "x".repeat(2048)))]),
            "400 InvalidParameter.PolicySize"
        );
        assert_eq!(with(&mut s, &[("Policy", r#"{"Version":"1","Statement":[]}"#)]), "ok");
        assert_eq!(with(&mut s, &[("ExternalId", "a")]), "400 InvalidParameter.ExternalId");
        assert_eq!(with(&mut s, &[("ExternalId", "abc def")]), "400 InvalidParameter.ExternalId");
        assert_eq!(with(&mut s, &[("ExternalId", "abcd1234=,.@:/-_+")]), "ok");
        assert_eq!(code(assume(&mut s, "other-key", &[])), "403 NoPermission");
        let root = assume(&mut s, "root-key", &[]).unwrap_err();
        assert_eq!(
            (root.code.as_str(), root.message.as_str()),
            ("NoPermission", "Roles may not be assumed by root accounts.")
        );
        // Role ARNs are matched case-insensitively.
        assert_eq!(with(&mut s, &[("RoleArn", &ROLE.replace("aliyun-janitor", "Aliyun-Janitor"))]), "ok");
    }

    #[test]
    fn trust_follows_the_chain_and_role_sessions() {
        let mut s = sts();
        let first = assume(&mut s, "user-key", &[]).unwrap();
        let tmp = first["Credentials"]["AccessKeyId"].as_str().unwrap().to_string();
        // A temporary key whose chain started with a trusted key may assume the role again.
        assert_eq!(code(assume(&mut s, &tmp, &[])), "ok");
        // A session of the trusted role may assume the role that trusts it; another key's session may not.
        let c = caller(&s, &tmp);
        let chained = p(&[("RoleArn", "acs:ram::1234567890123456:role/chained"), ("RoleSessionName", "hop")]);
        assert_eq!(code(s.handle("AssumeRole", &chained, Some(&c), now())), "ok");
        let other = caller(&s, "other-key");
        assert_eq!(code(s.handle("AssumeRole", &chained, Some(&other), now())), "403 NoPermission");
        let open = p(&[("RoleArn", "acs:ram::1234567890123456:role/open"), ("RoleSessionName", "any")]);
        assert_eq!(code(s.handle("AssumeRole", &open, Some(&other), now())), "ok");
        assert_eq!(s.issued().count(), 4);
    }

    #[test]
    fn lifetime_override_wins_over_duration_seconds() {
        let mut s = sts_with(json!({"credential_lifetime_secs": 2, "roles": [{"arn": ROLE, "trusted": ["*"]}]}));
        let v = assume(&mut s, "user-key", &[("DurationSeconds", "3600")]).unwrap();
        assert_eq!(v["Credentials"]["Expiration"], "2026-03-01T12:00:02Z");
        // DurationSeconds is still validated.
        assert_eq!(
            code(assume(&mut s, "user-key", &[("DurationSeconds", "1")])),
            "400 InvalidParameter.DurationSeconds"
        );
        s.expire_all(now() - Duration::seconds(5));
        let id = v["Credentials"]["AccessKeyId"].as_str().unwrap();
        assert_eq!(s.key(&keys(), id).unwrap().expires, Some(now() - Duration::seconds(5)));
    }

    #[test]
    fn caller_identity_of_inventory_keys() {
        let s = sts_with(json!({"account_id": "5555"}));
        let user = caller_identity(&caller(&s, "user-key").principal);
        assert_eq!(user["Arn"], "acs:ram::5555:user/janitor");
        assert_eq!((user["IdentityType"].as_str(), user["AccountId"].as_str()), (Some("RAMUser"), Some("5555")));
        assert_eq!(user["UserId"], user["PrincipalId"]);
        assert_eq!(user["UserId"].as_str().unwrap().len(), 16);
        assert!(user.get("RoleId").is_none());
        let other = caller_identity(&caller(&s, "other-key").principal);
        assert_eq!(other["Arn"], "acs:ram::999:user/other-key");
        let root = caller_identity(&caller(&s, "root-key").principal);
        assert_eq!(
            root,
            json!({"AccountId": "5555", "UserId": "5555", "PrincipalId": "5555", "Arn": "acs:ram::5555:root", "IdentityType": "Account"})
        );
    }

    fn oidc(s: &mut Sts, extra: &[(&str, &str)]) -> Result<Value, ApiFault> {
        let mut q = p(&[
            ("RoleArn", ROLE),
            ("OIDCProviderArn", PROVIDER),
            ("OIDCToken", "eyJ...test-token"),
            ("RoleSessionName", "pod-1"),
        ]);
        q.extend(p(extra));
        s.handle("AssumeRoleWithOIDC", &q, None, now())
    }

    #[test]
    fn oidc_accepts_only_the_right_provider_and_token() {
        let mut s = sts();
        let v = oidc(&mut s, &[]).unwrap();
        assert_eq!(v["AssumedRoleUser"]["Arn"], "acs:ram::1234567890123456:role/aliyun-janitor/pod-1");
        assert_eq!(v["OIDCTokenInfo"], json!({"VerificationInfo": "Success"}));
        assert_eq!(v["Credentials"]["Expiration"], "2026-03-01T13:00:00Z");
        let id = v["Credentials"]["AccessKeyId"].as_str().unwrap();
        assert_eq!(s.get(id).unwrap().source, Source::AssumeRoleWithOidc);
        assert_eq!(s.get(id).unwrap().origin, None);
        let with = |s: &mut Sts, extra: &[(&str, &str)]| code(oidc(s, extra));
        assert_eq!(with(&mut s, &[("OIDCToken", "")]), "401 AuthenticationFail.OIDCToken.Invalid");
        assert_eq!(with(&mut s, &[("OIDCToken", "not-a-jwt")]), "401 AuthenticationFail.OIDCToken.Invalid");
        assert_eq!(with(&mut s, &[("OIDCToken", "a.b.c")]), "401 AuthenticationFail.OIDCToken.InvalidSignature");
        assert_eq!(with(&mut s, &[("OIDCProviderArn", "provider-arn")]), "401 AuthenticationFail.NoPermission");
        let unregistered =
            oidc(&mut s, &[("OIDCProviderArn", "acs:ram::1234567890123456:oidc-provider/x")]).unwrap_err();
        assert_eq!(unregistered.message, "No such OIDC Provider registered.");
        assert_eq!(
            with(&mut s, &[("RoleArn", "acs:ram::1234567890123456:role/open")]),
            "401 AuthenticationFail.NoPermission"
        );
        assert_eq!(with(&mut s, &[("RoleArn", "acs:ram::1234567890123456:role/gone")]), "404 EntityNotExist.Role");
        assert_eq!(with(&mut s, &[("RoleArn", "role")]), "400 InvalidParameter.RoleArn");
        assert_eq!(with(&mut s, &[("RoleSessionName", "")]), "400 MissingParameter");
        assert_eq!(with(&mut s, &[("DurationSeconds", "7201")]), "400 InvalidParameter.DurationSeconds");
        assert_eq!(with(&mut s, &[("Policy", "[]")]), "400 InvalidParameter.PolicyGrammar");
        assert_eq!(s.issued().count(), 1);
    }

    #[test]
    fn oidc_jwt_claims_fill_the_token_info_and_exp_is_enforced() {
        let exp = now().timestamp() + 600;
        let token = jwt(
            json!({"iss": "https://oidc.example", "sub": "system:serviceaccount:ns:sa", "aud": ["sts.aliyuncs.com", "x"], "iat": exp - 3600, "exp": exp}),
        );
        let mut s = sts_with(json!({"roles": [{"arn": ROLE, "oidc_provider_arn": PROVIDER, "oidc_token": token}]}));
        let v = oidc(&mut s, &[("OIDCToken", &token)]).unwrap();
        assert_eq!(
            v["OIDCTokenInfo"],
            json!({"Issuer": "https://oidc.example", "Subject": "system:serviceaccount:ns:sa", "ClientIds": "sts.aliyuncs.com,x",
                   "IssuanceTime": "2026-03-01T11:10:00Z", "ExpirationTime": "2026-03-01T12:10:00Z", "VerificationInfo": "Success"})
        );
        let stale = jwt(json!({"exp": now().timestamp()}));
        let mut s = sts_with(json!({"roles": [{"arn": ROLE, "oidc_provider_arn": PROVIDER, "oidc_token": stale}]}));
        assert_eq!(code(oidc(&mut s, &[("OIDCToken", &stale)])), "401 AuthenticationFail.OIDCToken.Expired");
    }

    #[test]
    fn ids_are_stable_and_shaped_like_the_real_ones() {
        assert_eq!(role_id(ROLE), role_id(&ROLE.replace("aliyun", "ALIYUN")));
        assert_eq!(role_id(ROLE).len(), 18);
        assert!(role_id(ROLE).starts_with('3') && role_id(ROLE).bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(user_id("1", "a"), user_id("1", "b"));
        assert_eq!(numeric_id('9', 30, "x").len(), 20);
    }
}

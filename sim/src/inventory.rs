//! The inventory file the emulator serves from. One JSON object:
//!
//! ```json
//! {
//!   "credentials": [
//!     {"access_key_id": "LTAI-sim-1", "access_key_secret": "secret-1", "security_token": null,
//!      "account_id": "1234567890123456", "user_name": "janitor", "root": false},
//!     {"access_key_id": "STS.sim-2", "access_key_secret": "secret-2", "security_token": "CAIS-token"}
//!   ],
//!   "now": "2026-06-01T00:00:00Z",
//!   "ecs": [ { "InstanceId": "i-…", "RegionId": "cn-hangzhou", "Status": "Stopped", "InstanceChargeType": "PostPaid", … } ],
//!   "sts": {
//!     "account_id": "1234567890123456",
//!     "credential_lifetime_secs": null,
//!     "roles": [
//!       {"arn": "acs:ram::1234567890123456:role/aliyun-janitor", "trusted": ["LTAI-sim-1"], "max_session_duration": 3600,
//!        "oidc_provider_arn": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1", "oidc_token": "eyJ…"}
//!     ],
//!     "ecs_role": {"name": "aliyun-janitor-ecs", "account_id": "1234567890123456", "require_token": true},
//!     "member_role": {"name": "ResourceDirectoryAccountAccessRole", "trusted": ["LTAI-sim-1"], "deny": ["3000000000000002"]}
//!   },
//!   "accounts": {
//!     "2234567890123456": { "ecs": [ … ], "r-kvstore": [ … ], "bss": [ … ] }
//!   },
//!   "resource_directory": {
//!     "id": "rd-k4abcd", "master_account_id": "1234567890123456", "master_account_name": "admin",
//!     "root_folder_id": "r-k4abcd", "create_time": "2024-01-01T00:00:00.000Z", "folders": ["fd-empty1"],
//!     "delegated_admins": ["2234567890123456"],
//!     "accounts": [
//!       {"id": "2234567890123456", "name": "prod", "folder_id": "fd-prod01", "status": "CreateSuccess",
//!        "type": "ResourceAccount", "join_method": "created", "join_time": "2024-01-01T00:00:00.000Z",
//!        "modify_time": "2024-01-01T00:00:00.000Z", "tags": {"env": "prod"}}
//!     ],
//!     "generate": {"count": 200, "first_id": 3000000000000001, "name_prefix": "member-", "folder_id": "fd-gen001"}
//!   },
//!   "generate": {"accounts": "all-members", "regions": ["cn-hangzhou"], "ecs_per_region": 100, "expired_every": 5},
//!   "faults": [ {"action": "DescribeInstances", "region": "cn-shanghai", "account": "2234567890123456",
//!                "code": "InternalError", "status": 500, "times": null} ]
//! }
//! ```
//!
//! - `credentials` (required, at least one): the access keys the emulator accepts. An id starting `STS.` must have a
//!   `security_token`, and every request signed with a key that has one must send it as `SecurityToken`. Optional, for
//!   STS `GetCallerIdentity` and `AssumeRole`: `account_id` (digits; default `sts.account_id`), `user_name` (the RAM
//!   user the key belongs to; default: the access key id), `root` (`true`: the key is the Alibaba Cloud account's own,
//!   identity `Account`, which may not assume roles; default `false`, a RAM user).
//! - `now` (optional): the emulator clock for expiry checks (ECS `ExpiredTime`). Default: the real clock. Request
//!   timestamps are always checked against the real clock. Tests can also call `Sim::set_clock`.
//! - One section per product, named by its endpoint product code. The top-level ones are the default account's
//!   (`sts.account_id`); `accounts` holds every other account's. `ecs`: an array of instance objects exactly as
//!   ECS `DescribeInstances` returns them (real field names, minute-precision times such as `2026-01-01T00:00Z`);
//!   they are served back verbatim. Checked on load: `InstanceId` (unique), `RegionId`, `Status`
//!   (`Pending|Running|Starting|Stopping|Stopped`), `InstanceChargeType` (`PostPaid|PrePaid`), and when present
//!   `ZoneId`, `CreationTime`, `ExpiredTime` (required for `PrePaid`; `2099-12-31T15:59Z` means never),
//!   `DeletionProtection` (bool), `OperationLocks: {"LockReason": [{"LockReason": "security"}]}`,
//!   `Tags: {"Tag": [{"TagKey", "TagValue"}]}`. Other fields are kept and served as given.
//! - `r-kvstore`, `alikafka`, `kms`, `bss`: the other products' sections, each described in its own file
//!   (`redis.rs`, `kafka.rs`, `kms.rs`, `bss.rs`); instance objects there may carry emulator-only `_sim`
//!   controls (`controls.rs`), never served.
//! - `sts` (optional): the RAM side of STS (`sts.rs`) and of the ECS metadata service (`metadata.rs`). Without it STS
//!   still answers (`GetCallerIdentity` for the keys above; no role exists), the metadata service and the
//!   credentials URI answer 404.
//!   - `account_id` (digits, default `1234567890123456`): the account of keys that name none.
//!   - `credential_lifetime_secs` (emulator-only control, null or an integer >= 1): when set, every credential the
//!     emulator issues (AssumeRole, AssumeRoleWithOIDC, the metadata service, the credentials URI) lives exactly that
//!     many seconds whatever `DurationSeconds` asked (which is still validated), so a client's refresh before
//!     expiry can be tested in seconds.
//!   - `roles`: RAM roles. `arn` (required, `acs:ram::<account>:role/<name>`, unique); `trusted`: who may call
//!     `AssumeRole` on it: `"*"` (anyone), an access key id of `credentials` (that key, and every temporary key
//!     issued down a chain that started with it), or a role ARN (any session of that role, however it was
//!     obtained); `max_session_duration` (3600..=43200, default 3600, the RAM `MaxSessionDuration`);
//!     `oidc_provider_arn` (`acs:ram::<account>:oidc-provider/<name>`) and `oidc_token` (4 to 20000 characters),
//!     both or neither: the identity provider the role trusts for `AssumeRoleWithOIDC` and the one token it accepts.
//!   - `ecs_role`: the RAM role attached to "this ECS instance", served by the metadata service: `name` (required),
//!     `account_id` (default `sts.account_id`), `require_token` (default `false`; `true` is the security hardening
//!     mode only, `HttpTokens=required`).
//!   - `member_role` (needs `resource_directory`): every account of the Resource Directory (listed and generated;
//!     the management account only when `accounts` lists it) has the role `acs:ram::<account>:role/<name>`:
//!     `name` (required), `trusted` (as for `roles`), `max_session_duration` (as for `roles`), `deny` (accounts of
//!     the directory where the role trusts nobody: `AssumeRole` answers 403 `NoPermission`, as STS does for a role
//!     whose trust policy leaves the caller out). An explicit role of `roles` with the same ARN wins. Names match
//!     case-insensitively.
//! - `accounts` (optional): `{"<account id>": {<product sections>}}`, each value with the same product sections as
//!   the top level, checked the same way; errors name the account (`accounts.2234567890123456.ecs[3].Status`).
//!   Every product request is served from the inventory of the caller's account: the `account_id` of the key that
//!   signed it, or the account of the role a temporary credential was issued for. An account with no inventory has
//!   empty products. The default account may be given here instead of at the top level, not in both.
//! - `resource_directory` (optional): the Resource Directory Resource Manager serves (`resourcemanager.rs`): `id`
//!   (required, `rd-…`), `master_account_id` (required; the management account, the only caller besides the
//!   `delegated_admins`, which must be accounts of it, that may list members), `master_account_name` (default: the
//!   id), `root_folder_id` (default `r-` and the part of `id` after `rd-`), `create_time`, `folders` (more `fd-…`
//!   folders, e.g. empty ones; a folder an account names exists anyway; all are children of the root folder), `accounts`: `id`
//!   (required, unique), `name` (the `DisplayName`, default the id), `folder_id` (default the root folder), `status`
//!   (default `CreateSuccess`; one of `CreateSuccess`, `CreateVerifying`, `CreateFailed`, `CreateExpired`,
//!   `CreateCancelled`, `PromoteVerifying`, `PromoteFailed`, `PromoteExpired`, `PromoteCancelled`, `PromoteSuccess`,
//!   `InviteSuccess`; there is no suspended state), `join_method` (`created`/`invited`; default `invited` for
//!   `InviteSuccess`, else `created`), `type` (`ResourceAccount`/`CloudAccount`; default `CloudAccount` when
//!   invited, else `ResourceAccount`), `join_time` and `modify_time` (default `2024-01-01T00:00:00.000Z`), `tags`
//!   (key → value). Emulator-only `generate`: `count` accounts with ids `first_id`, `first_id + 1`, … (decimal
//!   strings), named `<name_prefix><n>` with `n` from 1 (default prefix `member-`), in `folder_id` (default the
//!   root folder), `CreateSuccess`, `ResourceAccount`, `created`, no tags; listed after `accounts`.
//! - `generate` (optional, emulator-only): ECS instances written into accounts' `ecs` sections, see
//!   `generate.rs` for exactly what it makes.
//! - `faults` (optional): injected errors, see [`super::faults`] for the fields (`account` limits a rule to one
//!   account's calls).
//!
//! Any error names the offending field, e.g. `ecs[3].InstanceChargeType` or `sts.roles[0].arn`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::faults::FaultSpec;
use super::service::PRODUCTS;
use crate::time;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read inventory file {path}: {source}")]
    Read { path: std::path::PathBuf, source: std::io::Error },
    /// The inventory (or an option) is wrong; `field` is a path such as `ecs[3].Status`.
    #[error("inventory: `{field}`: {message}")]
    Invalid { field: String, message: String },
}

impl SimError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SimError::Invalid { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimCredential {
    pub access_key_id: String,
    pub access_key_secret: String,
    #[serde(default)]
    pub security_token: Option<String>,
    /// The account the key belongs to (digits); `None`: `sts.account_id`.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The RAM user the key belongs to; `None`: named after the access key id.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The account's own key (identity `Account`) rather than a RAM user's.
    #[serde(default)]
    pub root: bool,
}

/// The inventory after the common sections are checked; product sections are handed to each product's loader.
#[derive(Debug)]
pub(crate) struct Inventory {
    pub credentials: Vec<SimCredential>,
    pub now: Option<DateTime<Utc>>,
    pub faults: Vec<FaultSpec>,
    /// The `sts` section, checked by `sts::load` (it needs the credentials).
    pub sts: Option<Value>,
    /// The default account's product sections (the top-level ones).
    pub products: Map<String, Value>,
    /// `accounts`: each other account's product sections, by account id (keys and sections checked).
    pub accounts: Vec<(String, Map<String, Value>)>,
    /// The `resource_directory` section, checked by `resourcemanager::load`.
    pub resource_directory: Option<Value>,
    /// The emulator-only `generate` section, checked by `generate::ecs`.
    pub generate: Option<Value>,
}

pub(crate) fn typed<T: serde::de::DeserializeOwned>(field: &str, value: Value) -> Result<T, SimError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            field.to_string()
        } else {
            format!("{field}{}{path}", if path.starts_with('[') { "" } else { "." })
        };
        SimError::invalid(at, e.into_inner().to_string())
    })
}

pub(crate) fn parse(text: &str) -> Result<Inventory, SimError> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| SimError::invalid("(document)", format!("not valid JSON: {e}")))?;
    let Value::Object(mut root) = root else {
        return Err(SimError::invalid("(document)", "the inventory must be a JSON object"));
    };
    let credentials: Vec<SimCredential> = typed(
        "credentials",
        root.remove("credentials")
            .ok_or_else(|| SimError::invalid("credentials", "missing; list at least one access key"))?,
    )?;
    if credentials.is_empty() {
        return Err(SimError::invalid("credentials", "list at least one access key"));
    }
    for (i, c) in credentials.iter().enumerate() {
        if c.access_key_id.trim().is_empty() {
            return Err(SimError::invalid(format!("credentials[{i}].access_key_id"), "must not be empty"));
        }
        if c.access_key_secret.is_empty() {
            return Err(SimError::invalid(format!("credentials[{i}].access_key_secret"), "must not be empty"));
        }
        if c.access_key_id.starts_with("STS.") && c.security_token.as_deref().is_none_or(str::is_empty) {
            return Err(SimError::invalid(
                format!("credentials[{i}].security_token"),
                "an STS access key (STS.…) needs a security_token",
            ));
        }
        if let Some(account) = &c.account_id {
            if !is_account_id(account) {
                return Err(SimError::invalid(format!("credentials[{i}].account_id"), "expected a string of digits"));
            }
        }
        if let Some(user) = &c.user_name {
            if !is_name(user) {
                return Err(SimError::invalid(
                    format!("credentials[{i}].user_name"),
                    "expected a non-empty name without `/`, `:` or spaces",
                ));
            }
        }
        if credentials[..i].iter().any(|o| o.access_key_id == c.access_key_id) {
            return Err(SimError::invalid(
                format!("credentials[{i}].access_key_id"),
                format!("duplicate access key id `{}`", c.access_key_id),
            ));
        }
    }
    let now = match root.remove("now") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(time::parse(&s).map_err(|e| SimError::invalid("now", e.to_string()))?),
        Some(_) => return Err(SimError::invalid("now", "expected a time string such as 2026-06-01T00:00:00Z")),
    };
    let faults: Vec<FaultSpec> = match root.remove("faults") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => typed("faults", v)?,
    };
    let sts = root.remove("sts").filter(|v| !v.is_null());
    let resource_directory = root.remove("resource_directory").filter(|v| !v.is_null());
    let generate = root.remove("generate").filter(|v| !v.is_null());
    let accounts = match root.remove("accounts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => {
            let mut accounts = Vec::with_capacity(map.len());
            for (id, sections) in map {
                if !is_account_id(&id) {
                    return Err(SimError::invalid(format!("accounts.{id}"), "expected an account id (digits) as key"));
                }
                let Value::Object(sections) = sections else {
                    return Err(SimError::invalid(
                        format!("accounts.{id}"),
                        "expected an object of product sections, such as {\"ecs\": [...]}",
                    ));
                };
                product_sections_only(&sections, &format!("accounts.{id}."), &[])?;
                accounts.push((id, sections));
            }
            accounts
        }
        Some(_) => return Err(SimError::invalid("accounts", "expected an object: account id → its product sections")),
    };
    product_sections_only(
        &root,
        "",
        &["credentials", "now", "faults", "sts", "accounts", "resource_directory", "generate"],
    )?;
    Ok(Inventory { credentials, now, faults, sts, products: root, accounts, resource_directory, generate })
}

/// Refuses a key of `sections` that is no product section, naming it `<prefix><key>`; `others` are the other
/// sections allowed where the check runs (for the message).
fn product_sections_only(sections: &Map<String, Value>, prefix: &str, others: &[&str]) -> Result<(), SimError> {
    for key in sections.keys() {
        if !PRODUCTS.iter().any(|p| p.section == key) {
            let known: Vec<&str> = others.iter().copied().chain(PRODUCTS.iter().map(|p| p.section)).collect();
            return Err(SimError::invalid(
                format!("{prefix}{key}"),
                format!("unknown section; expected one of {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Names an error of an account's product section after the account: `ecs[3].Status` becomes
/// `accounts.<id>.ecs[3].Status`.
pub(crate) fn in_account(account: &str, e: SimError) -> SimError {
    match e {
        SimError::Invalid { field, message } => {
            SimError::Invalid { field: format!("accounts.{account}.{field}"), message }
        }
        other => other,
    }
}

/// An Alibaba Cloud account id: digits only (`1234567890123456`).
pub(crate) fn is_account_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A RAM entity name that keeps an ARN well formed: non-empty, printable ASCII without `/`, `:` or spaces. (The RAM
/// naming rules are stricter; the emulator only needs the ARNs it builds to parse back.)
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// Helpers for product loaders: read a field of an instance object, naming `section[i].Field` on error.
pub(crate) struct Fields<'a> {
    pub path: String,
    pub obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub fn of(section: &str, index: usize, value: &'a Value) -> Result<Self, SimError> {
        let path = format!("{section}[{index}]");
        match value {
            Value::Object(obj) => Ok(Fields { path, obj }),
            _ => Err(SimError::invalid(path, "expected an instance object")),
        }
    }

    pub fn err(&self, field: &str, message: impl Into<String>) -> SimError {
        SimError::invalid(format!("{}.{field}", self.path), message)
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&'a str>, SimError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(field, "expected a string")),
        }
    }

    pub fn req_str(&self, field: &str) -> Result<&'a str, SimError> {
        match self.opt_str(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.err(field, "required, non-empty string")),
        }
    }

    pub fn one_of(&self, field: &str, allowed: &[&str]) -> Result<&'a str, SimError> {
        let v = self.req_str(field)?;
        if allowed.contains(&v) {
            Ok(v)
        } else {
            Err(self.err(field, format!("`{v}` is not one of {}", allowed.join(", "))))
        }
    }

    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, SimError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.err(field, "expected true or false")),
        }
    }

    /// `{"<outer>": {"<list>": [ {…}, … ]}}`, the XML-derived wrapping Alibaba uses for lists.
    pub fn wrapped_list(&self, outer: &str, list: &str) -> Result<Vec<&'a Map<String, Value>>, SimError> {
        let items = match self.obj.get(outer) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Object(o)) => match o.get(list) {
                None | Some(Value::Null) => return Ok(Vec::new()),
                Some(Value::Array(a)) => a,
                Some(_) => return Err(self.err(&format!("{outer}.{list}"), "expected an array")),
            },
            Some(_) => return Err(self.err(outer, format!("expected an object {{\"{list}\": [...]}}"))),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_object().ok_or_else(|| self.err(&format!("{outer}.{list}[{i}]"), "expected an object")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(text: &str) -> String {
        match parse(text) {
            Err(SimError::Invalid { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_inventory() {
        let inv = parse(r#"{"credentials":[{"access_key_id":"a","access_key_secret":"s"}]}"#).unwrap();
        assert_eq!(inv.credentials.len(), 1);
        assert!(inv.products.is_empty() && inv.faults.is_empty() && inv.now.is_none() && inv.sts.is_none());
        assert!(inv.accounts.is_empty() && inv.resource_directory.is_none() && inv.generate.is_none());
        let c = &inv.credentials[0];
        assert!(c.account_id.is_none() && c.user_name.is_none() && !c.root);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of("[1]"), "(document)");
        assert_eq!(field_of("{"), "(document)");
        assert_eq!(field_of(r#"{}"#), "credentials");
        assert_eq!(field_of(r#"{"credentials":[]}"#), "credentials");
        assert_eq!(field_of(r#"{"credentials":[{"access_key_id":"a"}]}"#), "credentials[0]");
        assert_eq!(
            field_of(r#"{"credentials":[{"access_key_id":"a","access_key_secret":7}]}"#),
            "credentials[0].access_key_secret"
        );
        assert_eq!(
            field_of(r#"{"credentials":[{"access_key_id":"STS.a","access_key_secret":"s"}]}"#),
            "credentials[0].security_token"
        );
        let ok = r#""credentials":[{"access_key_id":"a","access_key_secret":"s"}]"#;
        assert_eq!(field_of(&format!(r#"{{{ok},"kafka":[]}}"#)), "kafka");
        assert_eq!(field_of(&format!(r#"{{{ok},"now":"soon"}}"#)), "now");
        assert_eq!(field_of(&format!(r#"{{{ok},"accounts":[]}}"#)), "accounts");
        assert_eq!(field_of(&format!(r#"{{{ok},"accounts":{{"12a":{{}}}}}}"#)), "accounts.12a");
        assert_eq!(field_of(&format!(r#"{{{ok},"accounts":{{"12":[]}}}}"#)), "accounts.12");
        assert_eq!(field_of(&format!(r#"{{{ok},"accounts":{{"12":{{"sts":{{}}}}}}}}"#)), "accounts.12.sts");
        assert_eq!(field_of(&format!(r#"{{{ok},"faults":[{{"action":"X","colour":"red"}}]}}"#)), "faults[0].colour");
        assert_eq!(
            field_of(r#"{"credentials":[{"access_key_id":"a","access_key_secret":"s","account_id":"12a"}]}"#),
            "credentials[0].account_id"
        );
        assert_eq!(
            field_of(r#"{"credentials":[{"access_key_id":"a","access_key_secret":"s","user_name":"a/b"}]}"#),
            "credentials[0].user_name"
        );
        assert_eq!(
            field_of(r#"{"credentials":[{"access_key_id":"a","access_key_secret":"s","root":"yes"}]}"#),
            "credentials[0].root"
        );
    }
}

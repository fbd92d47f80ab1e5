//! The `accounts:` section: run over the member accounts of an organisation (issue 15), each through a role.
//!
//! ```yaml
//! accounts:
//!   discovery: resource-directory   # list the members with Resource Manager ListAccounts (paged)
//!   folder: fd-abc123               # optional, with discovery: only the members directly in this folder
//!   ids: ["2234567890123456"]       # or an explicit list instead of discovery
//!   exclude: ["3234567890123456"]   # never touched, whatever discovery says
//!   role_name: ResourceDirectoryAccountAccessRole   # default: the role Resource Directory creates in each member
//!   role_arn: "acs:ram::{account_id}:role/aliyun-janitor"   # or a template instead of role_name
//!   max_releases_total: 100         # optional organisation-wide cap (the per-account `limits:` still apply)
//!   concurrency: 8                  # shards run at once by the local runner (default 8, 1..=64)
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;

use super::raw::{present, Text};
use super::PolicyError;

/// The role Resource Directory creates in every member account it creates ("Resource Directory account access role").
pub const DEFAULT_ROLE_NAME: &str = "ResourceDirectoryAccountAccessRole";
const ACCOUNT_PLACEHOLDER: &str = "{account_id}";

#[derive(Debug, Clone, PartialEq)]
pub struct Accounts {
    pub source: AccountSource,
    pub exclude: BTreeSet<String>,
    pub role: MemberRole,
    /// An organisation-wide cap on releases (and marks) per run, split over the shards (see `org::shards`).
    pub max_releases_total: Option<usize>,
    /// Shards run at once by the local runner.
    pub concurrency: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccountSource {
    /// Resource Manager `ListAccounts` (or `ListAccountsForParent` with a folder).
    ResourceDirectory {
        folder: Option<String>,
    },
    Explicit(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum MemberRole {
    /// `acs:ram::<account>:role/<name>`.
    Name(String),
    /// A template holding `{account_id}`.
    Template(String),
}

impl MemberRole {
    pub fn arn_for(&self, account: &str) -> String {
        match self {
            MemberRole::Name(n) => format!("acs:ram::{account}:role/{n}"),
            MemberRole::Template(t) => t.replace(ACCOUNT_PLACEHOLDER, account),
        }
    }
}

pub fn is_account_id(a: &str) -> bool {
    !a.is_empty() && a.len() <= 32 && a.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccounts {
    #[serde(default, deserialize_with = "present")]
    discovery: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    folder: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    ids: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    exclude: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    role_name: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    role_arn: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    max_releases_total: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    concurrency: Option<i64>,
}

fn err(path: &str, message: impl Into<String>) -> PolicyError {
    PolicyError { file: "(policy)".into(), path: format!("accounts.{path}"), message: message.into() }
}

fn ids(list: Vec<Text>, field: &str) -> Result<Vec<String>, PolicyError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, Text(a)) in list.into_iter().enumerate() {
        let a = a.trim().to_string();
        if !is_account_id(&a) {
            return Err(err(&format!("{field}[{i}]"), format!("`{a}`: expected an account id, digits only")));
        }
        if out.contains(&a) {
            return Err(err(&format!("{field}[{i}]"), format!("duplicate entry `{a}`")));
        }
        out.push(a);
    }
    Ok(out)
}

impl RawAccounts {
    pub(super) fn into_accounts(self) -> Result<Accounts, PolicyError> {
        let source = match (self.discovery, self.ids) {
            (Some(Text(d)), None) if d == "resource-directory" => {
                let folder = self.folder.map(|Text(f)| f.trim().to_string());
                if let Some(f) = &folder {
                    if !f.starts_with("fd-") || f.len() < 4 {
                        return Err(err("folder", format!("`{f}`: expected a Resource Directory folder id (fd-...)")));
                    }
                }
                AccountSource::ResourceDirectory { folder }
            }
            (Some(Text(d)), None) => {
                return Err(err("discovery", format!("`{d}`: expected resource-directory (or list `ids:` instead)")))
            }
            (None, Some(list)) => {
                if self.folder.is_some() {
                    return Err(err("folder", "only with discovery: resource-directory"));
                }
                let list = ids(list, "ids")?;
                if list.is_empty() {
                    return Err(err("ids", "empty list: expected at least one account id"));
                }
                AccountSource::Explicit(list)
            }
            (Some(_), Some(_)) => return Err(err("ids", "either discovery or ids, not both")),
            (None, None) => {
                return Err(err("discovery", "missing: expected discovery: resource-directory or ids: [...]"))
            }
        };
        let exclude = ids(self.exclude.unwrap_or_default(), "exclude")?.into_iter().collect();
        let role = match (self.role_name, self.role_arn) {
            (Some(_), Some(_)) => return Err(err("role_arn", "either role_name or role_arn, not both")),
            (None, Some(Text(t))) => {
                let t = t.trim().to_string();
                if !t.contains(ACCOUNT_PLACEHOLDER) {
                    return Err(err("role_arn", format!("`{t}`: the template must hold {ACCOUNT_PLACEHOLDER}")));
                }
                crate::credentials::sts::check_role_arn(&t.replace(ACCOUNT_PLACEHOLDER, "1"))
                    .map_err(|m| err("role_arn", m))?;
                MemberRole::Template(t)
            }
            (Some(Text(n)), None) => {
                let n = n.trim().to_string();
                crate::credentials::sts::check_role_arn(&format!("acs:ram::1:role/{n}"))
                    .map_err(|m| err("role_name", m))?;
                if n.contains('/') || n.contains(':') || n.len() > 64 {
                    return Err(err("role_name", format!("`{n}`: expected a RAM role name")));
                }
                MemberRole::Name(n)
            }
            (None, None) => MemberRole::Name(DEFAULT_ROLE_NAME.into()),
        };
        let max_releases_total = match self.max_releases_total {
            None => None,
            Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Some(n) => return Err(err("max_releases_total", format!("{n}: expected 0 or more"))),
        };
        let concurrency = match self.concurrency {
            None => 8,
            Some(n @ 1..=64) => n as usize,
            Some(n) => return Err(err("concurrency", format!("{n}: expected 1 to 64"))),
        };
        Ok(Accounts { source, exclude, role, max_releases_total, concurrency })
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;

    fn policy(accounts: &str) -> Result<Policy, String> {
        let text =
            format!("regions: [cn-hangzhou]\n{accounts}\nrules:\n  - name: r\n    filters: {{ ttl_tag: ttl }}\n");
        Policy::from_yaml(&text, "org.yaml").map_err(|e| format!("{}: {}", e.path, e.message))
    }

    #[test]
    fn discovery_or_ids_with_a_role() {
        let p = policy("accounts: { discovery: resource-directory, exclude: [\"2\"] }").unwrap();
        let a = p.accounts.unwrap();
        assert_eq!(a.role.arn_for("42"), "acs:ram::42:role/ResourceDirectoryAccountAccessRole");
        assert!(a.exclude.contains("2"));
        let p =
            policy("accounts: { ids: [\"11\", \"12\"], role_arn: \"acs:ram::{account_id}:role/janitor\" }").unwrap();
        assert_eq!(p.accounts.unwrap().role.arn_for("11"), "acs:ram::11:role/janitor");
    }

    #[test]
    fn bad_accounts_name_the_field() {
        for (text, field) in [
            ("accounts: { ids: [\"x1\"] }", "accounts.ids[0]"),
            ("accounts: { ids: [\"1\", \"1\"] }", "accounts.ids[1]"),
            ("accounts: { discovery: ldap }", "accounts.discovery"),
            ("accounts: { discovery: resource-directory, ids: [\"1\"] }", "accounts.ids"),
            ("accounts: { role_arn: \"acs:ram::1:role/x\", ids: [\"1\"] }", "accounts.role_arn"),
            ("accounts: { ids: [\"1\"], concurrency: 0 }", "accounts.concurrency"),
            ("accounts: { discovery: resource-directory, folder: abc }", "accounts.folder"),
            ("accounts: { ids: [] }", "accounts.ids"),
            ("accounts: {}", "accounts.discovery"),
        ] {
            let e = policy(text).unwrap_err();
            assert!(e.starts_with(field), "{text}: {e}");
        }
    }
}

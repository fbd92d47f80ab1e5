//! Resource Manager, product code `resourcemanager`, version `2020-03-31`: the Resource Directory's `ListAccounts`,
//! `ListAccountsForParent` and `GetResourceDirectory`, signed like every call and served on the same `/` endpoint
//! (dispatched on `Version` + `Action`), from the inventory's `resource_directory` section (described in
//! `inventory.rs`). The directory is global: which account a request is signed for decides what it may see.
//!
//! Sources:
//! - The SDK (`alibabacloud_resourcemanager20200331` 2.6.2, `client.py` and `models/`): the actions, `auth_type`
//!   `AK`, every request parameter (`ListAccounts`: `PageNumber`, `PageSize`, `Tag.N.Key`/`Tag.N.Value`,
//!   `IncludeTags`; `ListAccountsForParent`: the same plus `ParentFolderId` and `QueryKeyword`) and answer field:
//!   `Accounts.Account[]` with `AccountId`, `DisplayName`, `FolderId`, `JoinMethod`, `JoinTime`, `ModifyTime`,
//!   `ResourceDirectoryId`, `ResourceDirectoryPath` (`ListAccounts` only), `Status`, `Tags.Tag[]` (`Key`, `Value`)
//!   and `Type`, then `PageNumber`, `PageSize`, `TotalCount`, `RequestId`; `GetResourceDirectory`'s
//!   `ResourceDirectory` (`ControlPolicyStatus`, `CreateTime`, `MasterAccountId`, `MasterAccountName`,
//!   `MemberDeletionStatus`, `ResourceDirectoryId`, `RootFolderId`). Its comments: `PageNumber` "Minimum value: 1.
//!   Default value: 1", `PageSize` "Valid values: 1 to 100. Default value: 10", `IncludeTags` default false,
//!   `QueryKeyword` "Fuzzy match is supported", `JoinMethod` `invited`/`created`, `Type`
//!   `CloudAccount`/`ResourceAccount`.
//! - The official API metadata (`dew-serverless/acs-sdk-php` `data/resourcemanager/2020-03-31/api-docs.json`, a
//!   mirror of Alibaba's): `ListAccounts` is for "the management account of the resource directory and the delegated
//!   administrator accounts of trusted services", and its only error is 404 `EntityNotExists.ResourceDirectory`,
//!   "The resource directory for the account is not enabled. We recommend that you first enable the resource
//!   directory for the account."; `ListAccountsForParent` adds 400 `InvalidParameter.ParentFolderId` ("The
//!   ParentFolderId is invalid.") and 404 `EntityNotExists.Folder` ("The resource directory folder does not
//!   exist."), and its `ParentFolderId` is not required; `GetResourceDirectory` answers the management account and
//!   the members, anyone else 404 `ResourceDirectoryNotInUse` ("The specified account is not an Alibaba Cloud
//!   account or a member account of the resource directory."). `ListFoldersForParent` there: an empty
//!   `ParentFolderId` means the Root folder, and only the folder's next level is listed. The member `Status` values
//!   it lists: `CreateSuccess`, `PromoteVerifying`, `PromoteFailed`, `PromoteExpired`, `PromoteCancelled`,
//!   `PromoteSuccess`, `InviteSuccess`.
//! - The Terraform provider (`aliyun/terraform-provider-alicloud`, `alicloud/data_source_alicloud_resource_manager_accounts.go`):
//!   the `Status` values it accepts add `CreateCancelled`, `CreateExpired`, `CreateFailed` and `CreateVerifying`;
//!   neither source has a suspended or removing state. It pages `ListAccounts` by `PageNumber` until a short page.
//! - The `InvalidParameter.ParentFolderId` description of the API reference ("must either be ... a string that starts
//!   with r- or ... that starts with fd-").
//!
//! Choices where the sources are silent (documented, so a test can rely on them):
//! - Any caller that is neither the management account nor a delegated administrator (`delegated_admins`) gets
//!   404 `EntityNotExists.ResourceDirectory` from both listings: the only refusal the metadata names, and for such
//!   an account no directory of its own is enabled. Without a `resource_directory` section everyone gets it.
//! - `ListAccountsForParent` lists the folder's direct members only (an account's `FolderId` is that folder), as
//!   `ListFoldersForParent` lists only the next level; no `ParentFolderId` means the Root folder. Folders are not
//!   nested: every folder is a child of the Root folder, so `ResourceDirectoryPath` is
//!   `<rd id>/<root folder id>/<account id>` or `<rd id>/<root folder id>/<folder id>/<account id>`.
//! - `QueryKeyword` matches a case-insensitive substring of `DisplayName` or `AccountId`. `Tag.N` (N 1 to 20)
//!   keeps the accounts carrying every given key (with that value when `Tag.N.Value` is given).
//! - Accounts are listed in inventory order (listed accounts, then generated ones). The management account is a
//!   member only when `accounts` lists it.
//! - A `PageNumber`/`PageSize` out of range or not an integer is 400 `InvalidParameter`, as elsewhere in the emulator.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::inventory::{is_account_id, typed, SimError};
use super::params::{boolean, number, optional, Params};
use super::reply::ApiFault;
use super::service::ActionKind;
use crate::time;

pub(crate) const VERSION: &str = "2020-03-31";
/// The endpoint product code (`resourcemanager.aliyuncs.com`, the SDK's `central` endpoint rule).
pub(crate) const PRODUCT: &str = "resourcemanager";
/// Member `Status` values: the SDK models and API metadata, plus the Terraform provider's `Create*` ones.
const STATUSES: &[&str] = &[
    "CreateSuccess",
    "CreateVerifying",
    "CreateFailed",
    "CreateExpired",
    "CreateCancelled",
    "PromoteVerifying",
    "PromoteFailed",
    "PromoteExpired",
    "PromoteCancelled",
    "PromoteSuccess",
    "InviteSuccess",
];
const TYPES: &[&str] = &["CloudAccount", "ResourceAccount"];
const JOIN_METHODS: &[&str] = &["created", "invited"];
const MAX_PAGE_SIZE: u64 = 100;
const MAX_TAG_FILTERS: u64 = 20;
/// The most accounts `generate` may add (an emulator limit, far above any real directory's quota).
const MAX_GENERATED: u64 = 100_000;
const DEFAULT_TIME: &str = "2024-01-01T00:00:00.000Z";
const DEFAULT_NAME_PREFIX: &str = "member-";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectorySpec {
    id: String,
    master_account_id: String,
    #[serde(default)]
    master_account_name: Option<String>,
    #[serde(default)]
    root_folder_id: Option<String>,
    #[serde(default)]
    create_time: Option<String>,
    #[serde(default)]
    folders: Vec<String>,
    #[serde(default)]
    delegated_admins: Vec<String>,
    #[serde(default)]
    accounts: Vec<AccountSpec>,
    #[serde(default)]
    generate: Option<GenerateSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountSpec {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    folder_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    join_method: Option<String>,
    #[serde(default)]
    join_time: Option<String>,
    #[serde(default)]
    modify_time: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateSpec {
    count: u64,
    first_id: u64,
    #[serde(default)]
    name_prefix: Option<String>,
    #[serde(default)]
    folder_id: Option<String>,
}

/// One member of the directory, as the listings answer it.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    name: String,
    folder: String,
    status: &'static str,
    kind: &'static str,
    join_method: &'static str,
    join_time: String,
    modify_time: String,
    tags: Vec<(String, String)>,
}

/// The Resource Directory of the inventory.
#[derive(Debug)]
pub(crate) struct Directory {
    id: String,
    master: String,
    master_name: String,
    root: String,
    create_time: String,
    /// Every folder but the root.
    folders: BTreeSet<String>,
    delegated: BTreeSet<String>,
    members: Vec<Member>,
    index: HashMap<String, usize>,
}

/// `rd-` / `r-` / `fd-` followed by letters and digits.
fn is_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn pick(
    at: String,
    value: Option<&str>,
    allowed: &[&'static str],
    default: &'static str,
) -> Result<&'static str, SimError> {
    match value {
        None => Ok(default),
        Some(v) => allowed
            .iter()
            .find(|a| **a == v)
            .copied()
            .ok_or_else(|| SimError::invalid(at, format!("`{v}` is not one of {}", allowed.join(", ")))),
    }
}

fn checked_time(at: String, value: Option<String>) -> Result<String, SimError> {
    match value {
        None => Ok(DEFAULT_TIME.to_string()),
        Some(t) => {
            time::parse(&t).map_err(|e| SimError::invalid(at, e.to_string()))?;
            Ok(t)
        }
    }
}

/// Reads the `resource_directory` section (`None`: the inventory has none).
pub(crate) fn load(section: Option<&Value>) -> Result<Option<Directory>, SimError> {
    let Some(value) = section.filter(|v| !v.is_null()) else { return Ok(None) };
    let spec: DirectorySpec = typed("resource_directory", value.clone())?;
    let at = |f: &str| format!("resource_directory.{f}");
    if !is_id(&spec.id, "rd-") {
        return Err(SimError::invalid(at("id"), "expected rd- followed by letters and digits, such as rd-k4abcd"));
    }
    if !is_account_id(&spec.master_account_id) {
        return Err(SimError::invalid(at("master_account_id"), "expected a string of digits"));
    }
    let root = match spec.root_folder_id {
        Some(r) if is_id(&r, "r-") => r,
        Some(_) => return Err(SimError::invalid(at("root_folder_id"), "expected r- followed by letters and digits")),
        None => format!("r-{}", &spec.id[3..]),
    };
    let create_time = checked_time(at("create_time"), spec.create_time)?;
    let mut folders = BTreeSet::new();
    for (i, f) in spec.folders.iter().enumerate() {
        if !is_id(f, "fd-") {
            return Err(SimError::invalid(
                format!("resource_directory.folders[{i}]"),
                "expected fd- followed by letters and digits",
            ));
        }
        folders.insert(f.clone());
    }
    let folder_of = |at: String, f: Option<String>, folders: &mut BTreeSet<String>| -> Result<String, SimError> {
        match f {
            None => Ok(root.clone()),
            Some(f) if f == root => Ok(f),
            Some(f) if is_id(&f, "fd-") => {
                folders.insert(f.clone());
                Ok(f)
            }
            Some(_) => Err(SimError::invalid(at, "expected the root folder id or fd- followed by letters and digits")),
        }
    };
    let mut members: Vec<Member> = Vec::with_capacity(spec.accounts.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, a) in spec.accounts.into_iter().enumerate() {
        let at = |f: &str| format!("resource_directory.accounts[{i}].{f}");
        if !is_account_id(&a.id) {
            return Err(SimError::invalid(at("id"), "expected a string of digits"));
        }
        if index.contains_key(&a.id) {
            return Err(SimError::invalid(at("id"), format!("duplicate account `{}`", a.id)));
        }
        let status = pick(at("status"), a.status.as_deref(), STATUSES, "CreateSuccess")?;
        let default_join = if status == "InviteSuccess" { "invited" } else { "created" };
        let join_method = pick(at("join_method"), a.join_method.as_deref(), JOIN_METHODS, default_join)?;
        let default_kind = if join_method == "invited" { "CloudAccount" } else { "ResourceAccount" };
        let kind = pick(at("type"), a.kind.as_deref(), TYPES, default_kind)?;
        let name = match a.name {
            Some(n) if n.trim().is_empty() => return Err(SimError::invalid(at("name"), "must not be empty")),
            Some(n) => n,
            None => a.id.clone(),
        };
        let folder = folder_of(at("folder_id"), a.folder_id, &mut folders)?;
        index.insert(a.id.clone(), members.len());
        members.push(Member {
            name,
            folder,
            status,
            kind,
            join_method,
            join_time: checked_time(at("join_time"), a.join_time)?,
            modify_time: checked_time(at("modify_time"), a.modify_time)?,
            tags: a.tags.into_iter().collect(),
            id: a.id,
        });
    }
    if let Some(g) = spec.generate {
        let at = |f: &str| format!("resource_directory.generate.{f}");
        if !(1..=MAX_GENERATED).contains(&g.count) {
            return Err(SimError::invalid(at("count"), format!("expected 1 to {MAX_GENERATED}")));
        }
        if g.first_id == 0 || g.first_id.checked_add(g.count - 1).is_none() {
            return Err(SimError::invalid(
                at("first_id"),
                "expected a positive account id that count ids after it fit in",
            ));
        }
        let prefix = g.name_prefix.unwrap_or_else(|| DEFAULT_NAME_PREFIX.to_string());
        let folder = folder_of(at("folder_id"), g.folder_id, &mut folders)?;
        members.reserve(g.count as usize);
        for n in 0..g.count {
            let id = (g.first_id + n).to_string();
            if index.contains_key(&id) {
                return Err(SimError::invalid(at("first_id"), format!("generated account `{id}` is already listed")));
            }
            index.insert(id.clone(), members.len());
            members.push(Member {
                name: format!("{prefix}{}", n + 1),
                folder: folder.clone(),
                status: "CreateSuccess",
                kind: "ResourceAccount",
                join_method: "created",
                join_time: DEFAULT_TIME.to_string(),
                modify_time: DEFAULT_TIME.to_string(),
                tags: Vec::new(),
                id,
            });
        }
    }
    let mut delegated = BTreeSet::new();
    for (i, d) in spec.delegated_admins.iter().enumerate() {
        if !index.contains_key(d) {
            return Err(SimError::invalid(
                format!("resource_directory.delegated_admins[{i}]"),
                format!("`{d}` is not an account of resource_directory.accounts"),
            ));
        }
        delegated.insert(d.clone());
    }
    let master_name = spec.master_account_name.unwrap_or_else(|| spec.master_account_id.clone());
    Ok(Some(Directory {
        id: spec.id,
        master: spec.master_account_id,
        master_name,
        root,
        create_time,
        folders,
        delegated,
        members,
        index,
    }))
}

impl Directory {
    /// The member account ids (the management account only when `accounts` lists it).
    pub fn member_ids(&self) -> BTreeSet<String> {
        self.members.iter().map(|m| m.id.clone()).collect()
    }

    pub fn master(&self) -> &str {
        &self.master
    }

    fn is_member(&self, account: &str) -> bool {
        self.index.contains_key(account)
    }

    fn path(&self, m: &Member) -> String {
        if m.folder == self.root {
            format!("{}/{}/{}", self.id, self.root, m.id)
        } else {
            format!("{}/{}/{}/{}", self.id, self.root, m.folder, m.id)
        }
    }
}

pub(crate) fn action_kind(action: &str) -> Option<ActionKind> {
    matches!(action, "ListAccounts" | "ListAccountsForParent" | "GetResourceDirectory").then_some(ActionKind::Read)
}

fn not_enabled() -> ApiFault {
    ApiFault::new(
        404,
        "EntityNotExists.ResourceDirectory",
        "The resource directory for the account is not enabled. We recommend that you first enable the resource directory for the account.",
    )
}

/// Runs an authenticated Resource Manager request signed for `account`.
pub(crate) fn handle(dir: Option<&Directory>, action: &str, p: &Params, account: &str) -> Result<Value, ApiFault> {
    match action {
        "GetResourceDirectory" => get_resource_directory(dir, account),
        "ListAccounts" | "ListAccountsForParent" => {
            let dir = dir.filter(|d| d.master == account || d.delegated.contains(account)).ok_or_else(not_enabled)?;
            list_accounts(dir, p, action == "ListAccountsForParent")
        }
        _ => Err(ApiFault::action_not_found()),
    }
}

fn get_resource_directory(dir: Option<&Directory>, account: &str) -> Result<Value, ApiFault> {
    let Some(d) = dir.filter(|d| d.master == account || d.is_member(account)) else {
        return Err(ApiFault::new(
            404,
            "ResourceDirectoryNotInUse",
            "The specified account is not an Alibaba Cloud account or a member account of the resource directory.",
        ));
    };
    Ok(json!({"ResourceDirectory": {
        "ResourceDirectoryId": d.id,
        "MasterAccountId": d.master,
        "MasterAccountName": d.master_name,
        "RootFolderId": d.root,
        "CreateTime": d.create_time,
        "ControlPolicyStatus": "Disabled",
        "MemberDeletionStatus": "Disabled",
    }}))
}

/// `Tag.N.Key` with an optional `Tag.N.Value`.
fn tag_filter(p: &Params) -> Result<Vec<(String, Option<String>)>, ApiFault> {
    let mut slots: BTreeMap<u64, (Option<String>, Option<String>)> = BTreeMap::new();
    for (k, v) in p {
        let Some((n, field)) = k.strip_prefix("Tag.").and_then(|rest| rest.split_once('.')) else { continue };
        let n = match n.parse::<u64>() {
            Ok(n) if (1..=MAX_TAG_FILTERS).contains(&n) => n,
            _ => return Err(ApiFault::invalid(k, "the tag index must be from 1 to 20")),
        };
        let slot = slots.entry(n).or_default();
        match field {
            "Key" => slot.0 = Some(v.clone()),
            "Value" => slot.1 = Some(v.clone()),
            _ => return Err(ApiFault::invalid(k, "expected Tag.N.Key or Tag.N.Value")),
        }
    }
    slots
        .into_iter()
        .map(|(n, (key, value))| match key {
            Some(k) if !k.is_empty() => Ok((k, value)),
            _ => Err(ApiFault::missing(&format!("Tag.{n}.Key"))),
        })
        .collect()
}

fn list_accounts(d: &Directory, p: &Params, for_parent: bool) -> Result<Value, ApiFault> {
    let page_number = number(p, "PageNumber", 1..=u64::from(u32::MAX), 1)?;
    let page_size = number(p, "PageSize", 1..=MAX_PAGE_SIZE, 10)?;
    let include_tags = boolean(p, "IncludeTags")?;
    let tags = tag_filter(p)?;
    let (folder, keyword) = if for_parent {
        let folder = match optional(p, "ParentFolderId") {
            None => d.root.as_str(),
            Some(f) if !is_id(f, "r-") && !is_id(f, "fd-") => {
                return Err(ApiFault::new(400, "InvalidParameter.ParentFolderId", "The ParentFolderId is invalid."))
            }
            Some(f) if f == d.root || d.folders.contains(f) => f,
            Some(_) => {
                return Err(ApiFault::new(
                    404,
                    "EntityNotExists.Folder",
                    "The resource directory folder does not exist.",
                ))
            }
        };
        (Some(folder), optional(p, "QueryKeyword").map(str::to_lowercase))
    } else {
        (None, None)
    };
    let matching: Vec<&Member> = d
        .members
        .iter()
        .filter(|m| folder.is_none_or(|f| m.folder == f))
        .filter(|m| {
            keyword.as_ref().is_none_or(|k| m.name.to_lowercase().contains(k.as_str()) || m.id.contains(k.as_str()))
        })
        .filter(|m| {
            tags.iter().all(|(k, v)| m.tags.iter().any(|(mk, mv)| mk == k && v.as_ref().is_none_or(|v| v == mv)))
        })
        .collect();
    let skip = usize::try_from((page_number - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(page_size as usize)
        .map(|m| {
            let mut a = Map::new();
            a.insert("AccountId".into(), m.id.clone().into());
            a.insert("DisplayName".into(), m.name.clone().into());
            a.insert("FolderId".into(), m.folder.clone().into());
            a.insert("JoinMethod".into(), m.join_method.into());
            a.insert("JoinTime".into(), m.join_time.clone().into());
            a.insert("ModifyTime".into(), m.modify_time.clone().into());
            a.insert("ResourceDirectoryId".into(), d.id.clone().into());
            if !for_parent {
                a.insert("ResourceDirectoryPath".into(), d.path(m).into());
            }
            a.insert("Status".into(), m.status.into());
            a.insert("Type".into(), m.kind.into());
            if include_tags {
                let tags: Vec<Value> = m.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
                a.insert("Tags".into(), json!({ "Tag": tags }));
            }
            Value::Object(a)
        })
        .collect();
    Ok(json!({
        "Accounts": {"Account": page},
        "PageNumber": page_number,
        "PageSize": page_size,
        "TotalCount": matching.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "1000000000000001";

    fn dir(extra: Value) -> Directory {
        let mut v = json!({"id": "rd-k4abcd", "master_account_id": MASTER, "accounts": [
            {"id": "2000000000000001", "name": "prod", "folder_id": "fd-prod01", "tags": {"env": "prod"}},
            {"id": "2000000000000002", "name": "Staging", "folder_id": "fd-prod01", "status": "InviteSuccess"},
            {"id": "2000000000000003", "name": "sandbox", "tags": {"env": "dev"}},
        ]});
        if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
            base.extend(more);
        }
        load(Some(&v)).unwrap().unwrap()
    }

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ids(v: &Value) -> Vec<String> {
        v["Accounts"]["Account"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["AccountId"].as_str().unwrap().to_string())
            .collect()
    }

    fn code(r: Result<Value, ApiFault>) -> String {
        r.map(|_| "ok".to_string()).unwrap_or_else(|f| format!("{} {}", f.status, f.code))
    }

    fn field_of(v: Value) -> String {
        match load(Some(&v)) {
            Err(SimError::Invalid { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn list_accounts_answers_the_sdk_shape_and_defaults() {
        let d = dir(json!({}));
        let v = handle(Some(&d), "ListAccounts", &p(&[]), MASTER).unwrap();
        assert_eq!(
            (v["PageNumber"].as_u64(), v["PageSize"].as_u64(), v["TotalCount"].as_u64()),
            (Some(1), Some(10), Some(3))
        );
        let first = &v["Accounts"]["Account"][0];
        assert_eq!(
            first,
            &json!({"AccountId": "2000000000000001", "DisplayName": "prod", "FolderId": "fd-prod01", "JoinMethod": "created",
                    "JoinTime": DEFAULT_TIME, "ModifyTime": DEFAULT_TIME, "ResourceDirectoryId": "rd-k4abcd",
                    "ResourceDirectoryPath": "rd-k4abcd/r-k4abcd/fd-prod01/2000000000000001", "Status": "CreateSuccess",
                    "Type": "ResourceAccount"})
        );
        let invited = &v["Accounts"]["Account"][1];
        assert_eq!((invited["JoinMethod"].as_str(), invited["Type"].as_str()), (Some("invited"), Some("CloudAccount")));
        assert_eq!(v["Accounts"]["Account"][2]["ResourceDirectoryPath"], "rd-k4abcd/r-k4abcd/2000000000000003");
        let tagged = handle(Some(&d), "ListAccounts", &p(&[("IncludeTags", "true")]), MASTER).unwrap();
        assert_eq!(tagged["Accounts"]["Account"][0]["Tags"], json!({"Tag": [{"Key": "env", "Value": "prod"}]}));
        assert_eq!(tagged["Accounts"]["Account"][1]["Tags"], json!({"Tag": []}));
    }

    #[test]
    fn paging_and_tag_filters() {
        let d = dir(json!({"generate": {"count": 25, "first_id": 3000000000000001_u64}}));
        let page = |n: &str, size: &str| {
            handle(Some(&d), "ListAccounts", &p(&[("PageNumber", n), ("PageSize", size)]), MASTER)
        };
        let mut all = Vec::new();
        for n in 1..=3 {
            let v = page(&n.to_string(), "10").unwrap();
            assert_eq!(v["TotalCount"], 28);
            all.extend(ids(&v));
        }
        assert_eq!(all.len(), 28);
        assert_eq!(all[3], "3000000000000001");
        assert_eq!(all[27], "3000000000000025");
        assert!(ids(&page("4", "10").unwrap()).is_empty());
        assert_eq!(ids(&page("1", "100").unwrap()).len(), 28);
        assert_eq!(code(page("1", "101")), "400 InvalidParameter");
        assert_eq!(code(page("0", "10")), "400 InvalidParameter");
        assert_eq!(code(page("x", "10")), "400 InvalidParameter");
        let by_tag = |q: &[(&str, &str)]| ids(&handle(Some(&d), "ListAccounts", &p(q), MASTER).unwrap());
        assert_eq!(by_tag(&[("Tag.1.Key", "env")]), ["2000000000000001", "2000000000000003"]);
        assert_eq!(by_tag(&[("Tag.1.Key", "env"), ("Tag.1.Value", "dev")]), ["2000000000000003"]);
        assert_eq!(
            code(handle(Some(&d), "ListAccounts", &p(&[("Tag.1.Value", "dev")]), MASTER)),
            "400 MissingParameter"
        );
        let named = handle(Some(&d), "ListAccounts", &p(&[("PageSize", "100")]), MASTER).unwrap();
        assert_eq!(named["Accounts"]["Account"][3]["DisplayName"], "member-1");
    }

    #[test]
    fn for_parent_lists_the_direct_members_of_a_folder() {
        let d = dir(json!({"folders": ["fd-empty1"]}));
        let list = |q: &[(&str, &str)]| handle(Some(&d), "ListAccountsForParent", &p(q), MASTER);
        let v = list(&[("ParentFolderId", "fd-prod01")]).unwrap();
        assert_eq!(ids(&v), ["2000000000000001", "2000000000000002"]);
        assert!(v["Accounts"]["Account"][0].get("ResourceDirectoryPath").is_none());
        assert_eq!(ids(&list(&[]).unwrap()), ["2000000000000003"], "no ParentFolderId: the Root folder");
        assert_eq!(ids(&list(&[("ParentFolderId", "r-k4abcd")]).unwrap()), ["2000000000000003"]);
        assert!(ids(&list(&[("ParentFolderId", "fd-empty1")]).unwrap()).is_empty());
        assert_eq!(
            ids(&list(&[("ParentFolderId", "fd-prod01"), ("QueryKeyword", "STAG")]).unwrap()),
            ["2000000000000002"]
        );
        assert_eq!(code(list(&[("ParentFolderId", "fd-nope99")])), "404 EntityNotExists.Folder");
        assert_eq!(code(list(&[("ParentFolderId", "folder")])), "400 InvalidParameter.ParentFolderId");
    }

    #[test]
    fn only_the_management_account_or_a_delegated_admin_may_list() {
        let d = dir(json!({"delegated_admins": ["2000000000000003"]}));
        for action in ["ListAccounts", "ListAccountsForParent"] {
            assert_eq!(code(handle(Some(&d), action, &p(&[]), MASTER)), "ok");
            assert_eq!(code(handle(Some(&d), action, &p(&[]), "2000000000000003")), "ok");
            assert_eq!(
                code(handle(Some(&d), action, &p(&[]), "2000000000000001")),
                "404 EntityNotExists.ResourceDirectory"
            );
            assert_eq!(code(handle(Some(&d), action, &p(&[]), "42")), "404 EntityNotExists.ResourceDirectory");
            assert_eq!(code(handle(None, action, &p(&[]), MASTER)), "404 EntityNotExists.ResourceDirectory");
        }
        // The refusal comes before any parameter check.
        assert_eq!(
            code(handle(Some(&d), "ListAccounts", &p(&[("PageSize", "0")]), "42")),
            "404 EntityNotExists.ResourceDirectory"
        );
        let rd = handle(Some(&d), "GetResourceDirectory", &p(&[]), "2000000000000001").unwrap();
        assert_eq!(rd["ResourceDirectory"]["RootFolderId"], "r-k4abcd");
        assert_eq!(rd["ResourceDirectory"]["MasterAccountId"], MASTER);
        assert_eq!(code(handle(Some(&d), "GetResourceDirectory", &p(&[]), MASTER)), "ok");
        assert_eq!(code(handle(Some(&d), "GetResourceDirectory", &p(&[]), "42")), "404 ResourceDirectoryNotInUse");
        assert_eq!(code(handle(Some(&d), "CreateFolder", &p(&[]), MASTER)), "404 InvalidAction.NotFound");
        assert_eq!(action_kind("ListAccounts"), Some(ActionKind::Read));
        assert_eq!(action_kind("DeleteAccount"), None);
    }

    #[test]
    fn load_errors_name_the_field() {
        let base = |extra: Value| {
            let mut v = json!({"id": "rd-k4abcd", "master_account_id": MASTER});
            if let (Value::Object(b), Value::Object(m)) = (&mut v, extra) {
                b.extend(m);
            }
            v
        };
        assert_eq!(field_of(json!({"master_account_id": MASTER})), "resource_directory");
        assert_eq!(field_of(base(json!({"id": "k4abcd"}))), "resource_directory.id");
        assert_eq!(field_of(base(json!({"master_account_id": "x"}))), "resource_directory.master_account_id");
        assert_eq!(field_of(base(json!({"colour": 1}))), "resource_directory.colour");
        assert_eq!(field_of(base(json!({"root_folder_id": "fd-x"}))), "resource_directory.root_folder_id");
        assert_eq!(field_of(base(json!({"folders": ["r-x"]}))), "resource_directory.folders[0]");
        assert_eq!(field_of(base(json!({"accounts": [{"id": "1a"}]}))), "resource_directory.accounts[0].id");
        assert_eq!(
            field_of(base(json!({"accounts": [{"id": "1"}, {"id": "1"}]}))),
            "resource_directory.accounts[1].id"
        );
        assert_eq!(
            field_of(base(json!({"accounts": [{"id": "1", "status": "Suspended"}]}))),
            "resource_directory.accounts[0].status"
        );
        assert_eq!(
            field_of(base(json!({"accounts": [{"id": "1", "type": "Other"}]}))),
            "resource_directory.accounts[0].type"
        );
        assert_eq!(
            field_of(base(json!({"accounts": [{"id": "1", "join_method": "x"}]}))),
            "resource_directory.accounts[0].join_method"
        );
        assert_eq!(
            field_of(base(json!({"accounts": [{"id": "1", "folder_id": "x"}]}))),
            "resource_directory.accounts[0].folder_id"
        );
        assert_eq!(
            field_of(base(json!({"accounts": [{"id": "1", "join_time": "soon"}]}))),
            "resource_directory.accounts[0].join_time"
        );
        assert_eq!(
            field_of(base(json!({"accounts": [{"id": "1", "colour": 1}]}))),
            "resource_directory.accounts[0].colour"
        );
        assert_eq!(field_of(base(json!({"delegated_admins": ["9"]}))), "resource_directory.delegated_admins[0]");
        assert_eq!(
            field_of(base(json!({"generate": {"count": 0, "first_id": 1}}))),
            "resource_directory.generate.count"
        );
        assert_eq!(
            field_of(base(json!({"generate": {"count": 2, "first_id": u64::MAX}}))),
            "resource_directory.generate.first_id"
        );
        assert_eq!(
            field_of(base(json!({"accounts": [{"id": "5"}], "generate": {"count": 2, "first_id": 4}}))),
            "resource_directory.generate.first_id"
        );
        assert_eq!(field_of(base(json!({"generate": {"count": 1}}))), "resource_directory.generate");
        assert!(load(None).unwrap().is_none());
        assert!(load(Some(&Value::Null)).unwrap().is_none());
        for status in STATUSES {
            assert!(load(Some(&base(json!({"accounts": [{"id": "1", "status": status}]})))).is_ok(), "{status}");
        }
    }

    #[test]
    fn generated_accounts_are_consecutive() {
        let d = dir(
            json!({"generate": {"count": 3, "first_id": 3000000000000001_u64, "name_prefix": "m-", "folder_id": "fd-gen001"}}),
        );
        let ids = d.member_ids();
        assert_eq!(ids.len(), 6);
        assert!(
            ids.contains("3000000000000001") && ids.contains("3000000000000003") && !ids.contains("3000000000000004")
        );
        let v = handle(Some(&d), "ListAccountsForParent", &p(&[("ParentFolderId", "fd-gen001")]), MASTER).unwrap();
        let names: Vec<&str> =
            v["Accounts"]["Account"].as_array().unwrap().iter().map(|a| a["DisplayName"].as_str().unwrap()).collect();
        assert_eq!(names, ["m-1", "m-2", "m-3"]);
        assert_eq!(d.master(), MASTER);
    }
}

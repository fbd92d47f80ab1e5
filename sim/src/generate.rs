//! Emulator-only: the inventory's top-level `generate` section, which writes ECS instances into accounts' `ecs`
//! sections so a test or benchmark with thousands of instances need not list them. One object, or an array of them:
//!
//! ```json
//! "generate": {"accounts": "all-members", "regions": ["cn-hangzhou", "cn-shanghai"], "ecs_per_region": 100,
//!              "expired_every": 5, "expired_tag": {"key": "expire-at", "value": "2026-01-01"}}
//! ```
//!
//! - `accounts` (required): `"all-members"` (every account of `resource_directory`, listed and generated; the
//!   management account only when listed there) or an array of account ids (any account, the default one included).
//! - `regions` (required, 1 to 100 distinct non-empty names): region `r` of this list has index `r` (from 0).
//! - `ecs_per_region` (required, 1 to 10000): instances per account and region, numbered `n` = 1 to `ecs_per_region`.
//! - `expired_every` (optional, default 0 = none): instance `n` is *expired* when `n` is a multiple of it.
//! - `expired_tag` (optional): the tag an expired instance carries; default `expire-at` = `2026-01-01`.
//!
//! Each generated instance is appended to the account's `ecs` section (after any it lists) and is checked like a
//! listed one:
//!
//! ```json
//! {"InstanceId": "i-<account id>-<r>-<n>", "InstanceName": "gen-<r>-<n>", "RegionId": "<regions[r]>",
//!  "Status": "Stopped" | "Running", "InstanceChargeType": "PostPaid", "CreationTime": "2025-01-01T00:00Z",
//!  "ExpiredTime": "2099-12-31T15:59Z", "Tags": {"Tag": [{"TagKey": "expire-at", "TagValue": "2026-01-01"}]}}
//! ```
//!
//! An expired instance is `Stopped` and carries the tag; every other is `Running` and has no `Tags` field. No
//! padding anywhere: account `3000000000000001`, region index 0, `n` 5 is `i-3000000000000001-0-5`. So with
//! `ecs_per_region: 100, expired_every: 5`, each account and region holds 20 expired instances (`n` = 5, 10, ...,
//! 100). Two rules generating the same id in one account fail the load, as a duplicate listed id does.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::inventory::{is_account_id, typed, SimError};

const MAX_REGIONS: usize = 100;
const MAX_PER_REGION: u32 = 10_000;
const DEFAULT_TAG: (&str, &str) = ("expire-at", "2026-01-01");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    accounts: Value,
    regions: Vec<String>,
    ecs_per_region: u32,
    #[serde(default)]
    expired_every: u32,
    #[serde(default)]
    expired_tag: Option<TagSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagSpec {
    key: String,
    #[serde(default)]
    value: String,
}

/// The generated ECS instance objects, per account. `members` are the Resource Directory's accounts (`None`: the
/// inventory has no directory, so `"all-members"` is an error).
pub(crate) fn ecs(
    section: Option<&Value>,
    members: Option<&[String]>,
) -> Result<BTreeMap<String, Vec<Value>>, SimError> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let specs: Vec<(String, &Value)> = match section {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(items)) => items.iter().enumerate().map(|(i, v)| (format!("generate[{i}]"), v)).collect(),
        Some(v) => vec![("generate".to_string(), v)],
    };
    for (at, value) in specs {
        let spec: Spec = typed(&at, value.clone())?;
        let accounts: Vec<String> = match &spec.accounts {
            Value::String(s) if s == "all-members" => match members {
                Some(m) => m.to_vec(),
                None => {
                    return Err(SimError::invalid(
                        format!("{at}.accounts"),
                        "\"all-members\" needs a resource_directory section",
                    ))
                }
            },
            Value::Array(ids) => ids
                .iter()
                .enumerate()
                .map(|(i, id)| match id.as_str() {
                    Some(id) if is_account_id(id) => Ok(id.to_string()),
                    _ => Err(SimError::invalid(format!("{at}.accounts[{i}]"), "expected an account id (digits)")),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(SimError::invalid(
                    format!("{at}.accounts"),
                    "expected \"all-members\" or an array of account ids",
                ))
            }
        };
        if spec.regions.is_empty() || spec.regions.len() > MAX_REGIONS {
            return Err(SimError::invalid(format!("{at}.regions"), format!("list 1 to {MAX_REGIONS} regions")));
        }
        for (i, r) in spec.regions.iter().enumerate() {
            if r.trim().is_empty() || spec.regions[..i].contains(r) {
                return Err(SimError::invalid(
                    format!("{at}.regions[{i}]"),
                    "expected a distinct, non-empty region id",
                ));
            }
        }
        if !(1..=MAX_PER_REGION).contains(&spec.ecs_per_region) {
            return Err(SimError::invalid(format!("{at}.ecs_per_region"), format!("expected 1 to {MAX_PER_REGION}")));
        }
        let (key, value) = match &spec.expired_tag {
            Some(t) if t.key.trim().is_empty() => {
                return Err(SimError::invalid(format!("{at}.expired_tag.key"), "must not be empty"))
            }
            Some(t) => (t.key.as_str(), t.value.as_str()),
            None => DEFAULT_TAG,
        };
        for account in accounts {
            let list = out.entry(account.clone()).or_default();
            list.reserve(spec.regions.len() * spec.ecs_per_region as usize);
            for (r, region) in spec.regions.iter().enumerate() {
                for n in 1..=spec.ecs_per_region {
                    let expired = spec.expired_every > 0 && n % spec.expired_every == 0;
                    let mut inst = json!({
                        "InstanceId": format!("i-{account}-{r}-{n}"),
                        "InstanceName": format!("gen-{r}-{n}"),
                        "RegionId": region,
                        "Status": if expired { "Stopped" } else { "Running" },
                        "InstanceChargeType": "PostPaid",
                        "CreationTime": "2025-01-01T00:00Z",
                        "ExpiredTime": "2099-12-31T15:59Z",
                    });
                    if expired {
                        inst["Tags"] = json!({"Tag": [{"TagKey": key, "TagValue": value}]});
                    }
                    list.push(inst);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(v: Value, members: Option<&[String]>) -> String {
        match ecs(Some(&v), members) {
            Err(SimError::Invalid { field, .. }) => field,
            other => panic!("expected an error, got {:?}", other.map(|m| m.len())),
        }
    }

    #[test]
    fn generates_exactly_what_it_says() {
        let members = vec!["3000000000000001".to_string(), "3000000000000002".to_string()];
        let v = json!({"accounts": "all-members", "regions": ["cn-hangzhou", "cn-beijing"], "ecs_per_region": 10, "expired_every": 5});
        let out = ecs(Some(&v), Some(&members)).unwrap();
        assert_eq!(out.keys().cloned().collect::<Vec<_>>(), members);
        let list = &out["3000000000000002"];
        assert_eq!(list.len(), 20);
        assert_eq!(
            list[4],
            json!({"InstanceId": "i-3000000000000002-0-5", "InstanceName": "gen-0-5", "RegionId": "cn-hangzhou",
                   "Status": "Stopped", "InstanceChargeType": "PostPaid", "CreationTime": "2025-01-01T00:00Z",
                   "ExpiredTime": "2099-12-31T15:59Z", "Tags": {"Tag": [{"TagKey": "expire-at", "TagValue": "2026-01-01"}]}})
        );
        assert_eq!(list[10]["InstanceId"], "i-3000000000000002-1-1");
        assert_eq!((list[10]["Status"].as_str(), list[10].get("Tags")), (Some("Running"), None));
        let expired: Vec<&str> =
            list.iter().filter(|i| i["Status"] == "Stopped").map(|i| i["InstanceId"].as_str().unwrap()).collect();
        assert_eq!(
            expired,
            ["i-3000000000000002-0-5", "i-3000000000000002-0-10", "i-3000000000000002-1-5", "i-3000000000000002-1-10"]
        );
        // Several rules add up; a custom tag; no expired_every: nothing expires.
        let v = json!([{"accounts": ["1"], "regions": ["r"], "ecs_per_region": 2},
                       {"accounts": ["1"], "regions": ["s"], "ecs_per_region": 1, "expired_every": 1,
                        "expired_tag": {"key": "ttl", "value": "0"}}]);
        let out = ecs(Some(&v), None).unwrap();
        let statuses: Vec<&str> = out["1"].iter().map(|i| i["Status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["Running", "Running", "Stopped"]);
        assert_eq!(out["1"][2]["Tags"]["Tag"][0], json!({"TagKey": "ttl", "TagValue": "0"}));
        assert!(ecs(None, None).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let ok = |extra: Value| {
            let mut v = json!({"accounts": ["1"], "regions": ["r"], "ecs_per_region": 1});
            if let (Value::Object(b), Value::Object(m)) = (&mut v, extra) {
                b.extend(m);
            }
            v
        };
        assert_eq!(field_of(ok(json!({"accounts": "all-members"})), None), "generate.accounts");
        assert_eq!(field_of(ok(json!({"accounts": "everyone"})), None), "generate.accounts");
        assert_eq!(field_of(ok(json!({"accounts": ["1", "x"]})), None), "generate.accounts[1]");
        assert_eq!(field_of(ok(json!({"regions": []})), None), "generate.regions");
        assert_eq!(field_of(ok(json!({"regions": ["r", "r"]})), None), "generate.regions[1]");
        assert_eq!(field_of(ok(json!({"ecs_per_region": 0})), None), "generate.ecs_per_region");
        assert_eq!(field_of(ok(json!({"ecs_per_region": 10001})), None), "generate.ecs_per_region");
        assert_eq!(field_of(ok(json!({"expired_tag": {"key": " "}})), None), "generate.expired_tag.key");
        assert_eq!(field_of(ok(json!({"colour": 1})), None), "generate.colour");
        assert_eq!(field_of(json!([ok(json!({})), ok(json!({"regions": 1}))]), None), "generate[1].regions");
        assert_eq!(field_of(json!({"regions": ["r"], "ecs_per_region": 1}), None), "generate");
    }
}

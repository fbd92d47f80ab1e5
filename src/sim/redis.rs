//! Redis / Tair (`r-kvstore`), version `2015-01-01` (reference sections 3.2 and 7): `DescribeInstances`,
//! `DescribeInstanceAttribute` and `DeleteInstance`, served from the inventory's `r-kvstore` section.
//!
//! The section is an array of instance objects as `DescribeInstanceAttribute` returns them (real field names:
//! `InstanceId`, `RegionId`, `InstanceStatus`, `ChargeType` `PrePaid|PostPaid`, `EndTime` (required for
//! `PrePaid`), `CreateTime`, `GlobalInstanceId`, `InstanceReleaseProtection` (bool), `Tags: {"Tag": [{"Key",
//! "Value"}]}`, …). `InstanceReleaseProtection` is only served by `DescribeInstanceAttribute`, as in the real
//! API. Optional `_sim` controls: `mutate_after_reads` (see `controls.rs`).
//!
//! Error codes: 403 `InstanceReleaseProtection` is the documented one. No fuller table exists, so the others
//! are this emulator's choices (UNVERIFIED): 404 `InvalidInstanceId.NotFound`, 403 `IncorrectInstanceStatus`
//! (not `Normal`), 403 `ChargeTypeViolation` (a subscription), 400 `InvalidParameter`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::controls::{self, Mutable, Mutation};
use super::inventory::{Fields, SimError};
use super::params::{number, optional, required, Params};
use super::reply::ApiFault;
use super::service::{ActionKind, Env, Service};
use crate::inventory::{parse_api_time, parse_expiry};

const SECTION: &str = "r-kvstore";
pub(crate) const VERSION: &str = "2015-01-01";
const STATUSES: &[&str] = &[
    "Normal", "Creating", "Changing", "Inactive", "Flushing", "Released", "Transforming", "Unavailable", "Error", "Migrating", "BackupRecovering",
    "MinorVersionUpgrading", "NetworkModifying", "SSLModifying", "MajorVersionUpgrading",
];
const PROTECTION: &str = "InstanceReleaseProtection";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Controls {
    #[serde(default)]
    mutate_after_reads: Option<Mutation>,
}

/// The fields the emulator acts on, read from the (possibly mutated) object.
struct View {
    region: String,
    status: String,
    prepaid: bool,
    protected: bool,
    global_id: Option<String>,
}

fn view(path: &str, obj: &Map<String, Value>) -> Result<View, SimError> {
    let f = Fields { path: path.to_string(), obj };
    f.req_str("InstanceId")?;
    let prepaid = f.one_of("ChargeType", &["PrePaid", "PostPaid"])? == "PrePaid";
    if let Some(t) = f.opt_str("CreateTime")? {
        parse_api_time(t).map_err(|e| f.err("CreateTime", e.to_string()))?;
    }
    match f.opt_str("EndTime")? {
        Some(t) => {
            parse_expiry(t).map_err(|e| f.err("EndTime", e.to_string()))?;
        }
        None if prepaid => return Err(f.err("EndTime", "required for a PrePaid instance")),
        None => {}
    }
    f.wrapped_list("Tags", "Tag")?.iter().enumerate().try_for_each(|(j, t)| match t.get("Key") {
        Some(Value::String(_)) => Ok(()),
        _ => Err(f.err(&format!("Tags.Tag[{j}].Key"), "expected a string")),
    })?;
    Ok(View {
        region: f.req_str("RegionId")?.to_string(),
        status: f.one_of("InstanceStatus", STATUSES)?.to_string(),
        prepaid,
        protected: f.opt_bool(PROTECTION)?.unwrap_or(false),
        global_id: f.opt_str("GlobalInstanceId")?.filter(|g| !g.is_empty()).map(str::to_string),
    })
}

pub(crate) struct Redis {
    instances: BTreeMap<String, Mutable>,
}

pub(crate) fn load(section: Option<&Value>) -> Result<Box<dyn Service>, SimError> {
    let mut instances = BTreeMap::new();
    for (i, v) in controls::section_items(SECTION, section, "DescribeInstanceAttribute instance objects")?.iter().enumerate() {
        let path = format!("{SECTION}[{i}]");
        let Value::Object(obj) = v else { return Err(SimError::invalid(path, "expected an instance object")) };
        let mut obj = obj.clone();
        let c: Controls = controls::take(&path, &mut obj)?;
        view(&path, &obj)?;
        let id = obj.get("InstanceId").and_then(Value::as_str).unwrap_or_default().to_string();
        if instances.contains_key(&id) {
            return Err(SimError::invalid(format!("{path}.InstanceId"), format!("duplicate instance id `{id}`")));
        }
        let m = Mutable::new(&path, obj, c.mutate_after_reads, |o| view(&path, o).map(|_| ()))?;
        instances.insert(id, m);
    }
    Ok(Box::new(Redis { instances }))
}

/// The object as `DescribeInstances` shows it: without the protection flag.
fn listed(obj: &Map<String, Value>) -> Value {
    let mut o = obj.clone();
    o.remove(PROTECTION);
    Value::Object(o)
}

fn current(obj: &Map<String, Value>) -> Option<View> {
    view("", obj).ok()
}

fn not_found(id: &str) -> ApiFault {
    ApiFault::new(404, "InvalidInstanceId.NotFound", format!("The specified instance does not exist. ({id})"))
}

impl Service for Redis {
    fn product(&self) -> &'static str {
        SECTION
    }

    fn version(&self) -> &'static str {
        VERSION
    }

    fn action_kind(&self, action: &str) -> Option<ActionKind> {
        match action {
            "DescribeInstances" | "DescribeInstanceAttribute" => Some(ActionKind::Read),
            "DeleteInstance" => Some(ActionKind::Release),
            _ => None,
        }
    }

    fn handle(&mut self, action: &str, p: &Params, _env: &Env<'_>) -> Result<Value, ApiFault> {
        match action {
            "DescribeInstances" => self.describe_instances(p),
            "DescribeInstanceAttribute" => self.describe_attribute(p),
            "DeleteInstance" => self.delete_instance(p),
            _ => Err(ApiFault::action_not_found()),
        }
    }

    fn instance_ids(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }

    fn snapshot(&self) -> Value {
        Value::Array(self.instances.values().map(|m| Value::Object(m.peek().clone())).collect())
    }
}

impl Redis {
    /// An instance in the request's region (`RegionId` is optional: the central host serves several regions).
    fn find(&self, id: &str, region: Option<&str>) -> Option<&Mutable> {
        self.instances.get(id).filter(|m| region.is_none_or(|r| current(m.peek()).is_some_and(|v| v.region == r)))
    }

    fn describe_instances(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let region = optional(p, "RegionId");
        let page_number = number(p, "PageNumber", 1..=u32::MAX as u64, 1)?;
        // PageSize stops at 50 (reference 3.2).
        let page_size = number(p, "PageSize", 1..=50, 30)?;
        let ids: Option<Vec<&str>> = optional(p, "InstanceIds").map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect());
        if ids.as_ref().is_some_and(|ids| ids.len() > 30) {
            return Err(ApiFault::invalid("InstanceIds", "at most 30 ids"));
        }
        let charge = optional(p, "ChargeType");
        let status = optional(p, "InstanceStatus");
        self.instances.values_mut().for_each(Mutable::settle);
        let matching: Vec<String> = self
            .instances
            .iter()
            .filter(|(id, m)| {
                let Some(v) = current(m.peek()) else { return false };
                region.is_none_or(|r| v.region == r)
                    && ids.as_ref().is_none_or(|ids| ids.contains(&id.as_str()))
                    && charge.is_none_or(|c| c == if v.prepaid { "PrePaid" } else { "PostPaid" })
                    && status.is_none_or(|s| s == v.status)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let total = matching.len();
        let skip = usize::try_from((page_number - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
        let mut page = Vec::new();
        for id in matching.iter().skip(skip).take(page_size as usize) {
            if let Some(m) = self.instances.get_mut(id) {
                page.push(listed(m.read()));
            }
        }
        Ok(json!({"PageNumber": page_number, "PageSize": page_size, "TotalCount": total, "Instances": {"KVStoreInstance": page}}))
    }

    fn describe_attribute(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let id = required(p, "InstanceId")?;
        if self.find(id, optional(p, "RegionId")).is_none() {
            return Err(not_found(id));
        }
        let Some(m) = self.instances.get_mut(id) else { return Err(not_found(id)) };
        let mut obj = m.read().clone();
        obj.entry(PROTECTION).or_insert(Value::Bool(false));
        Ok(json!({"Instances": {"DBInstanceAttribute": [obj]}}))
    }

    /// Preconditions from reference 3.2: `Normal`, pay-as-you-go, no release protection; a child of a
    /// distributed instance only through its `GlobalInstanceId`.
    fn delete_instance(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let id = required(p, "InstanceId")?;
        let Some(v) = self.find(id, optional(p, "RegionId")).and_then(|m| current(m.peek())) else {
            return Err(not_found(id));
        };
        if v.protected {
            return Err(ApiFault::new(403, "InstanceReleaseProtection", format!("The operation is not permitted due to instance release protection. ({id})")));
        }
        if v.global_id.as_deref() != optional(p, "GlobalInstanceId") {
            return Err(ApiFault::invalid("GlobalInstanceId", "must name the distributed instance this instance belongs to"));
        }
        if v.prepaid {
            return Err(ApiFault::new(403, "ChargeTypeViolation", format!("Subscription instances cannot be released through the API. ({id})")));
        }
        if v.status != "Normal" {
            return Err(ApiFault::new(403, "IncorrectInstanceStatus", format!("The instance status does not support this operation. ({id} is {})", v.status)));
        }
        self.instances.remove(id);
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn inst(id: &str, extra: Value) -> Value {
        let mut v = json!({"InstanceId": id, "RegionId": "cn-hangzhou", "InstanceStatus": "Normal", "ChargeType": "PostPaid", "InstanceReleaseProtection": false});
        if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
            base.extend(more);
        }
        v
    }

    fn call(s: &mut Box<dyn Service>, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiFault> {
        let p: Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.handle(action, &p, &Env { now: Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(), request_id: "REQ" })
    }

    fn code(r: Result<Value, ApiFault>) -> String {
        r.map(|_| "ok".to_string()).unwrap_or_else(|f| f.code)
    }

    #[test]
    fn load_errors_name_the_field() {
        let err = |v: Value| match load(Some(&v)) {
            Err(SimError::Invalid { field, .. }) => field,
            _ => "no error".into(),
        };
        assert_eq!(err(json!({})), "r-kvstore");
        assert_eq!(err(json!([inst("r-1", json!({"ChargeType": "Monthly"}))])), "r-kvstore[0].ChargeType");
        assert_eq!(err(json!([inst("r-1", json!({"ChargeType": "PrePaid"}))])), "r-kvstore[0].EndTime");
        assert_eq!(err(json!([inst("r-1", json!({"InstanceStatus": "Running"}))])), "r-kvstore[0].InstanceStatus");
        assert_eq!(err(json!([inst("r-1", json!({})), inst("r-1", json!({}))])), "r-kvstore[1].InstanceId");
        assert_eq!(err(json!([inst("r-1", json!({"_sim": {"colour": 1}}))])), "r-kvstore[0]._sim.colour");
        assert_eq!(err(json!([inst("r-1", json!({"_sim": {"mutate_after_reads": {"after": 1, "set": {"InstanceStatus": "Gone"}}}}))])), "r-kvstore[0]._sim.mutate_after_reads.set");
    }

    #[test]
    fn list_hides_protection_and_pages_stop_at_50() {
        let mut s = load(Some(&json!((0..3).map(|n| inst(&format!("r-{n}"), json!({}))).collect::<Vec<_>>()))).unwrap();
        let v = call(&mut s, "DescribeInstances", &[("RegionId", "cn-hangzhou"), ("PageSize", "2"), ("PageNumber", "2")]).unwrap();
        assert_eq!(v["TotalCount"], 3);
        assert_eq!(v["Instances"]["KVStoreInstance"][0]["InstanceId"], "r-2");
        assert!(v["Instances"]["KVStoreInstance"][0].get(PROTECTION).is_none());
        assert_eq!(code(call(&mut s, "DescribeInstances", &[("PageSize", "51")])), "InvalidParameter");
        let other = call(&mut s, "DescribeInstances", &[("RegionId", "cn-beijing")]).unwrap();
        assert_eq!(other["TotalCount"], 0);
        let a = call(&mut s, "DescribeInstanceAttribute", &[("InstanceId", "r-1")]).unwrap();
        assert_eq!(a["Instances"]["DBInstanceAttribute"][0][PROTECTION], false);
        assert_eq!(code(call(&mut s, "DescribeInstanceAttribute", &[("InstanceId", "r-9")])), "InvalidInstanceId.NotFound");
    }

    #[test]
    fn release_refusals() {
        let mut s = load(Some(&json!([
            inst("r-ok", json!({})),
            inst("r-prot", json!({"InstanceReleaseProtection": true})),
            inst("r-sub", json!({"ChargeType": "PrePaid", "EndTime": "2026-01-01T00:00:00Z"})),
            inst("r-changing", json!({"InstanceStatus": "Changing"})),
            inst("r-child", json!({"GlobalInstanceId": "gr-1"})),
        ])))
        .unwrap();
        let del = |s: &mut Box<dyn Service>, pairs: &[(&str, &str)]| code(call(s, "DeleteInstance", pairs));
        assert_eq!(del(&mut s, &[("InstanceId", "r-prot")]), "InstanceReleaseProtection");
        assert_eq!(del(&mut s, &[("InstanceId", "r-sub")]), "ChargeTypeViolation");
        assert_eq!(del(&mut s, &[("InstanceId", "r-changing")]), "IncorrectInstanceStatus");
        assert_eq!(del(&mut s, &[("InstanceId", "r-child")]), "InvalidParameter");
        assert_eq!(del(&mut s, &[("InstanceId", "r-ok"), ("RegionId", "cn-beijing")]), "InvalidInstanceId.NotFound");
        assert_eq!(del(&mut s, &[]), "MissingParameter");
        assert_eq!(del(&mut s, &[("InstanceId", "r-ok"), ("RegionId", "cn-hangzhou")]), "ok");
        assert_eq!(del(&mut s, &[("InstanceId", "r-child"), ("GlobalInstanceId", "gr-1")]), "ok");
        assert_eq!(del(&mut s, &[("InstanceId", "r-ok")]), "InvalidInstanceId.NotFound");
        assert_eq!(s.instance_ids(), ["r-changing", "r-prot", "r-sub"]);
    }

    #[test]
    fn a_mutation_shows_after_the_given_reads() {
        let mut s = load(Some(&json!([inst("r-1", json!({"_sim": {"mutate_after_reads": {"after": 2, "set": {PROTECTION: true}}}}))]))).unwrap();
        call(&mut s, "DescribeInstances", &[]).unwrap();
        let first = call(&mut s, "DescribeInstanceAttribute", &[("InstanceId", "r-1")]).unwrap();
        assert_eq!(first["Instances"]["DBInstanceAttribute"][0][PROTECTION], false);
        let second = call(&mut s, "DescribeInstanceAttribute", &[("InstanceId", "r-1")]).unwrap();
        assert_eq!(second["Instances"]["DBInstanceAttribute"][0][PROTECTION], true);
        assert_eq!(code(call(&mut s, "DeleteInstance", &[("InstanceId", "r-1")])), "InstanceReleaseProtection");
    }
}

//! Redis / Tair (`r-kvstore`), version `2015-01-01` (reference sections 3.2 and 7): `DescribeInstances`,
//! `DescribeInstanceAttribute` and `DeleteInstance`, served from the inventory's `r-kvstore` section;
//! `TagResources`/`UntagResources` change the served `Tags`.
//!
//! The section is an array of instance objects as `DescribeInstanceAttribute` returns them (real field names:
//! `InstanceId`, `RegionId`, `InstanceStatus`, `ChargeType` `PrePaid|PostPaid`, `EndTime` (required for
//! `PrePaid`), `CreateTime`, `GlobalInstanceId`, `InstanceReleaseProtection` (bool), `Tags: {"Tag": [{"Key",
//! "Value"}]}`, …). `InstanceReleaseProtection` is only served by `DescribeInstanceAttribute`, as in the real
//! API. Optional `_sim` controls: `mutate_after_reads` (see `controls.rs`).
//!
//! Error codes: 403 `InstanceReleaseProtection` is the documented one. `InvalidInstanceId.NotFound` for a missing
//! instance (`DescribeInstanceAttribute`, `DeleteInstance`) is confirmed by the Terraform provider (reference,
//! corrections: aliyun/terraform-provider-alicloud `alicloud/errors.go` `InvalidKVStoreInstanceIdNotFound`, which
//! `service_alicloud_kvstore.go` reads as "gone" and the instance delete tolerates); its 404 status is this
//! emulator's. The others are this emulator's choices (UNVERIFIED): 403 `IncorrectInstanceStatus` (not `Normal`),
//! 403 `ChargeTypeViolation` (a subscription), 400 `InvalidParameter`.
//!
//! Tagging follows the r-kvstore TagResources/UntagResources pages (help.aliyun.com, "为一个或多个实例绑定标签"):
//! `RegionId`, `ResourceType` fixed to `INSTANCE`, `ResourceId.N` (at most 50), `Tag.N.Key/Value` or `TagKey.N`
//! (at most 20), `All`; at most 20 tags per instance; the answer is only `{RequestId}` (so is the official SDK's
//! `TagResourcesResponseBody`, alibabacloud_r_kvstore20150101 7.0.0). A call either applies to every id or fails
//! as a whole: 404 `InvalidDbInstanceId.NotFound` for an id that is not an instance of the region (reference,
//! corrections; the page also lists 400 `InvalidParameter.ResourceId`), 400 `NumberExceed.Tags` for an instance
//! that would carry more than 20 tags.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::controls::{self, Mutable, Mutation};
use super::inventory::{Fields, SimError};
use super::params::{boolean, number, optional, repeat_list, required, Params};
use super::reply::ApiFault;
use super::service::{ActionKind, Env, Service};
use super::tagging::{read_tags, tag_pairs, tags_value, with_tags};
use crate::time;

const SECTION: &str = "r-kvstore";
pub(crate) const VERSION: &str = "2015-01-01";
const STATUSES: &[&str] = &[
    "Normal",
    "Creating",
    "Changing",
    "Inactive",
    "Flushing",
    "Released",
    "Transforming",
    "Unavailable",
    "Error",
    "Migrating",
    "BackupRecovering",
    "MinorVersionUpgrading",
    "NetworkModifying",
    "SSLModifying",
    "MajorVersionUpgrading",
];
const PROTECTION: &str = "InstanceReleaseProtection";
/// `ResourceId.N` of the tag APIs stops at 50; `Tag.N`/`TagKey.N` at 20, as do the tags of one instance.
const MAX_TAG_RESOURCES: usize = 50;
const MAX_TAGS: usize = 20;
/// The tag list item name inside `Tags` (`{"Tags": {"Tag": [...]}}`).
const TAG_ITEM: &str = "Tag";

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
        time::parse(t).map_err(|e| f.err("CreateTime", e.to_string()))?;
    }
    match f.opt_str("EndTime")? {
        Some(t) => {
            time::parse_optional(t).map_err(|e| f.err("EndTime", e.to_string()))?;
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
    let instances = controls::load_instances(
        SECTION,
        section,
        "DescribeInstanceAttribute instance objects",
        |path, o| view(path, o).map(|_| ()),
        |c: &mut Controls| c.mutate_after_reads.take(),
        |state, _| state,
    )?;
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
            "TagResources" | "UntagResources" => Some(ActionKind::Write),
            _ => None,
        }
    }

    fn handle(&mut self, action: &str, p: &Params, _env: &Env<'_>) -> Result<Value, ApiFault> {
        match action {
            "DescribeInstances" => self.describe_instances(p),
            "DescribeInstanceAttribute" => self.describe_attribute(p),
            "DeleteInstance" => self.delete_instance(p),
            "TagResources" => self.tag_resources(p),
            "UntagResources" => self.untag_resources(p),
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
        let ids: Option<Vec<&str>> =
            optional(p, "InstanceIds").map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect());
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
                // The `RegionId` string first, the full view (times parsed, tags checked) only for the region's
                // instances: the same answer, without a CPU-bound scan of every instance per page.
                if region.is_some_and(|r| m.peek().get("RegionId").and_then(Value::as_str) != Some(r)) {
                    return false;
                }
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
        Ok(
            json!({"PageNumber": page_number, "PageSize": page_size, "TotalCount": total, "Instances": {"KVStoreInstance": page}}),
        )
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
            return Err(ApiFault::new(
                403,
                "InstanceReleaseProtection",
                format!("The operation is not permitted due to instance release protection. ({id})"),
            ));
        }
        if v.global_id.as_deref() != optional(p, "GlobalInstanceId") {
            return Err(ApiFault::invalid(
                "GlobalInstanceId",
                "must name the distributed instance this instance belongs to",
            ));
        }
        if v.prepaid {
            return Err(ApiFault::new(
                403,
                "ChargeTypeViolation",
                format!("Subscription instances cannot be released through the API. ({id})"),
            ));
        }
        if v.status != "Normal" {
            return Err(ApiFault::new(
                403,
                "IncorrectInstanceStatus",
                format!("The instance status does not support this operation. ({id} is {})", v.status),
            ));
        }
        self.instances.remove(id);
        Ok(json!({}))
    }

    /// The ids of a tag call, all instances of `RegionId`; otherwise the whole call fails, as documented.
    fn tag_targets(&self, p: &Params) -> Result<Vec<String>, ApiFault> {
        let region = required(p, "RegionId")?;
        let resource_type = required(p, "ResourceType")?;
        if resource_type != "INSTANCE" {
            return Err(ApiFault::invalid("ResourceType", "the value is fixed to INSTANCE"));
        }
        let ids = repeat_list(p, "ResourceId", MAX_TAG_RESOURCES)?;
        if let Some(bad) = ids.iter().find(|id| self.find(id, Some(region)).is_none()) {
            // Reference, corrections: tag calls on a missing instance answer 404 `InvalidDbInstanceId.NotFound`.
            return Err(ApiFault::new(
                404,
                "InvalidDbInstanceId.NotFound",
                format!("The specified instance is not found. ({bad} is not an instance in {region})"),
            ));
        }
        Ok(ids)
    }

    /// Writes the tags on every id (a key already present gets the new value), or on none.
    fn tag_resources(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let tags = tag_pairs(p, MAX_TAGS)?;
        let ids = self.tag_targets(p)?;
        let mut updated = Vec::new();
        for id in ids {
            let Some(m) = self.instances.get(&id) else { continue };
            let after = with_tags(&read_tags(m.peek(), TAG_ITEM), &tags);
            if after.len() > MAX_TAGS {
                return Err(ApiFault::new(
                    400,
                    "NumberExceed.Tags",
                    format!("The Tags parameter number is exceed, Valid is {MAX_TAGS}. ({id})"),
                ));
            }
            updated.push((id, after));
        }
        for (id, after) in updated {
            if let Some(m) = self.instances.get_mut(&id) {
                m.set("Tags", tags_value(TAG_ITEM, &after));
            }
        }
        Ok(json!({}))
    }

    /// Removes the `TagKey.N` keys (absent keys are no error) or, with `All=true` and no keys, every tag.
    fn untag_resources(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let all = boolean(p, "All")?;
        let has_keys = p.keys().any(|k| k.starts_with("TagKey."));
        // TagKey.N wins over All when both are given (documented).
        let keys = if has_keys || !all { Some(repeat_list(p, "TagKey", MAX_TAGS)?) } else { None };
        let ids = self.tag_targets(p)?;
        for id in ids {
            let Some(m) = self.instances.get_mut(&id) else { continue };
            let left: Vec<(String, String)> = match &keys {
                Some(keys) => read_tags(m.peek(), TAG_ITEM).into_iter().filter(|(k, _)| !keys.contains(k)).collect(),
                None => Vec::new(),
            };
            m.set("Tags", tags_value(TAG_ITEM, &left));
        }
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
        assert_eq!(
            err(json!([inst(
                "r-1",
                json!({"_sim": {"mutate_after_reads": {"after": 1, "set": {"InstanceStatus": "Gone"}}}})
            )])),
            "r-kvstore[0]._sim.mutate_after_reads.set"
        );
    }

    #[test]
    fn list_hides_protection_and_pages_stop_at_50() {
        let mut s = load(Some(&json!((0..3).map(|n| inst(&format!("r-{n}"), json!({}))).collect::<Vec<_>>()))).unwrap();
        let v =
            call(&mut s, "DescribeInstances", &[("RegionId", "cn-hangzhou"), ("PageSize", "2"), ("PageNumber", "2")])
                .unwrap();
        assert_eq!(v["TotalCount"], 3);
        assert_eq!(v["Instances"]["KVStoreInstance"][0]["InstanceId"], "r-2");
        assert!(v["Instances"]["KVStoreInstance"][0].get(PROTECTION).is_none());
        assert_eq!(code(call(&mut s, "DescribeInstances", &[("PageSize", "51")])), "InvalidParameter");
        let other = call(&mut s, "DescribeInstances", &[("RegionId", "cn-beijing")]).unwrap();
        assert_eq!(other["TotalCount"], 0);
        let a = call(&mut s, "DescribeInstanceAttribute", &[("InstanceId", "r-1")]).unwrap();
        assert_eq!(a["Instances"]["DBInstanceAttribute"][0][PROTECTION], false);
        assert_eq!(
            code(call(&mut s, "DescribeInstanceAttribute", &[("InstanceId", "r-9")])),
            "InvalidInstanceId.NotFound"
        );
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
        let mut s = load(Some(&json!([inst(
            "r-1",
            json!({"_sim": {"mutate_after_reads": {"after": 2, "set": {PROTECTION: true}}}})
        )])))
        .unwrap();
        call(&mut s, "DescribeInstances", &[]).unwrap();
        let first = call(&mut s, "DescribeInstanceAttribute", &[("InstanceId", "r-1")]).unwrap();
        assert_eq!(first["Instances"]["DBInstanceAttribute"][0][PROTECTION], false);
        let second = call(&mut s, "DescribeInstanceAttribute", &[("InstanceId", "r-1")]).unwrap();
        assert_eq!(second["Instances"]["DBInstanceAttribute"][0][PROTECTION], true);
        assert_eq!(code(call(&mut s, "DeleteInstance", &[("InstanceId", "r-1")])), "InstanceReleaseProtection");
    }

    fn tags_of(s: &mut Box<dyn Service>, id: &str) -> Vec<(String, String)> {
        let a = call(s, "DescribeInstanceAttribute", &[("InstanceId", id)]).unwrap();
        read_tags(a["Instances"]["DBInstanceAttribute"][0].as_object().unwrap(), TAG_ITEM)
    }

    #[test]
    fn tags_are_written_and_removed_and_show_in_reads() {
        let many: Vec<Value> = (0..19).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect();
        let mut s = load(Some(&json!([
            inst("r-1", json!({"Tags": {"Tag": [{"Key": "env", "Value": "dev"}]}})),
            inst("r-2", json!({})),
            inst("r-full", json!({"Tags": {"Tag": many}})),
            inst("r-bj", json!({"RegionId": "cn-beijing"})),
        ])))
        .unwrap();
        let base = [("RegionId", "cn-hangzhou"), ("ResourceType", "INSTANCE")];
        let tag = |s: &mut Box<dyn Service>, extra: &[(&str, &str)]| {
            code(call(s, "TagResources", &[&base[..], extra].concat()))
        };
        let both = [
            ("ResourceId.1", "r-1"),
            ("ResourceId.2", "r-2"),
            ("Tag.1.Key", "janitor:rule"),
            ("Tag.1.Value", "x"),
            ("Tag.2.Key", "env"),
            ("Tag.2.Value", "prod"),
        ];
        assert_eq!(tag(&mut s, &both), "ok");
        assert_eq!(
            tags_of(&mut s, "r-1"),
            [("env".to_string(), "prod".to_string()), ("janitor:rule".to_string(), "x".to_string())]
        );
        assert_eq!(tags_of(&mut s, "r-2").len(), 2);
        // The listing shows them too.
        let listed = call(&mut s, "DescribeInstances", &[("RegionId", "cn-hangzhou")]).unwrap();
        assert_eq!(listed["Instances"]["KVStoreInstance"][0]["Tags"]["Tag"][1]["Key"], "janitor:rule");
        // A call fails as a whole: an id of another region, or an instance that would pass 20 tags.
        assert_eq!(
            tag(&mut s, &[("ResourceId.1", "r-2"), ("ResourceId.2", "r-bj"), ("Tag.1.Key", "new")]),
            "InvalidDbInstanceId.NotFound"
        );
        assert_eq!(
            tag(&mut s, &[("ResourceId.1", "r-2"), ("ResourceId.2", "r-gone"), ("Tag.1.Key", "new")]),
            "InvalidDbInstanceId.NotFound"
        );
        assert_eq!(
            tag(&mut s, &[("ResourceId.1", "r-2"), ("ResourceId.2", "r-full"), ("Tag.1.Key", "a"), ("Tag.2.Key", "b")]),
            "NumberExceed.Tags"
        );
        assert!(tags_of(&mut s, "r-2").iter().all(|(k, _)| k != "new" && k != "a"), "nothing written by a failed call");
        assert_eq!(
            tag(&mut s, &[("ResourceId.1", "r-full"), ("Tag.1.Key", "k0"), ("Tag.1.Value", "w")]),
            "ok",
            "overwriting is no new tag"
        );
        assert_eq!(
            code(call(
                &mut s,
                "TagResources",
                &[
                    ("RegionId", "cn-hangzhou"),
                    ("ResourceType", "instance"),
                    ("ResourceId.1", "r-2"),
                    ("Tag.1.Key", "a")
                ]
            )),
            "InvalidParameter"
        );
        assert_eq!(tag(&mut s, &[("Tag.1.Key", "a")]), "MissingParameter");
        assert_eq!(tag(&mut s, &[("ResourceId.1", "r-2")]), "MissingParameter");

        let untag = |s: &mut Box<dyn Service>, extra: &[(&str, &str)]| {
            code(call(s, "UntagResources", &[&base[..], extra].concat()))
        };
        assert_eq!(
            untag(&mut s, &[("ResourceId.1", "r-1"), ("TagKey.1", "janitor:rule"), ("TagKey.2", "absent")]),
            "ok"
        );
        assert_eq!(tags_of(&mut s, "r-1"), [("env".to_string(), "prod".to_string())]);
        assert_eq!(untag(&mut s, &[("ResourceId.1", "r-2")]), "MissingParameter", "no keys and not All");
        assert_eq!(untag(&mut s, &[("ResourceId.1", "r-2"), ("All", "true")]), "ok");
        assert!(tags_of(&mut s, "r-2").is_empty());
        assert_eq!(untag(&mut s, &[("ResourceId.1", "r-gone"), ("All", "true")]), "InvalidDbInstanceId.NotFound");
    }
}

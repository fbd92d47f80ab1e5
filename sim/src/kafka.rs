//! ApsaraMQ for Kafka (`alikafka`), version `2019-09-16` (reference sections 3.3 and 7): `GetInstanceList`,
//! `ReleaseInstance` and `DeleteInstance`, served from the inventory's `alikafka` section; `TagResources` and
//! `UntagResources` change the served `Tags.TagVO`.
//!
//! The section is an array of `InstanceVO` objects as `GetInstanceList` returns them (real field names:
//! `InstanceId`, `RegionId`, `ViewInstanceStatusCode`, `ServiceStatus`, `PaidType` 0/1/3/4, `CreateTime` and
//! `ExpiredTime` in epoch milliseconds, `Tags: {"TagVO": [{"Key", "Value"}]}`, …), served verbatim. Answers are
//! business envelopes: HTTP 200 with `Code: 200, Success: true`, and business errors as HTTP 200 with
//! `Success: false` and a string `Code`. Parameter errors stay HTTP 400 (the gateway answers those).
//!
//! The two-step release follows the Terraform provider's delete path (`resourceAliCloudAlikafkaInstanceDelete`,
//! reference 3.3 corrected): after `ReleaseInstance` the instance is releasing (`ViewInstanceStatusCode` 23,
//! `ServiceStatus` unchanged) until `released_after_ms` of wall time have passed (a `_sim` control, default 0),
//! then released-but-not-deleted: `ServiceStatus` 15 (which view code shows meanwhile is UNVERIFIED; the
//! emulator shows 6, released). `DeleteInstance` is refused (`BIZ_INSTANCE_STATUS_ERROR`) before `ServiceStatus`
//! 15 and removes the instance after it. Other optional `_sim` controls: `mutate_after_reads` (`controls.rs`);
//! `release_error: {"Code": "...", "Message": "..."}` (`ReleaseInstance` answers that business error).
//! `BIZ_INSTANCE_PAIDTYPE_NOT_SUPPORT` (a subscription's release) is the service's code (reference, corrections);
//! the other business error codes are this emulator's (UNVERIFIED): `BIZ_INSTANCE_NOT_FOUND`,
//! `BIZ_INSTANCE_STATUS_ERROR`.
//!
//! Tagging (reference 3.3 and the alikafka TagResources/UntagResources pages): `RegionId`, `ResourceType`
//! `INSTANCE` (case-insensitive; the emulator tags instances only, not topics or groups), `ResourceId.N`,
//! `Tag.N.Key/Value` or `TagKey.N`, `All`; the documented answer is only `{RequestId}`. Limits and errors are
//! this emulator's (UNVERIFIED, none documented): at most 50 ids and 20 tags per call and 20 tags per instance; a
//! call applies to every id or to none, and fails as a business error (HTTP 200, `Success: false`) with
//! `BIZ_INSTANCE_NOT_FOUND` for an id that is not an instance of the region, `NumberExceed.Tags` for an instance
//! that would carry more than 20 tags.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::controls::{self, Mutable, Mutation};
use super::inventory::{Fields, SimError};
use super::params::{boolean, repeat_list, required, Params};
use super::reply::ApiFault;
use super::service::{ActionKind, Env, Service};
use super::tagging::{read_tags, tag_pairs, tags_value, with_tags};

const SECTION: &str = "alikafka";
pub(crate) const VERSION: &str = "2019-09-16";
const RELEASING: i64 = 23;
const RELEASED: i64 = 6;
/// `ServiceStatus` of a released instance whose record is still listed (the Terraform provider waits for it).
const SERVICE_RELEASED: i64 = 15;
/// Tag API limits (UNVERIFIED, see above).
const MAX_TAG_RESOURCES: usize = 50;
const MAX_TAGS: usize = 20;
/// The tag list item name inside `Tags` (`{"Tags": {"TagVO": [...]}}`).
const TAG_ITEM: &str = "TagVO";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "PascalCase")]
struct BusinessError {
    code: String,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Controls {
    #[serde(default)]
    mutate_after_reads: Option<Mutation>,
    #[serde(default)]
    released_after_ms: Option<u64>,
    #[serde(default)]
    release_error: Option<BusinessError>,
}

struct Kafka1 {
    state: Mutable,
    released_after: std::time::Duration,
    release_error: Option<BusinessError>,
    /// When the instance reads released (`ServiceStatus` 15), once `ReleaseInstance` was accepted.
    releasing_until: Option<std::time::Instant>,
}

struct View {
    region: String,
    status: i64,
    paid_type: i64,
}

fn int(f: &Fields<'_>, field: &str) -> Result<i64, SimError> {
    match f.obj.get(field) {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| f.err(field, "expected an integer")),
        _ => Err(f.err(field, "expected an integer")),
    }
}

fn view(path: &str, obj: &Map<String, Value>) -> Result<View, SimError> {
    let f = Fields { path: path.to_string(), obj };
    f.req_str("InstanceId")?;
    let paid_type = int(&f, "PaidType")?;
    if ![0, 1, 3, 4].contains(&paid_type) {
        // Reference 3.3: 0 subscription, 1 pay-as-you-go, 3 serverless, 4 Confluent subscription (the Terraform
        // provider's `convertAliKafkaPaidTypeResponse`: "0", "4" → PrePaid).
        return Err(f.err("PaidType", "expected 0 or 4 (subscription), 1 or 3 (pay-as-you-go)"));
    }
    for field in ["CreateTime", "ExpiredTime"] {
        if f.obj.get(field).is_some_and(|v| !v.is_null()) {
            int(&f, field)?;
        }
    }
    f.wrapped_list("Tags", "TagVO")?;
    Ok(View { region: f.req_str("RegionId")?.to_string(), status: int(&f, "ViewInstanceStatusCode")?, paid_type })
}

pub(crate) struct Kafka {
    instances: BTreeMap<String, Kafka1>,
}

pub(crate) fn load(section: Option<&Value>) -> Result<Box<dyn Service>, SimError> {
    let instances = controls::load_instances(
        SECTION,
        section,
        "GetInstanceList InstanceVO objects",
        |path, o| view(path, o).map(|_| ()),
        |c: &mut Controls| c.mutate_after_reads.take(),
        |state, c| Kafka1 {
            state,
            released_after: std::time::Duration::from_millis(c.released_after_ms.unwrap_or(0)),
            release_error: c.release_error,
            releasing_until: None,
        },
    )?;
    Ok(Box::new(Kafka { instances }))
}

/// A business error: HTTP 200 with `Success: false` (reference section 2).
fn business(code: &str, message: impl Into<String>) -> Value {
    json!({"Code": code, "Success": false, "Message": message.into()})
}

fn ok(extra: Value) -> Value {
    let mut v = json!({"Code": 200, "Success": true, "Message": "operation success."});
    if let (Value::Object(v), Value::Object(x)) = (&mut v, extra) {
        v.extend(x);
    }
    v
}

impl Kafka1 {
    fn current(&self) -> Option<View> {
        view("", self.state.peek()).ok()
    }

    fn set_status(&mut self, view_code: i64, service_status: i64) {
        self.state.set("ViewInstanceStatusCode", json!(view_code));
        self.state.set("ServiceStatus", json!(service_status));
    }

    /// A release whose delay has passed now reads released.
    fn settle(&mut self) {
        if self.releasing_until.is_some_and(|t| std::time::Instant::now() >= t) {
            self.releasing_until = None;
            self.set_status(RELEASED, SERVICE_RELEASED);
        }
    }

    fn service_status(&self) -> Option<i64> {
        self.state.peek().get("ServiceStatus").and_then(Value::as_i64)
    }

    fn read(&mut self) -> Value {
        self.settle();
        Value::Object(self.state.read().clone())
    }
}

impl Service for Kafka {
    fn product(&self) -> &'static str {
        SECTION
    }

    fn version(&self) -> &'static str {
        VERSION
    }

    fn action_kind(&self, action: &str) -> Option<ActionKind> {
        match action {
            "GetInstanceList" => Some(ActionKind::Read),
            "ReleaseInstance" | "DeleteInstance" => Some(ActionKind::Release),
            "TagResources" | "UntagResources" => Some(ActionKind::Write),
            _ => None,
        }
    }

    fn handle(&mut self, action: &str, p: &Params, _env: &Env<'_>) -> Result<Value, ApiFault> {
        match action {
            "GetInstanceList" => self.get_instance_list(p),
            "ReleaseInstance" => self.release_instance(p),
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
        Value::Array(self.instances.values().map(|k| Value::Object(k.state.peek().clone())).collect())
    }
}

impl Kafka {
    /// No paging: every instance of the region (reference 3.3). `InstanceId.N` narrows it.
    fn get_instance_list(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let region = required(p, "RegionId")?;
        let ids: Vec<&String> = p
            .iter()
            .filter(|(k, _)| k.strip_prefix("InstanceId.").is_some_and(|n| n.parse::<u32>().is_ok()))
            .map(|(_, v)| v)
            .collect();
        let mut list = Vec::new();
        for (id, k) in self.instances.iter_mut() {
            // The `RegionId` string first, the full view only for the region's instances (the same answer).
            let here = k.state.peek().get("RegionId").and_then(Value::as_str) == Some(region);
            if here && k.current().is_some_and(|v| v.region == region) && (ids.is_empty() || ids.contains(&id)) {
                list.push(k.read());
            }
        }
        Ok(ok(json!({"InstanceList": {"InstanceVO": list}})))
    }

    /// The instance of `RegionId`, or the business error naming it.
    fn target(&mut self, p: &Params) -> Result<Result<(&mut Kafka1, View), Value>, ApiFault> {
        let region = required(p, "RegionId")?.to_string();
        let id = required(p, "InstanceId")?.to_string();
        let found =
            self.instances.get_mut(&id).and_then(|k| k.current().filter(|v| v.region == region).map(|v| (k, v)));
        Ok(found.ok_or_else(|| {
            business("BIZ_INSTANCE_NOT_FOUND", format!("The instance {id} does not exist in {region}."))
        }))
    }

    /// Pay-as-you-go (and serverless) only, running or stopped.
    fn release_instance(&mut self, p: &Params) -> Result<Value, ApiFault> {
        boolean(p, "ForceDeleteInstance")?;
        let (k, v) = match self.target(p)? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
        if let Some(e) = &k.release_error {
            return Ok(business(&e.code, e.message.clone().unwrap_or_else(|| "The request failed.".into())));
        }
        if [0, 4].contains(&v.paid_type) {
            return Ok(business(
                "BIZ_INSTANCE_PAIDTYPE_NOT_SUPPORT",
                "Subscription instances cannot be released through the API.",
            ));
        }
        if ![2, 3].contains(&v.status) {
            return Ok(business(
                "BIZ_INSTANCE_STATUS_ERROR",
                format!("The instance status {} does not allow a release.", v.status),
            ));
        }
        let service = k.service_status().unwrap_or(5);
        k.set_status(RELEASING, service);
        k.releasing_until = Some(std::time::Instant::now() + k.released_after);
        k.settle();
        Ok(ok(json!({})))
    }

    /// Removes the record of a released instance (the second step).
    fn delete_instance(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let id = required(p, "InstanceId")?.to_string();
        let k = match self.target(p)? {
            Ok((k, _)) => k,
            Err(answer) => return Ok(answer),
        };
        k.settle();
        if k.service_status() != Some(SERVICE_RELEASED) {
            let status = k.service_status().map_or_else(|| "none".to_string(), |s| s.to_string());
            return Ok(business(
                "BIZ_INSTANCE_STATUS_ERROR",
                format!("Only released instances can be deleted; {id} has ServiceStatus {status}."),
            ));
        }
        self.instances.remove(&id);
        Ok(ok(json!({})))
    }

    /// The ids of a tag call, all instances of `RegionId`, or the business error naming the first that is not.
    fn tag_targets(&self, p: &Params) -> Result<Result<Vec<String>, Value>, ApiFault> {
        let region = required(p, "RegionId")?;
        let resource_type = required(p, "ResourceType")?;
        if !resource_type.eq_ignore_ascii_case("INSTANCE") {
            return Err(ApiFault::invalid("ResourceType", "the emulator tags instances only (INSTANCE)"));
        }
        let ids = repeat_list(p, "ResourceId", MAX_TAG_RESOURCES)?;
        let in_region = |id: &str| self.instances.get(id).and_then(Kafka1::current).is_some_and(|v| v.region == region);
        let missing = ids.iter().find(|id| !in_region(id));
        Ok(match missing {
            Some(id) => {
                Err(business("BIZ_INSTANCE_NOT_FOUND", format!("The instance {id} does not exist in {region}.")))
            }
            None => Ok(ids),
        })
    }

    /// Writes the tags on every id (a key already present gets the new value), or on none.
    fn tag_resources(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let tags = tag_pairs(p, MAX_TAGS)?;
        let ids = match self.tag_targets(p)? {
            Ok(ids) => ids,
            Err(answer) => return Ok(answer),
        };
        let mut updated = Vec::new();
        for id in ids {
            let Some(k) = self.instances.get(&id) else { continue };
            let after = with_tags(&read_tags(k.state.peek(), TAG_ITEM), &tags);
            if after.len() > MAX_TAGS {
                return Ok(business(
                    "NumberExceed.Tags",
                    format!("The instance {id} can carry at most {MAX_TAGS} tags."),
                ));
            }
            updated.push((id, after));
        }
        for (id, after) in updated {
            if let Some(k) = self.instances.get_mut(&id) {
                k.state.set("Tags", tags_value(TAG_ITEM, &after));
            }
        }
        Ok(json!({}))
    }

    /// Removes the `TagKey.N` keys (absent keys are no error) or, with `All=true` and no keys, every tag.
    fn untag_resources(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let all = boolean(p, "All")?;
        let has_keys = p.keys().any(|k| k.starts_with("TagKey."));
        // All only counts when no TagKey.N is given (documented).
        let keys = if has_keys || !all { Some(repeat_list(p, "TagKey", MAX_TAGS)?) } else { None };
        let ids = match self.tag_targets(p)? {
            Ok(ids) => ids,
            Err(answer) => return Ok(answer),
        };
        for id in ids {
            let Some(k) = self.instances.get_mut(&id) else { continue };
            let left: Vec<(String, String)> = match &keys {
                Some(keys) => {
                    read_tags(k.state.peek(), TAG_ITEM).into_iter().filter(|(key, _)| !keys.contains(key)).collect()
                }
                None => Vec::new(),
            };
            k.state.set("Tags", tags_value(TAG_ITEM, &left));
        }
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn inst(id: &str, extra: Value) -> Value {
        let mut v = json!({"InstanceId": id, "RegionId": "cn-hangzhou", "ViewInstanceStatusCode": 2, "ServiceStatus": 5, "PaidType": 1, "CreateTime": 1577961819000i64});
        if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
            base.extend(more);
        }
        v
    }

    fn call(s: &mut Box<dyn Service>, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiFault> {
        let p: Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.handle(action, &p, &Env { now: Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(), request_id: "REQ" })
    }

    fn biz(v: Result<Value, ApiFault>) -> String {
        match v {
            // The tag actions answer only a RequestId (documented): no Success is a success there.
            Ok(v) if v["Success"] == true || v.get("Success").is_none() => "ok".into(),
            Ok(v) => v["Code"].as_str().unwrap_or("?").to_string(),
            Err(f) => f.code,
        }
    }

    fn status(s: &mut Box<dyn Service>, id: &str) -> i64 {
        let v = call(s, "GetInstanceList", &[("RegionId", "cn-hangzhou"), ("InstanceId.1", id)]).unwrap();
        v["InstanceList"]["InstanceVO"][0]["ViewInstanceStatusCode"].as_i64().unwrap_or(-1)
    }

    fn service_status(s: &mut Box<dyn Service>, id: &str) -> i64 {
        let v = call(s, "GetInstanceList", &[("RegionId", "cn-hangzhou"), ("InstanceId.1", id)]).unwrap();
        v["InstanceList"]["InstanceVO"][0]["ServiceStatus"].as_i64().unwrap_or(-1)
    }

    #[test]
    fn load_errors_name_the_field() {
        let err = |v: Value| match load(Some(&v)) {
            Err(SimError::Invalid { field, .. }) => field,
            _ => "no error".into(),
        };
        assert_eq!(err(json!([inst("k", json!({"PaidType": 2}))])), "alikafka[0].PaidType");
        assert_eq!(err(json!([inst("k", json!({"CreateTime": "2020-01-01"}))])), "alikafka[0].CreateTime");
        assert_eq!(
            err(json!([inst("k", json!({"ViewInstanceStatusCode": "2"}))])),
            "alikafka[0].ViewInstanceStatusCode"
        );
        assert_eq!(
            err(json!([inst("k", json!({"_sim": {"release_error": {"Message": "x"}}}))])),
            "alikafka[0]._sim.release_error"
        );
    }

    #[test]
    fn list_is_an_envelope_and_errors_are_200_with_success_false() {
        let mut s =
            load(Some(&json!([inst("k-1", json!({})), inst("k-2", json!({"RegionId": "cn-beijing"}))]))).unwrap();
        let v = call(&mut s, "GetInstanceList", &[("RegionId", "cn-hangzhou")]).unwrap();
        assert_eq!((v["Code"].clone(), v["Success"].clone()), (json!(200), json!(true)));
        assert_eq!(v["InstanceList"]["InstanceVO"].as_array().unwrap().len(), 1);
        assert_eq!(biz(call(&mut s, "GetInstanceList", &[])), "MissingParameter");
        assert_eq!(
            biz(call(&mut s, "ReleaseInstance", &[("RegionId", "cn-hangzhou"), ("InstanceId", "k-2")])),
            "BIZ_INSTANCE_NOT_FOUND"
        );
        assert_eq!(
            biz(call(&mut s, "DeleteInstance", &[("RegionId", "cn-hangzhou"), ("InstanceId", "k-1")])),
            "BIZ_INSTANCE_STATUS_ERROR"
        );
    }

    #[test]
    fn release_then_delete() {
        let mut s = load(Some(&json!([
            inst("k-now", json!({})),
            inst("k-slow", json!({"_sim": {"released_after_ms": 200}})),
            inst("k-sub", json!({"PaidType": 0, "ExpiredTime": 1577961819000i64})),
            inst("k-fail", json!({"_sim": {"release_error": {"Code": "ONS_SYSTEM_ERROR", "Message": "boom"}}})),
            inst("k-deploying", json!({"ViewInstanceStatusCode": 1})),
        ])))
        .unwrap();
        let rel = |s: &mut Box<dyn Service>, id: &str| {
            biz(call(
                s,
                "ReleaseInstance",
                &[("RegionId", "cn-hangzhou"), ("InstanceId", id), ("ForceDeleteInstance", "false")],
            ))
        };
        let del = |s: &mut Box<dyn Service>, id: &str| {
            biz(call(s, "DeleteInstance", &[("RegionId", "cn-hangzhou"), ("InstanceId", id)]))
        };
        assert_eq!(rel(&mut s, "k-sub"), "BIZ_INSTANCE_PAIDTYPE_NOT_SUPPORT");
        assert_eq!(rel(&mut s, "k-fail"), "ONS_SYSTEM_ERROR");
        assert_eq!(rel(&mut s, "k-deploying"), "BIZ_INSTANCE_STATUS_ERROR");
        assert_eq!(rel(&mut s, "k-now"), "ok");
        assert_eq!(status(&mut s, "k-now"), 6);
        assert_eq!(rel(&mut s, "k-now"), "BIZ_INSTANCE_STATUS_ERROR");
        assert_eq!(del(&mut s, "k-now"), "ok");
        assert_eq!(rel(&mut s, "k-slow"), "ok");
        // Releasing: view code 23, ServiceStatus unchanged, and DeleteInstance refused until ServiceStatus 15.
        assert_eq!(status(&mut s, "k-slow"), 23);
        assert_eq!(service_status(&mut s, "k-slow"), 5);
        assert_eq!(del(&mut s, "k-slow"), "BIZ_INSTANCE_STATUS_ERROR");
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert_eq!((status(&mut s, "k-slow"), service_status(&mut s, "k-slow")), (6, 15));
        assert_eq!(s.instance_ids(), ["k-deploying", "k-fail", "k-slow", "k-sub"]);
        assert_eq!(del(&mut s, "k-slow"), "ok");
        assert_eq!(s.instance_ids(), ["k-deploying", "k-fail", "k-sub"]);
    }

    fn tags_of(s: &mut Box<dyn Service>, id: &str) -> Vec<(String, String)> {
        let v = call(s, "GetInstanceList", &[("RegionId", "cn-hangzhou"), ("InstanceId.1", id)]).unwrap();
        read_tags(v["InstanceList"]["InstanceVO"][0].as_object().unwrap(), TAG_ITEM)
    }

    #[test]
    fn tags_are_written_and_removed_and_errors_are_business_errors() {
        let many: Vec<Value> = (0..20).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect();
        let mut s = load(Some(&json!([
            inst("k-1", json!({"Tags": {"TagVO": [{"Key": "env", "Value": "dev"}]}})),
            inst("k-2", json!({})),
            inst("k-full", json!({"Tags": {"TagVO": many}})),
            inst("k-bj", json!({"RegionId": "cn-beijing"})),
        ])))
        .unwrap();
        let base = [("RegionId", "cn-hangzhou"), ("ResourceType", "instance")];
        let tag = |s: &mut Box<dyn Service>, extra: &[(&str, &str)]| {
            biz(call(s, "TagResources", &[&base[..], extra].concat()))
        };
        let answer = call(
            &mut s,
            "TagResources",
            &[
                &base[..],
                &[("ResourceId.1", "k-1"), ("ResourceId.2", "k-2"), ("Tag.1.Key", "env"), ("Tag.1.Value", "prod")],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(answer, json!({}), "the documented answer is only the RequestId");
        assert_eq!(tags_of(&mut s, "k-1"), [("env".to_string(), "prod".to_string())]);
        assert_eq!(tags_of(&mut s, "k-2"), [("env".to_string(), "prod".to_string())]);
        let business = |r: Result<Value, ApiFault>| r.map(|v| (v["Success"].clone(), v["Code"].clone())).ok();
        assert_eq!(
            business(call(
                &mut s,
                "TagResources",
                &[&base[..], &[("ResourceId.1", "k-2"), ("ResourceId.2", "k-bj"), ("Tag.1.Key", "new")]].concat()
            )),
            Some((json!(false), json!("BIZ_INSTANCE_NOT_FOUND"))),
            "HTTP 200 with Success: false"
        );
        assert_eq!(
            tag(&mut s, &[("ResourceId.1", "k-2"), ("ResourceId.2", "k-full"), ("Tag.1.Key", "new")]),
            "NumberExceed.Tags"
        );
        assert!(tags_of(&mut s, "k-2").iter().all(|(k, _)| k != "new"), "nothing written by a failed call");
        assert_eq!(tag(&mut s, &[("ResourceId.1", "k-1"), ("Tag.1.Key", "acs:x")]), "InvalidParameter");
        assert_eq!(
            biz(call(
                &mut s,
                "TagResources",
                &[("RegionId", "cn-hangzhou"), ("ResourceType", "TOPIC"), ("ResourceId.1", "k-1"), ("Tag.1.Key", "a")]
            )),
            "InvalidParameter"
        );

        let untag = |s: &mut Box<dyn Service>, extra: &[(&str, &str)]| {
            biz(call(s, "UntagResources", &[&base[..], extra].concat()))
        };
        assert_eq!(untag(&mut s, &[("ResourceId.1", "k-1"), ("TagKey.1", "env"), ("TagKey.2", "absent")]), "ok");
        assert!(tags_of(&mut s, "k-1").is_empty());
        assert_eq!(untag(&mut s, &[("ResourceId.1", "k-full"), ("All", "true")]), "ok");
        assert!(tags_of(&mut s, "k-full").is_empty());
        assert_eq!(untag(&mut s, &[("ResourceId.1", "k-gone"), ("TagKey.1", "env")]), "BIZ_INSTANCE_NOT_FOUND");
    }
}

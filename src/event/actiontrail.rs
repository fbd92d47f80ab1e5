//! `<product>:ActionTrail:ApiCall` CloudEvents (reference section 4.3). Only the tag APIs
//! ([`TAG_EVENT_NAMES`]) name resources, from `data.referencedResources` and `data.requestParameters`
//! (`ResourceId.N`, `InstanceId`, `ResourceARN.N`); any other call is a no-op (EventBridge rules often forward
//! every write call).

use serde_json::Value;

use super::raw::{decode, CloudEnvelope, TrailData};
use super::{
    clip, describe_value, event_id, field, json_kind, object, quote, region_value, required, strings, EventError,
    ResourceEvent, Trigger, TAG_EVENT_NAMES,
};
use crate::products::catalog;

/// The tag keys a tag call names, however ActionTrail renders them: `Tag.N.Key`, `TagKey.N`, arrays (`TagKey`,
/// `Tag: [{Key}]`) or the Tag service's `Tags` JSON object string. Values that are not strings are passed over.
fn tag_keys(params: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut keys = Vec::new();
    let push_str = |v: &Value, keys: &mut Vec<String>| match v {
        Value::String(s) => keys.push(s.clone()),
        Value::Array(a) => keys.extend(a.iter().filter_map(|x| x.as_str().map(String::from))),
        _ => {}
    };
    for (k, v) in params {
        let parts: Vec<&str> = k.split('.').collect();
        match parts.as_slice() {
            ["Tag", _, key] if key.eq_ignore_ascii_case("Key") => push_str(v, &mut keys),
            ["TagKey"] | ["TagKey", _] => push_str(v, &mut keys),
            ["Tag"] => {
                for t in v.as_array().into_iter().flatten() {
                    if let Some(key) = t.get("Key").and_then(Value::as_str) {
                        keys.push(key.to_string());
                    }
                }
            }
            ["Tags"] => {
                if let Some(Value::Object(o)) = v.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()) {
                    keys.extend(o.keys().cloned());
                }
            }
            _ => {}
        }
    }
    keys
}

/// An API call of `service` (the type's first part: `ecs`, `tag`, ...).
pub(super) fn call(value: &Value, service: &str) -> Result<Trigger, EventError> {
    let envelope: CloudEnvelope = decode(value, "")?;
    let id = event_id(envelope.id)?;
    let mut event = ResourceEvent::new("acs.actiontrail", &id);
    let data = object(envelope.data.as_ref(), "data")?;
    let data: TrailData = decode(data, "data.")?;
    let name = required(data.event_name, "data.eventName")?;
    if !TAG_EVENT_NAMES.contains(&name.as_str()) {
        event.note(format!("ActionTrail {} is not a tag change", quote(&name)));
        return Ok(Trigger::Resources(event));
    }
    let params = match &data.request_parameters {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p),
        Some(other) => {
            return Err(field("data.requestParameters", format!("expected an object, got {}", json_kind(other))))
        }
    };
    // The janitor's own marks and unmarks are tag calls too: a change that touches only its reserved keys is its
    // own echo, and re-reading for it would only spend a run.
    let keys = params.map(tag_keys).unwrap_or_default();
    if !keys.is_empty() && keys.iter().all(|k| crate::lifecycle::is_reserved_tag(k)) {
        event.note(format!(
            "{} of the janitor's own tags only ({}): its own mark or unmark",
            quote(&name),
            keys.join(", ")
        ));
        return Ok(Trigger::Resources(event));
    }
    let region = match (&data.acs_region, params.and_then(|p| p.get("RegionId")), &envelope.aliyunregionid) {
        (Some(v), _, _) => Some(region_value(v, "data.acsRegion")?),
        (None, Some(v), _) => Some(region_value(v, "data.requestParameters.RegionId")?),
        (None, None, Some(v)) => Some(region_value(v, "aliyunregionid")?),
        (None, None, None) => None,
    };
    let product = catalog().by_event_service(service).map(|s| s.code);

    if let Some(refs) = &data.referenced_resources {
        let Value::Object(refs) = refs else {
            return Err(field("data.referencedResources", format!("expected an object, got {}", json_kind(refs))));
        };
        for (ty, ids) in refs {
            let at = format!("data.referencedResources.{}", clip(ty, 64));
            let ids = strings(ids, &at)?;
            match catalog().by_resource_type(ty) {
                Some(spec) => {
                    let Some(region) = &region else {
                        return Err(field("data.acsRegion", "missing (needed to re-read the referenced resources)"));
                    };
                    for (i, rid) in ids.into_iter().enumerate() {
                        event.add(spec.code, region, rid, &format!("{at}[{i}]"))?;
                    }
                }
                None => event.note(format!(
                    "{} {}",
                    clip(ty, 64),
                    ids.iter().take(10).map(|i| clip(i, 64)).collect::<Vec<_>>().join(", ")
                )),
            }
        }
    }
    if let Some(params) = params {
        let instance_type = match params.get("ResourceType") {
            None | Some(Value::Null) => true,
            Some(Value::String(t)) => t.eq_ignore_ascii_case("instance"),
            Some(other) => {
                return Err(field(
                    "data.requestParameters.ResourceType",
                    format!("expected a string, got {}", json_kind(other)),
                ))
            }
        };
        for (key, value) in params {
            let at = format!("data.requestParameters.{}", clip(key, 64));
            // `ResourceId.1`, `ResourceId.2`, ...: ActionTrail's rendering of a repeat list.
            let base =
                key.split_once('.')
                    .map_or(key.as_str(), |(b, n)| if n.bytes().all(|c| c.is_ascii_digit()) { b } else { "" });
            match base {
                "ResourceId" | "InstanceId" => {
                    let ids = strings(value, &at)?;
                    match (product, instance_type || base != "ResourceId", &region) {
                        (Some(p), true, Some(region)) => {
                            for (i, rid) in ids.into_iter().enumerate() {
                                event.add(p, region, rid, &format!("{at}[{i}]"))?;
                            }
                        }
                        (Some(_), true, None) => {
                            return Err(field("data.acsRegion", "missing (needed to re-read the named resources)"))
                        }
                        _ => event.note(format!(
                            "{} {} {}",
                            clip(service, 32),
                            params.get("ResourceType").map(describe_value).unwrap_or_default(),
                            ids.iter().take(10).map(|i| clip(i, 64)).collect::<Vec<_>>().join(", ")
                        )),
                    }
                }
                "ResourceARN" => {
                    for (i, arn) in strings(value, &at)?.into_iter().enumerate() {
                        event.add_arn(arn, &format!("{at}[{i}]"))?;
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Value::String(subject)) = &envelope.subject {
        // The envelope's subject is informative only: one that does not parse is ignored, not an error.
        let _ = event.add_arn(subject, "subject");
    }
    Ok(Trigger::Resources(event))
}

#[cfg(test)]
mod tests {
    use crate::event::parse;
    use crate::event::tests::{resources, round_trip, sans_accounts, target};

    /// Issue 13 item 13: every mark or unmark is a `TagResources`/`UntagResources` call that re-triggered the janitor.
    #[test]
    fn the_janitors_own_tag_changes_name_nothing() {
        let own = r#"{"id":"e-1","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"eventName":"TagResources","acsRegion":"cn-hangzhou","requestParameters":{"ResourceType":"instance","ResourceId.1":"i-1","Tag.1.Key":"janitor:release-after","Tag.1.Value":"2026-11-28T12:00:00Z","Tag.2.Key":"janitor:rule","Tag.3.Key":"janitor:mark"}}}"#;
        let r = resources(&crate::event::parse(own.as_bytes()).unwrap()).clone();
        assert!(r.targets.is_empty(), "{r:?}");
        assert!(r.ignored.iter().any(|n| n.contains("the janitor's own tags only")), "{r:?}");
        let untag = r#"{"id":"e-2","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"eventName":"UntagResources","acsRegion":"cn-hangzhou","requestParameters":{"ResourceType":"instance","ResourceId.1":"i-1","TagKey.1":"janitor:release-after","TagKey.2":"janitor:rule"}}}"#;
        assert!(resources(&crate::event::parse(untag.as_bytes()).unwrap()).targets.is_empty());
        // An owner's tag beside the janitor's is a change to look at.
        let mixed = own.replace("janitor:mark", "expire-at");
        assert_eq!(resources(&crate::event::parse(mixed.as_bytes()).unwrap()).targets.len(), 1);
    }

    #[test]
    fn sample_actiontrail_tag() {
        let t = round_trip(include_str!("../../events/alibaba-actiontrail-tag.json"));
        let r = resources(&t);
        assert_eq!(r.source, "acs.actiontrail");
        assert_eq!(r.event_ids, ["7adc8c1a-645d-4476-bdef-5d6fb57f2f4a"]);
        assert_eq!(t.event_id(), Some("7adc8c1a-645d-4476-bdef-5d6fb57f2f4a"));
        // Named three times (referencedResources, ResourceId.1, subject): one target.
        assert_eq!(
            sans_accounts(&r.targets),
            [target("ecs", "cn-hangzhou", "i-bp1tagged0000000001", &["7adc8c1a-645d-4476-bdef-5d6fb57f2f4a"])]
        );
        assert!(!t.forces_dry_run() && t.regions().is_none() && t.products().is_none());
        assert_eq!(t.describe(), "event (acs.actiontrail, 1 event) naming 1 resource");
    }

    #[test]
    fn other_api_calls_and_other_resources_name_nothing() {
        let call = |name: &str| {
            format!(
                r#"{{"id":"e-1","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{{"eventName":"{name}","acsRegion":"cn-hangzhou","referencedResources":{{"ACS::ECS::Instance":["i-1"],"ACS::ECS::Disk":["d-1"]}}}}}}"#
            )
        };
        let r = resources(&parse(call("DeleteDisk").as_bytes()).unwrap()).clone();
        assert!(r.targets.is_empty() && r.ignored[0].contains("`DeleteDisk` is not a tag change"), "{r:?}");
        let r = resources(&parse(call("UntagResources").as_bytes()).unwrap()).clone();
        assert_eq!(r.targets.len(), 1);
        assert!(r.ignored.iter().any(|i| i.contains("ACS::ECS::Disk d-1")), "{r:?}");
        // Tags on a disk, by ResourceType.
        let disk = r#"{"id":"e-2","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"eventName":"TagResources","acsRegion":"cn-hangzhou","requestParameters":{"ResourceType":"disk","ResourceId.1":"d-1"}}}"#;
        assert!(resources(&parse(disk.as_bytes()).unwrap()).targets.is_empty());
        // The Tag service names resources by ARN; a Redis instance maps to r-kvstore.
        let tag = r#"{"id":"e-3","specversion":"1.0","type":"tag:ActionTrail:ApiCall","data":{"eventName":"TagResources","acsRegion":"cn-shanghai","requestParameters":{"ResourceARN.1":"arn:acs:kvstore:cn-shanghai:123:instance/r-1","ResourceARN.2":"arn:acs:oss:cn-shanghai:123:bucket/b"}}}"#;
        let r = resources(&parse(tag.as_bytes()).unwrap()).clone();
        assert_eq!(sans_accounts(&r.targets), [target("r-kvstore", "cn-shanghai", "r-1", &["e-3"])]);
        assert_eq!(r.targets[0].accounts, ["123"], "the ARN's account is kept");
        assert_eq!(r.ignored.len(), 1);
        // Repeat lists rendered as arrays, and InstanceId.
        let arrays = r#"{"id":"e-4","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"eventName":"AddTags","acsRegion":"cn-hangzhou","requestParameters":{"ResourceId":["i-1","i-2"],"InstanceId":"i-3"}}}"#;
        assert_eq!(resources(&parse(arrays.as_bytes()).unwrap()).targets.len(), 3);
        // The legacy CloudMonitor wrapper of a state change.
        let legacy = r#"{"id":"e-5","specversion":"1.0","type":"ecs:Instance:StateChange","data":{"ver":"1.0","product":"ECS","resourceId":"acs:ecs:cn-hangzhou:1:instance/i-9","regionId":"cn-hangzhou","content":{"resourceId":"i-9","resourceType":"ALIYUN::ECS::Instance","state":"Stopped"}}}"#;
        assert_eq!(
            resources(&parse(legacy.as_bytes()).unwrap()).targets,
            [target("ecs", "cn-hangzhou", "i-9", &["e-5"])]
        );
    }
}

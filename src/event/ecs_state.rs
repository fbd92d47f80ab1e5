//! Instance state-change CloudEvents (`ecs:Instance:StateChange`, reference 4.3): `data.resourceId` (an id or
//! an ARN), or the legacy CloudMonitor wrapper's `data.content.resourceId`. Which product's events these are
//! comes from the catalog ([`ProductSpec::state_change_type`]).
//!
//! [`ProductSpec::state_change_type`]: crate::products::ProductSpec::state_change_type

use serde_json::Value;

use super::raw::{decode, CloudEnvelope, StateData};
use super::{clip, event_id, field, json_kind, object, region_value, EventError, ResourceEvent, Trigger};
use crate::products::ProductSpec;

pub(super) fn state_change(value: &Value, spec: &'static ProductSpec) -> Result<Trigger, EventError> {
    let envelope: CloudEnvelope = decode(value, "")?;
    let id = event_id(envelope.id)?;
    let mut event = ResourceEvent::new("acs.ecs", &id);
    let data = object(envelope.data.as_ref(), "data")?;
    let outer: StateData = decode(data, "data.")?;
    let wrapped = match &outer.content {
        Some(content @ Value::Object(c)) if outer.resource_id.is_none() || c.contains_key("resourceId") => {
            Some(decode::<StateData>(content, "data.content.")?)
        }
        _ => None,
    };
    let (inner, at) = match &wrapped {
        Some(content) => (content, "data.content"),
        None => (&outer, "data"),
    };
    let resource = match inner.resource_id.as_ref().or(outer.resource_id.as_ref()) {
        Some(Value::String(r)) => r,
        Some(other) => {
            return Err(field(format!("{at}.resourceId"), format!("expected a string, got {}", json_kind(other))))
        }
        None => return Err(field(format!("{at}.resourceId"), "missing (a state change names its instance)")),
    };
    if let Some(Value::String(ty)) = &inner.resource_type {
        // `ALIYUN::ECS::Instance` or `ACS::ECS::Instance`, in any case.
        if !spec.is_resource_type(&ty.to_ascii_uppercase()) {
            event.note(format!("{} {}", clip(ty, 64), clip(resource, 64)));
            return Ok(Trigger::Resources(event));
        }
    }
    if resource.contains(':') {
        event.add_arn(resource, &format!("{at}.resourceId"))?;
    } else {
        let region = match (&outer.region_id, &inner.region_id, &envelope.aliyunregionid) {
            (Some(v), _, _) => region_value(v, "data.regionId")?,
            (None, Some(v), _) => region_value(v, &format!("{at}.regionId"))?,
            (None, None, Some(v)) => region_value(v, "aliyunregionid")?,
            (None, None, None) => return Err(field("aliyunregionid", "missing (needed to re-read the instance)")),
        };
        event.add(spec.code, &region, resource, &format!("{at}.resourceId"))?;
    }
    Ok(Trigger::Resources(event))
}

#[cfg(test)]
mod tests {
    use crate::event::tests::{resources, round_trip, target};

    #[test]
    fn sample_ecs_state_change() {
        let t = round_trip(include_str!("../../events/alibaba-ecs-state-change.json"));
        let r = resources(&t);
        assert_eq!(r.source, "acs.ecs");
        assert_eq!(
            r.targets,
            [target("ecs", "cn-hangzhou", "i-bp1stopped000000001", &["c2f8e1a0-6d7e-4f1b-8a3c-5e9d0b1c2d3e"])]
        );
    }
}

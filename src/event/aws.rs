//! AWS EventBridge (reference section 4.4): `Scheduled Event` from `aws.events` (or EventBridge Scheduler's
//! `aws.scheduler`) runs the schedule; `Tag Change
//! on Resource` from `aws.tag` names resources by ARN (Alibaba ARNs are ours; AWS ARNs are noted and ignored).

use serde_json::Value;

use super::raw::{decode, AwsHead, AwsTagChange};
use super::{check_id, check_time, clip, event_id, field, quote, required, strings, EventError, ManualRequest};
use super::{ResourceEvent, Trigger};

/// An event with a `detail-type` key.
pub(super) fn event(value: &Value) -> Result<Trigger, EventError> {
    let head: AwsHead = decode(value, "")?;
    let detail_type = required(head.detail_type, "detail-type")?;
    let source = required(head.source, "source")?;
    match (detail_type.as_str(), source.as_str()) {
        ("Scheduled Event", "aws.events") => scheduled(value, "aws.events"),
        // EventBridge Scheduler (SAM `ScheduleV2`): the same shape, `detail` the string "{}".
        ("Scheduled Event", "aws.scheduler") => scheduled(value, "aws.scheduler"),
        ("Tag Change on Resource", "aws.tag") => tag_change(value),
        _ => Err(EventError::Unknown(format!(
            "AWS event {} from {} is not handled",
            quote(&detail_type),
            quote(&source)
        ))),
    }
}

/// `Scheduled Event`: the envelope is AWS's own type, read with its serde definition.
fn scheduled(value: &Value, source: &str) -> Result<Trigger, EventError> {
    let event: aws_lambda_events::eventbridge::EventBridgeEvent<Value> = serde_path_to_error::deserialize(value)
        .map_err(|e| field(e.path().to_string(), clip(&e.inner().to_string(), 200)))?;
    let id = event.id.ok_or_else(|| field("id", "missing (every Scheduled Event carries one)"))?;
    check_id(&id, "id")?;
    if let Some(t) = &event.time {
        check_time(t, "time")?;
    }
    Ok(Trigger::Scheduled {
        source: source.into(),
        event_id: Some(id),
        time: event.time,
        overrides: ManualRequest::default(),
    })
}

/// `Tag Change on Resource` (reference 4.4): the resources are the ARNs in `resources`. `detail.tags` is not
/// used: the fresh read is the truth.
fn tag_change(value: &Value) -> Result<Trigger, EventError> {
    let raw: AwsTagChange = decode(value, "")?;
    let id = event_id(raw.id)?;
    let mut event = ResourceEvent::new("aws.tag", &id);
    let Some(resources) = &raw.resources else {
        return Err(field("resources", "missing (a tag change names the resource it changed)"));
    };
    for (i, arn) in strings(resources, "resources")?.into_iter().enumerate() {
        event.add_arn(arn, &format!("resources[{i}]"))?;
    }
    Ok(Trigger::Resources(event))
}

#[cfg(test)]
mod tests {
    use crate::event::tests::{resources, round_trip, sans_accounts, target};
    use crate::event::Trigger;

    /// Issue 13 item 15c: SAM's recommended `ScheduleV2` delivers `source: aws.scheduler`, `detail: "{}"`.
    #[test]
    fn sample_aws_scheduler() {
        let t = round_trip(include_str!("../../events/aws-scheduler.json"));
        let Trigger::Scheduled { source, event_id, .. } = &t else { panic!("{t:?}") };
        assert_eq!(
            (source.as_str(), event_id.as_deref()),
            ("aws.scheduler", Some("4f1a3c2e-7b0d-4f1e-9a51-2f3d6c1b8e07"))
        );
        assert_eq!(t.describe(), "scheduled (aws.scheduler)");
    }

    #[test]
    fn sample_aws_scheduled() {
        let t = round_trip(include_str!("../../events/aws-scheduled.json"));
        let Trigger::Scheduled { source, event_id, time, overrides } = &t else { panic!("{t:?}") };
        assert_eq!(source, "aws.events");
        assert_eq!(event_id.as_deref(), Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"));
        assert_eq!(time.map(|t| t.to_rfc3339()).as_deref(), Some("2015-10-08T16:53:06+00:00"));
        assert!(overrides.is_empty());
        assert!(!t.forces_dry_run());
        assert_eq!(t.describe(), "scheduled (aws.events)");
    }

    #[test]
    fn sample_aws_tag_change_with_an_alibaba_arn() {
        let t = round_trip(include_str!("../../events/aws-tag-change.json"));
        let r = resources(&t);
        assert_eq!(r.source, "aws.tag");
        assert_eq!(
            sans_accounts(&r.targets),
            [target("ecs", "cn-hangzhou", "i-bp1tagged0000000001", &["bddcf1d6-0251-35a1-aab0-adc1fb47c11c"])]
        );
        assert!(r.ignored.is_empty());
    }
}

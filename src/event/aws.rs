//! AWS EventBridge (reference section 4.4): `Scheduled Event` from `aws.events` (or EventBridge Scheduler's
//! `aws.scheduler`) runs the schedule. Nothing else from AWS is accepted: `Tag Change on Resource` (`aws.tag`)
//! is refused by name, because `aws.` sources are AWS's own (reference, corrections: `NotAuthorizedForSourceException`
//! for anyone else), so such an event only ever names AWS resources.

use serde_json::Value;

use super::raw::{decode, AwsHead};
use super::{check_id, check_time, clip, field, quote, required, EventError, ManualRequest, Trigger};

/// An event with a `detail-type` key.
pub(super) fn event(value: &Value) -> Result<Trigger, EventError> {
    let head: AwsHead = decode(value, "")?;
    let detail_type = required(head.detail_type, "detail-type")?;
    let source = required(head.source, "source")?;
    match (detail_type.as_str(), source.as_str()) {
        ("Scheduled Event", "aws.events") => scheduled(value, "aws.events"),
        // EventBridge Scheduler (SAM `ScheduleV2`): the same shape, `detail` the string "{}".
        ("Scheduled Event", "aws.scheduler") => scheduled(value, "aws.scheduler"),
        ("Tag Change on Resource", "aws.tag") => Err(EventError::Unknown(
            "AWS event `Tag Change on Resource` from `aws.tag` is not handled: `aws.` sources are reserved to AWS, so \
             it names AWS resources only; Alibaba Cloud tag changes reach the janitor as Alibaba EventBridge events on \
             Function Compute (docs/deploy.md)"
                .into(),
        )),
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

#[cfg(test)]
mod tests {
    use crate::event::tests::round_trip;
    use crate::event::{parse, EventError, Trigger};

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

    /// Issue 13 item 12: `aws.` sources are AWS's own, so an `aws.tag` event can only name AWS resources; one
    /// carrying an Alibaba ARN was accepted as a tag change. It is refused by name, and nothing runs (the AWS-shaped
    /// fixture: `hostile_aws_tag_change` in the module tests).
    #[test]
    fn an_aws_tag_change_is_refused_by_name() {
        let body = br#"{"version":"0","id":"x","detail-type":"Tag Change on Resource","source":"aws.tag","resources":["acs:ecs:cn-hangzhou:1:instance/i-1"]}"#;
        let Err(EventError::Unknown(message)) = parse(body) else { panic!("accepted") };
        assert!(message.contains("`Tag Change on Resource` from `aws.tag` is not handled"), "{message}");
        assert!(message.contains("reserved to AWS"), "{message}");
    }
}

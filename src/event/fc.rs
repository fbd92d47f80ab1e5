//! Function Compute timer (reference section 4.1). Its `payload` may hold a manual request as a JSON object
//! string, carried in [`Trigger::Scheduled::overrides`](super::Trigger::Scheduled).

use serde_json::Value;

use super::raw::{decode, FcTimer};
use super::{
    check_id, check_time, field, json_kind, manual, quote, required, text, EventError, ManualRequest, Trigger,
};

/// An event with a `triggerTime` or `triggerName` key. Keys other than the three FC sends are ignored, so a
/// field FC adds later cannot stop the schedule.
pub(super) fn timer(value: &Value) -> Result<Trigger, EventError> {
    let raw: FcTimer = decode(value, "")?;
    let name = required(raw.trigger_name, "triggerName")?;
    check_id(&name, "triggerName")?;
    let time_str = text(raw.trigger_time, "triggerTime")?;
    check_id(&time_str, "triggerTime")?;
    let time = crate::inventory::parse_api_time(&time_str)
        .map_err(|_| field("triggerTime", format!("{} is not an RFC 3339 time", quote(&time_str))))?;
    check_time(&time, "triggerTime")?;
    let overrides = match &raw.payload {
        None | Some(Value::Null) => ManualRequest::default(),
        Some(Value::String(payload)) => payload_request(payload)?,
        Some(other) => return Err(field("payload", format!("expected a string, got {}", json_kind(other)))),
    };
    Ok(Trigger::Scheduled {
        source: "fc.timer".into(),
        event_id: Some(format!("{name}@{time_str}")),
        time: Some(time),
        overrides,
    })
}

/// A timer payload starting with `{` must be a valid manual request: a typo in `{"dry_run": true}` must stop
/// the run rather than let it apply. Any other text (a label, an empty string) is ignored.
fn payload_request(payload: &str) -> Result<ManualRequest, EventError> {
    let trimmed = payload.trim();
    if !trimmed.starts_with('{') {
        if !trimmed.is_empty() {
            tracing::info!(payload_bytes = payload.len(), "FC timer payload is not a JSON object: ignored");
        }
        return Ok(ManualRequest::default());
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(value @ Value::Object(_)) => manual::request(&value, manual::Place::TimerPayload),
        Ok(other) => Err(field("payload", format!("starts with `{{` but holds {}", json_kind(&other)))),
        Err(e) => Err(field("payload", format!("starts with `{{` but is not valid JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::event::tests::{manual_req, round_trip};
    use crate::event::{parse, ManualRequest, Trigger};

    #[test]
    fn sample_fc_timer() {
        let t = round_trip(include_str!("../../events/fc-timer.json"));
        let Trigger::Scheduled { source, event_id, time, overrides } = &t else { panic!("{t:?}") };
        assert_eq!(source, "fc.timer");
        assert_eq!(event_id.as_deref(), Some("janitor-daily@2026-03-02T19:00:00Z"));
        assert_eq!(time.map(|t| t.to_rfc3339()).as_deref(), Some("2026-03-02T19:00:00+00:00"));
        assert!(overrides.is_empty(), "a plain-text payload is ignored");
    }

    #[test]
    fn sample_fc_timer_dry_run_payload() {
        let t = round_trip(include_str!("../../events/fc-timer-dry-run-payload.json"));
        let Trigger::Scheduled { source, event_id, overrides, .. } = &t else { panic!("{t:?}") };
        assert_eq!(source, "fc.timer");
        assert_eq!(event_id.as_deref(), Some("janitor-hourly@2026-03-02T19:00:00Z"));
        assert_eq!(*overrides, manual_req(Some(true), Some(&["cn-hangzhou"]), None));
        assert!(t.forces_dry_run());
        assert_eq!(t.regions(), Some(&["cn-hangzhou".to_string()][..]));
        assert_eq!(t.describe(), "scheduled (fc.timer) with payload overrides");
    }

    #[test]
    fn timer_with_empty_or_absent_payload() {
        for body in [
            r#"{"triggerTime":"2022-07-29T10:02:58Z","triggerName":"TestTimer","payload":""}"#,
            r#"{"triggerTime":"2022-07-29T10:02:58Z","triggerName":"TestTimer"}"#,
            r#"{"triggerTime":"2022-07-29T10:02:58Z","triggerName":"TestTimer","payload":"  "}"#,
            r#"{"triggerTime":"2022-07-29T10:02:58Z","triggerName":"TestTimer","payload":"[1,2]","newField":1}"#,
        ] {
            let t = parse(body.as_bytes()).unwrap();
            assert_eq!(t.request(), &ManualRequest::default(), "{body}");
            assert_eq!(t.event_id(), Some("TestTimer@2022-07-29T10:02:58Z"));
        }
    }
}

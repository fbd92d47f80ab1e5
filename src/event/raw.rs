//! Each accepted envelope as written: serde structs decoded with `serde_path_to_error`, so an error names the
//! field path (`data.eventName`, `payload.regions`). The source modules turn them into a [`Trigger`].
//!
//! Shapes that are ours (the manual request, also inside the FC timer `payload`) refuse unknown keys. The
//! clouds' envelopes (AWS EventBridge, Alibaba CloudEvents, the FC timer) are tolerant: a field the cloud adds
//! later must not stop a run. Fields another field decides about (a region taken from the first of three
//! places, ActionTrail's request parameters, a state change's `content` wrapper) stay [`Value`]s and are read
//! by the source module, only where it looks, as before.
//!
//! Every optional field uses [`present`], so `null` is a type error ("expected a string, got null") rather
//! than absence, except where the envelope's own code treats `null` as absent.
//!
//! [`Trigger`]: super::Trigger

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::{clip, json_kind, EventError};

/// Message of a key a struct with `deny_unknown_fields` refused; the caller words it for its shape.
pub(super) const UNKNOWN_KEY: &str = "unknown key";

/// Decodes `value` into `T`; an error names the field as `prefix` + the path (`prefix` is `""`, `data.`, ...).
pub(super) fn decode<'a, T: Deserialize<'a>>(value: &'a Value, prefix: &str) -> Result<T, EventError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = prefix.to_string();
        for segment in e.path().iter() {
            match segment {
                Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                Segment::Map { key: name } | Segment::Enum { variant: name } => {
                    if !path.is_empty() && !path.ends_with('.') {
                        path.push('.');
                    }
                    path.push_str(&clip(name, 64));
                }
                Segment::Unknown => path.push('?'),
            }
        }
        let message = e.into_inner().to_string();
        // serde words a refused key `unknown field `<key>`, expected one of …`; the path already ends with it.
        if message.starts_with("unknown field `") {
            return EventError::Field { field: path, message: UNKNOWN_KEY.into() };
        }
        EventError::Field { field: path.trim_end_matches('.').to_string(), message }
    })
}

/// A key that is written carries a value of its type: `null` is passed to `T` (which refuses it), not read as
/// an absent key.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn wrong<E: de::Error>(expected: &str, got: &Value) -> E {
    E::custom(format!("expected {expected}, got {}", json_kind(got)))
}

/// A JSON string.
#[derive(Debug)]
pub(super) struct Str(pub String);

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Str(s)),
            other => Err(wrong("a string", &other)),
        }
    }
}

/// A JSON boolean.
#[derive(Debug)]
pub(super) struct Bool(pub bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Bool(b)),
            other => Err(wrong("a boolean", &other)),
        }
    }
}

/// The keys of an AWS EventBridge event that say what it is (AWS's envelope: tolerant).
#[derive(Debug, Deserialize)]
pub(super) struct AwsHead {
    #[serde(rename = "detail-type", default, deserialize_with = "present")]
    pub detail_type: Option<Str>,
    #[serde(default, deserialize_with = "present")]
    pub source: Option<Str>,
}

/// The key of an Alibaba EventBridge CloudEvent that says what it is (Alibaba's envelope: tolerant).
#[derive(Debug, Deserialize)]
pub(super) struct CloudHead {
    #[serde(rename = "type", default, deserialize_with = "present")]
    pub ty: Option<Str>,
}

/// A CloudEvent that names resources: ActionTrail API calls and state changes (Alibaba's envelope: tolerant).
#[derive(Debug, Deserialize)]
pub(super) struct CloudEnvelope {
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Str>,
    /// An object; read after `id`.
    #[serde(default, deserialize_with = "present")]
    pub data: Option<Value>,
    /// The resource's ARN; informative only.
    #[serde(default, deserialize_with = "present")]
    pub subject: Option<Value>,
    /// The last place a region is taken from.
    #[serde(default, deserialize_with = "present")]
    pub aliyunregionid: Option<Value>,
}

/// `data` of `<product>:ActionTrail:ApiCall` (ActionTrail's record: tolerant). Only `eventName` is read for
/// every call; the rest only for a tag change.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TrailData {
    #[serde(default, deserialize_with = "present")]
    pub event_name: Option<Str>,
    #[serde(default, deserialize_with = "present")]
    pub acs_region: Option<Value>,
    /// An object; `null` means none.
    #[serde(default, deserialize_with = "present")]
    pub request_parameters: Option<Value>,
    /// Resource type (`ACS::ECS::Instance`) → an id or a list of ids.
    #[serde(default, deserialize_with = "present")]
    pub referenced_resources: Option<Value>,
}

/// `data` of `ecs:Instance:StateChange`, or of its legacy CloudMonitor wrapper whose `content` holds the same
/// keys (EventBridge's record: tolerant).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StateData {
    #[serde(default, deserialize_with = "present")]
    pub content: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub resource_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub region_id: Option<Value>,
    /// Read only when a string (`ACS::ECS::Instance`); anything else is not a reason to refuse the event.
    #[serde(default, deserialize_with = "present")]
    pub resource_type: Option<Value>,
}

/// A Function Compute timer (FC's envelope: tolerant, so a field FC adds later cannot stop the schedule).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FcTimer {
    #[serde(default, deserialize_with = "present")]
    pub trigger_name: Option<Str>,
    /// A string; read after `triggerName` (a value is checked in its turn, so the first error is reported).
    #[serde(default, deserialize_with = "present")]
    pub trigger_time: Option<Value>,
    /// A string; `null` means none.
    #[serde(default, deserialize_with = "present")]
    pub payload: Option<Value>,
}

/// A manual request, at the top level or inside a timer payload (our shape: every key known).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Manual {
    #[serde(default, deserialize_with = "present")]
    pub dry_run: Option<Bool>,
    /// Region ids; checked one by one by the caller, which names each entry.
    #[serde(default, deserialize_with = "present")]
    pub regions: Option<Value>,
    /// Product codes; checked like `regions`.
    #[serde(default, deserialize_with = "present")]
    pub products: Option<Value>,
    /// A string; read after the other keys, as a timer payload refuses it whatever it holds.
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Value>,
    /// Another name of `id`.
    #[serde(default, deserialize_with = "present")]
    pub run_id: Option<Value>,
}

//! What triggered a run. Every accepted event shape is parsed into a [`Trigger`]; anything else is an
//! error naming what was wrong, and nothing runs.
//!
//! Accepted shapes (reference section 4), told apart by their keys in this fixed order:
//! 1. a `detail-type` key: an AWS EventBridge event. Only `Scheduled Event` from `aws.events` runs.
//! 2. a `specversion` key: an Alibaba EventBridge CloudEvent. None runs yet (tag-change shapes are reserved).
//! 3. a `triggerTime` or `triggerName` key: an Alibaba Function Compute timer. Its `payload` may hold a
//!    manual request as a JSON object string, carried in [`Trigger::Scheduled::overrides`].
//! 4. a `source` or `type` key: some other event envelope, rejected by name.
//! 5. anything else must be a manual invocation: `{"dry_run": true, "regions": [...], "products": [...]}`
//!    with every key known (`{}` is a plain run).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Largest event body accepted. Every accepted shape is well under 1 KiB; AWS caps synchronous Lambda
/// payloads at 6 MB, so this only refuses to read megabytes of something that is not ours.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Most entries in a manual `regions` or `products` list.
pub const MAX_LIST_ENTRIES: usize = 100;
/// Longest region id or product code, in bytes.
pub const MAX_ENTRY_LEN: usize = 64;
/// Longest invocation id (`id`, `run_id`, an AWS event id, an FC trigger name), in bytes.
pub const MAX_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A scheduled run: AWS EventBridge `Scheduled Event`, Alibaba FC timer, or the CLI without `--event`.
    Scheduled {
        source: String,
        event_id: Option<String>,
        time: Option<DateTime<Utc>>,
        /// A manual request carried by the FC timer's `payload` (JSON object string); empty otherwise.
        /// Same rules as [`Trigger::Manual`]: it may narrow or force a dry run, never widen or apply.
        overrides: ManualRequest,
    },
    /// A manual invocation (`{"dry_run": true, "regions": [...], "products": [...]}`): it may narrow the
    /// policy's scope or force a dry run, never widen the scope or turn apply on.
    Manual(ManualRequest),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManualRequest {
    /// Carried as given: `Some(false)` never turns apply on (the job decides the mode).
    pub dry_run: Option<bool>,
    /// Region ids, validated and de-duplicated, never empty when `Some`.
    pub regions: Option<Vec<String>>,
    /// Product codes, validated and de-duplicated, never empty when `Some`.
    pub products: Option<Vec<String>>,
    /// The caller's id for this invocation (`id` or `run_id`), so a retried invocation derives the same
    /// idempotency tokens. Never set from a timer payload (the timer's name and time identify each run).
    pub id: Option<String>,
}

impl ManualRequest {
    /// True when the request changes nothing (`{}` or an absent/plain-text timer payload).
    pub fn is_empty(&self) -> bool {
        *self == ManualRequest::default()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    #[error("event field `{field}`: {message}")]
    Field { field: String, message: String },
    #[error("unrecognised event shape: {0}")]
    Unknown(String),
    #[error("event body is empty")]
    Empty,
    #[error("event body is {bytes} bytes; the limit is {limit}")]
    TooLarge { bytes: usize, limit: usize },
}

impl Trigger {
    /// The CLI's trigger when no `--event` is given.
    pub fn cli() -> Self {
        Trigger::Scheduled { source: "cli".into(), event_id: None, time: None, overrides: ManualRequest::default() }
    }

    /// An id that identifies this delivery, used to derive stable idempotency tokens.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Trigger::Scheduled { event_id, .. } => event_id.as_deref(),
            Trigger::Manual(m) => m.id.as_deref(),
        }
    }

    /// The narrowing/dry-run request this trigger carries (empty for a plain scheduled run).
    pub fn request(&self) -> &ManualRequest {
        match self {
            Trigger::Scheduled { overrides, .. } => overrides,
            Trigger::Manual(m) => m,
        }
    }

    /// True when the trigger demands a dry run whatever the policy says.
    pub fn forces_dry_run(&self) -> bool {
        self.request().dry_run == Some(true)
    }

    pub fn regions(&self) -> Option<&[String]> {
        self.request().regions.as_deref()
    }

    pub fn products(&self) -> Option<&[String]> {
        self.request().products.as_deref()
    }

    pub fn describe(&self) -> String {
        match self {
            Trigger::Scheduled { source, overrides, .. } if !overrides.is_empty() => format!("scheduled ({source}) with payload overrides"),
            Trigger::Scheduled { source, .. } => format!("scheduled ({source})"),
            Trigger::Manual(_) => "manual".into(),
        }
    }
}

/// Parses an event body (Lambda payload, FC `/invoke` body, or a CLI `--event` file). See the module
/// documentation for the accepted shapes and the order they are told apart in.
pub fn parse(body: &[u8]) -> Result<Trigger, EventError> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge { bytes: body.len(), limit: MAX_EVENT_BYTES });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EventError::Empty);
    }
    // serde_json's syntax errors give a position, never the input; nesting deeper than 128 is an error.
    let value: Value = serde_json::from_slice(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => return Err(EventError::Unknown("expected a JSON object, got an array (EventBridge batches are not supported)".into())),
        other => return Err(EventError::Unknown(format!("expected a JSON object, got {}", json_kind(&other)))),
    };
    if obj.contains_key("detail-type") {
        aws_event(obj)
    } else if obj.contains_key("specversion") {
        cloud_event(&obj)
    } else if obj.contains_key("triggerTime") || obj.contains_key("triggerName") {
        fc_timer(&obj)
    } else if obj.contains_key("source") || obj.contains_key("type") {
        let name = obj.get("type").or_else(|| obj.get("source")).map(describe_value).unwrap_or_default();
        Err(EventError::Unknown(format!("event {name} is neither a schedule, a timer nor a manual invocation")))
    } else {
        manual(&obj, "", true).map(Trigger::Manual)
    }
}

/// AWS EventBridge (reference section 4.4). `Tag Change on Resource` is reserved for tag-triggered runs.
fn aws_event(obj: Map<String, Value>) -> Result<Trigger, EventError> {
    let detail_type = required_str(&obj, "detail-type")?;
    let source = required_str(&obj, "source")?;
    match (detail_type, source) {
        ("Scheduled Event", "aws.events") => {}
        ("Tag Change on Resource", "aws.tag") => {
            return Err(EventError::Unknown("AWS `Tag Change on Resource` events are reserved for tag-triggered runs, not handled yet".into()))
        }
        _ => {
            return Err(EventError::Unknown(format!("AWS event {} from {} is not handled", quote(detail_type), quote(source))));
        }
    }
    let event: aws_lambda_events::eventbridge::EventBridgeEvent<Value> =
        serde_path_to_error::deserialize(Value::Object(obj)).map_err(|e| field(e.path().to_string(), clip(&e.inner().to_string(), 200)))?;
    let id = event.id.ok_or_else(|| field("id", "missing (every Scheduled Event carries one)"))?;
    check_id(&id, "id")?;
    if let Some(t) = &event.time {
        check_time(t, "time")?;
    }
    Ok(Trigger::Scheduled { source: "aws.events".into(), event_id: Some(id), time: event.time, overrides: ManualRequest::default() })
}

/// Alibaba EventBridge CloudEvents (reference section 4.3): ActionTrail API calls and ECS state changes are
/// reserved for tag-triggered runs; every other type is rejected by name.
fn cloud_event(obj: &Map<String, Value>) -> Result<Trigger, EventError> {
    let ty = required_str(obj, "type")?;
    if ty.ends_with(":ActionTrail:ApiCall") || ty == "ecs:Instance:StateChange" {
        return Err(EventError::Unknown(format!("CloudEvent {} is reserved for tag-triggered runs, not handled yet", quote(ty))));
    }
    Err(EventError::Unknown(format!("CloudEvent {} is not handled", quote(ty))))
}

/// Function Compute timer (reference section 4.1). Keys other than the three below are ignored, so a
/// field FC adds later cannot stop the schedule.
fn fc_timer(obj: &Map<String, Value>) -> Result<Trigger, EventError> {
    let name = required_str(obj, "triggerName")?;
    check_id(name, "triggerName")?;
    let time_str = required_str(obj, "triggerTime")?;
    check_id(time_str, "triggerTime")?;
    let time = crate::inventory::parse_api_time(time_str).map_err(|_| field("triggerTime", format!("{} is not an RFC 3339 time", quote(time_str))))?;
    check_time(&time, "triggerTime")?;
    let overrides = match obj.get("payload") {
        None | Some(Value::Null) => ManualRequest::default(),
        Some(Value::String(payload)) => timer_payload(payload)?,
        Some(other) => return Err(field("payload", format!("expected a string, got {}", json_kind(other)))),
    };
    Ok(Trigger::Scheduled { source: "fc.timer".into(), event_id: Some(format!("{name}@{time_str}")), time: Some(time), overrides })
}

/// A timer payload starting with `{` must be a valid manual request: a typo in `{"dry_run": true}` must stop
/// the run rather than let it apply. Any other text (a label, an empty string) is ignored.
fn timer_payload(payload: &str) -> Result<ManualRequest, EventError> {
    let trimmed = payload.trim();
    if !trimmed.starts_with('{') {
        if !trimmed.is_empty() {
            tracing::info!(payload_bytes = payload.len(), "FC timer payload is not a JSON object: ignored");
        }
        return Ok(ManualRequest::default());
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(obj)) => manual(&obj, "payload.", false),
        Ok(other) => Err(field("payload", format!("starts with `{{` but holds {}", json_kind(&other)))),
        Err(e) => Err(field("payload", format!("starts with `{{` but is not valid JSON: {e}"))),
    }
}

const MANUAL_KEYS: &str = "`dry_run`, `regions`, `products`, `id`/`run_id`";

/// A manual request: every key known, every value checked. `prefix` names where it sits (`payload.`).
fn manual(obj: &Map<String, Value>, prefix: &str, allow_id: bool) -> Result<ManualRequest, EventError> {
    let mut req = ManualRequest::default();
    for (key, value) in obj {
        let name = format!("{prefix}{}", clip(key, 64));
        match key.as_str() {
            "dry_run" => match value {
                Value::Bool(b) => req.dry_run = Some(*b),
                other => return Err(field(name, format!("expected a boolean, got {}", json_kind(other)))),
            },
            "regions" => req.regions = Some(list(value, &name, is_region, "region id (like `cn-hangzhou`)")?),
            "products" => req.products = Some(list(value, &name, is_product_code, "product code (like `ecs`)")?),
            "id" | "run_id" if !allow_id => {
                return Err(field(name, "not accepted in a timer payload: the timer's name and time identify each run"));
            }
            "id" | "run_id" => {
                if req.id.is_some() {
                    return Err(field(name, "give only one of `id` and `run_id`"));
                }
                let Value::String(id) = value else {
                    return Err(field(name, format!("expected a string, got {}", json_kind(value))));
                };
                check_id(id, &name)?;
                req.id = Some(id.clone());
            }
            _ => {
                let what = if prefix.is_empty() { "a manual invocation" } else { "a timer payload" };
                return Err(field(name, format!("unknown key: {what} accepts only {MANUAL_KEYS} (and this is no known event shape)")));
            }
        }
    }
    Ok(req)
}

/// A non-empty, bounded list of strings that each pass `valid`, de-duplicated in order.
fn list(value: &Value, name: &str, valid: fn(&str) -> bool, what: &str) -> Result<Vec<String>, EventError> {
    let Value::Array(items) = value else {
        return Err(field(name, format!("expected an array of strings, got {}", json_kind(value))));
    };
    if items.is_empty() {
        return Err(field(name, "must not be empty; leave it out to keep the policy's scope"));
    }
    if items.len() > MAX_LIST_ENTRIES {
        return Err(field(name, format!("has {} entries; the limit is {MAX_LIST_ENTRIES}", items.len())));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(s) = item else {
            return Err(field(format!("{name}[{i}]"), format!("expected a string, got {}", json_kind(item))));
        };
        if s.len() > MAX_ENTRY_LEN {
            return Err(field(format!("{name}[{i}]"), format!("is {} bytes long; the limit is {MAX_ENTRY_LEN}", s.len())));
        }
        if !valid(s) {
            return Err(field(format!("{name}[{i}]"), format!("{} is not a {what}", quote(s))));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

/// `^[a-z]{2,}(-[a-z0-9]+)+$`: `cn-hangzhou`, `ap-southeast-1`, `cn-shanghai-finance-1`.
pub fn is_region(s: &str) -> bool {
    let mut parts = s.split('-');
    let first_ok = parts.next().is_some_and(|p| p.len() >= 2 && p.bytes().all(|b| b.is_ascii_lowercase()));
    let mut rest = 0;
    let rest_ok = parts.all(|p| {
        rest += 1;
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    first_ok && rest_ok && rest > 0
}

/// `^[a-z][a-z0-9-]{1,30}$`: `ecs`, `r-kvstore`, `alikafka`.
pub fn is_product_code(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=31).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..].iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Ids end up in idempotency tokens and logs: bounded, printable ASCII without spaces or quotes.
fn check_id(id: &str, name: &str) -> Result<(), EventError> {
    if id.is_empty() {
        return Err(field(name, "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(field(name, format!("is {} bytes long; the limit is {MAX_ID_LEN}", id.len())));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:@/+=-".contains(&b)) {
        return Err(field(name, format!("{} may hold only letters, digits and `._:@/+=-`", quote(id))));
    }
    Ok(())
}

fn required_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, EventError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        None => Err(field(key, "missing")),
        Some(other) => Err(field(key, format!("expected a string, got {}", json_kind(other)))),
    }
}

/// A schedule fires in this century: a trigger time of year 0 or 9999 is a corrupt or forged event.
fn check_time(t: &DateTime<Utc>, name: &str) -> Result<(), EventError> {
    use chrono::Datelike;
    if (2000..2100).contains(&t.year()) {
        Ok(())
    } else {
        Err(field(name, format!("{} is not a plausible trigger time (expected a time in 2000-2099)", t.to_rfc3339())))
    }
}

fn field(name: impl Into<String>, message: impl Into<String>) -> EventError {
    EventError::Field { field: name.into(), message: message.into() }
}

/// How a JSON value is named in error messages ("got an array").
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        other => json_kind(other).to_string(),
    }
}

/// Outside text in an error: at most `max` characters, control characters escaped.
fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn quote(s: &str) -> String {
    format!("`{}`", clip(s, 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &[u8]) -> String {
        match parse(body) {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn manual_req(dry_run: Option<bool>, regions: Option<&[&str]>, products: Option<&[&str]>) -> ManualRequest {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ManualRequest { dry_run, regions: regions.map(owned), products: products.map(owned), id: None }
    }

    /// Parses a sample, then the same JSON re-serialized compactly: formatting never changes the trigger.
    fn round_trip(sample: &str) -> Trigger {
        let first = parse(sample.as_bytes()).unwrap_or_else(|e| panic!("sample rejected: {e}"));
        let value: Value = serde_json::from_str(sample).expect("sample is JSON");
        let again = parse(serde_json::to_string(&value).expect("serializes").as_bytes()).expect("re-serialized sample parses");
        assert_eq!(first, again);
        first
    }

    // ---- accepted samples (events/) ----

    #[test]
    fn sample_aws_scheduled() {
        let t = round_trip(include_str!("../events/aws-scheduled.json"));
        let Trigger::Scheduled { source, event_id, time, overrides } = &t else { panic!("{t:?}") };
        assert_eq!(source, "aws.events");
        assert_eq!(event_id.as_deref(), Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"));
        assert_eq!(time.map(|t| t.to_rfc3339()).as_deref(), Some("2015-10-08T16:53:06+00:00"));
        assert!(overrides.is_empty());
        assert!(!t.forces_dry_run());
        assert_eq!(t.describe(), "scheduled (aws.events)");
    }

    #[test]
    fn sample_fc_timer() {
        let t = round_trip(include_str!("../events/fc-timer.json"));
        let Trigger::Scheduled { source, event_id, time, overrides } = &t else { panic!("{t:?}") };
        assert_eq!(source, "fc.timer");
        assert_eq!(event_id.as_deref(), Some("janitor-daily@2026-03-02T19:00:00Z"));
        assert_eq!(time.map(|t| t.to_rfc3339()).as_deref(), Some("2026-03-02T19:00:00+00:00"));
        assert!(overrides.is_empty(), "a plain-text payload is ignored");
    }

    #[test]
    fn sample_fc_timer_dry_run_payload() {
        let t = round_trip(include_str!("../events/fc-timer-dry-run-payload.json"));
        let Trigger::Scheduled { source, event_id, overrides, .. } = &t else { panic!("{t:?}") };
        assert_eq!(source, "fc.timer");
        assert_eq!(event_id.as_deref(), Some("janitor-hourly@2026-03-02T19:00:00Z"));
        assert_eq!(*overrides, manual_req(Some(true), Some(&["cn-hangzhou"]), None));
        assert!(t.forces_dry_run());
        assert_eq!(t.regions(), Some(&["cn-hangzhou".to_string()][..]));
        assert_eq!(t.describe(), "scheduled (fc.timer) with payload overrides");
    }

    #[test]
    fn sample_manual_dry_run() {
        let t = round_trip(include_str!("../events/manual-dry-run.json"));
        assert_eq!(t, Trigger::Manual(manual_req(Some(true), None, None)));
        assert!(t.forces_dry_run());
        assert_eq!(t.event_id(), None);
    }

    #[test]
    fn sample_manual_narrow() {
        let t = round_trip(include_str!("../events/manual-narrow.json"));
        let mut want = manual_req(Some(false), Some(&["cn-hangzhou", "ap-southeast-1"]), Some(&["ecs", "r-kvstore"]));
        want.id = Some("ops-2026-03-02-1".into());
        assert_eq!(t, Trigger::Manual(want));
        assert!(!t.forces_dry_run(), "dry_run false is carried, never turns apply on by itself");
        assert_eq!(t.event_id(), Some("ops-2026-03-02-1"));
        assert_eq!(t.products().map(<[String]>::len), Some(2));
    }

    #[test]
    fn empty_object_is_a_plain_manual_run() {
        assert_eq!(parse(b"{}").unwrap(), Trigger::Manual(ManualRequest::default()));
        assert_eq!(parse(b" \n{ }\n").unwrap(), Trigger::Manual(ManualRequest::default()));
    }

    #[test]
    fn run_id_is_an_alias_of_id_and_duplicates_collapse() {
        let t = parse(br#"{"run_id":"r-1","regions":["cn-hangzhou","cn-hangzhou"]}"#).unwrap();
        assert_eq!(t.event_id(), Some("r-1"));
        assert_eq!(t.regions().map(<[String]>::len), Some(1));
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

    #[test]
    fn cli_trigger_is_plain() {
        assert_eq!(Trigger::cli().describe(), "scheduled (cli)");
        assert!(Trigger::cli().request().is_empty());
    }

    #[test]
    fn region_and_product_patterns() {
        for ok in ["cn-hangzhou", "ap-southeast-1", "cn-shanghai-finance-1", "us-east-1", "eu-central-1"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["", "cn", "c-hangzhou", "cn-", "-cn-hangzhou", "cn--hz", "CN-hangzhou", "cn-hang zhou", "cn-hangzhou\n", "1n-hz", "cn_hz"] {
            assert!(!is_region(bad), "{bad:?}");
        }
        for ok in ["ecs", "r-kvstore", "alikafka", "kms", "a1"] {
            assert!(is_product_code(ok), "{ok}");
        }
        for bad in ["", "e", "ECS", "1ecs", "-ecs", "ecs ", "e_cs", "a-very-long-product-code-that-is-too-long"] {
            assert!(!is_product_code(bad), "{bad:?}");
        }
    }

    // ---- hostile and malformed samples (tests/fixtures/events/) ----

    macro_rules! rejects {
        ($name:ident, $file:literal, $($want:literal),+) => {
            #[test]
            fn $name() {
                let e = err(include_bytes!(concat!("../tests/fixtures/events/", $file)));
                $(assert!(e.contains($want), "error {e:?} should contain {:?}", $want);)+
            }
        };
    }

    rejects!(hostile_dry_run_string, "dry-run-string.json", "event field `dry_run`: expected a boolean, got a string");
    rejects!(hostile_dry_run_null, "dry-run-null.json", "event field `dry_run`: expected a boolean, got null");
    rejects!(hostile_regions_string, "regions-string.json", "event field `regions`: expected an array of strings, got a string");
    rejects!(hostile_regions_nested, "regions-nested.json", "event field `regions[0]`: expected a string, got an array");
    rejects!(hostile_regions_empty, "regions-empty.json", "event field `regions`: must not be empty");
    rejects!(hostile_region_injection, "region-injection.json", "event field `regions[1]`", "is not a region id");
    rejects!(hostile_region_newline, "region-newline.json", "event field `regions[0]`", "\\n");
    rejects!(hostile_product_uppercase, "product-uppercase.json", "event field `products[0]`: `ECS` is not a product code");
    rejects!(hostile_products_number, "products-number.json", "event field `products[0]`: expected a string, got a number");
    rejects!(hostile_unknown_key, "unknown-key-apply.json", "event field `apply`: unknown key");
    rejects!(hostile_both_ids, "both-ids.json", "give only one of `id` and `run_id`");
    rejects!(hostile_id_injection, "id-injection.json", "event field `id`", "may hold only");
    rejects!(hostile_null_body, "null.json", "expected a JSON object, got null");
    rejects!(hostile_array_body, "array.json", "expected a JSON object, got an array");
    rejects!(hostile_string_body, "string.json", "expected a JSON object, got a string");
    rejects!(hostile_number_body, "number.json", "expected a JSON object, got a number");
    rejects!(hostile_trailing_garbage, "trailing-garbage.json", "not valid JSON");
    rejects!(hostile_truncated, "truncated.json", "not valid JSON");
    rejects!(hostile_timer_bad_time, "fc-timer-bad-time.json", "event field `triggerTime`: `yesterday` is not an RFC 3339 time");
    rejects!(hostile_timer_missing_name, "fc-timer-no-name.json", "event field `triggerName`: missing");
    rejects!(hostile_timer_payload_object, "fc-timer-payload-object.json", "event field `payload`: expected a string, got an object");
    rejects!(hostile_timer_broken_payload, "fc-timer-broken-payload.json", "event field `payload`: starts with `{` but is not valid JSON");
    rejects!(hostile_timer_payload_apply, "fc-timer-payload-apply.json", "event field `payload.apply`: unknown key: a timer payload accepts only");
    rejects!(hostile_timer_payload_id, "fc-timer-payload-id.json", "event field `payload.id`: not accepted in a timer payload");
    rejects!(hostile_timer_payload_bad_region, "fc-timer-payload-bad-region.json", "event field `payload.regions[0]`");
    rejects!(hostile_aws_tag_change, "aws-tag-change.json", "`Tag Change on Resource` events are reserved");
    rejects!(hostile_aws_other, "aws-ec2-state-change.json", "AWS event `EC2 Instance State-change Notification` from `aws.ec2` is not handled");
    rejects!(hostile_aws_scheduled_no_id, "aws-scheduled-no-id.json", "event field `id`: missing");
    rejects!(hostile_aws_scheduled_bad_time, "aws-scheduled-bad-time.json", "event field `time`");
    rejects!(hostile_aws_scheduled_wrong_source, "aws-scheduled-wrong-source.json", "AWS event `Scheduled Event` from `evil.events` is not handled");
    rejects!(hostile_cloudevent_actiontrail, "cloudevent-actiontrail.json", "CloudEvent `ecs:ActionTrail:ApiCall` is reserved");
    rejects!(hostile_cloudevent_state_change, "cloudevent-ecs-state-change.json", "CloudEvent `ecs:Instance:StateChange` is reserved");
    rejects!(hostile_cloudevent_other, "cloudevent-other.json", "CloudEvent `resourcemanager:ResourceSharing:AssociationStatusChange` is not handled");
    rejects!(hostile_other_envelope, "other-envelope.json", "event `acs.ecs` is neither a schedule");

    #[test]
    fn empty_bodies() {
        assert_eq!(parse(b""), Err(EventError::Empty));
        assert_eq!(parse(b" \r\n\t"), Err(EventError::Empty));
    }

    #[test]
    fn invalid_utf8_is_not_json() {
        assert!(err(b"{\"dry_run\": \"\xff\xfe\"}").contains("not valid JSON"));
    }

    #[test]
    fn ten_megabyte_region_is_refused_by_size() {
        let body = format!(r#"{{"regions":["cn-{}"]}}"#, "a".repeat(10 << 20));
        assert_eq!(parse(body.as_bytes()), Err(EventError::TooLarge { bytes: body.len(), limit: MAX_EVENT_BYTES }));
    }

    #[test]
    fn long_region_under_the_body_limit_names_its_length_not_its_value() {
        let body = format!(r#"{{"regions":["cn-{}"]}}"#, "a".repeat(500_000));
        let e = err(body.as_bytes());
        assert!(e.contains("event field `regions[0]`: is 500003 bytes long; the limit is 64"), "{e}");
        assert!(e.len() < 200);
    }

    #[test]
    fn long_unknown_key_and_long_ids_are_clipped() {
        let body = format!(r#"{{"{}":1}}"#, "k".repeat(100_000));
        let e = err(body.as_bytes());
        assert!(e.contains("unknown key") && e.len() < 400, "{}", e.len());
        let body = format!(r#"{{"id":"{}"}}"#, "i".repeat(100_000));
        assert!(err(body.as_bytes()).contains("is 100000 bytes long; the limit is 128"));
        let body = format!(r#"{{"type":"{}"}}"#, "t".repeat(100_000));
        assert!(err(body.as_bytes()).len() < 200);
    }

    #[test]
    fn too_many_regions() {
        let regions: Vec<String> = (0..101).map(|i| format!("\"cn-r{i}\"")).collect();
        let body = format!(r#"{{"regions":[{}]}}"#, regions.join(","));
        assert!(err(body.as_bytes()).contains("event field `regions`: has 101 entries; the limit is 100"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let body = format!(r#"{{"regions":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(err(body.as_bytes()).contains("not valid JSON"));
        let body = format!(r#"{{"triggerTime":"2022-07-29T10:02:58Z","triggerName":"t","payload":"{}"}}"#, "{\\\"a\\\":".repeat(10_000));
        assert!(err(body.as_bytes()).contains("event field `payload`"));
    }

    // ---- properties ----

    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
            prop_oneof![Just("cn-hangzhou"), Just("ecs"), Just("{\"dry_run\":true}"), Just("Scheduled Event"), Just("aws.events")]
                .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop_oneof![
                Just("dry_run"), Just("regions"), Just("products"), Just("id"), Just("run_id"), Just("detail-type"),
                Just("source"), Just("specversion"), Just("type"), Just("triggerTime"), Just("triggerName"), Just("payload"),
                Just("time"), Just("detail")
            ]
            .prop_map(String::from),
            ".{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_objects_and_accepts_only_valid_scopes(
            obj in proptest::collection::btree_map(key(), json_value(), 0..8)
        ) {
            let body = serde_json::to_vec(&Value::Object(obj.into_iter().collect())).expect("serializes");
            if let Ok(trigger) = parse(&body) {
                let req = trigger.request();
                for r in req.regions.iter().flatten() { prop_assert!(is_region(r) && r.len() <= MAX_ENTRY_LEN); }
                for p in req.products.iter().flatten() { prop_assert!(is_product_code(p)); }
                prop_assert!(req.regions.as_ref().is_none_or(|l| !l.is_empty() && l.len() <= MAX_LIST_ENTRIES));
                prop_assert!(req.products.as_ref().is_none_or(|l| !l.is_empty() && l.len() <= MAX_LIST_ENTRIES));
            }
        }
    }
}

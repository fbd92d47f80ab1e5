//! What triggered a run. Every accepted event shape is parsed into a [`Trigger`]; anything else is an
//! error naming what was wrong, and nothing runs.
//!
//! Accepted shapes (reference section 4), told apart by their keys in this fixed order:
//! 1. a `detail-type` key: an AWS EventBridge event. `Scheduled Event` from `aws.events` or `aws.scheduler` runs
//!    the schedule; every other AWS event is rejected by name (`Tag Change on Resource` from `aws.tag` included:
//!    `aws.` sources are AWS's own, so it never names an Alibaba resource).
//! 2. a `specversion` key: an Alibaba EventBridge CloudEvent: `<product>:ActionTrail:ApiCall` for the tag APIs
//!    (`TagResources`, `UntagResources`, `AddTags`, `RemoveTags`; other API calls name nothing), with ids from
//!    `data.referencedResources` and `data.requestParameters` (`ResourceId.N`, `InstanceId`, `ResourceARN.N`),
//!    and `ecs:Instance:StateChange` (`data.resourceId` or `data.content.resourceId`). Other types are rejected.
//! 3. a `triggerTime` or `triggerName` key: an Alibaba Function Compute timer. Its `payload` may hold a
//!    manual request as a JSON object string, carried in [`Trigger::Scheduled::overrides`].
//! 4. a `source` or `type` key: some other event envelope, rejected by name.
//! 5. anything else must be a manual invocation: `{"dry_run": true, "regions": [...], "products": [...]}`
//!    with every key known (`{}` is a plain run).
//!
//! A JSON array is a batch: every element must be a tag-change or state-change event, and the batch is one
//! [`Trigger::Resources`] with the union of the resources and every event id. The shipped triggers never send one
//! (an EventBridge trigger on the default bus invokes once per event: FC 3.0 `RunOptions`, `event-driven` mode, no
//! batching); it is how several events are replayed in one run (`run --event`).
//!
//! Resource events are hints: the job re-reads the named resources by id and decides from what it reads.

mod actiontrail;
mod arn;
mod aws;
mod ecs_state;
mod fc;
mod manual;
mod raw;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::products::catalog;
use arn::Arn;

/// Largest event body accepted. Every accepted shape is well under 1 KiB; AWS caps synchronous Lambda
/// payloads at 6 MB, so this only refuses to read megabytes of something that is not ours.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Most entries in a manual `regions` or `products` list.
pub const MAX_LIST_ENTRIES: usize = 100;
/// Longest region id or product code, in bytes.
pub const MAX_ENTRY_LEN: usize = 64;
/// Longest invocation id (`id`, `run_id`, an AWS event id, an FC trigger name), in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Most events in one batch (a replay of several events: the shipped triggers deliver one event per invocation).
pub const MAX_BATCH_EVENTS: usize = 100;
/// Most resources one trigger may name (after the union of a batch). Above it the trigger is refused.
pub const MAX_TARGETS: usize = 500;
/// Longest resource id, in bytes.
pub const MAX_RESOURCE_ID_LEN: usize = crate::validate::MAX_INSTANCE_ID_LEN;
/// Most notes kept about what an event named but the janitor ignores.
pub const MAX_NOTES: usize = 20;
/// ActionTrail API calls that change tags.
pub const TAG_EVENT_NAMES: [&str; 4] = ["TagResources", "UntagResources", "AddTags", "RemoveTags"];

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
    /// Resources named by tag-change or state-change events (one event or a batch): the job re-reads exactly
    /// these by id and never lists a region.
    Resources(ResourceEvent),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceEvent {
    /// `acs.actiontrail` (ActionTrail API calls), `acs.ecs` (state changes), or `batch`.
    pub source: String,
    /// Every delivered event's id, in delivery order, without repeats.
    pub event_ids: Vec<String>,
    /// The run's id: the event id, or for a batch of several a digest of all of them (the same for a redelivery).
    pub run_id: String,
    /// The resources named, de-duplicated, each with the events that named it.
    pub targets: Vec<ResourceRef>,
    /// What the events named that is not a resource the janitor manages (another cloud's ARN, a disk, an API
    /// call that is not a tag change), for the log.
    pub ignored: Vec<String>,
}

/// One resource an event names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceRef {
    /// Product code (`ecs`, `r-kvstore`, `alikafka`, `kms`).
    pub product: String,
    pub region: String,
    pub id: String,
    /// Ids of the events that named it.
    pub event_ids: Vec<String>,
    /// The account ids of the ARNs that named it (empty when it was named by id, or the ARN's account is `*`).
    pub accounts: Vec<String>,
}

/// The request of a trigger that carries none.
const NO_REQUEST: &ManualRequest = &ManualRequest { dry_run: None, regions: None, products: None, id: None };

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
            Trigger::Resources(r) => Some(&r.run_id),
        }
    }

    /// The narrowing/dry-run request this trigger carries (empty for a plain scheduled run or a resource event).
    pub fn request(&self) -> &ManualRequest {
        match self {
            Trigger::Scheduled { overrides, .. } => overrides,
            Trigger::Manual(m) => m,
            Trigger::Resources(_) => NO_REQUEST,
        }
    }

    /// The resources named by an event trigger (`None` for runs that list everything).
    pub fn resources(&self) -> Option<&ResourceEvent> {
        match self {
            Trigger::Resources(r) => Some(r),
            _ => None,
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
            Trigger::Scheduled { source, overrides, .. } if !overrides.is_empty() => {
                format!("scheduled ({source}) with payload overrides")
            }
            Trigger::Scheduled { source, .. } => format!("scheduled ({source})"),
            Trigger::Manual(_) => "manual".into(),
            Trigger::Resources(r) => {
                let events = if r.event_ids.len() == 1 {
                    "1 event".to_string()
                } else {
                    format!("{} events", r.event_ids.len())
                };
                let named = if r.targets.len() == 1 {
                    "1 resource".to_string()
                } else {
                    format!("{} resources", r.targets.len())
                };
                format!("event ({}, {events}) naming {named}", r.source)
            }
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
    match value {
        obj @ Value::Object(_) => parse_object(&obj),
        Value::Array(items) => batch(items),
        other => Err(EventError::Unknown(format!("expected a JSON object, got {}", json_kind(&other)))),
    }
}

/// One event object, told apart by its keys (see the module documentation).
fn parse_object(value: &Value) -> Result<Trigger, EventError> {
    let Value::Object(obj) = value else {
        return Err(EventError::Unknown(format!("expected a JSON object, got {}", json_kind(value))));
    };
    if obj.contains_key("detail-type") {
        aws::event(value)
    } else if obj.contains_key("specversion") {
        cloud_event(value)
    } else if obj.contains_key("triggerTime") || obj.contains_key("triggerName") {
        fc::timer(value)
    } else if obj.contains_key("source") || obj.contains_key("type") {
        let name = obj.get("type").or_else(|| obj.get("source")).map(describe_value).unwrap_or_default();
        Err(EventError::Unknown(format!("event {name} is neither a schedule, a timer nor a manual invocation")))
    } else {
        manual::request(value, manual::Place::Invocation).map(Trigger::Manual)
    }
}

/// Alibaba EventBridge CloudEvents (reference section 4.3): ActionTrail API calls and instance state changes
/// name resources; every other type is rejected by name.
fn cloud_event(value: &Value) -> Result<Trigger, EventError> {
    let head: raw::CloudHead = raw::decode(value, "")?;
    let ty = required(head.ty, "type")?;
    if let Some(service) = ty.strip_suffix(":ActionTrail:ApiCall") {
        return actiontrail::call(value, service);
    }
    if let Some(spec) = catalog().by_state_change_type(&ty) {
        return ecs_state::state_change(value, spec);
    }
    Err(EventError::Unknown(format!("CloudEvent {} is not handled", quote(&ty))))
}

/// A batch (a replay of several events): each element a resource event; one trigger with the union of what they
/// name.
fn batch(items: Vec<Value>) -> Result<Trigger, EventError> {
    if items.is_empty() {
        return Err(EventError::Unknown("empty event batch (an array with no events)".into()));
    }
    if items.len() > MAX_BATCH_EVENTS {
        return Err(EventError::Unknown(format!(
            "event batch of {} events; the limit is {MAX_BATCH_EVENTS}",
            items.len()
        )));
    }
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if !item.is_object() {
            return Err(EventError::Unknown(format!(
                "batch element [{i}]: expected a JSON object, got {}",
                json_kind(&item)
            )));
        }
        match parse_object(&item).map_err(|e| in_batch(i, e))? {
            Trigger::Resources(r) => events.push(r),
            other => {
                return Err(EventError::Unknown(format!(
                    "batch element [{i}] is a {} trigger: a batch may hold only tag-change and state-change events",
                    other.describe()
                )))
            }
        }
    }
    if events.len() == 1 {
        return Ok(Trigger::Resources(events.remove(0)));
    }
    let mut merged = ResourceEvent {
        source: "batch".into(),
        event_ids: Vec::new(),
        run_id: String::new(),
        targets: Vec::new(),
        ignored: Vec::new(),
    };
    for e in events {
        for id in e.event_ids {
            if !merged.event_ids.contains(&id) {
                merged.event_ids.push(id);
            }
        }
        for t in e.targets {
            add_target(&mut merged.targets, t)?;
        }
        for note in e.ignored {
            merged.note(note);
        }
    }
    merged.run_id = batch_run_id(&merged.event_ids);
    Ok(Trigger::Resources(merged))
}

/// `batch-` and 32 hex digits of SHA-256 over the event ids: the same batch redelivered gets the same run id,
/// hence the same release idempotency tokens.
fn batch_run_id(ids: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update([0]);
    }
    let hex: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("batch-{hex}")
}

fn in_batch(i: usize, e: EventError) -> EventError {
    match e {
        EventError::Field { field, message } => EventError::Field { field: format!("[{i}].{field}"), message },
        EventError::Unknown(m) => EventError::Unknown(format!("batch element [{i}]: {m}")),
        other => other,
    }
}

/// Adds a target, merging the event ids of a resource named twice. Fails above [`MAX_TARGETS`].
fn add_target(targets: &mut Vec<ResourceRef>, t: ResourceRef) -> Result<(), EventError> {
    if let Some(existing) = targets.iter_mut().find(|x| x.product == t.product && x.region == t.region && x.id == t.id)
    {
        for id in t.event_ids {
            if !existing.event_ids.contains(&id) {
                existing.event_ids.push(id);
            }
        }
        return Ok(());
    }
    if targets.len() >= MAX_TARGETS {
        return Err(EventError::Unknown(format!(
            "the event names more than {MAX_TARGETS} resources: refused (run the schedule instead)"
        )));
    }
    targets.push(t);
    Ok(())
}
impl ResourceEvent {
    fn new(source: &str, event_id: &str) -> Self {
        ResourceEvent {
            source: source.into(),
            event_ids: vec![event_id.to_string()],
            run_id: event_id.to_string(),
            targets: Vec::new(),
            ignored: Vec::new(),
        }
    }

    /// Records something the event named that the janitor ignores; at most [`MAX_NOTES`] are kept.
    fn note(&mut self, text: String) {
        match self.ignored.len() {
            n if n < MAX_NOTES => self.ignored.push(text),
            n if n == MAX_NOTES => self.ignored.push("… (more not listed)".into()),
            _ => {}
        }
    }

    /// Adds a resource after checking its region and id; `at` names the field for errors.
    fn add(&mut self, product: &str, region: &str, id: &str, at: &str) -> Result<(), EventError> {
        if !is_region(region) {
            return Err(field(at, format!("region {} is not a region id", quote(region))));
        }
        if !is_resource_id(id) {
            return Err(field(
                at,
                format!(
                    "{} is not a resource id (letters, digits, `-`, `_`, `.`; at most {MAX_RESOURCE_ID_LEN} bytes)",
                    quote(id)
                ),
            ));
        }
        let t = ResourceRef {
            product: product.into(),
            region: region.into(),
            id: id.into(),
            event_ids: self.event_ids.clone(),
            accounts: Vec::new(),
        };
        add_target(&mut self.targets, t)
    }

    /// Adds the resource an ARN names: Alibaba ARNs (`[arn:]acs:<product>:<region>:<account>:<type>/<id>`) of a
    /// managed product's instance are added; other clouds' ARNs and other resource types are noted as ignored.
    fn add_arn(&mut self, arn: &str, at: &str) -> Result<(), EventError> {
        match arn::parse(arn) {
            Arn::Managed { product, region, id, account } => {
                self.add(product, &region, &id, at)?;
                let named = self.targets.iter_mut().find(|t| t.product == product && t.region == region && t.id == id);
                if let (Some(t), false) = (named, account.is_empty() || account == "*") {
                    if !t.accounts.contains(&account) {
                        t.accounts.push(account);
                    }
                }
                Ok(())
            }
            Arn::Foreign => {
                self.note(format!("{} (not an Alibaba Cloud instance the janitor manages)", clip(arn, 200)));
                Ok(())
            }
            Arn::Malformed(why) => Err(field(at, format!("{}: {why}", quote(arn)))),
        }
    }
}
/// An instance id (`i-bp1…`, `r-bp1…`, `alikafka_post-cn-…`): see [`crate::validate::is_instance_id`].
pub fn is_resource_id(s: &str) -> bool {
    crate::validate::is_instance_id(s)
}

/// The event's `id`, checked like every id that ends up in tokens and tags.
fn event_id(id: Option<raw::Str>) -> Result<String, EventError> {
    let id = required(id, "id")?;
    check_id(&id, "id")?;
    Ok(id)
}

/// A string field read in its turn, after the checks before it.
fn text(value: Option<Value>, key: &str) -> Result<String, EventError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(field(key, format!("expected a string, got {}", json_kind(&other)))),
        None => Err(field(key, "missing")),
    }
}

/// An object field read in its turn.
fn object<'a>(value: Option<&'a Value>, key: &str) -> Result<&'a Value, EventError> {
    match value {
        Some(v @ Value::Object(_)) => Ok(v),
        Some(other) => Err(field(key, format!("expected an object, got {}", json_kind(other)))),
        None => Err(field(key, "missing")),
    }
}

/// A string the envelope must carry.
fn required(value: Option<raw::Str>, key: &str) -> Result<String, EventError> {
    value.map(|s| s.0).ok_or_else(|| field(key, "missing"))
}

fn region_value(v: &Value, at: &str) -> Result<String, EventError> {
    match v {
        Value::String(r) if is_region(r) => Ok(r.clone()),
        Value::String(r) => Err(field(at, format!("{} is not a region id", quote(r)))),
        other => Err(field(at, format!("expected a string, got {}", json_kind(other)))),
    }
}

/// A string or an array of strings (ActionTrail renders repeat lists either way), at most [`MAX_TARGETS`].
fn strings<'a>(v: &'a Value, at: &str) -> Result<Vec<&'a str>, EventError> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => {
            if items.len() > MAX_TARGETS {
                return Err(field(at, format!("has {} entries; the limit is {MAX_TARGETS}", items.len())));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.as_str()),
                    other => Err(field(format!("{at}[{i}]"), format!("expected a string, got {}", json_kind(other)))),
                })
                .collect()
        }
        other => Err(field(at, format!("expected a string or an array of strings, got {}", json_kind(other)))),
    }
}
/// A region id (`cn-hangzhou`, `ap-southeast-1`): see [`crate::validate::is_region`].
pub fn is_region(s: &str) -> bool {
    crate::validate::is_region(s)
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
pub(crate) mod tests {
    use super::*;

    fn err(body: &[u8]) -> String {
        match parse(body) {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    pub(crate) fn manual_req(
        dry_run: Option<bool>,
        regions: Option<&[&str]>,
        products: Option<&[&str]>,
    ) -> ManualRequest {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ManualRequest { dry_run, regions: regions.map(owned), products: products.map(owned), id: None }
    }

    /// Parses a sample, then the same JSON re-serialized compactly: formatting never changes the trigger.
    pub(crate) fn round_trip(sample: &str) -> Trigger {
        let first = parse(sample.as_bytes()).unwrap_or_else(|e| panic!("sample rejected: {e}"));
        let value: Value = serde_json::from_str(sample).expect("sample is JSON");
        let again =
            parse(serde_json::to_string(&value).expect("serializes").as_bytes()).expect("re-serialized sample parses");
        assert_eq!(first, again);
        first
    }

    // ---- accepted samples (events/) ----

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
        for bad in [
            "",
            "cn",
            "c-hangzhou",
            "cn-",
            "-cn-hangzhou",
            "cn--hz",
            "CN-hangzhou",
            "cn-hang zhou",
            "cn-hangzhou\n",
            "1n-hz",
            "cn_hz",
        ] {
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
                let e = err(include_bytes!(concat!("../../tests/fixtures/events/", $file)));
                $(assert!(e.contains($want), "error {e:?} should contain {:?}", $want);)+
            }
        };
    }

    rejects!(hostile_dry_run_string, "dry-run-string.json", "event field `dry_run`: expected a boolean, got a string");
    rejects!(hostile_dry_run_null, "dry-run-null.json", "event field `dry_run`: expected a boolean, got null");
    rejects!(
        hostile_regions_string,
        "regions-string.json",
        "event field `regions`: expected an array of strings, got a string"
    );
    rejects!(
        hostile_regions_nested,
        "regions-nested.json",
        "event field `regions[0]`: expected a string, got an array"
    );
    rejects!(hostile_regions_empty, "regions-empty.json", "event field `regions`: must not be empty");
    rejects!(hostile_region_injection, "region-injection.json", "event field `regions[1]`", "is not a region id");
    rejects!(hostile_region_newline, "region-newline.json", "event field `regions[0]`", "\\n");
    rejects!(
        hostile_product_uppercase,
        "product-uppercase.json",
        "event field `products[0]`: `ECS` is not a product code"
    );
    rejects!(
        hostile_products_number,
        "products-number.json",
        "event field `products[0]`: expected a string, got a number"
    );
    rejects!(hostile_unknown_key, "unknown-key-apply.json", "event field `apply`: unknown key");
    rejects!(hostile_both_ids, "both-ids.json", "give only one of `id` and `run_id`");
    rejects!(hostile_id_injection, "id-injection.json", "event field `id`", "may hold only");
    rejects!(hostile_null_body, "null.json", "expected a JSON object, got null");
    rejects!(
        hostile_array_body,
        "array.json",
        "batch element [0] is a manual trigger: a batch may hold only tag-change and state-change events"
    );
    rejects!(hostile_string_body, "string.json", "expected a JSON object, got a string");
    rejects!(hostile_number_body, "number.json", "expected a JSON object, got a number");
    rejects!(hostile_trailing_garbage, "trailing-garbage.json", "not valid JSON");
    rejects!(hostile_truncated, "truncated.json", "not valid JSON");
    rejects!(
        hostile_timer_bad_time,
        "fc-timer-bad-time.json",
        "event field `triggerTime`: `yesterday` is not an RFC 3339 time"
    );
    rejects!(hostile_timer_missing_name, "fc-timer-no-name.json", "event field `triggerName`: missing");
    rejects!(
        hostile_timer_payload_object,
        "fc-timer-payload-object.json",
        "event field `payload`: expected a string, got an object"
    );
    rejects!(
        hostile_timer_broken_payload,
        "fc-timer-broken-payload.json",
        "event field `payload`: starts with `{` but is not valid JSON"
    );
    rejects!(
        hostile_timer_payload_apply,
        "fc-timer-payload-apply.json",
        "event field `payload.apply`: unknown key: a timer payload accepts only"
    );
    rejects!(
        hostile_timer_payload_id,
        "fc-timer-payload-id.json",
        "event field `payload.id`: not accepted in a timer payload"
    );
    rejects!(hostile_timer_payload_bad_region, "fc-timer-payload-bad-region.json", "event field `payload.regions[0]`");
    rejects!(
        hostile_aws_tag_change,
        "aws-tag-change.json",
        "AWS event `Tag Change on Resource` from `aws.tag` is not handled"
    );
    rejects!(
        hostile_aws_other,
        "aws-ec2-state-change.json",
        "AWS event `EC2 Instance State-change Notification` from `aws.ec2` is not handled"
    );
    rejects!(hostile_aws_scheduled_no_id, "aws-scheduled-no-id.json", "event field `id`: missing");
    rejects!(hostile_aws_scheduled_bad_time, "aws-scheduled-bad-time.json", "event field `time`");
    rejects!(
        hostile_aws_scheduled_wrong_source,
        "aws-scheduled-wrong-source.json",
        "AWS event `Scheduled Event` from `evil.events` is not handled"
    );
    rejects!(
        hostile_cloudevent_other,
        "cloudevent-other.json",
        "CloudEvent `resourcemanager:ResourceSharing:AssociationStatusChange` is not handled"
    );
    rejects!(hostile_other_envelope, "other-envelope.json", "event `acs.ecs` is neither a schedule");

    // ---- resource events ----

    pub(crate) fn resources(t: &Trigger) -> &ResourceEvent {
        t.resources().unwrap_or_else(|| panic!("expected a resource event, got {t:?}"))
    }

    /// The targets with their ARN accounts left out (the tests that name them check them on their own).
    pub(crate) fn sans_accounts(targets: &[ResourceRef]) -> Vec<ResourceRef> {
        targets.iter().map(|t| ResourceRef { accounts: Vec::new(), ..t.clone() }).collect()
    }

    pub(crate) fn target(product: &str, region: &str, id: &str, events: &[&str]) -> ResourceRef {
        ResourceRef {
            product: product.into(),
            region: region.into(),
            id: id.into(),
            event_ids: events.iter().map(|e| e.to_string()).collect(),
            accounts: Vec::new(),
        }
    }

    /// Issue 13 item 15: the batch sample mixed an ActionTrail call and a state change, which no trigger sends
    /// together (each matches one pattern, and a default-bus trigger invokes once per event). The replay fixture
    /// holds two ActionTrail tag calls.
    #[test]
    fn a_replayed_batch_is_one_trigger_with_the_union() {
        let t = round_trip(include_str!("../../tests/fixtures/events/actiontrail-batch.json"));
        let r = resources(&t);
        assert_eq!(r.source, "batch");
        assert_eq!(r.event_ids, ["9e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b", "c2f8e1a0-6d7e-4f1b-8a3c-5e9d0b1c2d3e"]);
        assert!(r.run_id.starts_with("batch-") && r.run_id.len() == 38, "{}", r.run_id);
        assert_eq!(t.event_id(), Some(r.run_id.as_str()));
        let ids: Vec<&str> = r.targets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["i-bp1keep00000000001", "i-bp1stopped000000001"]);
        assert_eq!(r.targets[1].event_ids, ["c2f8e1a0-6d7e-4f1b-8a3c-5e9d0b1c2d3e"]);
        assert_eq!(t.describe(), "event (batch, 2 events) naming 2 resources");
    }

    #[test]
    fn a_batch_names_a_resource_once_with_every_event_that_named_it() {
        let one = |id: &str| {
            format!(
                r#"{{"id":"{id}","specversion":"1.0","type":"ecs:Instance:StateChange","aliyunregionid":"cn-hangzhou","data":{{"resourceId":"i-1"}}}}"#
            )
        };
        let t = parse(format!("[{},{},{}]", one("e-1"), one("e-2"), one("e-1")).as_bytes()).unwrap();
        let r = resources(&t);
        assert_eq!(r.event_ids, ["e-1", "e-2"]);
        assert_eq!(r.targets, [target("ecs", "cn-hangzhou", "i-1", &["e-1", "e-2"])]);
        let again = parse(format!("[{},{}]", one("e-1"), one("e-2")).as_bytes()).unwrap();
        assert_eq!(again.event_id(), t.event_id(), "a redelivered batch gets the same run id");
        assert_eq!(
            parse(format!("[{}]", one("e-9")).as_bytes()).unwrap().event_id(),
            Some("e-9"),
            "a batch of one is that event"
        );
    }

    #[test]
    fn fixtures_of_the_reserved_shapes_now_parse() {
        let t = parse(include_bytes!("../../tests/fixtures/events/cloudevent-actiontrail.json")).unwrap();
        assert_eq!(
            sans_accounts(&resources(&t).targets),
            [target("ecs", "cn-hangzhou", "i-8vb0000", &["45ef4dewdwe1-7c35-447a-bd93-fab0000"])]
        );
        let t = parse(include_bytes!("../../tests/fixtures/events/cloudevent-ecs-state-change.json")).unwrap();
        assert_eq!(resources(&t).targets.len(), 1);
        // Another cloud's ARN in a tag call: nothing the janitor manages, named for the log.
        let aws = r#"{"id":"e-1","specversion":"1.0","type":"tag:ActionTrail:ApiCall","data":{"eventName":"TagResources","acsRegion":"cn-hangzhou","requestParameters":{"ResourceARN.1":"arn:aws:ec2:us-east-1:123456789012:instance/i-0000000aaaaaaaaaa"}}}"#;
        let t = parse(aws.as_bytes()).unwrap();
        let r = resources(&t);
        assert!(r.targets.is_empty());
        assert!(r.ignored[0].contains("arn:aws:ec2:us-east-1"), "{:?}", r.ignored);
    }

    #[test]
    fn malformed_resource_events_are_errors_naming_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"specversion":"1.0","type":"ecs:Instance:StateChange","data":{"resourceId":"i-1"}}"#,
                "event field `id`: missing",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:Instance:StateChange","data":"i-1"}"#,
                "event field `data`: expected an object, got a string",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:Instance:StateChange","data":{"resourceId":7}}"#,
                "event field `data.resourceId`: expected a string, got a number",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:Instance:StateChange","data":{"resourceId":"i-1"}}"#,
                "event field `aliyunregionid`: missing",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:Instance:StateChange","aliyunregionid":"cn-hangzhou","data":{"resourceId":"i-1; rm -rf /"}}"#,
                "is not a resource id",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"acsRegion":"cn-hangzhou"}}"#,
                "event field `data.eventName`: missing",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"eventName":"TagResources","acsRegion":"CN HZ","referencedResources":{}}}"#,
                "event field `data.acsRegion`",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"eventName":"TagResources","acsRegion":"cn-hangzhou","referencedResources":{"ACS::ECS::Instance":[1]}}}"#,
                "event field `data.referencedResources.ACS::ECS::Instance[0]`: expected a string",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"eventName":"TagResources","referencedResources":{"ACS::ECS::Instance":["i-1"]}}}"#,
                "event field `data.acsRegion`: missing",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{"eventName":"TagResources","acsRegion":"cn-hangzhou","requestParameters":{"ResourceARN.1":"acs:ecs:*:1:instance/i-1"}}}"#,
                "region is a wildcard",
            ),
            (
                r#"{"id":"e","specversion":"1.0","type":"tag:ActionTrail:ApiCall","data":{"eventName":"TagResources","acsRegion":"cn-hangzhou","requestParameters":{"ResourceARN.1":"acs:ecs:cn-hangzhou:1:instance"}}}"#,
                "expected <type>/<id>",
            ),
            ("[]", "empty event batch"),
            ("[[1]]", "batch element [0]: expected a JSON object, got an array"),
            (
                r#"[{"id":"e","specversion":"1.0","type":"ecs:Instance:StateChange","data":{}}]"#,
                "event field `[0].data.resourceId`: missing",
            ),
        ];
        for (body, want) in cases {
            let e = err(body.as_bytes());
            assert!(
                e.contains(want),
                "{body}
  error {e:?} should contain {want:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_TARGETS).map(|i| format!("\"i-{i}\"")).collect();
        let body = format!(
            r#"{{"id":"e","specversion":"1.0","type":"ecs:ActionTrail:ApiCall","data":{{"eventName":"TagResources","acsRegion":"cn-hangzhou","requestParameters":{{"ResourceId":[{}]}}}}}}"#,
            many.join(",")
        );
        assert!(err(body.as_bytes()).contains("the limit is 500"));
        let batch = format!("[{}]", vec![r#"{"dry_run":true}"#; MAX_BATCH_EVENTS + 1].join(","));
        assert!(err(batch.as_bytes()).contains("the limit is 100"));
    }

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
        let body = format!(
            r#"{{"triggerTime":"2022-07-29T10:02:58Z","triggerName":"t","payload":"{}"}}"#,
            "{\\\"a\\\":".repeat(10_000)
        );
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
            prop_oneof![
                Just("cn-hangzhou"),
                Just("ecs"),
                Just("{\"dry_run\":true}"),
                Just("Scheduled Event"),
                Just("aws.events")
            ]
            .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop_oneof![
                Just("dry_run"),
                Just("regions"),
                Just("products"),
                Just("id"),
                Just("run_id"),
                Just("detail-type"),
                Just("source"),
                Just("specversion"),
                Just("type"),
                Just("triggerTime"),
                Just("triggerName"),
                Just("payload"),
                Just("time"),
                Just("detail"),
                Just("eventName"),
                Just("acsRegion"),
                Just("referencedResources"),
                Just("requestParameters"),
                Just("resourceId"),
                Just("content"),
                Just("ResourceId.1"),
                Just("ACS::ECS::Instance")
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
                if let Some(r) = trigger.resources() {
                    prop_assert!(r.targets.len() <= MAX_TARGETS);
                    for t in &r.targets { prop_assert!(is_region(&t.region) && is_resource_id(&t.id) && is_product_code(&t.product)); }
                }
            }
        }

        #[test]
        fn parse_never_panics_on_resource_event_shapes(
            data in proptest::collection::btree_map(key(), json_value(), 0..6),
            ty in prop_oneof![Just("ecs:ActionTrail:ApiCall"), Just("ecs:Instance:StateChange"), Just("tag:ActionTrail:ApiCall")],
            batch in any::<bool>(),
        ) {
            let event = serde_json::json!({"id": "e-1", "specversion": "1.0", "type": ty, "aliyunregionid": "cn-hangzhou", "data": Value::Object(data.into_iter().collect())});
            let body = if batch { Value::Array(vec![event.clone(), event]) } else { event };
            let _ = parse(&serde_json::to_vec(&body).expect("serializes"));
        }
    }
}

//! A manual invocation, `{"dry_run": true, "regions": [...], "products": [...], "id": "..."}`, also carried
//! as a Function Compute timer's `payload`. Every key must be known and every value is checked: a typo must
//! stop the run rather than let it apply.

use serde_json::Value;

use super::raw::{decode, Manual, UNKNOWN_KEY};
use super::{check_id, field, is_product_code, is_region, json_kind, quote, EventError, ManualRequest};
use super::{MAX_ENTRY_LEN, MAX_LIST_ENTRIES};

const MANUAL_KEYS: &str = "`dry_run`, `regions`, `products`, `id`/`run_id`";

/// Where a manual request sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// The whole event body.
    Invocation,
    /// An FC timer's `payload`: no `id`, since the timer's name and time identify each run.
    TimerPayload,
}

impl Place {
    fn prefix(self) -> &'static str {
        match self {
            Place::Invocation => "",
            Place::TimerPayload => "payload.",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Place::Invocation => "a manual invocation",
            Place::TimerPayload => "a timer payload",
        }
    }
}

/// A manual request from a JSON object. Checks run in key order (`dry_run`, `id`, `products`, `regions`,
/// `run_id`), as the keys of a parsed object are sorted.
pub(super) fn request(value: &Value, place: Place) -> Result<ManualRequest, EventError> {
    let prefix = place.prefix();
    let raw: Manual = decode(value, prefix).map_err(|e| match e {
        EventError::Field { field, message } if message == UNKNOWN_KEY => EventError::Field {
            field,
            message: format!(
                "unknown key: {} accepts only {MANUAL_KEYS} (and this is no known event shape)",
                place.what()
            ),
        },
        other => other,
    })?;
    let mut req = ManualRequest { dry_run: raw.dry_run.map(|b| b.0), ..ManualRequest::default() };
    set_id(&mut req, raw.id, "id", place)?;
    if let Some(products) = &raw.products {
        let name = format!("{prefix}products");
        req.products = Some(list(products, &name, is_product_code, "product code (like `ecs`)")?);
    }
    if let Some(regions) = &raw.regions {
        let name = format!("{prefix}regions");
        req.regions = Some(list(regions, &name, is_region, "region id (like `cn-hangzhou`)")?);
    }
    set_id(&mut req, raw.run_id, "run_id", place)?;
    Ok(req)
}

/// `id` and `run_id` are one field under two names.
fn set_id(req: &mut ManualRequest, id: Option<Value>, key: &str, place: Place) -> Result<(), EventError> {
    let Some(id) = id else { return Ok(()) };
    let name = format!("{}{key}", place.prefix());
    if place == Place::TimerPayload {
        return Err(field(name, "not accepted in a timer payload: the timer's name and time identify each run"));
    }
    if req.id.is_some() {
        return Err(field(name, "give only one of `id` and `run_id`"));
    }
    let Value::String(id) = id else {
        return Err(field(name, format!("expected a string, got {}", json_kind(&id))));
    };
    check_id(&id, &name)?;
    req.id = Some(id);
    Ok(())
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
            return Err(field(
                format!("{name}[{i}]"),
                format!("is {} bytes long; the limit is {MAX_ENTRY_LEN}", s.len()),
            ));
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

#[cfg(test)]
mod tests {
    use crate::event::tests::{manual_req, round_trip};
    use crate::event::{parse, ManualRequest, Trigger};

    #[test]
    fn sample_manual_dry_run() {
        let t = round_trip(include_str!("../../events/manual-dry-run.json"));
        assert_eq!(t, Trigger::Manual(manual_req(Some(true), None, None)));
        assert!(t.forces_dry_run());
        assert_eq!(t.event_id(), None);
    }

    #[test]
    fn sample_manual_narrow() {
        let t = round_trip(include_str!("../../events/manual-narrow.json"));
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
}

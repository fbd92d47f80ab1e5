//! What the emulated tag APIs share: reading `Tag.N.Key`/`Tag.N.Value`, and the tag lists that the Redis and
//! Kafka instance objects carry as `{"Tags": {"<item>": [{"Key", "Value"}]}}` (`Tag` for Redis, `TagVO` for
//! Kafka), so a tag written through `TagResources` shows in the next listing.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::params::Params;
use super::reply::ApiFault;

/// `Tag.N.Key`/`Tag.N.Value` (N from 1 to `max`), with the documented key rules.
pub(crate) fn tag_pairs(p: &Params, max: usize) -> Result<Vec<(String, String)>, ApiFault> {
    let mut slots: BTreeMap<u64, (Option<String>, Option<String>)> = BTreeMap::new();
    for (k, v) in p {
        let Some((n, field)) = k.strip_prefix("Tag.").and_then(|rest| rest.split_once('.')) else { continue };
        let n = match n.parse::<u64>() {
            Ok(n) if (1..=max as u64).contains(&n) => n,
            _ => return Err(ApiFault::invalid(k, &format!("the tag index must be from 1 to {max}"))),
        };
        let slot = slots.entry(n).or_default();
        match field {
            "Key" => slot.0 = Some(v.clone()),
            "Value" => slot.1 = Some(v.clone()),
            _ => return Err(ApiFault::invalid(k, "expected Tag.N.Key or Tag.N.Value")),
        }
    }
    if slots.is_empty() {
        return Err(ApiFault::missing("Tag.1.Key"));
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    for (n, (key, value)) in slots {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return Err(ApiFault::missing(&format!("Tag.{n}.Key")));
        };
        let value = value.unwrap_or_default();
        let lower = key.to_ascii_lowercase();
        if key.chars().count() > 128
            || lower.starts_with("aliyun")
            || lower.starts_with("acs:")
            || lower.contains("http://")
            || lower.contains("https://")
        {
            return Err(ApiFault::invalid(
                &format!("Tag.{n}.Key"),
                "at most 128 characters, not starting with aliyun or acs:, without http:// or https://",
            ));
        }
        if value.chars().count() > 128 || value.contains("http://") || value.contains("https://") {
            return Err(ApiFault::invalid(
                &format!("Tag.{n}.Value"),
                "at most 128 characters, without http:// or https://",
            ));
        }
        if tags.iter().any(|(k, _)| *k == key) {
            return Err(ApiFault::invalid(&format!("Tag.{n}.Key"), "the same key is given twice"));
        }
        tags.push((key, value));
    }
    Ok(tags)
}

/// The tags of an instance object, `{"Tags": {item: [{"Key", "Value"}]}}`, in order. Entries without a string
/// `Key` are skipped (the loaders refuse them where the product's reader would); a missing `Value` reads as "".
pub(crate) fn read_tags(obj: &Map<String, Value>, item: &str) -> Vec<(String, String)> {
    let Some(Value::Array(list)) = obj.get("Tags").and_then(|t| t.get(item)) else { return Vec::new() };
    list.iter()
        .filter_map(|t| {
            let key = t.get("Key").and_then(Value::as_str)?;
            Some((key.to_string(), t.get("Value").and_then(Value::as_str).unwrap_or_default().to_string()))
        })
        .collect()
}

/// The `Tags` value for an instance object.
pub(crate) fn tags_value(item: &str, tags: &[(String, String)]) -> Value {
    let list: Vec<Value> = tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
    json!({ item: list })
}

/// `tags` written over `existing`: a key already present gets the new value in place, a new key goes last.
pub(crate) fn with_tags(existing: &[(String, String)], tags: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = existing.to_vec();
    for (k, v) in tags {
        match out.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn pairs_follow_the_key_rules() {
        let ok = tag_pairs(&p(&[("Tag.2.Key", "b"), ("Tag.1.Key", "a"), ("Tag.1.Value", "1")]), 20).unwrap();
        assert_eq!(ok, [("a".to_string(), "1".to_string()), ("b".to_string(), String::new())]);
        assert_eq!(tag_pairs(&p(&[]), 20).unwrap_err().code, "MissingParameter");
        assert_eq!(tag_pairs(&p(&[("Tag.1.Value", "x")]), 20).unwrap_err().code, "MissingParameter");
        for bad in [
            ("Tag.21.Key", "k"),
            ("Tag.0.Key", "k"),
            ("Tag.1.Colour", "k"),
            ("Tag.1.Key", "aliyun:x"),
            ("Tag.1.Key", "ACS:x"),
        ] {
            assert_eq!(tag_pairs(&p(&[bad]), 20).unwrap_err().code, "InvalidParameter", "{bad:?}");
        }
    }

    #[test]
    fn tag_lists_round_trip_and_overwrite() {
        let mut obj = Map::new();
        assert!(read_tags(&obj, "Tag").is_empty());
        obj.insert("Tags".into(), json!({"Tag": [{"Key": "a", "Value": "1"}, {"Key": "b"}, {"Value": "orphan"}]}));
        let tags = read_tags(&obj, "Tag");
        assert_eq!(tags, [("a".to_string(), "1".to_string()), ("b".to_string(), String::new())]);
        let merged = with_tags(&tags, &[("b".into(), "2".into()), ("c".into(), "3".into())]);
        assert_eq!(merged.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), ["a=1", "b=2", "c=3"]);
        obj.insert("Tags".into(), tags_value("TagVO", &merged));
        assert_eq!(read_tags(&obj, "TagVO"), merged);
        assert!(read_tags(&obj, "Tag").is_empty());
    }
}

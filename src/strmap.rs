//! A small, compact string map for the maps every instance carries: its tags (`inventory::Tags`), its extras and its
//! decision's facts (`plan::Facts`: `charge_type` → `pay-as-you-go`, `tag:owner` → `ana`, ...).
//!
//! Every scanned instance keeps its decision, and so its facts, until the summary is written: at 10,000
//! instances a `BTreeMap<String, String>` (a 544-byte node plus two heap strings per entry) was the largest part
//! of the benchmark's peak memory. Here all keys and values of one map share one string buffer, with a sorted
//! index beside it: two allocations per map. It reads and serialises like a map ordered by key.

use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

#[derive(Clone, Default)]
pub struct StrMap {
    /// Keys and values, back to back. A replaced value leaves its old bytes behind (rare: a fact or tag is
    /// normally written once).
    text: String,
    /// Sorted by key; each names `text[start..start + key_len]` (key) and `text[start + key_len..end]` (value).
    spans: Vec<Span>,
}

#[derive(Clone, Copy)]
struct Span {
    start: u32,
    key_len: u32,
    end: u32,
}

impl StrMap {
    pub fn new() -> Self {
        StrMap::default()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| self.value(self.spans[i]))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: &str, value: &str) {
        let span = self.push(key, value);
        match self.find(key) {
            Ok(i) => self.spans[i] = span,
            Err(i) => self.spans.insert(i, span),
        }
    }

    /// Sets `key` to `value` unless `key` already has a value.
    pub fn insert_if_absent(&mut self, key: &str, value: &str) {
        if let Err(i) = self.find(key) {
            let span = self.push(key, value);
            self.spans.insert(i, span);
        }
    }

    /// (key, value) pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|&s| (self.key(s), self.value(s)))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Gives back spare capacity (and the bytes of replaced values): called once a map is complete.
    pub fn shrink_to_fit(&mut self) {
        if self.text.len() > self.live_len() {
            let compact: StrMap = self.iter().collect();
            *self = compact;
        }
        self.text.shrink_to_fit();
        self.spans.shrink_to_fit();
    }

    fn live_len(&self) -> usize {
        self.spans.iter().map(|s| (s.end - s.start) as usize).sum()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.spans.binary_search_by(|&s| self.key(s).cmp(key))
    }

    fn push(&mut self, key: &str, value: &str) -> Span {
        // A map is a few hundred bytes; one past 4 GiB is a bug, so saturate rather than wrap.
        let offset = |len: usize| u32::try_from(len).unwrap_or(u32::MAX);
        let start = offset(self.text.len());
        self.text.push_str(key);
        self.text.push_str(value);
        Span { start, key_len: offset(key.len()), end: offset(self.text.len()) }
    }

    fn key(&self, s: Span) -> &str {
        let start = s.start as usize;
        self.text.get(start..start + s.key_len as usize).unwrap_or("")
    }

    fn value(&self, s: Span) -> &str {
        self.text.get(s.start as usize + s.key_len as usize..s.end as usize).unwrap_or("")
    }
}

impl PartialEq for StrMap {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for StrMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for StrMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for StrMap {
    /// A map of strings (a stored summary's facts, read back by `aliyun-janitor report`).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = std::collections::BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for StrMap {
    /// Like a map's `extend`: later values replace earlier ones.
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.as_ref(), v.as_ref());
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for StrMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = StrMap::new();
        map.extend(iter);
        map.shrink_to_fit();
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn reads_like_a_map_ordered_by_key() {
        let mut f = StrMap::new();
        f.insert("status", "Stopped");
        f.insert("charge_type", "pay-as-you-go");
        f.insert("tag:owner", "");
        assert_eq!(f.get("status"), Some("Stopped"));
        assert_eq!(f.get("tag:owner"), Some(""));
        assert_eq!(f.get("tag"), None);
        assert!(f.contains_key("charge_type"));
        assert_eq!(f.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["charge_type", "status", "tag:owner"]);
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"charge_type":"pay-as-you-go","status":"Stopped","tag:owner":""}"#
        );
    }

    #[test]
    fn insert_replaces_and_insert_if_absent_keeps_the_first() {
        let mut f = StrMap::new();
        f.insert("owner", "ana");
        f.insert("owner", "bo");
        f.insert_if_absent("owner", "cy");
        f.insert_if_absent("age", "3d");
        assert_eq!(f.get("owner"), Some("bo"));
        assert_eq!(f.get("age"), Some("3d"));
        assert_eq!(f.len(), 2);
        f.shrink_to_fit();
        assert_eq!(format!("{f:?}"), r#"{"age": "3d", "owner": "bo"}"#);
    }

    proptest! {
        /// Any sequence of inserts gives what a `BTreeMap` gives, before and after compaction.
        #[test]
        fn behaves_like_a_btree_map(ops in proptest::collection::vec(("[a-c:é]{0,3}", ".{0,6}", any::<bool>()), 0..40)) {
            let mut facts = StrMap::new();
            let mut map = BTreeMap::new();
            for (k, v, replace) in &ops {
                if *replace {
                    facts.insert(k, v);
                    map.insert(k.clone(), v.clone());
                } else {
                    facts.insert_if_absent(k, v);
                    map.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            let want: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(facts.iter().collect::<Vec<_>>(), want.clone());
            for (k, v) in &want {
                prop_assert_eq!(facts.get(k), Some(*v));
            }
            facts.shrink_to_fit();
            prop_assert_eq!(facts.iter().collect::<Vec<_>>(), want);
        }
    }
}

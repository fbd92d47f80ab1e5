//! Emulator-only controls on one instance object of the inventory: an optional `"_sim"` object, removed
//! before anything is served. Each product declares which controls it accepts (its own `Controls` struct with
//! `deny_unknown_fields`); the one they share lives here:
//!
//! ```json
//! "_sim": {"mutate_after_reads": {"after": 1, "set": {"InstanceReleaseProtection": true}}}
//! ```
//!
//! `mutate_after_reads`: once `after` answers have included the instance (list pages and detail reads alike),
//! the fields in `set` are merged into it before the next answer. This is how a test makes an instance change
//! between the janitor's listing and its pre-flight re-read.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::inventory::SimError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Mutation {
    pub after: u32,
    pub set: Map<String, Value>,
}

/// Removes `_sim` from an instance object and reads it as `C` (its default when absent).
pub(crate) fn take<C: DeserializeOwned + Default>(path: &str, obj: &mut Map<String, Value>) -> Result<C, SimError> {
    match obj.remove("_sim") {
        None | Some(Value::Null) => Ok(C::default()),
        Some(v) => serde_path_to_error::deserialize(v).map_err(|e| {
            let inner = e.path().to_string();
            let at = if inner == "." { format!("{path}._sim") } else { format!("{path}._sim.{inner}") };
            SimError::invalid(at, e.into_inner().to_string())
        }),
    }
}

/// An instance object that may change after some reads.
#[derive(Debug, Clone)]
pub(crate) struct Mutable {
    raw: Map<String, Value>,
    reads: u32,
    pending: Option<Mutation>,
}

impl Mutable {
    /// `check` validates the object as it will look after the mutation, so a bad `set` fails at load time.
    pub fn new(
        path: &str,
        raw: Map<String, Value>,
        mutation: Option<Mutation>,
        check: impl Fn(&Map<String, Value>) -> Result<(), SimError>,
    ) -> Result<Self, SimError> {
        if let Some(m) = &mutation {
            let mut after = raw.clone();
            after.extend(m.set.clone());
            check(&after).map_err(|e| match e {
                SimError::Invalid { field, message } => {
                    SimError::invalid(format!("{path}._sim.mutate_after_reads.set"), format!("{field}: {message}"))
                }
                other => other,
            })?;
        }
        Ok(Mutable { raw, reads: 0, pending: mutation })
    }

    /// One answer includes this instance: a due mutation is applied first, then the read is counted.
    pub fn read(&mut self) -> &Map<String, Value> {
        self.settle();
        self.reads = self.reads.saturating_add(1);
        &self.raw
    }

    /// Applies a due mutation without counting a read, so a listing filters on what it will serve.
    pub fn settle(&mut self) {
        if self.pending.as_ref().is_some_and(|m| self.reads >= m.after) {
            if let Some(m) = self.pending.take() {
                self.raw.extend(m.set);
            }
        }
    }

    /// The current object, without counting a read (release checks, snapshots).
    pub fn peek(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// A state change made by the emulated service itself (a release in progress).
    pub fn set(&mut self, key: &str, value: Value) {
        self.raw.insert(key.to_string(), value);
    }
}

/// The inventory section as an array of instance objects (`None`/null: empty).
fn section_items<'a>(name: &str, section: Option<&'a Value>, what: &str) -> Result<&'a [Value], SimError> {
    match section {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(SimError::invalid(name, format!("expected an array of {what}"))),
    }
}

/// Loads a product's inventory section (an array of `what`): each object loses its `_sim` controls (read as
/// `C`), is checked with `check`, must have a unique `InstanceId`, and becomes `make(state, controls)` with its
/// `mutate_after_reads` (taken out of the controls by `mutation`) applied as reads go by.
pub(crate) fn load_instances<C, T>(
    name: &str,
    section: Option<&Value>,
    what: &str,
    check: impl Fn(&str, &Map<String, Value>) -> Result<(), SimError>,
    mutation: impl Fn(&mut C) -> Option<Mutation>,
    mut make: impl FnMut(Mutable, C) -> T,
) -> Result<BTreeMap<String, T>, SimError>
where
    C: DeserializeOwned + Default,
{
    let mut instances = BTreeMap::new();
    for (i, v) in section_items(name, section, what)?.iter().enumerate() {
        let path = format!("{name}[{i}]");
        let Value::Object(obj) = v else { return Err(SimError::invalid(path, "expected an instance object")) };
        let mut obj = obj.clone();
        let mut c: C = take(&path, &mut obj)?;
        check(&path, &obj)?;
        let id = obj.get("InstanceId").and_then(Value::as_str).unwrap_or_default().to_string();
        if instances.contains_key(&id) {
            return Err(SimError::invalid(format!("{path}.InstanceId"), format!("duplicate instance id `{id}`")));
        }
        let state = Mutable::new(&path, obj, mutation(&mut c), |o| check(&path, o))?;
        instances.insert(id, make(state, c));
    }
    Ok(instances)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct C {
        #[serde(default)]
        mutate_after_reads: Option<Mutation>,
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn mutation_applies_after_the_given_reads() {
        let mut o =
            obj(json!({"Id": "x", "Flag": false, "_sim": {"mutate_after_reads": {"after": 2, "set": {"Flag": true}}}}));
        let c: C = take("s[0]", &mut o).unwrap();
        assert!(!o.contains_key("_sim"));
        let mut m = Mutable::new("s[0]", o, c.mutate_after_reads, |_| Ok(())).unwrap();
        assert_eq!(m.read()["Flag"], false);
        assert_eq!(m.read()["Flag"], false);
        assert_eq!(m.peek()["Flag"], false);
        assert_eq!(m.read()["Flag"], true);
    }

    #[test]
    fn bad_controls_name_the_field() {
        let mut o = obj(json!({"_sim": {"mutate_after_read": {}}}));
        match take::<C>("s[3]", &mut o) {
            Err(SimError::Invalid { field, .. }) => assert_eq!(field, "s[3]._sim.mutate_after_read"),
            _ => panic!("expected an error"),
        }
        let mut o = obj(json!({"_sim": {"mutate_after_reads": {"after": -1, "set": {}}}}));
        match take::<C>("s[0]", &mut o) {
            Err(SimError::Invalid { field, .. }) => assert_eq!(field, "s[0]._sim.mutate_after_reads.after"),
            _ => panic!("expected an error"),
        }
        let bad = Mutable::new("s[0]", Map::new(), Some(Mutation { after: 1, set: Map::new() }), |_| {
            Err(SimError::invalid("s[0].Flag", "no"))
        });
        match bad {
            Err(SimError::Invalid { field, .. }) => assert_eq!(field, "s[0]._sim.mutate_after_reads.set"),
            _ => panic!("expected an error"),
        }
    }
}

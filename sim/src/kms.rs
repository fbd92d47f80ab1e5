//! KMS instances (`kms`), version `2016-01-20` (reference sections 3.4 and 7): `ListKmsInstances`,
//! `GetKmsInstance` and `ReleaseKmsInstance`, served from the inventory's `kms` section.
//!
//! The section is an array of `KmsInstance` objects as `GetKmsInstance` returns them (real field names:
//! `InstanceId`, `InstanceName`, `Status`, `ChargeType` `PREPAY|POSTPAY`, `CreateTime`, `StartDate`, `EndDate`
//! (required for `PREPAY`), `DeletionProtection` (bool, or `Enabled`/`Disabled`), …) plus `RegionId`, which the
//! real answer does not carry: it says which regional endpoint serves the instance, and is not served. The
//! real API takes no `RegionId` (the endpoint decides); a request that sends one sees only that region.
//! Optional `_sim` controls: `mutate_after_reads` (`controls.rs`; only `GetKmsInstance` counts as a read, the
//! listing carries ids only) and `backup: false` (the instance has no backup, so a release without
//! `ForceDeleteWithoutBackup=true` is refused with `Forbidden.NoBackup`).
//!
//! Error codes: 403 `Forbidden.DKMSInstanceNotFound` (confirmed), `Forbidden.NoBackup` and 400
//! `Rejected.UnsupportedOperation` (from the API page). 403 `Forbidden.DeletionProtection` for a protected
//! instance is this emulator's choice (UNVERIFIED: the docs only say to turn protection off first).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::controls::{self, Mutable, Mutation};
use super::inventory::{Fields, SimError};
use super::params::{number, optional, required, Params};
use super::reply::ApiFault;
use super::service::{ActionKind, Env, Service};
use crate::time;

const SECTION: &str = "kms";
pub(crate) const VERSION: &str = "2016-01-20";

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Controls {
    #[serde(default)]
    mutate_after_reads: Option<Mutation>,
    #[serde(default = "yes")]
    backup: bool,
}

impl Default for Controls {
    fn default() -> Self {
        Controls { mutate_after_reads: None, backup: true }
    }
}

struct View {
    region: String,
    prepaid: bool,
    protected: bool,
}

fn view(path: &str, obj: &Map<String, Value>) -> Result<View, SimError> {
    let f = Fields { path: path.to_string(), obj };
    f.req_str("InstanceId")?;
    let prepaid = f.one_of("ChargeType", &["PREPAY", "POSTPAY"])? == "PREPAY";
    for field in ["CreateTime", "StartDate"] {
        if let Some(t) = f.opt_str(field)?.filter(|t| !t.is_empty()) {
            time::parse(t).map_err(|e| f.err(field, e.to_string()))?;
        }
    }
    match f.opt_str("EndDate")?.filter(|t| !t.is_empty()) {
        Some(t) => {
            time::parse_optional(t).map_err(|e| f.err("EndDate", e.to_string()))?;
        }
        None if prepaid => return Err(f.err("EndDate", "required for a PREPAY instance")),
        None => {}
    }
    let protected = match obj.get("DeletionProtection") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "Enabled" => true,
        Some(Value::String(s)) if s == "Disabled" => false,
        Some(_) => return Err(f.err("DeletionProtection", "expected true/false or \"Enabled\"/\"Disabled\"")),
    };
    Ok(View { region: f.req_str("RegionId")?.to_string(), prepaid, protected })
}

struct KmsInstance {
    state: Mutable,
    backup: bool,
}

pub(crate) struct Kms {
    instances: BTreeMap<String, KmsInstance>,
}

pub(crate) fn load(section: Option<&Value>) -> Result<Box<dyn Service>, SimError> {
    let instances = controls::load_instances(
        SECTION,
        section,
        "GetKmsInstance KmsInstance objects",
        |path, o| view(path, o).map(|_| ()),
        |c: &mut Controls| c.mutate_after_reads.take(),
        |state, c| KmsInstance { state, backup: c.backup },
    )?;
    Ok(Box::new(Kms { instances }))
}

fn not_found(id: &str) -> ApiFault {
    ApiFault::new(403, "Forbidden.DKMSInstanceNotFound", format!("The specified DKMS Instance is not found. ({id})"))
}

impl Service for Kms {
    fn product(&self) -> &'static str {
        SECTION
    }

    fn version(&self) -> &'static str {
        VERSION
    }

    fn action_kind(&self, action: &str) -> Option<ActionKind> {
        match action {
            "ListKmsInstances" | "GetKmsInstance" => Some(ActionKind::Read),
            "ReleaseKmsInstance" => Some(ActionKind::Release),
            _ => None,
        }
    }

    fn handle(&mut self, action: &str, p: &Params, _env: &Env<'_>) -> Result<Value, ApiFault> {
        match action {
            "ListKmsInstances" => self.list(p),
            "GetKmsInstance" => self.get(p),
            "ReleaseKmsInstance" => self.release(p),
            _ => Err(ApiFault::action_not_found()),
        }
    }

    fn instance_ids(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }

    fn snapshot(&self) -> Value {
        Value::Array(self.instances.values().map(|k| Value::Object(k.state.peek().clone())).collect())
    }
}

impl Kms {
    fn in_region<'a>(&'a self, id: &str, p: &Params) -> Option<&'a KmsInstance> {
        let region = optional(p, "RegionId");
        // The `RegionId` string is compared first: the full view (times parsed, fields checked) only for an
        // instance of the region (the same answer; a listing of 100,000 instances is CPU-bound otherwise).
        let same = |k: &KmsInstance, r: &str| {
            k.state.peek().get("RegionId").and_then(Value::as_str) == Some(r)
                && view("", k.state.peek()).is_ok_and(|v| v.region == r)
        };
        self.instances.get(id).filter(|k| region.is_none_or(|r| same(k, r)))
    }

    /// Ids and ARNs only (reference 3.4).
    fn list(&self, p: &Params) -> Result<Value, ApiFault> {
        let page_number = number(p, "PageNumber", 1..=u32::MAX as u64, 1)?;
        let page_size = number(p, "PageSize", 1..=100, 20)?;
        let region = optional(p, "RegionId");
        let ids: Vec<&String> = self.instances.keys().filter(|id| self.in_region(id, p).is_some()).collect();
        let skip = usize::try_from((page_number - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
        let page: Vec<Value> = ids
            .iter()
            .skip(skip)
            .take(page_size as usize)
            .map(|id| json!({"KmsInstanceId": id, "KmsInstanceArn": format!("acs:kms:{}:1234567890:instance/{id}", region.unwrap_or("cn-hangzhou"))}))
            .collect();
        Ok(
            json!({"PageNumber": page_number, "PageSize": page_size, "TotalCount": ids.len(), "KmsInstances": {"KmsInstance": page}}),
        )
    }

    /// An id that is not there is answered HTTP 200 with an empty `InstanceId` (reference, corrections: the
    /// Terraform provider's `DescribeKmsInstance` treats that answer as "not found").
    fn get(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let id = required(p, "KmsInstanceId")?;
        let gone = || json!({"KmsInstance": {"InstanceId": ""}});
        if self.in_region(id, p).is_none() {
            return Ok(gone());
        }
        let Some(k) = self.instances.get_mut(id) else { return Ok(gone()) };
        let mut obj = k.state.read().clone();
        obj.remove("RegionId");
        Ok(json!({"KmsInstance": obj}))
    }

    /// Pay-as-you-go only, deletion protection off, a backup or `ForceDeleteWithoutBackup=true` (a string).
    fn release(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let id = required(p, "KmsInstanceId")?;
        let force = match optional(p, "ForceDeleteWithoutBackup") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiFault::invalid("ForceDeleteWithoutBackup", "expected the string true or false")),
        };
        let Some(k) = self.in_region(id, p) else { return Err(not_found(id)) };
        let Ok(v) = view("", k.state.peek()) else { return Err(not_found(id)) };
        if v.prepaid {
            return Err(ApiFault::new(
                400,
                "Rejected.UnsupportedOperation",
                format!("Subscription instances can only be unsubscribed in the billing console. ({id})"),
            ));
        }
        if v.protected {
            return Err(ApiFault::new(
                403,
                "Forbidden.DeletionProtection",
                format!("Deletion protection is enabled; turn it off first. ({id})"),
            ));
        }
        if !k.backup && !force {
            return Err(ApiFault::new(
                403,
                "Forbidden.NoBackup",
                format!("The instance has no backup; back it up or set ForceDeleteWithoutBackup=true. ({id})"),
            ));
        }
        self.instances.remove(id);
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn inst(id: &str, extra: Value) -> Value {
        let mut v = json!({"InstanceId": id, "RegionId": "cn-hangzhou", "Status": "Connected", "ChargeType": "POSTPAY", "DeletionProtection": false});
        if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
            base.extend(more);
        }
        v
    }

    fn call(s: &mut Box<dyn Service>, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiFault> {
        let p: Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.handle(action, &p, &Env { now: Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(), request_id: "REQ" })
    }

    fn code(r: Result<Value, ApiFault>) -> String {
        r.map(|_| "ok".to_string()).unwrap_or_else(|f| f.code)
    }

    #[test]
    fn load_errors_name_the_field() {
        let err = |v: Value| match load(Some(&v)) {
            Err(SimError::Invalid { field, .. }) => field,
            _ => "no error".into(),
        };
        assert_eq!(err(json!([inst("k", json!({"ChargeType": "PostPaid"}))])), "kms[0].ChargeType");
        assert_eq!(err(json!([inst("k", json!({"ChargeType": "PREPAY"}))])), "kms[0].EndDate");
        assert_eq!(err(json!([inst("k", json!({"DeletionProtection": "On"}))])), "kms[0].DeletionProtection");
        assert_eq!(err(json!([inst("k", json!({"RegionId": null}))])), "kms[0].RegionId");
        assert_eq!(err(json!([inst("k", json!({"_sim": {"backup": "no"}}))])), "kms[0]._sim.backup");
    }

    #[test]
    fn list_has_ids_only_and_get_hides_the_region() {
        let mut s =
            load(Some(&json!([inst("kst-1", json!({})), inst("kst-2", json!({"RegionId": "cn-beijing"}))]))).unwrap();
        let v = call(&mut s, "ListKmsInstances", &[("RegionId", "cn-hangzhou"), ("PageSize", "100")]).unwrap();
        assert_eq!(v["TotalCount"], 1);
        assert_eq!(
            v["KmsInstances"]["KmsInstance"][0],
            json!({"KmsInstanceId": "kst-1", "KmsInstanceArn": "acs:kms:cn-hangzhou:1234567890:instance/kst-1"})
        );
        assert_eq!(code(call(&mut s, "ListKmsInstances", &[("PageSize", "101")])), "InvalidParameter");
        let g = call(&mut s, "GetKmsInstance", &[("KmsInstanceId", "kst-1")]).unwrap();
        assert_eq!(g["KmsInstance"]["ChargeType"], "POSTPAY");
        assert!(g["KmsInstance"].get("RegionId").is_none());
        let gone = call(&mut s, "GetKmsInstance", &[("KmsInstanceId", "kst-2"), ("RegionId", "cn-hangzhou")]).unwrap();
        assert_eq!(gone["KmsInstance"]["InstanceId"], "", "not found: HTTP 200 with an empty InstanceId");
    }

    #[test]
    fn release_refusals() {
        let mut s = load(Some(&json!([
            inst("kst-ok", json!({})),
            inst("kst-sub", json!({"ChargeType": "PREPAY", "EndDate": "2026-01-01T00:00:00Z"})),
            inst("kst-prot", json!({"DeletionProtection": "Enabled"})),
            inst("kst-nobackup", json!({"_sim": {"backup": false}})),
        ])))
        .unwrap();
        let rel = |s: &mut Box<dyn Service>, pairs: &[(&str, &str)]| code(call(s, "ReleaseKmsInstance", pairs));
        assert_eq!(rel(&mut s, &[("KmsInstanceId", "kst-sub")]), "Rejected.UnsupportedOperation");
        assert_eq!(rel(&mut s, &[("KmsInstanceId", "kst-prot")]), "Forbidden.DeletionProtection");
        assert_eq!(rel(&mut s, &[("KmsInstanceId", "kst-nobackup")]), "Forbidden.NoBackup");
        assert_eq!(
            rel(&mut s, &[("KmsInstanceId", "kst-nobackup"), ("ForceDeleteWithoutBackup", "yes")]),
            "InvalidParameter"
        );
        assert_eq!(rel(&mut s, &[("KmsInstanceId", "kst-nobackup"), ("ForceDeleteWithoutBackup", "true")]), "ok");
        assert_eq!(rel(&mut s, &[("KmsInstanceId", "kst-ok")]), "ok");
        assert_eq!(rel(&mut s, &[("KmsInstanceId", "kst-ok")]), "Forbidden.DKMSInstanceNotFound");
        assert_eq!(s.instance_ids(), ["kst-prot", "kst-sub"]);
    }
}

//! Billing (BssOpenApi), version `2017-12-14` (reference section 3.5): `QueryAvailableInstances` and
//! `ReleaseInstance`, served from the inventory's `bss` section.
//!
//! The section is either an array of billing records, or `{"vno": bool, "instances": [records]}`. A record is
//! an element of `Data.InstanceList` with the real field names (`InstanceID` with a capital D, `ProductCode`,
//! `ProductType`, `Region`, `SubscriptionType` `Subscription|PayAsYouGo`, `Status`, `SubStatus`,
//! `RenewStatus`, `CreateTime`, `EndTime`, …), served verbatim. A record of an instance that its product's
//! section held at load and that has been released through the product's API since is dropped (as the real
//! billing stops listing it): see `State::reconcile_billing` in `mod.rs`. A record of an id the product section
//! never held stays, so a test can still make billing and a product disagree.
//!
//! Answers are business envelopes (`Code: "Success"`, `Success: true`); `Data.InstanceList` is a plain array.
//! `ReleaseInstance` is refused unless the section says `"vno": true` (the docs say calls from non-reseller
//! accounts are blocked but give no code; this emulator answers HTTP 200 `Success: false`, `Code:
//! NotApplicable`, UNVERIFIED). Optional `_sim` controls on a record: `mutate_after_reads` (`controls.rs`),
//! e.g. a subscription renewed between discovery and the pre-flight re-read.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::controls::{self, Mutable, Mutation};
use super::inventory::{Fields, SimError};
use super::params::{number, optional, required, Params};
use super::reply::ApiFault;
use super::service::{ActionKind, Env, Service};
use crate::time;

const SECTION: &str = "bss";
pub(crate) const VERSION: &str = "2017-12-14";
const MAX_IDS: usize = 100;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Controls {
    #[serde(default)]
    mutate_after_reads: Option<Mutation>,
}

/// The fields the emulator filters on, read from the (possibly mutated) record.
struct View {
    id: String,
    product_code: String,
    region: String,
    subscription_type: String,
    renew_status: String,
    end: DateTime<Utc>,
}

fn view(path: &str, obj: &Map<String, Value>) -> Result<View, SimError> {
    let f = Fields { path: path.to_string(), obj };
    if let Some(t) = f.opt_str("CreateTime")? {
        time::parse(t).map_err(|e| f.err("CreateTime", e.to_string()))?;
    }
    Ok(View {
        id: f.req_str("InstanceID")?.to_string(),
        product_code: f.req_str("ProductCode")?.to_string(),
        region: f.opt_str("Region")?.unwrap_or_default().to_string(),
        subscription_type: f.one_of("SubscriptionType", &["Subscription", "PayAsYouGo"])?.to_string(),
        renew_status: f.opt_str("RenewStatus")?.unwrap_or_default().to_string(),
        end: time::parse(f.req_str("EndTime")?).map_err(|e| f.err("EndTime", e.to_string()))?,
    })
}

struct Record {
    /// Identity, fixed at load: (product code, id).
    key: (String, String),
    state: Mutable,
}

impl Record {
    fn view(&self) -> Option<View> {
        view("", self.state.peek()).ok()
    }
}

pub(crate) struct Bss {
    vno: bool,
    /// Sorted by (product code, id): pages are stable.
    records: Vec<Record>,
}

fn record(i: usize, v: &Value) -> Result<Record, SimError> {
    let path = format!("{SECTION}.instances[{i}]");
    let Value::Object(obj) = v else { return Err(SimError::invalid(path, "expected a billing record object")) };
    let mut obj = obj.clone();
    let c: Controls = controls::take(&path, &mut obj)?;
    let v = view(&path, &obj)?;
    let key = (v.product_code, v.id);
    let state = Mutable::new(&path, obj, c.mutate_after_reads, |o| match view(&path, o) {
        Ok(after) if (after.product_code.as_str(), after.id.as_str()) == (key.0.as_str(), key.1.as_str()) => Ok(()),
        Ok(_) => {
            Err(SimError::invalid(format!("{path}.InstanceID"), "a mutation cannot change ProductCode or InstanceID"))
        }
        Err(e) => Err(e),
    })?;
    Ok(Record { key, state })
}

pub(crate) fn load(section: Option<&Value>) -> Result<Box<dyn Service>, SimError> {
    let (vno, items): (bool, &[Value]) = match section {
        None | Some(Value::Null) => (false, &[]),
        Some(Value::Array(a)) => (false, a),
        Some(Value::Object(o)) => {
            if let Some(k) = o.keys().find(|k| !["vno", "instances"].contains(&k.as_str())) {
                return Err(SimError::invalid(format!("{SECTION}.{k}"), "unknown field; expected vno, instances"));
            }
            let vno = match o.get("vno") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(SimError::invalid(format!("{SECTION}.vno"), "expected true or false")),
            };
            match o.get("instances") {
                None | Some(Value::Null) => (vno, &[]),
                Some(Value::Array(a)) => (vno, a),
                Some(_) => {
                    return Err(SimError::invalid(
                        format!("{SECTION}.instances"),
                        "expected an array of billing records",
                    ))
                }
            }
        }
        Some(_) => {
            return Err(SimError::invalid(
                SECTION,
                "expected an array of billing records or {\"vno\": bool, \"instances\": [...]}",
            ))
        }
    };
    let mut records: Vec<Record> = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let r = record(i, v)?;
        if records.iter().any(|o| o.key == r.key) {
            return Err(SimError::invalid(
                format!("{SECTION}.instances[{i}].InstanceID"),
                format!("duplicate record `{}` for {}", r.key.1, r.key.0),
            ));
        }
        records.push(r);
    }
    records.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Box::new(Bss { vno, records }))
}

fn envelope(data: Value) -> Value {
    json!({"Code": "Success", "Message": "Successful!", "Success": true, "Data": data})
}

fn business(code: &str, message: impl Into<String>) -> Value {
    json!({"Code": code, "Message": message.into(), "Success": false})
}

fn time_param(p: &Params, name: &str) -> Result<Option<DateTime<Utc>>, ApiFault> {
    optional(p, name)
        .map(|v| time::parse(v).map_err(|_| ApiFault::invalid(name, "expected yyyy-MM-ddTHH:mm:ssZ")))
        .transpose()
}

fn id_list<'a>(p: &'a Params, name: &str) -> Result<Option<Vec<&'a str>>, ApiFault> {
    let Some(v) = optional(p, name) else { return Ok(None) };
    let ids: Vec<&str> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if ids.len() > MAX_IDS {
        return Err(ApiFault::invalid(name, "at most 100 comma-separated ids"));
    }
    Ok(Some(ids))
}

impl Service for Bss {
    fn product(&self) -> &'static str {
        SECTION
    }

    fn version(&self) -> &'static str {
        VERSION
    }

    fn action_kind(&self, action: &str) -> Option<ActionKind> {
        match action {
            "QueryAvailableInstances" => Some(ActionKind::Read),
            "ReleaseInstance" => Some(ActionKind::Release),
            _ => None,
        }
    }

    fn handle(&mut self, action: &str, p: &Params, _env: &Env<'_>) -> Result<Value, ApiFault> {
        match action {
            "QueryAvailableInstances" => self.query(p),
            "ReleaseInstance" => self.release(p),
            _ => Err(ApiFault::action_not_found()),
        }
    }

    fn instance_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.records.iter().map(|r| r.key.1.clone()).collect();
        ids.sort();
        ids
    }

    fn snapshot(&self) -> Value {
        json!({"vno": self.vno, "instances": self.records.iter().map(|r| Value::Object(r.state.peek().clone())).collect::<Vec<_>>()})
    }

    fn follows_products(&self) -> bool {
        true
    }

    fn drop_released(&mut self, released: &dyn Fn(&str, &str) -> bool) {
        self.records.retain(|r| !released(&r.key.0, &r.key.1));
    }
}

impl Bss {
    fn query(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let product = optional(p, "ProductCode");
        let region = optional(p, "Region");
        // ProductCode is required once Region is given (reference 3.5).
        if region.is_some() && product.is_none() {
            return Err(ApiFault::missing("ProductCode"));
        }
        let subscription = optional(p, "SubscriptionType");
        if subscription.is_some_and(|s| s != "Subscription" && s != "PayAsYouGo") {
            return Err(ApiFault::invalid("SubscriptionType", "expected Subscription or PayAsYouGo"));
        }
        let ids = id_list(p, "InstanceIDs")?;
        let (start, end) = (time_param(p, "EndTimeStart")?, time_param(p, "EndTimeEnd")?);
        let renew = optional(p, "RenewStatus");
        let page_num = number(p, "PageNum", 1..=u32::MAX as u64, 1)?;
        let page_size = number(p, "PageSize", 1..=300, 20)?;
        self.records.iter_mut().for_each(|r| r.state.settle());
        let matching: Vec<usize> = self
            .records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.view().map(|v| (i, v)))
            .filter(|(_, r)| {
                product.is_none_or(|c| c == r.product_code)
                    && region.is_none_or(|g| g == r.region)
                    && subscription.is_none_or(|s| s == r.subscription_type)
                    && ids.as_ref().is_none_or(|ids| ids.contains(&r.id.as_str()))
                    && start.is_none_or(|t| r.end >= t)
                    && end.is_none_or(|t| r.end <= t)
                    && renew.is_none_or(|s| s == r.renew_status)
            })
            .map(|(i, _)| i)
            .collect();
        let skip = usize::try_from((page_num - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
        let mut page: Vec<Value> = Vec::new();
        for &i in matching.iter().skip(skip).take(page_size as usize) {
            page.push(Value::Object(self.records[i].state.read().clone()));
        }
        Ok(envelope(
            json!({"PageNum": page_num, "PageSize": page_size, "TotalCount": matching.len(), "InstanceList": page}),
        ))
    }

    /// Resellers only. All ids must exist for the product, or nothing is released.
    fn release(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let product = required(p, "ProductCode")?.to_string();
        let subscription = required(p, "SubscriptionType")?.to_string();
        let Some(ids) = id_list(p, "InstanceIds")?.filter(|ids| !ids.is_empty()) else {
            return Err(ApiFault::missing("InstanceIds"));
        };
        let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
        if !self.vno {
            return Ok(business(
                "NotApplicable",
                "ReleaseInstance is only available to Virtual Network Operator (reseller) accounts.",
            ));
        }
        let region = optional(p, "Region");
        for id in &ids {
            let found = self.records.iter().filter_map(Record::view).any(|r| {
                r.id == *id
                    && r.product_code == product
                    && r.subscription_type == subscription
                    && region.is_none_or(|g| g == r.region)
            });
            if !found {
                return Ok(business("InvalidParameter", format!("The instance {id} of {product} does not exist.")));
            }
        }
        self.records.retain(|r| !(r.key.0 == product && ids.contains(&r.key.1)));
        Ok(envelope(json!({"ReleaseResult": true, "HostId": "business.aliyuncs.com"})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec(id: &str, product: &str, end: &str) -> Value {
        json!({"InstanceID": id, "ProductCode": product, "ProductType": product, "Region": "cn-hangzhou", "SubscriptionType": "Subscription",
               "Status": "Expired", "SubStatus": "Normal", "RenewStatus": "ManualRenewal", "EndTime": end})
    }

    fn call(s: &mut Box<dyn Service>, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiFault> {
        let p: Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.handle(action, &p, &Env { now: Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(), request_id: "REQ" })
    }

    fn ids(v: &Value) -> Vec<String> {
        v["Data"]["InstanceList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["InstanceID"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn load_errors_name_the_field() {
        let err = |v: Value| match load(Some(&v)) {
            Err(SimError::Invalid { field, .. }) => field,
            _ => "no error".into(),
        };
        assert_eq!(
            err(json!([{"InstanceID": "x", "ProductCode": "rds", "SubscriptionType": "Subscription"}])),
            "bss.instances[0].EndTime"
        );
        assert_eq!(err(json!({"vno": "yes"})), "bss.vno");
        assert_eq!(err(json!({"vnoo": true})), "bss.vnoo");
        assert_eq!(
            err(json!([rec("x", "rds", "2026-01-01T00:00:00Z"), rec("x", "rds", "2026-01-01T00:00:00Z")])),
            "bss.instances[1].InstanceID"
        );
    }

    #[test]
    fn query_filters_and_pages() {
        let mut s = load(Some(&json!([
            rec("rm-1", "rds", "2026-05-01T00:00:00Z"),
            rec("rm-2", "rds", "2026-07-01T00:00:00Z"),
            rec("i-1", "ecs", "2026-04-01T00:00:00Z")
        ])))
        .unwrap();
        let v = call(
            &mut s,
            "QueryAvailableInstances",
            &[("SubscriptionType", "Subscription"), ("EndTimeEnd", "2026-06-01T00:00:00Z")],
        )
        .unwrap();
        assert_eq!((v["Code"].clone(), v["Success"].clone()), (json!("Success"), json!(true)));
        assert_eq!(ids(&v), ["i-1", "rm-1"]);
        assert_eq!(v["Data"]["TotalCount"], 2);
        let v = call(&mut s, "QueryAvailableInstances", &[("PageSize", "1"), ("PageNum", "3")]).unwrap();
        assert_eq!(ids(&v), ["rm-2"]);
        let v =
            call(&mut s, "QueryAvailableInstances", &[("ProductCode", "rds"), ("InstanceIDs", "rm-2,rm-9")]).unwrap();
        assert_eq!(ids(&v), ["rm-2"]);
        assert!(call(&mut s, "QueryAvailableInstances", &[("Region", "cn-hangzhou")]).is_err());
        assert!(call(&mut s, "QueryAvailableInstances", &[("PageSize", "301")]).is_err());
    }

    #[test]
    fn release_is_for_resellers_only() {
        let items = json!([rec("rm-1", "rds", "2026-05-01T00:00:00Z"), rec("rm-2", "rds", "2026-05-01T00:00:00Z")]);
        let mut plain = load(Some(&items)).unwrap();
        let r = call(
            &mut plain,
            "ReleaseInstance",
            &[("ProductCode", "rds"), ("SubscriptionType", "Subscription"), ("InstanceIds", "rm-1")],
        )
        .unwrap();
        assert_eq!((r["Success"].clone(), r["Code"].clone()), (json!(false), json!("NotApplicable")));
        assert_eq!(plain.instance_ids().len(), 2);
        let mut vno = load(Some(&json!({"vno": true, "instances": items}))).unwrap();
        let bad = call(
            &mut vno,
            "ReleaseInstance",
            &[("ProductCode", "rds"), ("SubscriptionType", "Subscription"), ("InstanceIds", "rm-1,rm-9")],
        )
        .unwrap();
        assert_eq!(bad["Success"], false);
        let ok = call(
            &mut vno,
            "ReleaseInstance",
            &[("ProductCode", "rds"), ("SubscriptionType", "Subscription"), ("InstanceIds", "rm-1,rm-2")],
        )
        .unwrap();
        assert_eq!(ok["Data"]["ReleaseResult"], true);
        assert!(vno.instance_ids().is_empty());
        assert_eq!(call(&mut vno, "ReleaseInstance", &[("ProductCode", "rds")]).unwrap_err().code, "MissingParameter");
    }
}

//! KMS instances (`kms`, version 2016-01-20, reference sections 3.4 and 7): `ListKmsInstances` (ids only, pages
//! of at most 100), `GetKmsInstance` per id, `ReleaseKmsInstance` to release. Releasing destroys every key and
//! secret in the instance. Only pay-as-you-go (`POSTPAY`) instances can be released through the API; without a
//! backup the call refuses (`Forbidden.NoBackup`) unless the rule sets `force` (`ForceDeleteWithoutBackup`).

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use super::shared::{decode, lenient_i64, read_each, request_id, shape};
use super::{ArnForm, CallResult, Product, ProductSpec, ReleaseCall};
use crate::aliyun::{ApiError, ApiRequest, Client};
use crate::inventory::{parse_api_time, parse_expiry, ChargeType, Instance};

pub(crate) const SPEC: ProductSpec = ProductSpec {
    code: "kms",
    api_version: "2016-01-20",
    event_services: &["kms"],
    arn: ArnForm { service: "kms", kind: "instance" },
    state_change_type: None,
    billing_codes: &["kms"],
    // Subscriptions can only be unsubscribed in the billing console (reference 3.4).
    releasable: &[ChargeType::PayAsYouGo],
    batch_size: 1,
    force_from_rule: true,
    endpoints: &[],
};
const CODE: &str = SPEC.code;
const VERSION: &str = SPEC.api_version;
const PAGE_SIZE: usize = 100;
const PARALLEL_READS: usize = 8;
/// Confirmed in the official KMS metadata (reference 3.4).
const NOT_FOUND: &str = "Forbidden.DKMSInstanceNotFound";

pub struct Kms;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResponse {
    #[serde(deserialize_with = "lenient_i64")]
    total_count: i64,
    kms_instances: ListWrapper,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListWrapper {
    #[serde(default)]
    kms_instance: Vec<Listed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    kms_instance_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetResponse {
    kms_instance: Detail,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Detail {
    instance_id: String,
    #[serde(default)]
    instance_name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    charge_type: String,
    #[serde(default)]
    create_time: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    /// Required: without it we cannot know whether the instance is protected (fail closed).
    #[serde(deserialize_with = "protection_flag")]
    deletion_protection: bool,
}

/// A boolean in the SDK model of GetKmsInstance; `Enabled`/`Disabled` (and `"true"`/`"false"`) accepted too (reference 3.4).
fn protection_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("enabled") || s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("disabled") || s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(de::Error::custom(format!("expected true/false or Enabled/Disabled, found {other}"))),
    }
}

impl Detail {
    fn into_instance(self, region: &str) -> Result<Instance, ApiError> {
        let action = "GetKmsInstance";
        let at = |field: &str| format!("instance {}: `KmsInstance.{field}`", self.instance_id);
        let charge_type = match self.charge_type.as_str() {
            "POSTPAY" => ChargeType::PayAsYouGo,
            "PREPAY" => ChargeType::Subscription,
            other => {
                return Err(shape(
                    action,
                    format!("{}: unknown charge type `{other}` (expected PREPAY or POSTPAY)", at("ChargeType")),
                ))
            }
        };
        let created_at = match self.create_time.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_api_time(s).map_err(|e| shape(action, format!("{}: {e}", at("CreateTime"))))?),
            None => None,
        };
        let expires_at = match charge_type {
            ChargeType::PayAsYouGo | ChargeType::Unknown => None,
            ChargeType::Subscription => parse_expiry(self.end_date.as_deref().unwrap_or(""))
                .map_err(|e| shape(action, format!("{}: {e}", at("EndDate"))))?,
        };
        let mut inst = Instance::new(CODE, region, &self.instance_id, charge_type);
        inst.name = self.instance_name.unwrap_or_default().into();
        inst.status = self.status.unwrap_or_default().into();
        // Force (`ForceDeleteWithoutBackup`) is the rule's choice, not a matter of the instance running.
        inst.running = false;
        inst.created_at = created_at;
        inst.expires_at = expires_at;
        inst.deletion_protection = self.deletion_protection;
        Ok(inst)
    }
}

fn get_answer(value: Value, id: &str, region: &str) -> Result<Instance, ApiError> {
    let resp: GetResponse = decode("GetKmsInstance", value)?;
    if resp.kms_instance.instance_id != id {
        return Err(shape(
            "GetKmsInstance",
            format!("`KmsInstance.InstanceId`: asked for {id}, got {}", resp.kms_instance.instance_id),
        ));
    }
    resp.kms_instance.into_instance(region)
}

async fn read_one(api: Client, region: String, id: String) -> Result<Option<Instance>, ApiError> {
    // No RegionId parameter (the endpoint decides); sent anyway as the legacy SDK core does for every RPC call.
    let req = ApiRequest::new(CODE, VERSION, "GetKmsInstance", &region)
        .param("KmsInstanceId", id.clone())
        .param("RegionId", region.clone());
    match api.call(&req).await {
        // Not found is HTTP 200 with an empty `InstanceId` (reference, corrections; the Terraform provider): gone.
        Ok(v) if v.pointer("/KmsInstance/InstanceId").and_then(Value::as_str) == Some("") => Ok(None),
        Ok(v) => get_answer(v, &id, &region).map(Some),
        Err(e) if e.code() == Some(NOT_FOUND) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `Forbidden.NoBackup` says what to do next; it is not retryable (a 4xx with a non-throttling code).
fn explain(e: ApiError) -> ApiError {
    match e {
        ApiError::Service { action, status, code, message, request_id } if code == "Forbidden.NoBackup" => {
            ApiError::Service {
                action,
                status,
                code,
                message: format!("back up first (or set force on the rule): {message}"),
                request_id,
            }
        }
        e => e,
    }
}

impl Kms {
    async fn list_ids(&self, api: &Client, region: &str) -> Result<Vec<String>, ApiError> {
        let action = "ListKmsInstances";
        let mut ids = Vec::new();
        let mut seen = BTreeSet::new();
        for page in 1..=api.max_pages() {
            let req = ApiRequest::new(CODE, VERSION, action, region)
                .param("PageNumber", page.to_string())
                .param("PageSize", PAGE_SIZE.to_string())
                .param("RegionId", region);
            let resp: ListResponse = decode(action, api.call(&req).await?)?;
            let items = resp.kms_instances.kms_instance;
            if items.len() > PAGE_SIZE {
                return Err(shape(
                    action,
                    format!("`KmsInstances.KmsInstance`: {} instances on a page of {PAGE_SIZE}", items.len()),
                ));
            }
            let empty = items.is_empty();
            for item in items {
                if !seen.insert(item.kms_instance_id.clone()) {
                    return Err(shape(
                        action,
                        format!("instance {} listed twice: pagination is inconsistent", item.kms_instance_id),
                    ));
                }
                ids.push(item.kms_instance_id);
            }
            if empty || ids.len() as i64 >= resp.total_count {
                return Ok(ids);
            }
        }
        Err(shape(action, format!("more than {} pages (the page budget, JANITOR_MAX_PAGES)", api.max_pages())))
    }
}

#[async_trait]
impl Product for Kms {
    fn spec(&self) -> &'static ProductSpec {
        &SPEC
    }

    async fn list(&self, api: &Client, region: &str) -> Result<Vec<Instance>, ApiError> {
        let ids = self.list_ids(api, region).await?;
        self.get(api, region, &ids).await
    }

    async fn get(&self, api: &Client, region: &str, ids: &[String]) -> Result<Vec<Instance>, ApiError> {
        read_each(ids, PARALLEL_READS, |id| read_one(api.clone(), region.to_string(), id)).await
    }

    async fn release(&self, api: &Client, call: &ReleaseCall) -> CallResult {
        let [id] = call.ids.as_slice() else {
            return Err(shape("ReleaseKmsInstance", format!("one id per call, {} given", call.ids.len())));
        };
        let mut req = ApiRequest::new(CODE, VERSION, "ReleaseKmsInstance", &call.region)
            .param("KmsInstanceId", id.clone())
            .param("RegionId", call.region.clone());
        // A string parameter; destroying keys without a backup is only ever the rule's explicit choice.
        if call.options.force {
            req = req.param("ForceDeleteWithoutBackup", "true");
        }
        // Mutating (never resent by the client): ReleaseKmsInstance has no ClientToken, so after a 5xx, a timeout
        // or a reset only a re-read can tell whether it acted; the execute stage reconciles (`release::reconcile`).
        api.call(&req.mutating()).await.map(|v| request_id(&v)).map_err(explain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(extra: Value) -> Value {
        let mut d = json!({
            "InstanceId": "kst-1", "InstanceName": "keys", "Status": "Connected", "ChargeType": "POSTPAY",
            "CreateTime": "2026-01-01T00:00:00Z", "StartDate": "2026-01-01T00:00:00Z", "EndDate": "", "DeletionProtection": false
        });
        if let (Value::Object(d), Value::Object(x)) = (&mut d, extra) {
            d.extend(x);
        }
        json!({"RequestId": "R", "KmsInstance": d})
    }

    fn read(v: Value) -> Result<Instance, ApiError> {
        get_answer(v, "kst-1", "cn-hangzhou")
    }

    #[test]
    fn detail_parses() {
        let i = read(detail(json!({}))).unwrap();
        assert_eq!(
            (i.product.as_str(), i.status.as_str(), i.charge_type),
            ("kms", "Connected", ChargeType::PayAsYouGo)
        );
        assert!(!i.deletion_protection && !i.running);
        let sub = read(detail(
            json!({"ChargeType": "PREPAY", "EndDate": "2026-06-01T00:00:00Z", "DeletionProtection": "Enabled"}),
        ))
        .unwrap();
        assert_eq!(sub.charge_type, ChargeType::Subscription);
        assert_eq!(sub.expires_at.unwrap().to_rfc3339(), "2026-06-01T00:00:00+00:00");
        assert!(sub.deletion_protection);
        assert!(!read(detail(json!({"DeletionProtection": "Disabled"}))).unwrap().deletion_protection);
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let msg = |v: Value| read(v).unwrap_err().to_string();
        assert!(msg(detail(json!({"ChargeType": "PostPaid"}))).contains("ChargeType"));
        assert!(msg(detail(json!({"DeletionProtection": "On"}))).contains("DeletionProtection"));
        assert!(msg(detail(json!({"DeletionProtection": null}))).contains("DeletionProtection"));
        assert!(msg(detail(json!({"ChargeType": "PREPAY", "EndDate": "next year"}))).contains("EndDate"));
        assert!(msg(detail(json!({"InstanceId": "kst-2"}))).contains("InstanceId"));
        assert!(msg(json!({"RequestId": "R"})).contains("KmsInstance"));
        let mut no_flag = detail(json!({}));
        no_flag["KmsInstance"].as_object_mut().unwrap().remove("DeletionProtection");
        assert!(msg(no_flag).contains("DeletionProtection"));
    }

    #[test]
    fn no_backup_says_what_to_do() {
        let e = explain(ApiError::Service {
            action: "ReleaseKmsInstance".into(),
            status: 403,
            code: "Forbidden.NoBackup".into(),
            message: "no backup".into(),
            request_id: "R".into(),
        });
        assert!(e.to_string().contains("back up first (or set force on the rule)"), "{e}");
        assert_eq!(e.code(), Some("Forbidden.NoBackup"));
        assert!(!e.is_retryable());
    }
}

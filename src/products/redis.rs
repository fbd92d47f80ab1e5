//! Redis / Tair (`r-kvstore`, version 2015-01-01, reference sections 3.2 and 7): `DescribeInstances` (pages of
//! at most 50) to list every instance with its status, charge type, times and tags, `DescribeInstanceAttribute`
//! for `InstanceReleaseProtection` (the list has no protection flag), read only for the instances a rule can
//! still match (`Product::listing_lacks_details`) and for every re-read, `DeleteInstance` to release. No native dry run: the engine re-reads each instance
//! just before releasing it. Only `Normal` pay-as-you-go instances can be released through the API.
//! `TagResources`/`UntagResources` write and remove the lifecycle's marks, which the attribute read's `Tags`
//! shows on the next run.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde::Deserialize;

use super::shared::{
    decode, lenient_bool, lenient_i64, read_each, request_id, shape, tag_answer, tag_batches, tag_params, untag_params,
};
use super::{ArnForm, CallResult, Product, ProductSpec, ReleaseCall, TagReport, Tagging};
use crate::aliyun::{ApiError, ApiRequest, Client};
use crate::inventory::{parse_api_time, parse_expiry, ChargeType, Instance};

/// The central host of the regions listed in `SPEC.endpoints`.
const CENTRAL: &str = "r-kvstore.aliyuncs.com";

pub(crate) const SPEC: ProductSpec = ProductSpec {
    code: "r-kvstore",
    api_version: "2015-01-01",
    // `kvstore` in Tag service ARNs (`acs:kvstore:…`), `redisa` the older location code (reference 3.2).
    event_services: &["kvstore", "r-kvstore", "redisa", "redis"],
    arn: ArnForm { service: "kvstore", kind: "instance" },
    state_change_type: None,
    billing_codes: &["r-kvstore", "redisa", "kvstore"],
    // Subscriptions release themselves after expiry or by ticket (reference 3.2): never by API.
    releasable: &[ChargeType::PayAsYouGo],
    batch_size: 1,
    force_from_rule: false,
    endpoints: &[
        // R-KVStore is served centrally for these regions (reference 3.2).
        ("cn-hangzhou", CENTRAL),
        ("cn-shanghai", CENTRAL),
        ("cn-beijing", CENTRAL),
        ("cn-qingdao", CENTRAL),
        ("cn-heyuan", CENTRAL),
        ("cn-wulanchabu", CENTRAL),
        ("cn-hangzhou-finance", CENTRAL),
        ("cn-beijing-finance-1", CENTRAL),
        ("cn-north-2-gov-1", CENTRAL),
    ],
};
const CODE: &str = SPEC.code;
const VERSION: &str = SPEC.api_version;
const PAGE_SIZE: usize = 50;
/// Detail reads in flight at once (the client also bounds requests per endpoint).
const PARALLEL_READS: usize = 8;
/// `TagResources`/`UntagResources`: at most 50 `ResourceId.N` and 20 `Tag.N` or `TagKey.N` per call, and
/// `ResourceType` is fixed to `INSTANCE` (the r-kvstore 2015-01-01 API pages on help.aliyun.com: "取值固定为
/// INSTANCE"; not in reference 3.2). The answer is `{RequestId}` alone (the official SDK's `TagResourcesResponseBody`
/// and `UntagResourcesResponseBody` hold nothing else, alibabacloud_r_kvstore20150101 7.0.0), so a bad id fails the
/// whole call (404 `InvalidDbInstanceId.NotFound`, reference corrections; the page lists 400
/// `InvalidParameter.ResourceId` too). `FailedResources`, the Tag service's shape, is read anyway: it costs nothing.
const TAG_BATCH: usize = 50;
const TAG_RESOURCE_TYPE: &str = "INSTANCE";

pub struct Redis;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInstancesResponse {
    #[serde(deserialize_with = "lenient_i64")]
    total_count: i64,
    instances: ListWrapper,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListWrapper {
    #[serde(default, rename = "KVStoreInstance")]
    kv_store_instance: Vec<Listed>,
}

/// A listed instance: the attribute read's fields but the release protection (reference 3.2).
type Listed = Attribute;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAttributeResponse {
    instances: AttributeWrapper,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeWrapper {
    #[serde(rename = "DBInstanceAttribute")]
    db_instance_attribute: Vec<Attribute>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    instance_id: String,
    #[serde(default)]
    instance_name: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
    instance_status: String,
    charge_type: String,
    #[serde(default)]
    create_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
    #[serde(default)]
    global_instance_id: Option<String>,
    /// Required in the attribute read: without it we cannot know whether the instance is protected (fail
    /// closed). Absent from the listing.
    #[serde(default, deserialize_with = "lenient_opt_bool")]
    instance_release_protection: Option<bool>,
    #[serde(default)]
    tags: Option<Tags>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tags {
    #[serde(default)]
    tag: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

/// The "no such instance" answer of `DescribeInstanceAttribute` and `DeleteInstance`: confirmed by the Terraform
/// provider (reference, corrections: `alicloud/errors.go` `InvalidKVStoreInstanceIdNotFound`, read as "gone" by
/// `service_alicloud_kvstore.go` and tolerated by the instance delete).
fn is_not_found(code: &str) -> bool {
    code == "InvalidInstanceId.NotFound"
}

/// `lenient_bool` for an optional field: `null` or absent reads as absent.
fn lenient_opt_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        v => lenient_bool(v).map(Some).map_err(serde::de::Error::custom),
    }
}

impl Attribute {
    /// `action` is the read the record came from: the attribute read must carry the protection flag; the
    /// listing has none (read as unprotected: only an instance no rule can match keeps the listing's record).
    fn into_instance(self, region: &str, action: &str) -> Result<Instance, ApiError> {
        let at = |field: &str| format!("instance {}: `{field}`", self.instance_id);
        let charge_type = match self.charge_type.as_str() {
            "PostPaid" => ChargeType::PayAsYouGo,
            "PrePaid" => ChargeType::Subscription,
            other => {
                return Err(shape(
                    action,
                    format!("{}: unknown charge type `{other}` (expected PrePaid or PostPaid)", at("ChargeType")),
                ))
            }
        };
        if let Some(r) = self.region_id.as_deref().filter(|r| !r.is_empty()) {
            if r != region {
                return Err(shape(action, format!("{}: `{r}` but region `{region}` was read", at("RegionId"))));
            }
        }
        let created_at = match self.create_time.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_api_time(s).map_err(|e| shape(action, format!("{}: {e}", at("CreateTime"))))?),
            None => None,
        };
        let expires_at = match charge_type {
            ChargeType::PayAsYouGo | ChargeType::Unknown => None,
            ChargeType::Subscription => parse_expiry(self.end_time.as_deref().unwrap_or(""))
                .map_err(|e| shape(action, format!("{}: {e}", at("EndTime"))))?,
        };
        let mut inst = Instance::new(CODE, region, &self.instance_id, charge_type);
        inst.name = self.instance_name.unwrap_or_default().into();
        // `running` means "a release would pull the power and needs force" (ECS). DeleteInstance only accepts
        // `Normal` instances, so the state is checked by `state_veto` instead.
        inst.running = false;
        inst.status = self.instance_status.into();
        inst.created_at = created_at;
        inst.expires_at = expires_at;
        inst.deletion_protection = match (self.instance_release_protection, action) {
            (Some(p), _) => p,
            (None, "DescribeInstances") => false,
            (None, _) => return Err(shape(action, format!("{}: missing", at("InstanceReleaseProtection")))),
        };
        inst.tags = self
            .tags
            .map(|t| {
                t.tag.into_iter().map(|t| (t.key, t.value.unwrap_or_default())).collect::<crate::inventory::Tags>()
            })
            .unwrap_or_default();
        if let Some(g) = self.global_instance_id.filter(|g| !g.is_empty()) {
            inst.extra.insert("GlobalInstanceId", &g);
        }
        Ok(inst)
    }
}

/// One `DescribeInstanceAttribute` answer → the instance, or `None` if it no longer exists.
fn attribute_answer(value: serde_json::Value, id: &str, region: &str) -> Result<Option<Instance>, ApiError> {
    let action = "DescribeInstanceAttribute";
    let resp: DescribeAttributeResponse = decode(action, value)?;
    let mut found = resp.instances.db_instance_attribute.into_iter();
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(a), None) if a.instance_id == id => a.into_instance(region, action).map(Some),
        (Some(a), None) => Err(shape(
            action,
            format!("`Instances.DBInstanceAttribute[0].InstanceId`: asked for {id}, got {}", a.instance_id),
        )),
        (Some(_), Some(_)) => {
            Err(shape(action, format!("`Instances.DBInstanceAttribute`: more than one record for {id}")))
        }
    }
}

async fn read_attribute(api: Client, region: String, id: String) -> Result<Option<Instance>, ApiError> {
    // RegionId is not a documented parameter here; the legacy SDK core adds it to every RPC request, and it
    // lets a shared endpoint (the emulator, the central host) tell regions apart.
    let req = ApiRequest::new(CODE, VERSION, "DescribeInstanceAttribute", &region)
        .param("InstanceId", id.clone())
        .param("RegionId", region.clone());
    match api.call(&req).await {
        Ok(v) => attribute_answer(v, &id, &region),
        Err(e) if e.code().is_some_and(is_not_found) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Redis {
    /// One `TagResources` or `UntagResources` call per 50 ids; `params` are the tag (or key) parameters.
    async fn tag_calls(
        &self,
        api: &Client,
        region: &str,
        action: &'static str,
        ids: &[String],
        params: &[(String, String)],
    ) -> TagReport {
        tag_batches(ids, TAG_BATCH, |chunk| async move {
            let mut req = ApiRequest::new(CODE, VERSION, action, region)
                .param("RegionId", region)
                .param("ResourceType", TAG_RESOURCE_TYPE);
            for (i, id) in chunk.iter().enumerate() {
                req = req.param(format!("ResourceId.{}", i + 1), id.clone());
            }
            for (k, v) in params {
                req = req.param(k.clone(), v.clone());
            }
            tag_answer(action, &api.call(&req).await?, &chunk)
        })
        .await
    }

    /// Every instance in `region` as the listing shows it, all pages. A repeated id means the pages cannot be
    /// trusted.
    async fn list_all(&self, api: &Client, region: &str) -> Result<Vec<Instance>, ApiError> {
        let action = "DescribeInstances";
        let mut ids = Vec::new();
        let mut seen = BTreeSet::new();
        for page in 1..=api.max_pages() {
            let req = ApiRequest::new(CODE, VERSION, action, region)
                .param("RegionId", region)
                .param("PageNumber", page.to_string())
                .param("PageSize", PAGE_SIZE.to_string());
            let resp: DescribeInstancesResponse = decode(action, api.call(&req).await?)?;
            let items = resp.instances.kv_store_instance;
            if items.len() > PAGE_SIZE {
                return Err(shape(
                    action,
                    format!("`Instances.KVStoreInstance`: {} instances on a page of {PAGE_SIZE}", items.len()),
                ));
            }
            let empty = items.is_empty();
            for (i, item) in items.into_iter().enumerate() {
                if let Some(r) = item.region_id.as_deref().filter(|r| !r.is_empty() && *r != region) {
                    return Err(shape(
                        action,
                        format!("`Instances.KVStoreInstance[{i}].RegionId`: `{r}` but region `{region}` was listed"),
                    ));
                }
                if !seen.insert(item.instance_id.clone()) {
                    return Err(shape(
                        action,
                        format!("instance {} listed twice: pagination is inconsistent", item.instance_id),
                    ));
                }
                ids.push(item.into_instance(region, action)?);
            }
            if empty || ids.len() as i64 >= resp.total_count {
                return Ok(ids);
            }
        }
        Err(shape(action, format!("more than {} pages (the page budget, JANITOR_MAX_PAGES)", api.max_pages())))
    }
}

#[async_trait]
impl Product for Redis {
    fn spec(&self) -> &'static ProductSpec {
        &SPEC
    }

    async fn list(&self, api: &Client, region: &str) -> Result<Vec<Instance>, ApiError> {
        self.list_all(api, region).await
    }

    fn listing_lacks_details(&self) -> bool {
        true
    }

    async fn get(&self, api: &Client, region: &str, ids: &[String]) -> Result<Vec<Instance>, ApiError> {
        read_each(ids, PARALLEL_READS, |id| read_attribute(api.clone(), region.to_string(), id)).await
    }

    async fn release(&self, api: &Client, call: &ReleaseCall) -> CallResult {
        let [id] = call.ids.as_slice() else {
            return Err(shape("DeleteInstance", format!("one id per call, {} given", call.ids.len())));
        };
        // No RegionId parameter (the endpoint picks the region); sent anyway as the legacy SDK does.
        let mut req = ApiRequest::new(CODE, VERSION, "DeleteInstance", &call.region)
            .param("InstanceId", id.clone())
            .param("RegionId", call.region.clone());
        if let Some(global) = call.extra.get(id).and_then(|x| x.get("GlobalInstanceId")).filter(|g| !g.is_empty()) {
            req = req.param("GlobalInstanceId", global);
        }
        // Mutating (never resent by the client): DeleteInstance has no ClientToken, so after a 5xx, a timeout or a
        // reset only a re-read can tell whether it acted; the execute stage reconciles (`release::reconcile`).
        api.call(&req.mutating()).await.map(|v| request_id(&v))
    }

    /// `Released` is a documented `InstanceStatus` (r-kvstore DescribeInstanceAttribute: "Released：已释放").
    fn release_seen(&self, instance: &Instance) -> Option<String> {
        instance.status.eq_ignore_ascii_case("Released").then(|| format!("status {}", instance.status))
    }

    fn state_veto(&self, instance: &Instance) -> Option<String> {
        (!instance.status.eq_ignore_ascii_case("Normal"))
            .then(|| format!("status {}: DeleteInstance only releases Normal instances", instance.status))
    }

    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }
}

#[async_trait]
impl Tagging for Redis {
    async fn tag(
        &self,
        api: &Client,
        region: &str,
        ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<TagReport, ApiError> {
        Ok(self.tag_calls(api, region, "TagResources", ids, &tag_params(tags)?).await)
    }

    async fn untag(&self, api: &Client, region: &str, ids: &[String], keys: &[String]) -> Result<TagReport, ApiError> {
        Ok(self.tag_calls(api, region, "UntagResources", ids, &untag_params(keys)?).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn attr(extra: Value) -> Value {
        let mut a = json!({
            "InstanceId": "r-1", "InstanceName": "cache", "RegionId": "cn-hangzhou", "InstanceStatus": "Normal",
            "ChargeType": "PostPaid", "CreateTime": "2026-01-01T00:00:00Z", "EndTime": "", "InstanceReleaseProtection": false,
            "Tags": {"Tag": [{"Key": "env", "Value": "dev"}]}
        });
        if let (Value::Object(a), Value::Object(x)) = (&mut a, extra) {
            a.extend(x);
        }
        json!({"RequestId": "R", "Instances": {"DBInstanceAttribute": [a]}})
    }

    fn read(v: Value) -> Result<Option<Instance>, ApiError> {
        attribute_answer(v, "r-1", "cn-hangzhou")
    }

    #[test]
    fn attribute_parses_into_an_instance() {
        let i = read(attr(json!({"GlobalInstanceId": "gr-9"}))).unwrap().unwrap();
        assert_eq!((i.product.as_str(), i.id.as_str(), i.status.as_str()), ("r-kvstore", "r-1", "Normal"));
        assert_eq!(i.charge_type, ChargeType::PayAsYouGo);
        assert!(!i.running && !i.deletion_protection);
        assert_eq!(i.tags.get("env"), Some("dev"));
        assert_eq!(i.extra.get("GlobalInstanceId"), Some("gr-9"));
        let sub = read(attr(
            json!({"ChargeType": "PrePaid", "EndTime": "2026-02-01T00:00:00Z", "InstanceReleaseProtection": "true"}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(sub.charge_type, ChargeType::Subscription);
        assert_eq!(sub.expires_at.unwrap().to_rfc3339(), "2026-02-01T00:00:00+00:00");
        assert!(sub.deletion_protection);
        assert_eq!(read(json!({"Instances": {"DBInstanceAttribute": []}})).unwrap(), None);
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let msg = |v: Value| read(v).unwrap_err().to_string();
        let mut missing = attr(json!({}));
        missing["Instances"]["DBInstanceAttribute"][0].as_object_mut().unwrap().remove("InstanceReleaseProtection");
        assert!(msg(missing).contains("InstanceReleaseProtection"));
        assert!(msg(attr(json!({"InstanceReleaseProtection": "maybe"}))).contains("InstanceReleaseProtection"));
        assert!(msg(attr(json!({"ChargeType": "Monthly"}))).contains("ChargeType"));
        assert!(msg(attr(json!({"ChargeType": "PrePaid", "EndTime": "soon"}))).contains("EndTime"));
        assert!(msg(attr(json!({"CreateTime": 7}))).contains("CreateTime"));
        assert!(msg(attr(json!({"RegionId": "cn-beijing"}))).contains("RegionId"));
        assert!(msg(attr(json!({"InstanceId": "r-2"}))).contains("InstanceId"));
        assert!(msg(json!({"Instances": {}})).contains("DBInstanceAttribute"));
        assert!(msg(json!({"RequestId": "R"})).contains("Instances"));
    }

    #[test]
    fn only_normal_instances_can_be_released() {
        let mut i = Instance::new(CODE, "cn-hangzhou", "r-1", ChargeType::PayAsYouGo);
        i.status = "Normal".into();
        assert_eq!(Redis.state_veto(&i), None);
        i.status = "Changing".into();
        assert!(Redis.state_veto(&i).unwrap().contains("Changing"));
    }
}

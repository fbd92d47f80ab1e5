//! ECS (version 2014-05-26): `DescribeInstances` to list, `DeleteInstances` (batch, native `DryRun`,
//! `ClientToken`) to release, `TagResources`/`UntagResources` to mark, `ModifyInstanceAutoReleaseTime` for the
//! platform's own release time. Reference section 3.1.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::shared::{request_id, tag_batches, tag_params, untag_params};
use super::{ArnForm, AutoRelease, CallResult, NativeDryRun, Product, ProductSpec, ReleaseCall, TagReport, Tagging};
use crate::aliyun::{ApiError, ApiRequest, Client};
use crate::inventory::{parse_api_time, parse_expiry, ChargeType, Instance};

pub(crate) const SPEC: ProductSpec = ProductSpec {
    code: "ecs",
    api_version: "2014-05-26",
    event_services: &["ecs"],
    arn: ArnForm { service: "ecs", kind: "instance" },
    state_change_type: Some("ecs:Instance:StateChange"),
    billing_codes: &["ecs"],
    releasable: &[ChargeType::PayAsYouGo, ChargeType::Subscription],
    batch_size: 100,
    force_from_rule: false,
    endpoints: &[
        // The SDK endpoint map's exceptions for ECS (reference, endpoints).
        ("cn-hangzhou-finance", "ecs.aliyuncs.com"),
        ("cn-shenzhen-finance-1", "ecs-cn-hangzhou.aliyuncs.com"),
    ],
};
const CODE: &str = SPEC.code;
const VERSION: &str = SPEC.api_version;
/// `TagResources`/`UntagResources` take at most 50 `ResourceId.N` and 20 tags or keys per call.
const TAG_BATCH: usize = 50;
/// Where `Instance::extra` keeps the platform's auto-release time (RFC 3339), when one is set; read back by
/// [`AutoRelease::scheduled`].
const AUTO_RELEASE_EXTRA: &str = "auto_release_time";

pub struct Ecs;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInstancesResponse {
    #[serde(default)]
    next_token: Option<String>,
    instances: InstanceList,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstanceList {
    #[serde(default)]
    instance: Vec<EcsInstance>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EcsInstance {
    instance_id: String,
    #[serde(default)]
    instance_name: String,
    #[serde(default)]
    region_id: Option<String>,
    status: String,
    instance_charge_type: String,
    #[serde(default)]
    creation_time: Option<String>,
    #[serde(default)]
    expired_time: Option<String>,
    /// Always in a real answer; absent means "cannot tell", never "unprotected" (fail closed).
    #[serde(default)]
    deletion_protection: Option<bool>,
    #[serde(default)]
    operation_locks: Option<Locks>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    auto_release_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Locks {
    #[serde(default)]
    lock_reason: Vec<Lock>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Lock {
    lock_reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tags {
    #[serde(default)]
    tag: Vec<Tag>,
}

/// ECS spells tag fields `TagKey`/`TagValue`, unlike most products.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    tag_key: String,
    #[serde(default)]
    tag_value: String,
}

fn shape(action: &str, detail: String) -> ApiError {
    ApiError::Shape { action: action.into(), detail }
}

impl EcsInstance {
    fn into_instance(self, region: &str) -> Result<Instance, ApiError> {
        let at = |field: &str| format!("instance {}: `{field}`", self.instance_id);
        let charge_type = match self.instance_charge_type.as_str() {
            "PostPaid" => ChargeType::PayAsYouGo,
            "PrePaid" => ChargeType::Subscription,
            other => {
                return Err(shape(
                    "DescribeInstances",
                    format!("{}: unknown charge type `{other}`", at("InstanceChargeType")),
                ))
            }
        };
        if let Some(r) = &self.region_id {
            if r != region {
                return Err(shape(
                    "DescribeInstances",
                    format!("{}: `{r}` but region `{region}` was listed", at("RegionId")),
                ));
            }
        }
        let created_at = match self.creation_time.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(
                parse_api_time(s).map_err(|e| shape("DescribeInstances", format!("{}: {e}", at("CreationTime"))))?,
            ),
            None => None,
        };
        let expires_at = match charge_type {
            ChargeType::PayAsYouGo | ChargeType::Unknown => None,
            ChargeType::Subscription => parse_expiry(self.expired_time.as_deref().unwrap_or(""))
                .map_err(|e| shape("DescribeInstances", format!("{}: {e}", at("ExpiredTime"))))?,
        };
        let mut inst = Instance::new(CODE, region, &self.instance_id, charge_type);
        inst.name = self.instance_name.into();
        inst.running = self.status.eq_ignore_ascii_case("Running");
        inst.status = self.status.into();
        inst.created_at = created_at;
        inst.expires_at = expires_at;
        inst.deletion_protection = self.deletion_protection.unwrap_or(false);
        inst.protection_unknown = match (self.deletion_protection, &self.operation_locks) {
            (None, _) => Some("DeletionProtection".into()),
            (_, None) => Some("OperationLocks".into()),
            _ => None,
        };
        inst.locks = self
            .operation_locks
            .map(|l| l.lock_reason.into_iter().map(|r| r.lock_reason).collect())
            .unwrap_or_default();
        inst.tags = self
            .tags
            .map(|t| t.tag.into_iter().map(|t| (t.tag_key, t.tag_value)).collect::<crate::inventory::Tags>())
            .unwrap_or_default();
        if let Some(s) = self.auto_release_time.as_deref().filter(|s| !s.trim().is_empty()) {
            let when =
                parse_api_time(s).map_err(|e| shape("DescribeInstances", format!("{}: {e}", at("AutoReleaseTime"))))?;
            inst.extra.insert(AUTO_RELEASE_EXTRA, &crate::lifecycle::format_time(when));
        }
        Ok(inst)
    }
}

impl Ecs {
    /// All pages of one DescribeInstances query. A repeated token or a repeated instance id means the
    /// listing cannot be trusted, so the whole listing fails (fail closed).
    async fn describe(&self, api: &Client, region: &str, ids: Option<&[String]>) -> Result<Vec<Instance>, ApiError> {
        let mut out = Vec::new();
        let mut seen_ids = BTreeSet::new();
        let mut seen_tokens = BTreeSet::new();
        let mut token: Option<String> = None;
        for _ in 0..api.max_pages() {
            let mut req = ApiRequest::new(CODE, VERSION, "DescribeInstances", region)
                .param("RegionId", region)
                .param("MaxResults", "100");
            if let Some(ids) = ids {
                let json = serde_json::to_string(ids).map_err(|e| shape("DescribeInstances", e.to_string()))?;
                req = req.param("InstanceIds", json);
            }
            if let Some(t) = &token {
                req = req.param("NextToken", t.clone());
            }
            let page: DescribeInstancesResponse = api.call_json(&req).await?;
            for raw in page.instances.instance {
                if !seen_ids.insert(raw.instance_id.clone()) {
                    return Err(shape(
                        "DescribeInstances",
                        format!("instance {} listed twice: pagination is inconsistent", raw.instance_id),
                    ));
                }
                out.push(raw.into_instance(region)?);
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                None => return Ok(out),
                Some(t) => {
                    if !seen_tokens.insert(t.clone()) {
                        return Err(shape("DescribeInstances", "NextToken repeated: pagination does not end".into()));
                    }
                    token = Some(t);
                }
            }
        }
        Err(shape(
            "DescribeInstances",
            format!("more than {} pages (the page budget, JANITOR_MAX_PAGES)", api.max_pages()),
        ))
    }

    /// One `TagResources` or `UntagResources` call per 50 ids; `params` are the tag (or key) parameters.
    async fn tag_calls(
        &self,
        api: &Client,
        region: &str,
        action: &'static str,
        ids: &[String],
        params: &[(String, String)],
    ) -> TagReport {
        // A whole-call answer (reference, corrections: only `RequestId`, no per-resource failures; one missing id
        // fails the call): a failed batch is split id by id by the shared `tag_batches`, as for Redis and Kafka.
        tag_batches(ids, TAG_BATCH, |chunk| async move {
            let mut req = ApiRequest::new(CODE, VERSION, action, region)
                .param("RegionId", region)
                .param("ResourceType", "instance");
            for (i, id) in chunk.iter().enumerate() {
                req = req.param(format!("ResourceId.{}", i + 1), id.clone());
            }
            for (k, v) in params {
                req = req.param(k.clone(), v.clone());
            }
            let v = api.call(&req).await?;
            Ok(TagReport {
                request_ids: Some(request_id(&v)).filter(|r| !r.is_empty()).into_iter().collect(),
                ..TagReport::default()
            })
        })
        .await
    }

    fn delete_request(&self, call: &ReleaseCall, dry_run: bool) -> ApiRequest {
        let mut req =
            ApiRequest::new(CODE, VERSION, "DeleteInstances", &call.region).param("RegionId", call.region.clone());
        for (i, id) in call.ids.iter().enumerate() {
            req = req.param(format!("InstanceId.{}", i + 1), id.clone());
        }
        if call.options.force {
            req = req.param("Force", "true");
        }
        if call.options.terminate_subscription {
            req = req.param("TerminateSubscription", "true");
        }
        if dry_run {
            req.param("DryRun", "true")
        } else {
            // Same run, same ids, same options → same token, so a retried call is a no-op on the server.
            req.param("ClientToken", call.client_token.clone())
        }
    }
}

#[async_trait]
impl Product for Ecs {
    fn spec(&self) -> &'static ProductSpec {
        &SPEC
    }

    async fn list(&self, api: &Client, region: &str) -> Result<Vec<Instance>, ApiError> {
        self.describe(api, region, None).await
    }

    async fn get(&self, api: &Client, region: &str, ids: &[String]) -> Result<Vec<Instance>, ApiError> {
        // Chunks of 100 ids (the `InstanceIds` maximum) read at once: the client's per-endpoint bound paces them,
        // and the pre-flight of a large release is not a sequential chain (benchmark: wall time).
        let reads = ids.chunks(100).map(|chunk| self.describe(api, region, Some(chunk)));
        Ok(futures_util::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn release(&self, api: &Client, call: &ReleaseCall) -> CallResult {
        let v = api.call(&self.delete_request(call, false)).await?;
        Ok(request_id(&v))
    }

    fn native_dry_run(&self) -> Option<&dyn NativeDryRun> {
        Some(self)
    }

    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    fn auto_release(&self) -> Option<&dyn AutoRelease> {
        Some(self)
    }
}

#[async_trait]
impl NativeDryRun for Ecs {
    async fn dry_run(&self, api: &Client, call: &ReleaseCall) -> CallResult {
        match api.call(&self.delete_request(call, true)).await {
            // A passing dry run is an error answer (reference 3.1); newer docs spell it DRYRUN.SUCCESS.
            Err(e) if e.is_dry_run_pass() => Ok(e.request_id().unwrap_or_default().to_string()),
            Err(e) => Err(e),
            Ok(_) => Err(shape("DeleteInstances", "a DryRun call answered success instead of DryRunOperation".into())),
        }
    }
}

#[async_trait]
impl Tagging for Ecs {
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

impl Ecs {
    /// `ModifyInstanceAutoReleaseTime`: pay-as-you-go only, 30 minutes to 3 years ahead, seconds truncated;
    /// without `AutoReleaseTime` it cancels (reference section 3.1).
    async fn modify_auto_release(&self, api: &Client, region: &str, id: &str, at: Option<DateTime<Utc>>) -> CallResult {
        let mut req = ApiRequest::new(CODE, VERSION, "ModifyInstanceAutoReleaseTime", region)
            .param("RegionId", region)
            .param("InstanceId", id);
        if let Some(at) = at {
            req = req.param("AutoReleaseTime", at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        let v = api.call(&req).await?;
        Ok(request_id(&v))
    }
}

#[async_trait]
impl AutoRelease for Ecs {
    /// The listing's `AutoReleaseTime`, kept in `Instance::extra` when the instance was read.
    fn scheduled(&self, instance: &Instance) -> Option<DateTime<Utc>> {
        instance
            .extra
            .get(AUTO_RELEASE_EXTRA)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    async fn set(&self, api: &Client, region: &str, id: &str, at: DateTime<Utc>) -> CallResult {
        self.modify_auto_release(api, region, id, Some(at)).await
    }

    async fn cancel(&self, api: &Client, region: &str, id: &str) -> CallResult {
        self.modify_auto_release(api, region, id, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 item 14: a missing protection field once read as "unprotected".
    #[test]
    fn a_missing_protection_field_means_cannot_tell() {
        let read = |v: serde_json::Value| {
            serde_json::from_value::<EcsInstance>(v).unwrap().into_instance("cn-hangzhou").unwrap()
        };
        let base = serde_json::json!({"InstanceId": "i-1", "Status": "Stopped", "InstanceChargeType": "PostPaid"});
        assert_eq!(read(base.clone()).protection_unknown.as_deref(), Some("DeletionProtection"));
        let mut no_locks = base.clone();
        no_locks["DeletionProtection"] = false.into();
        assert_eq!(read(no_locks.clone()).protection_unknown.as_deref(), Some("OperationLocks"));
        no_locks["OperationLocks"] = serde_json::json!({"LockReason": []});
        assert_eq!(read(no_locks).protection_unknown, None);
    }

    #[test]
    fn the_listed_auto_release_time_is_read_back() {
        let mut raw: EcsInstance = serde_json::from_value(serde_json::json!({
            "InstanceId": "i-1", "Status": "Running", "InstanceChargeType": "PostPaid",
            "AutoReleaseTime": "2026-12-01T10:00Z"
        }))
        .unwrap();
        let inst = raw.into_instance("cn-hangzhou").unwrap();
        assert_eq!(Ecs.scheduled(&inst).map(|t| t.to_rfc3339()), Some("2026-12-01T10:00:00+00:00".into()));
        raw = serde_json::from_value(serde_json::json!({
            "InstanceId": "i-2", "Status": "Running", "InstanceChargeType": "PostPaid", "AutoReleaseTime": ""
        }))
        .unwrap();
        assert_eq!(Ecs.scheduled(&raw.into_instance("cn-hangzhou").unwrap()), None);
    }
}

//! ApsaraMQ for Kafka (`alikafka`, version 2019-09-16, reference sections 3.3 and 7): `GetInstanceList` (no
//! paging, epoch-millisecond times) to list, `ReleaseInstance` to release, then `DeleteInstance` to remove the
//! released record. The Terraform provider's delete path (`resourceAliCloudAlikafkaInstanceDelete`) is the
//! model: `ReleaseInstance`, wait until `ServiceStatus` is 15, `DeleteInstance`; its reader takes `ServiceStatus`
//! 10 for "gone". Before `ReleaseInstance` the janitor tags `janitor:released`, so a later run can finish
//! (`DeleteInstance`) an instance still released-but-not-deleted, and only one the janitor released itself. Answers are business envelopes: HTTP 200 with `Success`/`Code`, and `Success: false` is an
//! error (the client turns it into one). No native dry run and no protection flag; only pay-as-you-go instances
//! can be released through the API. `TagResources`/`UntagResources` write and remove the lifecycle's marks,
//! which the listing's `Tags.TagVO` shows on the next run.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;

use super::shared::{
    decode, lenient_bool, lenient_i64, lenient_opt_i64, request_id, shape, tag_answer, tag_batches, tag_params,
    untag_params,
};
use super::{ArnForm, CallResult, Finish, FinishRelease, Poll, Product, ProductSpec, ReleaseCall, TagReport, Tagging};
use crate::aliyun::{ApiError, ApiRequest, Client};
use crate::inventory::{from_epoch_millis, ChargeType, Instance};

pub(crate) const SPEC: ProductSpec = ProductSpec {
    code: "alikafka",
    api_version: "2019-09-16",
    event_services: &["alikafka", "kafka"],
    arn: ArnForm { service: "alikafka", kind: "instance" },
    state_change_type: None,
    billing_codes: &["alikafka"],
    releasable: &[ChargeType::PayAsYouGo],
    batch_size: 1,
    force_from_rule: true,
    endpoints: &[],
};
const CODE: &str = SPEC.code;
const VERSION: &str = SPEC.api_version;
/// `ViewInstanceStatusCode` values a release is sent for: running and stopped.
const RELEASABLE_STATES: [i64; 2] = [2, 3];
/// `ViewInstanceStatusCode` released: the state to wait for when an answer carries no `ServiceStatus` (which
/// view code shows while `ServiceStatus` is 15 is UNVERIFIED; both readings are handled).
const RELEASED: i64 = 6;
/// `ViewInstanceStatusCode` while a release is under way (reference 3.3).
const RELEASING: i64 = 23;
/// `ServiceStatus` of a released instance whose record `DeleteInstance` removes (reference 3.3, corrected).
const SERVICE_RELEASED: i64 = 15;
/// `ServiceStatus` after `DeleteInstance`: the Terraform provider's reader treats it as "not found".
const SERVICE_GONE: i64 = 10;
/// Ids per filtered `GetInstanceList` (the API documents no limit for `InstanceId.N`; stay small).
const IDS_PER_READ: usize = 20;
/// `TagResources`/`UntagResources` (reference 3.3): `ResourceType` `INSTANCE` (documented, case-insensitive),
/// `ResourceId.N`, `Tag.N.Key/Value` or `TagKey.N`. The API documents no limits: 20 ids and 20 tags or keys
/// per call are our choice, the common Alibaba limit for tags (UNVERIFIED). The documented answer is
/// `{RequestId}` alone; an envelope (`Success`, `Code`) is accepted too and checked when present.
const TAG_BATCH: usize = 20;
const TAG_RESOURCE_TYPE: &str = "INSTANCE";

#[derive(Default)]
pub struct Kafka;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(deserialize_with = "lenient_bool")]
    success: bool,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    code: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResponse {
    // The envelope's fields, not a flattened `Envelope`: `flatten` buffers the whole answer (a region's full
    // list, for the pre-flight) as an untyped tree first (benchmark, 100k scenario: peak memory).
    #[serde(deserialize_with = "lenient_bool")]
    success: bool,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    code: Option<i64>,
    instance_list: InstanceList,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstanceList {
    #[serde(default, rename = "InstanceVO")]
    instance_vo: Vec<InstanceVo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstanceVo {
    instance_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    view_instance_status_code: i64,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    service_status: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    paid_type: i64,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    create_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    expired_time: Option<i64>,
    #[serde(default)]
    tags: Option<Tags>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tags {
    #[serde(default, rename = "TagVO")]
    tag_vo: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

/// The console's name for a `ViewInstanceStatusCode` (reference 3.3).
pub(crate) fn status_name(code: i64) -> &'static str {
    match code {
        0 => "pending",
        1 => "deploying",
        2 => "running",
        3 => "stopped",
        4 => "expiring",
        5 => "expired",
        6 => "released",
        7 => "upgrading",
        8 => "migrating",
        21 => "stopping",
        22 => "starting",
        23 => "releasing",
        30 => "auto-scaling",
        101 => "deploy failed",
        102 => "upgrade failed",
        103 => "migration failed",
        _ => "unknown",
    }
}

fn check_envelope(action: &str, e: &Envelope) -> Result<(), ApiError> {
    if !e.success {
        return Err(shape(action, "`Success` is false"));
    }
    match e.code {
        Some(200) | None => Ok(()),
        Some(c) => Err(shape(action, format!("`Code` is {c} with `Success: true` (expected 200)"))),
    }
}

/// A tag call's answer: the documented `{RequestId}`, or an envelope whose `Success`/`Code`, when present, say
/// success (`Success: false` is already an error from the client; anything else odd is refused, not guessed).
fn check_tag_envelope(action: &str, v: &serde_json::Value) -> Result<(), ApiError> {
    use serde_json::Value;
    match v.get("Success") {
        None | Some(Value::Null) | Some(Value::Bool(true)) => {}
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => {}
        Some(other) => return Err(shape(action, format!("`Success` is {other}, expected true"))),
    }
    match v.get("Code") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) if n.as_i64() == Some(200) => Ok(()),
        Some(Value::String(s)) if s.trim() == "200" => Ok(()),
        Some(other) => Err(shape(action, format!("`Code` is {other} in a successful answer (expected 200)"))),
    }
}

/// One tag or untag call for up to [`TAG_BATCH`] ids.
async fn tag_call(
    api: &Client,
    region: &str,
    action: &'static str,
    ids: &[String],
    params: &[(String, String)],
) -> Result<TagReport, ApiError> {
    let mut req = ApiRequest::new(CODE, VERSION, action, region)
        .param("RegionId", region)
        .param("ResourceType", TAG_RESOURCE_TYPE);
    for (i, id) in ids.iter().enumerate() {
        req = req.param(format!("ResourceId.{}", i + 1), id.clone());
    }
    for (k, v) in params {
        req = req.param(k.clone(), v.clone());
    }
    let v = api.call(&req).await?;
    check_tag_envelope(action, &v)?;
    tag_answer(action, &v, ids)
}

fn epoch(
    action: &str,
    id: &str,
    field: &str,
    ms: Option<i64>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    match ms {
        None | Some(0) => Ok(None),
        Some(ms) => from_epoch_millis(ms)
            .map(Some)
            .ok_or_else(|| shape(action, format!("instance {id}: `{field}`: {ms} is not an epoch-millisecond time"))),
    }
}

impl InstanceVo {
    fn into_instance(self, region: &str) -> Result<Instance, ApiError> {
        let action = "GetInstanceList";
        let id = self.instance_id.clone();
        let charge_type = match self.paid_type {
            // 0 subscription, 4 Confluent subscription (prepaid): the Terraform provider's
            // `convertAliKafkaPaidTypeResponse` maps "0" and "4" to PrePaid (reference 3.3, corrected).
            0 | 4 => ChargeType::Subscription,
            // 1 pay-as-you-go (hourly), 3 serverless.
            1 | 3 => ChargeType::PayAsYouGo,
            // Anything else is a billing method this adapter does not know: the instance is kept and reported
            // (one odd instance must not fail the region's listing).
            other => {
                tracing::warn!(id, paid_type = other, "unknown Kafka PaidType: the instance is never released");
                ChargeType::Unknown
            }
        };
        if let Some(r) = self.region_id.as_deref().filter(|r| !r.is_empty() && *r != region) {
            return Err(shape(action, format!("instance {id}: `RegionId`: `{r}` but region `{region}` was listed")));
        }
        let created_at = epoch(action, &id, "CreateTime", self.create_time)?;
        let expires_at = match charge_type {
            ChargeType::PayAsYouGo | ChargeType::Unknown => None,
            // Far-future values mean "never", as with the other products' sentinels.
            ChargeType::Subscription => {
                epoch(action, &id, "ExpiredTime", self.expired_time)?.filter(|t| chrono::Datelike::year(t) < 2099)
            }
        };
        let code = self.view_instance_status_code;
        let mut inst = Instance::new(CODE, region, &id, charge_type);
        inst.name = self.name.unwrap_or_default().into();
        inst.status = compact_str::format_compact!("{} ({code})", status_name(code));
        // Force (`ForceDeleteInstance`) is the rule's choice, not a matter of the instance running.
        inst.running = false;
        inst.created_at = created_at;
        inst.expires_at = expires_at;
        inst.tags = self
            .tags
            .map(|t| t.tag_vo.into_iter().map(|t| (t.key, t.value.unwrap_or_default())).collect())
            .unwrap_or_default();
        inst.extra.insert("ViewInstanceStatusCode", &code.to_string());
        if let Some(service) = self.service_status {
            inst.extra.insert("ServiceStatus", &service.to_string());
        }
        Ok(inst)
    }
}

/// One `GetInstanceList` answer → the instances `keep` takes (by id). Every record is checked for duplicates;
/// only the kept are converted.
fn list_answer(resp: ListResponse, region: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<Instance>, ApiError> {
    let action = "GetInstanceList";
    check_envelope(action, &Envelope { success: resp.success, code: resp.code })?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for vo in resp.instance_list.instance_vo {
        if !seen.insert(vo.instance_id.clone()) {
            return Err(shape(action, format!("instance {} listed twice", vo.instance_id)));
        }
        if keep(&vo.instance_id) {
            out.push(vo.into_instance(region)?);
        }
    }
    Ok(out)
}

fn state_code(instance: &Instance) -> Option<i64> {
    instance.extra.get("ViewInstanceStatusCode").and_then(|c| c.parse().ok())
}

fn service_status(instance: &Instance) -> Option<i64> {
    instance.extra.get("ServiceStatus").and_then(|c| c.parse().ok())
}

/// Where a released instance stands in the second step.
#[derive(Debug, PartialEq)]
enum Step {
    /// Released, its record still listed: `DeleteInstance` removes it.
    Releasable,
    /// Its record is gone (`ServiceStatus` 10).
    Gone,
    /// Not released yet (still releasing, or something else).
    NotYet,
}

/// `ServiceStatus` decides when the answer has it; without it, `ViewInstanceStatusCode` 6.
fn step(instance: &Instance) -> Step {
    match (service_status(instance), state_code(instance)) {
        (Some(SERVICE_RELEASED), _) => Step::Releasable,
        (Some(SERVICE_GONE), _) => Step::Gone,
        (None, Some(RELEASED)) => Step::Releasable,
        _ => Step::NotYet,
    }
}

impl Kafka {
    /// `GetInstanceList`, filtered by `ids` when given; answers only the instances `wanted` names (all without).
    async fn read(
        &self,
        api: &Client,
        region: &str,
        ids: Option<&[String]>,
        wanted: Option<&std::collections::BTreeSet<&str>>,
    ) -> Result<Vec<Instance>, ApiError> {
        let mut req = ApiRequest::new(CODE, VERSION, "GetInstanceList", region).param("RegionId", region);
        for (i, id) in ids.unwrap_or_default().iter().enumerate() {
            req = req.param(format!("InstanceId.{}", i + 1), id.clone());
        }
        // Unfiltered, the answer is the region's whole list (no paging): not a connection to keep.
        if ids.is_none() {
            req = req.large_answer();
        }
        let resp: ListResponse = api.call_json(&req).await?;
        // Whatever the service does with the filter, only the ids asked for are answered.
        list_answer(resp, region, |id| {
            wanted.is_none_or(|w| w.contains(id)) && ids.is_none_or(|ids| ids.iter().any(|x| x == id))
        })
    }

    /// One `TagResources` or `UntagResources` call per 20 ids; `params` are the tag (or key) parameters.
    async fn tag_calls(
        &self,
        api: &Client,
        region: &str,
        action: &'static str,
        ids: &[String],
        params: &[(String, String)],
    ) -> TagReport {
        tag_batches(ids, TAG_BATCH, |chunk| async move { tag_call(api, region, action, &chunk, params).await }).await
    }

    fn envelope_call(action: &'static str, v: serde_json::Value) -> CallResult {
        let request_id = request_id(&v);
        let env: Envelope = decode(action, v)?;
        check_envelope(action, &env)?;
        Ok(request_id)
    }
}

#[async_trait]
impl Product for Kafka {
    fn spec(&self) -> &'static ProductSpec {
        &SPEC
    }

    async fn list(&self, api: &Client, region: &str) -> Result<Vec<Instance>, ApiError> {
        self.read(api, region, None, None).await
    }

    async fn get(&self, api: &Client, region: &str, ids: &[String]) -> Result<Vec<Instance>, ApiError> {
        // More ids than one filtered read takes: the unfiltered listing is one call for the whole region (it is
        // what `list` reads), where filtered reads would be one per `IDS_PER_READ` ids. Same fresh answer.
        if ids.len() > IDS_PER_READ {
            let wanted: std::collections::BTreeSet<&str> = ids.iter().map(String::as_str).collect();
            return self.read(api, region, None, Some(&wanted)).await;
        }
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_READ) {
            out.extend(self.read(api, region, Some(chunk), None).await?);
        }
        Ok(out)
    }

    async fn release(&self, api: &Client, call: &ReleaseCall) -> CallResult {
        let [id] = call.ids.as_slice() else {
            return Err(shape("ReleaseInstance", format!("one id per call, {} given", call.ids.len())));
        };
        // The release record (`janitor:released`) was written by `prepare_releases` before this call.
        let mut req = ApiRequest::new(CODE, VERSION, "ReleaseInstance", &call.region)
            .param("RegionId", call.region.clone())
            .param("InstanceId", id.clone());
        // Frees the physical resources at once instead of after a grace period: only when the rule says force.
        if call.options.force {
            req = req.param("ForceDeleteInstance", "true");
        }
        // Mutating (never retried): there is no ClientToken, and what a repeated ReleaseInstance answers is
        // undocumented.
        Self::envelope_call("ReleaseInstance", api.call(&req.mutating()).await?)
    }

    fn state_veto(&self, instance: &Instance) -> Option<String> {
        match state_code(instance) {
            Some(c) if RELEASABLE_STATES.contains(&c) => None,
            _ => Some(format!(
                "status {}: ReleaseInstance is only sent for running (2) or stopped (3) instances",
                instance.status
            )),
        }
    }

    /// The release record (`janitor:released`), written before `ReleaseInstance` for the whole region at once (one
    /// `TagResources` per 20 ids); an id whose record could not be written is not released.
    async fn prepare_releases(&self, api: &Client, region: &str, ids: &[String]) -> BTreeMap<String, ApiError> {
        let at = crate::lifecycle::format_time(chrono::Utc::now());
        let tags = BTreeMap::from([(crate::lifecycle::RELEASED_TAG.to_string(), at)]);
        let params = match tag_params(&tags) {
            Ok(p) => p,
            Err(e) => return ids.iter().map(|id| (id.clone(), e.clone())).collect(),
        };
        let report = self.tag_calls(api, region, "TagResources", ids, &params).await;
        let request_id = report.request_ids.first().cloned().unwrap_or_default();
        report
            .failed
            .into_iter()
            .map(|(id, (code, message))| {
                let error = ApiError::Service {
                    action: "TagResources".into(),
                    status: 200,
                    code,
                    message: format!("the release record could not be written, so nothing was released: {message}"),
                    request_id: request_id.clone(),
                };
                (id, error)
            })
            .collect()
    }

    /// Releasing (`ViewInstanceStatusCode` 23) or released (`ServiceStatus` 15 or 10, view code 6).
    fn release_seen(&self, instance: &Instance) -> Option<String> {
        let releasing = state_code(instance) == Some(RELEASING);
        (releasing || step(instance) != Step::NotYet).then(|| {
            let service = service_status(instance).map(|s| format!(", ServiceStatus {s}")).unwrap_or_default();
            format!("status {}{service}", instance.status)
        })
    }

    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    fn finish_release(&self) -> Option<&dyn FinishRelease> {
        Some(self)
    }
}

#[async_trait]
impl Tagging for Kafka {
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

#[async_trait]
impl FinishRelease for Kafka {
    /// Re-reads the region's released instances together (one listing call per round, not one per instance)
    /// until each reads released (`ServiceStatus` 15), then removes its record with `DeleteInstance`; stops at
    /// the poll's bound and leaves the rest for a later run.
    async fn finish_releases(
        &self,
        api: &Client,
        region: &str,
        ids: &[String],
        poll: Poll,
    ) -> Vec<(String, Result<Finish, ApiError>)> {
        let mut pending: Vec<String> = ids.to_vec();
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::with_capacity(ids.len());
        let mut reads = 0;
        while !pending.is_empty() && reads < poll.reads.max(1) {
            if reads > 0 {
                let next = tokio::time::Instant::now() + poll.every;
                if poll.until.is_some_and(|until| next > until) {
                    break;
                }
                tokio::time::sleep_until(next).await;
            }
            reads += 1;
            let fresh = match self.get(api, region, &pending).await {
                Ok(f) => f,
                Err(e) => {
                    out.extend(pending.drain(..).map(|id| (id, Err(e.clone()))));
                    break;
                }
            };
            let mut ready = Vec::new();
            let mut still = Vec::new();
            for id in pending.drain(..) {
                match fresh.iter().find(|i| i.id == id) {
                    // Gone from the list, or reading as gone: nothing left to remove.
                    None => out.push((id, Ok(Finish::Done { request_id: String::new() }))),
                    Some(inst) => match step(inst) {
                        Step::Gone => out.push((id, Ok(Finish::Done { request_id: String::new() }))),
                        Step::Releasable => ready.push(id),
                        Step::NotYet => {
                            let service =
                                service_status(inst).map(|s| format!(", ServiceStatus {s}")).unwrap_or_default();
                            last.insert(id.clone(), format!("{}{service}", inst.status));
                            still.push(id);
                        }
                    },
                }
            }
            // The region's whole fresh list is not needed while the removals run (benchmark, 100k scenario: held
            // through every DeleteInstance in ten regions at once, about 12 MB of the peak).
            drop(fresh);
            let removals = ready.into_iter().map(|id| async move {
                let req = ApiRequest::new(CODE, VERSION, "DeleteInstance", region)
                    .param("RegionId", region)
                    .param("InstanceId", id.clone())
                    .mutating();
                let result = match api.call(&req).await {
                    Ok(v) => Self::envelope_call("DeleteInstance", v).map(|request_id| Finish::Done { request_id }),
                    Err(e) => Err(e),
                };
                (id, result)
            });
            // Not all of them waiting at once (benchmark, 100k scenario: 600 waiting removals per region held
            // about 8 MB of the peak).
            use futures_util::StreamExt;
            let removed = futures_util::stream::iter(removals).buffer_unordered(api.queue_depth());
            out.extend(removed.collect::<Vec<_>>().await);
            pending = still;
        }
        out.extend(pending.into_iter().map(|id| {
            let seen = last.get(&id).cloned().unwrap_or_else(|| "not read".into());
            let reason = format!(
                "still {seen} after {reads} reads; DeleteInstance removes the record once it reads released \
                 (ServiceStatus 15): a later run finishes it"
            );
            (id, Ok(Finish::Pending { reason }))
        }));
        out
    }

    /// Pay-as-you-go only (the janitor never releases a Kafka subscription, and `ServiceStatus` 15 on one can mean
    /// "expired"), with the janitor's release record, reading released.
    fn awaiting(&self, instance: &Instance) -> Option<String> {
        let at = instance.tags.get(crate::lifecycle::RELEASED_TAG)?;
        (instance.charge_type == ChargeType::PayAsYouGo && step(instance) == Step::Releasable).then(|| {
            let service = service_status(instance).map(|s| format!(", ServiceStatus {s}")).unwrap_or_default();
            format!(
                "released by the janitor at {at} ({}: {}{service}); its record awaits DeleteInstance",
                crate::lifecycle::RELEASED_TAG,
                instance.status
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn list_answer(value: Value, region: &str) -> Result<Vec<Instance>, ApiError> {
        super::list_answer(decode("GetInstanceList", value)?, region, |_| true)
    }

    fn vo(extra: Value) -> Value {
        let mut v = json!({
            "InstanceId": "alikafka_post-cn-1", "Name": "events", "RegionId": "cn-hangzhou", "ServiceStatus": 5,
            "ViewInstanceStatusCode": 2, "PaidType": 1, "CreateTime": 1577961819000i64, "ExpiredTime": 1893581018000i64,
            "Tags": {"TagVO": [{"Key": "env", "Value": "dev"}]}
        });
        if let (Value::Object(v), Value::Object(x)) = (&mut v, extra) {
            v.extend(x);
        }
        json!({"RequestId": "R", "Code": 200, "Success": true, "Message": "operation success.", "InstanceList": {"InstanceVO": [v]}})
    }

    #[test]
    fn instance_vo_parses() {
        let i = &list_answer(vo(json!({})), "cn-hangzhou").unwrap()[0];
        assert_eq!(i.status, "running (2)");
        assert_eq!(i.charge_type, ChargeType::PayAsYouGo);
        assert_eq!(i.expires_at, None);
        assert_eq!(i.created_at.unwrap().to_rfc3339(), "2020-01-02T10:43:39+00:00");
        assert_eq!(i.tags.get("env"), Some("dev"));
        assert_eq!(Kafka.state_veto(i), None);
        let sub = &list_answer(
            vo(json!({"PaidType": "0", "ViewInstanceStatusCode": "6", "Code": "200", "Success": "true"})),
            "cn-hangzhou",
        )
        .unwrap()[0];
        assert_eq!(sub.charge_type, ChargeType::Subscription);
        assert_eq!(sub.expires_at.unwrap().to_rfc3339(), "2030-01-02T10:43:38+00:00");
        assert_eq!(sub.status, "released (6)");
        assert!(Kafka.state_veto(sub).unwrap().contains("released (6)"));
        assert_eq!(
            list_answer(vo(json!({"PaidType": 3})), "cn-hangzhou").unwrap()[0].charge_type,
            ChargeType::PayAsYouGo
        );
        // Issue 12, item 11: a Confluent instance (4) is a subscription, never pay-as-you-go.
        assert_eq!(
            list_answer(vo(json!({"PaidType": 4})), "cn-hangzhou").unwrap()[0].charge_type,
            ChargeType::Subscription
        );
    }

    #[test]
    fn the_second_step_waits_for_service_status_15_and_the_janitors_record() {
        let read = |extra: Value| list_answer(vo(extra), "cn-hangzhou").unwrap().remove(0);
        // Terraform's delete path: ServiceStatus 15 is released-but-not-deleted, 10 is gone.
        assert_eq!(step(&read(json!({"ServiceStatus": 15, "ViewInstanceStatusCode": 6}))), Step::Releasable);
        assert_eq!(step(&read(json!({"ServiceStatus": 15, "ViewInstanceStatusCode": 5}))), Step::Releasable);
        assert_eq!(step(&read(json!({"ServiceStatus": 10, "ViewInstanceStatusCode": 6}))), Step::Gone);
        assert_eq!(step(&read(json!({"ServiceStatus": 5, "ViewInstanceStatusCode": 23}))), Step::NotYet);
        // The other reading: an answer without ServiceStatus, showing released (6).
        let mut bare = vo(json!({"ViewInstanceStatusCode": 6}));
        bare["InstanceList"]["InstanceVO"][0].as_object_mut().unwrap().remove("ServiceStatus");
        assert_eq!(step(&list_answer(bare, "cn-hangzhou").unwrap()[0]), Step::Releasable);
        // A later run finishes only the janitor's own pay-as-you-go releases.
        let record = json!({"Key": "janitor:released", "Value": "2026-11-30T03:00:00Z"});
        let released = json!({"ServiceStatus": 15, "ViewInstanceStatusCode": 6, "Tags": {"TagVO": [record]}});
        assert!(Kafka.awaiting(&read(released.clone())).unwrap().contains("2026-11-30T03:00:00Z"));
        let mut sub = released.clone();
        sub["PaidType"] = json!(0);
        assert_eq!(Kafka.awaiting(&read(sub)), None, "15 on a subscription can mean expired");
        assert_eq!(Kafka.awaiting(&read(json!({"ServiceStatus": 15, "ViewInstanceStatusCode": 6}))), None);
        let mut releasing = released;
        releasing["ServiceStatus"] = json!(5);
        assert_eq!(Kafka.awaiting(&read(releasing)), None);
    }

    #[test]
    fn tag_answers_with_or_without_an_envelope() {
        for ok in [
            json!({"RequestId": "R"}),
            json!({"RequestId": "R", "Code": 200, "Success": true}),
            json!({"Code": "200", "Success": "true"}),
        ] {
            assert!(check_tag_envelope("TagResources", &ok).is_ok(), "{ok}");
        }
        for bad in
            [json!({"Code": 500, "Success": true}), json!({"Success": "maybe"}), json!({"Code": "ONS_SYSTEM_ERROR"})]
        {
            let e = check_tag_envelope("TagResources", &bad).unwrap_err();
            assert_eq!(e.summary_code(), "MalformedResponse", "{bad}");
        }
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let msg = |v: Value| list_answer(v, "cn-hangzhou").unwrap_err().to_string();
        assert_eq!(list_answer(vo(json!({"PaidType": 2})), "cn-hangzhou").unwrap()[0].charge_type, ChargeType::Unknown);
        assert!(msg(vo(json!({"PaidType": "monthly"}))).contains("PaidType"));
        assert!(msg(vo(json!({"CreateTime": "2020-01-01"}))).contains("CreateTime"));
        assert!(msg(vo(json!({"ViewInstanceStatusCode": null}))).contains("ViewInstanceStatusCode"));
        assert!(msg(vo(json!({"RegionId": "cn-beijing"}))).contains("RegionId"));
        assert!(msg(json!({"Code": 200, "Success": true})).contains("InstanceList"));
        assert!(msg(json!({"Code": 200, "InstanceList": {"InstanceVO": []}})).contains("Success"));
        assert!(msg(json!({"Code": 500, "Success": true, "InstanceList": {"InstanceVO": []}})).contains("Code"));
        assert!(msg(json!({"Success": false, "InstanceList": {"InstanceVO": []}})).contains("Success"));
    }
}

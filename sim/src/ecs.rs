//! ECS, version `2014-05-26` (reference sections 3.1 and 7): `DescribeInstances`, `DeleteInstances`,
//! `DeleteInstance` and `DescribeRegions`, served from the inventory's `ecs` section; `TagResources`,
//! `UntagResources` and `ModifyInstanceAutoReleaseTime` change the served instance objects.
//!
//! Tagging fails as a whole call (reference, "Corrections and additions": ECS `TagResources`/`UntagResources`
//! answer only `RequestId`, with no per-resource failure list): one id not in the region fails the call with 404
//! `InvalidResourceId.NotFound`, one instance that would carry more than 20 tags with 400 `InvalidTagCount`, and
//! nothing of the call is applied.
//! An instance whose `AutoReleaseTime` has passed on the emulator clock is gone, as the platform would release it,
//! deletion protection or not (release protection does not stop an automatic release, reference 3.1).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::controls::Mutation;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::inventory::{Fields, SimError};
use super::params::{api_params, boolean, number, optional, repeat_list, required, Params};
use super::reply::ApiFault;
use super::service::{ActionKind, Env, Service};
use super::tagging::tag_pairs;
use crate::time;

pub(crate) const VERSION: &str = "2014-05-26";
const STATUSES: &[&str] = &["Pending", "Running", "Starting", "Stopping", "Stopped"];
const CHARGE_TYPES: &[&str] = &["PostPaid", "PrePaid"];
/// `InstanceIds`, `InstanceId.N`, `MaxResults` and `PageSize` all stop at 100.
const MAX_BATCH: usize = 100;
/// `ResourceId.N` of the tag APIs stops at 50; `Tag.N`/`TagKey.N` at 20, as do the tags of one resource.
const MAX_TAG_RESOURCES: usize = 50;
const MAX_TAGS: usize = 20;

struct EcsInstance {
    id: String,
    region: String,
    zone: Option<String>,
    status: String,
    prepaid: bool,
    /// `None`: never expires (the `2099-12-31T15:59Z` sentinel).
    expires: Option<DateTime<Utc>>,
    deletion_protection: bool,
    locks: Vec<String>,
    tags: Vec<(String, String)>,
    /// The platform releases the instance at this time (`ModifyInstanceAutoReleaseTime`).
    auto_release: Option<DateTime<Utc>>,
    /// The inventory object, served verbatim (tags and `AutoReleaseTime` are kept up to date in it).
    raw: Value,
    /// `_sim.mutate_after_reads` (see `controls`): merged into `raw` once `after` answers have included it.
    mutation: Option<Mutation>,
    reads: u32,
}

/// The emulator controls an ECS inventory object accepts.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Controls {
    #[serde(default)]
    mutate_after_reads: Option<Mutation>,
}

impl EcsInstance {
    fn sync_raw(&mut self) {
        if let Value::Object(obj) = &mut self.raw {
            let tags: Vec<Value> = self.tags.iter().map(|(k, v)| json!({"TagKey": k, "TagValue": v})).collect();
            obj.insert("Tags".into(), json!({ "Tag": tags }));
            obj.insert(
                "AutoReleaseTime".into(),
                Value::String(self.auto_release.as_ref().map(time::format_minutes).unwrap_or_default()),
            );
        }
    }
}

/// The original answer to a `ClientToken`, replayed for a retry with the same parameters.
struct Replay {
    fingerprint: Params,
    response: Value,
}

pub(crate) struct Ecs {
    instances: BTreeMap<String, EcsInstance>,
    regions: BTreeSet<String>,
    /// Issued `NextToken`s: token → (region, id of the last instance on the page before).
    page_tokens: HashMap<String, (String, String)>,
    client_tokens: HashMap<String, Replay>,
}

pub(crate) fn load(section: Option<&Value>) -> Result<Box<dyn Service>, SimError> {
    let items: &[Value] = match section {
        None | Some(Value::Null) => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Err(SimError::invalid("ecs", "expected an array of DescribeInstances instance objects")),
    };
    let mut instances = BTreeMap::new();
    for (i, v) in items.iter().enumerate() {
        let inst = parse_instance(i, v)?;
        if instances.contains_key(&inst.id) {
            return Err(SimError::invalid(
                format!("ecs[{i}].InstanceId"),
                format!("duplicate instance id `{}`", inst.id),
            ));
        }
        instances.insert(inst.id.clone(), inst);
    }
    let regions = instances.values().map(|i| i.region.clone()).collect();
    Ok(Box::new(Ecs { instances, regions, page_tokens: HashMap::new(), client_tokens: HashMap::new() }))
}

fn parse_instance(i: usize, v: &Value) -> Result<EcsInstance, SimError> {
    let mut v = v.clone();
    let controls: Controls = match &mut v {
        Value::Object(obj) if obj.contains_key("_sim") => crate::controls::take(&format!("ecs[{i}]"), obj)?,
        _ => Controls::default(),
    };
    let mut inst = parse_fields(i, v)?;
    inst.mutation = controls.mutate_after_reads;
    // DescribeInstances always answers both fields (API reference, DescribeInstances response: `DeletionProtection`
    // boolean, `OperationLocks.LockReason` array, empty when unlocked): an inventory may leave them out.
    if let Value::Object(obj) = &mut inst.raw {
        obj.entry("DeletionProtection").or_insert(Value::Bool(false));
        obj.entry("OperationLocks").or_insert_with(|| json!({"LockReason": []}));
    }
    Ok(inst)
}

/// Reads an instance object, keeping it (moved, not copied) to serve verbatim.
fn parse_fields(i: usize, v: Value) -> Result<EcsInstance, SimError> {
    let f = Fields::of("ecs", i, &v)?;
    let prepaid = f.one_of("InstanceChargeType", CHARGE_TYPES)? == "PrePaid";
    if let Some(t) = f.opt_str("CreationTime")? {
        time::parse(t).map_err(|e| f.err("CreationTime", e.to_string()))?;
    }
    let expires = match f.opt_str("ExpiredTime")? {
        Some(t) => time::parse_optional(t).map_err(|e| f.err("ExpiredTime", e.to_string()))?,
        None if prepaid => return Err(f.err("ExpiredTime", "required for a PrePaid instance")),
        None => None,
    };
    let locks = f
        .wrapped_list("OperationLocks", "LockReason")?
        .iter()
        .enumerate()
        .map(|(j, o)| match o.get("LockReason") {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(
                f.err(&format!("OperationLocks.LockReason[{j}].LockReason"), "expected a string such as \"security\"")
            ),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tags = f
        .wrapped_list("Tags", "Tag")?
        .iter()
        .enumerate()
        .map(|(j, o)| match (o.get("TagKey"), o.get("TagValue")) {
            (Some(Value::String(k)), Some(Value::String(v))) => Ok((k.clone(), v.clone())),
            (Some(Value::String(k)), None | Some(Value::Null)) => Ok((k.clone(), String::new())),
            _ => Err(f.err(&format!("Tags.Tag[{j}]"), "expected {\"TagKey\": string, \"TagValue\": string}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let auto_release = match f.opt_str("AutoReleaseTime")?.filter(|t| !t.trim().is_empty()) {
        Some(t) => Some(time::parse(t).map_err(|e| f.err("AutoReleaseTime", e.to_string()))?),
        None => None,
    };
    Ok(EcsInstance {
        id: f.req_str("InstanceId")?.to_string(),
        region: f.req_str("RegionId")?.to_string(),
        zone: f.opt_str("ZoneId")?.map(str::to_string),
        status: f.one_of("Status", STATUSES)?.to_string(),
        prepaid,
        expires,
        deletion_protection: f.opt_bool("DeletionProtection")?.unwrap_or(false),
        locks,
        tags,
        auto_release,
        mutation: None,
        reads: 0,
        raw: v,
    })
}

impl Ecs {
    /// Counts one more answer that included each of `ids`, and applies a due `mutate_after_reads` (the next
    /// answer shows it). A mutation that does not parse is dropped: the emulator's inputs were checked at load.
    fn served(&mut self, ids: &[String]) {
        for id in ids {
            let Some(inst) = self.instances.get_mut(id) else { continue };
            inst.reads += 1;
            let due = inst.mutation.as_ref().is_some_and(|m| inst.reads >= m.after);
            if let (true, Some(m), Value::Object(raw)) = (due, inst.mutation.take(), &mut inst.raw) {
                raw.extend(m.set);
                let merged = inst.raw.clone();
                if let Ok(mut fresh) = parse_fields(0, merged) {
                    fresh.reads = inst.reads;
                    *inst = fresh;
                }
            }
        }
    }
}

impl Service for Ecs {
    fn product(&self) -> &'static str {
        "ecs"
    }

    fn version(&self) -> &'static str {
        VERSION
    }

    fn action_kind(&self, action: &str) -> Option<ActionKind> {
        match action {
            "DescribeInstances" | "DescribeRegions" => Some(ActionKind::Read),
            "DeleteInstances" | "DeleteInstance" => Some(ActionKind::Release),
            "TagResources" | "UntagResources" | "ModifyInstanceAutoReleaseTime" => Some(ActionKind::Write),
            _ => None,
        }
    }

    fn handle(&mut self, action: &str, p: &Params, env: &Env<'_>) -> Result<Value, ApiFault> {
        // The platform's own auto-release, applied lazily on the emulator clock. Release protection does not stop
        // it (ECS release-protection page: it "does not prevent automatic instance releases"; reference 3.1).
        self.instances.retain(|_, i| i.auto_release.is_none_or(|t| t > env.now));
        // An expired subscription carries the `financial` lock (ECS "API behavior when your account has an overdue
        // payment or your subscription resources expire"; reference, corrections), and reports `Stopped`.
        for i in self.instances.values_mut() {
            let expired = i.prepaid && i.expires.is_some_and(|t| t <= env.now);
            if expired && !i.locks.iter().any(|l| l == "financial") {
                i.locks.push("financial".into());
                let locks: Vec<Value> = i.locks.iter().map(|l| json!({"LockReason": l})).collect();
                if let Value::Object(obj) = &mut i.raw {
                    obj.insert("OperationLocks".into(), json!({ "LockReason": locks }));
                }
            }
        }
        match action {
            "TagResources" => self.tag_resources(p),
            "UntagResources" => self.untag_resources(p),
            "ModifyInstanceAutoReleaseTime" => self.modify_auto_release_time(p, env),
            "DescribeInstances" => self.describe_instances(p),
            "DescribeRegions" => Ok(self.describe_regions()),
            "DeleteInstances" => self.delete_instances(p, env),
            "DeleteInstance" => self.delete_instance(p, env),
            _ => Err(ApiFault::action_not_found()),
        }
    }

    fn instance_ids(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }

    fn snapshot(&self) -> Value {
        Value::Array(self.instances.values().map(|i| i.raw.clone()).collect())
    }
}

/// `DescribeInstances` filters other than the region.
struct Filter {
    ids: Option<Vec<String>>,
    status: Option<String>,
    charge_type: Option<String>,
    zone: Option<String>,
    /// `Tag.N.Key` with an optional `Tag.N.Value`: the instance must carry every one.
    tags: Vec<(String, Option<String>)>,
}

impl Filter {
    fn parse(p: &Params) -> Result<Self, ApiFault> {
        let ids = match optional(p, "InstanceIds") {
            None => None,
            Some(text) => {
                let ids: Vec<String> = serde_json::from_str(text)
                    .map_err(|_| ApiFault::invalid("InstanceIds", "expected a JSON array of instance ids"))?;
                if ids.len() > MAX_BATCH {
                    return Err(ApiFault::invalid("InstanceIds", "at most 100 ids"));
                }
                (!ids.is_empty()).then_some(ids)
            }
        };
        let one_of = |name: &str, allowed: &[&str]| match optional(p, name) {
            Some(v) if !allowed.contains(&v) => {
                Err(ApiFault::invalid(name, &format!("expected one of {}", allowed.join(", "))))
            }
            v => Ok(v.map(str::to_string)),
        };
        let mut tags: BTreeMap<u64, (Option<String>, Option<String>)> = BTreeMap::new();
        for (k, v) in p {
            let Some((n, field)) = k.strip_prefix("Tag.").and_then(|rest| rest.split_once('.')) else { continue };
            let n = match n.parse::<u64>() {
                Ok(n) if (1..=20).contains(&n) => n,
                _ => return Err(ApiFault::invalid(k, "the tag index must be from 1 to 20")),
            };
            let slot = tags.entry(n).or_default();
            match field {
                "Key" => slot.0 = Some(v.clone()),
                "Value" => slot.1 = Some(v.clone()),
                _ => {}
            }
        }
        let tags = tags
            .into_iter()
            .map(|(n, (key, value))| match key {
                Some(k) if !k.is_empty() => Ok((k, value)),
                _ => Err(ApiFault::missing(&format!("Tag.{n}.Key"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            ids,
            status: one_of("Status", STATUSES)?,
            charge_type: one_of("InstanceChargeType", CHARGE_TYPES)?,
            zone: optional(p, "ZoneId").map(str::to_string),
            tags,
        })
    }

    fn matches(&self, i: &EcsInstance) -> bool {
        let charge = if i.prepaid { "PrePaid" } else { "PostPaid" };
        self.ids.as_ref().is_none_or(|ids| ids.contains(&i.id))
            && self.status.as_ref().is_none_or(|s| *s == i.status)
            && self.charge_type.as_ref().is_none_or(|c| c == charge)
            && self.zone.as_ref().is_none_or(|z| i.zone.as_ref() == Some(z))
            && self
                .tags
                .iter()
                .all(|(k, v)| i.tags.iter().any(|(tk, tv)| tk == k && v.as_ref().is_none_or(|v| v == tv)))
    }
}

/// Release flags that change which instances a release accepts.
struct ReleaseOptions {
    force: bool,
    terminate_subscription: bool,
}

impl Ecs {
    /// Both pagination styles (reference 3.1): `MaxResults` + `NextToken` when either is present (then the page
    /// numbers are ignored, and `PageNumber` is always 1), else the legacy `PageNumber` + `PageSize`.
    /// Instances are sorted by id, so pages are stable; a `NextToken` is a cursor after the last id of its page,
    /// so releasing instances between pages never makes the listing skip one.
    fn describe_instances(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let region = required(p, "RegionId")?;
        let filter = Filter::parse(p)?;
        // DryRun on a listing checks permission only (reference section 2: it tells "none" from "not allowed").
        if boolean(p, "DryRun")? {
            return Err(dry_run_passed());
        }
        let matching: Vec<&EcsInstance> =
            self.instances.values().filter(|i| i.region == region && filter.matches(i)).collect();
        let total = matching.len();
        if p.contains_key("MaxResults") || p.contains_key("NextToken") {
            let max = number(p, "MaxResults", 1..=MAX_BATCH as u64, 10)? as usize;
            let after = match optional(p, "NextToken") {
                None => None,
                Some(token) => match self.page_tokens.get(token) {
                    Some((r, last)) if r == region => Some(last.clone()),
                    _ => {
                        return Err(ApiFault::new(
                            400,
                            "InvalidParameter.NextToken",
                            "The specified NextToken is not valid.",
                        ))
                    }
                },
            };
            let rest: Vec<&EcsInstance> =
                matching.into_iter().filter(|i| after.as_ref().is_none_or(|a| i.id > *a)).collect();
            let page: Vec<Value> = rest.iter().take(max).map(|i| i.raw.clone()).collect();
            let served: Vec<String> = rest.iter().take(max).map(|i| i.id.clone()).collect();
            let next = match (rest.len() > max, rest.get(max.saturating_sub(1))) {
                (true, Some(last)) => {
                    let token = uuid::Uuid::new_v4().simple().to_string();
                    self.page_tokens.insert(token.clone(), (region.to_string(), last.id.clone()));
                    token
                }
                _ => String::new(),
            };
            self.served(&served);
            return Ok(
                json!({"NextToken": next, "PageNumber": 1, "PageSize": max, "TotalCount": total, "Instances": {"Instance": page}}),
            );
        }
        let page_number = number(p, "PageNumber", 1..=u32::MAX as u64, 1)?;
        let page_size = number(p, "PageSize", 1..=MAX_BATCH as u64, 10)?;
        let skip = (page_number - 1).saturating_mul(page_size);
        let shown: Vec<&&EcsInstance> =
            matching.iter().skip(usize::try_from(skip).unwrap_or(usize::MAX)).take(page_size as usize).collect();
        let page: Vec<Value> = shown.iter().map(|i| i.raw.clone()).collect();
        let served: Vec<String> = shown.iter().map(|i| i.id.clone()).collect();
        self.served(&served);
        Ok(
            json!({"NextToken": "", "PageNumber": page_number, "PageSize": page_size, "TotalCount": total, "Instances": {"Instance": page}}),
        )
    }

    fn describe_regions(&self) -> Value {
        let regions: Vec<Value> = self
            .regions
            .iter()
            .map(|r| json!({"RegionId": r, "LocalName": r, "RegionEndpoint": format!("ecs.{r}.aliyuncs.com"), "Status": "available"}))
            .collect();
        json!({"Regions": {"Region": regions}})
    }

    /// Batch release, atomic over the batch: the real API is not documented as partial, so one refused id
    /// fails the whole call and nothing is released (our client bisects). Idempotent with `ClientToken`.
    fn delete_instances(&mut self, p: &Params, env: &Env<'_>) -> Result<Value, ApiFault> {
        let region = required(p, "RegionId")?;
        let ids = repeat_list(p, "InstanceId", MAX_BATCH)?;
        let opts = release_options(p)?;
        let client_token = optional(p, "ClientToken");
        if let Some(t) = client_token {
            if t.len() > 64 || !t.is_ascii() {
                return Err(ApiFault::invalid("ClientToken", "at most 64 ASCII characters"));
            }
        }
        // A dry run checks permission and parameters only, not the instances (reference 3.1).
        if boolean(p, "DryRun")? {
            return Err(dry_run_passed());
        }
        let fingerprint = api_params(p);
        if let Some(replay) = client_token.and_then(|t| self.client_tokens.get(t)) {
            if replay.fingerprint == fingerprint {
                return Ok(replay.response.clone());
            }
            return Err(ApiFault::new(
                400,
                "IdempotentParameterMismatch",
                "The specified parameters are different from before.",
            ));
        }
        for id in &ids {
            self.check_release(id, Some(region), &opts, env.now)?;
        }
        for id in &ids {
            self.instances.remove(id);
        }
        let response = json!({"RequestId": env.request_id});
        if let Some(t) = client_token {
            self.client_tokens.insert(t.to_string(), Replay { fingerprint, response: response.clone() });
        }
        Ok(response)
    }

    /// Single release. It has no `RegionId` (the endpoint host picks the region) and no `ClientToken`.
    fn delete_instance(&mut self, p: &Params, env: &Env<'_>) -> Result<Value, ApiFault> {
        let id = required(p, "InstanceId")?;
        let opts = release_options(p)?;
        if boolean(p, "DryRun")? {
            return Err(dry_run_passed());
        }
        self.check_release(id, None, &opts, env.now)?;
        self.instances.remove(id);
        Ok(json!({}))
    }

    /// The instances of a tag call, all found in the region, or the whole call's error.
    fn tag_targets(&self, p: &Params) -> Result<Vec<String>, ApiFault> {
        let region = required(p, "RegionId")?;
        let resource_type = required(p, "ResourceType")?;
        if resource_type != "instance" {
            return Err(ApiFault::invalid("ResourceType", "the emulator tags instances only (ResourceType=instance)"));
        }
        let ids = repeat_list(p, "ResourceId", MAX_TAG_RESOURCES)?;
        if let Some(id) = ids.iter().find(|id| self.instances.get(*id).is_none_or(|i| i.region != region)) {
            return Err(ApiFault::new(
                404,
                "InvalidResourceId.NotFound",
                format!("The specified resource {id} does not exist in {region}."),
            ));
        }
        Ok(ids)
    }

    fn tag_resources(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let tags = tag_pairs(p, MAX_TAGS)?;
        let ids = self.tag_targets(p)?;
        // Checked for every instance before any is changed: the call succeeds or fails whole.
        for id in &ids {
            let Some(inst) = self.instances.get(id) else { continue };
            let added = tags.iter().filter(|(k, _)| !inst.tags.iter().any(|(tk, _)| tk == k)).count();
            if inst.tags.len() + added > MAX_TAGS {
                return Err(ApiFault::new(
                    400,
                    "InvalidTagCount",
                    format!("A resource can carry at most {MAX_TAGS} tags."),
                ));
            }
        }
        for id in ids {
            let Some(inst) = self.instances.get_mut(&id) else { continue };
            for (k, v) in &tags {
                match inst.tags.iter_mut().find(|(tk, _)| tk == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => inst.tags.push((k.clone(), v.clone())),
                }
            }
            inst.sync_raw();
        }
        Ok(json!({}))
    }

    fn untag_resources(&mut self, p: &Params) -> Result<Value, ApiFault> {
        let all = boolean(p, "All")?;
        let keys = if all { Vec::new() } else { repeat_list(p, "TagKey", MAX_TAGS)? };
        for id in self.tag_targets(p)? {
            let Some(inst) = self.instances.get_mut(&id) else { continue };
            inst.tags.retain(|(k, _)| !all && !keys.contains(k));
            inst.sync_raw();
        }
        Ok(json!({}))
    }

    /// Sets or (without `AutoReleaseTime`) cancels the platform's release time: pay-as-you-go only, 30 minutes to
    /// 3 years ahead of the emulator clock, seconds truncated (reference section 3.1).
    fn modify_auto_release_time(&mut self, p: &Params, env: &Env<'_>) -> Result<Value, ApiFault> {
        let id = required(p, "InstanceId")?;
        let region = optional(p, "RegionId");
        let at = match optional(p, "AutoReleaseTime") {
            None => None,
            Some(text) => {
                let malformed = || {
                    ApiFault::new(
                        400,
                        "InvalidAutoReleaseTime.Malformed",
                        format!("The specified AutoReleaseTime {text} is not valid: expected yyyy-MM-ddTHH:mm:ssZ."),
                    )
                };
                let t = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ")
                    .map_err(|_| malformed())?
                    .and_utc();
                if t < env.now + chrono::Duration::minutes(30) || t > env.now + chrono::Duration::days(3 * 365) {
                    return Err(ApiFault::new(
                        400,
                        "InvalidAutoReleaseTime.Malformed",
                        format!("The specified AutoReleaseTime {text} must be at least 30 minutes and at most 3 years ahead."),
                    ));
                }
                Some(t - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&t))))
            }
        };
        // Reference 3.1: not found is 404 `NoSuchResource` for this API.
        let Some(inst) = self.instances.get_mut(id).filter(|i| region.is_none_or(|r| r == i.region)) else {
            return Err(ApiFault::new(404, "NoSuchResource", format!("The specified resource is not found. ({id})")));
        };
        if inst.prepaid {
            return Err(ApiFault::new(
                403,
                "ChargeTypeViolation",
                format!("The operation is not permitted due to charge type of the instance. ({id}: a subscription)"),
            ));
        }
        inst.auto_release = at;
        inst.sync_raw();
        Ok(json!({}))
    }

    /// The refusals of reference section 3.1 and 7, in the order the brief lists them.
    fn check_release(
        &self,
        id: &str,
        region: Option<&str>,
        opts: &ReleaseOptions,
        now: DateTime<Utc>,
    ) -> Result<(), ApiFault> {
        let Some(i) = self.instances.get(id).filter(|i| region.is_none_or(|r| r == i.region)) else {
            return Err(ApiFault::new(
                404,
                "InvalidInstanceId.NotFound",
                format!("The specified InstanceId does not exist. ({id})"),
            ));
        };
        if i.deletion_protection {
            return Err(ApiFault::new(
                403,
                "InvalidOperation.DeletionProtection",
                format!("The operation is not permitted due to deletion protection. ({id})"),
            ));
        }
        // No lock refuses a release (reference, corrections: `DeleteInstance` is "normal logic" under `financial`,
        // and a `security`-locked instance is released, losing the data disks kept for it): the janitor's veto is
        // the only guard, and the tests check it.
        let status_ok = match i.status.as_str() {
            "Stopped" => true,
            "Running" => opts.force,
            _ => false,
        };
        if !status_ok {
            let hint = if i.status == "Running" { "; set Force=true to release a running instance" } else { "" };
            return Err(ApiFault::new(
                403,
                "IncorrectInstanceStatus",
                format!(
                    "The current status of the resource does not support this operation. ({id} is {}{hint})",
                    i.status
                ),
            ));
        }
        if i.prepaid {
            let expired = i.expires.is_some_and(|t| t <= now);
            if !expired {
                return Err(ApiFault::new(403, "ChargeTypeViolation", format!("The operation is not permitted due to charge type of the instance. ({id}: an unexpired subscription)")));
            }
            if !opts.terminate_subscription {
                return Err(ApiFault::new(
                    403,
                    "ChargeTypeViolation",
                    format!("The operation is not permitted due to charge type of the instance. ({id}: an expired subscription needs TerminateSubscription=true)"),
                ));
            }
        }
        Ok(())
    }
}

fn release_options(p: &Params) -> Result<ReleaseOptions, ApiFault> {
    boolean(p, "ForceStop")?;
    Ok(ReleaseOptions { force: boolean(p, "Force")?, terminate_subscription: boolean(p, "TerminateSubscription")? })
}

fn dry_run_passed() -> ApiFault {
    ApiFault::new(400, "DryRunOperation", "Request validation has been passed with DryRun flag set.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
    }

    fn inst(id: &str, region: &str, extra: Value) -> Value {
        let mut v = json!({"InstanceId": id, "RegionId": region, "Status": "Stopped", "InstanceChargeType": "PostPaid", "ExpiredTime": "2099-12-31T15:59Z"});
        if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
            base.extend(more);
        }
        v
    }

    fn ecs(items: Vec<Value>) -> Box<dyn Service> {
        load(Some(&Value::Array(items))).unwrap()
    }

    fn call(s: &mut Box<dyn Service>, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiFault> {
        let p: Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.handle(action, &p, &Env { now: now(), request_id: "REQ" })
    }

    fn code(r: Result<Value, ApiFault>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(f) => f.code,
        }
    }

    fn ids(v: &Value) -> Vec<String> {
        v["Instances"]["Instance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["InstanceId"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn load_errors_name_the_field() {
        let err = |v: Value| match load(Some(&v)) {
            Err(SimError::Invalid { field, .. }) => field,
            _ => "no error".into(),
        };
        assert_eq!(err(json!({})), "ecs");
        assert_eq!(
            err(json!([inst("i-1", "r", json!({"InstanceChargeType": "Monthly"}))])),
            "ecs[0].InstanceChargeType"
        );
        assert_eq!(err(json!([inst("i-1", "r", json!({})), inst("i-1", "r", json!({}))])), "ecs[1].InstanceId");
        assert_eq!(
            err(json!([inst("i-1", "r", json!({"InstanceChargeType": "PrePaid", "ExpiredTime": null}))])),
            "ecs[0].ExpiredTime"
        );
        assert_eq!(err(json!([inst("i-1", "r", json!({"CreationTime": "last week"}))])), "ecs[0].CreationTime");
        assert_eq!(err(json!([inst("i-1", "r", json!({"DeletionProtection": "yes"}))])), "ecs[0].DeletionProtection");
        assert_eq!(
            err(json!([inst("i-1", "r", json!({"OperationLocks": {"LockReason": [{"LockMsg": "x"}]}}))])),
            "ecs[0].OperationLocks.LockReason[0].LockReason"
        );
        assert_eq!(err(json!([inst("i-1", "r", json!({"Status": "Deleted"}))])), "ecs[0].Status");
        assert_eq!(err(json!(["i-1"])), "ecs[0]");
    }

    #[test]
    fn token_pages_cover_everything_once_even_when_instances_go_between_pages() {
        let mut s = ecs((0..7)
            .map(|n| inst(&format!("i-{n}"), "r", json!({})))
            .chain([inst("i-x", "other", json!({}))])
            .collect());
        let first = call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("MaxResults", "3")]).unwrap();
        assert_eq!(ids(&first), ["i-0", "i-1", "i-2"]);
        call(&mut s, "DeleteInstances", &[("RegionId", "r"), ("InstanceId.1", "i-1")]).unwrap();
        let token = first["NextToken"].as_str().unwrap().to_string();
        let second =
            call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("MaxResults", "3"), ("NextToken", &token)])
                .unwrap();
        assert_eq!(ids(&second), ["i-3", "i-4", "i-5"]);
        let token = second["NextToken"].as_str().unwrap().to_string();
        let last = call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("MaxResults", "3"), ("NextToken", &token)])
            .unwrap();
        assert_eq!(ids(&last), ["i-6"]);
        assert_eq!(last["NextToken"], "");
        assert_eq!(
            code(call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("NextToken", "made-up")])),
            "InvalidParameter.NextToken"
        );
        assert_eq!(
            code(call(&mut s, "DescribeInstances", &[("RegionId", "other"), ("NextToken", &token)])),
            "InvalidParameter.NextToken"
        );
        assert_eq!(
            code(call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("MaxResults", "101")])),
            "InvalidParameter"
        );
    }

    #[test]
    fn legacy_pages() {
        let mut s = ecs((0..5).map(|n| inst(&format!("i-{n}"), "r", json!({}))).collect());
        let page = |s: &mut Box<dyn Service>, n: &str| {
            call(s, "DescribeInstances", &[("RegionId", "r"), ("PageNumber", n), ("PageSize", "2")]).unwrap()
        };
        assert_eq!(ids(&page(&mut s, "1")), ["i-0", "i-1"]);
        assert_eq!(ids(&page(&mut s, "3")), ["i-4"]);
        assert!(ids(&page(&mut s, "4")).is_empty());
        assert_eq!(page(&mut s, "3")["TotalCount"], 5);
        assert_eq!(ids(&call(&mut s, "DescribeInstances", &[("RegionId", "r")]).unwrap()).len(), 5);
        assert_eq!(
            code(call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("PageNumber", "0")])),
            "InvalidParameter"
        );
        assert_eq!(code(call(&mut s, "DescribeInstances", &[("PageNumber", "1")])), "MissingParameter");
    }

    #[test]
    fn filters() {
        let mut s = ecs(vec![
            inst("i-a", "r", json!({"Status": "Running", "Tags": {"Tag": [{"TagKey": "env", "TagValue": "dev"}]}})),
            inst(
                "i-b",
                "r",
                json!({"InstanceChargeType": "PrePaid", "ExpiredTime": "2026-01-01T00:00Z", "ZoneId": "r-a"}),
            ),
            inst("i-c", "r", json!({"Tags": {"Tag": [{"TagKey": "env", "TagValue": "prod"}]}})),
        ]);
        let q = |s: &mut Box<dyn Service>, extra: &[(&str, &str)]| {
            let mut pairs = vec![("RegionId", "r")];
            pairs.extend_from_slice(extra);
            ids(&call(s, "DescribeInstances", &pairs).unwrap())
        };
        assert_eq!(q(&mut s, &[("InstanceIds", r#"["i-c","i-a","i-zz"]"#)]), ["i-a", "i-c"]);
        assert_eq!(q(&mut s, &[("Status", "Running")]), ["i-a"]);
        assert_eq!(q(&mut s, &[("InstanceChargeType", "PrePaid")]), ["i-b"]);
        assert_eq!(q(&mut s, &[("ZoneId", "r-a")]), ["i-b"]);
        assert_eq!(q(&mut s, &[("Tag.1.Key", "env")]), ["i-a", "i-c"]);
        assert_eq!(q(&mut s, &[("Tag.1.Key", "env"), ("Tag.1.Value", "prod")]), ["i-c"]);
        assert_eq!(
            code(call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("InstanceIds", "i-a")])),
            "InvalidParameter"
        );
        let many = serde_json::to_string(&(0..101).map(|n| format!("i-{n}")).collect::<Vec<_>>()).unwrap();
        assert_eq!(
            code(call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("InstanceIds", &many)])),
            "InvalidParameter"
        );
        assert_eq!(
            code(call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("Status", "Gone")])),
            "InvalidParameter"
        );
        assert_eq!(
            code(call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("DryRun", "true")])),
            "DryRunOperation"
        );
    }

    #[test]
    fn release_refusals() {
        let mut s = ecs(vec![
            inst("i-ok", "r", json!({})),
            inst("i-prot", "r", json!({"DeletionProtection": true})),
            inst("i-lock", "r", json!({"OperationLocks": {"LockReason": [{"LockReason": "security"}]}})),
            inst("i-fin", "r", json!({"OperationLocks": {"LockReason": [{"LockReason": "financial"}]}})),
            inst("i-run", "r", json!({"Status": "Running"})),
            inst("i-stopping", "r", json!({"Status": "Stopping"})),
            inst("i-sub", "r", json!({"InstanceChargeType": "PrePaid", "ExpiredTime": "2026-07-01T00:00Z"})),
            inst("i-subold", "r", json!({"InstanceChargeType": "PrePaid", "ExpiredTime": "2026-05-01T00:00Z"})),
        ]);
        let del = |s: &mut Box<dyn Service>, id: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![("RegionId", "r"), ("InstanceId.1", id)];
            pairs.extend_from_slice(extra);
            code(call(s, "DeleteInstances", &pairs))
        };
        assert_eq!(del(&mut s, "i-none", &[]), "InvalidInstanceId.NotFound");
        assert_eq!(
            code(call(&mut s, "DeleteInstances", &[("RegionId", "elsewhere"), ("InstanceId.1", "i-ok")])),
            "InvalidInstanceId.NotFound"
        );
        assert_eq!(del(&mut s, "i-prot", &[("Force", "true")]), "InvalidOperation.DeletionProtection");
        assert_eq!(del(&mut s, "i-lock", &[]), "ok", "a security lock does not refuse a release");
        assert_eq!(del(&mut s, "i-run", &[]), "IncorrectInstanceStatus");
        assert_eq!(del(&mut s, "i-stopping", &[("Force", "true")]), "IncorrectInstanceStatus");
        assert_eq!(del(&mut s, "i-sub", &[("TerminateSubscription", "true")]), "ChargeTypeViolation");
        assert_eq!(del(&mut s, "i-subold", &[]), "ChargeTypeViolation");
        // Atomic: one refused id keeps the others.
        let batch = [("RegionId", "r"), ("InstanceId.1", "i-ok"), ("InstanceId.2", "i-prot")];
        assert_eq!(code(call(&mut s, "DeleteInstances", &batch)), "InvalidOperation.DeletionProtection");
        assert!(s.instance_ids().contains(&"i-ok".to_string()));
        assert_eq!(del(&mut s, "i-run", &[("Force", "true")]), "ok");
        assert_eq!(del(&mut s, "i-subold", &[("TerminateSubscription", "true")]), "ok");
        assert_eq!(del(&mut s, "i-fin", &[]), "ok");
        assert_eq!(code(call(&mut s, "DeleteInstance", &[("InstanceId", "i-ok")])), "ok");
        assert_eq!(s.instance_ids(), ["i-prot", "i-stopping", "i-sub"]);
    }

    #[test]
    fn dry_run_checks_parameters_only() {
        let mut s = ecs(vec![inst("i-prot", "r", json!({"DeletionProtection": true}))]);
        assert_eq!(
            code(call(&mut s, "DeleteInstances", &[("RegionId", "r"), ("InstanceId.1", "i-prot"), ("DryRun", "true")])),
            "DryRunOperation"
        );
        assert_eq!(code(call(&mut s, "DeleteInstances", &[("RegionId", "r"), ("DryRun", "true")])), "MissingParameter");
        assert_eq!(
            code(call(&mut s, "DeleteInstances", &[("InstanceId.1", "i-prot"), ("DryRun", "true")])),
            "MissingParameter"
        );
        assert_eq!(
            code(call(
                &mut s,
                "DeleteInstances",
                &[("RegionId", "r"), ("InstanceId.1", "i-prot"), ("DryRun", "maybe")]
            )),
            "InvalidParameter"
        );
        assert_eq!(s.instance_ids(), ["i-prot"]);
    }

    #[test]
    fn client_token_replays_and_mismatches() {
        let mut s = ecs(vec![inst("i-a", "r", json!({})), inst("i-b", "r", json!({}))]);
        let a = [("RegionId", "r"), ("InstanceId.1", "i-a"), ("ClientToken", "t1")];
        let first = call(&mut s, "DeleteInstances", &a).unwrap();
        assert_eq!(first["RequestId"], "REQ");
        let p: Params = a.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let again = s.handle("DeleteInstances", &p, &Env { now: now(), request_id: "REQ-2" }).unwrap();
        assert_eq!(again, first);
        assert_eq!(
            code(call(&mut s, "DeleteInstances", &[("RegionId", "r"), ("InstanceId.1", "i-b"), ("ClientToken", "t1")])),
            "IdempotentParameterMismatch"
        );
        assert_eq!(s.instance_ids(), ["i-b"]);
        let long = "x".repeat(65);
        assert_eq!(
            code(call(
                &mut s,
                "DeleteInstances",
                &[("RegionId", "r"), ("InstanceId.1", "i-b"), ("ClientToken", &long)]
            )),
            "InvalidParameter"
        );
    }

    #[test]
    fn tagging_changes_what_is_served_and_fails_as_a_whole_call() {
        let mut s = ecs(vec![
            inst("i-a", "r", json!({"Tags": {"Tag": [{"TagKey": "owner", "TagValue": "ann"}]}})),
            inst("i-b", "other", json!({})),
        ]);
        let tag = |s: &mut Box<dyn Service>, extra: &[(&str, &str)]| {
            let mut pairs = vec![("RegionId", "r"), ("ResourceType", "instance")];
            pairs.extend_from_slice(extra);
            call(s, "TagResources", &pairs)
        };
        let v = tag(
            &mut s,
            &[
                ("ResourceId.1", "i-a"),
                ("ResourceId.2", "i-b"),
                ("Tag.1.Key", "janitor:rule"),
                ("Tag.1.Value", "x"),
                ("Tag.2.Key", "owner"),
                ("Tag.2.Value", "bob"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            (v.status, v.code.as_str()),
            (404, "InvalidResourceId.NotFound"),
            "one missing id fails the whole call"
        );
        let v = tag(
            &mut s,
            &[
                ("ResourceId.1", "i-a"),
                ("Tag.1.Key", "janitor:rule"),
                ("Tag.1.Value", "x"),
                ("Tag.2.Key", "owner"),
                ("Tag.2.Value", "bob"),
            ],
        )
        .unwrap();
        assert!(v.get("FailedResources").is_none(), "{v}");
        let listed =
            call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("Tag.1.Key", "owner"), ("Tag.1.Value", "bob")])
                .unwrap();
        assert_eq!(ids(&listed), ["i-a"]);
        assert_eq!(
            listed["Instances"]["Instance"][0]["Tags"]["Tag"].as_array().map(Vec::len),
            Some(2),
            "an existing key is overwritten"
        );
        assert!(tag(&mut s, &[("ResourceId.1", "i-a"), ("Tag.1.Key", "x"), ("Tag.1.Value", "y")])
            .unwrap()
            .get("FailedResources")
            .is_none());

        for (bad, code) in [
            (vec![("ResourceId.1", "i-a"), ("Tag.1.Key", "acs:x"), ("Tag.1.Value", "y")], "InvalidParameter"),
            (vec![("ResourceId.1", "i-a"), ("Tag.1.Key", "k"), ("Tag.1.Value", "https://x")], "InvalidParameter"),
            (vec![("ResourceId.1", "i-a"), ("Tag.21.Key", "k")], "InvalidParameter"),
            (vec![("ResourceId.1", "i-a")], "MissingParameter"),
            (vec![("Tag.1.Key", "k")], "MissingParameter"),
            (vec![("ResourceId.51", "i-a"), ("Tag.1.Key", "k")], "InvalidParameter"),
        ] {
            assert_eq!(code_of(tag(&mut s, &bad)), code, "{bad:?}");
        }
        assert_eq!(
            code_of(call(
                &mut s,
                "TagResources",
                &[("RegionId", "r"), ("ResourceType", "disk"), ("ResourceId.1", "i-a"), ("Tag.1.Key", "k")]
            )),
            "InvalidParameter"
        );
        let many: Vec<(String, String)> = (1..=19)
            .flat_map(|n| [(format!("Tag.{n}.Key"), format!("k{n}")), (format!("Tag.{n}.Value"), "v".into())])
            .collect();
        let mut pairs: Vec<(&str, &str)> = vec![("ResourceId.1", "i-a")];
        pairs.extend(many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(code_of(tag(&mut s, &pairs)), "InvalidTagCount", "the whole call fails");

        let untag = call(
            &mut s,
            "UntagResources",
            &[
                ("RegionId", "r"),
                ("ResourceType", "instance"),
                ("ResourceId.1", "i-a"),
                ("TagKey.1", "owner"),
                ("TagKey.2", "absent"),
            ],
        )
        .unwrap();
        assert!(untag.get("FailedResources").is_none());
        assert!(
            ids(&call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("Tag.1.Key", "owner")]).unwrap()).is_empty()
        );
        call(
            &mut s,
            "UntagResources",
            &[("RegionId", "r"), ("ResourceType", "instance"), ("ResourceId.1", "i-a"), ("All", "true")],
        )
        .unwrap();
        let listed = call(&mut s, "DescribeInstances", &[("RegionId", "r")]).unwrap();
        assert_eq!(listed["Instances"]["Instance"][0]["Tags"]["Tag"], json!([]));
    }

    #[test]
    fn auto_release_time_is_checked_served_and_honoured() {
        let mut s = ecs(vec![
            inst("i-a", "r", json!({})),
            inst("i-sub", "r", json!({"InstanceChargeType": "PrePaid", "ExpiredTime": "2026-07-01T00:00Z"})),
        ]);
        let set = |s: &mut Box<dyn Service>, id: &str, at: Option<&str>| {
            let mut pairs = vec![("RegionId", "r"), ("InstanceId", id)];
            pairs.extend(at.map(|a| ("AutoReleaseTime", a)));
            code_of(call(s, "ModifyInstanceAutoReleaseTime", &pairs))
        };
        assert_eq!(
            set(&mut s, "i-a", Some("2026-06-01T00:10:00Z")),
            "InvalidAutoReleaseTime.Malformed",
            "less than 30 minutes ahead"
        );
        assert_eq!(
            set(&mut s, "i-a", Some("2030-06-01T00:00:00Z")),
            "InvalidAutoReleaseTime.Malformed",
            "more than 3 years ahead"
        );
        assert_eq!(set(&mut s, "i-a", Some("2026-06-04 00:00")), "InvalidAutoReleaseTime.Malformed");
        assert_eq!(set(&mut s, "i-sub", Some("2026-06-04T00:00:00Z")), "ChargeTypeViolation");
        assert_eq!(set(&mut s, "i-none", Some("2026-06-04T00:00:00Z")), "NoSuchResource");
        assert_eq!(set(&mut s, "i-a", Some("2026-06-04T00:00:42Z")), "ok");
        let listed = call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("InstanceIds", r#"["i-a"]"#)]).unwrap();
        assert_eq!(listed["Instances"]["Instance"][0]["AutoReleaseTime"], "2026-06-04T00:00Z", "seconds are truncated");
        assert_eq!(set(&mut s, "i-a", None), "ok");
        let listed = call(&mut s, "DescribeInstances", &[("RegionId", "r"), ("InstanceIds", r#"["i-a"]"#)]).unwrap();
        assert_eq!(listed["Instances"]["Instance"][0]["AutoReleaseTime"], "", "cancelled");
        assert_eq!(set(&mut s, "i-a", Some("2026-06-04T00:00:00Z")), "ok");
        let later = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 6, 4, 0, 0, 0).unwrap();
        let p: Params = [("RegionId", "r")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.handle("DescribeInstances", &p, &Env { now: later, request_id: "REQ" }).unwrap();
        assert_eq!(s.instance_ids(), ["i-sub"], "the platform released it at its auto-release time");
    }

    fn code_of(r: Result<Value, ApiFault>) -> String {
        code(r)
    }

    #[test]
    fn regions_come_from_the_inventory() {
        let mut s = ecs(vec![inst("i-a", "cn-hangzhou", json!({})), inst("i-b", "cn-shanghai", json!({}))]);
        let v = call(&mut s, "DescribeRegions", &[]).unwrap();
        let regions: Vec<&str> =
            v["Regions"]["Region"].as_array().unwrap().iter().filter_map(|r| r["RegionId"].as_str()).collect();
        assert_eq!(regions, ["cn-hangzhou", "cn-shanghai"]);
    }
}

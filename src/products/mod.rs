//! One trait for every product: list, re-read, dry-run and release. A new product is one file
//! implementing [`Product`] plus one line in [`registry`]; the engine only reads [`Capabilities`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::aliyun::{ApiError, Client};
use crate::inventory::{ChargeType, Extras, Instance};

mod ecs;
mod kafka;
mod kms;
mod redis;
mod shared;

pub use ecs::{Ecs, AUTO_RELEASE_EXTRA};
pub use kafka::Kafka;
pub use kms::Kms;
pub use redis::Redis;
pub(crate) use shared::{decode, lenient_bool, lenient_i64};

/// Where an adapter learns whether an instance is protected against release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectionSource {
    /// The listing carries the flag (ECS `DeletionProtection`).
    Listing,
    /// A per-instance read is needed (Redis `DescribeInstanceAttribute`); adapters do it inside `list`/`get`.
    DetailRead,
    /// The product has no protection flag.
    None,
}

/// What a product's API can do. The engine plans and releases from these declarations, never from product names.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// The release API has a `DryRun` flag. Without one, the dry-run step is a fresh re-read by id (pre-flight).
    pub native_dry_run: bool,
    /// Most ids one release call accepts.
    pub batch_size: usize,
    pub protection: ProtectionSource,
    /// Charge types the release API accepts. Others are reported as "release by hand".
    pub releasable: &'static [ChargeType],
    /// Release is followed by a second call that removes the released record (Kafka).
    pub two_step_release: bool,
    /// A release call is safe to repeat (carries a client token, or "not found" counts as done).
    pub idempotent_release: bool,
    /// The release's `force` option is the rule's own choice, whatever the instance's state (Kafka
    /// `ForceDeleteInstance`, KMS `ForceDeleteWithoutBackup`). When false, `force` only ever means "release it
    /// although it is running" (ECS `Force`).
    pub force_from_rule: bool,
}

/// How the second step of a two-step release ended (see [`Product::finish_releases`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The released record is gone; `request_id` of the call that removed it (empty if none was needed).
    Done { request_id: String },
    /// The release is under way but the record could not be removed yet; `reason` says what was seen.
    Pending { reason: String },
}

/// Options that travel with one release call; all ids in a call share them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize)]
pub struct ReleaseOptions {
    /// Release even if running (ECS `Force=true`, Kafka `ForceDeleteInstance`, KMS `ForceDeleteWithoutBackup`).
    pub force: bool,
    /// The instance is an expired subscription (ECS `TerminateSubscription=true`).
    pub terminate_subscription: bool,
}

/// One release call: up to `batch_size` ids of one region, with a deterministic idempotency token.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseCall {
    pub region: String,
    pub ids: Vec<String>,
    pub options: ReleaseOptions,
    /// Stable for the same run, ids and options, so a retried call cannot release twice.
    pub client_token: String,
    /// Product-specific values kept from the listing (`Instance::extra`), by id.
    pub extra: std::collections::BTreeMap<String, Extras>,
}

/// The answer to a release or native dry-run call: the request id on success.
pub type CallResult = Result<String, ApiError>;

/// What a tag or untag request did: the request ids, and the ids that failed (a call can fail for some
/// resources only, with HTTP 200 and `FailedResources`; a whole call that fails lists all its ids here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagReport {
    pub request_ids: Vec<String>,
    /// Resource id → (error code, message).
    pub failed: BTreeMap<String, (String, String)>,
}

impl TagReport {
    /// Records a whole-call failure against every id of the call.
    pub fn fail_all(&mut self, ids: &[String], error: &ApiError) {
        for id in ids {
            self.failed.insert(id.clone(), (error.summary_code(), error.to_string()));
        }
    }
}

/// The error a product gives for an operation its adapter does not implement.
pub fn unsupported(product: &str, what: &str) -> ApiError {
    ApiError::Service {
        action: what.to_string(),
        status: 400,
        code: "Janitor.NotSupported".into(),
        message: format!("the janitor cannot {what} for {product}"),
        request_id: String::new(),
    }
}

#[async_trait]
pub trait Product: Send + Sync {
    /// The product code used in policies, reports and endpoints (`ecs`, `r-kvstore`, `alikafka`, `kms`).
    fn code(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Every instance in `region`, all pages. Any failed page fails the whole listing (fail closed).
    async fn list(&self, api: &Client, region: &str) -> Result<Vec<Instance>, ApiError>;

    /// A fresh read of the given ids (for events and pre-flight checks). Ids that no longer exist are absent.
    async fn get(&self, api: &Client, region: &str, ids: &[String]) -> Result<Vec<Instance>, ApiError>;

    /// The native dry run of a release call. Products without one are never asked (see `native_dry_run`).
    async fn dry_run(&self, api: &Client, call: &ReleaseCall) -> CallResult;

    /// The real release call for every id in `call`.
    async fn release(&self, api: &Client, call: &ReleaseCall) -> CallResult;

    /// The adapter can write and remove tags ([`Product::tag`], [`Product::untag`]): the release lifecycle
    /// marks instances with tags, so a rule with a grace period needs this.
    fn can_tag(&self) -> bool {
        false
    }

    /// Sets `tags` (overwriting values of existing keys) on every id. Per-id failures are in the report.
    async fn tag(
        &self,
        _api: &Client,
        _region: &str,
        _ids: &[String],
        _tags: &BTreeMap<String, String>,
    ) -> Result<TagReport, ApiError> {
        Err(unsupported(self.code(), "tag resources"))
    }

    /// Removes the tag `keys` from every id (absent keys are not an error). Per-id failures are in the report.
    async fn untag(
        &self,
        _api: &Client,
        _region: &str,
        _ids: &[String],
        _keys: &[String],
    ) -> Result<TagReport, ApiError> {
        Err(unsupported(self.code(), "untag resources"))
    }

    /// The product has a platform-side auto-release time ([`Product::set_auto_release`]) for pay-as-you-go instances.
    fn can_auto_release(&self) -> bool {
        false
    }

    /// Sets (`Some`) or cancels (`None`) the platform's own release time for one instance; the request id on success.
    async fn set_auto_release(
        &self,
        _api: &Client,
        _region: &str,
        _id: &str,
        _at: Option<DateTime<Utc>>,
    ) -> CallResult {
        Err(unsupported(self.code(), "set an auto-release time"))
    }

    /// Product codes billing (BssOpenApi `ProductCode`) uses for this product, so billing discovery can hand
    /// an expired subscription to its adapter. Empty: billing's records of it are treated as "no adapter".
    fn billing_codes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Why the instance's current state rules out a release, if it does (Redis `DeleteInstance` needs
    /// `Normal`). Checked when planning and again at the pre-flight re-read.
    fn state_veto(&self, _instance: &Instance) -> Option<String> {
        None
    }

    /// The second step of a two-step release (`Capabilities::two_step_release`), called once per region with
    /// every id whose `release` succeeded, so the status reads can be shared. Polls a bounded number of times;
    /// never fails the releases it follows. Answers one result per id.
    async fn finish_releases(
        &self,
        _api: &Client,
        _region: &str,
        ids: &[String],
    ) -> Vec<(String, Result<Finish, ApiError>)> {
        ids.iter().map(|id| (id.clone(), Ok(Finish::Done { request_id: String::new() }))).collect()
    }
}

/// Every product the janitor knows. Adding a product: one file plus one line here.
pub fn registry() -> Vec<Box<dyn Product>> {
    vec![Box::new(Ecs), Box::new(Redis), Box::new(Kafka::default()), Box::new(Kms)]
}

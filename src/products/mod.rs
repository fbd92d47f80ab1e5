//! One small required trait for every product (list, re-read, release), optional capabilities as small traits
//! the product hands out, and the [`catalog`] of every product's static identity. A new product is one file
//! (a [`ProductSpec`] and an implementation of [`Product`]) plus one line in the catalog; the engine reads the
//! spec and the capabilities, never product names.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::aliyun::{ApiError, Client};
use crate::inventory::{Extras, Instance};

mod catalog;
mod ecs;
#[cfg(test)]
pub(crate) mod fake;
mod kafka;
mod kms;
mod redis;
mod shared;

pub use catalog::{catalog, ArnForm, Catalog, Listing, ProductSpec, RESOURCE_TYPE_NAMESPACES};
pub use ecs::Ecs;
pub use kafka::Kafka;
pub use kms::Kms;
pub use redis::Redis;
pub(crate) use shared::{decode, lenient_bool, lenient_i64};

/// How the second step of a two-step release ended (see [`FinishRelease`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The released record is gone; `request_id` of the call that removed it (empty if none was needed).
    Done { request_id: String },
    /// The release is under way but the record could not be removed yet; `reason` says what was seen.
    Pending { reason: String },
}

/// Options that travel with one release call; all ids in a call share them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
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

/// What every product does. Optional capabilities are separate traits the product hands out (`Some(self)`), so
/// no adapter carries a method it cannot perform.
#[async_trait]
pub trait Product: Send + Sync {
    /// The product's static identity (the same value its [`Listing`] in the catalog carries).
    fn spec(&self) -> &'static ProductSpec;

    /// The product code used in policies, reports and endpoints (`ProductSpec::code`).
    fn code(&self) -> &'static str {
        self.spec().code
    }

    /// Every instance in `region`, all pages. Any failed page fails the whole listing (fail closed).
    async fn list(&self, api: &Client, region: &str) -> Result<Vec<Instance>, ApiError>;

    /// A fresh read of the given ids (for events and pre-flight checks). Ids that no longer exist are absent.
    async fn get(&self, api: &Client, region: &str, ids: &[String]) -> Result<Vec<Instance>, ApiError>;

    /// `list` answers the listing's facts only, and `get` reads what the listing lacks (Redis: the release
    /// protection, only in `DescribeInstanceAttribute`). The scan then reads details only for the instances a rule
    /// can still match on the listing's facts (`scan::read_details`); `get` (events, pre-flight) is always full.
    fn listing_lacks_details(&self) -> bool {
        false
    }

    /// What must be written before the releases of one region (Kafka: the janitor's release record), for all of
    /// them at once (apply mode only). Answers the ids it could not prepare: those are not released.
    async fn prepare_releases(&self, _api: &Client, _region: &str, _ids: &[String]) -> BTreeMap<String, ApiError> {
        BTreeMap::new()
    }

    /// The real release call for every id in `call`.
    async fn release(&self, api: &Client, call: &ReleaseCall) -> CallResult;

    /// Why the instance's current state rules out a release, if it does (Redis `DeleteInstance` needs
    /// `Normal`). Checked when planning and again at the pre-flight re-read.
    fn state_veto(&self, _instance: &Instance) -> Option<String> {
        None
    }

    /// What a fresh read shows of a release under way or done (Kafka: releasing or released; Redis: `Released`),
    /// if it does. After a release answer that leaves open whether it acted, this (or the instance being gone)
    /// confirms the release.
    fn release_seen(&self, _instance: &Instance) -> Option<String> {
        None
    }

    /// The release API has a `DryRun` flag. Without one, the dry-run step is a fresh re-read by id (pre-flight).
    fn native_dry_run(&self) -> Option<&dyn NativeDryRun> {
        None
    }

    /// The adapter can write and remove tags: the release lifecycle marks instances with tags, so a rule with a
    /// grace period needs this.
    fn tagging(&self) -> Option<&dyn Tagging> {
        None
    }

    /// The product has a platform-side auto-release time for pay-as-you-go instances.
    fn auto_release(&self) -> Option<&dyn AutoRelease> {
        None
    }

    /// A release is followed by a second step that removes the released record (Kafka).
    fn finish_release(&self) -> Option<&dyn FinishRelease> {
        None
    }
}

/// A release API with a `DryRun` flag (ECS `DeleteInstances`).
#[async_trait]
pub trait NativeDryRun: Send + Sync {
    /// The native dry run of a release call: the request id when the real call would be accepted.
    async fn dry_run(&self, api: &Client, call: &ReleaseCall) -> CallResult;
}

/// Tags written and removed on instances (`TagResources`/`UntagResources`).
#[async_trait]
pub trait Tagging: Send + Sync {
    /// Sets `tags` (overwriting values of existing keys) on every id. Per-id failures are in the report.
    async fn tag(
        &self,
        api: &Client,
        region: &str,
        ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<TagReport, ApiError>;

    /// Removes the tag `keys` from every id (absent keys are not an error). Per-id failures are in the report.
    async fn untag(&self, api: &Client, region: &str, ids: &[String], keys: &[String]) -> Result<TagReport, ApiError>;
}

/// The platform's own release time of an instance (ECS `ModifyInstanceAutoReleaseTime`).
#[async_trait]
pub trait AutoRelease: Send + Sync {
    /// The auto-release time the platform reported for `instance` when it was listed, if one is set.
    fn scheduled(&self, instance: &Instance) -> Option<DateTime<Utc>>;

    /// Sets the platform's release time of one instance; the request id on success.
    async fn set(&self, api: &Client, region: &str, id: &str, at: DateTime<Utc>) -> CallResult;

    /// Cancels the platform's release time of one instance; the request id on success.
    async fn cancel(&self, api: &Client, region: &str, id: &str) -> CallResult;
}

/// How long the second step of a two-step release waits for the released state: at most `reads` status reads,
/// `every` apart, and never past `until` (the run's deadline). What is still not ready is left for a later run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    pub reads: u32,
    pub every: std::time::Duration,
    pub until: Option<tokio::time::Instant>,
}

impl Default for Poll {
    /// Six reads 5 s apart: the Terraform provider polls the Kafka release every 5 s; half a minute keeps a run
    /// short, and a later run finishes what is still releasing.
    fn default() -> Self {
        Poll { reads: 6, every: std::time::Duration::from_secs(5), until: None }
    }
}

/// The second step of a two-step release (Kafka `DeleteInstance` after `ReleaseInstance`).
#[async_trait]
pub trait FinishRelease: Send + Sync {
    /// Called once per region with every id whose `release` succeeded (or that [`FinishRelease::awaiting`]
    /// found), so the status reads are shared. Polls within `poll`; never fails the releases it follows.
    /// Answers one result per id.
    async fn finish_releases(
        &self,
        api: &Client,
        region: &str,
        ids: &[String],
        poll: Poll,
    ) -> Vec<(String, Result<Finish, ApiError>)>;

    /// An instance an earlier run released whose second step is still to be done: the janitor's release record
    /// (`janitor:released`, written before the release) and the released state. `Some(what was seen)`.
    fn awaiting(&self, instance: &Instance) -> Option<String>;
}

//! ECS (version 2014-05-26): DescribeInstances / DeleteInstances. Reference section 3.1.
use async_trait::async_trait;

use super::{CallResult, Capabilities, Product, ProtectionSource, ReleaseCall};
use crate::aliyun::{ApiError, Client};
use crate::inventory::{ChargeType, Instance};

pub struct Ecs;

#[async_trait]
impl Product for Ecs {
    fn code(&self) -> &'static str {
        "ecs"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_dry_run: true,
            batch_size: 100,
            protection: ProtectionSource::Listing,
            releasable: &[ChargeType::PayAsYouGo, ChargeType::Subscription],
            two_step_release: false,
            idempotent_release: true,
        }
    }
    async fn list(&self, _api: &Client, _region: &str) -> Result<Vec<Instance>, ApiError> {
        todo!()
    }
    async fn get(&self, _api: &Client, _region: &str, _ids: &[String]) -> Result<Vec<Instance>, ApiError> {
        todo!()
    }
    async fn dry_run(&self, _api: &Client, _call: &ReleaseCall) -> CallResult {
        todo!()
    }
    async fn release(&self, _api: &Client, _call: &ReleaseCall) -> CallResult {
        todo!()
    }
}

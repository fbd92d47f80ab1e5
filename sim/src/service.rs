//! One emulated product API = one file implementing [`Service`], plus one line in [`PRODUCTS`].
//! Requests are dispatched on (`Version`, `Action`): every product shares one base URL in tests.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::inventory::SimError;
use super::reply::ApiFault;
use super::{bss, ecs, kafka, kms, redis, Params};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionKind {
    Read,
    /// Changes state without releasing anything (tags, auto-release times).
    Write,
    /// Releases instances; real (non-dry-run) calls that reach the handler show up in `Sim::release_calls`.
    Release,
}

/// What a handler may know about the request besides its parameters.
pub(crate) struct Env<'a> {
    /// The emulator clock (`Sim::set_clock` or the inventory's `now`, else the real clock).
    pub now: DateTime<Utc>,
    pub request_id: &'a str,
}

pub(crate) trait Service: Send {
    /// Endpoint product code, also the inventory section name (`ecs`).
    fn product(&self) -> &'static str;
    /// API version the product answers (`2014-05-26`).
    fn version(&self) -> &'static str;
    /// `None` for actions the emulator does not implement (answered 404 `InvalidAction.NotFound`).
    fn action_kind(&self, action: &str) -> Option<ActionKind>;
    /// Runs an authenticated request. The success body may omit `RequestId`; an error is the real error.
    fn handle(&mut self, action: &str, params: &Params, env: &Env<'_>) -> Result<Value, ApiFault>;
    /// Ids of the instances that still exist, sorted.
    fn instance_ids(&self) -> Vec<String>;
    /// The current inventory section, in the inventory's own format.
    fn snapshot(&self) -> Value;
    /// Billing only: its records follow the products (`State::reconcile_billing` runs before it answers).
    fn follows_products(&self) -> bool {
        false
    }
    /// Billing only: drops the records of instances `released(ProductCode, id)` says are gone.
    fn drop_released(&mut self, _released: &dyn Fn(&str, &str) -> bool) {}
}

/// Builds a product from its inventory section (`None` when the file has none: the API exists but is empty).
pub(crate) type Loader = fn(Option<&Value>) -> Result<Box<dyn Service>, SimError>;

/// What the emulator knows of one product besides its API: where its instances come from and how billing names it.
pub(crate) struct Product {
    /// Endpoint product code, also the inventory section name (reference section 3: "Product codes for the rule").
    pub section: &'static str,
    pub load: Loader,
    /// The BssOpenApi `ProductCode`s of its billing records (reference 3.5, `QueryAvailableInstances`), so
    /// billing can stop listing an instance released through the product's own API. Empty: billing does not
    /// follow this product.
    pub billing_codes: &'static [&'static str],
}

pub(crate) const PRODUCTS: &[Product] = &[
    // Reference 3.5: `ProductCode` "e.g. `ecs`, `rds`".
    Product { section: "ecs", load: ecs::load, billing_codes: &["ecs"] },
    // Reference 3.2: product code `r-kvstore`, "older location code `redisa`" (billing records use either).
    Product { section: "r-kvstore", load: redis::load, billing_codes: &["r-kvstore", "redisa"] },
    // Reference 3 and 3.3: the product code is `alikafka`; billing's records of Kafka instances carry the same
    // code (the reference gives no other, and the official BSS metadata names products by their codes).
    Product { section: "alikafka", load: kafka::load, billing_codes: &["alikafka"] },
    // Reference 3 and 3.4: the product code is `kms` (its `ProductType`s are `kms_ddi_*`/`kms_ppi_*`).
    Product { section: "kms", load: kms::load, billing_codes: &["kms"] },
    // Billing itself.
    Product { section: "bss", load: bss::load, billing_codes: &[] },
];

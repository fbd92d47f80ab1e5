//! What the janitor knows about each product, as data: one [`ProductSpec`] per product file, and the
//! [`Catalog`] that lists them. Every layer that needs a product's identity (policy validation, billing
//! discovery, event parsing, the engine) reads it here, never from a literal of its own.
//!
//! Adding a product: one file declaring its `SPEC` and implementing [`Product`], plus one line in [`CATALOG`].

use super::{ecs, kafka, kms, redis, Ecs, Kafka, Kms, Product, Redis};
use crate::inventory::ChargeType;

/// How an event names one of the product's resources by ARN: `acs:<service>:<region>:<account>:<kind>/<id>`
/// (the Tag service form, reference 3.6; an `arn:` prefix is also seen in events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArnForm {
    /// The service segment the janitor writes (`kvstore` for Redis, as the Tag service spells it).
    pub service: &'static str,
    /// The resource type segment, which is also the last part of an ActionTrail type (`ACS::ECS::Instance`).
    pub kind: &'static str,
}

/// The static identity of one product: everything outside its adapter's API code that depends on the product.
#[derive(Debug, PartialEq, Eq)]
pub struct ProductSpec {
    /// The code used in policies, reports, endpoints and `Instance::product` (`ecs`, `r-kvstore`, ...).
    pub code: &'static str,
    /// The OpenAPI `Version` every request of the adapter carries.
    pub api_version: &'static str,
    /// Service names that mean this product in ARNs (`acs:kvstore:…`), EventBridge types (`ecs:Instance:…`) and
    /// ActionTrail resource types (`ACS::KVSTORE::Instance`). Lowercase; matched ignoring case.
    pub event_services: &'static [&'static str],
    pub arn: ArnForm,
    /// The Alibaba EventBridge type of the product's instance state-change events the janitor reacts to
    /// (`ecs:Instance:StateChange`, reference 4.3); `None` when it reacts to none.
    pub state_change_type: Option<&'static str>,
    /// BssOpenApi `ProductCode`s billing uses for the product (`QueryAvailableInstances`), so billing discovery
    /// can hand an expired subscription to this adapter. Lowercase; matched ignoring case. Empty: billing's
    /// records of it are treated as "no adapter".
    pub billing_codes: &'static [&'static str],
    /// Charge types the release API accepts. Others are reported as "release by hand".
    pub releasable: &'static [ChargeType],
    /// Most ids one release call accepts.
    pub batch_size: usize,
    /// The release's `force` option is the rule's own choice, whatever the instance's state (Kafka
    /// `ForceDeleteInstance`, KMS `ForceDeleteWithoutBackup`). When false, `force` only ever means "release it
    /// although it is running" (ECS `Force`).
    pub force_from_rule: bool,
    /// The SDK endpoint map's exceptions to `<code>.<region>.aliyuncs.com`: (region, host).
    pub endpoints: &'static [(&'static str, &'static str)],
}

/// Namespaces of ActionTrail (`ACS::ECS::Instance`) and EventBridge/ROS (`ALIYUN::ECS::Instance`) resource types
/// (reference 4.3). Matched exactly, as `src/event/` does.
pub const RESOURCE_TYPE_NAMESPACES: [&str; 2] = ["ACS", "ALIYUN"];

impl ProductSpec {
    /// `service` (from an ARN, an event type or a resource type) names this product.
    pub fn is_event_service(&self, service: &str) -> bool {
        self.event_services.iter().any(|s| s.eq_ignore_ascii_case(service))
    }

    /// `ty` is an ActionTrail or EventBridge resource type of this product's instances: `<NS>::<service>::<kind>`
    /// with a namespace of [`RESOURCE_TYPE_NAMESPACES`], one of [`ProductSpec::event_services`] and the ARN kind.
    pub fn is_resource_type(&self, ty: &str) -> bool {
        let mut parts = ty.split("::");
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(ns), Some(service), Some(kind), None) => {
                RESOURCE_TYPE_NAMESPACES.contains(&ns)
                    && self.is_event_service(service)
                    && kind.eq_ignore_ascii_case(self.arn.kind)
            }
            _ => false,
        }
    }

    /// The ActionTrail resource type of this product's instances, as the janitor writes it (`ACS::ECS::Instance`).
    pub fn resource_type(&self) -> String {
        let mut kind = self.arn.kind.to_string();
        if let Some(first) = kind.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        format!("{}::{}::{kind}", RESOURCE_TYPE_NAMESPACES[0], self.arn.service.to_ascii_uppercase())
    }

    /// `billing` is one of this product's BssOpenApi `ProductCode`s.
    pub fn is_billing_code(&self, billing: &str) -> bool {
        self.billing_codes.iter().any(|c| c.eq_ignore_ascii_case(billing))
    }

    /// The ARN of one instance: `acs:<service>:<region>:<account>:<kind>/<id>`.
    pub fn arn(&self, region: &str, account: &str, id: &str) -> String {
        format!("acs:{}:{region}:{account}:{}/{id}", self.arn.service, self.arn.kind)
    }

    /// The release API accepts instances of this charge type.
    pub fn releases(&self, charge_type: ChargeType) -> bool {
        self.releasable.contains(&charge_type)
    }
}

/// One catalog line: a product's spec and how to build its adapter.
pub struct Listing {
    pub spec: &'static ProductSpec,
    adapter: fn() -> Box<dyn Product>,
}

impl Listing {
    /// A fresh adapter with its default settings.
    pub fn adapter(&self) -> Box<dyn Product> {
        (self.adapter)()
    }
}

/// Every product the janitor knows, in the order policies, errors and reports list them.
/// Adding a product: one file plus one line here.
static CATALOG: [Listing; 4] = [
    Listing { spec: &ecs::SPEC, adapter: || Box::new(Ecs) },
    Listing { spec: &redis::SPEC, adapter: || Box::new(Redis) },
    Listing { spec: &kafka::SPEC, adapter: || Box::new(Kafka) },
    Listing { spec: &kms::SPEC, adapter: || Box::new(Kms) },
];

/// The product catalog (see [`catalog`]).
#[derive(Clone, Copy)]
pub struct Catalog {
    listings: &'static [Listing],
}

/// The product catalog: every product's spec, with lookups by code, event service, resource type and billing code.
pub fn catalog() -> Catalog {
    Catalog { listings: &CATALOG }
}

impl Catalog {
    pub fn listings(&self) -> &'static [Listing] {
        self.listings
    }

    /// Every spec, in catalog order.
    pub fn specs(&self) -> impl Iterator<Item = &'static ProductSpec> {
        self.listings.iter().map(|l| l.spec)
    }

    /// Every product code, in catalog order (`ecs`, `r-kvstore`, `alikafka`, `kms`).
    pub fn codes(&self) -> impl Iterator<Item = &'static str> {
        self.specs().map(|s| s.code)
    }

    /// The codes joined for a message: `ecs, r-kvstore, alikafka, kms`.
    pub fn codes_list(&self) -> String {
        self.codes().collect::<Vec<_>>().join(", ")
    }

    /// The product whose code is `code` (exact: codes are lowercase everywhere they are written).
    pub fn by_code(&self, code: &str) -> Option<&'static ProductSpec> {
        self.specs().find(|s| s.code == code)
    }

    /// The product a service name in an ARN, an event type or a resource type means (`kvstore` → `r-kvstore`).
    pub fn by_event_service(&self, service: &str) -> Option<&'static ProductSpec> {
        self.specs().find(|s| s.is_event_service(service))
    }

    /// The product whose instances an ActionTrail or EventBridge resource type names (`ACS::ECS::Instance`).
    pub fn by_resource_type(&self, ty: &str) -> Option<&'static ProductSpec> {
        self.specs().find(|s| s.is_resource_type(ty))
    }

    /// The product whose instance state-change events have the EventBridge type `ty` (exact, as EventBridge
    /// writes it).
    pub fn by_state_change_type(&self, ty: &str) -> Option<&'static ProductSpec> {
        self.specs().find(|s| s.state_change_type == Some(ty))
    }

    /// The product a BssOpenApi `ProductCode` belongs to (`redisa` → `r-kvstore`).
    pub fn by_billing_code(&self, billing: &str) -> Option<&'static ProductSpec> {
        self.specs().find(|s| s.is_billing_code(billing))
    }

    /// A fresh adapter for every product, in catalog order.
    pub fn adapters(&self) -> Vec<Box<dyn Product>> {
        self.listings.iter().map(Listing::adapter).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_adapter_declares_the_spec_it_is_listed_with() {
        for l in catalog().listings() {
            let adapter = l.adapter();
            assert_eq!(adapter.spec(), l.spec, "{}: the adapter answers another spec", l.spec.code);
            assert_eq!(adapter.code(), l.spec.code);
        }
    }

    #[test]
    fn specs_are_self_consistent() {
        let mut codes = BTreeSet::new();
        let mut services = BTreeSet::new();
        let mut billing = BTreeSet::new();
        let is_code = |s: &str| {
            !s.is_empty()
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        for s in catalog().specs() {
            assert!(is_code(s.code), "{}: not a lowercase product code", s.code);
            assert!(codes.insert(s.code), "{}: code listed twice", s.code);
            let v = s.api_version.as_bytes();
            assert!(
                v.len() == 10 && v[4] == b'-' && v[7] == b'-' && s.api_version.replace('-', "").parse::<u32>().is_ok(),
                "{}: API version `{}` is not YYYY-MM-DD",
                s.code,
                s.api_version
            );
            assert!(!s.event_services.is_empty(), "{}: no event service", s.code);
            for service in s.event_services {
                assert!(is_code(service), "{}: event service `{service}` is not lowercase", s.code);
                assert!(services.insert(*service), "{}: event service `{service}` belongs to two products", s.code);
            }
            assert!(s.is_event_service(s.arn.service), "{}: the ARN service is not an event service", s.code);
            assert!(is_code(s.arn.kind), "{}: ARN kind `{}`", s.code, s.arn.kind);
            for code in s.billing_codes {
                assert!(is_code(code), "{}: billing code `{code}` is not lowercase", s.code);
                assert!(billing.insert(*code), "{}: billing code `{code}` belongs to two products", s.code);
            }
            assert!(!s.releasable.is_empty(), "{}: nothing is releasable", s.code);
            let kinds: BTreeSet<_> = s.releasable.iter().collect();
            assert_eq!(kinds.len(), s.releasable.len(), "{}: a charge type listed twice", s.code);
            assert!(
                s.releasable.iter().all(|c| matches!(c, ChargeType::PayAsYouGo | ChargeType::Subscription)),
                "{}: unknown charge type",
                s.code
            );
            assert!(s.batch_size >= 1, "{}: batch size 0", s.code);
            assert!(s.is_resource_type(&s.resource_type()), "{}: {}", s.code, s.resource_type());
        }
    }

    #[test]
    fn lookups_find_what_events_and_billing_name() {
        let c = catalog();
        assert_eq!(c.codes_list(), "ecs, r-kvstore, alikafka, kms");
        let code = |s: Option<&ProductSpec>| s.map(|s| s.code);
        assert_eq!(code(c.by_code("r-kvstore")), Some("r-kvstore"));
        assert_eq!(code(c.by_code("ECS")), None);
        for (service, want) in [
            ("ecs", "ecs"),
            ("KVStore", "r-kvstore"),
            ("r-kvstore", "r-kvstore"),
            ("redisa", "r-kvstore"),
            ("redis", "r-kvstore"),
            ("alikafka", "alikafka"),
            ("kafka", "alikafka"),
            ("kms", "kms"),
        ] {
            assert_eq!(code(c.by_event_service(service)), Some(want), "{service}");
        }
        assert_eq!(code(c.by_event_service("oss")), None);
        assert_eq!(code(c.by_state_change_type("ecs:Instance:StateChange")), Some("ecs"));
        assert_eq!(code(c.by_state_change_type("kvstore:Instance:StateChange")), None);
        for (ty, want) in [
            ("ACS::ECS::Instance", Some("ecs")),
            ("ALIYUN::ECS::Instance", Some("ecs")),
            ("ACS::ECS::instance", Some("ecs")),
            ("ACS::KVSTORE::Instance", Some("r-kvstore")),
            ("ALIYUN::Kafka::Instance", Some("alikafka")),
            ("ACS::ECS::Disk", None),
            ("acs::ECS::Instance", None),
            ("ACS::ECS::Instance::X", None),
            ("ACS::OSS::Instance", None),
        ] {
            assert_eq!(code(c.by_resource_type(ty)), want, "{ty}");
        }
        for (billing, want) in
            [("ecs", Some("ecs")), ("redisa", Some("r-kvstore")), ("KVSTORE", Some("r-kvstore")), ("rds", None)]
        {
            assert_eq!(code(c.by_billing_code(billing)), want, "{billing}");
        }
        let redis = c.by_code("r-kvstore").unwrap();
        assert_eq!(redis.arn("cn-shanghai", "123", "r-1"), "acs:kvstore:cn-shanghai:123:instance/r-1");
        assert_eq!(redis.resource_type(), "ACS::KVSTORE::Instance");
        assert_eq!(c.by_code("ecs").unwrap().resource_type(), "ACS::ECS::Instance");
    }
}

//! One account's products: a [`Service`] per entry of `service::PRODUCTS` (same order in every account, so a
//! product's index is the same everywhere), built from that account's product sections, and the billing
//! bookkeeping that follows them. Every product request is served from the caller's account only
//! (`State::process` in `lib.rs`), so a call signed for one account never sees or changes another's instances.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::inventory::SimError;
use super::service::{Service, PRODUCTS};

pub(crate) struct Account {
    pub services: Vec<Box<dyn Service>>,
    /// Product sections billing follows: those the account's inventory has, with the ids they held at load.
    billing_watch: Vec<Watched>,
}

/// A product section whose releases billing reflects.
struct Watched {
    /// Index into `services` (and `PRODUCTS`).
    service: usize,
    /// The `ProductCode`s billing uses for it (`service::PRODUCTS`).
    billing_codes: &'static [&'static str],
    /// The ids the section held at load.
    at_load: BTreeSet<String>,
}

impl Account {
    /// Builds the account from its product sections (`None`: an account without inventory, every product empty).
    /// Errors name the field as the sections do (`ecs[3].Status`); the caller prefixes the account.
    pub fn load(sections: Option<&Map<String, Value>>) -> Result<Self, SimError> {
        let section = |name: &str| sections.and_then(|s| s.get(name));
        let services =
            PRODUCTS.iter().map(|p| (p.load)(section(p.section))).collect::<Result<Vec<Box<dyn Service>>, _>>()?;
        let billing_watch = PRODUCTS
            .iter()
            .zip(&services)
            .enumerate()
            .filter(|(_, (p, _))| !p.billing_codes.is_empty())
            .filter(|(_, (p, _))| section(p.section).is_some_and(|v| !v.is_null()))
            .map(|(i, (p, s))| Watched {
                service: i,
                billing_codes: p.billing_codes,
                at_load: s.instance_ids().into_iter().collect(),
            })
            .collect();
        Ok(Account { services, billing_watch })
    }

    pub fn empty() -> Result<Self, SimError> {
        Self::load(None)
    }

    /// Drops the billing records of instances released through their product's API: those a watched section
    /// held at load and no longer holds. Records of ids a section never held stay (billing and products may
    /// disagree, and tests need that), as do records of products the inventory has no section for.
    pub fn reconcile_billing(&mut self) {
        let mut gone: BTreeSet<(&'static str, String)> = BTreeSet::new();
        for w in &self.billing_watch {
            let now: BTreeSet<String> = self.services[w.service].instance_ids().into_iter().collect();
            for id in w.at_load.difference(&now) {
                gone.extend(w.billing_codes.iter().map(|code| (*code, id.clone())));
            }
        }
        if gone.is_empty() {
            return;
        }
        let released = |code: &str, id: &str| gone.iter().any(|(c, i)| *c == code && i == id);
        for service in self.services.iter_mut() {
            service.drop_released(&released);
        }
    }

    /// Ids of `product`'s instances that still exist, sorted (empty for a product the emulator does not know).
    pub fn instance_ids(&mut self, product: &str) -> Vec<String> {
        self.reconcile_billing();
        self.services.iter().find(|s| s.product() == product).map(|s| s.instance_ids()).unwrap_or_default()
    }

    /// The account's product sections as they are now: `{"ecs": [...], ...}`.
    pub fn snapshot(&mut self) -> Map<String, Value> {
        self.reconcile_billing();
        self.services.iter().map(|s| (s.product().to_string(), s.snapshot())).collect()
    }
}

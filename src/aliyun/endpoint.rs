//! Where each product's requests go. Reference section 3 ("Endpoint rule used by the official SDKs").

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EndpointError {
    #[error("endpoint override `{0}` is not an http(s) base URL such as http://127.0.0.1:8931")]
    BadUrl(String),
}

/// Endpoint resolution with overrides: one base URL for everything (`JANITOR_ENDPOINT`, for the emulator)
/// and per-product base URLs from the policy file.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    all: Option<String>,
    per_product: BTreeMap<String, String>,
}

fn check(url: &str) -> Result<String, EndpointError> {
    let u = url.trim().trim_end_matches('/');
    match crate::validate::base_url(u) {
        Ok(_) => Ok(u.to_string()),
        Err(_) => Err(EndpointError::BadUrl(url.to_string())),
    }
}

impl Endpoints {
    pub fn new(all: Option<&str>, per_product: &BTreeMap<String, String>) -> Result<Self, EndpointError> {
        Ok(Endpoints {
            all: all.filter(|s| !s.trim().is_empty()).map(check).transpose()?,
            per_product: per_product.iter().map(|(k, v)| Ok((k.clone(), check(v)?))).collect::<Result<_, _>>()?,
        })
    }

    /// True when every request goes to a local override (the emulator), i.e. plain HTTP is expected.
    pub fn is_overridden(&self, product: &str) -> bool {
        self.all.is_some() || self.per_product.contains_key(product)
    }

    /// True when every request to `product` in `region` goes to a loopback address (127.0.0.0/8 or ::1, as an IP
    /// literal: a name such as `localhost` could resolve elsewhere). Decided on the URL after every override,
    /// so a per-product policy endpoint cannot slip a real host past a check made on `JANITOR_ENDPOINT` alone.
    pub fn is_loopback(&self, product: &str, region: &str) -> bool {
        url::Url::parse(&self.base_url(product, region)).is_ok_and(|url| crate::validate::is_loopback_ip(&url))
    }

    /// Base URL for `product` (an endpoint product code: `ecs`, `r-kvstore`, `alikafka`, `kms`, `bssopenapi`, `tag`, `sts`) in `region`.
    pub fn base_url(&self, product: &str, region: &str) -> String {
        if let Some(u) = self.per_product.get(product).or(self.all.as_ref()) {
            return u.clone();
        }
        format!("https://{}", default_host(product, region))
    }
}

/// The SDK rule: a product's endpoint map first, otherwise `<product>.<region>.aliyuncs.com`.
pub fn default_host(product: &str, region: &str) -> String {
    // A product's own exceptions come from its catalog line; the rest are services that are not products.
    if let Some((_, host)) =
        crate::products::catalog().by_code(product).and_then(|spec| spec.endpoints.iter().find(|(r, _)| *r == region))
    {
        return host.to_string();
    }
    match (product, region) {
        ("bssopenapi", r) => {
            // BSS is chosen by account site, not region; "intl" or any non-mainland region selects the international host.
            if r == "intl" || !(r.starts_with("cn-") || r.is_empty()) {
                "business.ap-southeast-1.aliyuncs.com".into()
            } else {
                "business.aliyuncs.com".into()
            }
        }
        ("tag", "cn-hangzhou-finance") | ("sts", "cn-hangzhou-finance" | "cn-shenzhen-finance-1") => {
            format!("{product}.aliyuncs.com")
        }
        ("sts", "") => "sts.aliyuncs.com".into(),
        // Resource Manager is a global service: one endpoint (Resource Manager API reference, "Endpoints").
        ("resourcemanager", _) => "resourcemanager.aliyuncs.com".into(),
        _ => format!("{product}.{region}.aliyuncs.com"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_default() {
        assert_eq!(default_host("ecs", "cn-shanghai"), "ecs.cn-shanghai.aliyuncs.com");
        assert_eq!(default_host("alikafka", "ap-southeast-1"), "alikafka.ap-southeast-1.aliyuncs.com");
    }

    #[test]
    fn irregular_hosts() {
        assert_eq!(default_host("r-kvstore", "cn-hangzhou"), "r-kvstore.aliyuncs.com");
        assert_eq!(default_host("r-kvstore", "cn-shenzhen"), "r-kvstore.cn-shenzhen.aliyuncs.com");
        assert_eq!(default_host("ecs", "cn-hangzhou-finance"), "ecs.aliyuncs.com");
        assert_eq!(default_host("bssopenapi", "cn-hangzhou"), "business.aliyuncs.com");
        assert_eq!(default_host("bssopenapi", "intl"), "business.ap-southeast-1.aliyuncs.com");
    }

    #[test]
    fn loopback_is_decided_after_every_override() {
        let mut per = BTreeMap::new();
        per.insert("kms".to_string(), "https://kms.example.com".to_string());
        let e = Endpoints::new(Some("http://127.0.0.1:8931"), &per).unwrap();
        assert!(e.is_loopback("ecs", "cn-hangzhou"));
        assert!(!e.is_loopback("kms", "cn-hangzhou"), "a policy endpoint wins over JANITOR_ENDPOINT");
        assert!(
            !Endpoints::new(Some("   "), &BTreeMap::new()).unwrap().is_loopback("ecs", "cn-hangzhou"),
            "blank override: real hosts"
        );
        assert!(!Endpoints::new(Some("http://localhost:1"), &BTreeMap::new())
            .unwrap()
            .is_loopback("ecs", "cn-hangzhou"));
        assert!(Endpoints::new(Some("http://[::1]:1"), &BTreeMap::new()).unwrap().is_loopback("ecs", "cn-hangzhou"));
        assert!(Endpoints::new(Some("http://127.9.0.1:1"), &BTreeMap::new())
            .unwrap()
            .is_loopback("ecs", "cn-hangzhou"));
    }

    #[test]
    fn overrides_win() {
        let mut per = BTreeMap::new();
        per.insert("kms".to_string(), "http://127.0.0.1:9/".to_string());
        let e = Endpoints::new(Some("http://127.0.0.1:8931"), &per).unwrap();
        assert_eq!(e.base_url("ecs", "cn-hangzhou"), "http://127.0.0.1:8931");
        assert_eq!(e.base_url("kms", "cn-hangzhou"), "http://127.0.0.1:9");
        assert_eq!(Endpoints::default().base_url("ecs", "cn-beijing"), "https://ecs.cn-beijing.aliyuncs.com");
    }

    #[test]
    fn bad_override_is_rejected() {
        assert!(Endpoints::new(Some("127.0.0.1:8931"), &BTreeMap::new()).is_err());
    }
}

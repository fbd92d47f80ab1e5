//! The `bss:` section: billing discovery of expired subscriptions across products (BssOpenApi, reference 3.5).
//!
//! ```yaml
//! bss:
//!   discovery: true    # default false: ask billing (QueryAvailableInstances) for expired subscriptions
//!   site: china        # china (default, business.aliyuncs.com) or international (business.ap-southeast-1.aliyuncs.com)
//!   vno: false         # default false; true only on a reseller (VNO) account: billing's ReleaseInstance may release
//!                      # expired subscriptions of products without an adapter. Needs discovery: true.
//!   release_products: [rds]   # with vno: the billing ProductCodes it may release; required, never implied
//! ```

use serde::Deserialize;

use super::raw::{present, Text};
use super::PolicyError;

/// Billing discovery settings. The default does nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bss {
    /// Ask billing for expired subscriptions of every product, cross-check them with the product APIs, and report
    /// those of products without an adapter as "release by hand".
    pub discovery: bool,
    /// The account is a Virtual Network Operator (reseller): billing's `ReleaseInstance` is allowed for them.
    pub vno: bool,
    /// Which billing endpoint serves the account: chosen by the account's site, not by resource region.
    pub site: Site,
    /// With `vno`: the billing `ProductCode`s (lowercase) billing may release. Nothing else is released through
    /// billing, whatever a rule selects: a product is only released where the policy names it.
    pub release_products: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Site {
    /// aliyun.com accounts.
    #[default]
    China,
    /// alibabacloud.com accounts.
    International,
}

impl Site {
    pub fn as_str(&self) -> &'static str {
        match self {
            Site::China => "china",
            Site::International => "international",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBss {
    #[serde(default, deserialize_with = "present")]
    discovery: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    vno: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    site: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    release_products: Option<Vec<Text>>,
}

fn err(path: &str, message: impl Into<String>) -> PolicyError {
    PolicyError { file: String::new(), path: path.into(), message: message.into() }
}

impl RawBss {
    pub(super) fn into_bss(self) -> Result<Bss, PolicyError> {
        let site = match self.site.as_ref().map(|Text(s)| s.trim().to_ascii_lowercase()) {
            None => Site::China,
            Some(s) if s == "china" => Site::China,
            Some(s) if s == "international" => Site::International,
            Some(_) => {
                let Text(given) = self.site.unwrap_or(Text(String::new()));
                return Err(err(
                    "bss.site",
                    format!("unknown site `{given}`: expected china (aliyun.com) or international (alibabacloud.com)"),
                ));
            }
        };
        let mut release_products = Vec::new();
        for (i, Text(code)) in self.release_products.unwrap_or_default().into_iter().enumerate() {
            let at = format!("bss.release_products[{i}]");
            if code.trim().is_empty() || code.trim() != code || code.chars().any(char::is_whitespace) {
                return Err(err(&at, format!("`{code}` is not a billing ProductCode (such as rds)")));
            }
            if crate::products::catalog().by_billing_code(&code).is_some() {
                return Err(err(
                    &at,
                    format!("`{code}` has an adapter: it is released through its own API, never billing's"),
                ));
            }
            release_products.push(code.to_ascii_lowercase());
        }
        let bss =
            Bss { discovery: self.discovery.unwrap_or(false), vno: self.vno.unwrap_or(false), site, release_products };
        if bss.vno && !bss.discovery {
            return Err(err("bss.vno", "vno: true releases what billing discovery finds; it needs discovery: true"));
        }
        if bss.vno && bss.release_products.is_empty() {
            return Err(err(
                "bss.release_products",
                "vno: true needs the billing ProductCodes it may release (release_products: [rds]); none is implied",
            ));
        }
        if !bss.vno && !bss.release_products.is_empty() {
            return Err(err(
                "bss.release_products",
                "only a reseller account releases through billing: it needs vno: true",
            ));
        }
        Ok(bss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn parse(bss: &str) -> Result<Policy, PolicyError> {
        Policy::from_yaml(
            &format!("regions: [cn-hangzhou]\n{bss}\nrules: [{{name: r, filters: {{ttl_tag: ttl}}}}]\n"),
            "t.yaml",
        )
    }

    #[test]
    fn off_by_default() {
        assert_eq!(parse("").unwrap().bss, Bss::default());
        assert_eq!(Bss::default(), Bss { discovery: false, vno: false, site: Site::China, release_products: vec![] });
    }

    #[test]
    fn the_full_section_parses() {
        let p = parse("bss: { discovery: true, vno: true, site: international, release_products: [RDS] }").unwrap();
        assert_eq!(
            p.bss,
            Bss { discovery: true, vno: true, site: Site::International, release_products: vec!["rds".into()] }
        );
        assert_eq!(parse("bss: { discovery: true }").unwrap().bss.site, Site::China);
    }

    #[test]
    fn mistakes_are_named() {
        let at = |bss: &str| parse(bss).map(|_| ()).unwrap_err();
        assert_eq!(at("bss: { discovery: true, vno: true }").path, "bss.release_products");
        assert_eq!(at("bss: { discovery: true, release_products: [rds] }").path, "bss.release_products");
        assert_eq!(at("bss: { discovery: true, vno: true, release_products: [ecs] }").path, "bss.release_products[0]");
        assert_eq!(
            at("bss: { discovery: true, vno: true, release_products: [\" rds\"] }").path,
            "bss.release_products[0]"
        );
        let e = at("bss: { vno: true, release_products: [rds] }");
        assert_eq!(e.path, "bss.vno");
        assert!(e.message.contains("needs discovery: true"));
        let e = at("bss: { discovery: true, site: europe }");
        assert_eq!(e.path, "bss.site");
        assert!(e.message.contains("china") && e.message.contains("international"));
        assert_eq!(at("bss: { discovery: true, vnoo: true }").path, "bss.vnoo");
        assert_eq!(at("bss: { discovery: yes }").path, "bss.discovery");
        assert_eq!(at("bss: { discovery: ~ }").path, "bss.discovery");
        assert_eq!(at("bss:").path, "bss");
    }
}

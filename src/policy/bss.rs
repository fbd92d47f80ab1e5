//! The `bss:` section: billing discovery of expired subscriptions across products (BssOpenApi, reference 3.5).
//!
//! ```yaml
//! bss:
//!   discovery: true    # default false: ask billing (QueryAvailableInstances) for expired subscriptions
//!   site: china        # china (default, business.aliyuncs.com) or international (business.ap-southeast-1.aliyuncs.com)
//!   vno: false         # default false; true only on a reseller (VNO) account: billing's ReleaseInstance may release
//!                      # expired subscriptions of products without an adapter. Needs discovery: true.
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
                return Err(err("bss.site", format!("unknown site `{given}`: expected china (aliyun.com) or international (alibabacloud.com)")));
            }
        };
        let bss = Bss { discovery: self.discovery.unwrap_or(false), vno: self.vno.unwrap_or(false), site };
        if bss.vno && !bss.discovery {
            return Err(err("bss.vno", "vno: true releases what billing discovery finds; it needs discovery: true"));
        }
        Ok(bss)
    }
}

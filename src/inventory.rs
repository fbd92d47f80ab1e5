//! The product-neutral inventory record every adapter produces, and the time formats Alibaba uses.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The short strings every instance and decision carries (ids, names, product codes, regions): stored inline,
/// without a heap allocation, up to 24 bytes. At 10,000 instances those allocations were megabytes (benchmark).
pub type Text = compact_str::CompactString;

/// An instance's tags (see `strmap` for why it is not a `BTreeMap`).
pub type Tags = crate::strmap::StrMap;

/// Product-specific values an adapter keeps from the listing for its release call (same compact map).
pub type Extras = crate::strmap::StrMap;

/// How an instance is billed. Adapters map each product's spelling
/// (`PostPaid`/`PrePaid`, `POSTPAY`/`PREPAY`, `PaidType` 0/1/3/4) onto these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChargeType {
    #[serde(rename = "pay-as-you-go")]
    PayAsYouGo,
    #[serde(rename = "subscription")]
    Subscription,
    /// A billing method the adapter does not know (a new Kafka `PaidType`): never released, reported.
    #[serde(rename = "unknown")]
    Unknown,
}

impl fmt::Display for ChargeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChargeType::PayAsYouGo => "pay-as-you-go",
            ChargeType::Subscription => "subscription",
            ChargeType::Unknown => "unknown",
        })
    }
}

/// One instance as listed by a product API, normalised so the policy never needs to know the product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    /// Product code of the adapter that owns it (`ecs`, `r-kvstore`, ...).
    pub product: Text,
    pub region: Text,
    pub id: Text,
    pub name: Text,
    /// The product's own status string (`Running`, `Stopped`, `Normal`, ...), kept verbatim for policies and reports.
    pub status: Text,
    /// True when the instance is serving and a release would pull the power (ECS `Running`).
    pub running: bool,
    pub charge_type: ChargeType,
    pub created_at: Option<DateTime<Utc>>,
    /// `None` means "never expires" (pay-as-you-go, or the `2099-12-31T15:59Z` sentinel).
    pub expires_at: Option<DateTime<Utc>>,
    pub tags: Tags,
    /// The product's native release/deletion protection flag. Always a veto.
    pub deletion_protection: bool,
    /// Operation locks (`security`, `financial`, ...): any lock vetoes a release.
    pub locks: Vec<String>,
    /// A protection field the answer should carry but did not (its name): whether the instance is protected
    /// cannot be told, so it is not released.
    pub protection_unknown: Option<String>,
    /// Product-specific values an adapter needs again at release time (e.g. a Redis `GlobalInstanceId`).
    pub extra: Extras,
}

impl Instance {
    /// A minimal record, handy for adapters and tests; fields are then set directly.
    pub fn new(product: &str, region: &str, id: &str, charge_type: ChargeType) -> Self {
        Instance {
            product: product.into(),
            region: region.into(),
            id: id.into(),
            name: Text::default(),
            status: Text::default(),
            running: false,
            charge_type,
            created_at: None,
            expires_at: None,
            tags: Tags::new(),
            protection_unknown: None,
            deletion_protection: false,
            locks: Vec::new(),
            extra: Extras::new(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("`{value}` is not an Alibaba Cloud time (expected yyyy-MM-ddTHH:mmZ or yyyy-MM-ddTHH:mm:ssZ)")]
pub struct TimeParseError {
    pub value: String,
}

/// Parses the UTC times Alibaba APIs return. ECS uses minute precision (`2017-12-10T04:04Z`),
/// most others seconds (`2019-09-08T16:00:00Z`). Reference section 3.1.
pub fn parse_api_time(value: &str) -> Result<DateTime<Utc>, TimeParseError> {
    let err = || TimeParseError { value: value.to_string() };
    let v = value.trim();
    for fmt in ["%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%.fZ"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(Utc.from_utc_datetime(&naive));
        }
    }
    DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)).map_err(|_| err())
}

/// Like [`parse_api_time`], but maps an empty value and the "never expires" sentinel
/// (`2099-12-31T15:59Z`, i.e. 2100-01-01 00:00 in UTC+8) to `None`.
pub fn parse_expiry(value: &str) -> Result<Option<DateTime<Utc>>, TimeParseError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    let t = parse_api_time(value)?;
    // Any year >= 2099 is a sentinel: no real subscription runs that long.
    if t.year() >= 2099 {
        return Ok(None);
    }
    Ok(Some(t))
}

/// Epoch milliseconds (Kafka's `CreateTime`/`ExpiredTime`).
pub fn from_epoch_millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// Formats a time the way ECS does (minute precision), used by the emulator and reports.
pub fn format_minutes(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%MZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_precision_times_parse() {
        let t = parse_api_time("2017-12-10T04:04Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2017-12-10T04:04:00+00:00");
    }

    #[test]
    fn second_precision_times_parse() {
        let t = parse_api_time("2019-09-08T16:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2019-09-08T16:00:00+00:00");
    }

    #[test]
    fn never_expires_sentinel_is_none() {
        assert_eq!(parse_expiry("2099-12-31T15:59Z").unwrap(), None);
        assert_eq!(parse_expiry("").unwrap(), None);
        assert!(parse_expiry("2026-01-01T00:00Z").unwrap().is_some());
    }

    #[test]
    fn garbage_is_an_error_naming_the_value() {
        let e = parse_api_time("yesterday").unwrap_err();
        assert!(e.to_string().contains("yesterday"));
    }

    #[test]
    fn epoch_millis() {
        assert_eq!(from_epoch_millis(1577961819000).unwrap().to_rfc3339(), "2020-01-02T10:43:39+00:00");
    }
}

//! Times as the products write them in their answers, and so in an inventory (reference section 3):
//! ECS uses minute precision, `yyyy-MM-ddTHH:mmZ` (3.1: `CreationTime`, `ExpiredTime`, `AutoReleaseTime`);
//! Redis, KMS and billing use `yyyy-MM-ddTHH:mm:ssZ` (3.2, 3.4, 3.5), which RFC 3339 covers along with the
//! fractions and offsets a hand-written inventory may use. A pay-as-you-go ECS instance's `ExpiredTime`
//! `2099-12-31T15:59Z` (3.1) needs no special case here: it is simply a time that never comes.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// A time value that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{value}` is not a time: expected yyyy-MM-ddTHH:mmZ, yyyy-MM-ddTHH:mm:ssZ or RFC 3339")]
pub(crate) struct TimeError {
    value: String,
}

/// Parses an API time (see the module comment).
pub(crate) fn parse(value: &str) -> Result<DateTime<Utc>, TimeError> {
    if let Ok(naive) = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%MZ") {
        return Ok(Utc.from_utc_datetime(&naive));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| TimeError { value: value.to_string() })
}

/// Like [`parse`], with an empty value meaning "no time" (the products leave `ExpiredTime`, `EndTime` and
/// `EndDate` empty where nothing expires).
pub(crate) fn parse_optional(value: &str) -> Result<Option<DateTime<Utc>>, TimeError> {
    if value.is_empty() {
        return Ok(None);
    }
    parse(value).map(Some)
}

/// ECS's minute precision (reference 3.1), as `DescribeInstances` shows `AutoReleaseTime`.
pub(crate) fn format_minutes(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%MZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_products_forms_parse() {
        let at = |s: &str| parse(s).map(|t| t.to_rfc3339());
        assert_eq!(at("2017-12-10T04:04Z").as_deref(), Ok("2017-12-10T04:04:00+00:00"));
        assert_eq!(at("2019-09-08T16:00:00Z").as_deref(), Ok("2019-09-08T16:00:00+00:00"));
        assert_eq!(at("2019-09-08T16:00:00.250Z").as_deref(), Ok("2019-09-08T16:00:00.250+00:00"));
        assert_eq!(at("2019-09-09T00:00:00+08:00").as_deref(), Ok("2019-09-08T16:00:00+00:00"));
        assert!(parse("2099-12-31T15:59Z").is_ok());
    }

    #[test]
    fn anything_else_is_an_error_naming_the_value() {
        for bad in ["yesterday", "", "2026-13-01T00:00Z", "2026-03-01"] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn empty_is_no_time() {
        assert_eq!(parse_optional(""), Ok(None));
        assert!(parse_optional("2026-01-01T00:00Z").unwrap().is_some());
        assert!(parse_optional("soon").is_err());
    }

    #[test]
    fn minutes_round_trip() {
        let t = parse("2026-06-04T10:07Z").unwrap();
        assert_eq!(format_minutes(&t), "2026-06-04T10:07Z");
    }
}

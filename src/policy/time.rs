//! The two time notations a policy and its tags use: durations (`72h`, `1d12h`) and tag dates
//! (`2026-03-01`, RFC 3339). Both come from people, so both are strict and every error names the value.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The longest duration accepted anywhere: 10 years (3653 days). Anything longer is a typo, not a policy.
pub const MAX_DURATION: Duration = Duration::from_secs(3653 * 86_400);

const DURATION_EXPECTED: &str =
    "expected a positive duration such as 30m, 72h, 7d, 2w or 1d12h (integer + unit s, m, h, d or w, largest unit first, at most 10 years)";

/// Parses a duration written as integer+unit groups, largest unit first: `30s`, `30m`, `72h`, `7d`, `2w`,
/// `1d12h`. Zero, negative, fractional, over 10 years or overflowing values are errors naming the value.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match duration_seconds(s, DURATION_EXPECTED)? {
        0 => Err(format!("`{s}` is not a valid duration (zero): {DURATION_EXPECTED}")),
        total => Ok(Duration::from_secs(total)),
    }
}

const GRACE_EXPECTED: &str =
    "expected a duration such as 30m, 72h, 3d or 1w (integer + unit s, m, h, d or w, largest unit first, at most 10 years), or 0 to release at once";

/// Parses a grace period: like [`parse_duration`], but zero is allowed when written out (`0`, `0s`, `0d`...),
/// because "release at once" must be an explicit choice.
pub fn parse_grace(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    duration_seconds(s, GRACE_EXPECTED).map(Duration::from_secs)
}

/// The total seconds of integer+unit groups (zero allowed); errors name the value and end with `expected`.
fn duration_seconds(s: &str, expected: &str) -> Result<u64, String> {
    let fail = |why: &str| Err(format!("`{s}` is not a valid duration ({why}): {expected}"));
    let text = s.trim();
    if text.is_empty() {
        return fail("empty");
    }
    let mut total: u64 = 0;
    // Rank of the previous unit: each unit must be smaller than the one before it (no `1h1d`, no `1d1d`).
    let mut previous_rank = u8::MAX;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return match rest.chars().next() {
                Some('-') => fail("negative"),
                _ => fail("a number must come before each unit"),
            };
        }
        // Splitting after ASCII digits is always on a char boundary.
        let (number, after) = rest.split_at(digits);
        let Some(unit) = after.chars().next() else {
            return fail("missing unit");
        };
        let (seconds_per_unit, rank): (u64, u8) = match unit {
            'w' => (7 * 86_400, 4),
            'd' => (86_400, 3),
            'h' => (3_600, 2),
            'm' => (60, 1),
            's' => (1, 0),
            _ => return fail(&format!("unknown unit `{unit}`")),
        };
        if rank >= previous_rank {
            return fail("units must go from largest to smallest, each at most once");
        }
        previous_rank = rank;
        let Ok(n) = number.parse::<u64>() else {
            return fail("too large");
        };
        let Some(seconds) = n.checked_mul(seconds_per_unit) else {
            return fail("too large");
        };
        total = match total.checked_add(seconds) {
            Some(t) if t <= MAX_DURATION.as_secs() => t,
            _ => return fail("longer than 10 years"),
        };
        rest = &after[unit.len_utf8()..];
    }
    Ok(total)
}

/// Formats a duration in the notation [`parse_duration`] reads (`1d12h`, `0s`), for facts and reports.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = secs / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            secs %= size;
        }
    }
    out
}

/// Parses the date an `expire_at_tag` holds: `2026-03-01` (midnight UTC that day), RFC 3339 with any offset
/// (`2026-03-01T10:00:00+08:00`), or Alibaba's minute precision (`2026-03-01T10:00Z`, `2026-03-01T10:00+08:00`).
/// Anything else, including other date orders (`03/01/2026`), is an error naming the value: never guess.
pub fn parse_tag_date(s: &str) -> Result<DateTime<Utc>, String> {
    let v = s.trim();
    if has_shape(v, "DDDD-DD-DD") {
        if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            return Ok(Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN)));
        }
    } else if has_shape(v, "DDDD-DD-DDTDD:DDZ") {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%MZ") {
            return Ok(Utc.from_utc_datetime(&t));
        }
    } else if has_shape(v, "DDDD-DD-DDTDD:DD+DD:DD") || has_shape(v, "DDDD-DD-DDTDD:DD-DD:DD") {
        if let Ok(t) = DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M%:z") {
            return Ok(t.with_timezone(&Utc));
        }
    } else if has_shape(v.get(..10).unwrap_or(""), "DDDD-DD-DD") {
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    Err(format!(
        "`{s}` is not a date: expected YYYY-MM-DD (midnight UTC) or an RFC 3339 time such as 2026-03-01T10:00:00Z or 2026-03-01T18:00:00+08:00"
    ))
}

/// True when `value` has exactly the layout of `shape`, where `D` stands for an ASCII digit.
fn has_shape(value: &str, shape: &str) -> bool {
    value.len() == shape.len()
        && value.bytes().zip(shape.bytes()).all(|(v, s)| if s == b'D' { v.is_ascii_digit() } else { v == s })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s).map(|d| d.as_secs()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn durations_are_integer_and_unit_groups() {
        assert_eq!(secs("30s"), 30);
        assert_eq!(secs("30m"), 1_800);
        assert_eq!(secs("72h"), 259_200);
        assert_eq!(secs("7d"), 604_800);
        assert_eq!(secs("2w"), 1_209_600);
        assert_eq!(secs("1d12h"), 129_600);
        assert_eq!(secs("1w2d3h4m5s"), 604_800 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5);
        assert_eq!(secs(" 72h "), 259_200);
        assert_eq!(secs("0d12h"), 43_200);
    }

    #[test]
    fn bad_durations_are_errors_naming_the_value() {
        for bad in [
            "",
            " ",
            "0",
            "0s",
            "0d0h",
            "72",
            "h",
            "-1d",
            "+1d",
            "1.5d",
            "1D",
            "1 d",
            "1d 12h",
            "12h1d",
            "1d1d",
            "1y",
            "1ms",
            "72hours",
            "d7",
            "1d-",
            "3654d",
            "100000w",
            "99999999999999999999s",
            "18446744073709551615s",
            "١d",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains(&format!("`{bad}`")), "{err}");
            assert!(err.contains("expected"), "{err}");
        }
    }

    #[test]
    fn a_grace_may_be_zero_only_when_written_out() {
        for zero in ["0", " 0 ", "0s", "0d", "0d0h"] {
            assert_eq!(parse_grace(zero), Ok(Duration::ZERO), "{zero}");
        }
        assert_eq!(parse_grace("3d"), Ok(Duration::from_secs(3 * 86_400)));
        for bad in ["", "-1d", "3", "1.5d", "3 days", "3654d", "never"] {
            let err = parse_grace(bad).expect_err(bad);
            assert!(err.contains(&format!("`{bad}`")) && err.contains("or 0 to release at once"), "{err}");
        }
    }

    #[test]
    fn ten_years_is_the_ceiling() {
        assert_eq!(parse_duration("3653d").map(|d| d.as_secs()), Ok(MAX_DURATION.as_secs()));
        assert!(parse_duration("3653d1s").is_err());
    }

    #[test]
    fn durations_format_back_into_the_same_notation() {
        assert_eq!(format_duration(Duration::from_secs(129_600)), "1d12h");
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
        assert_eq!(format_duration(Duration::from_secs(90_061)), "1d1h1m1s");
        assert_eq!(secs(&format_duration(Duration::from_secs(987_654))), 987_654);
    }

    #[test]
    fn a_date_only_tag_means_midnight_utc() {
        assert_eq!(parse_tag_date("2026-03-01").unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
    }

    #[test]
    fn rfc3339_tags_with_any_offset_become_utc() {
        assert_eq!(parse_tag_date("2026-03-01T10:00:00Z").unwrap().to_rfc3339(), "2026-03-01T10:00:00+00:00");
        assert_eq!(parse_tag_date("2026-03-01T18:00:00+08:00").unwrap().to_rfc3339(), "2026-03-01T10:00:00+00:00");
        assert_eq!(parse_tag_date("2026-03-01T10:00:00.5Z").unwrap().timestamp(), 1_772_359_200);
    }

    #[test]
    fn alibaba_minute_precision_tags_parse() {
        assert_eq!(parse_tag_date("2026-03-01T10:00Z").unwrap().to_rfc3339(), "2026-03-01T10:00:00+00:00");
        assert_eq!(parse_tag_date("2026-03-01T18:00+08:00").unwrap().to_rfc3339(), "2026-03-01T10:00:00+00:00");
    }

    #[test]
    fn ambiguous_or_broken_dates_are_errors_naming_the_value() {
        for bad in [
            "",
            "tomorrow",
            "03/01/2026",
            "01/03/2026",
            "2026/03/01",
            "2026-3-1",
            "2026-02-30",
            "2026-13-01",
            "20260301",
            "2026-03-01T25:00Z",
            "2026-03-01T10:00",
            "2026-03-01 10:00",
            "+12026-03-01",
            "2026-03-01Z",
            "1d",
        ] {
            let err = parse_tag_date(bad).expect_err(bad);
            assert!(err.contains(&format!("`{bad}`")) && err.contains("expected"), "{err}");
        }
    }

    proptest! {
        #[test]
        fn parse_duration_never_panics(s in ".*") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn parse_duration_never_panics_on_duration_like_text(s in "[0-9]{0,25}[smhdwy]?[0-9]{0,5}[smhdw-]?") {
            if let Ok(d) = parse_duration(&s) {
                prop_assert!(d.as_secs() > 0 && d <= MAX_DURATION);
            }
        }

        #[test]
        fn parse_tag_date_never_panics(s in ".*") {
            let _ = parse_tag_date(&s);
        }

        #[test]
        fn parse_tag_date_never_panics_on_date_like_text(s in "[0-9+-]{0,12}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?([Zz]|[+-][0-9]{2}:[0-9]{2}))?") {
            let _ = parse_tag_date(&s);
        }
    }
}

//! Request parameters: decoding query strings and form bodies, and reading typed API parameters
//! with the real service's errors (reference section 1.1, "Collection parameters").

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use super::auth::COMMON_PARAMS;
use super::reply::ApiFault;
use crate::signature::percent_decode;

/// All parameters of a request, query and form body together (the signature covers the union).
pub(crate) type Params = BTreeMap<String, String>;

/// Decodes `a=1&b=2` pairs. `+` is a space, as in form encoding (the Java servlets behind the real service
/// decode query strings the same way).
pub(crate) fn decode_pairs(text: &str) -> Result<Vec<(String, String)>, ApiFault> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = || {
                ApiFault::new(
                    400,
                    "InvalidParameter",
                    format!("Malformed percent-encoding in the request parameter \"{k}\"."),
                )
            };
            Ok((percent_decode(k).ok_or_else(bad)?, percent_decode(v).ok_or_else(bad)?))
        })
        .collect()
}

/// Merges query and body pairs. A name given twice is refused: which value was signed would be ambiguous.
pub(crate) fn merge(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Params, ApiFault> {
    let mut params = Params::new();
    for (k, v) in pairs {
        if params.contains_key(&k) {
            return Err(ApiFault::new(
                400,
                "InvalidParameter",
                format!("The request parameter \"{k}\" is given more than once."),
            ));
        }
        params.insert(k, v);
    }
    Ok(params)
}

/// The API's own parameters: everything but the common ones (used as the `ClientToken` fingerprint).
pub(crate) fn api_params(p: &Params) -> Params {
    p.iter().filter(|(k, _)| !COMMON_PARAMS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A required parameter; an empty value counts as missing.
pub(crate) fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, ApiFault> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| ApiFault::missing(name))
}

/// An optional parameter; an empty value counts as absent.
pub(crate) fn optional<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Booleans travel as the strings `true`/`false`; absent means false.
pub(crate) fn boolean(p: &Params, name: &str) -> Result<bool, ApiFault> {
    match optional(p, name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ApiFault::invalid(name, "expected true or false")),
    }
}

/// An integer within `range`, or `default` when absent.
pub(crate) fn number(p: &Params, name: &str, range: RangeInclusive<u64>, default: u64) -> Result<u64, ApiFault> {
    match optional(p, name) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => {
                Err(ApiFault::invalid(name, &format!("expected an integer from {} to {}", range.start(), range.end())))
            }
        },
    }
}

/// A RepeatList `Name.1=a&Name.2=b`, in index order, duplicates dropped. At least one value, at most `max`.
pub(crate) fn repeat_list(p: &Params, name: &str, max: usize) -> Result<Vec<String>, ApiFault> {
    let mut indexed: Vec<(u64, &str)> = Vec::new();
    for (k, v) in p {
        let Some(index) = k.strip_prefix(name).and_then(|rest| rest.strip_prefix('.')) else { continue };
        let Ok(n) = index.parse::<u64>() else { continue };
        if n == 0 || n > max as u64 {
            return Err(ApiFault::invalid(k, &format!("the index must be from 1 to {max}")));
        }
        if v.is_empty() {
            return Err(ApiFault::invalid(k, "must not be empty"));
        }
        indexed.push((n, v));
    }
    if indexed.is_empty() {
        return Err(ApiFault::missing(&format!("{name}.1")));
    }
    indexed.sort_by_key(|(n, _)| *n);
    let mut values: Vec<String> = Vec::with_capacity(indexed.len());
    for (_, v) in indexed {
        if !values.iter().any(|x| x == v) {
            values.push(v.to_string());
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn decoding_pairs() {
        let got = decode_pairs("a=1&b=x%20y+z&&c&d=%2B").unwrap();
        let want: Vec<(String, String)> = [("a", "1"), ("b", "x y z"), ("c", ""), ("d", "+")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(decode_pairs("a=%zz").unwrap_err().code, "InvalidParameter");
        assert_eq!(decode_pairs("a=%E4").unwrap_err().code, "InvalidParameter");
    }

    #[test]
    fn duplicates_are_refused() {
        let pairs = vec![("a".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())];
        assert!(merge(pairs).unwrap_err().message.contains("\"a\""));
    }

    #[test]
    fn typed_values() {
        let q = p(&[("T", "TRUE"), ("F", "false"), ("X", "yes"), ("N", "50"), ("Big", "101"), ("Neg", "-1")]);
        assert_eq!(boolean(&q, "T"), Ok(true));
        assert_eq!(boolean(&q, "F"), Ok(false));
        assert_eq!(boolean(&q, "Absent"), Ok(false));
        assert!(boolean(&q, "X").is_err());
        assert_eq!(number(&q, "N", 1..=100, 10), Ok(50));
        assert_eq!(number(&q, "Absent", 1..=100, 10), Ok(10));
        assert!(number(&q, "Big", 1..=100, 10).is_err());
        assert!(number(&q, "Neg", 1..=100, 10).is_err());
    }

    #[test]
    fn repeat_lists() {
        let q = p(&[
            ("InstanceId.2", "b"),
            ("InstanceId.1", "a"),
            ("InstanceId.10", "c"),
            ("InstanceId.3", "a"),
            ("InstanceIdX", "z"),
        ]);
        assert_eq!(repeat_list(&q, "InstanceId", 100).unwrap(), vec!["a", "b", "c"]);
        assert_eq!(repeat_list(&p(&[]), "InstanceId", 100).unwrap_err().code, "MissingParameter");
        assert!(repeat_list(&p(&[("InstanceId.101", "x")]), "InstanceId", 100).is_err());
        assert!(repeat_list(&p(&[("InstanceId.0", "x")]), "InstanceId", 100).is_err());
        assert!(repeat_list(&p(&[("InstanceId.1", "")]), "InstanceId", 100).is_err());
    }

    #[test]
    fn api_params_leave_common_ones_out() {
        let q = p(&[("Action", "A"), ("SignatureNonce", "n"), ("RegionId", "r"), ("ClientToken", "t")]);
        assert_eq!(api_params(&q).into_keys().collect::<Vec<_>>(), vec!["ClientToken", "RegionId"]);
    }
}

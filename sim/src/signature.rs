//! RPC signature V2 (`SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`) as the gateway computes it, written
//! from the reference (sections 1.1 "Canonicalisation" and 1.2 "Worked examples"; the SDKs' signers there are
//! `aliyun-python-sdk-core`'s `rpc_signature_composer` and `alibaba-cloud-sdk-go`'s `rpc_signature_composer.go`).
//! Public so that tests and other clients can sign requests for the emulator; it is checked against the
//! published vectors below, never against a client's own signer.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;

/// RFC 3986 unreserved characters stay as they are; everything else becomes `%XX` (uppercase hex), so a space
/// is `%20`, never `+` (reference 1.1, step 3).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a name or a value the way the string to sign needs it.
pub fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// `HTTPMethod & %2F & percentEncode(sorted "name=value" pairs joined by &)` over every parameter but
/// `Signature` (reference 1.1, steps 1-5). The map's order is byte order of the names, which is the order
/// the gateway sorts by (uppercase before lowercase).
pub fn string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    let canonical = params
        .iter()
        .filter(|(name, _)| name.as_str() != "Signature")
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{}&%2F&{}", method.to_ascii_uppercase(), percent_encode(&canonical))
}

/// `Base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))` (reference 1.1, step 6).
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    let key = format!("{secret}&");
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes()) else {
        // HMAC takes a key of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The signature of a whole parameter set sent with `method`.
pub fn signature(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    sign(secret, &string_to_sign(method, params))
}

/// Decodes one name or value of a query string or form body. `+` is a space (form encoding, which the official
/// Tea SDK uses for bodies, reference 1.1 "GET vs POST"). `None` for a `%` not followed by two hex digits, or for
/// bytes that are not UTF-8.
pub(crate) fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let well_formed = bytes.iter().enumerate().filter(|(_, b)| **b == b'%').all(|(i, _)| {
        bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    });
    if !well_formed {
        return None;
    }
    let spaced = value.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Reference 1.2, V1 and V1b: the official docs' example, with the docs' spelling `TimeStamp` and the real one.
    fn v1(timestamp_name: &str) -> BTreeMap<String, String> {
        p(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            (timestamp_name, "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ])
    }

    #[test]
    fn vector_v1_official_docs() {
        assert_eq!(
            string_to_sign("GET", &v1("TimeStamp")),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(signature("GET", &v1("TimeStamp"), "testsecret"), "CT9X0VtwR86fNWSnsc6v8YGOjuE=");
    }

    #[test]
    fn vector_v1b_real_timestamp_name() {
        assert_eq!(signature("GET", &v1("Timestamp"), "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    #[test]
    fn doc_trap_literal_ampersands_do_not_sign() {
        // Reference 1.2: the docs print the string to sign with literal `&` between the pairs; that text signs
        // to something else. The pairs' `&` must be `%26`.
        let printed = string_to_sign("GET", &v1("TimeStamp")).replace("%26", "&");
        assert_eq!(sign("testsecret", &printed), "LZ5DVzNj95387UDL70u7+18AwWY=");
    }

    #[test]
    fn vector_v2_darabonba_lowercase_names_sort_last() {
        let params = p(&[("query", "test"), ("body", "test")]);
        assert_eq!(string_to_sign("GET", &params), "GET&%2F&body%3Dtest%26query%3Dtest");
        assert_eq!(signature("GET", &params, "secret"), "XlUyV4sXjOuX5FnjUz9IF9tm5rU=");
    }

    /// Reference 1.2, V5: the Go SDK's test, with empty values and a space in a value.
    fn v5() -> BTreeMap<String, String> {
        p(&[
            ("AccessKeyId", "accessKeyId"),
            ("Action", ""),
            ("Format", "JSON"),
            ("RegionId", "regionId"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "MOCK_UUID"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "mock date"),
            ("Version", ""),
        ])
    }

    #[test]
    fn vector_v5_go_sdk_empty_values_and_space() {
        assert!(string_to_sign("GET", &v5()).contains("Timestamp%3Dmock%2520date"));
        assert!(string_to_sign("GET", &v5()).contains("%26Action%3D%26"));
        assert_eq!(signature("GET", &v5(), "accessKeySecret"), "7loPmFjvDnzOVnQeQNj85S6nFGY=");
    }

    #[test]
    fn vector_v5b_security_token_is_signed() {
        let mut params = v5();
        params.insert("SecurityToken".into(), "accessKeyStsToken".into());
        assert_eq!(signature("GET", &params, "accessKeySecret"), "5Nxdcler+ihqWqv0Hr2On4PsBf4=");
    }

    #[test]
    fn signature_itself_is_not_signed_and_the_method_is() {
        let mut params = v5();
        let before = signature("GET", &params, "accessKeySecret");
        params.insert("Signature".into(), "whatever".into());
        assert_eq!(signature("GET", &params, "accessKeySecret"), before);
        assert!(string_to_sign("post", &params).starts_with("POST&%2F&"));
        assert_ne!(signature("POST", &params, "accessKeySecret"), before);
    }

    #[test]
    fn encoding_official_sdk_case_and_others() {
        // The official SDK unit test of reference 1.1, step 3.
        assert_eq!(percent_encode(" ~/*-+"), "%20~%2F%2A-%2B");
        assert_eq!(percent_encode("=&:"), "%3D%26%3A");
        assert_eq!(percent_encode("中"), "%E4%B8%AD");
        assert_eq!(percent_encode("aZ09-_.~"), "aZ09-_.~");
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("x%20y+z").as_deref(), Some("x y z"));
        assert_eq!(percent_decode("%2B").as_deref(), Some("+"));
        assert_eq!(percent_decode("%E4%B8%AD").as_deref(), Some("中"));
        assert_eq!(percent_decode("").as_deref(), Some(""));
        for bad in ["%zz", "%", "%4", "a%2", "%E4"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
        for s in ["a b", "中文unicode", " ~/*-+", ""] {
            assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        }
    }
}

//! Validators shared by the policy, the trigger events and the webhook configuration: one definition of a
//! region id, an instance id, a tag key and a base URL, each refusing with a typed error.
//!
//! Each error's text names what was wrong and what is expected; the caller adds where the value sat (a policy
//! path, an event field). Values quoted back are clipped and escaped, so a hostile value cannot flood a log
//! or forge a line in it.

use url::Url;

/// Longest region id accepted (the longest real one is 21 bytes).
pub const MAX_REGION_LEN: usize = 64;
/// Longest instance id, in bytes (`i-bp1…`, `r-bp1…`, `alikafka_post-cn-…` are well under it).
pub const MAX_INSTANCE_ID_LEN: usize = 64;
/// Alibaba tag keys are at most 128 characters (reference 3.1, TagResources).
pub const MAX_TAG_KEY_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    #[error("`{shown}…` ({len} bytes) is not a region id: expected at most {MAX_REGION_LEN} bytes like cn-hangzhou")]
    RegionTooLong { shown: String, len: usize },
    #[error("`{0}` is not a region id: expected lowercase like cn-hangzhou or ap-southeast-1")]
    Region(String),
    #[error(
        "`{0}` is not a resource id (letters, digits, `-`, `_`, `.`; at most {MAX_INSTANCE_ID_LEN} bytes), \
         expected an id such as i-abc"
    )]
    InstanceId(String),
    #[error("empty tag key: expected a tag key such as expire-at")]
    TagKeyEmpty,
    #[error("a tag key of {0} characters: Alibaba tag keys have at most {MAX_TAG_KEY_CHARS}")]
    TagKeyTooLong(usize),
    #[error("tag key {0:?} holds a control character: expected a tag key such as expire-at")]
    TagKeyControl(String),
    #[error("tag key {0:?} has surrounding whitespace: write the key exactly, such as janitor:keep")]
    TagKeyWhitespace(String),
    #[error("`{0}` is not a base URL: expected http://host[:port] or https://host[:port]")]
    BaseUrl(String),
}

/// `^[a-z]{2,}(-[a-z0-9]+)+$`, at most [`MAX_REGION_LEN`] bytes: `cn-hangzhou`, `ap-southeast-1`,
/// `cn-shanghai-finance-1`.
pub fn is_region(s: &str) -> bool {
    if s.len() > MAX_REGION_LEN {
        return false;
    }
    let mut parts = s.split('-');
    let first_ok = parts.next().is_some_and(|p| p.len() >= 2 && p.bytes().all(|b| b.is_ascii_lowercase()));
    let mut rest = 0;
    let rest_ok = parts.all(|p| {
        rest += 1;
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    first_ok && rest_ok && rest > 0
}

/// A region id (see [`is_region`]).
pub fn region(s: &str) -> Result<(), ValidateError> {
    if s.len() > MAX_REGION_LEN {
        return Err(ValidateError::RegionTooLong { shown: clip(s, 32), len: s.len() });
    }
    if is_region(s) {
        Ok(())
    } else {
        Err(ValidateError::Region(clip(s, 64)))
    }
}

/// `^[A-Za-z0-9][A-Za-z0-9._-]*$`, at most [`MAX_INSTANCE_ID_LEN`] bytes: `i-bp1…`, `r-bp1…`,
/// `alikafka_post-cn-…`, `kst-hzz6…`.
pub fn is_instance_id(s: &str) -> bool {
    (1..=MAX_INSTANCE_ID_LEN).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// An instance id (see [`is_instance_id`]).
pub fn instance_id(s: &str) -> Result<(), ValidateError> {
    if is_instance_id(s) {
        Ok(())
    } else {
        Err(ValidateError::InstanceId(clip(s, 64)))
    }
}

/// A tag key a policy may name: not blank, at most [`MAX_TAG_KEY_CHARS`] characters, no control characters.
pub fn tag_key(key: &str) -> Result<(), ValidateError> {
    let chars = key.chars().count();
    if key.trim().is_empty() {
        Err(ValidateError::TagKeyEmpty)
    } else if key.trim() != key {
        // Alibaba keeps tag keys as written; `janitor:keep ` would match no tag and protect nothing.
        Err(ValidateError::TagKeyWhitespace(key.chars().take(MAX_TAG_KEY_CHARS).collect()))
    } else if chars > MAX_TAG_KEY_CHARS {
        Err(ValidateError::TagKeyTooLong(chars))
    } else if key.chars().any(char::is_control) {
        Err(ValidateError::TagKeyControl(key.chars().take(MAX_TAG_KEY_CHARS).collect()))
    } else {
        Ok(())
    }
}

/// An http(s) base URL with a host (`http://127.0.0.1:8931`, `https://ecs.cn-hangzhou.aliyuncs.com`), parsed
/// by the `url` crate. Whitespace anywhere is refused rather than silently dropped as the URL standard does, and
/// so is a host-less `http:///path` (which the standard would read as host `path`).
pub fn base_url(s: &str) -> Result<Url, ValidateError> {
    let bad = || ValidateError::BaseUrl(clip(s, 200));
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).ok_or_else(bad)?;
    if rest.is_empty() || rest.starts_with('/') || s.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let url = Url::parse(s).map_err(|_| bad())?;
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(url),
        _ => Err(bad()),
    }
}

/// True for a URL whose host is the loopback interface (the only place plain http is accepted for webhooks).
pub fn is_loopback(url: &Url) -> bool {
    is_loopback_ip(url) || url.host_str() == Some("localhost")
}

/// True when the host is a loopback IP literal (127.0.0.0/8, ::1). Stricter than [`is_loopback`]: a name such as
/// `localhost` could resolve elsewhere, so where a wrong answer would act on a real account (the clock rule),
/// only literals count.
pub fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// Outside text quoted in an error: at most `max` characters, control characters escaped.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in ["cn-hangzhou", "ap-southeast-1", "cn-shanghai-finance-1", "us-east-1", "eu-central-1"] {
            assert_eq!(region(ok), Ok(()), "{ok}");
        }
        for bad in ["", "cn", "c-hangzhou", "cn-", "-cn-hangzhou", "cn--hz", "CN-hangzhou", "cn-hang zhou", "cn_hz"] {
            assert!(!is_region(bad), "{bad:?}");
            assert!(region(bad).unwrap_err().to_string().contains("is not a region id: expected lowercase"));
        }
        let e = region("cn-hangzhou\n").unwrap_err().to_string();
        assert!(e.contains("`cn-hangzhou\\n`"), "control characters are escaped: {e}");
        let long = format!("cn-{}", "a".repeat(100));
        assert!(!is_region(&long));
        let e = region(&long).unwrap_err().to_string();
        assert!(e.contains("(103 bytes) is not a region id: expected at most 64 bytes"), "{e}");
    }

    #[test]
    fn instance_ids() {
        for ok in ["i-bp1abc", "r-bp1", "alikafka_post-cn-1.x", "kst-hzz6", "I-UPPER"] {
            assert_eq!(instance_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-i", "i 1", "i/1", "i-1\n", "i-abc ", &"x".repeat(65)] {
            assert!(instance_id(bad).unwrap_err().to_string().contains("is not a resource id"), "{bad:?}");
        }
    }

    #[test]
    fn tag_keys() {
        for ok in ["expire-at", "janitor:keep", "owner", "环境", &"k".repeat(128)] {
            assert_eq!(tag_key(ok), Ok(()), "{ok}");
        }
        assert_eq!(tag_key(" "), Err(ValidateError::TagKeyEmpty));
        assert_eq!(tag_key(&"k".repeat(129)), Err(ValidateError::TagKeyTooLong(129)));
        assert!(tag_key("a\u{1b}[31m").unwrap_err().to_string().contains("holds a control character"));
    }

    #[test]
    fn base_urls() {
        for ok in ["http://127.0.0.1:8931", "https://ecs.cn-hangzhou.aliyuncs.com", "http://localhost/"] {
            assert!(base_url(ok).is_ok(), "{ok}");
        }
        for bad in ["127.0.0.1:8931", "ftp://x", "http://", "http:// x", "http:///x", "https://a b", "http://[::1"] {
            let e = base_url(bad).unwrap_err().to_string();
            assert!(e.contains("is not a base URL: expected http://"), "{bad}: {e}");
        }
        assert_eq!(base_url("http://127.0.0.1:9").unwrap().port(), Some(9));
    }

    #[test]
    fn loopback() {
        for (u, want) in [
            ("http://127.0.0.1:1/", true),
            ("http://127.9.9.9/", true),
            ("http://[::1]:8/", true),
            ("http://localhost/", true),
            ("http://10.0.0.1/", false),
            ("http://localhost.example/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(u).unwrap()), want, "{u}");
        }
    }
}

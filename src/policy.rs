//! The policy file: YAML parsed and validated once into the typed structs below. The rest of the
//! program only ever sees a valid [`Policy`]. (Parsing/validation: see `parse`/`from_yaml`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::inventory::ChargeType;

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Real releases happen only when this is true (or the CLI says `--apply`). Default false.
    pub apply: bool,
    /// Regions to scan, e.g. `cn-hangzhou`.
    pub regions: Vec<String>,
    /// Product codes to scan (`ecs`, ...). Default: every product a rule names, or all known products.
    pub products: Vec<String>,
    /// Per-product endpoint base URLs (`ecs: http://127.0.0.1:8931`).
    pub endpoints: BTreeMap<String, String>,
    pub concurrency: Concurrency,
    pub protect: Protection,
    pub limits: Limits,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    /// Regions listed at the same time (default 4).
    pub regions: usize,
    /// Requests in flight per endpoint (default 8).
    pub per_endpoint: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Protection {
    /// A tag whose presence (value `None`) or exact value protects (`janitor:keep: "true"`).
    pub tags: Vec<TagMatch>,
    pub instance_ids: BTreeSet<String>,
    pub names: Vec<glob::Pattern>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagMatch {
    pub key: String,
    /// `None` means "any value".
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Above this many eligible instances, nothing is released (default 10).
    pub max_releases_per_run: usize,
    /// Above this share of the scanned population (0–100), nothing is released (default 25).
    pub max_release_percent: f64,
}

/// One rule: every filter that is set must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// `None`: any product.
    pub products: Option<BTreeSet<String>>,
    pub regions: Option<BTreeSet<String>>,
    pub charge_type: Option<ChargeType>,
    /// Native status strings, compared case-insensitively.
    pub status: Option<BTreeSet<String>>,
    pub tag_equals: BTreeMap<String, String>,
    pub tag_exists: Vec<String>,
    pub tag_absent: Vec<String>,
    /// Name of a tag holding an expiry date (`2026-03-01` or RFC 3339): matches once that date has passed.
    pub expire_at_tag: Option<String>,
    /// Name of a tag holding a TTL relative to creation (`72h`, `7d`): matches once creation + TTL has passed.
    pub ttl_tag: Option<String>,
    /// Matches instances created more than this long ago.
    pub created_older_than: Option<Duration>,
    /// Matches subscriptions that expired more than this long ago.
    pub expired_for: Option<Duration>,
    pub name_glob: Option<glob::Pattern>,
    /// Allow releasing running instances (ECS `Force=true`). Default false.
    pub force: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}: {path}: {message}")]
pub struct PolicyError {
    pub file: String,
    /// Field path such as `rules[2].ttl_tag`.
    pub path: String,
    pub message: String,
}

impl Policy {
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: path.display().to_string(),
            path: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        Policy::from_yaml(&text, &path.display().to_string())
    }

    pub fn from_yaml(_text: &str, _file: &str) -> Result<Policy, PolicyError> {
        todo!("policy parsing")
    }
}

//! The policy file: YAML parsed and validated once into the typed structs below. The rest of the
//! program only ever sees a valid [`Policy`]. A typo is an error, never a silently wider or narrower rule.
//!
//! The documented shape (snake_case keys; every key not marked required is optional):
//!
//! ```yaml
//! apply: false                 # default false: dry run
//! regions: [cn-hangzhou, cn-shanghai]   # required, non-empty
//! products: [ecs]              # default: the products the rules name, or all known if a rule names none
//! endpoints: { ecs: "http://127.0.0.1:8931" }   # per-product base URLs, http:// or https://
//! concurrency: { regions: 4, per_endpoint: 8, total: 160 }   # defaults; 1..=64, 1..=64, 1..=1024
//! protect:                     # vetoes, whatever rule matched; matched case-insensitively (when in doubt, keep)
//!   tags: { "janitor:keep": "true", "do-not-delete": null }   # null = any value; or [ {key: k, value: v}, {key: k2} ]
//!   instance_ids: [i-abc]
//!   names: ["prod-*"]          # glob patterns
//! limits:
//!   max_releases_per_run: 10   # default 10; 0 releases nothing
//!   max_release_percent: 25    # default 25; 0 < x <= 100, share of the scanned instances
//! window:                      # optional: releases happen only while this window is open (marks any time)
//!   cron: "0 0 2 * * Mon-Fri"  # when it opens: 6 or 7 fields, seconds first, day names (not numbers)
//!   duration: 4h               # how long it stays open (real time)
//!   tz: Asia/Shanghai          # IANA zone the cron is read in; default UTC
//! notify: { owner_tag: owner } # optional: the summary lists, per value of this tag, what was marked/unmarked/released
//! account_id: "1234567890123456"   # optional: refuse to run (exit 1, nothing listed) in any other account
//! role_arn: acs:ram::1234567890123456:role/aliyun-janitor   # optional: act through this role (STS AssumeRole)
//! role_session_name: aliyun-janitor  # default aliyun-janitor (2-64 of letters, digits . @ - _)
//! role_duration: 1h                # default 1h, 15m..12h; refreshed before it ends
//! accounts: { discovery: resource-directory }   # optional: every member account, through its role (accounts.rs)
//! rules:                       # required, at least one; tried in file order, the first match wins
//!   - name: expired-by-tag     # required, unique
//!     filters:                 # at least one besides products/regions/tag_absent; all must match
//!       products: [ecs]
//!       regions: [cn-hangzhou]
//!       charge_type: pay-as-you-go        # or subscription (PostPaid/PrePaid also accepted)
//!       status: [Stopped]                 # case-insensitive
//!       tag: { env: dev }                 # tag equals
//!       tag_exists: [owner]
//!       tag_absent: ["janitor:keep"]
//!       expire_at_tag: expire-at          # tag holding 2026-03-01 (midnight UTC) or an RFC 3339 time
//!       ttl_tag: ttl                      # tag holding a TTL (72h, 7d, 1d12h) counted from creation
//!       created_older_than: 30d
//!       expired_for: 7d                   # subscriptions expired more than this long ago
//!       name: "ci-*"                      # glob on the instance name (case-sensitive)
//!     force: false                        # allow releasing running instances; for Kafka/KMS, the rule's own
//!                                         # ForceDeleteInstance / ForceDeleteWithoutBackup choice
//!     grace: 3d                           # default 3d: mark first, release once this has passed; 0 = at once
//!     auto_release: false                 # also set the platform's auto-release time at the deadline (ECS
//!                                         # pay-as-you-go); needs a grace of 45m to 3 years
//!     window: { cron: "0 0 3 * * *", duration: 2h }   # replaces the top-level window for this rule
//! bss: { discovery: false, site: china, vno: false }   # billing discovery, see `bss.rs`
//! ```
//!
//! Durations are integer+unit groups, largest first (`30m`, `72h`, `7d`, `2w`, `1d12h`), at most 10 years.
//! Only `grace` accepts zero, and only written out (`0` or `0s`): releasing without warning is a choice.
//! Rules may not filter on the janitor's own tags (`janitor:release-after`, `janitor:rule`, `janitor:last-event`):
//! a mark never makes an instance eligible by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::inventory::ChargeType;

pub mod accounts;
mod bss;
mod raw;
mod time;
mod window;

pub use bss::{Bss, Site as BssSite};

pub use time::{format_duration, parse_duration, parse_grace, parse_tag_date, MAX_DURATION};
pub use window::{Window, WindowState};

/// The grace of a rule that does not say: marked instances are released three days after the mark.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3 * 86_400);
/// `ModifyInstanceAutoReleaseTime` accepts times from 30 minutes to 3 years ahead (reference section 3.1).
pub const AUTO_RELEASE_MIN: Duration = Duration::from_secs(30 * 60);
pub const AUTO_RELEASE_MAX: Duration = Duration::from_secs(3 * 365 * 86_400);
/// Time between the plan's clock and the `ModifyInstanceAutoReleaseTime` call (a long listing, retries): a rule's
/// grace must leave the platform's 30 minutes even then, so an auto-release grace starts at 45 minutes.
pub const AUTO_RELEASE_MARGIN: Duration = Duration::from_secs(15 * 60);

/// Product codes a policy may name: the catalog's (`products::catalog`, data only: the policy reads no adapter).
fn known_products() -> crate::products::Catalog {
    crate::products::catalog()
}

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
    /// Billing discovery (`bss:`); off by default.
    pub bss: Bss,
    /// Releases happen only while this window is open; a rule's own window replaces it. `None`: any time.
    pub window: Option<Window>,
    pub notify: Notify,
    /// The account the run must act in (`account_id:`): a run whose credentials belong to another account is
    /// refused before anything is listed (GetCallerIdentity).
    pub account_id: Option<String>,
    /// A role to act through (`role_arn:`, `role_session_name:`, `role_duration:`), assumed with whatever the
    /// credential chain found. `--role-arn` / `JANITOR_ROLE_ARN` replace it.
    pub role: Option<crate::credentials::RoleSpec>,
    /// `accounts:`: run over an organisation's member accounts, each through its role (`org`).
    pub accounts: Option<accounts::Accounts>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Notify {
    /// Tag whose value names an instance's owner; the summary groups marks, unmarks and releases by it.
    pub owner_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    /// Regions listed at the same time (default 4).
    pub regions: usize,
    /// Requests in flight per endpoint (default 8).
    pub per_endpoint: usize,
    /// Requests in flight across every endpoint (default 160): what bounds the connections, and so the memory,
    /// of a run over many regions and products.
    pub total: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Protection {
    /// A tag whose presence (value `None`) or value protects (`janitor:keep: "true"`). Keys, values and name
    /// patterns are matched ignoring ASCII case: a protection errs towards keeping.
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
    /// Time between the first match (the mark) and the release. Zero: release at once, without a mark.
    pub grace: Duration,
    /// When marking a pay-as-you-go instance, also set the platform's auto-release time to the deadline, so it
    /// holds even if the janitor never runs again (it then also bypasses windows, limits and later keep tags
    /// until the next run notices and cancels it).
    pub auto_release: bool,
    /// Replaces the top-level window for instances this rule matches.
    pub window: Option<Window>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}: {path}: {message}")]
pub struct PolicyError {
    pub file: String,
    /// Field path in YAML names, such as `rules[2].filters.ttl_tag` (`(document)` for the whole file).
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

    /// Parses and validates a policy. Errors name `file`, the field path and what was expected.
    pub fn from_yaml(text: &str, file: &str) -> Result<Policy, PolicyError> {
        raw::parse(text)
            .and_then(raw::RawPolicy::into_policy)
            .and_then(|policy| policy.validate().map(|()| policy))
            .map_err(|e| PolicyError { file: file.to_string(), ..e })
    }

    /// Checks the invariants of a typed policy, whether parsed or built in code. Paths use the YAML names;
    /// `file` is `(policy)` (`from_yaml` fills in the real one).
    pub fn validate(&self) -> Result<(), PolicyError> {
        let err = |path: String, message: String| PolicyError { file: "(policy)".into(), path, message };
        if self.rules.is_empty() {
            return Err(err("rules".into(), "empty list: expected at least one rule".into()));
        }
        if self.regions.is_empty() {
            return Err(err("regions".into(), "empty list: expected at least one region, such as cn-hangzhou".into()));
        }
        if self.regions.len() > MAX_REGIONS {
            return Err(err(
                "regions".into(),
                format!("{} entries: expected at most {MAX_REGIONS}", self.regions.len()),
            ));
        }
        for (i, region) in self.regions.iter().enumerate() {
            check_region(region).map_err(|m| err(format!("regions[{i}]"), m))?;
            if self.regions[..i].contains(region) {
                return Err(err(format!("regions[{i}]"), format!("duplicate entry `{region}`")));
            }
        }
        if self.products.is_empty() {
            return Err(err(
                "products".into(),
                format!("empty list: expected at least one of {}", known_products().codes_list()),
            ));
        }
        for (i, product) in self.products.iter().enumerate() {
            check_product(product).map_err(|m| err(format!("products[{i}]"), m))?;
            if self.products[..i].contains(product) {
                return Err(err(format!("products[{i}]"), format!("duplicate entry `{product}`")));
            }
        }
        if let Some(a) = &self.account_id {
            if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) || a.len() > 32 {
                return Err(err(
                    "account_id".into(),
                    format!("`{a}`: expected the account id, digits only (such as 1234567890123456)"),
                ));
            }
        }
        if let Some(role) = &self.role {
            crate::credentials::sts::check_role_arn(&role.arn).map_err(|m| err("role_arn".into(), m))?;
            crate::credentials::sts::check_session_name(&role.session_name)
                .map_err(|m| err("role_session_name".into(), m))?;
            if !(crate::credentials::sts::MIN_DURATION_SECS..=43_200).contains(&role.duration_secs) {
                return Err(err(
                    "role_duration".into(),
                    "expected 15m to 12h (STS DurationSeconds 900 to 43200)".into(),
                ));
            }
        }
        for (product, url) in &self.endpoints {
            check_product(product).map_err(|m| err(format!("endpoints.{product}"), m))?;
            check_endpoint(url).map_err(|m| err(format!("endpoints.{product}"), m))?;
        }
        let c = &self.concurrency;
        for (field, value, max) in
            [("regions", c.regions, 64), ("per_endpoint", c.per_endpoint, 64), ("total", c.total, 1024)]
        {
            if !(1..=max).contains(&value) {
                return Err(err(
                    format!("concurrency.{field}"),
                    format!("{value} is out of range: expected an integer from 1 to {max}"),
                ));
            }
        }
        let percent = self.limits.max_release_percent;
        if !(percent > 0.0 && percent <= 100.0) {
            return Err(err(
                "limits.max_release_percent".into(),
                format!("{percent} is out of range: expected a percentage above 0 and at most 100"),
            ));
        }
        for (i, tag) in self.protect.tags.iter().enumerate() {
            if tag.key.trim().is_empty() {
                return Err(err(
                    format!("protect.tags[{i}]"),
                    "empty tag key: expected a tag key such as janitor:keep".into(),
                ));
            }
            check_tag_key(&tag.key).map_err(|m| err(format!("protect.tags[{i}]"), m))?;
        }
        if self.protect.instance_ids.iter().any(|id| id.trim().is_empty()) {
            return Err(err("protect.instance_ids".into(), "empty instance id: expected ids such as i-abc".into()));
        }
        // An id with a stray space would protect nothing (ids are matched exactly, ignoring case).
        if let Some(id) = self.protect.instance_ids.iter().find(|id| id.trim() != id.as_str()) {
            return Err(err(
                "protect.instance_ids".into(),
                format!("instance id {id:?} has surrounding whitespace: write the id exactly, such as i-abc"),
            ));
        }
        for id in &self.protect.instance_ids {
            // An id with a space or a typo'd character protects nothing: refuse it rather than let it look safe.
            crate::validate::instance_id(id).map_err(|e| err("protect.instance_ids".into(), e.to_string()))?;
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let path = format!("rules[{i}]");
            if rule.name.trim().is_empty() {
                return Err(err(format!("{path}.name"), "empty rule name: expected a unique, non-empty name".into()));
            }
            if let Some(first) = self.rules[..i].iter().position(|r| r.name == rule.name) {
                return Err(err(
                    format!("{path}.name"),
                    format!("duplicate rule name `{}` (first used by rules[{first}])", rule.name),
                ));
            }
            self.validate_rule(rule).map_err(|(field, message)| match field.as_str() {
                "" => err(format!("{path}.filters"), message),
                field => err(format!("{path}.filters.{field}"), message),
            })?;
            if rule.grace > MAX_DURATION {
                return Err(err(
                    format!("{path}.grace"),
                    format!("{} is out of range: at most 10 years", format_duration(rule.grace)),
                ));
            }
            let least = AUTO_RELEASE_MIN + AUTO_RELEASE_MARGIN;
            if rule.auto_release && !(least..=AUTO_RELEASE_MAX - AUTO_RELEASE_MARGIN).contains(&rule.grace) {
                return Err(err(
                    format!("{path}.auto_release"),
                    format!(
                        "needs a grace from 45m to 3 years less 15m (the platform's auto-release time must be 30m to 3 years ahead when it is set, with 15m to spare), but grace is {}",
                        format_duration(rule.grace)
                    ),
                ));
            }
        }
        if let Some(owner) = &self.notify.owner_tag {
            if owner.trim().is_empty() {
                return Err(err("notify.owner_tag".into(), "empty tag key: expected a tag key such as owner".into()));
            }
            if crate::lifecycle::is_reserved_tag(owner) {
                return Err(err(
                    "notify.owner_tag".into(),
                    format!("`{owner}` is one of the janitor's own tags: expected a tag such as owner"),
                ));
            }
        }
        Ok(())
    }

    /// A rule's filters; the error is (field under `filters`, or "" for `filters` itself; message).
    fn validate_rule(&self, rule: &Rule) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_string(), message));
        if !rule.has_selecting_filter() {
            return fail(
                "",
                "no filters: this rule would match every instance; expected at least one of tag, tag_exists, \
                 expire_at_tag, ttl_tag, created_older_than, expired_for, name, status, charge_type"
                    .into(),
            );
        }
        if let Some(products) = &rule.products {
            if products.is_empty() {
                return fail(
                    "products",
                    "empty list: expected at least one product code (remove the key to not filter)".into(),
                );
            }
            for product in products {
                check_product(product).map_err(|m| ("products".to_string(), m))?;
                if !self.products.contains(product) {
                    return fail(
                        "products",
                        format!(
                            "`{product}` is not in the top-level products [{}]: this rule would never see it",
                            self.products.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(regions) = &rule.regions {
            if regions.is_empty() {
                return fail(
                    "regions",
                    "empty list: expected at least one region (remove the key to not filter)".into(),
                );
            }
            for region in regions {
                check_region(region).map_err(|m| ("regions".to_string(), m))?;
                if !self.regions.contains(region) {
                    return fail(
                        "regions",
                        format!(
                            "`{region}` is not in the top-level regions [{}]: this rule would never see it",
                            self.regions.join(", ")
                        ),
                    );
                }
            }
        }
        if rule.status.as_ref().is_some_and(|s| s.is_empty() || s.iter().any(|v| v.trim().is_empty())) {
            return fail("status", "expected a non-empty list of status names such as [Stopped]".into());
        }
        for (field, keys) in [
            ("tag", rule.tag_equals.keys().collect::<Vec<_>>()),
            ("tag_exists", rule.tag_exists.iter().collect()),
            ("tag_absent", rule.tag_absent.iter().collect()),
            ("expire_at_tag", rule.expire_at_tag.iter().collect()),
            ("ttl_tag", rule.ttl_tag.iter().collect()),
        ] {
            for key in &keys {
                check_tag_key(key).map_err(|m| (field.to_string(), m))?;
            }
            if let Some(k) = keys.iter().find(|k| crate::lifecycle::is_reserved_tag(k)) {
                return fail(
                    field,
                    format!(
                        "`{k}` is one of the janitor's own tags: a mark must never make an instance eligible by itself"
                    ),
                );
            }
        }
        for (field, duration) in [("created_older_than", rule.created_older_than), ("expired_for", rule.expired_for)] {
            if let Some(d) = duration {
                if d.is_zero() || d > MAX_DURATION {
                    return fail(
                        field,
                        format!(
                            "{} is out of range: expected a positive duration of at most 10 years",
                            format_duration(d)
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

impl Rule {
    /// A rule with no filters, `force` off. It selects nothing valid until a filter is set (see `validate`).
    pub fn new(name: &str) -> Rule {
        Rule {
            name: name.to_string(),
            products: None,
            regions: None,
            charge_type: None,
            status: None,
            tag_equals: BTreeMap::new(),
            tag_exists: Vec::new(),
            tag_absent: Vec::new(),
            expire_at_tag: None,
            ttl_tag: None,
            created_older_than: None,
            expired_for: None,
            name_glob: None,
            force: false,
            grace: DEFAULT_GRACE,
            auto_release: false,
            window: None,
        }
    }

    /// True when a filter narrows the rule beyond product/region scope. `tag_absent` alone does not count:
    /// "every instance without tag X" is still nearly everything.
    pub fn has_selecting_filter(&self) -> bool {
        !self.tag_equals.is_empty()
            || !self.tag_exists.is_empty()
            || self.expire_at_tag.is_some()
            || self.ttl_tag.is_some()
            || self.created_older_than.is_some()
            || self.expired_for.is_some()
            || self.name_glob.is_some()
            || self.status.is_some()
            || self.charge_type.is_some()
    }
}

impl Concurrency {
    /// The API client's bounds.
    pub fn call_limits(&self) -> crate::aliyun::CallLimits {
        crate::aliyun::CallLimits { per_endpoint: self.per_endpoint, total: self.total }
    }
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency { regions: 4, per_endpoint: 8, total: crate::aliyun::CallLimits::DEFAULT_TOTAL }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_releases_per_run: 10, max_release_percent: 25.0 }
    }
}

/// Most regions in one policy.
const MAX_REGIONS: usize = 100;

/// A tag key a policy may name (see [`crate::validate::tag_key`]).
fn check_tag_key(key: &str) -> Result<(), String> {
    crate::validate::tag_key(key).map_err(|e| e.to_string())
}

/// A region id (see [`crate::validate::region`]).
fn check_region(region: &str) -> Result<(), String> {
    crate::validate::region(region).map_err(|e| e.to_string())
}

fn check_product(product: &str) -> Result<(), String> {
    if known_products().by_code(product).is_some() {
        Ok(())
    } else {
        Err(format!("unknown product code `{product}`: expected one of {}", known_products().codes_list()))
    }
}

/// A per-product endpoint override (see [`crate::validate::base_url`]).
fn check_endpoint(url: &str) -> Result<(), String> {
    crate::validate::base_url(url).map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FULL_EXAMPLE: &str = r#"
apply: false
regions: [cn-hangzhou, cn-shanghai]
products: [ecs]
endpoints: { ecs: "http://127.0.0.1:8931" }
concurrency: { regions: 4, per_endpoint: 8 }
protect:
  tags: { "janitor:keep": "true", "do-not-delete": null }
  instance_ids: [i-abc]
  names: ["prod-*"]
limits:
  max_releases_per_run: 10
  max_release_percent: 25
rules:
  - name: expired-by-tag
    filters:
      products: [ecs]
      regions: [cn-hangzhou]
      charge_type: pay-as-you-go
      status: [Stopped]
      tag: { env: dev }
      tag_exists: [owner]
      tag_absent: ["janitor:keep"]
      expire_at_tag: expire-at
      ttl_tag: ttl
      created_older_than: 30d
      expired_for: 7d
      name: "ci-*"
    force: false
"#;

    fn parse(yaml: &str) -> Result<Policy, PolicyError> {
        Policy::from_yaml(yaml, "test.yaml")
    }

    /// A valid policy around one rule with the given (indented) filter lines.
    fn with_filters(filters: &str) -> String {
        format!("regions: [cn-hangzhou]\nrules:\n  - name: r\n    filters:\n{filters}\n")
    }

    /// Asserts that `yaml` is rejected at `path`, and that the message names the file, the path and `expected`.
    #[track_caller]
    fn rejected(yaml: &str, path: &str, expected: &str) {
        let e = parse(yaml).expect_err("policy should be rejected");
        let text = e.to_string();
        assert_eq!(e.file, "test.yaml", "{text}");
        assert_eq!(e.path, path, "{text}");
        assert!(text.starts_with(&format!("test.yaml: {path}: ")), "{text}");
        assert!(text.contains(expected), "`{expected}` not in: {text}");
    }

    /// Issue 13 item 6: a rule name is written as the `janitor:rule` tag value, so it must be one.
    #[test]
    fn a_rule_name_must_fit_in_a_tag_value() {
        let with_name = |name: &str| {
            format!("regions: [cn-hangzhou]\nrules:\n  - name: \"{name}\"\n    filters: {{ ttl_tag: ttl }}\n")
        };
        rejected(&with_name(&"r".repeat(129)), "rules[0].name", "longer than 128 characters");
        rejected(&with_name("aliyun-old"), "rules[0].name", "cannot be a tag value");
        rejected(&with_name("acs:x"), "rules[0].name", "`aliyun` or `acs:`");
        rejected(&with_name("see https://wiki/x"), "rules[0].name", "`http://` or `https://`");
        assert!(parse(&with_name(&"r".repeat(128))).is_ok());
    }

    #[test]
    fn the_full_example_parses_into_typed_values() {
        let p = parse(FULL_EXAMPLE).unwrap();
        assert!(!p.apply);
        assert_eq!(p.regions, ["cn-hangzhou", "cn-shanghai"]);
        assert_eq!(p.products, ["ecs"]);
        assert_eq!(p.endpoints.get("ecs").map(String::as_str), Some("http://127.0.0.1:8931"));
        assert_eq!(p.concurrency, Concurrency { regions: 4, per_endpoint: 8, total: 160 });
        assert_eq!(
            p.protect.tags,
            [
                TagMatch { key: "janitor:keep".into(), value: Some("true".into()) },
                TagMatch { key: "do-not-delete".into(), value: None },
            ]
        );
        assert!(p.protect.instance_ids.contains("i-abc"));
        assert_eq!(p.protect.names[0].as_str(), "prod-*");
        assert_eq!(p.limits, Limits { max_releases_per_run: 10, max_release_percent: 25.0 });
        let r = &p.rules[0];
        assert_eq!(r.name, "expired-by-tag");
        assert_eq!(r.products, Some(BTreeSet::from(["ecs".to_string()])));
        assert_eq!(r.regions, Some(BTreeSet::from(["cn-hangzhou".to_string()])));
        assert_eq!(r.charge_type, Some(ChargeType::PayAsYouGo));
        assert_eq!(r.status, Some(BTreeSet::from(["Stopped".to_string()])));
        assert_eq!(r.tag_equals, BTreeMap::from([("env".to_string(), "dev".to_string())]));
        assert_eq!(r.tag_exists, ["owner"]);
        assert_eq!(r.tag_absent, ["janitor:keep"]);
        assert_eq!(r.expire_at_tag.as_deref(), Some("expire-at"));
        assert_eq!(r.ttl_tag.as_deref(), Some("ttl"));
        assert_eq!(r.created_older_than, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(r.expired_for, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(r.name_glob.as_ref().map(glob::Pattern::as_str), Some("ci-*"));
        assert!(!r.force);
    }

    #[test]
    fn defaults_are_dry_run_and_conservative() {
        let p = parse(&with_filters("      expire_at_tag: expire-at")).unwrap();
        assert!(!p.apply);
        assert_eq!(p.concurrency, Concurrency { regions: 4, per_endpoint: 8, total: 160 });
        assert_eq!(p.limits, Limits { max_releases_per_run: 10, max_release_percent: 25.0 });
        assert_eq!(p.protect, Protection::default());
        assert!(p.endpoints.is_empty());
        assert!(!p.rules[0].force);
        assert_eq!(p.rules[0].products, None);
    }

    #[test]
    fn without_top_level_products_the_rules_decide_what_is_scanned() {
        let all = parse(&with_filters("      expire_at_tag: expire-at")).unwrap();
        assert_eq!(all.products, known_products().codes().collect::<Vec<_>>());
        assert_eq!(all.products, ["ecs", "r-kvstore", "alikafka", "kms"]);
        let named = parse(&with_filters("      products: [kms, ecs]\n      expire_at_tag: expire-at")).unwrap();
        assert_eq!(named.products, ["ecs", "kms"]);
    }

    #[test]
    fn protect_tags_also_accept_the_list_form() {
        let yaml = "regions: [cn-hangzhou]\nprotect:\n  tags:\n    - {key: janitor:keep, value: \"true\"}\n    - {key: do-not-delete}\n    - {key: legal-hold, value: ~}\nrules:\n  - name: r\n    filters: {ttl_tag: ttl}\n";
        let p = parse(yaml).unwrap();
        assert_eq!(
            p.protect.tags,
            [
                TagMatch { key: "janitor:keep".into(), value: Some("true".into()) },
                TagMatch { key: "do-not-delete".into(), value: None },
                TagMatch { key: "legal-hold".into(), value: None },
            ]
        );
    }

    #[test]
    fn charge_types_accept_the_api_spellings() {
        for (spelling, expected) in [
            ("pay-as-you-go", ChargeType::PayAsYouGo),
            ("PostPaid", ChargeType::PayAsYouGo),
            ("subscription", ChargeType::Subscription),
            ("PrePaid", ChargeType::Subscription),
        ] {
            let p = parse(&with_filters(&format!("      charge_type: {spelling}"))).unwrap();
            assert_eq!(p.rules[0].charge_type, Some(expected), "{spelling}");
        }
    }

    #[test]
    fn unquoted_yaml_scalars_in_tag_values_read_as_text() {
        let p = parse(&with_filters("      tag: { keep: true, version: 1.10 }")).unwrap();
        assert_eq!(p.rules[0].tag_equals.get("keep").map(String::as_str), Some("true"));
        assert_eq!(p.rules[0].tag_equals.get("version").map(String::as_str), Some("1.10"));
    }

    #[test]
    fn a_typo_anywhere_is_an_error_at_its_path() {
        rejected(
            &with_filters("      ttl_tag: ttl").replace("filters:", "filtres:"),
            "rules[0].filtres",
            "unknown field `filtres`",
        );
        rejected(&with_filters("      ttl_tags: ttl"), "rules[0].filters.ttl_tags", "unknown field `ttl_tags`");
        rejected(&format!("aply: true\n{}", with_filters("      ttl_tag: ttl")), "aply", "unknown field `aply`");
        rejected(
            &format!("limits: {{ max_release: 5 }}\n{}", with_filters("      ttl_tag: ttl")),
            "limits.max_release",
            "unknown field",
        );
        rejected(
            &format!("protect: {{ tags: [{{key: a, valeu: b}}] }}\n{}", with_filters("      ttl_tag: ttl")),
            "protect.tags[0].valeu",
            "unknown field",
        );
        rejected(
            &format!("protect: {{ tags: [{{value: b}}] }}\n{}", with_filters("      ttl_tag: ttl")),
            "protect.tags[0]",
            "missing field `key`",
        );
    }

    #[test]
    fn wrong_types_are_errors_at_their_path() {
        rejected(&with_filters("      status: Stopped"), "rules[0].filters.status", "expected a sequence");
        rejected(&format!("apply: yes\n{}", with_filters("      ttl_tag: ttl")), "apply", "expected a boolean");
        rejected(&with_filters("      ttl_tag: [ttl]"), "rules[0].filters.ttl_tag", "expected a string");
        rejected(
            &format!("concurrency: {{regions: 2.5}}\n{}", with_filters("      ttl_tag: ttl")),
            "concurrency.regions",
            "expected i64",
        );
    }

    #[test]
    fn a_key_written_without_a_value_is_an_error_not_a_default() {
        rejected(&format!("products:\n{}", with_filters("      ttl_tag: ttl")), "products", "found null");
        rejected(&with_filters("      ttl_tag: ~"), "rules[0].filters.ttl_tag", "found null");
        rejected(&with_filters("      tag: { env: }"), "rules[0].filters.tag.env", "found null");
        rejected(&with_filters("      status: [~]"), "rules[0].filters.status[0]", "found null");
        rejected("regions: [cn-hangzhou]\nrules:\n  - name: r\n    filters:\n", "rules[0].filters", "found null");
    }

    #[test]
    fn required_keys_are_named_when_missing() {
        rejected("rules: [{name: r, filters: {ttl_tag: ttl}}]", "regions", "expected a list of regions");
        rejected("regions: [cn-hangzhou]", "rules", "at least one rule");
        rejected(
            "regions: [cn-hangzhou]\nrules: [{filters: {ttl_tag: ttl}}]",
            "rules[0].name",
            "expected a unique rule name",
        );
        rejected("", "regions", "missing");
    }

    #[test]
    fn empty_lists_are_errors() {
        rejected("regions: []\nrules: [{name: r, filters: {ttl_tag: ttl}}]", "regions", "at least one region");
        rejected(&format!("products: []\n{}", with_filters("      ttl_tag: ttl")), "products", "at least one of ecs");
        rejected("regions: [cn-hangzhou]\nrules: []", "rules", "at least one rule");
        rejected(&with_filters("      products: []\n      ttl_tag: ttl"), "rules[0].filters.products", "at least one");
        rejected(&with_filters("      regions: []\n      ttl_tag: ttl"), "rules[0].filters.regions", "at least one");
        rejected(&with_filters("      status: []"), "rules[0].filters.status", "at least one");
        rejected(&with_filters("      tag: {}"), "rules[0].filters.tag", "at least one");
        rejected(&with_filters("      tag_exists: []"), "rules[0].filters.tag_exists", "at least one");
    }

    #[test]
    fn a_rule_without_selecting_filters_would_match_everything_and_is_rejected() {
        rejected("regions: [cn-hangzhou]\nrules: [{name: r}]", "rules[0].filters", "would match every instance");
        rejected(
            "regions: [cn-hangzhou]\nrules: [{name: r, filters: {}}]",
            "rules[0].filters",
            "would match every instance",
        );
        rejected(
            &with_filters("      products: [ecs]\n      regions: [cn-hangzhou]"),
            "rules[0].filters",
            "expected at least one of tag",
        );
        rejected(&with_filters("      tag_absent: [janitor:keep]"), "rules[0].filters", "would match every instance");
    }

    #[test]
    fn rule_names_must_be_unique_and_non_empty() {
        rejected(
            "regions: [cn-hangzhou]\nrules:\n  - {name: a, filters: {ttl_tag: ttl}}\n  - {name: a, filters: {ttl_tag: ttl2}}",
            "rules[1].name",
            "duplicate rule name `a` (first used by rules[0])",
        );
        rejected(
            "regions: [cn-hangzhou]\nrules: [{name: \" \", filters: {ttl_tag: ttl}}]",
            "rules[0].name",
            "non-empty",
        );
    }

    #[test]
    fn unknown_product_codes_are_named() {
        rejected(
            &format!("products: [ecs, rds]\n{}", with_filters("      ttl_tag: ttl")),
            "products[1]",
            "unknown product code `rds`",
        );
        rejected(
            &with_filters("      products: [ECS]\n      ttl_tag: ttl"),
            "rules[0].filters.products",
            "unknown product code `ECS`",
        );
        rejected(
            &format!("endpoints: {{ rds: \"http://x\" }}\n{}", with_filters("      ttl_tag: ttl")),
            "endpoints.rds",
            "unknown product code `rds`",
        );
    }

    #[test]
    fn a_rule_cannot_name_products_or_regions_that_are_not_scanned() {
        rejected(
            &format!("products: [ecs]\n{}", with_filters("      products: [kms]\n      ttl_tag: ttl")),
            "rules[0].filters.products",
            "`kms` is not in the top-level products [ecs]",
        );
        rejected(
            &with_filters("      regions: [cn-beijing]\n      ttl_tag: ttl"),
            "rules[0].filters.regions",
            "`cn-beijing` is not in",
        );
    }

    #[test]
    fn regions_must_look_like_region_ids_and_be_distinct() {
        for bad in ["cn_hangzhou", "CN-hangzhou", "hangzhou", "c-hangzhou", "cn-", "cn--a", "\"cn-hangzhou \""] {
            rejected(
                &format!("regions: [cn-shanghai, {bad}]\nrules: [{{name: r, filters: {{ttl_tag: ttl}}}}]"),
                "regions[1]",
                "expected lowercase",
            );
        }
        rejected(
            "regions: [cn-hangzhou, cn-hangzhou]\nrules: [{name: r, filters: {ttl_tag: ttl}}]",
            "regions[1]",
            "duplicate",
        );
        assert!(parse("regions: [ap-southeast-1, cn-hangzhou-finance]\nrules: [{name: r, filters: {ttl_tag: ttl}}]")
            .is_ok());
    }

    #[test]
    fn bad_durations_are_errors_at_their_path() {
        for bad in ["0d", "-1d", "30", "1.5d", "11y", "4000d", "99999999999999999999w", "30 days"] {
            rejected(
                &with_filters(&format!("      created_older_than: \"{bad}\"")),
                "rules[0].filters.created_older_than",
                "expected a positive duration",
            );
        }
        rejected(&with_filters("      expired_for: 0s"), "rules[0].filters.expired_for", "zero");
    }

    #[test]
    fn limits_are_range_checked() {
        let policy = |limits: &str| format!("limits: {{ {limits} }}\n{}", with_filters("      ttl_tag: ttl"));
        rejected(&policy("max_release_percent: 0"), "limits.max_release_percent", "above 0 and at most 100");
        rejected(&policy("max_release_percent: 101"), "limits.max_release_percent", "above 0 and at most 100");
        rejected(&policy("max_release_percent: -5"), "limits.max_release_percent", "above 0");
        rejected(&policy("max_release_percent: .nan"), "limits.max_release_percent", "above 0");
        rejected(&policy("max_releases_per_run: -1"), "limits.max_releases_per_run", "expected an integer >= 0");
        let p = parse(&policy("max_releases_per_run: 0, max_release_percent: 100")).unwrap();
        assert_eq!(p.limits, Limits { max_releases_per_run: 0, max_release_percent: 100.0 });
        assert_eq!(parse(&policy("max_release_percent: 2.5")).unwrap().limits.max_release_percent, 2.5);
    }

    #[test]
    fn concurrency_is_range_checked() {
        let policy = |c: &str| format!("concurrency: {{ {c} }}\n{}", with_filters("      ttl_tag: ttl"));
        rejected(&policy("regions: 0"), "concurrency.regions", "from 1 to 64");
        rejected(&policy("per_endpoint: 65"), "concurrency.per_endpoint", "from 1 to 64");
        rejected(&policy("per_endpoint: -3"), "concurrency.per_endpoint", "from 1 to 64");
        rejected(&policy("total: 0"), "concurrency.total", "from 1 to 1024");
        rejected(&policy("total: 1025"), "concurrency.total", "from 1 to 1024");
        assert_eq!(
            parse(&policy("regions: 64")).unwrap().concurrency,
            Concurrency { regions: 64, per_endpoint: 8, total: 160 }
        );
        assert_eq!(parse(&policy("total: 1024")).unwrap().concurrency.total, 1024);
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        for bad in ["127.0.0.1:8931", "ftp://x", "http://", "http:// x"] {
            rejected(
                &format!("endpoints: {{ ecs: \"{bad}\" }}\n{}", with_filters("      ttl_tag: ttl")),
                "endpoints.ecs",
                "expected http://",
            );
        }
    }

    #[test]
    fn bad_globs_and_charge_types_are_named() {
        rejected(&with_filters("      name: \"ci-[\""), "rules[0].filters.name", "not a valid glob");
        rejected(
            &format!("protect: {{ names: [ok, \"[\"] }}\n{}", with_filters("      ttl_tag: ttl")),
            "protect.names[1]",
            "not a valid glob",
        );
        rejected(
            &with_filters("      charge_type: monthly"),
            "rules[0].filters.charge_type",
            "unknown charge type `monthly`",
        );
    }

    #[test]
    fn duplicate_map_keys_are_errors_not_last_one_wins() {
        rejected(&with_filters("      tag: { env: dev, env: prod }"), "rules[0].filters.tag", "duplicate key `env`");
        rejected(
            &format!(
                "protect:\n  tags: {{ \"janitor:keep\": \"true\", \"janitor:keep\": \"false\" }}\n{}",
                with_filters("      ttl_tag: ttl")
            ),
            "protect.tags",
            "duplicate key",
        );
        // serde reports a repeated struct field at the struct, naming the field in the message.
        rejected(
            &format!("apply: false\napply: true\n{}", with_filters("      ttl_tag: ttl")),
            "(document)",
            "duplicate field `apply`",
        );
    }

    #[test]
    fn broken_yaml_is_an_error_not_a_panic() {
        assert!(parse("regions: [cn-hangzhou\nrules: {").is_err());
        assert!(parse("- just\n- a list").is_err());
        assert!(parse("---\nregions: [a]\n---\nregions: [b]\n").is_err());
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
        assert!(parse(bomb).is_err());
    }

    #[test]
    fn validate_checks_policies_built_in_code() {
        let mut p = parse(FULL_EXAMPLE).unwrap();
        assert_eq!(p.validate(), Ok(()));
        p.rules.push(Rule::new("everything"));
        let e = p.validate().unwrap_err();
        assert_eq!((e.file.as_str(), e.path.as_str()), ("(policy)", "rules[1].filters"));
        p.rules.pop();
        p.limits.max_release_percent = f64::INFINITY;
        assert_eq!(p.validate().unwrap_err().path, "limits.max_release_percent");
    }

    #[test]
    fn every_fixture_policy_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policies");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                Policy::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
                loaded += 1;
            }
        }
        assert!(loaded >= 3, "expected at least 3 fixtures in {}", dir.display());
    }

    #[test]
    fn the_mixed_fixture_reads_as_written() {
        let p = Policy::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policies/mixed.yaml"))
            .unwrap();
        let names: Vec<&str> = p.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["expired-by-tag", "ttl", "stale-stopped", "expired-subscription"]);
        assert_eq!(p.rules[3].charge_type, Some(ChargeType::Subscription));
        assert_eq!(p.rules[3].expired_for, Some(Duration::from_secs(86_400)));
        assert_eq!(p.protect.tags, [TagMatch { key: "janitor:keep".into(), value: Some("true".into()) }]);
    }

    #[test]
    fn a_rule_without_grace_gets_the_default_and_zero_must_be_written() {
        let p = parse(&with_filters("      ttl_tag: ttl")).unwrap();
        assert_eq!(p.rules[0].grace, DEFAULT_GRACE);
        assert_eq!(DEFAULT_GRACE, Duration::from_secs(3 * 86_400));
        assert!(!p.rules[0].auto_release && p.rules[0].window.is_none() && p.window.is_none());
        assert_eq!(p.notify, Notify::default());
        for (written, secs) in [("0", 0), ("0s", 0), ("\"0\"", 0), ("12h", 43_200), ("1w", 604_800)] {
            let p = parse(&format!("{}    grace: {written}\n", with_filters("      ttl_tag: ttl"))).unwrap();
            assert_eq!(p.rules[0].grace, Duration::from_secs(secs), "{written}");
        }
        rejected(
            &format!("{}    grace: -1d\n", with_filters("      ttl_tag: ttl")),
            "rules[0].grace",
            "or 0 to release at once",
        );
        rejected(&format!("{}    grace: ~\n", with_filters("      ttl_tag: ttl")), "rules[0].grace", "found null");
        rejected(&format!("{}    grace: 11y\n", with_filters("      ttl_tag: ttl")), "rules[0].grace", "unknown unit");
    }

    #[test]
    fn auto_release_needs_a_grace_the_platform_accepts() {
        let rule =
            |grace: &str| format!("{}    grace: {grace}\n    auto_release: true\n", with_filters("      ttl_tag: ttl"));
        assert!(parse(&rule("3d")).unwrap().rules[0].auto_release);
        assert!(parse(&rule("45m")).is_ok());
        rejected(&rule("0"), "rules[0].auto_release", "needs a grace from 45m");
        // Issue 13 item 5: 30m was accepted, but by the time of the call the deadline was under 30m ahead.
        rejected(&rule("30m"), "rules[0].auto_release", "but grace is 30m");
        rejected(&rule("1100d"), "rules[0].auto_release", "3 years less 15m");
    }

    #[test]
    fn windows_parse_at_the_top_and_per_rule() {
        let yaml = format!(
            "window: {{ cron: \"0 0 2 * * Mon-Fri\", duration: 4h, tz: Asia/Shanghai }}\n{}    window: {{ cron: \"0 30 3 * * *\", duration: 1h }}\n",
            with_filters("      ttl_tag: ttl")
        );
        let p = parse(&yaml).unwrap();
        let top = p.window.as_ref().unwrap();
        assert_eq!(
            (top.cron.as_str(), top.duration, top.tz()),
            ("0 0 2 * * Mon-Fri", Duration::from_secs(4 * 3600), "Asia/Shanghai")
        );
        assert_eq!(p.rules[0].window.as_ref().unwrap().tz(), "UTC");
        let top_level = |w: &str| format!("window: {w}\n{}", with_filters("      ttl_tag: ttl"));
        rejected(&top_level("{ duration: 4h }"), "window.cron", "missing");
        rejected(&top_level("{ cron: \"0 0 2 * * *\" }"), "window.duration", "missing");
        rejected(&top_level("{ cron: \"0 2 * * *\", duration: 4h }"), "window.cron", "has 5 fields");
        rejected(&top_level("{ cron: \"0 0 2 * * 1-5\", duration: 4h }"), "window.cron", "day names such as Mon-Fri");
        rejected(
            &top_level("{ cron: \"0 0 2 * * *\", duration: 0 }"),
            "window.duration",
            "expected a positive duration",
        );
        rejected(
            &top_level("{ cron: \"0 0 2 * * *\", duration: 4h, tz: Beijing }"),
            "window.tz",
            "not an IANA time zone",
        );
        rejected(&top_level("{ cron: \"0 0 2 * * *\", duration: 4h, zone: UTC }"), "window.zone", "unknown field");
        rejected(
            &format!("{}    window: {{ cron: \"bogus\", duration: 1h }}\n", with_filters("      ttl_tag: ttl")),
            "rules[0].window.cron",
            "has 1 fields",
        );
    }

    #[test]
    fn the_janitors_own_tags_cannot_be_filters_or_the_owner_tag() {
        for (filter, field) in [
            ("      tag_exists: [\"janitor:release-after\"]", "tag_exists"),
            ("      tag: { \"janitor:rule\": x }", "tag"),
            ("      expire_at_tag: \"Janitor:Release-After\"", "expire_at_tag"),
            ("      ttl_tag: ttl\n      tag_absent: [\"janitor:last-event\"]", "tag_absent"),
        ] {
            rejected(&with_filters(filter), &format!("rules[0].filters.{field}"), "janitor's own tags");
        }
        let notify = |n: &str| format!("notify: {n}\n{}", with_filters("      ttl_tag: ttl"));
        assert_eq!(parse(&notify("{ owner_tag: owner }")).unwrap().notify.owner_tag.as_deref(), Some("owner"));
        rejected(&notify("{ owner_tag: \"janitor:rule\" }"), "notify.owner_tag", "janitor's own tags");
        rejected(&notify("{ owner_tag: \" \" }"), "notify.owner_tag", "empty tag key");
        rejected(&notify("{ owner: x }"), "notify.owner", "unknown field");
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let e = Policy::from_file(Path::new("/nonexistent/policy.yaml")).unwrap_err();
        assert_eq!(e.file, "/nonexistent/policy.yaml");
        assert!(e.message.contains("cannot read"));
    }

    proptest! {
        #[test]
        fn from_yaml_never_panics_on_arbitrary_text(text in ".*") {
            let _ = parse(&text);
        }

        #[test]
        fn from_yaml_never_panics_on_arbitrary_values_in_every_field(value in ".{0,40}") {
            let quoted = format!("{value:?}");
            for field in ["name", "created_older_than", "expired_for", "charge_type", "ttl_tag", "expire_at_tag"] {
                let _ = parse(&with_filters(&format!("      {field}: {quoted}")));
                let _ = parse(&with_filters(&format!("      {field}: {value}")));
            }
            let _ = parse(&format!("regions: [{value}]\nrules: [{{name: r, filters: {{ttl_tag: ttl}}}}]"));
            let _ = parse(&format!("protect: {{ names: [{quoted}], tags: {{ {quoted}: {quoted} }} }}\n{}", with_filters("      ttl_tag: ttl")));
            let _ = parse(&format!("limits: {{ max_release_percent: {value} }}\n{}", with_filters("      ttl_tag: ttl")));
        }
    }
}

//! The policy file exactly as written: private serde structs that refuse unknown keys, nulls where a value
//! is expected and duplicate map keys, then one conversion into the typed [`Policy`]. Paths in errors use the
//! YAML names (`rules[1].filters.ttl_tag`), so a message points at the line the user has to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{
    parse_duration, parse_grace, Concurrency, Limits, Notify, Policy, PolicyError, Protection, Rule, TagMatch, Window,
    DEFAULT_GRACE,
};
use crate::inventory::ChargeType;

/// Reads the YAML text into the raw structs; errors carry the field path serde_path_to_error tracked.
pub(super) fn parse(text: &str) -> Result<RawPolicy, PolicyError> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = match e.path().to_string() {
            p if p == "." => "(document)".to_string(),
            p => p,
        };
        let message = without_path_prefix(&e.into_inner().to_string(), &path);
        PolicyError { file: String::new(), path, message }
    })
}

/// serde_norway prefixes some messages with its own (same-style, sometimes shorter) path; ours is already in
/// the error, so a leading copy of it, or of one of its parents, is dropped.
fn without_path_prefix(message: &str, path: &str) -> String {
    let cuts = path.char_indices().filter(|(_, c)| *c == '.' || *c == '[').map(|(i, _)| i);
    for cut in std::iter::once(path.len()).chain(cuts) {
        if let Some(rest) =
            path.get(..cut).and_then(|prefix| message.strip_prefix(prefix)).and_then(|r| r.strip_prefix(": "))
        {
            if cut > 0 {
                return rest.to_string();
            }
        }
    }
    message.to_string()
}

fn err(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError { file: String::new(), path: path.into(), message: message.into() }
}

/// A YAML string. Without this, `~` or `null` where a string is expected would read as the text "~"/"null".
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => Ok(Text(s)),
            None => Err(de::Error::custom("expected a string, found null (an empty value)")),
        }
    }
}

/// A key that is written must carry a value: `products:` with nothing after it is an error, not "all products".
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(d)? {
        Some(v) => Ok(Some(v)),
        None => {
            Err(de::Error::custom("expected a value, found null (an empty value); remove the key if it is not wanted"))
        }
    }
}

/// A mapping that rejects duplicate keys (a plain map would keep the last one silently), in file order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct UniqueMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(UniqueMapVisitor(PhantomData))
    }
}

struct UniqueMapVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMapVisitor<V> {
    type Value = UniqueMap<V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(String, V)> = Vec::new();
        // Keys are read as plain strings so the error path can name them (a `~` key reads as the text "~").
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value::<V>()?;
            entries.push((key, value));
        }
        Ok(UniqueMap(entries))
    }
}

/// `protect.tags` in either form: `{ "janitor:keep": "true", "do-not-delete": null }` or
/// `[ {key: janitor:keep, value: "true"}, {key: do-not-delete} ]`. A null or missing value means "any value".
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawProtectTags(pub Vec<TagMatch>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTagEntry {
    // A plain String so that a missing key reads "missing field `key`"; an empty one fails `Policy::validate`.
    key: String,
    #[serde(default)]
    value: Option<String>,
}

impl<'de> Deserialize<'de> for RawProtectTags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProtectTagsVisitor)
    }
}

struct ProtectTagsVisitor;

impl<'de> Visitor<'de> for ProtectTagsVisitor {
    type Value = RawProtectTags;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of tag key to value (null = any value) or a list of {key, value}")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let UniqueMap(entries) = UniqueMapVisitor::<Option<String>>(PhantomData).visit_map(map)?;
        Ok(RawProtectTags(entries.into_iter().map(|(key, value)| TagMatch { key, value }).collect()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tags = Vec::new();
        while let Some(entry) = seq.next_element::<RawTagEntry>()? {
            tags.push(TagMatch { key: entry.key, value: entry.value });
        }
        Ok(RawProtectTags(tags))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(default, deserialize_with = "present")]
    apply: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    regions: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    products: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    endpoints: Option<UniqueMap<Text>>,
    #[serde(default, deserialize_with = "present")]
    concurrency: Option<RawConcurrency>,
    #[serde(default, deserialize_with = "present")]
    protect: Option<RawProtect>,
    #[serde(default, deserialize_with = "present")]
    limits: Option<RawLimits>,
    #[serde(default, deserialize_with = "present")]
    rules: Option<Vec<RawRule>>,
    #[serde(default, deserialize_with = "present")]
    bss: Option<super::bss::RawBss>,
    #[serde(default, deserialize_with = "present")]
    window: Option<RawWindow>,
    #[serde(default, deserialize_with = "present")]
    notify: Option<RawNotify>,
    #[serde(default, deserialize_with = "present")]
    account_id: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    role_arn: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    role_session_name: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    role_duration: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    accounts: Option<super::accounts::RawAccounts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    #[serde(default, deserialize_with = "present")]
    cron: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    duration: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    tz: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    #[serde(default, deserialize_with = "present")]
    owner_tag: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConcurrency {
    #[serde(default, deserialize_with = "present")]
    regions: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    per_endpoint: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    total: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtect {
    #[serde(default, deserialize_with = "present")]
    tags: Option<RawProtectTags>,
    #[serde(default, deserialize_with = "present")]
    instance_ids: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    names: Option<Vec<Text>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default, deserialize_with = "present")]
    max_releases_per_run: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    max_release_percent: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default, deserialize_with = "present")]
    name: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    filters: Option<RawFilters>,
    #[serde(default, deserialize_with = "present")]
    force: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    grace: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    auto_release: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    window: Option<RawWindow>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFilters {
    #[serde(default, deserialize_with = "present")]
    products: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    regions: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    charge_type: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    status: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    tag: Option<UniqueMap<Text>>,
    #[serde(default, deserialize_with = "present")]
    tag_exists: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    tag_absent: Option<Vec<Text>>,
    #[serde(default, deserialize_with = "present")]
    expire_at_tag: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    ttl_tag: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    created_older_than: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    expired_for: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Text>,
}

impl RawPolicy {
    /// Turns the raw file into the typed policy. Checks that need the raw shape (list duplicates, empty maps,
    /// spellings, durations, globs) happen here; invariants of the typed policy are left to `Policy::validate`.
    pub(super) fn into_policy(self) -> Result<Policy, PolicyError> {
        let regions = match self.regions {
            Some(list) => unique_list(list, "regions")?,
            None => return Err(err("regions", "missing: expected a list of regions to scan, such as [cn-hangzhou]")),
        };
        let Some(raw_rules) = self.rules else {
            return Err(err("rules", "missing: expected a list of at least one rule"));
        };
        let mut rules = Vec::with_capacity(raw_rules.len());
        for (i, raw) in raw_rules.into_iter().enumerate() {
            rules.push(raw.into_rule(&format!("rules[{i}]"))?);
        }
        let products = match self.products {
            Some(list) => unique_list(list, "products")?,
            None => default_products(&rules),
        };
        let endpoints = self
            .endpoints
            .map(|UniqueMap(entries)| entries.into_iter().map(|(k, Text(v))| (k, v)).collect())
            .unwrap_or_default();
        let concurrency = self.concurrency.map(RawConcurrency::into_concurrency).transpose()?.unwrap_or_default();
        let protect = self.protect.map(RawProtect::into_protection).transpose()?.unwrap_or_default();
        let limits = self.limits.map(RawLimits::into_limits).transpose()?.unwrap_or_default();
        let bss = self.bss.map(super::bss::RawBss::into_bss).transpose()?.unwrap_or_default();
        let window = self.window.map(|w| w.into_window("window")).transpose()?;
        let notify = Notify { owner_tag: self.notify.and_then(|n| n.owner_tag).map(|Text(t)| t) };
        let role = match self.role_arn {
            Some(Text(arn)) => {
                let mut role = crate::credentials::RoleSpec::new(arn.trim());
                if let Some(Text(name)) = self.role_session_name {
                    role.session_name = name.trim().to_string();
                }
                if let Some(d) = self.role_duration {
                    let secs = self::duration(d, "role_duration")?.as_secs();
                    role.duration_secs = u32::try_from(secs).unwrap_or(u32::MAX);
                }
                Some(role)
            }
            None if self.role_session_name.is_some() || self.role_duration.is_some() => {
                return Err(err("role_arn", "missing: role_session_name and role_duration need a role_arn"));
            }
            None => None,
        };
        Ok(Policy {
            apply: self.apply.unwrap_or(false),
            regions,
            products,
            endpoints,
            concurrency,
            protect,
            limits,
            rules,
            bss,
            window,
            notify,
            account_id: self.account_id.map(|Text(a)| a.trim().to_string()),
            role,
            accounts: self.accounts.map(super::accounts::RawAccounts::into_accounts).transpose()?,
        })
    }
}

impl RawWindow {
    fn into_window(self, path: &str) -> Result<Window, PolicyError> {
        let Some(Text(cron)) = self.cron else {
            return Err(err(
                format!("{path}.cron"),
                "missing: expected when the window opens, such as \"0 0 2 * * Mon-Fri\"",
            ));
        };
        let Some(duration) = self.duration else {
            return Err(err(
                format!("{path}.duration"),
                "missing: expected how long the window stays open, such as 4h",
            ));
        };
        let duration = self::duration(duration, &format!("{path}.duration"))?;
        Window::new(&cron, duration, self.tz.as_ref().map(|Text(t)| t.as_str()))
            .map_err(|(field, message)| err(format!("{path}.{field}"), message))
    }
}

/// Without a top-level `products`, scan what the rules name; if any rule applies to every product, scan all.
fn default_products(rules: &[Rule]) -> Vec<String> {
    let mut named = BTreeSet::new();
    for rule in rules {
        match &rule.products {
            Some(products) => named.extend(products.iter().cloned()),
            None => return super::known_products().codes().map(str::to_string).collect(),
        }
    }
    super::known_products().codes().filter(|p| named.contains(*p)).map(str::to_string).collect()
}

/// A list whose entries must be distinct (a repeated region would be scanned twice).
fn unique_list(list: Vec<Text>, path: &str) -> Result<Vec<String>, PolicyError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, Text(item)) in list.into_iter().enumerate() {
        if out.contains(&item) {
            return Err(err(format!("{path}[{i}]"), format!("duplicate entry `{item}`")));
        }
        out.push(item);
    }
    Ok(out)
}

/// A filter list: must not be empty (that would match nothing, or read as "no filter") and has no duplicates.
fn filter_set(list: Vec<Text>, path: &str) -> Result<BTreeSet<String>, PolicyError> {
    if list.is_empty() {
        return Err(err(path, "empty list: expected at least one entry (remove the key to not filter on it)"));
    }
    Ok(unique_list(list, path)?.into_iter().collect())
}

fn filter_keys(list: Vec<Text>, path: &str) -> Result<Vec<String>, PolicyError> {
    Ok(filter_set(list, path)?.into_iter().collect())
}

fn duration(Text(value): Text, path: &str) -> Result<std::time::Duration, PolicyError> {
    parse_duration(&value).map_err(|message| err(path, message))
}

fn pattern(Text(value): Text, path: &str) -> Result<glob::Pattern, PolicyError> {
    if value.is_empty() {
        return Err(err(path, "empty pattern: expected a glob such as ci-*"));
    }
    glob::Pattern::new(&value)
        .map_err(|e| err(path, format!("`{value}` is not a valid glob pattern ({e}): expected a pattern such as ci-*")))
}

fn charge_type(Text(value): Text, path: &str) -> Result<ChargeType, PolicyError> {
    // Products spell billing differently (ECS PostPaid/PrePaid, Redis POSTPAY/PREPAY); all mean one of two things.
    match value.trim().to_ascii_lowercase().as_str() {
        "pay-as-you-go" | "postpaid" | "postpay" => Ok(ChargeType::PayAsYouGo),
        "subscription" | "prepaid" | "prepay" => Ok(ChargeType::Subscription),
        _ => Err(err(
            path,
            format!("unknown charge type `{value}`: expected pay-as-you-go (PostPaid) or subscription (PrePaid)"),
        )),
    }
}

/// Why a rule name cannot be written as a tag value, if it cannot: ECS and the Tag service take values of at most
/// 128 characters, not starting with `aliyun` or `acs:` and holding no `http://` or `https://` (reference, ECS
/// `TagResources`).
fn unfit_tag_value(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if name.chars().count() > 128 {
        Some("longer than 128 characters")
    } else if lower.starts_with("aliyun") || lower.starts_with("acs:") {
        Some("it starts with `aliyun` or `acs:`")
    } else if lower.contains("http://") || lower.contains("https://") {
        Some("it contains `http://` or `https://`")
    } else {
        None
    }
}

impl RawRule {
    fn into_rule(self, path: &str) -> Result<Rule, PolicyError> {
        let Some(Text(name)) = self.name else {
            return Err(err(format!("{path}.name"), "missing: expected a unique rule name"));
        };
        if let Some(why) = unfit_tag_value(&name) {
            return Err(err(
                format!("{path}.name"),
                format!("`{name}` cannot be a tag value (marks carry it in `janitor:rule`): {why}"),
            ));
        }
        let f = self.filters.unwrap_or_default();
        let fp = |field: &str| format!("{path}.filters.{field}");
        let tag_equals = match f.tag {
            Some(UniqueMap(entries)) if entries.is_empty() => {
                return Err(err(
                    fp("tag"),
                    "empty mapping: expected at least one `key: value` (remove the key to not filter on tags)",
                ))
            }
            Some(UniqueMap(entries)) => entries.into_iter().map(|(k, Text(v))| (k, v)).collect(),
            None => BTreeMap::new(),
        };
        let products = f.products.map(|l| filter_set(l, &fp("products"))).transpose()?;
        // Checked here already: the default top-level product list is derived from these codes.
        for product in products.iter().flatten() {
            super::check_product(product).map_err(|m| err(fp("products"), m))?;
        }
        Ok(Rule {
            name,
            products,
            regions: f.regions.map(|l| filter_set(l, &fp("regions"))).transpose()?,
            charge_type: f.charge_type.map(|v| charge_type(v, &fp("charge_type"))).transpose()?,
            status: f.status.map(|l| filter_set(l, &fp("status"))).transpose()?,
            tag_equals,
            tag_exists: f.tag_exists.map(|l| filter_keys(l, &fp("tag_exists"))).transpose()?.unwrap_or_default(),
            tag_absent: f.tag_absent.map(|l| filter_keys(l, &fp("tag_absent"))).transpose()?.unwrap_or_default(),
            expire_at_tag: f.expire_at_tag.map(|Text(t)| t),
            ttl_tag: f.ttl_tag.map(|Text(t)| t),
            created_older_than: f.created_older_than.map(|v| duration(v, &fp("created_older_than"))).transpose()?,
            expired_for: f.expired_for.map(|v| duration(v, &fp("expired_for"))).transpose()?,
            name_glob: f.name.map(|v| pattern(v, &fp("name"))).transpose()?,
            force: self.force.unwrap_or(false),
            grace: match self.grace {
                Some(Text(g)) => parse_grace(&g).map_err(|m| err(format!("{path}.grace"), m))?,
                None => DEFAULT_GRACE,
            },
            auto_release: self.auto_release.unwrap_or(false),
            window: self.window.map(|w| w.into_window(&format!("{path}.window"))).transpose()?,
        })
    }
}

impl RawConcurrency {
    fn into_concurrency(self) -> Result<Concurrency, PolicyError> {
        let defaults = Concurrency::default();
        Ok(Concurrency {
            regions: bounded(self.regions, defaults.regions, 64, "concurrency.regions")?,
            per_endpoint: bounded(self.per_endpoint, defaults.per_endpoint, 64, "concurrency.per_endpoint")?,
            total: bounded(self.total, defaults.total, 1024, "concurrency.total")?,
        })
    }
}

/// Concurrency values: 1..=max (more per endpoint would only earn throttling from the API).
fn bounded(value: Option<i64>, default: usize, max: i64, path: &str) -> Result<usize, PolicyError> {
    match value {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v) => {
            usize::try_from(v).map_err(|_| err(path, format!("expected an integer from 1 to {max}")))
        }
        Some(v) => Err(err(path, format!("{v} is out of range: expected an integer from 1 to {max}"))),
    }
}

impl RawProtect {
    fn into_protection(self) -> Result<Protection, PolicyError> {
        let tags = self.tags.map(|RawProtectTags(t)| t).unwrap_or_default();
        let instance_ids =
            self.instance_ids.map(|l| unique_list(l, "protect.instance_ids")).transpose()?.unwrap_or_default();
        let mut names = Vec::new();
        for (i, name) in self.names.unwrap_or_default().into_iter().enumerate() {
            names.push(pattern(name, &format!("protect.names[{i}]"))?);
        }
        Ok(Protection { tags, instance_ids: instance_ids.into_iter().collect(), names })
    }
}

impl RawLimits {
    fn into_limits(self) -> Result<Limits, PolicyError> {
        let defaults = Limits::default();
        let max_releases_per_run = match self.max_releases_per_run {
            None => defaults.max_releases_per_run,
            Some(v) => usize::try_from(v).map_err(|_| {
                err(
                    "limits.max_releases_per_run",
                    format!("{v} is negative: expected an integer >= 0 (0 releases nothing)"),
                )
            })?,
        };
        Ok(Limits {
            max_releases_per_run,
            max_release_percent: self.max_release_percent.unwrap_or(defaults.max_release_percent),
        })
    }
}

//! A loopback emulator of the Alibaba Cloud RPC API (the `aliyun-sim` binary, or in-process through [`spawn`]):
//! verifies signatures, timestamps and nonces like the real service and serves products' list/release calls from
//! an inventory JSON file.
//!
//! It is written from the official sources (the API reference, the SDKs' metadata and their tests), never from a
//! client's code: it has its own signature verifier ([`signature`]), time formats (`time`) and product facts
//! (`service::PRODUCTS`), so a client's wrong assumption about the API shows up as a failing test.
//!
//! A request goes `server` (HTTP → parameters, query and form body together) → `auth` (common parameters,
//! signature, nonce) → `faults` (injected failures, before any state change) → the product's `service`
//! (dispatched on `Version` + `Action`, e.g. `ecs`) → `reply` (success body or the real error document).
//! Every request lands in the call log, readable with [`Sim::calls`] or `GET /_sim/calls`;
//! `GET /_sim/instances` shows what still exists (the default account's sections at the top, every other account's
//! under `accounts`: `{"ecs": [...], "accounts": {"<id>": {"ecs": [...]}}}`). The inventory format is described
//! in `inventory.rs`.
//!
//! STS (`sts`, version `2015-04-01`) is served on the same endpoint: `AssumeRole` and `GetCallerIdentity` signed like
//! every call, `AssumeRoleWithOIDC` anonymous as the official clients send it. Every temporary credential the
//! emulator issues (there, from the ECS metadata service on `/latest/...` and from the credentials URI
//! `/_sim/credentials-uri`, both in `metadata.rs`) is then accepted by every API until it expires;
//! [`Sim::issued_credentials`] (or `GET /_sim/issued-credentials`) lists them, without their secrets.
//!
//! Billing follows the products: a billing record of an instance that a product section served at load and that
//! is gone from it since (released through the product's API) is dropped before billing answers, as the real
//! billing stops listing released instances (see `Account::reconcile_billing` in `account.rs`).
//!
//! Accounts: every product request is served from the inventory of the caller's account (`account.rs`): the
//! `account_id` of the access key that signed it, or the account of the role a temporary credential was issued for.
//! The top-level product sections belong to the default account (`sts.account_id`); the inventory's `accounts`
//! section gives the others theirs, an account without one has empty products, and a call signed for one account
//! never sees or changes another's instances. Each [`CallRecord`] names the account it acted in. Resource Manager
//! (`resourcemanager.rs`, version `2020-03-31`) serves the Resource Directory (`ListAccounts`,
//! `ListAccountsForParent`, `GetResourceDirectory`) to its management account; `sts.member_role` gives every account
//! of the directory a role to assume, and the emulator-only `generate` section (`generate.rs`) fills accounts with
//! ECS instances.

mod account;
mod auth;
mod bss;
mod controls;
mod ecs;
mod faults;
mod generate;
mod inventory;
mod kafka;
mod kms;
mod metadata;
mod params;
mod redis;
mod reply;
mod resourcemanager;
mod server;
mod service;
pub mod signature;
mod sts;
mod tagging;
mod time;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use account::Account;
use auth::{NonceStore, SECRET_PARAMS};
use faults::Faults;
use inventory::SimCredential;
pub use inventory::SimError;
use metadata::{MetaRequest, Metadata, Plain};
use params::Params;
use reply::{new_request_id, ApiFault, Rendered, Reply};
pub use server::{serve, spawn, ThreadServer};
use service::{ActionKind, Env};

/// Global knobs. Per-action faults live in the inventory (see `faults.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Response time of each API request: its answer leaves this long after it arrived (the request acts on arrival).
    pub latency_ms: u64,
    /// Fraction (0..=1) of authenticated requests answered 400 `Throttling.User`.
    pub throttle_rate: f64,
    /// Fraction (0..=1) of authenticated requests answered 503 `ServiceUnavailable`.
    pub error_rate: f64,
    /// Fraction (0..=1) of authenticated requests whose connection closes without an answer.
    pub reset_rate: f64,
    /// Fraction (0..=1) of the `error_rate` and `reset_rate` faults that strike after the request acted: the
    /// handler runs (a release releases), then the answer is a 503 or the connection closes (see `faults.rs`).
    pub acted_share: f64,
    /// Seed for the throttle/error draws, so a run can be replayed.
    pub seed: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions { latency_ms: 0, throttle_rate: 0.0, error_rate: 0.0, reset_rate: 0.0, acted_share: 0.0, seed: 1 }
    }
}

/// One request as the emulator saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub action: String,
    pub version: String,
    /// All parameters; the values of `Signature`, `SecurityToken` and `AccessKeyId` are replaced by `<redacted>`.
    pub params: BTreeMap<String, String>,
    /// The error code returned, if any (`DryRunOperation` included).
    pub code: Option<String>,
    pub http_status: u16,
    pub dry_run: bool,
    /// The injected fault that met this request (`reset`, `lost_response`, `page_drop`, ...), if any. When the
    /// handler ran (`lost_response`, `latency`, page faults), `code` and `http_status` are the handler's own
    /// answer, i.e. what the service did, whatever the client was shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<String>,
    /// The account the request acted in: the account of the access key that signed it, or of the role a temporary
    /// credential speaks for. `None` for a request that did not authenticate, and for the anonymous
    /// `AssumeRoleWithOIDC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// A temporary credential the emulator issued, without its secret and token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssuedCredential {
    pub access_key_id: String,
    /// How it was issued: `AssumeRole`, `AssumeRoleWithOIDC`, `EcsMetadata` or `CredentialsUri`.
    pub source: String,
    /// Who it speaks for, as `GetCallerIdentity` names it (`acs:ram::<account>:assumed-role/<role>/<session>`).
    pub arn: String,
    /// Its `Expiration` as answered (`yyyy-MM-ddTHH:mm:ssZ`, UTC, rounded down to the second).
    pub expiration: String,
    /// Whether it is refused now (real clock).
    pub expired: bool,
}

/// The emulator: inventory, credentials, fault knobs and the call log. Cheap to clone.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Sim")
            .field("latency", &self.inner.latency)
            .field("products", &state.products.iter().map(|(p, _)| *p).collect::<Vec<_>>())
            .field("accounts", &state.accounts.len())
            .field("calls", &state.calls.len())
            .finish_non_exhaustive()
    }
}

struct Shared {
    latency: Duration,
    state: Mutex<State>,
}

/// Everything that changes, behind one lock. Handlers are synchronous, so it is never held across an await.
struct State {
    credentials: Vec<SimCredential>,
    /// STS roles and the temporary credentials issued so far.
    sts: sts::Sts,
    metadata: Metadata,
    /// Every account's products, by account id. The default account's is always there; one for an account
    /// without inventory is made (empty) when a request first acts in it.
    accounts: HashMap<String, Account>,
    /// `sts.account_id`: the account of the top-level product sections and of keys that name none.
    default_account: String,
    /// (product, API version) of each product service, in `service::PRODUCTS` order: the same in every account.
    products: Vec<(&'static str, &'static str)>,
    /// The `resource_directory` section.
    directory: Option<resourcemanager::Directory>,
    nonces: NonceStore,
    faults: Faults,
    clock: Option<DateTime<Utc>>,
    calls: Vec<LoggedCall>,
}

struct LoggedCall {
    record: CallRecord,
    /// A release action whose handler ran.
    release: bool,
}

/// How far a request got, and what to answer.
struct Outcome {
    reply: Reply,
    /// What the client is shown instead of `reply` (a lost response's error), when it differs.
    shown: Option<Reply>,
    product: Option<&'static str>,
    release: bool,
    wire: Wire,
    injected: Option<&'static str>,
    /// The account the request acted in (`None`: it did not authenticate, or is anonymous).
    account: Option<String>,
}

impl Outcome {
    fn refused(fault: ApiFault, product: Option<&'static str>) -> Self {
        Outcome {
            reply: Reply::Fault(fault),
            shown: None,
            product,
            release: false,
            wire: Wire::default(),
            injected: None,
            account: None,
        }
    }
}

/// How the server delivers an answer: after an extra wait, or not at all (the connection is closed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Wire {
    pub delay: Duration,
    pub reset: bool,
}

/// An answer for the server: the rendered reply and how to deliver it.
pub(crate) struct Answer {
    pub rendered: Rendered,
    pub wire: Wire,
}

impl Sim {
    /// Builds an emulator from inventory text; an error names the offending field.
    pub fn from_inventory_json(text: &str, opts: SimOptions) -> Result<Sim, SimError> {
        let inv = inventory::parse(text)?;
        let directory = resourcemanager::load(inv.resource_directory.as_ref())?;
        let members = directory.as_ref().map(|d| d.member_ids());
        let sts = sts::load(inv.sts.as_ref(), &inv.credentials, members.as_ref())?;
        let default_account = sts.account_id().to_string();
        let member_list: Option<Vec<String>> = members.map(|m| m.into_iter().collect());
        let generated = generate::ecs(inv.generate.as_ref(), member_list.as_deref())?;
        let faults = Faults::new(inv.faults, &opts)?;

        // Each account's product sections; errors in those of `accounts` name the account.
        let top_level = !inv.products.is_empty();
        let mut sections: BTreeMap<String, (Map<String, Value>, bool)> = BTreeMap::new();
        sections.insert(default_account.clone(), (inv.products, false));
        for (id, s) in inv.accounts {
            if id == default_account && top_level {
                return Err(SimError::invalid(
                    format!("accounts.{id}"),
                    "this is the default account (sts.account_id), whose products are the top-level sections: \
                     list them in one place",
                ));
            }
            sections.insert(id, (s, true));
        }
        for (id, list) in generated {
            let (s, _) = sections.entry(id).or_insert_with(|| (Map::new(), true));
            match s.get_mut("ecs") {
                None | Some(Value::Null) => {
                    s.insert("ecs".into(), Value::Array(list));
                }
                Some(Value::Array(listed)) => listed.extend(list),
                // Not an array: the ECS loader names the field.
                Some(_) => {}
            }
        }
        let mut accounts: HashMap<String, Account> = HashMap::with_capacity(sections.len());
        for (id, (s, named)) in sections {
            let account = Account::load(Some(&s)).map_err(|e| if named { inventory::in_account(&id, e) } else { e })?;
            accounts.insert(id, account);
        }
        // Accounts the inventory names elsewhere exist from the start (empty), so snapshots do not depend on
        // which were called.
        let known: Vec<String> = inv
            .credentials
            .iter()
            .filter_map(|c| c.account_id.clone())
            .chain(sts.role_accounts().map(str::to_string))
            .chain(sts.ecs_role.iter().map(|r| r.account_id.clone()))
            .chain(directory.iter().map(|d| d.master().to_string()))
            .collect();
        for id in known {
            if let std::collections::hash_map::Entry::Vacant(slot) = accounts.entry(id) {
                slot.insert(Account::empty()?);
            }
        }
        let products = accounts
            .get(&default_account)
            .map(|a| a.services.iter().map(|s| (s.product(), s.version())).collect())
            .unwrap_or_default();
        let state = State {
            credentials: inv.credentials,
            sts,
            metadata: Metadata::default(),
            accounts,
            default_account,
            products,
            directory,
            nonces: NonceStore::default(),
            faults,
            clock: inv.now,
            calls: Vec::new(),
        };
        Ok(Sim {
            inner: Arc::new(Shared { latency: Duration::from_millis(opts.latency_ms), state: Mutex::new(state) }),
        })
    }

    pub fn from_inventory_file(path: &std::path::Path, opts: SimOptions) -> Result<Sim, SimError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SimError::Read { path: path.to_path_buf(), source })?;
        Self::from_inventory_json(&text, opts)
    }

    /// Every request so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.iter().map(|c| c.record.clone()).collect()
    }

    /// Real (non-dry-run) release calls that passed authentication and faults and reached the handler,
    /// whatever the handler answered.
    pub fn release_calls(&self) -> Vec<CallRecord> {
        self.lock().calls.iter().filter(|c| c.release && !c.record.dry_run).map(|c| c.record.clone()).collect()
    }

    /// Ids of `product`'s instances that still exist in the default account (`sts.account_id`), sorted (empty for
    /// a product the emulator does not know).
    pub fn instance_ids(&self, product: &str) -> Vec<String> {
        let account = self.lock().default_account.clone();
        self.instance_ids_in(&account, product)
    }

    /// Ids of `product`'s instances that still exist in `account`, sorted (empty for an account without
    /// inventory, or a product the emulator does not know).
    pub fn instance_ids_in(&self, account: &str, product: &str) -> Vec<String> {
        self.lock().accounts.get_mut(account).map(|a| a.instance_ids(product)).unwrap_or_default()
    }

    /// The default account: `sts.account_id`, `1234567890123456` unless the inventory says otherwise.
    pub fn default_account(&self) -> String {
        self.lock().default_account.clone()
    }

    /// Every account the emulator holds products for, sorted: the default one, those of `accounts`, `generate`,
    /// keys, roles and the Resource Directory, and any other a request acted in.
    pub fn accounts(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().accounts.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Sets the clock used for expiry checks (`None`: the real clock). Request timestamps are always
    /// checked against the real clock.
    pub fn set_clock(&self, now: Option<DateTime<Utc>>) {
        self.lock().clock = now;
    }

    /// Every temporary credential issued so far (STS, metadata service, credentials URI), in issue order.
    pub fn issued_credentials(&self) -> Vec<IssuedCredential> {
        let now = Utc::now();
        self.lock()
            .sts
            .issued()
            .map(|i| IssuedCredential {
                access_key_id: i.access_key_id.clone(),
                source: i.source.as_str().to_string(),
                arn: i.principal.arn(),
                expiration: i.expiration(),
                expired: now >= i.expires,
            })
            .collect()
    }

    /// How many temporary credentials were issued so far.
    /// The secrets and tokens of every credential issued so far: what a client must never print (for the tests'
    /// output checks; the emulator itself never logs them).
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().sts.issued().flat_map(|i| [i.access_key_secret.clone(), i.security_token.clone()]).collect()
    }

    pub fn issued_credentials_count(&self) -> usize {
        self.lock().sts.issued().count()
    }

    /// Makes every temporary credential issued so far expire now (a test hook: no need to wait for expiry). The
    /// metadata service and the credentials URI issue new ones on their next request.
    pub fn expire_issued_credentials(&self) {
        self.lock().sts.expire_all(Utc::now());
    }

    /// A metadata service request (`/latest/...`).
    pub(crate) fn metadata(&self, req: &MetaRequest<'_>) -> Plain {
        let mut state = self.lock();
        let State { metadata, sts, .. } = &mut *state;
        metadata.answer(sts, req, Utc::now())
    }

    /// `GET /_sim/credentials-uri`.
    pub(crate) fn credentials_uri(&self) -> Plain {
        let mut state = self.lock();
        let State { metadata, sts, .. } = &mut *state;
        metadata.credentials_uri(sts, Utc::now())
    }

    pub(crate) fn latency(&self) -> Duration {
        self.inner.latency
    }

    /// The current inventory, product sections only: the default account's at the top (`{"ecs": [...], ...}`),
    /// every other account's under `accounts` (`{"accounts": {"<id>": {"ecs": [...], ...}}}`).
    pub(crate) fn snapshot(&self) -> Value {
        let mut state = self.lock();
        let State { accounts, default_account, .. } = &mut *state;
        let mut top = accounts.get_mut(default_account.as_str()).map(Account::snapshot).unwrap_or_default();
        let others: BTreeMap<String, Value> = accounts
            .iter_mut()
            .filter(|(id, _)| *id != default_account)
            .map(|(id, a)| (id.clone(), Value::Object(a.snapshot())))
            .collect();
        top.insert("accounts".into(), serde_json::to_value(others).unwrap_or_default());
        Value::Object(top)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the state is still the best we have.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers one API request and logs it. `parsed` is an error when the parameters could not be decoded.
    #[cfg(test)]
    pub(crate) fn handle(&self, method: &str, parsed: Result<Params, ApiFault>) -> Rendered {
        self.answer(method, parsed).rendered
    }

    /// Like `handle`, with the delivery (delay, connection reset) injected faults ask for.
    pub(crate) fn answer(&self, method: &str, parsed: Result<Params, ApiFault>) -> Answer {
        let request_id = new_request_id();
        let mut state = self.lock();
        let (params, outcome) = match parsed {
            Ok(p) => {
                let outcome = state.process(method, &p, &request_id);
                (p, outcome)
            }
            Err(f) => (Params::new(), Outcome::refused(f, None)),
        };
        let (http_status, code) = match &outcome.reply {
            // A business envelope (alikafka, BSS) reports its errors inside a 200 body: log their code too.
            Reply::Ok(body) => (200, reply::envelope_code(body)),
            Reply::Fault(f) => (f.status, Some(f.code.clone())),
            Reply::Raw { status, .. } => (*status, None),
        };
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        let record = CallRecord {
            action: get("Action"),
            version: get("Version"),
            params: params
                .iter()
                .map(|(k, v)| {
                    (k.clone(), if SECRET_PARAMS.contains(&k.as_str()) { "<redacted>".into() } else { v.clone() })
                })
                .collect(),
            code,
            http_status,
            dry_run: params.get("DryRun").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            injected: outcome.injected.map(str::to_string),
            account: outcome.account.clone(),
        };
        state.calls.push(LoggedCall { record, release: outcome.release });
        // Rendering (a listing page is tens of kilobytes) needs no state: other requests go ahead meanwhile.
        drop(state);
        let host = host_id(outcome.product, &params);
        let rendered = outcome.shown.unwrap_or(outcome.reply).render(&request_id, &host);
        Answer { rendered, wire: outcome.wire }
    }
}

/// Where an authenticated request goes.
enum Target {
    /// STS, for this caller (`None`: the anonymous `AssumeRoleWithOIDC`).
    Sts(Option<sts::Caller>),
    /// Resource Manager (the Resource Directory, global).
    ResourceManager,
    /// Product `i` (`State::products`) of the caller's account.
    Product(usize),
}

/// An authenticated request: what it asks, where it goes, and the account it acts in.
struct Routed<'p> {
    version: &'p str,
    action: &'p str,
    target: Target,
    kind: ActionKind,
    /// `None` only for the anonymous `AssumeRoleWithOIDC`.
    account: Option<String>,
}

fn internal(e: SimError) -> ApiFault {
    ApiFault::new(500, "InternalError", format!("The emulator could not build an empty account: {e}"))
}

impl State {
    fn process(&mut self, method: &str, p: &Params, request_id: &str) -> Outcome {
        let now = Utc::now();
        let Routed { version, action, target, kind, account } = match self.route(method, p, now) {
            Ok(routed) => routed,
            Err((fault, product)) => return Outcome::refused(fault, product),
        };
        let product = Some(match target {
            Target::Sts(_) => "sts",
            Target::ResourceManager => resourcemanager::PRODUCT,
            Target::Product(idx) => self.products[idx].0,
        });
        // Flow control is per user, so it comes after authentication (the real `Throttling.User`).
        let injected = self.faults.before_handler(version, action, p, account.as_deref());
        let name = injected.as_ref().map(|i| i.kind.as_str());
        if let Some(i) = &injected {
            if let Some(reply) = i.replace.clone() {
                return Outcome {
                    reply,
                    shown: None,
                    product,
                    release: false,
                    wire: Wire { delay: i.delay, reset: i.reset },
                    injected: name,
                    account,
                };
            }
        }
        let mut answer = match &target {
            // Temporary credentials expire in real time, whatever the emulator clock says.
            Target::Sts(caller) => self.sts.handle(action, p, caller.as_ref(), now),
            Target::ResourceManager => {
                resourcemanager::handle(self.directory.as_ref(), action, p, account.as_deref().unwrap_or_default())
            }
            Target::Product(idx) => {
                let env = Env { now: self.clock.unwrap_or_else(Utc::now), request_id };
                let id = account.as_deref().unwrap_or(&self.default_account);
                match account_mut(&mut self.accounts, id) {
                    Ok(acct) => {
                        if acct.services[*idx].follows_products() {
                            acct.reconcile_billing();
                        }
                        acct.services[*idx].handle(action, p, &env)
                    }
                    Err(fault) => Err(fault),
                }
            }
        };
        let shown = self.faults.after_handler(injected.as_ref(), action, p, account.as_deref(), &mut answer);
        let wire = injected
            .as_ref()
            .map(|i| Wire { delay: i.delay, reset: faults::resets_after_handler(i) })
            .unwrap_or_default();
        debug_assert!(injected.as_ref().is_none_or(faults::runs_handler));
        Outcome {
            reply: answer.into(),
            shown,
            product,
            release: kind == ActionKind::Release,
            wire,
            injected: name,
            account,
        }
    }

    /// Finds where the request goes and authenticates it (`AssumeRoleWithOIDC` is anonymous: only a `Timestamp`
    /// it carries is checked). An error comes with the product it was meant for, if known.
    fn route<'p>(
        &mut self,
        method: &str,
        p: &'p Params,
        now: DateTime<Utc>,
    ) -> Result<Routed<'p>, (ApiFault, Option<&'static str>)> {
        if sts::is_anonymous(p) {
            if let Some(ts) = p.get("Timestamp").filter(|t| !t.is_empty()) {
                auth::check_timestamp(ts, now).map_err(|f| (f, Some("sts")))?;
            }
            let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
            return Ok(Routed {
                version: get("Version"),
                action: get("Action"),
                target: Target::Sts(None),
                kind: ActionKind::Write,
                account: None,
            });
        }
        let c = auth::common(p).map_err(|f| (f, None))?;
        let (target, kind, product) = if c.version == sts::VERSION {
            if !sts::is_signed_action(c.action) {
                return Err((ApiFault::action_not_found(), Some("sts")));
            }
            let kind = if c.action == "AssumeRole" { ActionKind::Write } else { ActionKind::Read };
            (Target::Sts(None), kind, "sts")
        } else if c.version == resourcemanager::VERSION {
            let Some(kind) = resourcemanager::action_kind(c.action) else {
                return Err((ApiFault::action_not_found(), Some(resourcemanager::PRODUCT)));
            };
            (Target::ResourceManager, kind, resourcemanager::PRODUCT)
        } else {
            let Some(idx) = self.products.iter().position(|(_, v)| *v == c.version) else {
                return Err((ApiFault::action_not_found(), None));
            };
            let product = self.products[idx].0;
            // Actions are the same in every account: ask the default account's service.
            let kind = self.accounts.get(&self.default_account).and_then(|a| a.services[idx].action_kind(c.action));
            let Some(kind) = kind else {
                return Err((ApiFault::action_not_found(), Some(product)));
            };
            (Target::Product(idx), kind, product)
        };
        let (statics, sts) = (&self.credentials, &self.sts);
        auth::authenticate(method, p, &c, |id| sts.key(statics, id), &mut self.nonces, now)
            .map_err(|f| (f, Some(product)))?;
        let account = self.sts.account_of(&self.credentials, c.access_key_id).map(str::to_string);
        let target = match target {
            Target::Sts(_) => Target::Sts(self.sts.caller(&self.credentials, c.access_key_id)),
            other => other,
        };
        Ok(Routed { version: c.version, action: c.action, target, kind, account })
    }
}

/// `account`'s products, made empty first if it has none yet.
fn account_mut<'a>(accounts: &'a mut HashMap<String, Account>, account: &str) -> Result<&'a mut Account, ApiFault> {
    if !accounts.contains_key(account) {
        accounts.insert(account.to_string(), Account::empty().map_err(internal)?);
    }
    accounts.get_mut(account).ok_or_else(|| internal(SimError::invalid(account, "vanished")))
}

/// The endpoint host the real service would name in `HostId`.
fn host_id(product: Option<&str>, p: &Params) -> String {
    match (product, p.get("RegionId").filter(|r| !r.is_empty())) {
        (Some(product), Some(region)) => format!("{product}.{region}.aliyuncs.com"),
        (Some(product), None) => format!("{product}.aliyuncs.com"),
        (None, _) => "aliyuncs.com".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature as sign;
    use proptest::prelude::*;

    const INVENTORY: &str = r#"{
        "credentials": [{"access_key_id": "id", "access_key_secret": "secret"}],
        "ecs": [
            {"InstanceId": "i-a", "RegionId": "r", "Status": "Stopped", "InstanceChargeType": "PostPaid"},
            {"InstanceId": "i-b", "RegionId": "r", "Status": "Running", "InstanceChargeType": "PrePaid", "ExpiredTime": "2020-01-01T00:00Z"}
        ]
    }"#;

    /// A correctly signed request, so arbitrary API parameters reach the handler.
    fn signed(action: &str, api: &[(String, String)]) -> Params {
        signed_for("2014-05-26", action, api)
    }

    fn signed_for(version: &str, action: &str, api: &[(String, String)]) -> Params {
        signed_as(("id", "secret", None), version, action, api)
    }

    /// Signed with the access key `(id, secret, security token)`.
    fn signed_as(key: (&str, &str, Option<&str>), version: &str, action: &str, api: &[(String, String)]) -> Params {
        let (id, secret, token) = key;
        let nonce = uuid::Uuid::new_v4().to_string();
        let ts = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut pairs: Vec<(String, String)> = [
            ("Action", action),
            ("Version", version),
            ("AccessKeyId", id),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce.as_str()),
            ("Timestamp", ts.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(token) = token {
            pairs.push(("SecurityToken".into(), token.into()));
        }
        pairs.extend(api.iter().filter(|(k, _)| !COMMON.contains(&k.as_str())).cloned());
        let mut params: Params = pairs.into_iter().collect();
        let sig = sign::signature("POST", &params, secret);
        params.insert("Signature".into(), sig);
        params
    }

    const COMMON: &[&str] = &[
        "Action",
        "Version",
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "Signature",
    ];

    #[test]
    fn log_redacts_and_flags_releases() {
        let sim = Sim::from_inventory_json(INVENTORY, SimOptions::default()).unwrap();
        let p = signed("DeleteInstances", &[("RegionId".into(), "r".into()), ("InstanceId.1".into(), "i-a".into())]);
        let r = sim.handle("POST", Ok(p));
        assert_eq!((r.status, r.code), (200, None));
        let calls = sim.calls();
        assert_eq!(calls[0].params["Signature"], "<redacted>");
        assert_eq!(calls[0].params["AccessKeyId"], "<redacted>");
        assert_eq!(sim.release_calls().len(), 1);
        assert_eq!(sim.instance_ids("ecs"), ["i-b"]);
        assert!(format!("{sim:?}").contains("ecs"));
    }

    #[test]
    fn billing_stops_listing_what_a_product_api_released() {
        let bill = |id: &str, product: &str| {
            format!(
                r#"{{"InstanceID": "{id}", "ProductCode": "{product}", "SubscriptionType": "Subscription", "EndTime": "2020-01-01T00:00:00Z"}}"#
            )
        };
        let text = INVENTORY.replace(
            r#""ecs": ["#,
            &format!(
                r#""bss": [{}, {}, {}, {}], "ecs": ["#,
                bill("i-a", "ecs"),
                bill("i-b", "ecs"),
                bill("i-ghost", "ecs"),
                bill("r-1", "redisa")
            ),
        );
        let sim = Sim::from_inventory_json(&text, SimOptions::default()).unwrap();
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let billed = |sim: &Sim| {
            let r = sim.handle(
                "POST",
                Ok(signed_for(bss::VERSION, "QueryAvailableInstances", &pairs(&[("PageSize", "100")]))),
            );
            let v: Value = serde_json::from_str(&r.body).unwrap();
            v["Data"]["InstanceList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["InstanceID"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(billed(&sim), ["i-a", "i-b", "i-ghost", "r-1"]);
        let r =
            sim.handle("POST", Ok(signed("DeleteInstances", &pairs(&[("RegionId", "r"), ("InstanceId.1", "i-a")]))));
        assert_eq!((r.status, r.code), (200, None));
        // Released through ECS: gone from billing. Ids ECS never had, and products without a section, stay.
        assert_eq!(billed(&sim), ["i-b", "i-ghost", "r-1"]);
        assert_eq!(sim.instance_ids("bss"), ["i-b", "i-ghost", "r-1"]);
    }

    #[test]
    fn host_id_names_product_and_region() {
        let p: Params = [("RegionId".to_string(), "cn-shanghai".to_string())].into_iter().collect();
        assert_eq!(host_id(Some("ecs"), &p), "ecs.cn-shanghai.aliyuncs.com");
        assert_eq!(host_id(Some("ecs"), &Params::new()), "ecs.aliyuncs.com");
        assert_eq!(host_id(None, &p), "aliyuncs.com");
    }

    const ROLE: &str = "acs:ram::1234567890123456:role/aliyun-janitor";
    const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1";

    /// `INVENTORY` plus an `sts` section; `lifetime` is `credential_lifetime_secs`.
    fn sts_sim(lifetime: &str) -> Sim {
        let sts = format!(
            r#""sts": {{"credential_lifetime_secs": {lifetime}, "roles": [{{"arn": "{ROLE}", "trusted": ["id"],
                "oidc_provider_arn": "{PROVIDER}", "oidc_token": "eyJ...test-token"}}],
                "ecs_role": {{"name": "ecs-role", "require_token": true}}}},
              "ecs": ["#
        );
        let text = INVENTORY
            .replace(r#""ecs": ["#, &sts)
            .replace(r#""access_key_secret": "secret"}"#, r#""access_key_secret": "secret", "user_name": "janitor"}"#);
        Sim::from_inventory_json(&text, SimOptions::default()).unwrap()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn body(r: &Rendered) -> Value {
        serde_json::from_str(&r.body).unwrap()
    }

    /// Issued credentials as `(id, secret, token)`.
    fn credentials_of(v: &Value) -> (String, String, String) {
        let c = &v["Credentials"];
        let s = |f: &str| c[f].as_str().unwrap().to_string();
        (s("AccessKeyId"), s("AccessKeySecret"), s("SecurityToken"))
    }

    fn assume_role(sim: &Sim) -> (String, String, String) {
        let api = pairs(&[("RoleArn", ROLE), ("RoleSessionName", "run-1")]);
        let r = sim.handle("POST", Ok(signed_for(sts::VERSION, "AssumeRole", &api)));
        assert_eq!((r.status, r.code.as_deref()), (200, None), "{}", r.body);
        credentials_of(&body(&r))
    }

    fn describe_as(sim: &Sim, key: (&str, &str, Option<&str>)) -> Rendered {
        sim.handle("POST", Ok(signed_as(key, "2014-05-26", "DescribeInstances", &pairs(&[("RegionId", "r")]))))
    }

    #[test]
    fn assume_role_is_signed_and_its_credential_works_until_it_expires() {
        let sim = sts_sim("null");
        let api = pairs(&[("RoleArn", ROLE), ("RoleSessionName", "run-1")]);
        let forged = signed_as(("id", "wrong", None), sts::VERSION, "AssumeRole", &api);
        assert_eq!(sim.handle("POST", Ok(forged)).code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(sim.issued_credentials_count(), 0);
        let (id, secret, token) = assume_role(&sim);
        let ok = describe_as(&sim, (&id, &secret, Some(&token)));
        assert_eq!((ok.status, ok.code), (200, None), "{}", ok.body);
        assert_eq!(describe_as(&sim, (&id, &secret, None)).code.as_deref(), Some("MissingSecurityToken"));
        assert_eq!(describe_as(&sim, (&id, "guess", Some(&token))).code.as_deref(), Some("SignatureDoesNotMatch"));
        let who =
            sim.handle("POST", Ok(signed_as((&id, &secret, Some(&token)), sts::VERSION, "GetCallerIdentity", &[])));
        let v = body(&who);
        assert_eq!(v["Arn"], "acs:ram::1234567890123456:assumed-role/aliyun-janitor/run-1");
        assert_eq!(
            (v["IdentityType"].as_str(), v["AccountId"].as_str()),
            (Some("AssumedRoleUser"), Some("1234567890123456"))
        );
        let listed = sim.issued_credentials();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].access_key_id.as_str(), listed[0].source.as_str(), listed[0].expired),
            (id.as_str(), "AssumeRole", false)
        );
        sim.expire_issued_credentials();
        let expired = describe_as(&sim, (&id, &secret, Some(&token)));
        assert_eq!((expired.status, expired.code.as_deref()), (403, Some("InvalidSecurityToken.Expired")));
        assert!(sim.issued_credentials()[0].expired);
        // The call log holds neither the issued key's id nor its token.
        let calls = sim.calls();
        assert!(calls.iter().all(|c| !c.params.values().any(|v| v == &id || v == &token)));
    }

    #[test]
    fn credential_lifetime_is_enforced_in_real_time() {
        let sim = sts_sim("1");
        let (id, secret, token) = assume_role(&sim);
        assert_eq!(describe_as(&sim, (&id, &secret, Some(&token))).status, 200);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            describe_as(&sim, (&id, &secret, Some(&token))).code.as_deref(),
            Some("InvalidSecurityToken.Expired")
        );
    }

    #[test]
    fn caller_identity_of_an_inventory_key_and_unknown_sts_actions() {
        let sim = sts_sim("null");
        let v = body(&sim.handle("POST", Ok(signed_for(sts::VERSION, "GetCallerIdentity", &[]))));
        assert_eq!(v["Arn"], "acs:ram::1234567890123456:user/janitor");
        assert_eq!(v["IdentityType"], "RAMUser");
        assert!(v["RequestId"].is_string());
        let forged = signed_as(("id", "wrong", None), sts::VERSION, "GetCallerIdentity", &[]);
        assert_eq!(sim.handle("POST", Ok(forged)).code.as_deref(), Some("SignatureDoesNotMatch"));
        let saml = sim.handle("POST", Ok(signed_for(sts::VERSION, "AssumeRoleWithSAML", &[])));
        assert_eq!((saml.status, saml.code.as_deref()), (404, Some("InvalidAction.NotFound")));
        // Without an `sts` section STS still answers for the inventory's keys, in the default account.
        let plain = Sim::from_inventory_json(INVENTORY, SimOptions::default()).unwrap();
        let v = body(&plain.handle("POST", Ok(signed_for(sts::VERSION, "GetCallerIdentity", &[]))));
        assert_eq!(v["Arn"], "acs:ram::1234567890123456:user/id");
    }

    /// `AssumeRoleWithOIDC` as credentials-go `providers/oidc.go` sends it: no key, no signature.
    fn oidc_params(token: &str, timestamp: &str) -> Params {
        pairs(&[
            ("Action", "AssumeRoleWithOIDC"),
            ("Version", sts::VERSION),
            ("Format", "JSON"),
            ("Timestamp", timestamp),
            ("RoleArn", ROLE),
            ("OIDCProviderArn", PROVIDER),
            ("OIDCToken", token),
            ("RoleSessionName", "pod-1"),
            ("DurationSeconds", "3600"),
            ("Policy", r#"{"Version":"1","Statement":[]}"#),
        ])
        .into_iter()
        .collect()
    }

    #[test]
    fn oidc_is_anonymous_needs_the_right_token_and_never_logs_it() {
        let sim = sts_sim("null");
        let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let r = sim.handle("POST", Ok(oidc_params("eyJ...test-token", &now)));
        assert_eq!((r.status, r.code.as_deref()), (200, None), "{}", r.body);
        let v = body(&r);
        assert_eq!(v["OIDCTokenInfo"]["VerificationInfo"], "Success");
        let (id, secret, token) = credentials_of(&v);
        assert_eq!(describe_as(&sim, (&id, &secret, Some(&token))).status, 200);
        let wrong = sim.handle("POST", Ok(oidc_params("eyJ.other.token", &now)));
        assert_eq!((wrong.status, wrong.code.as_deref()), (401, Some("AuthenticationFail.OIDCToken.InvalidSignature")));
        let stale = sim.handle("POST", Ok(oidc_params("eyJ...test-token", "2020-01-01T00:00:00Z")));
        assert_eq!(stale.code.as_deref(), Some("InvalidTimeStamp.Expired"));
        assert_eq!(sim.issued_credentials_count(), 1);
        let calls = sim.calls();
        assert_eq!(calls.len(), 4);
        for c in calls.iter().filter(|c| c.action == "AssumeRoleWithOIDC") {
            assert_eq!(c.params["OIDCToken"], "<redacted>");
            assert_eq!(c.params["Policy"], r#"{"Version":"1","Statement":[]}"#);
        }
        assert!(calls.iter().all(|c| !c.params.values().any(|v| v.contains("test-token"))));
    }

    #[test]
    fn injected_faults_reach_sts_before_anything_is_issued() {
        let text = INVENTORY.replace(
            r#""ecs": ["#,
            &format!(
                r#""sts": {{"roles": [{{"arn": "{ROLE}", "trusted": ["*"]}}]}},
                   "faults": [{{"action": "AssumeRole", "code": "Throttling.User", "status": 400, "times": 1}}], "ecs": ["#
            ),
        );
        let sim = Sim::from_inventory_json(&text, SimOptions::default()).unwrap();
        let api = pairs(&[("RoleArn", ROLE), ("RoleSessionName", "run-1")]);
        let r = sim.handle("POST", Ok(signed_for(sts::VERSION, "AssumeRole", &api)));
        assert_eq!(r.code.as_deref(), Some("Throttling.User"));
        assert_eq!(sim.issued_credentials_count(), 0);
        assert_eq!(sim.handle("POST", Ok(signed_for(sts::VERSION, "AssumeRole", &api))).status, 200);
        assert_eq!(sim.issued_credentials_count(), 1);
    }

    #[test]
    fn a_metadata_credential_is_accepted_like_an_sts_one() {
        let sim = sts_sim("null");
        let get = |path: &'static str, token: Option<&str>| {
            let req = MetaRequest { method: "GET", path, token, ttl: None };
            sim.metadata(&req)
        };
        assert_eq!(get("/latest/meta-data/ram/security-credentials/", None).status, 403);
        let token =
            sim.metadata(&MetaRequest { method: "PUT", path: "/latest/api/token", token: None, ttl: Some("60") });
        assert_eq!(token.status, 200);
        let role = get("/latest/meta-data/ram/security-credentials/", Some(&token.body));
        assert_eq!((role.status, role.body.as_str()), (200, "ecs-role"));
        let creds = get("/latest/meta-data/ram/security-credentials/ecs-role", Some(&token.body));
        let v: Value = serde_json::from_str(&creds.body).unwrap();
        let s = |f: &str| v[f].as_str().unwrap().to_string();
        let key = (s("AccessKeyId"), s("AccessKeySecret"), s("SecurityToken"));
        assert_eq!(describe_as(&sim, (&key.0, &key.1, Some(&key.2))).status, 200);
        let who = body(
            &sim.handle("POST", Ok(signed_as((&key.0, &key.1, Some(&key.2)), sts::VERSION, "GetCallerIdentity", &[]))),
        );
        assert_eq!(who["Arn"], "acs:ram::1234567890123456:assumed-role/ecs-role/aliyun-sim-ecs-instance");
        // A metadata session is no trusted key: it may not assume the janitor role.
        let api = pairs(&[("RoleArn", ROLE), ("RoleSessionName", "hop")]);
        let hop = sim.handle("POST", Ok(signed_as((&key.0, &key.1, Some(&key.2)), sts::VERSION, "AssumeRole", &api)));
        assert_eq!((hop.status, hop.code.as_deref()), (403, Some("NoPermission")));
        let uri = sim.credentials_uri();
        assert_eq!(uri.status, 200);
        assert_eq!(
            sim.issued_credentials().iter().map(|c| c.source.as_str()).collect::<Vec<_>>(),
            ["EcsMetadata", "CredentialsUri"]
        );
    }

    const B: &str = "2234567890123456";
    const MEMBER_ROLE: &str = "ResourceDirectoryAccountAccessRole";
    const GEN1: &str = "3000000000000001";
    const GEN2: &str = "3000000000000002";

    /// The default account (`id`, also the directory's management account) with `i-a`, `i-b`; account B (`key-b`)
    /// with its own `i-a` and `i-b1` and a billing record; three generated members, the first with generated ECS
    /// instances; a member role trusted by `id`, denied in GEN2; an explicit role in the default account.
    fn org_inventory(faults: &str) -> String {
        format!(
            r#"{{
            "credentials": [{{"access_key_id": "id", "access_key_secret": "secret"}},
                            {{"access_key_id": "key-b", "access_key_secret": "sb", "account_id": "{B}"}}],
            "sts": {{"member_role": {{"name": "{MEMBER_ROLE}", "trusted": ["id"], "deny": ["{GEN2}"]}},
                     "roles": [{{"arn": "{ROLE}", "trusted": ["id"]}}]}},
            "resource_directory": {{"id": "rd-test01", "master_account_id": "1234567890123456",
                                    "accounts": [{{"id": "{B}", "name": "b", "folder_id": "fd-team01"}}],
                                    "generate": {{"count": 3, "first_id": {GEN1}}}}},
            "ecs": [
                {{"InstanceId": "i-a", "RegionId": "r", "Status": "Stopped", "InstanceChargeType": "PostPaid"}},
                {{"InstanceId": "i-b", "RegionId": "r", "Status": "Stopped", "InstanceChargeType": "PostPaid"}}
            ],
            "accounts": {{"{B}": {{
                "ecs": [
                    {{"InstanceId": "i-a", "RegionId": "r", "Status": "Running", "InstanceChargeType": "PostPaid"}},
                    {{"InstanceId": "i-b1", "RegionId": "r", "Status": "Stopped", "InstanceChargeType": "PostPaid"}}
                ],
                "bss": [{{"InstanceID": "i-b1", "ProductCode": "ecs", "SubscriptionType": "Subscription", "EndTime": "2020-01-01T00:00:00Z"}}]
            }}}},
            "generate": {{"accounts": ["{GEN1}"], "regions": ["r", "s"], "ecs_per_region": 4, "expired_every": 2}}
            {faults}
        }}"#
        )
    }

    fn org_sim() -> Sim {
        Sim::from_inventory_json(&org_inventory(""), SimOptions::default()).unwrap()
    }

    fn listed(r: &Rendered) -> Vec<String> {
        let v = body(r);
        v["Instances"]["Instance"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.body))
            .iter()
            .map(|i| i["InstanceId"].as_str().unwrap().to_string())
            .collect()
    }

    fn describe_in(sim: &Sim, key: (&str, &str, Option<&str>), region: &str) -> Rendered {
        let api = pairs(&[("RegionId", region), ("PageSize", "100")]);
        sim.handle("POST", Ok(signed_as(key, "2014-05-26", "DescribeInstances", &api)))
    }

    fn assume(sim: &Sim, arn: &str) -> Rendered {
        let api = pairs(&[("RoleArn", arn), ("RoleSessionName", "org-run")]);
        sim.handle("POST", Ok(signed_for(sts::VERSION, "AssumeRole", &api)))
    }

    fn member_role(account: &str) -> String {
        format!("acs:ram::{account}:role/{MEMBER_ROLE}")
    }

    #[test]
    fn each_key_sees_and_changes_only_its_own_account() {
        let sim = org_sim();
        assert_eq!(listed(&describe_in(&sim, ("id", "secret", None), "r")), ["i-a", "i-b"]);
        assert_eq!(listed(&describe_in(&sim, ("key-b", "sb", None), "r")), ["i-a", "i-b1"]);
        // B's `i-a` is running: refused in B; the default account's own stopped `i-a` is untouched either way.
        let del = |key: (&str, &str, Option<&str>), id: &str| {
            let api = pairs(&[("RegionId", "r"), ("InstanceId.1", id)]);
            sim.handle("POST", Ok(signed_as(key, "2014-05-26", "DeleteInstances", &api)))
        };
        assert_eq!(del(("key-b", "sb", None), "i-a").code.as_deref(), Some("IncorrectInstanceStatus"));
        assert_eq!(del(("key-b", "sb", None), "i-b").code.as_deref(), Some("InvalidInstanceId.NotFound"));
        assert_eq!(del(("key-b", "sb", None), "i-b1").status, 200);
        assert_eq!(sim.instance_ids("ecs"), ["i-a", "i-b"]);
        assert_eq!(sim.instance_ids_in(B, "ecs"), ["i-a"]);
        assert!(sim.instance_ids_in("999", "ecs").is_empty());
        // Every call names its account; a release call too.
        let calls = sim.calls();
        assert_eq!(calls[0].account.as_deref(), Some("1234567890123456"));
        assert!(calls[1..].iter().all(|c| c.account.as_deref() == Some(B)));
        let released = sim.release_calls();
        assert_eq!(released.len(), 3);
        assert!(released.iter().all(|c| c.account.as_deref() == Some(B)));
        // A request that does not authenticate has no account.
        let forged = describe_in(&sim, ("key-b", "wrong", None), "r");
        assert_eq!(forged.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(sim.calls().last().unwrap().account, None);
        // Billing follows each account's own releases.
        let billed = |key: (&str, &str, Option<&str>)| {
            let r = sim.handle("POST", Ok(signed_as(key, bss::VERSION, "QueryAvailableInstances", &[])));
            body(&r)["Data"]["InstanceList"].as_array().unwrap().len()
        };
        assert_eq!((billed(("key-b", "sb", None)), billed(("id", "secret", None))), (0, 0));
        assert_eq!(sim.instance_ids_in(B, "bss"), Vec::<String>::new());
    }

    #[test]
    fn an_assumed_member_role_acts_in_its_account_only() {
        let sim = org_sim();
        let r = assume(&sim, &member_role(GEN1));
        assert_eq!((r.status, r.code.as_deref()), (200, None), "{}", r.body);
        let (id, secret, token) = credentials_of(&body(&r));
        let key = (id.as_str(), secret.as_str(), Some(token.as_str()));
        assert_eq!(
            listed(&describe_in(&sim, key, "r")),
            ["i-3000000000000001-0-1", "i-3000000000000001-0-2", "i-3000000000000001-0-3", "i-3000000000000001-0-4"]
        );
        assert_eq!(listed(&describe_in(&sim, key, "s")).len(), 4);
        let who = body(&sim.handle("POST", Ok(signed_as(key, sts::VERSION, "GetCallerIdentity", &[]))));
        assert_eq!(who["Arn"], format!("acs:ram::{GEN1}:assumed-role/{MEMBER_ROLE}/org-run"));
        let calls = sim.calls();
        assert_eq!(calls[0].account.as_deref(), Some("1234567890123456"), "AssumeRole acts in the caller's account");
        assert!(calls[1..].iter().all(|c| c.account.as_deref() == Some(GEN1)));
        // The generator's expired instances: every 2nd, stopped and tagged.
        let stopped: Vec<String> = body(&describe_in(&sim, key, "r"))["Instances"]["Instance"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["Status"] == "Stopped" && i["Tags"]["Tag"][0]["TagKey"] == "expire-at")
            .map(|i| i["InstanceId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(stopped, ["i-3000000000000001-0-2", "i-3000000000000001-0-4"]);
        // A member without inventory has empty products.
        let r = assume(&sim, &member_role("3000000000000003").to_lowercase());
        let (id, secret, token) = credentials_of(&body(&r));
        assert!(listed(&describe_in(&sim, (&id, &secret, Some(&token)), "r")).is_empty());
        assert!(sim.accounts().contains(&"3000000000000003".to_string()));
    }

    #[test]
    fn member_role_refusals() {
        let sim = org_sim();
        let denied = assume(&sim, &member_role(GEN2));
        assert_eq!((denied.status, denied.code.as_deref()), (403, Some("NoPermission")));
        let outside = assume(&sim, &member_role("999"));
        assert_eq!((outside.status, outside.code.as_deref()), (404, Some("EntityNotExist.Role")));
        let other_name = assume(&sim, &format!("acs:ram::{GEN1}:role/other"));
        assert_eq!(other_name.code.as_deref(), Some("EntityNotExist.Role"));
        // Names match case-insensitively; the answer names the role as the inventory does.
        let r = assume(&sim, &format!("acs:ram::{GEN1}:role/resourcedirectoryaccountaccessrole"));
        assert_eq!(body(&r)["AssumedRoleUser"]["Arn"], format!("acs:ram::{GEN1}:role/{MEMBER_ROLE}/org-run"));
        // Only trusted keys: B's key may not assume it.
        let api = pairs(&[("RoleArn", &member_role(GEN1)), ("RoleSessionName", "b-run")]);
        let b = sim.handle("POST", Ok(signed_as(("key-b", "sb", None), sts::VERSION, "AssumeRole", &api)));
        assert_eq!(b.code.as_deref(), Some("NoPermission"));
    }

    fn list_accounts(sim: &Sim, key: (&str, &str, Option<&str>), api: &[(&str, &str)]) -> Rendered {
        sim.handle("POST", Ok(signed_as(key, resourcemanager::VERSION, "ListAccounts", &pairs(api))))
    }

    #[test]
    fn list_accounts_is_for_the_management_account_and_its_sessions() {
        let sim = org_sim();
        let r = list_accounts(&sim, ("id", "secret", None), &[]);
        let v = body(&r);
        assert_eq!(v["TotalCount"], 4, "{}", r.body);
        assert!(v["RequestId"].is_string());
        let ids: Vec<&str> =
            v["Accounts"]["Account"].as_array().unwrap().iter().map(|a| a["AccountId"].as_str().unwrap()).collect();
        assert_eq!(ids, [B, GEN1, GEN2, "3000000000000003"]);
        let b = list_accounts(&sim, ("key-b", "sb", None), &[]);
        assert_eq!((b.status, b.code.as_deref()), (404, Some("EntityNotExists.ResourceDirectory")));
        // A role session in the management account may list; one in a member account may not.
        let (id, secret, token) = credentials_of(&body(&assume(&sim, ROLE)));
        assert_eq!(list_accounts(&sim, (&id, &secret, Some(&token)), &[]).status, 200);
        let (id, secret, token) = credentials_of(&body(&assume(&sim, &member_role(GEN1))));
        assert_eq!(
            list_accounts(&sim, (&id, &secret, Some(&token)), &[]).code.as_deref(),
            Some("EntityNotExists.ResourceDirectory")
        );
        let parent = sim.handle(
            "POST",
            Ok(signed_for(
                resourcemanager::VERSION,
                "ListAccountsForParent",
                &pairs(&[("ParentFolderId", "fd-team01")]),
            )),
        );
        assert_eq!(body(&parent)["TotalCount"], 1);
        let unknown = sim.handle("POST", Ok(signed_for(resourcemanager::VERSION, "CreateFolder", &[])));
        assert_eq!((unknown.status, unknown.code.as_deref()), (404, Some("InvalidAction.NotFound")));
        let host: Value = body(&b);
        assert_eq!(host["HostId"], "resourcemanager.aliyuncs.com");
    }

    #[test]
    fn faults_may_name_an_account() {
        let faults = format!(
            r#", "faults": [{{"action": "DescribeInstances", "account": "{B}", "code": "Throttling.User", "status": 400}}]"#
        );
        let sim = Sim::from_inventory_json(&org_inventory(&faults), SimOptions::default()).unwrap();
        assert_eq!(describe_in(&sim, ("key-b", "sb", None), "r").code.as_deref(), Some("Throttling.User"));
        assert_eq!(describe_in(&sim, ("id", "secret", None), "r").status, 200);
        assert_eq!(sim.calls()[0].account.as_deref(), Some(B));
        assert_eq!(sim.calls()[0].injected.as_deref(), Some("error"));
    }

    #[test]
    fn snapshot_shows_every_account() {
        let sim = org_sim();
        let v = sim.snapshot();
        assert_eq!(v["ecs"].as_array().unwrap().len(), 2);
        assert_eq!(v["accounts"][B]["ecs"].as_array().unwrap().len(), 2);
        assert_eq!(v["accounts"][GEN1]["ecs"].as_array().unwrap().len(), 8);
        assert_eq!(v["accounts"][GEN2]["ecs"], serde_json::json!([]));
        assert!(v["accounts"].get("1234567890123456").is_none());
        assert_eq!(sim.default_account(), "1234567890123456");
        assert_eq!(sim.accounts(), ["1234567890123456", B, GEN1, GEN2, "3000000000000003"]);
    }

    fn load_error(text: &str) -> String {
        match Sim::from_inventory_json(text, SimOptions::default()) {
            Err(SimError::Invalid { field, .. }) => field,
            other => panic!("expected an error, got ok={}", other.is_ok()),
        }
    }

    #[test]
    fn account_errors_name_the_account() {
        let bad = org_inventory("").replace(
            r#""InstanceId": "i-b1", "RegionId": "r", "Status": "Stopped""#,
            r#""InstanceId": "i-b1", "RegionId": "r", "Status": "Gone""#,
        );
        assert_eq!(load_error(&bad), format!("accounts.{B}.ecs[1].Status"));
        let dup = org_inventory("").replace(r#""i-b1""#, r#""i-2234567890123456-0-1""#).replace(
            r#""generate": {"accounts": ["3000000000000001"]"#,
            &format!(r#""generate": {{"accounts": ["{B}"]"#),
        );
        assert_eq!(load_error(&dup), format!("accounts.{B}.ecs[2].InstanceId"));
        let twice = org_inventory("").replace(&format!(r#""accounts": {{"{B}""#), r#""accounts": {"1234567890123456""#);
        assert_eq!(load_error(&twice), "accounts.1234567890123456");
        let top_bad = org_inventory("").replace(
            r#""InstanceId": "i-a", "RegionId": "r", "Status": "Stopped", "InstanceChargeType": "PostPaid""#,
            r#""InstanceId": "i-a", "RegionId": "r", "Status": "Stopped", "InstanceChargeType": "Free""#,
        );
        assert_eq!(load_error(&top_bad), "ecs[0].InstanceChargeType");
        let no_rd = r#"{"credentials": [{"access_key_id": "id", "access_key_secret": "s"}],
                        "sts": {"member_role": {"name": "r"}}}"#;
        assert_eq!(load_error(no_rd), "sts.member_role");
        let deny_outside = org_inventory("").replace(&format!(r#""deny": ["{GEN2}"]"#), r#""deny": ["42"]"#);
        assert_eq!(load_error(&deny_outside), "sts.member_role.deny[0]");
        let all = r#"{"credentials": [{"access_key_id": "id", "access_key_secret": "s"}],
                      "generate": {"accounts": "all-members", "regions": ["r"], "ecs_per_region": 1}}"#;
        assert_eq!(load_error(all), "generate.accounts");
        // The default account's inventory may sit under `accounts` when the top level has none.
        let moved = r#"{"credentials": [{"access_key_id": "id", "access_key_secret": "s"}],
            "accounts": {"1234567890123456": {"ecs": [{"InstanceId": "i-x", "RegionId": "r", "Status": "Stopped", "InstanceChargeType": "PostPaid"}]}}}"#;
        let sim = Sim::from_inventory_json(moved, SimOptions::default()).unwrap();
        assert_eq!(sim.instance_ids("ecs"), ["i-x"]);
    }

    /// 200 generated accounts × 20 regions × 10 instances (40,000), then one listing per account through its
    /// member role: loading and serving stay fast (the limits are loose enough for an unoptimised build).
    #[test]
    fn a_large_organisation_loads_and_serves_fast() {
        let regions: Vec<String> = (0..20).map(|r| format!("\"region-{r}\"")).collect();
        let text = format!(
            r#"{{"credentials": [{{"access_key_id": "id", "access_key_secret": "secret"}}],
                "sts": {{"member_role": {{"name": "{MEMBER_ROLE}", "trusted": ["id"]}}}},
                "resource_directory": {{"id": "rd-big001", "master_account_id": "1234567890123456",
                                        "generate": {{"count": 200, "first_id": {GEN1}}}}},
                "generate": {{"accounts": "all-members", "regions": [{}], "ecs_per_region": 10, "expired_every": 5}}}}"#,
            regions.join(",")
        );
        let started = std::time::Instant::now();
        let sim = Sim::from_inventory_json(&text, SimOptions::default()).unwrap();
        let loaded = started.elapsed();
        let limit = if cfg!(debug_assertions) { Duration::from_secs(20) } else { Duration::from_secs(2) };
        assert!(loaded < limit, "loading took {loaded:?}");
        let started = std::time::Instant::now();
        for n in 0..200_u64 {
            let account = (3_000_000_000_000_001 + n).to_string();
            let (id, secret, token) = credentials_of(&body(&assume(&sim, &member_role(&account))));
            let page = listed(&describe_in(&sim, (&id, &secret, Some(&token)), "region-7"));
            assert_eq!(page.len(), 10);
            assert_eq!(page[0], format!("i-{account}-7-1"));
        }
        let served = started.elapsed();
        assert!(served < limit, "serving took {served:?}");
        assert_eq!(sim.instance_ids_in("3000000000000200", "ecs").len(), 200);
        eprintln!("40,000 instances in 200 accounts: loaded in {loaded:?}, 400 requests served in {served:?}");
    }

    fn api_param() -> impl Strategy<Value = (String, String)> {
        let names = prop::sample::select(vec![
            "RegionId",
            "InstanceIds",
            "InstanceId.1",
            "InstanceId.2",
            "InstanceId.0",
            "InstanceId.100",
            "InstanceId.99999999999999999999",
            "InstanceId",
            "MaxResults",
            "NextToken",
            "PageNumber",
            "PageSize",
            "Status",
            "InstanceChargeType",
            "Tag.1.Key",
            "Tag.1.Value",
            "Tag.21.Key",
            "Tag.x.Key",
            "Force",
            "TerminateSubscription",
            "DryRun",
            "ClientToken",
            "ZoneId",
        ]);
        let values = prop_oneof![
            Just("r".to_string()),
            Just("i-a".to_string()),
            Just("true".to_string()),
            Just("18446744073709551616".to_string()),
            Just("0".to_string()),
            Just("[\"i-a\",1]".to_string()),
            ".{0,12}",
        ];
        (names.prop_map(str::to_string), values)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Whatever the API parameters, a signed request gets a JSON answer with a sensible status, never a panic.
        #[test]
        fn arbitrary_parameters_never_panic(
            action in prop::sample::select(vec!["DescribeInstances", "DeleteInstances", "DeleteInstance", "DescribeRegions"]),
            api in prop::collection::vec(api_param(), 0..8),
        ) {
            let sim = Sim::from_inventory_json(INVENTORY, SimOptions::default()).unwrap();
            let r = sim.handle("POST", Ok(signed(action, &api)));
            prop_assert!([200, 400, 403, 404].contains(&r.status), "{} {}", r.status, r.body);
            let body: Value = serde_json::from_str(&r.body).unwrap();
            prop_assert!(body["RequestId"].is_string());
            prop_assert_eq!(r.status == 200, r.code.is_none());
        }

        /// Garbage query strings are refused cleanly.
        #[test]
        fn arbitrary_query_strings_never_panic(query in ".{0,80}") {
            let sim = Sim::from_inventory_json(INVENTORY, SimOptions::default()).unwrap();
            let parsed = params::decode_pairs(&query).and_then(params::merge);
            let r = sim.handle("GET", parsed);
            prop_assert!(r.status >= 400);
        }
    }
}

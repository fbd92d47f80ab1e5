//! The scale benchmark (`make bench`; not part of `make test`): 10,000 instances over up to 5 products and 10
//! regions in the emulator, every call answered 50 ms late. For a dry run and an apply run it reports wall
//! time, API calls by kind, peak RSS and CPU time, each beside its floor: the fewest calls the work needs
//! (pages, batches, per-instance calls where an API has no batch) and the time that many calls take at the
//! configured concurrency. Also: release binary size and cold start. Writes `target/bench/report.md`.
//!
//! Products come from one generator function each (`PRODUCTS`); a product is benchmarked when the emulator
//! serves it and the janitor has an adapter for it, so the benchmark grows as products are added.
//!
//! Runs the release binary as a process, measured with GNU `time` (`/usr/bin/time`); the emulator runs in this
//! process (the `aliyun_sim` library, on its own thread), so nothing it does counts in the janitor's figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The binary measured: the one `make build` ships (`make bench` builds it and passes its path here), else the
/// one Cargo builds for this bench, whose features are unified with the dev-dependencies' (about 0.5 MB larger).
fn bin() -> String {
    std::env::var("JANITOR_BENCH_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_aliyun-janitor").to_string())
}
/// One scenario of the benchmark (`JANITOR_BENCH_SCENARIOS=10k,candidates,faults,100k` picks some; default all).
struct Scenario {
    name: &'static str,
    total: usize,
    /// What instance `i` (of its product, counted within its region) is.
    kind: fn(usize) -> Kind,
    /// The emulator's fault knobs (none: only the latency).
    faults: bool,
    /// The dry run too (the faults scenario runs apply only).
    dry_run: bool,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario { name: "10k", total: 10_000, kind, faults: false, dry_run: true },
    Scenario { name: "candidates", total: 10_000, kind: one_percent, faults: false, dry_run: true },
    Scenario { name: "faults", total: 10_000, kind, faults: true, dry_run: false },
    Scenario { name: "100k", total: 100_000, kind, faults: false, dry_run: true },
];

/// The faults scenario's knobs: 10 % throttling, 5 % 503, 1 % resets on every action (releases included); half
/// of the 503s and resets strike after the request acted (the release done, its answer lost).
fn fault_options() -> aliyun_sim::SimOptions {
    aliyun_sim::SimOptions {
        latency_ms: LATENCY_MS,
        throttle_rate: 0.10,
        error_rate: 0.05,
        reset_rate: 0.01,
        acted_share: 0.5,
        seed: 16,
    }
}
const REGIONS: [&str; 10] = [
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-qingdao",
    "cn-zhangjiakou",
    "cn-chengdu",
    "cn-hongkong",
    "ap-southeast-1",
    "eu-central-1",
];
const LATENCY_MS: u64 = 50;
/// `concurrency` in the benchmark's policy: every region listed at once, 8 calls in flight per endpoint.
const REGION_CONCURRENCY: usize = 10;
const PER_ENDPOINT: usize = 8;
const NOW: &str = "2026-11-25T12:00:00Z";
/// Billing discovery (`bss: { discovery: true }`): the fifth "product" of the benchmark.
const BSS: &str = "bssopenapi";
const KEY_ID: &str = "bench-key";
const SECRET: &str = "bench-secret";

/// What an instance is in the benchmark's inventory: 30% expired (eligible), 10% expired but protected,
/// 60% kept (a tag date in the future).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Eligible,
    Protected,
    Kept,
}

fn kind(i: usize) -> Kind {
    match i % 10 {
        0..=2 => Kind::Eligible,
        3 => Kind::Protected,
        _ => Kind::Kept,
    }
}

/// The "1 % candidates" scenario: one instance in a hundred is eligible, the rest match no rule.
fn one_percent(i: usize) -> Kind {
    if i % 100 == 0 {
        Kind::Eligible
    } else {
        Kind::Kept
    }
}

fn expire_tag(k: Kind) -> &'static str {
    if k == Kind::Kept {
        "2027-06-01"
    } else {
        "2026-01-01"
    }
}

/// One product of the benchmark: how to make its inventory objects. Its API's shape is in `floor`.
struct ProductGen {
    /// Endpoint product code: the emulator's inventory section and the policy's product.
    code: &'static str,
    make: fn(id: &str, region: &str, k: Kind) -> Value,
}

/// ECS `DescribeInstances` objects (reference 3.1).
fn ecs(id: &str, region: &str, k: Kind) -> Value {
    let mut tags = vec![json!({"TagKey": "expire-at", "TagValue": expire_tag(k)})];
    if k == Kind::Protected {
        tags.push(json!({"TagKey": "janitor:keep", "TagValue": "true"}));
    }
    json!({
        "InstanceId": id, "InstanceName": format!("bench-{id}"), "RegionId": region, "ZoneId": format!("{region}-a"),
        "Status": "Stopped", "InstanceChargeType": "PostPaid", "CreationTime": "2026-10-01T00:00Z",
        "ExpiredTime": "2099-12-31T15:59Z", "DeletionProtection": false, "OperationLocks": {"LockReason": []},
        "Tags": {"Tag": tags}, "InstanceType": "ecs.g7.large",
    })
}

fn kv_tags(k: Kind) -> Vec<Value> {
    let mut tags = vec![json!({"Key": "expire-at", "Value": expire_tag(k)})];
    if k == Kind::Protected {
        tags.push(json!({"Key": "janitor:keep", "Value": "true"}));
    }
    tags
}

/// Redis/Tair `DescribeInstances` objects plus the protection flag of `DescribeInstanceAttribute` (reference 3.2).
fn redis(id: &str, region: &str, k: Kind) -> Value {
    json!({
        "InstanceId": id, "InstanceName": format!("bench-{id}"), "RegionId": region, "InstanceStatus": "Normal",
        "ChargeType": "PostPaid", "CreateTime": "2026-10-01T00:00:00Z", "InstanceType": "Redis",
        "InstanceReleaseProtection": false, "Tags": {"Tag": kv_tags(k)},
    })
}

/// Kafka `GetInstanceList` objects (reference 3.3): epoch-millisecond times, `PaidType` 1 = pay-as-you-go.
fn kafka(id: &str, region: &str, k: Kind) -> Value {
    json!({
        "InstanceId": id, "Name": format!("bench-{id}"), "RegionId": region, "ServiceStatus": 5,
        "ViewInstanceStatusCode": 2, "PaidType": 1, "CreateTime": 1_790_000_000_000u64, "ExpiredTime": 4_102_444_800_000u64,
        "SpecType": "professional", "Tags": {"TagVO": kv_tags(k)},
    })
}

/// KMS `GetKmsInstance` objects (reference 3.4); the adapter reads no tags, so the generator selects by name
/// (`scratch-*`, the policy's `kms-scratch` rule) and protects by the deletion protection flag.
fn kms(id: &str, region: &str, k: Kind) -> Value {
    json!({
        "InstanceId": id, "KmsInstanceId": id, "InstanceName": format!("{}-{id}", if k == Kind::Kept { "bench" } else { "scratch" }), "RegionId": region, "Status": "Connected",
        "ChargeType": "POSTPAY", "CreateTime": "2026-10-01T00:00:00Z", "EndDate": "", "DeletionProtection": k == Kind::Protected,
        "ProductType": "kms_ppi_public_cn", "Tags": kv_tags(k),
    })
}

/// BSS `QueryAvailableInstances` rows (reference 3.5): discovery only. RDS has no adapter, so what a rule selects
/// is reported "release it by hand" (`manual`); the policy's `expired-subscriptions` rule selects expired rows.
fn bss(id: &str, region: &str, k: Kind) -> Value {
    json!({
        "InstanceID": id, "ProductCode": "rds", "ProductType": "rds", "Region": region, "SubscriptionType": "Subscription",
        "Status": if k == Kind::Kept { "Normal" } else { "Expired" }, "SubStatus": "Normal", "RenewStatus": "ManualRenewal",
        "CreateTime": "2026-01-01T00:00:00Z", "EndTime": if k == Kind::Kept { "2027-06-01T00:00:00Z" } else { "2026-10-01T00:00:00Z" },
    })
}

const PRODUCTS: &[ProductGen] = &[
    ProductGen { code: "ecs", make: ecs },
    ProductGen { code: "r-kvstore", make: redis },
    ProductGen { code: "alikafka", make: kafka },
    ProductGen { code: "kms", make: kms },
    ProductGen { code: "bssopenapi", make: bss },
];

/// The emulator's inventory section of a product: its endpoint code, except billing's (`bss`).
fn section(code: &str) -> &str {
    if code == BSS {
        "bss"
    } else {
        code
    }
}

fn out_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench")
}

fn base_inventory() -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("credentials".into(), json!([{"access_key_id": KEY_ID, "access_key_secret": SECRET}]));
    m.insert("now".into(), json!(NOW));
    m
}

/// Products the emulator serves (it refuses unknown inventory sections) and the janitor has an adapter for.
fn usable_products(dir: &Path) -> Vec<&'static ProductGen> {
    let adapters: Vec<&str> = aliyun_janitor::products::catalog().adapters().iter().map(|p| p.code()).collect();
    PRODUCTS
        .iter()
        .filter(|p| adapters.contains(&p.code) || p.code == BSS)
        .filter(|p| {
            let mut inv = base_inventory();
            inv.insert(section(p.code).into(), json!([]));
            let path = dir.join(format!("probe-{}.json", p.code));
            std::fs::write(&path, Value::Object(inv).to_string()).is_ok()
                && aliyun_sim::Sim::from_inventory_file(&path, aliyun_sim::SimOptions::default()).is_ok()
        })
        .collect()
}

/// Per product and region: (instances, eligible). Billing rows: (rows, expired: reported `manual`).
type Layout = BTreeMap<(&'static str, &'static str), (usize, usize)>;

/// Writes the inventory and answers its layout, plus the ids of every product instance by kind.
fn write_inventory(
    products: &[&'static ProductGen],
    path: &Path,
    sc: &Scenario,
) -> (Layout, BTreeMap<&'static str, Vec<String>>) {
    let mut inv = base_inventory();
    let mut layout = Layout::new();
    let mut ids: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let per_product = sc.total / products.len();
    for p in products {
        let mut items = Vec::with_capacity(per_product);
        for i in 0..per_product {
            let region = REGIONS[i % REGIONS.len()];
            let k = (sc.kind)(i / REGIONS.len());
            let id = format!("{}-{:06}", &p.code[..2], i);
            items.push((p.make)(&id, region, k));
            if p.code != BSS {
                let label = match k {
                    Kind::Eligible => "eligible",
                    Kind::Protected => "protected",
                    Kind::Kept => "kept",
                };
                ids.entry(label).or_default().push(id.clone());
            }
            let e = layout.entry((p.code, region)).or_default();
            e.0 += 1;
            e.1 += usize::from(if p.code == BSS { k != Kind::Kept } else { k == Kind::Eligible });
        }
        inv.insert(section(p.code).into(), Value::Array(items));
    }
    std::fs::write(path, Value::Object(inv).to_string()).expect("write inventory");
    (layout, ids)
}

fn policy(products: &[&'static ProductGen], total: usize) -> String {
    let codes: Vec<&str> = products.iter().map(|p| p.code).filter(|c| *c != BSS).collect();
    let bss = products.iter().any(|p| p.code == BSS);
    format!(
        "regions: [{}]\nproducts: [{}]\nconcurrency: {{ regions: {REGION_CONCURRENCY}, per_endpoint: {PER_ENDPOINT} }}\n\
         protect:\n  tags: {{ \"janitor:keep\": \"true\" }}\nlimits: {{ max_releases_per_run: {total}, max_release_percent: 100 }}\n\
         bss: {{ discovery: {bss} }}\n\
         rules:\n  - name: expired-by-tag\n    filters: {{ expire_at_tag: expire-at }}\n    grace: 0\n\
         \x20 - name: kms-scratch\n    filters: {{ products: [kms], name: \"scratch-*\" }}\n    grace: 0\n\
         \x20 - name: expired-subscriptions\n    filters: {{ charge_type: subscription, expired_for: 7d }}\n    grace: 0\n",
        REGIONS.join(", "),
        codes.join(", ")
    )
}

struct Floor {
    calls: BTreeMap<String, u64>,
    /// Of `calls`, the listing's: pages, the reads a listing needs for any fact a rule tests (KMS: every
    /// `GetKmsInstance`, its list has ids only), billing's pages and the account read.
    listing: u64,
    time: Duration,
}

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b.max(1))
}

/// The work of one (product, region) for the floor: the listing's sequential page chain, the listing's
/// per-instance reads, and the release step's calls (`pre`: the pre-flight or native dry run, which comes
/// before `rel`; `rel_chain`: calls one instance's release needs in sequence).
#[derive(Default)]
struct ScopeWork {
    host: String,
    pages: usize,
    reads: usize,
    pre: usize,
    rel: usize,
    rel_chain: usize,
}

/// The least work a run can do, product by product (`pages of 100, batches of 100, per-instance calls where the
/// API has no batch`):
/// - ECS: `DescribeInstances` pages of 100; the pre-flight re-read, `DescribeInstances` of batches of 100 ids;
///   `DeleteInstances` batches of 100 with `DryRun`, then the real ones.
/// - Redis: `DescribeInstances` pages of 50 (its maximum) + one `DescribeInstanceAttribute` per instance a rule
///   can still match on the listing's facts (the release protection flag is only there; issue 16); the pre-flight
///   re-read is a `DescribeInstanceAttribute` per eligible instance (the flag again); one `DeleteInstance` each.
/// - Kafka: one `GetInstanceList` per region (no paging) and one for the pre-flight; per instance
///   `ReleaseInstance` then `DeleteInstance` (the two-step release).
/// - KMS: `ListKmsInstances` pages of 100 (ids only) + `GetKmsInstance` per id; the pre-flight is a
///   `GetKmsInstance` per eligible id (no batch read); one `ReleaseKmsInstance` per instance.
/// - Billing discovery: `QueryAvailableInstances` pages of 300 of the expired rows, account-wide, one `NextToken` chain.
///
/// Time: calls go `PER_ENDPOINT` at a time per endpoint host (Redis serves cn-hangzhou, cn-shanghai, cn-beijing
/// and cn-qingdao from one central host: those four regions share 8 slots) and `REGION_CONCURRENCY` scopes are
/// listed at once; pages of a scope are sequential. Listing (and billing) come first, because the run-wide limits
/// need the whole population; then every scope's release step, pre-flight before release.
fn floor(products: &[&'static ProductGen], layout: &Layout, apply: bool) -> Floor {
    let latency = Duration::from_millis(LATENCY_MS);
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    let mut add = |code: &str, action: &str, n: usize| {
        if n > 0 {
            *calls.entry(format!("{code}:{action}")).or_default() += n as u64;
        }
    };
    let mut scopes: Vec<ScopeWork> = Vec::new();
    let mut listing = 1usize;
    for p in products {
        if p.code == BSS {
            // The query asks for expired (and soon-expiring) subscriptions only: pages of the expired rows.
            let rows: usize = layout.iter().filter(|((c, _), _)| *c == BSS).map(|(_, (_, e))| e).sum();
            let pages = ceil_div(rows, 300).max(1);
            listing += pages;
            add(BSS, "QueryAvailableInstances", pages);
            scopes.push(ScopeWork { host: aliyun_janitor::aliyun::default_host(BSS, ""), pages, ..Default::default() });
            continue;
        }
        for ((code, region), &(n, e)) in layout.iter().filter(|((c, _), _)| *c == p.code) {
            let mut w = ScopeWork { host: aliyun_janitor::aliyun::default_host(code, region), ..Default::default() };
            match *code {
                "ecs" => {
                    w.pages = ceil_div(n, 100).max(1);
                    listing += w.pages;
                    let batches = ceil_div(e, 100);
                    add(code, "DescribeInstances", w.pages + batches);
                    // The pre-flight re-read (batches of 100 ids), then the dry runs, then (apply) the releases.
                    w.pre = batches;
                    w.rel = batches;
                    w.rel_chain = 1;
                    add(code, "DeleteInstances", batches);
                    if apply {
                        w.rel += batches;
                        w.rel_chain = 2;
                        add(code, "DeleteInstances", batches);
                    }
                }
                "r-kvstore" => {
                    // The listing has every fact a rule tests but the protection: the attribute read is only for
                    // the candidates (here the eligible; a tag-protected or unmatched instance needs none).
                    w.pages = ceil_div(n, 50).max(1);
                    w.reads = e;
                    w.pre = e;
                    listing += w.pages;
                    add(code, "DescribeInstances", w.pages);
                    add(code, "DescribeInstanceAttribute", e + e);
                    if apply {
                        w.rel = e;
                        w.rel_chain = 1;
                        add(code, "DeleteInstance", e);
                    }
                }
                "alikafka" => {
                    w.pages = 1;
                    listing += 1;
                    w.pre = usize::from(e > 0);
                    add(code, "GetInstanceList", 1 + w.pre);
                    if apply {
                        // Two-step release: `DeleteInstance` is refused until the instance reports released, so one
                        // status read of the region (shared by every instance released in it) sits between the steps.
                        // Before it, the janitor's release record (`janitor:released`, tag batches of 20).
                        let records = ceil_div(e, 20);
                        w.rel = records + 2 * e + usize::from(e > 0);
                        w.rel_chain = 3 + usize::from(e > 0);
                        add(code, "TagResources", records);
                        add(code, "ReleaseInstance", e);
                        add(code, "GetInstanceList", usize::from(e > 0));
                        add(code, "DeleteInstance", e);
                    }
                }
                "kms" => {
                    w.pages = ceil_div(n, 100).max(1);
                    w.reads = n;
                    listing += w.pages + n;
                    w.pre = e;
                    add(code, "ListKmsInstances", w.pages);
                    add(code, "GetKmsInstance", n + e);
                    if apply {
                        w.rel = e;
                        w.rel_chain = 1;
                        add(code, "ReleaseKmsInstance", e);
                    }
                }
                other => panic!("no floor for {other}"),
            }
            scopes.push(w);
        }
    }
    let slots = |n: usize| ceil_div(n, PER_ENDPOINT);
    // Listing: a scope needs its page chain plus its reads at the endpoint's bound; an endpoint needs all its
    // listing calls at its bound; at most REGION_CONCURRENCY scopes' page chains at once.
    let mut hosts: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    for w in &scopes {
        let h = hosts.entry(w.host.as_str()).or_default();
        h.0 += w.pages + w.reads;
        h.1 = h.1.max(w.pages + slots(w.reads));
        h.2 += w.pre + w.rel;
        let chain = slots(w.pre) + if w.rel_chain > 0 { slots(w.rel).max(w.rel_chain) } else { 0 };
        h.3 = h.3.max(chain);
    }
    // The scope limit covers the page chains: Redis reads its details after the scope's permit is released.
    // (KMS makes its per-id reads inside its listing, so under the permit; the floor does not count them
    // against the scope limit, which makes it a lower bound the run cannot always reach.)
    let by_scopes = ceil_div(scopes.iter().map(|w| w.pages).sum(), REGION_CONCURRENCY);
    let list_rounds = hosts.values().map(|h| slots(h.0).max(h.1)).max().unwrap_or(0).max(by_scopes);
    let release_rounds = hosts.values().map(|h| slots(h.2).max(h.3)).max().unwrap_or(0);
    // The run names its account first (STS GetCallerIdentity): one call, one round, before any listing.
    *calls.entry("sts:GetCallerIdentity".into()).or_default() += 1;
    Floor { calls, listing: listing as u64, time: latency * (1 + list_rounds + release_rounds) as u32 }
}

struct Measured {
    wall: Duration,
    user: Duration,
    sys: Duration,
    peak_rss_kb: u64,
    exit: i32,
    summary: Value,
}

fn gnu_time() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/time");
    let ok = Command::new(&p)
        .args(["-f", "%e", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
}

fn run_janitor(url: &str, policy: &Path, apply: bool, dir: &Path, tag: &str) -> Measured {
    let time = gnu_time().expect("GNU time at /usr/bin/time (apt-get install time); `make bench` installs it");
    let stats = dir.join(format!("{tag}.time"));
    let stdout = std::fs::File::create(dir.join(format!("{tag}.summary.json"))).expect("summary file");
    let stderr = std::fs::File::create(dir.join(format!("{tag}.log"))).expect("log file");
    let mut cmd = Command::new(time);
    cmd.arg("-f").arg("%e %U %S %M").arg("-o").arg(&stats);
    // A profiler to run the janitor under (`JANITOR_BENCH_WRAP="heaptrack -o target/bench/h"`): its figures are
    // then the profiler's, not the janitor's.
    if let Ok(wrap) = std::env::var("JANITOR_BENCH_WRAP") {
        cmd.args(wrap.split_whitespace().map(|w| w.replace("{tag}", tag)));
    }
    cmd.arg(bin()).arg("run").arg("--policy").arg(policy);
    if apply {
        cmd.arg("--apply");
    }
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JANITOR_ENDPOINT", url)
        .env("JANITOR_NOW", NOW)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
        // `JANITOR_BENCH_RUST_LOG=debug` adds a line per call (its duration): slower, for finding where time goes.
        .env("RUST_LOG", std::env::var("JANITOR_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdout(stdout)
        .stderr(stderr);
    let started = Instant::now();
    let status = cmd.status().expect("janitor runs");
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    let f: Vec<f64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    let secs = |i: usize| Duration::from_secs_f64(f.get(i).copied().unwrap_or(0.0));
    let summary = std::fs::read(dir.join(format!("{tag}.summary.json")))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Measured {
        wall,
        user: secs(1),
        sys: secs(2),
        peak_rss_kb: f.get(3).copied().unwrap_or(0.0) as u64,
        exit: status.code().unwrap_or(-1),
        summary,
    }
}

/// Starts the emulator as `aliyun-sim` would (one current-thread runtime), with the benchmark's latency.
fn start_sim(inventory: &Path, faults: bool) -> (aliyun_sim::ThreadServer, aliyun_sim::Sim) {
    let opts = if faults {
        fault_options()
    } else {
        aliyun_sim::SimOptions { latency_ms: LATENCY_MS, ..aliyun_sim::SimOptions::default() }
    };
    let sim = aliyun_sim::Sim::from_inventory_file(inventory, opts).expect("the benchmark inventory loads");
    (aliyun_sim::ThreadServer::start(sim.clone()).expect("the emulator starts"), sim)
}

fn cold_start(policy: &Path) -> Duration {
    let mut samples: Vec<Duration> = (0..21)
        .map(|_| {
            let t = Instant::now();
            let ok = Command::new(bin())
                .arg("validate")
                .arg("--policy")
                .arg(policy)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "validate fails on the benchmark policy");
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn calls_table(out: &mut String, label: &str, measured: &Measured, floor: &Floor) {
    let made: BTreeMap<String, u64> = measured.summary["api_calls"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    out.push_str(&format!("\n**{label}: API calls by kind**\n\n| call | made | floor |\n|---|---:|---:|\n"));
    let mut keys: Vec<&String> = made.keys().chain(floor.calls.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        out.push_str(&format!(
            "| `{k}` | {} | {} |\n",
            made.get(k).copied().unwrap_or(0),
            floor.calls.get(k).copied().unwrap_or(0)
        ));
    }
    out.push_str(&format!("| total | {} | {} |\n", made.values().sum::<u64>(), floor.calls.values().sum::<u64>()));
}

fn main() {
    // `cargo test --all-targets` builds and runs this too: only `cargo bench` (which passes --bench) measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale benchmark: skipped (run `make bench`)");
        return;
    }
    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("target/bench");
    let products = usable_products(&dir);
    assert!(!products.is_empty(), "no product is both emulated and adapted");
    let wanted = std::env::var("JANITOR_BENCH_SCENARIOS").unwrap_or_default();
    let picked = |name: &str| wanted.trim().is_empty() || wanted.split(',').any(|w| w.trim() == name);
    let mut out = String::new();
    let binary_size = std::fs::metadata(bin()).map(|m| m.len()).unwrap_or(0);
    out.push_str(&format!(
        "Release binary: `{}` ({}), {:.2} MB ({binary_size} bytes). Emulator latency {LATENCY_MS} ms per call; \
         concurrency {REGION_CONCURRENCY} scopes listed at once, {PER_ENDPOINT} calls in flight per endpoint.\n",
        bin().strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/")).map(str::to_string).unwrap_or_else(bin),
        if std::env::var_os("JANITOR_BENCH_BINARY").is_some() {
            "as shipped by `make build`"
        } else {
            "built by `cargo bench`"
        },
        binary_size as f64 / 1e6
    ));
    for sc in SCENARIOS.iter().filter(|sc| picked(sc.name)) {
        let section = scenario(sc, &products, &dir);
        println!("{section}");
        out.push_str(&section);
        std::fs::write(dir.join("report.md"), &out).expect("report");
    }
    println!("report: {}", dir.join("report.md").display());
}

/// The ids a release call names, by action (ECS `InstanceId.N`, billing's comma list, the others one id).
fn released_ids(c: &aliyun_sim::CallRecord) -> Vec<String> {
    match c.action.as_str() {
        "DeleteInstances" => {
            c.params.iter().filter(|(k, _)| k.starts_with("InstanceId.")).map(|(_, v)| v.clone()).collect()
        }
        "ReleaseKmsInstance" => c.params.get("KmsInstanceId").cloned().into_iter().collect(),
        "ReleaseInstance" if c.params.contains_key("InstanceIds") => {
            c.params["InstanceIds"].split(',').map(str::to_string).collect()
        }
        "ReleaseInstance" | "DeleteInstance" => c.params.get("InstanceId").cloned().into_iter().collect(),
        _ => Vec::new(),
    }
}

const RELEASE_ACTIONS: [&str; 4] = ["DeleteInstances", "DeleteInstance", "ReleaseInstance", "ReleaseKmsInstance"];

/// The faults scenario's promises, from the emulator's call log and the apply summary: released = the eligible
/// set exactly; no instance released by two calls (an ECS ClientToken replay is the same call; Kafka's
/// `DeleteInstance` is the second step of one release); no protected or kept id in any release call.
fn fault_checks(
    sim: &aliyun_sim::Sim,
    ids: &BTreeMap<&'static str, Vec<String>>,
    apply: &Measured,
) -> Vec<(String, String)> {
    use std::collections::BTreeSet;
    let eligible: BTreeSet<&str> = ids.get("eligible").into_iter().flatten().map(String::as_str).collect();
    let protected: BTreeSet<&str> = ids.get("protected").into_iter().flatten().map(String::as_str).collect();
    let kept: BTreeSet<&str> = ids.get("kept").into_iter().flatten().map(String::as_str).collect();
    let released: BTreeSet<String> = apply.summary["released"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().and_then(|s| s.rsplit('/').next()).map(str::to_string))
        .collect();
    let missing = eligible.iter().filter(|id| !released.contains(**id)).count();
    let extra = released.iter().filter(|id| !eligible.contains(id.as_str())).count();
    let mut acted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in sim.release_calls().iter().filter(|c| c.code.is_none()) {
        let step2 = c.action == "DeleteInstance" && c.version == "2019-09-16";
        if step2 {
            continue;
        }
        let token = c.params.get("ClientToken").cloned().unwrap_or_else(|| format!("call-{}", acted.len()));
        for id in released_ids(c) {
            let n = acted.get(&id).map_or(0, BTreeSet::len);
            acted.entry(id).or_default().insert(if token.starts_with("call-") {
                format!("{token}-{n}")
            } else {
                token.clone()
            });
        }
    }
    let double = acted.values().filter(|t| t.len() > 1).count();
    let calls = sim.calls();
    let sent = |set: &BTreeSet<&str>| {
        calls
            .iter()
            .filter(|c| RELEASE_ACTIONS.contains(&c.action.as_str()))
            .flat_map(released_ids)
            .filter(|id| set.contains(id.as_str()))
            .count()
    };
    let injected = calls.iter().filter(|c| c.injected.is_some()).count();
    let acted_lost = calls
        .iter()
        .filter(|c| RELEASE_ACTIONS.contains(&c.action.as_str()) && c.injected.as_deref() == Some("lost_response"))
        .count();
    vec![
        (
            "released / eligible".into(),
            format!("{} / {} (missing {missing}, not eligible {extra})", released.len(), eligible.len()),
        ),
        ("instances released by two calls".into(), double.to_string()),
        ("protected ids in any release call".into(), sent(&protected).to_string()),
        ("kept ids in any release call".into(), sent(&kept).to_string()),
        ("faults injected (of all calls)".into(), format!("{injected} of {}", calls.len())),
        ("release answers lost after the release acted".into(), acted_lost.to_string()),
        (
            "failures / skipped scopes".into(),
            format!(
                "{} / {}",
                apply.summary["failures"].as_array().map_or(0, Vec::len),
                apply.summary["skipped_scopes"].as_array().map_or(0, Vec::len)
            ),
        ),
    ]
}

/// One scenario: its inventory and policy, the runs, and its section of the report.
fn scenario(sc: &Scenario, products: &[&'static ProductGen], dir: &Path) -> String {
    let inventory = dir.join(format!("inventory-{}.json", sc.name));
    let (layout, ids) = write_inventory(products, &inventory, sc);
    let policy_path = dir.join(format!("policy-{}.yaml", sc.name));
    std::fs::write(&policy_path, policy(products, sc.total)).expect("policy");
    let eligible: usize = layout.iter().filter(|((c, _), _)| *c != BSS).map(|(_, (_, e))| e).sum();
    let billed_expired: usize = layout.iter().filter(|((c, _), _)| *c == BSS).map(|(_, (_, e))| e).sum();
    let scanned: usize = layout.values().map(|(n, _)| n).sum();

    let (server, sim) = start_sim(&inventory, sc.faults);
    let dry = sc.dry_run.then(|| run_janitor(&server.url, &policy_path, false, dir, &format!("{}-dry-run", sc.name)));
    let apply = run_janitor(&server.url, &policy_path, true, dir, &format!("{}-apply", sc.name));
    drop(server);
    let dry_floor = floor(products, &layout, false);
    let apply_floor = floor(products, &layout, true);

    let codes: Vec<&str> = products.iter().map(|p| p.code).collect();
    let mut out = String::new();
    out.push_str(&format!(
        "\n### Scenario `{}`\n\nInventory: {scanned} instances ({}) over {} regions, {eligible} eligible{}.\n\n",
        sc.name,
        codes.join(", "),
        REGIONS.len(),
        if sc.faults {
            "; faults on every action: 10 % throttling, 5 % 503, 1 % resets, half of the 503s and resets after the request acted"
        } else {
            ""
        }
    ));
    let total = |m: &Measured| {
        m.summary["api_calls"].as_object().map(|o| o.values().filter_map(Value::as_u64).sum::<u64>()).unwrap_or(0)
    };
    let ftotal = |f: &Floor| f.calls.values().sum::<u64>();
    let na = || "–".to_string();
    let d = |f: &dyn Fn(&Measured) -> String| dry.as_ref().map(f).unwrap_or_else(na);
    out.push_str("| figure | dry run | apply run | floor (dry / apply) | target |\n|---|---:|---:|---:|---|\n");
    out.push_str(&format!(
        "| wall time | {} | {} | {} / {} | ≤ 1.25 × floor ({} / {:.2}x) |\n",
        d(&|m| ms(m.wall)),
        ms(apply.wall),
        ms(dry_floor.time),
        ms(apply_floor.time),
        d(&|m| format!("{:.2}x", m.wall.as_secs_f64() / dry_floor.time.as_secs_f64())),
        apply.wall.as_secs_f64() / apply_floor.time.as_secs_f64()
    ));
    out.push_str(&format!(
        "| API calls | {} | {} | {} / {} | = floor |\n",
        d(&|m| total(m).to_string()),
        total(&apply),
        ftotal(&dry_floor),
        ftotal(&apply_floor)
    ));
    if sc.name == "candidates" {
        let candidates = eligible + billed_expired;
        let bound = apply_floor.listing + 3 * candidates as u64;
        out.push_str(&format!(
            "| API calls vs listing + 3 × candidates | {} | {} | {} listing + 3 × {candidates} = {bound} | ≤ bound |\n",
            d(&|m| total(m).to_string()),
            total(&apply),
            apply_floor.listing
        ));
    }
    out.push_str(&format!(
        "| peak RSS (GNU time's KiB / 1024) | {} | {:.1} MiB | | {} |\n",
        d(&|m| format!("{:.1} MiB", m.peak_rss_kb as f64 / 1024.0)),
        apply.peak_rss_kb as f64 / 1024.0,
        if sc.total > 10_000 { "≤ 64 MB (61.0 MiB)" } else { "< 30 MB" }
    ));
    out.push_str(&format!(
        "| CPU time (user + sys) | {} | {} | | |\n",
        d(&|m| ms(m.user + m.sys)),
        ms(apply.user + apply.sys)
    ));
    let released = apply.summary["released"].as_array().map(Vec::len).unwrap_or(0);
    let would = d(&|m| m.summary["would_release"].as_array().map(Vec::len).unwrap_or(0).to_string());
    out.push_str(&format!("| instances released / would release | {would} | {released} | {eligible} | = eligible |\n"));
    let manual = |m: &Measured| {
        m.summary["counts"]
            .as_object()
            .map(|c| c.values().filter_map(|v| v["manual"].as_u64()).sum::<u64>())
            .unwrap_or(0)
    };
    out.push_str(&format!(
        "| billing rows reported `manual` (no adapter) | {} | {} | {billed_expired} | = expired rows |\n",
        d(&|m| manual(m).to_string()),
        manual(&apply)
    ));
    let entries = |m: &Measured| m.summary["entries"].as_array().map(Vec::len).unwrap_or(0);
    out.push_str(&format!(
        "| summary entries held | {} | {} | | the candidates |\n",
        d(&|m| entries(m).to_string()),
        entries(&apply)
    ));
    out.push_str(&format!("| exit code | {} | {} | | 0 |\n", d(&|m| m.exit.to_string()), apply.exit));
    if sc.faults {
        out.push_str("\n| faults check | value |\n|---|---|\n");
        for (k, v) in fault_checks(&sim, &ids, &apply) {
            out.push_str(&format!("| {k} | {v} |\n"));
        }
    }
    if sc.name == "10k" {
        let cold = cold_start(&policy_path);
        out.push_str(&format!("\ncold start (`validate`, median of 21): {:.1} ms\n", cold.as_secs_f64() * 1000.0));
    }
    if !sc.faults {
        if let Some(dry) = &dry {
            calls_table(&mut out, "Dry run", dry, &dry_floor);
        }
        calls_table(&mut out, "Apply run", &apply, &apply_floor);
    }
    out
}

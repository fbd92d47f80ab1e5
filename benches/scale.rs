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
const TOTAL: usize = 10_000;
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

fn write_inventory(products: &[&'static ProductGen], path: &Path) -> Layout {
    let mut inv = base_inventory();
    let mut layout = Layout::new();
    let per_product = TOTAL / products.len();
    for p in products {
        let mut items = Vec::with_capacity(per_product);
        for i in 0..per_product {
            let region = REGIONS[i % REGIONS.len()];
            let k = kind(i / REGIONS.len());
            let id = format!("{}-{:05}", &p.code[..2], i);
            items.push((p.make)(&id, region, k));
            let e = layout.entry((p.code, region)).or_default();
            e.0 += 1;
            e.1 += usize::from(if p.code == BSS { k != Kind::Kept } else { k == Kind::Eligible });
        }
        inv.insert(section(p.code).into(), Value::Array(items));
    }
    std::fs::write(path, Value::Object(inv).to_string()).expect("write inventory");
    layout
}

fn policy(products: &[&'static ProductGen]) -> String {
    let codes: Vec<&str> = products.iter().map(|p| p.code).filter(|c| *c != BSS).collect();
    let bss = products.iter().any(|p| p.code == BSS);
    format!(
        "regions: [{}]\nproducts: [{}]\nconcurrency: {{ regions: {REGION_CONCURRENCY}, per_endpoint: {PER_ENDPOINT} }}\n\
         protect:\n  tags: {{ \"janitor:keep\": \"true\" }}\nlimits: {{ max_releases_per_run: {TOTAL}, max_release_percent: 100 }}\n\
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
/// - Redis: `DescribeInstances` pages of 50 (its maximum) + one `DescribeInstanceAttribute` per instance (the
///   release protection flag is only there); the pre-flight re-read is a `DescribeInstanceAttribute` per eligible
///   instance (the flag again); one `DeleteInstance` per instance.
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
    for p in products {
        if p.code == BSS {
            // The query asks for expired (and soon-expiring) subscriptions only: pages of the expired rows.
            let rows: usize = layout.iter().filter(|((c, _), _)| *c == BSS).map(|(_, (_, e))| e).sum();
            let pages = ceil_div(rows, 300).max(1);
            add(BSS, "QueryAvailableInstances", pages);
            scopes.push(ScopeWork { host: aliyun_janitor::aliyun::default_host(BSS, ""), pages, ..Default::default() });
            continue;
        }
        for ((code, region), &(n, e)) in layout.iter().filter(|((c, _), _)| *c == p.code) {
            let mut w = ScopeWork { host: aliyun_janitor::aliyun::default_host(code, region), ..Default::default() };
            match *code {
                "ecs" => {
                    w.pages = ceil_div(n, 100).max(1);
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
                    w.pages = ceil_div(n, 50).max(1);
                    w.reads = n;
                    w.pre = e;
                    add(code, "DescribeInstances", w.pages);
                    add(code, "DescribeInstanceAttribute", n + e);
                    if apply {
                        w.rel = e;
                        w.rel_chain = 1;
                        add(code, "DeleteInstance", e);
                    }
                }
                "alikafka" => {
                    w.pages = 1;
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
    // listing calls at its bound; at most REGION_CONCURRENCY scopes at once.
    let mut hosts: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    for w in &scopes {
        let h = hosts.entry(w.host.as_str()).or_default();
        h.0 += w.pages + w.reads;
        h.1 = h.1.max(w.pages + slots(w.reads));
        h.2 += w.pre + w.rel;
        let chain = slots(w.pre) + if w.rel_chain > 0 { slots(w.rel).max(w.rel_chain) } else { 0 };
        h.3 = h.3.max(chain);
    }
    let by_scopes = ceil_div(scopes.iter().map(|w| w.pages + slots(w.reads)).sum(), REGION_CONCURRENCY);
    let list_rounds = hosts.values().map(|h| slots(h.0).max(h.1)).max().unwrap_or(0).max(by_scopes);
    let release_rounds = hosts.values().map(|h| slots(h.2).max(h.3)).max().unwrap_or(0);
    // The run names its account first (STS GetCallerIdentity): one call, one round, before any listing.
    *calls.entry("sts:GetCallerIdentity".into()).or_default() += 1;
    Floor { calls, time: latency * (1 + list_rounds + release_rounds) as u32 }
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
    cmd.arg("-f").arg("%e %U %S %M").arg("-o").arg(&stats).arg(bin()).arg("run").arg("--policy").arg(policy);
    if apply {
        cmd.arg("--apply");
    }
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JANITOR_ENDPOINT", url)
        .env("JANITOR_NOW", NOW)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
        .env("RUST_LOG", "info")
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
fn start_sim(inventory: &Path) -> aliyun_sim::ThreadServer {
    let opts = aliyun_sim::SimOptions { latency_ms: LATENCY_MS, ..aliyun_sim::SimOptions::default() };
    let sim = aliyun_sim::Sim::from_inventory_file(inventory, opts).expect("the benchmark inventory loads");
    aliyun_sim::ThreadServer::start(sim).expect("the emulator starts")
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
    let inventory = dir.join("inventory.json");
    let layout = write_inventory(&products, &inventory);
    let policy_path = dir.join("policy.yaml");
    std::fs::write(&policy_path, policy(&products)).expect("policy");
    let eligible: usize = layout.iter().filter(|((c, _), _)| *c != BSS).map(|(_, (_, e))| e).sum();
    let billed_expired: usize = layout.iter().filter(|((c, _), _)| *c == BSS).map(|(_, (_, e))| e).sum();
    let scanned: usize = layout.values().map(|(n, _)| n).sum();

    let sim = start_sim(&inventory);
    let dry = run_janitor(&sim.url, &policy_path, false, &dir, "dry-run");
    let apply = run_janitor(&sim.url, &policy_path, true, &dir, "apply");
    drop(sim);
    let dry_floor = floor(&products, &layout, false);
    let apply_floor = floor(&products, &layout, true);

    let binary_size = std::fs::metadata(bin()).map(|m| m.len()).unwrap_or(0);
    let cold = cold_start(&policy_path);

    let codes: Vec<&str> = products.iter().map(|p| p.code).collect();
    let mut out = String::new();
    out.push_str(&format!(
        "Inventory: {scanned} instances ({}) over {} regions, {eligible} eligible; emulator latency {LATENCY_MS} ms per call; \
         concurrency {REGION_CONCURRENCY} scopes listed at once, {PER_ENDPOINT} calls in flight per endpoint. \
         Release binary: `{}` ({}).\n\n",
        codes.join(", "),
        REGIONS.len(),
        bin().strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/")).map(str::to_string).unwrap_or_else(bin),
        if std::env::var_os("JANITOR_BENCH_BINARY").is_some() { "as shipped by `make build`" } else { "built by `cargo bench`" }
    ));
    out.push_str("| figure | dry run | apply run | floor (dry / apply) | target |\n|---|---:|---:|---:|---|\n");
    let total = |m: &Measured| {
        m.summary["api_calls"].as_object().map(|o| o.values().filter_map(Value::as_u64).sum::<u64>()).unwrap_or(0)
    };
    let ftotal = |f: &Floor| f.calls.values().sum::<u64>();
    out.push_str(&format!(
        "| wall time | {} | {} | {} / {} | ≤ 1.25 × floor ({:.2}x / {:.2}x) |\n",
        ms(dry.wall),
        ms(apply.wall),
        ms(dry_floor.time),
        ms(apply_floor.time),
        dry.wall.as_secs_f64() / dry_floor.time.as_secs_f64(),
        apply.wall.as_secs_f64() / apply_floor.time.as_secs_f64()
    ));
    out.push_str(&format!(
        "| API calls | {} | {} | {} / {} | = floor |\n",
        total(&dry),
        total(&apply),
        ftotal(&dry_floor),
        ftotal(&apply_floor)
    ));
    out.push_str(&format!(
        "| peak RSS | {:.1} MB | {:.1} MB | | < 30 MB |\n",
        dry.peak_rss_kb as f64 / 1024.0,
        apply.peak_rss_kb as f64 / 1024.0
    ));
    out.push_str(&format!(
        "| CPU time (user + sys) | {} | {} | | |\n",
        ms(dry.user + dry.sys),
        ms(apply.user + apply.sys)
    ));
    let released = apply.summary["released"].as_array().map(Vec::len).unwrap_or(0);
    let would = dry.summary["would_release"].as_array().map(Vec::len).unwrap_or(0);
    out.push_str(&format!("| instances released / would release | {would} | {released} | {eligible} | = eligible |\n"));
    let manual = |m: &Measured| {
        m.summary["counts"]
            .as_object()
            .map(|c| c.values().filter_map(|v| v["manual"].as_u64()).sum::<u64>())
            .unwrap_or(0)
    };
    out.push_str(&format!(
        "| billing rows reported `manual` (no adapter) | {} | {} | {billed_expired} | = expired rows |\n",
        manual(&dry),
        manual(&apply)
    ));
    out.push_str(&format!("| exit code | {} | {} | | 0 |\n", dry.exit, apply.exit));
    out.push_str(&format!(
        "| cold start (`validate`, median of 21) | {:.1} ms | | | < 20 ms |\n",
        cold.as_secs_f64() * 1000.0
    ));
    out.push_str(&format!(
        "| release binary size | {:.2} MB ({binary_size} bytes) | | | < 10 MB |\n",
        binary_size as f64 / 1e6
    ));
    calls_table(&mut out, "Dry run", &dry, &dry_floor);
    calls_table(&mut out, "Apply run", &apply, &apply_floor);
    println!("{out}");
    std::fs::write(dir.join("report.md"), &out).expect("report");
    println!("report: {}", dir.join("report.md").display());
}

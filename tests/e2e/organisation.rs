//! Issue 15's acceptance: an organisation of 50 member accounts × 4 regions × 100 ECS instances in the emulator
//! (its generators), the member role denied in two accounts, one account over its own limit. The same apply run
//! three ways — the local runner (`aliyun-janitor run --policy`), the shard entry points in Lambda (plan → every
//! run_shard → merge through the Runtime API, each answer chained into the next document as Step Functions
//! chains states) and the same in Function Compute (HTTP `POST /invoke`) — and a dry run. What was released is
//! read from the emulator's call log, account by account, not from the janitor's own summary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

use crate::fc_http::{post, start_fc};
use crate::lambda_runtime::{spawn_function, Harness, Outcome};
use crate::support::runtime::{assert_no_secrets, http_client};
use crate::support::{Env, KEY_ID, NOW, SECRET};

const MASTER: &str = "1234567890123456";
const FIRST: u64 = 3_000_000_000_000_001;
const MEMBERS: u64 = 50;
const REGIONS: usize = 4;
/// The member role cannot be assumed in these two (STS `AssumeRole` answers 403 `NoPermission`).
const DENIED: [&str; 2] = ["3000000000000007", "3000000000000023"];
/// Holds 5 expired instances more than the others: 85 eligible, above the policy's `max_releases_per_run: 80`.
const HELD: &str = "3000000000000042";
const ROLE: &str = "ResourceDirectoryAccountAccessRole";

fn members() -> Vec<String> {
    (0..MEMBERS).map(|n| (FIRST + n).to_string()).collect()
}

fn policy() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/org-acceptance.yaml"))
        .expect("tests/fixtures/org-acceptance.yaml")
}

/// 50 generated members, each with 100 ECS instances per region of which every 5th is expired (sim
/// `generate.rs`: `i-<account>-<region index>-<n>`, n = 5, 10, ..., 100); the management account's own key.
fn inventory() -> Value {
    let extra: Vec<Value> = (1..=5)
        .map(|n| {
            json!({"InstanceId": format!("i-extra-{n}"), "RegionId": "cn-hangzhou", "Status": "Stopped",
                   "InstanceChargeType": "PostPaid", "CreationTime": "2025-01-01T00:00Z",
                   "Tags": {"Tag": [{"TagKey": "expire-at", "TagValue": "2026-01-01"}]}})
        })
        .collect();
    json!({
        "credentials": [{"access_key_id": KEY_ID, "access_key_secret": SECRET, "account_id": MASTER}],
        "now": NOW,
        "sts": {"account_id": MASTER, "member_role": {"name": ROLE, "trusted": [KEY_ID], "deny": DENIED}},
        "resource_directory": {"id": "rd-org015", "master_account_id": MASTER,
                               "generate": {"count": MEMBERS, "first_id": FIRST}},
        "accounts": {HELD: {"ecs": extra}},
        "generate": {"accounts": "all-members", "regions": ["cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen"],
                     "ecs_per_region": 100, "expired_every": 5},
    })
}

/// What the policy must release: every expired instance of the 47 members neither denied nor held.
fn eligible() -> BTreeMap<String, BTreeSet<String>> {
    members()
        .into_iter()
        .filter(|a| !DENIED.contains(&a.as_str()) && a != HELD)
        .map(|a| {
            let ids =
                (0..REGIONS).flat_map(|r| (1..=20).map(move |k| (r, k * 5))).map(|(r, n)| format!("i-{a}-{r}-{n}"));
            let ids = ids.collect();
            (a, ids)
        })
        .collect()
}

/// Successful real `DeleteInstances` ids, by the account the emulator served each call in.
fn released_by_account(env: &Env) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in env.sim.release_calls().into_iter().filter(|c| c.code.is_none()) {
        let account = c.account.clone().unwrap_or_default();
        let ids = c.params.iter().filter(|(k, _)| k.starts_with("InstanceId.")).map(|(_, v)| v.clone());
        out.entry(account).or_default().extend(ids);
    }
    out
}

fn notes(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|n| (n["account_id"].as_str().unwrap_or("").into(), n["reason"].as_str().unwrap_or("").into()))
                .collect()
        })
        .unwrap_or_default()
}

/// The apply run's effects, from the emulator (its calls from the `from`th on), and the merged summary's account
/// of them.
fn check_applied(env: &Env, from: usize, summary: &Value, how: &str) {
    let expected = eligible();
    let released = released_by_account(env);
    assert_eq!(released.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{how}: accounts released in");
    assert!(released == expected, "{how}: the released set is not exactly the eligible one");
    for (account, ids) in &released {
        assert!(ids.iter().all(|id| id.starts_with(&format!("i-{account}-"))), "{how}: {account} released another's");
        let left = env.sim.instance_ids_in(account, "ecs");
        assert_eq!(left.len(), 400 - 80, "{how}: {account}");
    }
    // The two denied accounts: nothing was called in them at all; the held one: no release call, not even a dry run.
    let calls = env.sim.calls().split_off(from);
    for a in DENIED {
        assert!(calls.iter().all(|c| c.account.as_deref() != Some(a)), "{how}: a call acted in denied account {a}");
        assert_eq!(env.sim.instance_ids_in(a, "ecs").len(), 400);
    }
    let in_held: Vec<&str> =
        calls.iter().filter(|c| c.account.as_deref() == Some(HELD)).map(|c| c.action.as_str()).collect();
    assert!(in_held.contains(&"DescribeInstances"), "{how}: the held account was listed: {in_held:?}");
    assert!(!in_held.contains(&"DeleteInstances"), "{how}: a release call in the held account: {in_held:?}");
    assert_eq!(env.sim.instance_ids_in(HELD, "ecs").len(), 405);
    let assumed = calls.iter().filter(|c| c.action == "AssumeRole").count();
    assert!(calls.iter().filter(|c| c.action == "AssumeRole").all(|c| c.account.as_deref() == Some(MASTER)));
    assert_eq!(assumed, MEMBERS as usize, "{how}: one AssumeRole per member");

    // One merged summary: organisation totals and a section per account.
    assert_eq!(summary["mode"], "apply", "{how}");
    assert_eq!(summary["planned_by"], MASTER, "{how}");
    assert_eq!(summary["accounts_planned"], MEMBERS, "{how}");
    assert_eq!(summary["accounts_ran"], MEMBERS - 2, "{how}");
    assert_eq!(summary["totals"]["released"], 47 * 80, "{how}: {}", summary["totals"]);
    assert_eq!(summary["totals"]["held"], 85, "{how}: {}", summary["totals"]);
    let skipped = notes(&summary["accounts_skipped"]);
    assert_eq!(skipped.keys().map(String::as_str).collect::<Vec<_>>(), DENIED, "{how}");
    assert!(skipped.values().all(|r| r.contains("NoPermission")), "{how}: {skipped:?}");
    let held = notes(&summary["accounts_held"]);
    assert_eq!(held.keys().map(String::as_str).collect::<Vec<_>>(), [HELD], "{how}");
    assert!(held[HELD].contains("85 instances eligible, above max_releases_per_run 80"), "{how}: {held:?}");
    let sections = summary["accounts"].as_array().expect("accounts");
    assert_eq!(sections.len(), MEMBERS as usize, "{how}");
    let section = |a: &str| sections.iter().find(|s| s["account_id"] == a).cloned().unwrap_or(Value::Null);
    assert_eq!(section(&(FIRST.to_string()))["counts"]["released"], 80, "{how}");
    assert_eq!(section(DENIED[0])["status"], "skipped", "{how}");
    assert_eq!(section(HELD)["counts"]["held"], 85, "{how}");
    assert_eq!(summary["degraded"], true, "{how}: skipped accounts make the run incomplete");
    assert_no_secrets(how, &summary.to_string());
    assert!(!summary.to_string().contains(SECRET), "{how}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_runner_dry_run_then_apply() {
    let env = Env::start(&inventory()).await;

    let dry = env.run(&policy(), &[]).await;
    assert_eq!(dry.code, 3, "degraded (two accounts skipped)\n{}", dry.stderr);
    assert_eq!(dry.summary["mode"], "dry-run", "{}", dry.stdout);
    assert_eq!(dry.summary["totals"]["would_release"], 47 * 80, "{}", dry.summary["totals"]);
    assert!(dry.summary["totals"].get("released").is_none(), "{}", dry.summary["totals"]);
    assert!(env.sim.release_calls().is_empty(), "a dry run makes no real release call");
    assert!(members().iter().all(|a| env.sim.instance_ids_in(a, "ecs").len() >= 400));
    let dry_runs = env.calls_to("2014-05-26", "DeleteInstances");
    assert!(!dry_runs.is_empty() && dry_runs.iter().all(|c| c.dry_run));
    assert!(dry_runs.iter().all(|c| c.account.as_deref() != Some(HELD)), "the held account is not even dry-run");

    let before = env.sim.calls().len();
    let apply = env.run(&policy(), &["--apply"]).await;
    assert_eq!(apply.code, 3, "{}", apply.stderr);
    assert!(env.sim.calls().len() > before);
    check_applied(&env, before, &apply.summary, "local runner");
    assert_no_secrets("stderr", &apply.stderr);
    assert!(!apply.stderr.contains("panicked"), "{}", apply.stderr);
}

/// Every step document stays within Step Functions' 256 KiB state payload.
fn within_limits(doc: &Value) {
    let n = doc.to_string().len();
    assert!(n < aliyun_janitor::org::contract::STEP_FUNCTIONS_PAYLOAD_LIMIT, "{n} bytes");
}

/// The documents Step Functions passes: the plan's answer, one `run_shard` per shard (the Map's ItemSelector),
/// then `merge` with every shard's answer. `invoke` is one invocation of the function with a document.
async fn chain_steps<F, Fut>(mut invoke: F) -> Value
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let plan = invoke(json!({"janitor_step": "plan"})).await;
    within_limits(&plan);
    let shards = plan["shards"].as_array().cloned().unwrap_or_default();
    assert_eq!(shards.len(), 5, "50 accounts, at most 10 a shard: {plan}");
    let mut results = Vec::new();
    for shard in shards {
        let doc =
            json!({"janitor_step": "run_shard", "org_run_id": plan["org_run_id"], "now": plan["now"], "shard": shard});
        within_limits(&doc);
        let result = invoke(doc).await;
        assert_eq!(result["shard_id"], shard["id"], "{result}");
        within_limits(&result);
        results.push(result);
    }
    let merge = json!({"janitor_step": "merge", "org_run_id": plan["org_run_id"], "now": plan["now"],
                       "plan": plan["summary"], "results": results});
    within_limits(&merge);
    let summary = invoke(merge).await;
    within_limits(&summary);
    assert_eq!(summary["org_run_id"], plan["org_run_id"]);
    summary
}

fn function_env(env: &Env, policy: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("JANITOR_POLICY", policy.display().to_string()),
        ("JANITOR_ENDPOINT", env.url.clone()),
        ("JANITOR_NOW", NOW.into()),
        ("JANITOR_APPLY", "true".into()),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID.into()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET.into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_shard_entry_points_chained_as_step_functions_would() {
    let env = Env::start(&inventory()).await;
    let policy = env.write("org.yaml", &policy());
    let harness = Harness::start().await;
    let mut function = spawn_function(&harness, &function_env(&env, &policy));
    let harness = std::sync::Arc::new(tokio::sync::Mutex::new(harness));
    let summary = chain_steps(|doc| {
        let harness = harness.clone();
        async move {
            match harness.lock().await.invoke(doc.to_string().as_bytes()).await {
                Outcome::Response { body, .. } => body,
                other => panic!("step {}: {other:?}", doc["janitor_step"]),
            }
        }
    })
    .await;
    check_applied(&env, 0, &summary, "lambda");
    function.kill_and_collect();
    assert_no_secrets("lambda stderr", &function.stderr());
    assert!(!function.stderr().contains("panicked"), "{}", function.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc_shard_entry_points_over_http() {
    let env = Env::start(&inventory()).await;
    let policy = env.write("org.yaml", &policy());
    let mut fc = start_fc(&function_env(&env, &policy));
    let client = http_client();
    let url = format!("{}/invoke", fc.base);
    let mut n = 0;
    let summary = chain_steps(|doc| {
        n += 1;
        let (client, url, rid) = (client.clone(), url.clone(), format!("org-{n}"));
        async move {
            let a = post(&client, &url, doc.to_string().as_bytes(), &[("x-fc-request-id", rid.as_str())]).await;
            assert_eq!(a.status, 200, "step {}: {}", doc["janitor_step"], a.body);
            a.body
        }
    })
    .await;
    check_applied(&env, 0, &summary, "fc");
    fc.proc.kill_and_collect();
    assert_no_secrets("fc stderr", &fc.proc.stderr());
    assert!(!fc.proc.stderr().contains("panicked"), "{}", fc.proc.stderr());
}

/// The README's sample organisation policy is valid, and means what its comments say.
#[test]
fn the_example_organisation_policy_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org-policy.yaml");
    let out = std::process::Command::new(crate::support::BIN)
        .arg("validate")
        .arg("--policy")
        .arg(&path)
        .env_clear()
        .output()
        .expect("validate runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).expect("examples/org-policy.yaml");
    let policy = aliyun_janitor::policy::Policy::from_yaml(&text, "org-policy.yaml").expect("parses");
    let accounts = policy.accounts.expect("an accounts: section");
    use aliyun_janitor::policy::accounts::AccountSource;
    assert_eq!(accounts.source, AccountSource::ResourceDirectory { folder: None });
    assert_eq!(accounts.role.arn_for("42"), format!("acs:ram::42:role/{ROLE}"));
    assert_eq!((accounts.max_releases_total, accounts.concurrency), (Some(200), 8));
    assert!(!policy.apply, "the sample is a dry run");
}

/// `max_releases_total` under concurrency: six members of 5 eligible instances each, a cap of 12, all six accounts
/// of the one shard running at once. Equal shares (2 each) hold every account at first; then, in shard order, the
/// first two run again with what is left (12, then 7) and release theirs; 2 left cannot cover a third. Never
/// more than the cap, and the same accounts every time, whichever finished first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organisation_cap_binds_without_overshoot_under_concurrency() {
    let inventory = json!({
        "credentials": [{"access_key_id": KEY_ID, "access_key_secret": SECRET, "account_id": MASTER}],
        "now": NOW,
        "sts": {"account_id": MASTER, "member_role": {"name": ROLE, "trusted": [KEY_ID]}},
        "resource_directory": {"id": "rd-cap001", "master_account_id": MASTER,
                               "generate": {"count": 6, "first_id": FIRST}},
        "generate": {"accounts": "all-members", "regions": ["cn-hangzhou"], "ecs_per_region": 10, "expired_every": 2},
    });
    let policy = "regions: [cn-hangzhou]\nproducts: [ecs]\n\
                  accounts: { discovery: resource-directory, max_releases_total: 12, concurrency: 6 }\n\
                  limits: { max_releases_per_run: 10, max_release_percent: 100 }\n\
                  rules:\n  - name: expired\n    filters: { expire_at_tag: expire-at }\n    grace: 0\n";
    let env = Env::start(&inventory).await;
    let run = env.run(policy, &["--apply"]).await;
    assert_eq!(run.code, 3, "held accounts make the run degraded\n{}\n{}", run.stdout, run.stderr);
    let released = released_by_account(&env);
    let first_two: Vec<String> = (0..2).map(|n| (FIRST + n).to_string()).collect();
    assert_eq!(released.keys().cloned().collect::<Vec<_>>(), first_two, "{released:?}");
    assert!(released.values().all(|ids| ids.len() == 5));
    assert_eq!(run.summary["totals"]["released"], 10, "{}", run.summary["totals"]);
    let held = notes(&run.summary["accounts_held"]);
    assert_eq!(held.len(), 4, "{held:?}");
    assert!(held.values().all(|r| r.contains("above max_releases_per_run 2")), "{held:?}");
}

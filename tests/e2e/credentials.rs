//! Issue 14: the run finds its credentials where users already have them — the official default chain, in its
//! order — acts through an STS role when asked, refreshes temporary credentials during a long run, and names
//! (and, when pinned, checks) the account before anything is listed.

use crate::support::runtime::str_list;
use crate::support::*;
use serde_json::{json, Value};

const ACCOUNT: &str = "1234567890123456";
const OTHER_ACCOUNT: &str = "2234567890123456";
const ROLE: &str = "acs:ram::2234567890123456:role/aliyun-janitor";
const OIDC_PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1";
const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.test-oidc-token-3e9f";
/// A second access key the emulator knows, kept only in files (never in the environment).
const FILE_KEY_ID: &str = "file-access-key";
const FILE_SECRET: &str = "file-secret-Pq7x2nC";
const ECS_ROLE: &str = "aliyun-janitor-ecs";

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [ecs]
limits: { max_release_percent: 100 }
rules:
  - name: expired
    grace: 0
    filters: { expire_at_tag: expire-at }
"#;

fn inventory(lifetime_secs: Option<u64>) -> Value {
    let mut inv = base_inventory(lifetime_secs);
    // The role's account (the emulator serves each account its own instances) holds the same two.
    inv["accounts"] = json!({OTHER_ACCOUNT: {"ecs": inv["ecs"].clone()}});
    inv
}

fn base_inventory(lifetime_secs: Option<u64>) -> Value {
    json!({
        "credentials": [
            {"access_key_id": KEY_ID, "access_key_secret": SECRET},
            {"access_key_id": FILE_KEY_ID, "access_key_secret": FILE_SECRET},
        ],
        "now": NOW,
        "ecs": [
            ecs("i-expired", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01")]),
            ecs("i-keep", "cn-hangzhou", "Running", "PostPaid", &[]),
        ],
        "sts": {
            "account_id": ACCOUNT,
            "credential_lifetime_secs": lifetime_secs,
            "roles": [{
                "arn": ROLE, "trusted": [KEY_ID, FILE_KEY_ID], "max_session_duration": 3600,
                "oidc_provider_arn": OIDC_PROVIDER, "oidc_token": OIDC_TOKEN,
            }],
            "ecs_role": {"name": ECS_ROLE, "account_id": ACCOUNT, "require_token": true},
        },
    })
}

/// A run with only `env` (plus the test's endpoint, clock and mark key): no access key in the environment
/// unless `env` puts one there.
async fn run_only(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut all: Vec<(&str, &str)> = vec![("ALIBABA_CLOUD_ACCESS_KEY_ID", "")];
    all.extend_from_slice(vars);
    env.run_with_env(POLICY, args, &all).await
}

fn home(env: &Env, files: &[(&str, String)]) -> String {
    let home = env.dir.join(format!("home-{}", uuid::Uuid::new_v4()));
    for (rel, text) in files {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::create_dir_all(&home).unwrap();
    home.display().to_string()
}

fn cli_config(profiles: Value, current: &str) -> String {
    json!({"current": current, "profiles": profiles}).to_string()
}

fn ak_profile(name: &str, id: &str, secret: &str) -> Value {
    json!({"name": name, "mode": "AK", "access_key_id": id, "access_key_secret": secret, "region_id": "cn-hangzhou"})
}

fn ini_default(id: &str, secret: &str) -> String {
    format!("[default]\ntype = access_key\naccess_key_id = {id}\naccess_key_secret = {secret}\n")
}

/// The run worked, acted in `account`, and neither secret nor any issued token reached its output.
fn assert_ran_as(env: &Env, run: &Run, account: &str) {
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary["account_id"], account, "{:#}", run.summary);
    assert_eq!(str_list(&run.summary["would_release"]), ["ecs:cn-hangzhou/i-expired"], "{:#}", run.summary);
    for line in run.stderr.lines().filter(|l| l.contains("\"target\":\"decision\"")) {
        assert!(line.contains(&format!("\"account_id\":\"{account}\"")), "a decision line without the account: {line}");
    }
    assert_no_leak(env, run);
}

fn assert_no_leak(env: &Env, run: &Run) {
    let mut secrets = vec![SECRET.to_string(), FILE_SECRET.to_string(), OIDC_TOKEN.to_string()];
    secrets.extend(env.sim.issued_secrets());
    for s in secrets {
        assert!(
            !run.stdout.contains(&s) && !run.stderr.contains(&s),
            "a secret leaked:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[tokio::test]
async fn every_source_of_the_default_chain_signs_a_run() {
    let env = Env::start(&inventory(None)).await;
    let token_file = env.write("oidc-token", OIDC_TOKEN);
    let profile =
        home(&env, &[(".aliyun/config.json", cli_config(json!([ak_profile("dev", FILE_KEY_ID, FILE_SECRET)]), "dev"))]);
    let ini = home(&env, &[(".alibabacloud/credentials", ini_default(FILE_KEY_ID, FILE_SECRET))]);
    let uri = format!("{}/_sim/credentials-uri", env.url);
    let token_path = token_file.display().to_string();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "environment",
            vec![("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)],
            ACCOUNT,
        ),
        (
            "OIDC / RRSA",
            vec![
                ("ALIBABA_CLOUD_ROLE_ARN", ROLE),
                ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER),
                ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", &token_path),
            ],
            OTHER_ACCOUNT,
        ),
        ("aliyun CLI profile", vec![("HOME", &profile)], ACCOUNT),
        ("credentials file", vec![("HOME", &ini)], ACCOUNT),
        (
            "ECS instance role",
            vec![("JANITOR_ECS_METADATA_ENDPOINT", &env.url), ("ALIBABA_CLOUD_IMDSV1_DISABLED", "true")],
            ACCOUNT,
        ),
        ("credentials URI", vec![("ALIBABA_CLOUD_CREDENTIALS_URI", &uri)], ACCOUNT),
    ];
    for (source, vars, account) in cases {
        let run = run_only(&env, &[], &vars).await;
        assert_ran_as(&env, &run, account);
        let banner = run.stderr.lines().find(|l| l.contains("run starting")).unwrap_or_default();
        assert!(banner.contains(account), "{source}: the banner names the account: {banner}");
    }
}

#[tokio::test]
async fn the_chain_keeps_its_official_order() {
    let env = Env::start(&inventory(None)).await;
    // Every file holds a key the emulator refuses: only the earlier source can make the run work.
    let refused_cli = cli_config(json!([ak_profile("dev", "refused-key", "refused-secret")]), "dev");
    let refused_ini = ini_default("refused-key", "refused-secret");
    let both = home(&env, &[(".aliyun/config.json", refused_cli.clone()), (".alibabacloud/credentials", refused_ini)]);
    let env_first = run_only(
        &env,
        &[],
        &[("HOME", &both), ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)],
    )
    .await;
    assert_ran_as(&env, &env_first, ACCOUNT);

    let cli_first = home(
        &env,
        &[
            (".aliyun/config.json", cli_config(json!([ak_profile("dev", FILE_KEY_ID, FILE_SECRET)]), "dev")),
            (".alibabacloud/credentials", ini_default("refused-key", "refused-secret")),
        ],
    );
    assert_ran_as(&env, &run_only(&env, &[], &[("HOME", &cli_first)]).await, ACCOUNT);

    // --profile picks a profile other than the current one (and ALIBABA_CLOUD_PROFILE does the same).
    let two = home(
        &env,
        &[(
            ".aliyun/config.json",
            cli_config(
                json!([
                    ak_profile("dev", "refused-key", "refused-secret"),
                    ak_profile("ops", FILE_KEY_ID, FILE_SECRET)
                ]),
                "dev",
            ),
        )],
    );
    assert_ran_as(&env, &run_only(&env, &["--profile", "ops"], &[("HOME", &two)]).await, ACCOUNT);
    assert_ran_as(&env, &run_only(&env, &[], &[("HOME", &two), ("ALIBABA_CLOUD_PROFILE", "ops")]).await, ACCOUNT);
    let refused = run_only(&env, &[], &[("HOME", &two)]).await;
    assert_ne!(refused.code, 0, "the current profile holds a refused key");
}

#[tokio::test]
async fn a_role_is_assumed_from_any_base_identity() {
    let env = Env::start(&inventory(None)).await;
    // A RamRoleArn profile: its own access key, then the role.
    let role_profile = json!({"name": "role", "mode": "RamRoleArn", "access_key_id": FILE_KEY_ID,
        "access_key_secret": FILE_SECRET, "ram_role_arn": ROLE, "ram_session_name": "nightly"});
    let h = home(&env, &[(".aliyun/config.json", cli_config(json!([role_profile]), "role"))]);
    let run = run_only(&env, &[], &[("HOME", &h)]).await;
    assert_ran_as(&env, &run, OTHER_ACCOUNT);
    let assumed = env.calls_to("2015-04-01", "AssumeRole");
    assert!(
        assumed.iter().any(|c| c.params.get("RoleSessionName").map(String::as_str) == Some("nightly")),
        "{assumed:?}"
    );

    // `--role-arn` (and `role_arn:` in the policy) on top of environment credentials; the session name defaults.
    let before = env.calls_to("2015-04-01", "AssumeRole").len();
    let run = env.run(POLICY, &["--role-arn", ROLE]).await;
    assert_ran_as(&env, &run, OTHER_ACCOUNT);
    let calls = env.calls_to("2015-04-01", "AssumeRole");
    assert_eq!(calls.len(), before + 1, "one AssumeRole for the whole run");
    assert_eq!(calls[before].params.get("RoleSessionName").map(String::as_str), Some("aliyun-janitor"));
    let in_policy = format!("role_arn: {ROLE}\n{POLICY}");
    let run = env.run(&in_policy, &[]).await;
    assert_ran_as(&env, &run, OTHER_ACCOUNT);

    // A role the identity may not assume: the run stops before listing, naming the role, exit 1.
    let listings = env.calls_to("2014-05-26", "DescribeInstances").len();
    let run = env.run(POLICY, &["--role-arn", "acs:ram::2234567890123456:role/not-trusted"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not-trusted"), "{}", run.stderr);
    assert_eq!(env.calls_to("2014-05-26", "DescribeInstances").len(), listings, "nothing listed");
    assert_no_leak(&env, &run);
}

#[tokio::test]
async fn temporary_credentials_that_expire_mid_run_are_refreshed() {
    // Every issued credential lives 2 s; each call takes 500 ms and the run makes about ten in a row.
    let mut inv = inventory(Some(2));
    let many: Vec<Value> = (0..400)
        .map(|i| ecs(&format!("i-{i:04}"), "cn-hangzhou", "Running", "PostPaid", &[]))
        .chain([ecs("i-expired", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-01-01")])])
        .collect();
    inv["ecs"] = Value::Array(many.clone());
    inv["accounts"] = json!({OTHER_ACCOUNT: {"ecs": many}});
    let env = Env::start_with(&inv, aliyun_sim::SimOptions { latency_ms: 500, ..Default::default() }).await;
    let started = std::time::Instant::now();
    let run = env.run(POLICY, &["--role-arn", ROLE]).await;
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(str_list(&run.summary["would_release"]), ["ecs:cn-hangzhou/i-expired"]);
    assert!(took > std::time::Duration::from_secs(3), "the run must outlive one credential: {took:?}");
    let expired =
        env.sim.calls().into_iter().filter(|c| c.code.as_deref().is_some_and(|c| c.contains("Expired"))).count();
    assert_eq!(expired, 0, "no call was signed with an expired token");
    assert!(env.calls_to("2015-04-01", "AssumeRole").len() >= 2, "refreshed during the run");
    assert!(run.stderr.contains("credentials refreshed"), "{}", run.stderr);
    assert_no_leak(&env, &run);
}

#[tokio::test]
async fn a_pinned_account_refuses_a_run_in_any_other() {
    let env = Env::start(&inventory(None)).await;
    let pinned = format!("account_id: \"{OTHER_ACCOUNT}\"\n{POLICY}");
    let run = env.run(&pinned, &["--apply"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(OTHER_ACCOUNT) && run.stderr.contains(ACCOUNT), "{}", run.stderr);
    let calls: Vec<String> = env.sim.calls().into_iter().map(|c| c.action).collect();
    assert_eq!(calls, ["GetCallerIdentity"], "nothing but the identity may be read");
    // The same pin through the environment; and the right pin runs.
    let run = env
        .run_with_env(
            POLICY,
            &[],
            &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET), ("JANITOR_ACCOUNT_ID", OTHER_ACCOUNT)],
        )
        .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = env.run(&format!("account_id: \"{ACCOUNT}\"\n{POLICY}"), &[]).await;
    assert_ran_as(&env, &run, ACCOUNT);
}

#[tokio::test]
async fn no_credentials_anywhere_is_one_clear_error_and_no_call() {
    let env = Env::start(&inventory(None)).await;
    let empty_home = home(&env, &[]);
    let run = run_only(&env, &[], &[("HOME", &empty_home)]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    for why in [
        "ALIBABA_CLOUD_ACCESS_KEY_ID not set",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE not set",
        ".aliyun/config.json: not found",
        ".alibabacloud/credentials: not found",
        "metadata service unreachable",
        "ALIBABA_CLOUD_CREDENTIALS_URI not set",
    ] {
        assert!(run.stderr.contains(why), "`{why}` missing:\n{}", run.stderr);
    }
    assert!(env.sim.calls().is_empty(), "no API call without credentials");

    // A malformed config file names the file and the field, and stops the chain (no fall-through).
    let bad = home(
        &env,
        &[
            (
                ".aliyun/config.json",
                r#"{"current": "dev", "profiles": [{"name": "dev", "mode": "AK", "access_key_id": "x"}]}"#.into(),
            ),
            (".alibabacloud/credentials", ini_default(FILE_KEY_ID, FILE_SECRET)),
        ],
    );
    let run = run_only(&env, &[], &[("HOME", &bad)]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(".aliyun/config.json: profiles[0].access_key_secret"), "{}", run.stderr);
    assert!(env.sim.calls().is_empty());
}

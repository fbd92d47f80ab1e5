//! A Resource Directory over loopback HTTP, driven as a production client drives the real one: the management
//! account pages `ListAccounts` by `PageNumber` until a short page (the Terraform provider's
//! `data_source_alicloud_resource_manager_accounts.go`), assumes each member's access role through STS and lists
//! every region's ECS instances with that member's credential. Requests are signed by hand with the emulator's own
//! signer, the SDK way (every parameter in the query, `POST`); no janitor code.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aliyun_sim::signature as sign;
use aliyun_sim::{self as sim, CallRecord, Sim, SimOptions};
use chrono::Utc;
use serde_json::Value;

const KEY: &str = "LTAI5tSimOrgMasterKey";
const SECRET: &str = "sim-org-master-secret";
const MASTER: &str = "1234567890123456";
const ROLE: &str = "ResourceDirectoryAccountAccessRole";
const FIRST: u64 = 3_000_000_000_000_001;
const ACCOUNTS: u64 = 50;
const REGIONS: [&str; 4] = ["cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen"];
const DENIED: &str = "3000000000000007";

/// 50 generated members × 4 regions × 100 ECS instances (20,000), every 5th expired; the member role is denied in
/// one account; the management account has two instances of its own.
fn inventory() -> String {
    let regions: Vec<String> = REGIONS.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        r#"{{
        "credentials": [{{"access_key_id": "{KEY}", "access_key_secret": "{SECRET}", "user_name": "janitor"}}],
        "sts": {{"member_role": {{"name": "{ROLE}", "trusted": ["{KEY}"], "deny": ["{DENIED}"]}}}},
        "resource_directory": {{"id": "rd-org001", "master_account_id": "{MASTER}",
                                "generate": {{"count": {ACCOUNTS}, "first_id": {FIRST}}}}},
        "ecs": [{{"InstanceId": "i-master-1", "RegionId": "cn-hangzhou", "Status": "Stopped", "InstanceChargeType": "PostPaid"}},
                {{"InstanceId": "i-master-2", "RegionId": "cn-hangzhou", "Status": "Running", "InstanceChargeType": "PostPaid"}}],
        "generate": {{"accounts": "all-members", "regions": [{}], "ecs_per_region": 100, "expired_every": 5}}
    }}"#,
        regions.join(", ")
    )
}

#[derive(Clone, Debug)]
struct Key {
    id: String,
    secret: String,
    token: Option<String>,
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn call(
    client: &reqwest::Client,
    url: &str,
    key: &Key,
    version: &str,
    action: &str,
    api: &[(&str, &str)],
) -> (u16, Value) {
    let nonce = uuid::Uuid::new_v4().to_string();
    let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut q: BTreeMap<String, String> = [
        ("Version", version),
        ("Action", action),
        ("Format", "JSON"),
        ("Timestamp", stamp.as_str()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce.as_str()),
        ("AccessKeyId", key.id.as_str()),
    ]
    .iter()
    .chain(api)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(t) = &key.token {
        q.insert("SecurityToken".into(), t.clone());
    }
    q.insert("Signature".into(), sign::signature("POST", &q, &key.secret));
    let query = q
        .iter()
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let resp = client.post(format!("{url}/?{query}")).send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

fn master() -> Key {
    Key { id: KEY.into(), secret: SECRET.into(), token: None }
}

/// Every member, paged as the Terraform provider pages (PageSize, then PageNumber + 1 until a short page).
async fn list_members(client: &reqwest::Client, url: &str, key: &Key, page_size: usize) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let (status, v) = call(
            client,
            url,
            key,
            "2020-03-31",
            "ListAccounts",
            &[("PageNumber", &page.to_string()), ("PageSize", &page_size.to_string())],
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["TotalCount"], ACCOUNTS);
        let items = v["Accounts"]["Account"].as_array().expect("Accounts.Account").clone();
        let short = items.len() < page_size;
        all.extend(items);
        if short {
            break;
        }
    }
    all
}

#[tokio::test]
async fn the_management_account_walks_every_member_and_sees_only_each_ones_instances() {
    let started = Instant::now();
    let sim = Sim::from_inventory_json(&inventory(), SimOptions::default()).expect("inventory loads");
    let loaded = started.elapsed();
    let url = sim::spawn(sim.clone()).await.expect("emulator starts");
    let client = http();

    let members = list_members(&client, &url, &master(), 7).await;
    assert_eq!(members.len(), ACCOUNTS as usize);
    assert_eq!(list_members(&client, &url, &master(), 100).await, members);
    let first = &members[0];
    assert_eq!(first["AccountId"], FIRST.to_string());
    assert_eq!(first["DisplayName"], "member-1");
    assert_eq!((first["Status"].as_str(), first["Type"].as_str()), (Some("CreateSuccess"), Some("ResourceAccount")));
    assert_eq!(first["ResourceDirectoryId"], "rd-org001");

    let started = Instant::now();
    let mut expired_seen: BTreeSet<String> = BTreeSet::new();
    for m in &members {
        let account = m["AccountId"].as_str().unwrap();
        let arn = format!("acs:ram::{account}:role/{ROLE}");
        let (status, v) = call(
            &client,
            &url,
            &master(),
            "2015-04-01",
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "janitor")],
        )
        .await;
        if account == DENIED {
            assert_eq!((status, v["Code"].as_str()), (403, Some("NoPermission")), "{v}");
            continue;
        }
        assert_eq!(status, 200, "{v}");
        let c = &v["Credentials"];
        let key = Key {
            id: c["AccessKeyId"].as_str().unwrap().into(),
            secret: c["AccessKeySecret"].as_str().unwrap().into(),
            token: c["SecurityToken"].as_str().map(str::to_string),
        };
        // A member's session may not list the directory.
        let (status, v) = call(&client, &url, &key, "2020-03-31", "ListAccounts", &[]).await;
        assert_eq!((status, v["Code"].as_str()), (404, Some("EntityNotExists.ResourceDirectory")));
        for region in REGIONS {
            let mut token = String::new();
            let mut ids = Vec::new();
            loop {
                let mut api = vec![("RegionId", region), ("MaxResults", "100")];
                if !token.is_empty() {
                    api.push(("NextToken", token.as_str()));
                }
                let (status, v) = call(&client, &url, &key, "2014-05-26", "DescribeInstances", &api).await;
                assert_eq!(status, 200, "{v}");
                for i in v["Instances"]["Instance"].as_array().unwrap() {
                    let id = i["InstanceId"].as_str().unwrap().to_string();
                    assert!(id.starts_with(&format!("i-{account}-")), "{id} listed in {account}");
                    if i["Status"] == "Stopped" && i["Tags"]["Tag"][0]["TagKey"] == "expire-at" {
                        expired_seen.insert(id.clone());
                    }
                    ids.push(id);
                }
                token = v["NextToken"].as_str().unwrap_or_default().to_string();
                if token.is_empty() {
                    break;
                }
            }
            assert_eq!(ids.len(), 100, "{account} {region}");
        }
    }
    let walked = started.elapsed();
    // The eligible set the generator documents: n = 5, 10, ..., 100 in every member (but the denied one) and region.
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for a in (0..ACCOUNTS).map(|n| (FIRST + n).to_string()).filter(|a| a != DENIED) {
        for r in 0..REGIONS.len() {
            expected.extend((1..=20).map(|k| format!("i-{a}-{r}-{}", k * 5)));
        }
    }
    assert_eq!(expired_seen, expected);

    // The management account's own key sees its own two instances only.
    let (_, v) =
        call(&client, &url, &master(), "2014-05-26", "DescribeInstances", &[("RegionId", "cn-hangzhou")]).await;
    assert_eq!(v["TotalCount"], 2);

    // The call log names the account each call acted in; /_sim/instances shows every account.
    let log = client.get(format!("{url}/_sim/calls")).send().await.unwrap().text().await.unwrap();
    let calls: Vec<CallRecord> = serde_json::from_str(&log).unwrap();
    let in_first: Vec<&CallRecord> =
        calls.iter().filter(|c| c.account.as_deref() == Some("3000000000000001")).collect();
    assert!(in_first.iter().any(|c| c.action == "DescribeInstances"));
    assert!(calls.iter().filter(|c| c.action == "AssumeRole").all(|c| c.account.as_deref() == Some(MASTER)));
    let snapshot: Value = client.get(format!("{url}/_sim/instances")).send().await.unwrap().json().await.unwrap();
    assert_eq!(snapshot["ecs"].as_array().unwrap().len(), 2);
    assert_eq!(snapshot["accounts"]["3000000000000050"]["ecs"].as_array().unwrap().len(), 400);
    assert_eq!(sim.instance_ids_in("3000000000000050", "ecs").len(), 400);
    eprintln!("20,000 instances in 50 accounts: loaded in {loaded:?}, walked over HTTP in {walked:?}");
}

//! Issue 16 item 2: per-instance detail reads only where they can change the outcome. Redis's listing has every
//! fact a rule tests but the release protection (reference 3.2), so `DescribeInstanceAttribute` is read for the
//! instances a rule can still match, and again for the pre-flight of each release; never for the rest.

use crate::support::*;
use serde_json::{json, Value};

const V: &str = "2015-01-01";

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [r-kvstore]
protect:
  tags: { "janitor:keep": "true" }
limits: { max_releases_per_run: 10, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
"#;

fn redis(id: &str, expire: &str, protected: bool, keep_tag: bool) -> Value {
    let mut tags = vec![json!({"Key": "expire-at", "Value": expire})];
    if keep_tag {
        tags.push(json!({"Key": "janitor:keep", "Value": "true"}));
    }
    json!({
        "InstanceId": id, "InstanceName": format!("name-{id}"), "RegionId": "cn-hangzhou", "InstanceStatus": "Normal",
        "ChargeType": "PostPaid", "CreateTime": "2026-10-01T00:00:00Z", "InstanceType": "Redis",
        "InstanceReleaseProtection": protected, "Tags": {"Tag": tags},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn only_instances_a_rule_can_match_have_their_details_read() {
    let mut items = vec![
        redis("r-eligible", "2026-11-01", false, false),
        redis("r-flagged", "2026-11-01", true, false),
        redis("r-tagged", "2026-11-01", false, true),
    ];
    items.extend((0..20).map(|i| redis(&format!("r-kept-{i:02}"), "2027-06-01", i % 2 == 0, false)));
    let env = Env::start(&inventory_with(json!({ "r-kvstore": items }))).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.outcome("r-eligible"), "released");
    // The flag is only in the attribute read: a candidate's is read, and it protects.
    assert_eq!(run.outcome("r-flagged"), "protected");
    assert_eq!(run.outcome("r-tagged"), "protected");
    assert_eq!(run.outcome("r-kept-00"), "kept");
    let mut read: Vec<String> = env
        .calls_to(V, "DescribeInstanceAttribute")
        .iter()
        .filter_map(|c| c.params.get("InstanceId").cloned())
        .collect();
    read.sort();
    // r-eligible and r-flagged once each as candidates, r-eligible again for its pre-flight.
    assert_eq!(read, ["r-eligible", "r-eligible", "r-flagged"], "{read:?}");
    assert_eq!(env.calls_to(V, "DescribeInstances").len(), 1);
}

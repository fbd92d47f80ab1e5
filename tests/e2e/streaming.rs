//! Issue 16 item 3: decisions are streamed. Above `EntriesMode::AUTO_ALL_UP_TO` instances the summary holds only
//! the entries that changed something or need a person; its counts, and the decision log lines, cover every
//! instance. `--all-entries` (or `JANITOR_SUMMARY_ENTRIES=all`) keeps every entry.

use crate::support::*;
use serde_json::Value;

const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [ecs]
protect:
  tags: { "janitor:keep": "true" }
limits: { max_releases_per_run: 100, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
"#;

fn fleet() -> Value {
    let mut items = vec![
        ecs("i-old", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01")]),
        ecs("i-bad-date", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "soon")]),
        ecs("i-keep", "cn-hangzhou", "Stopped", "PostPaid", &[("expire-at", "2026-11-01"), ("janitor:keep", "true")]),
    ];
    items.extend((0..1_200).map(|i| ecs(&format!("i-k{i:04}"), "cn-hangzhou", "Stopped", "PostPaid", &[])));
    inventory(items)
}

fn decision_lines(run: &Run) -> usize {
    run.stderr.lines().filter(|l| l.contains(r#""target":"decision""#)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_run_holds_only_the_entries_that_matter_and_counts_the_rest() {
    let env = Env::start(&fleet()).await;
    let run = env.run(POLICY, &["--apply"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let entries = run.summary["entries"].as_array().cloned().unwrap_or_default();
    let mut ids: Vec<&str> = entries.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["i-bad-date", "i-old"], "released and invalid only");
    let counts = &run.summary["counts"]["ecs/cn-hangzhou"];
    assert_eq!(counts["kept"], 1_200);
    assert_eq!(counts["protected"], 1);
    assert_eq!(counts["released"], 1);
    assert_eq!(counts["invalid"], 1);
    assert_eq!(run.summary["scanned"], 1_203);
    assert_eq!(run.ids("released"), ["i-old"]);
    assert_eq!(decision_lines(&run), 1_203, "every decision is logged");

    let all = env.run(POLICY, &["--all-entries"]).await;
    assert_eq!(all.summary["entries"].as_array().map(Vec::len), Some(1_202), "{}", all.stderr);
    assert_eq!(all.outcome("i-keep"), "protected");
}

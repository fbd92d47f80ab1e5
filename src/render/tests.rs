use super::table::wrap;
use super::*;

fn demo() -> Stored {
    Stored::from_json(include_bytes!("../../tests/fixtures/demo-summary.json")).expect("the demo summary reads back")
}

fn plain(width: usize) -> Style {
    Style { width, color: false, verbose: false }
}

#[test]
fn wrap_breaks_at_words_and_splits_long_ones() {
    assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
    assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    assert_eq!(wrap("", 4), vec![""]);
    // Wide (CJK) characters count two columns.
    assert_eq!(wrap("生产服务器", 4), vec!["生产", "服务", "器"]);
}

#[test]
fn a_summary_missing_fields_still_renders_and_a_bad_one_names_the_field() {
    let empty = Stored::from_json(b"{}").unwrap();
    assert!(render(&empty, Format::Table, plain(80)).contains("unknown mode"));
    let bad = Stored::from_json(br#"{"entries":[{"outcome":"vanished"}]}"#).unwrap_err().to_string();
    assert!(bad.contains("entries[0].outcome"), "{bad}");
    assert!(Stored::from_json(b"[1,2]").is_err());
}

#[test]
fn the_table_fits_the_width_and_groups_by_outcome_then_scope() {
    let s = demo();
    for width in [80, 100, 160] {
        let table = render(&s, Format::Table, plain(width));
        for line in table.lines() {
            assert!(console::measure_text_width(line) <= width, "{width}: {line:?}");
        }
    }
    let table = render(&s, Format::Table, plain(100));
    let would = table.find("Would release · 4").expect(&table);
    let kept = table.find("Kept (no rule matched)").expect(&table);
    assert!(would < kept, "changes first");
    assert!(!table.contains('\u{1b}'), "no colour unless asked");
    assert!(!table.contains("charge_type="), "facts only with -v");
    let verbose = render(&s, Format::Table, Style { verbose: true, ..plain(100) });
    assert!(verbose.contains("charge_type="), "{verbose}");
    let coloured = render(&s, Format::Table, Style { color: true, ..plain(100) });
    assert!(coloured.contains("\u{1b}["), "colours when asked");
}

#[test]
fn outside_text_cannot_forge_lines_or_escape_a_cell() {
    let mut s = demo();
    s.entries[0].decision.name = "evil\u{1b}[31m|name\nforged,=cmd()".into();
    let table = render(&s, Format::Table, plain(120));
    assert!(!table.contains('\u{1b}') && !table.contains("\nforged"), "{table}");
    let md = render(&s, Format::Markdown, plain(120));
    assert!(md.contains("evil ［31m\\|name forged,=cmd()"), "{md}");
    let csv = render(&s, Format::Csv, plain(120));
    assert!(csv.contains("\"evil [31m|name forged,=cmd()\""), "{csv}");
}

#[test]
fn an_organisation_summary_renders_per_account() {
    let s: crate::org::contract::OrgSummary = serde_json::from_value(serde_json::json!({
        "org_run_id": "org-1", "now": "2026-11-25T12:00:00Z", "mode": "dry-run", "planned_by": "1000000000000001",
        "totals": {"would_release": 2, "kept": 5}, "accounts_planned": 2, "accounts_ran": 1,
        "accounts_skipped": [{"account_id": "2000000000000002", "reason": "AssumeRole denied"}],
        "accounts_held": [], "excluded": [], "shards": 1, "shards_failed": [], "longest_shard_ms": 10,
        "accounts": [
            {"account_id": "1000000000000001", "status": "ran", "counts": {"would_release": 2, "kept": 5}, "degraded": false},
            {"account_id": "2000000000000002", "status": "skipped", "reason": "AssumeRole denied", "degraded": true}
        ],
        "degraded": true
    }))
    .expect("an organisation summary");
    let table = org::render(&s, Format::Table, plain(100));
    assert!(table.contains("dry run · INCOMPLETE") && table.contains("2 accounts planned"), "{table}");
    assert!(table.contains("1000000000000001  ran") && table.contains("kept 5, would_release 2"), "{table}");
    assert!(table.contains("2000000000000002  skipped  skipped: AssumeRole denied"), "{table}");
    let csv = org::render(&s, Format::Csv, plain(100));
    assert!(csv.contains("1000000000000001,ran,would_release,2,\r\n"), "{csv}");
    assert!(csv.contains("2000000000000002,skipped,,,AssumeRole denied\r\n"), "{csv}");
    assert!(org::render(&s, Format::Markdown, plain(100)).contains("2000000000000002"));
}

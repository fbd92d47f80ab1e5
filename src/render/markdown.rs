//! `--output markdown`: the table as GitHub-flavoured markdown, for a ticket. Outside text is made inert by the
//! markdown escaper (no links, mentions or emphasis) and cannot break a table cell (`|` is escaped).

use crate::report::explain::{escape, Markup};
use crate::report::Entry;

use super::{plural, title, verb, Stored, Style};

/// One table cell of outside text.
fn cell(s: &str, max: usize) -> String {
    escape(s, Markup::Markdown, max).replace('|', "\\|")
}

fn row(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

fn head(names: &[&str]) -> [String; 2] {
    [row(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>()), row(&vec!["---".to_string(); names.len()])]
}

pub(super) fn render(s: &Stored, style: Style) -> String {
    let mut out = Vec::new();
    let account =
        if s.account_id.is_empty() { "unknown".to_string() } else { format!("`{}`", cell(&s.account_id, 40)) };
    out.push(format!("### aliyun-janitor: {} in account {account}", s.mode_label()));
    out.push(String::new());
    out.push(format!("- **When:** {}", cell(&s.now, 40)));
    if !s.mode_reason.is_empty() {
        out.push(format!("- **Mode:** {} — {}", s.mode_label(), cell(&s.mode_reason, 300)));
    }
    if !s.trigger.is_empty() {
        out.push(format!("- **Trigger:** {}", cell(&s.trigger, 200)));
    }
    out.push(format!("- **Scanned:** {}", plural(s.scanned, "instance", "instances")));
    if !s.run_id.is_empty() {
        out.push(format!("- **Run:** `{}`", cell(&s.run_id, 80)));
    }
    for (outcome, entries) in s.groups() {
        out.push(String::new());
        out.push(format!("#### {} ({})", title(outcome), entries.len()));
        out.push(String::new());
        let mut names = vec!["Product", "Region", "ID", "Name", "Rule", "Reason"];
        if style.verbose {
            names.push("Facts");
        }
        out.extend(head(&names));
        for e in entries {
            out.push(row(&cells(e, style.verbose)));
        }
    }
    if !s.owners.is_empty() {
        out.push(String::new());
        out.push("#### Owners".to_string());
        out.push(String::new());
        out.extend(head(&["Owner", "What", "Instance", "Name", "Release after"]));
        for (owner, notices) in &s.owners {
            for n in notices {
                let after = n.release_after.as_deref().map(|a| cell(a, 40)).unwrap_or_default();
                out.push(row(&[
                    cell(owner, 80),
                    verb(&n.outcome).to_string(),
                    format!("`{}`", cell(&n.id, 200)),
                    cell(&n.name, 200),
                    after,
                ]));
            }
        }
    }
    if !s.skipped_scopes.is_empty() {
        out.push(String::new());
        out.push("#### Not scanned (nothing in them was released)".to_string());
        out.push(String::new());
        out.extend(head(&["Product", "Region", "Code", "Error"]));
        for k in &s.skipped_scopes {
            out.push(row(&[cell(&k.product, 40), cell(&k.region, 40), cell(&k.code, 80), cell(&k.error, 300)]));
        }
    }
    if let Some(b) = &s.limit_breach {
        out.push(String::new());
        out.push("#### Limit breach".to_string());
        out.push(String::new());
        out.push(cell(&b.reason, 600));
    }
    if !s.ignored.is_empty() {
        out.push(String::new());
        out.push("#### Ignored".to_string());
        out.push(String::new());
        out.extend(s.ignored.iter().map(|i| format!("- {}", cell(i, 300))));
    }
    out.push(String::new());
    out.push(format!(
        "#### Totals ({} in {})",
        plural(s.scanned, "instance", "instances"),
        plural(s.counts.len(), "scope", "scopes")
    ));
    out.push(String::new());
    out.extend(head(&["Outcome", "Count", "Where"]));
    for ((_, outcome), (n, wheres)) in s.totals() {
        let wheres: Vec<String> = wheres.iter().map(|(w, n)| format!("{} {n}", cell(w, 80))).collect();
        out.push(row(&[cell(&outcome, 40), n.to_string(), wheres.join(", ")]));
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn cells(e: &Entry, verbose: bool) -> Vec<String> {
    let d = &e.decision;
    let mut cells = vec![
        cell(&d.product, 40),
        cell(&d.region, 40),
        format!("`{}`", cell(&d.id, 200)),
        cell(&d.name, 200),
        cell(d.rule.as_deref().unwrap_or("-"), 80),
        cell(&crate::report::reason(e), 600),
    ];
    if verbose {
        let facts: Vec<String> = d.facts.iter().map(|(k, v)| format!("{}={}", cell(k, 80), cell(v, 200))).collect();
        cells.push(facts.join(" "));
    }
    cells
}

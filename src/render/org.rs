//! An organisation run's summary for a person: per account, not per instance (the organisation summary holds
//! each account's counts, not its instances). Table and CSV here; markdown and text are the organisation message
//! the webhooks send ([`crate::org::message`]).

use crate::org::contract::{AccountResult, AccountStatus, OrgSummary};
use crate::report::explain::Markup;

use super::table::{grid, heading, indented};
use super::{plural, text, Format, Style};

/// Renders `s` as `format` (`json` is printed by the CLI from the summary itself).
pub fn render(s: &OrgSummary, format: Format, style: Style) -> String {
    match format {
        Format::Table => table(s, style),
        Format::Csv => csv(s),
        Format::Markdown => format!("{}\n", crate::org::message(s, Markup::Markdown)),
        Format::Text | Format::Json => format!("{}\n", crate::org::message(s, Markup::Text)),
    }
}

/// What an account did, in a few words: its counts, or why it did not run, or what held it.
fn changes(a: &AccountResult) -> String {
    let counts: Vec<String> = a.counts.iter().map(|(k, n)| format!("{} {n}", text(k, 40))).collect();
    let mut what = if counts.is_empty() { "nothing scanned".to_string() } else { counts.join(", ") };
    if let Some(r) = &a.reason {
        what = format!("skipped: {}", text(r, 300));
    }
    if let Some(b) = &a.limit_breach {
        what.push_str(&format!("; held: {}", text(b, 300)));
    }
    if !a.skipped_scopes.is_empty() {
        let scopes: Vec<String> = a.skipped_scopes.iter().map(|k| text(k, 120)).collect();
        what.push_str(&format!("; not scanned: {}", scopes.join(", ")));
    }
    what
}

fn status(a: &AccountResult) -> &'static str {
    match (a.status, a.degraded) {
        (AccountStatus::Skipped, _) => "skipped",
        (AccountStatus::Ran, true) => "incomplete",
        (AccountStatus::Ran, false) => "ran",
    }
}

fn table(s: &OrgSummary, style: Style) -> String {
    let mode = if s.mode == "apply" { "apply" } else { "dry run" };
    let incomplete = if s.degraded { " · INCOMPLETE" } else { "" };
    let paint = console::Style::new().bold().force_styling(true);
    let mut out = vec![heading(
        &format!("aliyun-janitor organisation · {mode}{incomplete} · {}", text(&s.now, 40)),
        paint.clone(),
        style,
    )];
    let facts = format!(
        "management account {} · {} planned, {} ran, {} skipped, {} held · {} ({} failed) · run {}",
        text(&s.planned_by, 40),
        plural(s.accounts_planned, "account", "accounts"),
        s.accounts_ran,
        s.accounts_skipped.len(),
        s.accounts_held.len(),
        plural(s.shards, "shard", "shards"),
        s.shards_failed.len(),
        text(&s.org_run_id, 80),
    );
    out.extend(indented(&facts, 2, style.width));
    out.push(String::new());
    out.push(heading(&format!("Accounts · {}", s.accounts.len()), paint.clone(), style));
    let rows: Vec<[String; 3]> =
        s.accounts.iter().map(|a| [text(&a.account_id, 40), status(a).to_string(), changes(a)]).collect();
    grid(["ACCOUNT", "STATUS", "WHAT"], &rows, style.width, [0, 12, 0], style, &mut out);
    let notes = [
        ("Not run", &s.accounts_skipped),
        ("Held", &s.accounts_held),
        ("Excluded", &s.excluded),
        ("Shards failed", &s.shards_failed),
    ];
    for (title, list) in notes.into_iter().filter(|(_, l)| !l.is_empty()) {
        out.push(String::new());
        out.push(heading(&format!("{title} · {}", list.len()), paint.clone(), style));
        for n in list {
            out.extend(indented(&format!("{}: {}", text(&n.account_id, 40), text(&n.reason, 300)), 4, style.width));
        }
    }
    out.push(String::new());
    let totals: Vec<String> = s.totals.iter().map(|(k, n)| format!("{} {n}", text(k, 40))).collect();
    out.push(heading("Totals", paint, style));
    out.extend(indented(&if totals.is_empty() { "nothing scanned".into() } else { totals.join(", ") }, 4, style.width));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// One row per (account, outcome): `account_id,status,outcome,count`; an account with no counts has one row
/// with an empty outcome, and its reason.
fn csv(s: &OrgSummary) -> String {
    let mut out = String::from("account_id,status,outcome,count,reason\r\n");
    for a in &s.accounts {
        let reason = a.reason.clone().or_else(|| a.limit_breach.clone()).unwrap_or_default();
        let mut rows: Vec<[String; 5]> = a
            .counts
            .iter()
            .map(|(k, n)| [a.account_id.clone(), status(a).into(), k.clone(), n.to_string(), reason.clone()])
            .collect();
        if rows.is_empty() {
            rows.push([a.account_id.clone(), status(a).into(), String::new(), String::new(), reason]);
        }
        for row in rows {
            super::csv::line(&mut out, row);
        }
    }
    out
}

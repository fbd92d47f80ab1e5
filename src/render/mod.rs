//! What a person reads of a run: the summary as a table (a terminal), markdown (a ticket) or CSV (a
//! spreadsheet). JSON is the summary itself (`report::Summary`).
//!
//! Everything renders from one tolerant, typed view of a summary's JSON ([`Stored`]), so a live run and
//! `aliyun-janitor report SUMMARY.json` print the same thing: entries are read back into [`Entry`] (their reason
//! is worded by the one explainer, [`report::reason`]), the header and totals from the summary's own fields
//! (`counts` for the totals: `entries` may hold only what changed something or needs a person). A field a
//! summary lacks is left empty rather than refused: an older summary still renders.
//!
//! Names, tags, rule names and error messages come from outside: every one goes through
//! [`explain::escape`] (control characters and ANSI escapes become spaces), and the markdown and CSV writers add
//! their own escaping.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::report::{self, explain, Entry, Outcome};

mod csv;
mod markdown;
pub mod org;
mod table;

/// `--output`: what the CLI prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Grouped by outcome, then product/region, one short row per instance; owners; totals (a terminal's default).
    Table,
    /// The summary as JSON (the default when stdout is not a terminal; what Lambda and FC return).
    Json,
    /// The table as GitHub-flavoured markdown, for pasting into a ticket.
    Markdown,
    /// One row per instance, for a spreadsheet.
    Csv,
    /// The chat message with every instance's line (the webhooks' wording; `run` only).
    Text,
}

/// How a table is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Columns available (a terminal's width; `COLUMNS`, else 120, elsewhere).
    pub width: usize,
    /// ANSI colours (a terminal that supports them, `NO_COLOR` unset).
    pub color: bool,
    /// `-v`: every instance's facts too.
    pub verbose: bool,
}

/// A stored summary as the renderers read it (see the module docs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Stored {
    pub run_id: String,
    pub account_id: String,
    pub mode: String,
    pub mode_reason: String,
    pub trigger: String,
    pub now: String,
    pub scanned: usize,
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    pub skipped_scopes: Vec<StoredSkip>,
    pub limit_breach: Option<StoredBreach>,
    pub owners: BTreeMap<String, Vec<StoredNotice>>,
    pub ignored: Vec<String>,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StoredSkip {
    pub product: String,
    pub region: String,
    pub code: String,
    pub error: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StoredBreach {
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoredNotice {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub release_after: Option<String>,
    #[serde(default)]
    pub reason: String,
}

/// A summary that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("not a janitor summary: {0}")]
pub struct RenderError(String);

impl Stored {
    /// Reads a summary's JSON; an error names the field (`entries[3].outcome: unknown variant ...`).
    pub fn from_json(body: &[u8]) -> Result<Stored, RenderError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(de).map_err(|e| RenderError(format!("{}: {}", e.path(), e.inner())))
    }

    /// The view of a live run's summary (the same path as a stored one, so both print alike).
    pub fn of(summary: &report::Summary) -> Result<Stored, RenderError> {
        let value = serde_json::to_vec(summary).map_err(|e| RenderError(e.to_string()))?;
        Stored::from_json(&value)
    }

    fn is_apply(&self) -> bool {
        self.mode == "apply"
    }

    /// `apply` / `dry run`, for a header.
    fn mode_label(&self) -> &str {
        match self.mode.as_str() {
            "apply" => "apply",
            "dry-run" => "dry run",
            "" => "unknown mode",
            other => other,
        }
    }

    /// The entries in groups of one outcome, in [`rank`] order; within a group, by product, region and id.
    fn groups(&self) -> Vec<(&Outcome, Vec<&Entry>)> {
        let mut groups: BTreeMap<(u8, &Outcome), Vec<&Entry>> = BTreeMap::new();
        for e in &self.entries {
            groups.entry((rank(&e.outcome), &e.outcome)).or_default().push(e);
        }
        groups
            .into_iter()
            .map(|((_, outcome), mut entries)| {
                entries.sort_by(|a, b| {
                    let key =
                        |e: &Entry| (e.decision.product.clone(), e.decision.region.clone(), e.decision.id.clone());
                    key(a).cmp(&key(b))
                });
                (outcome, entries)
            })
            .collect()
    }

    /// Outcome (as the summary spells it) → (total, `product/region` → count), from `counts`.
    fn totals(&self) -> Totals {
        let mut totals = Totals::new();
        for (scope, by_outcome) in &self.counts {
            for (outcome, n) in by_outcome {
                let rank = serde_json::from_value::<Outcome>(serde_json::Value::String(outcome.clone()))
                    .map(|o| rank(&o))
                    .unwrap_or(u8::MAX);
                let t = totals.entry((rank, outcome.clone())).or_default();
                t.0 += n;
                t.1.push((scope.clone(), *n));
            }
        }
        totals
    }
}

/// (group rank, outcome as spelled) → (total, `product/region` → count).
type Totals = BTreeMap<(u8, String), (usize, Vec<(String, usize)>)>;

/// Renders `stored` as `format` (`json` and `text` are printed by the CLI from the summary itself).
pub fn render(stored: &Stored, format: Format, style: Style) -> String {
    match format {
        Format::Table => table::render(stored, style),
        Format::Markdown => markdown::render(stored, style),
        Format::Csv => csv::render(stored, style),
        Format::Json | Format::Text => String::new(),
    }
}

/// The order groups are shown in: what changed (or would), then what needs a person, then the quiet rest.
fn rank(o: &Outcome) -> u8 {
    match o {
        Outcome::Released => 0,
        Outcome::WouldRelease => 1,
        Outcome::Finished => 2,
        Outcome::WouldFinish => 3,
        Outcome::Marked => 4,
        Outcome::WouldMark => 5,
        Outcome::Unmarked => 6,
        Outcome::WouldUnmark => 7,
        Outcome::Failed => 8,
        Outcome::Held => 9,
        Outcome::Manual => 10,
        Outcome::Invalid => 11,
        Outcome::OutsideWindow => 12,
        Outcome::Waiting => 13,
        Outcome::Protected => 14,
        Outcome::Skipped => 15,
        Outcome::Duplicate => 16,
        Outcome::Kept => 17,
    }
}

/// A group's title.
fn title(o: &Outcome) -> &'static str {
    match o {
        Outcome::Released => "Released",
        Outcome::WouldRelease => "Would release",
        Outcome::Finished => "Finished (an earlier release's record removed)",
        Outcome::WouldFinish => "Would finish an earlier release",
        Outcome::Marked => "Marked for a later release",
        Outcome::WouldMark => "Would mark for a later release",
        Outcome::Unmarked => "Unmarked",
        Outcome::WouldUnmark => "Would unmark",
        Outcome::Failed => "Failed",
        Outcome::Held => "Held by a limit",
        Outcome::Manual => "Release by hand (no API)",
        Outcome::Invalid => "Invalid (never released)",
        Outcome::OutsideWindow => "Outside the release window",
        Outcome::Waiting => "Waiting (marked, grace running)",
        Outcome::Protected => "Protected",
        Outcome::Skipped => "Skipped",
        Outcome::Duplicate => "Duplicate event",
        Outcome::Kept => "Kept (no rule matched)",
    }
}

/// The short label of an owner notice's outcome.
fn verb(o: &Outcome) -> &'static str {
    match o {
        Outcome::Released => "released",
        Outcome::WouldRelease => "would release",
        Outcome::Marked => "marked",
        Outcome::WouldMark => "would mark",
        Outcome::Unmarked => "unmarked",
        Outcome::WouldUnmark => "would unmark",
        other => other.as_str(),
    }
}

/// A terminal colour per outcome: red for releases, yellow for marks and what needs a person, green for
/// unmarks, dim for the quiet rest.
fn paint(o: &Outcome) -> console::Style {
    let s = console::Style::new().force_styling(true);
    match o {
        Outcome::Released | Outcome::WouldRelease | Outcome::Finished | Outcome::WouldFinish => s.red().bold(),
        Outcome::Failed => s.red().bold().underlined(),
        Outcome::Marked | Outcome::WouldMark | Outcome::Held | Outcome::Manual | Outcome::Invalid => s.yellow().bold(),
        Outcome::Unmarked | Outcome::WouldUnmark => s.green().bold(),
        Outcome::OutsideWindow | Outcome::Waiting => s.cyan().bold(),
        Outcome::Protected | Outcome::Skipped | Outcome::Duplicate | Outcome::Kept => s.dim().bold(),
    }
}

/// One line of outside text, inert on a terminal (see the module docs).
fn text(s: &str, max: usize) -> String {
    explain::escape(s, explain::Markup::Text, max)
}

/// An entry's reason, inert.
fn reason(e: &Entry) -> String {
    text(&report::reason(e), 600)
}

/// An entry's facts, `key=value` each, inert.
fn facts(e: &Entry) -> Vec<String> {
    e.decision.facts.iter().map(|(k, v)| format!("{}={}", text(k, 80), text(v, 200))).collect()
}

/// `1 instance` / `3 instances`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests;

//! `--output table`: a header, one group per outcome (then product/region), one short row per instance (facts
//! with `-v`), the owners, what was not scanned, and the totals from `counts`. Width-aware: the reason column
//! takes what is left of the width and wraps; a name or rule too long for its column is cut with `…`.

use console::{measure_text_width as width_of, truncate_str};

use super::{facts, paint, plural, reason, text, title, verb, Stored, Style};

/// Spaces before a group's rows.
const INDENT: usize = 4;
const GAP: usize = 2;
/// The reason column is never narrower than this (the table overflows a narrower terminal instead).
const MIN_REASON: usize = 20;
const ENTRY_HEAD: [&str; 4] = ["ID", "NAME", "RULE", "REASON"];
/// A name or rule wider than this is cut (the reason column needs the room).
const ENTRY_CAPS: [usize; 4] = [0, 32, 32, 0];

pub(super) fn render(s: &Stored, style: Style) -> String {
    let mut out = Vec::new();
    header(s, style, &mut out);
    for (outcome, entries) in s.groups() {
        out.push(String::new());
        out.push(heading(&format!("{} · {}", title(outcome), entries.len()), paint(outcome), style));
        let rows: Vec<[String; 4]> = entries
            .iter()
            .map(|e| {
                let d = &e.decision;
                [text(&d.id, 200), text(&d.name, 200), text(d.rule.as_deref().unwrap_or("-"), 200), reason(e)]
            })
            .collect();
        let cols = layout(&ENTRY_HEAD, &rows, style.width, &ENTRY_CAPS);
        out.push(dim(&cells(&ENTRY_HEAD.map(String::from), &cols)[0], style));
        let mut scope = None;
        for (e, row) in entries.iter().zip(&rows) {
            let here = (e.decision.product.as_str(), e.decision.region.as_str());
            if scope != Some(here) {
                scope = Some(here);
                out.push(format!("  {} · {}", text(here.0, 40), text(here.1, 40)));
            }
            out.extend(cells(row, &cols));
            if style.verbose {
                let room = style.width.saturating_sub(INDENT + 2).max(MIN_REASON);
                for line in indented(&facts(e).join(" "), INDENT + 2, room + INDENT + 2) {
                    out.push(dim(&line, style));
                }
            }
        }
    }
    owners(s, style, &mut out);
    problems(s, style, &mut out);
    totals(s, style, &mut out);
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn header(s: &Stored, style: Style, out: &mut Vec<String>) {
    let account = if s.account_id.is_empty() {
        "account unknown".to_string()
    } else {
        format!("account {}", text(&s.account_id, 40))
    };
    let first = format!("aliyun-janitor · {} · {account} · {}", s.mode_label(), text(&s.now, 40));
    let mode = if s.is_apply() { console::Style::new().red().bold() } else { console::Style::new().green().bold() };
    out.push(heading(&first, mode.force_styling(true), style));
    if !s.mode_reason.is_empty() {
        out.extend(indented(&text(&s.mode_reason, 300), 2, style.width));
    }
    let mut facts = Vec::new();
    if !s.trigger.is_empty() {
        facts.push(format!("trigger: {}", text(&s.trigger, 200)));
    }
    facts.push(plural(s.scanned, "instance scanned", "instances scanned"));
    if !s.run_id.is_empty() {
        facts.push(format!("run {}", text(&s.run_id, 80)));
    }
    out.extend(indented(&facts.join(" · "), 2, style.width));
}

fn owners(s: &Stored, style: Style, out: &mut Vec<String>) {
    if s.owners.is_empty() {
        return;
    }
    let n: usize = s.owners.values().map(Vec::len).sum();
    out.push(String::new());
    out.push(heading(&format!("Owners · {}", plural(n, "notice", "notices")), console::Style::new().bold(), style));
    let rows: Vec<[String; 4]> = s
        .owners
        .iter()
        .flat_map(|(owner, notices)| {
            notices.iter().map(move |n| {
                let after = n.release_after.as_deref().map(|a| text(a, 40)).unwrap_or_else(|| "-".into());
                let instance = format!("{} {}", text(&n.id, 200), text(&n.name, 200));
                [text(owner, 80), verb(&n.outcome).to_string(), after, instance.trim_end().to_string()]
            })
        })
        .collect();
    grid(["OWNER", "WHAT", "RELEASE AFTER", "INSTANCE"], &rows, style.width, [0, 16, 24, 0], style, out);
}

/// What the run could not do: scopes not scanned, a limit breach, what an event named that is ignored.
fn problems(s: &Stored, style: Style, out: &mut Vec<String>) {
    let bad = console::Style::new().red().bold().force_styling(true);
    if !s.skipped_scopes.is_empty() {
        out.push(String::new());
        out.push(heading(
            &format!("Not scanned · {} (nothing in them was released)", s.skipped_scopes.len()),
            bad.clone(),
            style,
        ));
        for k in &s.skipped_scopes {
            let line = format!(
                "{} · {}: {}: {}",
                text(&k.product, 40),
                text(&k.region, 40),
                text(&k.code, 80),
                text(&k.error, 300)
            );
            out.extend(indented(&line, INDENT, style.width));
        }
    }
    if let Some(b) = &s.limit_breach {
        out.push(String::new());
        out.push(heading("Limit breach", bad, style));
        out.extend(indented(&text(&b.reason, 600), INDENT, style.width));
    }
    if !s.ignored.is_empty() {
        out.push(String::new());
        out.push(heading(&format!("Ignored · {}", s.ignored.len()), console::Style::new().dim().bold(), style));
        for i in &s.ignored {
            out.extend(indented(&text(i, 300), INDENT, style.width));
        }
    }
}

fn totals(s: &Stored, style: Style, out: &mut Vec<String>) {
    out.push(String::new());
    let scopes = plural(s.counts.len(), "scope", "scopes");
    out.push(heading(
        &format!("Totals · {} in {scopes}", plural(s.scanned, "instance", "instances")),
        console::Style::new().bold(),
        style,
    ));
    let rows: Vec<[String; 3]> = s
        .totals()
        .into_iter()
        .map(|((_, outcome), (n, wheres))| {
            let wheres: Vec<String> = wheres.iter().map(|(w, n)| format!("{} {n}", text(w, 80))).collect();
            [text(&outcome, 40), n.to_string(), wheres.join(", ")]
        })
        .collect();
    if rows.is_empty() {
        out.push(format!("{}nothing scanned", " ".repeat(INDENT)));
        return;
    }
    grid(["OUTCOME", "COUNT", "WHERE"], &rows, style.width, [0, 8, 0], style, out);
}

/// Column widths: each column as wide as its widest cell or heading (the middle ones capped at `caps`), the last
/// taking what is left of `width` (at least [`MIN_REASON`]); when even that does not fit, the middle columns
/// shrink first (never below 10). The first column (an id) is never cut.
fn layout<const N: usize>(head: &[&str; N], rows: &[[String; N]], width: usize, caps: &[usize; N]) -> [usize; N] {
    let mut cols = head.map(width_of);
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            cols[c] = cols[c].max(width_of(cell));
        }
    }
    for c in 1..N - 1 {
        cols[c] = cols[c].min(caps[c].max(width_of(head[c])));
    }
    let fixed = |cols: &[usize; N]| INDENT + cols[..N - 1].iter().sum::<usize>() + GAP * (N - 1);
    for c in (1..N - 1).rev() {
        let room = width.saturating_sub(fixed(&cols));
        if room >= MIN_REASON {
            break;
        }
        cols[c] = cols[c].saturating_sub(MIN_REASON - room).max(10.min(cols[c]));
    }
    cols[N - 1] = width.saturating_sub(fixed(&cols)).max(MIN_REASON);
    cols
}

/// A heading row and the rows, laid out.
pub(super) fn grid<const N: usize>(
    head: [&str; N],
    rows: &[[String; N]],
    width: usize,
    caps: [usize; N],
    style: Style,
    out: &mut Vec<String>,
) {
    let cols = layout(&head, rows, width, &caps);
    out.push(dim(&cells(&head.map(String::from), &cols)[0], style));
    for row in rows {
        out.extend(cells(row, &cols));
    }
}

/// One row's lines: cells padded to their column, the middle ones cut, the last one wrapped.
fn cells<const N: usize>(row: &[String; N], cols: &[usize; N]) -> Vec<String> {
    let mut first = " ".repeat(INDENT);
    for c in 0..N - 1 {
        let cell = if c == 0 { row[c].clone() } else { truncate_str(&row[c], cols[c], "…").into_owned() };
        first.push_str(&cell);
        first.push_str(&" ".repeat(cols[c].saturating_sub(width_of(&cell)) + GAP));
    }
    let lead = width_of(&first);
    let mut lines = wrap(&row[N - 1], cols[N - 1]).into_iter();
    first.push_str(&lines.next().unwrap_or_default());
    let mut out = vec![first.trim_end().to_string()];
    out.extend(lines.map(|l| format!("{}{l}", " ".repeat(lead))));
    out
}

/// Word-wraps `s` to `width` columns; a word longer than the width is split.
pub(super) fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && width_of(&line) + 1 + width_of(word) <= width {
            line.push(' ');
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // A word wider than a whole line is split at the width; its last piece starts the next line.
        for c in word.chars() {
            if !line.is_empty() && width_of(&line) + width_of(c.encode_utf8(&mut [0; 4])) > width {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// `s` wrapped to `width`, each line indented by `indent`.
pub(super) fn indented(s: &str, indent: usize, width: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    wrap(s, width.saturating_sub(indent)).into_iter().map(|l| format!("{pad}{l}")).collect()
}

pub(super) fn heading(s: &str, paint: console::Style, style: Style) -> String {
    if style.color {
        paint.apply_to(s).to_string()
    } else {
        s.to_string()
    }
}

fn dim(s: &str, style: Style) -> String {
    if style.color {
        console::Style::new().dim().force_styling(true).apply_to(s).to_string()
    } else {
        s.to_string()
    }
}

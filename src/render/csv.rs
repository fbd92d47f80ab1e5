//! `--output csv`: one row per instance (RFC 4180: every field quoted when it holds a comma, quote or line
//! break). A field that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return first:
//! the OWASP "CSV injection" list) is prefixed with `'`, since names and tags come from outside.

use crate::report::Entry;

use super::{Stored, Style};

const COLUMNS: [&str; 11] =
    ["outcome", "product", "region", "id", "name", "rule", "reason", "owner", "release_after", "code", "account_id"];

pub(super) fn render(s: &Stored, style: Style) -> String {
    let mut out = String::new();
    let mut names: Vec<&str> = COLUMNS.to_vec();
    if style.verbose {
        names.push("facts");
    }
    line(&mut out, names.iter().map(|n| n.to_string()));
    for (_, entries) in s.groups() {
        for e in entries {
            line(&mut out, fields(e, s, style.verbose));
        }
    }
    out
}

fn fields(e: &Entry, s: &Stored, verbose: bool) -> Vec<String> {
    let d = &e.decision;
    let mut f = vec![
        e.outcome.as_str().to_string(),
        d.product.to_string(),
        d.region.to_string(),
        d.id.to_string(),
        d.name.to_string(),
        d.rule.as_deref().unwrap_or_default().to_string(),
        crate::report::reason(e),
        e.owner.clone().unwrap_or_default(),
        e.release_after.map(crate::lifecycle::format_time).unwrap_or_default(),
        e.code.clone().unwrap_or_default(),
        s.account_id.clone(),
    ];
    if verbose {
        f.push(d.facts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
    }
    f
}

pub(super) fn line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    // Control characters (line breaks, ESC) become spaces first: a CSV shown on a terminal stays inert too.
    let fields: Vec<String> = fields.into_iter().map(|f| field(&super::text(&f, 2000))).collect();
    out.push_str(&fields.join(","));
    out.push_str("\r\n");
}

/// One field, quoted when needed, defused when a spreadsheet would run it.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
        assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
    }
}

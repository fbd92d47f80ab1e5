//! The one explainer: why an entry ended as it did, an owner's notice in a line, and the plain-text message of
//! a whole [`Summary`] that the CLI's `--output text` prints and every webhook format sends (chat formats only
//! add their [`Markup`]).
//!
//! Names, tag values, rule names and error messages come from outside: every one of them goes through
//! [`escape`] before it is put in a line, so no instance name can forge a line, inject an ANSI escape or a
//! chat mention.

use std::collections::BTreeMap;

use crate::plan::Verdict;
use crate::report::{Entry, Outcome, OwnerNotice, Summary, RELEASE_AFTER_FACT};

/// Entries listed per section before "… and N more", when the message fits the platform limit.
const SECTION_CAP: usize = 20;

/// The markup a message is written in, and so what outside text must be kept from meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// A terminal (the CLI): only control characters are dangerous (newlines forge lines, ESC starts ANSI codes).
    Text,
    /// Slack mrkdwn: `&`, `<`, `>` must be escaped, or `<!channel>` and `<url|text>` come alive; `*`, `~` and
    /// `` ` `` would start bold, strike-through and code.
    Slack,
    /// DingTalk/WeCom markdown: brackets, angle brackets, `*`, `~` and `` ` `` are replaced so names cannot form
    /// links, tags or emphasis.
    Markdown,
    /// Feishu text: `<at user_id="all">` mentions are the only markup.
    Plain,
}

/// Makes one line of outside text inert for `markup`: control characters (newlines, ESC, U+2028/U+2029) become
/// spaces, markup metacharacters are escaped or replaced by look-alikes, and the text is cut to `max`
/// characters (with `…`).
pub fn escape(s: &str, markup: Markup, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(2)));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match (markup, c) {
            (_, c) if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push(' '),
            (Markup::Slack, '&') => out.push_str("&amp;"),
            (Markup::Slack, '<') => out.push_str("&lt;"),
            (Markup::Slack, '>') => out.push_str("&gt;"),
            (Markup::Markdown, '[') => out.push('［'),
            (Markup::Markdown, ']') => out.push('］'),
            (Markup::Markdown | Markup::Slack, '`') => out.push('\''),
            (Markup::Markdown | Markup::Slack, '*') => out.push('∗'),
            (Markup::Markdown | Markup::Slack, '~') => out.push('∼'),
            (Markup::Markdown | Markup::Plain, '<') => out.push('‹'),
            (Markup::Markdown | Markup::Plain, '>') => out.push('›'),
            _ => out.push(c),
        }
    }
    out
}

impl Markup {
    fn heading(self, s: &str) -> String {
        match self {
            Markup::Slack => format!("*{s}*"),
            Markup::Markdown => format!("#### {s}"),
            Markup::Plain | Markup::Text => format!("{s}:"),
        }
    }

    fn title(self, s: &str) -> String {
        match self {
            Markup::Slack => format!("*{s}*"),
            Markup::Markdown => format!("### {s}"),
            Markup::Plain | Markup::Text => s.to_string(),
        }
    }

    fn bullet(self) -> &'static str {
        match self {
            Markup::Slack => "• ",
            Markup::Markdown | Markup::Plain | Markup::Text => "- ",
        }
    }

    /// Between header lines: markdown joins single newlines into one paragraph.
    fn paragraph(self) -> &'static str {
        match self {
            Markup::Markdown => "\n\n",
            Markup::Slack | Markup::Plain | Markup::Text => "\n",
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// One entry.

/// What an entry's reason says, before it is worded for a summary field or a message line.
enum Detail<'a> {
    ProtectedBy(&'a str),
    Said(String),
}

fn detail(e: &Entry) -> Detail<'_> {
    let d = &e.decision;
    match (&e.outcome, &d.verdict) {
        (Outcome::Failed, _) => {
            Detail::Said(format!("{}: {}", e.code.as_deref().unwrap_or("error"), e.message.as_deref().unwrap_or("")))
        }
        // The lifecycle and release steps word these themselves: their message has the last word.
        (
            Outcome::Held
            | Outcome::Manual
            | Outcome::Marked
            | Outcome::WouldMark
            | Outcome::Waiting
            | Outcome::Unmarked
            | Outcome::WouldUnmark
            | Outcome::OutsideWindow
            | Outcome::Duplicate
            | Outcome::Finished
            | Outcome::WouldFinish,
            _,
        )
        | (Outcome::Skipped | Outcome::Invalid, Verdict::Release { .. }) => {
            Detail::Said(e.message.clone().unwrap_or_default())
        }
        (_, Verdict::Protected { by }) => Detail::ProtectedBy(by),
        (_, Verdict::Skip { reason }) | (_, Verdict::Invalid { reason }) => Detail::Said(reason.clone()),
        (_, Verdict::Keep) => Detail::Said("no rule matched".to_string()),
        (_, Verdict::Release { options }) => {
            let mut flags = Vec::new();
            if options.force {
                flags.push("force");
            }
            if options.terminate_subscription {
                flags.push("terminate-subscription");
            }
            let eligible =
                if flags.is_empty() { "eligible".to_string() } else { format!("eligible ({})", flags.join(", ")) };
            Detail::Said(match d.facts.get(RELEASE_AFTER_FACT) {
                Some(at) => format!("{eligible}; marked, grace ended {at}"),
                None => eligible,
            })
        }
    }
}

/// Why an entry ended as it did, in a few words (the owner notices' `reason` and the decision log line).
/// Raw text: a caller putting it in a human-readable line escapes it.
pub fn reason(e: &Entry) -> String {
    match detail(e) {
        Detail::ProtectedBy(by) => format!("protected by {by}"),
        Detail::Said(s) => s,
    }
}

/// The outcome's label for the lines of a message, where the section alone does not say it.
fn label(outcome: &Outcome) -> Option<&'static str> {
    Some(match outcome {
        Outcome::Protected => "protected",
        Outcome::Skipped => "skipped",
        Outcome::Invalid => "invalid",
        Outcome::Manual => "release by hand",
        Outcome::Held => "held",
        Outcome::OutsideWindow => "outside window",
        Outcome::Duplicate => "duplicate event",
        _ => return None,
    })
}

/// `label: reason` (`protected: by tag janitor:keep`), or the reason alone for outcomes that have their own
/// section (marked, unmarked, waiting). Raw text.
fn labelled_reason(e: &Entry) -> String {
    let why = match detail(e) {
        Detail::ProtectedBy(by) => format!("by {by}"),
        Detail::Said(s) => s,
    };
    match (label(&e.outcome), why.is_empty()) {
        (Some(label), true) => label.to_string(),
        (Some(label), false) => format!("{label}: {why}"),
        (None, _) => why,
    }
}

/// `product:region/id`, the key used in the summary's id lists.
fn key(e: &Entry) -> String {
    format!("{}:{}/{}", e.decision.product, e.decision.region, e.decision.id)
}

/// `product:region/id name`, escaped.
fn instance(e: &Entry, markup: Markup) -> String {
    let mut line = escape(&key(e), markup, 200);
    if !e.decision.name.is_empty() {
        line.push(' ');
        line.push_str(&escape(&e.decision.name, markup, 80));
    }
    line
}

/// Every decision in one line: outcome, instance, rule, reason and facts (the CLI's per-instance listing).
pub fn entry_line(e: &Entry, markup: Markup) -> String {
    let d = &e.decision;
    let rule = d.rule.as_deref().map(|r| format!(" [rule {}]", escape(r, markup, 80))).unwrap_or_default();
    let facts = d
        .facts
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k, markup, 80), escape(v, markup, 200)))
        .collect::<Vec<_>>()
        .join(" ");
    let facts = if facts.is_empty() { facts } else { format!(" | {facts}") };
    format!("{:<14} {}{} — {}{}", e.outcome.as_str(), instance(e, markup), rule, escape(&reason(e), markup, 300), facts)
}

/// One owner's notice in a line: `alice: unmarked ecs:…/i-1; marked ecs:…/i-2 (release after …)`.
pub fn owner_line(owner: &str, notices: &[OwnerNotice], markup: Markup) -> String {
    let items: Vec<String> = notices
        .iter()
        .map(|n| {
            let verb = match n.outcome {
                Outcome::Marked => "marked",
                Outcome::WouldMark => "would mark",
                Outcome::Unmarked => "unmarked",
                Outcome::WouldUnmark => "would unmark",
                Outcome::Released => "released",
                _ => "would release",
            };
            let after =
                n.release_after.as_deref().filter(|_| matches!(n.outcome, Outcome::Marked | Outcome::WouldMark));
            let after = after.map(|a| format!(" (release after {})", escape(a, markup, 40))).unwrap_or_default();
            format!("{verb} {}{after}", escape(&n.id, markup, 200))
        })
        .collect();
    format!("{}: {}", escape(owner, markup, 80), items.join("; "))
}

// ---------------------------------------------------------------------------------------------------------
// A whole summary.

/// The notification title (DingTalk previews): `aliyun-janitor: dry run, 2 would be released (incomplete)`.
pub fn title(summary: &Summary) -> String {
    let n = |v: &Vec<String>| v.len();
    let mut what = if summary.mode.is_apply() {
        format!("{} released", n(&summary.released))
    } else {
        format!("dry run, {} would be released", n(&summary.would_release))
    };
    if !summary.marked.is_empty() {
        what.push_str(&format!(", {} marked", n(&summary.marked)));
    }
    if !summary.unmarked.is_empty() {
        what.push_str(&format!(", {} unmarked", n(&summary.unmarked)));
    }
    if !summary.finished.is_empty() {
        what.push_str(&format!(", {} earlier releases finished", n(&summary.finished)));
    }
    let degraded = if summary.is_degraded() { " (incomplete)" } else { "" };
    format!("aliyun-janitor: {what}{degraded}")
}

/// The message a chat reads: a header (mode, trigger, counts), then Released / Would release / Marked /
/// Unmarked / Failed / Owners / Waiting / Protected & skipped / Not scanned / Limit breach / Ignored. Lists are
/// cut to fit `limit` bytes.
pub fn message(summary: &Summary, markup: Markup, limit: usize) -> String {
    let header = header(summary, markup);
    let sections = sections(summary, markup, false);
    let mut text = String::new();
    for cap in [SECTION_CAP, 10, 5, 1, 0] {
        text = compose(&header, &sections, markup, cap);
        if text.len() <= limit {
            return text;
        }
    }
    // Only a header or section titles too long for the platform get here.
    const CUT: &str = "\n… (message truncated)";
    let mut end = limit.saturating_sub(CUT.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(CUT);
    text
}

/// The CLI's `--output text`: the same message, with nothing cut, and first a "Decisions" section holding
/// every instance's [`entry_line`].
pub fn full_text(summary: &Summary) -> String {
    compose(&header(summary, Markup::Text), &sections(summary, Markup::Text, true), Markup::Text, usize::MAX)
}

struct Section {
    title: &'static str,
    lines: Vec<String>,
}

fn header(summary: &Summary, markup: Markup) -> String {
    let mut by_outcome: BTreeMap<&Outcome, usize> = BTreeMap::new();
    for e in &summary.entries {
        *by_outcome.entry(&e.outcome).or_default() += 1;
    }
    let count = |o: Outcome| by_outcome.get(&o).copied().unwrap_or(0);
    let not_released = HELD_BACK.iter().map(|o| count(o.clone())).sum::<usize>();
    let mode = if summary.mode.is_apply() { "APPLY" } else { "DRY RUN" };
    let mut counts = vec![
        format!("scanned {}", summary.scanned),
        format!("released {}", summary.released.len()),
        format!("would release {}", summary.would_release.len()),
    ];
    // Lifecycle counts only when there are any, so a policy without grace reads as before.
    for (label, n) in
        [("marked", summary.marked.len()), ("unmarked", summary.unmarked.len()), ("waiting", count(Outcome::Waiting))]
    {
        if n > 0 {
            counts.push(format!("{label} {n}"));
        }
    }
    counts.extend([
        format!("failed {}", summary.failures.len()),
        format!("protected/skipped {not_released}"),
        format!("kept {}", count(Outcome::Kept)),
    ]);
    if !summary.skipped_scopes.is_empty() {
        counts.push(format!("not scanned {} scope(s)", summary.skipped_scopes.len()));
    }
    let incomplete = if summary.is_degraded() { " — INCOMPLETE" } else { "" };
    let p = markup.paragraph();
    format!(
        "{}{p}Account: {} · Mode: {} ({}){p}Trigger: {} · run {} · {}{p}{}",
        markup.title(&format!("aliyun-janitor {mode}{incomplete}")),
        escape(&summary.account_id, markup, 40),
        escape(summary.mode.as_str(), markup, 20),
        escape(&summary.mode_reason, markup, 200),
        escape(&summary.trigger, markup, 200),
        escape(&summary.run_id, markup, 128),
        escape(&summary.now, markup, 40),
        counts.join(" · "),
    )
}

fn sections(summary: &Summary, markup: Markup, every_entry: bool) -> Vec<Section> {
    let by_key: BTreeMap<String, &Entry> = summary.entries.iter().map(|e| (key(e), e)).collect();
    // Released and would-release lines name the rule: the reason ("eligible") says nothing more.
    let listed = |k: &String| match by_key.get(k) {
        Some(e) => {
            let mut line = instance(e, markup);
            if let Some(rule) = &e.decision.rule {
                line.push_str(&format!(" — rule {}", escape(rule, markup, 80)));
            }
            line
        }
        None => escape(k, markup, 200),
    };
    let failed = summary.failures.iter().map(|f| {
        format!(
            "{} — {}: {}",
            escape(&format!("{}:{}/{}", f.product, f.region, f.id), markup, 200),
            escape(&f.code, markup, 80),
            escape(&f.message, markup, 200)
        )
    });
    let with_reason = |e: &Entry| format!("{} — {}", instance(e, markup), escape(&labelled_reason(e), markup, 300));
    let of = |outcomes: &[Outcome]| {
        summary.entries.iter().filter(|e| outcomes.contains(&e.outcome)).map(with_reason).collect::<Vec<_>>()
    };
    let owners = summary.owners.iter().map(|(owner, notices)| owner_line(owner, notices, markup));
    let scopes = summary.skipped_scopes.iter().map(|s| {
        format!(
            "{}/{} — {}: {}",
            escape(&s.product, markup, 40),
            escape(&s.region, markup, 64),
            escape(&s.code, markup, 80),
            escape(&s.error, markup, 200)
        )
    });
    let breach = summary.limit_breach.iter().map(|b| {
        format!(
            "{} eligible of {} scanned: {}. Nothing eligible was released.",
            b.eligible,
            b.scanned,
            escape(&b.reason, markup, 300)
        )
    });
    let ignored = summary.ignored.iter().map(|note| escape(note, markup, 300));
    let marked_title = if summary.mode.is_apply() { "Marked for release" } else { "Would mark for release" };
    let unmarked_title = if summary.mode.is_apply() { "Unmarked" } else { "Would unmark" };
    let finished_title =
        if summary.mode.is_apply() { "Earlier releases finished" } else { "Earlier releases to finish" };
    let decisions = if every_entry { summary.entries.iter().map(|e| entry_line(e, markup)).collect() } else { vec![] };
    vec![
        Section { title: "Decisions", lines: decisions },
        Section { title: "Released", lines: summary.released.iter().map(listed).collect() },
        Section { title: "Would release", lines: summary.would_release.iter().map(listed).collect() },
        Section { title: marked_title, lines: of(&[Outcome::Marked, Outcome::WouldMark]) },
        Section { title: unmarked_title, lines: of(&[Outcome::Unmarked, Outcome::WouldUnmark]) },
        Section { title: finished_title, lines: of(&[Outcome::Finished, Outcome::WouldFinish]) },
        Section { title: "Failed", lines: failed.collect() },
        Section { title: "Owners", lines: owners.collect() },
        Section { title: "Waiting (grace period)", lines: of(&[Outcome::Waiting]) },
        Section { title: "Protected & skipped", lines: of(&HELD_BACK) },
        Section { title: "Not scanned", lines: scopes.collect() },
        Section { title: "Limit breach", lines: breach.collect() },
        Section { title: "Ignored", lines: ignored.collect() },
    ]
}

/// Outcomes listed under "Protected & skipped": eligible or matched, but not released this run.
const HELD_BACK: [Outcome; 7] = [
    Outcome::Protected,
    Outcome::Skipped,
    Outcome::Invalid,
    Outcome::Manual,
    Outcome::Held,
    Outcome::OutsideWindow,
    Outcome::Duplicate,
];

fn compose(header: &str, sections: &[Section], markup: Markup, cap: usize) -> String {
    let mut out = header.to_string();
    let mut any = false;
    for section in sections.iter().filter(|s| !s.lines.is_empty()) {
        any = any || section.title != "Decisions";
        out.push_str("\n\n");
        out.push_str(&markup.heading(&format!("{} ({})", section.title, section.lines.len())));
        for line in section.lines.iter().take(cap) {
            out.push('\n');
            out.push_str(markup.bullet());
            out.push_str(line);
        }
        if section.lines.len() > cap {
            out.push('\n');
            out.push_str(markup.bullet());
            let more = section.lines.len() - cap;
            out.push_str(&if cap == 0 { format!("{more} not listed") } else { format!("… and {more} more") });
        }
    }
    if !any {
        out.push_str("\n\nNothing to release, nothing failed.");
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::limits::LimitBreach;
    use crate::plan::Decision;
    use crate::report::{Failure, SkippedScope};

    pub(crate) fn entry(id: &str, name: &str, outcome: Outcome, verdict: Verdict) -> Entry {
        let decision = Decision {
            product: "ecs".into(),
            region: "cn-hangzhou".into(),
            id: id.into(),
            name: name.into(),
            verdict,
            rule: Some("tmp-expired".into()),
            facts: crate::plan::Facts::new(),
        };
        Entry { outcome, ..Entry::from_decision(decision) }
    }

    pub(crate) fn summary(would_release: usize) -> Summary {
        let mut entries: Vec<Entry> = (0..would_release)
            .map(|i| {
                entry(
                    &format!("i-{i:05}"),
                    "tmp",
                    Outcome::WouldRelease,
                    Verdict::Release { options: Default::default() },
                )
            })
            .collect();
        entries.push(entry(
            "i-prot",
            "db [primary](https://evil.example) <!channel>",
            Outcome::Protected,
            Verdict::Protected { by: "tag janitor:keep".into() },
        ));
        let mut failed = entry("i-fail", "", Outcome::Failed, Verdict::Release { options: Default::default() });
        failed.code = Some("IncorrectInstanceStatus".into());
        failed.message = Some("The current status of the resource does not support this operation.".into());
        entries.push(failed);
        let mut s = Summary {
            run_id: "run-1".into(),
            account_id: "1234567890123456".into(),
            mode: crate::plan::RunMode::DryRun,
            mode_reason: "policy apply: false".into(),
            trigger: "scheduled (aws.events)".into(),
            now: "2026-03-02T19:00:00Z".into(),
            scanned: entries.len(),
            counts: BTreeMap::new(),
            released: Vec::new(),
            would_release: Vec::new(),
            marked: Vec::new(),
            unmarked: Vec::new(),
            finished: vec![],
            failures: Vec::<Failure>::new(),
            skipped_scopes: vec![SkippedScope {
                product: "ecs".into(),
                region: "cn-beijing".into(),
                code: "Forbidden.RAM".into(),
                error: "not authorized".into(),
            }],
            limit_breach: None,
            api_calls: BTreeMap::new(),
            notifications: Vec::new(),
            owners: BTreeMap::new(),
            ignored: Vec::new(),
            entries,
            entries_omitted: 0,
        };
        s.finish();
        s
    }

    #[test]
    fn message_has_every_section_with_reasons() {
        let text = message(&summary(2), Markup::Plain, usize::MAX);
        for want in [
            "aliyun-janitor DRY RUN — INCOMPLETE",
            "Mode: dry-run (policy apply: false)",
            "Trigger: scheduled (aws.events) · run run-1",
            "scanned 4 · released 0 · would release 2 · failed 1 · protected/skipped 1 · kept 0 · not scanned 1 scope(s)",
            "Would release (2):\n- ecs:cn-hangzhou/i-00000 tmp — rule tmp-expired",
            "Failed (1):\n- ecs:cn-hangzhou/i-fail — IncorrectInstanceStatus: The current status",
            "Protected & skipped (1):\n- ecs:cn-hangzhou/i-prot db [primary](https://evil.example) ‹!channel› — protected: by tag janitor:keep",
            "Not scanned (1):\n- ecs/cn-beijing — Forbidden.RAM: not authorized",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("Released ("), "empty sections are left out");
        assert!(!text.contains("Decisions ("), "chat messages do not list every instance");
    }

    #[test]
    fn lifecycle_outcomes_and_owners_have_their_sections() {
        let mut s = summary(0);
        s.mode = crate::plan::RunMode::Apply;
        s.entries.clear();
        s.skipped_scopes.clear();
        let release = || Verdict::Release { options: Default::default() };
        let with = |mut e: Entry, owner: &str, after: Option<&str>, message: &str| {
            e.set_owner(owner);
            if let Some(a) = after {
                e.set_release_after(chrono::DateTime::parse_from_rfc3339(a).unwrap().with_timezone(&chrono::Utc));
            }
            e.message = Some(message.into());
            e
        };
        s.entries = vec![
            with(
                entry("i-mark", "tmp-a", Outcome::Marked, release()),
                "alice",
                Some("2026-11-28T12:00:00Z"),
                "marked for release after 2026-11-28T12:00:00Z (rule tmp-expired, grace 3d)",
            ),
            with(
                entry("i-keep", "tmp-b", Outcome::Unmarked, Verdict::Protected { by: "tag janitor:keep=true".into() }),
                "alice",
                None,
                "mark removed: now protected by tag janitor:keep=true",
            ),
            with(
                entry("i-wait", "tmp-c", Outcome::Waiting, release()),
                "bob",
                Some("2026-11-27T00:00:00Z"),
                "marked; released after 2026-11-27T00:00:00Z (1d from now) if it still matches",
            ),
            with(
                entry("i-win", "tmp-d", Outcome::OutsideWindow, release()),
                "bob",
                None,
                "due for release, but outside the release window",
            ),
            with(entry("i-dup", "", Outcome::Duplicate, release()), "bob", None, "event e-1 was already processed"),
        ];
        s.finish();
        assert_eq!(s.marked, ["ecs:cn-hangzhou/i-mark"]);
        assert_eq!(s.unmarked, ["ecs:cn-hangzhou/i-keep"]);
        assert_eq!(s.owners.keys().collect::<Vec<_>>(), ["alice"], "bob has nothing marked, unmarked or released");
        let text = message(&s, Markup::Plain, usize::MAX);
        for want in [
            "scanned 2 · released 0 · would release 0 · marked 1 · unmarked 1 · waiting 1 · failed 0 · protected/skipped 2 · kept 0",
            "Marked for release (1):\n- ecs:cn-hangzhou/i-mark tmp-a — marked for release after 2026-11-28T12:00:00Z (rule tmp-expired, grace 3d)",
            "Unmarked (1):\n- ecs:cn-hangzhou/i-keep tmp-b — mark removed: now protected by tag janitor:keep=true",
            "Owners (1):\n- alice: unmarked ecs:cn-hangzhou/i-keep; marked ecs:cn-hangzhou/i-mark (release after 2026-11-28T12:00:00Z)",
            "Waiting (grace period) (1):\n- ecs:cn-hangzhou/i-wait tmp-c — marked; released after",
            "- ecs:cn-hangzhou/i-win tmp-d — outside window: due for release",
            "- ecs:cn-hangzhou/i-dup — duplicate event: event e-1 was already processed",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert_eq!(title(&s), "aliyun-janitor: 0 released, 1 marked, 1 unmarked");
        // The summary's owner notices carry the same reason as every other place.
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["owners"]["alice"][1]["outcome"], "marked");
        assert_eq!(json["owners"]["alice"][1]["release_after"], "2026-11-28T12:00:00Z");
        assert_eq!(s.owners["alice"][0].reason, "mark removed: now protected by tag janitor:keep=true");
    }

    #[test]
    fn limit_breach_and_nothing_to_do() {
        let mut s = summary(0);
        s.entries.clear();
        s.skipped_scopes.clear();
        s.finish();
        assert!(message(&s, Markup::Plain, usize::MAX).contains("Nothing to release, nothing failed."));
        s.limit_breach = Some(LimitBreach { eligible: 40, scanned: 50, reason: "more than 10% of the fleet".into() });
        let text = message(&s, Markup::Markdown, usize::MAX);
        assert!(text.contains("#### Limit breach (1)\n- 40 eligible of 50 scanned: more than 10% of the fleet. Nothing eligible was released."), "{text}");
    }

    #[test]
    fn outside_text_is_made_inert() {
        let s = summary(0);
        let slack = message(&s, Markup::Slack, usize::MAX);
        assert!(slack.contains("db [primary](https://evil.example) &lt;!channel&gt;"), "{slack}");
        let md = message(&s, Markup::Markdown, usize::MAX);
        assert!(md.contains("db ［primary］(https://evil.example) ‹!channel›"), "{md}");
        assert_eq!(escape("a\nb\r\n# c\u{2028}`x`", Markup::Markdown, 100), "a b  # c 'x'");
        assert_eq!(escape("abcdef", Markup::Plain, 3), "abc…");
    }

    #[test]
    fn a_name_cannot_forge_a_line_or_an_escape() {
        let forged = "x\n2026 released i-prod \x1b[31m";
        for markup in [Markup::Text, Markup::Plain, Markup::Slack, Markup::Markdown] {
            let out = escape(forged, markup, 200);
            assert!(!out.contains('\n') && !out.contains('\x1b'), "{markup:?}: {out:?}");
            assert!(out.starts_with("x 2026 released i-prod "), "{markup:?}: {out:?}");
        }
        assert_eq!(
            escape("*bold* ~strike~ `code` <!here>", Markup::Slack, 100),
            "∗bold∗ ∼strike∼ 'code' &lt;!here&gt;"
        );
        assert_eq!(escape("*b* [l](u) <t>", Markup::Markdown, 100), "∗b∗ ［l］(u) ‹t›");
        assert_eq!(escape("<at user_id=\"all\">", Markup::Plain, 100), "‹at user_id=\"all\"›");
        assert_eq!(
            escape("a<b> *c* [d]", Markup::Text, 100),
            "a<b> *c* [d]",
            "a terminal only fears control characters"
        );

        // Through the whole message: the forged name stays inside its own line, in every markup.
        let mut s = summary(0);
        s.entries[0].decision.name = forged.into();
        s.entries[0].decision.facts.insert("tag:env", "prod\r\nreleased 99");
        s.ignored.push("ecs:cn-hangzhou/i-x\nforged".into());
        s.finish();
        for text in [full_text(&s), message(&s, Markup::Slack, usize::MAX), message(&s, Markup::Plain, usize::MAX)] {
            assert!(!text.contains('\x1b'), "{text}");
            assert!(
                !text.lines().any(|l| l.starts_with("2026") || l.starts_with("released 99") || l == "forged"),
                "{text}"
            );
        }
    }

    #[test]
    fn full_text_lists_every_decision_uncut() {
        let mut s = summary(30);
        s.ignored.push("kafka:cn-hangzhou/alikafka_x: not managed".into());
        let text = full_text(&s);
        assert!(
            text.starts_with(
                "aliyun-janitor DRY RUN — INCOMPLETE\nAccount: 1234567890123456 · Mode: dry-run (policy apply: false)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "Decisions (32):\n- would_release  ecs:cn-hangzhou/i-00000 tmp [rule tmp-expired] — eligible\n"
            ),
            "{text}"
        );
        assert!(text.contains("- protected      ecs:cn-hangzhou/i-prot db [primary](https://evil.example) <!channel> [rule tmp-expired] — protected by tag janitor:keep\n"), "{text}");
        assert!(
            text.contains("Would release (30):") && text.contains("i-00029 tmp — rule tmp-expired"),
            "nothing is cut"
        );
        assert!(text.contains("Ignored (1):\n- kafka:cn-hangzhou/alikafka_x: not managed"), "{text}");
    }

    #[test]
    fn long_lists_are_cut_to_the_limit() {
        let s = summary(5_000);
        let text = message(&s, Markup::Plain, usize::MAX);
        assert!(text.contains("- … and 4980 more"), "first 20 then a count");
        let wecom = message(&s, Markup::Markdown, 4_000);
        assert!(wecom.len() <= 4_000 && wecom.contains("more"), "{wecom}");
    }

    #[test]
    fn hard_cut_respects_char_boundaries() {
        let mut s = summary(0);
        s.mode_reason = "理由".repeat(100);
        let text = message(&s, Markup::Plain, 100);
        assert!(text.len() <= 100 && text.ends_with("(message truncated)"), "{text}");
    }

    #[test]
    fn reasons() {
        let s = summary(1);
        let by_id = |id: &str| s.entries.iter().find(|e| e.decision.id == id).unwrap();
        assert_eq!(reason(by_id("i-prot")), "protected by tag janitor:keep");
        assert_eq!(labelled_reason(by_id("i-prot")), "protected: by tag janitor:keep");
        assert_eq!(reason(by_id("i-00000")), "eligible");
        assert_eq!(
            reason(by_id("i-fail")),
            "IncorrectInstanceStatus: The current status of the resource does not support this operation."
        );
        let kept = entry("i-k", "", Outcome::Kept, Verdict::Keep);
        assert_eq!(reason(&kept), "no rule matched");
    }
}

//! The CLI's terminal side: what is a terminal, its width and colours, the progress lines (indicatif, on
//! stderr) and the confirmation prompt of an apply run. None of it is used without a terminal, in Lambda or FC.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::confirm::{Confirm, Proposal};
use crate::progress::{Phase, Progress};
use crate::report::explain::{escape, Markup};

/// Releases listed by name in the prompt; the rest are counted.
const PROMPT_LIST: usize = 10;
/// Table width when stdout is not a terminal and `COLUMNS` is not set.
const DEFAULT_WIDTH: usize = 120;

/// What the process is attached to, read once.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// `NO_COLOR` set to anything but an empty string (no-color.org), or `TERM=dumb`.
    pub no_color: bool,
}

impl Terminal {
    pub fn detect() -> Terminal {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Terminal {
            stdin: std::io::stdin().is_terminal(),
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
            no_color,
        }
    }

    /// Colours on stdout (the table).
    pub fn stdout_color(&self) -> bool {
        self.stdout && !self.no_color
    }

    /// Colours on stderr (pretty logs).
    pub fn stderr_color(&self) -> bool {
        self.stderr && !self.no_color
    }

    /// The table's width: the terminal's, else `COLUMNS`, else 120.
    pub fn width(&self) -> usize {
        let term = self.stdout.then(|| console::Term::stdout().size_checked()).flatten().map(|(_, cols)| cols as usize);
        let columns = || std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|c| *c > 0);
        term.or_else(columns).unwrap_or(DEFAULT_WIDTH).clamp(40, 1000)
    }
}

/// The progress lines of this process, once shown.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Runs `write` with the progress lines out of the way (a log line, the prompt), then redraws them.
pub fn above_progress<R>(write: impl FnOnce() -> R) -> R {
    match BARS.get() {
        Some(multi) => multi.suspend(write),
        None => write(),
    }
}

/// One progress line per phase on stderr; a finished phase stays as a line saying what it did.
pub struct Bars {
    multi: MultiProgress,
    state: Mutex<State>,
}

struct State {
    bar: Option<ProgressBar>,
    phase: Option<Phase>,
    total: usize,
    started: Instant,
    found: usize,
    unread: usize,
}

impl Bars {
    pub fn new() -> Bars {
        let multi = BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())).clone();
        let state = State { bar: None, phase: None, total: 0, started: Instant::now(), found: 0, unread: 0 };
        Bars { multi, state: Mutex::new(state) }
    }

    fn close(&self, state: &mut State) {
        let (Some(bar), Some(phase)) = (state.bar.take(), state.phase.take()) else { return };
        let what = match phase {
            Phase::Listing => {
                let unread =
                    if state.unread > 0 { format!(", {} could not be read", state.unread) } else { String::new() };
                format!("{} in {}{unread}", count(state.found, "instance"), count(state.total, "scope"))
            }
            Phase::Details => count(state.total, "instance"),
            Phase::DryRun | Phase::Release => count(state.total, "change"),
        };
        let secs = state.started.elapsed().as_secs_f64();
        // The finished phase becomes a plain line above the live one, so a prompt or a log line clearing the
        // live lines never takes it away.
        bar.finish_and_clear();
        let _ = self.multi.println(format!("✓ {}: {what} ({secs:.1} s)", phase.as_str()));
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

impl Progress for Bars {
    fn phase(&self, phase: Phase, total: usize) {
        let Ok(mut state) = self.state.lock() else { return };
        self.close(&mut state);
        let bar = match phase {
            Phase::Listing => {
                let style = ProgressStyle::with_template("{spinner} {prefix} [{bar:24}] {pos}/{len} scopes {msg}");
                ProgressBar::new(total as u64).with_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()))
            }
            _ => {
                let style = ProgressStyle::with_template("{spinner} {prefix}: {msg}");
                let what = if phase == Phase::Details { count(total, "instance") } else { count(total, "change") };
                ProgressBar::new_spinner()
                    .with_style(style.unwrap_or_else(|_| ProgressStyle::default_spinner()))
                    .with_message(what)
            }
        };
        let bar = self.multi.add(bar.with_prefix(phase.as_str()));
        bar.enable_steady_tick(Duration::from_millis(120));
        *state = State { bar: Some(bar), phase: Some(phase), total, started: Instant::now(), found: 0, unread: 0 };
    }

    fn listed(&self, product: &str, region: &str, found: Option<usize>) {
        let Ok(mut state) = self.state.lock() else { return };
        let (product, region) = (escape(product, Markup::Text, 40), escape(region, Markup::Text, 40));
        match found {
            Some(n) => state.found += n,
            None => {
                state.unread += 1;
                self.multi
                    .suspend(|| eprintln!("! {product}/{region}: could not be listed (nothing in it is released)"));
            }
        }
        if let Some(bar) = &state.bar {
            bar.inc(1);
            bar.set_message(match found {
                Some(n) => format!("· {product}/{region}: {}", count(n, "instance")),
                None => format!("· {product}/{region}: unread"),
            });
        }
    }

    fn finish(&self) {
        if let Ok(mut state) = self.state.lock() {
            self.close(&mut state);
        }
    }
}

/// The apply run's question on a terminal (stderr, read from stdin); anything but `y`/`yes` is a no. The
/// progress lines, if any, are closed first, so the question stands alone.
pub struct Prompt {
    pub progress: Option<std::sync::Arc<Bars>>,
}

impl Confirm for Prompt {
    fn confirm(&self, p: &Proposal) -> bool {
        if let Some(bars) = &self.progress {
            bars.finish();
        }
        above_progress(|| ask(p))
    }
}

fn ask(p: &Proposal) -> bool {
    let text = |s: &str| escape(s, Markup::Text, 200);
    let mut err = std::io::stderr().lock();
    let list = |v: &[String]| v.iter().map(|s| text(s)).collect::<Vec<_>>().join(", ");
    let mut lines = vec![
        String::new(),
        format!("About to change account {}:", text(&p.account_id)),
        format!("  products: {}", list(&p.products)),
        format!("  regions:  {}", list(&p.regions)),
    ];
    if !p.releases.is_empty() {
        lines.push(format!("  release {}:", count(p.releases.len(), "instance")));
        lines.extend(p.releases.iter().take(PROMPT_LIST).map(|r| format!("    {}", text(r))));
        if p.releases.len() > PROMPT_LIST {
            lines.push(format!("    … and {} more", p.releases.len() - PROMPT_LIST));
        }
    }
    let mut others = Vec::new();
    if p.marks > 0 {
        others.push(format!("mark {} for a later release", count(p.marks, "instance")));
    }
    if p.unmarks > 0 {
        others.push(format!("unmark {}", count(p.unmarks, "instance")));
    }
    if p.finishes > 0 {
        others.push(format!("finish {}", count(p.finishes, "earlier release")));
    }
    if !others.is_empty() {
        lines.push(format!("  {}", others.join(" · ")));
    }
    lines.push("Go on? (the pre-flight re-read may still keep some) [y/N] ".to_string());
    if write!(err, "{}", lines.join("\n")).and_then(|()| err.flush()).is_err() {
        return false;
    }
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(0) | Err(_) => {
            let _ = writeln!(err);
            false
        }
        Ok(_) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
    }
}

//! The command-line interface: `run`, `validate`, `report`, `org`, `completions`, `man`. Each subcommand is an
//! args struct with one `run`; [`Cli::run`] dispatches. Exit codes: 0 done, 1 nothing could run (nothing was
//! released), 2 a usage error (clap's, and a bad `--region`/`--product`), 3 a run that did not do everything.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};

use crate::event::{self, Trigger};
use crate::job::{self, Settings};
use crate::policy::Policy;
use crate::render::{self, Format, Stored};
use crate::report::{self, Summary};

pub mod logging;
pub mod output;
pub mod terminal;

use logging::LogFormat;
use terminal::Terminal;

/// Exit code of a run that finished but did not do everything (a scope unscanned, a failure, a limit breach).
pub const EXIT_DEGRADED: u8 = 3;
/// Exit code of a usage error (clap's own, for the errors clap finds).
pub const EXIT_USAGE: u8 = 2;
/// Largest summary `report` reads (a summary of 10,000 instances is a few MB).
const MAX_SUMMARY_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "aliyun-janitor",
    version,
    about = "Releases expired and pay-as-you-go Alibaba Cloud instances, dry-run first",
    after_help = "Exit codes: 0 done, 1 nothing could run (nothing was released), 2 usage error, 3 the run did not do everything (a scope unscanned, a failure, a limit breach)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More detail: every instance's facts in the table, markdown and CSV; more log lines (-vv: more still).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Fewer log lines (-qq: none).
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Log lines on stderr: `pretty` (the default on a terminal) or `json` (the default otherwise; Lambda and FC
    /// always log JSON).
    #[arg(long, value_enum, global = true, env = "JANITOR_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

impl Cli {
    /// The log format asked for, else pretty on a terminal and JSON otherwise.
    pub fn log_format(&self, terminal: &Terminal) -> LogFormat {
        self.log_format.unwrap_or(if terminal.stderr { LogFormat::Pretty } else { LogFormat::Json })
    }

    /// `-v` count minus `-q` count.
    pub fn verbosity(&self) -> i8 {
        (self.verbose.min(8) as i8) - (self.quiet.min(8) as i8)
    }

    /// Starts logging, then runs the subcommand.
    pub async fn run(self) -> ExitCode {
        let terminal = Terminal::detect();
        logging::init(self.log_format(&terminal), self.verbosity(), terminal.stderr_color());
        let ui = Ui { terminal, verbose: self.verbose > 0 };
        match self.command {
            Command::Run(args) => args.run(&ui).await,
            Command::Validate(args) => args.run(),
            Command::Report(args) => args.run(&ui),
            Command::Org(args) => args.run().await,
            Command::Completions(args) => args.run(),
            Command::Man => man(),
        }
    }
}

/// What the output of a command may use.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub terminal: Terminal,
    pub verbose: bool,
}

impl Ui {
    /// The output asked for, else the table on a terminal and JSON otherwise.
    fn format(&self, asked: Option<Format>) -> Format {
        asked.unwrap_or(if self.terminal.stdout { Format::Table } else { Format::Json })
    }

    fn style(&self) -> render::Style {
        render::Style { width: self.terminal.width(), color: self.terminal.stdout_color(), verbose: self.verbose }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the janitor once: list, decide, dry-run, and (with --apply or `apply: true`) release.
    Run(Box<RunArgs>),
    /// Check a policy file and print what it means; exits non-zero on the first error.
    Validate(ValidateArgs),
    /// Render a stored summary (the JSON `run` prints) as a table, markdown or CSV, like `custodian report`.
    Report(ReportArgs),
    /// Run one step of an organisation run (what Step Functions / CloudFlow invoke): the step's JSON document
    /// (`{"janitor_step": "plan" | "run_shard" | "merge", ...}`) from a file or `-` (stdin); its answer on stdout.
    Org(Box<OrgArgs>),
    /// Print a shell completion script, e.g. `aliyun-janitor completions bash > /etc/bash_completion.d/aliyun-janitor`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `aliyun-janitor man > ~/.local/share/man/man1/aliyun-janitor.1`.
    Man,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The summary: a file `run` wrote (`aliyun-janitor run … --output json > summary.json`), or `-` for stdin.
    pub summary: PathBuf,
    /// `table` (the default on a terminal), `markdown`, `csv` or `json` (the default otherwise).
    #[arg(long, short, value_enum)]
    pub output: Option<Format>,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct OrgArgs {
    /// The step document.
    pub step: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

impl OrgArgs {
    pub async fn run(&self) -> ExitCode {
        if !self.run.region.is_empty() || !self.run.product.is_empty() {
            return usage("--region/--product: an organisation step carries its own scope (its shard's regions)");
        }
        let settings = match self.run.settings() {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let body = if self.step.as_os_str() == "-" {
            let mut buf = Vec::new();
            match std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf) {
                Ok(_) => buf,
                Err(e) => return fail(format!("stdin: {e}")),
            }
        } else {
            match std::fs::read(&self.step) {
                Ok(b) => b,
                Err(e) => return fail(format!("{}: cannot read: {e}", self.step.display())),
            }
        };
        crate::org::cli::step(&settings, &body).await
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Policy file (YAML).
    #[arg(long, env = "JANITOR_POLICY")]
    pub policy: PathBuf,
    /// Trigger event file (JSON): an EventBridge Scheduled Event, an FC timer event, a manual invocation, or a
    /// tag-change / state-change event (or a batch array of them), which re-reads only the resources it names.
    #[arg(long)]
    pub event: Option<PathBuf>,
    /// Only this region (repeatable): narrows the policy's regions exactly as a manual event's `regions` does,
    /// never widens them; a narrowed run that releases also checks the fleet-wide limits.
    #[arg(long, value_name = "REGION", conflicts_with = "event")]
    pub region: Vec<String>,
    /// Only this product code (repeatable: `ecs`, `r-kvstore`, `alikafka`, `kms`): narrows like `--region`.
    #[arg(long, value_name = "PRODUCT", conflicts_with = "event")]
    pub product: Vec<String>,
    /// Really release. Without it (and without `apply: true` in the policy) only dry runs are made. On a
    /// terminal, the account, scope and counts about to change are shown and confirmed first (see --yes).
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation before an apply run changes anything (without a terminal it never asks).
    #[arg(long, short)]
    pub yes: bool,
    /// Evaluate the policy as of this time (RFC 3339) instead of now. Dry-run only against real endpoints: a
    /// past time makes the run a replay (a dry run, even with --apply; `mode_reason` says so) and a future one
    /// is refused. Only against the emulator (every endpoint loopback) may it apply: for tests and the demo.
    #[arg(long, env = "JANITOR_NOW")]
    pub now: Option<DateTime<Utc>>,
    /// `table` (the default on a terminal), `json` (the summary; the default otherwise), `markdown`, `csv`, or
    /// `text` (the webhook message with every instance's line).
    #[arg(long, short, value_enum)]
    pub output: Option<Format>,
    /// Send every API request to this base URL (the emulator), e.g. http://127.0.0.1:8931.
    #[arg(long, env = "JANITOR_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Time limit of one API request, in milliseconds (default 15000).
    #[arg(long, env = "JANITOR_REQUEST_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub request_timeout_ms: Option<u64>,
    /// No retry of a call starts after this many milliseconds from its first attempt (default 60000).
    #[arg(long, env = "JANITOR_RETRY_BUDGET_MS", value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub retry_budget_ms: Option<u64>,
    /// First retry delay in milliseconds (default 100; throttling starts at 5x, the cap is 200x).
    #[arg(long, env = "JANITOR_RETRY_BASE_MS", value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub retry_base_ms: Option<u64>,
    /// Largest API answer accepted, in bytes (default 8 MiB): a longer one fails its call.
    #[arg(long, env = "JANITOR_MAX_BODY_BYTES", value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824))]
    pub max_body_bytes: Option<u64>,
    /// Most pages one listing may take (default 1000): more fails the scope.
    #[arg(long, env = "JANITOR_MAX_PAGES", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_pages: Option<u64>,
    /// The run's deadline, in seconds from its start: after it no new release starts, and the summary names what
    /// was left (default: none in the CLI; the platform's timeout minus a margin in Lambda and FC).
    #[arg(long, env = "JANITOR_RUN_TIMEOUT_SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub run_timeout_secs: Option<u64>,
    /// Time between the status reads of a two-step release (Kafka: released, then its record removed), in
    /// milliseconds (default 5000; six reads at most, then a later run finishes it).
    #[arg(long, env = "JANITOR_RELEASE_POLL_MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub release_poll_ms: Option<u64>,
    /// The profile to use from the aliyun CLI's ~/.aliyun/config.json or ~/.alibabacloud/credentials (default:
    /// the CLI's current profile / `default`).
    #[arg(long, env = "ALIBABA_CLOUD_PROFILE")]
    pub profile: Option<String>,
    /// Act through this RAM role (STS AssumeRole with the credentials found), e.g.
    /// acs:ram::1234567890123456:role/aliyun-janitor. Replaces the policy's `role_arn:`.
    #[arg(long, env = "JANITOR_ROLE_ARN")]
    pub role_arn: Option<String>,
    /// Which entries the summary lists: `auto` (every instance up to 1,000, else `actions`), `all`, or `actions`
    /// (what changed something or needs a person). Counts and decision log lines always cover every instance.
    #[arg(long, env = "JANITOR_SUMMARY_ENTRIES", value_parser = ["auto", "all", "actions"])]
    pub summary_entries: Option<String>,
    /// Short for `--summary-entries all`.
    #[arg(long, conflicts_with = "summary_entries")]
    pub all_entries: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[arg(long, env = "JANITOR_POLICY")]
    pub policy: PathBuf,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    // A person reads the `error:` line; a log pipeline reads the JSON one.
    if !logging::is_pretty() {
        tracing::error!(error = %msg, "run aborted: nothing was released");
    }
    terminal::above_progress(|| eprintln!("error: {msg}"));
    ExitCode::from(1)
}

/// A usage error clap cannot see (a bad `--region` value): exit 2, like clap's own.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}\n\nFor more information, try '--help'.");
    ExitCode::from(EXIT_USAGE)
}

/// The trigger of `--region`/`--product`: a manual event's request, built and checked by the event parser
/// itself (so the flags narrow exactly as the event does); its error names the flag.
fn narrowing(regions: &[String], products: &[String]) -> Result<Trigger, String> {
    let mut request = serde_json::Map::new();
    if !regions.is_empty() {
        request.insert("regions".into(), regions.into());
    }
    if !products.is_empty() {
        request.insert("products".into(), products.into());
    }
    let body = serde_json::Value::Object(request).to_string();
    event::parse(body.as_bytes()).map_err(|e| match e {
        event::EventError::Field { field, message } => {
            let flag = if field.starts_with("regions") { "--region" } else { "--product" };
            format!("{flag}: {message}")
        }
        other => other.to_string(),
    })
}

impl RunArgs {
    /// The run's settings from the flags and the environment; an error is for `fail`.
    fn settings(&self) -> Result<Settings, String> {
        let policy = Policy::from_file(&self.policy).map_err(|e| e.to_string())?;
        let mut settings = Settings::new(policy);
        settings.endpoint_override = self.endpoint.clone();
        settings.apply_flag = self.apply;
        settings.now = self.now;
        settings.retry =
            settings.retry.with_overrides(self.request_timeout_ms, self.retry_budget_ms, self.retry_base_ms);
        settings.retry = settings.retry.with_bounds(self.max_body_bytes, self.max_pages);
        settings.run_timeout = self.run_timeout_secs.map(std::time::Duration::from_secs);
        if let Some(ms) = self.release_poll_ms {
            settings.release_poll.every = std::time::Duration::from_millis(ms);
        }
        settings.account_id =
            std::env::var(crate::runtime::ENV_ACCOUNT_ID).ok().map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
        settings.mark_key = crate::runtime::mark_key_from(
            std::env::var(crate::lifecycle::MARK_KEY_ENV).ok().filter(|v| !v.trim().is_empty()),
        )
        .map_err(|e| e.to_string())?;
        settings.profile = self.profile.clone();
        settings.role = crate::runtime::role_from(self.role_arn.clone())?;
        settings.sts_region = crate::credentials::sts::sts_region(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        settings.summary_entries = match (self.all_entries, self.summary_entries.as_deref()) {
            (true, _) => crate::plan::EntriesMode::All,
            (false, Some(v)) => crate::plan::EntriesMode::parse(v).unwrap_or_default(),
            (false, None) => crate::plan::EntriesMode::default(),
        };
        Ok(settings)
    }

    pub async fn run(&self, ui: &Ui) -> ExitCode {
        let narrowed = !self.region.is_empty() || !self.product.is_empty();
        let narrow = if narrowed {
            match narrowing(&self.region, &self.product) {
                Ok(t) => Some(t),
                Err(e) => return usage(e),
            }
        } else {
            None
        };
        let settings = match self.settings() {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let format = ui.format(self.output);
        if settings.policy.accounts.is_some() {
            if self.event.is_some() || narrowed {
                return fail("--event/--region/--product: an organisation policy (accounts:) runs on schedule only, over its whole scope; run an event or a narrowed run against one account's policy");
            }
            return crate::org::cli::run_local(&settings, format, ui.style()).await;
        }
        let trigger = match &self.event {
            None => narrow.unwrap_or_else(Trigger::cli),
            Some(path) => match std::fs::read(path) {
                Ok(body) => match event::parse(&body) {
                    Ok(t) => t,
                    Err(e) => return fail(format!("{}: {e}", path.display())),
                },
                Err(e) => return fail(format!("{}: cannot read: {e}", path.display())),
            },
        };
        let mut deps = match crate::runtime::deps(&settings, None).await {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let bars = ui.terminal.stderr.then(|| Arc::new(terminal::Bars::new()));
        if let Some(bars) = &bars {
            deps.progress = bars.clone();
        }
        // Never a prompt without a terminal to show it on and to answer from.
        if !self.yes && ui.terminal.stdin && ui.terminal.stderr {
            deps.confirm = Arc::new(terminal::Prompt { progress: bars });
        }
        match job::run(&trigger, &settings, &deps).await {
            Ok(summary) => {
                if let Err(e) = print_summary(&summary, format, ui) {
                    return fail(e);
                }
                if summary.is_degraded() {
                    ExitCode::from(EXIT_DEGRADED)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => {
                deps.progress.finish();
                fail(e)
            }
        }
    }
}

/// Prints the summary as `format`; the error is a summary that cannot be rendered (a bug: it is reported).
fn print_summary(summary: &Summary, format: Format, ui: &Ui) -> Result<(), render::RenderError> {
    match format {
        Format::Text => output::print(&format!("{}\n", report::explain::full_text(summary))),
        // Streamed: a summary of 10,000 instances is megabytes, and need not be held as one string too.
        Format::Json => output::emit(|out| {
            serde_json::to_writer_pretty(&mut *out, summary).map_err(std::io::Error::from)?;
            writeln!(out)
        }),
        other => output::print(&render::render(&Stored::of(summary)?, other, ui.style())),
    }
    Ok(())
}

impl ReportArgs {
    pub fn run(&self, ui: &Ui) -> ExitCode {
        let format = ui.format(self.output);
        if format == Format::Text {
            return usage("--output text: `report` renders table, markdown, csv or json (text is the webhook wording of a live run)");
        }
        let body = if self.summary.as_os_str() == "-" {
            read_bounded(std::io::stdin().lock())
        } else {
            std::fs::File::open(&self.summary).and_then(read_bounded)
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => return fail(format!("{}: cannot read: {e}", self.summary.display())),
        };
        let stored = match Stored::from_json(&body) {
            Ok(s) => s,
            Err(e) => return fail(format!("{}: {e}", self.summary.display())),
        };
        if format == Format::Json {
            // The summary as it was stored, re-indented (it was read whole, so it is valid JSON).
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => output::emit(|out| {
                    serde_json::to_writer_pretty(&mut *out, &v).map_err(std::io::Error::from)?;
                    writeln!(out)
                }),
                Err(e) => return fail(format!("{}: {e}", self.summary.display())),
            }
        } else {
            output::print(&render::render(&stored, format, ui.style()));
        }
        ExitCode::SUCCESS
    }
}

fn read_bounded(r: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.take(MAX_SUMMARY_BYTES + 1), &mut body)?;
    if body.len() as u64 > MAX_SUMMARY_BYTES {
        return Err(std::io::Error::other(format!("longer than {MAX_SUMMARY_BYTES} bytes")));
    }
    Ok(body)
}

impl CompletionsArgs {
    pub fn run(&self) -> ExitCode {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut Cli::command(), "aliyun-janitor", &mut script);
        output::emit(|out| out.write_all(&script));
        ExitCode::SUCCESS
    }
}

/// `aliyun-janitor man`: the man page, from the same clap definitions as `--help`.
fn man() -> ExitCode {
    let mut page = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
        return fail(format!("cannot render the man page: {e}"));
    }
    output::emit(|out| out.write_all(&page));
    ExitCode::SUCCESS
}

impl ValidateArgs {
    pub fn run(&self) -> ExitCode {
        match Policy::from_file(&self.policy) {
            Ok(p) => {
                output::print(&format!(
                    "{}: ok — {} rule(s), products {:?}, regions {:?}, apply {}, limits {} per run / {}%\n",
                    self.policy.display(),
                    p.rules.len(),
                    p.products,
                    p.regions,
                    p.apply,
                    p.limits.max_releases_per_run,
                    p.limits.max_release_percent
                ));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    }
}

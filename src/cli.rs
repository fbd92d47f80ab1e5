//! The command-line interface: `run` and `validate`. Each subcommand is an args struct with one `run`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::event::{self, Trigger};
use crate::job::{self, Settings};
use crate::policy::Policy;
use crate::report::{self, Summary};

/// Exit code of a run that finished but did not do everything (a scope unscanned, a failure, a limit breach).
pub const EXIT_DEGRADED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "aliyun-janitor",
    version,
    about = "Releases expired and pay-as-you-go Alibaba Cloud instances, dry-run first"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the janitor once: list, decide, dry-run, and (with --apply or `apply: true`) release.
    Run(Box<RunArgs>),
    /// Check a policy file and print what it means; exits non-zero on the first error.
    Validate(ValidateArgs),
    /// Run one step of an organisation run (what Step Functions / CloudFlow invoke): the step's JSON document
    /// (`{"janitor_step": "plan" | "run_shard" | "merge", ...}`) from a file or `-` (stdin); its answer on stdout.
    Org(Box<OrgArgs>),
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
    /// Really release. Without it (and without `apply: true` in the policy) only dry runs are made.
    #[arg(long)]
    pub apply: bool,
    /// Evaluate the policy as of this time (RFC 3339) instead of now: for tests and replays.
    #[arg(long, env = "JANITOR_NOW")]
    pub now: Option<DateTime<Utc>>,
    /// Output: `json` (the summary) or `text` (one explained line per instance, then the summary counts).
    #[arg(long, default_value = "json", value_parser = ["json", "text"])]
    pub output: String,
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
    tracing::error!(error = %msg, "run aborted: nothing was released");
    eprintln!("error: {msg}");
    ExitCode::from(1)
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

    pub async fn run(&self) -> ExitCode {
        let settings = match self.settings() {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        if settings.policy.accounts.is_some() {
            if self.event.is_some() {
                return fail("--event: an organisation policy (accounts:) runs on schedule only; run an event against one account's policy");
            }
            return crate::org::cli::run_local(&settings, &self.output).await;
        }
        let trigger = match &self.event {
            None => Trigger::cli(),
            Some(path) => match std::fs::read(path) {
                Ok(body) => match event::parse(&body) {
                    Ok(t) => t,
                    Err(e) => return fail(format!("{}: {e}", path.display())),
                },
                Err(e) => return fail(format!("{}: cannot read: {e}", path.display())),
            },
        };
        let deps = match crate::runtime::deps(&settings, None).await {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        match job::run(&trigger, &settings, &deps).await {
            Ok(summary) => {
                print_summary(&summary, &self.output);
                if summary.is_degraded() {
                    ExitCode::from(EXIT_DEGRADED)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => fail(e),
        }
    }
}

fn print_summary(summary: &Summary, output: &str) {
    if output == "text" {
        println!("{}", report::explain::full_text(summary));
    } else {
        // Streamed: a summary of 10,000 instances is megabytes, and need not be held as one string too.
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, summary)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            eprintln!("error: cannot write the summary: {e}");
        }
    }
}

impl ValidateArgs {
    pub fn run(&self) -> ExitCode {
        match Policy::from_file(&self.policy) {
            Ok(p) => {
                println!(
                    "{}: ok — {} rule(s), products {:?}, regions {:?}, apply {}, limits {} per run / {}%",
                    self.policy.display(),
                    p.rules.len(),
                    p.products,
                    p.regions,
                    p.apply,
                    p.limits.max_releases_per_run,
                    p.limits.max_release_percent
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    }
}

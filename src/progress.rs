//! The run's progress, for a person watching a terminal: a small hook the stages call at each phase. Lambda, FC
//! and a CLI without a terminal get [`Silent`]; the CLI's terminal implementation (indicatif, on stderr) is in
//! `cli::terminal`. A hook never decides anything and cannot fail the run.

use std::sync::Arc;

/// The phases a run goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every (product, region) of the scope is listed (or an event's resources re-read); `total` is the number
    /// of scopes.
    Listing,
    /// Each instance is decided (rules, billing cross-check, limits, the fleet check of a narrowed run); `total`
    /// is the number of instances listed.
    Details,
    /// The pre-flight re-read and dry run of every pending change (a dry-run run stops here); `total` is the
    /// number of changes.
    DryRun,
    /// Pre-flight, dry run, then the real calls (marks, releases); `total` is the number of changes.
    Release,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Listing => "listing",
            Phase::Details => "deciding",
            Phase::DryRun => "dry run",
            Phase::Release => "release",
        }
    }
}

/// What the stages report. Every method has a no-op default, so an implementation picks what it shows.
pub trait Progress: Send + Sync {
    /// A phase starts (the previous one is over).
    fn phase(&self, _phase: Phase, _total: usize) {}
    /// One (product, region) was listed: how many instances, or `None` when it could not be read.
    fn listed(&self, _product: &str, _region: &str, _found: Option<usize>) {}
    /// The run's stages are over: the lines are cleared before the summary is printed.
    fn finish(&self) {}
}

/// No progress at all (Lambda, FC, a CLI without a terminal).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}

/// The hook as the stages hold it.
pub type Hook = Arc<dyn Progress>;

/// The silent hook.
pub fn silent() -> Hook {
    Arc::new(Silent)
}

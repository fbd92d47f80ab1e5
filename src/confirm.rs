//! The confirmation asked before an apply run changes anything (the aws-nuke habit): the account, the scope and
//! the counts about to change, shown once the account is known (STS) and the plan is made, before the first
//! write. Lambda, FC, `--yes` and a CLI without a terminal get [`AlwaysYes`]; the CLI's terminal prompt is in
//! `cli::terminal`.

use std::sync::Arc;

use crate::plan::{ChangeKind, Plan};

/// What an apply run is about to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub account_id: String,
    pub products: Vec<String>,
    pub regions: Vec<String>,
    /// `product:region/id name` of every instance to release (the pre-flight may still drop some).
    pub releases: Vec<String>,
    /// Marks written and auto-release times set (each is a release a grace period later).
    pub marks: usize,
    pub unmarks: usize,
    /// Earlier releases finished (their records removed).
    pub finishes: usize,
}

impl Proposal {
    /// What `plan` will change, or `None` when it changes nothing (nothing to confirm).
    pub fn of(plan: &Plan, products: Vec<String>, regions: Vec<String>) -> Option<Proposal> {
        let mut p = Proposal {
            account_id: plan.account_id.clone(),
            products,
            regions,
            releases: Vec::new(),
            marks: 0,
            unmarks: 0,
            finishes: 0,
        };
        for e in &plan.entries {
            let Some(change) = e.pending_change() else { continue };
            match change.kind() {
                ChangeKind::Release => {
                    let d = &e.decision;
                    p.releases.push(format!("{}:{}/{} {}", d.product, d.region, d.id, d.name).trim_end().to_string())
                }
                ChangeKind::Mark => p.marks += 1,
                ChangeKind::Unmark => p.unmarks += 1,
                ChangeKind::Finish => p.finishes += 1,
            }
        }
        let total = p.releases.len() + p.marks + p.unmarks + p.finishes;
        (total > 0).then_some(p)
    }
}

/// Asks whether to go on; `false` stops the run before anything is changed.
pub trait Confirm: Send + Sync {
    fn confirm(&self, proposal: &Proposal) -> bool;
}

/// Goes on without asking (Lambda, FC, `--yes`, no terminal).
#[derive(Debug, Default, Clone, Copy)]
pub struct AlwaysYes;

impl Confirm for AlwaysYes {
    fn confirm(&self, _proposal: &Proposal) -> bool {
        true
    }
}

/// The hook as `job::Deps` holds it.
pub type Hook = Arc<dyn Confirm>;

/// True when the run may go on: an apply run with something to change asks `confirm`; anything else goes on.
pub fn ask(confirm: &dyn Confirm, plan: &Plan, products: Vec<String>, regions: Vec<String>) -> bool {
    if !plan.mode.is_apply() {
        return true;
    }
    match Proposal::of(plan, products, regions) {
        Some(p) => confirm.confirm(&p),
        None => true,
    }
}

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
pub fn ask(confirm: &dyn Confirm, plan: &Plan, products: &[&str], regions: &[String]) -> bool {
    if !plan.mode.is_apply() {
        return true;
    }
    match Proposal::of(plan, products.iter().map(|p| p.to_string()).collect(), regions.to_vec()) {
        Some(p) => confirm.confirm(&p),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::plan::{Change, Decision, Entry, RunMode, Verdict};

    struct Count(AtomicUsize, bool);

    impl Confirm for Count {
        fn confirm(&self, _: &Proposal) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.1
        }
    }

    fn entry(id: &str, change: Option<Change>) -> Entry {
        let decision = Decision {
            product: "ecs".into(),
            region: "cn-hangzhou".into(),
            id: id.into(),
            name: "box".into(),
            verdict: Verdict::Keep,
            rule: None,
            facts: Default::default(),
        };
        Entry { change, ..Entry::from_decision(decision) }
    }

    fn plan(mode: RunMode, entries: Vec<Entry>) -> Plan {
        Plan {
            run_id: "r".into(),
            account_id: "1234567890123456".into(),
            mode,
            mode_reason: String::new(),
            trigger: String::new(),
            now: chrono::Utc::now(),
            scanned: entries.len(),
            population: entries.len(),
            entries,
            skipped_scopes: Vec::new(),
            ignored: Vec::new(),
            limit_breach: None,
            settled: Default::default(),
        }
    }

    #[test]
    fn only_an_apply_run_with_changes_asks_and_a_no_stops_it() {
        let release = || Some(Change::Release { options: Default::default(), extra: Default::default() });
        let changes = vec![entry("i-1", release()), entry("i-2", Some(Change::FinishRelease)), entry("i-3", None)];
        let (no, regions) = (Count(AtomicUsize::new(0), false), ["cn-hangzhou".to_string()]);
        assert!(ask(&no, &plan(RunMode::DryRun, changes.clone()), &["ecs"], &regions), "a dry run never asks");
        assert!(ask(&no, &plan(RunMode::Apply, vec![entry("i-3", None)]), &["ecs"], &regions), "nothing to change");
        assert_eq!(no.0.load(Ordering::SeqCst), 0);
        assert!(!ask(&no, &plan(RunMode::Apply, changes.clone()), &["ecs"], &regions));
        assert_eq!(no.0.load(Ordering::SeqCst), 1);
        let p = Proposal::of(&plan(RunMode::Apply, changes), vec!["ecs".into()], regions.to_vec()).unwrap();
        assert_eq!((p.releases, p.finishes, p.marks), (vec!["ecs:cn-hangzhou/i-1 box".to_string()], 1, 0));
    }
}

//! The shard planner: a pure function from the accounts, the regions and (when known) last run's counts to
//! shards that each finish well within five minutes, so one Lambda or FC invocation runs one shard and the
//! platform's workflow engine (Step Functions Map, CloudFlow Map) runs many at once.
//!
//! The cost model is the run's own shape: an account costs two sequential calls before listing (`AssumeRole`,
//! `GetCallerIdentity`); a region costs its listing pages (100 instances a page, 1 when unknown) plus the
//! pre-flight, dry-run and release rounds (3), and an account lists `REGIONS_AT_ONCE` regions at a time. A shard
//! runs `accounts_at_once` of its accounts at a time, so its time is at most its rounds of that many accounts,
//! each round as long as its longest account (the bound of any such schedule, whatever finishes first).
//! `call_secs` is one round trip, seen from a function in the cloud (default 0.1 s, generous against the
//! 50 ms the benchmark assumes).

use std::collections::BTreeMap;

use super::contract::Shard;

/// Regions an account lists at once (the policy's `concurrency.regions` default).
pub const REGIONS_AT_ONCE: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    /// A shard's estimated run time stays under this (default 120 s: well within five minutes).
    pub target_secs: f64,
    /// One API round trip.
    pub call_secs: f64,
    /// Accounts per shard at most, so even tiny accounts spread over the Map's parallel branches.
    pub max_accounts: usize,
    /// Accounts a shard runs at once (the policy's `accounts.concurrency`).
    pub accounts_at_once: usize,
}

impl Default for Sizing {
    fn default() -> Self {
        Sizing { target_secs: 120.0, call_secs: 0.1, max_accounts: 10, accounts_at_once: 8 }
    }
}

/// Sequential rounds of one (account, region): listing pages plus pre-flight, dry run and release.
fn region_rounds(instances: Option<u64>) -> f64 {
    let pages = instances.map_or(1, |n| n.div_ceil(100).max(1));
    pages as f64 + 3.0
}

/// Estimated seconds of one account over `regions`.
fn account_secs(account: &str, regions: &[String], counts: &BTreeMap<String, u64>, s: &Sizing) -> f64 {
    let rounds: f64 = regions.iter().map(|r| region_rounds(counts.get(&format!("{account}/{r}")).copied())).sum();
    (2.0 + rounds / REGIONS_AT_ONCE.min(regions.len().max(1)) as f64) * s.call_secs
}

/// A shard's estimate: `n` accounts `at_once` at a time, the longest taking `longest` seconds.
fn shard_secs(n: usize, longest: f64, at_once: usize) -> f64 {
    n.div_ceil(at_once.max(1)) as f64 * longest
}

/// Splits the work. An account too big for one shard is split into groups of regions; small accounts are packed
/// together up to the target time and `max_accounts`. `budget` (the organisation-wide cap) is shared out in
/// proportion to the (account, region) pairs of each shard, the remainder to the first shards: the shards' budgets
/// never add up to more than the cap.
pub fn plan(
    accounts: &[String],
    regions: &[String],
    counts: &BTreeMap<String, u64>,
    sizing: &Sizing,
    budget: Option<usize>,
) -> Vec<Shard> {
    struct Piece {
        account: String,
        regions: Vec<String>,
        secs: f64,
    }
    let mut pieces: Vec<Piece> = Vec::new();
    for a in accounts {
        let whole = account_secs(a, regions, counts, sizing);
        if whole <= sizing.target_secs || regions.len() <= 1 {
            pieces.push(Piece { account: a.clone(), regions: regions.to_vec(), secs: whole });
            continue;
        }
        // Too big: regions in groups, each group within the target.
        let mut group: Vec<String> = Vec::new();
        for r in regions {
            group.push(r.clone());
            if account_secs(a, &group, counts, sizing) > sizing.target_secs && group.len() > 1 {
                let last = group.pop().unwrap_or_default();
                let secs = account_secs(a, &group, counts, sizing);
                pieces.push(Piece { account: a.clone(), regions: std::mem::take(&mut group), secs });
                group.push(last);
            }
        }
        if !group.is_empty() {
            let secs = account_secs(a, &group, counts, sizing);
            pieces.push(Piece { account: a.clone(), regions: group, secs });
        }
    }

    // Pack whole-region-set pieces (accounts) together; a split account's pieces are shards of their own.
    let mut shards: Vec<Shard> = Vec::new();
    // The open shard: its accounts, its regions, its longest account's seconds.
    let at_once = sizing.accounts_at_once;
    let mut open: Option<(Vec<String>, Vec<String>, f64)> = None;
    let flush = |open: &mut Option<(Vec<String>, Vec<String>, f64)>, shards: &mut Vec<Shard>| {
        if let Some((accounts, regions, longest)) = open.take() {
            let secs = shard_secs(accounts.len(), longest, at_once);
            shards.push(Shard {
                id: String::new(),
                accounts,
                regions,
                budget: None,
                estimated_secs: secs.ceil() as u64,
                answer_bytes: None,
            });
        }
    };
    for p in pieces {
        if p.regions.len() != regions.len() {
            flush(&mut open, &mut shards);
            shards.push(Shard {
                id: String::new(),
                accounts: vec![p.account],
                regions: p.regions,
                budget: None,
                estimated_secs: p.secs.ceil() as u64,
                answer_bytes: None,
            });
            continue;
        }
        let fits = open.as_ref().is_some_and(|(a, _, longest)| {
            a.len() < sizing.max_accounts && shard_secs(a.len() + 1, longest.max(p.secs), at_once) <= sizing.target_secs
        });
        if !fits {
            flush(&mut open, &mut shards);
            open = Some((Vec::new(), regions.to_vec(), 0.0));
        }
        if let Some((a, _, longest)) = open.as_mut() {
            a.push(p.account);
            *longest = longest.max(p.secs);
        }
    }
    flush(&mut open, &mut shards);

    let width = shards.len().to_string().len().max(4);
    for (i, s) in shards.iter_mut().enumerate() {
        s.id = format!("shard-{:0width$}", i + 1);
    }
    if let Some(total) = budget {
        let pairs: Vec<usize> = shards.iter().map(|s| s.accounts.len() * s.regions.len()).collect();
        let all: usize = pairs.iter().sum::<usize>().max(1);
        let mut given = 0;
        for (s, n) in shards.iter_mut().zip(&pairs) {
            let share = total * n / all;
            s.budget = Some(share);
            given += share;
        }
        for s in shards.iter_mut().take(total.saturating_sub(given)) {
            if let Some(b) = s.budget.as_mut() {
                *b += 1;
            }
        }
    }
    shards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{}", 3_000_000_000_000_000u64 + i as u64)).collect()
    }

    fn regions(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("region-{i}")).collect()
    }

    #[test]
    fn every_account_region_pair_is_in_exactly_one_shard() {
        let (a, r) = (ids(200), regions(20));
        let mut counts = BTreeMap::new();
        counts.insert(format!("{}/region-3", a[7]), 250_000); // one huge region
        let shards = plan(&a, &r, &counts, &Sizing::default(), None);
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for s in &shards {
            for acc in &s.accounts {
                for reg in &s.regions {
                    *seen.entry((acc.clone(), reg.clone())).or_default() += 1;
                }
            }
            assert!(s.estimated_secs <= 120 || s.regions.len() == 1, "{s:?}");
            assert!(s.accounts.len() <= 10);
        }
        assert_eq!(seen.len(), 200 * 20);
        assert!(seen.values().all(|n| *n == 1));
        let ids: std::collections::BTreeSet<&String> = shards.iter().map(|s| &s.id).collect();
        assert_eq!(ids.len(), shards.len(), "unique shard ids");
    }

    #[test]
    fn a_big_account_is_split_by_regions() {
        let (a, r) = (ids(1), regions(20));
        let counts: BTreeMap<String, u64> = r.iter().map(|reg| (format!("{}/{reg}", a[0]), 40_000)).collect();
        let shards = plan(&a, &r, &counts, &Sizing::default(), None);
        assert!(shards.len() > 1, "{shards:?}");
        assert!(shards.iter().all(|s| s.accounts == a && s.estimated_secs <= 120));
    }

    #[test]
    fn the_budget_is_shared_out_and_never_exceeds_the_cap() {
        let shards = plan(&ids(25), &regions(4), &BTreeMap::new(), &Sizing::default(), Some(7));
        let total: usize = shards.iter().map(|s| s.budget.unwrap()).sum();
        assert_eq!(total, 7);
        assert_eq!(shards.len(), 3);
    }

    #[test]
    fn a_shard_is_estimated_by_its_rounds_of_accounts_at_once() {
        let (a, r) = (ids(10), regions(4));
        let one_at_a_time = Sizing { accounts_at_once: 1, ..Sizing::default() };
        let seq = plan(&a, &r, &BTreeMap::new(), &one_at_a_time, None);
        let par = plan(&a, &r, &BTreeMap::new(), &Sizing::default(), None);
        assert_eq!((seq.len(), par.len()), (1, 1));
        // One account: 2 calls + 4 regions of 4 rounds, 4 regions at once = 6 calls of 0.1 s.
        let account: f64 = (2.0 + 4.0 * 4.0 / 4.0) * 0.1;
        assert_eq!(seq[0].estimated_secs, (10.0 * account).ceil() as u64);
        assert_eq!(par[0].estimated_secs, (2.0 * account).ceil() as u64, "10 accounts, 8 at once: 2 rounds");
        // Big accounts: 60 s each packs two a shard one at a time, up to the target with 8 at once.
        let counts: BTreeMap<String, u64> =
            ids(10).iter().flat_map(|a| r.iter().map(move |g| (format!("{a}/{g}"), 58_000))).collect();
        let seq = plan(&a, &r, &counts, &one_at_a_time, None);
        let par = plan(&a, &r, &counts, &Sizing::default(), None);
        assert!(seq.iter().all(|s| s.accounts.len() <= 2 && s.estimated_secs <= 120), "{seq:?}");
        assert!(par.len() < seq.len() && par.iter().all(|s| s.estimated_secs <= 120), "{par:?}");
    }

    #[test]
    fn the_plan_is_deterministic() {
        let a = plan(&ids(50), &regions(4), &BTreeMap::new(), &Sizing::default(), Some(100));
        let b = plan(&ids(50), &regions(4), &BTreeMap::new(), &Sizing::default(), Some(100));
        assert_eq!(a, b);
    }
}

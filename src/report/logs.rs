//! The run's structured log lines: one per instance (target `decision`), one for the run, one per delivery.

use super::{Entry, Summary};
use crate::webhook::Delivery;

/// One JSON log line per instance: id, product, region, decision, rule, facts, request ids.
pub fn log_entry(e: &Entry, account_id: &str) {
    let d = &e.decision;
    let facts = serde_json::to_string(&d.facts).unwrap_or_default();
    tracing::info!(
        target: "decision",
        account_id,
        product = d.product.as_str(),
        region = d.region.as_str(),
        id = d.id.as_str(),
        name = d.name.as_str(),
        decision = e.outcome.as_str(),
        rule = d.rule.as_deref().unwrap_or(""),
        reason = super::reason(e),
        code = e.code.as_deref().unwrap_or(""),
        facts,
        request_ids = e.request_ids.join(","),
        "decision"
    );
}

pub(super) fn log_run(summary: &Summary) {
    tracing::info!(
        run_id = summary.run_id,
        account_id = summary.account_id,
        scanned = summary.scanned,
        released = summary.released.len(),
        would_release = summary.would_release.len(),
        marked = summary.marked.len(),
        unmarked = summary.unmarked.len(),
        finished = summary.finished.len(),
        failures = summary.failures.len(),
        skipped_scopes = summary.skipped_scopes.len(),
        "run finished"
    );
}

pub(super) fn log_deliveries(deliveries: Vec<Delivery>) -> Vec<Delivery> {
    for d in &deliveries {
        if d.ok {
            tracing::info!(
                index = d.index,
                format = d.format.as_str(),
                attempts = d.attempts,
                "summary webhook delivered"
            );
        } else {
            tracing::error!(
                index = d.index,
                format = d.format.as_str(),
                attempts = d.attempts,
                error = d.error.as_deref().unwrap_or(""),
                "summary webhook failed"
            );
        }
    }
    deliveries
}

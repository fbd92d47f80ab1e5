//! Organisation runs (issue 15): every member account of a Resource Directory (or a list), each through its role,
//! split into shards that the platforms' own workflow engines fan out — AWS Step Functions on Lambda, CloudFlow on
//! Function Compute — or that the local runner runs in-process. One binary, three steps in every mode:
//! `plan` → `run_shard` (many at once) → `merge` ([`contract`]).

pub mod cli;
pub mod contract;
mod discovery;
pub mod run;
pub mod shards;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

pub use contract::{OrgSummary, Step};
pub use run::{check_shard_age, merge, plan, run_local, run_shard, OrgError};

use crate::aliyun::CredentialSource;
use crate::job::Settings;
use crate::report::explain::{escape, Markup};
use crate::webhook::{WebhookFormat, WebhookTarget};

/// True when a trigger body is an organisation step (`{"janitor_step": ...}`) rather than a run's event.
pub fn is_step(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("janitor_step").is_some())
}

/// Runs one step from its JSON document and answers its JSON document (Lambda, FC and `aliyun-janitor org`).
pub async fn handle_step(
    body: &[u8],
    settings: &Settings,
    base: Arc<dyn CredentialSource>,
    webhooks: &[WebhookTarget],
) -> Result<Value, OrgError> {
    let step: Step = serde_json::from_slice(body).map_err(|e| {
        OrgError::Job(crate::job::JobError::Event(crate::event::EventError::Field {
            field: "janitor_step".into(),
            message: format!("{e} (expected plan, run_shard or merge with their fields)"),
        }))
    })?;
    let value = match step {
        Step::Plan { counts, for_workflow: None } => serde_json::to_value(plan(settings, base, &counts).await?),
        Step::Plan { counts, for_workflow: Some(engine) } => {
            let sized = plan(settings, base, &counts).await?.for_workflow(engine).map_err(|message| {
                OrgError::Job(crate::job::JobError::Org { kind: "OrganisationTooLarge", message })
            })?;
            serde_json::to_value(sized)
        }
        Step::RunShard { shard, now, .. } => {
            check_shard_age(&now, settings.now.unwrap_or_else(chrono::Utc::now))?;
            let mut answer = run_shard(settings, base, &shard).await?;
            // A workflow's shard answers within its share of the engine's payload limit (contract::Plan::for_workflow).
            if let Some(max) = shard.answer_bytes {
                if !answer.fit(max) {
                    tracing::warn!(shard_id = shard.id, max, "the shard's answer is over its budget even cut down");
                }
            }
            serde_json::to_value(answer)
        }
        Step::Merge { org_run_id, now, plan, results, for_workflow } => {
            let summary = merge(&org_run_id, &now, &plan, &results);
            notify(&summary, webhooks).await;
            let mut answer = serde_json::to_value(summary);
            if let (Some(_), Ok(Value::Object(fields))) = (for_workflow, answer.as_mut()) {
                fields.remove("accounts");
            }
            answer
        }
    };
    Ok(value.unwrap_or_else(|e| json!({"error": e.to_string()})))
}

/// Posts the organisation's one message to every webhook.
pub async fn notify(summary: &OrgSummary, webhooks: &[WebhookTarget]) {
    if webhooks.is_empty() {
        return;
    }
    let http = match crate::webhook::http_client() {
        Ok(h) => h,
        Err(e) => return tracing::error!(error = %e, "no webhook client: the organisation summary is not posted"),
    };
    let deliveries = crate::webhook::deliver_rendered(&http, webhooks, |f| render(f, summary)).await;
    for d in deliveries.iter().filter(|d| !d.ok) {
        tracing::error!(index = d.index, error = d.error.as_deref().unwrap_or(""), "organisation webhook failed");
    }
}

/// The organisation's message: totals, then one line per account that changed something or needs a person.
pub fn message(s: &OrgSummary, markup: Markup) -> String {
    let mode = if s.mode == "apply" { "APPLY" } else { "DRY RUN" };
    let incomplete = if s.degraded { " — INCOMPLETE" } else { "" };
    let totals: Vec<String> = s.totals.iter().map(|(k, n)| format!("{} {n}", k.replace('_', " "))).collect();
    let mut lines = vec![
        format!("aliyun-janitor organisation {mode}{incomplete}"),
        format!(
            "Management account {} · {} accounts planned, {} ran, {} skipped, {} held · {} shards ({} failed)",
            escape(&s.planned_by, markup, 40),
            s.accounts_planned,
            s.accounts_ran,
            s.accounts_skipped.len(),
            s.accounts_held.len(),
            s.shards,
            s.shards_failed.len()
        ),
        format!("Totals: {}", if totals.is_empty() { "nothing scanned".into() } else { totals.join(" · ") }),
    ];
    let interesting = |a: &&contract::AccountResult| {
        a.status == contract::AccountStatus::Skipped
            || a.degraded
            || ["released", "would_release", "marked", "unmarked", "finished", "failed"]
                .iter()
                .any(|k| a.counts.contains_key(*k))
    };
    for a in s.accounts.iter().filter(interesting) {
        let what: BTreeMap<&str, usize> =
            a.counts.iter().filter(|(k, _)| !matches!(k.as_str(), "kept")).map(|(k, n)| (k.as_str(), *n)).collect();
        let mut line = format!("Account {}: ", escape(&a.account_id, markup, 40));
        match (&a.reason, &a.limit_breach) {
            (Some(r), _) => line.push_str(&format!("skipped — {}", escape(r, markup, 300))),
            (None, Some(b)) => line.push_str(&format!("held — {}", escape(b, markup, 300))),
            (None, None) => line.push_str(
                &what.iter().map(|(k, n)| format!("{} {n}", k.replace('_', " "))).collect::<Vec<_>>().join(", "),
            ),
        }
        lines.push(line);
    }
    for f in &s.shards_failed {
        lines.push(format!("Shard {} failed: {}", escape(&f.account_id, markup, 40), escape(&f.reason, markup, 300)));
    }
    lines.join("\n")
}

fn render(format: WebhookFormat, s: &OrgSummary) -> Value {
    match format {
        WebhookFormat::Json => serde_json::to_value(s).unwrap_or_else(|_| json!({"org_run_id": s.org_run_id})),
        WebhookFormat::Slack => json!({"text": message(s, Markup::Slack)}),
        WebhookFormat::DingTalk => {
            json!({"msgtype": "markdown", "markdown": {"title": "aliyun-janitor organisation", "text": message(s, Markup::Markdown)}})
        }
        WebhookFormat::Feishu => json!({"msg_type": "text", "content": {"text": message(s, Markup::Plain)}}),
        WebhookFormat::WeCom => json!({"msgtype": "markdown", "markdown": {"content": message(s, Markup::Markdown)}}),
    }
}

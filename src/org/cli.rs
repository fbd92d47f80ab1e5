//! The CLI's two organisation entry points: the local runner (`run` with an `accounts:` policy) and one step
//! (`aliyun-janitor org STEP.json`). Exit codes as for `run`: 0 done, 1 nothing could run, 3 degraded.

use std::process::ExitCode;

use std::sync::Arc;

use crate::aliyun::CredentialSource;
use crate::job::Settings;
use crate::webhook::WebhookTarget;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    tracing::error!(error = %msg, "organisation run aborted: nothing was released");
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

fn print_json(v: &impl serde::Serialize) {
    crate::cli::output::emit(|out| {
        serde_json::to_writer_pretty(&mut *out, v).map_err(std::io::Error::from)?;
        writeln!(out)
    });
}

/// The credentials (the default chain, through `role_arn` if set) and the webhooks both entry points need.
async fn deps(settings: &Settings) -> Result<(Arc<dyn CredentialSource>, Vec<WebhookTarget>), String> {
    let base = crate::runtime::credential_source(settings, None).await.map_err(|e| e.to_string())?;
    let webhooks = crate::webhook::targets_from_env().map_err(|e| e.to_string())?;
    Ok((base, webhooks))
}

/// `output`: JSON, a table or CSV per account (an organisation summary has per-account counts, not instances),
/// or the organisation message (markdown, text).
pub async fn run_local(settings: &Settings, output: crate::render::Format, style: crate::render::Style) -> ExitCode {
    let (base, webhooks) = match deps(settings).await {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    match super::run_local(settings, base, &webhooks).await {
        Ok(summary) => {
            if output == crate::render::Format::Json {
                print_json(&summary);
            } else {
                crate::cli::output::print(&crate::render::org::render(&summary, output, style));
            }
            if summary.degraded {
                ExitCode::from(crate::cli::EXIT_DEGRADED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(e),
    }
}

pub async fn step(settings: &Settings, body: &[u8]) -> ExitCode {
    let (base, webhooks) = match deps(settings).await {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    match super::handle_step(body, settings, base, &webhooks).await {
        Ok(v) => {
            print_json(&v);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

//! What triggered a run. Every accepted event shape is parsed into a [`Trigger`]; anything else is an
//! error naming what was wrong, and nothing runs.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A scheduled run: AWS EventBridge `Scheduled Event`, Alibaba FC timer, or the CLI without `--event`.
    Scheduled { source: String, event_id: Option<String>, time: Option<DateTime<Utc>> },
    /// A manual invocation (`{"dry_run": true, "regions": [...], "products": [...]}`): it may narrow the
    /// policy's scope or force a dry run, never widen the scope or turn apply on.
    Manual(ManualRequest),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManualRequest {
    pub dry_run: Option<bool>,
    pub regions: Option<Vec<String>>,
    pub products: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    #[error("event field `{field}`: {message}")]
    Field { field: String, message: String },
    #[error("unrecognised event shape: {0}")]
    Unknown(String),
}

impl Trigger {
    /// The CLI's trigger when no `--event` is given.
    pub fn cli() -> Self {
        Trigger::Scheduled { source: "cli".into(), event_id: None, time: None }
    }

    /// An id that identifies this delivery, used to derive stable idempotency tokens.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Trigger::Scheduled { event_id, .. } => event_id.as_deref(),
            Trigger::Manual(_) => None,
        }
    }

    /// True when the trigger demands a dry run whatever the policy says.
    pub fn forces_dry_run(&self) -> bool {
        matches!(self, Trigger::Manual(ManualRequest { dry_run: Some(true), .. }))
    }

    pub fn regions(&self) -> Option<&[String]> {
        match self {
            Trigger::Manual(m) => m.regions.as_deref(),
            _ => None,
        }
    }

    pub fn products(&self) -> Option<&[String]> {
        match self {
            Trigger::Manual(m) => m.products.as_deref(),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Trigger::Scheduled { source, .. } => format!("scheduled ({source})"),
            Trigger::Manual(_) => "manual".into(),
        }
    }
}

/// Parses an event body (Lambda payload, FC `/invoke` body, or a CLI `--event` file).
pub fn parse(_body: &[u8]) -> Result<Trigger, EventError> {
    todo!("event parsing")
}

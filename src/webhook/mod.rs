//! Summary webhooks: after every run the [`Summary`] goes to each target configured in `JANITOR_WEBHOOKS`,
//! as generic signed JSON or as a chat message (Slack, DingTalk, Feishu/Lark, WeCom).
//!
//! Delivery happens after the release step and only reads the summary: a webhook failure never changes what
//! was released. It is logged and returned as a [`Delivery`] for the function result.
//!
//! Webhook URLs and secrets are credentials (the URL alone lets anyone post): they are never logged, and
//! no error or [`Debug`](std::fmt::Debug) output carries them.

mod config;
mod deliver;
mod render;
mod sign;

pub use config::{
    targets_from_env, targets_from_env_value, WebhookError, WebhookFormat, WebhookTarget, ENV_VAR, MAX_TARGETS,
};
pub use deliver::{deliver_all, deliver_all_with, deliver_rendered, http_client, Delivery, DeliveryPolicy};
pub use render::render;

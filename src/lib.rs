//! aliyun-janitor: releases expired and pay-as-you-go Alibaba Cloud instances, dry-run first.
//!
//! A run is five stages, wired by [`job`]: [`scan`] (what exists: [`products`] behind small traits, billing in
//! [`discovery`]) → [`plan`] (one decision per instance, with the [`lifecycle`] of marks, under the [`policy`]) →
//! [`limits`] (hold what breaches them) → [`execute`] (marks, pre-flight, dry run, release) → [`report`]
//! (summary, logs, [`webhook`]s). [`event`] parses what triggered the run; [`aliyun`] is the signed API client. The emulator of the
//! Alibaba API that the demo and the tests run against is its own crate, `aliyun-sim` (`sim/`).

pub mod aliyun;
pub mod cli;
pub mod confirm;
pub mod credentials;
pub(crate) mod discovery;
pub mod event;
pub(crate) mod execute;
pub(crate) mod fleet;
pub mod inventory;
pub(crate) mod job;
pub mod lifecycle;
pub(crate) mod limits;
pub(crate) mod mode;
pub mod org;
pub mod plan;
pub mod policy;
pub mod products;
pub mod progress;
pub mod render;
pub mod report;
pub(crate) mod retry;
pub mod runtime;
pub(crate) mod scan;
pub(crate) mod strmap;
pub(crate) mod validate;
pub mod webhook;

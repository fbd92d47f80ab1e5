//! aliyun-janitor: releases expired and pay-as-you-go Alibaba Cloud instances, dry-run first.
//!
//! A run reads as the module list: [`event`] (what triggered us) → [`policy`] (what the user allows) →
//! [`products`] (what exists) → [`plan`] (decisions with reasons) → [`lifecycle`] (mark, wait, release, unmark) →
//! [`release`] (dry run, then act) →
//! [`report`] (summary and logs). [`job`] wires them; [`aliyun`] is the signed API client. The emulator of the
//! Alibaba API that the demo and the tests run against is its own crate, `aliyun-sim` (`sim/`).

pub mod aliyun;
pub mod cli;
pub mod discovery;
pub mod event;
pub mod inventory;
pub mod job;
pub mod lifecycle;
pub mod plan;
pub mod policy;
pub mod products;
pub mod release;
pub mod report;
pub mod retry;
pub mod runtime;
pub mod strmap;
pub mod validate;
pub mod webhook;

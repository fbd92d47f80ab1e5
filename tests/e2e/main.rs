//! The janitor's integration tests, one test binary (one link instead of one per file): each module is a
//! former `tests/*.rs` file, and `support` holds the helpers they share (the in-process emulator on loopback,
//! the real binary run against it, the serverless runtimes' child processes). Fixtures are in
//! `tests/fixtures/`. Run one module with `cargo test --test e2e faults::`; the slow ones are `crash_safety`
//! and `fuzz_inputs` (`-- --skip crash_safety --skip fuzz_inputs` leaves them out).

mod support;

mod adversary;
mod bad_input;
mod billing;
mod catalog_literals;
mod cli_output;
#[cfg(unix)]
mod cli_terminal;
mod connections;
mod crash_safety;
mod credentials;
mod deploy_templates;
mod detail_reads;
mod ecs_end_to_end;
mod faults;
mod fc_http;
mod fuzz_inputs;
mod lambda_runtime;
mod lifecycle;
mod lifecycle_products;
mod notify_end_to_end;
mod organisation;
mod products_kafka;
mod products_kms;
mod products_redis;
mod reconcile;
mod streaming;
mod tag_events;
mod webhooks;
mod workflows;

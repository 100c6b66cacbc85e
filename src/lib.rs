//! drctl: a disaster-recovery orchestrator for multi-region cloud.
//!
//! drctl loads RTO/RPO-tiered recovery plans and drives region failovers:
//! replica promotion, point-in-time restore, compute scaling and DNS switching,
//! with measured (never guessed) RTO and RPO and evidence an auditor can trust.
//!
//! Layout, from the ground floor up (a module uses only those below it;
//! `tests/it/layers.rs` checks it, `docs/architecture.md` draws it):
//! * [`escape`], [`sign`]: text made safe for a terminal, Markdown, Slack,
//!   CSV; signatures;
//! * [`cloud`]: narrow cloud traits, their AWS/GCS implementations and a fake;
//! * [`plan`]: the plan format, loading with positions, validation;
//! * [`journal`]: the events of a run and their payloads, the hash chain;
//! * [`state`]: where journals and locks live (directory, S3, GCS), leases;
//! * [`evidence`]: the evidence pack format and its verification;
//! * [`steps`]: one file per step kind and the graph they compile into;
//! * [`runs`]: the read model: replay, measurement, drill verdicts, cadence;
//! * [`report`], [`cleanup`]: reports from journals; drill resource removal;
//! * [`engine`]: runs a graph: lock, gates, executor, resume;
//! * [`status`], [`config`]: readiness of each standby region; settings;
//! * [`watch`]: observers that notice an outage and decide by quorum.
//!
//! The command line lives in the binary (`src/main.rs`, `src/cli/`), the only
//! place where errors become `anyhow` reports and exit codes.

#![warn(missing_docs)]

pub mod cleanup;
pub mod cloud;
pub mod config;
pub mod engine;
pub mod escape;
pub mod evidence;
pub mod forecast;
pub mod journal;
pub mod notify;
pub mod plan;
pub mod report;
pub mod runs;
pub mod sign;
/// The simulator: a test and benchmark tool (the `testkit` feature).
#[cfg(any(test, feature = "testkit"))]
pub mod sim;
pub mod state;
pub mod status;
pub mod steps;
pub mod watch;

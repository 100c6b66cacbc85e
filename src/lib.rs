//! drctl: a disaster-recovery orchestrator for multi-region cloud.
//!
//! drctl loads RTO/RPO-tiered recovery plans and drives region failovers:
//! replica promotion, point-in-time restore, compute scaling and DNS switching,
//! with measured (never guessed) RTO and RPO and evidence an auditor can trust.
//!
//! Layout, from the ground floor up (a module uses only those below it;
//! `tests/it/layers.rs` checks it, `docs/architecture.md` explains it):
//! * [`escape`], [`sign`]: text made safe for a terminal, Markdown, Slack,
//!   CSV; Ed25519 keys and signatures;
//! * [`cloud`]: narrow per-service cloud traits, their AWS and Google
//!   implementations, metering and API budgets, and a fake;
//! * [`plan`]: the plan format, loading with positions, validation; the
//!   resource kinds and the roles they play;
//! * [`journal`]: the events of a run and their payloads, the hash chain;
//! * [`state`]: where journals and locks live (directory, S3, GCS), leases;
//! * [`evidence`]: the evidence pack format and its verification;
//! * [`steps`]: the generic steps of the three roles (capacity, data,
//!   traffic), the cross-cutting ones, and the graph they compile into;
//! * [`runs`], [`forecast`]: the read model (replay, measurement, drill
//!   verdicts, cadence); a failover's RTO forecast;
//! * [`report`], [`cleanup`], [`notify`]: reports from journals; drill
//!   resource removal; notifications sent from the journal;
//! * [`engine`]: runs a graph: lock, gates, executor, resume;
//! * [`status`], [`config`], [`watch`], `sim`: readiness of each standby
//!   region; settings; observers that notice an outage and decide by
//!   quorum; the simulator (the `testkit` feature).
//!
//! The command line lives in the binary (`src/main.rs`, `src/cli/`), the only
//! place where errors become messages, hints and exit codes.

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

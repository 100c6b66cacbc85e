//! drctl: a disaster-recovery orchestrator for multi-region cloud.
//!
//! drctl loads RTO/RPO-tiered recovery plans and drives region failovers:
//! replica promotion, point-in-time restore, compute scaling and DNS switching,
//! with measured (never guessed) RTO and RPO and evidence an auditor can trust.
//!
//! Layout:
//! * [`plan`]: the plan format, loading with positions, validation;
//! * [`graph`]: a plan + target region compiled into a step graph;
//! * [`cloud`]: narrow cloud traits, their AWS/GCS implementations and a fake;
//! * [`status`]: readiness of each standby region;
//! * [`config`]: settings from file, environment and flags;
//! * [`engine`], [`steps`], [`journal`]: runs, their steps and their journal;
//! * [`drill`]: what drills create, and how it is found and removed;
//! * [`schedule`]: drill cadence.
//!
//! The command line lives in the binary (`src/main.rs`, `src/cli/`), the only
//! place where errors become `anyhow` reports and exit codes.

#![warn(missing_docs)]

pub mod cleanup;
pub mod cloud;
pub mod config;
pub mod engine;
pub mod evidence;
pub mod journal;
pub mod plan;
pub mod report;
pub mod runs;
pub mod state;
pub mod status;
pub mod steps;

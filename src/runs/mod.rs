//! The read model: everything that reads runs, as pure functions of journal
//! records.
//!
//! Replay (a step's state from its events), measurement (RTO/RPO achieved),
//! a run's report, drill summaries and verdicts, and schedule cadence all
//! live here, below the engine and above the journal. The engine only
//! writes runs; `runs show`, `status`, `schedule`, `report` and resume read
//! them through this module, so every reader agrees on what a journal says.
//! What other processes learned about a run later (an approval, a delivery)
//! is stored beside its journal and merged with its records in one place,
//! [`late::merge`].
//!
//! Layout: [`late`] (a run's records and late facts, read authenticated),
//! [`replay`](mod@replay) (a step's state, through one state machine),
//! [`measure`] (RTO and RPO achieved), [`run_report`] (a run as its
//! journal tells it), [`drill`] (a drill's cleanup and verdicts),
//! [`schedule`] (drill cadence and slots), [`verified`] (whether a plan is
//! still what its last passing drill proved), [`watch`] (where each plan
//! serves by its runs, and what `drctl watch` needs of the journals),
//! [`deliveries`] (where each notification of a run stands).

pub mod deliveries;
pub mod drill;
pub mod late;
pub mod measure;
pub mod replay;
pub mod run_report;
pub mod schedule;
pub mod verified;
pub mod watch;

pub use replay::{StepState, replay};
pub use run_report::{GateRecord, RunReport, build_report, report_from_records};
